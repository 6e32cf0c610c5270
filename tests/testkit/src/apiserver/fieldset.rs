//! Field sets as server-side apply tracks them, and their `FieldsV1` encoding.
//!
//! A set holds leaf paths (scalars, atomic lists, empty maps) plus one marker path per item
//! of an associative list. Lists of objects that all carry a distinct string `name` (containers,
//! env, ports, volumes, …) are associative, keyed by `name` (`k:{"name":"x"}`); every other
//! list is atomic and owned as a whole.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Segment {
    Field(String),
    /// The item of an associative list whose `name` is this.
    Key(String),
}

pub type Path = Vec<Segment>;
pub type FieldSet = BTreeSet<Path>;

/// Which part of an object a request may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything but `status` and server-owned metadata.
    Main,
    /// `status` only.
    Status,
}

const OWNED_METADATA: &[&str] = &["labels", "annotations", "finalizers", "ownerReferences"];

/// The fields `object` sets within `scope`.
pub fn field_set(object: &Value, scope: Scope) -> FieldSet {
    let mut set = FieldSet::new();
    let Some(map) = object.as_object() else {
        return set;
    };
    for (key, value) in map {
        let included = match scope {
            Scope::Main => !matches!(key.as_str(), "apiVersion" | "kind" | "status" | "metadata"),
            Scope::Status => key == "status",
        };
        if included {
            walk(value, vec![Segment::Field(key.clone())], &mut set);
        }
    }
    if scope == Scope::Main {
        for key in OWNED_METADATA {
            if let Some(value) = object["metadata"].get(*key) {
                let path = vec![
                    Segment::Field("metadata".into()),
                    Segment::Field(key.to_string()),
                ];
                walk(value, path, &mut set);
            }
        }
    }
    set
}

fn walk(value: &Value, prefix: Path, set: &mut FieldSet) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let mut path = prefix.clone();
                path.push(Segment::Field(key.clone()));
                walk(child, path, set);
            }
        }
        Value::Array(items) if is_keyed_list(items) => {
            for item in items {
                let mut path = prefix.clone();
                path.push(Segment::Key(
                    item_name(item).unwrap_or_default().to_string(),
                ));
                set.insert(path.clone());
                walk(item, path, set);
            }
        }
        _ => {
            set.insert(prefix);
        }
    }
}

fn item_name(item: &Value) -> Option<&str> {
    item.get("name").and_then(Value::as_str)
}

/// Whether a list merges by item `name` rather than being replaced whole.
pub fn is_keyed_list(items: &[Value]) -> bool {
    let names: BTreeSet<&str> = items.iter().filter_map(item_name).collect();
    !items.is_empty() && names.len() == items.len()
}

/// The value at `path`, if present.
pub fn get<'a>(object: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    path.iter()
        .try_fold(object, |value, segment| match segment {
            Segment::Field(key) => value.get(key),
            Segment::Key(name) => value
                .as_array()?
                .iter()
                .find(|item| item_name(item) == Some(name)),
        })
}

/// Removes the field or list item at `path`; a missing path is fine.
pub fn remove(object: &mut Value, path: &[Segment]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut parent = object;
    for segment in parent_path {
        let next = match segment {
            Segment::Field(key) => parent.get_mut(key),
            Segment::Key(name) => parent
                .as_array_mut()
                .and_then(|items| items.iter_mut().find(|item| item_name(item) == Some(name))),
        };
        match next {
            Some(next) => parent = next,
            None => return,
        }
    }
    match last {
        Segment::Field(key) => {
            if let Some(map) = parent.as_object_mut() {
                map.remove(key);
            }
        }
        Segment::Key(name) => {
            if let Some(items) = parent.as_array_mut() {
                items.retain(|item| item_name(item) != Some(name));
            }
        }
    }
}

/// Merges an applied configuration into `target`: maps recursively, associative lists by
/// item name (new items appended), everything else replaced; `null` removes a field.
pub fn merge(target: &mut Value, applied: &Value) {
    match (target, applied) {
        (Value::Object(target), Value::Object(applied)) => {
            for (key, value) in applied {
                if value.is_null() {
                    target.remove(key);
                    continue;
                }
                match target.get_mut(key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        target.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(target), Value::Array(applied))
            if is_keyed_list(applied) && target.iter().all(|i| item_name(i).is_some()) =>
        {
            for item in applied {
                let name = item_name(item);
                match target.iter_mut().find(|t| item_name(t) == name) {
                    Some(existing) => merge(existing, item),
                    None => target.push(item.clone()),
                }
            }
        }
        (target, applied) => *target = applied.clone(),
    }
}

/// The paths of `new` that are absent from or different in `old`, and the paths of `old`
/// gone from `new` (both within `scope`).
pub fn diff(old: &Value, new: &Value, scope: Scope) -> (FieldSet, FieldSet) {
    let old_set = field_set(old, scope);
    let new_set = field_set(new, scope);
    let changed = new_set
        .iter()
        .filter(|path| !old_set.contains(*path) || get(old, path) != get(new, path))
        .cloned()
        .collect();
    let removed = old_set.difference(&new_set).cloned().collect();
    (changed, removed)
}

/// Encodes a set as the `fieldsV1` tree (`f:` fields, `k:` keys, `.` for a member that has
/// children).
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for segment in path {
            let entry = node
                .entry(encode_segment(segment))
                .or_insert_with(|| Value::Object(Map::new()));
            node = entry.as_object_mut().expect("fieldsV1 nodes are objects");
        }
    }
    mark_members(&mut root, set, &mut Vec::new());
    Value::Object(root)
}

/// Adds `.` to nodes that are members themselves and have children.
fn mark_members(node: &mut Map<String, Value>, set: &FieldSet, path: &mut Path) {
    for (key, child) in node.iter_mut() {
        let Some(segment) = decode_segment(key) else {
            continue;
        };
        path.push(segment);
        if let Some(child) = child.as_object_mut()
            && !child.is_empty()
        {
            mark_members(child, set, path);
            if set.contains(path) {
                child.insert(".".into(), Value::Object(Map::new()));
            }
        }
        path.pop();
    }
}

/// Decodes a `fieldsV1` tree; unknown entry kinds (`v:`, `i:`) are kept as atomic leaves of
/// their parent.
pub fn from_fields_v1(value: &Value) -> FieldSet {
    let mut set = FieldSet::new();
    collect(value, &mut Vec::new(), &mut set);
    set
}

fn collect(node: &Value, path: &mut Path, set: &mut FieldSet) {
    let Some(map) = node.as_object() else { return };
    if (map.is_empty() || map.contains_key(".")) && !path.is_empty() {
        set.insert(path.clone());
    }
    for (key, child) in map {
        match decode_segment(key) {
            Some(segment) => {
                path.push(segment);
                collect(child, path, set);
                path.pop();
            }
            None if key != "." && !path.is_empty() => {
                set.insert(path.clone());
            }
            None => {}
        }
    }
}

fn encode_segment(segment: &Segment) -> String {
    match segment {
        Segment::Field(name) => format!("f:{name}"),
        Segment::Key(name) => format!("k:{}", serde_json::json!({ "name": name })),
    }
}

fn decode_segment(key: &str) -> Option<Segment> {
    if let Some(name) = key.strip_prefix("f:") {
        return Some(Segment::Field(name.to_string()));
    }
    let object: Value = serde_json::from_str(key.strip_prefix("k:")?).ok()?;
    Some(Segment::Key(item_name(&object)?.to_string()))
}

/// A path as conflict messages show it: `.spec.containers[name="app"].image`.
pub fn display(path: &[Segment]) -> String {
    path.iter()
        .map(|segment| match segment {
            Segment::Field(name) => format!(".{name}"),
            Segment::Key(name) => format!("[name=\"{name}\"]"),
        })
        .collect()
}

/// Whether `path` starts with `prefix`.
pub fn has_prefix(path: &[Segment], prefix: &[Segment]) -> bool {
    path.len() >= prefix.len() && path[..prefix.len()] == *prefix
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(name: &str) -> Segment {
        Segment::Field(name.into())
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}, "uid": "x"},
            "spec": {
                "replicas": 2,
                "template": {"spec": {"containers": [
                    {"name": "app", "image": "nginx", "args": ["a", "b"]}
                ]}}
            },
            "status": {"readyReplicas": 1}
        })
    }

    /// The path of the `app` item of the pod template's containers.
    fn app_container() -> Path {
        vec![
            f("spec"),
            f("template"),
            f("spec"),
            f("containers"),
            Segment::Key("app".into()),
        ]
    }

    #[test]
    fn field_sets_key_named_lists_and_skip_server_owned_parts() {
        let set = field_set(&deployment(), Scope::Main);
        let container = app_container();
        assert!(set.contains(&container));
        let mut image = container.clone();
        image.push(f("image"));
        assert!(set.contains(&image));
        let mut args = container.clone();
        args.push(f("args"));
        assert!(set.contains(&args), "unkeyed lists are atomic leaves");
        assert!(set.contains(&vec![f("metadata"), f("labels"), f("app")]));
        assert!(
            !set.iter()
                .any(|p| p[0] == f("status") || p.contains(&f("uid")))
        );
        let status = field_set(&deployment(), Scope::Status);
        assert_eq!(
            status.into_iter().collect::<Vec<_>>(),
            vec![vec![f("status"), f("readyReplicas")]]
        );
    }

    #[test]
    fn fields_v1_round_trips() {
        let set = field_set(&deployment(), Scope::Main);
        let encoded = to_fields_v1(&set);
        let item =
            &encoded["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"];
        assert!(item.get(".").is_some() && item.get("f:image").is_some());
        assert_eq!(from_fields_v1(&encoded), set);
    }

    #[test]
    fn merge_joins_keyed_lists_and_replaces_atomic_ones() {
        let mut target = deployment();
        merge(
            &mut target,
            &json!({"spec": {"replicas": null, "template": {"spec": {"containers": [
                {"name": "app", "args": ["c"]}, {"name": "sidecar", "image": "busybox"}
            ]}}}}),
        );
        let containers = &target["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0]["image"], "nginx");
        assert_eq!(containers[0]["args"], json!(["c"]));
        assert_eq!(containers[1]["name"], "sidecar");
        assert!(target["spec"].get("replicas").is_none());
    }

    #[test]
    fn remove_drops_fields_and_keyed_items() {
        let mut object = deployment();
        remove(&mut object, &app_container());
        remove(&mut object, &[f("metadata"), f("labels"), f("app")]);
        remove(&mut object, &[f("nothing"), f("here")]);
        assert_eq!(object["spec"]["template"]["spec"]["containers"], json!([]));
        assert_eq!(object["metadata"]["labels"], json!({}));
    }

    #[test]
    fn diff_reports_changed_and_removed_leaves() {
        let old = json!({"data": {"a": "1", "b": "2"}});
        let new = json!({"data": {"a": "1", "b": "3", "c": "4"}});
        let (changed, removed) = diff(&new, &old, Scope::Main);
        assert_eq!(changed, FieldSet::from([vec![f("data"), f("b")]]));
        assert_eq!(removed, FieldSet::from([vec![f("data"), f("c")]]));
        let (changed, _) = diff(&old, &new, Scope::Main);
        assert_eq!(changed.len(), 2);
        assert_eq!(display(&[f("data"), f("b")]), ".data.b");
    }
}
