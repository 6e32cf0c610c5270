//! The step runner. A driver is an explicit list of named steps written in one function: each
//! step is a call to [`Steps::step`] with a phase that takes typed inputs and returns a typed
//! value, which the driver hands to later steps. The runner announces each step, times it,
//! keeps it in the run record, and stops the run when a step fails or the user interrupts.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::error::{Error, ExitStatus, Result};
use crate::record::{RunRecord, RunStatus, StepRecord};
use crate::report::{Event, Reporter, StepOutcome};

/// What a step did after observing the current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It changed something (or only looked, for steps that never change anything).
    Done(String),
    /// The desired state was already there: nothing was changed.
    UpToDate(String),
}

/// A workflow run in progress: the reporter it reports to, the user's interrupt, and the run
/// record that collects every step's timing.
pub struct Steps<'r> {
    reporter: &'r dyn Reporter,
    cancel: CancellationToken,
    record: RunRecord,
}

impl<'r> Steps<'r> {
    pub fn new(reporter: &'r dyn Reporter, cancel: CancellationToken, record: RunRecord) -> Self {
        Steps {
            reporter,
            cancel,
            record,
        }
    }

    /// Runs one named step and returns its typed value. Cancellation is checked before the
    /// step starts; steps that run long (Terraform, waits) watch the token themselves.
    pub async fn step<T>(
        &mut self,
        name: &'static str,
        work: impl Future<Output = Result<(Outcome, T)>>,
    ) -> Result<T> {
        if self.cancel.is_cancelled() {
            return Err(Error::new(
                ExitStatus::Interrupted,
                format!("interrupted before step {name}"),
            )
            .with_hint("rerun the same command: every step picks up where it stopped"));
        }
        let cancel = self.cancel.clone();
        let work = async move {
            tokio::select! {
                result = work => result,
                () = overdue_after_interrupt(&cancel) => Err(Error::new(
                    ExitStatus::Interrupted,
                    format!(
                        "interrupted: it did not stop within {} and was abandoned",
                        crate::report::duration(STOP_GRACE)
                    ),
                )
                .with_hint("rerun the same command: every step picks up where it stopped")),
            }
        };
        let (timing, result) = run_step(self.reporter, name, work).await;
        self.record.steps.push(timing);
        result
    }

    /// Writes the record as it stands (status `running`), so a run killed before it ends
    /// still leaves one behind.
    pub fn save_start(&self, path: &Path) {
        if let Err(err) = self.record.save(path) {
            self.reporter.warning(err.to_string());
        }
    }

    /// The run record, for facts a driver learns along the way (the commit, the keys).
    pub fn record(&mut self) -> &mut RunRecord {
        &mut self.record
    }

    /// Closes the record with the run's outcome and writes it to `path`. The record is
    /// advisory: failing to write it is a warning, never the run's own outcome.
    pub fn finish<T>(mut self, outcome: &Result<T>, path: &Path) -> RunRecord {
        self.record.finish(match outcome {
            Ok(_) => RunStatus::Succeeded,
            Err(err) if err.status() == ExitStatus::Interrupted => RunStatus::Interrupted,
            Err(_) => RunStatus::Failed,
        });
        if let Err(err) = self.record.save(path) {
            self.reporter.warning(err.to_string());
        }
        self.record
    }
}

/// How long a step gets to stop after an interrupt. Steps that can stop cleanly do so at once;
/// one stuck in a call that cannot be cancelled (a Git transfer, a connection retry) is
/// abandoned. A running Terraform always gets its own grace period to release its state lock.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Resolves once the run was interrupted and the step had [`STOP_GRACE`] (and any Terraform
/// child its grace period) to stop.
async fn overdue_after_interrupt(cancel: &CancellationToken) {
    cancel.cancelled().await;
    loop {
        tokio::time::sleep(STOP_GRACE).await;
        if !crate::terraform::child_running() {
            return;
        }
    }
}

/// Runs one named piece of work as a step: announced, timed, reported with its outcome. Also
/// for commands that are a single step and keep no run record.
pub async fn run_step<T>(
    reporter: &dyn Reporter,
    name: &str,
    work: impl Future<Output = Result<(Outcome, T)>>,
) -> (StepRecord, Result<T>) {
    reporter.emit(Event::StepStarted {
        step: name.to_owned(),
    });
    let started = Instant::now();
    let result = work.await;
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (outcome, summary) = match &result {
        Ok((Outcome::Done(summary), _)) => (StepOutcome::Done, summary.clone()),
        Ok((Outcome::UpToDate(summary), _)) => (StepOutcome::UpToDate, summary.clone()),
        Err(err) => (StepOutcome::Failed, err.message().to_owned()),
    };
    reporter.emit(Event::StepFinished {
        step: name.to_owned(),
        outcome,
        duration_ms,
        summary: summary.clone(),
    });
    let timing = StepRecord {
        name: name.to_owned(),
        outcome,
        duration_ms,
        summary,
    };
    let result = result
        .map(|(_, value)| value)
        .map_err(|err| err.context(format!("step {name} failed")));
    (timing, result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::RecordingReporter;

    async fn look() -> Result<(Outcome, u32)> {
        Ok((Outcome::UpToDate("nothing to do".into()), 1))
    }

    async fn change(input: u32) -> Result<(Outcome, u32)> {
        Ok((Outcome::Done("changed one thing".into()), input + 1))
    }

    async fn break_down(_input: u32) -> Result<(Outcome, u32)> {
        Err(Error::failure("the thing broke"))
    }

    async fn toy(steps: &mut Steps<'_>, visited: &mut Vec<&'static str>) -> Result<u32> {
        visited.push("look");
        let first = steps.step("look", look()).await?;
        visited.push("change");
        let second = steps.step("change", change(first)).await?;
        visited.push("break");
        let third = steps.step("break", break_down(second)).await?;
        visited.push("look again");
        steps.step("look-again", look()).await?;
        Ok(third)
    }

    #[tokio::test]
    async fn steps_run_in_order_hand_on_their_values_and_stop_at_the_first_failure() {
        let reporter = RecordingReporter::default();
        let mut steps = Steps::new(
            &reporter,
            CancellationToken::new(),
            RunRecord::start("dev", "test"),
        );
        let mut visited = Vec::new();
        let outcome = toy(&mut steps, &mut visited).await;
        let err = outcome.as_ref().unwrap_err();
        assert_eq!(visited, ["look", "change", "break"]);
        assert_eq!(err.message(), "step break failed: the thing broke");
        let dir = tempfile::tempdir().unwrap();
        let record = steps.finish(&outcome, &dir.path().join("run.json"));
        assert_eq!(record.status, RunStatus::Failed);
        let outcomes: Vec<_> = record.steps.iter().map(|s| s.outcome).collect();
        assert_eq!(
            outcomes,
            [
                StepOutcome::UpToDate,
                StepOutcome::Done,
                StepOutcome::Failed
            ]
        );
        assert_eq!(RunRecord::load(&dir.path().join("run.json")), Some(record));
        let started = reporter
            .events()
            .iter()
            .filter(|e| matches!(e, Event::StepStarted { .. }))
            .count();
        assert_eq!(started, 3);
    }

    #[tokio::test]
    async fn a_cancelled_run_stops_before_the_next_step() {
        let reporter = RecordingReporter::default();
        let cancel = CancellationToken::new();
        cancel.cancel();
        let mut steps = Steps::new(&reporter, cancel, RunRecord::start("dev", "test"));
        let err = steps.step("look", look()).await.unwrap_err();
        assert_eq!(err.status(), ExitStatus::Interrupted);
        assert!(reporter.events().is_empty());
    }
}
