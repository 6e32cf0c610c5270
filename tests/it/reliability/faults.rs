//! API faults through the real binary: the in-process test cluster answers a fifth of the
//! tool's requests 500 or 429 (`Retry-After: 1`) and cuts every watch, or forgets its watch
//! history (410 Gone), and create-env, status and teardown still end as on a healthy cluster.
//! Fault injection needs the in-process server: against a long-lived cluster
//! (`GITOPS_BOOTSTRAP_TEST_KUBECONFIG`) these tests say so and do nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use testkit::apiserver::{Admin, FaultOptions};

use crate::support::sandbox::{ENV, Sandbox};

/// The user agent the product's client sends, up to its first `/`.
pub(super) const PRODUCT: &str = "gitops-bootstrap";

/// The admin of the sandbox's own API server, or `None` (printed) on a shared cluster.
pub(super) fn fault_injection(sandbox: &Sandbox) -> Option<&Admin> {
    let admin = sandbox.cluster.admin();
    if admin.is_none() {
        eprintln!(
            "skipped: fault injection needs the in-process test cluster, and GITOPS_BOOTSTRAP_TEST_KUBECONFIG names a shared one"
        );
    }
    admin
}

/// A fifth of the product's requests fail (half 500, half 429), every watch ends after 5 s.
fn a_fifth_failing() -> FaultOptions {
    FaultOptions {
        error_rate: 0.1,
        throttle_rate: 0.1,
        watch_cut_after_ms: Some(5_000),
        agent: Some(PRODUCT.to_owned()),
        ..FaultOptions::default()
    }
}

/// The product's successful writes per object (`<verb> <resource> <namespace>/<name>`).
fn writes_per_object(admin: &Admin) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for write in admin.writes().into_iter().filter(|w| w.agent == PRODUCT) {
        let key = format!(
            "{} {} {}/{}",
            write.verb,
            write.resource,
            write.namespace.unwrap_or_default(),
            write.name.unwrap_or_default()
        );
        *counts.entry(key).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread")]
async fn create_env_status_and_teardown_succeed_with_a_fifth_of_requests_failing_and_cut_watches() {
    let sandbox = Sandbox::start().await;
    let Some(admin) = fault_injection(&sandbox) else {
        return;
    };
    sandbox.write_config();
    let seeded = sandbox.log().len();
    admin.reset_counters();
    admin.set_faults(a_fifth_failing());

    let created = sandbox.run(&["create-env", ENV, "--yes"]).await;
    assert_eq!(created.code, 0, "{}", created.output());
    assert_eq!(
        sandbox.log().len(),
        seeded + 1,
        "exactly one bootstrap commit"
    );
    let injected = admin.injected_faults();
    let sent = admin.request_counts_by_agent()[PRODUCT];
    // About a fifth of `sent`; none at all would mean the faults missed the product.
    assert!(injected > 0, "faults were injected: {injected} of {sent}");
    // Each write that succeeded happened once: a retry repeats a refused request, never one
    // that was done. The sync objects get one reconcile request on top of their apply.
    let writes = writes_per_object(admin);
    let repeated: Vec<_> = writes.iter().filter(|(_, n)| **n > 2).collect();
    assert!(repeated.is_empty(), "written more than twice: {repeated:?}");
    assert!(
        !created.stderr.contains("injected fault") && !created.stderr.contains("Too many"),
        "retried faults are not shown: {}",
        created.stderr
    );

    let status = sandbox.run(&["status", ENV]).await;
    assert_eq!(status.code, 0, "{}", status.output());

    // A rerun finds everything done and commits nothing; under faults it writes exactly what
    // it writes on a healthy cluster: retries repeat refused requests, never work.
    let mut reruns = Vec::new();
    for faults in [FaultOptions::default(), a_fifth_failing()] {
        admin.set_faults(faults);
        admin.reset_counters();
        let rerun = sandbox.run(&["create-env", ENV, "--yes"]).await;
        assert_eq!(rerun.code, 0, "{}", rerun.output());
        reruns.push(writes_per_object(admin));
    }
    assert_eq!(sandbox.log().len(), seeded + 1, "the reruns commit nothing");
    assert_eq!(reruns[0], reruns[1], "healthy rerun vs rerun under faults");

    let down = sandbox.run(&["teardown", ENV, "--yes"]).await;
    assert_eq!(down.code, 0, "{}", down.output());
    let starts = admin.watch_starts();
    assert!(
        starts.get("gitops-bootstrap resumed").copied().unwrap_or(0) > 0,
        "cut watches were resumed from their resourceVersion: {starts:?}"
    );
    eprintln!(
        "create-env survived {injected} injected faults in {sent} requests; the faulty rerun and teardown {}",
        admin.injected_faults()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_whose_history_expired_is_relisted_and_the_wait_goes_on() {
    let sandbox = Sandbox::start().await;
    let Some(admin) = fault_injection(&sandbox) else {
        return;
    };
    sandbox.write_config();
    admin.reset_counters();
    admin.set_faults(FaultOptions {
        watch_cut_after_ms: Some(300),
        agent: Some(PRODUCT.to_owned()),
        ..FaultOptions::default()
    });
    // The history goes as fast as watches are cut: a resumed watch finds its resourceVersion
    // gone (410) and must list again.
    let compacting = {
        let admin = admin.clone();
        tokio::spawn(async move {
            loop {
                admin.compact_history();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let created = sandbox.run(&["create-env", ENV, "--yes"]).await;
    compacting.abort();
    assert_eq!(
        created.code, 0,
        "stdout: {}\nstderr: {}",
        created.stdout, created.stderr
    );
    let starts = admin.watch_starts();
    assert!(
        starts.get("gitops-bootstrap expired").copied().unwrap_or(0) > 0,
        "the product's watches met 410 Gone: {starts:?}"
    );
    eprintln!("the product's watch starts with the history compacted: {starts:?}");
    for shown in ["410", "too old resource version", "Expired"] {
        assert!(
            !created.stderr.contains(shown),
            "an expired watch is not the user's problem ({shown}): {}",
            created.stderr
        );
    }
}
