//! Shared helpers of the integration tests.

pub mod git;
pub mod sandbox;

/// What changes from run to run in a command's output, the one filter set of every snapshot:
/// durations, ages, commits (whole and short), uids, age recipients, ports, temp paths, the
/// timestamps of progress lines, the Terraform version the machine has. A test adds to it (through [`snapshot!`]'s `extra`) only
/// what varies in that test alone, and says why.
pub const OUTPUT_FILTERS: [(&str, &str); 12] = [
    (
        r"\b(Terraform|OpenTofu) \d+\.\d+\.\d+(?:-\w+)?",
        "$1 [version]",
    ),
    (r"\s+\d+ ms\b", " [n] ms"),
    (r"(?m)^\d\d:\d\d:\d\d ", ""),
    (r"\d+\.\d+s\b", "[n]s"),
    (r"age: \d+s", "age: [n]s"),
    // Pretty JSON (`": "`) and NDJSON events (`":`) alike.
    (
        r#""(duration_ms|age_seconds|rto_ms)":(\s*)\d+"#,
        r#""$1":$2[n]"#,
    ),
    (r"[0-9a-f]{40}", "[sha]"),
    (
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[uid]",
    ),
    (r"\bage1[0-9a-z]+", "age1[recipient]"),
    (r"127\.0\.0\.1:\d+", "127.0.0.1:[port]"),
    (r"/tmp/\.tmp\w+", "[tmp]"),
    // Last: a short sha is seven hex digits alone, and may be all decimal digits.
    (r"\b[0-9a-f]{7}\b", "[short-sha]"),
];

/// Pins a command's output (text, or JSON lines) as the insta snapshot `name`, filtered by
/// [`OUTPUT_FILTERS`]; `extra` filters run first, for what varies in one test only.
macro_rules! snapshot {
    ($name:expr, $text:expr $(,)?) => {
        $crate::support::snapshot!($name, $text, extra = [])
    };
    ($name:expr, $text:expr, extra = $extra:expr $(,)?) => {{
        let extra: Vec<(&str, &str)> = $extra.into_iter().collect();
        let mut filters = extra;
        filters.extend($crate::support::OUTPUT_FILTERS);
        insta::with_settings!({filters => filters}, {
            insta::assert_snapshot!($name, $text);
        });
    }};
}
pub(crate) use snapshot;

/// How many Flux objects a teardown's flux-uninstall found (and whose finalizers it removed)
/// depends on how far Flux's stand-ins got pruning the apps; what it left behind does not.
pub const FLUX_UNINSTALL_FILTER: (&str, &str) = (
    r"deleted \d+ Flux objects \(\d+ finalizers",
    "deleted [n] Flux objects ([n] finalizers",
);

/// An error of the library as a user reads it: its message, then its hint when it has one.
pub fn told(err: impl Into<gitops_bootstrap::Error>) -> String {
    let err = err.into();
    match err.hint() {
        Some(hint) => format!("{}\nhint: {hint}", err.message()),
        None => err.message().to_owned(),
    }
}

/// Copies a directory tree (files and directories only), so a test can change a fixture.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The product binary, run in `dir` as a new user would: no config from the environment, no
/// colours, Terraform without a stray CLI config.
pub fn bin(dir: &std::path::Path) -> assert_cmd::Command {
    let mut command = assert_cmd::Command::cargo_bin("gitops-bootstrap").unwrap();
    command
        .current_dir(dir)
        .env_remove("GITOPS_BOOTSTRAP_CONFIG")
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .env("NO_COLOR", "1");
    command
}

/// `command` run in `dir` as a user there would run it, isolated from this machine: its own
/// XDG config dir, no age key from the environment, Terraform without a stray CLI config, no
/// colours; no input, output piped, killed with the test.
pub fn isolated(
    mut command: tokio::process::Command,
    dir: &std::path::Path,
) -> tokio::process::Command {
    command
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", dir.join("xdg"))
        .env_remove("SOPS_AGE_KEY_FILE")
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}

/// A command's stdout as text.
pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The JSON events of a `--output json` run, one per stdout line.
pub fn json_events(output: &std::process::Output) -> Vec<serde_json::Value> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}
