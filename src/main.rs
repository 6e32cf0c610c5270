//! Parse the command line, build the reporter once, run the command, map the outcome to the
//! documented exit code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use gitops_bootstrap::cli::{Cli, OutputFormat};
use gitops_bootstrap::commands;
use gitops_bootstrap::report::{Event, HumanReporter, JsonReporter, Reporter, Verbosity};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        (false, _) => Verbosity::Verbose,
    };
    init_tracing(cli.verbose);
    let reporter: Box<dyn Reporter> = match cli.output {
        OutputFormat::Json => Box::new(JsonReporter::default()),
        OutputFormat::Text => {
            let color = !cli.no_color
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stderr().is_terminal();
            Box::new(HumanReporter::new(verbosity, color))
        }
    };

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
    runtime.spawn(cancel_on_signals(cancel.clone()));

    let command = cli.command.name();
    let outcome = runtime.block_on(commands::run(&cli, reporter.as_ref(), cancel));
    let exit_code = match outcome {
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
    };
    // Steps may still hold child processes or watches; they were cancelled or finished.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    ExitCode::from(u8::try_from(exit_code).unwrap_or(1))
}

/// Logs go to stderr; RUST_LOG wins over -v.
fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 | 1 => "warn",
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
/// a second one exits at once.
async fn cancel_on_signals(cancel: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    for _ in 0..2 {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        if cancel.is_cancelled() {
            std::process::exit(130);
        }
        cancel.cancel();
    }
}
