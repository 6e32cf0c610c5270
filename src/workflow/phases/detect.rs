//! detect (rebuild): what happened to the env's cluster — gone (no state, or its API server
//! does not answer), recreated (the `kube-system` namespace has another uid than the one the
//! last run recorded), or intact (then the rebuild is a converge, like create-env).

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, Client};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::cluster;
use crate::config::{Config, EnvConfig};
use crate::contract::Contract;
use crate::error::Result;
use crate::terraform::{StateInfo, Terraform};
use crate::workflow::{Outcome, terraform};

/// A cluster that exists answers quickly; one that does not is given up on after this.
const REACH_BUDGET: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Situation {
    Gone,
    Recreated,
    Intact,
}

impl Situation {
    /// How the summary says it.
    pub fn describe(self) -> &'static str {
        match self {
            Situation::Gone => "cluster gone",
            Situation::Recreated => "cluster recreated",
            Situation::Intact => "cluster intact",
        }
    }
}

/// The uid of the `kube-system` namespace: a cluster's identity across runs.
pub async fn cluster_uid(client: &Client) -> Option<String> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces.get_opt("kube-system").await.ok()??.metadata.uid
}

/// `recorded_uid` is the cluster uid of the env's last run, when it recorded one.
pub async fn run(
    tf: &Terraform,
    config: &Config,
    env: &EnvConfig,
    recorded_uid: Option<&str>,
    cancel: &CancellationToken,
) -> Result<(Outcome, Situation)> {
    let root = terraform::init_root(tf, config, env, cancel).await?;
    let has_state = match root.local_state_file() {
        Some(state) => StateInfo::read(&state)?.exists,
        None => true,
    };
    let client = match has_state {
        true => match tf.outputs(&root, cancel).await {
            Ok(outputs) => match Contract::from_outputs(&outputs, &env.outputs) {
                Ok(contract) => cluster::connect(&contract.access, REACH_BUDGET).await.ok(),
                Err(_) => None,
            },
            Err(_) => None,
        },
        false => None,
    };
    let (situation, text) = match &client {
        None => (
            Situation::Gone,
            "the cluster is gone: it will be created".to_owned(),
        ),
        Some(client) => {
            let uid = cluster_uid(client).await;
            match (uid.as_deref(), recorded_uid) {
                (Some(now), Some(before)) if now != before => (
                    Situation::Recreated,
                    format!("the cluster was recreated (kube-system uid {now}, recorded {before})"),
                ),
                _ => (
                    Situation::Intact,
                    "the cluster is intact: converging it".to_owned(),
                ),
            }
        }
    };
    Ok((Outcome::Done(text), situation))
}
