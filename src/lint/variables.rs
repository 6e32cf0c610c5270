//! `unresolved-variable`: every `${var}` Flux substitutes in a build is provided by the
//! Kustomization that applies it (`postBuild.substitute`), by the env's `cluster-config` /
//! `cluster-secrets`, or has a default (`${var:=default}`).

use super::build::{Build, ProfileTree};
use super::source::{Repo, text_at};
use super::substitution::references;
use super::{ClusterVariables, Finding, Rule, Severity};

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
            let Some(at) = build.locate(repo, &object.value, None, Some(reference.text)) else {
                continue;
            };
            // A Secret's value is a secret: Terraform's cluster_secrets output carries it.
            let output = if text_at(&object.value, &["kind"]) == "Secret" {
                "cluster_secrets (a secret: never cluster_config)"
            } else {
                "cluster_config (cluster_secrets for a secret value)"
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
                    "give it a default (${{{}:=value}}), set it in postBuild.substitute, or have the env's module output it in {output}",
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
