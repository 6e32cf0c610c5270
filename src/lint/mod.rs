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
mod build;
mod charts;
mod depends;
mod error;
mod secrets;
mod source;
mod variables;

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;

use crate::config::SubstitutionConfig;

pub use apis::fix_api_versions;
pub use build::Kustomize;
pub use error::LintError;

use build::ProfileTree;
use source::Repo;

/// How bad a finding is: errors fail the lint (exit 1) and stop create-env; warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// The rules, each with a stable id (README "Lint rules" lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
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
}

impl Rule {
    pub const ALL: [Rule; 12] = [
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
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Rule::FluxApiDeprecated | Rule::UnpinnedChart => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

/// One problem, where it is, and what to do about it. `file` is relative to the repository.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
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
}

/// The outcome of a lint: sorted findings and what was looked at.
#[derive(Debug, Clone, Serialize)]
pub struct LintReport {
    pub profiles: Vec<String>,
    pub findings: Vec<Finding>,
}

impl LintReport {
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|finding| finding.severity == severity)
            .count()
    }
}

/// Runs every rule over the repository and the builds of the target's profiles.
pub fn lint(target: &LintTarget, kustomize: &Kustomize) -> Result<LintReport, LintError> {
    let repo = Repo::load(&target.repo_root)?;
    let profiles = build::profiles(&repo, target)?;
    let mut findings: BTreeSet<Finding> = BTreeSet::new();
    findings.extend(repo.parse_errors());
    findings.extend(apis::check(&repo, target.flux_version.as_deref()));
    findings.extend(secrets::check(&repo));
    for profile in &profiles {
        let tree = ProfileTree::build(&repo, kustomize, target, profile);
        findings.extend(tree.findings.iter().cloned());
        findings.extend(variables::check(&repo, &tree, &target.variables));
        findings.extend(depends::check(&repo, &tree));
        findings.extend(depends::duplicates(&repo, &tree));
        findings.extend(charts::check(&repo, &tree));
    }
    Ok(LintReport {
        profiles,
        findings: findings.into_iter().collect(),
    })
}
