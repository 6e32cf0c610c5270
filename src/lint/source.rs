//! The repository's YAML as lint reads it: every file split into documents, each with the line
//! it starts on, so a finding about an object points at the line that declares it.

use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

use super::{Finding, LintError, Rule};

/// A place in the repository, 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

/// One YAML document of a file.
#[derive(Debug)]
pub struct Doc {
    /// The line of the file the document's first line is on.
    pub first_line: usize,
    pub text: String,
    /// `None` when the document does not parse (reported once as `invalid-yaml`).
    pub value: Option<Value>,
    pub parse_error: Option<(usize, usize, String)>,
}

#[derive(Debug)]
pub struct SourceFile {
    /// Relative to the repository root, `/`-separated.
    pub path: String,
    pub text: String,
    pub docs: Vec<Doc>,
}

/// Every `.yaml`/`.yml` file of the working tree (not under hidden directories such as `.git`).
#[derive(Debug)]
pub struct Repo {
    pub root: PathBuf,
    pub files: Vec<SourceFile>,
    /// Files lint could not read as YAML text, and symbolic links: reported, never dropped.
    pub unread: Vec<Unread>,
}

/// A `.yaml` path lint did not read as it reads the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unread {
    /// Not UTF-8 (kustomize and Flux refuse it): the byte offset of the first bad byte.
    NotUtf8 { path: String, offset: usize },
    /// A symbolic link: to a file of the repository (read through the link, as kustomize
    /// does), or leaving it / dangling (not read).
    Symlink {
        path: String,
        target: String,
        read: bool,
    },
}

impl Repo {
    pub fn load(root: &Path) -> Result<Repo, LintError> {
        // kustomize names files by their real path; so do findings, relative to this.
        let root = match root.canonicalize() {
            Ok(root) if root.is_dir() => root,
            _ => {
                return Err(LintError::NotADirectory {
                    path: root.to_owned(),
                });
            }
        };
        let root = root.as_path();
        let mut repo = Repo {
            root: root.to_owned(),
            files: Vec::new(),
            unread: Vec::new(),
        };
        let walker = walkdir::WalkDir::new(root)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|entry| {
                entry.depth() == 0
                    || !entry.file_type().is_dir()
                    || !entry.file_name().to_string_lossy().starts_with('.')
            });
        for entry in walker {
            let entry = entry.map_err(|err| LintError::Read {
                path: root.to_owned(),
                message: err.to_string(),
            })?;
            let path = entry.path();
            let yaml = path
                .extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml");
            if entry.file_type().is_dir() || !yaml {
                continue;
            }
            let relative = relative_path(root, path);
            if entry.file_type().is_symlink() {
                let target = path.canonicalize().ok().filter(|target| target.is_file());
                let inside = target.as_ref().filter(|target| target.starts_with(root));
                repo.unread.push(Unread::Symlink {
                    path: relative.clone(),
                    target: match (&target, inside) {
                        (_, Some(inside)) => relative_path(root, inside),
                        (Some(outside), None) => outside.display().to_string(),
                        (None, _) => std::fs::read_link(path)
                            .map(|link| link.display().to_string())
                            .unwrap_or_default(),
                    },
                    read: inside.is_some(),
                });
                if inside.is_none() {
                    continue;
                }
            }
            repo.read_file(path, relative)?;
        }
        Ok(repo)
    }

    fn read_file(&mut self, path: &Path, relative: String) -> Result<(), LintError> {
        let bytes = std::fs::read(path).map_err(|err| LintError::Read {
            path: path.to_owned(),
            message: err.to_string(),
        })?;
        match String::from_utf8(bytes) {
            Ok(text) => self.files.push(SourceFile {
                path: relative,
                docs: split_documents(&text),
                text,
            }),
            Err(err) => self.unread.push(Unread::NotUtf8 {
                path: relative,
                offset: err.utf8_error().valid_up_to(),
            }),
        }
        Ok(())
    }

    /// Every parsed document with its file.
    pub fn documents(&self) -> impl Iterator<Item = (&SourceFile, &Doc, &Value)> {
        self.files.iter().flat_map(|file| {
            file.docs
                .iter()
                .filter_map(move |doc| doc.value.as_ref().map(|value| (file, doc, value)))
        })
    }

    pub fn file(&self, path: &str) -> Option<&SourceFile> {
        self.files.iter().find(|file| file.path == path)
    }

    /// `invalid-yaml` for every document that does not parse.
    pub fn parse_errors(&self) -> Vec<Finding> {
        let mut findings = Vec::new();
        for file in &self.files {
            for doc in &file.docs {
                if let Some((line, column, message)) = &doc.parse_error {
                    findings.push(Finding::new(
                        Location {
                            file: file.path.clone(),
                            line: doc.first_line + line.saturating_sub(1),
                            column: *column,
                        },
                        Rule::InvalidYaml,
                        format!("not valid YAML: {message}"),
                        "fix the syntax; kustomize and Flux cannot read this file",
                    ));
                }
            }
        }
        findings
    }

    /// `invalid-yaml` for a file that is not UTF-8, `symlink` for every symbolic link.
    pub fn unread_findings(&self) -> Vec<Finding> {
        self.unread
            .iter()
            .map(|unread| match unread {
                Unread::NotUtf8 { path, offset } => Finding::new(
                    Location {
                        file: path.clone(),
                        line: 1,
                        column: 1,
                    },
                    Rule::InvalidYaml,
                    format!("not UTF-8 text (invalid byte at offset {offset})"),
                    "save the file as UTF-8; kustomize and Flux cannot read it",
                ),
                Unread::Symlink { path, target, read } => Finding::new(
                    Location {
                        file: path.clone(),
                        line: 1,
                        column: 1,
                    },
                    Rule::Symlink,
                    if *read {
                        format!("a symbolic link to {target}: linted through the link")
                    } else {
                        format!("a symbolic link to {target}, outside the repository or missing: not linted")
                    },
                    "commit the file itself; a link may not reach what Flux's source packs",
                ),
            })
            .collect()
    }

    /// The document declaring `kind`/`name` (in `namespace` when it says one); the first of
    /// several, preferring one whose namespace matches.
    pub fn declaration(
        &self,
        kind: &str,
        name: &str,
        namespace: &str,
    ) -> Option<(&SourceFile, &Doc)> {
        self.declaration_among(self.documents(), kind, name, namespace)
    }

    /// [`Repo::declaration`] among the documents of `files` only.
    pub fn declaration_in(
        &self,
        files: &std::collections::BTreeSet<String>,
        kind: &str,
        name: &str,
        namespace: &str,
    ) -> Option<(&SourceFile, &Doc)> {
        let documents = self
            .documents()
            .filter(|(file, _, _)| files.contains(&file.path));
        self.declaration_among(documents, kind, name, namespace)
    }

    fn declaration_among<'a>(
        &'a self,
        documents: impl Iterator<Item = (&'a SourceFile, &'a Doc, &'a Value)>,
        kind: &str,
        name: &str,
        namespace: &str,
    ) -> Option<(&'a SourceFile, &'a Doc)> {
        let mut candidates = documents.filter(|(_, _, value)| {
            text_at(value, &["kind"]) == kind && text_at(value, &["metadata", "name"]) == name
        });
        let first = candidates.next()?;
        let same_namespace = |value: &Value| {
            let declared = text_at(value, &["metadata", "namespace"]);
            declared == namespace
        };
        if same_namespace(first.2) {
            return Some((first.0, first.1));
        }
        candidates
            .find(|(_, _, value)| same_namespace(value))
            .map(|(file, doc, _)| (file, doc))
            .or(Some((first.0, first.1)))
    }

    /// Where an object is declared, at the first `needle` after `anchor` (both optional) in
    /// its document; the document's first line when neither is found.
    pub fn locate(
        &self,
        object: &Value,
        anchor: Option<&str>,
        needle: Option<&str>,
    ) -> Option<Location> {
        let (file, doc) = self.declaration(
            text_at(object, &["kind"]),
            text_at(object, &["metadata", "name"]),
            text_at(object, &["metadata", "namespace"]),
        )?;
        Some(doc.locate(&file.path, anchor, needle))
    }
}

impl Doc {
    /// The first `needle` after `anchor` in this document, else its first line.
    pub fn locate(&self, file: &str, anchor: Option<&str>, needle: Option<&str>) -> Location {
        let from = anchor
            .and_then(|anchor| self.text.find(anchor))
            .unwrap_or(0);
        let offset = needle
            .and_then(|needle| self.text[from..].find(needle).map(|at| at + from))
            .or_else(|| anchor.and_then(|anchor| self.text.find(anchor)))
            .unwrap_or_else(|| first_content(&self.text));
        let (line, column) = line_column(&self.text, offset);
        Location {
            file: file.to_owned(),
            line: self.first_line + line - 1,
            column,
        }
    }
}

/// `path` relative to `root`, `/`-separated.
fn relative_path(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// The offset of the first line that is neither blank nor a comment.
fn first_content(text: &str) -> usize {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            return offset + (line.len() - line.trim_start().len());
        }
        offset += line.len();
    }
    0
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Splits on `---` lines, keeping where each document starts.
pub fn split_documents(text: &str) -> Vec<Doc> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut first_line = 1;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end();
        if bare == "---" || bare.starts_with("--- ") {
            push_document(&mut docs, std::mem::take(&mut current), first_line);
            first_line = index + 2;
            continue;
        }
        current.push_str(line);
    }
    push_document(&mut docs, current, first_line);
    docs
}

fn push_document(docs: &mut Vec<Doc>, text: String, first_line: usize) {
    let empty = text
        .lines()
        .all(|line| line.trim().is_empty() || line.trim_start().starts_with('#'));
    if empty {
        return;
    }
    let (value, parse_error) = match serde_yaml_ng::from_str::<Value>(&text) {
        Ok(value) => (Some(value), None),
        Err(err) => {
            let (line, column) = err.location().map_or((1, 1), |at| (at.line(), at.column()));
            let message = err.to_string();
            // serde_yaml_ng appends " at line L column C"; the finding carries it already.
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned();
            (None, Some((line, column, message)))
        }
    };
    docs.push(Doc {
        first_line,
        text,
        value,
        parse_error,
    });
}

/// The string at `path` in a YAML value, or `""`.
pub fn text_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(value, |value, key| value.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The API group of an `apiVersion` (`""` for the core group).
pub fn api_group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_their_first_line() {
        let docs = split_documents("# head\na: 1\n---\nb: 2\n---\n# only a comment\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].first_line, 1);
        assert_eq!(docs[1].first_line, 4);
        let at = docs[1].locate("f.yaml", None, Some("2"));
        assert_eq!((at.line, at.column), (4, 4));
    }

    #[test]
    fn locate_skips_leading_comments_and_finds_after_the_anchor() {
        let docs = split_documents("# c\nkind: X\nspec:\n  name: a\n  dep:\n    name: a\n");
        let doc = &docs[0];
        let at = doc.locate("f", None, None);
        assert_eq!((at.line, at.column), (2, 1));
        let at = doc.locate("f", Some("dep:"), Some("name: a"));
        assert_eq!((at.line, at.column), (6, 5));
    }

    #[test]
    fn unparsable_documents_are_kept_with_their_error() {
        let docs = split_documents("a: [1\n");
        assert!(docs[0].value.is_none());
        assert!(docs[0].parse_error.is_some());
    }
}
