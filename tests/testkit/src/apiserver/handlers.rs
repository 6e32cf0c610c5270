//! The resource verbs: get, list, watch, create, update, patch (incl. server-side apply),
//! delete and deletecollection, on `/api/v1/...` and `/apis/<group>/<version>/...`.

use std::sync::Arc;

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::fieldset::Scope;
use super::objects::{self, Ownership, Propagation, WriteOptions};
use super::registry::ResourceType;
use super::schema::{self, Directive};
use super::selectors::{FieldSelector, LabelSelector};
use super::ssa::{self, Writer};
use super::store::Store;
use super::{Query, Shared, json_response, pagination, patch, protobuf, table, watch};

/// A parsed resource path.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub plural: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

impl Target {
    pub fn parse(path: &str) -> Option<Target> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (group, version, rest) = match segments.as_slice() {
            ["api", version, rest @ ..] => ("", *version, rest),
            ["apis", group, version, rest @ ..] => (*group, *version, rest),
            _ => return None,
        };
        let (namespace, rest) = match rest {
            ["namespaces", ns, plural, tail @ ..] if !matches!(*plural, "status" | "finalize") => {
                (Some(ns.to_string()), [&[*plural][..], tail].concat())
            }
            _ => (None, rest.to_vec()),
        };
        let (plural, name, subresource) = match rest.as_slice() {
            [plural] => (*plural, None, None),
            [plural, name] => (*plural, Some(name.to_string()), None),
            [plural, name, sub] => (*plural, Some(name.to_string()), Some(sub.to_string())),
            _ => return None,
        };
        Some(Target {
            group: group.into(),
            version: version.into(),
            namespace,
            plural: plural.into(),
            name,
            subresource,
        })
    }

    /// The verb as audit logs and the request counters name it.
    pub fn verb(&self, method: &Method, query: &Query) -> &'static str {
        match (method.as_str(), self.name.is_some()) {
            ("GET", true) => "get",
            ("GET", false) if query.flag("watch") => "watch",
            ("GET", false) => "list",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", true) => "delete",
            ("DELETE", false) => "deletecollection",
            _ => "unknown",
        }
    }

    pub fn resource(&self) -> String {
        match &self.subresource {
            Some(sub) => format!("{}/{sub}", self.plural),
            None => self.plural.clone(),
        }
    }
}

/// Everything a verb needs from the request.
pub struct Call<'a> {
    pub target: Target,
    pub method: Method,
    pub query: Query,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl Call<'_> {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The manager a non-apply write is recorded under: `fieldManager`, else the client's
    /// user agent up to its first `/`, as the real server derives it.
    fn manager(&self) -> String {
        if let Some(manager) = self.query.get("fieldManager") {
            return manager.to_string();
        }
        let agent = self
            .header("user-agent")
            .split('/')
            .next()
            .unwrap_or_default();
        if agent.is_empty() {
            "unknown".into()
        } else {
            agent.into()
        }
    }

    fn dry_run(&self) -> bool {
        self.query.get("dryRun") == Some("All")
    }

    fn write_options<'m>(&'m self, manager: &'m str) -> WriteOptions<'m> {
        WriteOptions {
            manager,
            version: &self.target.version,
            dry_run: self.dry_run(),
        }
    }

    fn scope(&self) -> ApiResult<Scope> {
        match self.target.subresource.as_deref() {
            None => Ok(Scope::Main),
            Some("status") => Ok(Scope::Status),
            Some(other) => Err(ApiError::not_found_path(format!(
                "the server could not find the requested resource ({other})"
            ))),
        }
    }

    fn json_body(&self) -> ApiResult<Value> {
        let content_type = self.header("content-type");
        if content_type.starts_with(protobuf::MEDIA_TYPE) {
            return protobuf::decode(self.body);
        }
        serde_json::from_slice(self.body)
            .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
    }
}

pub fn handle(shared: &Arc<Shared>, call: Call<'_>) -> ApiResult<Response> {
    let mut store = shared.store.lock().expect("store lock");
    let rt = store
        .registry
        .lookup(
            &call.target.group,
            &call.target.version,
            &call.target.plural,
        )?
        .clone();
    if call.target.namespace.is_some() && !rt.namespaced {
        return Err(ApiError::not_found_path(format!(
            "the server could not find the requested resource ({})",
            rt.plural
        )));
    }
    if let Some(sub) = call.target.subresource.as_deref()
        && !(sub == "status" && rt.status_subresource)
    {
        return Err(ApiError::not_found_path(format!(
            "the server could not find the requested resource ({}/{sub})",
            rt.plural
        )));
    }
    let verb = call.target.verb(&call.method, &call.query);
    let response = match verb {
        "get" => Ok(ok(&versioned(
            &rt,
            &call.target.version,
            existing(&store, &rt, &call)?,
        ))),
        "list" => list(&store, &rt, &call),
        "watch" => {
            let scope = watch_scope(&rt, &call)?;
            let agent = super::audit::agent_name(call.header("user-agent"));
            watch::start(shared, &store, scope, &call.query, &agent)
        }
        "create" => create(&mut store, &rt, &call),
        "update" => update(&mut store, &rt, &call),
        "patch" => patch_object(&mut store, &rt, &call),
        "delete" => delete(&mut store, &rt, &call),
        "deletecollection" => delete_collection(&mut store, &rt, &call),
        _ => Err(ApiError::method_not_allowed(format!(
            "{} is not supported on {}",
            call.method,
            call.target.resource()
        ))),
    }?;
    if matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    ) {
        shared.changed.notify_one();
    }
    Ok(response)
}

fn ok(object: &Value) -> Response {
    json_response(StatusCode::OK, object)
}

fn versioned(rt: &ResourceType, version: &str, object: Value) -> Value {
    rt.present(version, object)
}

/// What strict decoding finds in a write under the call's `fieldValidation`: the fields the
/// schema of `rt` would prune from `object` and the `duplicates` the body repeats. Answers
/// the warnings to send, or the Strict error (`prefix` starts its message).
fn field_problems(
    rt: &ResourceType,
    call: &Call<'_>,
    object: &Value,
    duplicates: Vec<String>,
    prefix: &str,
) -> ApiResult<Vec<String>> {
    let directive = Directive::parse(call.query.get("fieldValidation"))?;
    let unknown = rt
        .schema(&call.target.version)
        .map(|s| schema::prune(s, &mut object.clone()))
        .unwrap_or_default();
    let problems = unknown
        .iter()
        .map(|path| format!("unknown field {path:?}"))
        .chain(
            duplicates
                .iter()
                .map(|path| format!("duplicate field {path:?}")),
        )
        .collect();
    directive.settle(problems, prefix)
}

/// A write's whole body as create and update decode it, with what strict decoding found.
fn decoded_body(rt: &ResourceType, call: &Call<'_>) -> ApiResult<(Value, Vec<String>)> {
    let object = call.json_body()?;
    let prefix = format!(
        "{kind} in version {version:?} cannot be handled as a {kind}: ",
        kind = rt.kind,
        version = call.target.version
    );
    let duplicates = schema::duplicate_fields(call.body);
    let warnings = field_problems(rt, call, &object, duplicates, &prefix)?;
    Ok((object, warnings))
}

/// `response` with a `Warning: 299` header per warning, as kubectl prints them.
fn warned(mut response: Response, warnings: &[String]) -> Response {
    for warning in warnings {
        let text = warning.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(value) = format!("299 - \"{text}\"").parse() {
            response.headers_mut().append("Warning", value);
        }
    }
    response
}

fn namespace_of(call: &Call<'_>) -> String {
    call.target.namespace.clone().unwrap_or_default()
}

fn existing(store: &Store, rt: &ResourceType, call: &Call<'_>) -> ApiResult<Value> {
    let name = call.target.name.as_deref().unwrap_or_default();
    store
        .get(&rt.group, &rt.plural, &namespace_of(call), name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))
}

fn selected<'a>(store: &'a Store, rt: &ResourceType, call: &Call<'_>) -> ApiResult<Vec<&'a Value>> {
    let labels = LabelSelector::parse(call.query.get("labelSelector").unwrap_or_default())?;
    let fields = FieldSelector::parse(call.query.get("fieldSelector").unwrap_or_default())?;
    Ok(store
        .list(&rt.group, &rt.plural, call.target.namespace.as_deref())
        .into_iter()
        .filter(|o| labels.matches(o) && fields.matches(o))
        .collect())
}

fn list(store: &Store, rt: &ResourceType, call: &Call<'_>) -> ApiResult<Response> {
    let selected = selected(store, rt, call)?;
    let page = pagination::page(store, &selected, &call.query)?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|o| versioned(rt, &call.target.version, (*o).clone()))
        .collect();
    if table::wanted(call.header("accept")) {
        return Ok(ok(&table::render(&items, &page.resource_version)));
    }
    Ok(ok(&json!({
        "kind": rt.list_kind,
        "apiVersion": rt.api_version(&call.target.version),
        "metadata": page.metadata(),
        "items": items,
    })))
}

fn watch_scope(rt: &ResourceType, call: &Call<'_>) -> ApiResult<watch::WatchScope> {
    Ok(watch::WatchScope {
        rt: rt.clone(),
        version: call.target.version.clone(),
        namespace: call.target.namespace.clone(),
        name: None,
        labels: LabelSelector::parse(call.query.get("labelSelector").unwrap_or_default())?,
        fields: FieldSelector::parse(call.query.get("fieldSelector").unwrap_or_default())?,
    })
}

fn create(store: &mut Store, rt: &ResourceType, call: &Call<'_>) -> ApiResult<Response> {
    let (mut object, warnings) = decoded_body(rt, call)?;
    objects::check_type(rt, &call.target.version, &mut object)?;
    objects::check_namespace(rt, call.target.namespace.as_deref(), &mut object)?;
    let response = store_new(store, rt, call, object, &call.manager(), false)?;
    Ok(warned(response, &warnings))
}

/// Stores a new object and answers 201; `applied` as for [`objects::create`].
fn store_new(
    store: &mut Store,
    rt: &ResourceType,
    call: &Call<'_>,
    object: Value,
    manager: &str,
    applied: bool,
) -> ApiResult<Response> {
    let created = objects::create(store, rt, object, call.write_options(manager), applied)?;
    Ok(json_response(
        StatusCode::CREATED,
        &versioned(rt, &call.target.version, created),
    ))
}

fn update(store: &mut Store, rt: &ResourceType, call: &Call<'_>) -> ApiResult<Response> {
    let scope = call.scope()?;
    let (mut object, warnings) = decoded_body(rt, call)?;
    objects::check_type(rt, &call.target.version, &mut object)?;
    objects::check_namespace(rt, call.target.namespace.as_deref(), &mut object)?;
    let old = existing(store, rt, call)?;
    let response = write_update(store, rt, call, scope, &old, object)?;
    Ok(warned(response, &warnings))
}

fn patch_object(store: &mut Store, rt: &ResourceType, call: &Call<'_>) -> ApiResult<Response> {
    let content_type = call
        .header("content-type")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    if content_type == patch::APPLY {
        return server_side_apply(store, rt, call);
    }
    if content_type == patch::STRATEGIC && is_custom(store, rt) {
        return Err(ApiError::unsupported_media_type_for_custom_resources());
    }
    let scope = call.scope()?;
    let old = existing(store, rt, call)?;
    let mut object = patch::patch(&content_type, &old, call.body)?;
    // Strict decoding of the patched object fails the patch as invalid, quoting that object.
    let warnings =
        field_problems(rt, call, &object, Vec::new(), "").map_err(|error| {
            match error.strict_problems() {
                Some(problems) => ApiError::invalid_patch(&object.to_string(), problems),
                None => error,
            }
        })?;
    objects::check_type(rt, &call.target.version, &mut object)?;
    let response = write_update(store, rt, call, scope, &old, object)?;
    Ok(warned(response, &warnings))
}

/// Whether a CRD defines `rt` (custom resources have no strategic merge patch).
fn is_custom(store: &Store, rt: &ResourceType) -> bool {
    let crd = format!("{}.{}", rt.plural, rt.group);
    store
        .get(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "",
            &crd,
        )
        .is_some()
}

/// The tail of update and non-apply patch: writes `object` over `old`, recorded as an
/// `Update` by the call's manager.
fn write_update(
    store: &mut Store,
    rt: &ResourceType,
    call: &Call<'_>,
    scope: Scope,
    old: &Value,
    object: Value,
) -> ApiResult<Response> {
    let manager = call.manager();
    let writer = Writer {
        manager: &manager,
        api_version: &rt.api_version(&call.target.version),
        scope,
        now: &objects::now(),
    };
    let written = objects::write(
        store,
        rt,
        old,
        object,
        scope,
        Ownership::Update(&writer),
        call.write_options(&manager),
    )?;
    Ok(ok(&versioned(rt, &call.target.version, written)))
}

fn server_side_apply(store: &mut Store, rt: &ResourceType, call: &Call<'_>) -> ApiResult<Response> {
    let scope = call.scope()?;
    let manager = call
        .query
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .ok_or_else(ApiError::apply_without_field_manager)?
        .to_string();
    let mut applied: Value = serde_yaml_ng::from_slice(call.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    objects::check_type(rt, &call.target.version, &mut applied)?;
    objects::check_namespace(rt, call.target.namespace.as_deref(), &mut applied)?;
    // The field manager types the configuration with the CRD's schema before strict decoding
    // has its say: under Strict an unknown field fails there, with a 500.
    if Directive::parse(call.query.get("fieldValidation"))? == Directive::Strict
        && let Some(schema) = rt.schema(&call.target.version)
    {
        let unknown = schema::prune(schema, &mut applied.clone());
        if !unknown.is_empty() {
            let gvk = format!("{}, Kind={}", rt.api_version(&call.target.version), rt.kind);
            return Err(ApiError::typed_patch_failed(&gvk, &unknown));
        }
    }
    let warnings = field_problems(rt, call, &applied, Vec::new(), "")?;
    // What the schema does not know is neither stored nor owned.
    if let Some(schema) = rt.schema(&call.target.version) {
        schema::prune(schema, &mut applied);
    }
    let response = apply_config(store, rt, call, scope, &manager, applied)?;
    Ok(warned(response, &warnings))
}

/// Server-side apply of the pruned configuration `applied` by `manager`.
fn apply_config(
    store: &mut Store,
    rt: &ResourceType,
    call: &Call<'_>,
    scope: Scope,
    manager: &str,
    applied: Value,
) -> ApiResult<Response> {
    let name = call.target.name.clone().unwrap_or_default();
    if applied["metadata"]["name"].as_str() != Some(name.as_str()) {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            applied["metadata"]["name"]
        )));
    }
    let api_version = rt.api_version(&call.target.version);
    let writer = Writer {
        manager,
        api_version: &api_version,
        scope,
        now: &objects::now(),
    };
    let force = call.query.flag("force");
    let written = match store
        .get(&rt.group, &rt.plural, &namespace_of(call), &name)
        .cloned()
    {
        Some(live) => {
            let merged = ssa::apply(&live, &applied, &writer, force)?;
            objects::write(
                store,
                rt,
                &live,
                merged,
                scope,
                Ownership::Applied,
                call.write_options(manager),
            )?
        }
        None if scope == Scope::Status => {
            return Err(ApiError::not_found(&rt.group, &rt.plural, &name));
        }
        None => {
            let skeleton = json!({
                "apiVersion": api_version,
                "kind": rt.kind,
                "metadata": {"name": name, "namespace": applied["metadata"]["namespace"]},
            });
            let mut merged = ssa::apply(&skeleton, &applied, &writer, force)?;
            objects::check_namespace(rt, call.target.namespace.as_deref(), &mut merged)?;
            return store_new(store, rt, call, merged, manager, true);
        }
    };
    Ok(ok(&versioned(rt, &call.target.version, written)))
}

fn propagation(call: &Call<'_>) -> ApiResult<Propagation> {
    let body: Value = serde_json::from_slice(call.body).unwrap_or(Value::Null);
    let from_body = body["propagationPolicy"].as_str().map(String::from);
    let from_orphan = match body["orphanDependents"]
        .as_bool()
        .or_else(|| call.query.get("orphanDependents").map(|v| v == "true"))
    {
        Some(true) => Some("Orphan".to_string()),
        _ => None,
    };
    let policy = call
        .query
        .get("propagationPolicy")
        .map(String::from)
        .or(from_body)
        .or(from_orphan);
    Propagation::parse(policy.as_deref())
}

fn delete(store: &mut Store, rt: &ResourceType, call: &Call<'_>) -> ApiResult<Response> {
    let old = existing(store, rt, call)?;
    let body: Value = serde_json::from_slice(call.body).unwrap_or(Value::Null);
    let preconditions = &body["preconditions"];
    for (field, actual) in [
        ("uid", &old["metadata"]["uid"]),
        ("resourceVersion", &old["metadata"]["resourceVersion"]),
    ] {
        if let Some(expected) = preconditions[field].as_str()
            && Some(expected) != actual.as_str()
        {
            return Err(ApiError::conflict(
                &rt.group,
                &rt.plural,
                call.target.name.as_deref().unwrap_or_default(),
            ));
        }
    }
    let dry_run = call.dry_run()
        || body["dryRun"]
            .as_array()
            .is_some_and(|d| d.iter().any(|v| v == "All"));
    let (namespace, name) = super::store::key_of(&old);
    let deleted = objects::delete(store, rt, &namespace, &name, propagation(call)?, dry_run)?;
    if deleted["metadata"]["deletionTimestamp"].is_string() {
        // Finalizers hold it: the answer is the object, marked for deletion.
        return Ok(ok(&versioned(rt, &call.target.version, deleted)));
    }
    let mut details = json!({"name": name, "kind": rt.plural, "uid": deleted["metadata"]["uid"]});
    if !rt.group.is_empty() {
        details["group"] = json!(rt.group);
    }
    Ok(ok(&json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })))
}

fn delete_collection(store: &mut Store, rt: &ResourceType, call: &Call<'_>) -> ApiResult<Response> {
    let targets: Vec<(String, String)> = selected(store, rt, call)?
        .into_iter()
        .map(super::store::key_of)
        .collect();
    let policy = propagation(call)?;
    let mut items = Vec::new();
    for (namespace, name) in targets {
        items.push(versioned(
            rt,
            &call.target.version,
            objects::delete(store, rt, &namespace, &name, policy, call.dry_run())?,
        ));
    }
    Ok(ok(&json!({
        "kind": rt.list_kind,
        "apiVersion": rt.api_version(&call.target.version),
        "metadata": { "resourceVersion": store.resource_version().to_string() },
        "items": items,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_into_targets() {
        let t = Target::parse("/api/v1/namespaces/default/configmaps/x").unwrap();
        assert_eq!(
            (
                t.group.as_str(),
                t.namespace.as_deref(),
                t.plural.as_str(),
                t.name.as_deref()
            ),
            ("", Some("default"), "configmaps", Some("x"))
        );
        let t = Target::parse("/api/v1/namespaces/default/status").unwrap();
        assert_eq!(
            (
                t.plural.as_str(),
                t.name.as_deref(),
                t.subresource.as_deref()
            ),
            ("namespaces", Some("default"), Some("status"))
        );
        let t = Target::parse("/api/v1/namespaces/default").unwrap();
        assert_eq!(
            (t.plural.as_str(), t.name.as_deref(), t.namespace),
            ("namespaces", Some("default"), None)
        );
        let t = Target::parse("/apis/apps/v1/namespaces/n/deployments/web/status").unwrap();
        assert_eq!(
            (t.group.as_str(), t.subresource.as_deref()),
            ("apps", Some("status"))
        );
        let t = Target::parse("/api/v1/configmaps").unwrap();
        assert_eq!((t.namespace, t.name), (None, None));
        assert!(Target::parse("/healthz").is_none());
    }
}
