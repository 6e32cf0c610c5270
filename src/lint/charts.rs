//! `missing-chart-source`: every HelmRelease's chart source (`spec.chart.spec.sourceRef` or
//! `spec.chartRef`) is in the profile's builds or is the cluster's own GitRepository
//! `flux-system`. `unpinned-chart` (a warning): chart versions are exact, not ranges.

use regex::Regex;
use serde_yaml_ng::Value;

use super::build::{Build, ProfileTree};
use super::source::{Repo, text_at};
use super::{Finding, Rule};

const FLUX_NAMESPACE: &str = "flux-system";

pub fn check(repo: &Repo, tree: &ProfileTree) -> Vec<Finding> {
    let objects: Vec<(&Build, &Value)> = tree
        .builds
        .iter()
        .flat_map(|build| {
            build
                .objects
                .iter()
                .map(move |object| (build, &object.value))
        })
        .collect();
    let exists = |kind: &str, namespace: &str, name: &str| {
        (kind == "GitRepository" && namespace == FLUX_NAMESPACE && name == FLUX_NAMESPACE)
            || objects.iter().any(|(_, object)| {
                text_at(object, &["kind"]) == kind
                    && text_at(object, &["metadata", "namespace"]) == namespace
                    && text_at(object, &["metadata", "name"]) == name
            })
    };
    let exact = Regex::new(r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$").expect("static regex");
    let mut findings = Vec::new();
    for (build, release) in objects
        .iter()
        .filter(|(_, object)| text_at(object, &["kind"]) == "HelmRelease")
    {
        let release_namespace = text_at(release, &["metadata", "namespace"]);
        let release_name = text_at(release, &["metadata", "name"]);
        let chart_ref = &release["spec"]["chartRef"];
        let (source, anchor) = if chart_ref.is_mapping() {
            (chart_ref, "chartRef:")
        } else {
            (&release["spec"]["chart"]["spec"]["sourceRef"], "sourceRef:")
        };
        let kind = text_at(source, &["kind"]);
        let name = text_at(source, &["name"]);
        let namespace = match text_at(source, &["namespace"]) {
            "" => release_namespace,
            other => other,
        };
        if !exists(kind, namespace, name)
            && let Some(at) =
                build.locate(repo, release, Some(anchor), Some(&format!("name: {name}")))
        {
            findings.push(Finding::new(
                at,
                Rule::MissingChartSource,
                format!(
                    "HelmRelease {release_namespace}/{release_name} takes its chart from {kind} {namespace}/{name}, which this profile does not create"
                ),
                format!("add the {kind} {name} in namespace {namespace} to the app, or fix the sourceRef"),
            ));
        }
        if chart_ref.is_mapping() || kind != "HelmRepository" {
            continue;
        }
        findings.extend(unpinned(repo, build, release, &exact));
    }
    findings
}

/// `unpinned-chart` for a HelmRelease whose HelmRepository chart version is not `exact`.
fn unpinned(repo: &Repo, build: &Build, release: &Value, exact: &Regex) -> Option<Finding> {
    let version = text_at(release, &["spec", "chart", "spec", "version"]);
    if exact.is_match(version) {
        return None;
    }
    let (needle, what) = if version.is_empty() {
        (
            "chart:",
            "has no version (Flux takes the newest)".to_owned(),
        )
    } else {
        ("version:", format!("asks for the range {version}"))
    };
    let at = build.locate(repo, release, Some("spec:"), Some(needle))?;
    Some(Finding::new(
        at,
        Rule::UnpinnedChart,
        format!(
            "HelmRelease {}/{}: chart {} {what}, so a rebuild may install another version",
            text_at(release, &["metadata", "namespace"]),
            text_at(release, &["metadata", "name"]),
            text_at(release, &["spec", "chart", "spec", "chart"])
        ),
        "pin an exact chart version (e.g. 1.2.3)",
    ))
}
