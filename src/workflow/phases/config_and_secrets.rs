//! config-and-secrets: what the cluster needs before Flux can sync — the `flux-system`
//! Namespace (carrying the record of the env that owns the cluster), the ConfigMap and Secret
//! receiving the contract (`cluster-config` and `cluster-secrets` unless the repository names
//! them), Flux's Git read credentials and Secret `sops-age` — server-side applied. They are the
//! tool's: a field someone else set on them (`kubectl patch`, `kubectl edit`) is taken back,
//! and the step says which field it took from which manager. When the contract's objects
//! changed, the Kustomizations substituting from them are asked to reconcile now rather than at
//! their interval, and the wait holds each to that request.

use kube::Client;

use super::applied;
use crate::cluster::bootstrap::{RUNTIME_INFO, apply_bootstrap_objects};
use crate::cluster::substituted::{ConfigReconcile, request_reconcile_of_substituting};
use crate::cluster::{ApplyOutcome, ApplySummary, BootstrapInputs, FLUX_NAMESPACE, ObjectName};
use crate::config::SubstitutionConfig;
use crate::error::Result;
use crate::workflow::Outcome;

/// Applies the objects; the reconcile requested of the Kustomizations substituting from the
/// contract's objects when this run changed them (empty otherwise).
pub async fn run(
    client: &Client,
    inputs: BootstrapInputs<'_>,
) -> Result<(Outcome, ConfigReconcile)> {
    let names = inputs.names;
    let summary = apply_bootstrap_objects(client, inputs).await?;
    let root = ObjectName::namespaced("Kustomization", FLUX_NAMESPACE, FLUX_NAMESPACE);
    let changed = changed_contract_objects(&summary, names);
    let reconcile = request_reconcile_of_substituting(client, &root, &changed).await?;
    let outcome = match applied("objects", &summary) {
        outcome if reconcile.is_empty() => outcome,
        Outcome::Done(text) | Outcome::UpToDate(text) => {
            let asked: Vec<&str> = reconcile
                .kustomizations
                .keys()
                .map(|k| k.name.as_str())
                .collect();
            Outcome::Done(format!(
                "{text}; reconcile of {} requested (they substitute from what changed)",
                asked.join(", ")
            ))
        }
    };
    Ok((outcome, reconcile))
}

/// The objects Flux substitutes from that this apply created or changed: the contract's
/// ConfigMap and Secret, and the operator's `flux-runtime-info`.
fn changed_contract_objects(summary: &ApplySummary, names: &SubstitutionConfig) -> Vec<ObjectName> {
    let contract = [
        ObjectName::namespaced("ConfigMap", FLUX_NAMESPACE, &names.config_map),
        ObjectName::namespaced("Secret", FLUX_NAMESPACE, &names.secret),
        ObjectName::namespaced("ConfigMap", FLUX_NAMESPACE, RUNTIME_INFO),
    ];
    summary
        .objects
        .iter()
        .filter(|o| o.outcome != ApplyOutcome::Unchanged && contract.contains(&o.object))
        .map(|o| o.object.clone())
        .collect()
}
