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
            events.contains("step preflight failed: interrupted"),
            "{sig}: {events}"
        );
        let record =
            std::fs::read_to_string(project.dir.path().join(".gitops-bootstrap/dev/run.json"))
                .unwrap();
        assert!(
            record.contains(r#""status": "interrupted""#),
            "the run record says so: {record}"
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

/// One bad input: how to make it, and what the run must answer.
struct Bad {
    name: &'static str,
    /// `(from, to)` replacements in the project's config text.
    edit: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    code: i32,
    /// Fragments of the error (the cause) and of the hint (the fix).
    says: &'static [&'static str],
}

const CREATE: &[&str] = &["create-env", "dev", "--yes"];

fn bad_inputs() -> Vec<Bad> {
    let bad = |name, edit, args, code, says| Bad {
        name,
        edit,
        args,
        env: &[],
        code,
        says,
    };
    vec![
        // The config file.
        bad(
            "not TOML",
            &[("[envs.dev]", "[envs.dev")],
            CREATE,
            2,
            &["invalid config", "hint: the file must be TOML"],
        ),
        bad(
            "unknown key",
            &[("profile = ", "profil = ")],
            CREATE,
            2,
            &["unknown field `profil`", "config schema"],
        ),
        bad(
            "wrong type",
            &[("profile = \"standard\"", "profile = 3")],
            CREATE,
            2,
            &["invalid type", "each key's type"],
        ),
        bad(
            "missing key",
            &[("profile = \"standard\"\n", "")],
            CREATE,
            2,
            &["missing field `profile`", "required"],
        ),
        bad(
            "a token in the file",
            &[("author_name = ", "token = \"ghp_x\"\nauthor_name = ")],
            CREATE,
            2,
            &["unknown field `token`", "no place for secret values"],
        ),
        bad(
            "no envs",
            &[
                ("[envs.dev]", "[other]"),
                ("[envs.dev.variables]", "[other.variables]"),
            ],
            CREATE,
            2,
            &["invalid config", "hint:"],
        ),
        bad(
            "plain http with a token",
            &[("https://git.example.test", "http://git.example.test")],
            CREATE,
            2,
            &["plain http://", "allow_insecure_http = true"],
        ),
        bad(
            "URL host:port without scheme",
            &[(
                "https://git.example.test/fleet.git",
                "git.example.test:8443/fleet.git",
            )],
            CREATE,
            2,
            &["has no scheme", "https://git.example.test:8443/fleet.git"],
        ),
        bad(
            "URL host/path without scheme",
            &[(
                "https://git.example.test/fleet.git",
                "git.example.test/fleet.git",
            )],
            CREATE,
            2,
            &["has no scheme", "https://git.example.test/fleet.git"],
        ),
        bad(
            "scp-like URL",
            &[(
                "https://git.example.test/fleet.git",
                "git@git.example.test:org/fleet.git",
            )],
            CREATE,
            2,
            &["ssh://git@git.example.test/org/fleet.git"],
        ),
        bad(
            "ftp URL",
            &[("https://git.example.test", "ftp://git.example.test")],
            CREATE,
            2,
            &["scheme `ftp`"],
        ),
        bad(
            "token in the URL",
            &[(
                "https://git.example.test",
                "https://ghp_abc@git.example.test",
            )],
            CREATE,
            2,
            &["carries credentials"],
        ),
        bad(
            "cluster_name with a space",
            &[("cluster_name = \"dev\"", "cluster_name = \"my cluster\"")],
            CREATE,
            2,
            &["must be a cluster name"],
        ),
        bad(
            "cluster_name with a slash",
            &[("cluster_name = \"dev\"", "cluster_name = \"a/b\"")],
            CREATE,
            2,
            &["must be a cluster name"],
        ),
        bad(
            "cluster_name ..",
            &[("cluster_name = \"dev\"", "cluster_name = \"..\"")],
            CREATE,
            2,
            &["must be a cluster name"],
        ),
        bad(
            "flux_version",
            &[("v2.4.0", "2.4")],
            CREATE,
            2,
            &["flux_version"],
        ),
        bad(
            "module missing",
            &[("terraform/existing", "terraform/nowhere")],
            CREATE,
            2,
            &["not a directory", "point `module`"],
        ),
        bad(
            "branch name",
            &[("author_name", "branch = \"a..b\"\nauthor_name")],
            CREATE,
            2,
            &["valid Git branch name"],
        ),
        bad(
            "repository path escapes",
            &[("author_name", "path = \"../x\"\nauthor_name")],
            CREATE,
            2,
            &["relative path inside the repository"],
        ),
        bad(
            "author_email",
            &[("bot@example.test", "bot")],
            CREATE,
            2,
            &["must be an email address"],
        ),
        bad(
            "token_env holds a value",
            &[("REL_GIT_TOKEN", "ghp_secretvalue")],
            CREATE,
            2,
            &["NAME of an environment variable"],
        ),
        bad(
            "secret-looking plain variable",
            &[(
                "cluster_name = \"dev\"",
                "cluster_name = \"dev\"\ndb_password = \"x\"",
            )],
            CREATE,
            2,
            &["looks like a secret"],
        ),
        bad(
            "variable set twice",
            &[(
                "[envs.dev.variables]",
                "[envs.dev.secret_variables]\ncluster_name = \"REL_X\"\n\n[envs.dev.variables]",
            )],
            CREATE,
            2,
            &["also in secret_variables"],
        ),
        bad(
            "backend type",
            &[(
                "[envs.dev.variables]",
                "[envs.dev.backend]\ntype = \"S3!\"\n\n[envs.dev.variables]",
            )],
            CREATE,
            2,
            &["backend type"],
        ),
        bad(
            "var file missing",
            &[(
                "flux_version = \"v2.4.0\"",
                "flux_version = \"v2.4.0\"\nvar_files = [\"nope.tfvars\"]",
            )],
            CREATE,
            2,
            &["not a file", "relative to the config file"],
        ),
        bad(
            "flux_manifests over http",
            &[(
                "flux_version = \"v2.4.0\"",
                "flux_version = \"v2.4.0\"\nflux_manifests = \"http://example.test/x.yaml\"",
            )],
            CREATE,
            2,
            &["https:// URL"],
        ),
        bad(
            "env name in the file",
            &[
                ("[envs.dev]", "[envs.Dev]"),
                ("[envs.dev.variables]", "[envs.Dev.variables]"),
            ],
            &["doctor"],
            1,
            &["DNS-1123 label"],
        ),
        // Names on the command line.
        bad(
            "env ../x",
            &[],
            &["create-env", "../x", "--yes"],
            2,
            &["unknown environment `../x`", "known environments: dev"],
        ),
        bad(
            "env uppercase",
            &[],
            &["create-env", "DEV", "--yes"],
            2,
            &["unknown environment `DEV`"],
        ),
        bad(
            "env empty",
            &[],
            &["create-env", "", "--yes"],
            2,
            &["unknown environment ``"],
        ),
        bad(
            "env 300 characters",
            &[],
            Box::leak(
                vec![
                    "create-env",
                    Box::leak("e".repeat(300).into_boxed_str()) as &str,
                    "--yes",
                ]
                .into_boxed_slice(),
            ),
            2,
            &["unknown environment"],
        ),
        bad(
            "env unicode",
            &[],
            &["create-env", "dév", "--yes"],
            2,
            &["unknown environment `dév`"],
        ),
        bad(
            "profile ../x",
            &[],
            &["create-env", "dev", "--yes", "--profile", "../x"],
            2,
            &["--profile must be a directory name"],
        ),
        bad(
            "profile with a space",
            &[],
            &["create-env", "dev", "--yes", "--profile", "my profile"],
            2,
            &["must be a directory name"],
        ),
        bad(
            "profile unicode",
            &[],
            &["create-env", "dev", "--yes", "--profile", "stándard"],
            2,
            &["must be a directory name"],
        ),
        // Flags.
        bad(
            "--timeout 0s",
            &[],
            &["create-env", "dev", "--yes", "--timeout", "0s"],
            2,
            &["0s is out of range"],
        ),
        bad(
            "--timeout absurd",
            &[],
            &["create-env", "dev", "--yes", "--timeout", "99999999999999h"],
            2,
            &["--timeout"],
        ),
        bad(
            "--timeout words",
            &[],
            &["create-env", "dev", "--yes", "--timeout", "soon"],
            2,
            &["not a duration"],
        ),
        bad(
            "--git-timeout 0s",
            &[],
            &["--git-timeout", "0s", "doctor"],
            2,
            &["out of range"],
        ),
        bad(
            "--git-timeout 2h",
            &[],
            &["--git-timeout", "2h", "doctor"],
            2,
            &["out of range"],
        ),
        bad(
            "not interactive without --yes",
            &[],
            &["create-env", "dev"],
            2,
            &["nobody can confirm", "pass --yes"],
        ),
        bad(
            "unknown flag",
            &[],
            &["create-env", "dev", "--yes", "--force"],
            2,
            &["--force"],
        ),
        bad(
            "--output yaml",
            &[],
            &["--output", "yaml", "doctor"],
            2,
            &["yaml"],
        ),
        bad(
            "config file missing",
            &[],
            &["--config", "nope.toml", "create-env", "dev", "--yes"],
            2,
            &["failed to read config file", "pass the config file's path"],
        ),
        Bad {
            name: "push token unset",
            edit: &[],
            args: CREATE,
            env: &[("REL_GIT_TOKEN", "")],
            code: 2,
            says: &[
                "environment variable REL_GIT_TOKEN is not set",
                "export REL_GIT_TOKEN",
            ],
        },
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_inputs_end_with_their_exit_code_cause_and_fix_and_write_nothing() {
    let base = Project::new("https://git.example.test/fleet.git");
    let base_config =
        std::fs::read_to_string(base.dir.path().join("gitops-bootstrap.toml")).unwrap();
    let cases = bad_inputs();
    let mut failures = Vec::new();
    for case in &cases {
        let project = Project::new("https://git.example.test/fleet.git");
        let mut config = base_config.replace(
            &base.dir.path().display().to_string(),
            &project.dir.path().display().to_string(),
        );
        for (from, to) in case.edit {
            assert!(
                config.contains(from),
                "{}: `{from}` not in the config",
                case.name
            );
            config = config.replace(from, to);
        }
        project.write_config(&config);
        let mut command = project.command(case.args);
        for (key, value) in case.env {
            command.env(key, value);
        }
        let output = command.output().await.unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let code = output.status.code().unwrap_or(-1);
        let missing: Vec<_> = case.says.iter().filter(|s| !text.contains(**s)).collect();
        if code != case.code || !missing.is_empty() {
            failures.push(format!(
                "{}: exit {code} (want {}), missing {missing:?}:\n{text}",
                case.name, case.code
            ));
        }
        // Nothing half-written: no state for the env, no key, no temp file.
        let state = project.dir.path().join(".gitops-bootstrap/dev");
        let written: Vec<_> = walk(project.dir.path())
            .into_iter()
            .filter(|path| {
                !path.ends_with("gitops-bootstrap.toml")
                    && !path.ends_with("kubeconfig")
                    && !path.starts_with(&state) // the lock file alone is allowed
            })
            .collect();
        if !written.is_empty() || state.join("repo").exists() {
            failures.push(format!("{}: left {written:?}", case.name));
        }
    }
    assert!(cases.len() >= 45, "{} cases", cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_waits_briefly_for_a_running_create_env_then_names_it() {
    let project = Project::new("https://git.example.test/fleet.git");
    let lock_path = project.dir.path().join(".gitops-bootstrap/dev/lock");
    let held = gitops_bootstrap::lock::EnvLock::acquire("dev", &lock_path).unwrap();
    let (code, output, took) = project.run(&["plan", "dev"]).await;
    assert_eq!(code, 1, "{output}");
    assert!(took >= Duration::from_secs(10), "waited first: {took:?}");
    assert!(
        output.contains(&format!(
            "environment dev is in use by another gitops-bootstrap run (pid {})",
            std::process::id()
        )),
        "{output}"
    );
    assert!(
        !output.contains("Error acquiring the state lock"),
        "{output}"
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

mod with_sandbox {
    use std::time::Duration;

    use super::walk;
    use crate::support::sandbox::{ENV, Sandbox};

    #[tokio::test(flavor = "multi_thread")]
    async fn a_file_that_is_not_flux_is_refused_in_preflight_and_nothing_is_committed() {
        let sandbox = Sandbox::start().await;
        sandbox.write_config();
        let seeded = sandbox.log();
        let not_flux = sandbox.path("hostname");
        std::fs::write(&not_flux, "buildhost\n").unwrap();
        let run = sandbox
            .run(&[
                "create-env",
                ENV,
                "--yes",
                "--flux-manifests",
                not_flux.to_str().unwrap(),
            ])
            .await;
        assert_eq!(run.code, 2, "{}", run.output());
        assert!(
            run.stderr.contains("step preflight failed")
                && run.stderr.contains("not a Flux install manifest"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("nothing was committed"),
            "{}",
            run.stderr
        );
        assert_eq!(sandbox.log(), seeded, "no commit");
        assert!(
            !run.stderr.contains("▶ terraform"),
            "stopped before Terraform"
        );
    }

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
                    if let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse().ok())
                    {
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
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions())
            & 0o777
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
        let kubeconfig = std::fs::read_to_string(sandbox.cluster.kubeconfig_path()).unwrap();
        let cluster_token = kubeconfig
            .lines()
            .find_map(|line| line.trim().strip_prefix("token:"))
            .map(|token| token.trim().trim_matches('"').to_owned())
            .expect("the test cluster's kubeconfig has a token");
        let age_key_file = sandbox.path("xdg/gitops-bootstrap/age/dev.agekey");
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

    const CREATE: [&str; 3] = ["create-env", ENV, "--yes"];

    fn age_key(sandbox: &Sandbox) -> std::path::PathBuf {
        sandbox.path("xdg/gitops-bootstrap/age/dev.agekey")
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn inputs_that_would_fail_later_stop_preflight_before_any_key_or_commit() {
        let sandbox = Sandbox::start().await;
        sandbox.write_config();
        let seeded = sandbox.log();
        let wrong_read = "wrong-read-token-41c7";
        type Case = (
            &'static str,
            Vec<(&'static str, &'static str)>,
            &'static [&'static str],
        );
        let cases: [Case; 2] = [
            (
                "wrong read token",
                vec![("SANDBOX_GIT_READ_TOKEN", wrong_read)],
                &[
                    "Flux's read token (SANDBOX_GIT_READ_TOKEN) cannot read",
                    "put a token with read access",
                ],
            ),
            (
                "unset secret variable",
                vec![("SANDBOX_CLUSTER_SECRETS", "")],
                &["environment variable SANDBOX_CLUSTER_SECRETS is not set"],
            ),
        ];
        for (name, env, says) in cases {
            let mut command = sandbox.command(&CREATE);
            for (key, value) in &env {
                if value.is_empty() {
                    command.env_remove(key);
                } else {
                    command.env(key, value);
                }
            }
            let output = command.output().await.unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
            assert!(stderr.contains("step preflight failed"), "{name}: {stderr}");
            for fragment in says {
                assert!(stderr.contains(fragment), "{name}: {stderr}");
            }
            assert!(
                !stderr.contains(wrong_read),
                "{name}: the token is never shown"
            );
            assert!(
                !age_key(&sandbox).exists(),
                "{name}: no age key was written"
            );
            assert_eq!(sandbox.log(), seeded, "{name}: no commit");
        }

        let config = sandbox
            .config_toml(sandbox.cluster.kubeconfig_path(), &sandbox.repo_url())
            .replace("branch = \"main\"", "branch = \"nope\"");
        std::fs::write(sandbox.path("gitops-bootstrap.toml"), config).unwrap();
        let run = sandbox.run(&CREATE).await;
        assert_eq!(run.code, 2, "{}", run.output());
        assert!(
            run.stderr.contains("branch nope does not exist in"),
            "a missing branch is not a missing profile: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("profile standard does not exist"));
    }

    /// The steps create-env is killed at (SIGKILL when the step starts). The reduced set runs
    /// in CI; `GITOPS_BOOTSTRAP_KILL_MATRIX=full` tries every step.
    fn kill_points() -> Vec<&'static str> {
        let all = [
            "preflight",
            "terraform",
            "connect",
            "config-and-secrets",
            "commit",
            "flux-install",
            "sync",
            "wait-for-apps",
            "summary",
        ];
        if std::env::var("GITOPS_BOOTSTRAP_KILL_MATRIX").as_deref() == Ok("full") {
            all.to_vec()
        } else {
            vec!["commit", "flux-install", "wait-for-apps"]
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_run_killed_at_a_step_reruns_to_one_bootstrap_commit() {
        use tokio::io::AsyncBufReadExt as _;
        let mut converged = 0;
        let points = kill_points();
        for step in &points {
            let sandbox = Sandbox::start().await;
            sandbox.write_config();
            let seeded = sandbox.log().len();
            let mut child = sandbox
                .command(&["--output", "json", "create-env", ENV, "--yes"])
                .spawn()
                .unwrap();
            let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
            let started = format!(r#""event":"step_started","step":"{step}""#);
            let reached = tokio::time::timeout(Duration::from_secs(240), async {
                while let Some(line) = lines.next_line().await.unwrap() {
                    if line.contains(&started) {
                        return true;
                    }
                }
                false
            })
            .await
            .expect("the run reached the step in time");
            assert!(reached, "{step}: never started");
            child.start_kill().unwrap();
            child.wait().await.unwrap();
            let record =
                std::fs::read_to_string(sandbox.path(".gitops-bootstrap/dev/run.json")).unwrap();
            assert!(
                record.contains(r#""status": "running""#),
                "{step}: a killed run leaves its record: {record}"
            );

            let rerun = sandbox.run(&CREATE).await;
            assert_eq!(rerun.code, 0, "{step}: {}", rerun.output());
            assert!(
                rerun.stderr.contains("took over env dev's lock"),
                "{step}: the stale lock is said: {}",
                rerun.stderr
            );
            assert_eq!(
                sandbox.log().len(),
                seeded + 1,
                "{step}: exactly one bootstrap commit"
            );
            let state = std::fs::read_to_string(
                sandbox.path(".gitops-bootstrap/dev/terraform/terraform.tfstate"),
            )
            .unwrap();
            assert!(
                state.contains("\"serial\""),
                "{step}: Terraform state intact"
            );
            assert!(
                !sandbox
                    .path(".gitops-bootstrap/dev/terraform/.terraform.tfstate.lock.info")
                    .exists(),
                "{step}: Terraform state unlocked"
            );
            converged += 1;
        }
        assert_eq!(converged, points.len(), "kill points converged / tried");
    }
}
