//! teardown end to end: create-env, then teardown through the product binary with real
//! Terraform (terraform/existing), real Git over HTTPS and the test cluster with its Flux,
//! kubelet and load-balancer stand-ins — in a cluster of its own, since a teardown acts on the
//! whole cluster. Also: the typed confirmation in a terminal and a load balancer that never
//! releases. A cluster that does not answer, and every other case of what teardown may touch
//! or leave alone (objects outside the env's namespaces, the user's files), are in
//! tests/it/teardown_safety/. SIGKILL at every step followed by a rerun is
//! tests/it/reliability/kills.rs.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use tokio::io::AsyncWriteExt as _;

use crate::support::sandbox::{ENV, Run, Sandbox};
use crate::support::{FLUX_UNINSTALL_FILTER, snapshot};

/// The env's namespaces are gone (not even terminating) once `run`, a teardown, ended.
async fn assert_namespaces_gone(sandbox: &Sandbox, case: &str, run: &Run) {
    let namespaces: Api<Namespace> = Api::all(sandbox.cluster.client());
    for namespace in [
        "flux-system",
        "ingress-nginx",
        "cert-manager",
        "external-dns",
    ] {
        let left = namespaces.get_opt(namespace).await.unwrap();
        assert!(
            left.is_none(),
            "{case}: namespace {namespace} is gone: {:#?}\n{}",
            left.map(|n| n.metadata),
            run.output()
        );
    }
}

/// The `result` event of a `--output json` run, pretty-printed.
fn result_event(stdout: &str) -> serde_json::Value {
    let last = stdout.lines().last().expect("a result event");
    let event: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(event["event"], "result", "{stdout}");
    event
}

const CREATE: [&str; 5] = ["create-env", ENV, "--profile", "standard", "--yes"];

#[tokio::test(flavor = "multi_thread")]
async fn teardown_leaves_nothing_of_the_env_and_a_second_run_has_nothing_to_do() {
    let sandbox = Sandbox::start_isolated().await;
    sandbox.write_config();
    let created = sandbox.run(&CREATE).await;
    assert_eq!(created.code, 0, "{}", created.output());
    let client = sandbox.cluster.client();
    let services: Api<Service> = Api::all(client.clone());
    let load_balancers = |list: Vec<Service>| {
        list.into_iter()
            .filter(|svc| {
                svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer")
            })
            .count()
    };
    let before = services.list(&ListParams::default()).await.unwrap().items;
    assert!(
        load_balancers(before) > 0,
        "ingress-nginx made a load balancer"
    );
    let commits = sandbox.log().len();

    let down = sandbox.run(&["teardown", ENV, "--yes"]).await;
    assert_eq!(down.code, 0, "{}", down.output());
    // Whether helm's uninstall already released the ingress load balancer varies.
    snapshot!(
        "teardown_text",
        &down.stdout,
        extra = [
            (
                r"(delete-cloud-resources\s+\d+ ms  ).*",
                "$1[what helm left]"
            ),
            (r"\d+ removed", "[n] removed"),
            FLUX_UNINSTALL_FILTER,
        ]
    );

    let after = services.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(load_balancers(after), 0, "every load balancer released");
    assert_namespaces_gone(&sandbox, "teardown", &down).await;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let flux_crds = crds
        .list(&ListParams::default().labels("app.kubernetes.io/part-of=flux"))
        .await
        .unwrap()
        .items;
    assert!(flux_crds.is_empty(), "Flux's CRDs are gone");
    assert_eq!(sandbox.log().len(), commits + 1, "one removal commit");
    assert_eq!(sandbox.committed("clusters/dev/kustomization.yaml"), None);
    assert!(
        !sandbox.path(".gitops-bootstrap/dev").exists(),
        "the local state (and Terraform's) is gone"
    );
    assert!(sandbox.age_key_file().exists(), "the age key is kept");

    let again = sandbox
        .run(&["teardown", ENV, "--yes", "--output", "json"])
        .await;
    assert_eq!(again.code, 0, "{}", again.output());
    let result = result_event(&again.stdout);
    assert_eq!(result["ok"], true);
    assert_eq!(result["result"]["removed"], serde_json::json!([]));
    snapshot!(
        "teardown_nothing_to_do_json",
        serde_json::to_string_pretty(&result).unwrap()
    );
    assert_eq!(
        sandbox.log().len(),
        commits + 1,
        "no commit the second time"
    );
}

/// The env's namespace the stuck load balancer is in.
const APP_NAMESPACE: &str = "ingress-nginx";

/// A LoadBalancer Service in an app's namespace whose finalizer nobody releases, as when a
/// cloud controller cannot delete the load balancer.
async fn stuck_load_balancer(sandbox: &Sandbox, name: &str) {
    let services: Api<Service> = Api::namespaced(sandbox.cluster.client(), APP_NAMESPACE);
    let service: Service = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "finalizers": ["example.test/hold"]},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}
    }))
    .unwrap();
    services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
}

async fn release(sandbox: &Sandbox, name: &str) {
    let services: Api<Service> = Api::namespaced(sandbox.cluster.client(), APP_NAMESPACE);
    let patch = serde_json::json!({"metadata": {"finalizers": null}});
    services
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// `teardown dev` in a terminal where `typed` is typed at the confirmation.
async fn teardown_typing(sandbox: &Sandbox, typed: &str, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["teardown", ENV];
    args.extend_from_slice(extra);
    let mut child = sandbox.in_terminal(&args).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{typed}\n").as_bytes())
        .await
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(240), child.wait_with_output())
        .await
        .expect("teardown ended in time")
        .unwrap();
    drop(stdin);
    let shown = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code().unwrap_or(-1), shown)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_typed_confirmation_guards_teardown_and_a_stuck_load_balancer_stops_it_unless_forced() {
    let sandbox = Sandbox::start_isolated().await;
    sandbox.write_config();
    let created = sandbox.run(&CREATE).await;
    assert_eq!(created.code, 0, "{}", created.output());
    stuck_load_balancer(&sandbox, "held").await;
    let commits = sandbox.log();
    let namespaces: Api<Namespace> = Api::all(sandbox.cluster.client());

    let (code, shown) = teardown_typing(&sandbox, "prod", &[]).await;
    assert_eq!(code, 2, "{shown}");
    assert!(shown.contains("Type the env name to confirm:"), "{shown}");
    assert!(
        shown.contains(
            "teardown not confirmed: \"prod\" is not the env name dev; nothing was changed"
        ),
        "{shown}"
    );
    assert_eq!(sandbox.log(), commits, "nothing committed");
    assert!(namespaces.get_opt("ingress-nginx").await.unwrap().is_some());
    assert!(sandbox.path(".gitops-bootstrap/dev/terraform").exists());

    // The name typed right goes ahead, and stops at the load balancer that stays (the apps
    // get time enough to go on a busy machine; the rest of the test waits only for it).
    let (code, shown) = teardown_typing(&sandbox, "dev", &["--timeout", "20s"]).await;
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("Service ingress-nginx/held"), "{shown}");

    let stuck = sandbox
        .run(&["teardown", ENV, "--yes", "--timeout", "3s"])
        .await;
    assert_eq!(stuck.code, 1, "{}", stuck.output());
    let error: String = stuck
        .stderr
        .lines()
        .skip_while(|line| !line.contains("error:"))
        .collect::<Vec<_>>()
        .join("\n");
    snapshot!("teardown_leftover_error", error);
    assert!(
        sandbox
            .committed("clusters/dev/kustomization.yaml")
            .is_some()
    );

    let forced = sandbox
        .run(&[
            "teardown",
            ENV,
            "--yes",
            "--force",
            "--timeout",
            "3s",
            "--output",
            "json",
        ])
        .await;
    assert_eq!(forced.code, 0, "{}", forced.output());
    let result = result_event(&forced.stdout);
    // The load balancer, and the namespace it holds up.
    let leftovers = &result["result"]["leftovers"];
    assert_eq!(leftovers.as_array().map(Vec::len), Some(2), "{leftovers}");
    assert_eq!(
        leftovers[0]["finalizers"],
        serde_json::json!(["example.test/hold"])
    );
    assert_eq!(sandbox.committed("clusters/dev/kustomization.yaml"), None);
    snapshot!(
        "teardown_forced_json",
        serde_json::to_string_pretty(&result).unwrap()
    );
    release(&sandbox, "held").await;
}
