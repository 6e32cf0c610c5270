//! source-controller's GitRepository: fetches `spec.url` at `spec.ref.branch` with the
//! credentials of `spec.secretRef` in Flux's format, and keeps the checkout as the artifact.
//!
//! The network part runs the `git` CLI, which speaks both https and ssh with per-fetch trust
//! (a CA file, a known_hosts file) instead of libgit2's process-wide certificate settings;
//! credentials pass through its environment, never argv. git2 reads the fetched commit.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use tempfile::TempDir;
use tokio::process::Command;

use super::artifacts::StoredArtifact;
use super::conditions::{mark_failed, mark_ready, parse_duration};
use super::runtime::{self, Context, ReconcileResult};
use super::types::{Artifact, FluxStatus, GitRepository};

const MANAGER: &str = "source-controller";

pub async fn run(ctx: Arc<Context>) {
    runtime::run(
        ctx,
        "gitrepositories.source.toolkit.fluxcd.io",
        MANAGER,
        reconcile,
    )
    .await;
}

/// Why a fetch failed, as Flux reports it in the Ready condition.
struct Failure {
    reason: &'static str,
    message: String,
}

fn failure(reason: &'static str, message: impl Into<String>) -> Failure {
    Failure {
        reason,
        message: message.into(),
    }
}

async fn reconcile(repo: Arc<GitRepository>, ctx: Arc<Context>) -> ReconcileResult {
    let namespace = repo.namespace().unwrap_or_default();
    let name = repo.name_any();
    let api: Api<GitRepository> = Api::namespaced(ctx.client.clone(), &namespace);
    let remove_artifact = || async {
        ctx.artifacts.remove(&namespace, &name);
        Ok(())
    };
    if let Some(done) = runtime::handle_finalizer(&api, &repo, MANAGER, remove_artifact).await? {
        return Ok(done);
    }
    if runtime::is_suspended(repo.spec.suspend) {
        return Ok(Action::await_change());
    }
    let attempt = match ctx.begin(&*repo, None) {
        Ok(attempt) => attempt,
        Err(not_due) => return Ok(not_due),
    };
    let interval = ctx.interval(Some(&repo.spec.interval));

    let generation = repo.metadata.generation;
    let mut status = repo.status.clone().unwrap_or_default();
    status.record_handled(generation, attempt.requested_at.clone());
    let (next, pace) = match fetch(&ctx, &repo, &namespace).await {
        Ok(stored) => {
            let message = format!("stored artifact for revision '{}'", stored.revision);
            let unchanged = status
                .artifact
                .as_ref()
                .is_some_and(|a| a.revision == stored.revision);
            if !unchanged {
                status.artifact = Some(artifact_of(&namespace, &name, &stored.revision));
            }
            ctx.artifacts.put(&namespace, &name, stored);
            mark_ready(&mut status.conditions, generation, "Succeeded", &message);
            (interval, true)
        }
        Err(Failure { reason, message }) => {
            mark_failed(&mut status.conditions, generation, reason, &message);
            (ctx.opts.retry_interval, true)
        }
    };
    ctx.end(attempt, next, pace);
    runtime::write_status(&api, &repo, MANAGER, repo.status.as_ref(), &status).await?;
    Ok(Action::requeue(next))
}

fn artifact_of(namespace: &str, name: &str, revision: &str) -> Artifact {
    let sha = revision.rsplit(':').next().unwrap_or_default();
    let path = format!("gitrepository/{namespace}/{name}/{sha}.tar.gz");
    Artifact {
        url: format!("http://source-controller.flux-system.svc.cluster.local./{path}"),
        path,
        revision: revision.to_owned(),
        digest: Some(format!("sha256:{sha}")),
        last_update_time: jiff::Timestamp::now().to_string(),
    }
}

/// Credentials read from the Secret, in the shape the transport needs.
enum Auth {
    Anonymous,
    Https {
        username: Option<String>,
        password: Option<String>,
        ca: Option<Vec<u8>>,
    },
    Ssh {
        identity: Vec<u8>,
        known_hosts: Vec<u8>,
    },
}

async fn fetch(
    ctx: &Context,
    repo: &GitRepository,
    namespace: &str,
) -> Result<StoredArtifact, Failure> {
    let auth = match &repo.spec.secret_ref {
        None => Auth::Anonymous,
        Some(reference) => {
            let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
            let secret_name = format!("{namespace}/{}", reference.name);
            let secret = secrets
                .get_opt(&reference.name)
                .await
                .map_err(|e| {
                    failure(
                        "AuthenticationFailed",
                        format!("failed to get secret '{secret_name}': {e}"),
                    )
                })?
                .ok_or_else(|| {
                    failure(
                        "AuthenticationFailed",
                        format!(
                            "failed to get secret '{secret_name}': secrets \"{}\" not found",
                            reference.name
                        ),
                    )
                })?;
            auth_from_secret(&repo.spec.url, &secret_name, &secret_data(secret)).map_err(
                |message| {
                    failure(
                        "AuthenticationFailed",
                        format!("failed to configure authentication options: {message}"),
                    )
                },
            )?
        }
    };
    // `ref.name` (`refs/heads/<branch>`, as the Flux Operator writes it) wins over
    // `ref.branch`, and names the revision: `refs/heads/main@sha1:<sha>`.
    let reference = repo.spec.reference.clone().unwrap_or_default();
    let (branch, label) = match reference.name {
        Some(name) => match name.strip_prefix("refs/heads/") {
            Some(branch) => (branch.to_owned(), name.clone()),
            None => {
                return Err(failure(
                    "GitOperationFailed",
                    format!("reference '{name}' is not a branch: not supported by the testkit"),
                ));
            }
        },
        None => {
            let branch = reference.branch.unwrap_or_else(|| "master".to_owned());
            (branch.clone(), branch)
        }
    };
    let timeout = repo
        .spec
        .timeout
        .as_deref()
        .and_then(parse_duration)
        .unwrap_or(Duration::from_secs(60));
    let current = ctx.artifacts.get(namespace, &repo.name_any());
    let git_failure = |message: String| {
        failure(
            "GitOperationFailed",
            format!("failed to checkout and determine revision: {message}"),
        )
    };
    let session = GitSession::new(&auth).map_err(|e| git_failure(format!("{e:#}")))?;
    let url = &repo.spec.url;
    let listed = session
        .run(
            &["ls-remote", "--", url, &format!("refs/heads/{branch}")],
            timeout,
        )
        .await
        .map_err(|e| git_failure(format!("unable to list remote for '{url}': {e}")))?;
    let Some(sha) = listed.split_whitespace().next().map(str::to_owned) else {
        return Err(git_failure(format!(
            "unable to clone '{url}': couldn't find remote ref \"refs/heads/{branch}\""
        )));
    };
    let revision = format!("{label}@sha1:{sha}");
    if let Some(current) = current.filter(|c| c.revision == revision) {
        return Ok(current);
    }
    let checkout = TempDir::new().map_err(|e| git_failure(e.to_string()))?;
    let target = checkout.path().to_string_lossy().into_owned();
    session
        .run(
            &[
                "clone",
                "--quiet",
                "--single-branch",
                "--branch",
                &branch,
                "--",
                url,
                &target,
            ],
            timeout,
        )
        .await
        .map_err(|e| git_failure(format!("unable to clone '{url}': {e}")))?;
    let head = head_commit(checkout.path()).map_err(|e| git_failure(e.to_string()))?;
    Ok(StoredArtifact::new(
        format!("{label}@sha1:{head}"),
        checkout,
    ))
}

fn head_commit(dir: &Path) -> Result<String, git2::Error> {
    let repo = git2::Repository::open(dir)?;
    Ok(repo.head()?.peel_to_commit()?.id().to_string())
}

/// A Secret's values as an API server returns them: all in `data` (`stringData` is write-only).
fn secret_data(secret: Secret) -> BTreeMap<String, Vec<u8>> {
    secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

/// Flux's Secret formats: https `username`/`password` (+ `ca.crt`), ssh `identity`
/// (+ `identity.pub`) and `known_hosts`. Errors name the missing key.
fn auth_from_secret(
    url: &str,
    secret_name: &str,
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<Auth, String> {
    let text = |key: &str| {
        data.get(key)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let missing = |scheme: &str, key: &str| {
        format!("invalid '{scheme}' auth option: secret '{secret_name}' is missing key '{key}'")
    };
    if url.starts_with("ssh://") || (url.contains('@') && !url.contains("://")) {
        let identity = data
            .get("identity")
            .ok_or_else(|| missing("ssh", "identity"))?;
        let known_hosts = data
            .get("known_hosts")
            .ok_or_else(|| missing("ssh", "known_hosts"))?;
        return Ok(Auth::Ssh {
            identity: identity.clone(),
            known_hosts: known_hosts.clone(),
        });
    }
    let (username, password) = (text("username"), text("password"));
    match (&username, &password) {
        (Some(_), None) => return Err(missing("https", "password")),
        (None, Some(_)) => return Err(missing("https", "username")),
        (None, None) if !data.contains_key("ca.crt") && !data.contains_key("bearerToken") => {
            return Err(missing("https", "username"));
        }
        _ => {}
    }
    Ok(Auth::Https {
        username,
        password,
        ca: data.get("ca.crt").cloned(),
    })
}

/// A private scratch dir with the files the `git` CLI needs for one fetch (CA bundle, askpass
/// helper, ssh key 0600), removed on drop.
struct GitSession {
    dir: TempDir,
    env: Vec<(String, String)>,
}

const ASKPASS: &str = "#!/bin/sh\ncase \"$1\" in\n  Username*) printf '%s\\n' \"$TESTKIT_GIT_USERNAME\" ;;\n  *) printf '%s\\n' \"$TESTKIT_GIT_PASSWORD\" ;;\nesac\n";

impl GitSession {
    fn new(auth: &Auth) -> anyhow::Result<GitSession> {
        let dir = TempDir::new()?;
        let path = |file: &str| dir.path().join(file).to_string_lossy().into_owned();
        let mut env = vec![
            ("HOME".to_owned(), path("")),
            ("GIT_TERMINAL_PROMPT".to_owned(), "0".to_owned()),
            ("GIT_CONFIG_NOSYSTEM".to_owned(), "1".to_owned()),
            ("GIT_CONFIG_GLOBAL".to_owned(), "/dev/null".to_owned()),
            ("GIT_ASKPASS".to_owned(), path("askpass")),
        ];
        write_private(&dir.path().join("askpass"), ASKPASS.as_bytes(), 0o700)?;
        match auth {
            Auth::Anonymous => {}
            Auth::Https {
                username,
                password,
                ca,
            } => {
                env.push((
                    "TESTKIT_GIT_USERNAME".to_owned(),
                    username.clone().unwrap_or_default(),
                ));
                env.push((
                    "TESTKIT_GIT_PASSWORD".to_owned(),
                    password.clone().unwrap_or_default(),
                ));
                if let Some(ca) = ca {
                    write_private(&dir.path().join("ca.crt"), ca, 0o600)?;
                    env.push(("GIT_SSL_CAINFO".to_owned(), path("ca.crt")));
                }
            }
            Auth::Ssh {
                identity,
                known_hosts,
            } => {
                let mut identity = identity.clone();
                if !identity.ends_with(b"\n") {
                    identity.push(b'\n');
                }
                write_private(&dir.path().join("identity"), &identity, 0o600)?;
                write_private(&dir.path().join("known_hosts"), known_hosts, 0o600)?;
                let command = format!(
                    "ssh -i '{}' -o IdentitiesOnly=yes -o UserKnownHostsFile='{}' -o StrictHostKeyChecking=yes -o BatchMode=yes -F /dev/null",
                    path("identity"),
                    path("known_hosts")
                );
                env.push(("GIT_SSH_COMMAND".to_owned(), command));
            }
        }
        Ok(GitSession { dir, env })
    }

    async fn run(&self, args: &[&str], timeout: Duration) -> Result<String, String> {
        let mut command = Command::new("git");
        command
            .args(args)
            .current_dir(self.dir.path())
            .envs(self.env.iter().cloned())
            .kill_on_drop(true);
        let output = tokio::time::timeout(timeout, command.output())
            .await
            .map_err(|_| format!("timed out after {timeout:?}"))?
            .map_err(|e| format!("cannot run git: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
        }
    }
}

fn write_private(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(keys: &[&str]) -> BTreeMap<String, Vec<u8>> {
        keys.iter()
            .map(|k| ((*k).to_owned(), b"x".to_vec()))
            .collect()
    }

    #[test]
    fn https_secret_needs_username_and_password() {
        let url = "https://127.0.0.1:1/repo.git";
        assert!(matches!(
            auth_from_secret(url, "ns/s", &data(&["username", "password", "ca.crt"])),
            Ok(Auth::Https { ca: Some(_), .. })
        ));
        let err = auth_from_secret(url, "ns/s", &data(&["username"]))
            .err()
            .unwrap();
        assert!(err.contains("'password'"), "{err}");
        let err = auth_from_secret(url, "ns/s", &data(&["identity", "known_hosts"]))
            .err()
            .unwrap();
        assert!(err.contains("'username'"), "{err}");
    }

    #[test]
    fn ssh_secret_needs_identity_and_known_hosts() {
        let url = "ssh://git@127.0.0.1:2222/repo.git";
        assert!(matches!(
            auth_from_secret(
                url,
                "ns/s",
                &data(&["identity", "identity.pub", "known_hosts"])
            ),
            Ok(Auth::Ssh { .. })
        ));
        let err = auth_from_secret(url, "ns/s", &data(&["identity"]))
            .err()
            .unwrap();
        assert!(err.contains("'known_hosts'"), "{err}");
        let err = auth_from_secret(url, "ns/s", &data(&["username", "password"]))
            .err()
            .unwrap();
        assert!(err.contains("'identity'"), "{err}");
    }
}
