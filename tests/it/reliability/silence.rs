//! Nothing hangs: an API server that stops answering in the middle of the wait for the apps
//! or of a step's requests, and a Terraform that stops printing, each end the run with what
//! did not answer and for how long. The silent API server needs the in-process test cluster's
//! fault injection.

use std::time::Duration;

use testkit::apiserver::{Admin, FaultOptions};
use testkit::env_config::EnvConfig;

use super::faults::fault_injection;
use super::told;
use crate::support::sandbox::{ENV, Sandbox};
use crate::support::snapshot;

/// The NDJSON lines of a run up to (and including) the one holding `needle`.
async fn follow_until(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    needle: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        let found = line.contains(needle);
        seen.push(line);
        if found {
            return seen;
        }
    }
    panic!("the run ended before {needle}: {seen:#?}");
}

/// A run of the binary with NDJSON on stdout, followed line by line.
struct Followed {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    stderr: tokio::task::JoinHandle<String>,
}

/// How a followed run ended once its API server fell silent.
struct Ended {
    code: Option<i32>,
    /// The run's `error` event.
    error: serde_json::Value,
    stderr: String,
    at: std::time::Instant,
}

impl Followed {
    fn spawn(sandbox: &Sandbox, args: &[&str]) -> Followed {
        let mut child = sandbox
            .command(&[&["--output", "json"], args].concat())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text)
                .await
                .unwrap();
            text
        });
        let lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
            child.stdout.take().unwrap(),
        ));
        Followed {
            child,
            lines,
            stderr,
        }
    }

    async fn until(&mut self, needle: &str) -> Vec<String> {
        follow_until(&mut self.lines, needle).await
    }

    /// Makes the API server answer nobody, lets the run end within `limit` (the test fails if
    /// it hangs), then lets the server answer again.
    async fn silence_until_end(mut self, admin: &Admin, limit: Duration) -> Ended {
        admin.set_faults(FaultOptions {
            stall: true,
            ..FaultOptions::default()
        });
        let mut rest = Vec::new();
        let ended = tokio::time::timeout(limit, async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                rest.push(line);
            }
            self.child.wait().await.unwrap()
        })
        .await
        .expect("the run ended: nothing hangs on a silent API server");
        let at = std::time::Instant::now();
        admin.set_faults(FaultOptions::default());
        let stderr = self.stderr.await.unwrap();
        let error = rest
            .iter()
            .find(|line| line.contains(r#""event":"error""#))
            .unwrap_or_else(|| panic!("an error event: {rest:#?}\n{stderr}"));
        Ended {
            code: ended.code(),
            error: serde_json::from_str(error).unwrap(),
            stderr,
            at,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_server_that_stops_answering_mid_wait_ends_the_run_at_its_timeout_naming_it() {
    // The apps' Deployments take seconds to become Available: the wait is still watching
    // when the server falls silent.
    let sandbox = Sandbox::start_with(testkit::flux::FluxOptions {
        deployment_ready_delay: Duration::from_secs(4),
        ..testkit::flux::FluxOptions::default()
    })
    .await;
    let Some(admin) = fault_injection(&sandbox) else {
        return;
    };
    sandbox.write_config();
    let timeout = Duration::from_secs(75);
    let mut run = Followed::spawn(&sandbox, &["create-env", ENV, "--yes", "--timeout", "75s"]);
    run.until(r#""step_started","step":"flux-install""#).await;
    let deadline_from = std::time::Instant::now();
    run.until(r#""step_started","step":"wait-for-apps""#).await;
    // Once the wait's watches are open (listed, then watching from that resourceVersion),
    // the server stops answering anyone.
    let resumed = |admin: &Admin| {
        admin
            .watch_starts()
            .get("gitops-bootstrap resumed")
            .copied()
            .unwrap_or(0)
    };
    let before = resumed(admin);
    tokio::time::timeout(Duration::from_secs(10), async {
        while resumed(admin) < before + 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the wait opened its watches");
    let ended = run
        .silence_until_end(admin, timeout + Duration::from_secs(60))
        .await;
    let took = ended.at - deadline_from;
    let error = &ended.error;
    assert_eq!(
        ended.code,
        Some(3),
        "a timeout exits 3: {error}\n{}",
        ended.stderr
    );
    assert!(
        took < timeout + Duration::from_secs(15),
        "the run's --timeout bounds it: {took:?}"
    );
    let shown = format!(
        "exit {}\n{}\nhint: {}",
        error["code"],
        error["message"].as_str().unwrap(),
        error["hint"].as_str().unwrap_or_default()
    );
    let extra = [
        // Durations as report::duration prints them: 45s, 1m 15s.
        (
            r"the last (?:\d+[hms] ?)+ of the (?:\d+[hms] ?)+ wait",
            "the last [n]s of the [n]s wait",
        ),
        // Which request met the silence last (a read, or a watch being restarted) varies;
        // its own message is kept in the log printed below.
        (
            r"wait \((?:reading|watching) [^\n]*?\); the apps",
            "wait ([the request last unanswered]); the apps",
        ),
        // Which apps were still coming up when the server fell silent varies.
        (
            r"(?s)(when it was last heard:\n).*?(\nhint:)",
            "$1[not Ready yet]$2",
        ),
    ];
    snapshot!("silent_api_server_mid_wait", shown, extra = extra);
    eprintln!("a silent API server ended the run after {took:?} (--timeout 75s):\n{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terraform_that_prints_nothing_is_stopped_after_the_idle_bound_naming_it() {
    let sandbox = Sandbox::start().await;
    let module = sandbox.path("module");
    let existing = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("terraform/existing");
    crate::support::copy_dir(&existing, &module);
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures");
    std::fs::copy(
        fixtures.join("silent-terraform/stuck.tf"),
        module.join("stuck.tf"),
    )
    .unwrap();
    sandbox.write_dev_config(EnvConfig {
        module: Some(module),
        ..sandbox.dev_config()
    });
    let seeded = sandbox.log();

    let started = std::time::Instant::now();
    let run = sandbox
        .run(&["--terraform-idle-timeout", "3s", "create-env", ENV, "--yes"])
        .await;
    let took = started.elapsed();
    assert_eq!(run.code, 3, "a timeout exits 3: {}", run.output());
    // Terraform gets its grace period to stop the provisioner and save its state.
    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert_eq!(sandbox.log(), seeded, "nothing was committed");
    let terraform = sandbox.path(".gitops-bootstrap/dev/terraform");
    assert!(
        !terraform.join(".terraform.tfstate.lock.info").exists(),
        "Terraform released its state lock"
    );
    snapshot!("silent_terraform", told(&run.stderr));
    eprintln!("a silent Terraform ended the run after {took:?} (--terraform-idle-timeout 3s)");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_request_without_an_answer_fails_after_its_deadline_naming_the_server() {
    let sandbox = Sandbox::start().await;
    let Some(admin) = fault_injection(&sandbox) else {
        return;
    };
    sandbox.write_config();
    let seeded = sandbox.log();
    let mut run = Followed::spawn(&sandbox, &["create-env", ENV, "--yes"]);
    run.until(r#""step_started","step":"config-and-secrets""#)
        .await;
    let stalled = std::time::Instant::now();
    let ended = run.silence_until_end(admin, Duration::from_secs(120)).await;
    let took = ended.at - stalled;
    let error = &ended.error;
    assert_eq!(ended.code, Some(3), "a timeout exits 3: {error}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
    // Whether the step's reads or writes were under way when the server fell silent, and
    // which object's request timed out first, varies.
    let extra = [(
        r"step [a-z-]+ failed: failed to \w+ [^:]+:",
        "step [step] failed: failed to [read or apply] [object]:",
    )];
    let shown = format!(
        "{}\nhint: {}",
        error["message"].as_str().unwrap(),
        error["hint"].as_str().unwrap_or_default()
    );
    snapshot!("unanswered_request", shown, extra = extra);
    assert_eq!(sandbox.log(), seeded, "nothing was committed: {error}");
    eprintln!("an unanswered request ended the run after {took:?}");
}

/// An ssh server that greets (`SSH-2.0-…`), reads what the client sends and never answers
/// again: a transfer that stalls after the connection is made.
fn ssh_server_that_stalls_after_greeting() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                use std::io::{Read as _, Write as _};
                let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.6\r\n");
                let mut sink = [0u8; 4096];
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ssh_git_server_that_stalls_after_its_greeting_fails_within_the_git_timeout() {
    let port = ssh_server_that_stalls_after_greeting();
    let url = format!("ssh://git@127.0.0.1:{port}/fleet.git");
    let known_hosts = tempfile::NamedTempFile::new().unwrap();
    let project = super::Project::over_ssh(&url, known_hosts.path());
    let (code, output, took) = project
        .run(&["--git-timeout", "2s", "create-env", "dev", "--yes"])
        .await;
    assert!(took < Duration::from_secs(20), "took {took:?}: {output}");
    assert_eq!(code, 3, "a timeout exits 3: {output}");
    snapshot!("ssh_stalls_after_greeting", told(&output));
}
