//! `spec.kustomize.patches` as kustomize applies them: each patch, strategic merge (a YAML
//! object) or JSON6902 (a YAML list of operations), changes every object its `target` selects
//! (kind, group, version, name and namespace as anchored regular expressions, label and
//! annotation selectors), or for a strategic merge patch without target the object it names.

use regex::Regex;
use serde_json::Value;

use super::types::{KustomizePatch, PatchSelector};
use crate::apiserver::patch::strategic_merge;

/// Applies `patches` in order to `objects`; the error says which patch failed and why.
pub fn apply_patches(objects: &mut [Value], patches: &[KustomizePatch]) -> Result<(), String> {
    for (index, patch) in patches.iter().enumerate() {
        apply_one(objects, patch).map_err(|e| format!("patch #{index}: {e}"))?;
    }
    Ok(())
}

fn apply_one(objects: &mut [Value], patch: &KustomizePatch) -> Result<(), String> {
    let body: Value = serde_yaml_ng::from_str(&patch.patch)
        .map_err(|e| format!("unable to parse the patch: {e}"))?;
    let selector = match (&patch.target, &body) {
        (Some(target), _) => target.clone(),
        (None, Value::Object(_)) => selector_of(&body),
        (None, _) => return Err("missing target for JSON6902 patch".to_owned()),
    };
    let matcher = Matcher::new(&selector)?;
    match body {
        Value::Array(_) => {
            let operations: json_patch::Patch =
                serde_json::from_value(body).map_err(|e| format!("invalid JSON6902 patch: {e}"))?;
            for object in objects.iter_mut().filter(|o| matcher.matches(o)) {
                json_patch::patch(object, &operations).map_err(|e| {
                    format!(
                        "unable to apply JSON6902 patch to {}: {e}",
                        describe(object)
                    )
                })?;
            }
        }
        Value::Object(mut map) => {
            // The target's identity wins over whatever the patch names, as in kustomize.
            map.remove("apiVersion");
            map.remove("kind");
            if let Some(Value::Object(meta)) = map.get_mut("metadata") {
                meta.remove("name");
                meta.remove("namespace");
            }
            let merge = Value::Object(map);
            for object in objects.iter_mut().filter(|o| matcher.matches(o)) {
                strategic_merge(object, &merge);
            }
        }
        _ => return Err("a patch must be a YAML object or a list of operations".to_owned()),
    }
    Ok(())
}

/// The object a strategic merge patch without target names.
fn selector_of(patch: &Value) -> PatchSelector {
    let (group, version) = match patch["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .rsplit_once('/')
    {
        Some((group, version)) => (Some(group), Some(version)),
        None => (None, patch["apiVersion"].as_str()),
    };
    let text = |v: &Value| v.as_str().map(regex::escape);
    PatchSelector {
        group: group.map(str::to_owned),
        version: version.map(str::to_owned),
        kind: patch["kind"].as_str().map(str::to_owned),
        name: text(&patch["metadata"]["name"]),
        ..PatchSelector::default()
    }
}

fn describe(object: &Value) -> String {
    format!(
        "{}/{}",
        object["kind"].as_str().unwrap_or_default(),
        object["metadata"]["name"].as_str().unwrap_or_default()
    )
}

struct Matcher {
    group: Option<String>,
    version: Option<String>,
    kind: Option<String>,
    name: Option<Regex>,
    namespace: Option<Regex>,
    labels: Vec<(String, Option<String>)>,
    annotations: Vec<(String, Option<String>)>,
}

impl Matcher {
    fn new(selector: &PatchSelector) -> Result<Matcher, String> {
        let anchored = |pattern: &Option<String>| {
            pattern
                .as_deref()
                .map(|p| {
                    Regex::new(&format!("^(?:{p})$"))
                        .map_err(|e| format!("invalid target regex {p:?}: {e}"))
                })
                .transpose()
        };
        Ok(Matcher {
            group: selector.group.clone(),
            version: selector.version.clone(),
            kind: selector.kind.clone(),
            name: anchored(&selector.name)?,
            namespace: anchored(&selector.namespace)?,
            labels: equality_selector(selector.label_selector.as_deref()),
            annotations: equality_selector(selector.annotation_selector.as_deref()),
        })
    }

    fn matches(&self, object: &Value) -> bool {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let meta = &object["metadata"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        self.group.as_deref().is_none_or(|g| g == group)
            && self.version.as_deref().is_none_or(|v| v == version)
            && self.kind.as_deref().is_none_or(|k| object["kind"] == k)
            && self
                .name
                .as_ref()
                .is_none_or(|r| r.is_match(&text(&meta["name"])))
            && self
                .namespace
                .as_ref()
                .is_none_or(|r| r.is_match(&text(&meta["namespace"])))
            && selected(&self.labels, &meta["labels"])
            && selected(&self.annotations, &meta["annotations"])
    }
}

/// `k=v,k2==v2,k3`: equality and existence requirements (what the operator's docs use).
fn equality_selector(text: Option<&str>) -> Vec<(String, Option<String>)> {
    text.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| match r.split_once('=') {
            Some((k, v)) => (
                k.trim().to_owned(),
                Some(v.trim_start_matches('=').trim().to_owned()),
            ),
            None => (r.to_owned(), None),
        })
        .collect()
}

fn selected(requirements: &[(String, Option<String>)], map: &Value) -> bool {
    requirements.iter().all(|(key, value)| match value {
        Some(value) => map[key.as_str()] == value.as_str(),
        None => map.get(key).is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn objects() -> Vec<Value> {
        vec![
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "source-controller", "namespace": "flux-system"},
                   "spec": {"template": {"spec": {"containers": [{"name": "manager", "args": ["--a"]}]}}}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "helm-controller", "namespace": "flux-system"},
                   "spec": {"template": {"spec": {"containers": [{"name": "manager", "args": ["--a"]}]}}}}),
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                   "metadata": {"name": "flux-system", "namespace": "flux-system"},
                   "spec": {"interval": "10m0s", "path": "clusters/dev", "prune": true}}),
        ]
    }

    fn patch(patch: &str, target: Option<PatchSelector>) -> KustomizePatch {
        KustomizePatch {
            patch: patch.to_owned(),
            target,
        }
    }

    #[test]
    fn json6902_patches_change_every_selected_object() {
        let mut objects = objects();
        let target = PatchSelector {
            kind: Some("Deployment".into()),
            name: Some("(source-controller|helm-controller)".into()),
            ..PatchSelector::default()
        };
        let ops = "- op: add\n  path: /spec/template/spec/containers/0/args/-\n  value: --b\n";
        apply_patches(&mut objects, &[patch(ops, Some(target))]).unwrap();
        for deployment in &objects[..2] {
            assert_eq!(
                deployment["spec"]["template"]["spec"]["containers"][0]["args"],
                json!(["--a", "--b"])
            );
        }
        assert_eq!(objects[2]["spec"]["interval"], "10m0s");
    }

    #[test]
    fn strategic_merge_patches_find_their_object_by_name_or_target() {
        let mut objects = objects();
        let named = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: flux-system\nspec:\n  interval: 1m\n";
        let by_kind = "metadata:\n  name: ignored\n  labels:\n    patched: \"yes\"\n";
        let target = PatchSelector {
            kind: Some("Deployment".into()),
            label_selector: None,
            ..PatchSelector::default()
        };
        apply_patches(
            &mut objects,
            &[patch(named, None), patch(by_kind, Some(target))],
        )
        .unwrap();
        assert_eq!(objects[2]["spec"]["interval"], "1m");
        assert_eq!(objects[2]["spec"]["path"], "clusters/dev");
        assert_eq!(objects[0]["metadata"]["name"], "source-controller");
        assert_eq!(objects[1]["metadata"]["labels"]["patched"], "yes");
    }

    #[test]
    fn broken_patches_say_which_and_why() {
        let mut objects = objects();
        let ops = "- op: replace\n  path: /spec/nothing\n  value: 1\n";
        let target = PatchSelector {
            kind: Some("Kustomization".into()),
            ..PatchSelector::default()
        };
        let error = apply_patches(&mut objects, &[patch(ops, Some(target))]).unwrap_err();
        assert!(
            error.starts_with(
                "patch #0: unable to apply JSON6902 patch to Kustomization/flux-system"
            ),
            "{error}"
        );
        let error = apply_patches(&mut objects, &[patch("- op: add", None)]).unwrap_err();
        assert_eq!(error, "patch #0: missing target for JSON6902 patch");
    }
}
