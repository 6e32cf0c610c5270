//! Running the product as a child process and measuring that process only: its wall time, its
//! own CPU time (user + system, read from /proc while it is a zombie, so Terraform and other
//! children it ran are not counted) and its peak resident set (`VmHWM`, sampled while it runs),
//! with each stdout line stamped when it arrived.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;
use tokio::sync::{mpsc, oneshot};

/// The kernel reports /proc CPU times in USER_HZ ticks, 100 per second on Linux.
const TICKS_PER_SECOND: u64 = 100;
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// One stdout line and when the bench read it.
pub struct Line {
    pub at: SystemTime,
    pub text: String,
}

pub struct Finished {
    pub code: i32,
    /// When the process was started, by the clock the lines are stamped with.
    pub started: SystemTime,
    pub wall: Duration,
    pub cpu: Duration,
    pub peak_rss_kb: u64,
    pub stderr: String,
}

/// A running child: its stdout lines as they come, and its measures once it exits.
pub struct Running {
    pub lines: mpsc::UnboundedReceiver<Line>,
    done: oneshot::Receiver<anyhow::Result<Finished>>,
    seen: Vec<Line>,
}

impl Running {
    /// The next line for which `wanted` holds (lines before it are kept for `finish`).
    pub async fn line_where(&mut self, wanted: impl Fn(&str) -> bool) -> anyhow::Result<&Line> {
        while let Some(line) = self.lines.recv().await {
            let hit = wanted(&line.text);
            self.seen.push(line);
            if hit {
                return Ok(self.seen.last().expect("just pushed"));
            }
        }
        bail!("the process ended before printing the line waited for")
    }

    /// Waits for the exit; returns every stdout line and the measures.
    pub async fn finish(mut self) -> anyhow::Result<(Vec<Line>, Finished)> {
        while let Some(line) = self.lines.recv().await {
            self.seen.push(line);
        }
        let finished = self.done.await.context("the process watcher stopped")??;
        Ok((self.seen, finished))
    }
}

pub fn spawn(mut command: Command) -> anyhow::Result<Running> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let started_at = SystemTime::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {:?}", command.get_program()))?;
    let pid = Pid::from_raw(i32::try_from(child.id())?);
    let stdout = child.stdout.take().context("stdout is piped")?;
    let mut stderr = child.stderr.take().context("stderr is piped")?;
    let (line_tx, lines) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for text in BufReader::new(stdout).lines().map_while(Result::ok) {
            let at = SystemTime::now();
            if line_tx.send(Line { at, text }).is_err() {
                break;
            }
        }
    });
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let (done_tx, done) = oneshot::channel();
    std::thread::spawn(move || {
        let measured = watch(pid, started).and_then(|(wall, cpu, peak_rss_kb)| {
            let status = child.wait().context("reaping the process")?;
            let stderr = stderr_reader.join().unwrap_or_default();
            Ok(Finished {
                code: status.code().unwrap_or(-1),
                started: started_at,
                wall,
                cpu,
                peak_rss_kb,
                stderr,
            })
        });
        let _ = done_tx.send(measured);
    });
    Ok(Running {
        lines,
        done,
        seen: Vec::new(),
    })
}

/// Samples the peak RSS until the process exits, then reads its own CPU time from the zombie
/// (not reaped yet: WNOWAIT), before the caller reaps it.
fn watch(pid: Pid, started: Instant) -> anyhow::Result<(Duration, Duration, u64)> {
    let mut peak_rss_kb = 0;
    loop {
        if let Some(hwm) = vm_hwm_kb(pid) {
            peak_rss_kb = peak_rss_kb.max(hwm);
        }
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG;
        match waitid(Id::Pid(pid), flags).context("waiting for the process")? {
            WaitStatus::StillAlive => std::thread::sleep(SAMPLE_EVERY),
            _ => break,
        }
    }
    let wall = started.elapsed();
    Ok((wall, own_cpu(pid)?, peak_rss_kb))
}

fn vm_hwm_kb(pid: Pid) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of the process itself (its children's times are separate fields).
fn own_cpu(pid: Pid) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name may hold spaces: fields are counted after its closing parenthesis,
    // where field 3 (state) comes first; utime and stime are fields 14 and 15.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |field: usize| -> anyhow::Result<u64> {
        Ok(fields
            .get(field - 3)
            .context("a short /proc stat line")?
            .parse()?)
    };
    let total = ticks(14)? + ticks(15)?;
    Ok(Duration::from_millis(total * 1000 / TICKS_PER_SECOND))
}

/// Milliseconds from `from` to `to` (negative when `to` came first).
pub fn millis_between(from: SystemTime, to: SystemTime) -> f64 {
    match to.duration_since(from) {
        Ok(after) => after.as_secs_f64() * 1000.0,
        Err(before) => -before.duration().as_secs_f64() * 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_child_is_measured_apart_from_its_own_children() {
        let mut command = Command::new("sh");
        // The shell idles while its child burns CPU: the child's time is not the shell's.
        command.args([
            "-c",
            "echo ready; timeout 1 sh -c 'while :; do :; done'; echo done",
        ]);
        let mut running = spawn(command).unwrap();
        assert_eq!(
            running.line_where(|l| l == "ready").await.unwrap().text,
            "ready"
        );
        let (lines, finished) = running.finish().await.unwrap();
        assert_eq!(lines.last().unwrap().text, "done");
        assert_eq!(finished.code, 0);
        assert!(
            finished.wall >= Duration::from_millis(900),
            "{:?}",
            finished.wall
        );
        assert!(
            finished.cpu < Duration::from_millis(300),
            "{:?}",
            finished.cpu
        );
        assert!(finished.peak_rss_kb > 0);
    }
}
