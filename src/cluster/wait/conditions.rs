//! When a Flux object counts as Ready, when it never will, and when it is still on its way:
//! small pure functions of `Option<&DynamicObject>` (absent is a normal state while Flux
//! catches up), as flux2's `objectReconciled` reads its objects.
//!
//! - Ready: `Ready=True` for the current generation (`status.observedGeneration ==
//!   metadata.generation`), and for objects tied to the pushed commit, at that revision (or
//!   a newer one).
//! - Terminal: `spec.suspend: true` (nothing will happen), `Stalled=True` (Flux gave up, e.g.
//!   a HelmRelease out of retries: `RetriesExceeded`), and `Ready=False` for the reasons in
//!   [`TERMINAL_REASONS`], which no retry fixes without a new commit.
//! - Everything else keeps the wait going: `DependencyNotReady`, `Progressing`,
//!   `ArtifactFailed` while the source catches up, a HelmRelease `InstallFailed` with retries
//!   left, and `HealthCheckFailed` (Flux retries it; workloads may still come up), which our
//!   timeout reports with its message.
//! - A condition written for an older generation, or a Kustomization's failure of an older
//!   revision than the one waited for, is not terminal: it is shown as context while Flux
//!   catches up (the tree adds the same rule for objects whose parent has not applied it).

use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::Value;

use crate::report::short_sha;

/// `(kind, Ready=False reason)` pairs that will not resolve by waiting.
pub const TERMINAL_REASONS: &[(&str, &str)] = &[
    // kustomize build (or variable substitution) of this revision fails: it needs a new commit.
    ("Kustomization", "BuildFailed"),
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Readiness {
    Ready,
    Progressing {
        reason: String,
        message: String,
    },
    /// Terminal: waiting longer will not help.
    Failed {
        reason: String,
        message: String,
    },
    /// `spec.suspend: true`: terminal too.
    Suspended,
    /// Not created yet (or not seen yet by the watch).
    Missing,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        matches!(self, Readiness::Ready)
    }

    /// Failed or Suspended: the wait should stop now.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Readiness::Failed { .. } | Readiness::Suspended)
    }

    pub fn reason(&self) -> &str {
        match self {
            Readiness::Ready => "Ready",
            Readiness::Progressing { reason, .. } | Readiness::Failed { reason, .. } => reason,
            Readiness::Suspended => "Suspended",
            Readiness::Missing => "NotFound",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Readiness::Ready => "",
            Readiness::Progressing { message, .. } | Readiness::Failed { message, .. } => message,
            Readiness::Suspended => {
                "spec.suspend is true: nothing reconciles it until it is resumed"
            }
            Readiness::Missing => "not created yet",
        }
    }

    fn progressing(reason: &str, message: impl Into<String>) -> Readiness {
        Readiness::Progressing {
            reason: reason.to_owned(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self {
            Readiness::Ready => return f.write_str("Ready"),
            Readiness::Progressing { .. } => "waiting",
            Readiness::Failed { .. } => "failed",
            Readiness::Suspended => return f.write_str("suspended"),
            Readiness::Missing => return f.write_str("not found"),
        };
        write!(f, "{state} ({}): {}", self.reason(), self.message())
    }
}

/// The revision Flux must reach: the pushed commit, or one `is_descendant` says is newer.
pub struct WantedRevision<'a> {
    pub sha: &'a str,
    pub is_descendant: &'a dyn Fn(&str) -> bool,
}

impl WantedRevision<'_> {
    /// Whether a Flux revision (`<branch>@sha1:<sha>`, `sha1:<sha>` or a bare sha) is it.
    pub fn accepts(&self, revision: &str) -> bool {
        let sha = revision_sha(revision);
        !sha.is_empty() && (sha == self.sha || (self.is_descendant)(sha))
    }
}

/// The commit sha of a Flux revision string.
pub fn revision_sha(revision: &str) -> &str {
    let after_branch = revision.rsplit_once('@').map_or(revision, |(_, rest)| rest);
    after_branch
        .split_once(':')
        .map_or(after_branch, |(_, sha)| sha)
}

/// Readiness by Flux's conventions, ignoring revisions. A condition counts only for the
/// generation it was written for: its own `observedGeneration` when it has one
/// (kustomize-controller moves `status.observedGeneration` only on success), else the status's.
/// An older one is shown as context while the controller catches up.
pub fn flux_readiness(object: Option<&DynamicObject>) -> Readiness {
    let Some(object) = object else {
        return Readiness::Missing;
    };
    if object.data["spec"]["suspend"].as_bool() == Some(true) {
        return Readiness::Suspended;
    }
    let status = &object.data["status"];
    let generation = object.metadata.generation;
    let observed = status["observedGeneration"].as_i64();
    let current =
        |c: &Condition| generation.is_none() || c.observed_generation.or(observed) == generation;
    let ready = condition(status, "Ready");
    if let Some(stalled) = condition(status, "Stalled").filter(|c| c.status == "True") {
        let message = match ready
            .as_ref()
            .filter(|r| !r.message.is_empty() && r.message != stalled.message)
        {
            Some(ready) => format!(
                "{} (last attempt: {}: {})",
                stalled.message, ready.reason, ready.message
            ),
            None => stalled.message.clone(),
        };
        let failed = Readiness::Failed {
            reason: stalled.reason.clone(),
            message,
        };
        return if current(&stalled) {
            failed
        } else {
            not_reconciled(generation, observed, Some(&failed))
        };
    }
    let kind = object.types.as_ref().map_or("", |t| t.kind.as_str());
    match ready {
        Some(ready) if !current(&ready) => {
            let last = Readiness::progressing(&ready.reason, ready.message);
            not_reconciled(generation, observed, Some(&last))
        }
        // A current Ready=True counts unless the status has its own observedGeneration
        // lagging (kustomize-controller's); the Flux Operator's FluxInstance has none.
        Some(ready)
            if ready.status == "True"
                && (generation.is_none() || observed.is_none() || observed == generation) =>
        {
            Readiness::Ready
        }
        Some(ready) if ready.status == "True" => not_reconciled(generation, observed, None),
        Some(ready)
            if ready.status == "False"
                && TERMINAL_REASONS.contains(&(kind, ready.reason.as_str())) =>
        {
            Readiness::Failed {
                reason: ready.reason,
                message: ready.message,
            }
        }
        Some(ready) => Readiness::progressing(
            if ready.reason.is_empty() {
                "Progressing"
            } else {
                &ready.reason
            },
            ready.message,
        ),
        None if generation.is_some() && observed != generation => {
            not_reconciled(generation, observed, None)
        }
        None => Readiness::progressing("Progressing", "not reconciled yet"),
    }
}

/// The controller has not reconciled this generation yet; `last` is what it said before.
fn not_reconciled(
    generation: Option<i64>,
    observed: Option<i64>,
    last: Option<&Readiness>,
) -> Readiness {
    let mut message = format!(
        "generation {} not reconciled yet (observed {})",
        generation.unwrap_or_default(),
        observed.map_or("none".to_owned(), |g| g.to_string())
    );
    if let Some(last) = last.filter(|l| !l.message().is_empty()) {
        message.push_str(&format!(
            "; last result: {}: {}",
            last.reason(),
            last.message()
        ));
    }
    Readiness::progressing("Progressing", message)
}

/// Why a Kustomization the run asked to apply changed config is not counted yet.
pub const RECONCILE_REQUESTED: &str = "ReconcileRequested";

/// Whether a Flux object handled the reconcile requested at `requested_at`: its
/// `status.lastHandledReconcileAt` is that request, or a later one (someone asked again after
/// the run; Flux handles the last request, so ours with it).
pub fn handled_request(object: Option<&DynamicObject>, requested_at: &str) -> bool {
    let Some(handled) = object.and_then(|o| o.data["status"]["lastHandledReconcileAt"].as_str())
    else {
        return false;
    };
    let instant = |text: &str| text.parse::<jiff::Timestamp>().ok();
    handled == requested_at
        || instant(handled)
            .zip(instant(requested_at))
            .is_some_and(|(handled, requested)| handled >= requested)
}

/// A Kustomization the run asked to apply the new `sources` (`cluster-config`): its own
/// readiness once it handled the request, else waiting, with its last result — a failure of
/// the old config (a Secret that was missing) does not end the wait the run is fixing.
pub fn after_request(
    name: &str,
    object: Option<&DynamicObject>,
    requested_at: &str,
    sources: &str,
    readiness: Readiness,
) -> Readiness {
    if handled_request(object, requested_at) {
        return readiness;
    }
    let mut message = format!("waiting for {name} to apply the new {sources}");
    if !readiness.is_ready() && !readiness.message().is_empty() {
        message.push_str(&format!(
            "; last result: {}: {}",
            readiness.reason(),
            readiness.message()
        ));
    }
    Readiness::progressing(RECONCILE_REQUESTED, message)
}

/// A failure from before Flux reached the wanted commit: waiting, with the old result shown.
pub fn outdated(wanted_sha: &str, previous: &Readiness) -> Readiness {
    Readiness::progressing(
        "OlderRevision",
        format!(
            "waiting for Flux to pick up {}; last result: {}: {}",
            short_sha(wanted_sha),
            previous.reason(),
            previous.message()
        ),
    )
}

/// A GitRepository: Ready, with an artifact of the wanted revision.
pub fn source_readiness(object: Option<&DynamicObject>, wanted: &WantedRevision<'_>) -> Readiness {
    let revision = object.and_then(|o| o.data["status"]["artifact"]["revision"].as_str());
    at_revision(flux_readiness(object), "artifact", revision, wanted)
}

/// A Kustomization of the pushed repository: Ready, having applied the wanted revision. A
/// failure counts only once Flux attempted that revision: an older one (a `BuildFailed` of
/// the commit before the fix) keeps the wait going.
pub fn applied_readiness(object: Option<&DynamicObject>, wanted: &WantedRevision<'_>) -> Readiness {
    let status = object.map(|o| &o.data["status"]);
    match flux_readiness(object) {
        Readiness::Ready => at_revision(
            Readiness::Ready,
            "applied revision",
            status.and_then(|s| s["lastAppliedRevision"].as_str()),
            wanted,
        ),
        failed @ Readiness::Failed { .. } => {
            let attempted = status.and_then(|s| s["lastAttemptedRevision"].as_str());
            if attempted.is_some_and(|r| wanted.accepts(r)) {
                failed
            } else {
                outdated(wanted.sha, &failed)
            }
        }
        other => other,
    }
}

/// Whether a Kustomization applied the wanted revision (any revision without `wanted`) for its
/// current generation, so what it contains is current: it applied it fully, or it applied it
/// and now runs or failed its health checks (Flux sets `lastAppliedRevision` only after them).
pub fn has_applied(object: Option<&DynamicObject>, wanted: Option<&WantedRevision<'_>>) -> bool {
    let Some(object) = object else {
        return false;
    };
    let status = &object.data["status"];
    let accepts = |key: &str| {
        status[key]
            .as_str()
            .is_some_and(|r| wanted.is_none_or(|w| w.accepts(r)))
    };
    let generation = object.metadata.generation;
    let observed = status["observedGeneration"].as_i64();
    let Some(ready) = condition(status, "Ready")
        .filter(|c| generation.is_none() || c.observed_generation.or(observed) == generation)
    else {
        return false;
    };
    // kustomize-controller's words once the objects are applied and their health is checked.
    let checking_health = ready.reason == "HealthCheckFailed"
        || (ready.status == "Unknown" && ready.message.starts_with("Running health checks"));
    (ready.status == "True" && accepts("lastAppliedRevision"))
        || (checking_health && accepts("lastAttemptedRevision"))
}

fn at_revision(
    readiness: Readiness,
    what: &str,
    revision: Option<&str>,
    wanted: &WantedRevision<'_>,
) -> Readiness {
    match (readiness, revision) {
        (Readiness::Ready, Some(revision)) if wanted.accepts(revision) => Readiness::Ready,
        (Readiness::Ready, revision) => Readiness::progressing(
            "OlderRevision",
            format!(
                "{what} is {}, waiting for commit {}",
                revision.unwrap_or("none"),
                wanted.sha
            ),
        ),
        (other, _) => other,
    }
}

struct Condition {
    status: String,
    reason: String,
    message: String,
    observed_generation: Option<i64>,
}

fn condition(status: &Value, type_: &str) -> Option<Condition> {
    let found = status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"].as_str() == Some(type_))?;
    let text = |key: &str| found[key].as_str().unwrap_or_default().to_owned();
    Some(Condition {
        status: text("status"),
        reason: text("reason"),
        message: text("message"),
        observed_generation: found["observedGeneration"].as_i64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(yaml: &str) -> DynamicObject {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn flux(kind: &str, generation: i64, observed: i64, extra: &str) -> DynamicObject {
        object(&format!(
            "apiVersion: x/v1\nkind: {kind}\nmetadata: {{name: a, namespace: flux-system, generation: {generation}}}\nstatus:\n  observedGeneration: {observed}\n{extra}"
        ))
    }

    const READY: &str = "  conditions:\n  - {type: Ready, status: \"True\", reason: ReconciliationSucceeded, message: ok}\n";

    #[test]
    fn absent_objects_are_missing_not_failed() {
        assert_eq!(flux_readiness(None), Readiness::Missing);
        assert!(!flux_readiness(None).is_terminal());
    }

    #[test]
    fn ready_counts_only_for_the_observed_generation() {
        assert_eq!(
            flux_readiness(Some(&flux("Kustomization", 2, 2, READY))),
            Readiness::Ready
        );
        let stale = flux_readiness(Some(&flux("Kustomization", 3, 2, READY)));
        assert!(matches!(stale, Readiness::Progressing { .. }), "{stale}");
        assert!(stale.message().contains("generation 3"));
    }

    #[test]
    fn a_flux_instance_is_judged_by_its_conditions_observed_generation() {
        // The operator's FluxInstance status has no observedGeneration of its own.
        let instance = |condition_generation: i64| {
            object(&format!(
                "apiVersion: fluxcd.controlplane.io/v1\nkind: FluxInstance\nmetadata: {{name: flux, namespace: flux-system, generation: 2}}\nstatus:\n  conditions:\n  - {{type: Ready, status: \"True\", reason: ReconciliationSucceeded, message: ok, observedGeneration: {condition_generation}}}\n"
            ))
        };
        assert_eq!(flux_readiness(Some(&instance(2))), Readiness::Ready);
        let stale = flux_readiness(Some(&instance(1)));
        assert!(matches!(stale, Readiness::Progressing { .. }), "{stale}");
    }

    #[test]
    fn suspended_objects_fail_at_once() {
        let mut ks = flux("Kustomization", 1, 1, READY);
        ks.data["spec"] = serde_json::json!({"suspend": true});
        let readiness = flux_readiness(Some(&ks));
        assert_eq!(readiness, Readiness::Suspended);
        assert!(readiness.is_terminal());
    }

    #[test]
    fn stalled_is_terminal_and_keeps_the_last_attempt() {
        let hr = flux(
            "HelmRelease",
            1,
            1,
            "  conditions:\n  - {type: Stalled, status: \"True\", reason: RetriesExceeded, message: Failed to install after 1 attempt(s)}\n  - {type: Ready, status: \"False\", reason: InstallFailed, message: \"image pull: boom\"}\n",
        );
        let readiness = flux_readiness(Some(&hr));
        assert!(readiness.is_terminal());
        assert_eq!(readiness.reason(), "RetriesExceeded");
        assert!(
            readiness
                .message()
                .contains("InstallFailed: image pull: boom"),
            "{readiness}"
        );
    }

    #[test]
    fn transient_reasons_keep_waiting() {
        for (kind, reason) in [
            ("HelmRelease", "InstallFailed"),
            ("Kustomization", "DependencyNotReady"),
            ("Kustomization", "ArtifactFailed"),
            ("Kustomization", "HealthCheckFailed"),
            ("HelmRelease", "BuildFailed"),
        ] {
            let conditions = format!(
                "  conditions:\n  - {{type: Ready, status: \"False\", reason: {reason}, message: m}}\n"
            );
            let readiness = flux_readiness(Some(&flux(kind, 1, 1, &conditions)));
            assert_eq!(
                readiness,
                Readiness::Progressing {
                    reason: reason.to_owned(),
                    message: "m".to_owned()
                },
                "{kind} {reason}"
            );
        }
    }

    #[test]
    fn kustomization_build_failures_are_terminal() {
        let conditions = "  conditions:\n  - {type: Ready, status: \"False\", reason: BuildFailed, message: \"kustomize build failed: accumulating resources\"}\n";
        let readiness = flux_readiness(Some(&flux("Kustomization", 1, 1, conditions)));
        assert!(readiness.is_terminal(), "{readiness}");
    }

    #[test]
    fn a_condition_counts_only_for_the_generation_it_was_written_for() {
        // Stalled for generation 1 while the spec is at 2: the old failure is context only.
        let hr = flux(
            "HelmRelease",
            2,
            1,
            "  conditions:\n  - {type: Stalled, status: \"True\", reason: RetriesExceeded, message: gave up, observedGeneration: 1}\n",
        );
        let readiness = flux_readiness(Some(&hr));
        assert!(!readiness.is_terminal(), "{readiness}");
        assert_eq!(
            readiness.message(),
            "generation 2 not reconciled yet (observed 1); last result: RetriesExceeded: gave up"
        );
        // kustomize-controller leaves status.observedGeneration behind on failure; the
        // condition's own generation says the build of generation 2 failed.
        let ks = flux(
            "Kustomization",
            2,
            1,
            "  conditions:\n  - {type: Ready, status: \"False\", reason: BuildFailed, message: bad, observedGeneration: 2}\n",
        );
        assert!(flux_readiness(Some(&ks)).is_terminal());
    }

    #[test]
    fn a_build_failure_of_an_older_commit_waits_for_the_new_one() {
        let none = |_: &str| false;
        let wanted = WantedRevision {
            sha: "abc1234def",
            is_descendant: &none,
        };
        let failed_at = |revision: &str| {
            flux(
                "Kustomization",
                1,
                1,
                &format!(
                    "  conditions:\n  - {{type: Ready, status: \"False\", reason: BuildFailed, message: missing.yaml}}\n  lastAttemptedRevision: main@sha1:{revision}\n"
                ),
            )
        };
        let old = applied_readiness(Some(&failed_at("0ld")), &wanted);
        assert_eq!(
            old,
            Readiness::Progressing {
                reason: "OlderRevision".to_owned(),
                message:
                    "waiting for Flux to pick up abc1234; last result: BuildFailed: missing.yaml"
                        .to_owned()
            }
        );
        assert!(applied_readiness(Some(&failed_at("abc1234def")), &wanted).is_terminal());
    }

    #[test]
    fn a_kustomization_has_applied_a_commit_once_it_checks_health_or_is_ready_at_it() {
        let none = |_: &str| false;
        let wanted = WantedRevision {
            sha: "new",
            is_descendant: &none,
        };
        let ks = |ready: &str, attempted: &str, applied: &str| {
            flux(
                "Kustomization",
                1,
                1,
                &format!(
                    "  conditions:\n  - {ready}\n  lastAttemptedRevision: {attempted}\n  lastAppliedRevision: {applied}\n"
                ),
            )
        };
        let ready = "{type: Ready, status: \"True\", reason: ReconciliationSucceeded, message: ok}";
        let checking = "{type: Ready, status: \"Unknown\", reason: Progressing, message: Running health checks for revision new}";
        let fetching = "{type: Ready, status: \"Unknown\", reason: Progressing, message: Reconciliation in progress}";
        let unhealthy =
            "{type: Ready, status: \"False\", reason: HealthCheckFailed, message: timeout}";
        assert!(has_applied(Some(&ks(ready, "new", "new")), Some(&wanted)));
        assert!(!has_applied(Some(&ks(ready, "old", "old")), Some(&wanted)));
        assert!(has_applied(Some(&ks(ready, "old", "old")), None));
        assert!(has_applied(
            Some(&ks(checking, "new", "old")),
            Some(&wanted)
        ));
        assert!(has_applied(
            Some(&ks(unhealthy, "new", "old")),
            Some(&wanted)
        ));
        assert!(!has_applied(
            Some(&ks(fetching, "new", "old")),
            Some(&wanted)
        ));
        assert!(!has_applied(
            Some(&ks(checking, "old", "old")),
            Some(&wanted)
        ));
        assert!(!has_applied(None, None));
    }

    #[test]
    fn revisions_match_the_pushed_commit_or_a_descendant() {
        let no_descendants = |_: &str| false;
        let wanted = WantedRevision {
            sha: "abc123",
            is_descendant: &no_descendants,
        };
        assert!(wanted.accepts("main@sha1:abc123"));
        assert!(wanted.accepts("sha1:abc123"));
        assert!(!wanted.accepts("main@sha1:0ld0ld"));
        assert!(!wanted.accepts(""));
        let newer = |sha: &str| sha == "def456";
        let wanted = WantedRevision {
            sha: "abc123",
            is_descendant: &newer,
        };
        assert!(wanted.accepts("main@sha1:def456"));
        assert_eq!(revision_sha("refs/heads/main@sha1:abc"), "abc");
    }

    #[test]
    fn sources_and_kustomizations_must_reach_the_revision() {
        let none = |_: &str| false;
        let wanted = WantedRevision {
            sha: "abc123",
            is_descendant: &none,
        };
        let repo = |revision: &str| {
            flux(
                "GitRepository",
                1,
                1,
                &format!("{READY}  artifact: {{revision: \"{revision}\"}}\n"),
            )
        };
        assert_eq!(
            source_readiness(Some(&repo("main@sha1:abc123")), &wanted),
            Readiness::Ready
        );
        let old = source_readiness(Some(&repo("main@sha1:0ld")), &wanted);
        assert_eq!(old.reason(), "OlderRevision");
        assert!(old.message().contains("main@sha1:0ld"));

        let ks = flux(
            "Kustomization",
            1,
            1,
            &format!("{READY}  lastAppliedRevision: main@sha1:abc123\n"),
        );
        assert_eq!(applied_readiness(Some(&ks), &wanted), Readiness::Ready);
        let ks = flux("Kustomization", 1, 1, READY);
        assert_eq!(
            applied_readiness(Some(&ks), &wanted).reason(),
            "OlderRevision"
        );
    }
}
