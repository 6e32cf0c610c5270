//! Runs a list of named steps in order: announce, time, record, stop at the first failure.

use std::future::Future;
use std::time::Instant;

use crate::error::{Error, ExitStatus, Result};
use crate::record::{RunRecord, StepRecord};
use crate::report::{Event, Reporter, StepOutcome};

/// What a step did after observing the current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It changed something (or only looked, for steps that never change anything).
    Done(String),
    /// The desired state was already there: nothing was changed.
    UpToDate(String),
}

/// One step of a workflow, named as the user sees it in progress lines and events.
pub trait Step<C>: Copy {
    fn name(self) -> &'static str;
    fn run(self, ctx: &mut C) -> impl Future<Output = Result<Outcome>>;
}

/// Runs `steps` over `ctx`, reporting each start and finish with its duration and keeping the
/// timings in `record`. Cancellation is checked between steps; steps that run long (Terraform,
/// waits) watch the token themselves.
pub async fn run_steps<C, S: Step<C>>(
    steps: &[S],
    ctx: &mut C,
    reporter: &dyn Reporter,
    record: &mut RunRecord,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<()> {
    for &step in steps {
        if cancel.is_cancelled() {
            return Err(Error::new(
                ExitStatus::Interrupted,
                format!("interrupted before step {}", step.name()),
            )
            .with_hint("rerun the same command: every step picks up where it stopped"));
        }
        let work = async { step.run(ctx).await.map(|outcome| (outcome, ())) };
        let (timing, result) = run_step(reporter, step.name(), work).await;
        record.steps.push(timing);
        result?;
    }
    Ok(())
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

    #[derive(Clone, Copy)]
    enum Toy {
        Look,
        Change,
        Break,
    }

    impl Step<Vec<&'static str>> for Toy {
        fn name(self) -> &'static str {
            match self {
                Toy::Look => "look",
                Toy::Change => "change",
                Toy::Break => "break",
            }
        }

        async fn run(self, ctx: &mut Vec<&'static str>) -> Result<Outcome> {
            ctx.push(self.name());
            match self {
                Toy::Look => Ok(Outcome::UpToDate("nothing to do".into())),
                Toy::Change => Ok(Outcome::Done("changed one thing".into())),
                Toy::Break => Err(Error::failure("the thing broke")),
            }
        }
    }

    #[tokio::test]
    async fn steps_run_in_order_and_stop_at_the_first_failure() {
        let reporter = RecordingReporter::default();
        let mut record = RunRecord::start("dev", "test");
        let mut visited = Vec::new();
        let cancel = tokio_util::sync::CancellationToken::new();
        let err = run_steps(
            &[Toy::Look, Toy::Change, Toy::Break, Toy::Look],
            &mut visited,
            &reporter,
            &mut record,
            &cancel,
        )
        .await
        .unwrap_err();
        assert_eq!(visited, ["look", "change", "break"]);
        assert_eq!(err.message(), "step break failed: the thing broke");
        let outcomes: Vec<_> = record.steps.iter().map(|s| s.outcome).collect();
        assert_eq!(
            outcomes,
            [
                StepOutcome::UpToDate,
                StepOutcome::Done,
                StepOutcome::Failed
            ]
        );
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
        let mut record = RunRecord::start("dev", "test");
        let mut visited = Vec::new();
        let cancel = tokio_util::sync::CancellationToken::new();
        cancel.cancel();
        let err = run_steps(&[Toy::Look], &mut visited, &reporter, &mut record, &cancel)
            .await
            .unwrap_err();
        assert_eq!(err.status(), ExitStatus::Interrupted);
        assert!(visited.is_empty());
    }
}
