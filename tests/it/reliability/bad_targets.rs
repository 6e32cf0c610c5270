//! Bad input from what the tool works on rather than from its config: Terraform outputs that
//! break the contract, repositories that cannot be used, clusters that refuse or vanish, age
//! keys that are wrong or badly kept. One sandbox serves the whole table; each case gets a
//! repository, a key directory and a local state of its own, and must end with its exit code,
//! the cause and the fix, having written nothing after the step that failed: no commit, no
//! objects beyond what the steps before it apply, no temp file, no lock left held.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use testkit::env_config::EnvConfig;
use tokio::io::AsyncBufReadExt as _;

use super::{objects, walk};
use crate::support::sandbox::{BRANCH, ENV, Sandbox};

/// How a case breaks the sandbox before its run.
#[derive(Debug, Clone, Copy)]
enum Break {
    /// Nothing: the case's arguments are what is wrong.
    Intact,
    /// `from` replaced by `to` in `outputs.tf` of a copy of terraform/existing.
    Outputs(&'static str, &'static str),
    /// `cluster_config` gets a value over a MiB, read from a file by the module.
    HugeOutput,
    /// The repository URL points at a port nothing listens on.
    UnreachableRepository,
    PushToken(&'static str),
    ProtectedBranch,
    ClusterToken,
    /// The kubeconfig trusts another CA than the API server's.
    ClusterCa,
    /// The Flux components file lacks the CustomResourceDefinition of `kind`.
    MissingCrd(&'static str),
    /// The API server stops once the run has connected.
    ApiGoneAfterConnect,
    /// The repository names an age recipient; the key file holds another identity.
    WrongAgeKey,
    /// The key file is a directory.
    UnreadableAgeKey,
    /// The key file holds the env's identity, readable by everyone.
    OpenAgeKey,
}

struct Case {
    name: &'static str,
    broken: Break,
    args: &'static [&'static str],
    code: i32,
    /// The step that fails, and fragments of the error (the cause) and of the hint (the fix).
    step: &'static str,
    says: &'static [&'static str],
}

const CREATE: &[&str] = &["create-env", ENV, "--yes"];

fn cases() -> Vec<Case> {
    let case = |name, broken, code, step, says| Case {
        name,
        broken,
        args: CREATE,
        code,
        step,
        says,
    };
    vec![
        // Terraform outputs.
        case(
            "output missing",
            Break::Outputs("output \"cluster_name\"", "output \"the_cluster_name\""),
            2,
            "preflight",
            &[
                "Terraform output `cluster_name` is missing",
                "map it with `cluster_name = \"the_cluster_name\"`",
            ],
        ),
        case(
            "output of the wrong type",
            Break::Outputs(
                "value       = var.cluster_config",
                "value       = \"not a map\"",
            ),
            2,
            "terraform",
            &["`cluster_config`", "needs", "hint:"],
        ),
        case(
            "secret output not sensitive",
            Break::Outputs(
                "value       = local.kubeconfig\n  sensitive   = true",
                "value       = nonsensitive(local.kubeconfig)",
            ),
            2,
            "preflight",
            &[
                "holds a secret but is not marked sensitive",
                "sensitive = true",
            ],
        ),
        case(
            "output over a MiB",
            Break::HugeOutput,
            2,
            "terraform",
            &["over Kubernetes' limit", "hint:"],
        ),
        case(
            "nested lists in an output",
            Break::Outputs(
                "value       = var.cluster_config",
                "value       = { zones = [[\"a\", \"b\"], [\"c\"]] }",
            ),
            2,
            "terraform",
            &["`cluster_config`", "hint:"],
        ),
        // The repository.
        case(
            "repository unreachable",
            Break::UnreachableRepository,
            1,
            "preflight",
            &["https://127.0.0.1:", "hint:"],
        ),
        case(
            "wrong push credentials",
            Break::PushToken("wrong-push-token-77e1"),
            2,
            "preflight",
            &[
                "the server rejected the credentials",
                "the token in environment variable SANDBOX_GIT_PUSH_TOKEN",
            ],
        ),
        Case {
            name: "missing profile path",
            broken: Break::Intact,
            args: &["create-env", ENV, "--yes", "--profile", "nowhere"],
            code: 2,
            step: "preflight",
            says: &["profile nowhere does not exist", "hint:"],
        },
        // The cluster.
        case(
            "cluster token refused (401)",
            Break::ClusterToken,
            2,
            "connect",
            &["401", "hint:"],
        ),
        case(
            "cluster CA wrong",
            Break::ClusterCa,
            2,
            "connect",
            &["certificate", "hint:"],
        ),
        case(
            "Flux CRD missing",
            Break::MissingCrd("Kustomization"),
            2,
            "preflight",
            &[
                "CustomResourceDefinition kustomizations.kustomize.toolkit.fluxcd.io missing",
                "pass Flux's install.yaml",
            ],
        ),
        // Keys.
        case(
            "wrong age key",
            Break::WrongAgeKey,
            2,
            "preflight",
            &["no age key for env dev matching", "AGE-SECRET-KEY-1"],
        ),
        case(
            "age key unreadable",
            Break::UnreadableAgeKey,
            2,
            "preflight",
            &["failed to read age key file", "hint:"],
        ),
        case(
            "age key readable by others",
            Break::OpenAgeKey,
            2,
            "preflight",
            &["readable by others (permissions 0644)", "chmod 600"],
        ),
        // After these, the cluster holds what the steps before the failure applied.
        case(
            "protected branch",
            Break::ProtectedBranch,
            2,
            "commit",
            &["rejected", "hint:"],
        ),
        case(
            "API server gone after connect",
            Break::ApiGoneAfterConnect,
            1,
            "config-and-secrets",
            &["stopped answering after connect", "rerun"],
        ),
    ]
}

/// What a case's run is given.
struct Prepared {
    config: EnvConfig,
    env: Vec<(&'static str, String)>,
}

/// A repository of its own for case `n`, seeded like the sandbox's.
fn case_repository(sandbox: &Sandbox, n: usize) -> String {
    let name = format!("case-{n}");
    sandbox.git.create_repo(&name).unwrap();
    let profiles = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    sandbox
        .git
        .commit_dir(&name, BRANCH, &profiles, "seed")
        .unwrap();
    name
}

fn module_copy(sandbox: &Sandbox, n: usize) -> std::path::PathBuf {
    let module = sandbox.path(&format!("module-{n}"));
    let existing = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("terraform/existing");
    crate::support::copy_dir(&existing, &module);
    module
}

fn replace_in(path: &std::path::Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} holds {from}", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

fn age_key(sandbox: &Sandbox, repo: &str) -> std::path::PathBuf {
    sandbox.age_key_file_for(&sandbox.git.url(repo))
}

/// Commits `.sops.yaml` naming a new recipient to the case's repository; its identity.
fn committed_recipient(sandbox: &Sandbox, repo: &str) -> String {
    use secrecy::ExposeSecret as _;
    let identity = age::x25519::Identity::generate();
    let sops = format!(
        "creation_rules:\n  - path_regex: .*\\.sops\\.yaml$\n    age: {}\n",
        identity.to_public()
    );
    sandbox
        .git
        .commit_files(
            repo,
            BRANCH,
            &[("clusters/dev/.sops.yaml", &sops)],
            "an env with a key",
        )
        .unwrap();
    identity.to_string().expose_secret().to_owned()
}

fn write_key(sandbox: &Sandbox, repo: &str, identity: &str, mode: u32) {
    let path = age_key(sandbox, repo);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, format!("{identity}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn prepare(sandbox: &Sandbox, n: usize, repo: &str, broken: Break) -> Prepared {
    let mut kubeconfig = sandbox.cluster.kubeconfig_path().to_owned();
    let mut repo_url = sandbox.git.url(repo);
    let mut module = None;
    let mut env = Vec::new();
    let mut components = None;
    match broken {
        Break::Outputs(from, to) => {
            let copy = module_copy(sandbox, n);
            replace_in(&copy.join("outputs.tf"), from, to);
            module = Some(copy);
        }
        Break::HugeOutput => {
            let copy = module_copy(sandbox, n);
            std::fs::write(copy.join("big.txt"), "x".repeat(1_100_000)).unwrap();
            replace_in(
                &copy.join("outputs.tf"),
                "value       = var.cluster_config",
                "value       = merge(var.cluster_config, { big = file(\"${path.module}/big.txt\") })",
            );
            module = Some(copy);
        }
        Break::UnreachableRepository => {
            let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            repo_url = format!(
                "https://127.0.0.1:{}/gitops.git",
                closed.local_addr().unwrap().port()
            );
        }
        Break::PushToken(token) => env.push(("SANDBOX_GIT_PUSH_TOKEN", token.to_owned())),
        Break::Intact | Break::ApiGoneAfterConnect => {}
        Break::ProtectedBranch => sandbox.git.protect_branch(repo, BRANCH).unwrap(),
        Break::ClusterToken | Break::ClusterCa => {
            // Parsed, not read line by line: a kubeconfig may be written in flow style.
            let mut config: serde_yaml_ng::Value =
                serde_yaml_ng::from_str(sandbox.cluster.kubeconfig_yaml()).unwrap();
            match broken {
                Break::ClusterToken => {
                    config["users"][0]["user"]["token"] = "not-the-token".into();
                }
                _ => {
                    use base64::Engine as _;
                    let other_ca =
                        base64::engine::general_purpose::STANDARD.encode(sandbox.git.ca_pem());
                    config["clusters"][0]["cluster"]["certificate-authority-data"] =
                        other_ca.into();
                }
            }
            kubeconfig = sandbox.path(&format!("kubeconfig-{n}"));
            std::fs::write(&kubeconfig, serde_yaml_ng::to_string(&config).unwrap()).unwrap();
        }
        Break::MissingCrd(kind) => {
            let manifest =
                testkit::flux::components_manifest(crate::support::sandbox::FLUX_VERSION);
            let kept: Vec<&str> = manifest
                .split("\n---")
                .filter(|doc| {
                    !(doc.contains("kind: CustomResourceDefinition")
                        && doc.contains(&format!("kind: {kind}\n")))
                })
                .collect();
            assert!(
                kept.len() < manifest.split("\n---").count(),
                "{kind}'s CRD removed"
            );
            let path = sandbox.path(&format!("components-{n}.yaml"));
            std::fs::write(&path, kept.join("\n---")).unwrap();
            components = Some(path);
        }
        Break::WrongAgeKey => {
            committed_recipient(sandbox, repo);
            let other = age::x25519::Identity::generate();
            use secrecy::ExposeSecret as _;
            write_key(sandbox, repo, other.to_string().expose_secret(), 0o600);
        }
        Break::UnreadableAgeKey => std::fs::create_dir_all(age_key(sandbox, repo)).unwrap(),
        Break::OpenAgeKey => {
            let identity = committed_recipient(sandbox, repo);
            write_key(sandbox, repo, &identity, 0o644);
        }
    }
    let mut config = sandbox.env_config("sandbox", &kubeconfig, &repo_url);
    if let Some(module) = module {
        config.module = Some(module);
    }
    if let Some(components) = components {
        config.flux_manifests = Some(components.display().to_string());
    }
    Prepared { config, env }
}

/// Runs the case; with [`Break::ApiGoneAfterConnect`] the API server is stopped once the run
/// says it connected. Exit code and everything printed.
async fn run_case(sandbox: &mut Sandbox, case: &Case, prepared: &Prepared) -> (i32, String) {
    let mut args = case.args.to_vec();
    args.extend(["--timeout", "60s"]);
    if !matches!(case.broken, Break::ApiGoneAfterConnect) {
        let env: Vec<(&str, &str)> = prepared
            .env
            .iter()
            .map(|(key, value)| (*key, value.as_str()))
            .collect();
        let run = sandbox.run_with_env(&args, &env).await;
        return (run.code, format!("{}{}", run.stdout, run.stderr));
    }
    let mut json = vec!["--output", "json"];
    json.extend(args);
    let mut child = sandbox.command(&json).spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(r#""event":"step_finished","step":"connect""#) {
            // Held still while the server is replaced, so the next step is the first to
            // find it gone.
            let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
            sandbox.wipe_cluster().await;
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
            break;
        }
    }
    let output = tokio::time::timeout(Duration::from_secs(240), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push_str(&line);
            seen.push('\n');
        }
        child.wait().await.unwrap()
    })
    .await
    .expect("the run ended once the API server was gone");
    (output.code().unwrap_or(-1), seen)
}

/// Kinds the steps before `failed` may have applied; nothing else may appear.
fn allowed_kinds(failed: &str) -> &'static [&'static str] {
    match failed {
        "preflight" | "terraform" | "connect" => &[],
        _ => &["Namespace", "ConfigMap", "Secret"],
    }
}

/// Everything wrong with what case `n` left behind.
async fn half_written(
    sandbox: &Sandbox,
    case: &Case,
    repo: &str,
    commits: &[String],
    before: Option<&BTreeSet<String>>,
) -> Vec<String> {
    let mut wrong = Vec::new();
    if sandbox.git.log(repo, BRANCH).unwrap().len() != commits.len() {
        wrong.push("a commit was pushed".to_owned());
    }
    if let Some(before) = before {
        let after = objects(&sandbox.cluster.client()).await;
        let allowed = allowed_kinds(case.step);
        let applied: Vec<_> = after
            .difference(before)
            .filter(|object| {
                !allowed
                    .iter()
                    .any(|kind| object.starts_with(&format!("{kind} ")))
            })
            .collect();
        if !applied.is_empty() {
            wrong.push(format!("objects applied: {applied:?}"));
        }
    }
    let temporary: Vec<_> = walk(sandbox.dir.path())
        .into_iter()
        .filter(|path| {
            let text = path.to_string_lossy();
            !text.contains("/.git/") && !text.contains("/.terraform/")
        })
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.contains("tfplan") || name.starts_with(".tmp") || name.ends_with(".tmp")
        })
        .collect();
    if !temporary.is_empty() {
        wrong.push(format!("temporary files left: {temporary:?}"));
    }
    let lock = std::fs::read_to_string(sandbox.path(".gitops-bootstrap/dev/lock"));
    if lock.is_ok_and(|pid| !pid.trim().is_empty()) {
        wrong.push("the env lock still names a run".to_owned());
    }
    wrong
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_modules_repositories_clusters_and_keys_end_with_cause_and_fix_and_write_nothing() {
    let mut sandbox = Sandbox::start().await;
    let in_process = sandbox.cluster.server().is_some();
    let cases = cases();
    let mut failures = Vec::new();
    let mut tried = 0;
    // Each case's error and hint, as the user reads them.
    let mut pinned = String::new();
    for (n, case) in cases.iter().enumerate() {
        if matches!(case.broken, Break::ApiGoneAfterConnect) && !in_process {
            println!(
                "skipped `{}`: stopping the API server needs the in-process test cluster, not \
                 GITOPS_BOOTSTRAP_TEST_KUBECONFIG's",
                case.name
            );
            continue;
        }
        tried += 1;
        if matches!(case.broken, Break::ApiGoneAfterConnect) {
            // A cluster no earlier case has claimed for its repository.
            sandbox.wipe_cluster().await;
        }
        for gone in [".gitops-bootstrap", "xdg"] {
            let _ = std::fs::remove_dir_all(sandbox.path(gone));
        }
        let repo = case_repository(&sandbox, n);
        let prepared = prepare(&sandbox, n, &repo, case.broken);
        sandbox.write_dev_config(prepared.config.clone());
        let commits = sandbox.git.log(&repo, BRANCH).unwrap();
        let before = match case.broken {
            Break::ApiGoneAfterConnect => None,
            _ => Some(objects(&sandbox.cluster.client()).await),
        };
        let (code, output) = run_case(&mut sandbox, case, &prepared).await;
        // Whether a vanished API server is noticed in discovery or in the first apply varies.
        if !matches!(case.broken, Break::ApiGoneAfterConnect) {
            let said: Vec<&str> = output
                .lines()
                .filter(|line| line.contains("✘ error:") || line.trim_start().starts_with("hint:"))
                .collect();
            pinned.push_str(&format!(
                "## {} (exit {code})\n{}\n",
                case.name,
                said.join("\n")
            ));
        }
        let failed_step = format!("step {} failed", case.step);
        let missing: Vec<_> = std::iter::once(failed_step.as_str())
            .chain(case.says.iter().copied())
            .filter(|fragment| !output.contains(fragment))
            .collect();
        if code != case.code || !missing.is_empty() {
            failures.push(format!(
                "{}: exit {code} (want {}), missing {missing:?}:\n{output}",
                case.name, case.code
            ));
        }
        let wrong = half_written(&sandbox, case, &repo, &commits, before.as_ref()).await;
        if !wrong.is_empty() {
            failures.push(format!("{}: {}", case.name, wrong.join("; ")));
        }
        if let Break::PushToken(token) = case.broken
            && output.contains(token)
        {
            failures.push(format!("{}: the token was shown", case.name));
        }
    }
    println!("bad module, repository, cluster and key inputs covered: {tried}");
    // Sizes in bytes, before the short-sha filter takes seven digits for a sha; each case's
    // repository, numbered by the order the cases ran in.
    let extra = [
        ("limit of 1048576 bytes", "limit of 1 MiB"),
        (r"\b\d{7} bytes", "[n] bytes"),
        (r"case-\d+\.git", "case-[n].git"),
    ];
    crate::support::snapshot!("bad_targets_errors", pinned, extra = extra);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
