//! Reliability through the real binary: Git servers that accept and never answer, interrupts
//! (SIGINT, SIGTERM, twice) while something hangs, tokens refused over plain http, a table of
//! bad inputs that must end with the documented exit code, the cause and the fix, writing
//! nothing, SIGKILL at every step followed by a rerun, and secrets kept out of every output.
//! The cases that need a cluster use the sandbox (test cluster, HTTPS Git server).

mod bad_input;
mod bad_targets;
mod faults;
mod hangs;
mod kills;
mod secrets;
mod silence;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use kube::ResourceExt as _;
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::{Discovery, verbs};
use testkit::env_config::{ConfigFile, EnvConfig, Push, Repository};

/// A project directory with a config for env `dev` on terraform/existing and the repository at
/// `repo_url`; tokens come from the environment the runs set.
struct Project {
    dir: tempfile::TempDir,
}

const PUSH_TOKEN: &str = "push-canary-3f9a1c";
const READ_TOKEN: &str = "read-canary-8d2e77";

const AUTHOR: (&str, &str) = ("Bootstrap Bot", "bot@example.test");

impl Project {
    fn new(repo_url: &str) -> Project {
        let push = Push::token("REL_GIT_TOKEN");
        Project::with_repository(
            Repository::new(repo_url, AUTHOR, push).with_read_token("REL_GIT_READ_TOKEN"),
        )
    }

    /// The repository at the ssh `repo_url`, pushed to with a key: `known_hosts` stands in for
    /// the key too, as the server never gets as far as asking for it.
    fn over_ssh(repo_url: &str, known_hosts: &std::path::Path) -> Project {
        let push = Push::SshKey {
            key_file: known_hosts.to_owned(),
            known_hosts: known_hosts.to_owned(),
        };
        Project::with_repository(Repository::new(repo_url, AUTHOR, push))
    }

    fn with_repository(repository: Repository) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\n").unwrap();
        let module = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("terraform/existing");
        let dev = EnvConfig::on_module(module, "standard")
            .with_flux_version("v2.4.0")
            .with_variable("cluster_name", "dev")
            .with_variable("kubeconfig_path", kubeconfig.display().to_string());
        let project = Project { dir };
        project.write_config(
            &ConfigFile::of_env("dev", dev)
                .with_repository(repository)
                .to_toml(),
        );
        project
    }

    fn write_config(&self, text: &str) {
        std::fs::write(self.dir.path().join("gitops-bootstrap.toml"), text).unwrap();
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_gitops-bootstrap"));
        command
            .args(args)
            .env_remove("GITOPS_BOOTSTRAP_CONFIG")
            .env_remove("GITOPS_BOOTSTRAP_GIT_TIMEOUT")
            .env("REL_GIT_TOKEN", PUSH_TOKEN)
            .env("REL_GIT_READ_TOKEN", READ_TOKEN);
        crate::support::isolated(command, self.dir.path())
    }

    async fn run(&self, args: &[&str]) -> (i32, String, Duration) {
        let started = Instant::now();
        let output = tokio::time::timeout(Duration::from_secs(120), self.command(args).output())
            .await
            .expect("the run hung past the test's limit")
            .unwrap();
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code().unwrap_or(-1), text, started.elapsed())
    }

    /// Nothing the tool writes for an env exists beyond its lock file and run record.
    fn assert_no_clone(&self) {
        let repo = self.dir.path().join(".gitops-bootstrap/dev/repo");
        assert!(
            !repo.join(".git").exists(),
            "no working clone was made at {}",
            repo.display()
        );
    }
}

/// What a run's output says went wrong: every line from its `✘ error:` on (the error and its
/// hint); for a report of checks (doctor), each failed check with its fix; else (a usage
/// error) all of it.
fn told(output: &str) -> String {
    let report: Vec<&str> = output
        .lines()
        .skip_while(|line| !line.contains("✘ error:"))
        .collect();
    if !report.is_empty() {
        return report.join("\n");
    }
    let mut failed = Vec::new();
    let mut inside = false;
    for line in output.lines() {
        inside = line.starts_with("✘ ") || (inside && line.starts_with("  "));
        if inside {
            failed.push(line);
        }
    }
    if failed.is_empty() {
        return output.trim().to_owned();
    }
    failed.join("\n")
}

/// A TCP port that accepts connections (the kernel completes the handshake for the backlog)
/// and never answers: a Git host that hangs.
fn silent_server() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Kinds whose objects come and go on their own, whoever runs.
const TRANSIENT_KINDS: [&str; 2] = ["Event", "Lease"];

/// The controller-manager publishes this ConfigMap in every namespace on its own, whenever a
/// namespace appears: it follows the namespaces, not what a run wrote.
const PUBLISHED_IN_EVERY_NAMESPACE: (&str, &str) = ("ConfigMap", "kube-root-ca.crt");

/// Every object of the cluster as `Kind namespace/name` with its labels and its data keys
/// (ConfigMaps, Secrets); values that change between equal runs (uids, versions, times, the
/// secrets' contents) are left out.
async fn objects(client: &kube::Client) -> BTreeSet<String> {
    // Objects on their way out (a namespace emptying itself) are given time to go.
    for _ in 0..60 {
        let listing = listing(client).await;
        if !listing.iter().any(|line| line.ends_with(TERMINATING)) {
            return listing;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    listing(client).await
}

const TERMINATING: &str = " (terminating)";

async fn listing(client: &kube::Client) -> BTreeSet<String> {
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovering the cluster's resources");
    let mut listing = BTreeSet::new();
    for group in discovery.groups() {
        for (resource, capabilities) in group.recommended_resources() {
            if !capabilities.supports_operation(verbs::LIST)
                || TRANSIENT_KINDS.contains(&resource.kind.as_str())
            {
                continue;
            }
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            let items = api
                .list(&ListParams::default())
                .await
                .unwrap_or_else(|err| panic!("listing {}: {err}", resource.kind))
                .items;
            for object in items {
                if (resource.kind.as_str(), object.name_any().as_str())
                    == PUBLISHED_IN_EVERY_NAMESPACE
                {
                    continue;
                }
                let data: BTreeSet<String> = ["data", "stringData", "binaryData"]
                    .iter()
                    .filter_map(|field| object.data.get(field)?.as_object())
                    .flat_map(|map| map.keys().cloned())
                    .collect();
                let going = object.metadata.deletion_timestamp.is_some();
                listing.insert(format!(
                    "{} {}/{} labels={:?} data={data:?}{}",
                    resource.kind,
                    object.namespace().unwrap_or_default(),
                    object.name_any(),
                    object.labels(),
                    if going { TERMINATING } else { "" },
                ));
            }
        }
    }
    listing
}
