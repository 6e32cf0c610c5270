//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), as kubectl sends them for
//! built-in kinds (`kubectl create namespace|configmap|secret|deployment|service…`): the
//! `k8s\0` envelope around a `runtime.Unknown` whose `raw` is the object, decoded with the
//! `k8s-pb` types and turned into the JSON the rest of the server stores.
//!
//! Each conversion takes the fields it knows out of the decoded message and then checks that
//! nothing else was set, so a field this server does not convert is refused with 415 (the
//! client may send JSON instead) rather than silently dropped. Status is dropped, as the real
//! server resets it on create.

use std::collections::BTreeMap;
use std::fmt::Debug;

use base64::Engine as _;
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::{Map, Value, json};

use super::error::{ApiError, ApiResult};

pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
/// The four bytes in front of every Kubernetes protobuf message.
const MAGIC: &[u8] = b"k8s\0";

/// The object in a protobuf request body, as JSON with its `apiVersion` and `kind`.
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| ApiError::bad_request("protobuf body without the k8s\\0 prefix"))?;
    let unknown = message::<Unknown>(envelope)?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    let raw = unknown.raw.unwrap_or_default();
    let mut object = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => namespace(message(&raw)?),
        ("v1", "ConfigMap") => config_map(message(&raw)?),
        ("v1", "Secret") => secret(message(&raw)?),
        ("v1", "ServiceAccount") => service_account(message(&raw)?),
        ("v1", "Service") => service(message(&raw)?),
        ("apps/v1", "Deployment") => deployment(message(&raw)?),
        _ => Err(ApiError::unsupported(format!(
            "the test cluster decodes protobuf bodies of Namespace, ConfigMap, Secret, \
             ServiceAccount, Service and Deployment only, not {api_version} {kind}: send JSON"
        ))),
    }?;
    object.insert("apiVersion".into(), api_version.into());
    object.insert("kind".into(), kind.into());
    Ok(Value::Object(object))
}

fn message<M: Message + Default>(bytes: &[u8]) -> ApiResult<M> {
    M::decode(bytes).map_err(|e| ApiError::bad_request(format!("invalid protobuf body: {e}")))
}

/// Refuses what is left of a message once its known fields were taken out. Go encodes every
/// non-pointer field, so empty strings, zeros and empty messages count as unset.
fn nothing_else<M: Message + Debug>(rest: M, what: &str) -> ApiResult<()> {
    if is_zero(&rest.encode_to_vec()) {
        return Ok(());
    }
    Err(ApiError::unsupported(format!(
        "the test cluster does not decode these fields of a protobuf {what}: {rest:?}; send JSON"
    )))
}

/// Whether encoded protobuf holds only zero values: varints and fixed numbers of 0, and
/// length-delimited fields that are empty or themselves hold only zeros (a non-empty string
/// never parses that way).
fn is_zero(mut bytes: &[u8]) -> bool {
    use prost::encoding::{WireType, decode_key, decode_varint};
    while !bytes.is_empty() {
        let Ok((_, wire_type)) = decode_key(&mut bytes) else {
            return false;
        };
        let zero = match wire_type {
            WireType::Varint => decode_varint(&mut bytes) == Ok(0),
            WireType::SixtyFourBit | WireType::ThirtyTwoBit => {
                let width = if wire_type == WireType::SixtyFourBit {
                    8
                } else {
                    4
                };
                let Some((number, rest)) = bytes.split_at_checked(width) else {
                    return false;
                };
                bytes = rest;
                number.iter().all(|byte| *byte == 0)
            }
            WireType::LengthDelimited => {
                let Ok(len) = decode_varint(&mut bytes) else {
                    return false;
                };
                let Some((inner, rest)) = usize::try_from(len)
                    .ok()
                    .and_then(|len| bytes.split_at_checked(len))
                else {
                    return false;
                };
                bytes = rest;
                is_zero(inner)
            }
            WireType::StartGroup | WireType::EndGroup => false,
        };
        if !zero {
            return false;
        }
    }
    true
}

/// A non-pointer Go field: its zero value means unset.
fn set_if<T: Default + PartialEq>(value: Option<T>) -> Option<T> {
    value.filter(|value| *value != T::default())
}

/// A JSON object that leaves out absent and empty values, as Go's `omitempty` does.
#[derive(Default)]
struct Obj(Map<String, Value>);

impl Obj {
    fn set(&mut self, key: &str, value: impl Into<Value>) -> &mut Obj {
        let value = value.into();
        let empty = match &value {
            Value::Null => true,
            Value::String(text) => text.is_empty(),
            Value::Object(map) => map.is_empty(),
            Value::Array(list) => list.is_empty(),
            _ => false,
        };
        if !empty {
            self.0.insert(key.into(), value);
        }
        self
    }

    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

fn strings(map: BTreeMap<String, String>) -> Value {
    json!(map)
}

fn bytes(map: BTreeMap<String, Vec<u8>>) -> Value {
    let engine = base64::engine::general_purpose::STANDARD;
    map.into_iter()
        .map(|(key, value)| (key, Value::String(engine.encode(value))))
        .collect::<Map<_, _>>()
        .into()
}

fn object_meta(meta: Option<meta::ObjectMeta>) -> ApiResult<Obj> {
    let mut meta = meta.unwrap_or_default();
    let mut out = Obj::default();
    out.set("name", meta.name.take())
        .set("generateName", meta.generate_name.take())
        .set("namespace", meta.namespace.take())
        .set("resourceVersion", meta.resource_version.take())
        .set("labels", strings(std::mem::take(&mut meta.labels)))
        .set(
            "annotations",
            strings(std::mem::take(&mut meta.annotations)),
        )
        .set("finalizers", std::mem::take(&mut meta.finalizers));
    let owners: Vec<Value> = std::mem::take(&mut meta.owner_references)
        .into_iter()
        .map(|owner| {
            let mut out = Obj::default();
            out.set("apiVersion", owner.api_version)
                .set("kind", owner.kind)
                .set("name", owner.name)
                .set("uid", owner.uid)
                .set("controller", owner.controller)
                .set("blockOwnerDeletion", owner.block_owner_deletion);
            out.done()
        })
        .collect();
    out.set("ownerReferences", owners);
    // Go always encodes the (zero) creation time; the server sets its own.
    meta.creation_timestamp = None;
    nothing_else(meta, "ObjectMeta")?;
    Ok(out)
}

fn with_metadata(meta: Option<meta::ObjectMeta>) -> ApiResult<Obj> {
    let mut out = Obj::default();
    out.set("metadata", object_meta(meta)?.done());
    Ok(out)
}

fn namespace(mut pb: core::Namespace) -> ApiResult<Map<String, Value>> {
    let mut out = with_metadata(pb.metadata.take())?;
    let spec = pb.spec.take().unwrap_or_default();
    let mut spec_json = Obj::default();
    spec_json.set("finalizers", spec.finalizers);
    out.set("spec", spec_json.done());
    pb.status = None;
    nothing_else(pb, "Namespace")?;
    Ok(out.0)
}

fn config_map(mut pb: core::ConfigMap) -> ApiResult<Map<String, Value>> {
    let mut out = with_metadata(pb.metadata.take())?;
    out.set("immutable", pb.immutable.take())
        .set("data", strings(std::mem::take(&mut pb.data)))
        .set("binaryData", bytes(std::mem::take(&mut pb.binary_data)));
    nothing_else(pb, "ConfigMap")?;
    Ok(out.0)
}

fn secret(mut pb: core::Secret) -> ApiResult<Map<String, Value>> {
    let mut out = with_metadata(pb.metadata.take())?;
    out.set("immutable", pb.immutable.take())
        .set("type", pb.r#type.take())
        .set("data", bytes(std::mem::take(&mut pb.data)))
        .set("stringData", strings(std::mem::take(&mut pb.string_data)));
    nothing_else(pb, "Secret")?;
    Ok(out.0)
}

fn service_account(mut pb: core::ServiceAccount) -> ApiResult<Map<String, Value>> {
    let mut out = with_metadata(pb.metadata.take())?;
    out.set(
        "automountServiceAccountToken",
        pb.automount_service_account_token.take(),
    );
    nothing_else(pb, "ServiceAccount")?;
    Ok(out.0)
}

fn int_or_string(value: Option<IntOrString>) -> Value {
    match value {
        Some(IntOrString {
            r#type: Some(1),
            str_val,
            ..
        }) => str_val.into(),
        Some(IntOrString { int_val, .. }) => set_if(int_val).into(),
        None => Value::Null,
    }
}

fn service(mut pb: core::Service) -> ApiResult<Map<String, Value>> {
    let mut out = with_metadata(pb.metadata.take())?;
    let mut spec = pb.spec.take().unwrap_or_default();
    let mut ports = Vec::new();
    for mut port in std::mem::take(&mut spec.ports) {
        let mut json = Obj::default();
        json.set("name", port.name.take())
            .set("protocol", port.protocol.take())
            .set("port", port.port.take())
            .set("targetPort", int_or_string(port.target_port.take()))
            .set("nodePort", set_if(port.node_port.take()));
        nothing_else(port, "ServicePort")?;
        ports.push(json.done());
    }
    let mut json = Obj::default();
    json.set("ports", ports)
        .set("selector", strings(std::mem::take(&mut spec.selector)))
        .set("clusterIP", spec.cluster_ip.take())
        .set("type", spec.r#type.take())
        .set("externalName", spec.external_name.take())
        .set("sessionAffinity", spec.session_affinity.take());
    nothing_else(spec, "ServiceSpec")?;
    out.set("spec", json.done());
    pb.status = None;
    nothing_else(pb, "Service")?;
    Ok(out.0)
}

fn deployment(mut pb: apps::Deployment) -> ApiResult<Map<String, Value>> {
    let mut out = with_metadata(pb.metadata.take())?;
    let mut spec = pb.spec.take().unwrap_or_default();
    let mut json = Obj::default();
    json.set("replicas", spec.replicas.take())
        .set("selector", label_selector(spec.selector.take())?)
        .set("template", pod_template(spec.template.take())?)
        .set("minReadySeconds", set_if(spec.min_ready_seconds.take()))
        .set("revisionHistoryLimit", spec.revision_history_limit.take())
        .set("paused", set_if(spec.paused.take()))
        .set(
            "progressDeadlineSeconds",
            spec.progress_deadline_seconds.take(),
        );
    // kubectl sends an empty strategy; the server's defaulting fills it in.
    if let Some(mut strategy) = spec.strategy.take() {
        let mut strategy_json = Obj::default();
        strategy_json.set("type", strategy.r#type.take());
        nothing_else(strategy, "DeploymentStrategy")?;
        json.set("strategy", strategy_json.done());
    }
    nothing_else(spec, "DeploymentSpec")?;
    out.set("spec", json.done());
    pb.status = None;
    nothing_else(pb, "Deployment")?;
    Ok(out.0)
}

fn label_selector(selector: Option<meta::LabelSelector>) -> ApiResult<Value> {
    let Some(mut selector) = selector else {
        return Ok(Value::Null);
    };
    let mut json = Obj::default();
    json.set(
        "matchLabels",
        strings(std::mem::take(&mut selector.match_labels)),
    );
    nothing_else(selector, "LabelSelector")?;
    Ok(json.done())
}

fn pod_template(template: Option<core::PodTemplateSpec>) -> ApiResult<Value> {
    let Some(mut template) = template else {
        return Ok(Value::Null);
    };
    let mut json = with_metadata(template.metadata.take())?;
    let mut spec = template.spec.take().unwrap_or_default();
    let mut containers = Vec::new();
    for container in std::mem::take(&mut spec.containers) {
        containers.push(container_json(container)?);
    }
    let mut spec_json = Obj::default();
    spec_json
        .set("containers", containers)
        .set("restartPolicy", spec.restart_policy.take())
        .set(
            "terminationGracePeriodSeconds",
            spec.termination_grace_period_seconds.take(),
        )
        .set("dnsPolicy", spec.dns_policy.take())
        .set("serviceAccountName", spec.service_account_name.take())
        .set("schedulerName", spec.scheduler_name.take());
    nothing_else(spec, "PodSpec")?;
    json.set("spec", spec_json.done());
    nothing_else(template, "PodTemplateSpec")?;
    // Kept even when empty: a template's metadata and spec are not omitempty.
    Ok(json.done())
}

fn container_json(mut container: core::Container) -> ApiResult<Value> {
    let mut json = Obj::default();
    let mut ports = Vec::new();
    for mut port in std::mem::take(&mut container.ports) {
        let mut port_json = Obj::default();
        port_json
            .set("name", port.name.take())
            .set("containerPort", port.container_port.take())
            .set("protocol", port.protocol.take());
        nothing_else(port, "ContainerPort")?;
        ports.push(port_json.done());
    }
    let mut env = Vec::new();
    for mut var in std::mem::take(&mut container.env) {
        let mut var_json = Obj::default();
        var_json
            .set("name", var.name.take())
            .set("value", var.value.take());
        nothing_else(var, "EnvVar")?;
        env.push(var_json.done());
    }
    let resources = container.resources.take().unwrap_or_default();
    let quantities = |map: BTreeMap<String, k8s_pb::apimachinery::pkg::api::resource::Quantity>| {
        map.into_iter()
            .map(|(key, quantity)| (key, Value::from(quantity.string)))
            .collect::<Map<_, _>>()
    };
    let mut resources_json = Obj::default();
    resources_json
        .set("limits", quantities(resources.limits))
        .set("requests", quantities(resources.requests));
    if !resources.claims.is_empty() {
        return Err(ApiError::unsupported(
            "the test cluster does not decode resource claims in protobuf bodies; send JSON",
        ));
    }
    json.set("name", container.name.take())
        .set("image", container.image.take())
        .set("command", std::mem::take(&mut container.command))
        .set("args", std::mem::take(&mut container.args))
        .set("workingDir", container.working_dir.take())
        .set("ports", ports)
        .set("env", env)
        .set("imagePullPolicy", container.image_pull_policy.take())
        .set(
            "terminationMessagePath",
            container.termination_message_path.take(),
        )
        .set(
            "terminationMessagePolicy",
            container.termination_message_policy.take(),
        )
        .set("stdin", set_if(container.stdin.take()))
        .set("tty", set_if(container.tty.take()));
    // kubectl sends `resources: {}`; Go keeps the empty struct.
    json.0.insert("resources".into(), resources_json.done());
    nothing_else(container, "Container")?;
    Ok(json.done())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        [MAGIC, &unknown.encode_to_vec()].concat()
    }

    fn meta(name: &str) -> Option<meta::ObjectMeta> {
        Some(meta::ObjectMeta {
            name: Some(name.into()),
            creation_timestamp: Some(meta::Time::default()),
            ..Default::default()
        })
    }

    #[test]
    fn a_namespace_decodes_to_json() {
        let pb = core::Namespace {
            metadata: meta("bars"),
            spec: Some(Default::default()),
            status: Some(Default::default()),
        };
        let object = decode(&envelope("v1", "Namespace", pb.encode_to_vec())).unwrap();
        assert_eq!(
            object,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bars"}})
        );
    }

    #[test]
    fn secret_bytes_become_base64() {
        let pb = core::Secret {
            metadata: meta("s"),
            data: BTreeMap::from([("k".to_string(), b"v".to_vec())]),
            r#type: Some("Opaque".into()),
            ..Default::default()
        };
        let object = decode(&envelope("v1", "Secret", pb.encode_to_vec())).unwrap();
        assert_eq!(object["data"], json!({"k": "dg=="}));
        assert_eq!(object["type"], "Opaque");
    }

    #[test]
    fn fields_it_does_not_convert_are_refused_not_dropped() {
        let pb = core::ConfigMap {
            metadata: Some(meta::ObjectMeta {
                name: Some("c".into()),
                uid: Some("1234".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let error = decode(&envelope("v1", "ConfigMap", pb.encode_to_vec())).unwrap_err();
        assert_eq!(error.code, 415);
        assert!(error.message.contains("1234"), "{}", error.message);
    }

    #[test]
    fn unknown_kinds_and_bad_envelopes_are_refused() {
        assert_eq!(
            decode(&envelope("batch/v1", "Job", vec![]))
                .unwrap_err()
                .code,
            415
        );
        assert_eq!(decode(b"{}").unwrap_err().code, 400);
    }
}
