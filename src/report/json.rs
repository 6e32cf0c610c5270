//! `--output json`: one event per line on stdout, flushed as it happens.

use std::io::Write;
use std::sync::Mutex;

use super::{Event, Reporter};

#[derive(Default)]
pub struct JsonReporter {
    // Serialises whole lines: events come from several tasks at once.
    out: Mutex<()>,
}

impl Reporter for JsonReporter {
    fn emit(&self, event: Event) {
        let line = serde_json::to_string(&event).expect("events always serialize");
        let _guard = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }
}
