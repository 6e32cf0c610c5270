//! Fault injection (errors, throttling, latency, cut watches, a server that stops answering)
//! and per-(verb, resource) request counters, driven in-process through [`Admin`] or over HTTP
//! under `/testkit/admin/`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse as _, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::ApiError;
use super::{Shared, json_response};

/// Faults injected into resource requests (discovery and the admin endpoint are spared).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FaultOptions {
    /// Fraction (0.0–1.0) of requests answered 500 InternalError.
    pub error_rate: f64,
    /// Fraction (0.0–1.0) of requests answered 429 with `Retry-After: 1`.
    pub throttle_rate: f64,
    /// Delay added before every resource request, in milliseconds.
    pub latency_ms: u64,
    /// Watch streams end after this many milliseconds (clients must resume).
    pub watch_cut_after_ms: Option<u64>,
    /// Only requests from this client (user agent up to its first `/`, as the counters name
    /// it) get errors, throttling, latency and cut watches; `None`: every client. Tests aim the faults at
    /// the product and spare the Flux stand-ins, whose own resilience is not what they test.
    pub agent: Option<String>,
    /// The server stops answering, for every client: resource requests are taken and wait
    /// (connections stay open) until this is cleared, and open watch streams send nothing
    /// more until then.
    pub stall: bool,
}

impl FaultOptions {
    pub fn watch_cut_after(&self) -> Option<Duration> {
        self.watch_cut_after_ms.map(Duration::from_millis)
    }

    /// Whether errors, throttling and latency apply to a request from client `agent`.
    pub(crate) fn aimed_at(&self, agent: &str) -> bool {
        self.agent.as_deref().is_none_or(|aimed| aimed == agent)
    }

    /// The injected failure for this request, if any.
    pub(crate) fn draw(&self) -> Option<ApiError> {
        let roll = random_fraction();
        if roll < self.error_rate {
            Some(ApiError::internal("injected fault"))
        } else if roll < self.error_rate + self.throttle_rate {
            Some(ApiError::too_many_requests(1))
        } else {
            None
        }
    }
}

fn random_fraction() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u64_pair().0 >> 11;
    bits as f64 / (1u64 << 53) as f64
}

/// Test control over a running in-process server.
#[derive(Clone)]
pub struct Admin {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

impl Admin {
    pub fn set_faults(&self, faults: FaultOptions) {
        *self.shared.faults.lock().expect("faults lock") = faults;
    }

    pub fn faults(&self) -> FaultOptions {
        self.shared.faults()
    }

    /// Requests seen for `verb` (`get`, `list`, `watch`, `create`, `update`, `patch`,
    /// `delete`, `deletecollection`) on `resource` (`configmaps`, `deployments/status`, …).
    pub fn request_count(&self, verb: &str, resource: &str) -> u64 {
        let counters = self.shared.counters.lock().expect("counters lock");
        counters
            .get(&(verb.to_string(), resource.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// All counters, keyed `"<verb> <resource>"`.
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        let counters = self.shared.counters.lock().expect("counters lock");
        counters
            .iter()
            .map(|((verb, resource), n)| (format!("{verb} {resource}"), *n))
            .collect()
    }

    /// Resets the per-(verb, resource) counters, the per-client counters, the watch starts,
    /// the injected-fault count and the write log.
    pub fn reset_counters(&self) {
        self.shared.counters.lock().expect("counters lock").clear();
        self.shared.audit.reset();
    }

    /// Resource requests per client, keyed by user agent up to its first `/` (`unknown`
    /// for a client that sends none).
    pub fn request_counts_by_agent(&self) -> BTreeMap<String, u64> {
        self.shared.audit.agent_counts()
    }

    /// Watches started per client, keyed `"<agent> <how>"` (`resumed`, `expired`,
    /// `from-start`): how a test sees a client resume a cut watch, or relist after 410.
    pub fn watch_starts(&self) -> BTreeMap<String, u64> {
        self.shared.audit.watch_counts()
    }

    /// Requests answered with an injected error or throttle since the counters were reset.
    pub fn injected_faults(&self) -> u64 {
        self.shared.audit.injected()
    }

    /// Successful writes, oldest first, stamped when the server stored them.
    pub fn writes(&self) -> Vec<super::WriteRecord> {
        self.shared.audit.writes()
    }

    /// Drops the watch event history: watches from an older resourceVersion get 410 Gone.
    pub fn compact_history(&self) {
        self.shared.store.lock().expect("store lock").compact();
    }

    pub fn resource_version(&self) -> u64 {
        self.shared
            .store
            .lock()
            .expect("store lock")
            .resource_version()
    }
}

/// `/testkit/admin/counters` (GET, DELETE), `/testkit/admin/faults` (GET, PUT),
/// `/testkit/admin/compact` (POST).
pub(crate) fn handle(admin: &Admin, method: &Method, path: &str, body: &[u8]) -> Response {
    match (method.as_str(), path.trim_start_matches("/testkit/admin/")) {
        ("GET", "counters") => json_response(StatusCode::OK, &json!(admin.request_counts())),
        ("DELETE", "counters") => {
            admin.reset_counters();
            json_response(StatusCode::OK, &json!({}))
        }
        ("GET", "faults") => json_response(StatusCode::OK, &json!(admin.faults())),
        ("PUT", "faults") => match serde_json::from_slice::<FaultOptions>(body) {
            Ok(faults) => {
                admin.set_faults(faults.clone());
                json_response(StatusCode::OK, &json!(faults))
            }
            Err(error) => {
                ApiError::bad_request(format!("invalid fault options: {error}")).into_response()
            }
        },
        ("POST", "compact") => {
            admin.compact_history();
            json_response(
                StatusCode::OK,
                &json!({ "resourceVersion": admin.resource_version() }),
            )
        }
        _ => ApiError::not_found_path(format!("no admin endpoint {method} {path}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_follow_the_configured_rates() {
        let always = FaultOptions {
            error_rate: 1.0,
            ..FaultOptions::default()
        };
        assert_eq!(always.draw().unwrap().code, 500);
        let throttled = FaultOptions {
            throttle_rate: 1.0,
            ..FaultOptions::default()
        };
        assert_eq!(throttled.draw().unwrap().code, 429);
        assert!(FaultOptions::default().draw().is_none());
    }

    #[test]
    fn faults_aim_at_one_client_or_all() {
        let aimed = FaultOptions {
            agent: Some("gitops-bootstrap".into()),
            ..FaultOptions::default()
        };
        assert!(aimed.aimed_at("gitops-bootstrap"));
        assert!(!aimed.aimed_at("unknown"));
        assert!(FaultOptions::default().aimed_at("anyone"));
    }
}
