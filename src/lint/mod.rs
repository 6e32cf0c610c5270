//! `lint`: offline checks of a GitOps repository that catch, before anything is created, what
//! would otherwise fail a bootstrap half-way: a profile that does not build, a variable nobody
//! provides, a `dependsOn` that names nothing, a Flux API version the installed Flux does not
//! serve, a Secret in plain text, a chart without a source.
//!
//! Profiles are built with `kubectl kustomize` (the build Flux's kustomize-controller does,
//! Components included), and every Flux Kustomization a build yields is followed to the
//! directory it applies, so the checks see what the cluster would get. Findings point at the
//! source line (`file:line:column`) with a rule id (README "Lint rules") and a fix.

mod apis;
mod bootstrap;
mod build;
mod charts;
mod clusters;
mod convert;
mod depends;
mod error;
mod fix;
mod flux_apis;
mod flux_instance;
mod secrets;
mod source;
mod substitution;
mod variables;

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::SubstitutionConfig;

pub use build::Kustomize;
pub use clusters::ClusterRef;
pub use error::LintError;
pub use fix::{FixReport, NotFixed, fix};

use build::ProfileTree;
use source::Repo;

/// How bad a finding is: errors fail the lint (exit 1) and stop create-env; warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// The rules, each with a stable id (README "Lint rules" lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    KustomizeBuild,
    UnknownComponent,
    InvalidYaml,
    UnresolvedVariable,
    DanglingDependsOn,
    DuplicateObject,
    FluxApiRemoved,
    FluxApiDeprecated,
    PlaintextSecret,
    UnencryptedSopsFile,
    MissingChartSource,
    UnpinnedChart,
    Symlink,
    ProfileAppliedTwice,
    BootstrapName,
    FluxInstance,
}

impl Rule {
    pub const ALL: [Rule; 16] = [
        Rule::KustomizeBuild,
        Rule::UnknownComponent,
        Rule::InvalidYaml,
        Rule::UnresolvedVariable,
        Rule::DanglingDependsOn,
        Rule::DuplicateObject,
        Rule::FluxApiRemoved,
        Rule::FluxApiDeprecated,
        Rule::PlaintextSecret,
        Rule::UnencryptedSopsFile,
        Rule::MissingChartSource,
        Rule::UnpinnedChart,
        Rule::Symlink,
        Rule::ProfileAppliedTwice,
        Rule::BootstrapName,
        Rule::FluxInstance,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Rule::KustomizeBuild => "kustomize-build",
            Rule::UnknownComponent => "unknown-component",
            Rule::InvalidYaml => "invalid-yaml",
            Rule::UnresolvedVariable => "unresolved-variable",
            Rule::DanglingDependsOn => "dangling-depends-on",
            Rule::DuplicateObject => "duplicate-object",
            Rule::FluxApiRemoved => "flux-api-removed",
            Rule::FluxApiDeprecated => "flux-api-deprecated",
            Rule::PlaintextSecret => "plaintext-secret",
            Rule::UnencryptedSopsFile => "unencrypted-sops-file",
            Rule::MissingChartSource => "missing-chart-source",
            Rule::UnpinnedChart => "unpinned-chart",
            Rule::Symlink => "symlink",
            Rule::ProfileAppliedTwice => "profile-applied-twice",
            Rule::BootstrapName => "bootstrap-name",
            Rule::FluxInstance => "flux-instance",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Rule::FluxApiDeprecated | Rule::UnpinnedChart | Rule::Symlink => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

/// One problem, where it is, and what to do about it. `file` is relative to the repository.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Finding {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub rule: Rule,
    pub severity: Severity,
    pub message: String,
    pub fix: String,
}

impl Finding {
    fn new(at: source::Location, rule: Rule, message: String, fix: impl Into<String>) -> Self {
        Finding {
            file: at.file,
            line: at.line,
            column: at.column,
            rule,
            severity: rule.severity(),
            message,
            fix: fix.into(),
        }
    }
}

/// The Flux substitution variables an env's `cluster-config`/`cluster-secrets` will hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterVariables {
    /// Keys known to be there.
    pub known: BTreeSet<String>,
    /// Whether other keys may be there too (a map output lint cannot read offline): then a
    /// variable none of the known keys provides is a warning, not an error.
    pub open: bool,
}

impl ClusterVariables {
    /// What every env holds whatever its module: `cluster_name` (the output contract).
    pub fn contract_minimum() -> Self {
        ClusterVariables {
            known: BTreeSet::from(["cluster_name".to_owned()]),
            open: false,
        }
    }
}

/// What to lint.
#[derive(Debug, Clone)]
pub struct LintTarget {
    /// The repository's working tree.
    pub repo_root: PathBuf,
    /// The prefix inside the repository holding `clusters/` and the profiles (`""`: the root).
    pub path_prefix: String,
    /// Where the profiles live under the prefix (`repository.profiles_dir`).
    pub profiles_dir: String,
    /// The objects create-env substitutes from: the ConfigMap and Secret it writes, then the
    /// repository's extra sources (which lint cannot read).
    pub substitution: SubstitutionConfig,
    /// Profiles to build (directories under `profiles_dir`); empty: every profile there.
    pub profiles: Vec<String>,
    pub variables: ClusterVariables,
    /// The Flux release the env installs (`v2.4.0`); `None`: the newest lint knows.
    pub flux_version: Option<String>,
    /// The configured envs: which Flux each runs and which profile it applies (`--fix`
    /// rewrites a file only to what every cluster applying it serves).
    pub clusters: Vec<ClusterRef>,
}

/// The outcome of a lint: sorted findings and what was looked at.
#[derive(Debug, Clone, Serialize)]
pub struct LintReport {
    pub profiles: Vec<String>,
    pub findings: Vec<Finding>,
    /// The files the profiles' builds read: what an env running them applies.
    #[serde(skip)]
    pub applied: BTreeSet<String>,
}

impl LintReport {
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|finding| finding.severity == severity)
            .count()
    }
}

/// Runs every rule over the builds of the target's profiles and over what Flux may apply: the
/// files those builds read, and everything under the profiles and `clusters/` directories
/// (not, say, Terraform's templates beside them).
pub fn lint(target: &LintTarget, kustomize: &Kustomize) -> Result<LintReport, LintError> {
    let repo = Repo::load(&target.repo_root)?;
    let profiles = build::profiles(&repo, target)?;
    let mut findings: BTreeSet<Finding> = BTreeSet::new();
    let mut applied = BTreeSet::new();
    for profile in &profiles {
        let tree = ProfileTree::build(&repo, kustomize, target, profile);
        applied.extend(tree.files());
        findings.extend(tree.findings.iter().cloned());
        findings.extend(variables::check(&repo, &tree, &target.variables));
        findings.extend(depends::check(&repo, &tree));
        findings.extend(depends::duplicates(&repo, &tree));
        findings.extend(charts::check(&repo, &tree));
        findings.extend(bootstrap::in_tree(&repo, &tree, target));
    }
    findings.extend(bootstrap::in_clusters(&repo, target));
    let dirs = [
        format!(
            "{}/",
            build::join(&target.path_prefix, &target.profiles_dir)
        ),
        format!("{}/", build::join(&target.path_prefix, "clusters")),
    ];
    let in_scope = |finding: &Finding| {
        applied.contains(&finding.file) || dirs.iter().any(|dir| finding.file.starts_with(dir))
    };
    let repository_wide = [
        repo.parse_errors(),
        repo.unread_findings(),
        apis::check(&repo, target.flux_version.as_deref()),
        secrets::check(&repo),
        flux_instance::check(&repo, target.flux_version.as_deref()),
    ];
    findings.extend(repository_wide.into_iter().flatten().filter(in_scope));
    Ok(LintReport {
        profiles,
        findings: findings.into_iter().collect(),
        applied,
    })
}
