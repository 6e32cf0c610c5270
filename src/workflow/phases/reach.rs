//! reach: the one answer every env command branches on. Does the env exist — asked of
//! Terraform through the root's own backend and selected workspace (`state pull`), never a
//! guessed file path — can its cluster be reached with the credentials Terraform gives, and
//! whose cluster is it (the ownership record on `flux-system`, as create-env checks it).
//! Looking changes nothing; a failure to see is a state of its own (unauthorised, unreachable)
//! or an error, never "gone". The steps that delete from a cluster take an [`OwnCluster`], which
//! only this phase makes, and teardown's destroy takes a [`Cleared`].

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use crate::cluster::ownership::{self, WrittenBy, list};
use crate::cluster::{self, ClusterError, Connection, Owner, Ownership, OwnershipError};
use crate::config::EnvConfig;
use crate::contract::Contract;
use crate::error::{Error, Result};
use crate::render::cluster_dir;
use crate::terraform::{EnvRoot, Terraform};

/// How long a cluster gets to answer: the one budget policy of every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patience {
    /// An API server Terraform has just created may take minutes to come up.
    NewCluster,
    /// A cluster that exists answers at once; this covers a slow network (status, drift,
    /// plan, and rebuild's look before it applies).
    Existing,
    /// Teardown retries a cluster that does not answer within its `--timeout`.
    Within(Duration),
}

impl Patience {
    pub fn budget(self) -> Duration {
        match self {
            Patience::NewCluster => Duration::from_secs(180),
            Patience::Existing => Duration::from_secs(15),
            Patience::Within(timeout) => timeout,
        }
    }
}

/// A cluster that answered the env's credentials.
pub struct Reached {
    pub connection: Connection,
    pub contract: Contract,
}

impl Reached {
    pub fn client(&self) -> &Client {
        &self.connection.client
    }
}

/// The env's own cluster, proven by its ownership record. Only this phase makes one: a step
/// that deletes from a cluster asks for it, so none can run on a cluster not proven the env's.
pub struct OwnCluster {
    reached: Reached,
}

impl OwnCluster {
    pub fn client(&self) -> &Client {
        self.reached.client()
    }

    /// Flux and the env's apps are gone from its cluster (flux-uninstall, the last step that
    /// deletes from it, says so by giving the cluster up).
    pub fn emptied(self) -> Cleared {
        Cleared { _private: () }
    }
}

/// Teardown may destroy the env's Terraform resources: its cluster was emptied of the env, is
/// gone, or is left as it is on purpose (and reported). Made only here.
#[derive(Debug)]
pub struct Cleared {
    _private: (),
}

/// What is known of the env and its cluster.
pub enum Reach {
    /// Terraform shows no cluster: no state, or a state without resources.
    Gone { why: String },
    /// The cluster answers and its record names this env.
    Ours(OwnCluster),
    /// The cluster answers and holds neither a record nor Flux's sync objects.
    Unclaimed(Reached),
    /// Flux's sync objects without a record of any env (another tool bootstrapped it).
    UnownedFlux {
        reached: Reached,
        objects: Vec<WrittenBy>,
    },
    /// The record names another env.
    OtherEnv { owner: Owner },
    /// The cluster refused the credentials (401, 403, a CA that does not fit).
    Unauthorised(Error),
    /// The cluster did not answer within the budget.
    Unreachable(Error),
}

impl Reach {
    /// One line for the step's summary.
    pub fn describe(&self) -> String {
        match self {
            Reach::Gone { why } => format!("no cluster: {why}"),
            Reach::Ours(_) => "cluster reachable, owned by this env".to_owned(),
            Reach::Unclaimed(_) => "cluster reachable, no env's record and no Flux".to_owned(),
            Reach::UnownedFlux { objects, .. } => format!(
                "cluster reachable, Flux without an env's record ({})",
                list(objects)
            ),
            Reach::OtherEnv { owner } => format!("the cluster belongs to env {}", owner.env),
            Reach::Unauthorised(err) => format!("credentials refused: {}", err.message()),
            Reach::Unreachable(err) => format!("cluster not answering: {}", err.message()),
        }
    }

    /// The cluster for a run that writes to it (create-env, rebuild after their apply): the
    /// env's own or an unclaimed one; one another tool bootstrapped only when `adopt`; else
    /// the reason it may not, as an error. Returns whether the run adopts.
    pub fn admit(self, env: &str, adopt: bool) -> Result<(Reached, bool)> {
        match self {
            Reach::Ours(own) => Ok((own.reached, false)),
            Reach::Unclaimed(reached) => Ok((reached, false)),
            Reach::UnownedFlux { reached, .. } if adopt => Ok((reached, true)),
            Reach::UnownedFlux { objects, .. } => Err(OwnershipError::Foreign {
                env: env.to_owned(),
                objects,
            }
            .into()),
            Reach::OtherEnv { owner } => Err(OwnershipError::OtherEnv {
                env: env.to_owned(),
                owner,
            }
            .into()),
            Reach::Unauthorised(err) | Reach::Unreachable(err) => Err(err),
            Reach::Gone { why } => Err(Error::failure(format!(
                "env {env} has no cluster to write to: {why}"
            ))),
        }
    }

    /// Refuses an env Terraform shows no cluster of, as a read-only command does.
    pub fn created(&self, env: &str) -> Result<()> {
        match self {
            Reach::Gone { why } => Err(not_created(env, why)),
            _ => Ok(()),
        }
    }

    /// The cluster for a command that only reads it (status, drift, plan): one that is not
    /// the env's is never reported as the env's.
    pub fn readable(self, env: &str) -> Result<Reached> {
        match self {
            Reach::Ours(own) => Ok(own.reached),
            Reach::Unclaimed(reached) => Ok(reached),
            Reach::Gone { why } => Err(not_created(env, &why)),
            Reach::UnownedFlux { objects, .. } => Err(Error::bad_input(format!(
                "the cluster of env {env} runs a Flux no env recorded ({}): it is not reported as env {env}'s",
                list(&objects)
            ))
            .with_hint(format!(
                "`gitops-bootstrap create-env {env} --adopt` takes it over"
            ))),
            Reach::OtherEnv { owner } => Err(Error::bad_input(format!(
                "the cluster env {env}'s Terraform gives belongs to {owner}: it is not reported as env {env}'s"
            ))
            .with_hint(format!(
                "point env {env}'s Terraform at its own cluster, or ask about env {}",
                owner.env
            ))),
            Reach::Unauthorised(err) | Reach::Unreachable(err) => Err(err),
        }
    }
}

/// What teardown does with the env's cluster, decided from what reach found.
pub enum TeardownTarget {
    /// The env's own cluster: its apps and Flux are removed.
    Empty(Box<OwnCluster>),
    /// Nothing of the env to remove, or the cluster is left as it is on purpose.
    Skip { reason: String, cleared: Cleared },
}

impl Reach {
    /// Only the env's own cluster is emptied; another env's (or a Flux no env recorded) stops
    /// the teardown before anything is deleted unless `leave_cluster`; refused credentials
    /// stop it; a cluster that never answered stops it unless `force`.
    pub fn for_teardown(
        self,
        env: &str,
        leave_cluster: bool,
        force: bool,
    ) -> Result<TeardownTarget> {
        let skip = |reason: String| {
            let cleared = Cleared { _private: () };
            Ok(TeardownTarget::Skip { reason, cleared })
        };
        let leave_hint = format!(
            "to destroy only env {env}'s Terraform resources and remove clusters/{env}/ from Git, leaving that cluster as it is, rerun with --leave-cluster"
        );
        match self {
            _ if leave_cluster => skip("the cluster is left as it is (--leave-cluster)".to_owned()),
            Reach::Ours(own) => Ok(TeardownTarget::Empty(Box::new(own))),
            Reach::Gone { why } => skip(format!("no cluster to empty: {why}")),
            Reach::Unclaimed(_) => skip(format!(
                "the cluster holds no record of env {env} and no Flux: nothing of the env is on it"
            )),
            Reach::OtherEnv { owner } => Err(Error::bad_input(format!(
                "the cluster env {env}'s Terraform gives belongs to {owner}: tearing env {env} down would delete that env's apps and Flux, so nothing was deleted"
            ))
            .with_hint(leave_hint)),
            Reach::UnownedFlux { objects, .. } => Err(Error::bad_input(format!(
                "the cluster env {env}'s Terraform gives runs a Flux no env recorded ({}): it is not env {env}'s to delete, so nothing was deleted",
                list(&objects)
            ))
            .with_hint(leave_hint)),
            Reach::Unauthorised(err) => Err(err.context("nothing was torn down")),
            Reach::Unreachable(_) if force => skip(
                "the cluster did not answer: its apps, Flux and cloud-backed objects are left behind (--force)".to_owned(),
            ),
            Reach::Unreachable(err) => Err(Error::failure(format!(
                "{}: env {env}'s apps, Flux and the objects that own cloud resources (LoadBalancer Services, PVCs) could not be removed, so nothing was torn down",
                err.message()
            ))
            .with_hint(
                "check the endpoint and the network, then rerun; if the cluster is gone for good, rerun with --force to destroy the env's Terraform resources and remove it from Git anyway",
            )),
        }
    }
}

fn not_created(env: &str, why: &str) -> Error {
    Error::bad_input(format!("env {env} has not been created yet: {why}"))
        .with_hint(format!("run `gitops-bootstrap create-env {env}`"))
}

/// The ownership record the env leaves on its cluster: repository, branch and the path Flux
/// syncs.
pub fn owner(env: &EnvConfig) -> Owner {
    Owner {
        env: env.name.clone(),
        repository: env.repository.url.clone(),
        branch: env.repository.branch.clone(),
        path: cluster_dir(&env.repository.path, &env.name),
    }
}

/// Asks Terraform whether the env exists, then its cluster whose it is. Errors are failures to
/// ask (Terraform, outputs that break the contract), never read as "gone".
pub async fn run(
    tf: &Terraform,
    root: &EnvRoot,
    env: &EnvConfig,
    patience: Patience,
    cancel: &CancellationToken,
) -> Result<Reach> {
    let state = tf.state(root, cancel).await?;
    if !state.exists {
        return Ok(Reach::Gone {
            why: "no Terraform state".to_owned(),
        });
    }
    if state.resources == 0 {
        return Ok(Reach::Gone {
            why: "no resources in its Terraform state".to_owned(),
        });
    }
    let contract = Contract::from_outputs(&tf.outputs(root, cancel).await?, &env.outputs)?;
    cluster(contract, &owner(env), patience).await
}

/// Connects with the contract's access and reads the cluster's record (create-env and rebuild
/// call it after their apply, with the contract it gave).
pub async fn cluster(contract: Contract, owner: &Owner, patience: Patience) -> Result<Reach> {
    let connection = match cluster::connect(&contract.access, patience.budget()).await {
        Ok(connection) => connection,
        Err(err @ (ClusterError::Rejected { .. } | ClusterError::UntrustedServer { .. })) => {
            return Ok(Reach::Unauthorised(err.into()));
        }
        Err(err @ ClusterError::Unreachable { .. }) => return Ok(Reach::Unreachable(err.into())),
        Err(err) => return Err(err.into()),
    };
    let found = match ownership::observe(&connection.client, owner).await {
        Ok(found) => found,
        Err(OwnershipError::Refused { code, message, .. }) => {
            return Ok(Reach::Unauthorised(
                connection.rejected(code, message).into(),
            ));
        }
        Err(err) => return Err(err.into()),
    };
    let reached = Reached {
        connection,
        contract,
    };
    Ok(match found {
        Ownership::ThisEnv => Reach::Ours(OwnCluster { reached }),
        Ownership::Unclaimed => Reach::Unclaimed(reached),
        Ownership::Foreign { objects } => Reach::UnownedFlux { reached, objects },
        Ownership::OtherEnv { owner } => Reach::OtherEnv { owner },
    })
}

/// The uid of the `kube-system` namespace: a cluster's identity across runs.
pub async fn cluster_uid(client: &Client) -> Option<String> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces.get_opt("kube-system").await.ok()??.metadata.uid
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ExitStatus;

    fn other_env() -> Reach {
        Reach::OtherEnv {
            owner: Owner {
                env: "prod".to_owned(),
                repository: "https://git.example.test/fleet.git".to_owned(),
                branch: "main".to_owned(),
                path: "clusters/prod".to_owned(),
            },
        }
    }

    fn gone() -> Reach {
        Reach::Gone {
            why: "no Terraform state".to_owned(),
        }
    }

    /// What teardown does with each state that needs no live cluster to build: skip (with the
    /// reason) or stop with an exit status and the flag that would let it go on.
    #[test]
    fn teardown_empties_only_its_own_cluster_and_never_reads_not_seeing_as_gone() {
        let refused = || Reach::Unauthorised(Error::bad_input("HTTP 401"));
        let silent = || Reach::Unreachable(Error::new(ExitStatus::TimedOut, "no answer"));
        // Ok: skipped, saying this; Err: stopped with this status, saying this.
        type Expected = Result<&'static str, (ExitStatus, &'static str)>;
        let cases: [(&str, Reach, bool, bool, Expected); 7] = [
            ("gone", gone(), false, false, Ok("no cluster to empty")),
            (
                "other env",
                other_env(),
                false,
                false,
                Err((ExitStatus::BadInput, "--leave-cluster")),
            ),
            (
                "other env, left",
                other_env(),
                true,
                false,
                Ok("--leave-cluster"),
            ),
            (
                "refused",
                refused(),
                false,
                true,
                Err((ExitStatus::BadInput, "nothing was torn down")),
            ),
            (
                "refused, left",
                refused(),
                true,
                false,
                Ok("--leave-cluster"),
            ),
            (
                "silent",
                silent(),
                false,
                false,
                Err((ExitStatus::Failure, "--force")),
            ),
            ("silent, forced", silent(), false, true, Ok("(--force)")),
        ];
        for (name, reach, leave, force, expected) in cases {
            match (reach.for_teardown("dev", leave, force), expected) {
                (Ok(TeardownTarget::Skip { reason, .. }), Ok(said)) => {
                    assert!(reason.contains(said), "{name}: {reason}");
                }
                (Err(err), Err((status, hint))) => {
                    assert_eq!(err.status(), status, "{name}: {err}");
                    let told = format!("{} {}", err.message(), err.hint().unwrap_or_default());
                    assert!(told.contains(hint), "{name}: {told}");
                }
                (Ok(TeardownTarget::Empty(_)), _) => panic!("{name}: emptied a cluster"),
                (Ok(_), Err(_)) => panic!("{name}: went on"),
                (Err(err), Ok(_)) => panic!("{name}: stopped: {err}"),
            }
        }
    }

    #[test]
    fn read_only_commands_refuse_an_env_never_created_and_another_envs_cluster() {
        let err = gone().readable("dev").err().unwrap();
        assert_eq!(
            err.message(),
            "env dev has not been created yet: no Terraform state"
        );
        assert!(gone().created("dev").is_err());
        assert!(other_env().created("dev").is_ok());
        let err = other_env().readable("dev").err().unwrap();
        assert_eq!(err.status(), ExitStatus::BadInput);
        assert!(err.message().contains("belongs to env prod"), "{err}");
    }
}
