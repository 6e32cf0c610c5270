//! The builds of a profile as Flux makes them: `kubectl kustomize` of the profile directory,
//! then of every directory a Flux Kustomization of that build applies, each substituted with
//! the variables of the Kustomization that applies it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

use super::source::{self, Doc, Location, Repo, api_group, text_at};
use super::substitution::substitute;
use super::{Finding, LintError, LintTarget, Rule};
use crate::config::SubstitutionConfig;

const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
const FLUX_KUSTOMIZE_GROUP: &str = "kustomize.toolkit.fluxcd.io";
/// Flux Kustomizations applying Kustomizations: deep enough for any real layout, and a stop
/// for a Kustomization that applies its own directory.
const MAX_DEPTH: usize = 8;

/// `kubectl kustomize`, found once.
#[derive(Debug, Clone)]
pub struct Kustomize {
    program: PathBuf,
}

impl Kustomize {
    /// `$GITOPS_BOOTSTRAP_KUBECTL`, else `kubectl` on PATH.
    pub fn find() -> Result<Kustomize, LintError> {
        let program = match std::env::var_os("GITOPS_BOOTSTRAP_KUBECTL") {
            Some(program) => PathBuf::from(program),
            None => which::which("kubectl").map_err(|_| LintError::KustomizeMissing)?,
        };
        Ok(Kustomize { program })
    }

    /// The kubectl it runs.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The builds of `dirs` (relative to `repo_root`), side by side: each is a kubectl
    /// process of its own, and starting kubectl is most of a build's time.
    fn build_all(&self, dirs: &[&str], repo_root: &Path) -> Vec<Result<String, String>> {
        std::thread::scope(|scope| {
            let builds: Vec<_> = dirs
                .iter()
                .map(|dir| scope.spawn(move || self.build(&repo_root.join(dir), repo_root)))
                .collect();
            builds
                .into_iter()
                .map(|build| build.join().expect("running kubectl does not panic"))
                .collect()
        })
    }

    /// The build's YAML, or kustomize's own message with the repository's path taken out.
    fn build(&self, dir: &Path, repo_root: &Path) -> Result<String, String> {
        let output = std::process::Command::new(&self.program)
            .arg("kustomize")
            .arg(dir)
            .output()
            .map_err(|err| format!("cannot run {}: {err}", self.program.display()))?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(kustomize_message(&stderr, repo_root))
    }
}

/// kubectl wraps kustomize's error in a klog line (`... "command failed" err="…"`).
fn kustomize_message(stderr: &str, repo_root: &Path) -> String {
    let line = stderr
        .lines()
        .rfind(|line| !line.trim().is_empty())
        .unwrap_or_default();
    let message = match line.split_once(" err=\"") {
        Some((_, quoted)) => quoted
            .strip_suffix('"')
            .unwrap_or(quoted)
            .replace("\\\"", "\""),
        None => line.trim().trim_start_matches("error: ").to_owned(),
    };
    // kustomize repeats the cause after this; once is enough.
    let message = message
        .split(": must build at directory")
        .next()
        .unwrap_or_default();
    let root = format!("{}/", repo_root.display());
    message.replace(&root, "")
}

/// The Flux Kustomization that applies a build, as far as substitution goes.
#[derive(Debug, Clone)]
pub struct Applier {
    /// `namespace/name`, for messages.
    pub name: String,
    /// Whether it substitutes at all (`spec.postBuild`).
    pub substitutes: bool,
    /// `postBuild.substitute`.
    pub substitute: BTreeMap<String, String>,
    /// `postBuild.substituteFrom` names the env's ConfigMap or Secret.
    pub from_cluster: bool,
    /// `postBuild.substituteFrom` names something else, which lint cannot read.
    pub from_other: bool,
}

impl Applier {
    /// The `profile` Kustomization create-env commits (docs/design.md), for profiles under
    /// `profiles` (repository-relative); `from_other`: the env substitutes from more sources.
    pub fn profile(profiles: &str, from_other: bool) -> Applier {
        Applier {
            name: "flux-system/profile".to_owned(),
            substitutes: true,
            substitute: BTreeMap::from([("profiles_root".to_owned(), format!("./{profiles}"))]),
            from_cluster: true,
            from_other,
        }
    }

    /// The cluster's own `flux-system` Kustomization, which applies `clusters/<name>` as is.
    pub fn cluster_sync(name: &str) -> Applier {
        Applier {
            name: format!("flux-system/flux-system ({name})"),
            substitutes: false,
            substitute: BTreeMap::new(),
            from_cluster: false,
            from_other: false,
        }
    }

    fn of(kustomization: &Value, substitution: &SubstitutionConfig) -> Applier {
        let post_build = &kustomization["spec"]["postBuild"];
        let substitute = post_build["substitute"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(key, value)| {
                let value = match value {
                    Value::String(text) => text.clone(),
                    other => serde_yaml_ng::to_string(other).ok()?.trim().to_owned(),
                };
                Some((key.as_str()?.to_owned(), value))
            })
            .collect();
        let sources: Vec<&str> = post_build["substituteFrom"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|source| text_at(source, &["name"]))
            .collect();
        let cluster =
            |name: &&str| *name == substitution.config_map || *name == substitution.secret;
        Applier {
            name: format!(
                "{}/{}",
                text_at(kustomization, &["metadata", "namespace"]),
                text_at(kustomization, &["metadata", "name"])
            ),
            substitutes: !post_build.is_null(),
            substitute,
            from_cluster: sources.iter().any(cluster),
            from_other: sources.iter().any(|name| !cluster(name)),
        }
    }
}

/// One object of a build: its text as kustomize wrote it, and its value after substitution.
#[derive(Debug)]
pub struct Object {
    pub raw: String,
    pub value: Value,
}

/// One directory built, and the Kustomization that applies it.
#[derive(Debug)]
pub struct Build {
    pub dir: String,
    pub applier: Applier,
    pub objects: Vec<Object>,
    /// The repository's files kustomize read for it (kustomization files, resources,
    /// patches), relative to the repository: where its objects are declared.
    pub inputs: BTreeSet<String>,
}

impl Build {
    /// Where `object` of this build is declared, at the first `needle` after `anchor`: in the
    /// files this build read, so a same-named object elsewhere is never blamed. A `needle`
    /// found only in another input (a patch) points there.
    pub fn locate(
        &self,
        repo: &Repo,
        object: &Value,
        anchor: Option<&str>,
        needle: Option<&str>,
    ) -> Option<Location> {
        let declared = repo.declaration_in(
            &self.inputs,
            text_at(object, &["kind"]),
            text_at(object, &["metadata", "name"]),
            text_at(object, &["metadata", "namespace"]),
        );
        let holds = |doc: &Doc| needle.is_none_or(|needle| doc.text.contains(needle));
        if let Some((file, doc)) = declared.filter(|(_, doc)| holds(doc)) {
            return Some(doc.locate(&file.path, anchor, needle));
        }
        let elsewhere = needle.and_then(|needle| {
            self.inputs
                .iter()
                .filter_map(|path| repo.file(path))
                .flat_map(|file| file.docs.iter().map(move |doc| (file, doc)))
                .find(|(_, doc)| doc.text.contains(needle))
        });
        elsewhere
            .or(declared)
            .map(|(file, doc)| doc.locate(&file.path, anchor, needle))
    }
}

/// Everything a profile makes Flux apply.
#[derive(Debug)]
pub struct ProfileTree {
    pub builds: Vec<Build>,
    pub findings: Vec<Finding>,
}

impl ProfileTree {
    pub fn build(repo: &Repo, kustomize: &Kustomize, target: &LintTarget, profile: &str) -> Self {
        let profiles = join(&target.path_prefix, &target.profiles_dir);
        let applier = Applier::profile(&profiles, !target.substitution.extra.is_empty());
        let start = join(&profiles, profile);
        Self::walk(
            repo,
            kustomize,
            &target.substitution,
            vec![(start, applier)],
        )
    }

    /// Everything Flux applies from `roots` (directories, each with the Kustomization that
    /// applies it) and the Flux Kustomizations their builds hold.
    pub fn walk(
        repo: &Repo,
        kustomize: &Kustomize,
        substitution: &SubstitutionConfig,
        roots: Vec<(String, Applier)>,
    ) -> Self {
        let mut tree = ProfileTree {
            builds: Vec::new(),
            findings: Vec::new(),
        };
        // Breadth first, a level at a time, in the order the builds list their Kustomizations.
        let mut level = roots;
        let mut seen = BTreeSet::new();
        for _ in 0..=MAX_DEPTH {
            level.retain(|(dir, _)| seen.insert(dir.clone()));
            if level.is_empty() {
                break;
            }
            let dirs: Vec<&str> = level.iter().map(|(dir, _)| dir.as_str()).collect();
            let built = kustomize.build_all(&dirs, &repo.root);
            let mut next = Vec::new();
            for ((dir, applier), built) in level.into_iter().zip(built) {
                let Some(build) = tree.build_dir(repo, &dir, applier, built) else {
                    continue;
                };
                for object in &build.objects {
                    if let Some(dir) = tree.applied_dir(repo, &object.value) {
                        next.push((dir, Applier::of(&object.value, substitution)));
                    }
                }
                tree.builds.push(build);
            }
            level = next;
        }
        tree
    }

    /// Every repository file the builds read.
    pub fn files(&self) -> BTreeSet<String> {
        self.builds
            .iter()
            .flat_map(|build| build.inputs.iter().cloned())
            .collect()
    }

    /// The objects of `dir` from its kustomize build `built`.
    fn build_dir(
        &mut self,
        repo: &Repo,
        dir: &str,
        applier: Applier,
        built: Result<String, String>,
    ) -> Option<Build> {
        let before = self.findings.len();
        check_components(repo, dir, &mut BTreeSet::new(), &mut self.findings);
        if self.findings.len() > before {
            // kustomize would only repeat the missing component, less precisely.
            return None;
        }
        let built = match built {
            Ok(built) => built,
            Err(message) => {
                self.findings.push(build_failure(repo, dir, message));
                return None;
            }
        };
        let mut vars = applier.substitute.clone();
        if !applier.substitutes {
            vars.clear();
        }
        let objects = source::split_documents(&built)
            .into_iter()
            .filter_map(|Doc { text, value, .. }| {
                let substituted = applier
                    .substitutes
                    .then(|| serde_yaml_ng::from_str(&substitute(&text, &vars)).ok())
                    .flatten();
                Some(Object {
                    value: substituted.or(value)?,
                    raw: text,
                })
            })
            .collect();
        let mut inputs = BTreeSet::new();
        kustomize_inputs(repo, dir, &mut BTreeSet::new(), &mut inputs);
        Some(Build {
            dir: dir.to_owned(),
            applier,
            objects,
            inputs,
        })
    }

    /// The directory a Flux Kustomization of this repository applies, when it is one.
    pub fn applied_dir(&mut self, repo: &Repo, object: &Value) -> Option<String> {
        let is_kustomization = api_group(text_at(object, &["apiVersion"])) == FLUX_KUSTOMIZE_GROUP
            && text_at(object, &["kind"]) == "Kustomization";
        if !is_kustomization || text_at(object, &["spec", "sourceRef", "kind"]) != "GitRepository" {
            return None;
        }
        let path = text_at(object, &["spec", "path"]);
        if path.contains("${") {
            return None;
        }
        let dir = path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_owned();
        if repo.root.join(&dir).is_dir() {
            return Some(dir);
        }
        if let Some(at) = repo.locate(object, Some("path:"), None) {
            self.findings.push(Finding::new(
                at,
                Rule::KustomizeBuild,
                format!(
                    "Kustomization {} applies {path}, which is not a directory of the repository",
                    text_at(object, &["metadata", "name"])
                ),
                "point spec.path at a directory holding a kustomization.yaml",
            ));
        }
        None
    }
}

/// A failed build, at the line of the kustomization file naming what kustomize complains
/// about when it can be found.
fn build_failure(repo: &Repo, dir: &str, message: String) -> Finding {
    let file = kustomization_file(repo, dir);
    // Quoted names in kustomize's message, e.g. 'extra-objects.yaml'.
    let mentioned: Vec<&str> = message
        .split('\'')
        .filter(|token| !token.is_empty() && !token.contains(' '))
        .collect();
    let at = match file.as_deref().and_then(|path| repo.file(path)) {
        Some(source) => {
            let needle = mentioned
                .iter()
                .map(|name| name.rsplit('/').next().unwrap_or(name))
                .find(|name| !name.is_empty() && source.text.contains(name));
            source
                .docs
                .first()
                .map(|doc| doc.locate(&source.path, None, needle))
        }
        None => None,
    }
    .unwrap_or_else(|| Location {
        file: file.unwrap_or_else(|| dir.to_owned()),
        line: 1,
        column: 1,
    });
    let (rule, fix) = if message.contains("already registered id") {
        (
            Rule::DuplicateObject,
            "declare each object once in a build (remove or rename one of them)",
        )
    } else {
        (
            Rule::KustomizeBuild,
            "fix the kustomization so `kubectl kustomize` builds it",
        )
    };
    Finding::new(
        at,
        rule,
        format!("kustomize build of {dir} failed: {message}"),
        fix,
    )
}

pub fn kustomization_file(repo: &Repo, dir: &str) -> Option<String> {
    KUSTOMIZATION_FILES
        .iter()
        .map(|name| join(dir, name))
        .find(|path| repo.root.join(path).is_file())
}

/// The `kind` of a directory's kustomization (`""` when it says none); `None` without one.
fn kustomization_kind(repo: &Repo, dir: &str) -> Option<String> {
    let file = repo.file(&kustomization_file(repo, dir)?)?;
    let value = file.docs.first()?.value.as_ref()?;
    Some(text_at(value, &["kind"]).to_owned())
}

/// Follows `components:` and directory `resources:` from `dir`, reporting every component
/// that is not a directory with a `kind: Component` kustomization.
fn check_components(
    repo: &Repo,
    dir: &str,
    visited: &mut BTreeSet<String>,
    findings: &mut Vec<Finding>,
) {
    if !visited.insert(dir.to_owned()) {
        return;
    }
    let Some(file) = kustomization_file(repo, dir) else {
        return;
    };
    let Some(source) = repo.file(&file) else {
        return;
    };
    let Some((doc, value)) = source
        .docs
        .first()
        .and_then(|doc| doc.value.as_ref().map(|value| (doc, value)))
    else {
        return;
    };
    for key in ["components", "resources"] {
        for entry in value[key].as_sequence().into_iter().flatten() {
            let Some(entry) = entry.as_str() else {
                continue;
            };
            let target = normalize(&join(dir, entry));
            let kind = kustomization_kind(repo, &target);
            match (key, kind.as_deref()) {
                ("components", Some("Component")) | ("resources", Some(_)) => {
                    check_components(repo, &target, visited, findings);
                }
                ("components", found) => {
                    let why = match found {
                        None => "no such directory with a kustomization.yaml".to_owned(),
                        Some(kind) => format!("its kustomization is a {kind}, not a Component"),
                    };
                    findings.push(Finding::new(
                        doc.locate(&source.path, Some("components:"), Some(entry)),
                        Rule::UnknownComponent,
                        format!("component {entry} of {dir}: {why}"),
                        "name a directory whose kustomization.yaml says `kind: Component`",
                    ));
                }
                _ => {}
            }
        }
    }
}

/// The files kustomize reads to build `dir`: its kustomization, the files and directories it
/// lists as resources and components (recursively) and its patch files.
fn kustomize_inputs(
    repo: &Repo,
    dir: &str,
    visited: &mut BTreeSet<String>,
    inputs: &mut BTreeSet<String>,
) {
    if !visited.insert(dir.to_owned()) {
        return;
    }
    let Some(file) = kustomization_file(repo, dir) else {
        return;
    };
    let value = repo
        .file(&file)
        .and_then(|source| source.docs.first())
        .and_then(|doc| doc.value.clone());
    inputs.insert(file);
    let Some(value) = value else { return };
    let listed = |key: &str| -> Vec<String> {
        value[key]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|entry| match entry {
                Value::String(path) => Some(path.clone()),
                other => other["path"].as_str().map(str::to_owned),
            })
            .filter(|path| !path.contains("://"))
            .collect()
    };
    let keys = [
        "resources",
        "bases",
        "components",
        "crds",
        "patches",
        "patchesStrategicMerge",
        "patchesJson6902",
    ];
    for entry in keys.iter().flat_map(|key| listed(key)) {
        let path = normalize(&join(dir, &entry));
        if repo.root.join(&path).is_dir() {
            kustomize_inputs(repo, &path, visited, inputs);
        } else if repo.file(&path).is_some() {
            inputs.insert(path);
        }
    }
}

/// `a/b` + `../c` → `a/c`, `/`-separated and relative to the repository.
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// The profiles to lint: the ones asked for (which must exist), else every directory of
/// `profiles_dir` that kustomize builds: a Kustomization, or a Component as repositories that
/// compose profiles from Components have them (not `apps/`, not `components/`, which hold
/// directories rather than a kustomization).
pub fn profiles(repo: &Repo, target: &LintTarget) -> Result<Vec<String>, LintError> {
    let dir = join(&target.path_prefix, &target.profiles_dir);
    let is_profile = |name: &str| {
        kustomization_kind(repo, &join(&dir, name))
            .is_some_and(|kind| matches!(kind.as_str(), "" | "Kustomization" | "Component"))
    };
    let mut known: Vec<String> = std::fs::read_dir(repo.root.join(&dir))
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| is_profile(name))
        .collect();
    known.sort();
    if target.profiles.is_empty() {
        if known.is_empty() {
            return Err(LintError::NoProfiles {
                dir: repo.root.join(&dir),
            });
        }
        return Ok(known);
    }
    for name in &target.profiles {
        if !known.contains(name) {
            return Err(LintError::UnknownProfile {
                name: name.clone(),
                dir: repo.root.join(&dir),
                known,
            });
        }
    }
    Ok(target.profiles.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize_within_the_repository() {
        assert_eq!(
            normalize("profiles/dev/../components/x"),
            "profiles/components/x"
        );
        assert_eq!(normalize("./a//b/"), "a/b");
    }

    #[test]
    fn kubectl_messages_lose_the_klog_wrapper_and_the_repository_path() {
        let stderr = "E1130 03:50:19.7 15923 run.go:72] \"command failed\" err=\"accumulating resources from 'missing.yaml': lstat /repo/p/missing.yaml: no such file\"\n";
        assert_eq!(
            kustomize_message(stderr, Path::new("/repo")),
            "accumulating resources from 'missing.yaml': lstat p/missing.yaml: no such file"
        );
        assert_eq!(
            kustomize_message("error: bad thing\n", Path::new("/repo")),
            "bad thing"
        );
    }
}
