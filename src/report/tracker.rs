//! Remembers which step is running, so an interrupt that cannot wait for the step to stop
//! still names it and closes it in the event stream.

use std::sync::Mutex;
use std::time::Instant;

use super::{Event, Reporter, StepOutcome};

/// A reporter that forwards every event and keeps the step started last and not yet finished.
pub struct StepTracker<R> {
    inner: R,
    current: Mutex<Option<(String, Instant)>>,
}

impl<R: Reporter> StepTracker<R> {
    pub fn new(inner: R) -> Self {
        StepTracker {
            inner,
            current: Mutex::new(None),
        }
    }

    /// The running step, if any.
    pub fn current_step(&self) -> Option<String> {
        self.lock().as_ref().map(|(name, _)| name.clone())
    }

    /// Ends the running step as failed with `summary` (for an interrupt that abandons it).
    pub fn abandon_step(&self, summary: &str) {
        let Some((step, started)) = self.lock().take() else {
            return;
        };
        self.inner.emit(Event::StepFinished {
            step,
            outcome: StepOutcome::Failed,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            summary: summary.to_owned(),
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(String, Instant)>> {
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<R: Reporter> Reporter for StepTracker<R> {
    fn emit(&self, event: Event) {
        match &event {
            Event::StepStarted { step } => *self.lock() = Some((step.clone(), Instant::now())),
            Event::StepFinished { step, .. } => {
                let mut current = self.lock();
                if current.as_ref().is_some_and(|(name, _)| name == step) {
                    *current = None;
                }
            }
            _ => {}
        }
        self.inner.emit(event);
    }

    fn confirm(&self, question: &str) -> Option<bool> {
        self.inner.confirm(question)
    }

    fn ask(&self, question: &str) -> Option<String> {
        self.inner.ask(question)
    }
}

impl Reporter for Box<dyn Reporter> {
    fn emit(&self, event: Event) {
        self.as_ref().emit(event);
    }

    fn confirm(&self, question: &str) -> Option<bool> {
        self.as_ref().confirm(question)
    }

    fn ask(&self, question: &str) -> Option<String> {
        self.as_ref().ask(question)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::RecordingReporter;

    #[test]
    fn tracks_the_running_step_and_closes_it_when_abandoned() {
        let tracker = StepTracker::new(RecordingReporter::default());
        assert_eq!(tracker.current_step(), None);
        tracker.emit(Event::StepStarted {
            step: "preflight".into(),
        });
        assert_eq!(tracker.current_step().as_deref(), Some("preflight"));
        tracker.abandon_step("interrupted");
        assert_eq!(tracker.current_step(), None);
        let events = tracker.inner.events();
        assert!(matches!(
            &events[1],
            Event::StepFinished { step, outcome: StepOutcome::Failed, summary, .. }
                if step == "preflight" && summary == "interrupted"
        ));
        tracker.abandon_step("again");
        assert_eq!(tracker.inner.events().len(), 2, "nothing left to close");
    }
}
