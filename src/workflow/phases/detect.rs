//! detect (rebuild): what happened to the env's cluster, from [`reach`] before anything is
//! applied — gone (Terraform shows none, or it does not answer), recreated (the `kube-system`
//! namespace has another uid than the one the last run recorded), or intact (then the rebuild
//! is a converge, like create-env). Another env's cluster, or one another tool bootstrapped,
//! stops the rebuild here (exit 2). When the cluster refuses the credentials of the last apply
//! (a cluster recreated with new ones), which it is is known only once the apply gave new
//! credentials: the driver settles it after connect.

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::reach::{self, Patience, Reach};
use crate::config::{Config, EnvConfig};
use crate::error::Result;
use crate::terraform::Terraform;
use crate::workflow::{Outcome, terraform};

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

    /// A cluster that answers: recreated when its uid is not the one recorded.
    pub fn of_uid(now: Option<&str>, recorded: Option<&str>) -> Situation {
        match (now, recorded) {
            (Some(now), Some(before)) if now != before => Situation::Recreated,
            _ => Situation::Intact,
        }
    }
}

/// `None` when the situation is known only after the apply (the last credentials refused).
pub type Detected = Option<Situation>;

/// `recorded_uid` is the cluster uid of the env's last run, when it recorded one.
pub async fn run(
    tf: &Terraform,
    config: &Config,
    env: &EnvConfig,
    recorded_uid: Option<&str>,
    cancel: &CancellationToken,
) -> Result<(Outcome, Detected)> {
    let root = terraform::init_root(tf, config, env, cancel).await?;
    let found = reach::run(tf, &root, env, Patience::Existing, cancel).await?;
    let (detected, text) = match found {
        Reach::Gone { why } => (
            Some(Situation::Gone),
            format!("the cluster is gone ({why}): it will be created"),
        ),
        Reach::Unreachable(_) => (
            Some(Situation::Gone),
            format!(
                "the cluster does not answer within {}s: it will be created",
                Patience::Existing.budget().as_secs()
            ),
        ),
        Reach::Unauthorised(err) => (
            None,
            format!(
                "the cluster refuses the credentials of the last apply ({}): whether it was recreated is known once Terraform gives new ones",
                err.message()
            ),
        ),
        found => {
            // A rebuild never adopts: the cluster is the env's own, or a new one.
            let (reached, _) = found.admit(&env.name, false)?;
            let uid = reach::cluster_uid(reached.client()).await;
            let situation = Situation::of_uid(uid.as_deref(), recorded_uid);
            let text = match (situation, uid, recorded_uid) {
                (Situation::Recreated, Some(now), Some(before)) => {
                    format!("the cluster was recreated (kube-system uid {now}, recorded {before})")
                }
                _ => "the cluster is intact: converging it".to_owned(),
            };
            (Some(situation), text)
        }
    };
    Ok((Outcome::Done(text), detected))
}
