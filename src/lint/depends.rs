//! Across everything a profile makes Flux apply: `dangling-depends-on` (a `dependsOn` naming a
//! Kustomization or HelmRelease that no build holds) and `duplicate-object` (one object in two
//! builds, which two Kustomizations would fight over).

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use super::build::{Build, ProfileTree};
use super::source::{Repo, api_group, text_at};
use super::{Finding, Rule};

/// (API group, kind, namespace, name).
type Key = (String, String, String, String);

fn key(object: &Value) -> Key {
    (
        api_group(text_at(object, &["apiVersion"])).to_owned(),
        text_at(object, &["kind"]).to_owned(),
        text_at(object, &["metadata", "namespace"]).to_owned(),
        text_at(object, &["metadata", "name"]).to_owned(),
    )
}

fn objects(tree: &ProfileTree) -> impl Iterator<Item = (&Build, &Value)> {
    tree.builds.iter().flat_map(|build| {
        build
            .objects
            .iter()
            .map(move |object| (build, &object.value))
    })
}

/// Flux objects that can wait on others of their kind.
const DEPENDENT_KINDS: [(&str, &str); 2] = [
    ("kustomize.toolkit.fluxcd.io", "Kustomization"),
    ("helm.toolkit.fluxcd.io", "HelmRelease"),
];

pub fn check(repo: &Repo, tree: &ProfileTree) -> Vec<Finding> {
    let present: Vec<Key> = objects(tree).map(|(_, object)| key(object)).collect();
    let mut findings = Vec::new();
    for (build, object) in objects(tree) {
        let (group, kind, namespace, name) = key(object);
        if !DEPENDENT_KINDS.contains(&(group.as_str(), kind.as_str())) {
            continue;
        }
        for dependency in object["spec"]["dependsOn"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let needed = text_at(dependency, &["name"]);
            let needed_namespace = match text_at(dependency, &["namespace"]) {
                "" => namespace.as_str(),
                other => other,
            };
            let wanted = (
                group.clone(),
                kind.clone(),
                needed_namespace.to_owned(),
                needed.to_owned(),
            );
            if present.contains(&wanted) {
                continue;
            }
            let needle = format!("name: {needed}");
            let Some(at) = build.locate(repo, object, Some("dependsOn:"), Some(&needle)) else {
                continue;
            };
            findings.push(Finding::new(
                at,
                Rule::DanglingDependsOn,
                format!(
                    "{kind} {} depends on {kind} {}, which this profile does not create: it would wait forever",
                    qualified(&namespace, &name),
                    qualified(needed_namespace, needed)
                ),
                format!("add the {kind} {needed} to the profile, or remove it from dependsOn"),
            ));
        }
    }
    findings
}

pub fn duplicates(repo: &Repo, tree: &ProfileTree) -> Vec<Finding> {
    let mut first_seen: BTreeMap<Key, &str> = BTreeMap::new();
    let mut findings = Vec::new();
    for (build, object) in objects(tree) {
        let dir = build.dir.as_str();
        let key = key(object);
        let Some(first) = first_seen.get(&key).copied() else {
            first_seen.insert(key, dir);
            continue;
        };
        if first == dir {
            continue;
        }
        let (_, kind, namespace, name) = key;
        let Some(at) = later_declaration(repo, object, dir) else {
            continue;
        };
        findings.push(Finding::new(
            at,
            Rule::DuplicateObject,
            format!(
                "{kind} {} is applied by the builds of both {first} and {dir}: their Kustomizations would fight over it",
                qualified(&namespace, &name)
            ),
            "keep the object in one build only",
        ));
    }
    findings
}

/// The declaration of a duplicated object inside `dir`, else the first one.
fn later_declaration(repo: &Repo, object: &Value, dir: &str) -> Option<super::source::Location> {
    let (_, kind, namespace, name) = key(object);
    repo.documents()
        .find(|(file, _, value)| {
            file.path.starts_with(&format!("{dir}/"))
                && text_at(value, &["kind"]) == kind
                && text_at(value, &["metadata", "name"]) == name
                && text_at(value, &["metadata", "namespace"]) == namespace
        })
        .map(|(file, doc, _)| doc.locate(&file.path, None, None))
        .or_else(|| repo.locate(object, None, None))
}

/// `namespace/name`, or `name` for cluster-scoped objects.
fn qualified(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}/{name}")
    }
}
