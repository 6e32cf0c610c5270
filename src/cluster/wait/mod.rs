//! Waiting for the runtime apps: watches Flux's sources, Kustomizations and HelmReleases (no
//! polling), judges the tree under the root Kustomization, and after every burst of changes
//! judges again what they can change (`live`: one object turning Ready costs one object). Live
//! snapshots go to a callback; a current terminal failure ends the wait at once with its
//! blocking chain; at the timeout the error lists what is not Ready and why.

pub mod conditions;
mod judge;
mod live;
pub mod tree;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use futures::{FutureExt as _, StreamExt as _};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, TypeMeta};
use kube::discovery::Discovery;
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, ResourceExt as _};
use serde::Serialize;
use tokio::time::Instant;

pub use conditions::{Readiness, WantedRevision};
pub use tree::{BlockingChain, ChainLink, Edge, Tree};

use super::ObjectName;
use super::substituted::ConfigReconcile;
use crate::error::{Diagnose, ExitStatus};
pub use judge::source_of;
use judge::{Rules, judge};
use live::LiveJudgement;
use tree::FOLLOWED;

/// What "the apps are up" means for one push.
pub struct WaitTarget {
    /// The root Kustomization (`flux-system/flux-system`).
    pub root: ObjectName,
    /// The GitRepository the pushed commit must reach.
    pub git_repository: ObjectName,
    /// The pushed commit; `None` waits for whatever revision the source has fetched, looked
    /// at again after every change (`status --wait`: nothing was pushed by this run).
    pub revision_sha: Option<String>,
    /// Whether a commit is newer than (descends from) the pushed one; a newer revision counts.
    pub is_descendant: Box<dyn Fn(&str) -> bool + Send + Sync>,
    /// The Kustomizations this run asked to apply config it changed: each counts only once it
    /// handled that request (empty when the run changed no config, or wrote nothing).
    pub config_reconcile: ConfigReconcile,
}

impl fmt::Debug for WaitTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitTarget")
            .field("root", &self.root)
            .field("git_repository", &self.git_repository)
            .field("revision_sha", &self.revision_sha)
            .field("config_reconcile", &self.config_reconcile)
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
        "the runtime apps were not Ready within {}:\n{}",
        crate::report::duration(*timeout),
        not_ready_table(not_ready)
    )]
    TimedOut {
        timeout: Duration,
        not_ready: Vec<NotReady>,
    },
    #[error(
        "{wanted_by} depends on {dependency}, which does not exist and which no Kustomization applied\n  blocking chain: {chain}"
    )]
    MissingDependency {
        dependency: ObjectName,
        wanted_by: ObjectName,
        chain: BlockingChain,
    },
    #[error("failed to list {kind} objects: {message}")]
    List { kind: String, message: String },
    #[error("failed to discover Flux's kinds: {message}")]
    Discovery { message: String },
    #[error("the watch of the Flux objects ended unexpectedly")]
    WatchEnded,
    #[error(
        "the API server stopped answering: nothing for the last {} of the {} wait ({message}); the apps when it was last heard:\n{}",
        crate::report::duration(*silent_for),
        crate::report::duration(*timeout),
        not_ready_table(not_ready)
    )]
    Unanswered {
        timeout: Duration,
        silent_for: Duration,
        message: String,
        not_ready: Vec<NotReady>,
    },
}

impl WaitError {
    /// The error told against `budget`, the whole wait the user gave (`--timeout`), when the
    /// watch had only what an earlier part of the wait left of it.
    pub fn against(mut self, budget: Duration) -> Self {
        if let WaitError::TimedOut { timeout, .. } | WaitError::Unanswered { timeout, .. } =
            &mut self
        {
            *timeout = budget;
        }
        self
    }
}

impl Diagnose for WaitError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            WaitError::TimedOut { .. } | WaitError::Unanswered { .. } => ExitStatus::TimedOut,
            _ => ExitStatus::Failure,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            WaitError::Failed { .. } => Some(
                "fix the cause in Git (or the cluster) and rerun; `gitops-bootstrap status <env>` shows the whole tree".to_owned(),
            ),
            WaitError::MissingDependency { dependency, wanted_by, .. } => Some(format!(
                "fix spec.dependsOn of {wanted_by} in Git, or add {dependency} to a Kustomization, then rerun"
            )),
            WaitError::Unanswered { .. } => Some(
                "check the API server (the control plane's health, its load balancer, the network), then rerun: nothing is redone".to_owned(),
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
    let mut objects = Objects::default();
    let mut judgement: Option<LiveJudgement> = None;
    let mut heard = Heard::default();
    let watch = watch_until_settled(
        client,
        &target,
        &mut on_progress,
        &mut objects,
        &mut judgement,
        &mut heard,
    );
    let waited = tokio::time::timeout(timeout, watch).await;
    let judged = judgement.as_ref().map(LiveJudgement::judged);
    let result = match waited {
        Ok(result) => result,
        Err(_) => {
            // Blocking chains are worked out here, once, not after every event.
            let not_ready = match judged {
                Some(judged) => judged.not_ready(),
                None => vec![NotReady {
                    object: target.root.clone(),
                    reason: "NotObserved".to_owned(),
                    message: heard
                        .error
                        .clone()
                        .unwrap_or_else(|| "no Flux object seen yet".to_owned()),
                    chain: None,
                }],
            };
            match last_check(client, &target.root).await {
                Ok(()) => Err(WaitError::TimedOut { timeout, not_ready }),
                Err(unanswered) => Err(WaitError::Unanswered {
                    timeout,
                    silent_for: heard.silent_for(),
                    message: heard.error.unwrap_or(unanswered),
                    not_ready,
                }),
            }
        }
    };
    // Freeing a thousand watched objects takes longer than reporting them Ready (tens of ms
    // on a busy machine): a thread of its own does it, after the caller has the result.
    tokio::task::spawn_blocking(move || drop((objects, judgement)));
    result
}

/// The server ends each watch after this and the watcher resumes it from where it was, as
/// kube-runtime does by default: a renewal is a request, and a quiet wait should cost few.
const WATCH_TIMEOUT_SECS: u32 = 290;
/// How long the check at the timeout waits for the API server, so a silent one keeps a run
/// near its `--timeout`.
const LAST_CHECK: Duration = Duration::from_secs(5);

/// What the wait last heard from the API server.
struct Heard {
    /// The last watch error, when no event came after it.
    error: Option<String>,
    /// The last event, or the start of the wait.
    last: Instant,
    /// Since when requests have gone unanswered, when no event came after that.
    unanswered_since: Option<Instant>,
}

impl Default for Heard {
    fn default() -> Heard {
        Heard {
            error: None,
            last: Instant::now(),
            unanswered_since: None,
        }
    }
}

impl Heard {
    fn event(&mut self) {
        self.error = None;
        self.last = Instant::now();
        self.unanswered_since = None;
    }

    fn error(&mut self, kind: &str, err: &watcher::Error) {
        self.error = Some(format!("watching {kind}: {err}"));
        if super::unanswered(err) && self.unanswered_since.is_none() {
            // The request went out a whole deadline before it failed.
            let now = Instant::now();
            self.unanswered_since = Some(
                now.checked_sub(super::client::REQUEST_TIMEOUT)
                    .unwrap_or(now),
            );
        }
    }

    /// How long nothing has come from the server: since a request went unanswered, or else
    /// since the last event.
    fn silent_for(&self) -> Duration {
        self.unanswered_since.unwrap_or(self.last).elapsed()
    }
}

/// Whether the API server answers a read of `root`'s namespace now, within [`LAST_CHECK`]:
/// at the timeout, this tells a slow rollout from a server that stopped answering.
async fn last_check(client: &Client, root: &ObjectName) -> Result<(), String> {
    let api = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone());
    let namespace = root.namespace.as_deref().unwrap_or("default");
    match tokio::time::timeout(LAST_CHECK, api.get_opt(namespace)).await {
        // A refusal is an answer too.
        Ok(Ok(_) | Err(kube::Error::Api(_))) => Ok(()),
        Ok(Err(err)) => Err(format!("reading namespace {namespace}: {err}")),
        Err(_) => Err(format!(
            "reading namespace {namespace}: no answer within {}",
            crate::report::duration(LAST_CHECK)
        )),
    }
}

/// What the watches brought since the last judgement.
struct Batch {
    /// Objects of a kind being (re)listed; they replace that kind's objects once complete.
    listing: Vec<Vec<DynamicObject>>,
    initialized: Vec<bool>,
    /// What changed since the last judgement: some objects, or (after a relist) anything.
    changed: BTreeSet<ObjectName>,
    relisted: bool,
}

impl Batch {
    fn new(kinds: usize) -> Batch {
        Batch {
            listing: vec![Vec::new(); kinds],
            initialized: vec![false; kinds],
            changed: BTreeSet::new(),
            relisted: false,
        }
    }

    /// Takes one event of the watch of kind number `index` into `objects`.
    fn take(
        &mut self,
        objects: &mut Objects,
        index: usize,
        (kind, resource): &(String, ApiResource),
        event: watcher::Event<DynamicObject>,
    ) {
        match event {
            watcher::Event::Init => self.listing[index].clear(),
            watcher::Event::InitApply(object) => self.listing[index].push(lean(object)),
            watcher::Event::InitDone => {
                objects.replace_kind(kind, resource, std::mem::take(&mut self.listing[index]));
                self.initialized[index] = true;
                self.relisted = true;
            }
            watcher::Event::Apply(object) => {
                self.changed
                    .insert(objects.insert(kind, resource, lean(object)));
            }
            watcher::Event::Delete(object) => {
                self.changed.insert(objects.remove(kind, &object));
            }
        }
    }

    /// Every kind has been listed once: there is a whole tree to judge.
    fn complete(&self) -> bool {
        self.initialized.iter().all(|done| *done)
    }
}

async fn watch_until_settled(
    client: &Client,
    target: &WaitTarget,
    on_progress: &mut impl FnMut(&Snapshot),
    objects: &mut Objects,
    judgement: &mut Option<LiveJudgement>,
    heard: &mut Heard,
) -> Result<Snapshot, WaitError> {
    let kinds = served_kinds(client).await?;
    let streams = kinds.iter().enumerate().map(|(index, (_, resource))| {
        let api = Api::<DynamicObject>::all_with(client.clone(), resource);
        watcher(api, watcher::Config::default().timeout(WATCH_TIMEOUT_SECS))
            .default_backoff()
            .map(move |event| (index, event))
            .boxed()
    });
    let mut events = futures::stream::select_all(streams);
    let mut batch = Batch::new(kinds.len());
    // Asking Git about ancestry can be slow: once per sha.
    let descendants = Mutex::new(HashMap::new());
    let is_descendant = |sha: &str| {
        *descendants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(sha.to_owned())
            .or_insert_with(|| (target.is_descendant)(sha))
    };
    while let Some(first) = events.next().await {
        // Once per burst of events, not once per event.
        let mut burst = vec![first];
        while let Some(Some(next)) = events.next().now_or_never() {
            burst.push(next);
        }
        for (index, event) in burst {
            match event {
                Ok(event) => {
                    heard.event();
                    batch.take(objects, index, &kinds[index], event);
                }
                Err(err) => {
                    let kind = &kinds[index].0;
                    tracing::debug!(kind, error = %err, "watch error, retrying");
                    heard.error(kind, &err);
                }
            }
        }
        if !batch.complete() {
            continue;
        }
        let progressed = judge_batch(target, objects, judgement, &mut batch, &is_descendant);
        let judged = judgement.as_ref().expect("judged above").judged();
        if progressed {
            on_progress(&judged.snapshot);
        }
        if let Some(failure) = judged.failure() {
            return Err(failure);
        }
        if judged.snapshot.all_ready() {
            return Ok(judged.snapshot.clone());
        }
    }
    Err(WaitError::WatchEnded)
}

/// Judges the tree again, against the pushed commit or else the one the source fetched: in
/// place for the objects `batch` changed, from scratch after a relist. Whether anything the
/// user sees changed.
fn judge_batch(
    target: &WaitTarget,
    objects: &Objects,
    judgement: &mut Option<LiveJudgement>,
    batch: &mut Batch,
    is_descendant: &dyn Fn(&str) -> bool,
) -> bool {
    let fetched = match &target.revision_sha {
        Some(_) => None,
        None => fetched_sha(objects, &target.git_repository),
    };
    let wanted = target
        .revision_sha
        .as_deref()
        .or(fetched.as_deref())
        .map(|sha| WantedRevision { sha, is_descendant });
    let rules = Rules {
        objects,
        source: &target.git_repository,
        wanted: wanted.as_ref(),
        requested: &target.config_reconcile,
    };
    let progressed = match judgement.as_mut() {
        Some(live) if batch.relisted => live.rejudge(&rules),
        Some(live) => live.update(&rules, &batch.changed),
        None => {
            *judgement = Some(LiveJudgement::new(&rules, &target.root));
            true
        }
    };
    batch.changed.clear();
    batch.relisted = false;
    progressed
}

/// `object` without its managedFields: judging never reads who manages which field, and on a
/// thousand watched objects they would be most of what is kept (and freed, all at once, as the
/// wait ends and before it can report).
fn lean(mut object: DynamicObject) -> DynamicObject {
    object.metadata.managed_fields = None;
    object
}

/// The tree under `root` as it is now (for `status`), judged against the revision its source
/// has fetched: what Flux has yet to apply of it is shown waiting, not failed.
pub async fn readiness_tree(client: &Client, root: &ObjectName) -> Result<Snapshot, WaitError> {
    let objects = Objects(flux_objects(client).await?);
    let source = objects.get(root).and_then(source_of).unwrap_or_else(|| {
        ObjectName::namespaced(
            "GitRepository",
            root.namespace.as_deref().unwrap_or_default(),
            &root.name,
        )
    });
    let fetched = fetched_sha(&objects, &source);
    let exact = |_: &str| false;
    let wanted = fetched.as_deref().map(|sha| WantedRevision {
        sha,
        is_descendant: &exact,
    });
    let rules = Rules {
        objects: &objects,
        source: &source,
        wanted: wanted.as_ref(),
        requested: &ConfigReconcile::default(),
    };
    Ok(judge(&rules, root).snapshot)
}

/// Every Flux object of the kinds the tree follows, in every namespace, by name.
pub async fn flux_objects(
    client: &Client,
) -> Result<BTreeMap<ObjectName, DynamicObject>, WaitError> {
    let mut objects = Objects::default();
    for (kind, resource) in served_kinds(client).await? {
        let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|err| WaitError::List {
                kind: kind.clone(),
                message: super::api_message(&err),
            })?;
        objects.insert_all(&kind, &resource, list.items);
    }
    Ok(objects.0)
}

/// The commit `source` has fetched, if it has fetched one.
fn fetched_sha(objects: &Objects, source: &ObjectName) -> Option<String> {
    objects
        .get(source)
        .and_then(|s| s.data["status"]["artifact"]["revision"].as_str())
        .map(|revision| conditions::revision_sha(revision).to_owned())
}

/// The Flux kinds the tree follows that this cluster serves, at their preferred versions
/// (HelmChart, OCIRepository and Bucket may be absent).
async fn served_kinds(client: &Client) -> Result<Vec<(String, ApiResource)>, WaitError> {
    let mut groups: Vec<&str> = FOLLOWED.iter().map(|(group, _)| *group).collect();
    groups.dedup();
    let discovery = Discovery::new(client.clone())
        .filter(&groups)
        .run()
        .await
        .map_err(|err| WaitError::Discovery {
            message: super::api_message(&err),
        })?;
    Ok(FOLLOWED
        .iter()
        .filter_map(|(group, kind)| {
            let resource = super::served_resource(&discovery, group, kind)?;
            Some(((*kind).to_owned(), resource))
        })
        .collect())
}

/// Every watched object by name, with its kind filled in (list items may lack it).
#[derive(Default)]
struct Objects(BTreeMap<ObjectName, DynamicObject>);

impl Objects {
    fn insert_all(
        &mut self,
        kind: &str,
        resource: &ApiResource,
        items: impl IntoIterator<Item = DynamicObject>,
    ) {
        for object in items {
            self.insert(kind, resource, object);
        }
    }

    /// Stores `object` (replacing what was there under its name); its name.
    fn insert(
        &mut self,
        kind: &str,
        resource: &ApiResource,
        mut object: DynamicObject,
    ) -> ObjectName {
        object.types.get_or_insert_with(|| TypeMeta {
            api_version: resource.api_version.clone(),
            kind: kind.to_owned(),
        });
        let name = ObjectName::namespaced(
            kind,
            &object.namespace().unwrap_or_default(),
            &object.name_any(),
        );
        self.0.insert(name.clone(), object);
        name
    }

    /// Replaces every object of `kind` with a fresh listing of it.
    fn replace_kind(&mut self, kind: &str, resource: &ApiResource, items: Vec<DynamicObject>) {
        self.0.retain(|name, _| name.kind != kind);
        self.insert_all(kind, resource, items);
    }

    fn remove(&mut self, kind: &str, object: &DynamicObject) -> ObjectName {
        let name = ObjectName::namespaced(
            kind,
            &object.namespace().unwrap_or_default(),
            &object.name_any(),
        );
        self.0.remove(&name);
        name
    }

    fn get(&self, name: &ObjectName) -> Option<&DynamicObject> {
        self.0.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 20 (smaller): `--timeout 20s` is told as 20s, not as the 17.7s its apps watch had.
    #[test]
    fn a_timeout_is_told_against_the_budget_given() {
        let timed_out = WaitError::TimedOut {
            timeout: Duration::from_millis(17_700),
            not_ready: Vec::new(),
        };
        assert_eq!(
            timed_out.against(Duration::from_secs(20)).to_string(),
            "the runtime apps were not Ready within 20s:\n"
        );
        let silent = WaitError::Unanswered {
            timeout: Duration::from_millis(74_200),
            silent_for: Duration::from_secs(30),
            message: "reading namespace flux-system: no answer within 5s".to_owned(),
            not_ready: Vec::new(),
        };
        assert_eq!(
            silent.against(Duration::from_secs(75)).to_string(),
            "the API server stopped answering: nothing for the last 30s of the 1m 15s wait \
             (reading namespace flux-system: no answer within 5s); the apps when it was last \
             heard:\n"
        );
    }
}
