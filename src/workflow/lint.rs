//! Linting a GitOps repository: what an env's profile needs from the env (the variables its
//! module will provide, its Flux version), the lint itself, and its findings as events.

use std::path::Path;

use serde::Serialize;

use crate::config::{ContractField, DEFAULT_PROFILES_DIR, EnvConfig, SubstitutionConfig};
use crate::error::{Error, Result};
use crate::lint::{self, ClusterVariables, Finding, Kustomize, LintReport, LintTarget, Severity};
use crate::report::{Event, Reporter};
use crate::terraform::{ModuleInterface, OutputValue};

/// A lint's result, as the `result` event carries it.
#[derive(Debug, Clone, Serialize)]
pub struct LintSummary {
    pub profiles: Vec<String>,
    pub errors: usize,
    pub warnings: usize,
    /// Files `--fix` rewrote, relative to the repository.
    pub fixed: Vec<String>,
    /// Reported one event each before the result, so not repeated in it.
    #[serde(skip)]
    pub findings: Vec<Finding>,
}

impl LintSummary {
    pub fn ok(&self) -> bool {
        self.errors == 0
    }

    /// One line per finding (`file:line:column: error[rule]: message`, then the fix), then
    /// the counts.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for file in &self.fixed {
            text.push_str(&format!("fixed {file}\n"));
        }
        for finding in &self.findings {
            let severity = severity_name(finding.severity);
            text.push_str(&format!(
                "{}:{}:{}: {severity}[{}]: {}\n  fix: {}\n",
                finding.file,
                finding.line,
                finding.column,
                finding.rule.id(),
                finding.message,
                finding.fix
            ));
        }
        text.push_str(&format!(
            "lint of profile(s) {}: {} error(s), {} warning(s)",
            self.profiles.join(", "),
            self.errors,
            self.warnings
        ));
        text
    }
}

/// A lint of `profiles` (empty: all) of the repository at `root`, knowing nothing of an env:
/// only `cluster_name` is certain to be provided.
pub fn repository_target(root: &Path, profiles: Vec<String>) -> LintTarget {
    LintTarget {
        repo_root: root.to_owned(),
        path_prefix: String::new(),
        profiles_dir: DEFAULT_PROFILES_DIR.to_owned(),
        substitution: SubstitutionConfig::default(),
        profiles,
        variables: ClusterVariables::contract_minimum(),
        flux_version: None,
    }
}

/// A lint of the env's profile as the env would run it: under the repository's prefix, with
/// the keys its module's outputs will put in `cluster-config`/`cluster-secrets`.
pub fn env_target(root: &Path, env: &EnvConfig, profile: &str) -> Result<LintTarget> {
    let module = ModuleInterface::read(&env.module)?;
    Ok(LintTarget {
        repo_root: root.to_owned(),
        path_prefix: env.repository.path.clone(),
        profiles_dir: env.repository.profiles_dir.clone(),
        substitution: env.repository.substitution.clone(),
        profiles: vec![profile.to_owned()],
        variables: cluster_variables(env, &module),
        flux_version: Some(env.flux_version.clone()),
    })
}

/// The substitution keys an env will hold: `cluster_name`, `network_*`, and the keys of
/// `cluster_config`/`cluster_secrets` when the module's outputs show them (an object literal,
/// or a variable passed through that the config sets as a table). Any other shape leaves the
/// set open.
fn cluster_variables(env: &EnvConfig, module: &ModuleInterface) -> ClusterVariables {
    let mut variables = ClusterVariables::contract_minimum();
    for (field, prefix) in [
        (ContractField::Network, "network_"),
        (ContractField::ClusterConfig, ""),
        (ContractField::ClusterSecrets, ""),
    ] {
        let source = env.outputs.source(field);
        let Some(output) = module.outputs.get(&source.output) else {
            continue;
        };
        let keys = match (&output.value, source.path.is_empty()) {
            (OutputValue::ObjectKeys(keys), true) => Some(keys.clone()),
            (OutputValue::Variable(name), true) => env
                .variables
                .get(name)
                .and_then(serde_json::Value::as_object)
                .map(|table| table.keys().cloned().collect()),
            _ => None,
        };
        match keys {
            Some(keys) => variables
                .known
                .extend(keys.into_iter().map(|key| format!("{prefix}{key}"))),
            None => variables.open = true,
        }
    }
    variables
}

/// Lints (after `--fix` when asked) and reports each finding as an event.
pub fn run(target: &LintTarget, fix: bool, reporter: &dyn Reporter) -> Result<LintSummary> {
    let kustomize = Kustomize::find()?;
    let fixed = if fix {
        lint::fix_api_versions(&target.repo_root)?
    } else {
        Vec::new()
    };
    let report: LintReport = lint::lint(target, &kustomize)?;
    for finding in &report.findings {
        reporter.emit(Event::Finding {
            file: finding.file.clone(),
            line: finding.line,
            column: finding.column,
            rule: finding.rule.id().to_owned(),
            severity: severity_name(finding.severity).to_owned(),
            message: finding.message.clone(),
            fix: finding.fix.clone(),
        });
    }
    Ok(LintSummary {
        errors: report.count(Severity::Error),
        warnings: report.count(Severity::Warning),
        profiles: report.profiles,
        fixed,
        findings: report.findings,
    })
}

fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// create-env's lint of the profile it is about to run, in its working clone, before
/// Terraform: errors stop the run (exit 2) unless `skip`, warnings are reported. Returns the
/// preflight's note about it.
pub fn preflight(
    repo_dir: &Path,
    env: &EnvConfig,
    profile: &str,
    skip: bool,
    reporter: &dyn Reporter,
) -> Result<String> {
    if skip {
        reporter.warning(format!(
            "lint of profile {profile} skipped (--skip-lint): its mistakes show only once Flux applies it"
        ));
        return Ok("lint skipped".to_owned());
    }
    let target = env_target(repo_dir, env, profile)?;
    let summary = run(&target, false, reporter)?;
    let lines = |severity: Severity| -> Vec<String> {
        summary
            .findings
            .iter()
            .filter(|finding| finding.severity == severity)
            .map(|finding| {
                format!(
                    "{}:{}:{}: [{}] {}",
                    finding.file,
                    finding.line,
                    finding.column,
                    finding.rule.id(),
                    finding.message
                )
            })
            .collect()
    };
    for warning in lines(Severity::Warning) {
        reporter.warning(format!("lint: {warning}"));
    }
    if !summary.ok() {
        return Err(Error::bad_input(format!(
            "profile {profile} does not lint: {} error(s), nothing was created\n  {}",
            summary.errors,
            lines(Severity::Error).join("\n  ")
        ))
        .with_hint(format!(
            "fix them in the repository (`gitops-bootstrap lint --env {}` shows each with its fix), or rerun with --skip-lint",
            env.name
        )));
    }
    Ok(match summary.warnings {
        0 => "lint clean".to_owned(),
        n => format!("lint: {n} warning(s)"),
    })
}
