//! `init`: writes the starter GitOps repository into a directory, never overwriting a file
//! whose content differs unless asked to.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::scaffold;

/// What `init` did, paths relative to the directory.
#[derive(Debug, Clone, Serialize)]
pub struct InitSummary {
    pub dir: PathBuf,
    pub written: Vec<String>,
    pub unchanged: Vec<String>,
    pub overwritten: Vec<String>,
}

impl InitSummary {
    pub fn text(&self) -> String {
        let mut text = String::new();
        for (mark, files) in [
            ("+", &self.written),
            ("~", &self.overwritten),
            ("=", &self.unchanged),
        ] {
            for file in files {
                text.push_str(&format!("  {mark} {file}\n"));
            }
        }
        text.push_str(&format!(
            "init {}: {} written, {} overwritten, {} unchanged\nnext: set [repository] url in gitops-bootstrap.toml, then `gitops-bootstrap lint`",
            self.dir.display(),
            self.written.len(),
            self.overwritten.len(),
            self.unchanged.len()
        ));
        text
    }
}

/// Writes every scaffold file into `dir`. Every path is checked before the first write: a
/// file where a directory must go, a directory where a file must go, or a symlink leading out
/// of `dir` stops `init` with nothing written, `--force` or not. A file already there with the
/// same content is left alone; one with other content stops `init` too, unless `force`.
pub fn run(dir: &Path, force: bool) -> Result<InitSummary> {
    let mut summary = InitSummary {
        dir: dir.to_owned(),
        written: Vec::new(),
        unchanged: Vec::new(),
        overwritten: Vec::new(),
    };
    let inside = Inside::of(dir)?;
    let mut pending = Vec::new();
    let mut blocked = Vec::new();
    for (relative, contents) in scaffold::files() {
        let name = relative.to_string_lossy().into_owned();
        match inside.existing(&relative) {
            Err(reason) => blocked.push(reason),
            Ok(Some(existing)) if existing == contents => summary.unchanged.push(name),
            Ok(Some(_)) => {
                summary.overwritten.push(name);
                pending.push((dir.join(&relative), contents));
            }
            Ok(None) => {
                summary.written.push(name);
                pending.push((dir.join(&relative), contents));
            }
        }
    }
    blocked.sort();
    blocked.dedup();
    if !blocked.is_empty() {
        return Err(Error::bad_input(format!(
            "init cannot write the scaffold into {}: {}",
            dir.display(),
            blocked.join("; ")
        ))
        .with_hint(
            "nothing was written; move those paths away (or pick another directory) and rerun",
        ));
    }
    if !summary.overwritten.is_empty() && !force {
        return Err(Error::bad_input(format!(
            "init would overwrite {} file(s) of {} that differ from the scaffold: {}",
            summary.overwritten.len(),
            dir.display(),
            summary.overwritten.join(", ")
        ))
        .with_hint("nothing was written; move them away, or pass --force to replace them"));
    }
    for (path, contents) in pending {
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, contents));
        written.map_err(|err| Error::failure(format!("cannot write {}: {err}", path.display())))?;
    }
    Ok(summary)
}

/// The directory `init` writes into, and what its paths hold.
struct Inside {
    dir: PathBuf,
    /// `dir` with its symlinks resolved, when it exists: where a link inside may lead.
    real: Option<PathBuf>,
}

impl Inside {
    fn of(dir: &Path) -> Result<Inside> {
        let real = match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => Some(dir.canonicalize()),
            Ok(_) => {
                return Err(Error::bad_input(format!(
                    "init cannot write the scaffold into {}: it is not a directory",
                    dir.display()
                ))
                .with_hint("nothing was written; name a directory (it is created when absent)"));
            }
            Err(_) => None,
        };
        let real = real
            .transpose()
            .map_err(|err| Error::failure(format!("cannot read {}: {err}", dir.display())))?;
        Ok(Inside {
            dir: dir.to_owned(),
            real,
        })
    }

    /// The content of `relative` when it is a file; `None` when absent. `Err` names why
    /// nothing may be written there: a component that is not a directory, a directory where
    /// the file goes, a symlink leading out of the directory.
    fn existing(&self, relative: &Path) -> std::result::Result<Option<Vec<u8>>, String> {
        let mut at = self.dir.clone();
        let mut shown = PathBuf::new();
        let parts: Vec<_> = relative.components().collect();
        for (index, part) in parts.iter().enumerate() {
            at.push(part);
            shown.push(part);
            let Ok(meta) = std::fs::symlink_metadata(&at) else {
                return Ok(None);
            };
            let meta = if meta.file_type().is_symlink() {
                let target = at.canonicalize().ok();
                let within = match (&target, &self.real) {
                    (Some(target), Some(real)) => target.starts_with(real),
                    _ => false,
                };
                if !within {
                    return Err(format!(
                        "{} is a symlink that does not stay inside the directory",
                        shown.display()
                    ));
                }
                std::fs::metadata(&at).map_err(|err| format!("{}: {err}", shown.display()))?
            } else {
                meta
            };
            let last = index + 1 == parts.len();
            if !last && !meta.is_dir() {
                return Err(format!("{} is a file, not a directory", shown.display()));
            }
            if last && meta.is_dir() {
                return Err(format!("{} is a directory, not a file", shown.display()));
            }
        }
        std::fs::read(&at)
            .map(Some)
            .map_err(|err| format!("{}: {err}", shown.display()))
    }
}
