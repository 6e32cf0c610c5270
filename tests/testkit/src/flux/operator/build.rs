//! What a FluxInstance asks for, as objects: the distribution's install objects for the
//! matched version and components, the sync source and Kustomization, the operator's labels
//! and annotations, and the instance's kustomize patches.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::patches::apply_patches;
use super::types::{ComponentImage, FluxInstance, Sync};
use crate::flux::distribution::{match_version, parse};
use crate::flux::manifest::{FLUX_NAMESPACE, documents, install_objects};

/// The labels by which the operator recognises what it applied.
pub const OWNER_NAME_LABEL: &str = "fluxcd.controlplane.io/name";
pub const OWNER_NAMESPACE_LABEL: &str = "fluxcd.controlplane.io/namespace";
/// `disabled` keeps an object through pruning and uninstallation.
pub const PRUNE_ANNOTATION: &str = "fluxcd.controlplane.io/prune";

/// The components installed when `spec.components` is empty.
const DEFAULT_COMPONENTS: [&str; 4] = [
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
];

/// The objects to apply for one instance and what they are.
#[derive(Debug)]
pub struct Build {
    /// `<version>@sha256:<digest of the objects>`, as the operator records revisions.
    pub revision: String,
    pub objects: Vec<Value>,
    pub images: Vec<ComponentImage>,
}

/// Builds what `instance` asks for; `last_applied` (a revision) refuses a minor downgrade as
/// the operator does. Errors are the message after `build failed: `.
pub fn build(instance: &FluxInstance, last_applied: Option<&str>) -> Result<Build, String> {
    let spec = &instance.spec;
    let version = match_version(&spec.distribution.version)?;
    if let Some(from) = last_applied.and_then(|r| r.split('@').next()) {
        let downgrade = parse(from)
            .zip(parse(version))
            .is_some_and(|(from, to)| (to.0, to.1) < (from.0, from.1));
        if downgrade {
            return Err(format!(
                "downgrading from {from} to {version} is not supported, reinstall needed"
            ));
        }
    }
    let namespace = instance
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| FLUX_NAMESPACE.to_owned());
    let components: Vec<&str> = if spec.components.is_empty() {
        DEFAULT_COMPONENTS.to_vec()
    } else {
        spec.components.iter().map(String::as_str).collect()
    };
    let mut objects = install_objects(version, &components);
    if let Some(sync) = &spec.sync {
        objects.extend(sync_objects(sync, &namespace)?);
    }
    for object in &mut objects {
        label(object, instance, version, &namespace);
    }
    if let Some(kustomize) = &spec.kustomize {
        apply_patches(&mut objects, &kustomize.patches)?;
    }
    let digest = hex(&Sha256::digest(documents(&objects).as_bytes()));
    let images = components
        .iter()
        .map(|name| ComponentImage {
            name: (*name).to_owned(),
            repository: format!("testkit.invalid/fluxcd/{name}"),
            tag: version.to_owned(),
            digest: None,
        })
        .collect();
    Ok(Build {
        revision: format!("{version}@sha256:{digest}"),
        objects,
        images,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sync source and Kustomization, named after the namespace unless `sync.name` says
/// otherwise, as `flux bootstrap` names them.
fn sync_objects(sync: &Sync, namespace: &str) -> Result<Vec<Value>, String> {
    if sync.kind != "GitRepository" {
        return Err(format!(
            "sync kind {} is not supported by the testkit (only GitRepository)",
            sync.kind
        ));
    }
    let name = sync.name.as_deref().unwrap_or(namespace);
    let mut source_spec = json!({
        "interval": sync.interval.as_deref().unwrap_or("1m0s"),
        "ref": {"name": sync.reference},
        "url": sync.url,
    });
    if let Some(secret) = &sync.pull_secret {
        source_spec["secretRef"] = json!({"name": secret});
    }
    if let Some(provider) = &sync.provider {
        source_spec["provider"] = json!(provider);
    }
    Ok(vec![
        json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": name, "namespace": namespace},
            "spec": source_spec,
        }),
        json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "interval": "10m0s",
                "path": sync.path,
                "prune": true,
                "sourceRef": {"kind": sync.kind, "name": name},
            },
        }),
    ])
}

/// The operator's labels and annotations on every object it applies (and the instance's
/// common metadata); namespaced objects move into the instance's namespace.
fn label(object: &mut Value, instance: &FluxInstance, version: &str, namespace: &str) {
    let kind = object["kind"].as_str().unwrap_or_default().to_owned();
    let meta = &mut object["metadata"];
    let cluster_scoped = matches!(
        kind.as_str(),
        "CustomResourceDefinition" | "Namespace" | "ClusterRole" | "ClusterRoleBinding"
    );
    if !cluster_scoped {
        meta["namespace"] = json!(namespace);
    }
    let mut labels = json!({
        "app.kubernetes.io/managed-by": "flux-operator",
        "app.kubernetes.io/instance": namespace,
        "app.kubernetes.io/version": version,
        "app.kubernetes.io/part-of": "flux",
        OWNER_NAME_LABEL: instance.metadata.name.as_deref().unwrap_or_default(),
        OWNER_NAMESPACE_LABEL: namespace,
    });
    let mut annotations = json!({"kustomize.toolkit.fluxcd.io/ssa": "Ignore"});
    if kind == "Namespace" {
        annotations[PRUNE_ANNOTATION] = json!("disabled");
    }
    if let Some(common) = &instance.spec.common_metadata {
        for (k, v) in &common.labels {
            labels[k] = json!(v);
        }
        for (k, v) in &common.annotations {
            annotations[k] = json!(v);
        }
    }
    merge_into(&mut meta["labels"], labels);
    merge_into(&mut meta["annotations"], annotations);
}

fn merge_into(target: &mut Value, entries: Value) {
    if !target.is_object() {
        *target = json!({});
    }
    if let (Some(target), Value::Object(entries)) = (target.as_object_mut(), entries) {
        target.extend(entries);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flux::operator::types::{Distribution, FluxInstanceSpec};

    fn instance(version: &str) -> FluxInstance {
        let mut instance = FluxInstance::new(
            "flux",
            FluxInstanceSpec {
                distribution: Distribution {
                    version: version.into(),
                    registry: "ghcr.io/fluxcd".into(),
                    ..Distribution::default()
                },
                components: vec!["source-controller".into(), "kustomize-controller".into()],
                sync: Some(Sync {
                    kind: "GitRepository".into(),
                    url: "https://git.example.test/fleet.git".into(),
                    reference: "refs/heads/main".into(),
                    path: "clusters/dev".into(),
                    pull_secret: Some("flux-system".into()),
                    ..Sync::default()
                }),
                ..FluxInstanceSpec::default()
            },
        );
        instance.metadata.namespace = Some("flux-system".into());
        instance
    }

    #[test]
    fn builds_components_and_sync_named_after_the_namespace() {
        let build = build(&instance("2.4.x"), None).unwrap();
        assert!(build.revision.starts_with("v2.4.0@sha256:"));
        let names: Vec<String> = build
            .objects
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect();
        assert!(names.contains(&"Deployment/kustomize-controller".to_owned()));
        assert!(!names.contains(&"Deployment/helm-controller".to_owned()));
        assert!(!names.iter().any(|n| n.contains("helmreleases")));
        let sync = build
            .objects
            .iter()
            .find(|o| o["kind"] == "GitRepository")
            .unwrap();
        assert_eq!(sync["metadata"]["name"], "flux-system");
        assert_eq!(sync["spec"]["ref"]["name"], "refs/heads/main");
        assert_eq!(sync["spec"]["secretRef"]["name"], "flux-system");
        assert_eq!(sync["metadata"]["labels"][OWNER_NAME_LABEL], "flux");
        let ks = build
            .objects
            .iter()
            .find(|o| o["kind"] == "Kustomization")
            .unwrap();
        assert_eq!(ks["spec"]["sourceRef"]["name"], "flux-system");
    }

    #[test]
    fn unknown_versions_and_downgrades_fail_the_build() {
        assert_eq!(
            build(&instance("2.99.x"), None).unwrap_err(),
            "no match found for semver: 2.99.x"
        );
        assert_eq!(
            build(&instance("2.4.x"), Some("v2.6.4@sha256:00")).unwrap_err(),
            "downgrading from v2.6.4 to v2.4.0 is not supported, reinstall needed"
        );
    }
}
