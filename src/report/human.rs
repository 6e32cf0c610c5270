//! Human output: progress on stderr (a live spinner per step in a terminal, plain timestamped
//! lines otherwise), the command's result on stdout.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use console::style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Event, Reporter, StepOutcome, Verbosity};

pub struct HumanReporter {
    verbosity: Verbosity,
    /// Live spinners, one per running step; `None` when stderr is not a terminal.
    live: Option<Live>,
}

struct Live {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl HumanReporter {
    /// `color` is already resolved from `--no-color`, `NO_COLOR` and the terminal.
    pub fn new(verbosity: Verbosity, color: bool) -> Self {
        console::set_colors_enabled(color);
        console::set_colors_enabled_stderr(color);
        let live = std::io::stderr().is_terminal().then(|| Live {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        });
        HumanReporter { verbosity, live }
    }

    /// Writes one finished line on stderr, above any live spinners.
    fn line(&self, text: String) {
        match &self.live {
            Some(live) => {
                // println on a hidden MultiProgress would drop the line; it is never hidden here.
                let _ = live.multi.println(text);
            }
            None => {
                let stamp = jiff::Zoned::now().strftime("%H:%M:%S").to_string();
                let _ = writeln!(std::io::stderr().lock(), "{} {text}", style(stamp).dim());
            }
        }
    }

    fn start_spinner(&self, live: &Live, step: &str) {
        let bar = live.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner:.cyan} {prefix:.bold} {wide_msg} {elapsed:.dim}",
            )
            .expect("static template is valid"),
        );
        bar.set_prefix(step.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        lock(&live.bars).insert(step.to_owned(), bar);
    }

    fn update_spinner(&self, live: &Live, step: &str, message: &str, counts: Option<(u64, u64)>) {
        if let Some(bar) = lock(&live.bars).get(step) {
            let message = match counts {
                Some((done, total)) => format!("[{done}/{total}] {message}"),
                None => message.to_owned(),
            };
            bar.set_message(message);
        }
    }

    fn finish_spinner(&self, step: &str) {
        if let Some(live) = &self.live
            && let Some(bar) = lock(&live.bars).remove(step)
        {
            bar.finish_and_clear();
            live.multi.remove(&bar);
        }
    }
}

impl HumanReporter {
    /// Shows `question` on stderr and reads one line from a person at the terminal (the live
    /// spinners paused meanwhile); `None` when stdin or stderr is not a terminal.
    fn prompt(&self, question: &str) -> Option<String> {
        if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
            return None;
        }
        let read = || {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "{} {question} ", style("?").yellow().bold());
            let _ = stderr.flush();
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer).ok()?;
            Some(answer.trim().to_owned())
        };
        match &self.live {
            Some(live) => live.multi.suspend(read),
            None => read(),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn seconds(duration_ms: u64) -> String {
    format!("{:.1}s", duration_ms as f64 / 1000.0)
}

impl Reporter for HumanReporter {
    fn confirm(&self, question: &str) -> Option<bool> {
        let answer = self.prompt(&format!("{question} [y/N]"))?;
        Some(matches!(answer.as_str(), "y" | "Y" | "yes" | "Yes"))
    }

    fn ask(&self, question: &str) -> Option<String> {
        self.prompt(question)
    }

    fn emit(&self, event: Event) {
        let normal = self.verbosity >= Verbosity::Normal;
        match event {
            Event::StepStarted { step } => match &self.live {
                Some(live) => self.start_spinner(live, &step),
                None if normal => self.line(format!("{} {step}", style("▶").cyan())),
                None => {}
            },
            Event::Progress {
                step,
                message,
                done,
                total,
            } => match &self.live {
                Some(live) => self.update_spinner(live, &step, &message, done.zip(total)),
                None if normal => {
                    let counts = match done.zip(total) {
                        Some((done, total)) => format!("[{done}/{total}] "),
                        None => String::new(),
                    };
                    self.line(format!("  {step}: {counts}{message}"));
                }
                None => {}
            },
            Event::StepFinished {
                step,
                outcome,
                duration_ms,
                summary,
            } => {
                self.finish_spinner(&step);
                let took = style(format!("({})", seconds(duration_ms))).dim();
                let text = match outcome {
                    StepOutcome::Done => format!("{} {step}: {summary} {took}", style("✔").green()),
                    StepOutcome::UpToDate => format!(
                        "{} {step}: up to date — {summary} {took}",
                        style("✔").green()
                    ),
                    StepOutcome::Failed => format!("{} {step}: failed {took}", style("✘").red()),
                };
                if normal || outcome == StepOutcome::Failed {
                    self.line(text);
                }
            }
            Event::Notice { message } => self.line(format!("{} {message}", style("ℹ").blue())),
            Event::Warning { message } => {
                self.line(format!("{} {message}", style("⚠ warning:").yellow()))
            }
            // The command's result lists findings for people (on stdout, with the counts).
            Event::Finding { .. } => {}
            Event::Error { message, hint, .. } => {
                let mut text = format!("{} {message}", style("✘ error:").red().bold());
                if let Some(hint) = hint {
                    text.push_str(&format!("\n  {} {hint}", style("hint:").cyan()));
                }
                self.line(text);
            }
            Event::Result { text, .. } => {
                if let Some(live) = &self.live {
                    live.multi.clear().ok();
                }
                if !text.is_empty() {
                    let mut stdout = std::io::stdout().lock();
                    let _ = writeln!(stdout, "{}", text.trim_end());
                    let _ = stdout.flush();
                }
            }
        }
    }
}
