//! One builder per Terraform subcommand: the argv and environment of a run, built apart from
//! running it so they can be checked without a terraform binary.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

use super::redact::Redactor;
use super::root::EnvRoot;

/// Set on every run: Terraform must never prompt, and prints for machines.
pub const FIXED_ENV: [(&str, &str); 2] = [("TF_IN_AUTOMATION", "1"), ("TF_INPUT", "0")];

/// Removed from every run's environment: logs would mix into the parsed streams, extra CLI
/// arguments would change the commands, and a shared data dir would mix environments.
const REMOVED_ENV: [&str; 6] = [
    "TF_LOG",
    "TF_LOG_PATH",
    "TF_LOG_CORE",
    "TF_LOG_PROVIDER",
    "TF_CLI_ARGS",
    "TF_DATA_DIR",
];

/// How long commands that lock the state wait for another run's lock (a killed run's Terraform
/// stops within its grace period and releases it) before failing with who holds it.
pub const LOCK_TIMEOUT_FLAG: &str = "-lock-timeout=30s";

/// What the runner does with the child's stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdoutMode {
    /// A `-json` UI stream: parsed line by line into events.
    JsonEvents,
    /// Kept whole, as a secret (it may hold sensitive values).
    Capture,
}

/// Whether `plan` prepares an apply or a teardown, or only compares the state with what
/// exists (`-refresh-only`, for drift: resources changed outside Terraform).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanMode {
    Apply,
    Destroy,
    RefreshOnly,
}

/// A fully described Terraform run. Debug shows secret env values as `[REDACTED]`.
#[derive(Debug)]
pub struct TfCommand {
    program: PathBuf,
    subcommand: &'static str,
    dir: Option<PathBuf>,
    args: Vec<OsString>,
    secret_env: Vec<(String, SecretString)>,
    redactor: Redactor,
    stdout: StdoutMode,
}

impl TfCommand {
    fn new(program: &Path, subcommand: &'static str, stdout: StdoutMode) -> Self {
        TfCommand {
            program: program.to_path_buf(),
            subcommand,
            dir: None,
            args: vec![subcommand.into()],
            secret_env: Vec::new(),
            redactor: Redactor::default(),
            stdout,
        }
    }

    /// Runs in the env's root; the env's secrets are masked in whatever Terraform reports,
    /// even by commands that do not receive them (a saved plan carries them to `apply`).
    fn in_root(mut self, root: &EnvRoot) -> Self {
        self.dir = Some(root.dir().to_path_buf());
        self.redactor = Redactor::new(root.secret_env().iter().map(|(_, value)| value));
        self
    }

    fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    fn var_files(self, root: &EnvRoot) -> Self {
        let flags = root.var_files().iter().map(|file| {
            let mut flag = OsString::from("-var-file=");
            flag.push(file);
            flag
        });
        self.args(flags)
    }

    fn secret_variables(mut self, root: &EnvRoot) -> Self {
        self.secret_env = root.secret_env().to_vec();
        self
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    pub fn subcommand(&self) -> &'static str {
        self.subcommand
    }

    /// The working directory (the env's root module), when the command needs one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The arguments after the program name.
    pub fn argv(&self) -> &[OsString] {
        &self.args
    }

    pub fn stdout_mode(&self) -> StdoutMode {
        self.stdout
    }

    /// Variables removed from the inherited environment.
    pub fn removed_env(&self) -> Vec<String> {
        let mut names: Vec<String> = REMOVED_ENV.iter().map(|name| (*name).to_owned()).collect();
        names.push(format!("TF_CLI_ARGS_{}", self.subcommand));
        names
    }

    /// Plain variables set for the child.
    pub fn env(&self) -> &[(&'static str, &'static str)] {
        &FIXED_ENV
    }

    /// Secret variables set for the child (`TF_VAR_*`), never on the command line.
    pub fn secret_env(&self) -> &[(String, SecretString)] {
        &self.secret_env
    }

    pub(crate) fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The command as a user types it: `<program> [-chdir=<dir>] <args…>`, for hints. Secret
    /// variables are not part of it (they are never on a command line).
    pub fn shell_line(&self) -> String {
        let mut words = vec![self.program.display().to_string()];
        if let Some(dir) = &self.dir {
            words.push(format!("-chdir={}", dir.display()));
        }
        words.extend(
            self.args
                .iter()
                .map(|arg| arg.to_string_lossy().into_owned()),
        );
        words.join(" ")
    }
}

/// `version -json`.
pub fn version(program: &Path) -> TfCommand {
    TfCommand::new(program, "version", StdoutMode::Capture).arg("-json")
}

/// `init -input=false -no-color [-backend-config=k=v ...]`.
pub fn init(program: &Path, root: &EnvRoot) -> TfCommand {
    let backend_config = root
        .backend()
        .config
        .iter()
        .map(|(key, value)| format!("-backend-config={key}={value}"));
    TfCommand::new(program, "init", StdoutMode::Capture)
        .in_root(root)
        .args(["-input=false", "-no-color"])
        .args(backend_config)
}

/// `plan -input=false -no-color -json -out=<file> [-destroy] [-var-file=...]`. `-json` gives
/// structured diagnostics on failure.
pub fn plan(program: &Path, root: &EnvRoot, mode: PlanMode, out: &Path) -> TfCommand {
    let mut out_flag = OsString::from("-out=");
    out_flag.push(out);
    let command = TfCommand::new(program, "plan", StdoutMode::JsonEvents)
        .in_root(root)
        .args(["-input=false", "-no-color", "-json", LOCK_TIMEOUT_FLAG])
        .arg(out_flag);
    let command = match mode {
        PlanMode::Apply => command,
        PlanMode::Destroy => command.arg("-destroy"),
        PlanMode::RefreshOnly => command.arg("-refresh-only"),
    };
    command.var_files(root).secret_variables(root)
}

/// `show -no-color -json <planfile>`: stdout holds planned values, sensitive ones included.
pub fn show_plan_json(program: &Path, root: &EnvRoot, plan_file: &Path) -> TfCommand {
    TfCommand::new(program, "show", StdoutMode::Capture)
        .in_root(root)
        .args(["-no-color", "-json"])
        .arg(plan_file)
}

/// `apply -input=false -no-color -json <planfile>`: the variables are in the saved plan.
pub fn apply(program: &Path, root: &EnvRoot, plan_file: &Path) -> TfCommand {
    TfCommand::new(program, "apply", StdoutMode::JsonEvents)
        .in_root(root)
        .args(["-input=false", "-no-color", "-json", LOCK_TIMEOUT_FLAG])
        .arg(plan_file)
}

/// `output -no-color -json`.
pub fn output_json(program: &Path, root: &EnvRoot) -> TfCommand {
    TfCommand::new(program, "output", StdoutMode::Capture)
        .in_root(root)
        .args(["-no-color", "-json"])
}

/// `output -raw <name>` (a string output) or `output -json <name>`, in `dir`: not for the tool
/// to run but for the user, shown as a [`TfCommand::shell_line`] in hints. No `-no-color`:
/// the value goes to the user's terminal or pipe.
pub fn output_one(program: &Path, dir: &Path, name: &str, raw: bool) -> TfCommand {
    let mut command = TfCommand::new(program, "output", StdoutMode::Capture);
    command.dir = Some(dir.to_path_buf());
    command.arg(if raw { "-raw" } else { "-json" }).arg(name)
}

/// How a user reads one output, or a value inside it (`path`, as the env's output mapping
/// spells it), in a shell: `terraform -chdir=<dir> output -raw kubeconfig`, or
/// `… output -json cluster | jq -r '.ca[0].data'`. The tool prints the line, never the value.
pub fn read_output_line(program: &Path, dir: &Path, name: &str, path: &[String]) -> String {
    if path.is_empty() {
        return output_one(program, dir, name, true).shell_line();
    }
    // jq spells list indexes `[0]`.
    let filter: String = path
        .iter()
        .map(|segment| match segment.parse::<usize>() {
            Ok(index) => format!("[{index}]"),
            Err(_) => format!(".{segment}"),
        })
        .collect();
    let command = output_one(program, dir, name, false).shell_line();
    format!("{command} | jq -r '{filter}'")
}

/// `state pull -no-color`: the env's state as its own backend and selected workspace hold it
/// (empty when there is none); stdout holds sensitive outputs.
pub fn state_pull(program: &Path, root: &EnvRoot) -> TfCommand {
    TfCommand::new(program, "state", StdoutMode::Capture)
        .in_root(root)
        .args(["pull", "-no-color"])
}

/// `destroy -auto-approve -input=false -no-color -json [-var-file=...]`.
pub fn destroy(program: &Path, root: &EnvRoot) -> TfCommand {
    TfCommand::new(program, "destroy", StdoutMode::JsonEvents)
        .in_root(root)
        .args([
            "-auto-approve",
            "-input=false",
            "-no-color",
            "-json",
            LOCK_TIMEOUT_FLAG,
        ])
        .var_files(root)
        .secret_variables(root)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use secrecy::ExposeSecret;

    use super::*;
    use crate::terraform::root::{Backend, RootSpec};

    const CANARY: &str = "canary-91b2";

    struct Fixture {
        _module: tempfile::TempDir,
        state: tempfile::TempDir,
        root: EnvRoot,
    }

    fn fixture(backend: Backend) -> Fixture {
        let module = tempfile::tempdir().unwrap();
        std::fs::write(
            module.path().join("main.tf"),
            "variable \"name\" {}\nvariable \"token\" {\n  sensitive = true\n}\n",
        )
        .unwrap();
        let state = tempfile::tempdir().unwrap();
        let var_file = state.path().join("extra.tfvars");
        std::fs::write(&var_file, "name = \"x\"\n").unwrap();
        let spec = RootSpec {
            module_dir: module.path().to_path_buf(),
            secret_variables: BTreeMap::from([("token".into(), SecretString::from(CANARY))]),
            var_files: vec![var_file],
            backend,
            ..RootSpec::default()
        };
        let root = EnvRoot::prepare(&state.path().join("root"), &spec).unwrap();
        Fixture {
            _module: module,
            state,
            root,
        }
    }

    fn argv(command: &TfCommand) -> Vec<String> {
        command
            .argv()
            .iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect()
    }

    fn assert_clean(command: &TfCommand) {
        let argv = argv(command);
        assert!(argv.contains(&"-no-color".to_owned()) || command.subcommand() == "version");
        assert!(!argv.iter().any(|arg| arg.contains(CANARY)), "{argv:?}");
        assert!(!format!("{command:?}").contains(CANARY));
        let removed = command.removed_env();
        for name in ["TF_LOG", "TF_LOG_PATH", "TF_CLI_ARGS", "TF_DATA_DIR"] {
            assert!(removed.contains(&name.to_owned()), "{name} not removed");
        }
        assert!(removed.contains(&format!("TF_CLI_ARGS_{}", command.subcommand())));
        assert_eq!(
            command.env(),
            [("TF_IN_AUTOMATION", "1"), ("TF_INPUT", "0")]
        );
    }

    fn assert_clean_of_secrets(command: &TfCommand) {
        assert!(command.secret_env().is_empty());
        assert!(!command.shell_line().contains(CANARY));
    }

    /// The lines hints show: the program the user has, the env's directory, jq for a path.
    #[test]
    fn output_lines_read_an_output_or_a_path_inside_it() {
        let dir = Path::new("/state/dev/terraform");
        assert_eq!(
            read_output_line(Path::new("terraform"), dir, "kubeconfig", &[]),
            "terraform -chdir=/state/dev/terraform output -raw kubeconfig"
        );
        let path = ["certificate_authority", "0", "data"].map(str::to_owned);
        assert_eq!(
            read_output_line(Path::new("tofu"), dir, "cluster", &path),
            "tofu -chdir=/state/dev/terraform output -json cluster \
             | jq -r '.certificate_authority[0].data'"
        );
    }

    #[test]
    fn init_passes_backend_config_and_never_prompts() {
        let backend = Backend {
            kind: "s3".into(),
            config: BTreeMap::from([
                ("bucket".into(), "states".into()),
                ("key".into(), "dev.tfstate".into()),
            ]),
        };
        let fx = fixture(backend);
        let command = init(Path::new("terraform"), &fx.root);
        assert_eq!(
            argv(&command),
            [
                "init",
                "-input=false",
                "-no-color",
                "-backend-config=bucket=states",
                "-backend-config=key=dev.tfstate"
            ]
        );
        assert_eq!(command.dir(), Some(fx.root.dir()));
        assert_eq!(command.stdout_mode(), StdoutMode::Capture);
        assert!(command.secret_env().is_empty());
        assert_clean(&command);
    }

    #[test]
    fn plan_writes_a_plan_file_and_gets_secrets_through_the_environment() {
        let fx = fixture(Backend::default());
        let out = fx.root.dir().join("env.tfplan");
        let var_file = fx.state.path().join("extra.tfvars");
        let command = plan(Path::new("terraform"), &fx.root, PlanMode::Apply, &out);
        assert_eq!(
            argv(&command),
            [
                "plan".to_owned(),
                "-input=false".to_owned(),
                "-no-color".to_owned(),
                "-json".to_owned(),
                "-lock-timeout=30s".to_owned(),
                format!("-out={}", out.display()),
                format!("-var-file={}", var_file.display()),
            ]
        );
        assert_eq!(command.stdout_mode(), StdoutMode::JsonEvents);
        let secrets = command.secret_env();
        assert_eq!(secrets.len(), 1);
        assert_eq!(secrets[0].0, "TF_VAR_token");
        assert_eq!(secrets[0].1.expose_secret(), CANARY);
        assert_clean(&command);

        let teardown = plan(Path::new("terraform"), &fx.root, PlanMode::Destroy, &out);
        assert!(argv(&teardown).contains(&"-destroy".to_owned()));
        assert_clean(&teardown);

        let drift = plan(
            Path::new("terraform"),
            &fx.root,
            PlanMode::RefreshOnly,
            &out,
        );
        assert!(argv(&drift).contains(&"-refresh-only".to_owned()));
        assert!(!argv(&drift).contains(&"-destroy".to_owned()));
    }

    #[test]
    fn apply_show_output_and_destroy_have_their_flags() {
        let fx = fixture(Backend::default());
        let program = Path::new("/usr/bin/tofu");
        let plan_file = Path::new("/state/env.tfplan");

        let command = apply(program, &fx.root, plan_file);
        assert_eq!(
            argv(&command),
            [
                "apply",
                "-input=false",
                "-no-color",
                "-json",
                "-lock-timeout=30s",
                "/state/env.tfplan"
            ]
        );
        assert!(
            command.secret_env().is_empty(),
            "a saved plan holds the variables"
        );
        assert_eq!(
            command.redactor().text(&format!("Output: {CANARY}")),
            "Output: (sensitive value)",
            "yet what apply reports is still scrubbed of them"
        );
        assert_eq!(command.program(), program);
        assert_clean(&command);

        let command = show_plan_json(program, &fx.root, plan_file);
        assert_eq!(
            argv(&command),
            ["show", "-no-color", "-json", "/state/env.tfplan"]
        );
        assert_eq!(command.stdout_mode(), StdoutMode::Capture);
        assert_clean(&command);

        let command = output_json(program, &fx.root);
        assert_eq!(argv(&command), ["output", "-no-color", "-json"]);
        assert_clean(&command);

        let command = state_pull(program, &fx.root);
        assert_eq!(argv(&command), ["state", "pull", "-no-color"]);
        assert_eq!(command.dir(), Some(fx.root.dir()));
        assert_eq!(command.stdout_mode(), StdoutMode::Capture);
        assert!(command.secret_env().is_empty());
        assert_clean(&command);

        let command = destroy(program, &fx.root);
        let args = argv(&command);
        assert_eq!(
            args[..6],
            [
                "destroy",
                "-auto-approve",
                "-input=false",
                "-no-color",
                "-json",
                "-lock-timeout=30s"
            ]
        );
        assert!(args[6].starts_with("-var-file="));
        assert_eq!(command.secret_env()[0].0, "TF_VAR_token");
        assert_clean(&command);

        let command = output_one(program, fx.root.dir(), "kubeconfig", true);
        assert_eq!(argv(&command), ["output", "-raw", "kubeconfig"]);
        assert_clean_of_secrets(&command);

        let command = version(program);
        assert_eq!(argv(&command), ["version", "-json"]);
        assert_eq!(command.dir(), None);
        assert_clean(&command);
    }
}
