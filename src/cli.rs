//! The command line, as clap types only. Behaviour lives in `commands`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "gitops-bootstrap",
    version = crate::version::VERSION_TEXT.as_str(),
    about = "From nothing to a running, GitOps-managed Kubernetes environment: Terraform, then Flux, then the runtime apps.",
    after_help = "Exit codes: 0 ok, 1 operation failed, 2 bad input or usage, 3 timed out, 130 interrupted."
)]
pub struct Cli {
    /// The configuration file.
    #[arg(
        long,
        global = true,
        env = "GITOPS_BOOTSTRAP_CONFIG",
        default_value = "gitops-bootstrap.toml"
    )]
    pub config: PathBuf,

    /// `text` for people (progress on stderr); `json` for one JSON event per line on stdout.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// More detail (repeat for debug logs).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only warnings, errors and the result.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// No colours (also when NO_COLOR is set).
    #[arg(long, global = true)]
    pub no_color: bool,

    /// How long a Git server may stay silent (connecting, or between two answers) before the
    /// operation fails, e.g. 60s, 2m (1s to 1h).
    #[arg(
        long,
        global = true,
        env = "GITOPS_BOOTSTRAP_GIT_TIMEOUT",
        default_value = "60s",
        value_parser = parse_git_timeout
    )]
    pub git_timeout: Duration,

    /// How long Terraform may print nothing before it is stopped (it reports progress every
    /// 10 s while it works, so silence means stuck), e.g. 10m (1s to 24h).
    #[arg(
        long,
        global = true,
        env = "GITOPS_BOOTSTRAP_TERRAFORM_IDLE_TIMEOUT",
        default_value = "10m",
        value_parser = parse_run_timeout
    )]
    pub terraform_idle_timeout: Duration,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create (or converge) an environment: Terraform, cluster config and secrets, the GitOps
    /// commit, Flux, and the runtime apps of its profile, waiting until they are Ready.
    CreateEnv(CreateEnvArgs),
    /// Show the readiness of an environment's Flux objects and runtime apps; with --drift,
    /// what differs from Terraform's state, the branch tip and what Flux applied.
    Status(StatusArgs),
    /// Remove an environment: its apps and what owns cloud resources, Flux, its Terraform
    /// resources, clusters/<env>/ in Git and its local state (the age key is kept).
    Teardown(TeardownArgs),
    /// Disaster recovery: recreate an environment from Terraform and what is committed in Git
    /// (the same commit, the committed Flux), with its age key; reports the time to recovery.
    Rebuild(RebuildArgs),
    /// Show what Terraform would change for an environment.
    Plan(EnvArgs),
    /// Check tools, configuration and access; one line per check with the fix.
    Doctor(DoctorArgs),
    /// Check a GitOps repository offline: profiles build, variables are provided, dependsOn
    /// and chart sources exist, Flux API versions are served, no Secret is in plain text.
    Lint(LintArgs),
    /// Scaffold a GitOps repository: profiles, a module, a starter config, .sops.yaml rules
    /// and CI workflows (GitHub Actions, GitLab CI).
    Init(InitArgs),
    /// List the configured envs (JSON: a GitHub Actions / GitLab CI matrix).
    Envs,
    /// Configuration file helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page, or write one page per command into a directory.
    Man {
        /// Write gitops-bootstrap.1 and a page per subcommand here (e.g. ~/.local/share/man/man1).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

impl Command {
    /// The name as typed, for events and the run record.
    pub fn name(&self) -> &'static str {
        match self {
            Command::CreateEnv(_) => "create-env",
            Command::Status(_) => "status",
            Command::Teardown(_) => "teardown",
            Command::Rebuild(_) => "rebuild",
            Command::Plan(_) => "plan",
            Command::Doctor(_) => "doctor",
            Command::Lint(_) => "lint",
            Command::Init(_) => "init",
            Command::Envs => "envs",
            Command::Config(ConfigCommand::Schema) => "config schema",
            Command::Completions { .. } => "completions",
            Command::Man { .. } => "man",
        }
    }
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// The environment, as named under [envs.<name>] in the config file.
    pub env: String,

    /// The terraform or tofu binary (default: found on PATH).
    #[arg(long, env = "GITOPS_BOOTSTRAP_TERRAFORM")]
    pub terraform: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: EnvArgs,

    /// Report drift instead of readiness: resources changed outside Terraform, Flux objects
    /// not at the branch tip or suspended, objects changed or deleted since Flux applied them.
    /// Exit 1 when something drifted (for a scheduled CI job).
    #[arg(long)]
    pub drift: bool,

    /// Watch until every object is Ready at the commit Flux fetched (exit 0), one fails for
    /// good (exit 1) or --timeout passes (exit 3), instead of reading the tree once.
    #[arg(long, conflicts_with = "drift")]
    pub wait: bool,

    /// How long --wait may wait, e.g. 15m, 90s (1s to 24h).
    #[arg(long, default_value = "15m", value_parser = parse_run_timeout, requires = "wait")]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct CreateEnvArgs {
    #[command(flatten)]
    pub target: EnvArgs,

    /// The profile (a directory under profiles/ in the GitOps repository); default: the env's.
    #[arg(long)]
    pub profile: Option<String>,

    /// Apply without asking (required when not interactive).
    #[arg(long)]
    pub yes: bool,

    /// Allow Terraform to destroy or replace existing resources.
    #[arg(long)]
    pub allow_replace: bool,

    /// Allow re-pointing an env that already runs another profile.
    #[arg(long)]
    pub change_profile: bool,

    /// Go on when the profile does not lint (`gitops-bootstrap lint --env`); reported.
    #[arg(long)]
    pub skip_lint: bool,

    /// Take over a cluster that another tool (e.g. `flux bootstrap`) bootstrapped: its Flux
    /// objects are applied with force and the fields taken from other managers reported.
    #[arg(long)]
    pub adopt: bool,

    /// Pull-request mode (also `repository.mode = "pull-request"`): push the commit to the
    /// branch gitops-bootstrap/<env>, print where to open the pull request, and wait (up to
    /// --timeout) until it is merged before installing Flux.
    #[arg(long)]
    pub via_branch: bool,

    /// How long the whole run may wait on the cluster (controllers and runtime apps), e.g.
    /// 15m, 90s (1s to 24h).
    #[arg(long, default_value = "15m", value_parser = parse_run_timeout)]
    pub timeout: Duration,

    /// The Flux components manifest: a file or an https URL (default: the committed copy when
    /// its version matches, else the official release of the configured Flux version).
    #[arg(long)]
    pub flux_manifests: Option<String>,
}

#[derive(Debug, Args)]
pub struct TeardownArgs {
    #[command(flatten)]
    pub target: EnvArgs,

    /// Tear down without asking (required when not interactive).
    #[arg(long)]
    pub yes: bool,

    /// Go on when objects that own cloud resources are not gone in time, or when the cluster
    /// does not answer within --timeout (what is left behind is listed).
    #[arg(long)]
    pub force: bool,

    /// Leave the cluster as it is (e.g. it belongs to another env): only destroy this env's
    /// Terraform resources and remove clusters/<env>/ from Git.
    #[arg(long)]
    pub leave_cluster: bool,

    /// Keep clusters/<env>/ in the GitOps repository.
    #[arg(long)]
    pub keep_repo: bool,

    /// Pull-request mode (also `repository.mode = "pull-request"`): push the removal of
    /// clusters/<env>/ to the branch gitops-bootstrap/<env>, print where to open the pull
    /// request, and wait (up to --timeout) until it is merged.
    #[arg(long)]
    pub via_branch: bool,

    /// How long each deletion may take, and how long an unanswering cluster is retried, e.g.
    /// 5m, 90s (1s to 24h).
    #[arg(long, default_value = "5m", value_parser = parse_run_timeout)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub target: EnvArgs,

    /// Apply without asking (required when not interactive).
    #[arg(long)]
    pub yes: bool,

    /// Allow Terraform to destroy or replace existing resources.
    #[arg(long)]
    pub allow_replace: bool,

    /// How long the run may wait on the cluster (controllers and runtime apps), e.g. 15m.
    #[arg(long, default_value = "15m", value_parser = parse_run_timeout)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Also check this environment's module and repository.
    pub env: Option<String>,

    /// The terraform or tofu binary (default: found on PATH).
    #[arg(long, env = "GITOPS_BOOTSTRAP_TERRAFORM")]
    pub terraform: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Lint the profile of this env as the env runs it (its module's outputs, Flux version and
    /// repository prefix; needs the config file).
    #[arg(long, conflicts_with = "profile")]
    pub env: Option<String>,

    /// Lint only this profile (default: every profile under the profiles directory).
    #[arg(long)]
    pub profile: Option<String>,

    /// Where the profiles are, relative to PATH (default: the config's `profiles_dir` when
    /// there is a config file, else profiles).
    #[arg(long, conflicts_with = "env")]
    pub profiles_dir: Option<String>,

    /// First rewrite deprecated and removed Flux API versions of the linted files to what every
    /// cluster applying them serves (converting the fields the new version lacks).
    #[arg(long)]
    pub fix: bool,

    /// The GitOps repository's working tree.
    #[arg(default_value = ".")]
    pub path: PathBuf,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the repository (created when missing).
    #[arg(default_value = ".")]
    pub dir: PathBuf,

    /// Replace files that exist with other content (by default init refuses and writes nothing).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the JSON schema of the configuration file.
    Schema,
}

fn parse_run_timeout(text: &str) -> Result<Duration, String> {
    parse_bounded(text, Duration::from_secs(1), Duration::from_secs(24 * 3600))
}

fn parse_git_timeout(text: &str) -> Result<Duration, String> {
    parse_bounded(text, Duration::from_secs(1), Duration::from_secs(3600))
}

/// A duration in friendly units within `[min, max]`: a zero or absurd timeout is a typo, not a
/// wish.
fn parse_bounded(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let parsed: jiff::SignedDuration = text
        .parse()
        .map_err(|err| format!("not a duration like 15m or 90s: {err}"))?;
    let duration =
        Duration::try_from(parsed).map_err(|_| "a timeout cannot be negative".to_owned())?;
    let friendly = |d: Duration| {
        jiff::SignedDuration::try_from(d).map_or_else(|_| format!("{d:?}"), |d| format!("{d:#}"))
    };
    if duration < min || duration > max {
        return Err(format!(
            "{} is out of range: give between {} and {}",
            text.trim(),
            friendly(min),
            friendly(max)
        ));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn timeouts_parse_in_friendly_units() {
        assert_eq!(parse_run_timeout("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_run_timeout("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_run_timeout("soon").is_err());
        assert_eq!(
            parse_run_timeout("0s"),
            Err("0s is out of range: give between 1s and 24h".to_owned())
        );
        assert!(parse_run_timeout("99999999999999h").is_err());
        assert!(parse_git_timeout("2h").is_err());
        assert_eq!(parse_git_timeout("2s"), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn create_env_defaults() {
        let cli = Cli::try_parse_from(["gitops-bootstrap", "create-env", "dev"]).unwrap();
        let Command::CreateEnv(args) = cli.command else {
            panic!("parsed another command")
        };
        assert_eq!(args.target.env, "dev");
        assert_eq!(args.timeout, Duration::from_secs(900));
        assert!(!args.yes);
        assert_eq!(cli.output, OutputFormat::Text);
    }
}
