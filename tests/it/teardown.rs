//! teardown end to end: create-env, then teardown through the product binary with real
//! Terraform (terraform/existing), real Git over HTTPS and the test cluster with its Flux,
//! kubelet and load-balancer stand-ins — in a cluster of its own, since a teardown deletes
//! every LoadBalancer Service and PVC of its cluster.

use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::Api;
use kube::api::ListParams;

use crate::support::sandbox::{ENV, Sandbox};

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
    assert!(down.stdout.contains("env dev torn down"), "{}", down.stdout);
    assert!(down.stdout.contains("age key kept at"), "{}", down.stdout);

    let after = services.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(load_balancers(after), 0, "every load balancer released");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for namespace in [
        "flux-system",
        "ingress-nginx",
        "cert-manager",
        "external-dns",
    ] {
        assert!(
            namespaces.get_opt(namespace).await.unwrap().is_none(),
            "namespace {namespace} is gone"
        );
    }
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
    assert!(
        sandbox.path("xdg/gitops-bootstrap/age/dev.agekey").exists(),
        "the age key is kept"
    );

    let again = sandbox
        .run(&["teardown", ENV, "--yes", "--output", "json"])
        .await;
    assert_eq!(again.code, 0, "{}", again.output());
    let result: serde_json::Value = serde_json::from_str(again.stdout.lines().last().unwrap())
        .expect("the last line is the result event");
    assert_eq!(result["event"], "result");
    assert_eq!(result["ok"], true);
    assert_eq!(result["result"]["removed"], serde_json::json!([]));
    assert_eq!(
        sandbox.log().len(),
        commits + 1,
        "no commit the second time"
    );
}
