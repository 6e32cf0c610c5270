//! SIGKILL at every step of create-env, teardown and rebuild — when the step starts, inside it
//! and when it ends — then a rerun: the end state equals an uninterrupted run's (the same
//! number of commits, the same cluster objects, the same Terraform resources with the state
//! unlocked, no Terraform left running, and a stale env lock taken over and said so).
//!
//! One table drives it. CI runs a reduced set; `GITOPS_BOOTSTRAP_KILL_MATRIX=full` tries every
//! point (about 80; it takes a while). A sandbox per kill point would be too slow, so one
//! sandbox serves create-env and teardown in turns (each killed run is rerun, checked, and the
//! next command starts from its end state) and another serves rebuild (the cluster wiped before
//! each point).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use testkit::env_config::EnvConfig;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};

use super::objects;
use crate::support::sandbox::{ENV, Run, Sandbox};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    CreateEnv,
    Teardown,
    Rebuild,
}

impl Command {
    fn args(self) -> [&'static str; 3] {
        match self {
            Command::CreateEnv => ["create-env", ENV, "--yes"],
            Command::Teardown => ["teardown", ENV, "--yes"],
            Command::Rebuild => ["rebuild", ENV, "--yes"],
        }
    }

    /// Every step the command reports, in order.
    fn steps(self) -> &'static [&'static str] {
        match self {
            Command::CreateEnv => &[
                "preflight",
                "terraform",
                "connect",
                "config-and-secrets",
                "commit",
                "flux-install",
                "sync",
                "wait-for-apps",
                "summary",
            ],
            Command::Teardown => &[
                "observe",
                "scope",
                "suspend-sync",
                "delete-apps",
                "delete-cloud-resources",
                "flux-uninstall",
                "terraform-destroy",
                "remove-from-git",
                "summary",
            ],
            Command::Rebuild => &[
                "preflight",
                "detect",
                "terraform",
                "connect",
                "config-and-secrets",
                "flux-install",
                "sync",
                "wait-for-apps",
                "summary",
            ],
        }
    }
}

/// When, within a step, the run is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// On its `step_started` event.
    Start,
    /// On its first progress event, or [`MID_STEP`] after it started, whichever comes first
    /// (a step that finishes sooner is killed on `step_finished`).
    Mid,
    /// On its `step_finished` event.
    End,
}

const MID_STEP: Duration = Duration::from_millis(150);

/// A rerun that takes longer hangs.
const RERUN_LIMIT: Duration = Duration::from_secs(180);

#[derive(Debug, Clone, Copy)]
struct KillPoint {
    command: Command,
    step: &'static str,
    at: At,
}

/// What CI tries: the points where a kill used to leave something behind (Terraform mid-apply
/// and mid-destroy, the commit, Flux half installed or half removed, apps half deleted) plus
/// one rebuild mid-install.
const REDUCED: [(Command, &str, At); 8] = [
    (Command::CreateEnv, "terraform", At::Mid),
    (Command::CreateEnv, "commit", At::Mid),
    (Command::CreateEnv, "flux-install", At::End),
    (Command::Teardown, "delete-apps", At::Mid),
    (Command::Teardown, "flux-uninstall", At::Mid),
    (Command::Teardown, "terraform-destroy", At::Mid),
    (Command::Rebuild, "flux-install", At::Mid),
    (Command::Rebuild, "wait-for-apps", At::Start),
];

fn matrix() -> Vec<KillPoint> {
    if std::env::var("GITOPS_BOOTSTRAP_KILL_MATRIX").as_deref() != Ok("full") {
        return REDUCED
            .iter()
            .map(|&(command, step, at)| KillPoint { command, step, at })
            .collect();
    }
    let mut points = Vec::new();
    for command in [Command::CreateEnv, Command::Teardown, Command::Rebuild] {
        for &step in command.steps() {
            for at in [At::Start, At::Mid, At::End] {
                points.push(KillPoint { command, step, at });
            }
        }
    }
    points
}

/// What a run leaves that must not depend on whether it was killed and rerun.
#[derive(Debug, PartialEq, Eq)]
struct EndState {
    /// Commits the run (with its rerun) added to the GitOps branch.
    commits_added: usize,
    /// Every object of the cluster, normalised (see [`objects`]).
    objects: BTreeSet<String>,
    /// The addresses in Terraform's state; `None` when the env's local state is gone.
    terraform: Option<BTreeSet<String>>,
}

fn terraform_dir(sandbox: &Sandbox) -> std::path::PathBuf {
    sandbox.path(".gitops-bootstrap/dev/terraform")
}

/// The resource addresses of Terraform's state, after checking it is whole and unlocked.
fn terraform_state(sandbox: &Sandbox) -> Result<Option<BTreeSet<String>>, String> {
    let dir = terraform_dir(sandbox);
    if dir.join(".terraform.tfstate.lock.info").exists() {
        return Err("Terraform's state is still locked".into());
    }
    let Ok(text) = std::fs::read_to_string(dir.join("terraform.tfstate")) else {
        return Ok(None);
    };
    let state: serde_json::Value =
        serde_json::from_str(&text).map_err(|err| format!("Terraform's state is broken: {err}"))?;
    let addresses = state["resources"]
        .as_array()
        .ok_or("Terraform's state has no resources list")?
        .iter()
        .map(|resource| {
            format!(
                "{} {}.{}",
                resource["module"].as_str().unwrap_or("root"),
                resource["type"].as_str().unwrap_or_default(),
                resource["name"].as_str().unwrap_or_default()
            )
        })
        .collect();
    Ok(Some(addresses))
}

/// Terraform processes still working in the sandbox (an orphan of a killed run).
fn terraform_processes(sandbox: &Sandbox) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cwd.starts_with(sandbox.dir.path()) && cmdline.contains("terraform") {
            found.push(format!("{:?}: {cmdline}", entry.file_name()));
        }
    }
    found
}

async fn end_state(sandbox: &Sandbox, commits_before: usize) -> Result<EndState, String> {
    let orphans = terraform_processes(sandbox);
    if !orphans.is_empty() {
        return Err(format!("Terraform still runs: {orphans:?}"));
    }
    Ok(EndState {
        commits_added: sandbox.log().len() - commits_before,
        objects: objects(&sandbox.cluster.client()).await,
        terraform: terraform_state(sandbox)?,
    })
}

/// Runs `command` to the end; its end state.
async fn uninterrupted(sandbox: &Sandbox, command: Command) -> EndState {
    let commits = sandbox.log().len();
    let run = sandbox.run(&command.args()).await;
    assert_eq!(run.code, 0, "{command:?}: {}", run.output());
    end_state(sandbox, commits)
        .await
        .unwrap_or_else(|err| panic!("{command:?} uninterrupted: {err}"))
}

/// Starts `point`'s command with `--output json` and SIGKILLs it at the point; the events it
/// wrote until then.
async fn kill_at(sandbox: &Sandbox, point: KillPoint) -> Result<Vec<String>, String> {
    let mut args = vec!["--output", "json"];
    args.extend(point.command.args());
    let mut child = sandbox.command(&args).spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let started = format!(r#""event":"step_started","step":"{}""#, point.step);
    let finished = format!(r#""event":"step_finished","step":"{}""#, point.step);
    let progress = format!(r#""event":"progress","step":"{}""#, point.step);
    let mut seen = Vec::new();
    let reached = tokio::time::timeout(Duration::from_secs(240), async {
        let mut in_step = None;
        loop {
            let line = tokio::select! {
                line = lines.next_line() => match line.unwrap() {
                    Some(line) => line,
                    None => return false,
                },
                _ = tokio::time::sleep_until(in_step.unwrap_or_else(tokio::time::Instant::now)),
                    if in_step.is_some() => return true,
            };
            seen.push(line.clone());
            if line.contains(&started) {
                match point.at {
                    At::Start => return true,
                    At::Mid => in_step = Some(tokio::time::Instant::now() + MID_STEP),
                    At::End => {}
                }
            } else if line.contains(&finished) || (in_step.is_some() && line.contains(&progress)) {
                return true;
            }
        }
    })
    .await
    .map_err(|_| "the run did not reach the point within 240 s".to_owned())?;
    // Killed where it stands, like `kill -9` or an OOM kill.
    let _ = child.start_kill();
    let status = child.wait().await.unwrap();
    if !reached {
        return Err(format!("the run ended before the point: {seen:#?}"));
    }
    // The run record is written when the run starts, so a killed run leaves one. Near the end
    // the run may have recorded its success (and a teardown removed its state with the record)
    // before the kill lands.
    let killed = std::os::unix::process::ExitStatusExt::signal(&status).is_some();
    let text = std::fs::read_to_string(sandbox.path(".gitops-bootstrap/dev/run.json"));
    let says = |status: &str| {
        text.as_ref()
            .is_ok_and(|text| text.contains(&format!(r#""status": "{status}""#)))
    };
    let removed_by_teardown = point.command == Command::Teardown && text.is_err();
    if !(says("succeeded") || (killed && says("running")) || removed_by_teardown) {
        return Err(format!(
            "the run record does not say running or succeeded: {text:?}"
        ));
    }
    Ok(seen)
}

/// Kills `point`'s command there, reruns it and compares the end state with `reference`.
async fn try_point(
    sandbox: &Sandbox,
    point: KillPoint,
    reference: &EndState,
) -> Result<(), String> {
    let commits = sandbox.log().len();
    let killed = kill_at(sandbox, point).await?;
    // What the killed run did, for the failure message.
    let events = killed.join("\n");
    let lock = sandbox.path(".gitops-bootstrap/dev/lock");
    let left_its_pid = std::fs::read_to_string(&lock).is_ok_and(|pid| !pid.trim().is_empty());
    let rerun = rerun(sandbox, point.command)
        .await
        .map_err(|err| format!("{err}\nthe killed run: {events}"))?;
    if rerun.code != 0 {
        return Err(format!(
            "the rerun failed: {}\nthe killed run: {events}",
            rerun.output()
        ));
    }
    if left_its_pid && !rerun.stderr.contains("took over env dev's lock") {
        return Err(format!(
            "the rerun did not say it took over the lock: {}",
            rerun.stderr
        ));
    }
    let state = end_state(sandbox, commits).await?;
    if state != *reference {
        return Err(format!(
            "{}the killed run: {events}",
            differences(reference, &state)
        ));
    }
    Ok(())
}

/// Reruns `command`; a rerun that hangs is a failed point, with what it printed until then.
async fn rerun(sandbox: &Sandbox, command: Command) -> Result<Run, String> {
    let mut child = sandbox.command(&command.args()).spawn().unwrap();
    let (mut stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let ended = tokio::time::timeout(RERUN_LIMIT, async {
        let (read_out, read_err) =
            tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        read_out.and(read_err).unwrap();
        child.wait().await.unwrap()
    })
    .await;
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    match ended {
        Ok(status) => Ok(Run {
            code: status.code().unwrap_or(-1),
            stdout: text(&out),
            stderr: text(&err),
        }),
        Err(_) => Err(format!(
            "the rerun hung past {RERUN_LIMIT:?}: {}{}",
            text(&out),
            text(&err)
        )),
    }
}

fn differences(want: &EndState, got: &EndState) -> String {
    let mut text = String::new();
    if want.commits_added != got.commits_added {
        text.push_str(&format!(
            "commits: {} instead of {}\n",
            got.commits_added, want.commits_added
        ));
    }
    for extra in got.objects.difference(&want.objects) {
        text.push_str(&format!("extra object: {extra}\n"));
    }
    for missing in want.objects.difference(&got.objects) {
        text.push_str(&format!("missing object: {missing}\n"));
    }
    if want.terraform != got.terraform {
        text.push_str(&format!(
            "Terraform state: {:?} instead of {:?}\n",
            got.terraform, want.terraform
        ));
    }
    text
}

/// A copy of terraform/existing whose extra resource takes seconds to create and to destroy,
/// so a kill can land while `terraform apply` or `terraform destroy` runs.
fn slow_module(sandbox: &Sandbox) -> std::path::PathBuf {
    let module = sandbox.path("module");
    let existing = Path::new(env!("CARGO_MANIFEST_DIR")).join("terraform/existing");
    crate::support::copy_dir(&existing, &module);
    let slow = r#"
resource "terraform_data" "slow" {
  provisioner "local-exec" {
    command = "sleep 2"
  }
  provisioner "local-exec" {
    when    = destroy
    command = "sleep 2"
  }
}
"#;
    let main = module.join("main.tf");
    let text = std::fs::read_to_string(&main).unwrap() + slow;
    std::fs::write(&main, text).unwrap();
    module
}

/// A sandbox of its own (teardown and rebuild act on the whole cluster) on the slow module.
async fn sandbox() -> Sandbox {
    let sandbox = Sandbox::start_isolated().await;
    write_config(&sandbox);
    sandbox
}

fn write_config(sandbox: &Sandbox) {
    let module = sandbox.path("module");
    if !module.exists() {
        slow_module(sandbox);
    }
    sandbox.write_dev_config(EnvConfig {
        module: Some(module),
        ..sandbox.dev_config()
    });
}

/// The outcome of each point tried, as `(point, error)`.
type Tried = Vec<(KillPoint, Result<(), String>)>;

/// create-env and teardown in turns on one sandbox: each kill point of one is tried from the
/// end state of the other (a plain run stands in where one command has no point left).
async fn create_and_teardown(points: &[KillPoint]) -> Tried {
    let of = |command| -> Vec<KillPoint> {
        points
            .iter()
            .filter(|point| point.command == command)
            .copied()
            .collect()
    };
    let (creates, teardowns) = (of(Command::CreateEnv), of(Command::Teardown));
    if creates.is_empty() && teardowns.is_empty() {
        return Vec::new();
    }
    let sandbox = sandbox().await;
    let created = uninterrupted(&sandbox, Command::CreateEnv).await;
    let torn_down = uninterrupted(&sandbox, Command::Teardown).await;
    let mut tried = Vec::new();
    for turn in 0..creates.len().max(teardowns.len()) {
        for (points, command, reference) in [
            (&creates, Command::CreateEnv, &created),
            (&teardowns, Command::Teardown, &torn_down),
        ] {
            match points.get(turn) {
                Some(&point) => {
                    let outcome = try_point(&sandbox, point, reference).await;
                    tried.push((point, outcome));
                }
                None => drop(uninterrupted(&sandbox, command).await),
            }
        }
    }
    tried
}

/// rebuild after a wipe, killed and rerun, on a sandbox whose cluster is wiped before each
/// point.
async fn rebuild(points: &[KillPoint]) -> Tried {
    let points: Vec<KillPoint> = points
        .iter()
        .filter(|point| point.command == Command::Rebuild)
        .copied()
        .collect();
    if points.is_empty() {
        return Vec::new();
    }
    let mut sandbox = sandbox().await;
    uninterrupted(&sandbox, Command::CreateEnv).await;
    sandbox.wipe_cluster().await;
    write_config(&sandbox);
    let rebuilt = uninterrupted(&sandbox, Command::Rebuild).await;
    let mut tried = Vec::new();
    for point in points {
        sandbox.wipe_cluster().await;
        write_config(&sandbox);
        let outcome = try_point(&sandbox, point, &rebuilt).await;
        tried.push((point, outcome));
    }
    tried
}

#[tokio::test(flavor = "multi_thread")]
async fn every_kill_point_reruns_to_the_end_state_of_an_uninterrupted_run() {
    let points = matrix();
    let (lifecycle, rebuilt) = tokio::join!(create_and_teardown(&points), rebuild(&points));
    let tried: Tried = lifecycle.into_iter().chain(rebuilt).collect();
    assert_eq!(tried.len(), points.len(), "every point was tried");
    let failed: Vec<String> = tried
        .iter()
        .filter_map(|(point, outcome)| {
            let err = outcome.as_ref().err()?;
            Some(format!("{point:?}: {err}"))
        })
        .collect();
    println!(
        "kill points converged / tried: {} / {}",
        tried.len() - failed.len(),
        tried.len()
    );
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
