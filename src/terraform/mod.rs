//! The Terraform adapter: finds `terraform` or `tofu`, generates each environment's root
//! module, builds every command apart from running it, runs it in its own process group with
//! a graceful interrupt, and turns its `-json` output into events, plan summaries and errors.
//!
//! Knows nothing of Git or Kubernetes. Outputs are parsed here into typed [`Outputs`] whose
//! values stay secret; [`crate::contract`] maps them onto the output contract.

pub mod command;
mod discover;
mod error;
pub mod events;
mod module;
mod outputs;
mod plan;
mod process;
mod redact;
mod root;
mod state;

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

pub use command::PlanMode;
pub use discover::{Flavor, MINIMUM_VERSION, Version};
pub use error::{StateLock, TerraformError};
pub use events::{ChangeAction, ChangeCounts, Diagnostic, ResourceOperation, Severity, TfEvent};
pub use module::{ModuleInterface, OutputDecl, OutputValue, VariableDecl};
pub use outputs::{Output, Outputs, SecretValue, describe_type, element_type};
pub use plan::PlanSummary;
pub use process::{DEFAULT_IDLE_TIMEOUT, child_running, set_idle_timeout};
pub use root::{Backend, EnvRoot, LOCAL_STATE_FILE, MODULE_NAME, RootSpec, local_state_file};
pub use state::StateInfo;

/// How long an interrupted Terraform gets to stop and release its state lock before SIGKILL.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(30);

/// A Terraform (or OpenTofu) command known to be recent enough.
#[derive(Debug, Clone)]
pub struct Terraform {
    path: PathBuf,
    version: Version,
    flavor: Flavor,
    grace_period: Duration,
}

/// A saved plan and what it would do. The plan file holds variable values (secrets
/// included): it is created 0600 and removed when the `Plan` is dropped.
#[derive(Debug)]
pub struct Plan {
    file: tempfile::TempPath,
    mode: PlanMode,
    summary: PlanSummary,
    warnings: Vec<Diagnostic>,
}

impl Plan {
    pub fn summary(&self) -> &PlanSummary {
        &self.summary
    }

    pub fn mode(&self) -> PlanMode {
        self.mode
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The warnings Terraform gave while planning (deprecated arguments, a backend block
    /// it ignores, …), for the user to see.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }
}

type Result<T, E = TerraformError> = std::result::Result<T, E>;

impl Terraform {
    /// Uses `explicit` when given, else `terraform`, else `tofu` from PATH, and checks that
    /// `version -json` reports at least [`MINIMUM_VERSION`].
    pub async fn discover(explicit: Option<&Path>) -> Result<Terraform> {
        let path = discover::locate(explicit)?;
        let unreadable = |reason: String| TerraformError::VersionUnreadable {
            path: path.clone(),
            reason,
        };
        let finished = process::run(
            &command::version(&path),
            &mut |_| {},
            &CancellationToken::new(),
            DEFAULT_GRACE_PERIOD,
        )
        .await
        .map_err(|err| unreadable(err.to_string()))?;
        let version =
            Version::from_version_json(finished.stdout.expose_secret()).map_err(unreadable)?;
        discover::check_version(&path, version)?;
        let flavor = Flavor::of_command(&path);
        tracing::debug!(path = %path.display(), %version, %flavor, "found terraform");
        Ok(Terraform {
            path,
            version,
            flavor,
            grace_period: DEFAULT_GRACE_PERIOD,
        })
    }

    /// Changes the time an interrupted run gets before it is killed.
    pub fn with_grace_period(mut self, grace_period: Duration) -> Terraform {
        self.grace_period = grace_period;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// `init`: safe to repeat; a no-op when nothing changed.
    pub async fn init(&self, root: &EnvRoot, cancel: &CancellationToken) -> Result<()> {
        self.run(&command::init(&self.path, root), &mut |_| {}, cancel)
            .await
            .map(drop)
    }

    /// `plan -out`, then `show -json` of the saved plan for its summary.
    pub async fn plan(
        &self,
        root: &EnvRoot,
        mode: PlanMode,
        cancel: &CancellationToken,
    ) -> Result<Plan> {
        let file = tempfile::Builder::new()
            .prefix(".gitops-bootstrap-")
            .suffix(".tfplan")
            .tempfile_in(root.work_dir())
            .map_err(|source| TerraformError::WriteRoot {
                path: root.work_dir().to_path_buf(),
                source,
            })?
            .into_temp_path();
        let plan = command::plan(&self.path, root, mode, &file);
        let mut warnings = Vec::new();
        let mut collect = |event: &TfEvent| {
            warnings.extend(event.warning().cloned());
        };
        self.run(&plan, &mut collect, cancel).await?;
        let show = command::show_plan_json(&self.path, root, &file);
        let shown = self.run(&show, &mut |_| {}, cancel).await?;
        let summary =
            PlanSummary::from_show_json(shown.stdout.expose_secret()).map_err(|reason| {
                TerraformError::ParseOutput {
                    command: "show",
                    reason,
                }
            })?;
        Ok(Plan {
            file,
            mode,
            summary,
            warnings,
        })
    }

    /// Applies a saved plan (an apply or a destroy plan), reporting progress through
    /// `on_event`. The plan file is removed afterwards: a saved plan applies once.
    pub async fn apply(
        &self,
        root: &EnvRoot,
        plan: Plan,
        mut on_event: impl FnMut(&TfEvent) + Send,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let command = command::apply(&self.path, root, plan.file());
        self.run(&command, &mut on_event, cancel).await.map(drop)
    }

    /// `output -json`, parsed. The raw text is secret as a whole (it holds the sensitive
    /// values) and goes no further than the parser.
    pub async fn outputs(&self, root: &EnvRoot, cancel: &CancellationToken) -> Result<Outputs> {
        let command = command::output_json(&self.path, root);
        let raw = self.run(&command, &mut |_| {}, cancel).await?.stdout;
        Outputs::parse(&raw)
    }

    /// What the env's state holds, read by Terraform through the root's own backend and
    /// selected workspace (`state pull`): never a guessed file path.
    pub async fn state(&self, root: &EnvRoot, cancel: &CancellationToken) -> Result<StateInfo> {
        let command = command::state_pull(&self.path, root);
        let pulled = self.run(&command, &mut |_| {}, cancel).await?;
        StateInfo::parse(&pulled.stdout).map_err(|reason| TerraformError::ParseOutput {
            command: "state pull",
            reason,
        })
    }

    /// `destroy -auto-approve`, reporting progress through `on_event`.
    pub async fn destroy(
        &self,
        root: &EnvRoot,
        mut on_event: impl FnMut(&TfEvent) + Send,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let command = command::destroy(&self.path, root);
        self.run(&command, &mut on_event, cancel).await.map(drop)
    }

    async fn run(
        &self,
        command: &command::TfCommand,
        on_event: &mut (dyn FnMut(&TfEvent) + Send),
        cancel: &CancellationToken,
    ) -> Result<process::Finished> {
        process::run(command, on_event, cancel, self.grace_period).await
    }
}
