//! observe (teardown's first step): everything the run will need, checked before anything is
//! deleted — the Terraform state (through the root's own backend), push rights to the
//! repository (not with `--keep-repo`, which needs no Git server at all), and what [`reach`]
//! finds of the cluster: credentials, ownership, whether it answers; in pull-request mode, that
//! the proposal branch holds no one else's commits. Changes nothing.

use tokio_util::sync::CancellationToken;

use crate::config::{Config, EnvConfig};
use crate::error::Result;
use crate::gitops::Workspace;
use crate::render::cluster_dir;
use crate::terraform::{EnvRoot, Terraform};
use crate::workflow::phases::preflight::open_with_push_rights;
use crate::workflow::phases::reach::{self, Patience, Reach, TeardownTarget};
use crate::workflow::proposal;
use crate::workflow::teardown::TeardownOptions;
use crate::workflow::{EnvPaths, Outcome, terraform};

/// What exists of an env, and what teardown does with its cluster.
pub struct Observed {
    pub terraform: Terraform,
    pub root: EnvRoot,
    pub cluster: TeardownTarget,
    /// Terraform manages resources of the env.
    pub has_state: bool,
    /// The working clone with push rights checked, and whether `clusters/<env>/` is on the
    /// branch; `None` with `--keep-repo`.
    pub repository: Option<(Workspace, bool)>,
}

pub async fn run(
    config: &Config,
    env: &EnvConfig,
    paths: &EnvPaths,
    options: &TeardownOptions,
    cancel: &CancellationToken,
) -> Result<(Outcome, Observed)> {
    let binary = options.terraform_binary.as_deref();
    let (tf, root) = terraform::prepare(config, env, binary, cancel).await?;
    let repository = match options.keep_repo {
        true => None,
        false => {
            let workspace = open_with_push_rights(env, paths).await?;
            let in_git = workspace.path_exists(&cluster_dir(&env.repository.path, &env.name))?;
            // Before anything is removed: a removal that could never be proposed must not
            // start.
            let workspace = match options.via_branch && in_git {
                true => proposal::check_branch(workspace, env, "teardown").await?,
                false => workspace,
            };
            Some((workspace, in_git))
        }
    };
    let found = reach::run(&tf, &root, env, Patience::Within(options.timeout), cancel).await?;
    let has_state = !matches!(found, Reach::Gone { .. });
    let mut facts = vec![found.describe()];
    facts.push(match &repository {
        None => "Git not needed (--keep-repo)".to_owned(),
        Some((_, true)) => "push rights · clusters dir in Git".to_owned(),
        Some((_, false)) => "push rights · nothing in Git".to_owned(),
    });
    let cluster = found.for_teardown(&env.name, options.leave_cluster, options.force)?;
    let observed = Observed {
        terraform: tf,
        root,
        cluster,
        has_state,
        repository,
    };
    Ok((Outcome::Done(facts.join(" · ")), observed))
}
