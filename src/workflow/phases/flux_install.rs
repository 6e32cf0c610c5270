//! flux-install: the Flux components applied (CRDs first, then the rest) and their controllers
//! waited for.

use std::time::Duration;

use kube::Client;

use super::applied;
use crate::cluster::{Components, flux};
use crate::error::Result;
use crate::workflow::Outcome;

/// How long Flux's controller Deployments get to become Available.
const CONTROLLERS_TIMEOUT: Duration = Duration::from_secs(300);

pub async fn run(client: &Client, components: &Components) -> Result<(Outcome, ())> {
    let summary = flux::install(client, components, CONTROLLERS_TIMEOUT).await?;
    let what = format!("Flux {} objects", components.version);
    Ok((applied(&what, &summary), ()))
}
