//! Server-side apply and the `managedFields` bookkeeping of every write.

use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::fieldset::{self, FieldSet, Scope};

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedEntry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

impl ManagedEntry {
    fn scope(&self) -> Scope {
        match self.subresource.as_deref() {
            Some("status") => Scope::Status,
            _ => Scope::Main,
        }
    }

    /// Whether `other` is this entry at another time.
    fn same_but_time(&self, other: &ManagedEntry) -> bool {
        let retimed = ManagedEntry {
            time: other.time.clone(),
            ..self.clone()
        };
        retimed == *other
    }

    /// The order the real server stores entries in.
    fn order_key(&self) -> (&str, &str, &str, &str, Option<&str>) {
        (
            &self.operation,
            &self.time,
            &self.manager,
            &self.api_version,
            self.subresource.as_deref(),
        )
    }

    fn to_json(&self) -> Value {
        let mut entry = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": fieldset::to_fields_v1(&self.fields),
        });
        if let Some(subresource) = &self.subresource {
            entry["subresource"] = json!(subresource);
        }
        entry
    }
}

/// Who writes, how, and through which endpoint.
#[derive(Debug, Clone)]
pub struct Writer<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub scope: Scope,
    pub now: &'a str,
}

impl Writer<'_> {
    fn subresource(&self) -> Option<String> {
        (self.scope == Scope::Status).then(|| "status".to_string())
    }

    fn is_me(&self, entry: &ManagedEntry, operation: &str) -> bool {
        entry.manager == self.manager
            && entry.operation == operation
            && entry.subresource == self.subresource()
    }
}

pub fn read_entries(object: &Value) -> Vec<ManagedEntry> {
    let Some(entries) = object["metadata"]["managedFields"].as_array() else {
        return Vec::new();
    };
    entries
        .iter()
        .map(|entry| ManagedEntry {
            manager: entry["manager"].as_str().unwrap_or_default().to_string(),
            operation: entry["operation"].as_str().unwrap_or("Update").to_string(),
            api_version: entry["apiVersion"].as_str().unwrap_or_default().to_string(),
            time: entry["time"].as_str().unwrap_or_default().to_string(),
            subresource: entry["subresource"].as_str().map(String::from),
            fields: fieldset::from_fields_v1(&entry["fieldsV1"]),
        })
        .collect()
}

/// Stores `entries` (those owning anything) in the server's order, so that rewriting an
/// entry moves it only when its operation, time or manager changed.
pub fn write_entries(object: &mut Value, entries: &[ManagedEntry]) {
    let mut entries: Vec<&ManagedEntry> = entries
        .iter()
        .filter(|entry| !entry.fields.is_empty())
        .collect();
    entries.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
    let entries: Vec<Value> = entries.into_iter().map(ManagedEntry::to_json).collect();
    if let Some(metadata) = object["metadata"].as_object_mut() {
        if entries.is_empty() {
            metadata.remove("managedFields");
        } else {
            metadata.insert("managedFields".into(), Value::Array(entries));
        }
    }
}

/// `new` as the no-op check compares it with `old`: every managed-fields entry that is
/// unchanged but for its time takes its old time (and so its old place) back.
pub fn with_unchanged_times(old: &Value, new: &Value) -> Value {
    let previous = read_entries(old);
    let mut entries = read_entries(new);
    for entry in &mut entries {
        if let Some(kept) = previous.iter().find(|kept| kept.same_but_time(entry)) {
            entry.time = kept.time.clone();
        }
    }
    let mut new = new.clone();
    write_entries(&mut new, &entries);
    new
}

/// Records a non-apply write (create, update, patch) of `new` over `old`: the writer's
/// `Update` entry gains the fields it changed, which every other manager loses; fields the
/// write removed leave every entry. `new`'s own `managedFields` are replaced.
pub fn record_update(old: Option<&Value>, new: &mut Value, writer: &Writer<'_>) {
    let empty = json!({});
    let old = old.unwrap_or(&empty);
    let (changed, removed) = fieldset::diff(old, new, writer.scope);
    let mut entries = read_entries(old);
    for entry in entries
        .iter_mut()
        .filter(|entry| entry.scope() == writer.scope)
    {
        entry
            .fields
            .retain(|path| !removed.contains(path) && !changed.contains(path));
    }
    if !changed.is_empty() {
        match entries
            .iter_mut()
            .find(|entry| writer.is_me(entry, "Update"))
        {
            Some(entry) => {
                entry.fields.extend(changed);
                entry.time = writer.now.to_string();
                entry.api_version = writer.api_version.to_string();
            }
            None => entries.push(ManagedEntry {
                manager: writer.manager.to_string(),
                operation: "Update".into(),
                api_version: writer.api_version.to_string(),
                time: writer.now.to_string(),
                subresource: writer.subresource(),
                fields: changed,
            }),
        }
    }
    write_entries(new, &entries);
}

/// Server-side apply of `applied` onto `live` (an empty skeleton when creating). Returns the
/// merged object with its managed fields, or a 409 listing conflicts when another manager owns
/// a field with a different value and `force` is false.
pub fn apply(live: &Value, applied: &Value, writer: &Writer<'_>, force: bool) -> ApiResult<Value> {
    let applied_set = fieldset::field_set(applied, writer.scope);
    let mut entries = read_entries(live);
    let previous: FieldSet = entries
        .iter()
        .find(|entry| writer.is_me(entry, "Apply"))
        .map(|entry| entry.fields.clone())
        .unwrap_or_default();

    let mut conflicts = Vec::new();
    for entry in entries
        .iter_mut()
        .filter(|e| e.scope() == writer.scope && !writer.is_me(e, "Apply"))
    {
        let contested: Vec<_> = entry
            .fields
            .intersection(&applied_set)
            .filter(|path| {
                !matches!(path.last(), Some(fieldset::Segment::Key(_)))
                    && fieldset::get(live, path) != fieldset::get(applied, path)
            })
            .cloned()
            .collect();
        if force {
            entry.fields.retain(|path| !contested.contains(path));
        } else {
            conflicts.extend(
                contested
                    .iter()
                    .map(|p| (entry.manager.clone(), fieldset::display(p))),
            );
        }
    }
    if !conflicts.is_empty() {
        return Err(ApiError::apply_conflict(&conflicts, writer.api_version));
    }

    let mut merged = live.clone();
    let others_own = |path: &fieldset::Path, entries: &[ManagedEntry]| {
        entries.iter().any(|e| {
            e.scope() == writer.scope
                && !writer.is_me(e, "Apply")
                && e.fields
                    .iter()
                    .any(|owned| fieldset::has_prefix(owned, path))
        })
    };
    // Deepest paths first, so an item goes after its fields were considered.
    let dropped: Vec<&fieldset::Path> = previous.difference(&applied_set).collect();
    for path in dropped.into_iter().rev() {
        if !others_own(path, &entries) {
            fieldset::remove(&mut merged, path);
        }
    }
    let mut applied_part = applied.clone();
    if let Some(map) = applied_part.as_object_mut() {
        match writer.scope {
            Scope::Main => {
                map.remove("status");
            }
            Scope::Status => map.retain(|key, _| key == "status"),
        }
        // Identity is the server's; only the metadata an applier owns is merged.
        if let Some(metadata) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.retain(|key, _| {
                matches!(
                    key.as_str(),
                    "labels" | "annotations" | "finalizers" | "ownerReferences"
                )
            });
        }
    }
    fieldset::merge(&mut merged, &applied_part);

    entries.retain(|entry| !writer.is_me(entry, "Apply"));
    entries.push(ManagedEntry {
        manager: writer.manager.to_string(),
        operation: "Apply".into(),
        api_version: writer.api_version.to_string(),
        time: writer.now.to_string(),
        subresource: writer.subresource(),
        fields: applied_set,
    });
    write_entries(&mut merged, &entries);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(manager: &str) -> Writer<'_> {
        Writer {
            manager,
            api_version: "v1",
            scope: Scope::Main,
            now: "2024-01-01T00:00:00Z",
        }
    }

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data})
    }

    /// A ConfigMap with `data`, created by manager one's apply.
    fn created_by_one(data: Value) -> Value {
        apply(&cm(json!(null)), &cm(data), &writer("one"), false).unwrap()
    }

    #[test]
    fn a_second_manager_conflicts_on_a_different_value_unless_forced() {
        let first = created_by_one(json!({"a": "1", "b": "2"}));
        let err = apply(&first, &cm(json!({"a": "9"})), &writer("two"), false).unwrap_err();
        assert_eq!(err.code, 409);
        assert!(
            err.message.contains("conflict with \"one\""),
            "{}",
            err.message
        );
        assert!(err.message.contains(".data.a"));
        // The same value is shared, not contested.
        let shared = apply(&first, &cm(json!({"b": "2"})), &writer("two"), false).unwrap();
        assert_eq!(read_entries(&shared).len(), 2);
        let forced = apply(&first, &cm(json!({"a": "9"})), &writer("two"), true).unwrap();
        assert_eq!(forced["data"], json!({"a": "9", "b": "2"}));
        let one = read_entries(&forced)
            .into_iter()
            .find(|e| e.manager == "one")
            .unwrap();
        assert_eq!(one.fields.len(), 1, "the forced field moved to manager two");
    }

    #[test]
    fn fields_no_longer_applied_are_removed_unless_someone_else_owns_them() {
        let first = created_by_one(json!({"a": "1", "b": "2"}));
        let shared = apply(&first, &cm(json!({"b": "2"})), &writer("two"), false).unwrap();
        let reapplied = apply(&shared, &cm(json!({"c": "3"})), &writer("one"), false).unwrap();
        assert_eq!(reapplied["data"], json!({"b": "2", "c": "3"}));
    }

    #[test]
    fn reapplying_later_differs_only_in_times_that_can_be_put_back() {
        let first = created_by_one(json!({"a": "1"}));
        let mut edited = cm(json!({"a": "1", "b": "2"}));
        record_update(Some(&first), &mut edited, &writer("two"));
        let later = Writer {
            now: "2024-01-01T00:00:09Z",
            ..writer("one")
        };
        let again = apply(&edited, &cm(json!({"a": "1"})), &later, false).unwrap();
        assert_ne!(again, edited, "the apply entry got a new time");
        assert_eq!(with_unchanged_times(&edited, &again), edited);
        let changed = apply(&edited, &cm(json!({"a": "3"})), &later, false).unwrap();
        assert_ne!(with_unchanged_times(&edited, &changed), edited);
    }

    #[test]
    fn updates_take_ownership_from_appliers() {
        let first = created_by_one(json!({"a": "1"}));
        let mut updated = first.clone();
        updated["data"]["a"] = json!("2");
        record_update(Some(&first), &mut updated, &writer("editor"));
        let entries = read_entries(&updated);
        assert_eq!(entries.len(), 1, "manager one lost its only field");
        assert_eq!(entries[0].operation, "Update");
        let err = apply(&updated, &cm(json!({"a": "1"})), &writer("one"), false).unwrap_err();
        assert!(err.message.contains("editor"));
    }
}
