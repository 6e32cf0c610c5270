//! The object store: JSON objects keyed by (group, resource, namespace, name), one global
//! resourceVersion counter, and the event history watches resume from.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

use super::registry::Registry;

/// A change to one object, as watches see it.
#[derive(Debug, Clone)]
pub struct Event {
    pub resource_version: u64,
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub kind: EventKind,
    pub object: Value,
    /// The object before the change (for selector transitions of MODIFIED).
    pub previous: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Added,
    Modified,
    Deleted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Added => "ADDED",
            EventKind::Modified => "MODIFIED",
            EventKind::Deleted => "DELETED",
        }
    }
}

type ObjectKey = (String, String);

/// Everything the server holds; lives behind one mutex.
pub struct Store {
    resource_version: u64,
    objects: BTreeMap<(String, String), BTreeMap<ObjectKey, Value>>,
    history: VecDeque<Arc<Event>>,
    history_limit: usize,
    /// Watches from at or below this resourceVersion get 410 Gone.
    compacted: u64,
    events: broadcast::Sender<Arc<Event>>,
    pub registry: Registry,
}

impl Store {
    pub fn new(history_limit: usize) -> Store {
        let (events, _) = broadcast::channel(4096);
        Store {
            resource_version: 1,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit,
            compacted: 0,
            events,
            registry: Registry::with_builtins(),
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    pub fn get(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&(group.to_string(), plural.to_string()))?
            .get(&(namespace.to_string(), name.to_string()))
    }

    /// Objects of one resource, in one namespace or (with `None`) all, sorted by key.
    pub fn list(&self, group: &str, plural: &str, namespace: Option<&str>) -> Vec<&Value> {
        self.objects
            .get(&(group.to_string(), plural.to_string()))
            .map(|objects| {
                objects
                    .iter()
                    .filter(|((ns, _), _)| namespace.is_none_or(|wanted| ns == wanted))
                    .map(|(_, object)| object)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every stored object with its (group, resource).
    pub fn all(&self) -> impl Iterator<Item = (&str, &str, &Value)> {
        self.objects.iter().flat_map(|((group, plural), objects)| {
            objects
                .values()
                .map(move |o| (group.as_str(), plural.as_str(), o))
        })
    }

    /// Stores `object` under a new resourceVersion (set in the object) and emits ADDED or
    /// MODIFIED; returns the stored object.
    pub fn put(&mut self, group: &str, plural: &str, mut object: Value) -> Value {
        self.resource_version += 1;
        let rv = self.resource_version;
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let (namespace, name) = key_of(&object);
        let previous = self
            .objects
            .entry((group.to_string(), plural.to_string()))
            .or_default()
            .insert((namespace.clone(), name), object.clone());
        let kind = if previous.is_some() {
            EventKind::Modified
        } else {
            EventKind::Added
        };
        self.emit(group, plural, namespace, kind, object.clone(), previous);
        object
    }

    /// Removes an object and emits DELETED carrying a new resourceVersion.
    pub fn remove(
        &mut self,
        group: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let objects = self
            .objects
            .get_mut(&(group.to_string(), plural.to_string()))?;
        let mut object = objects.remove(&(namespace.to_string(), name.to_string()))?;
        self.resource_version += 1;
        object["metadata"]["resourceVersion"] = Value::String(self.resource_version.to_string());
        self.emit(
            group,
            plural,
            namespace.to_string(),
            EventKind::Deleted,
            object.clone(),
            None,
        );
        Some(object)
    }

    fn emit(
        &mut self,
        group: &str,
        plural: &str,
        namespace: String,
        kind: EventKind,
        object: Value,
        previous: Option<Value>,
    ) {
        let event = Arc::new(Event {
            resource_version: self.resource_version,
            group: group.to_string(),
            plural: plural.to_string(),
            namespace,
            kind,
            object,
            previous,
        });
        self.history.push_back(event.clone());
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted = dropped.resource_version;
            }
        }
        // No receiver is fine: nobody watches.
        let _ = self.events.send(event);
    }

    /// Forgets the event history, as etcd compaction does: older watches get 410 Gone.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.resource_version;
    }

    /// Events after `resource_version`, or `None` when history no longer reaches back there.
    pub fn events_since(&self, resource_version: u64) -> Option<Vec<Arc<Event>>> {
        if resource_version < self.compacted {
            return None;
        }
        Some(
            self.history
                .iter()
                .filter(|event| event.resource_version > resource_version)
                .cloned()
                .collect(),
        )
    }

    pub fn compacted(&self) -> u64 {
        self.compacted
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }
}

pub fn key_of(object: &Value) -> (String, String) {
    let metadata = &object["metadata"];
    (
        metadata["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        metadata["name"].as_str().unwrap_or_default().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_bump_one_counter_and_history_serves_resumption_until_compacted() {
        let mut store = Store::new(100);
        let start = store.resource_version();
        let stored = store.put(
            "",
            "configmaps",
            json!({"metadata": {"name": "a", "namespace": "n"}}),
        );
        assert_eq!(
            stored["metadata"]["resourceVersion"],
            json!((start + 1).to_string())
        );
        store.put(
            "",
            "configmaps",
            json!({"metadata": {"name": "a", "namespace": "n"}}),
        );
        store.remove("", "configmaps", "n", "a");
        let kinds: Vec<_> = store
            .events_since(start)
            .unwrap()
            .iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            vec![EventKind::Added, EventKind::Modified, EventKind::Deleted]
        );
        store.compact();
        assert!(store.events_since(start).is_none());
        assert!(
            store
                .events_since(store.resource_version())
                .unwrap()
                .is_empty()
        );
    }
}
