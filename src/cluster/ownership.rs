//! Whose cluster is it. The env that bootstrapped a cluster is recorded on its `flux-system`
//! Namespace the way Helm records a release's ownership on the objects it manages: the label
//! `app.kubernetes.io/managed-by: gitops-bootstrap` and annotations naming the owner (env,
//! repository, branch, path). The record is read before anything is written, so a second env
//! pointed at the same cluster stops instead of overwriting the first one's config, age key and
//! sync; it lives and dies with the Namespace (teardown deletes it).

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::{Client, ResourceExt as _};
use serde::Serialize;

use super::{FLUX_NAMESPACE, ObjectName, api_message};
use crate::error::{Diagnose, ExitStatus};

pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "gitops-bootstrap";
const ENV: &str = "gitops-bootstrap.io/env";
const REPOSITORY: &str = "gitops-bootstrap.io/repository";
const BRANCH: &str = "gitops-bootstrap.io/branch";
const PATH: &str = "gitops-bootstrap.io/path";
/// The annotations of the record.
pub const RECORD_ANNOTATIONS: [&str; 4] = [ENV, REPOSITORY, BRANCH, PATH];

/// The env a cluster belongs to: its repository (a URL without credentials), branch and the
/// path Flux syncs (`clusters/<env>` under the repository's prefix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Owner {
    pub env: String,
    pub repository: String,
    pub branch: String,
    pub path: String,
}

impl Owner {
    /// The labels of the record.
    pub fn labels() -> BTreeMap<String, String> {
        BTreeMap::from([(MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned())])
    }

    /// The annotations of the record.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        [
            (ENV, &self.env),
            (REPOSITORY, &self.repository),
            (BRANCH, &self.branch),
            (PATH, &self.path),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.clone()))
        .collect()
    }

    /// The record on a Namespace, if it carries one.
    fn recorded_on(metadata: &ObjectMeta) -> Option<Owner> {
        let annotations = metadata.annotations.as_ref()?;
        let read = |key| annotations.get(key).cloned().unwrap_or_default();
        annotations.contains_key(ENV).then(|| Owner {
            env: read(ENV),
            repository: read(REPOSITORY),
            branch: read(BRANCH),
            path: read(PATH),
        })
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "env {} (repository {}, branch {}, path {})",
            self.env, self.repository, self.branch, self.path
        )
    }
}

/// An object Flux's bootstrap leaves, and the field managers that set its spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WrittenBy {
    pub object: ObjectName,
    pub managers: Vec<String>,
}

impl fmt::Display for WrittenBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (by {})", self.object, self.managers.join(", "))
    }
}

/// What the cluster says about its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Ownership {
    /// No record and no Flux sync objects: nobody bootstrapped it.
    Unclaimed,
    /// Recorded for the env asking.
    ThisEnv,
    /// Recorded for another env.
    OtherEnv { owner: Owner },
    /// Flux's sync objects without a record of ours: bootstrapped by something else (`flux
    /// bootstrap`, or a gitops-bootstrap from before records were kept).
    Foreign { objects: Vec<WrittenBy> },
}

#[derive(Debug, thiserror::Error)]
pub enum OwnershipError {
    #[error("failed to read {object} to learn whose cluster it is: {message}")]
    Read { object: ObjectName, message: String },
    /// The credentials were rejected (401) or may not read the record (403).
    #[error("the cluster refused to let these credentials read {object} (HTTP {code}): {message}")]
    Refused {
        object: ObjectName,
        code: u16,
        message: String,
    },
    #[error(
        "the cluster belongs to {owner}: env {env} would overwrite its config, its sops-age key and its Flux sync, so nothing was written"
    )]
    OtherEnv { env: String, owner: Owner },
    #[error(
        "the cluster was bootstrapped by something else: {} exist without gitops-bootstrap's record, so nothing was written",
        list(.objects)
    )]
    Foreign {
        env: String,
        objects: Vec<WrittenBy>,
    },
}

/// The objects, as a message names them.
pub fn list(objects: &[WrittenBy]) -> String {
    let names: Vec<String> = objects.iter().map(ToString::to_string).collect();
    names.join(" and ")
}

impl Diagnose for OwnershipError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            OwnershipError::Read { .. } => ExitStatus::Failure,
            OwnershipError::Refused { .. }
            | OwnershipError::OtherEnv { .. }
            | OwnershipError::Foreign { .. } => ExitStatus::BadInput,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            OwnershipError::Read { .. } | OwnershipError::Refused { .. } => None,
            OwnershipError::OtherEnv { env, owner } => Some(format!(
                "tear the other env down first (`gitops-bootstrap teardown {}` with its config), or point env {env}'s Terraform at another cluster",
                owner.env
            )),
            OwnershipError::Foreign { env, .. } => Some(format!(
                "to take the cluster over, rerun with --adopt (its objects are applied with force and the fields taken from other managers are reported); else point env {env}'s Terraform at another cluster"
            )),
        }
    }
}

/// Reads the record, and without one, whether Flux's sync objects exist and who wrote them.
pub async fn observe(client: &Client, wanted: &Owner) -> Result<Ownership, OwnershipError> {
    let namespace_name = ObjectName::new("Namespace", None, FLUX_NAMESPACE);
    let namespace = Api::<Namespace>::all(client.clone())
        .get_opt(FLUX_NAMESPACE)
        .await
        .map_err(|err| read_error(namespace_name, &err))?;
    if let Some(owner) = namespace
        .as_ref()
        .and_then(|ns| Owner::recorded_on(&ns.metadata))
    {
        return Ok(if owner == *wanted {
            Ownership::ThisEnv
        } else {
            Ownership::OtherEnv { owner }
        });
    }
    let mut objects = Vec::new();
    for (group, kind, plural, name) in SYNC_KINDS {
        let gvk = GroupVersionKind::gvk(group, "v1", kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), FLUX_NAMESPACE, &resource);
        let object = ObjectName::namespaced(kind, FLUX_NAMESPACE, name);
        match api.get_opt(name).await {
            Ok(Some(found)) => objects.push(WrittenBy {
                object,
                managers: managers(&found),
            }),
            Ok(None) => {}
            // A cluster without Flux's CRDs has no such kind at all.
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(err) => return Err(read_error(object, &err)),
        }
    }
    Ok(if objects.is_empty() {
        Ownership::Unclaimed
    } else {
        Ownership::Foreign { objects }
    })
}

/// A failure to read `object`: credentials the cluster refuses are told apart, since they are
/// the user's to fix and never mean "nothing there".
fn read_error(object: ObjectName, err: &kube::Error) -> OwnershipError {
    match err {
        kube::Error::Api(status) if matches!(status.code, 401 | 403) => OwnershipError::Refused {
            object,
            code: status.code,
            message: status.message.clone(),
        },
        other => OwnershipError::Read {
            object,
            message: api_message(other),
        },
    }
}

/// The objects `flux bootstrap` (and our sync step) leave in `flux-system`, and the
/// FluxInstance the Flux Operator's bootstrappers leave: group, kind, plural, name. Any of them
/// without our record is another tool's, taken over only with `--adopt`.
pub const SYNC_KINDS: [(&str, &str, &str, &str); 3] = [
    (
        "source.toolkit.fluxcd.io",
        "GitRepository",
        "gitrepositories",
        FLUX_NAMESPACE,
    ),
    (
        "kustomize.toolkit.fluxcd.io",
        "Kustomization",
        "kustomizations",
        FLUX_NAMESPACE,
    ),
    (
        super::flux_operator::GROUP,
        "FluxInstance",
        "fluxinstances",
        super::flux_operator::INSTANCE_NAME,
    ),
];

/// The field managers that set an object's spec (not the controllers writing its status or
/// finalizers), sorted, each once.
fn managers(object: &DynamicObject) -> Vec<String> {
    let mut managers: Vec<String> = object
        .managed_fields()
        .iter()
        .filter(|entry| {
            let fields = entry.fields_v1.as_ref().map(|f| &f.0);
            fields.is_some_and(|f| f.get("f:spec").is_some())
        })
        .filter_map(|entry| entry.manager.clone())
        .collect();
    managers.sort();
    managers.dedup();
    managers
}

/// Turns what the cluster says into go or stop for `wanted`: an unclaimed cluster and the
/// env's own go, another env's stops, a foreign one goes only when adopting. Returns whether
/// the run adopts.
pub fn admit(ownership: Ownership, wanted: &Owner, adopt: bool) -> Result<bool, OwnershipError> {
    match ownership {
        Ownership::Unclaimed | Ownership::ThisEnv => Ok(false),
        Ownership::OtherEnv { owner } => Err(OwnershipError::OtherEnv {
            env: wanted.env.clone(),
            owner,
        }),
        Ownership::Foreign { .. } if adopt => Ok(true),
        Ownership::Foreign { objects } => Err(OwnershipError::Foreign {
            env: wanted.env.clone(),
            objects,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(env: &str) -> Owner {
        Owner {
            env: env.to_owned(),
            repository: "https://git.example/gitops.git".to_owned(),
            branch: "main".to_owned(),
            path: format!("clusters/{env}"),
        }
    }

    #[test]
    fn the_record_round_trips_through_namespace_annotations() {
        let metadata = ObjectMeta {
            labels: Some(Owner::labels()),
            annotations: Some(owner("dev").annotations()),
            ..Default::default()
        };
        assert_eq!(Owner::recorded_on(&metadata), Some(owner("dev")));
        assert_eq!(Owner::recorded_on(&ObjectMeta::default()), None);
    }

    #[test]
    fn another_env_and_a_foreign_bootstrap_stop_with_exit_2_unless_adopting() {
        let other = Ownership::OtherEnv {
            owner: owner("prod"),
        };
        let err = admit(other.clone(), &owner("dev"), true).unwrap_err();
        assert_eq!(err.exit_status(), ExitStatus::BadInput);
        assert!(err.to_string().contains("env prod (repository https://git.example/gitops.git, branch main, path clusters/prod)"), "{err}");
        assert!(err.hint().unwrap().contains("teardown prod"));

        let foreign = Ownership::Foreign {
            objects: vec![WrittenBy {
                object: ObjectName::namespaced("Kustomization", "flux-system", "flux-system"),
                managers: vec!["kustomize-controller".to_owned()],
            }],
        };
        let err = admit(foreign.clone(), &owner("dev"), false).unwrap_err();
        assert_eq!(err.exit_status(), ExitStatus::BadInput);
        assert!(
            err.to_string().contains("(by kustomize-controller)"),
            "{err}"
        );
        assert!(err.hint().unwrap().contains("--adopt"));
        assert!(admit(foreign, &owner("dev"), true).unwrap());
        assert!(!admit(Ownership::ThisEnv, &owner("dev"), false).unwrap());
        assert!(!admit(Ownership::Unclaimed, &owner("dev"), false).unwrap());
    }
}
