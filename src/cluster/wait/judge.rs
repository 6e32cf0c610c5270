//! Judging the objects under the root at one moment: each object by its conditions, then the
//! tree as a whole against the revision waited for. A failure ends the wait only when it is
//! current: every Kustomization above the object applied that revision (else it is the
//! failure of an older commit, shown as "waiting for Flux to pick up <sha>"). A `dependsOn`
//! that names an object nothing creates fails once nothing that could still create it is left.

use kube::ResourceExt as _;
use kube::api::DynamicObject;

use super::conditions::{
    self, Readiness, WantedRevision, after_request, applied_readiness, handled_request,
    has_applied, outdated, source_readiness,
};
use super::tree::{BlockingChain, ChainLink, Node, Tree};
use super::{NotReady, Objects, Row, Snapshot, WaitError};
use crate::cluster::ObjectName;
use crate::cluster::substituted::ConfigReconcile;
use crate::report::short_sha;

/// Why an absent dependency is final.
const DEPENDENCY_NOT_FOUND: &str = "DependencyNotFound";

pub(super) struct Judged {
    pub snapshot: Snapshot,
    pub tree: Tree,
    /// Absent dependencies nothing will create, with the first object that wants each.
    pub missing: Vec<(ObjectName, ObjectName)>,
}

/// The source a Kustomization reads.
pub fn source_of(kustomization: &DynamicObject) -> Option<ObjectName> {
    let reference = &kustomization.data["spec"]["sourceRef"];
    let namespace = reference["namespace"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| kustomization.namespace())
        .unwrap_or_default();
    Some(ObjectName::namespaced(
        reference["kind"].as_str()?,
        &namespace,
        reference["name"].as_str()?,
    ))
}

/// How each object is judged against the revision waited for (if any) and the reconcile the
/// run requested of Kustomizations substituting from config it changed.
pub(super) struct Rules<'a> {
    pub objects: &'a Objects,
    pub source: &'a ObjectName,
    pub wanted: Option<&'a WantedRevision<'a>>,
    pub requested: &'a ConfigReconcile,
}

impl Rules<'_> {
    fn reads_source(&self, object: &DynamicObject) -> bool {
        source_of(object).as_ref() == Some(self.source)
    }

    /// One object by its conditions; with a wanted revision, the source and the
    /// Kustomizations reading it must be at that revision; a Kustomization asked to apply
    /// changed config must have handled that request.
    fn readiness(&self, name: &ObjectName, object: Option<&DynamicObject>) -> Readiness {
        let readiness = match (self.wanted, object) {
            (Some(wanted), _) if name == self.source => source_readiness(object, wanted),
            (Some(wanted), Some(ks)) if name.kind == "Kustomization" && self.reads_source(ks) => {
                applied_readiness(object, wanted)
            }
            _ => conditions::flux_readiness(object),
        };
        match self.requested.awaited(name) {
            Some(sources) => after_request(
                &name.name,
                object,
                &self.requested.requested_at,
                &sources,
                readiness,
            ),
            None => readiness,
        }
    }

    /// Whether `name` has no pending request of the run's: what it contains is current only
    /// once it applied the changed config.
    fn handled(&self, name: &ObjectName, object: Option<&DynamicObject>) -> bool {
        !self.requested.kustomizations.contains_key(name)
            || handled_request(object, &self.requested.requested_at)
    }

    /// One object as the tree holds it, before the rules that look at the whole tree.
    pub fn node(&self, name: &ObjectName) -> Node {
        let object = self.objects.get(name);
        let applied = |object: Option<&DynamicObject>| {
            let wanted = self
                .wanted
                .filter(|_| object.is_some_and(|o| self.reads_source(o)));
            has_applied(object, wanted) && self.handled(name, object)
        };
        let exists = |other: &ObjectName| self.objects.get(other).is_some();
        Node::read(name, object, self.readiness(name, object), applied, exists)
    }
}

/// Judges the source and the tree under `root`; with a wanted revision, failures count only
/// when current.
pub(super) fn judge(rules: &Rules<'_>, root: &ObjectName) -> Judged {
    let mut tree = Tree::build(root, |name| rules.node(name));
    if let Some(wanted) = rules.wanted {
        mark_outdated(&mut tree, wanted.sha);
    }
    let missing = mark_missing_dependencies(&mut tree, rules.wanted.map(|w| w.sha));

    let source = rules.source;
    let source_row = Row {
        object: source.clone(),
        readiness: tree
            .readiness(source)
            .cloned()
            .unwrap_or_else(|| rules.readiness(source, rules.objects.get(source))),
        waiting_on: Vec::new(),
    };
    let mut rows = vec![source_row];
    rows.extend(tree.order.iter().filter(|n| *n != source).map(|name| Row {
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
    Judged {
        snapshot,
        tree,
        missing,
    }
}

/// A terminal state under a Kustomization that has not applied the wanted revision belongs to
/// an older commit: Flux has yet to apply the one that may fix it.
fn mark_outdated(tree: &mut Tree, wanted_sha: &str) {
    let stale: Vec<ObjectName> = tree
        .order
        .iter()
        .filter(|name| tree.nodes[*name].readiness.is_terminal() && !tree.is_current(name))
        .cloned()
        .collect();
    for name in stale {
        let node = tree
            .nodes
            .get_mut(&name)
            .expect("stale names come from the tree");
        node.readiness = outdated(wanted_sha, &node.readiness);
    }
}

/// Fails the absent dependencies that nothing will create: the object wanting it is current,
/// no Kustomization lists it, and every Kustomization has applied the wanted revision or is
/// itself stuck behind the one wanting it.
fn mark_missing_dependencies(
    tree: &mut Tree,
    wanted_sha: Option<&str>,
) -> Vec<(ObjectName, ObjectName)> {
    let mut missing: Vec<(ObjectName, ObjectName)> = Vec::new();
    for wanted_by in &tree.order {
        for dependency in &tree.nodes[wanted_by].depends_on {
            let final_absence = tree.readiness(dependency) == Some(&Readiness::Missing)
                && tree.readiness(wanted_by) != Some(&Readiness::Missing)
                && tree.parent_of(dependency).is_none()
                && tree.is_current(wanted_by)
                && tree.order.iter().all(|ks| {
                    ks.kind != "Kustomization"
                        || ks == wanted_by
                        || ks == dependency
                        || tree.nodes[ks].applied
                        || tree.waits_on(ks, wanted_by)
                });
            if final_absence && !missing.iter().any(|(d, _)| d == dependency) {
                missing.push((dependency.clone(), wanted_by.clone()));
            }
        }
    }
    let at = wanted_sha.map_or(String::new(), |sha| format!(" at {}", short_sha(sha)));
    for (dependency, wanted_by) in &missing {
        let node = tree
            .nodes
            .get_mut(dependency)
            .expect("dependencies are nodes of the tree");
        node.readiness = Readiness::Failed {
            reason: DEPENDENCY_NOT_FOUND.to_owned(),
            message: format!(
                "{wanted_by} depends on it, but it does not exist and no Kustomization applied it{at}"
            ),
        };
    }
    missing
}

impl Judged {
    /// The first terminal object, with the chain from the root down to it.
    pub fn failure(&self) -> Option<WaitError> {
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
        if let Some((dependency, wanted_by)) = self.missing.iter().find(|(d, _)| *d == row.object) {
            return Some(WaitError::MissingDependency {
                dependency: dependency.clone(),
                wanted_by: wanted_by.clone(),
                chain,
            });
        }
        Some(WaitError::Failed {
            object: row.object.clone(),
            reason: row.readiness.reason().to_owned(),
            message: row.readiness.message().to_owned(),
            chain,
        })
    }

    pub fn not_ready(&self) -> Vec<NotReady> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const NEW: &str = "2222222222222222222222222222222222222222";
    const OLD: &str = "1111111111111111111111111111111111111111";

    /// The root, reading GitRepository flux-system at NEW, applies Kustomization `apps`, which
    /// applied a HelmRepository and HelmReleases `a` (stalled) and `b`; `apps_status` is the
    /// status of `apps`.
    fn objects(apps_status: &str, b_spec: &str) -> Objects {
        let yaml = format!(
            r#"
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: flux-system, namespace: flux-system, generation: 1}}
status:
  observedGeneration: 1
  conditions: [{{type: Ready, status: "True", reason: Succeeded, message: ok}}]
  artifact: {{revision: "main@sha1:{NEW}"}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: flux-system, namespace: flux-system, generation: 1}}
spec: {{sourceRef: {{kind: GitRepository, name: flux-system}}}}
status:
  observedGeneration: 1
  conditions: [{{type: Ready, status: "True", reason: ReconciliationSucceeded, message: ok}}]
  lastAppliedRevision: main@sha1:{NEW}
  lastAttemptedRevision: main@sha1:{NEW}
  inventory:
    entries:
    - {{id: flux-system_apps_kustomize.toolkit.fluxcd.io_Kustomization, v: v1}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: apps, namespace: flux-system, generation: 1}}
spec: {{sourceRef: {{kind: GitRepository, name: flux-system}}, wait: true}}
status:
  observedGeneration: 1
  inventory:
    entries:
    - {{id: apps_a_helm.toolkit.fluxcd.io_HelmRelease, v: v2}}
    - {{id: apps_b_helm.toolkit.fluxcd.io_HelmRelease, v: v2}}
    - {{id: apps_charts_source.toolkit.fluxcd.io_HelmRepository, v: v1}}
{apps_status}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {{name: charts, namespace: apps, generation: 1}}
status:
  observedGeneration: 1
  conditions:
  - {{type: FetchFailed, status: "True", reason: Failed, message: "index 404"}}
  - {{type: Ready, status: "False", reason: Failed, message: "index 404"}}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {{name: a, namespace: apps, generation: 1}}
spec:
  chart: {{spec: {{chart: a, sourceRef: {{kind: HelmRepository, name: charts}}}}}}
status:
  observedGeneration: 1
  conditions:
  - {{type: Stalled, status: "True", reason: RetriesExceeded, message: "Failed to install after 1 attempt(s)", observedGeneration: 1}}
  - {{type: Ready, status: "False", reason: InstallFailed, message: "chart a version 0.0.0 not found", observedGeneration: 1}}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {{name: b, namespace: apps, generation: 1}}
spec:
{b_spec}
status:
  observedGeneration: 1
  conditions: [{{type: Ready, status: "False", reason: DependencyNotReady, message: waiting}}]
"#
        );
        let mut objects = Objects::default();
        for object in crate::cluster::apply::parse_documents(&yaml).unwrap() {
            objects
                .0
                .insert(crate::cluster::apply::object_name(&object), object);
        }
        objects
    }

    const B_READS_CHARTS: &str =
        "  chart: {spec: {chart: b, sourceRef: {kind: HelmRepository, name: charts}}}";

    /// `apps` applied `revision` and runs its health checks (they wait on `a`).
    fn checking_health(revision: &str) -> String {
        format!(
            "  conditions: [{{type: Ready, status: \"Unknown\", reason: Progressing, message: \"Running health checks for revision main@sha1:{revision} with a timeout of 5m0s\", observedGeneration: 1}}]\n  lastAttemptedRevision: main@sha1:{revision}\n  lastAppliedRevision: main@sha1:{OLD}"
        )
    }

    fn judged(objects: &Objects) -> Judged {
        judged_with(objects, &ConfigReconcile::default())
    }

    fn judged_with(objects: &Objects, requested: &ConfigReconcile) -> Judged {
        let none = |_: &str| false;
        let wanted = WantedRevision {
            sha: NEW,
            is_descendant: &none,
        };
        let source = ObjectName::namespaced("GitRepository", "flux-system", "flux-system");
        let rules = Rules {
            objects,
            source: &source,
            wanted: Some(&wanted),
            requested,
        };
        judge(
            &rules,
            &ObjectName::namespaced("Kustomization", "flux-system", "flux-system"),
        )
    }

    fn readiness<'a>(judged: &'a Judged, kind: &str, name: &str) -> &'a Readiness {
        let ns = if kind == "Kustomization" {
            "flux-system"
        } else {
            "apps"
        };
        &judged
            .snapshot
            .rows
            .iter()
            .find(|r| r.object == ObjectName::namespaced(kind, ns, name))
            .unwrap_or_else(|| panic!("{kind} {name} in the snapshot"))
            .readiness
    }

    #[test]
    fn a_failure_under_a_kustomization_that_has_not_applied_the_commit_is_outdated() {
        let stale = judged(&objects(&checking_health(OLD), B_READS_CHARTS));
        let a = readiness(&stale, "HelmRelease", "a");
        assert_eq!(a.reason(), "OlderRevision", "{a}");
        assert!(
            a.message()
                .starts_with("waiting for Flux to pick up 2222222")
                && a.message().contains("RetriesExceeded: Failed to install"),
            "the old failure stays visible: {a}"
        );
        assert!(stale.failure().is_none());

        let current = judged(&objects(&checking_health(NEW), B_READS_CHARTS));
        let failure = current.failure().expect("a current failure ends the wait");
        assert!(
            failure
                .to_string()
                .starts_with("HelmRelease apps/a will not become Ready: RetriesExceeded"),
            "{failure}"
        );
    }

    #[test]
    fn a_failure_before_the_runs_reconcile_request_was_handled_does_not_end_the_wait() {
        const REQUESTED: &str = "2026-12-07T12:00:00.5Z";
        let build_failed = |handled: &str| {
            format!(
                "  conditions: [{{type: Ready, status: \"False\", reason: BuildFailed, message: 'secrets \"cluster-secrets\" not found', observedGeneration: 1}}]\n  lastAttemptedRevision: main@sha1:{NEW}\n  lastAppliedRevision: main@sha1:{OLD}\n  lastHandledReconcileAt: {handled}"
            )
        };
        let apps = ObjectName::namespaced("Kustomization", "flux-system", "apps");
        let requested = ConfigReconcile {
            requested_at: REQUESTED.to_owned(),
            kustomizations: [(apps, vec!["cluster-secrets".to_owned()])].into(),
        };
        // Without the request, the failure is current: the wait ends.
        let failed = objects(&build_failed("before"), B_READS_CHARTS);
        assert!(judged(&failed).failure().is_some());

        let pending = judged_with(&failed, &requested);
        assert!(pending.failure().is_none(), "{:?}", pending.failure());
        let ks = readiness(&pending, "Kustomization", "apps");
        assert_eq!(ks.reason(), conditions::RECONCILE_REQUESTED);
        assert_eq!(
            ks.message(),
            "waiting for apps to apply the new cluster-secrets; last result: BuildFailed: secrets \"cluster-secrets\" not found"
        );
        // What it applied is of the old config: a stalled release under it waits too.
        assert_eq!(
            readiness(&pending, "HelmRelease", "a").reason(),
            "OlderRevision"
        );

        // Handled (that request, or a later one): its own result counts again.
        for handled in [REQUESTED, "2026-12-07T12:00:01Z"] {
            let current = judged_with(&objects(&build_failed(handled), B_READS_CHARTS), &requested);
            let failure = current
                .failure()
                .expect("a failure after the request ends the wait");
            assert!(
                failure.to_string().starts_with(
                    "Kustomization flux-system/apps will not become Ready: BuildFailed"
                ),
                "{failure}"
            );
        }
        let earlier = judged_with(
            &objects(&build_failed("2026-12-07T11:59:59Z"), B_READS_CHARTS),
            &requested,
        );
        assert!(earlier.failure().is_none());
    }

    #[test]
    fn sources_are_in_the_tree_and_in_the_chain() {
        let judged = judged(&objects(&checking_health(NEW), B_READS_CHARTS));
        let repository = readiness(&judged, "HelmRepository", "charts");
        assert_eq!(repository.reason(), "Failed");
        let b = ObjectName::namespaced("HelmRelease", "apps", "b");
        let chain = judged.tree.blocking_chain(&b);
        assert_eq!(
            chain.to_string(),
            "HelmRelease apps/b ← source HelmRepository apps/charts: waiting (Failed): index 404"
        );
        let row = judged.snapshot.rows.iter().find(|r| r.object == b).unwrap();
        assert_eq!(
            row.waiting_on,
            [ObjectName::namespaced("HelmRepository", "apps", "charts")]
        );
    }

    #[test]
    fn a_dependency_nothing_creates_fails_once_every_kustomization_applied_the_commit() {
        let depends = "  dependsOn: [{name: c}]";
        let judged_missing = judged(&objects(&checking_health(NEW), depends));
        let c = readiness(&judged_missing, "HelmRelease", "c");
        assert!(c.is_terminal(), "{c}");
        assert_eq!(c.reason(), DEPENDENCY_NOT_FOUND);
        assert_eq!(
            c.message(),
            "HelmRelease apps/b depends on it, but it does not exist and no Kustomization applied it at 2222222"
        );
        assert_eq!(
            judged_missing.missing,
            [(
                ObjectName::namespaced("HelmRelease", "apps", "c"),
                ObjectName::namespaced("HelmRelease", "apps", "b")
            )]
        );
        // Before `apps` applied the commit, `c` may still come with it.
        let judged_early = judged(&objects(&checking_health(OLD), depends));
        let c = readiness(&judged_early, "HelmRelease", "c");
        assert_eq!(c, &Readiness::Missing);
        assert!(judged_early.missing.is_empty());
    }
}
