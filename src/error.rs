//! The error type at the top of the program: what failed, why, what to do next, and the
//! documented exit code. Module edges use their own `thiserror` enums and implement
//! [`Diagnose`]; `?` turns them into [`Error`] without losing the hint or the exit status.

use std::fmt;

use serde::Serialize;

/// The documented exit codes (README "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    /// 0: everything asked for is done.
    Success,
    /// 1: an operation failed (Terraform, Git, the cluster, a runtime app).
    Failure,
    /// 2: bad input or usage: flags, config file, Terraform outputs, keys.
    BadInput,
    /// 3: a wait ran out of time.
    TimedOut,
    /// 130: interrupted by Ctrl-C or SIGTERM.
    Interrupted,
}

impl ExitStatus {
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::BadInput => 2,
            ExitStatus::TimedOut => 3,
            ExitStatus::Interrupted => 130,
        }
    }
}

/// Implemented by every module-edge error so the top knows its exit status and hint.
pub trait Diagnose: std::error::Error + Send + Sync + 'static {
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::Failure
    }
    /// What the user should do next, when the error alone does not say it.
    fn hint(&self) -> Option<String> {
        None
    }
}

/// A failure as the user sees it. The message already names the failed operation and its
/// cause; [`Error::chain`] keeps the underlying errors for `-v` output.
#[derive(Debug)]
pub struct Error {
    status: ExitStatus,
    message: String,
    hint: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub fn new(status: ExitStatus, message: impl Into<String>) -> Self {
        Error {
            status,
            message: message.into(),
            hint: None,
            source: None,
        }
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(ExitStatus::BadInput, message)
    }

    pub fn failure(message: impl Into<String>) -> Self {
        Self::new(ExitStatus::Failure, message)
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Prefixes the message with what was being done, keeping status and hint.
    pub fn context(mut self, doing: impl fmt::Display) -> Self {
        self.message = format!("{doing}: {}", self.message);
        self
    }

    pub fn status(&self) -> ExitStatus {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// The causes below the message, outermost first (for verbose output).
    pub fn chain(&self) -> Vec<String> {
        let mut causes = Vec::new();
        let mut next = self.source.as_deref().and_then(std::error::Error::source);
        while let Some(cause) = next {
            causes.push(cause.to_string());
            next = cause.source();
        }
        causes
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl<E: Diagnose> From<E> for Error {
    fn from(err: E) -> Self {
        Error {
            status: err.exit_status(),
            message: err.to_string(),
            hint: err.hint(),
            source: Some(Box::new(err)),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("module {name} is missing")]
    struct MissingModule {
        name: String,
    }

    impl Diagnose for MissingModule {
        fn exit_status(&self) -> ExitStatus {
            ExitStatus::BadInput
        }
        fn hint(&self) -> Option<String> {
            Some(format!("create terraform/{}", self.name))
        }
    }

    fn load() -> Result<()> {
        Err(MissingModule {
            name: "kind".into(),
        })?
    }

    #[test]
    fn module_errors_keep_status_and_hint() {
        let err = load().unwrap_err().context("reading config");
        assert_eq!(err.status().code(), 2);
        assert_eq!(err.message(), "reading config: module kind is missing");
        assert_eq!(err.hint(), Some("create terraform/kind"));
    }

    #[test]
    fn exit_codes_are_the_documented_ones() {
        let codes: Vec<i32> = [
            ExitStatus::Success,
            ExitStatus::Failure,
            ExitStatus::BadInput,
            ExitStatus::TimedOut,
            ExitStatus::Interrupted,
        ]
        .into_iter()
        .map(ExitStatus::code)
        .collect();
        assert_eq!(codes, [0, 1, 2, 3, 130]);
    }
}
