//! `lint --fix`: rewrites retired Flux API versions in the files the lint's profiles apply, to
//! the newest version every cluster applying each file serves (see `clusters`), converting the
//! fields the new version lacks or saying why not. Everything is planned and every file checked
//! writable before the first write, so a refused run changes nothing.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;
use serde_yaml_ng::Value;

use super::build::{self, Kustomize, ProfileTree};
use super::clusters::{self, Cluster};
use super::convert;
use super::flux_apis;
use super::source::{Doc, Repo, SourceFile, api_group, text_at};
use super::{LintError, LintTarget};
use crate::config::flux_minor;

/// A retired API version `--fix` left as it is, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotFixed {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

/// What `--fix` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FixReport {
    /// Files rewritten, relative to the repository.
    pub fixed: Vec<String>,
    pub not_fixed: Vec<NotFixed>,
}

/// Plans the rewrites of the target's scope, checks every file can be written, then writes.
pub fn fix(target: &LintTarget, kustomize: &Kustomize) -> Result<FixReport, LintError> {
    let repo = Repo::load(&target.repo_root)?;
    // An unknown profile fails here, before anything is written.
    let profiles = build::profiles(&repo, target)?;
    let scope: BTreeSet<String> = profiles
        .iter()
        .flat_map(|profile| ProfileTree::build(&repo, kustomize, target, profile).files())
        .collect();
    let clusters = clusters::applying(&repo, kustomize, target);
    let mut report = FixReport::default();
    let mut rewrites = Vec::new();
    for file in scope.iter().filter_map(|path| repo.file(path)) {
        let appliers = Appliers::of(&file.path, &clusters, target);
        if let Some(text) = plan_file(file, &appliers, &mut report.not_fixed) {
            rewrites.push((file.path.clone(), text));
        }
    }
    report.fixed = write_all(&repo.root, &rewrites)?;
    Ok(report)
}

/// The clusters applying one file, for choosing a version and for saying who needs what.
struct Appliers {
    minors: Vec<u32>,
    names: String,
}

impl Appliers {
    fn of(path: &str, clusters: &[Cluster], target: &LintTarget) -> Appliers {
        let applying: Vec<&Cluster> = clusters
            .iter()
            .filter(|cluster| cluster.files.contains(path))
            .collect();
        if applying.is_empty() {
            let version = target.flux_version.clone();
            let minor = version
                .as_deref()
                .and_then(flux_minor)
                .unwrap_or(flux_apis::NEWEST_MINOR);
            let names =
                version.unwrap_or_else(|| format!("v2.{minor}, the newest Flux lint knows"));
            return Appliers {
                minors: vec![minor],
                names: format!("Flux {names}"),
            };
        }
        let mut minors: Vec<u32> = applying
            .iter()
            .flat_map(|cluster| cluster.minors())
            .collect();
        minors.sort_unstable();
        minors.dedup();
        let names = applying
            .iter()
            .map(|cluster| {
                let versions: Vec<&str> = cluster.versions.iter().map(String::as_str).collect();
                format!("{} (Flux {})", cluster.name, versions.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ");
        Appliers { minors, names }
    }
}

/// The file's new text when a document in it changes; what stays is noted in `not_fixed`.
fn plan_file(
    file: &SourceFile,
    appliers: &Appliers,
    not_fixed: &mut Vec<NotFixed>,
) -> Option<String> {
    let mut lines: Vec<String> = file.text.lines().map(str::to_owned).collect();
    let mut changed = false;
    // Last document first, so the line numbers of the ones before stay true.
    for doc in file.docs.iter().rev() {
        let Some(value) = &doc.value else { continue };
        match plan_document(doc, value, appliers) {
            Plan::Keep => {}
            Plan::Rewrite(text) => {
                let start = doc.first_line - 1;
                let end = (start + doc.text.lines().count()).min(lines.len());
                lines.splice(start..end, text.lines().map(str::to_owned));
                changed = true;
            }
            Plan::Refuse(reason) => not_fixed.push(NotFixed {
                file: file.path.clone(),
                line: doc.locate(&file.path, Some("apiVersion:"), None).line,
                reason,
            }),
        }
    }
    changed.then(|| {
        let mut text = lines.join("\n");
        if file.text.ends_with('\n') {
            text.push('\n');
        }
        text
    })
}

enum Plan {
    Keep,
    Rewrite(String),
    Refuse(String),
}

fn plan_document(doc: &Doc, value: &Value, appliers: &Appliers) -> Plan {
    let api_version = text_at(value, &["apiVersion"]);
    let kind = text_at(value, &["kind"]);
    let group = api_group(api_version);
    let current = api_version.rsplit('/').next().unwrap_or_default();
    let Some(versions) = flux_apis::versions(group, kind) else {
        return Plan::Keep;
    };
    let Some(served) = versions.iter().find(|served| served.version == current) else {
        return Plan::Keep;
    };
    let retired = appliers
        .minors
        .iter()
        .any(|&minor| !served.by(minor) || served.deprecated_in(minor));
    if !retired {
        return Plan::Keep;
    }
    let name = text_at(value, &["metadata", "name"]);
    match flux_apis::best_version(group, kind, &appliers.minors) {
        Some(best) if flux_apis::is_newer(group, kind, best, current) => {
            let new = format!("{group}/{best}");
            match convert::rewrite(&doc.text, value, &new) {
                Ok(text) => Plan::Rewrite(text),
                Err(why) => Plan::Refuse(format!("{kind} {name} not rewritten to {new}: {why}")),
            }
        }
        Some(best) if best == current => Plan::Refuse(format!(
            "{kind} {name} stays at {api_version}: the newest version {} all serve",
            appliers.names
        )),
        _ => Plan::Refuse(format!(
            "{kind} {name} stays at {api_version}: {} share no newer version of {kind}; upgrade Flux on the older ones first",
            appliers.names
        )),
    }
}

/// Writes every rewrite after checking each file opens for writing; a write failing after
/// that names the files already written.
fn write_all(root: &Path, rewrites: &[(String, String)]) -> Result<Vec<String>, LintError> {
    for (path, _) in rewrites {
        let full = root.join(path);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&full)
            .map_err(|err| LintError::Write {
                path: full.clone(),
                message: format!("{err}; nothing was rewritten"),
                written: Vec::new(),
            })?;
    }
    let mut written = Vec::new();
    for (path, text) in rewrites {
        let full = root.join(path);
        std::fs::write(&full, text).map_err(|err| LintError::Write {
            path: full.clone(),
            message: err.to_string(),
            written: written.clone(),
        })?;
        written.push(path.clone());
    }
    Ok(written)
}
