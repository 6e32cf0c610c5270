//! `flux-api-removed` / `flux-api-deprecated`: every Flux object of the repository uses an API
//! version the env's Flux serves; `lint --fix` rewrites the `apiVersion:` line of the others
//! (that line only, so comments and formatting stay).

use std::collections::BTreeMap;

use super::source::{Repo, api_group, text_at};
use super::{Finding, LintError, Rule};

/// A Flux API version that is going or gone, and what replaces it.
struct Retired {
    group: &'static str,
    version: &'static str,
    /// Kinds it applies to (empty: every kind of the group).
    kinds: &'static [&'static str],
    replacement: &'static str,
    /// The Flux minor (`2.x`) that no longer serves it; `None`: still served, deprecated.
    removed_in: Option<u32>,
}

/// What lint knows of Flux 2's API history (README "Lint rules").
const RETIRED: &[Retired] = &[
    Retired {
        group: "kustomize.toolkit.fluxcd.io",
        version: "v1beta1",
        kinds: &[],
        replacement: "v1",
        removed_in: Some(3),
    },
    Retired {
        group: "kustomize.toolkit.fluxcd.io",
        version: "v1beta2",
        kinds: &[],
        replacement: "v1",
        removed_in: None,
    },
    Retired {
        group: "source.toolkit.fluxcd.io",
        version: "v1beta1",
        kinds: &[],
        replacement: "v1",
        removed_in: Some(3),
    },
    Retired {
        group: "source.toolkit.fluxcd.io",
        version: "v1beta2",
        kinds: &["GitRepository", "HelmRepository", "HelmChart", "Bucket"],
        replacement: "v1",
        removed_in: None,
    },
    Retired {
        group: "helm.toolkit.fluxcd.io",
        version: "v2beta1",
        kinds: &[],
        replacement: "v2",
        removed_in: Some(3),
    },
    Retired {
        group: "helm.toolkit.fluxcd.io",
        version: "v2beta2",
        kinds: &[],
        replacement: "v2",
        removed_in: None,
    },
    Retired {
        group: "notification.toolkit.fluxcd.io",
        version: "v1beta1",
        kinds: &["Alert", "Provider"],
        replacement: "v1beta3",
        removed_in: Some(3),
    },
    Retired {
        group: "notification.toolkit.fluxcd.io",
        version: "v1beta2",
        kinds: &["Alert", "Provider"],
        replacement: "v1beta3",
        removed_in: None,
    },
    Retired {
        group: "notification.toolkit.fluxcd.io",
        version: "v1beta1",
        kinds: &["Receiver"],
        replacement: "v1",
        removed_in: Some(3),
    },
    Retired {
        group: "notification.toolkit.fluxcd.io",
        version: "v1beta2",
        kinds: &["Receiver"],
        replacement: "v1",
        removed_in: None,
    },
];

fn retired(api_version: &str, kind: &str) -> Option<&'static Retired> {
    let (group, version) = api_version.rsplit_once('/')?;
    RETIRED.iter().find(|retired| {
        retired.group == group
            && retired.version == version
            && (retired.kinds.is_empty() || retired.kinds.contains(&kind))
    })
}

/// The minor of `v2.<minor>.<patch>`; `None` (the newest lint knows) when not that shape.
fn flux_minor(flux_version: Option<&str>) -> Option<u32> {
    let version = flux_version?.trim_start_matches('v');
    let mut parts = version.split('.');
    (parts.next()? == "2").then_some(())?;
    parts.next()?.parse().ok()
}

pub fn check(repo: &Repo, flux_version: Option<&str>) -> Vec<Finding> {
    let minor = flux_minor(flux_version);
    let shown = flux_version.unwrap_or("current Flux");
    let mut findings = Vec::new();
    for (file, doc, value) in repo.documents() {
        let api_version = text_at(value, &["apiVersion"]);
        let kind = text_at(value, &["kind"]);
        let Some(retired) = retired(api_version, kind) else {
            continue;
        };
        let removed = retired
            .removed_in
            .is_some_and(|removed| minor.is_none_or(|minor| minor >= removed));
        let (rule, state) = if removed {
            (Rule::FluxApiRemoved, "is not served by")
        } else {
            (Rule::FluxApiDeprecated, "is deprecated in")
        };
        let replacement = format!("{}/{}", api_group(api_version), retired.replacement);
        findings.push(Finding::new(
            doc.locate(&file.path, Some("apiVersion:"), Some(api_version)),
            rule,
            format!(
                "{kind} {} uses {api_version}, which {state} {shown}",
                text_at(value, &["metadata", "name"])
            ),
            format!("use {replacement} (`gitops-bootstrap lint --fix` rewrites it)"),
        ));
    }
    findings
}

/// Rewrites the `apiVersion:` line of every retired Flux API version in place, keeping the
/// rest of each file byte for byte. Returns the files changed, relative to the repository.
pub fn fix_api_versions(repo_root: &std::path::Path) -> Result<Vec<String>, LintError> {
    let repo = Repo::load(repo_root)?;
    let mut edits: BTreeMap<String, Vec<(usize, String, String)>> = BTreeMap::new();
    for (file, doc, value) in repo.documents() {
        let api_version = text_at(value, &["apiVersion"]);
        let Some(retired) = retired(api_version, text_at(value, &["kind"])) else {
            continue;
        };
        let at = doc.locate(&file.path, Some("apiVersion:"), Some(api_version));
        let replacement = format!("{}/{}", api_group(api_version), retired.replacement);
        edits.entry(file.path.clone()).or_default().push((
            at.line,
            api_version.to_owned(),
            replacement,
        ));
    }
    let mut changed = Vec::new();
    for (path, lines) in edits {
        let Some(file) = repo.file(&path) else {
            continue;
        };
        let mut text = String::with_capacity(file.text.len());
        for (index, line) in file.text.split_inclusive('\n').enumerate() {
            match lines.iter().find(|(at, ..)| *at == index + 1) {
                Some((_, old, new)) if line.trim_start().starts_with("apiVersion:") => {
                    text.push_str(&line.replacen(old.as_str(), new, 1));
                }
                _ => text.push_str(line),
            }
        }
        let full = repo_root.join(&path);
        std::fs::write(&full, text).map_err(|err| LintError::Write {
            path: full,
            message: err.to_string(),
        })?;
        changed.push(path);
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retired_versions_by_kind() {
        assert_eq!(
            retired("source.toolkit.fluxcd.io/v1beta2", "HelmRepository").map(|r| r.replacement),
            Some("v1")
        );
        assert!(retired("source.toolkit.fluxcd.io/v1beta2", "OCIRepository").is_none());
        assert!(retired("helm.toolkit.fluxcd.io/v2", "HelmRelease").is_none());
        assert_eq!(
            retired("notification.toolkit.fluxcd.io/v1beta2", "Receiver").map(|r| r.replacement),
            Some("v1")
        );
    }

    #[test]
    fn flux_versions_give_their_minor() {
        assert_eq!(flux_minor(Some("v2.4.0")), Some(4));
        assert_eq!(flux_minor(Some("2.2.1")), Some(2));
        assert_eq!(flux_minor(None), None);
    }

    #[test]
    fn fix_rewrites_only_the_api_version_line() {
        let dir = tempfile::tempdir().unwrap();
        let original = "# keep me\napiVersion: kustomize.toolkit.fluxcd.io/v1beta2  # trailing\nkind: Kustomization\nmetadata:\n  name: a\nspec:\n  note: kustomize.toolkit.fluxcd.io/v1beta2\n";
        std::fs::write(dir.path().join("a.yaml"), original).unwrap();
        let changed = fix_api_versions(dir.path()).unwrap();
        assert_eq!(changed, ["a.yaml"]);
        let fixed = std::fs::read_to_string(dir.path().join("a.yaml")).unwrap();
        assert_eq!(
            fixed,
            original.replacen(
                "apiVersion: kustomize.toolkit.fluxcd.io/v1beta2",
                "apiVersion: kustomize.toolkit.fluxcd.io/v1",
                1
            )
        );
    }
}
