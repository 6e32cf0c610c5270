//! The clusters that apply the repository, and the Flux each runs: the configured envs (their
//! `flux_version`, their profile) and every `clusters/<name>/` whose
//! `flux-system/gotk-components.yaml` pins a Flux release. `lint --fix` rewrites a file only
//! to an API version every cluster applying it serves.

use std::collections::{BTreeMap, BTreeSet};

use super::LintTarget;
use super::build::{Applier, Kustomize, ProfileTree, join, kustomization_file};
use super::flux_apis;
use super::source::Repo;
use crate::config::flux_minor;

/// A configured env, as the lint's caller knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRef {
    pub name: String,
    pub flux_version: String,
    pub profile: String,
    /// The repository prefix and profiles directory of its config.
    pub path_prefix: String,
    pub profiles_dir: String,
}

/// A cluster, the Flux minors it runs (the configured and the pinned one may differ until
/// the next run) and the repository files it applies.
#[derive(Debug)]
pub struct Cluster {
    /// `env dev`, `clusters/staging`.
    pub name: String,
    pub versions: BTreeSet<String>,
    pub files: BTreeSet<String>,
}

impl Cluster {
    pub fn minors(&self) -> impl Iterator<Item = u32> + '_ {
        self.versions
            .iter()
            .map(|version| flux_minor(version).unwrap_or(flux_apis::NEWEST_MINOR))
    }
}

/// Every cluster lint can see applying part of the repository.
pub fn applying(repo: &Repo, kustomize: &Kustomize, target: &LintTarget) -> Vec<Cluster> {
    let mut prefixes: BTreeSet<&str> = BTreeSet::from([target.path_prefix.as_str()]);
    prefixes.extend(target.clusters.iter().map(|env| env.path_prefix.as_str()));
    let mut dirs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for prefix in prefixes {
        let parent = join(prefix, "clusters");
        for name in subdirectories(repo, &parent) {
            let dir = join(&parent, &name);
            if let Some(version) = pinned_version(repo, &dir) {
                dirs.entry(dir).or_default().insert(version);
            }
        }
    }
    let mut clusters = Vec::new();
    for env in &target.clusters {
        let dir = join(&join(&env.path_prefix, "clusters"), &env.name);
        let mut versions = dirs.remove(&dir).unwrap_or_default();
        versions.insert(env.flux_version.clone());
        let profiles = join(&env.path_prefix, &env.profiles_dir);
        let profile = (
            join(&profiles, &env.profile),
            Applier::profile(&profiles, !target.substitution.extra.is_empty()),
        );
        clusters.push(Cluster {
            name: format!("env {}", env.name),
            versions,
            files: cluster_files(repo, kustomize, target, &dir, Some(profile)),
        });
    }
    for (dir, versions) in dirs {
        clusters.push(Cluster {
            files: cluster_files(repo, kustomize, target, &dir, None),
            name: dir,
            versions,
        });
    }
    clusters
}

/// What a cluster applies: its directory, everything its `flux-system` Kustomization builds
/// from there, and the env's profile.
fn cluster_files(
    repo: &Repo,
    kustomize: &Kustomize,
    target: &LintTarget,
    dir: &str,
    profile: Option<(String, Applier)>,
) -> BTreeSet<String> {
    let mut roots: Vec<(String, Applier)> = profile.into_iter().collect();
    if kustomization_file(repo, dir).is_some() {
        roots.push((dir.to_owned(), Applier::cluster_sync(dir)));
    }
    let tree = ProfileTree::walk(repo, kustomize, &target.substitution, roots);
    let mut files = tree.files();
    files.extend(
        repo.files
            .iter()
            .filter(|file| file.path.starts_with(&format!("{dir}/")))
            .map(|file| file.path.clone()),
    );
    files
}

fn subdirectories(repo: &Repo, dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo.root.join(dir))
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            entry.file_type().ok()?.is_dir().then_some(())?;
            entry.file_name().into_string().ok()
        })
        .collect();
    names.sort();
    names
}

/// The Flux release `clusters/<name>/flux-system/gotk-components.yaml` installs: its
/// `# Flux Version:` header (as `flux install` and this tool write it, in either case), else
/// the `app.kubernetes.io/version` label of its objects.
fn pinned_version(repo: &Repo, dir: &str) -> Option<String> {
    const HEADER: &str = "# flux version:";
    let file = repo.file(&join(dir, "flux-system/gotk-components.yaml"))?;
    let first = file.text.lines().next().unwrap_or_default();
    if first.to_ascii_lowercase().starts_with(HEADER) {
        return Some(first[HEADER.len()..].trim().to_owned());
    }
    file.docs
        .iter()
        .filter_map(|doc| doc.value.as_ref())
        .find_map(|value| {
            value["metadata"]["labels"]["app.kubernetes.io/version"]
                .as_str()
                .filter(|version| flux_minor(version).is_some())
                .map(str::to_owned)
        })
}
