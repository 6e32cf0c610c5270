//! Waiting for the runtime apps: watches GitRepositories, Kustomizations and HelmReleases
//! (no polling), and after every change judges the tree under the root Kustomization. Live
//! snapshots go to a callback; a terminal failure ends the wait at once with its blocking
//! chain; at the timeout the error lists what is not Ready and why.

pub mod conditions;
pub mod tree;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt as _;
use kube::api::{Api, DynamicObject, ListParams, TypeMeta};
use kube::runtime::{WatchStreamExt as _, reflector, watcher};
use kube::{Client, ResourceExt as _};
use serde::Serialize;

pub use conditions::{Readiness, WantedRevision};
pub use tree::{BlockingChain, ChainLink, Edge, Tree};

use super::ObjectName;
use super::flux::flux_resource;
use crate::error::{Diagnose, ExitStatus};

const WATCHED_KINDS: [&str; 3] = ["GitRepository", "Kustomization", "HelmRelease"];

/// What "the apps are up" means for one push.
pub struct WaitTarget {
    /// The root Kustomization (`flux-system/flux-system`).
    pub root: ObjectName,
    /// The GitRepository the pushed commit must reach.
    pub git_repository: ObjectName,
    pub revision_sha: String,
    /// Whether a commit is newer than (descends from) the pushed one; a newer revision counts.
    pub is_descendant: Box<dyn Fn(&str) -> bool + Send + Sync>,
}

impl fmt::Debug for WaitTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitTarget")
            .field("root", &self.root)
            .field("git_repository", &self.git_repository)
            .field("revision_sha", &self.revision_sha)
            .finish_non_exhaustive()
    }
}

/// One object of a snapshot and what it waits on directly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub object: ObjectName,
    pub readiness: Readiness,
    pub waiting_on: Vec<ObjectName>,
}

/// The state of the tree at one moment: the source first, then the root and what it applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub root: ObjectName,
    pub ready: usize,
    pub total: usize,
    pub rows: Vec<Row>,
}

impl Snapshot {
    pub fn all_ready(&self) -> bool {
        self.ready == self.total
    }
}

/// A not-Ready object in a timeout report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotReady {
    pub object: ObjectName,
    pub reason: String,
    pub message: String,
    /// What it waits on, when that is another object.
    pub chain: Option<BlockingChain>,
}

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("{object} will not become Ready: {reason}: {message}\n  blocking chain: {chain}")]
    Failed {
        object: ObjectName,
        reason: String,
        message: String,
        chain: BlockingChain,
    },
    #[error(
        "the runtime apps were not Ready within {timeout:?}:\n{}",
        not_ready_table(not_ready)
    )]
    TimedOut {
        timeout: Duration,
        not_ready: Vec<NotReady>,
    },
    #[error("failed to list {kind} objects: {message}")]
    List { kind: String, message: String },
    #[error("the watch of the Flux objects ended unexpectedly")]
    WatchEnded,
}

impl Diagnose for WaitError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            WaitError::TimedOut { .. } => ExitStatus::TimedOut,
            _ => ExitStatus::Failure,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            WaitError::Failed { .. } => Some(
                "fix the cause in Git (or the cluster) and rerun; `gitops-bootstrap status <env>` shows the whole tree".to_owned(),
            ),
            WaitError::TimedOut { .. } => Some(
                "rerun to keep waiting (nothing is redone), or raise the wait timeout; `gitops-bootstrap status <env>` shows the whole tree".to_owned(),
            ),
            _ => None,
        }
    }
}

/// The not-Ready objects as an aligned table: object, reason, message (and what it waits on).
fn not_ready_table(rows: &[NotReady]) -> String {
    let names: Vec<String> = rows.iter().map(|r| r.object.to_string()).collect();
    let name_width = names.iter().map(String::len).max().unwrap_or(0);
    let reason_width = rows.iter().map(|r| r.reason.len()).max().unwrap_or(0);
    let mut table = String::new();
    for (row, name) in rows.iter().zip(&names) {
        table.push_str(&format!(
            "  {name:<name_width$}  {:<reason_width$}  {}",
            row.reason, row.message
        ));
        if let Some(chain) = row.chain.as_ref().filter(|c| c.links.len() > 1) {
            table.push_str(&format!("\n  {:name_width$}  waiting on: {chain}", ""));
        }
        table.push('\n');
    }
    table.trim_end().to_owned()
}

/// Watches until every object under `target.root` is Ready at the pushed revision, something
/// fails for good, or `timeout` passes. `on_progress` sees each changed snapshot.
pub async fn wait_for_apps(
    client: &Client,
    target: WaitTarget,
    timeout: Duration,
    mut on_progress: impl FnMut(&Snapshot),
) -> Result<Snapshot, WaitError> {
    let mut last_report: Option<Vec<NotReady>> = None;
    let mut watch_error: Option<String> = None;
    let watch = watch_until_settled(
        client,
        &target,
        &mut on_progress,
        &mut last_report,
        &mut watch_error,
    );
    match tokio::time::timeout(timeout, watch).await {
        Ok(result) => result,
        Err(_) => {
            let not_ready = last_report.unwrap_or_else(|| {
                vec![NotReady {
                    object: target.root.clone(),
                    reason: "NotObserved".to_owned(),
                    message: watch_error.unwrap_or_else(|| "no Flux object seen yet".to_owned()),
                    chain: None,
                }]
            });
            Err(WaitError::TimedOut { timeout, not_ready })
        }
    }
}

async fn watch_until_settled(
    client: &Client,
    target: &WaitTarget,
    on_progress: &mut impl FnMut(&Snapshot),
    last_report: &mut Option<Vec<NotReady>>,
    watch_error: &mut Option<String>,
) -> Result<Snapshot, WaitError> {
    let mut stores = Vec::new();
    let mut streams = Vec::new();
    for (index, kind) in WATCHED_KINDS.iter().enumerate() {
        let resource = flux_resource(kind).expect("watched kinds are Flux kinds");
        let writer = reflector::store::Writer::new(resource.clone());
        stores.push((*kind, writer.as_reader()));
        let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
        let events = watcher(api, watcher::Config::default()).default_backoff();
        streams.push(
            reflector(writer, events)
                .map(move |event| (index, event))
                .boxed(),
        );
    }
    let mut events = futures::stream::select_all(streams);
    let mut initialized = [false; WATCHED_KINDS.len()];
    // Asking Git about ancestry can be slow: once per sha.
    let descendants = Mutex::new(HashMap::new());
    let is_descendant = |sha: &str| {
        *descendants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(sha.to_owned())
            .or_insert_with(|| (target.is_descendant)(sha))
    };
    let mut previous: Option<Snapshot> = None;
    while let Some((index, event)) = events.next().await {
        match event {
            Err(err) => {
                tracing::debug!(kind = WATCHED_KINDS[index], error = %err, "watch error, retrying");
                *watch_error = Some(format!("watching {}: {err}", WATCHED_KINDS[index]));
                continue;
            }
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => continue,
            Ok(watcher::Event::InitDone) => initialized[index] = true,
            Ok(_) => {}
        }
        if !initialized.iter().all(|done| *done) {
            continue;
        }
        let objects = Objects::from_stores(&stores);
        let wanted = WantedRevision {
            sha: &target.revision_sha,
            is_descendant: &is_descendant,
        };
        let judged = judge(
            &objects,
            &target.root,
            &target.git_repository,
            Some(&wanted),
        );
        *last_report = Some(judged.not_ready());
        if previous.as_ref() != Some(&judged.snapshot) {
            on_progress(&judged.snapshot);
        }
        if let Some(failure) = judged.failure() {
            return Err(failure);
        }
        if judged.snapshot.all_ready() {
            return Ok(judged.snapshot);
        }
        previous = Some(judged.snapshot);
    }
    Err(WaitError::WatchEnded)
}

/// The tree under `root` as it is now, judged by Flux's conventions alone (for `status`).
pub async fn readiness_tree(client: &Client, root: &ObjectName) -> Result<Snapshot, WaitError> {
    let mut objects = Objects::default();
    for kind in WATCHED_KINDS {
        let resource = flux_resource(kind).expect("watched kinds are Flux kinds");
        let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|err| WaitError::List {
                kind: kind.to_owned(),
                message: super::api_message(&err),
            })?;
        objects.insert_all(kind, list.items);
    }
    let source = objects.get(root).and_then(source_of).unwrap_or_else(|| {
        ObjectName::namespaced(
            "GitRepository",
            root.namespace.as_deref().unwrap_or_default(),
            &root.name,
        )
    });
    Ok(judge(&objects, root, &source, None).snapshot)
}

/// Every watched object by name, with its kind filled in (list items may lack it).
#[derive(Default)]
struct Objects(BTreeMap<ObjectName, DynamicObject>);

impl Objects {
    fn from_stores(stores: &[(&str, reflector::Store<DynamicObject>)]) -> Objects {
        let mut objects = Objects::default();
        for (kind, store) in stores {
            objects.insert_all(kind, store.state().iter().map(|o| (**o).clone()));
        }
        objects
    }

    fn insert_all(&mut self, kind: &str, items: impl IntoIterator<Item = DynamicObject>) {
        let resource = flux_resource(kind).expect("watched kinds are Flux kinds");
        for mut object in items {
            object.types.get_or_insert_with(|| TypeMeta {
                api_version: resource.api_version.clone(),
                kind: kind.to_owned(),
            });
            let name = ObjectName::namespaced(
                kind,
                &object.namespace().unwrap_or_default(),
                &object.name_any(),
            );
            self.0.insert(name, object);
        }
    }

    fn get(&self, name: &ObjectName) -> Option<&DynamicObject> {
        self.0.get(name)
    }
}

/// The GitRepository a Kustomization reads.
fn source_of(kustomization: &DynamicObject) -> Option<ObjectName> {
    let reference = &kustomization.data["spec"]["sourceRef"];
    if reference["kind"].as_str() != Some("GitRepository") {
        return None;
    }
    let namespace = reference["namespace"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| kustomization.namespace())
        .unwrap_or_default();
    Some(ObjectName::namespaced(
        "GitRepository",
        &namespace,
        reference["name"].as_str()?,
    ))
}

struct Judged {
    snapshot: Snapshot,
    tree: Tree,
}

/// Judges the source and the tree; with `wanted`, the source and the Kustomizations reading
/// it must be at the pushed revision.
fn judge(
    objects: &Objects,
    root: &ObjectName,
    source: &ObjectName,
    wanted: Option<&WantedRevision<'_>>,
) -> Judged {
    let source_object = objects.get(source);
    let source_readiness = match wanted {
        Some(wanted) => conditions::source_readiness(source_object, wanted),
        None => conditions::flux_readiness(source_object),
    };
    let tree = Tree::build(
        root,
        |name| objects.get(name),
        |name, object| match (wanted, object) {
            (Some(wanted), Some(ks))
                if name.kind == "Kustomization" && source_of(ks).as_ref() == Some(source) =>
            {
                conditions::applied_readiness(object, wanted)
            }
            _ => conditions::flux_readiness(object),
        },
    );
    let mut rows = vec![Row {
        object: source.clone(),
        readiness: source_readiness,
        waiting_on: Vec::new(),
    }];
    rows.extend(tree.order.iter().map(|name| Row {
        object: name.clone(),
        readiness: tree.nodes[name].readiness.clone(),
        waiting_on: tree.blockers(name).into_iter().map(|(_, o)| o).collect(),
    }));
    let snapshot = Snapshot {
        root: root.clone(),
        ready: rows.iter().filter(|r| r.readiness.is_ready()).count(),
        total: rows.len(),
        rows,
    };
    Judged { snapshot, tree }
}

impl Judged {
    /// The first terminal object, with the chain from the root down to it.
    fn failure(&self) -> Option<WaitError> {
        let row = self
            .snapshot
            .rows
            .iter()
            .find(|r| r.readiness.is_terminal())?;
        let chain = if self.tree.nodes.contains_key(&row.object) {
            self.tree.chain_to(&row.object)
        } else {
            BlockingChain {
                links: vec![ChainLink {
                    via: None,
                    object: row.object.clone(),
                }],
                cause: row.readiness.clone(),
            }
        };
        Some(WaitError::Failed {
            object: row.object.clone(),
            reason: row.readiness.reason().to_owned(),
            message: row.readiness.message().to_owned(),
            chain,
        })
    }

    fn not_ready(&self) -> Vec<NotReady> {
        self.snapshot
            .rows
            .iter()
            .filter(|r| !r.readiness.is_ready())
            .map(|row| NotReady {
                object: row.object.clone(),
                reason: row.readiness.reason().to_owned(),
                message: row.readiness.message().to_owned(),
                chain: self
                    .tree
                    .nodes
                    .contains_key(&row.object)
                    .then(|| self.tree.blocking_chain(&row.object)),
            })
            .collect()
    }
}
