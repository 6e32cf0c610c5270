//! Bad input: a table of config, flag and name mistakes that must end with their exit code, the
//! cause and the fix, writing nothing; and inputs only a sandbox can show wrong (a file that is
//! not Flux, a wrong read token, a missing branch) stopped in preflight.

use super::{Project, told, walk};
use crate::support::sandbox::{ENV, Sandbox};
use crate::support::snapshot;

/// One bad input: how to make it, and what the run must answer.
struct Bad {
    name: &'static str,
    /// `(from, to)` replacements in the project's config text.
    edit: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    code: i32,
    /// Fragments of the error (the cause) and of the hint (the fix).
    says: &'static [&'static str],
}

const CREATE: &[&str] = &["create-env", "dev", "--yes"];

fn bad_inputs() -> Vec<Bad> {
    let bad = |name, edit, args, code, says| Bad {
        name,
        edit,
        args,
        env: &[],
        code,
        says,
    };
    vec![
        // The config file.
        bad(
            "not TOML",
            &[("[envs.dev]", "[envs.dev")],
            CREATE,
            2,
            &["invalid config", "hint: the file must be TOML"],
        ),
        bad(
            "unknown key",
            &[("profile = ", "profil = ")],
            CREATE,
            2,
            &["unknown field `profil`", "config schema"],
        ),
        bad(
            "wrong type",
            &[("profile = \"standard\"", "profile = 3")],
            CREATE,
            2,
            &["invalid type", "each key's type"],
        ),
        bad(
            "missing key",
            &[("profile = \"standard\"\n", "")],
            CREATE,
            2,
            &["missing field `profile`", "required"],
        ),
        bad(
            "a token in the file",
            &[("author_name = ", "token = \"ghp_x\"\nauthor_name = ")],
            CREATE,
            2,
            &["unknown field `token`", "no place for secret values"],
        ),
        bad(
            "no envs",
            &[
                ("[envs.dev]", "[other]"),
                ("[envs.dev.variables]", "[other.variables]"),
            ],
            CREATE,
            2,
            &["invalid config", "hint:"],
        ),
        bad(
            "plain http with a token",
            &[("https://git.example.test", "http://git.example.test")],
            CREATE,
            2,
            &["plain http://", "allow_insecure_http = true"],
        ),
        bad(
            "URL host:port without scheme",
            &[(
                "https://git.example.test/fleet.git",
                "git.example.test:8443/fleet.git",
            )],
            CREATE,
            2,
            &["has no scheme", "https://git.example.test:8443/fleet.git"],
        ),
        bad(
            "URL host/path without scheme",
            &[(
                "https://git.example.test/fleet.git",
                "git.example.test/fleet.git",
            )],
            CREATE,
            2,
            &["has no scheme", "https://git.example.test/fleet.git"],
        ),
        bad(
            "scp-like URL",
            &[(
                "https://git.example.test/fleet.git",
                "git@git.example.test:org/fleet.git",
            )],
            CREATE,
            2,
            &["ssh://git@git.example.test/org/fleet.git"],
        ),
        bad(
            "ftp URL",
            &[("https://git.example.test", "ftp://git.example.test")],
            CREATE,
            2,
            &["scheme `ftp`"],
        ),
        bad(
            "token in the URL",
            &[(
                "https://git.example.test",
                "https://ghp_abc@git.example.test",
            )],
            CREATE,
            2,
            &["carries credentials"],
        ),
        bad(
            "cluster_name with a space",
            &[("cluster_name = \"dev\"", "cluster_name = \"my cluster\"")],
            CREATE,
            2,
            &["must be a cluster name"],
        ),
        bad(
            "cluster_name with a slash",
            &[("cluster_name = \"dev\"", "cluster_name = \"a/b\"")],
            CREATE,
            2,
            &["must be a cluster name"],
        ),
        bad(
            "cluster_name ..",
            &[("cluster_name = \"dev\"", "cluster_name = \"..\"")],
            CREATE,
            2,
            &["must be a cluster name"],
        ),
        bad(
            "flux_version",
            &[("v2.4.0", "2.4")],
            CREATE,
            2,
            &["flux_version"],
        ),
        bad(
            "module missing",
            &[("terraform/existing", "terraform/nowhere")],
            CREATE,
            2,
            &["not a directory", "point `module`"],
        ),
        bad(
            "branch name",
            &[("author_name", "branch = \"a..b\"\nauthor_name")],
            CREATE,
            2,
            &["valid Git branch name"],
        ),
        bad(
            "repository path escapes",
            &[("author_name", "path = \"../x\"\nauthor_name")],
            CREATE,
            2,
            &["relative path inside the repository"],
        ),
        bad(
            "author_email",
            &[("bot@example.test", "bot")],
            CREATE,
            2,
            &["must be an email address"],
        ),
        bad(
            "token_env holds a value",
            &[("REL_GIT_TOKEN", "ghp_secretvalue")],
            CREATE,
            2,
            &["NAME of an environment variable"],
        ),
        bad(
            "secret-looking plain variable",
            &[(
                "cluster_name = \"dev\"",
                "cluster_name = \"dev\"\ndb_password = \"x\"",
            )],
            CREATE,
            2,
            &["looks like a secret"],
        ),
        bad(
            "variable set twice",
            &[(
                "[envs.dev.variables]",
                "[envs.dev.secret_variables]\ncluster_name = \"REL_X\"\n\n[envs.dev.variables]",
            )],
            CREATE,
            2,
            &["also in secret_variables"],
        ),
        bad(
            "backend type",
            &[(
                "[envs.dev.variables]",
                "[envs.dev.backend]\ntype = \"S3!\"\n\n[envs.dev.variables]",
            )],
            CREATE,
            2,
            &["backend type"],
        ),
        bad(
            "var file missing",
            &[(
                "flux_version = \"v2.4.0\"",
                "flux_version = \"v2.4.0\"\nvar_files = [\"nope.tfvars\"]",
            )],
            CREATE,
            2,
            &["not a file", "relative to the config file"],
        ),
        bad(
            "flux_manifests over http",
            &[(
                "flux_version = \"v2.4.0\"",
                "flux_version = \"v2.4.0\"\nflux_manifests = \"http://example.test/x.yaml\"",
            )],
            CREATE,
            2,
            &["https:// URL"],
        ),
        bad(
            "env name in the file",
            &[
                ("[envs.dev]", "[envs.Dev]"),
                ("[envs.dev.variables]", "[envs.Dev.variables]"),
            ],
            &["doctor"],
            1,
            &["DNS-1123 label"],
        ),
        // Names on the command line.
        bad(
            "env ../x",
            &[],
            &["create-env", "../x", "--yes"],
            2,
            &["unknown environment `../x`", "known environments: dev"],
        ),
        bad(
            "env uppercase",
            &[],
            &["create-env", "DEV", "--yes"],
            2,
            &["unknown environment `DEV`"],
        ),
        bad(
            "env empty",
            &[],
            &["create-env", "", "--yes"],
            2,
            &["unknown environment ``"],
        ),
        bad(
            "env 300 characters",
            &[],
            Box::leak(
                vec![
                    "create-env",
                    Box::leak("e".repeat(300).into_boxed_str()) as &str,
                    "--yes",
                ]
                .into_boxed_slice(),
            ),
            2,
            &["unknown environment"],
        ),
        bad(
            "env unicode",
            &[],
            &["create-env", "dév", "--yes"],
            2,
            &["unknown environment `dév`"],
        ),
        bad(
            "profile ../x",
            &[],
            &["create-env", "dev", "--yes", "--profile", "../x"],
            2,
            &["--profile must be a directory name"],
        ),
        bad(
            "profile with a space",
            &[],
            &["create-env", "dev", "--yes", "--profile", "my profile"],
            2,
            &["must be a directory name"],
        ),
        bad(
            "profile unicode",
            &[],
            &["create-env", "dev", "--yes", "--profile", "stándard"],
            2,
            &["must be a directory name"],
        ),
        // Flags.
        bad(
            "--timeout 0s",
            &[],
            &["create-env", "dev", "--yes", "--timeout", "0s"],
            2,
            &["0s is out of range"],
        ),
        bad(
            "--timeout absurd",
            &[],
            &["create-env", "dev", "--yes", "--timeout", "99999999999999h"],
            2,
            &["--timeout"],
        ),
        bad(
            "--timeout words",
            &[],
            &["create-env", "dev", "--yes", "--timeout", "soon"],
            2,
            &["not a duration"],
        ),
        bad(
            "--git-timeout 0s",
            &[],
            &["--git-timeout", "0s", "doctor"],
            2,
            &["out of range"],
        ),
        bad(
            "--git-timeout 2h",
            &[],
            &["--git-timeout", "2h", "doctor"],
            2,
            &["out of range"],
        ),
        bad(
            "not interactive without --yes",
            &[],
            &["create-env", "dev"],
            2,
            &["nobody can confirm", "pass --yes"],
        ),
        bad(
            "unknown flag",
            &[],
            &["create-env", "dev", "--yes", "--force"],
            2,
            &["--force"],
        ),
        bad(
            "--output yaml",
            &[],
            &["--output", "yaml", "doctor"],
            2,
            &["yaml"],
        ),
        bad(
            "config file missing",
            &[],
            &["--config", "nope.toml", "create-env", "dev", "--yes"],
            2,
            &["failed to read config file", "pass the config file's path"],
        ),
        Bad {
            name: "push token unset",
            edit: &[],
            args: CREATE,
            env: &[("REL_GIT_TOKEN", "")],
            code: 2,
            says: &[
                "environment variable REL_GIT_TOKEN is not set",
                "export REL_GIT_TOKEN",
            ],
        },
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_inputs_end_with_their_exit_code_cause_and_fix_and_write_nothing() {
    let base = Project::new("https://git.example.test/fleet.git");
    let base_config =
        std::fs::read_to_string(base.dir.path().join("gitops-bootstrap.toml")).unwrap();
    let cases = bad_inputs();
    let mut failures = Vec::new();
    let mut pinned = String::new();
    for case in &cases {
        let project = Project::new("https://git.example.test/fleet.git");
        let mut config = base_config.replace(
            &base.dir.path().display().to_string(),
            &project.dir.path().display().to_string(),
        );
        for (from, to) in case.edit {
            assert!(
                config.contains(from),
                "{}: `{from}` not in the config",
                case.name
            );
            config = config.replace(from, to);
        }
        project.write_config(&config);
        let mut command = project.command(case.args);
        for (key, value) in case.env {
            command.env(key, value);
        }
        let output = command.output().await.unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let code = output.status.code().unwrap_or(-1);
        pinned.push_str(&format!(
            "## {} (exit {code})\n{}\n",
            case.name,
            told(&text)
        ));
        let missing: Vec<_> = case.says.iter().filter(|s| !text.contains(**s)).collect();
        if code != case.code || !missing.is_empty() {
            failures.push(format!(
                "{}: exit {code} (want {}), missing {missing:?}:\n{text}",
                case.name, case.code
            ));
        }
        // Nothing half-written: no state for the env, no key, no temp file.
        let state = project.dir.path().join(".gitops-bootstrap/dev");
        let written: Vec<_> = walk(project.dir.path())
            .into_iter()
            .filter(|path| {
                !path.ends_with("gitops-bootstrap.toml")
                    && !path.ends_with("kubeconfig")
                    && !path.starts_with(&state) // the lock file alone is allowed
            })
            .collect();
        if !written.is_empty() || state.join("repo").exists() {
            failures.push(format!("{}: left {written:?}", case.name));
        }
    }
    assert!(cases.len() >= 45, "{} cases", cases.len());
    // The module path of the checkout, and a 300-letter env name the sha filter would chop.
    let extra = crate::cli::MACHINE
        .into_iter()
        .chain([("e{300}", "[e × 300]")]);
    snapshot!("bad_inputs", pinned, extra = extra);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_is_not_flux_is_refused_in_preflight_and_nothing_is_committed() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    let seeded = sandbox.log();
    let not_flux = sandbox.path("hostname");
    std::fs::write(&not_flux, "buildhost\n").unwrap();
    let run = sandbox
        .run(&[
            "create-env",
            ENV,
            "--yes",
            "--flux-manifests",
            not_flux.to_str().unwrap(),
        ])
        .await;
    assert_eq!(run.code, 2, "{}", run.output());
    snapshot!("not_flux", told(&run.stderr));
    assert_eq!(sandbox.log(), seeded, "no commit");
    assert!(
        !run.stderr.contains("▶ terraform"),
        "stopped before Terraform"
    );
}

fn age_key(sandbox: &Sandbox) -> std::path::PathBuf {
    sandbox.age_key_file()
}

#[tokio::test(flavor = "multi_thread")]
async fn inputs_that_would_fail_later_stop_preflight_before_any_key_or_commit() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    let seeded = sandbox.log();
    let wrong_read = "wrong-read-token-41c7";
    let cases = [
        (
            "wrong read token",
            vec![("SANDBOX_GIT_READ_TOKEN", wrong_read)],
        ),
        (
            "unset secret variable",
            vec![("SANDBOX_CLUSTER_SECRETS", "")],
        ),
    ];
    let mut said = Vec::new();
    for (name, env) in cases {
        let mut command = sandbox.command(CREATE);
        for (key, value) in &env {
            if value.is_empty() {
                command.env_remove(key);
            } else {
                command.env(key, value);
            }
        }
        let output = command.output().await.unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        said.push(format!("## {name}\n{}", told(&stderr)));
        assert!(
            !stderr.contains(wrong_read),
            "{name}: the token is never shown"
        );
        assert!(
            !age_key(&sandbox).exists(),
            "{name}: no age key was written"
        );
        assert_eq!(sandbox.log(), seeded, "{name}: no commit");
    }

    let mut env = sandbox.dev_config();
    env.repository_mut().branch = Some("nope".to_owned());
    sandbox.write_dev_config(env);
    let run = sandbox.run(CREATE).await;
    assert_eq!(run.code, 2, "{}", run.output());
    // A missing branch is not a missing profile.
    said.push(format!("## missing branch\n{}", told(&run.stderr)));
    snapshot!("stopped_in_preflight", said.join("\n"));
}
