//! What a benchmark or test reads about the traffic: requests per client (its user agent) and a
//! log of successful writes stamped with the server's clock as they arrived, so the time
//! from a status write to a client noticing it is measured against the server, not the writer.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;

/// Writes kept; older ones are dropped first.
const WRITE_LOG_LIMIT: usize = 200_000;

/// One successful create, update, patch or delete.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteRecord {
    /// When the write arrived: before it was stored and any watcher could see it.
    #[serde(with = "unix_micros")]
    pub at: SystemTime,
    pub verb: String,
    /// `<plural>` or `<plural>/<subresource>`, as the request counters name it.
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// The client's user agent up to its first `/` (`unknown` without one).
    pub agent: String,
}

#[derive(Default)]
pub(crate) struct Audit {
    agents: Mutex<BTreeMap<String, u64>>,
    /// Watches started, keyed `"<agent> <how>"`: `resumed` from a resourceVersion the history
    /// still holds, `expired` (answered 410 Gone: the client must relist), `from-start`.
    watches: Mutex<BTreeMap<String, u64>>,
    injected: std::sync::atomic::AtomicU64,
    writes: Mutex<VecDeque<WriteRecord>>,
}

impl Audit {
    pub(crate) fn count_agent(&self, agent: &str) {
        let mut agents = self.agents.lock().expect("agents lock");
        *agents.entry(agent.to_owned()).or_default() += 1;
    }

    pub(crate) fn count_watch(&self, agent: &str, how: &str) {
        let mut watches = self.watches.lock().expect("watches lock");
        *watches.entry(format!("{agent} {how}")).or_default() += 1;
    }

    pub(crate) fn count_injected(&self) {
        self.injected
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn injected(&self) -> u64 {
        self.injected.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn watch_counts(&self) -> BTreeMap<String, u64> {
        self.watches.lock().expect("watches lock").clone()
    }

    pub(crate) fn record_write(&self, record: WriteRecord) {
        let mut writes = self.writes.lock().expect("writes lock");
        if writes.len() == WRITE_LOG_LIMIT {
            writes.pop_front();
        }
        writes.push_back(record);
    }

    pub(crate) fn agent_counts(&self) -> BTreeMap<String, u64> {
        self.agents.lock().expect("agents lock").clone()
    }

    pub(crate) fn writes(&self) -> Vec<WriteRecord> {
        self.writes
            .lock()
            .expect("writes lock")
            .iter()
            .cloned()
            .collect()
    }

    pub(crate) fn reset(&self) {
        self.agents.lock().expect("agents lock").clear();
        self.watches.lock().expect("watches lock").clear();
        self.injected.store(0, std::sync::atomic::Ordering::Relaxed);
        self.writes.lock().expect("writes lock").clear();
    }
}

/// The product name of a `User-Agent` header (`kubectl/v1.32.0 (linux/amd64)` → `kubectl`).
pub(crate) fn agent_name(header: &str) -> String {
    match header.split('/').next().map(str::trim) {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => "unknown".to_owned(),
    }
}

pub(crate) fn is_write(verb: &str) -> bool {
    matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    )
}

mod unix_micros {
    use std::time::{SystemTime, UNIX_EPOCH};

    use serde::Serializer;

    pub fn serialize<S: Serializer>(at: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
        let micros = at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros();
        serializer.serialize_u64(u64::try_from(micros).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_names_stop_at_the_first_slash() {
        assert_eq!(agent_name("kubectl/v1.32.0 (linux/amd64)"), "kubectl");
        assert_eq!(agent_name("bench-poller"), "bench-poller");
        assert_eq!(agent_name(""), "unknown");
    }

    #[test]
    fn the_write_log_keeps_the_newest_writes() {
        let audit = Audit::default();
        for n in 0..WRITE_LOG_LIMIT + 2 {
            audit.record_write(WriteRecord {
                at: SystemTime::now(),
                verb: "patch".into(),
                resource: "kustomizations/status".into(),
                namespace: Some("ns".into()),
                name: Some(n.to_string()),
                agent: "unknown".into(),
            });
        }
        let writes = audit.writes();
        assert_eq!(writes.len(), WRITE_LOG_LIMIT);
        assert_eq!(writes[0].name.as_deref(), Some("2"));
        audit.count_agent("kubectl");
        audit.count_agent("kubectl");
        assert_eq!(audit.agent_counts()["kubectl"], 2);
        audit.reset();
        assert!(audit.writes().is_empty() && audit.agent_counts().is_empty());
    }
}
