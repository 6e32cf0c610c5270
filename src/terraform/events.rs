//! Terraform's machine-readable UI (`apply -json`, `destroy -json`, `plan -json`) turned into
//! typed events, and the human diagnostics of commands without `-json` read from stderr.
//!
//! Only the fields the workflow shows are kept: resource addresses, actions, elapsed time,
//! change counts and diagnostics. `@message` texts and resource ids are dropped on purpose.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One line of Terraform's JSON UI stream that the workflow cares about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TfEvent {
    /// A resource operation started ("creating terraform_data.x").
    ApplyStart(ResourceOperation),
    /// A periodic heartbeat while an operation runs.
    ApplyProgress(ResourceOperation),
    ApplyComplete(ResourceOperation),
    ApplyErrored(ResourceOperation),
    /// The totals at the end of a plan, apply or destroy.
    ChangeSummary(ChangeCounts),
    Diagnostic(Diagnostic),
}

/// A resource and what Terraform is doing to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceOperation {
    pub address: String,
    pub action: ChangeAction,
    /// Time since the operation started; zero on `apply_start`.
    pub elapsed: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAction {
    Noop,
    Create,
    Read,
    Update,
    Replace,
    Delete,
    Forget,
    #[serde(other)]
    Other,
}

impl ChangeAction {
    /// The verb in progress form, for lines like "creating terraform_data.x (12s)".
    pub fn progressive(self) -> &'static str {
        match self {
            ChangeAction::Noop => "checking",
            ChangeAction::Create => "creating",
            ChangeAction::Read => "reading",
            ChangeAction::Update => "updating",
            ChangeAction::Replace => "replacing",
            ChangeAction::Delete => "destroying",
            ChangeAction::Forget => "forgetting",
            ChangeAction::Other => "changing",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCounts {
    pub add: u64,
    pub change: u64,
    pub remove: u64,
    /// "plan", "apply" or "destroy".
    pub operation: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// A Terraform diagnostic: what went wrong (summary), why (detail), and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub summary: String,
    #[serde(default)]
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary)?;
        if let Some(address) = &self.address {
            write!(f, " ({address})")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct RawLine {
    #[serde(rename = "type")]
    kind: String,
    hook: Option<RawHook>,
    changes: Option<ChangeCounts>,
    diagnostic: Option<Diagnostic>,
}

#[derive(Deserialize)]
struct RawHook {
    resource: RawResource,
    action: ChangeAction,
    #[serde(default)]
    elapsed_seconds: u64,
}

#[derive(Deserialize)]
struct RawResource {
    addr: String,
}

impl TfEvent {
    /// The diagnostic of a warning event.
    pub fn warning(&self) -> Option<&Diagnostic> {
        match self {
            TfEvent::Diagnostic(diagnostic) if diagnostic.severity == Severity::Warning => {
                Some(diagnostic)
            }
            _ => None,
        }
    }
}

/// Parses one stdout line of a `-json` command. Lines of other types, and lines that are not
/// JSON UI messages at all, give `None`: the format promises new types and fields over time.
pub fn parse_event_line(line: &str) -> Option<TfEvent> {
    let raw: RawLine = serde_json::from_str(line.trim()).ok()?;
    let operation = |hook: Option<RawHook>| {
        hook.map(|hook| ResourceOperation {
            address: hook.resource.addr,
            action: hook.action,
            elapsed: Duration::from_secs(hook.elapsed_seconds),
        })
    };
    match raw.kind.as_str() {
        "apply_start" => operation(raw.hook).map(TfEvent::ApplyStart),
        "apply_progress" => operation(raw.hook).map(TfEvent::ApplyProgress),
        "apply_complete" => operation(raw.hook).map(TfEvent::ApplyComplete),
        "apply_errored" => operation(raw.hook).map(TfEvent::ApplyErrored),
        "change_summary" => raw.changes.map(TfEvent::ChangeSummary),
        "diagnostic" => raw.diagnostic.map(TfEvent::Diagnostic),
        _ => None,
    }
}

/// Reads the error diagnostics Terraform prints on stderr for commands without `-json`
/// (`init`, `show`, `output`). Handles both the boxed (`╷ │ ╵`) and the `-no-color` layout,
/// and ignores warnings such as a missing CLI configuration file.
pub fn parse_stderr_errors(stderr: &str) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    let mut current: Option<(Diagnostic, Vec<String>)> = None;
    let mut flush = |current: &mut Option<(Diagnostic, Vec<String>)>| {
        if let Some((mut diagnostic, detail)) = current.take() {
            diagnostic.detail = detail.join(" ");
            errors.push(diagnostic);
        }
    };
    for raw_line in stderr.lines() {
        let line = strip_ansi(raw_line);
        let trimmed = line.trim_end();
        if trimmed == "╷" || trimmed == "╵" {
            flush(&mut current);
            continue;
        }
        let text = trimmed
            .strip_prefix('│')
            .map_or(trimmed, |rest| rest.strip_prefix(' ').unwrap_or(rest));
        if let Some(summary) = text.strip_prefix("Error: ") {
            flush(&mut current);
            let diagnostic = Diagnostic {
                severity: Severity::Error,
                summary: summary.trim().to_owned(),
                detail: String::new(),
                address: None,
            };
            current = Some((diagnostic, Vec::new()));
        } else if text.starts_with("Warning: ") {
            flush(&mut current);
        } else if let Some((_, detail)) = current.as_mut() {
            // Source snippets ("  on main.tf line 3:", "   3: ...") are indented; details are not.
            if !text.is_empty() && !text.starts_with("  ") {
                detail.push(text.trim().to_owned());
            }
        }
    }
    flush(&mut current);
    errors
}

/// Removes ANSI escape sequences (`ESC [ ... letter`), which some Terraform versions print
/// around diagnostics even with `-no-color`.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operation(address: &str, action: ChangeAction, secs: u64) -> ResourceOperation {
        ResourceOperation {
            address: address.into(),
            action,
            elapsed: Duration::from_secs(secs),
        }
    }

    #[test]
    fn apply_hooks_become_typed_events() {
        let start = r#"{"@level":"info","@message":"terraform_data.slow: Creating...","@module":"terraform.ui","hook":{"resource":{"addr":"terraform_data.slow","module":"","resource":"terraform_data.slow","implied_provider":"terraform","resource_type":"terraform_data","resource_name":"slow","resource_key":null},"action":"create"},"type":"apply_start"}"#;
        let progress = r#"{"hook":{"resource":{"addr":"module.cluster.terraform_data.x"},"action":"create","elapsed_seconds":12},"type":"apply_progress"}"#;
        let complete = r#"{"hook":{"resource":{"addr":"terraform_data.x"},"action":"delete","id_key":"id","id_value":"abc","elapsed_seconds":1},"type":"apply_complete"}"#;
        let errored = r#"{"hook":{"resource":{"addr":"terraform_data.x"},"action":"replace","elapsed_seconds":4},"type":"apply_errored"}"#;
        assert_eq!(
            parse_event_line(start),
            Some(TfEvent::ApplyStart(operation(
                "terraform_data.slow",
                ChangeAction::Create,
                0
            )))
        );
        assert_eq!(
            parse_event_line(progress),
            Some(TfEvent::ApplyProgress(operation(
                "module.cluster.terraform_data.x",
                ChangeAction::Create,
                12
            )))
        );
        assert_eq!(
            parse_event_line(complete),
            Some(TfEvent::ApplyComplete(operation(
                "terraform_data.x",
                ChangeAction::Delete,
                1
            )))
        );
        assert_eq!(
            parse_event_line(errored),
            Some(TfEvent::ApplyErrored(operation(
                "terraform_data.x",
                ChangeAction::Replace,
                4
            )))
        );
    }

    #[test]
    fn summaries_and_diagnostics_are_parsed() {
        let summary = r#"{"changes":{"add":1,"change":0,"import":0,"remove":2,"operation":"apply"},"type":"change_summary"}"#;
        assert_eq!(
            parse_event_line(summary),
            Some(TfEvent::ChangeSummary(ChangeCounts {
                add: 1,
                change: 0,
                remove: 2,
                operation: "apply".into()
            }))
        );
        let diagnostic = r#"{"@level":"error","diagnostic":{"severity":"error","summary":"local-exec provisioner error","detail":"Error running command 'sleep 30': signal: interrupt.","address":"terraform_data.slow","range":{"filename":"main.tf"}},"type":"diagnostic"}"#;
        let Some(TfEvent::Diagnostic(diagnostic)) = parse_event_line(diagnostic) else {
            panic!("diagnostic line not parsed");
        };
        assert_eq!(diagnostic.severity, Severity::Error);
        assert_eq!(
            diagnostic.to_string(),
            "local-exec provisioner error (terraform_data.slow): Error running command 'sleep 30': signal: interrupt."
        );
    }

    #[test]
    fn unknown_types_actions_and_non_json_lines_are_tolerated() {
        assert_eq!(
            parse_event_line(r#"{"type":"version","terraform":"1.11.4","ui":"1.2"}"#),
            None
        );
        assert_eq!(parse_event_line("Terraform has been initialized"), None);
        assert_eq!(parse_event_line(""), None);
        let future =
            r#"{"hook":{"resource":{"addr":"a.b"},"action":"teleport"},"type":"apply_start"}"#;
        assert_eq!(
            parse_event_line(future),
            Some(TfEvent::ApplyStart(operation(
                "a.b",
                ChangeAction::Other,
                0
            )))
        );
    }

    #[test]
    fn no_color_stderr_errors_are_read_and_warnings_skipped() {
        let stderr = "There are some problems with the CLI configuration:\n╷\n│ Warning: Unable to open CLI configuration file\n│\n│ The CLI configuration file at \"/root/.terraformrc\" does not exist.\n╵\n\n\nError: Resource precondition failed\n\n  on main.tf line 21, in resource \"terraform_data\" \"x\":\n  21:       condition     = trimspace(local.kubeconfig) != \"\"\n\nNo kubeconfig for the existing cluster: set kubeconfig_path to a non-empty\nfile or kubeconfig to its content.\n";
        let errors = parse_stderr_errors(stderr);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].summary, "Resource precondition failed");
        assert_eq!(
            errors[0].detail,
            "No kubeconfig for the existing cluster: set kubeconfig_path to a non-empty file or kubeconfig to its content."
        );
    }

    #[test]
    fn boxed_and_coloured_stderr_errors_are_read() {
        let stderr = "\u{1b}[31m╷\u{1b}[0m\u{1b}[0m\n\u{1b}[31m│\u{1b}[0m \u{1b}[0m\u{1b}[1m\u{1b}[31mError: \u{1b}[0m\u{1b}[0m\u{1b}[1mFailed to load plugin schemas\u{1b}[0m\n\u{1b}[31m│\u{1b}[0m \u{1b}[0m\n\u{1b}[31m│\u{1b}[0m \u{1b}[0mState read error: no such file\n\u{1b}[31m╵\u{1b}[0m\u{1b}[0m\n╷\n│ Error: Backend initialization required\n│\n│ Run terraform init.\n╵\n";
        let errors = parse_stderr_errors(stderr);
        let rendered: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            rendered,
            [
                "Failed to load plugin schemas: State read error: no such file",
                "Backend initialization required: Run terraform init."
            ]
        );
    }

    #[test]
    fn progressive_verbs_read_naturally() {
        assert_eq!(ChangeAction::Create.progressive(), "creating");
        assert_eq!(ChangeAction::Delete.progressive(), "destroying");
    }
}
