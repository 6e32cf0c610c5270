//! How Flux gets onto the cluster, one value per install method (`flux.install`): the classic
//! components the tool applies itself ([`super::flux`]), or the Flux Operator and its
//! FluxInstance ([`super::flux_operator`]). The steps flux-install, sync and wait-for-apps go
//! through this one type; each method's work lives in its own module.

use std::time::Duration;

use kube::{Client, ResourceExt as _};

use super::ApplySummary;
use super::apply::{self, ApplyOptions, CONFIG_MANAGER};
use super::flux::{self, Components, FluxError, SyncSummary};
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

    /// Whether Flux must change hands before the commit that drops the other install
    /// method's files is pushed (the order of the operator's migration guide): Flux,
    /// reconciling that commit, prunes what still carries its labels — Flux itself, or the
    /// FluxInstance whose finalizer would uninstall Flux. Operator: a classic install runs (a
    /// `flux-system` Kustomization, no FluxInstance). Components: a FluxInstance reconciles.
    pub async fn needs_hand_over(&self, client: &Client) -> Result<bool, Error> {
        let instance = flux_operator::read_instance(client).await?;
        Ok(match self {
            Installation::Operator { .. } => {
                instance.is_none() && flux::has_sync_kustomization(client).await?
            }
            Installation::Components(_) => instance.is_some_and(|i| {
                i.annotations()
                    .get(flux_operator::RECONCILE_ANNOTATION)
                    .is_none_or(|value| value != "disabled")
            }),
        })
    }

    /// Hands Flux over (see [`Self::needs_hand_over`]). Operator: installs the operator and
    /// `sync_manifest`, the FluxInstance about to be committed, and waits until it is Ready —
    /// the operator has taken the classic install over and relabelled it. Components: the
    /// FluxInstance stops reconciling, so the operator keeps Flux when Flux prunes it, and
    /// `sync_manifest` (gotk-sync.yaml) takes the sync objects over from the operator.
    pub async fn hand_over(
        &self,
        client: &Client,
        sync_manifest: &str,
        timeout: Duration,
        adopting: bool,
    ) -> Result<&'static str, Error> {
        match self {
            Installation::Operator { .. } => {
                self.install(client, sync_manifest, timeout, adopting)
                    .await?;
                self.await_ready(client, timeout).await?;
                Ok("the Flux Operator took the classic install over")
            }
            Installation::Components(_) => {
                flux_operator::disable(client).await?;
                // The operator generated the sync objects; taken over now, the sync step's
                // apply meets no conflict with it.
                let options = ApplyOptions::new(CONFIG_MANAGER).adopting();
                apply::apply_yaml(client, sync_manifest, &options)
                    .await
                    .map_err(FluxError::Sync)?;
                Ok(
                    "the FluxInstance stopped reconciling (Flux stays when it goes), its sync objects taken over",
                )
            }
        }
    }

    /// What must be Ready before the apps are waited for: the FluxInstance (operator).
    pub async fn await_ready(&self, client: &Client, timeout: Duration) -> Result<(), Error> {
        match self {
            Installation::Components(_) => Ok(()),
            Installation::Operator { .. } => Ok(flux_operator::wait_ready(client, timeout).await?),
        }
    }
}
