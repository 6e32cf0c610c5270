//! Errors of loading the config file. Each names the file, the key and, when the key is in the
//! file, its line and column; none quotes a line of the file, which could hold a pasted secret.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Diagnose, ExitStatus};

/// A 1-based position in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` of `text`; columns count characters.
    pub fn at(text: &str, offset: usize) -> Position {
        let before = &text[..floor_char_boundary(text, offset)];
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        Position {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// `file`, or `file:line:column` when the position is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub position: Option<Position>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(Position { line, column }) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The file is not TOML, or does not fit the config's shape (unknown key, wrong type).
    #[error("invalid config {location}: {message}")]
    Syntax {
        location: Location,
        message: String,
        hint: Option<String>,
    },

    /// A key is present and well-typed but its value is not acceptable.
    #[error("invalid config {location}: `{key}` {message}")]
    Invalid {
        location: Location,
        key: String,
        message: String,
        hint: Option<String>,
    },

    #[error("unknown environment `{name}` in {}: {}", file.display(), known_list(known))]
    UnknownEnv {
        name: String,
        file: PathBuf,
        known: Vec<String>,
    },
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "it defines none".to_owned()
    } else {
        format!("known environments: {}", known.join(", "))
    }
}

impl Diagnose for ConfigError {
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::BadInput
    }

    fn hint(&self) -> Option<String> {
        match self {
            ConfigError::Read { .. } => Some(
                "pass the config file's path, or create gitops-bootstrap.toml in the current \
                 directory"
                    .to_owned(),
            ),
            ConfigError::Syntax { hint, .. } | ConfigError::Invalid { hint, .. } => hint.clone(),
            ConfigError::UnknownEnv { name, file, .. } => Some(format!(
                "add an [envs.{name}] table to {}, or pick a known environment",
                file.display()
            )),
        }
    }
}

/// Field names that suggest a secret was written where only its env var's name belongs.
const SECRET_WORDS: [&str; 5] = ["token", "password", "secret", "private_key", "credential"];

fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    !name.ends_with("_env") && SECRET_WORDS.iter().any(|word| name.contains(word))
}

const SECRET_HINT: &str = "the config file has no place for secret values: put the value in an \
     environment variable and name that variable (`token_env = \"GIT_TOKEN\"`, \
     `[envs.<env>.secret_variables] name = \"ENV_VAR\"`)";

/// What to do about a TOML or shape error, from toml's message.
fn syntax_hint(message: &str, unknown_field: Option<&str>) -> String {
    match unknown_field {
        Some(field) if looks_secret(field) => SECRET_HINT.to_owned(),
        Some(_) => "check the key's spelling and table; `gitops-bootstrap config schema` lists \
                    every key"
            .to_owned(),
        None if message.starts_with("invalid type") || message.starts_with("invalid value") => {
            "`gitops-bootstrap config schema` gives each key's type: strings are quoted, \
             tables use { } or [headers]"
                .to_owned()
        }
        None if message.starts_with("missing field") => {
            "add the key to that table; `gitops-bootstrap config schema` marks the required ones"
                .to_owned()
        }
        None => "the file must be TOML (https://toml.io): check quotes, brackets and `=` on \
                 that line"
            .to_owned(),
    }
}

impl ConfigError {
    /// A serde/TOML error, positioned from its span. The message is toml's own (it names the
    /// key, e.g. "unknown field `token`, expected one of …"); the offending line is not shown.
    pub(super) fn from_toml(file: &Path, text: &str, err: &toml::de::Error) -> Self {
        let unknown_field = err
            .message()
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next());
        let offset = err.span().map(|span| {
            unknown_field
                .and_then(|field| unknown_key_offset(text, span.start, field))
                .unwrap_or(span.start)
        });
        ConfigError::Syntax {
            location: Location {
                file: file.to_owned(),
                position: offset.map(|offset| Position::at(text, offset)),
            },
            message: err.message().trim_end().to_owned(),
            hint: Some(syntax_hint(err.message(), unknown_field)),
        }
    }

    /// A rejected value at `key` (a dotted path such as `envs.dev.profile`), positioned by
    /// finding that key in the document.
    pub(super) fn invalid(
        file: &Path,
        text: &str,
        key: &[&str],
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Self {
        ConfigError::Invalid {
            location: Location {
                file: file.to_owned(),
                position: key_offset(text, key).map(|offset| Position::at(text, offset)),
            },
            key: key.join("."),
            message: message.into(),
            hint,
        }
    }

    /// The hint for a secret-looking name in a place meant for names of env vars or plain values.
    pub(super) fn secret_hint() -> Option<String> {
        Some(SECRET_HINT.to_owned())
    }

    pub(super) fn looks_secret(name: &str) -> bool {
        looks_secret(name)
    }
}

/// The byte offset of the deepest key of `path` present in the document (so a missing key is
/// reported at its table).
fn key_offset(text: &str, path: &[&str]) -> Option<usize> {
    let document = toml::de::DeTable::parse(text).ok()?;
    let mut table = document.get_ref();
    let mut offset = None;
    for segment in path {
        let Some((key, value)) = table.get_key_value(*segment) else {
            break;
        };
        offset = Some(key.span().start);
        match value.get_ref().as_table() {
            Some(inner) => table = inner,
            None => break,
        }
    }
    offset
}

/// Where the unknown key `field` is, when serde reported it at its table (it does for the
/// tagged `push` tables): the key of that name in the table starting at `table_offset`.
fn unknown_key_offset(text: &str, table_offset: usize, field: &str) -> Option<usize> {
    fn search(table: &toml::de::DeTable<'_>, table_offset: usize, field: &str) -> Option<usize> {
        table.values().find_map(|value| {
            let inner = value.get_ref().as_table()?;
            let here = (value.span().start == table_offset)
                .then(|| inner.get_key_value(field).map(|(key, _)| key.span().start))
                .flatten();
            here.or_else(|| search(inner, table_offset, field))
        })
    }
    let document = toml::de::DeTable::parse(text).ok()?;
    search(document.get_ref(), table_offset, field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(Position::at(text, 0), Position { line: 1, column: 1 });
        let offset = text.find("= 2").unwrap();
        assert_eq!(Position::at(text, offset), Position { line: 2, column: 4 });
    }

    #[test]
    fn keys_are_found_in_dotted_and_header_tables() {
        let text = "[envs.dev]\nprofile = \"x\"\n[envs.dev.repository]\nurl = \"u\"\n";
        let at = |path: &[&str]| key_offset(text, path).map(|o| Position::at(text, o));
        assert_eq!(
            at(&["envs", "dev", "profile"]),
            Some(Position { line: 2, column: 1 })
        );
        assert_eq!(
            at(&["envs", "dev", "repository", "url"]),
            Some(Position { line: 4, column: 1 })
        );
        // A key that is absent is reported where its table is.
        assert_eq!(at(&["envs", "dev", "module"]).map(|p| p.line), Some(1));
    }

    #[test]
    fn secret_looking_names() {
        assert!(looks_secret("token"));
        assert!(looks_secret("db_password"));
        assert!(!looks_secret("token_env"));
        assert!(!looks_secret("known_hosts"));
    }
}
