//! A fleet as CI runs it: three envs created by three parallel processes, one repository. Each
//! env has its own cluster (a second and third in-process test cluster beside the sandbox's),
//! its own `clusters/<env>/`, lock and state; no push is lost and no lock spans envs.

use std::time::Duration;

use testkit::apiserver::ServerOptions;
use testkit::cluster::TestCluster;
use testkit::env_config::ConfigFile;
use testkit::flux::{Controllers, FluxOptions};

use crate::support::sandbox::{ENV, Sandbox};
use crate::support::snapshot;

const FLEET_LIMIT: Duration = Duration::from_secs(600);

#[tokio::test(flavor = "multi_thread")]
async fn three_envs_in_parallel_processes_share_one_repository() {
    let sandbox = Sandbox::start().await;
    let seeded = sandbox.log();
    let mut extra = Vec::new();
    for _ in 0..2 {
        let cluster = TestCluster::start_in_process(ServerOptions::default())
            .await
            .expect("starting another test cluster");
        let flux = Controllers::start(cluster.client(), FluxOptions::default());
        extra.push((cluster, flux));
    }
    let envs = [ENV, "fleet-b", "fleet-c"];
    let kubeconfigs = [
        sandbox.cluster.kubeconfig_path(),
        extra[0].0.kubeconfig_path(),
        extra[1].0.kubeconfig_path(),
    ];
    let mut config = ConfigFile::default();
    for (env, kubeconfig) in envs.iter().zip(kubeconfigs) {
        let env_config = sandbox.env_config(env, kubeconfig, &sandbox.repo_url());
        config = config.with_env(env, env_config);
    }
    sandbox.write_config_file(&config);

    let [a, b, c] = envs.map(|env| {
        let mut command = sandbox.command(&["create-env", env, "--yes"]);
        async move { command.output().await.expect("running create-env") }
    });
    let (a, b, c) = tokio::time::timeout(FLEET_LIMIT, async { tokio::join!(a, b, c) })
        .await
        .expect("the fleet ran past the test limit");
    for (env, output) in envs.iter().zip([&a, &b, &c]) {
        assert_eq!(
            output.status.code(),
            Some(0),
            "{env}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    // One commit per env on top of the seeded history: nothing lost, nothing forced.
    let log = sandbox.log();
    assert_eq!(log.len(), seeded.len() + 3, "{log:?}");
    assert_eq!(log[3..], seeded[..]);
    let profiles = envs.map(|env| {
        sandbox
            .committed(&format!("clusters/{env}/profile.yaml"))
            .unwrap_or_else(|| panic!("clusters/{env}/ committed"))
    });
    assert!(
        profiles.iter().all(|profile| *profile == profiles[0]),
        "every env runs profile standard alike: {profiles:#?}"
    );
    snapshot!("fleet_profile", &profiles[0]);

    // The three runs were under way at the same time: no lock is held across envs.
    let records: Vec<serde_json::Value> = envs
        .iter()
        .map(|env| {
            let path = sandbox.path(&format!(".gitops-bootstrap/{env}/run.json"));
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
        })
        .collect();
    let times = |key: &str| -> Vec<jiff::Timestamp> {
        records
            .iter()
            .map(|record| record[key].as_str().unwrap().parse().unwrap())
            .collect()
    };
    let last_start = times("started_at").into_iter().max().unwrap();
    let first_finish = times("finished_at").into_iter().min().unwrap();
    assert!(
        last_start < first_finish,
        "the runs overlapped: last started {last_start}, first finished {first_finish}"
    );
}
