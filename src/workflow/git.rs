//! The GitOps repository as the workflows see it: the config mapped onto the gitops module's
//! types, Flux's read credentials, and git2's blocking calls kept off the async threads.

use secrecy::{ExposeSecret as _, SecretString};

use crate::cluster::GitReadCredentials;
use crate::config::{EnvConfig, GitTransport, PushCredentials, RepositoryConfig};
use crate::error::{Error, Result};
use crate::gitops::{DeployKey, GitCredentials, GitError, RepoSpec, Workspace, check_access};
use crate::render;

/// Runs blocking git2 work on tokio's blocking pool.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| Error::failure(format!("a Git operation stopped unexpectedly: {err}")))?
}

/// What the env's branch holds that doctor checks: whether its profile directory is there,
/// and the age recipient committed in `clusters/<env>/.sops.yaml`. Read from a throwaway clone:
/// doctor holds no env lock and must not touch the env's own clone.
pub struct BranchFacts {
    pub profile_exists: bool,
    pub committed_recipient: Option<String>,
}

pub async fn branch_facts(env: &EnvConfig) -> Result<BranchFacts> {
    let spec = push_spec(env)?;
    let profile = spec.prefixed(&format!("{}/{}", env.repository.profiles_dir, env.profile));
    let sops = format!(
        "{}/{}",
        render::cluster_dir(&env.repository.path, &env.name),
        render::SOPS_FILE
    );
    blocking(move || {
        let dir = tempfile::tempdir().map_err(|err| {
            Error::failure(format!("failed to create a temporary directory: {err}"))
        })?;
        let workspace = Workspace::open_or_clone(dir.path(), spec)?;
        let committed_recipient = workspace
            .read_file(&sops)?
            .and_then(|bytes| render::sops_recipient(&String::from_utf8_lossy(&bytes)));
        Ok(BranchFacts {
            profile_exists: workspace.path_exists(&profile)?,
            committed_recipient,
        })
    })
    .await
}

/// The commit the env's branch points at (`git ls-remote`), `None` when it has none.
pub async fn branch_tip(env: &EnvConfig) -> Result<Option<String>> {
    let spec = push_spec(env)?;
    blocking(move || Ok(check_access(&spec)?.branch_head)).await
}

/// The repository with the operator's push credentials, read from the environment variable the
/// config names.
pub fn push_spec(env: &EnvConfig) -> Result<RepoSpec> {
    let repo = &env.repository;
    let credentials = match &repo.push {
        PushCredentials::Token {
            token_env,
            username,
        } => GitCredentials::Token {
            username: username.clone(),
            token: token_from_env(token_env, &env.name, "push")?,
        },
        PushCredentials::SshKey {
            key_file,
            known_hosts,
        } => GitCredentials::SshKey {
            key_file: key_file.clone(),
            known_hosts: known_hosts.clone(),
        },
        PushCredentials::SshAgent { known_hosts } => GitCredentials::SshAgent {
            known_hosts: known_hosts.clone(),
        },
    };
    Ok(RepoSpec {
        url: repo.url.clone(),
        branch: repo.branch.clone(),
        path_prefix: repo.path.clone(),
        author_name: repo.author_name.clone(),
        author_email: repo.author_email.clone(),
        ca_file: repo.ca_file.clone(),
        credentials,
    })
}

fn token_from_env(var: &str, env: &str, purpose: &str) -> Result<SecretString> {
    match std::env::var(var) {
        Ok(token) if !token.is_empty() => Ok(SecretString::from(token)),
        _ => Err(Error::bad_input(format!(
            "the Git {purpose} token of env {env} is missing: environment variable {var} is not set"
        ))
        .with_hint(format!(
            "export {var}=<token> (the config names the variable, never the token)"
        ))),
    }
}

/// How preflight proves that Flux's read token can read the repository, so a wrong one stops
/// the run there rather than failing in Flux a moment after create-env said all was well. An
/// ssh deploy key is not checked: on a first run it cannot be registered yet.
pub enum ReadCheck {
    /// A token of its own, checked over its own connection.
    Separate(GitReadCredentials),
    /// Nothing to check: ssh, or read credentials that are incomplete (told in their turn).
    Nothing,
}

impl ReadCheck {
    /// A read token that is the push token itself is refused (as the config refuses one
    /// variable for both): Flux would hold write access to the repository in the cluster.
    pub fn of(env: &EnvConfig) -> Result<ReadCheck> {
        if env.repository.transport() != GitTransport::Http {
            return Ok(ReadCheck::Nothing);
        }
        let Ok(read) = read_credentials(env, None) else {
            return Ok(ReadCheck::Nothing);
        };
        let push = push_spec(env).map(|spec| spec.credentials);
        if let (GitReadCredentials::Https { password, .. }, Ok(GitCredentials::Token { token, .. })) =
            (&read, push)
            && password.expose_secret() == token.expose_secret()
        {
            let token_env = env.repository.read.token_env.clone().unwrap_or_default();
            return Err(Error::bad_input(format!(
                "Flux's read token ({token_env}) is the push token: Flux would keep write \
                 access to the repository in the cluster"
            ))
            .with_hint(format!(
                "create a token with read access only and put it in {token_env}"
            )));
        }
        Ok(ReadCheck::Separate(read))
    }

    /// The check of a separate token (the others need none).
    pub async fn run(self, env: &EnvConfig) -> Result<()> {
        let ReadCheck::Separate(GitReadCredentials::Https {
            username, password, ..
        }) = self
        else {
            return Ok(());
        };
        let mut spec = push_spec(env)?;
        spec.credentials = GitCredentials::Token {
            username,
            token: password,
        };
        let token_env = env.repository.read.token_env.clone().unwrap_or_default();
        let url = env.repository.url.clone();
        blocking(move || match check_access(&spec) {
            Ok(_) => Ok(()),
            Err(
                err @ (GitError::AuthFailed { .. }
                | GitError::AccessDenied { .. }
                | GitError::NotFound { .. }),
            ) => Err(Error::bad_input(format!(
                "Flux's read token ({token_env}) cannot read {url}: {err}"
            ))
            .with_hint(format!(
                "put a token with read access to the repository in {token_env} (Flux reads with \
                 it; the push token never enters the cluster)"
            ))),
            Err(err) => Err(err.into()),
        })
        .await
    }
}

/// Flux's own read credentials: a separate read token for https, the per-env deploy key for ssh.
/// The operator's push credentials never enter the cluster.
pub fn read_credentials(
    env: &EnvConfig,
    deploy_key: Option<&DeployKey>,
) -> Result<GitReadCredentials> {
    let repo: &RepositoryConfig = &env.repository;
    match deploy_key {
        None => {
            let Some(token_env) = &repo.read.token_env else {
                return Err(Error::bad_input(format!(
                    "env {} has no read credentials for Flux: [envs.{}.repository.read] token_env is not set",
                    env.name, env.name
                ))
                .with_hint("create a read-only token for the repository and name its environment variable in `read.token_env`; the push token never enters the cluster"));
            };
            let ca_pem = match &repo.ca_file {
                Some(path) => Some(std::fs::read_to_string(path).map_err(|err| {
                    Error::bad_input(format!(
                        "failed to read the repository CA file {}: {err}",
                        path.display()
                    ))
                })?),
                None => None,
            };
            Ok(GitReadCredentials::Https {
                username: repo.read.username().to_owned(),
                password: token_from_env(token_env, &env.name, "read")?,
                ca_pem,
            })
        }
        Some(key) => {
            let known_hosts_file = repo.flux_known_hosts().ok_or_else(|| {
                Error::bad_input(format!(
                    "env {} uses ssh but names no known_hosts file for Flux",
                    env.name
                ))
                .with_hint(format!(
                    "set [envs.{}.repository.read] known_hosts",
                    env.name
                ))
            })?;
            let known_hosts = std::fs::read_to_string(known_hosts_file).map_err(|err| {
                Error::bad_input(format!(
                    "failed to read known_hosts {}: {err}",
                    known_hosts_file.display()
                ))
            })?;
            Ok(GitReadCredentials::Ssh {
                identity: key.private.clone(),
                identity_pub: key.public_openssh.clone(),
                known_hosts,
            })
        }
    }
}
