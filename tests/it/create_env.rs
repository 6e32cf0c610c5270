//! create-env end to end: the product binary with real Terraform (terraform/existing), real Git
//! over HTTPS and the test cluster with its Flux stand-ins.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::Api;

use crate::support::sandbox::{BRANCH, ENV, Sandbox};

const CREATE: [&str; 5] = ["create-env", ENV, "--profile", "standard", "--yes"];

#[tokio::test(flavor = "multi_thread")]
async fn standard_profile_comes_up_and_a_rerun_changes_nothing() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    let seeded = sandbox.log().len();

    let first = sandbox.run(&CREATE).await;
    assert_eq!(first.code, 0, "{}", first.output());
    assert!(
        first.stdout.contains("env dev is ready"),
        "{}",
        first.stdout
    );

    let log = sandbox.log();
    assert_eq!(log.len(), seeded + 1, "one commit for the env");
    let profile = sandbox
        .committed("clusters/dev/profile.yaml")
        .expect("profile.yaml committed");
    assert!(profile.contains("./profiles/standard"), "{profile}");
    let components = sandbox
        .committed("clusters/dev/flux-system/gotk-components.yaml")
        .expect("components committed");
    assert_eq!(
        components,
        std::fs::read_to_string(sandbox.path("gotk-components.yaml")).unwrap(),
        "committed byte for byte as applied"
    );
    assert!(
        sandbox
            .committed("clusters/dev/.sops.yaml")
            .unwrap()
            .contains("age1")
    );

    let client = sandbox.cluster.client();
    let config: Api<ConfigMap> = Api::namespaced(client.clone(), "flux-system");
    let data = config.get("cluster-config").await.unwrap().data.unwrap();
    assert_eq!(data["cluster_name"], "sandbox");
    assert_eq!(data["base_domain"], "sandbox.example.test");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "flux-system");
    let cluster_secrets = secrets.get("cluster-secrets").await.unwrap().data.unwrap();
    assert_eq!(cluster_secrets["dns_api_token"].0, b"sandbox-dns-token");
    let git = secrets.get("flux-system").await.unwrap().data.unwrap();
    assert_eq!(
        git["password"].0,
        sandbox.git.read_token().as_bytes(),
        "Flux reads with the read token"
    );
    assert!(git.contains_key("username") && git.contains_key("ca.crt"));
    let sops = secrets.get("sops-age").await.unwrap().data.unwrap();
    assert!(sops.contains_key("dev.agekey"));
    for namespace in ["ingress-nginx", "cert-manager", "external-dns"] {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        assert!(
            namespaces.get_opt(namespace).await.unwrap().is_some(),
            "{namespace} installed"
        );
    }

    let rerun = sandbox
        .run(&["--output", "json", "create-env", ENV, "--yes"])
        .await;
    assert_eq!(rerun.code, 0, "{}", rerun.output());
    assert_eq!(sandbox.log(), log, "a rerun makes no commit");
    let events: Vec<serde_json::Value> = rerun
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("every stdout line is JSON"))
        .collect();
    for step in [
        "terraform",
        "config-and-secrets",
        "commit",
        "flux-install",
        "sync",
    ] {
        let finished = events
            .iter()
            .find(|e| e["event"] == "step_finished" && e["step"] == step)
            .unwrap_or_else(|| panic!("{step} finished"));
        assert_eq!(finished["outcome"], "up_to_date", "{step}: {finished}");
    }
    let started = events
        .iter()
        .filter(|e| e["event"] == "step_started")
        .count();
    let finished = events
        .iter()
        .filter(|e| e["event"] == "step_finished")
        .count();
    assert_eq!((started, finished), (9, 9));
    let last = events.last().unwrap();
    assert_eq!(last["event"], "result");
    assert_eq!(last["ok"], true);
    assert_eq!(last["result"]["branch"], BRANCH);
    assert_eq!(events.iter().filter(|e| e["event"] == "result").count(), 1);
}
