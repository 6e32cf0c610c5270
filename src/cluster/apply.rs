//! Server-side apply of multi-document YAML: CRDs first (then wait until they are Established
//! and discovery serves their kinds), Namespaces next, then the rest, each resolved through
//! discovery and reported as created, changed or unchanged so a rerun can say "up to date".

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{ApiCapabilities, Discovery, Scope};
use kube::runtime::wait::conditions;
use kube::{Client, ResourceExt as _};
use serde::{Deserialize as _, Serialize};

use super::ObjectName;
use super::retry::{RetryFailure, await_condition, retry};
use crate::error::{Diagnose, ExitStatus};

/// Field manager of the config and secrets objects and the sync objects.
pub const CONFIG_MANAGER: &str = "gitops-bootstrap";
/// Field manager of the Flux components; they are force-applied.
pub const FLUX_MANAGER: &str = "gitops-bootstrap-flux";

const CRD_KIND: &str = "CustomResourceDefinition";
/// Objects applied at once: enough to hide round trips, few enough not to flood a server.
const CONCURRENT_APPLIES: usize = 8;

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub field_manager: &'static str,
    /// Take over fields another manager owns instead of failing with a conflict.
    pub force: bool,
    /// Before a forced apply, learn through a dry run which fields it takes from whom.
    pub report_takeovers: bool,
    /// How long new CRDs may take to be Established and served by discovery.
    pub crd_timeout: Duration,
}

impl ApplyOptions {
    pub fn new(field_manager: &'static str) -> ApplyOptions {
        ApplyOptions {
            field_manager,
            force: false,
            report_takeovers: false,
            crd_timeout: Duration::from_secs(60),
        }
    }

    pub fn forced(mut self) -> ApplyOptions {
        self.force = true;
        self
    }

    /// Forced, reporting the fields taken over: objects the tool owns, whoever (another tool
    /// before an adoption, a hand edit) set fields of them.
    pub fn adopting(mut self) -> ApplyOptions {
        self.force = true;
        self.report_takeovers = true;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyOutcome {
    Created,
    Changed,
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppliedObject {
    pub object: ObjectName,
    pub outcome: ApplyOutcome,
    /// Fields a forced apply took from other field managers (when asked to report them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub taken_over: Vec<Takeover>,
}

/// One field a forced apply took from another field manager, as the API server's conflict
/// named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Takeover {
    pub field: String,
    pub manager: String,
}

/// What an apply did, object by object, in apply order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplySummary {
    pub objects: Vec<AppliedObject>,
}

impl ApplySummary {
    /// True when nothing was created or changed.
    pub fn is_up_to_date(&self) -> bool {
        self.objects
            .iter()
            .all(|o| o.outcome == ApplyOutcome::Unchanged)
    }

    pub fn count(&self, outcome: ApplyOutcome) -> usize {
        self.objects.iter().filter(|o| o.outcome == outcome).count()
    }

    /// Every field taken over, with its object: `Kustomization flux-system/flux-system
    /// .spec.path from kustomize-controller`.
    pub fn takeovers(&self) -> Vec<String> {
        self.objects
            .iter()
            .flat_map(|o| {
                o.taken_over
                    .iter()
                    .map(move |t| format!("{} {} from {}", o.object, t.field, t.manager))
            })
            .collect()
    }

    pub fn extend(&mut self, other: ApplySummary) {
        self.objects.extend(other.objects);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("failed to parse YAML document {document}: {message}")]
    Parse { document: usize, message: String },
    #[error("YAML document {document} is not a Kubernetes object: {reason}")]
    NotAnObject { document: usize, reason: String },
    #[error("failed to discover the cluster's API resources: {source}")]
    Discovery {
        #[source]
        source: kube::Error,
    },
    #[error("failed to apply {object}: the cluster does not serve {api_version} {kind}")]
    UnknownKind {
        object: ObjectName,
        api_version: String,
        kind: String,
    },
    #[error("failed to read {object}: {message}")]
    Read {
        object: ObjectName,
        message: String,
        /// The API server took the request and did not answer in time.
        unanswered: bool,
    },
    #[error("failed to apply {object}: {message}")]
    Apply {
        object: ObjectName,
        code: u16,
        message: String,
        unanswered: bool,
    },
    #[error(
        "CustomResourceDefinition {name} was not Established within {}",
        crate::report::duration(*timeout)
    )]
    CrdNotEstablished { name: String, timeout: Duration },
    #[error("failed to watch CustomResourceDefinition {name}: {message}")]
    CrdWatch { name: String, message: String },
    #[error(
        "discovery did not serve {api_version} {kind} within {} of its CRD being Established",
        crate::report::duration(*timeout)
    )]
    KindNotServed {
        api_version: String,
        kind: String,
        timeout: Duration,
    },
}

impl ApplyError {
    pub(super) fn read(object: &ObjectName, err: &kube::Error) -> ApplyError {
        ApplyError::Read {
            object: object.clone(),
            message: super::api_message(err),
            unanswered: super::unanswered(err),
        }
    }

    pub(super) fn apply(object: &ObjectName, err: &kube::Error) -> ApplyError {
        ApplyError::Apply {
            object: object.clone(),
            code: match err {
                kube::Error::Api(status) => status.code,
                _ => 0,
            },
            message: super::api_message(err),
            unanswered: super::unanswered(err),
        }
    }
}

impl Diagnose for ApplyError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            ApplyError::Parse { .. } | ApplyError::NotAnObject { .. } => ExitStatus::BadInput,
            ApplyError::CrdNotEstablished { .. }
            | ApplyError::KindNotServed { .. }
            | ApplyError::Read {
                unanswered: true, ..
            }
            | ApplyError::Apply {
                unanswered: true, ..
            } => ExitStatus::TimedOut,
            _ => ExitStatus::Failure,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            ApplyError::UnknownKind { .. } => {
                Some("install the CustomResourceDefinition of that kind first (for Flux kinds: the Flux components)".to_owned())
            }
            ApplyError::Read {
                unanswered: true, ..
            }
            | ApplyError::Apply {
                unanswered: true, ..
            } => Some(
                "the API server took the request and gave no answer: check its health (the control plane, its load balancer, the network), then rerun: nothing is redone".to_owned(),
            ),
            ApplyError::Apply { code: 409, .. } => Some(
                "another field manager owns these fields; change them through that tool, or remove its ownership".to_owned(),
            ),
            ApplyError::Apply { code: 401 | 403, .. } => Some(
                "the cluster credentials from the Terraform outputs lack the rights to write this object".to_owned(),
            ),
            // Discovery is the first request of a step that applies, and an apply without an
            // HTTP status never got an answer: the API server (or the way to it) went away
            // after connect.
            ApplyError::Discovery { .. } | ApplyError::Apply { code: 0, .. } => Some(
                "the cluster's API server stopped answering after connect: check that it is up \
                 and reachable (`kubectl get --raw /readyz`), then rerun; every step picks up \
                 where it stopped"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

/// Parses a multi-document manifest; empty documents are skipped and `List`s expanded.
pub fn parse_documents(yaml: &str) -> Result<Vec<DynamicObject>, ApplyError> {
    let mut objects = Vec::new();
    for (index, document) in serde_yaml_ng::Deserializer::from_str(yaml).enumerate() {
        let number = index + 1;
        let value = serde_json::Value::deserialize(document).map_err(|err| ApplyError::Parse {
            document: number,
            message: err.to_string(),
        })?;
        match value {
            serde_json::Value::Null => {}
            serde_json::Value::Object(ref map)
                if map
                    .get("kind")
                    .and_then(|k| k.as_str())
                    .is_some_and(|k| k.ends_with("List"))
                    && map.get("items").is_some_and(|i| i.is_array()) =>
            {
                for item in map["items"].as_array().into_iter().flatten() {
                    objects.push(to_object(number, item.clone())?);
                }
            }
            value => objects.push(to_object(number, value)?),
        }
    }
    Ok(objects)
}

fn to_object(document: usize, value: serde_json::Value) -> Result<DynamicObject, ApplyError> {
    let not_an_object = |reason: &str| ApplyError::NotAnObject {
        document,
        reason: reason.to_owned(),
    };
    let object: DynamicObject =
        serde_json::from_value(value).map_err(|err| not_an_object(&err.to_string()))?;
    if object
        .types
        .as_ref()
        .is_none_or(|t| t.api_version.is_empty() || t.kind.is_empty())
    {
        return Err(not_an_object("apiVersion and kind are required"));
    }
    if object.metadata.name.as_deref().is_none_or(str::is_empty) {
        return Err(not_an_object("metadata.name is required"));
    }
    Ok(object)
}

/// CRDs first, Namespaces next, everything else after, as the API server needs them.
pub fn apply_rank(object: &DynamicObject) -> u8 {
    match object.types.as_ref().map(|t| t.kind.as_str()) {
        Some(CRD_KIND) => 0,
        Some("Namespace") => 1,
        _ => 2,
    }
}

pub fn object_name(object: &DynamicObject) -> ObjectName {
    ObjectName::new(
        object.types.as_ref().map_or("", |t| t.kind.as_str()),
        object.metadata.namespace.as_deref(),
        &object.name_any(),
    )
}

/// Parses and applies a manifest (see [`apply_objects`]).
pub async fn apply_yaml(
    client: &Client,
    yaml: &str,
    options: &ApplyOptions,
) -> Result<ApplySummary, ApplyError> {
    apply_objects(client, parse_documents(yaml)?, options).await
}

/// Server-side applies `objects`: CRDs first and waited for, then Namespaces, then the rest.
pub async fn apply_objects(
    client: &Client,
    mut objects: Vec<DynamicObject>,
    options: &ApplyOptions,
) -> Result<ApplySummary, ApplyError> {
    objects.sort_by_key(apply_rank);
    let crd_count = objects.iter().take_while(|o| apply_rank(o) == 0).count();
    let rest = objects.split_off(crd_count);
    let crds = objects;

    let mut summary = ApplySummary::default();
    let mut resolver = Resolver::discover(client, &crds, &rest).await?;
    let defined_groups: BTreeSet<String> = crds.iter().filter_map(crd_group).collect();
    summary.extend(apply_together(client, &resolver, crds, options).await?);
    if !summary.objects.is_empty() {
        let names: Vec<String> = summary
            .objects
            .iter()
            .map(|o| o.object.name.clone())
            .collect();
        wait_established(client, &names, options.crd_timeout).await?;
        let defined: Vec<GroupVersionKind> = rest
            .iter()
            .map(gvk_of)
            .filter(|gvk| defined_groups.contains(&gvk.group))
            .collect();
        resolver
            .refresh_until_served(&defined, options.crd_timeout)
            .await?;
    }
    // Namespaces before what goes into them.
    let namespaced = rest
        .iter()
        .position(|o| apply_rank(o) > 1)
        .unwrap_or(rest.len());
    let mut rest = rest;
    let others = rest.split_off(namespaced);
    summary.extend(apply_together(client, &resolver, rest, options).await?);
    summary.extend(apply_together(client, &resolver, others, options).await?);
    Ok(summary)
}

/// Applies objects that do not depend on each other several at a time (a round trip each is
/// most of an apply's time), reported in their order.
async fn apply_together(
    client: &Client,
    resolver: &Resolver,
    objects: Vec<DynamicObject>,
    options: &ApplyOptions,
) -> Result<ApplySummary, ApplyError> {
    let objects = futures::stream::iter(objects)
        .map(|object| apply_one(client, resolver, object, options))
        .buffered(CONCURRENT_APPLIES)
        .try_collect()
        .await?;
    Ok(ApplySummary { objects })
}

/// The API of the object's kind, its namespace settled by the kind's scope.
pub(super) fn api_of(
    client: &Client,
    resolver: &Resolver,
    object: &mut DynamicObject,
) -> Result<Api<DynamicObject>, ApplyError> {
    let gvk = gvk_of(object);
    let (resource, capabilities) =
        resolver
            .resolve(&gvk)
            .ok_or_else(|| ApplyError::UnknownKind {
                object: object_name(object),
                api_version: gvk.api_version(),
                kind: gvk.kind.clone(),
            })?;
    Ok(match capabilities.scope {
        Scope::Cluster => {
            object.metadata.namespace = None;
            Api::all_with(client.clone(), &resource)
        }
        Scope::Namespaced => {
            let namespace = object
                .metadata
                .namespace
                .get_or_insert_with(|| client.default_namespace().to_owned());
            Api::namespaced_with(client.clone(), namespace, &resource)
        }
    })
}

async fn apply_one(
    client: &Client,
    resolver: &Resolver,
    mut object: DynamicObject,
    options: &ApplyOptions,
) -> Result<AppliedObject, ApplyError> {
    let api = api_of(client, resolver, &mut object)?;
    let name = object.name_any();
    let target = object_name(&object);
    let before = api
        .get_opt(&name)
        .await
        .map_err(|err| ApplyError::read(&target, &err))?;
    let apply_error = |err: kube::Error| ApplyError::apply(&target, &err);
    let taken_over = if options.force && options.report_takeovers && before.is_some() {
        let dry_run = PatchParams::apply(options.field_manager).dry_run();
        match api.patch(&name, &dry_run, &Patch::Apply(&object)).await {
            Ok(_) => Vec::new(),
            Err(kube::Error::Api(status)) if status.code == 409 => conflicts(&status),
            Err(err) => return Err(apply_error(err)),
        }
    } else {
        Vec::new()
    };
    let mut params = PatchParams::apply(options.field_manager);
    params.force = options.force;
    let after = api
        .patch(&name, &params, &Patch::Apply(&object))
        .await
        .map_err(apply_error)?;
    let outcome = match before {
        None => ApplyOutcome::Created,
        Some(before) if same_content(&before, &after) => ApplyOutcome::Unchanged,
        Some(_) => ApplyOutcome::Changed,
    };
    tracing::debug!(object = %target, ?outcome, "applied");
    Ok(AppliedObject {
        object: target,
        outcome,
        taken_over,
    })
}

/// The fields of an apply conflict and who owns them, from the Status causes
/// (`message: conflict with "kustomize-controller" using …`, `field: .spec.path`).
fn conflicts(status: &kube::core::Status) -> Vec<Takeover> {
    let causes = status.details.as_ref().map(|d| d.causes.as_slice());
    causes
        .unwrap_or_default()
        .iter()
        .map(|cause| Takeover {
            field: cause.field.clone(),
            manager: cause
                .message
                .split('"')
                .nth(1)
                .unwrap_or(&cause.message)
                .to_owned(),
        })
        .collect()
}

/// Whether an apply left the object as it was. The same resourceVersion settles it; else
/// compare what an apply can change: a controller may have written status (and its own
/// managedFields entry) between our read and our apply, which is no change of ours.
fn same_content(before: &DynamicObject, after: &DynamicObject) -> bool {
    if before.metadata.resource_version == after.metadata.resource_version {
        return true;
    }
    let content = |object: &DynamicObject| {
        let mut metadata = object.metadata.clone();
        metadata.managed_fields = None;
        metadata.resource_version = None;
        let mut data = object.data.clone();
        if let Some(map) = data.as_object_mut() {
            map.remove("status");
        }
        (metadata, data)
    };
    content(before) == content(after)
}

fn crd_group(crd: &DynamicObject) -> Option<String> {
    crd.data["spec"]["group"].as_str().map(str::to_owned)
}

pub(super) fn gvk_of(object: &DynamicObject) -> GroupVersionKind {
    let types = object.types.clone().unwrap_or_default();
    let (group, version) = match types.api_version.split_once('/') {
        Some((group, version)) => (group.to_owned(), version.to_owned()),
        None => (String::new(), types.api_version),
    };
    GroupVersionKind {
        group,
        version,
        kind: types.kind,
    }
}

/// Waits (watching, not polling) until every named CRD is Established, all at once.
async fn wait_established(
    client: &Client,
    names: &[String],
    timeout: Duration,
) -> Result<(), ApplyError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let established = names.iter().map(|name| {
        let api = api.clone();
        async move {
            let established = await_condition(api, name, conditions::is_crd_established());
            match tokio::time::timeout(timeout, established).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(err)) => Err(ApplyError::CrdWatch {
                    name: name.clone(),
                    message: err.to_string(),
                }),
                Err(_) => Err(ApplyError::CrdNotEstablished {
                    name: name.clone(),
                    timeout,
                }),
            }
        }
    });
    futures::future::try_join_all(established).await?;
    Ok(())
}

/// Discovery limited to the API groups a manifest uses.
pub(super) struct Resolver {
    client: Client,
    groups: Vec<String>,
    discovery: Discovery,
}

impl Resolver {
    pub(super) async fn discover(
        client: &Client,
        crds: &[DynamicObject],
        rest: &[DynamicObject],
    ) -> Result<Resolver, ApplyError> {
        let groups: BTreeSet<String> = crds.iter().chain(rest).map(|o| gvk_of(o).group).collect();
        let groups: Vec<String> = groups.into_iter().collect();
        let discovery = run_discovery(client, &groups)
            .await
            .map_err(|source| ApplyError::Discovery { source })?;
        Ok(Resolver {
            client: client.clone(),
            groups,
            discovery,
        })
    }

    pub(super) fn resolve(&self, gvk: &GroupVersionKind) -> Option<(ApiResource, ApiCapabilities)> {
        self.discovery.resolve_gvk(gvk)
    }

    /// Established is not the same as served by discovery: rediscover until every kind in
    /// `wanted` (the kinds the new CRDs define) resolves, or the budget is spent.
    async fn refresh_until_served(
        &mut self,
        wanted: &[GroupVersionKind],
        budget: Duration,
    ) -> Result<(), ApplyError> {
        let attempt = || async {
            let discovery = run_discovery(&self.client, &self.groups)
                .await
                .map_err(Unserved::Discovery)?;
            match wanted
                .iter()
                .find(|gvk| discovery.resolve_gvk(gvk).is_none())
            {
                Some(missing) => Err(Unserved::Kind(missing.clone())),
                None => Ok(discovery),
            }
        };
        match retry(budget, |e| matches!(e, Unserved::Kind(_)), attempt).await {
            Ok(discovery) => {
                self.discovery = discovery;
                Ok(())
            }
            Err(RetryFailure::Exhausted { last, .. } | RetryFailure::Permanent(last)) => {
                Err(match last {
                    Unserved::Kind(gvk) => ApplyError::KindNotServed {
                        api_version: gvk.api_version(),
                        kind: gvk.kind,
                        timeout: budget,
                    },
                    Unserved::Discovery(source) => ApplyError::Discovery { source },
                })
            }
        }
    }
}

enum Unserved {
    Discovery(kube::Error),
    Kind(GroupVersionKind),
}

async fn run_discovery(client: &Client, groups: &[String]) -> Result<Discovery, kube::Error> {
    let allow: Vec<&str> = groups.iter().map(String::as_str).collect();
    Discovery::new(client.clone()).filter(&allow).run().await
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "# Flux version: v2.5.1
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: source-controller
  namespace: flux-system
---
apiVersion: v1
kind: Namespace
metadata:
  name: flux-system
---
# only a comment
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gitrepositories.source.toolkit.fluxcd.io
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: a, namespace: flux-system}
";

    #[test]
    fn documents_split_skip_empties_and_expand_lists() {
        let objects = parse_documents(MANIFEST).unwrap();
        let names: Vec<String> = objects.iter().map(|o| object_name(o).to_string()).collect();
        assert_eq!(
            names,
            [
                "Deployment flux-system/source-controller",
                "Namespace flux-system",
                "CustomResourceDefinition gitrepositories.source.toolkit.fluxcd.io",
                "ConfigMap flux-system/a",
            ]
        );
    }

    #[test]
    fn crds_come_first_then_namespaces_then_the_rest_in_manifest_order() {
        let mut objects = parse_documents(MANIFEST).unwrap();
        objects.sort_by_key(apply_rank);
        let kinds: Vec<String> = objects.iter().map(|o| object_name(o).kind).collect();
        assert_eq!(kinds, [CRD_KIND, "Namespace", "Deployment", "ConfigMap"]);
    }

    #[test]
    fn documents_without_kind_or_name_are_refused_with_their_number() {
        let err = parse_documents("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nmetadata: {name: b}\n").unwrap_err();
        assert!(
            matches!(err, ApplyError::NotAnObject { document: 2, .. }),
            "{err}"
        );
        let err = parse_documents("kind: [unclosed\n").unwrap_err();
        assert!(
            matches!(err, ApplyError::Parse { document: 1, .. }),
            "{err}"
        );
        assert_eq!(err.exit_status(), ExitStatus::BadInput);
    }

    #[test]
    fn core_and_grouped_api_versions_resolve_to_gvks() {
        let objects = parse_documents(MANIFEST).unwrap();
        let gvk = gvk_of(&objects[0]);
        assert_eq!((gvk.group.as_str(), gvk.version.as_str()), ("apps", "v1"));
        let gvk = gvk_of(&objects[1]);
        assert_eq!((gvk.group.as_str(), gvk.kind.as_str()), ("", "Namespace"));
    }

    #[test]
    fn summaries_say_up_to_date_only_when_nothing_changed() {
        let object = ObjectName::namespaced("ConfigMap", "flux-system", "cluster-config");
        let mut summary = ApplySummary {
            objects: vec![AppliedObject {
                object: object.clone(),
                outcome: ApplyOutcome::Unchanged,
                taken_over: Vec::new(),
            }],
        };
        assert!(summary.is_up_to_date());
        summary.objects.push(AppliedObject {
            object,
            outcome: ApplyOutcome::Changed,
            taken_over: Vec::new(),
        });
        assert!(!summary.is_up_to_date());
        assert_eq!(summary.count(ApplyOutcome::Changed), 1);
    }
}
