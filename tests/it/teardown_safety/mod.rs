//! Teardown safety (issue 19): teardown, rebuild and the read-only commands act only on what
//! they prove is the env's own, and never read "cannot see" as "nothing there". Each case runs
//! the product binary in a sandbox of its own (real Terraform, real Git over HTTPS, the test
//! cluster with its Flux stand-ins), then checks three things the same way: the exit code, the
//! message (an insta snapshot of the result and of the warnings and error), and that nothing
//! outside what the case may change did change — the cluster's objects and the ownership
//! record, the branch's log, the Terraform states named.
//!
//! `reach.rs`: whose cluster it is and whether it can be seen (another env's, refused
//! credentials, no answer, an existing root's own backend and workspace, checks before the
//! damage). `scope.rs`: what a teardown deletes.

mod reach;
mod scope;

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::path::PathBuf;

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Api, ResourceExt as _};

use crate::support::sandbox::{Run, Sandbox};
use crate::support::{FLUX_UNINSTALL_FILTER, snapshot};

/// What a case must leave as it found it.
#[derive(Debug, Clone, Default)]
pub struct Unchanged {
    /// Every object of the kinds a teardown deletes (by uid), and the ownership record.
    pub cluster: bool,
    /// The branch's log.
    pub git: bool,
    /// Terraform state files, compared by content.
    pub states: Vec<PathBuf>,
}

impl Unchanged {
    /// The cluster, the branch and these states.
    pub fn all(states: Vec<PathBuf>) -> Unchanged {
        Unchanged {
            cluster: true,
            git: true,
            states,
        }
    }
}

/// One row of a case table.
pub struct Case<'a> {
    /// What the case is; also its snapshot's name.
    pub name: &'a str,
    pub args: &'a [&'a str],
    /// Environment variables changed for this run (e.g. a read-only push token).
    pub env: &'a [(&'a str, &'a str)],
    pub code: i32,
    pub unchanged: Unchanged,
}

/// Runs a case: the exit code, the snapshot of its message, and that what it must leave alone
/// is as it was.
pub async fn check(sandbox: &Sandbox, case: &Case<'_>) -> Run {
    let before = world(sandbox, &case.unchanged).await;
    let run = sandbox.run_with_env(case.args, case.env).await;
    assert_eq!(run.code, case.code, "{}: {}", case.name, run.output());
    snapshot!(case.name, message(&run), extra = TEARDOWN_FILTERS);
    let after = world(sandbox, &case.unchanged).await;
    assert_eq!(
        after,
        before,
        "{}: something it had to leave alone changed\n{}",
        case.name,
        run.output()
    );
    run
}

/// What varies in a teardown from run to run, beyond the shared filters: how many connection
/// attempts fit a budget, whether helm's uninstall already released a load balancer, how far
/// Flux's stand-ins pruned the apps before flux-uninstall, pids.
pub const TEARDOWN_FILTERS: [(&str, &str); 5] = [
    (r"\(\d+ attempts\)", "([n] attempts)"),
    (
        r"(delete-cloud-resources\s+\d+ ms  )deleted .*",
        "$1[what helm left]",
    ),
    (r"\d+ removed", "[n] removed"),
    FLUX_UNINSTALL_FILTER,
    (r"pid \d+", "pid [n]"),
];

/// What the user reads of a run: its result (stdout), then the warnings and the error report.
pub fn message(run: &Run) -> String {
    let mut shown = vec![run.stdout.trim_end().to_owned()];
    let mut in_error = false;
    for line in run.stderr.lines() {
        // Lines of stderr start with the time.
        in_error |= line.contains("✘ error:");
        if in_error || line.contains("⚠ warning:") {
            shown.push(line.to_owned());
        }
    }
    shown.join("\n").trim().to_owned()
}

/// The kinds a teardown deletes or changes, as (group, version, kind, plural).
const WATCHED: [(&str, &str, &str, &str); 7] = [
    ("", "v1", "Namespace", "namespaces"),
    ("", "v1", "Service", "services"),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    ("apps", "v1", "Deployment", "deployments"),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
    ),
    (
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "Kustomization",
        "kustomizations",
    ),
    (
        "helm.toolkit.fluxcd.io",
        "v2",
        "HelmRelease",
        "helmreleases",
    ),
];

/// What `unchanged` names, as comparable text: objects by uid (annotations of the
/// `flux-system` Namespace too: the ownership record), the log, the states' digests.
async fn world(sandbox: &Sandbox, unchanged: &Unchanged) -> BTreeMap<String, String> {
    let mut seen = BTreeMap::new();
    if unchanged.cluster {
        let client = sandbox.cluster.client();
        for (group, version, kind, plural) in WATCHED {
            let gvk = GroupVersionKind::gvk(group, version, kind);
            let api: Api<DynamicObject> = Api::all_with(
                client.clone(),
                &ApiResource::from_gvk_with_plural(&gvk, plural),
            );
            // A kind whose CRD is gone has no objects.
            let Ok(list) = api.list(&ListParams::default()).await else {
                continue;
            };
            for object in list {
                let name = format!(
                    "{kind} {}/{}",
                    object.namespace().unwrap_or_default(),
                    object.name_any()
                );
                let deleting = object.metadata.deletion_timestamp.is_some();
                let mut what = format!("{} deleting={deleting}", object.uid().unwrap_or_default());
                if kind == "Namespace" && object.name_any() == "flux-system" {
                    what.push_str(&format!(" record={:?}", object.annotations()));
                }
                seen.insert(name, what);
            }
        }
    }
    if unchanged.git {
        seen.insert("git log".to_owned(), sandbox.log().join(","));
    }
    for state in &unchanged.states {
        let mut hasher = DefaultHasher::new();
        std::fs::read(state).ok().hash(&mut hasher);
        seen.insert(
            format!("state {}", state.display()),
            format!("{:x}", hasher.finish()),
        );
    }
    seen
}

/// The state file of env `env` on a generated root.
pub fn generated_state(sandbox: &Sandbox, env: &str) -> PathBuf {
    sandbox.path(&format!(
        ".gitops-bootstrap/{env}/terraform/terraform.tfstate"
    ))
}
