//! The tree of Flux objects under a root Kustomization, read from `status.inventory` (entries
//! `<namespace>_<name>_<group>_<Kind>`), with the `dependsOn` graph and the sources objects
//! read (`sourceRef`, `chartRef`) on top, and the blocking chain that explains why something
//! is not Ready:
//! `HelmRelease apps/external-dns ← dependsOn HelmRelease apps/cert-manager: failed (RetriesExceeded): …`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use kube::api::DynamicObject;
use serde::Serialize;

use super::conditions::Readiness;
use crate::cluster::ObjectName;

const SOURCE_GROUP: &str = "source.toolkit.fluxcd.io";

/// The kinds the tree follows, by API group.
pub const FOLLOWED: &[(&str, &str)] = &[
    ("kustomize.toolkit.fluxcd.io", "Kustomization"),
    ("helm.toolkit.fluxcd.io", "HelmRelease"),
    (SOURCE_GROUP, "GitRepository"),
    (SOURCE_GROUP, "HelmRepository"),
    (SOURCE_GROUP, "HelmChart"),
    (SOURCE_GROUP, "OCIRepository"),
    (SOURCE_GROUP, "Bucket"),
];

/// One entry of a Kustomization's inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryId {
    pub namespace: String,
    pub name: String,
    pub group: String,
    pub kind: String,
}

/// Parses `<namespace>_<name>_<group>_<Kind>` (namespace empty for cluster-scoped objects,
/// group empty for the core group). Kubernetes names never contain `_`.
pub fn parse_inventory_id(id: &str) -> Option<InventoryId> {
    let mut parts = id.split('_');
    let (namespace, name, group, kind) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || name.is_empty() || kind.is_empty() {
        return None;
    }
    Some(InventoryId {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        group: group.to_owned(),
        kind: kind.to_owned(),
    })
}

/// The Flux objects (Kustomizations, HelmReleases, sources) a Kustomization applied.
pub fn flux_children(kustomization: &DynamicObject) -> Vec<ObjectName> {
    let entries = kustomization.data["status"]["inventory"]["entries"].as_array();
    entries
        .into_iter()
        .flatten()
        .filter_map(|entry| parse_inventory_id(entry["id"].as_str()?))
        .filter(|id| FOLLOWED.contains(&(id.group.as_str(), id.kind.as_str())))
        .map(|id| ObjectName::namespaced(&id.kind, &id.namespace, &id.name))
        .collect()
}

/// `spec.dependsOn`: objects of the same kind, in the object's namespace unless named.
pub fn depends_on(object: &DynamicObject) -> Vec<ObjectName> {
    let kind = object.types.as_ref().map_or("", |t| t.kind.as_str());
    let own_namespace = object.metadata.namespace.as_deref().unwrap_or_default();
    object.data["spec"]["dependsOn"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|dependency| {
            let name = dependency["name"].as_str()?;
            let namespace = dependency["namespace"].as_str().unwrap_or(own_namespace);
            Some(ObjectName::namespaced(kind, namespace, name))
        })
        .collect()
}

/// The sources an object reads: a Kustomization's or HelmChart's `spec.sourceRef`, a
/// HelmRelease's `spec.chart.spec.sourceRef` or `spec.chartRef`; in its own namespace unless
/// named.
pub fn source_refs(object: &DynamicObject) -> Vec<ObjectName> {
    let own_namespace = object.metadata.namespace.as_deref().unwrap_or_default();
    let spec = &object.data["spec"];
    [
        &spec["sourceRef"],
        &spec["chart"]["spec"]["sourceRef"],
        &spec["chartRef"],
    ]
    .into_iter()
    .filter_map(|reference| {
        let namespace = reference["namespace"].as_str().unwrap_or(own_namespace);
        Some(ObjectName::namespaced(
            reference["kind"].as_str()?,
            namespace,
            reference["name"].as_str()?,
        ))
    })
    .collect()
}

/// The HelmChart helm-controller makes for a HelmRelease's `spec.chart`: named
/// `<release namespace>-<release name>`, in the namespace of the chart's source.
pub fn generated_chart(release: &DynamicObject) -> Option<ObjectName> {
    let reference = release.data["spec"]["chart"]["spec"]["sourceRef"].as_object()?;
    let own_namespace = release.metadata.namespace.as_deref().unwrap_or_default();
    let namespace = reference
        .get("namespace")
        .and_then(|n| n.as_str())
        .unwrap_or(own_namespace);
    let name = release.metadata.name.as_deref()?;
    Some(ObjectName::namespaced(
        "HelmChart",
        namespace,
        &format!("{own_namespace}-{name}"),
    ))
}

/// How one object waits on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Edge {
    /// The waiting Kustomization applied it (and, with `wait: true`, waits for it).
    Contains,
    DependsOn,
    /// The waiting object reads its artifact (chart, manifests).
    Source,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub readiness: Readiness,
    /// A Kustomization applied the revision waited for, so what it contains is current.
    pub applied: bool,
    pub depends_on: Vec<ObjectName>,
    pub sources: Vec<ObjectName>,
    pub children: Vec<ObjectName>,
}

/// The objects under a root, in breadth-first order from it.
#[derive(Debug, Clone)]
pub struct Tree {
    pub root: ObjectName,
    pub order: Vec<ObjectName>,
    pub nodes: BTreeMap<ObjectName, Node>,
}

impl Node {
    /// What the tree needs of one object: its readiness (as judged by the caller), whether a
    /// Kustomization `applied` the revision waited for, and its edges. `exists` says whether
    /// another object exists (a generated HelmChart counts only then).
    pub fn read(
        name: &ObjectName,
        object: Option<&DynamicObject>,
        readiness: Readiness,
        applied: impl FnOnce(Option<&DynamicObject>) -> bool,
        exists: impl Fn(&ObjectName) -> bool,
    ) -> Node {
        let is_kustomization = name.kind == "Kustomization";
        Node {
            readiness,
            applied: !is_kustomization || applied(object),
            depends_on: object.map(depends_on).unwrap_or_default(),
            // A generated HelmChart holds the chart pull's error; real Flux has one, the
            // testkit none, so it counts only once it exists.
            sources: object
                .map(|o| {
                    let generated = generated_chart(o).filter(|c| exists(c));
                    source_refs(o).into_iter().chain(generated).collect()
                })
                .unwrap_or_default(),
            children: object
                .filter(|_| is_kustomization)
                .map(flux_children)
                .unwrap_or_default(),
        }
    }

    /// Whether `other` has the same edges: then the tree has the same shape.
    pub fn same_edges(&self, other: &Node) -> bool {
        self.depends_on == other.depends_on
            && self.sources == other.sources
            && self.children == other.children
    }

    fn edges(&self, edge: Edge) -> &[ObjectName] {
        match edge {
            Edge::DependsOn => &self.depends_on,
            Edge::Source => &self.sources,
            Edge::Contains => &self.children,
        }
    }

    /// Every object this one waits on, whether Ready or not.
    pub fn waits_on(&self) -> impl Iterator<Item = &ObjectName> {
        self.children
            .iter()
            .chain(&self.depends_on)
            .chain(&self.sources)
    }
}

impl Tree {
    /// Walks from `root` through inventories, `dependsOn` and sources, reading each object it
    /// reaches with `node`.
    pub fn build(root: &ObjectName, mut node: impl FnMut(&ObjectName) -> Node) -> Tree {
        let mut order = Vec::new();
        let mut nodes = BTreeMap::new();
        let mut queue = VecDeque::from([root.clone()]);
        while let Some(name) = queue.pop_front() {
            if nodes.contains_key(&name) {
                continue;
            }
            let node = node(&name);
            queue.extend(node.waits_on().cloned());
            order.push(name.clone());
            nodes.insert(name, node);
        }
        Tree {
            root: root.clone(),
            order,
            nodes,
        }
    }

    pub fn readiness(&self, name: &ObjectName) -> Option<&Readiness> {
        self.nodes.get(name).map(|n| &n.readiness)
    }

    fn is_ready(&self, name: &ObjectName) -> bool {
        self.readiness(name).is_some_and(Readiness::is_ready)
    }

    /// What `name` waits on directly: not-Ready dependencies first, then sources, then
    /// children.
    pub fn blockers(&self, name: &ObjectName) -> Vec<(Edge, ObjectName)> {
        let Some(node) = self.nodes.get(name) else {
            return Vec::new();
        };
        [Edge::DependsOn, Edge::Source, Edge::Contains]
            .into_iter()
            .flat_map(|edge| node.edges(edge).iter().map(move |other| (edge, other)))
            .filter(|(_, other)| !self.is_ready(other))
            .map(|(edge, other)| (edge, other.clone()))
            .collect()
    }

    /// Whether `from` waits, directly or through what it waits on, on `target`.
    pub fn waits_on(&self, from: &ObjectName, target: &ObjectName) -> bool {
        let mut seen = BTreeSet::from([from.clone()]);
        let mut stack = vec![from.clone()];
        while let Some(current) = stack.pop() {
            for (_, next) in self.blockers(&current) {
                if &next == target {
                    return true;
                }
                if seen.insert(next.clone()) {
                    stack.push(next);
                }
            }
        }
        false
    }

    /// The Kustomization that applied `name` (the first that lists it).
    pub fn parent_of(&self, name: &ObjectName) -> Option<&ObjectName> {
        self.order
            .iter()
            .find(|other| self.nodes[*other].children.contains(name))
    }

    /// Whether every Kustomization above `name` applied the revision waited for, so `name` is
    /// as that revision has it.
    pub fn is_current(&self, name: &ObjectName) -> bool {
        let mut seen = BTreeSet::from([name.clone()]);
        let mut current = name.clone();
        while let Some(parent) = self.parent_of(&current) {
            if !self.nodes[parent].applied {
                return false;
            }
            if !seen.insert(parent.clone()) {
                break;
            }
            current = parent.clone();
        }
        true
    }

    /// Follows blockers down from `start` to the object that holds everything up, preferring
    /// terminal ones.
    pub fn blocking_chain(&self, start: &ObjectName) -> BlockingChain {
        let mut links = vec![ChainLink {
            via: None,
            object: start.clone(),
        }];
        let mut seen = BTreeSet::from([start.clone()]);
        let mut current = start.clone();
        loop {
            let blockers = self.blockers(&current);
            let next = blockers
                .iter()
                .find(|(_, o)| self.readiness(o).is_some_and(Readiness::is_terminal))
                .or_else(|| blockers.first())
                .filter(|(_, o)| !seen.contains(o));
            let Some((edge, object)) = next.cloned() else {
                break;
            };
            seen.insert(object.clone());
            links.push(ChainLink {
                via: Some(edge),
                object: object.clone(),
            });
            current = object;
        }
        self.chain(links)
    }

    /// The path from the root to `target` along which it blocks: walks up through the objects
    /// waiting on it, preferring those that depend on it, then those that read it, over the one
    /// that contains it.
    pub fn chain_to(&self, target: &ObjectName) -> BlockingChain {
        let mut links = vec![ChainLink {
            via: None,
            object: target.clone(),
        }];
        let mut seen = BTreeSet::from([target.clone()]);
        let mut current = target.clone();
        while let Some((edge, waiter)) = self.waiter_of(&current, &seen) {
            links.last_mut().expect("chain starts non-empty").via = Some(edge);
            links.push(ChainLink {
                via: None,
                object: waiter.clone(),
            });
            seen.insert(waiter.clone());
            current = waiter;
        }
        // Top first: each link's `via` says how the link before it waits on it.
        links.reverse();
        self.chain(links)
    }

    fn waiter_of(
        &self,
        name: &ObjectName,
        seen: &BTreeSet<ObjectName>,
    ) -> Option<(Edge, ObjectName)> {
        let waiting = |edge: Edge| {
            self.order.iter().find(|other| {
                !seen.contains(*other)
                    && !self.is_ready(other)
                    && self.nodes[*other].edges(edge).contains(name)
            })
        };
        [Edge::DependsOn, Edge::Source, Edge::Contains]
            .into_iter()
            .find_map(|edge| waiting(edge).map(|o| (edge, o.clone())))
    }

    fn chain(&self, links: Vec<ChainLink>) -> BlockingChain {
        let cause = links
            .last()
            .and_then(|l| self.readiness(&l.object))
            .cloned()
            .unwrap_or(Readiness::Missing);
        BlockingChain { links, cause }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainLink {
    /// How the previous link waits on this one (None for the first).
    pub via: Option<Edge>,
    pub object: ObjectName,
}

/// Who waits on whom, ending at the object that holds everything up and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockingChain {
    pub links: Vec<ChainLink>,
    pub cause: Readiness,
}

impl fmt::Display for BlockingChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, link) in self.links.iter().enumerate() {
            if index > 0 {
                f.write_str(" ← ")?;
            }
            match link.via {
                Some(Edge::DependsOn) => f.write_str("dependsOn ")?,
                Some(Edge::Source) => f.write_str("source ")?,
                _ => {}
            }
            write!(f, "{}", link.object)?;
        }
        write!(f, ": {}", self.cause)
    }
}

#[cfg(test)]
mod tests {
    use super::super::conditions::flux_readiness;
    use super::*;

    const OBJECTS: &str = r#"
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: flux-system, namespace: flux-system, generation: 1}
status:
  observedGeneration: 1
  conditions: [{type: Ready, status: "True", reason: ReconciliationSucceeded, message: ok}]
  inventory:
    entries:
    - {id: flux-system_profile_kustomize.toolkit.fluxcd.io_Kustomization, v: v1}
    - {id: flux-system_cluster-config__ConfigMap, v: v1}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: profile, namespace: flux-system, generation: 1}
status:
  observedGeneration: 1
  conditions: [{type: Ready, status: "Unknown", reason: Progressing, message: health checks}]
  inventory:
    entries:
    - {id: apps_cert-manager_helm.toolkit.fluxcd.io_HelmRelease, v: v2}
    - {id: apps_external-dns_helm.toolkit.fluxcd.io_HelmRelease, v: v2}
    - {id: _apps__Namespace, v: v1}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: external-dns, namespace: apps, generation: 1}
spec:
  dependsOn: [{name: cert-manager}]
status:
  observedGeneration: 1
  conditions: [{type: Ready, status: "False", reason: DependencyNotReady, message: "dependency 'apps/cert-manager' is not ready"}]
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: cert-manager, namespace: apps, generation: 1}
status:
  observedGeneration: 1
  conditions:
  - {type: Stalled, status: "True", reason: RetriesExceeded, message: "Failed to install after 1 attempt(s)"}
  - {type: Ready, status: "False", reason: InstallFailed, message: boom}
"#;

    fn objects() -> BTreeMap<ObjectName, DynamicObject> {
        crate::cluster::apply::parse_documents(OBJECTS)
            .unwrap()
            .into_iter()
            .map(|o| (crate::cluster::apply::object_name(&o), o))
            .collect()
    }

    fn tree(objects: &BTreeMap<ObjectName, DynamicObject>) -> Tree {
        let root = ObjectName::namespaced("Kustomization", "flux-system", "flux-system");
        Tree::build(&root, |name| {
            let object = objects.get(name);
            Node::read(
                name,
                object,
                flux_readiness(object),
                |object| object.is_some(),
                |other| objects.contains_key(other),
            )
        })
    }

    fn hr(name: &str) -> ObjectName {
        ObjectName::namespaced("HelmRelease", "apps", name)
    }

    #[test]
    fn inventory_ids_parse_with_empty_namespace_and_group() {
        let id =
            parse_inventory_id("apps_cert-manager_helm.toolkit.fluxcd.io_HelmRelease").unwrap();
        assert_eq!(
            (id.namespace.as_str(), id.name.as_str()),
            ("apps", "cert-manager")
        );
        assert_eq!(
            (id.group.as_str(), id.kind.as_str()),
            ("helm.toolkit.fluxcd.io", "HelmRelease")
        );
        let id = parse_inventory_id("_apps__Namespace").unwrap();
        assert_eq!(
            (id.namespace.as_str(), id.group.as_str(), id.kind.as_str()),
            ("", "", "Namespace")
        );
        assert_eq!(parse_inventory_id("a_b_c"), None);
        assert_eq!(parse_inventory_id("a_b_c_D_e"), None);
    }

    #[test]
    fn the_tree_follows_inventories_to_kustomizations_and_helm_releases_only() {
        let objects = objects();
        let tree = tree(&objects);
        let names: Vec<String> = tree.order.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "Kustomization flux-system/flux-system",
                "Kustomization flux-system/profile",
                "HelmRelease apps/cert-manager",
                "HelmRelease apps/external-dns",
            ]
        );
        assert_eq!(
            tree.nodes[&hr("external-dns")].depends_on,
            [hr("cert-manager")]
        );
    }

    #[test]
    fn blocking_chains_follow_dependencies_to_the_cause() {
        let objects = objects();
        let tree = tree(&objects);
        let chain = tree.blocking_chain(&hr("external-dns"));
        assert_eq!(
            chain.to_string(),
            "HelmRelease apps/external-dns ← dependsOn HelmRelease apps/cert-manager: failed (RetriesExceeded): Failed to install after 1 attempt(s) (last attempt: InstallFailed: boom)"
        );
        let from_root = tree.blocking_chain(&tree.root);
        assert_eq!(from_root.links.last().unwrap().object, hr("cert-manager"));
    }

    #[test]
    fn the_chain_to_a_failure_names_who_waits_on_it_up_to_the_root() {
        let objects = objects();
        let tree = tree(&objects);
        let chain = tree.chain_to(&hr("cert-manager"));
        let links: Vec<(Option<Edge>, String)> = chain
            .links
            .iter()
            .map(|l| (l.via, l.object.to_string()))
            .collect();
        assert_eq!(
            links,
            [
                (None, "Kustomization flux-system/profile".to_owned()),
                (
                    Some(Edge::Contains),
                    "HelmRelease apps/external-dns".to_owned()
                ),
                (
                    Some(Edge::DependsOn),
                    "HelmRelease apps/cert-manager".to_owned()
                ),
            ]
        );
        assert!(chain.cause.is_terminal());
    }

    #[test]
    fn a_helm_release_reads_its_repository_and_the_chart_generated_for_it() {
        let mut objects = objects();
        let release = r#"
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: external-dns, namespace: apps, generation: 1}
spec:
  chart: {spec: {chart: external-dns, sourceRef: {kind: HelmRepository, name: charts, namespace: flux-system}}}
status:
  observedGeneration: 1
  conditions: [{type: Ready, status: "False", reason: ArtifactFailed, message: "HelmChart 'flux-system/apps-external-dns' is not ready"}]
"#;
        let chart = r#"
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmChart
metadata: {name: apps-external-dns, namespace: flux-system, generation: 1}
spec: {chart: external-dns, sourceRef: {kind: HelmRepository, name: charts}}
status:
  observedGeneration: 1
  conditions: [{type: Ready, status: "False", reason: ChartPullFailed, message: "no chart version found"}]
"#;
        let repository = ObjectName::namespaced("HelmRepository", "flux-system", "charts");
        let chart_name = ObjectName::namespaced("HelmChart", "flux-system", "apps-external-dns");
        for document in [release, chart] {
            let object = crate::cluster::apply::parse_documents(document)
                .unwrap()
                .remove(0);
            objects.insert(crate::cluster::apply::object_name(&object), object);
        }
        let with_chart = tree(&objects);
        assert_eq!(
            with_chart.nodes[&hr("external-dns")].sources,
            [repository.clone(), chart_name.clone()]
        );
        assert_eq!(
            with_chart.nodes[&chart_name].sources,
            std::slice::from_ref(&repository),
            "the chart reads the repository too"
        );
        objects.remove(&chart_name);
        let without_chart = tree(&objects);
        assert_eq!(
            without_chart.nodes[&hr("external-dns")].sources,
            [repository],
            "no edge to a chart that does not exist"
        );
    }

    #[test]
    fn missing_children_are_nodes_that_wait() {
        let mut objects = objects();
        objects.remove(&hr("cert-manager"));
        let tree = tree(&objects);
        assert_eq!(
            tree.readiness(&hr("cert-manager")),
            Some(&Readiness::Missing)
        );
        assert_eq!(
            tree.blockers(&hr("external-dns")),
            [(Edge::DependsOn, hr("cert-manager"))]
        );
    }
}
