//! Parse the command line, build the reporter once, run the command, map the outcome to the
//! documented exit code.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use gitops_bootstrap::cli::{Cli, OutputFormat};
use gitops_bootstrap::commands;
use gitops_bootstrap::report::{
    Event, HumanReporter, JsonReporter, Reporter, StepTracker, Verbosity,
};
use gitops_bootstrap::{Error, ExitStatus, gitops, terraform};

/// How long a step may take to stop after an interrupt before it is abandoned, unless a
/// Terraform child is still stopping (it has its own grace period, then is killed).
/// Steps stop (or are abandoned by the step runner) well within it; this is the backstop.
const STOP_GRACE: Duration = Duration::from_secs(3);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        (false, _) => Verbosity::Verbose,
    };
    init_tracing(cli.verbose);
    // libgit2's deadlines are process-wide and must be set before any thread starts.
    gitops::set_network_timeout(cli.git_timeout);
    terraform::set_idle_timeout(cli.terraform_idle_timeout);
    let reporter: Box<dyn Reporter> = match cli.output {
        OutputFormat::Json => Box::new(JsonReporter::default()),
        OutputFormat::Text => {
            let color = !cli.no_color
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stderr().is_terminal();
            Box::new(HumanReporter::new(verbosity, color))
        }
    };
    let reporter = StepTracker::new(reporter);

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            reporter.emit(Event::Error {
                code: 1,
                message: format!("cannot start the async runtime: {err}"),
                hint: None,
            });
            return ExitCode::FAILURE;
        }
    };
    let cancel = CancellationToken::new();
    let force = CancellationToken::new();
    runtime.spawn(cancel_on_signals(cancel.clone(), force.clone()));

    let command = cli.command.name();
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = commands::run(&cli, &reporter, cancel.clone()) => outcome,
            stop = stopped(&cancel, &force) => Err(abandon(&reporter, stop)),
        }
    });
    let exit_code = report_outcome(&reporter, command, verbosity, outcome);
    // Steps may still hold child processes or watches; they were cancelled or finished. A Git
    // transfer stuck in libgit2 cannot be cancelled: it is left behind with the process.
    runtime.shutdown_timeout(Duration::from_secs(1));
    ExitCode::from(u8::try_from(exit_code).unwrap_or(1))
}

fn report_outcome(
    reporter: &dyn Reporter,
    command: &str,
    verbosity: Verbosity,
    outcome: gitops_bootstrap::Result<commands::CommandOutput>,
) -> i32 {
    match outcome {
        Ok(output) => {
            let code = output.status.code();
            reporter.emit(Event::Result {
                command: command.to_owned(),
                ok: code == 0,
                exit_code: code,
                result: output.result,
                text: output.text,
            });
            code
        }
        Err(err) => {
            let code = err.status().code();
            let mut message = err.message().to_owned();
            if verbosity == Verbosity::Verbose {
                for cause in err.chain() {
                    message.push_str(&format!("\n  caused by: {cause}"));
                }
            }
            reporter.emit(Event::Error {
                code,
                message,
                hint: err.hint().map(str::to_owned),
            });
            reporter.emit(Event::Result {
                command: command.to_owned(),
                ok: false,
                exit_code: code,
                result: serde_json::Value::Null,
                text: String::new(),
            });
            code
        }
    }
}

/// Why a run was abandoned instead of stopping by itself.
enum Stop {
    /// The step did not stop within the grace period after the interrupt.
    Overdue,
    /// A second interrupt: stop at once.
    Forced,
}

/// Resolves when an interrupted run must be abandoned: a second signal, or the step still
/// running [`STOP_GRACE`] after the first one (longer while Terraform is stopping).
async fn stopped(cancel: &CancellationToken, force: &CancellationToken) -> Stop {
    let overdue = async {
        cancel.cancelled().await;
        loop {
            tokio::time::sleep(STOP_GRACE).await;
            if !terraform::child_running() {
                return Stop::Overdue;
            }
        }
    };
    tokio::select! {
        stop = overdue => stop,
        () = force.cancelled() => Stop::Forced,
    }
}

/// Closes the running step and says what was interrupted.
fn abandon(reporter: &StepTracker<Box<dyn Reporter>>, stop: Stop) -> Error {
    let step = reporter.current_step();
    let (summary, how) = match stop {
        Stop::Overdue => (
            "interrupted",
            format!(
                "it did not stop within {} and was abandoned",
                gitops_bootstrap::report::duration(STOP_GRACE)
            ),
        ),
        Stop::Forced => (
            "interrupted twice",
            "interrupted a second time: stopped at once".to_owned(),
        ),
    };
    reporter.abandon_step(summary);
    let what = step.map_or_else(|| "the run".to_owned(), |step| format!("step {step}"));
    Error::new(
        ExitStatus::Interrupted,
        format!("interrupted during {what}: {how}"),
    )
    .with_hint("rerun the same command: every step picks up where it stopped")
}

/// Logs go to stderr; RUST_LOG wins over -v.
fn init_tracing(verbose: u8) {
    let default = match verbose {
        // Libraries' own logs (kube's retried connection errors, …) stay out of the default
        // output: what the user must know comes through the reporter.
        0 => "gitops_bootstrap=warn",
        1 => "warn",
        2 => "gitops_bootstrap=debug,warn",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

/// The first SIGINT/SIGTERM asks every step to stop cleanly (Terraform gets its grace period);
/// a second one stops the run at once.
async fn cancel_on_signals(cancel: CancellationToken, force: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    for token in [cancel, force] {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        token.cancel();
    }
}
