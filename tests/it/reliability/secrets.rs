//! Secret hygiene: canary values in every secret input stay out of every output, log, commit,
//! run record and child argv; files holding secrets are the owner's alone.

use std::time::Duration;

use super::walk;
use crate::support::sandbox::{ENV, Sandbox};

/// Every process below `root` and its argv, sampled until `stop` is set.
fn sample_descendants(
    root: u32,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut seen = std::collections::BTreeSet::new();
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let mut parents = std::collections::HashMap::new();
            for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                    continue;
                };
                // The field after the parenthesised command name is the state, then ppid.
                let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
                if let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                    parents.insert(pid, ppid);
                }
            }
            for &pid in parents.keys() {
                let mut at = pid;
                while let Some(&parent) = parents.get(&at) {
                    if parent == root {
                        if let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) {
                            seen.insert(String::from_utf8_lossy(&cmdline).replace('\0', " "));
                        }
                        break;
                    }
                    if parent <= 1 {
                        break;
                    }
                    at = parent;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        seen.into_iter().collect()
    })
}

fn mode(path: &std::path::Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions()) & 0o777
}

#[tokio::test(flavor = "multi_thread")]
async fn canaries_stay_out_of_every_output_log_commit_record_and_child_argv() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    let secret_var = "CANARY-5c1e-secret-variable";
    let secrets = format!(r#"{{"dns_api_token" = "{secret_var}"}}"#);
    let env = [
        ("SANDBOX_CLUSTER_SECRETS", secrets.as_str()),
        ("RUST_LOG", "trace"),
    ];
    let mut outputs = Vec::new();
    let mut argvs = Vec::new();
    for args in [
        &["-vv", "create-env", ENV, "--yes"][..],
        &["--output", "json", "-vv", "create-env", ENV, "--yes"][..],
        &["-vv", "status", ENV][..],
        &["-vv", "plan", ENV][..],
        &["-vv", "doctor", ENV][..],
    ] {
        let mut command = sandbox.command(args);
        command.envs(env);
        let child = command.spawn().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = sample_descendants(child.id().unwrap(), stop.clone());
        let output = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
            .await
            .expect("the run ended")
            .unwrap();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        argvs.extend(sampler.join().unwrap());
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success() || args.contains(&"doctor"),
            "{args:?}: {text}"
        );
        outputs.push(text);
    }
    assert!(
        argvs
            .iter()
            .any(|argv| argv.contains("terraform") && argv.contains("apply")),
        "the sampler saw Terraform: {argvs:?}"
    );

    // The canaries: every secret input of the run.
    let kubeconfig: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(sandbox.cluster.kubeconfig_path()).unwrap(),
    )
    .expect("the test cluster's kubeconfig is YAML");
    let cluster_token = kubeconfig["users"][0]["user"]["token"]
        .as_str()
        .expect("the test cluster's kubeconfig has a token")
        .to_owned();
    let age_key_file = sandbox.age_key_file();
    let age_identity = std::fs::read_to_string(&age_key_file)
        .unwrap()
        .lines()
        .find(|line| line.starts_with("AGE-SECRET-KEY-"))
        .expect("an age identity")
        .to_owned();
    let canaries = [
        ("push token", sandbox.push_token.clone()),
        ("read token", sandbox.git.read_token().to_owned()),
        ("cluster token", cluster_token),
        ("secret variable / cluster_secrets", secret_var.to_owned()),
        ("age identity", age_identity),
    ];

    let mut haystacks: Vec<(String, String)> = outputs
        .into_iter()
        .enumerate()
        .map(|(n, text)| (format!("output of run {n}"), text))
        .collect();
    haystacks.push(("child argv".into(), argvs.join("\n")));
    let record = sandbox.path(".gitops-bootstrap/dev/run.json");
    haystacks.push(("run.json".into(), std::fs::read_to_string(&record).unwrap()));
    let history = std::process::Command::new("git")
        .args(["log", "-p", "--all", "--format=%H %an %ae %s"])
        .current_dir(sandbox.path(".gitops-bootstrap/dev/repo"))
        .output()
        .unwrap();
    assert!(history.status.success());
    haystacks.push((
        "every commit".into(),
        String::from_utf8_lossy(&history.stdout).into_owned(),
    ));
    let mut checked = 0;
    for (name, canary) in &canaries {
        for (place, haystack) in &haystacks {
            checked += 1;
            assert!(
                !haystack.contains(canary.as_str()),
                "{name} leaked into {place}"
            );
        }
    }
    assert_eq!(checked, canaries.len() * haystacks.len());

    // Files holding secrets are the owner's alone; nothing temporary is left behind.
    let state = sandbox.path(".gitops-bootstrap/dev");
    assert_eq!(mode(&age_key_file), 0o600);
    assert_eq!(mode(&state.join("terraform/terraform.tfstate")), 0o600);
    let leftovers: Vec<_> = walk(&state)
        .into_iter()
        .filter(|path| !path.starts_with(state.join("repo/.git")))
        .filter(|path| !path.starts_with(state.join("terraform/.terraform")))
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.contains("tfplan") || name.starts_with(".tmp") || name.ends_with(".tmp")
        })
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}
