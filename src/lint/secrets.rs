//! `plaintext-secret`: no Secret with data in plain text anywhere in the repository (SOPS
//! encrypted ones are fine). `unencrypted-sops-file`: every file a `.sops.yaml` creation rule
//! covers is SOPS-encrypted.

use regex::Regex;
use serde_yaml_ng::Value;

use super::source::{Repo, SourceFile, text_at};
use super::substitution::references;
use super::{Finding, Rule};

/// SOPS writes its metadata (with the MAC) under a top-level `sops` key.
fn encrypted(value: &Value) -> bool {
    value
        .get("sops")
        .is_some_and(|sops| sops.get("mac").is_some())
}

/// A `.sops.yaml` rule: the directory it sits in and its `path_regex`.
struct CreationRule {
    dir: String,
    path_regex: Regex,
    source: String,
}

fn creation_rules(repo: &Repo) -> Vec<CreationRule> {
    let mut rules = Vec::new();
    for file in &repo.files {
        let name = file.path.rsplit('/').next().unwrap_or_default();
        if name != ".sops.yaml" && name != ".sops.yml" {
            continue;
        }
        let dir = file
            .path
            .rsplit_once('/')
            .map_or(String::new(), |(dir, _)| dir.to_owned());
        let values = file.docs.iter().filter_map(|doc| doc.value.as_ref());
        for value in values {
            for rule in value["creation_rules"].as_sequence().into_iter().flatten() {
                let Ok(path_regex) = Regex::new(text_at(rule, &["path_regex"])) else {
                    continue;
                };
                if rule.get("path_regex").is_some() {
                    rules.push(CreationRule {
                        dir: dir.clone(),
                        path_regex,
                        source: file.path.clone(),
                    });
                }
            }
        }
    }
    rules
}

/// The rule covering a file, matched against its path relative to the rule's directory.
fn covering<'a>(rules: &'a [CreationRule], file: &SourceFile) -> Option<&'a CreationRule> {
    rules.iter().find(|rule| {
        let relative = match rule.dir.as_str() {
            "" => Some(file.path.as_str()),
            dir => file.path.strip_prefix(&format!("{dir}/")),
        };
        relative.is_some_and(|relative| {
            let name = relative.rsplit('/').next().unwrap_or(relative);
            name != ".sops.yaml" && name != ".sops.yml" && rule.path_regex.is_match(relative)
        })
    })
}

/// Every value is a `${var}` Flux fills in at apply time (from `cluster-secrets`, say): the
/// secret itself is not in Git, which is the fix this rule asks for.
fn placeholders_only(secret: &Value) -> bool {
    let values: Vec<&Value> = ["data", "stringData"]
        .iter()
        .filter_map(|key| secret.get(key).and_then(Value::as_mapping))
        .flat_map(|map| map.values())
        .collect();
    !values.is_empty()
        && values.iter().all(|value| {
            value.as_str().is_some_and(|text| {
                let references = references(text);
                let mut rest = text.to_owned();
                for reference in &references {
                    rest = rest.replacen(reference.text, "", 1);
                }
                !references.is_empty() && rest.trim().is_empty()
            })
        })
}

pub fn check(repo: &Repo) -> Vec<Finding> {
    let rules = creation_rules(repo);
    let mut findings = Vec::new();
    for file in &repo.files {
        if let Some(rule) = covering(&rules, file) {
            // A file a rule covers is reported once, as a whole.
            let plain = file
                .docs
                .iter()
                .find(|doc| doc.value.as_ref().is_some_and(|value| !encrypted(value)));
            if let Some(doc) = plain {
                findings.push(Finding::new(
                    doc.locate(&file.path, None, None),
                    Rule::UnencryptedSopsFile,
                    format!(
                        "{} must be encrypted (a creation rule of {} covers it) but is plain text",
                        file.path, rule.source
                    ),
                    format!(
                        "encrypt it in place: sops --encrypt --in-place {}",
                        file.path
                    ),
                ));
            }
            continue;
        }
        for doc in &file.docs {
            let Some(value) = &doc.value else { continue };
            let has_data = ["data", "stringData"].iter().any(|key| {
                value
                    .get(key)
                    .and_then(Value::as_mapping)
                    .is_some_and(|map| !map.is_empty())
            });
            if text_at(value, &["kind"]) != "Secret"
                || !has_data
                || encrypted(value)
                || placeholders_only(value)
            {
                continue;
            }
            let key = if value.get("stringData").is_some() {
                "stringData:"
            } else {
                "data:"
            };
            findings.push(Finding::new(
                doc.locate(&file.path, Some(key), None),
                Rule::PlaintextSecret,
                format!(
                    "Secret {} holds its values in plain text in Git",
                    text_at(value, &["metadata", "name"])
                ),
                "encrypt it with sops (name the file *.sops.yaml under clusters/<env>/) or put the value in the env's cluster_secrets",
            ));
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_of_placeholders_only_holds_no_secret() {
        let secret = |data: &str| -> Value {
            serde_yaml_ng::from_str(&format!("kind: Secret\nstringData:\n{data}")).unwrap()
        };
        assert!(placeholders_only(&secret(
            "  key: ${api_key}\n  other: \"${b}\"\n"
        )));
        assert!(!placeholders_only(&secret(
            "  key: ${api_key}\n  other: plain\n"
        )));
        assert!(!placeholders_only(&secret("  key: prefix-${api_key}\n")));
        assert!(!placeholders_only(&secret("  key: $${escaped}\n")));
    }
}
