//! `unresolved-variable`: every `${var}` Flux substitutes in a build is provided by the
//! Kustomization that applies it (`postBuild.substitute`), by the env's `cluster-config` /
//! `cluster-secrets`, or has a default (`${var:=default}`).

use std::collections::BTreeMap;

use regex::Regex;

use super::build::{Build, ProfileTree};
use super::source::{Repo, text_at};
use super::{ClusterVariables, Finding, Rule, Severity};

/// Flux (drone/envsubst) syntax: `${name}`, `${name:=default}`, `${name:-default}`;
/// `$${…}` is an escaped, literal `${…}`.
fn pattern() -> Regex {
    Regex::new(r"\$?\$\{([^}:]*)(?::[=-]([^}]*))?\}").expect("static regex")
}

/// A `${…}` reference in a text.
#[derive(Debug, PartialEq, Eq)]
pub struct Reference<'a> {
    pub name: &'a str,
    pub default: Option<&'a str>,
    /// The reference as written, e.g. `${dns_domain:=example.com}`.
    pub text: &'a str,
}

pub fn references(text: &str) -> Vec<Reference<'_>> {
    pattern()
        .captures_iter(text)
        .filter(|captures| !captures[0].starts_with("$$"))
        .map(|captures| Reference {
            name: captures.get(1).map_or("", |m| m.as_str()),
            default: captures.get(2).map(|m| m.as_str()),
            text: captures.get(0).map_or("", |m| m.as_str()),
        })
        .collect()
}

/// The text with known variables and defaults filled in; others are left as written.
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> String {
    pattern()
        .replace_all(text, |captures: &regex::Captures| {
            let whole = &captures[0];
            if let Some(escaped) = whole.strip_prefix('$')
                && escaped.starts_with('$')
            {
                return escaped.to_owned();
            }
            let name = &captures[1];
            vars.get(name)
                .cloned()
                .or_else(|| captures.get(2).map(|m| m.as_str().to_owned()))
                .unwrap_or_else(|| whole.to_owned())
        })
        .into_owned()
}

/// Flux skips objects annotated so.
fn substitution_disabled(object: &serde_yaml_ng::Value) -> bool {
    text_at(
        object,
        &[
            "metadata",
            "annotations",
            "kustomize.toolkit.fluxcd.io/substitute",
        ],
    ) == "disabled"
}

pub fn check(repo: &Repo, tree: &ProfileTree, cluster: &ClusterVariables) -> Vec<Finding> {
    tree.builds
        .iter()
        .filter(|build| build.applier.substitutes)
        .flat_map(|build| check_build(repo, build, cluster))
        .collect()
}

fn check_build(repo: &Repo, build: &Build, cluster: &ClusterVariables) -> Vec<Finding> {
    let applier = &build.applier;
    let mut findings = Vec::new();
    for object in &build.objects {
        if substitution_disabled(&object.value) {
            continue;
        }
        for reference in references(&object.raw) {
            let provided = reference.default.is_some()
                || applier.substitute.contains_key(reference.name)
                || (applier.from_cluster && cluster.known.contains(reference.name));
            if provided {
                continue;
            }
            let maybe = applier.from_other || (applier.from_cluster && cluster.open);
            let Some(at) = repo.locate(&object.value, None, Some(reference.text)) else {
                continue;
            };
            let mut finding = Finding::new(
                at,
                Rule::UnresolvedVariable,
                format!(
                    "{} is not provided to {} (applied by Kustomization {}): Flux would substitute an empty string",
                    reference.text,
                    text_at(&object.value, &["metadata", "name"]),
                    applier.name
                ),
                format!(
                    "give it a default (${{{}:=value}}), set it in postBuild.substitute, or put it in the env's cluster_config",
                    reference.name
                ),
            );
            if maybe {
                // A source lint cannot read offline may hold it.
                finding.severity = Severity::Warning;
            }
            findings.push(finding);
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_keep_defaults_and_skip_escapes() {
        let found = references("a: ${x}\nb: ${y:=1}\nc: $${z}\nd: ${w:-two}\n");
        let names: Vec<(&str, Option<&str>)> = found.iter().map(|r| (r.name, r.default)).collect();
        assert_eq!(names, [("x", None), ("y", Some("1")), ("w", Some("two"))]);
    }

    #[test]
    fn substitution_fills_values_then_defaults_and_keeps_the_rest() {
        let vars = BTreeMap::from([("root".to_owned(), "./profiles".to_owned())]);
        assert_eq!(
            substitute("${root:=./p}/apps ${n:=3} ${gone} $${lit}", &vars),
            "./profiles/apps 3 ${gone} ${lit}"
        );
    }
}
