//! Watch streams: newline-delimited JSON events (ADDED/MODIFIED/DELETED/BOOKMARK/ERROR),
//! resumed from a resourceVersion through the event history, with bookmarks, streaming
//! initial lists (`sendInitialEvents`), `timeoutSeconds`, and 410 Gone for compacted history.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::Response;
use futures::SinkExt as _;
use futures::channel::mpsc;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::error::{ApiError, ApiResult};
use super::registry::ResourceType;
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{Event, EventKind, Store};
use super::{Query, Shared};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);
const BOOKMARK_EVERY: Duration = Duration::from_secs(1);

/// What one watch looks at.
pub struct WatchScope {
    pub rt: ResourceType,
    pub version: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl WatchScope {
    fn selects(&self, object: &Value) -> bool {
        self.labels.matches(object)
            && self.fields.matches(object)
            && self
                .name
                .as_deref()
                .is_none_or(|name| object["metadata"]["name"] == name)
    }

    fn concerns(&self, event: &Event) -> bool {
        event.group == self.rt.group
            && event.plural == self.rt.plural
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| event.namespace == ns)
    }

    /// The event a client of this scope sees: selector transitions turn MODIFIED into
    /// ADDED or DELETED, as the real server does.
    fn translate(&self, event: &Event) -> Option<(EventKind, Value)> {
        if !self.concerns(event) {
            return None;
        }
        let now = self.selects(&event.object);
        let before = event.previous.as_ref().is_some_and(|p| self.selects(p));
        let kind = match (event.kind, before, now) {
            (EventKind::Modified, false, true) => EventKind::Added,
            (EventKind::Modified, true, false) => EventKind::Deleted,
            (EventKind::Modified, false, false) => return None,
            (kind, _, true) => kind,
            (_, _, false) => return None,
        };
        Some((kind, self.versioned(event.object.clone())))
    }

    fn versioned(&self, object: Value) -> Value {
        self.rt.present(&self.version, object)
    }

    fn bookmark(&self, resource_version: u64, initial_events_end: bool) -> Value {
        let mut metadata = json!({ "resourceVersion": resource_version.to_string() });
        if initial_events_end {
            metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        json!({
            "type": "BOOKMARK",
            "object": { "kind": self.rt.kind, "apiVersion": self.rt.api_version(&self.version), "metadata": metadata },
        })
    }
}

fn line(event: &Value) -> Bytes {
    let mut text = event.to_string();
    text.push('\n');
    Bytes::from(text)
}

fn event_line(kind: EventKind, object: Value) -> Bytes {
    line(&json!({ "type": kind.as_str(), "object": object }))
}

/// Starts a watch; the history replay and the live subscription are taken under one lock so
/// no event is lost or repeated.
pub fn start(
    shared: &Arc<Shared>,
    store: &Store,
    scope: WatchScope,
    query: &Query,
    agent: &str,
) -> ApiResult<Response> {
    let send_initial = query.flag("sendInitialEvents");
    let bookmarks = query.flag("allowWatchBookmarks");
    let requested = query
        .get("resourceVersion")
        .filter(|rv| !rv.is_empty() && *rv != "0");
    let mut initial = Vec::new();
    let start_rv = store.resource_version();
    match requested {
        Some(rv) if !send_initial => {
            let rv: u64 = rv
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?;
            let events = store.events_since(rv);
            let start = if events.is_some() {
                "resumed"
            } else {
                "expired"
            };
            shared.audit.count_watch(agent, start);
            match events {
                Some(events) => initial.extend(
                    events
                        .iter()
                        .filter_map(|e| scope.translate(e))
                        .map(|(k, o)| event_line(k, o)),
                ),
                None => {
                    let gone = ApiError::gone(format!(
                        "too old resource version: {rv} ({})",
                        store.compacted()
                    ));
                    initial.push(line(&json!({ "type": "ERROR", "object": gone.status() })));
                    return Ok(stream_response(
                        shared, scope, query, initial, None, bookmarks, agent,
                    ));
                }
            }
        }
        _ => {
            shared.audit.count_watch(agent, "from-start");
            let objects = store.list(
                &scope.rt.group,
                &scope.rt.plural,
                scope.namespace.as_deref(),
            );
            for object in objects.into_iter().filter(|o| scope.selects(o)) {
                initial.push(event_line(
                    EventKind::Added,
                    scope.versioned(object.clone()),
                ));
            }
            if send_initial {
                initial.push(line(&scope.bookmark(start_rv, true)));
            }
        }
    }
    let receiver = store.subscribe();
    Ok(stream_response(
        shared,
        scope,
        query,
        initial,
        Some((receiver, start_rv)),
        bookmarks,
        agent,
    ))
}

type Live = (tokio::sync::broadcast::Receiver<Arc<Event>>, u64);

fn stream_response(
    shared: &Arc<Shared>,
    scope: WatchScope,
    query: &Query,
    initial: Vec<Bytes>,
    live: Option<Live>,
    bookmarks: bool,
    agent: &str,
) -> Response {
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let faults = shared.faults();
    let timeout = faults
        .watch_cut_after()
        .filter(|_| faults.aimed_at(agent))
        .map_or(timeout, |cut| cut.min(timeout));
    let (mut sender, body) = mpsc::channel::<Result<Bytes, std::convert::Infallible>>(64);
    let shutdown = shared.shutdown.clone();
    let shared = shared.clone();
    tokio::spawn(async move {
        for chunk in initial {
            if sender.send(Ok(chunk)).await.is_err() {
                return;
            }
        }
        let Some((mut receiver, mut last_rv)) = live else {
            return;
        };
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
        loop {
            let chunk = tokio::select! {
                () = shutdown.cancelled() => return,
                () = &mut deadline => return,
                _ = ticker.tick() => {
                    if sender.is_closed() { return; }
                    if !bookmarks { continue; }
                    line(&scope.bookmark(last_rv, false))
                }
                received = receiver.recv() => match received {
                    Ok(event) => {
                        last_rv = event.resource_version;
                        match scope.translate(&event) {
                            Some((kind, object)) => event_line(kind, object),
                            None => continue,
                        }
                    }
                    // A client too slow to keep up starts over, as after a dropped connection.
                    Err(RecvError::Lagged(_) | RecvError::Closed) => return,
                },
            };
            // A stalled server holds what it would send, connection open.
            if !shared.until_answering().await || sender.send(Ok(chunk)).await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .body(Body::from_stream(body))
        .expect("static response parts")
}
