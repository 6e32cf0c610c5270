//! Nothing hangs: a silent Git server ends with what did not answer, an interrupt ends a hanging
//! run within seconds, and read-only commands wait briefly for a held env lock.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt as _, BufReader};

use super::{Project, silent_server, told};
use crate::support::snapshot;

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_git_server_fails_with_what_did_not_answer_and_for_how_long() {
    let (_listener, port) = silent_server();
    let known_hosts = tempfile::NamedTempFile::new().unwrap();
    let mut said = Vec::new();
    for url in [
        format!("https://127.0.0.1:{port}/fleet.git"),
        format!("ssh://git@127.0.0.1:{port}/fleet.git"),
    ] {
        let project = if url.starts_with("ssh") {
            Project::over_ssh(&url, known_hosts.path())
        } else {
            Project::new(&url)
        };
        for args in [
            &["--git-timeout", "2s", "create-env", "dev", "--yes"][..],
            &["--git-timeout", "2s", "doctor", "dev"][..],
        ] {
            let (code, output, took) = project.run(args).await;
            assert!(took < Duration::from_secs(20), "took {took:?}: {output}");
            if args[2] == "create-env" {
                assert_eq!(code, 3, "a timeout exits 3: {output}");
                project.assert_no_clone();
            }
            // What did not answer and for how long; create-env's hint names the knob.
            said.push(format!(
                "## {} {} (exit {code})\n{}",
                url.split(':').next().unwrap(),
                args[2],
                told(&output)
            ));
        }
    }
    snapshot!("silent_git_server", said.join("\n"));
}

/// Starts create-env against a silent Git server (default Git timeout: 60 s) and returns it
/// once preflight has started.
async fn hanging_run(
    project: &Project,
) -> (
    tokio::process::Child,
    BufReader<tokio::process::ChildStdout>,
) {
    let mut child = project
        .command(&["--output", "json", "create-env", "dev", "--yes"])
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    tokio::time::timeout(Duration::from_secs(60), async {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                stdout.read_line(&mut line).await.unwrap() > 0,
                "ended early"
            );
            if line.contains(r#""step_started""#) && line.contains("preflight") {
                return;
            }
        }
    })
    .await
    .expect("preflight started");
    // Give preflight time to reach the Git connection.
    tokio::time::sleep(Duration::from_millis(700)).await;
    (child, stdout)
}

async fn rest(mut stdout: BufReader<tokio::process::ChildStdout>) -> String {
    let mut text = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut text)
        .await
        .unwrap();
    text
}

fn signal(child: &tokio::process::Child, signal: Signal) {
    kill(Pid::from_raw(child.id().unwrap() as i32), signal).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupt_ends_a_hanging_run_within_seconds_naming_the_step() {
    let (_listener, port) = silent_server();
    let project = Project::new(&format!("https://127.0.0.1:{port}/fleet.git"));
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        let (mut child, stdout) = hanging_run(&project).await;
        let sent = Instant::now();
        signal(&child, sig);
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("the run ended after the interrupt")
            .unwrap();
        let took = sent.elapsed();
        let events = rest(stdout).await;
        assert_eq!(status.code(), Some(130), "{sig}: {events}");
        assert!(took < Duration::from_secs(4), "{sig}: took {took:?}");
        // The step is closed in the event stream, the error names it, the result ends it.
        snapshot!(format!("interrupted_{sig}_json"), events);
        let record: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(project.dir.path().join(".gitops-bootstrap/dev/run.json"))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(record["status"], "interrupted", "the run record says so");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_interrupt_stops_at_once_and_says_so() {
    let (_listener, port) = silent_server();
    let project = Project::new(&format!("https://127.0.0.1:{port}/fleet.git"));
    let (mut child, stdout) = hanging_run(&project).await;
    let sent = Instant::now();
    signal(&child, Signal::SIGINT);
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(&child, Signal::SIGINT);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the run ended")
        .unwrap();
    let events = rest(stdout).await;
    assert_eq!(status.code(), Some(130), "{events}");
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
    snapshot!("interrupted_twice_json", events);
}

#[test]
fn git_timeout_is_bounded() {
    let project = Project::new("https://git.example.test/fleet.git");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut said = Vec::new();
    for bad in ["0s", "2h", "soon"] {
        let (code, output, _) = runtime.block_on(project.run(&["--git-timeout", bad, "doctor"]));
        assert_eq!(code, 2, "{bad}: {output}");
        said.push(output.trim().to_owned());
    }
    snapshot!("git_timeout_out_of_bounds", said.join("\n---\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_waits_briefly_for_a_running_create_env_then_names_it() {
    let project = Project::new("https://git.example.test/fleet.git");
    let lock_path = project.dir.path().join(".gitops-bootstrap/dev/lock");
    let held = gitops_bootstrap::lock::EnvLock::acquire("dev", &lock_path).unwrap();
    let (code, output, took) = project.run(&["plan", "dev"]).await;
    assert_eq!(code, 1, "{output}");
    assert!(took >= Duration::from_secs(10), "waited first: {took:?}");
    // The run holding the lock is this test's process; Terraform's own lock is never reached.
    let holder = regex::escape(&format!("(pid {})", std::process::id()));
    snapshot!(
        "plan_on_a_held_lock",
        told(&output),
        extra = [(holder.as_str(), "(pid [this test])")]
    );

    // A run that ends within the wait lets plan go on.
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(held);
    });
    let (code, output, _) = project.run(&["plan", "dev"]).await;
    release.await.unwrap();
    assert_eq!(code, 0, "{output}");
}
