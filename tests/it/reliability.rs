//! Reliability through the real binary: Git servers that accept and never answer, interrupts
//! (SIGINT, SIGTERM, twice) while something hangs, tokens refused over plain http, and a table
//! of bad inputs that must end with the documented exit code, the cause and the fix, writing
//! nothing. The cases that need a cluster use the sandbox (test cluster, HTTPS Git server).

use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt as _, BufReader};

/// A project directory with a config for env `dev` on terraform/existing and the repository at
/// `repo_url`; tokens come from the environment the runs set.
struct Project {
    dir: tempfile::TempDir,
}

const PUSH_TOKEN: &str = "push-canary-3f9a1c";
const READ_TOKEN: &str = "read-canary-8d2e77";

impl Project {
    fn new(repo_url: &str) -> Project {
        Project::with_repository(&format!(
            r#"url = "{repo_url}"
author_name = "Bootstrap Bot"
author_email = "bot@example.test"
push = {{ method = "token", token_env = "REL_GIT_TOKEN" }}
read = {{ token_env = "REL_GIT_READ_TOKEN" }}"#
        ))
    }

    fn with_repository(repository: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\n").unwrap();
        let project = Project { dir };
        project.write_config(&format!(
            r#"[repository]
{repository}

[envs.dev]
module = "{root}/terraform/existing"
profile = "standard"
flux_version = "v2.4.0"

[envs.dev.variables]
cluster_name = "dev"
kubeconfig_path = "{kubeconfig}"
"#,
            root = env!("CARGO_MANIFEST_DIR"),
            kubeconfig = kubeconfig.display()
        ));
        project
    }

    fn write_config(&self, text: &str) {
        std::fs::write(self.dir.path().join("gitops-bootstrap.toml"), text).unwrap();
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_gitops-bootstrap"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("GITOPS_BOOTSTRAP_CONFIG")
            .env_remove("GITOPS_BOOTSTRAP_GIT_TIMEOUT")
            .env("REL_GIT_TOKEN", PUSH_TOKEN)
            .env("REL_GIT_READ_TOKEN", READ_TOKEN)
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"))
            .env_remove("SOPS_AGE_KEY_FILE")
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    async fn run(&self, args: &[&str]) -> (i32, String, Duration) {
        let started = Instant::now();
        let output = tokio::time::timeout(Duration::from_secs(120), self.command(args).output())
            .await
            .expect("the run hung past the test's limit")
            .unwrap();
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code().unwrap_or(-1), text, started.elapsed())
    }

    /// Nothing the tool writes for an env exists beyond its lock file and run record.
    fn assert_no_clone(&self) {
        let repo = self.dir.path().join(".gitops-bootstrap/dev/repo");
        assert!(
            !repo.join(".git").exists(),
            "no working clone was made at {}",
            repo.display()
        );
    }
}

/// A TCP port that accepts connections (the kernel completes the handshake for the backlog)
/// and never answers: a Git host that hangs.
fn silent_server() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_git_server_fails_with_what_did_not_answer_and_for_how_long() {
    let (_listener, port) = silent_server();
    let known_hosts = tempfile::NamedTempFile::new().unwrap();
    for url in [
        format!("https://127.0.0.1:{port}/fleet.git"),
        format!("ssh://git@127.0.0.1:{port}/fleet.git"),
    ] {
        let project = if url.starts_with("ssh") {
            Project::with_repository(&format!(
                r#"url = "{url}"
author_name = "Bootstrap Bot"
author_email = "bot@example.test"
push = {{ method = "ssh_key", key_file = "{0}", known_hosts = "{0}" }}"#,
                known_hosts.path().display()
            ))
        } else {
            Project::new(&url)
        };
        for args in [
            &["--git-timeout", "2s", "create-env", "dev", "--yes"][..],
            &["--git-timeout", "2s", "doctor", "dev"][..],
        ] {
            let (code, output, took) = project.run(args).await;
            assert!(took < Duration::from_secs(20), "took {took:?}: {output}");
            assert!(
                output.contains(&format!("{url} did not answer within 2s")),
                "{args:?}: {output}"
            );
            if args[2] == "create-env" {
                assert_eq!(code, 3, "a timeout exits 3: {output}");
                assert!(output.contains("--git-timeout"), "the hint names the knob");
                project.assert_no_clone();
            }
        }
    }
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
        assert!(
            events.contains(r#""step":"preflight","outcome":"failed""#),
            "the step is closed in the event stream: {events}"
        );
        assert!(
            events.contains("interrupted during step preflight"),
            "{sig}: {events}"
        );
        assert!(events.trim_end().ends_with('}') && events.contains(r#""event":"result""#));
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
    assert!(
        events.contains("interrupted a second time: stopped at once"),
        "{events}"
    );
}

#[test]
fn git_timeout_is_bounded() {
    let project = Project::new("https://git.example.test/fleet.git");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for bad in ["0s", "2h", "soon"] {
        let (code, output, _) = runtime.block_on(project.run(&["--git-timeout", bad, "doctor"]));
        assert_eq!(code, 2, "{bad}: {output}");
        assert!(output.contains("--git-timeout"), "{output}");
    }
}
