//! The write path shared by every verb: create, the common tail of update/patch/apply, and
//! delete, with what the real server does around them (identity metadata, generation,
//! status isolation, finalizers, Namespace and CRD specifics).

use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::fieldset::Scope;
use super::registry::{ResourceType, resource_from_crd};
use super::schema;
use super::ssa::{self, Writer};
use super::store::Store;

pub const CRD_CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
const IDENTITY: &[&str] = &[
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "name",
    "namespace",
    "resourceVersion",
];

pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn is_crd(rt: &ResourceType) -> bool {
    rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions"
}

fn is_secret(rt: &ResourceType) -> bool {
    rt.group.is_empty() && rt.plural == "secrets"
}

/// As the real server stores Secrets: `stringData` is write-only, its entries land in `data`
/// base64-encoded (winning over `data` entries of the same key).
fn merge_string_data(secret: &mut Value) {
    use base64::Engine as _;
    let Some(Value::Object(string_data)) =
        secret.as_object_mut().and_then(|o| o.remove("stringData"))
    else {
        return;
    };
    if !secret["data"].is_object() {
        secret["data"] = json!({});
    }
    for (key, value) in string_data {
        let text = value.as_str().unwrap_or_default();
        secret["data"][key] = json!(base64::engine::general_purpose::STANDARD.encode(text));
    }
}

fn is_namespace(rt: &ResourceType) -> bool {
    rt.group.is_empty() && rt.plural == "namespaces"
}

/// Options every write carries.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions<'a> {
    pub manager: &'a str,
    /// The version the request addressed, whose schema admits custom resources.
    pub version: &'a str,
    pub dry_run: bool,
}

/// Writes integral floats (`0.0`) as integers, as the real server's JSON round trip does
/// (Go encodes a float64 0 as `0`), so the same document sent as YAML by one client and JSON
/// by another is stored alike and a re-apply is no change.
fn normalize_numbers(value: &mut Value) {
    match value {
        Value::Number(number) => {
            if let Some(float) = number.as_f64().filter(|_| number.is_f64())
                && float.fract() == 0.0
                && float.abs() < 9.0e15
            {
                *value = json!(float as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_numbers),
        Value::Object(map) => map.values_mut().for_each(normalize_numbers),
        _ => {}
    }
}

/// Prunes, defaults and validates a custom resource against its schema at `version`. An
/// update may keep errors in fields it leaves as they were (validation ratcheting, on by
/// default in 1.32), so an object stored under an older schema can still lose its finalizers.
fn admit(
    rt: &ResourceType,
    version: &str,
    object: &mut Value,
    old: Option<&Value>,
) -> ApiResult<()> {
    let Some(schema) = rt.schema(version) else {
        return Ok(());
    };
    schema::prune(schema, object);
    schema::default(schema, object);
    let causes: Vec<schema::Cause> = schema::validate(schema, object)
        .into_iter()
        .filter(|cause| {
            let pointer = cause.pointer();
            old.is_none_or(|old| old.pointer(&pointer) != object.pointer(&pointer))
        })
        .collect();
    if causes.is_empty() {
        return Ok(());
    }
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    Err(ApiError::invalid_fields(&rt.group, &rt.kind, name, &causes))
}

/// Checks `apiVersion`/`kind` against the URL and fills them in when absent.
pub fn check_type(rt: &ResourceType, version: &str, object: &mut Value) -> ApiResult<()> {
    if !object.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON or YAML object",
        ));
    }
    let api_version = rt.api_version(version);
    for (field, expected) in [("apiVersion", &api_version), ("kind", &rt.kind)] {
        match object[field].as_str() {
            None => object[field] = json!(expected),
            Some(given) if given == expected => {}
            Some(given) => {
                return Err(ApiError::bad_request(format!(
                    "the {field} of the provided object ({given}) does not match the request ({expected})"
                )));
            }
        }
    }
    Ok(())
}

/// Settles the namespace of a new or updated object against the URL's.
pub fn check_namespace(
    rt: &ResourceType,
    url_namespace: Option<&str>,
    object: &mut Value,
) -> ApiResult<()> {
    let metadata = object["metadata"]
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata is required"))?;
    if !rt.namespaced {
        metadata.remove("namespace");
        return Ok(());
    }
    let url_namespace =
        url_namespace.ok_or_else(|| ApiError::bad_request("a namespace is required"))?;
    match metadata.get("namespace").and_then(Value::as_str) {
        Some(given) if !given.is_empty() && given != url_namespace => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => {
            metadata.insert("namespace".into(), json!(url_namespace));
            Ok(())
        }
    }
}

fn validate_name(rt: &ResourceType, name: &str) -> ApiResult<()> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(
            &rt.kind,
            name,
            format!(
                "metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"
            ),
        ))
    }
}

/// Creates an object (the body already type- and namespace-checked); `applied` says server-side
/// apply already recorded its managed fields.
pub fn create(
    store: &mut Store,
    rt: &ResourceType,
    mut object: Value,
    opts: WriteOptions<'_>,
    applied: bool,
) -> ApiResult<Value> {
    let metadata = &mut object["metadata"];
    if metadata["name"].as_str().unwrap_or_default().is_empty() {
        let prefix = metadata["generateName"].as_str().unwrap_or_default();
        if prefix.is_empty() {
            return Err(ApiError::invalid(
                &rt.kind,
                "",
                "metadata.name: Required value: name or generateName is required",
            ));
        }
        let suffix: String = uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .chars()
            .take(5)
            .collect();
        metadata["name"] = json!(format!("{prefix}{suffix}"));
    }
    let (namespace, name) = super::store::key_of(&object);
    validate_name(rt, &name)?;
    if rt.namespaced {
        match store.get("", "namespaces", "", &namespace) {
            None => return Err(ApiError::not_found("", "namespaces", &namespace)),
            Some(ns) if ns["metadata"]["deletionTimestamp"].is_string() => {
                return Err(ApiError::forbidden(format!(
                    "{} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                    rt.plural
                )));
            }
            Some(_) => {}
        }
    }
    if store
        .get(&rt.group, &rt.plural, &namespace, &name)
        .is_some()
    {
        return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
    }
    let metadata = object["metadata"].as_object_mut().expect("checked object");
    for field in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        metadata.remove(field);
    }
    metadata.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    metadata.insert("creationTimestamp".into(), json!(now()));
    if rt.tracks_generation {
        metadata.insert("generation".into(), json!(1));
    }
    if rt.status_subresource
        && let Some(map) = object.as_object_mut()
    {
        map.remove("status");
    }
    normalize_numbers(&mut object);
    admit(rt, opts.version, &mut object, None)?;
    prepare_kind(store, rt, &mut object, true, opts.dry_run)?;
    super::defaults::apply(store, rt, &mut object, None);
    if !applied {
        let writer = Writer {
            manager: opts.manager,
            api_version: &rt.api_version(opts.version),
            scope: Scope::Main,
            now: &now(),
        };
        ssa::record_update(None, &mut object, &writer);
    }
    if opts.dry_run {
        return Ok(object);
    }
    Ok(store.put(&rt.group, &rt.plural, object))
}

/// Kind-specific defaults: a new built-in object's empty status; a Namespace is Active with
/// the `kubernetes` finalizer; a Secret's
/// `stringData` is merged into `data`; a CRD is validated, registered for discovery and
/// immediately Established.
fn prepare_kind(
    store: &mut Store,
    rt: &ResourceType,
    object: &mut Value,
    creating: bool,
    dry_run: bool,
) -> ApiResult<()> {
    if creating && let Some(status) = super::defaults::empty_status(rt) {
        object["status"] = status;
    }
    if is_namespace(rt) && creating {
        object["spec"] = json!({"finalizers": ["kubernetes"]});
        object["status"] = json!({"phase": "Active"});
    }
    if is_secret(rt) {
        merge_string_data(object);
    }
    if is_crd(rt) {
        let resource = resource_from_crd(object)?;
        let finalizers = object["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if creating && !finalizers.iter().any(|f| f == CRD_CLEANUP_FINALIZER) {
            let mut finalizers = finalizers;
            finalizers.push(json!(CRD_CLEANUP_FINALIZER));
            object["metadata"]["finalizers"] = Value::Array(finalizers);
        }
        let mut names = object["spec"]["names"].clone();
        names["singular"] = json!(resource.singular);
        names["listKind"] = json!(resource.list_kind);
        let storage: Vec<Value> = object["spec"]["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v["storage"].as_bool() == Some(true))
            .map(|v| v["name"].clone())
            .collect();
        let time = now();
        let condition = |kind: &str, reason: &str, message: &str| {
            json!({
                "type": kind, "status": "True", "lastTransitionTime": time, "reason": reason, "message": message,
            })
        };
        // Conditions keep their transition times across updates, so a no-op apply stays one.
        let conditions = match object["status"].get("conditions") {
            Some(existing) if !creating => existing.clone(),
            _ => json!([
                condition("NamesAccepted", "NoConflicts", "no conflicts found"),
                condition(
                    "Established",
                    "InitialNamesAccepted",
                    "the initial names have been accepted"
                ),
            ]),
        };
        object["status"] = json!({
            "acceptedNames": names,
            "storedVersions": storage,
            "conditions": conditions,
        });
        if !dry_run {
            store.registry.register(resource);
        }
    }
    Ok(())
}

/// How the fields of a write were already recorded.
pub enum Ownership<'a> {
    /// A non-apply write: record its changes as an `Update` by this writer.
    Update(&'a Writer<'a>),
    /// Server-side apply already produced `managedFields`.
    Applied,
}

/// The common tail of update, patch and apply: keeps identity and the other half of the
/// object (spec vs status), bumps generation on spec changes, skips no-op writes, and
/// finishes a deletion once the last finalizer is gone.
pub fn write(
    store: &mut Store,
    rt: &ResourceType,
    old: &Value,
    mut new: Value,
    scope: Scope,
    ownership: Ownership<'_>,
    opts: WriteOptions<'_>,
) -> ApiResult<Value> {
    let dry_run = opts.dry_run;
    let (namespace, name) = super::store::key_of(old);
    if new["metadata"]["name"].as_str().is_some_and(|n| n != name) {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            new["metadata"]["name"]
        )));
    }
    if let Some(given) = new["metadata"]["resourceVersion"]
        .as_str()
        .filter(|rv| !rv.is_empty())
        && Some(given) != old["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::conflict(&rt.group, &rt.plural, &name));
    }
    if !new["metadata"].is_object() {
        new["metadata"] = json!({});
    }
    for field in IDENTITY {
        match old["metadata"].get(*field) {
            Some(value) => new["metadata"][*field] = value.clone(),
            None => {
                new["metadata"]
                    .as_object_mut()
                    .expect("object")
                    .remove(*field);
            }
        }
    }
    isolate_scope(rt, old, &mut new, scope);
    normalize_numbers(&mut new);
    admit(rt, opts.version, &mut new, Some(old))?;
    if let Ownership::Update(writer) = ownership {
        ssa::record_update(Some(old), &mut new, writer);
    }
    if scope == Scope::Main {
        prepare_kind(store, rt, &mut new, false, dry_run)?;
        super::defaults::apply(store, rt, &mut new, Some(old));
    }
    if rt.tracks_generation && spec_of(&new, rt) != spec_of(old, rt) {
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(0);
        new["metadata"]["generation"] = json!(generation + 1);
    }
    // `new` carries the old resourceVersion (an identity field): with managed-field times
    // that moved on alone put back, equality means the write would store nothing new.
    if ssa::with_unchanged_times(old, &new) == *old {
        return Ok(old.clone());
    }
    let deleting = new["metadata"]["deletionTimestamp"].is_string();
    if deleting && finalizers(&new).is_empty() {
        return Ok(if dry_run {
            new
        } else {
            remove(store, rt, &namespace, &name).unwrap_or(new)
        });
    }
    if dry_run {
        return Ok(new);
    }
    Ok(store.put(&rt.group, &rt.plural, new))
}

/// The main endpoint keeps the stored status; `/status` keeps everything but status.
fn isolate_scope(rt: &ResourceType, old: &Value, new: &mut Value, scope: Scope) {
    match scope {
        Scope::Main if rt.status_subresource => match old.get("status") {
            Some(status) => new["status"] = status.clone(),
            None => {
                new.as_object_mut().expect("object").remove("status");
            }
        },
        Scope::Main => {}
        Scope::Status => {
            let status = new.get("status").cloned();
            let managed = new["metadata"].get("managedFields").cloned();
            *new = old.clone();
            match status {
                Some(status) => new["status"] = status,
                None => {
                    new.as_object_mut().expect("object").remove("status");
                }
            }
            if let Some(managed) = managed {
                new["metadata"]["managedFields"] = managed;
            }
        }
    }
}

/// What bumps generation: everything but metadata (and status, when it is a subresource).
fn spec_of(object: &Value, rt: &ResourceType) -> Value {
    let mut spec = object.clone();
    if let Some(map) = spec.as_object_mut() {
        map.remove("metadata");
        if rt.status_subresource {
            map.remove("status");
        }
    }
    spec
}

pub fn finalizers(object: &Value) -> Vec<String> {
    object["metadata"]["finalizers"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Removes an object for good; a CRD takes its resource out of discovery with it.
pub fn remove(store: &mut Store, rt: &ResourceType, namespace: &str, name: &str) -> Option<Value> {
    let removed = store.remove(&rt.group, &rt.plural, namespace, name)?;
    if is_crd(rt) {
        let spec = &removed["spec"];
        store.registry.unregister(
            spec["group"].as_str().unwrap_or_default(),
            spec["names"]["plural"].as_str().unwrap_or_default(),
        );
    }
    Some(removed)
}

/// How dependents are treated when their owner is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

impl Propagation {
    pub fn parse(text: Option<&str>) -> ApiResult<Propagation> {
        match text {
            None | Some("Background") => Ok(Propagation::Background),
            Some("Foreground") => Ok(Propagation::Foreground),
            Some("Orphan") => Ok(Propagation::Orphan),
            Some(other) => Err(ApiError::bad_request(format!(
                "unknown propagationPolicy {other:?}"
            ))),
        }
    }
}

/// Deletes an object: with finalizers (or a Namespace, or foreground propagation) it only
/// gets a deletionTimestamp and stays until the finalizers are gone.
pub fn delete(
    store: &mut Store,
    rt: &ResourceType,
    namespace: &str,
    name: &str,
    propagation: Propagation,
    dry_run: bool,
) -> ApiResult<Value> {
    let old = store
        .get(&rt.group, &rt.plural, namespace, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
    if propagation == Propagation::Orphan && !dry_run {
        orphan_dependents(store, old["metadata"]["uid"].as_str().unwrap_or_default());
    }
    let mut new = old.clone();
    if propagation == Propagation::Foreground
        && !finalizers(&new).iter().any(|f| f == FOREGROUND_FINALIZER)
    {
        let mut list = finalizers(&new);
        list.push(FOREGROUND_FINALIZER.into());
        new["metadata"]["finalizers"] = json!(list);
    }
    if is_namespace(rt) {
        new["status"]["phase"] = json!("Terminating");
    }
    let keeps = !finalizers(&new).is_empty() || is_namespace(rt);
    if !keeps {
        if dry_run {
            return Ok(old);
        }
        return remove(store, rt, namespace, name)
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name));
    }
    if new["metadata"]["deletionTimestamp"].is_null() {
        new["metadata"]["deletionTimestamp"] = json!(now());
        new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        if let Some(generation) = new["metadata"]["generation"].as_i64() {
            new["metadata"]["generation"] = json!(generation + 1);
        }
    }
    if new == old || dry_run {
        return Ok(new);
    }
    Ok(store.put(&rt.group, &rt.plural, new))
}

/// Drops ownerReferences to `owner_uid` from every object.
fn orphan_dependents(store: &mut Store, owner_uid: &str) {
    let dependents: Vec<(String, String, Value)> = store
        .all()
        .filter(|(_, _, o)| owner_uids(o).iter().any(|uid| uid == owner_uid))
        .map(|(g, p, o)| (g.to_string(), p.to_string(), o.clone()))
        .collect();
    for (group, plural, mut object) in dependents {
        if let Some(references) = object["metadata"]["ownerReferences"].as_array_mut() {
            references.retain(|r| r["uid"] != owner_uid);
        }
        store.put(&group, &plural, object);
    }
}

pub fn owner_uids(object: &Value) -> Vec<String> {
    object["metadata"]["ownerReferences"]
        .as_array()
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r["uid"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_floats_are_stored_as_integers() {
        let mut value = json!({"minimum": 0.0, "items": [1.5, 2.0], "count": 3});
        normalize_numbers(&mut value);
        assert_eq!(value, json!({"minimum": 0, "items": [1.5, 2], "count": 3}));
        assert!(value["minimum"].is_i64());
    }
}
