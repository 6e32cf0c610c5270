//! The one way gitops-bootstrap talks to the terminal.
//!
//! Every command emits [`Event`]s through a [`Reporter`] created once in `main` from the flags:
//! [`human::HumanReporter`] draws progress on stderr and prints the result on stdout;
//! [`json::JsonReporter`] writes one JSON object per line on stdout (README "JSON events").
//! Nothing else in the crate prints.

mod human;
mod json;
mod tracker;

use serde::{Deserialize, Serialize};

pub use human::HumanReporter;
pub use json::JsonReporter;
pub use tracker::StepTracker;

/// A budget or bound as a person gave it (`5s`, `2m`, `1h 30m`): whole seconds, rounded up, so
/// the time left of a `--timeout 2m` a few milliseconds into the run still reads `2m`, never
/// `119.667310467s`. Below a second it stays exact (`500ms`).
pub fn duration(d: std::time::Duration) -> String {
    let shown = if d >= std::time::Duration::from_secs(1) {
        std::time::Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0))
    } else {
        d
    };
    jiff::SignedDuration::try_from(shown)
        .map_or_else(|_| format!("{shown:?}"), |d| format!("{d:#}"))
}

/// How a step ended. `UpToDate` means it observed the desired state and changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Done,
    UpToDate,
    Failed,
}

/// The events of a run, in the order they happen. Field names are a stable interface.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    StepStarted {
        step: String,
    },
    StepFinished {
        step: String,
        outcome: StepOutcome,
        duration_ms: u64,
        summary: String,
    },
    /// Something moving inside a step; `done`/`total` when it is countable.
    Progress {
        step: String,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        done: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    /// Something the user must know or act on later (a deploy key to register, a key to back up).
    Notice {
        message: String,
    },
    Warning {
        message: String,
    },
    /// One finding of `lint`, where it is and what to do (README "Lint rules").
    Finding {
        file: String,
        line: usize,
        column: usize,
        rule: String,
        severity: String,
        message: String,
        fix: String,
    },
    Error {
        code: i32,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
    },
    /// The last event of every run: what the command produced.
    Result {
        command: String,
        ok: bool,
        exit_code: i32,
        result: serde_json::Value,
        /// The same result for people; human mode prints it on stdout.
        #[serde(skip)]
        text: String,
    },
}

/// Where events go. Implementations must be cheap to call from async code.
pub trait Reporter: Send + Sync {
    fn emit(&self, event: Event);

    fn progress(&self, step: &str, message: String) {
        self.emit(Event::Progress {
            step: step.to_owned(),
            message,
            done: None,
            total: None,
        });
    }

    fn counted_progress(&self, step: &str, message: String, done: u64, total: u64) {
        self.emit(Event::Progress {
            step: step.to_owned(),
            message,
            done: Some(done),
            total: Some(total),
        });
    }

    fn notice(&self, message: String) {
        self.emit(Event::Notice { message });
    }

    fn warning(&self, message: String) {
        self.emit(Event::Warning { message });
    }

    /// Asks a yes/no question when a person is there to answer; `None` when nobody can be
    /// asked (not a terminal, JSON output), so callers require an explicit flag instead.
    fn confirm(&self, _question: &str) -> Option<bool> {
        None
    }

    /// Asks a person to type an answer (e.g. the name of what is about to be deleted); `None`
    /// when nobody can be asked, like [`Reporter::confirm`].
    fn ask(&self, _question: &str) -> Option<String> {
        None
    }
}

/// How much the human reporter says (`-q` / default / `-v`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// Keeps every event in memory: for unit tests of code that reports.
#[derive(Debug, Default)]
pub struct RecordingReporter {
    events: std::sync::Mutex<Vec<Event>>,
}

impl RecordingReporter {
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl Reporter for RecordingReporter {
    fn emit(&self, event: Event) {
        self.events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(event);
    }
}

/// A commit as people read it: its first 7 hex digits, as Git and Flux print it.
pub fn short_sha(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_given() {
        use std::time::Duration;
        let cases = [
            (Duration::from_nanos(4_999_991_918), "5s"),
            (Duration::from_nanos(119_667_310_467), "2m"),
            (Duration::from_secs(90), "1m 30s"),
            (Duration::from_secs(5400), "1h 30m"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_secs(30), "30s"),
        ];
        for (given, shown) in cases {
            assert_eq!(duration(given), shown, "{given:?}");
        }
    }

    #[test]
    fn events_serialize_with_stable_names() {
        let finished = Event::StepFinished {
            step: "terraform".into(),
            outcome: StepOutcome::UpToDate,
            duration_ms: 1200,
            summary: "no changes".into(),
        };
        assert_eq!(
            serde_json::to_value(&finished).unwrap(),
            serde_json::json!({
                "event": "step_finished",
                "step": "terraform",
                "outcome": "up_to_date",
                "duration_ms": 1200,
                "summary": "no changes"
            })
        );
        let result = Event::Result {
            command: "plan".into(),
            ok: true,
            exit_code: 0,
            result: serde_json::json!({"add": 1}),
            text: "1 to add".into(),
        };
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["event"], "result");
        assert!(json.get("text").is_none(), "human text stays out of JSON");
    }

    #[test]
    fn progress_omits_counts_it_does_not_have() {
        let reporter = RecordingReporter::default();
        reporter.progress("wait", "2 of 5 ready".into());
        let json = serde_json::to_value(&reporter.events()[0]).unwrap();
        assert!(json.get("done").is_none());
        assert_eq!(json["message"], "2 of 5 ready");
    }
}
