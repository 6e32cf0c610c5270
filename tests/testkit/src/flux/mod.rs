//! Stand-ins for Flux's source-, kustomize- and helm-controller, written with kube-rs against
//! any Kubernetes API server. They follow Flux's documented APIs, Secret formats and status
//! conventions closely enough for gitops-bootstrap to bootstrap, wait on and tear down a
//! cluster as it would with real Flux. See the testkit README for what is and is not modelled.

mod artifacts;
mod build;
pub mod conditions;
pub mod config_watch;
mod decrypt;
pub mod distribution;
mod gitrepository;
mod helm;
mod kustomization;
mod manifest;
pub mod objects;
pub mod operator;
mod runtime;
pub mod substitution;
pub mod types;

use std::time::Duration;

use kube::Client;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use artifacts::{ArtifactStore, StoredArtifact};
pub use distribution::RELEASES;
pub use manifest::{FLUX_NAMESPACE, apply_manifest, components_manifest};
pub use operator::operator_manifest;
pub use types::{GitRepository, HelmRelease, HelmRepository, Kustomization};

use crate::charts::Charts;
use crate::kubelet::{Kubelet, KubeletOptions};

/// Timings of the stand-ins: short by default so tests take seconds. A Ready object is
/// reconciled again on its own `spec.interval`, as Flux does: a test that needs that sooner
/// sets a short interval in its fixtures.
#[derive(Clone, Debug)]
pub struct FluxOptions {
    /// How long a Deployment takes to become Available.
    pub deployment_ready_delay: Duration,
    /// How long a deleted LoadBalancer Service keeps its cleanup finalizer.
    pub load_balancer_release_delay: Duration,
    /// Pause between HelmRelease install attempts.
    pub helm_retry_interval: Duration,
    /// Pause before looking again at an object that is not Ready (waiting, failed).
    pub retry_interval: Duration,
    /// How often a controller checks whether its CRDs and Deployment are installed.
    pub install_poll: Duration,
    /// Wait for the components manifest (CRDs established, own Deployment Available) before
    /// reconciling, as the real controllers only run once installed. Tests that never apply
    /// the manifest turn this off.
    pub require_install: bool,
    /// Also run the kubelet and load-balancer stand-ins (Flux's own Deployments need them).
    pub run_kubelet: bool,
    /// Which charts HelmRepositories and HelmReleases find: the catalogue's, or any.
    pub charts: Charts,
    /// Also run the stand-in Flux Operator, which reconciles once its own manifest
    /// ([`operator_manifest`]) is applied and installs the controllers from a FluxInstance.
    pub operator: bool,
}

impl Default for FluxOptions {
    fn default() -> Self {
        FluxOptions {
            deployment_ready_delay: Duration::from_millis(300),
            load_balancer_release_delay: Duration::from_secs(1),
            helm_retry_interval: Duration::from_secs(1),
            retry_interval: Duration::from_millis(300),
            install_poll: Duration::from_millis(200),
            require_install: true,
            run_kubelet: true,
            charts: Charts::Catalogue,
            operator: false,
        }
    }
}

/// The running controllers; dropping this (or [`Controllers::shutdown`]) stops them.
pub struct Controllers {
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    artifacts: ArtifactStore,
    _kubelet: Option<Kubelet>,
}

impl Controllers {
    /// Spawns source-, kustomize- and helm-controller (plus the kubelet stand-in unless
    /// `opts.run_kubelet` is off, and the Flux Operator with `opts.operator`) on the current
    /// tokio runtime.
    pub fn start(client: Client, opts: FluxOptions) -> Controllers {
        let kubelet = opts.run_kubelet.then(|| {
            Kubelet::start(
                client.clone(),
                KubeletOptions {
                    deployment_ready_delay: opts.deployment_ready_delay,
                    load_balancer_release_delay: opts.load_balancer_release_delay,
                },
            )
        });
        let cancel = CancellationToken::new();
        let artifacts = ArtifactStore::default();
        let operator = opts.operator;
        let ctx = runtime::Context::new(client, opts, artifacts.clone());
        let mut tasks = vec![
            spawn(&cancel, gitrepository::run(ctx.clone())),
            spawn(&cancel, helm::run_repositories(ctx.clone())),
            spawn(&cancel, kustomization::run(ctx.clone())),
            spawn(&cancel, helm::run_releases(ctx.clone())),
        ];
        if operator {
            tasks.push(spawn(&cancel, operator::run(ctx)));
        }
        Controllers {
            cancel,
            tasks,
            artifacts,
            _kubelet: kubelet,
        }
    }

    /// The checkouts source-controller produced, keyed by `namespace/name`.
    pub fn artifacts(&self) -> &ArtifactStore {
        &self.artifacts
    }

    /// Stops every controller and waits for their tasks to end.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for Controllers {
    fn drop(&mut self) {
        self.cancel.cancel();
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn spawn(
    cancel: &CancellationToken,
    work: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    let cancel = cancel.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = cancel.cancelled() => {}
            () = work => {}
        }
    })
}
