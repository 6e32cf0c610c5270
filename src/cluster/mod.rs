//! Everything gitops-bootstrap does against a Kubernetes API server: connect from the output
//! contract ([`client`]), server-side apply of manifests ([`apply`]), the config and secrets
//! objects Flux reads ([`bootstrap`]), installing and syncing Flux ([`flux`]) and waiting for
//! the runtime apps with a report of what blocks what ([`wait`]).

pub mod apply;
pub mod bootstrap;
pub mod client;
pub mod drift;
pub mod dry_run;
mod exec_auth;
pub mod flux;
pub mod flux_operator;
pub mod install;
pub mod ownership;
mod retry;
pub mod substituted;
pub mod teardown;
pub mod uninstall;
pub mod wait;

use std::fmt;

use serde::Serialize;

pub use apply::{AppliedObject, ApplyError, ApplyOptions, ApplyOutcome, ApplySummary, Takeover};
pub use bootstrap::{BootstrapInputs, GitReadCredentials, SopsAgeKey};
pub use client::{ClusterError, Connection, connect};
pub use flux::{Components, ComponentsOrigin, ComponentsSource, FluxError};
pub use install::Installation;
pub use ownership::{Owner, Ownership, OwnershipError};
pub use wait::{Readiness, Snapshot, WaitError, WaitTarget};

/// The namespace Flux and the bootstrap objects live in.
pub const FLUX_NAMESPACE: &str = "flux-system";

/// An object as messages name it: `Secret flux-system/cluster-secrets`, `Namespace flux-system`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectName {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectName {
    pub fn new(kind: &str, namespace: Option<&str>, name: &str) -> ObjectName {
        ObjectName {
            kind: kind.to_owned(),
            namespace: namespace.filter(|ns| !ns.is_empty()).map(str::to_owned),
            name: name.to_owned(),
        }
    }

    pub fn namespaced(kind: &str, namespace: &str, name: &str) -> ObjectName {
        ObjectName::new(kind, Some(namespace), name)
    }
}

impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{} {namespace}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// kube-rs's TLS needs a process-wide rustls provider; the build carries ring only.
pub(crate) fn install_crypto_provider() {
    // Err means a provider is already installed, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `kind` of `group` at its most stable served version. Not kube's `recommended_kind`, which
/// looks only in the group's preferred version: a kind served only as a beta (Flux 2.4's
/// OCIRepository beside the v1 sources) would go unseen.
pub(crate) fn served_resource(
    discovery: &kube::discovery::Discovery,
    group: &str,
    kind: &str,
) -> Option<kube::api::ApiResource> {
    discovery
        .get(group)?
        .resources_by_stability()
        .into_iter()
        .map(|(resource, _)| resource)
        .find(|resource| resource.kind == kind)
}

/// The API server's own words for a failed request (its Status message), else the error.
pub(crate) fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

/// Whether `err` (or a cause of it) is a request the API server took and did not answer
/// within the client's deadline ([`client::NoAnswer`]).
pub(crate) fn unanswered(err: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(err), |err| err.source()).any(|cause| cause.is::<client::NoAnswer>())
}

/// An error and its causes on one line ("connection refused" sits deep in hyper's chain).
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        next = cause.source();
    }
    text
}
