//! config-and-secrets: what the cluster needs before Flux can sync — the `flux-system`
//! Namespace (carrying the record of the env that owns the cluster), the ConfigMap and Secret
//! receiving the contract (`cluster-config` and `cluster-secrets` unless the repository names
//! them), Flux's Git read credentials and Secret `sops-age` — server-side applied. They are the
//! tool's: a field someone else set on them (`kubectl patch`, `kubectl edit`) is taken back,
//! and the step says which field it took from which manager.

use kube::Client;

use super::applied;
use crate::cluster::BootstrapInputs;
use crate::cluster::bootstrap::apply_bootstrap_objects;
use crate::error::Result;
use crate::workflow::Outcome;

pub async fn run(client: &Client, inputs: BootstrapInputs<'_>) -> Result<(Outcome, ())> {
    let summary = apply_bootstrap_objects(client, inputs).await?;
    Ok((applied("objects", &summary), ()))
}
