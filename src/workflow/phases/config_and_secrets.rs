//! config-and-secrets: what the cluster needs before Flux can sync — the `flux-system`
//! Namespace, the ConfigMap and Secret receiving the contract (`cluster-config` and
//! `cluster-secrets` unless the repository names them), Flux's Git read credentials and Secret
//! `sops-age` — server-side applied.

use kube::Client;

use super::applied;
use crate::cluster::bootstrap::apply_bootstrap_objects;
use crate::cluster::{BootstrapInputs, GitReadCredentials, SopsAgeKey};
use crate::config::SubstitutionConfig;
use crate::contract::Contract;
use crate::error::Result;
use crate::keys::AgeKey;
use crate::workflow::Outcome;

pub async fn run(
    client: &Client,
    env_name: &str,
    names: &SubstitutionConfig,
    contract: &Contract,
    git: &GitReadCredentials,
    age_key: &AgeKey,
) -> Result<(Outcome, ())> {
    let sops = SopsAgeKey {
        env_name: env_name.to_owned(),
        identity: age_key.identity.clone(),
    };
    let inputs = BootstrapInputs {
        contract,
        names,
        git,
        age_key: &sops,
    };
    let summary = apply_bootstrap_objects(client, inputs).await?;
    Ok((applied("objects", &summary), ()))
}
