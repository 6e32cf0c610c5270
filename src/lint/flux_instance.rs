//! `flux-instance`: every FluxInstance in the repository is one the Flux Operator accepts and
//! that syncs something that exists: its fields (the operator's schema: a distribution with
//! version and registry, the `flux` name in `flux-system`, a known sync kind with url and path),
//! a `sync.path` that is a directory of the repository, and a `distribution.version` that
//! admits the env's `flux_version` (an env pinned to one Flux and an instance asking for
//! another would install a Flux nobody configured).

use serde_yaml_ng::Value;

use super::source::{Repo, text_at};
use super::{Finding, Rule};

const API_VERSION: &str = "fluxcd.controlplane.io/v1";
const SYNC_KINDS: [&str; 3] = ["GitRepository", "OCIRepository", "Bucket"];

pub fn check(repo: &Repo, flux_version: Option<&str>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (file, doc, value) in repo.documents() {
        if text_at(value, &["kind"]) != "FluxInstance"
            || text_at(value, &["apiVersion"]) != API_VERSION
        {
            continue;
        }
        let mut report = |needle: &str, message: String, fix: &str| {
            findings.push(Finding::new(
                doc.locate(&file.path, Some("spec:"), Some(needle)),
                Rule::FluxInstance,
                message,
                fix,
            ));
        };
        for (needle, problem, fix) in schema_problems(value) {
            report(needle, problem, fix);
        }
        if let Some((message, fix)) = missing_sync_path(repo, value) {
            report("path:", message, &fix);
        }
        if let Some((message, fix)) = version_mismatch(value, flux_version) {
            report("version:", message, &fix);
        }
    }
    findings
}

/// What the operator's schema and name rule refuse: `(needle, message, fix)`.
fn schema_problems(value: &Value) -> Vec<(&'static str, String, &'static str)> {
    let mut problems = Vec::new();
    let name = text_at(value, &["metadata", "name"]);
    let namespace = text_at(value, &["metadata", "namespace"]);
    if name != "flux" || (!namespace.is_empty() && namespace != "flux-system") {
        problems.push((
            "name:",
            format!("FluxInstance {namespace}/{name}: the operator reconciles only one, named flux, in its own namespace"),
            "name it flux in namespace flux-system",
        ));
    }
    for field in ["version", "registry"] {
        if text_at(value, &["spec", "distribution", field]).is_empty() {
            problems.push((
                "distribution:",
                format!("FluxInstance {name}: spec.distribution.{field} is required"),
                "set spec.distribution.version (e.g. \"2.10.x\") and registry (\"ghcr.io/fluxcd\")",
            ));
        }
    }
    let Some(sync) = value.get("spec").and_then(|spec| spec.get("sync")) else {
        return problems;
    };
    let kind = text_at(sync, &["kind"]);
    if !SYNC_KINDS.contains(&kind) {
        problems.push((
            "kind:",
            format!(
                "FluxInstance {name}: spec.sync.kind `{kind}` is not one of {}",
                SYNC_KINDS.join(", ")
            ),
            "use GitRepository for a Git repository",
        ));
    }
    for field in ["url", "path"] {
        if text_at(sync, &[field]).is_empty() {
            problems.push((
                "sync:",
                format!("FluxInstance {name}: spec.sync.{field} is required"),
                "give the sync the repository's url and the env's path (clusters/<env>)",
            ));
        }
    }
    problems
}

/// A Git sync path that is no directory of the repository: Flux would find nothing to apply.
fn missing_sync_path(repo: &Repo, value: &Value) -> Option<(String, String)> {
    if text_at(value, &["spec", "sync", "kind"]) != "GitRepository" {
        return None;
    }
    let path = text_at(value, &["spec", "sync", "path"]);
    let relative = path.trim_start_matches("./").trim_end_matches('/');
    if relative.is_empty() || repo.root.join(relative).is_dir() {
        return None;
    }
    Some((
        format!("FluxInstance spec.sync.path {path} is not a directory of the repository"),
        format!("point spec.sync.path at the env's directory, or create {relative}/"),
    ))
}

/// A `distribution.version` (a semver version or `x` range) that does not admit the env's
/// `flux_version`.
fn version_mismatch(value: &Value, flux_version: Option<&str>) -> Option<(String, String)> {
    let wanted = flux_version?;
    let declared = text_at(value, &["spec", "distribution", "version"]);
    if declared.is_empty() || admits(declared, wanted) {
        return None;
    }
    Some((
        format!(
            "FluxInstance spec.distribution.version {declared} does not admit the env's flux_version {wanted}"
        ),
        format!(
            "set spec.distribution.version to \"{}\" or change flux_version in the config",
            wanted.trim_start_matches('v')
        ),
    ))
}

/// Whether a version or `x`/`*` range (`2.x`, `2.10.x`, `2.10.0`, `v2.10.0`) admits `version`.
fn admits(range: &str, version: &str) -> bool {
    let range = range.trim_start_matches(['v', '=', '~', '^']);
    let version = version.trim_start_matches('v');
    let mut wanted = version.split('.');
    range.split('.').all(|part| match wanted.next() {
        Some(_) if part == "x" || part == "*" => true,
        Some(number) => part == number,
        None => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(instance: &str, flux_version: Option<&str>) -> Vec<Finding> {
        let dir = tempfile::tempdir().unwrap();
        let flux_system = dir.path().join("clusters/dev/flux-system");
        std::fs::create_dir_all(&flux_system).unwrap();
        std::fs::write(flux_system.join("flux-instance.yaml"), instance).unwrap();
        check(&Repo::load(dir.path()).unwrap(), flux_version)
    }

    const GOOD: &str = "apiVersion: fluxcd.controlplane.io/v1
kind: FluxInstance
metadata:
  name: flux
  namespace: flux-system
spec:
  distribution:
    version: \"2.10.x\"
    registry: ghcr.io/fluxcd
  sync:
    kind: GitRepository
    url: https://git.example/fleet.git
    ref: refs/heads/main
    path: clusters/dev
";

    #[test]
    fn a_fleet_instance_for_the_env_passes() {
        assert_eq!(findings(GOOD, Some("v2.10.0")), []);
        assert_eq!(findings(GOOD, None), []);
    }

    #[test]
    fn each_problem_is_located_with_its_fix() {
        let bad = GOOD
            .replace("name: flux\n", "name: main\n")
            .replace("    registry: ghcr.io/fluxcd\n", "")
            .replace("kind: GitRepository", "kind: GitRepo")
            .replace("path: clusters/dev", "path: clusters/prod");
        let found = findings(&bad, Some("v2.10.0"));
        let messages: Vec<(usize, &str)> =
            found.iter().map(|f| (f.line, f.message.as_str())).collect();
        assert!(
            found.iter().all(|f| f.rule == Rule::FluxInstance),
            "{found:?}"
        );
        assert!(
            messages.iter().any(|(_, m)| m.contains("named flux")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|(_, m)| m.contains("spec.distribution.registry"))
        );
        assert!(messages.iter().any(|(_, m)| m.contains("`GitRepo`")));
        assert_eq!(found.len(), 3, "{messages:?}");
        let moved = findings(&GOOD.replace("clusters/dev", "clusters/prod"), None);
        assert_eq!(moved.len(), 1);
        assert!(
            moved[0]
                .message
                .contains("clusters/prod is not a directory")
        );
        assert_eq!(moved[0].line, 14);
        let pinned = findings(GOOD, Some("v2.9.1"));
        assert_eq!(pinned.len(), 1);
        assert!(pinned[0].fix.contains("\"2.9.1\""), "{}", pinned[0].fix);
        assert_eq!(pinned[0].line, 8);
    }

    #[test]
    fn ranges_admit_their_versions() {
        for (range, version, admitted) in [
            ("2.10.0", "v2.10.0", true),
            ("2.10.x", "v2.10.3", true),
            ("2.x", "v2.4.0", true),
            ("v2.10.0", "v2.10.0", true),
            ("2.9.x", "v2.10.0", false),
            ("2.10.1", "v2.10.0", false),
        ] {
            assert_eq!(admits(range, version), admitted, "{range} {version}");
        }
    }
}
