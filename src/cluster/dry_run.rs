//! What an apply would change, without changing anything: each object server-side applied
//! with `dryRun=All` under the field manager the real apply uses, and the result compared with
//! the live object — minus what every write changes anyway (managedFields, resourceVersion,
//! generation, timestamps, uid, status). Secret values are never shown: each is `<redacted>`,
//! or `<redacted: changes>` when the apply would change it.

use kube::api::{DynamicObject, Patch, PatchParams};
use kube::{Client, ResourceExt as _};
use serde::Serialize;
use serde_json::Value;

use super::ObjectName;
use super::apply::{ApplyError, ApplyOptions, Resolver, api_of, apply_rank, object_name};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlannedChange {
    Create,
    Change,
    Unchanged,
    /// Another field manager owns fields the apply sets: the real apply would stop here.
    Conflict,
}

/// One object as the apply would leave it.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedObject {
    pub object: ObjectName,
    pub change: PlannedChange,
    /// Unified diff of live → applied (YAML, Secret values redacted); empty when unchanged
    /// and for objects to create; the API server's message for a conflict.
    pub diff: String,
}

/// Dry-runs the apply of `objects` with `options`' field manager and force.
pub async fn dry_run_objects(
    client: &Client,
    mut objects: Vec<DynamicObject>,
    options: &ApplyOptions,
) -> Result<Vec<PlannedObject>, ApplyError> {
    objects.sort_by_key(apply_rank);
    let resolver = Resolver::discover(client, &[], &objects).await?;
    let mut planned = Vec::new();
    for mut object in objects {
        let target = object_name(&object);
        let api = match api_of(client, &resolver, &mut object) {
            Ok(api) => api,
            // A kind whose CRD this very apply creates: nothing of it exists yet.
            Err(ApplyError::UnknownKind { .. }) => {
                planned.push(created(target));
                continue;
            }
            Err(err) => return Err(err),
        };
        let name = object.name_any();
        let live = api
            .get_opt(&name)
            .await
            .map_err(|err| ApplyError::read(&target, &err))?;
        let Some(live) = live else {
            planned.push(created(target));
            continue;
        };
        let mut params = PatchParams::apply(options.field_manager).dry_run();
        params.force = options.force;
        let applied = match api.patch(&name, &params, &Patch::Apply(&object)).await {
            Err(kube::Error::Api(status)) if status.code == 409 => {
                planned.push(PlannedObject {
                    object: target,
                    change: PlannedChange::Conflict,
                    diff: status.message,
                });
                continue;
            }
            other => other,
        };
        let applied = applied.map_err(|err| ApplyError::apply(&target, &err))?;
        let (before, after) = comparable(&live, &applied);
        let diff = if before == after {
            String::new()
        } else {
            similar::TextDiff::from_lines(&before, &after)
                .unified_diff()
                .header(&format!("live {target}"), &format!("applied {target}"))
                .to_string()
        };
        let change = if diff.is_empty() {
            PlannedChange::Unchanged
        } else {
            PlannedChange::Change
        };
        planned.push(PlannedObject {
            object: target,
            change,
            diff,
        });
    }
    Ok(planned)
}

fn created(object: ObjectName) -> PlannedObject {
    PlannedObject {
        object,
        change: PlannedChange::Create,
        diff: String::new(),
    }
}

/// Both objects as YAML without what every write changes, Secret values redacted.
fn comparable(live: &DynamicObject, applied: &DynamicObject) -> (String, String) {
    let mut before = stripped(live);
    let mut after = stripped(applied);
    if live.types.as_ref().is_some_and(|t| t.kind == "Secret")
        || applied.types.as_ref().is_some_and(|t| t.kind == "Secret")
    {
        redact_secret(&mut before, &mut after);
    }
    let yaml = |value: &Value| serde_yaml_ng::to_string(value).unwrap_or_default();
    (yaml(&before), yaml(&after))
}

fn stripped(object: &DynamicObject) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
    }
    if let Some(metadata) = value["metadata"].as_object_mut() {
        for noise in [
            "managedFields",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "uid",
        ] {
            metadata.remove(noise);
        }
    }
    value
}

/// Replaces every value of `data`/`stringData` by `<redacted>`, or `<redacted: changes>` on
/// the applied side when it differs from the live one.
fn redact_secret(before: &mut Value, after: &mut Value) {
    for field in ["data", "stringData"] {
        let old = before[field].as_object().cloned().unwrap_or_default();
        if let Some(map) = after[field].as_object_mut() {
            for (key, value) in map.iter_mut() {
                let same = old.get(key) == Some(&*value);
                *value = Value::from(if same {
                    "<redacted>"
                } else {
                    "<redacted: changes>"
                });
            }
        }
        if let Some(map) = before[field].as_object_mut() {
            for value in map.values_mut() {
                *value = Value::from("<redacted>");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(value: Value) -> DynamicObject {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn noise_is_ignored_and_secret_values_never_shown() {
        let live = object(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "flux-system", "resourceVersion": "1",
                         "managedFields": [{"manager": "a"}], "uid": "u"},
            "data": {"kept": "c2FtZQ==", "rotated": "b2xkLXNlY3JldA=="},
        }));
        let applied = object(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "flux-system", "resourceVersion": "2",
                         "managedFields": [{"manager": "b"}], "uid": "u"},
            "data": {"kept": "c2FtZQ==", "rotated": "bmV3LXNlY3JldA=="},
        }));
        let (before, after) = comparable(&live, &applied);
        assert!(
            !before.contains("b2xk") && !after.contains("bmV3"),
            "{before}{after}"
        );
        assert!(after.contains("rotated: '<redacted: changes>'"), "{after}");
        assert!(after.contains("kept: <redacted>"), "{after}");
        assert!(!after.contains("resourceVersion") && !after.contains("managedFields"));
        let (same_before, same_after) = comparable(&live, &live);
        assert_eq!(same_before, same_after);
    }
}
