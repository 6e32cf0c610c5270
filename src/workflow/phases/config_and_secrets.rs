//! config-and-secrets: what the cluster needs before Flux can sync — the `flux-system`
//! Namespace (carrying the record of the env that owns the cluster), the ConfigMap and Secret
//! receiving the contract (`cluster-config` and `cluster-secrets` unless the repository names
//! them), Flux's Git read credentials and Secret `sops-age` — server-side applied.

use kube::Client;

use super::applied;
use crate::cluster::bootstrap::apply_bootstrap_objects;
use crate::cluster::{BootstrapInputs, GitReadCredentials, Owner, SopsAgeKey};
use crate::config::{FluxInstall, SubstitutionConfig};
use crate::contract::Contract;
use crate::error::Result;
use crate::keys::AgeKey;
use crate::workflow::Outcome;

/// Everything the objects are made of.
pub struct ConfigInputs<'a> {
    pub names: &'a SubstitutionConfig,
    pub contract: &'a Contract,
    pub git: &'a GitReadCredentials,
    pub age_key: &'a AgeKey,
    pub owner: &'a Owner,
    /// Take the objects over from the tool that wrote them (`--adopt`).
    pub adopting: bool,
    pub install: FluxInstall,
}

pub async fn run(client: &Client, inputs: ConfigInputs<'_>) -> Result<(Outcome, ())> {
    let sops = SopsAgeKey {
        env_name: inputs.owner.env.clone(),
        identity: inputs.age_key.identity.clone(),
    };
    let bootstrap = BootstrapInputs {
        contract: inputs.contract,
        names: inputs.names,
        git: inputs.git,
        age_key: &sops,
        owner: inputs.owner,
        adopting: inputs.adopting,
        install: inputs.install,
    };
    let summary = apply_bootstrap_objects(client, bootstrap).await?;
    Ok((applied("objects", &summary), ()))
}
