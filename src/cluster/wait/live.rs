//! The judged tree kept between bursts of watch events, so that an event costs what it
//! changes rather than a judgement of the whole tree (a thousand objects turning Ready one by
//! one would otherwise cost a million object judgements).
//!
//! After a burst, each changed object is read again with the same [`Rules`] as a full
//! judgement. When every change is only a readiness change (the object keeps its edges, it is
//! neither absent nor terminal, and its `applied` stays or it contains nothing it could make
//! current), it is applied in place: the object's own row, the ready count, and the `waiting
//! on` lists of the objects waiting on it. Anything else (a new or deleted object, an
//! inventory or `dependsOn` change, the source or the wanted revision moving, a failure, a
//! relist) judges the whole tree again with [`judge`], because the rules for outdated
//! failures and absent dependencies look at the whole tree. Either way the result is what
//! [`judge`] gives for the same objects: the tests below check it over random event orders.

use std::collections::{BTreeSet, HashMap};

use super::conditions::Readiness;
use super::judge::{Judged, Rules, judge};
use super::tree::Node;
use crate::cluster::ObjectName;

pub(super) struct LiveJudgement {
    judged: Judged,
    /// Each object's row in the snapshot.
    rows: HashMap<ObjectName, usize>,
    /// Who waits on each object, directly (the reverse of the tree's edges).
    waiters: HashMap<ObjectName, Vec<ObjectName>>,
    /// The revision the tree was judged against.
    wanted_sha: Option<String>,
    /// No object of the tree is absent: then only an absent or terminal object can bring in
    /// the whole-tree rules, and changes that bring neither can be applied in place.
    in_place: bool,
}

impl LiveJudgement {
    pub fn new(rules: &Rules<'_>, root: &ObjectName) -> LiveJudgement {
        let judged = judge(rules, root);
        let rows = judged
            .snapshot
            .rows
            .iter()
            .enumerate()
            .map(|(index, row)| (row.object.clone(), index))
            .collect();
        let mut waiters: HashMap<ObjectName, Vec<ObjectName>> = HashMap::new();
        for name in &judged.tree.order {
            for other in judged.tree.nodes[name].waits_on() {
                waiters.entry(other.clone()).or_default().push(name.clone());
            }
        }
        let in_place = judged.missing.is_empty()
            && judged
                .tree
                .nodes
                .values()
                .all(|node| node.readiness != Readiness::Missing);
        LiveJudgement {
            judged,
            rows,
            waiters,
            wanted_sha: rules.wanted.map(|w| w.sha.to_owned()),
            in_place,
        }
    }

    pub fn judged(&self) -> &Judged {
        &self.judged
    }

    /// Judges the whole tree again (after a relist, say); whether the snapshot changed.
    pub fn rejudge(&mut self, rules: &Rules<'_>) -> bool {
        let fresh = LiveJudgement::new(rules, &self.judged.snapshot.root);
        let changed = fresh.judged.snapshot != self.judged.snapshot;
        *self = fresh;
        changed
    }

    /// Takes in that the objects named in `changed` changed (or appeared, or went); whether the
    /// snapshot changed.
    pub fn update(&mut self, rules: &Rules<'_>, changed: &BTreeSet<ObjectName>) -> bool {
        match self.readiness_changes(rules, changed) {
            Some(changes) => self.apply_in_place(changes),
            None => self.rejudge(rules),
        }
    }

    /// Each changed object of the tree as it is now, or `None` when a change is more than
    /// one of readiness.
    fn readiness_changes(
        &self,
        rules: &Rules<'_>,
        changed: &BTreeSet<ObjectName>,
    ) -> Option<Vec<(ObjectName, Node)>> {
        let same_revision = self.wanted_sha.as_deref() == rules.wanted.map(|w| w.sha);
        if !self.in_place || !same_revision || changed.contains(rules.source) {
            return None;
        }
        let mut changes = Vec::new();
        for name in changed {
            let Some(old) = self.judged.tree.nodes.get(name) else {
                // Outside the tree and named by no edge; but a HelmChart may be the one
                // generated for a release, which adds an edge once it exists.
                if name.kind == "HelmChart" {
                    return None;
                }
                continue;
            };
            let new = rules.node(name);
            let settled = !new.readiness.is_terminal() && new.readiness != Readiness::Missing;
            // Whether a Kustomization applied the revision matters to what it contains.
            let same_currency = new.applied == old.applied || new.children.is_empty();
            if !settled || !new.same_edges(old) || !same_currency {
                return None;
            }
            if new.readiness != old.readiness || new.applied != old.applied {
                changes.push((name.clone(), new));
            }
        }
        Some(changes)
    }

    /// Sets each object's node, its row, and the rows of those waiting on it.
    fn apply_in_place(&mut self, changes: Vec<(ObjectName, Node)>) -> bool {
        let mut progressed = false;
        let mut now_blocking = BTreeSet::new();
        for (name, node) in changes {
            let snapshot = &mut self.judged.snapshot;
            let row = &mut snapshot.rows[self.rows[&name]];
            let (was_ready, is_ready) = (row.readiness.is_ready(), node.readiness.is_ready());
            if row.readiness != node.readiness {
                row.readiness = node.readiness.clone();
                progressed = true;
            }
            self.judged.tree.nodes.insert(name.clone(), node);
            let waiters = self
                .waiters
                .get(&name)
                .map(Vec::as_slice)
                .unwrap_or_default();
            match (was_ready, is_ready) {
                (false, true) => {
                    snapshot.ready += 1;
                    // Dropping it keeps the order `blockers` gives, without walking every
                    // edge of a Kustomization that lists a thousand objects.
                    for waiter in waiters {
                        let row = &mut snapshot.rows[self.rows[waiter]];
                        row.waiting_on.retain(|other| *other != name);
                    }
                }
                (true, false) => {
                    snapshot.ready -= 1;
                    now_blocking.extend(waiters.iter().cloned());
                }
                _ => {}
            }
        }
        for waiter in now_blocking {
            let index = self.rows[&waiter];
            // The source's row comes first and lists nothing it waits on.
            if index == 0 {
                continue;
            }
            let waiting_on = self.judged.tree.blockers(&waiter);
            self.judged.snapshot.rows[index].waiting_on =
                waiting_on.into_iter().map(|(_, o)| o).collect();
        }
        progressed
    }
}

#[cfg(test)]
mod tests {
    use kube::api::DynamicObject;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::super::conditions::WantedRevision;
    use super::super::{Objects, fetched_sha};
    use super::*;
    use crate::cluster::substituted::ConfigReconcile;

    const NEW: &str = "2222222222222222222222222222222222222222";
    const OLD: &str = "1111111111111111111111111111111111111111";
    /// The source, the root, three Kustomizations, three HelmReleases, their HelmRepository
    /// and the HelmChart generated for the first release.
    const OBJECTS: usize = 10;
    const ROOT: usize = 1;

    /// One object as the test has it: present or not, which status, what it depends on and
    /// (Kustomizations) which objects its inventory lists.
    #[derive(Debug, Clone)]
    struct State {
        present: bool,
        status: u8,
        depends_on: Option<usize>,
        inventory: u16,
    }

    #[derive(Debug, Clone)]
    enum Event {
        Status(usize, u8),
        DependsOn(usize, usize),
        Inventory(usize, u16),
        Delete(usize),
    }

    fn identity(index: usize) -> (&'static str, &'static str, String) {
        match index {
            0 => ("GitRepository", "flux-system", "flux-system".to_owned()),
            1 => ("Kustomization", "flux-system", "flux-system".to_owned()),
            2..=4 => ("Kustomization", "flux-system", format!("k{index}")),
            5..=7 => ("HelmRelease", "apps", format!("h{index}")),
            8 => ("HelmRepository", "apps", "charts".to_owned()),
            _ => ("HelmChart", "apps", "apps-h5".to_owned()),
        }
    }

    fn api_version(kind: &str) -> &'static str {
        match kind {
            "Kustomization" => "kustomize.toolkit.fluxcd.io/v1",
            "HelmRelease" => "helm.toolkit.fluxcd.io/v2",
            _ => "source.toolkit.fluxcd.io/v1",
        }
    }

    fn group(kind: &str) -> &'static str {
        api_version(kind).split('/').next().unwrap_or_default()
    }

    /// 0 progressing, 1 Ready, 2 stalled, 3 Ready for an older generation, 4 Ready at OLD.
    fn status(kind: &str, variant: u8) -> Value {
        let condition = |type_: &str, status: &str, reason: &str| json!({"type": type_, "status": status, "reason": reason, "message": reason});
        let revision = if variant == 4 { OLD } else { NEW };
        let mut status = json!({
            "observedGeneration": if variant == 3 { 0 } else { 1 },
            "conditions": match variant {
                0 => vec![condition("Ready", "Unknown", "Progressing")],
                2 => vec![
                    condition("Stalled", "True", "RetriesExceeded"),
                    condition("Ready", "False", "InstallFailed"),
                ],
                _ => vec![condition("Ready", "True", "Succeeded")],
            },
        });
        if kind == "Kustomization" && variant != 0 {
            status["lastAppliedRevision"] = json!(format!("main@sha1:{revision}"));
            status["lastAttemptedRevision"] = json!(format!("main@sha1:{revision}"));
        }
        if kind == "GitRepository" {
            status["artifact"] = json!({"revision": format!("main@sha1:{revision}")});
        }
        status
    }

    fn object(index: usize, state: &State) -> DynamicObject {
        let (kind, namespace, name) = identity(index);
        let mut spec = json!({});
        match kind {
            "Kustomization" => {
                spec["sourceRef"] = json!({"kind": "GitRepository", "name": "flux-system"});
            }
            "HelmRelease" => {
                let chart = json!({"chart": "c", "sourceRef": {"kind": "HelmRepository", "name": "charts"}});
                spec["chart"] = json!({ "spec": chart });
            }
            _ => {}
        }
        if let Some(dependency) = state.depends_on.filter(|d| identity(*d).0 == kind) {
            spec["dependsOn"] = json!([{"name": identity(dependency).2}]);
        }
        let mut status = status(kind, state.status);
        if kind == "Kustomization" {
            let entries: Vec<Value> = (2..OBJECTS)
                .filter(|i| state.inventory & (1 << i) != 0)
                .map(|i| {
                    let (kind, namespace, name) = identity(i);
                    json!({"id": format!("{namespace}_{name}_{}_{kind}", group(kind)), "v": "v1"})
                })
                .collect();
            status["inventory"] = json!({ "entries": entries });
        }
        serde_json::from_value(json!({
            "apiVersion": api_version(kind), "kind": kind,
            "metadata": {"name": name, "namespace": namespace, "generation": 1},
            "spec": spec, "status": status,
        }))
        .expect("a valid object")
    }

    fn name(index: usize) -> ObjectName {
        let (kind, namespace, name) = identity(index);
        ObjectName::namespaced(kind, namespace, &name)
    }

    /// Everything present and progressing; the root lists the Kustomizations, the releases and
    /// the repository.
    fn initial() -> Vec<State> {
        (0..OBJECTS)
            .map(|index| State {
                present: true,
                status: 0,
                depends_on: None,
                inventory: if index == ROOT { 0b1_1111_1100 } else { 0 },
            })
            .collect()
    }

    fn store(states: &[State]) -> Objects {
        let mut objects = Objects::default();
        for (index, state) in states.iter().enumerate().filter(|(_, s)| s.present) {
            objects.0.insert(name(index), object(index, state));
        }
        objects
    }

    /// Applies `event` to the states; the index of the object it changed.
    fn apply(states: &mut [State], event: &Event) -> usize {
        match *event {
            Event::Status(i, variant) => {
                states[i].present = true;
                states[i].status = variant;
                i
            }
            Event::DependsOn(i, dependency) => {
                states[i].depends_on = Some(dependency);
                i
            }
            Event::Inventory(i, inventory) => {
                states[i].inventory = inventory;
                i
            }
            Event::Delete(i) => {
                states[i].present = false;
                i
            }
        }
    }

    /// Judges `objects` both ways (the wanted revision is what the source fetched, as for
    /// `status --wait`) and checks they agree on everything a user sees.
    fn judge_both(
        objects: &Objects,
        live: &mut Option<LiveJudgement>,
        changed: &BTreeSet<ObjectName>,
    ) {
        let exact = |_: &str| false;
        let source = name(0);
        let fetched = fetched_sha(objects, &source);
        let wanted = fetched.as_deref().map(|sha| WantedRevision {
            sha,
            is_descendant: &exact,
        });
        let rules = Rules {
            objects,
            source: &source,
            wanted: wanted.as_ref(),
            requested: &ConfigReconcile::default(),
        };
        match live {
            Some(live) => {
                live.update(&rules, changed);
            }
            None => *live = Some(LiveJudgement::new(&rules, &name(ROOT))),
        }
        let live = live.as_ref().expect("judged").judged();
        let whole = judge(&rules, &name(ROOT));
        assert_eq!(live.snapshot, whole.snapshot);
        assert_eq!(
            live.failure().map(|f| f.to_string()),
            whole.failure().map(|f| f.to_string())
        );
        assert_eq!(live.not_ready(), whole.not_ready());
    }

    fn event() -> impl Strategy<Value = (Event, bool)> {
        let status = (0..OBJECTS, 0..5u8).prop_map(|(i, v)| Event::Status(i, v));
        let depends_on = (2..OBJECTS, 2..OBJECTS).prop_map(|(i, d)| Event::DependsOn(i, d));
        let inventory = (1..5usize, any::<u16>()).prop_map(|(i, m)| Event::Inventory(i, m));
        let delete = (0..OBJECTS).prop_map(Event::Delete);
        let event = prop_oneof![8 => status, 1 => depends_on, 1 => inventory, 1 => delete];
        // Whether the next event comes in the same burst.
        (event, any::<bool>())
    }

    proptest! {
        #[test]
        fn judging_in_place_agrees_with_judging_the_whole_tree(
            events in prop::collection::vec(event(), 1..60)
        ) {
            let mut states = initial();
            let mut live = None;
            judge_both(&store(&states), &mut live, &BTreeSet::new());
            let mut changed = BTreeSet::new();
            for (event, same_burst) in &events {
                changed.insert(name(apply(&mut states, event)));
                if !same_burst {
                    judge_both(&store(&states), &mut live, &changed);
                    changed.clear();
                }
            }
            judge_both(&store(&states), &mut live, &changed);
        }
    }

    #[test]
    fn a_release_turning_ready_is_judged_in_place() {
        let mut states = initial();
        states[0].status = 1;
        let objects = store(&states);
        let exact = |_: &str| false;
        let wanted = WantedRevision {
            sha: NEW,
            is_descendant: &exact,
        };
        let source = name(0);
        let rules = Rules {
            objects: &objects,
            source: &source,
            wanted: Some(&wanted),
            requested: &ConfigReconcile::default(),
        };
        let live = LiveJudgement::new(&rules, &name(ROOT));
        assert!(live.in_place);
        apply(&mut states, &Event::Status(5, 1));
        let objects = store(&states);
        let rules = Rules {
            objects: &objects,
            ..rules
        };
        let changes = live
            .readiness_changes(&rules, &BTreeSet::from([name(5)]))
            .expect("a readiness change only");
        let changed: Vec<(&ObjectName, &Readiness)> = changes
            .iter()
            .map(|(n, node)| (n, &node.readiness))
            .collect();
        assert_eq!(changed, [(&name(5), &Readiness::Ready)]);
        // A new dependency changes the tree's shape: the whole tree is judged again.
        apply(&mut states, &Event::DependsOn(5, 6));
        let objects = store(&states);
        let rules = Rules {
            objects: &objects,
            ..rules
        };
        assert!(
            live.readiness_changes(&rules, &BTreeSet::from([name(5)]))
                .is_none()
        );
    }
}
