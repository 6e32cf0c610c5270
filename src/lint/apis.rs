//! `flux-api-removed` / `flux-api-deprecated`: every Flux object uses an API version the
//! env's Flux serves (`flux_apis` holds what each release serves); `lint --fix` (`fix.rs`)
//! rewrites the others.

use super::flux_apis::{self, NEWEST_MINOR};
use super::source::{Repo, api_group, text_at};
use super::{Finding, Rule};
use crate::config::flux_minor;

pub fn check(repo: &Repo, flux_version: Option<&str>) -> Vec<Finding> {
    let minor = flux_version.and_then(flux_minor).unwrap_or(NEWEST_MINOR);
    let shown = match flux_version {
        Some(version) => format!("Flux {version}"),
        None => format!("Flux 2.{NEWEST_MINOR} (the newest lint knows)"),
    };
    let mut findings = Vec::new();
    for (file, doc, value) in repo.documents() {
        let api_version = text_at(value, &["apiVersion"]);
        let kind = text_at(value, &["kind"]);
        let group = api_group(api_version);
        let current = api_version.rsplit('/').next().unwrap_or_default();
        let Some(served) = flux_apis::versions(group, kind)
            .and_then(|versions| versions.iter().find(|served| served.version == current))
        else {
            continue;
        };
        let (rule, state) = if !served.by(minor) {
            (Rule::FluxApiRemoved, "does not serve")
        } else if served.deprecated_in(minor) {
            (Rule::FluxApiDeprecated, "deprecates")
        } else {
            continue;
        };
        let fix = match flux_apis::best_version(group, kind, &[minor]) {
            Some(best) if flux_apis::is_newer(group, kind, best, current) => {
                format!("use {group}/{best} (`gitops-bootstrap lint --fix` rewrites it)")
            }
            Some(best) => format!("use {group}/{best}, the newest {kind} version {shown} serves"),
            None => format!("upgrade Flux: {shown} serves no {kind}"),
        };
        findings.push(Finding::new(
            doc.locate(&file.path, Some("apiVersion:"), Some(api_version)),
            rule,
            format!(
                "{kind} {} uses {api_version}, which {shown} {state}",
                text_at(value, &["metadata", "name"])
            ),
            fix,
        ));
    }
    findings
}
