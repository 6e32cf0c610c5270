//! The head create-env and rebuild share: the env's infrastructure applied, its cluster
//! connected (and whose it is checked before anything is written), and the config and secrets
//! Flux needs written into it — three named steps.

use kube::Client;

use super::EnvRun;
use super::phases::connect::Connected;
use super::phases::preflight::Prepared;
use super::phases::terraform_apply::ApplyPolicy;
use super::phases::{config_and_secrets, connect, reach, terraform_apply};
use crate::cluster::substituted::ConfigReconcile;
use crate::cluster::{BootstrapInputs, SopsAgeKey};
use crate::config::{Config, EnvConfig};
use crate::contract::Contract;
use crate::error::Result;

/// A cluster ready for Flux.
pub struct ClusterUp {
    pub contract: Contract,
    pub client: Client,
    /// The cluster is being taken over from another tool.
    pub adopting: bool,
    /// Its `kube-system` uid: the cluster's identity across runs.
    pub uid: Option<String>,
    /// The reconcile requested of the Kustomizations substituting from changed config.
    pub config_reconcile: ConfigReconcile,
}

/// Runs the steps terraform, connect and config-and-secrets with what preflight prepared;
/// records the cluster's uid. `flux_version`: the Flux the env will run (what create-env
/// commits, what rebuild restores), which labels the config objects. `adopt`: take over a
/// cluster another tool bootstrapped.
pub async fn apply_connect_and_configure<F>(
    run: &mut EnvRun<'_>,
    config: &Config,
    env: &EnvConfig,
    prepared: &Prepared<F>,
    flux_version: &str,
    policy: ApplyPolicy,
    adopt: bool,
) -> Result<ClusterUp> {
    let (reporter, cancel) = (run.reporter(), run.cancel().clone());
    let terraform =
        terraform_apply::run(&prepared.terraform, config, env, policy, reporter, &cancel);
    let contract = run.step("terraform", terraform).await?;
    let owner = reach::owner(env);
    let connect = connect::run(&contract, &owner, adopt);
    let Connected { client, adopting } = run.step("connect", connect).await?;
    let uid = reach::cluster_uid(&client).await;
    run.record().cluster_uid.clone_from(&uid);
    let age_key = SopsAgeKey {
        env_name: env.name.clone(),
        identity: prepared.age_key.identity.clone(),
    };
    let inputs = BootstrapInputs {
        contract: &contract,
        names: &env.repository.substitution,
        git: &prepared.read_credentials,
        age_key: &age_key,
        owner: &owner,
        install: env.flux.install,
        flux_version,
    };
    let bootstrap = config_and_secrets::run(&client, inputs);
    let config_reconcile = run.step("config-and-secrets", bootstrap).await?;
    Ok(ClusterUp {
        contract,
        client,
        adopting,
        uid,
        config_reconcile,
    })
}
