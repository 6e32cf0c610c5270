//! The CI workflows users copy (examples/ci/, what `init` scaffolds, the README's YAML): valid
//! YAML, and every `gitops-bootstrap …` command line in them accepted by the real CLI
//! definition, so a renamed command or flag fails here rather than in a user's pipeline.

use std::path::{Path, PathBuf};

use crate::support::snapshot;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// The examples under examples/ci/ each install a pinned release of this version, and every
/// `gitops-bootstrap …` command line in them parses (the snapshot pins which ones ran).
#[test]
fn ci_examples_install_a_pinned_release_and_run_real_command_lines() {
    let installer = format!(
        "{}/releases/download/v{}/gitops-bootstrap-installer.sh",
        env!("CARGO_PKG_REPOSITORY"),
        env!("CARGO_PKG_VERSION")
    );
    let root = Path::new(MANIFEST_DIR).join("examples/ci");
    let mut checked = String::new();
    for file in yaml_files(&root) {
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.contains(&installer),
            "{name} does not install {installer}"
        );
        checked.push_str(&check_workflow(&name, &text));
    }
    snapshot!(
        "ci_examples_install_a_pinned_release_and_run_real_command_lines",
        checked
    );
}

/// The workflows `init` scaffolds and the YAML blocks of the README hold command lines too.
#[test]
fn scaffolded_and_readme_workflows_run_real_command_lines() {
    let root = Path::new(MANIFEST_DIR);
    let mut checked = String::new();
    let scaffold = root.join("scaffold");
    let mut workflows = yaml_files(&scaffold.join(".github/workflows"));
    workflows.push(scaffold.join(".gitlab-ci.yml"));
    for file in workflows {
        let name = file.strip_prefix(root).unwrap().display().to_string();
        checked.push_str(&check_workflow(
            &name,
            &std::fs::read_to_string(&file).unwrap(),
        ));
    }
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for (index, block) in readme.split("```yaml\n").skip(1).enumerate() {
        let block = block.split("```").next().unwrap();
        checked.push_str(&check_workflow(
            &format!("README.md yaml block {}", index + 1),
            block,
        ));
    }
    snapshot!(
        "scaffolded_and_readme_workflows_run_real_command_lines",
        checked
    );
}

/// Parses `text` as YAML and every `gitops-bootstrap` command line of its scripts with the
/// real CLI definition; returns them, one per line under the file's name.
fn check_workflow(name: &str, text: &str) -> String {
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).unwrap_or_else(|err| panic!("{name}: {err}"));
    let mut scripts = Vec::new();
    collect_scripts(&yaml, &mut scripts);
    let commands: Vec<Vec<String>> = scripts.iter().flat_map(|s| command_lines(s)).collect();
    assert!(
        !commands.is_empty(),
        "{name} runs no gitops-bootstrap command"
    );
    let mut checked = format!("{name}:\n");
    for args in commands {
        let parsed = <gitops_bootstrap::cli::Cli as clap::CommandFactory>::command()
            .try_get_matches_from(&args);
        if let Err(err) = &parsed {
            use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
            assert!(
                matches!(err.kind(), DisplayHelp | DisplayVersion),
                "{name}: `{}` is not a valid command line:\n{err}",
                args.join(" ")
            );
        }
        checked.push_str(&format!("  {}\n", args.join(" ")));
    }
    checked
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yml" || ext == "yaml")
        {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The shell scripts of a workflow: GitHub Actions' `run`, GitLab CI's `script`,
/// `before_script` and `after_script` (a string or a list of strings).
fn collect_scripts(value: &serde_yaml_ng::Value, scripts: &mut Vec<String>) {
    use serde_yaml_ng::Value;
    match value {
        Value::Mapping(map) => {
            for (key, value) in map {
                let is_script = matches!(
                    key.as_str(),
                    Some("run" | "script" | "before_script" | "after_script")
                );
                match value {
                    Value::String(script) if is_script => scripts.push(script.clone()),
                    Value::Sequence(lines) if is_script => {
                        scripts.extend(lines.iter().filter_map(Value::as_str).map(str::to_owned))
                    }
                    _ => collect_scripts(value, scripts),
                }
            }
        }
        Value::Sequence(items) => items.iter().for_each(|item| collect_scripts(item, scripts)),
        _ => {}
    }
}

/// The argv of each `gitops-bootstrap` invocation in a script: at a command position (line
/// start, after `(`, `|`, `;`, `&` or a space), up to the next `|`, `;`, `&`, `)` or `>`.
/// CI expressions (`${{ … }}`) become one word; heredoc bodies are data, not commands.
fn command_lines(script: &str) -> Vec<Vec<String>> {
    const PROGRAM: &str = "gitops-bootstrap";
    let script = script.replace("\\\n", " ");
    let mut commands = Vec::new();
    let mut heredoc_end: Option<String> = None;
    for line in script.lines() {
        if let Some(end) = &heredoc_end {
            if line.trim() == end {
                heredoc_end = None;
            }
            continue;
        }
        if let Some((_, word)) = line.split_once("<<") {
            heredoc_end = Some(word.trim().trim_matches(['\'', '"', '-']).to_owned());
        }
        let line = ci_expressions_as_words(line);
        let mut rest = line.as_str();
        while let Some(at) = rest.find(PROGRAM) {
            let before = rest[..at].chars().last();
            let after = &rest[at + PROGRAM.len()..];
            rest = after;
            let at_command = before.is_none_or(|c| c.is_whitespace() || "(|;&".contains(c));
            if !at_command || !after.chars().next().is_none_or(char::is_whitespace) {
                continue;
            }
            let end = after.find(['|', ';', '&', ')', '>']).unwrap_or(after.len());
            let words = shlex::split(&after[..end])
                .unwrap_or_else(|| panic!("unbalanced quotes in `{line}`"));
            commands.push([PROGRAM.to_owned()].into_iter().chain(words).collect());
        }
    }
    commands
}

/// `"${{ matrix.env }}"` → `"${{matrix.env}}"`: GitHub substitutes it before the shell runs.
fn ci_expressions_as_words(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("${{") {
        let end = rest[start..]
            .find("}}")
            .map_or(rest.len(), |end| start + end + 2);
        out.push_str(&rest[..start]);
        out.push_str(&rest[start..end].replace(' ', ""));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}
