//! PATCH bodies other than server-side apply: JSON merge patch, JSON patch, and strategic
//! merge patch (approximated as a merge patch that merges lists of named objects by `name`
//! and honours `$patch: delete` on such items; other `$` directives are dropped).

use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::fieldset::is_keyed_list;

pub const MERGE: &str = "application/merge-patch+json";
pub const JSON: &str = "application/json-patch+json";
pub const STRATEGIC: &str = "application/strategic-merge-patch+json";
pub const APPLY: &str = "application/apply-patch+yaml";

/// Applies a non-apply patch of `content_type` to a copy of `live`.
pub fn patch(content_type: &str, live: &Value, body: &[u8]) -> ApiResult<Value> {
    let parse_error =
        |e: serde_json::Error| ApiError::bad_request(format!("invalid patch body: {e}"));
    let mut result = live.clone();
    match content_type {
        MERGE => {
            let patch: Value = serde_json::from_slice(body).map_err(parse_error)?;
            json_patch::merge(&mut result, &patch);
        }
        JSON => {
            let patch: json_patch::Patch = serde_json::from_slice(body).map_err(parse_error)?;
            json_patch::patch(&mut result, &patch).map_err(|e| {
                ApiError::invalid(
                    "",
                    live["metadata"]["name"].as_str().unwrap_or_default(),
                    e.to_string(),
                )
            })?;
        }
        STRATEGIC => {
            let patch: Value = serde_json::from_slice(body).map_err(parse_error)?;
            strategic_merge(&mut result, &patch);
        }
        other => return Err(ApiError::unsupported_media_type(other)),
    }
    Ok(result)
}

pub(crate) fn strategic_merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch.iter().filter(|(key, _)| !key.starts_with('$')) {
                if value.is_null() {
                    target.remove(key);
                    continue;
                }
                match target.get_mut(key) {
                    Some(existing) => strategic_merge(existing, value),
                    None => {
                        let mut value = value.clone();
                        strip_directives(&mut value);
                        target.insert(key.clone(), value);
                    }
                }
            }
        }
        (Value::Array(target), Value::Array(patch))
            if is_keyed_list(patch) && is_keyed_list(target) =>
        {
            for item in patch {
                let name = &item["name"];
                let position = target.iter().position(|t| &t["name"] == name);
                match (position, item["$patch"].as_str()) {
                    (Some(index), Some("delete")) => {
                        target.remove(index);
                    }
                    (None, Some("delete")) => {}
                    (Some(index), _) => strategic_merge(&mut target[index], item),
                    (None, _) => {
                        let mut item = item.clone();
                        strip_directives(&mut item);
                        target.push(item);
                    }
                }
            }
        }
        (target, patch) => {
            *target = patch.clone();
            strip_directives(target);
        }
    }
}

fn strip_directives(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, _| !key.starts_with('$'));
            map.values_mut().for_each(strip_directives);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live() -> Value {
        json!({"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [
            {"name": "app", "image": "v1"}, {"name": "side", "image": "s1"}
        ], "args": ["x"]}})
    }

    #[test]
    fn merge_patch_sets_and_removes_fields_and_replaces_lists() {
        let body = br#"{"metadata":{"labels":{"a":null,"b":"2"}},"spec":{"args":["y"]}}"#;
        let result = patch(MERGE, &live(), body).unwrap();
        assert_eq!(result["metadata"]["labels"], json!({"b": "2"}));
        assert_eq!(result["spec"]["args"], json!(["y"]));
    }

    #[test]
    fn json_patch_applies_operations_and_reports_failures() {
        let body = br#"[{"op":"replace","path":"/spec/args/0","value":"z"}]"#;
        assert_eq!(
            patch(JSON, &live(), body).unwrap()["spec"]["args"],
            json!(["z"])
        );
        let failing = br#"[{"op":"test","path":"/spec/args/0","value":"nope"}]"#;
        assert_eq!(patch(JSON, &live(), failing).unwrap_err().code, 422);
    }

    #[test]
    fn strategic_merge_merges_named_items_and_deletes_on_directive() {
        let body = br#"{"spec":{"$setElementOrder/containers":[{"name":"app"}],"containers":[
            {"name":"app","image":"v2"},{"name":"side","$patch":"delete"},{"name":"new","image":"n"}]}}"#;
        let result = patch(STRATEGIC, &live(), body).unwrap();
        assert_eq!(
            result["spec"]["containers"],
            json!([{"name": "app", "image": "v2"}, {"name": "new", "image": "n"}])
        );
        assert!(result["spec"].get("$setElementOrder/containers").is_none());
    }

    #[test]
    fn unknown_patch_types_are_unsupported() {
        assert_eq!(patch("text/plain", &live(), b"{}").unwrap_err().code, 415);
    }
}
