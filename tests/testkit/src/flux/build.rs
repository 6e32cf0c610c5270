//! kustomize-controller's build: copy the source artifact, generate a kustomization.yaml where
//! the path has none (as Flux does), add `spec.components` to it, run the real
//! `kubectl kustomize`, decrypt SOPS-encrypted objects (decrypt.rs) and substitute variables
//! object by object.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kube::api::DynamicObject;
use tempfile::TempDir;
use tokio::process::Command;

use super::decrypt::{self, AgeIdentities};
use super::objects::parse_documents;
use super::substitution::substitute;
use super::types::KustomizePatch;

const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
const SUBSTITUTE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/substitute";

/// A failed step, with the reason Flux gives it.
#[derive(Debug)]
pub struct Failure {
    pub reason: &'static str,
    pub message: String,
}

pub fn failure(reason: &'static str, message: impl Into<String>) -> Failure {
    Failure {
        reason,
        message: message.into(),
    }
}

/// Builds `path` of the artifact at `source_dir` with `components` (paths relative to `path`)
/// and `patches` into objects, decrypting SOPS-encrypted ones with `identities`
/// (`spec.decryption`) and substituting `vars` if given.
pub async fn build(
    source_dir: &Path,
    path: &str,
    components: &[String],
    patches: &[KustomizePatch],
    vars: Option<&BTreeMap<String, String>>,
    identities: Option<&AgeIdentities>,
) -> Result<Vec<DynamicObject>, Failure> {
    let workdir = TempDir::new().map_err(|e| failure("ArtifactFailed", e.to_string()))?;
    let source = source_dir.to_owned();
    let target = workdir.path().to_owned();
    tokio::task::spawn_blocking(move || copy_tree(&source, &target))
        .await
        .map_err(|e| failure("ArtifactFailed", e.to_string()))?
        .map_err(|e| failure("ArtifactFailed", format!("cannot copy artifact: {e}")))?;
    let relative = path.trim_start_matches("./").trim_start_matches('/');
    if Path::new(relative)
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(failure(
            "ArtifactFailed",
            format!("kustomization path '{path}' escapes the artifact"),
        ));
    }
    let dir = workdir.path().join(relative);
    if !dir.is_dir() {
        return Err(failure(
            "ArtifactFailed",
            format!("kustomization path not found: stat {path}: no such file or directory"),
        ));
    }
    if !has_kustomization(&dir) {
        generate_kustomization(&dir).map_err(|e| {
            failure(
                "BuildFailed",
                format!("failed to generate kustomization.yaml: {e}"),
            )
        })?;
    }
    if !components.is_empty() || !patches.is_empty() {
        add_to_kustomization(&dir, components, patches).map_err(|e| {
            failure(
                "BuildFailed",
                format!("failed to add spec.components and spec.patches to the kustomization: {e}"),
            )
        })?;
    }
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(&dir)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| failure("BuildFailed", format!("cannot run kubectl kustomize: {e}")))?;
    if !output.status.success() {
        return Err(failure(
            "BuildFailed",
            format!(
                "kustomize build failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        ));
    }
    let objects = parse_documents(&String::from_utf8_lossy(&output.stdout))
        .map_err(|e| failure("BuildFailed", format!("{e:#}")))?;
    let mut built = Vec::with_capacity(objects.len());
    for object in objects {
        let object = match identities {
            Some(identities) if decrypt::is_encrypted(&object) => {
                decrypt::decrypt(&object, identities).await?
            }
            _ => object,
        };
        built.push(post_build(object, vars)?);
    }
    Ok(built)
}

/// Substitutes `vars` into `object`; an object still SOPS-encrypted here had no
/// `spec.decryption` and fails as Flux's apply does.
fn post_build(
    object: DynamicObject,
    vars: Option<&BTreeMap<String, String>>,
) -> Result<DynamicObject, Failure> {
    let what = || {
        let kind = object
            .types
            .as_ref()
            .map(|t| t.kind.clone())
            .unwrap_or_default();
        format!(
            "{kind}/{}",
            object.metadata.name.as_deref().unwrap_or_default()
        )
    };
    if decrypt::is_encrypted(&object) {
        let namespace = object.metadata.namespace.as_deref().unwrap_or_default();
        let (kind, name) = what()
            .split_once('/')
            .map(|(k, n)| (k.to_owned(), n.to_owned()))
            .unwrap_or_default();
        return Err(failure(
            "ReconciliationFailed",
            format!(
                "{kind}/{namespace}/{name} is SOPS encrypted, configuring decryption is required for this secret to be reconciled"
            ),
        ));
    }
    let disabled = object
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SUBSTITUTE_ANNOTATION))
        .is_some_and(|v| v == "disabled");
    let Some(vars) = vars.filter(|_| !disabled) else {
        return Ok(object);
    };
    let yaml =
        serde_yaml_ng::to_string(&object).map_err(|e| failure("BuildFailed", e.to_string()))?;
    let substituted = substitute(&yaml, vars).map_err(|e| {
        failure(
            "BuildFailed",
            format!("post build failed for '{}': {e}", what()),
        )
    })?;
    serde_yaml_ng::from_str(&substituted).map_err(|e| {
        failure(
            "BuildFailed",
            format!("post build failed for '{}': {e}", what()),
        )
    })
}

fn has_kustomization(dir: &Path) -> bool {
    KUSTOMIZATION_FILES.iter().any(|f| dir.join(f).is_file())
}

/// Appends `components` and `patches` to those lists of the kustomization in `dir`, as Flux
/// does.
fn add_to_kustomization(
    dir: &Path,
    components: &[String],
    patches: &[KustomizePatch],
) -> anyhow::Result<()> {
    let file = KUSTOMIZATION_FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|f| f.is_file())
        .ok_or_else(|| anyhow::anyhow!("no kustomization file in {}", dir.display()))?;
    let mut kustomization: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&file)?)?;
    let serde_yaml_ng::Value::Mapping(fields) = &mut kustomization else {
        anyhow::bail!("{} is not a YAML mapping", file.display());
    };
    let additions = [
        (
            "components",
            components.iter().map(|c| c.as_str().into()).collect(),
        ),
        (
            "patches",
            patches
                .iter()
                .map(serde_yaml_ng::to_value)
                .collect::<Result<_, _>>()?,
        ),
    ];
    for (key, added) in additions {
        let added: Vec<serde_yaml_ng::Value> = added;
        if added.is_empty() {
            continue;
        }
        let listed = fields
            .entry(key.into())
            .or_insert_with(|| serde_yaml_ng::Value::Sequence(Vec::new()));
        let serde_yaml_ng::Value::Sequence(listed) = listed else {
            anyhow::bail!("{key} in {} is not a list", file.display());
        };
        listed.extend(added);
    }
    std::fs::write(&file, serde_yaml_ng::to_string(&kustomization)?)?;
    Ok(())
}

/// Lists the manifests under `dir` like Flux's generator: YAML files holding Kubernetes
/// objects, and subdirectories with their own kustomization as one entry each.
fn generate_kustomization(dir: &Path) -> std::io::Result<()> {
    let mut resources = Vec::new();
    collect_resources(dir, dir, &mut resources)?;
    resources.sort();
    let mut text = String::from(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n",
    );
    for resource in &resources {
        text.push_str(&format!("- {resource}\n"));
    }
    if resources.is_empty() {
        text = text.replace("resources:\n", "resources: []\n");
    }
    std::fs::write(dir.join("kustomization.yaml"), text)
}

fn collect_resources(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        if path.is_dir() {
            if has_kustomization(&path) {
                out.push(relative);
            } else {
                collect_resources(root, &path, out)?;
            }
        } else if is_manifest(&path) {
            out.push(relative);
        }
    }
    Ok(())
}

fn is_manifest(path: &Path) -> bool {
    let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
    yaml && std::fs::read_to_string(path)
        .is_ok_and(|text| text.contains("apiVersion:") && text.contains("kind:"))
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".git" {
            continue;
        }
        let (source, target): (PathBuf, PathBuf) = (entry.path(), to.join(&name));
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_tree(&source, &target)?;
        } else {
            std::fs::copy(&source, &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(objects: &[DynamicObject]) -> Vec<String> {
        objects
            .iter()
            .map(|o| o.metadata.name.clone().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn builds_a_plain_directory_with_substitution() {
        let repo = TempDir::new().unwrap();
        let apps = repo.path().join("apps");
        std::fs::create_dir_all(apps.join("nested")).unwrap();
        std::fs::write(apps.join("cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${cluster_name}\ndata:\n  region: ${region:=eu}\n").unwrap();
        std::fs::write(
            apps.join("nested/ns.yml"),
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n",
        )
        .unwrap();
        std::fs::write(apps.join("notes.yaml"), "just: data\n").unwrap();
        let vars: BTreeMap<String, String> = [("cluster_name".to_owned(), "dev".to_owned())].into();
        let objects = build(repo.path(), "./apps", &[], &[], Some(&vars), None)
            .await
            .unwrap();
        let names = names(&objects);
        assert!(names.contains(&"cm-dev".to_owned()), "{names:?}");
        assert!(names.contains(&"team".to_owned()), "{names:?}");
        let cm = objects
            .iter()
            .find(|o| o.metadata.name.as_deref() == Some("cm-dev"))
            .unwrap();
        assert_eq!(cm.data["data"]["region"], "eu");
        assert!(
            !repo.path().join("apps/kustomization.yaml").exists(),
            "the artifact itself is never modified"
        );
        let missing = build(repo.path(), "./nope", &[], &[], None, None)
            .await
            .unwrap_err();
        assert_eq!(missing.reason, "ArtifactFailed");
    }

    #[tokio::test]
    async fn spec_components_are_added_relative_to_the_path() {
        let repo = TempDir::new().unwrap();
        let write = |path: &str, text: &str| {
            let path = repo.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "clusters/_profiles/home/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [ns.yaml]\n",
        );
        write(
            "clusters/_profiles/home/ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: home\n",
        );
        write(
            "platform/_base/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [cm.yaml]\n",
        );
        write(
            "platform/_base/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: base\n  namespace: home\n",
        );
        let components = ["../../../platform/_base".to_owned()];
        let objects = build(
            repo.path(),
            "./clusters/_profiles/home",
            &components,
            &[],
            None,
            None,
        )
        .await
        .unwrap();
        assert_eq!(names(&objects), ["home", "base"]);
        // Without a kustomization file, the generated one gets the components too.
        write(
            "apps/plain/ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: home\n",
        );
        let components = ["../../platform/_base".to_owned()];
        let objects = build(repo.path(), "apps/plain", &components, &[], None, None)
            .await
            .unwrap();
        assert_eq!(objects.len(), 2);
        let missing = ["../nowhere".to_owned()];
        let failed = build(repo.path(), "apps/plain", &missing, &[], None, None)
            .await
            .unwrap_err();
        assert_eq!(failed.reason, "BuildFailed", "{}", failed.message);
    }

    #[tokio::test]
    async fn spec_patches_are_added_to_the_kustomization() {
        let repo = tempfile::tempdir().unwrap();
        let dir = repo.path().join("apps");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("cm.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: apps\ndata:\n  replicas: \"1\"\n",
        )
        .unwrap();
        let patches = [
            KustomizePatch {
                patch: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: apps\ndata:\n  replicas: \"2\"\n".to_owned(),
                target: None,
            },
            KustomizePatch {
                patch: "- op: add\n  path: /data/zone\n  value: b\n".to_owned(),
                target: Some(super::super::types::PatchSelector {
                    kind: Some("ConfigMap".to_owned()),
                    name: Some("settings".to_owned()),
                    ..Default::default()
                }),
            },
        ];
        let objects = build(repo.path(), "./apps", &[], &patches, None, None)
            .await
            .unwrap();
        assert_eq!(
            objects[0].data["data"],
            serde_json::json!({"replicas": "2", "zone": "b"})
        );
    }
}
