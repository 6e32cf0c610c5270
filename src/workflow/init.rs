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

/// Writes every scaffold file into `dir`. A file already there with the same content is left
/// alone; one with other content stops `init` before anything is written, unless `force`.
pub fn run(dir: &Path, force: bool) -> Result<InitSummary> {
    let mut summary = InitSummary {
        dir: dir.to_owned(),
        written: Vec::new(),
        unchanged: Vec::new(),
        overwritten: Vec::new(),
    };
    let mut pending = Vec::new();
    for (relative, contents) in scaffold::files() {
        let path = dir.join(&relative);
        let name = relative.to_string_lossy().into_owned();
        match std::fs::read(&path) {
            Ok(existing) if existing == contents => summary.unchanged.push(name),
            Ok(_) => {
                summary.overwritten.push(name);
                pending.push((path, contents));
            }
            Err(_) => {
                summary.written.push(name);
                pending.push((path, contents));
            }
        }
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
