//! The head create-env and rebuild share: the env's infrastructure applied, its cluster
//! connected (and whose it is checked before anything is written), and the config and secrets
//! Flux needs written into it — three named steps.

use kube::Client;
use tokio_util::sync::CancellationToken;

use super::Steps;
use super::phases::connect::Connected;
use super::phases::terraform_apply::ApplyPolicy;
use super::phases::{config_and_secrets, connect, reach, terraform_apply};
use crate::cluster::{BootstrapInputs, GitReadCredentials, SopsAgeKey};
use crate::config::{Config, EnvConfig};
use crate::contract::Contract;
use crate::error::Result;
use crate::keys::AgeKey;
use crate::report::Reporter;
use crate::terraform::Terraform;

/// What the cluster is brought up with, as the driver's preflight found it.
pub struct ClusterTarget<'a> {
    pub terraform: &'a Terraform,
    pub policy: ApplyPolicy,
    pub read_credentials: &'a GitReadCredentials,
    pub age_key: &'a AgeKey,
    /// Take over a cluster another tool bootstrapped (`--adopt`).
    pub adopt: bool,
}

/// A cluster ready for Flux.
pub struct ClusterUp {
    pub contract: Contract,
    pub client: Client,
    /// The cluster is being taken over from another tool.
    pub adopting: bool,
    /// Its `kube-system` uid: the cluster's identity across runs.
    pub uid: Option<String>,
}

/// Runs the steps terraform, connect and config-and-secrets; records the cluster's uid.
pub async fn apply_connect_and_configure(
    steps: &mut Steps<'_>,
    config: &Config,
    env: &EnvConfig,
    target: ClusterTarget<'_>,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<ClusterUp> {
    let terraform = terraform_apply::run(
        target.terraform,
        config,
        env,
        target.policy,
        reporter,
        cancel,
    );
    let contract = steps.step("terraform", terraform).await?;
    let owner = reach::owner(env);
    let connect = connect::run(&contract, &owner, target.adopt);
    let Connected { client, adopting } = steps.step("connect", connect).await?;
    let uid = reach::cluster_uid(&client).await;
    steps.record().cluster_uid.clone_from(&uid);
    let age_key = SopsAgeKey {
        env_name: env.name.clone(),
        identity: target.age_key.identity.clone(),
    };
    let inputs = BootstrapInputs {
        contract: &contract,
        names: &env.repository.substitution,
        git: target.read_credentials,
        age_key: &age_key,
        owner: &owner,
        install: env.flux.install,
    };
    let bootstrap = config_and_secrets::run(&client, inputs);
    steps.step("config-and-secrets", bootstrap).await?;
    Ok(ClusterUp {
        contract,
        client,
        adopting,
        uid,
    })
}
