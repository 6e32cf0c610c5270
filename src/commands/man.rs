//! `man [--dir DIR]`: the manual pages, generated from the CLI definition so they cannot
//! disagree with `--help`.

use std::path::Path;

use clap::CommandFactory;

use super::CommandOutput;
use crate::cli::Cli;
use crate::error::{Error, ExitStatus, Result};

/// Without a directory, gitops-bootstrap(1) as roff on stdout; with one, that page and one per
/// subcommand (gitops-bootstrap-create-env(1), …) written there.
pub fn run(dir: Option<&Path>) -> Result<CommandOutput> {
    let Some(dir) = dir else {
        let page = page();
        let result = serde_json::json!({ "page": "gitops-bootstrap.1", "roff": page });
        return Ok(CommandOutput::new(ExitStatus::Success, &result, page));
    };
    let failed = |err: std::io::Error| {
        Error::failure(format!(
            "failed to write the man pages into {}: {err}",
            dir.display()
        ))
        .with_hint("choose a writable directory, e.g. --dir ~/.local/share/man/man1")
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    clap_mangen::generate_to(Cli::command(), dir).map_err(failed)?;
    let mut pages: Vec<String> = std::fs::read_dir(dir)
        .map_err(failed)?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("gitops-bootstrap") && name.ends_with(".1"))
        .collect();
    pages.sort();
    let text = format!("wrote {} man pages to {}", pages.len(), dir.display());
    let result = serde_json::json!({ "dir": dir, "pages": pages });
    Ok(CommandOutput::new(ExitStatus::Success, &result, text))
}

/// gitops-bootstrap(1): every option and a line per subcommand. Like the pages `--dir` writes
/// (clap_mangen's `generate_to`), it leaves out clap's `help` subcommand: it has no page.
pub fn page() -> String {
    let mut roff = Vec::new();
    clap_mangen::Man::new(Cli::command().disable_help_subcommand(true))
        .render(&mut roff)
        .expect("rendering into memory cannot fail");
    String::from_utf8_lossy(&roff).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_mentions_every_subcommand_and_global_option() {
        let page = page();
        assert!(page.starts_with(".ie"), "{page}");
        let cli = Cli::command();
        for command in cli.get_subcommands() {
            let name = format!(
                "gitops\\-bootstrap\\-{}",
                command.get_name().replace('-', "\\-")
            );
            assert!(page.contains(&name), "{name} missing from:\n{page}");
        }
        for option in ["\\-\\-config", "\\-\\-output", "\\-\\-no\\-color"] {
            assert!(page.contains(option), "{option} missing");
        }
    }
}
