//! branch-tip (status --drift): the commit the env's branch points at on the remote
//! (`ls-remote`), which Flux should have applied.

use crate::config::EnvConfig;
use crate::error::{Error, Result};
use crate::report::short_sha;
use crate::workflow::{Outcome, git};

pub async fn run(env: &EnvConfig) -> Result<(Outcome, String)> {
    let tip = git::branch_tip(env).await?.ok_or_else(|| {
        Error::bad_input(format!(
            "branch {} of {} does not exist: env {} was never committed",
            env.repository.branch, env.repository.url, env.name
        ))
    })?;
    Ok((Outcome::Done(short_sha(&tip).to_owned()), tip))
}
