//! What collides with the objects create-env commits and writes: `profile-applied-twice` (a
//! user's content in `clusters/<env>/` applying the profile the tool's `profile` Kustomization
//! already applies, so its objects land in two inventories) and `bootstrap-name` (an object
//! of the repository named like one of the tool's: `cluster-config`, `cluster-secrets`, the
//! sync `GitRepository`/`Kustomization` `flux-system` and the `profile` Kustomization).

use serde_yaml_ng::Value;

use super::build::{ProfileTree, join, normalize};
use super::source::{Repo, api_group, text_at};
use super::{Finding, LintTarget, Rule};

const FLUX_NAMESPACE: &str = "flux-system";
/// The entries of `clusters/<env>/` the tool renders (`render::kept` keeps the rest).
const TOOL_ENTRIES: [&str; 4] = [
    "flux-system/",
    "profile.yaml",
    "kustomization.yaml",
    ".sops.yaml",
];

/// One of the objects create-env owns in `flux-system`: its kind and name, what it is, and
/// what a user's object of that name should become.
struct Reserved {
    kind: &'static str,
    name: String,
    what: &'static str,
    fix: &'static str,
}

/// The objects create-env owns in `flux-system`.
fn reserved(target: &LintTarget) -> Vec<Reserved> {
    let sync = "rename it: create-env commits its own in clusters/<env>/flux-system/";
    vec![
        Reserved {
            kind: "ConfigMap",
            name: target.substitution.config_map.clone(),
            what: "the ConfigMap create-env writes the env's cluster_config into",
            fix: "rename it (pointing any substituteFrom meant for it at the new name), or have \
                  the env's module output its keys in cluster_config, which create-env writes into \
                  this ConfigMap",
        },
        Reserved {
            kind: "Secret",
            name: target.substitution.secret.clone(),
            what: "the Secret create-env writes the env's cluster_secrets into",
            fix: "rename it (pointing any substituteFrom meant for it at the new name), or have \
                  the env's module output its keys in cluster_secrets, which create-env writes into \
                  this Secret",
        },
        Reserved {
            kind: "GitRepository",
            name: FLUX_NAMESPACE.to_owned(),
            what: "the sync source create-env commits in clusters/<env>/flux-system/",
            fix: sync,
        },
        Reserved {
            kind: "Kustomization",
            name: FLUX_NAMESPACE.to_owned(),
            what: "the sync Kustomization create-env commits in clusters/<env>/flux-system/",
            fix: sync,
        },
        Reserved {
            kind: "Kustomization",
            name: "profile".to_owned(),
            what: "the Kustomization create-env commits to apply the env's profile",
            fix: "rename it, or leave the env's profile to create-env's clusters/<env>/profile.yaml \
                  and remove this one",
        },
    ]
}

fn reserved_name(target: &LintTarget, object: &Value) -> Option<Reserved> {
    let kind = text_at(object, &["kind"]);
    let name = text_at(object, &["metadata", "name"]);
    let flux_kind = kind == "Kustomization" || kind == "GitRepository";
    let group_ok =
        !flux_kind || api_group(text_at(object, &["apiVersion"])).ends_with("toolkit.fluxcd.io");
    if !group_ok || text_at(object, &["metadata", "namespace"]) != FLUX_NAMESPACE {
        return None;
    }
    reserved(target)
        .into_iter()
        .find(|reserved| reserved.kind == kind && reserved.name == name)
}

fn bootstrap_name(at: super::source::Location, object: &Value, reserved: &Reserved) -> Finding {
    Finding::new(
        at,
        Rule::BootstrapName,
        format!(
            "{} {FLUX_NAMESPACE}/{} has the name of {}: the two would be merged into one object",
            text_at(object, &["kind"]),
            text_at(object, &["metadata", "name"]),
            reserved.what
        ),
        reserved.fix,
    )
}

/// `bootstrap-name` for the objects a profile's builds hold.
pub fn in_tree(repo: &Repo, tree: &ProfileTree, target: &LintTarget) -> Vec<Finding> {
    let mut findings = Vec::new();
    for build in &tree.builds {
        for object in &build.objects {
            let Some(reserved) = reserved_name(target, &object.value) else {
                continue;
            };
            if let Some(at) = build.locate(repo, &object.value, Some("name:"), None) {
                findings.push(bootstrap_name(at, &object.value, &reserved));
            }
        }
    }
    findings
}

/// Both rules over the user's content of every env directory the tool manages: a configured
/// env's, or one holding the tool's `profile.yaml`.
pub fn in_clusters(repo: &Repo, target: &LintTarget) -> Vec<Finding> {
    let parent = join(&target.path_prefix, "clusters");
    let mut findings = Vec::new();
    for entry in std::fs::read_dir(repo.root.join(&parent))
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let dir = join(&parent, &name);
        let Some(profile) = tool_profile(repo, target, &name, &dir) else {
            continue;
        };
        let user_files = repo.files.iter().filter(|file| {
            file.path
                .strip_prefix(&format!("{dir}/"))
                .is_some_and(|rest| {
                    !TOOL_ENTRIES.iter().any(|tool| {
                        rest == *tool || (tool.ends_with('/') && rest.starts_with(tool))
                    })
                })
        });
        for file in user_files {
            let file_dir = file.path.rsplit_once('/').map_or("", |(dir, _)| dir);
            for doc in &file.docs {
                let Some(value) = &doc.value else { continue };
                if let Some(reserved) = reserved_name(target, value) {
                    findings.push(bootstrap_name(
                        doc.locate(&file.path, Some("name:"), None),
                        value,
                        &reserved,
                    ));
                }
                if let Some(needle) = applies(value, file_dir, &profile) {
                    findings.push(Finding::new(
                        doc.locate(&file.path, None, Some(&needle)),
                        Rule::ProfileAppliedTwice,
                        format!(
                            "{} applies {profile}, which the tool's Kustomization flux-system/profile applies too: its objects would be in two inventories",
                            file.path
                        ),
                        format!("remove {needle} here; create-env applies the profile of env {name}"),
                    ));
                }
            }
        }
    }
    findings
}

/// The profile directory the tool applies in `clusters/<name>`: the configured env's, else the
/// path of the committed `profile.yaml`.
fn tool_profile(repo: &Repo, target: &LintTarget, name: &str, dir: &str) -> Option<String> {
    if let Some(env) = target
        .clusters
        .iter()
        .find(|env| env.name == name && env.path_prefix == target.path_prefix)
    {
        return Some(join(
            &join(&env.path_prefix, &env.profiles_dir),
            &env.profile,
        ));
    }
    let file = repo.file(&join(dir, "profile.yaml"))?;
    let value = file.docs.first()?.value.as_ref()?;
    let path = text_at(value, &["spec", "path"]);
    (!path.is_empty() && !path.contains("${")).then(|| normalize(path))
}

/// The entry of `value` (a Flux Kustomization's `spec.path`, a kustomization's resource)
/// that applies `profile`, as written.
fn applies(value: &Value, file_dir: &str, profile: &str) -> Option<String> {
    let kind = text_at(value, &["kind"]);
    let group = api_group(text_at(value, &["apiVersion"]));
    if kind == "Kustomization" && group == "kustomize.toolkit.fluxcd.io" {
        let path = text_at(value, &["spec", "path"]);
        return (normalize(path) == profile).then(|| path.to_owned());
    }
    if kind == "Kustomization" || kind.is_empty() {
        for key in ["resources", "bases", "components"] {
            let found = value[key]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .find(|entry| normalize(&join(file_dir, entry)) == profile);
            if let Some(entry) = found {
                return Some(entry.to_owned());
            }
        }
    }
    None
}
