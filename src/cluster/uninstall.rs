//! Uninstalling Flux by what the env applied: the objects of its install manifest (Flux's
//! components as committed, or the Flux Operator's manifest and the FluxInstance), each
//! looked up by name — not searched for by a label that manifests composed by hand may lack —
//! deleted in the order `flux uninstall` uses, and looked for again afterwards: whatever is
//! still there is left behind, so "0 left behind" is something seen, not assumed.

use std::fmt;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::discovery::Scope;
use kube::{Client, ResourceExt as _};
use serde::Serialize;

use super::apply::{ApplyError, Resolver, gvk_of, object_name, parse_documents};
use super::teardown::{
    Doomed, Leftover, TeardownError, delete_and_wait, doomed, list, look_again, remove_finalizers,
    resource_of,
};
use super::{FLUX_NAMESPACE, ObjectName, api_message};

/// What the env installed of Flux, object by object, and where that list was read.
#[derive(Debug, Clone)]
pub struct Installed {
    pub origin: String,
    objects: Vec<DynamicObject>,
}

impl Installed {
    /// The objects of an install manifest, as it was applied.
    pub fn from_manifest(yaml: &str, origin: impl fmt::Display) -> Result<Installed, ApplyError> {
        Ok(Installed {
            origin: origin.to_string(),
            objects: parse_documents(yaml)?,
        })
    }

    pub fn object_count(&self) -> usize {
        self.objects.len()
    }
}

/// What [`uninstall_flux`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FluxUninstall {
    /// Objects deleted (controllers, Flux objects, CRDs, RBAC, the namespace).
    pub deleted: usize,
    /// Flux objects whose finalizer was removed by hand once their controller was gone.
    pub finalizers_removed: Vec<ObjectName>,
    /// What is still there when looked for afterwards.
    pub leftovers: Vec<Leftover>,
}

/// An object of the manifest as the cluster holds it.
struct Present {
    doomed: Doomed,
    live: DynamicObject,
}

/// Uninstalls what `installed` lists, as `flux uninstall` does — after the FluxInstance, when
/// the Flux Operator installed Flux: the controllers first (and waits until they are gone), then the objects of its CRDs, their finalizers removed first —
/// nobody is left to honour them — then the CRDs and the rest, the `flux-system` Namespace
/// (which also holds the tool's own objects and its ownership record) last. Then every object
/// is looked for once more.
pub async fn uninstall_flux(
    client: &Client,
    installed: &Installed,
    timeout: Duration,
) -> Result<FluxUninstall, TeardownError> {
    let mut done = FluxUninstall::default();
    let present = present(client, installed).await?;
    let mut looked_for: Vec<Doomed> = present.iter().map(|p| p.doomed.clone()).collect();
    let by_operator = look_up(client, operator_installed(&present), &installed.origin).await?;
    looked_for.extend(by_operator.into_iter().map(|p| p.doomed));
    let wave = |rank: u8| -> Vec<Doomed> {
        present
            .iter()
            .filter(|p| deletion_rank(&p.doomed.object.kind) == rank)
            .map(|p| p.doomed.clone())
            .collect()
    };
    // The FluxInstance while the operator still runs (its finalizer uninstalls the Flux it
    // installed), then the controllers.
    delete_and_wait(client, &wave(0), timeout).await?;
    delete_and_wait(client, &wave(1), timeout).await?;

    let mut flux_objects = Vec::new();
    for crd in present.iter().filter(|p| p.doomed.object.kind == CRD_KIND) {
        let Some(resource) = crd_resource(&crd.live) else {
            continue;
        };
        for object in list(client, &resource, None).await? {
            let flux_object = doomed(&resource, &object);
            if !object.finalizers().is_empty() {
                remove_finalizers(client, &resource, &flux_object.object).await?;
                done.finalizers_removed.push(flux_object.object.clone());
            }
            flux_objects.push(flux_object);
        }
    }
    delete_and_wait(client, &flux_objects, timeout).await?;
    looked_for.extend(flux_objects.iter().cloned());

    delete_and_wait(client, &wave(2), timeout).await?;
    delete_and_wait(client, &wave(3), timeout).await?;
    done.deleted = present.len() + flux_objects.len();
    for object in &looked_for {
        done.leftovers.extend(look_again(client, object).await?);
    }
    Ok(done)
}

const CRD_KIND: &str = "CustomResourceDefinition";

/// The order of deletion: the FluxInstance, the controllers, the rest, the Namespace last.
fn deletion_rank(kind: &str) -> u8 {
    match kind {
        "FluxInstance" => 0,
        "Deployment" => 1,
        "Namespace" => 3,
        _ => 2,
    }
}

/// The objects of the manifest (and the `flux-system` Namespace, which the tool creates when
/// the manifest does not) that the cluster holds; a kind it does not serve has none.
async fn present(client: &Client, installed: &Installed) -> Result<Vec<Present>, TeardownError> {
    let mut objects = installed.objects.clone();
    let namespace = ObjectName::new("Namespace", None, FLUX_NAMESPACE);
    if !objects.iter().any(|o| object_name(o) == namespace) {
        let resource = resource_of::<Namespace>();
        let mut flux_namespace = DynamicObject::new(FLUX_NAMESPACE, &resource);
        flux_namespace.types = Some(kube::api::TypeMeta {
            api_version: resource.api_version.clone(),
            kind: resource.kind.clone(),
        });
        objects.push(flux_namespace);
    }
    look_up(client, objects, &installed.origin).await
}

/// What the Flux Operator installed from a FluxInstance among `present` (its
/// `status.inventory`): its finalizer deletes them, and whatever it leaves is left behind too,
/// so they are looked for afterwards like the rest.
fn operator_installed(present: &[Present]) -> Vec<DynamicObject> {
    present
        .iter()
        .filter(|p| p.doomed.object.kind == "FluxInstance")
        .filter_map(|p| p.live.data["status"]["inventory"]["entries"].as_array())
        .flatten()
        .filter_map(|entry| inventory_object(entry["id"].as_str()?, entry["v"].as_str()?))
        .collect()
}

/// An inventory entry (id `<namespace>_<name>_<group>_<kind>`, version `v`) as an object to
/// look up; Kubernetes names hold no `_`.
fn inventory_object(id: &str, version: &str) -> Option<DynamicObject> {
    let [namespace, name, group, kind] = id.split('_').collect::<Vec<_>>()[..] else {
        return None;
    };
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    let mut object = DynamicObject::new(name, &resource);
    object.types = Some(kube::api::TypeMeta {
        api_version: resource.api_version.clone(),
        kind: resource.kind.clone(),
    });
    object.metadata.namespace = (!namespace.is_empty()).then(|| namespace.to_owned());
    Some(object)
}

/// Those of `objects` the cluster holds; a kind it does not serve has none.
async fn look_up(
    client: &Client,
    objects: Vec<DynamicObject>,
    origin: &str,
) -> Result<Vec<Present>, TeardownError> {
    let resolver = Resolver::discover(client, &[], &objects)
        .await
        .map_err(|err| TeardownError::List {
            what: format!("the API resources of {origin}"),
            message: err.to_string(),
        })?;
    let mut present = Vec::new();
    for object in objects {
        let Some((resource, capabilities)) = resolver.resolve(&gvk_of(&object)) else {
            continue;
        };
        let namespace = match capabilities.scope {
            Scope::Cluster => None,
            Scope::Namespaced => Some(object.namespace().unwrap_or_else(|| "default".to_owned())),
        };
        let api = super::teardown::api(client, &resource, namespace.as_deref());
        let name = object.name_any();
        let live = api
            .get_opt(&name)
            .await
            .map_err(|err| TeardownError::List {
                what: format!("{} {name}", resource.kind),
                message: api_message(&err),
            })?;
        if let Some(live) = live {
            present.push(Present {
                doomed: doomed(&resource, &live),
                live,
            });
        }
    }
    Ok(present)
}

/// The served version of a CRD's kind, to list its objects.
fn crd_resource(crd: &DynamicObject) -> Option<ApiResource> {
    let spec = &crd.data["spec"];
    let group = spec["group"].as_str()?;
    let kind = spec["names"]["kind"].as_str()?;
    let plural = spec["names"]["plural"].as_str()?;
    let version =
        spec["versions"].as_array()?.iter().find(|v| {
            v["storage"].as_bool() == Some(true) || v["served"].as_bool() == Some(true)
        })?["name"]
            .as_str()?;
    Some(ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, kind),
        plural,
    ))
}
