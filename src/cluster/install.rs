//! How Flux gets onto the cluster, one value per install method (`flux.install`): the classic
//! components the tool applies itself ([`super::flux`]), or the Flux Operator and its
//! FluxInstance ([`super::flux_operator`]). The steps flux-install, sync and wait-for-apps go
//! through this one type; each method's work lives in its own module.

use std::time::Duration;

use kube::Client;

use super::ApplySummary;
use super::flux::{self, Components, SyncSummary};
use super::flux_operator::{self, OperatorManifest};
use super::wait::conditions::WantedRevision;
use crate::config::FluxInstall;
use crate::error::Error;

/// What flux-install applies.
#[derive(Debug, Clone)]
pub enum Installation {
    /// Flux's install manifest (`gotk-components.yaml`).
    Components(Components),
    /// The Flux Operator's install manifest; the FluxInstance is the env's sync manifest.
    Operator {
        manifest: OperatorManifest,
        /// The repository's own flux-instance.yaml (checked), which the env runs instead of one
        /// the tool renders.
        own_instance: Option<String>,
    },
}

impl Installation {
    pub fn method(&self) -> FluxInstall {
        match self {
            Installation::Components(_) => FluxInstall::Components,
            Installation::Operator { .. } => FluxInstall::Operator,
        }
    }

    /// The manifest applied and committed as is, and its origin, for messages.
    pub fn manifest(&self) -> (&str, String) {
        match self {
            Installation::Components(components) => {
                (&components.yaml, components.origin.to_string())
            }
            Installation::Operator { manifest, .. } => {
                (&manifest.yaml, manifest.origin.to_string())
            }
        }
    }

    /// Installs Flux and waits for its controllers (components), or the operator and then
    /// applies `sync_manifest`, the FluxInstance as committed (operator).
    pub async fn install(
        &self,
        client: &Client,
        sync_manifest: &str,
        timeout: Duration,
        adopting: bool,
    ) -> Result<ApplySummary, Error> {
        Ok(match self {
            Installation::Components(components) => {
                flux::install(client, components, timeout, adopting).await?
            }
            Installation::Operator { manifest, .. } => {
                flux_operator::install(client, manifest, sync_manifest, timeout, adopting).await?
            }
        })
    }

    /// Applies the sync objects as committed and asks Flux to reconcile them (components), or
    /// asks the ones the operator generated to reconcile (operator).
    pub async fn sync(
        &self,
        client: &Client,
        sync_manifest: &str,
        wanted: &WantedRevision<'_>,
        adopting: bool,
    ) -> Result<SyncSummary, Error> {
        Ok(match self {
            Installation::Components(_) => {
                flux::sync(client, sync_manifest, wanted, adopting).await?
            }
            Installation::Operator { .. } => flux::request_generated_sync(client, wanted).await?,
        })
    }

    /// What must be Ready before the apps are waited for: the FluxInstance (operator).
    pub async fn await_ready(&self, client: &Client, timeout: Duration) -> Result<(), Error> {
        match self {
            Installation::Components(_) => Ok(()),
            Installation::Operator { .. } => Ok(flux_operator::wait_ready(client, timeout).await?),
        }
    }
}
