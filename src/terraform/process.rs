//! Runs a built [`TfCommand`]: the child gets its own process group, both pipes are drained
//! while it runs, `-json` stdout becomes events, and cancellation is a SIGINT to the group,
//! a grace period for Terraform to stop and release its state lock, then SIGKILL. A `-json`
//! stream that stays silent longer than the idle bound is stopped the same way: Terraform
//! reports progress every 10 s while it creates, reads or destroys anything, so silence means
//! it is stuck.

use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use super::command::{StdoutMode, TfCommand};
use super::error::{StateLock, TerraformError};
use super::events::{Diagnostic, Severity, TfEvent, parse_event_line, parse_stderr_errors};
use super::redact::Redactor;

/// Lines of stderr kept in an error when Terraform printed no diagnostic we could read.
const STDERR_TAIL_LINES: usize = 15;

/// The idle bound when `main` set none (unit tests, library callers).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
static IDLE_TIMEOUT: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();

/// How long a `-json` Terraform run may print nothing before it is stopped
/// (`--terraform-idle-timeout`); set once, from `main`.
pub fn set_idle_timeout(idle: Duration) {
    let _ = IDLE_TIMEOUT.set(idle);
}

fn idle_timeout() -> Duration {
    IDLE_TIMEOUT.get().copied().unwrap_or(DEFAULT_IDLE_TIMEOUT)
}

/// What a successful run produced.
pub(crate) struct Finished {
    /// The whole stdout in [`StdoutMode::Capture`]; empty for event streams.
    pub stdout: SecretString,
}

/// Runs `command` to completion. Events of a `-json` stream go to `on_event` as they arrive.
pub(crate) async fn run(
    command: &TfCommand,
    on_event: &mut (dyn FnMut(&TfEvent) + Send),
    cancel: &CancellationToken,
    grace: Duration,
) -> Result<Finished, TerraformError> {
    let name = command.subcommand();
    if cancel.is_cancelled() {
        return Err(TerraformError::Interrupted {
            command: name,
            forced: false,
        });
    }
    let io_error = |source| TerraformError::Io {
        command: name,
        source,
    };
    let mut child = spawn(command)?;
    let _running = Running::start();
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io_error(missing_pipe()))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| io_error(missing_pipe()))?;

    let mut json_errors = Vec::new();
    let redactor = command.redactor();
    let idle = idle_timeout();
    // Cancelled by the run (Ctrl-C) or by a silent stream: either stops the child.
    let stop = cancel.child_token();
    let stdout_task = drain_stdout(
        stdout,
        command.stdout_mode(),
        redactor,
        on_event,
        &mut json_errors,
        (idle, &stop),
    );
    let stderr_task = read_all(stderr);
    let wait_task = wait_or_interrupt(&mut child, &stop, grace);
    let (stdout, stderr, outcome) = tokio::join!(stdout_task, stderr_task, wait_task);
    let (status, interrupted) = outcome.map_err(io_error)?;
    let stdout = stdout.map_err(io_error)?;
    let ended = Ended {
        status,
        interrupted,
        silent: interrupted.is_some() && !cancel.is_cancelled(),
        json_errors,
        stderr: stderr.map_err(io_error)?,
    };
    ended.judge(command, idle)?;
    tracing::debug!(command = name, "terraform finished");
    Ok(Finished {
        stdout: SecretString::from(stdout),
    })
}

/// How a child ended, to be told apart: success, stopped (by Ctrl-C or for its silence), or
/// failed with diagnostics.
struct Ended {
    status: ExitStatus,
    /// Stopped by us; `Some(true)` when it had to be killed after the grace period.
    interrupted: Option<bool>,
    /// Stopped for its silence, not by the run's cancellation.
    silent: bool,
    json_errors: Vec<Diagnostic>,
    stderr: String,
}

impl Ended {
    fn judge(self, command: &TfCommand, idle: Duration) -> Result<(), TerraformError> {
        let name = command.subcommand();
        match self.interrupted {
            Some(forced) if self.silent => {
                tracing::debug!(command = name, ?idle, "terraform went silent");
                return Err(TerraformError::Silent {
                    command: name,
                    idle,
                    forced,
                });
            }
            Some(forced) => {
                return Err(TerraformError::Interrupted {
                    command: name,
                    forced,
                });
            }
            None if self.status.success() => return Ok(()),
            None => {}
        }
        let errors: Vec<Diagnostic> =
            failure_diagnostics(self.json_errors, &self.stderr, self.status)
                .into_iter()
                .map(|diagnostic| command.redactor().diagnostic(diagnostic))
                .collect();
        let dir = command.dir().unwrap_or(command.program()).to_path_buf();
        match errors.iter().find_map(StateLock::from_diagnostic) {
            Some(lock) => Err(TerraformError::StateLocked {
                command: name,
                dir,
                lock: Box::new(lock),
            }),
            None => Err(TerraformError::Failed {
                command: name,
                dir,
                errors,
            }),
        }
    }
}

/// How many Terraform children are running now: an interrupt waits for them (they get their
/// grace period to release the state lock) rather than abandoning the run at once.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Whether a Terraform child of this process is running.
pub fn child_running() -> bool {
    RUNNING.load(Ordering::SeqCst) > 0
}

/// Counts one running child until dropped.
struct Running;

impl Running {
    fn start() -> Running {
        RUNNING.fetch_add(1, Ordering::SeqCst);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::SeqCst);
    }
}

fn spawn(command: &TfCommand) -> Result<Child, TerraformError> {
    let mut child = Command::new(command.program());
    child
        .args(command.argv())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: a Ctrl-C in our terminal does not reach it unasked, and our SIGINT
        // reaches Terraform and the commands it started (provisioners) together.
        .process_group(0)
        .kill_on_drop(true);
    private_and_tied_to_parent(&mut child);
    if let Some(dir) = command.dir() {
        child.current_dir(dir);
    }
    for name in command.removed_env() {
        child.env_remove(name);
    }
    for (name, value) in command.env() {
        child.env(name, value);
    }
    for (name, value) in command.secret_env() {
        child.env(name, secrecy::ExposeSecret::expose_secret(value));
    }
    tracing::debug!(command = command.subcommand(), argv = ?command.argv(), "starting terraform");
    child.spawn().map_err(|source| TerraformError::Spawn {
        command: command.subcommand(),
        source,
    })
}

/// Files Terraform writes (local state, plan files, backups) hold sensitive values in clear:
/// only their owner may read them. And the kernel interrupts Terraform when this process dies,
/// even by SIGKILL: it then stops as after Ctrl-C, releasing its state lock, instead of running
/// on as an orphan that holds the lock. (SIGINT, not SIGKILL: Terraform must write its state
/// before it goes.)
#[cfg(target_os = "linux")]
fn private_and_tied_to_parent(child: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls
    // (umask, prctl, getppid, kill).
    unsafe {
        child.pre_exec(move || {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
            nix::sys::prctl::set_pdeathsig(Signal::SIGINT)?;
            // The parent may have died before the line above: then nobody would signal us.
            if nix::unistd::getppid().as_raw() as u32 != parent {
                nix::sys::signal::raise(Signal::SIGINT)?;
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn private_and_tied_to_parent(child: &mut Command) {
    // SAFETY: umask is async-signal-safe.
    unsafe {
        child.pre_exec(|| {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
            Ok(())
        });
    }
}

fn missing_pipe() -> std::io::Error {
    std::io::Error::other("child pipe was not set up")
}

/// Waits for the child; on cancellation interrupts it gracefully. Returns the exit status and,
/// when interrupted, whether it had to be killed.
async fn wait_or_interrupt(
    child: &mut Child,
    cancel: &CancellationToken,
    grace: Duration,
) -> std::io::Result<(ExitStatus, Option<bool>)> {
    let pid = child.id().map(|id| Pid::from_raw(id as i32));
    tokio::select! {
        status = child.wait() => return Ok((status?, None)),
        () = cancel.cancelled() => {}
    }
    let Some(group) = pid else {
        return Ok((child.wait().await?, Some(false)));
    };
    signal_group(group, Signal::SIGINT);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => Ok((status?, Some(false))),
        Err(_elapsed) => {
            signal_group(group, Signal::SIGKILL);
            Ok((child.wait().await?, Some(true)))
        }
    }
}

fn signal_group(group: Pid, signal: Signal) {
    // ESRCH only means the group is already gone, which is what we want.
    if let Err(err) = killpg(group, signal) {
        tracing::debug!(%err, ?signal, "signalling terraform's process group");
    }
}

/// Reads stdout to its end: parsed into events (error diagnostics also kept for the error),
/// or captured whole. An event stream silent for `idle` cancels `stop` (and is read on until
/// the stopped child closes it).
async fn drain_stdout(
    stdout: impl AsyncRead + Unpin,
    mode: StdoutMode,
    redactor: &Redactor,
    on_event: &mut (dyn FnMut(&TfEvent) + Send),
    json_errors: &mut Vec<Diagnostic>,
    (idle, stop): (Duration, &CancellationToken),
) -> std::io::Result<String> {
    match mode {
        StdoutMode::Capture => read_all(stdout).await,
        StdoutMode::JsonEvents => {
            let mut lines = BufReader::new(stdout).lines();
            loop {
                let next = if stop.is_cancelled() {
                    lines.next_line().await
                } else {
                    match tokio::time::timeout(idle, lines.next_line()).await {
                        Ok(next) => next,
                        Err(_silent) => {
                            stop.cancel();
                            continue;
                        }
                    }
                };
                let Some(line) = next? else {
                    break;
                };
                let Some(event) = parse_event_line(&line) else {
                    continue;
                };
                let event = redactor.event(event);
                if let TfEvent::Diagnostic(diagnostic) = &event
                    && diagnostic.severity == Severity::Error
                {
                    json_errors.push(diagnostic.clone());
                }
                on_event(&event);
            }
            Ok(String::new())
        }
    }
}

async fn read_all(pipe: impl AsyncRead + Unpin) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    BufReader::new(pipe).read_to_end(&mut bytes).await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The errors to show for a failed run: the `-json` diagnostics, else those printed on
/// stderr, else the end of stderr. Warnings (a missing CLI config file, deprecations) are
/// never the reason.
fn failure_diagnostics(
    json_errors: Vec<Diagnostic>,
    stderr: &str,
    status: ExitStatus,
) -> Vec<Diagnostic> {
    if !json_errors.is_empty() {
        return json_errors;
    }
    let stderr_errors = parse_stderr_errors(stderr);
    if !stderr_errors.is_empty() {
        return stderr_errors;
    }
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    let tail = lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join("\n");
    vec![Diagnostic {
        severity: Severity::Error,
        summary: format!("exited with {status}"),
        detail: tail,
        address: None,
    }]
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn stderr_tail_is_the_last_resort() {
        let status = ExitStatus::from_raw(1 << 8);
        let errors = failure_diagnostics(Vec::new(), "one\n\ntwo\n", status);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].summary, "exited with exit status: 1");
        assert_eq!(errors[0].detail, "one\ntwo");

        let json = vec![Diagnostic {
            severity: Severity::Error,
            summary: "from json".into(),
            detail: String::new(),
            address: None,
        }];
        let errors = failure_diagnostics(json, "Error: from stderr\n", status);
        assert_eq!(errors[0].summary, "from json");
        let errors = failure_diagnostics(Vec::new(), "Error: from stderr\n", status);
        assert_eq!(errors[0].summary, "from stderr");
    }
}
