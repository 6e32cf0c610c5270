//! Linting a GitOps repository: what an env's profile needs from the env (the variables its
//! module will provide, its Flux version), the lint itself, and its findings as events.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Config, ContractField, DEFAULT_PROFILES_DIR, EnvConfig, SubstitutionConfig};
use crate::error::{Error, Result};
use crate::lint::{
    self, ClusterRef, ClusterVariables, Finding, FixReport, Kustomize, LintReport, LintTarget,
    NotFixed, Severity,
};
use crate::render::cluster_dir;
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
    /// Retired API versions `--fix` left, and why.
    pub not_fixed: Vec<NotFixed>,
    /// Reported one event each before the result, so not repeated in it.
    #[serde(skip)]
    pub findings: Vec<Finding>,
    /// The files the linted profiles apply.
    #[serde(skip)]
    pub applied: BTreeSet<String>,
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
        for kept in &self.not_fixed {
            text.push_str(&format!(
                "not fixed {}:{}: {}\n",
                kept.file, kept.line, kept.reason
            ));
        }
        for finding in &self.findings {
            text.push_str(&finding_text(finding, true, ""));
            text.push('\n');
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

/// A lint of `profiles` (empty: all) of the repository at `root`, knowing nothing of one env:
/// only `cluster_name` is certain to be provided. The config's envs (when there is a config)
/// give where the profiles are and which Flux each cluster runs; `profiles_dir` overrides.
pub fn repository_target(
    root: &Path,
    profiles: Vec<String>,
    config: Option<&Config>,
    profiles_dir: Option<&str>,
) -> Result<LintTarget> {
    let envs: Vec<&EnvConfig> = config
        .map(|config| config.envs.values().collect())
        .unwrap_or_default();
    let mut layouts: Vec<(&str, &str)> = envs
        .iter()
        .map(|env| {
            (
                env.repository.path.as_str(),
                env.repository.profiles_dir.as_str(),
            )
        })
        .collect();
    layouts.sort_unstable();
    layouts.dedup();
    let (path_prefix, dir) = match (profiles_dir, layouts.as_slice()) {
        (Some(dir), _) => ("", dir),
        (None, []) => ("", DEFAULT_PROFILES_DIR),
        (None, [(prefix, dir)]) => (*prefix, *dir),
        (None, _) => {
            return Err(Error::bad_input(
                "the config's envs keep their profiles in different places".to_owned(),
            )
            .with_hint("pass --env E to lint one env's profile, or --profiles-dir DIR"));
        }
    };
    Ok(LintTarget {
        repo_root: root.to_owned(),
        path_prefix: path_prefix.to_owned(),
        profiles_dir: dir.to_owned(),
        substitution: SubstitutionConfig::default(),
        profiles,
        variables: ClusterVariables::contract_minimum(),
        flux_version: None,
        clusters: envs.into_iter().map(cluster_ref).collect(),
    })
}

fn cluster_ref(env: &EnvConfig) -> ClusterRef {
    ClusterRef {
        name: env.name.clone(),
        flux_version: env.flux_version.clone(),
        profile: env.profile.clone(),
        path_prefix: env.repository.path.clone(),
        profiles_dir: env.repository.profiles_dir.clone(),
    }
}

/// A lint of the env's profile as the env would run it: under the repository's prefix, with
/// the keys its module's outputs will put in `cluster-config`/`cluster-secrets`; `config`'s
/// envs (else this env alone) say which Flux runs where and which profile the tool applies.
pub fn env_target(
    root: &Path,
    env: &EnvConfig,
    profile: &str,
    config: Option<&Config>,
) -> Result<LintTarget> {
    let module = ModuleInterface::read(&env.module)?;
    Ok(LintTarget {
        repo_root: root.to_owned(),
        path_prefix: env.repository.path.clone(),
        profiles_dir: env.repository.profiles_dir.clone(),
        substitution: env.repository.substitution.clone(),
        profiles: vec![profile.to_owned()],
        variables: cluster_variables(env, &module),
        flux_version: Some(env.flux_version.clone()),
        clusters: match config {
            Some(config) => config.envs.values().map(cluster_ref).collect(),
            None => vec![cluster_ref(env)],
        },
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
    let fixes = if fix {
        lint::fix(target, &kustomize)?
    } else {
        FixReport::default()
    };
    let report: LintReport = lint::lint(target, &kustomize)?;
    report_findings(&report.findings, reporter);
    Ok(LintSummary {
        errors: report.count(Severity::Error),
        warnings: report.count(Severity::Warning),
        profiles: report.profiles,
        fixed: fixes.fixed,
        not_fixed: fixes.not_fixed,
        findings: report.findings,
        applied: report.applied,
    })
}

fn report_findings(findings: &[Finding], reporter: &dyn Reporter) {
    for finding in findings {
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
}

/// `file:line:column: error[rule]: message` (or `[rule] message` without the severity), then
/// the fix on a line of its own, indented by `indent` and two spaces.
fn finding_text(finding: &Finding, with_severity: bool, indent: &str) -> String {
    let rule = finding.rule.id();
    let tag = if with_severity {
        format!("{}[{rule}]:", severity_name(finding.severity))
    } else {
        format!("[{rule}]")
    };
    format!(
        "{}:{}:{}: {tag} {}\n{indent}  fix: {}",
        finding.file, finding.line, finding.column, finding.message, finding.fix
    )
}

fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// Where create-env's lint runs: its working clone at `tree` (the tip's tree id), and the
/// file remembering the last clean lint.
pub struct PreflightLint<'a> {
    pub repo_dir: &'a Path,
    pub tree: Option<String>,
    pub cache: PathBuf,
}

/// A clean lint remembered: the same tree linted the same way lints the same, so a rerun
/// spawns no `kubectl kustomize`.
#[derive(Debug, Serialize, Deserialize)]
struct Remembered {
    key: String,
    findings: Vec<Finding>,
    applied: BTreeSet<String>,
}

fn cache_key(tree: &str, target: &LintTarget) -> String {
    let mut hasher = Sha256::new();
    hasher.update(env!("CARGO_PKG_VERSION"));
    hasher.update(tree);
    hasher.update(format!("{target:?}"));
    format!("{:x}", hasher.finalize())
}

/// The lint of `target`, or the remembered one when its key matches (its findings reported
/// again); `None` as the key when the tree is not known.
fn lint_or_remember(
    target: &LintTarget,
    key: Option<&str>,
    cache: &Path,
    reporter: &dyn Reporter,
) -> Result<(LintSummary, bool)> {
    let remembered = key.and_then(|key| {
        let text = std::fs::read_to_string(cache).ok()?;
        serde_json::from_str::<Remembered>(&text)
            .ok()
            .filter(|found| found.key == key)
    });
    let Some(remembered) = remembered else {
        return Ok((run(target, false, reporter)?, false));
    };
    report_findings(&remembered.findings, reporter);
    let count = |severity| {
        remembered
            .findings
            .iter()
            .filter(|finding| finding.severity == severity)
            .count()
    };
    Ok((
        LintSummary {
            profiles: target.profiles.clone(),
            errors: count(Severity::Error),
            warnings: count(Severity::Warning),
            fixed: Vec::new(),
            not_fixed: Vec::new(),
            findings: remembered.findings,
            applied: remembered.applied,
        },
        true,
    ))
}

/// create-env's lint of the profile it is about to run, in its working clone, before
/// Terraform: errors in what the env applies (its profile's builds, `clusters/<env>/`) stop the
/// run (exit 2) unless `skip`; findings elsewhere and warnings are reported. Returns the
/// preflight's note about it.
pub fn preflight(
    at: &PreflightLint<'_>,
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
    let target = env_target(at.repo_dir, env, profile, None)?;
    let key = at.tree.as_deref().map(|tree| cache_key(tree, &target));
    let (summary, remembered) = lint_or_remember(&target, key.as_deref(), &at.cache, reporter)?;
    let env_dir = format!("{}/", cluster_dir(&env.repository.path, &env.name));
    let applied = |finding: &&Finding| {
        summary.applied.contains(&finding.file) || finding.file.starts_with(&env_dir)
    };
    // Each finding with what to change: create-env's output is all a user of it may read.
    // Its severity goes without saying: a warning, or the error that stops the run.
    let line = |finding: &Finding, indent: &str| finding_text(finding, false, indent);
    let (blocking, reported): (Vec<&Finding>, Vec<&Finding>) = summary
        .findings
        .iter()
        .partition(|finding| finding.severity == Severity::Error && applied(finding));
    for finding in &reported {
        let scope = if applied(finding) {
            ""
        } else {
            " (not applied by this env)"
        };
        reporter.warning(format!("lint{scope}: {}", line(finding, "")));
    }
    if !blocking.is_empty() {
        let lines: Vec<String> = blocking.iter().map(|finding| line(finding, "  ")).collect();
        return Err(Error::bad_input(format!(
            "profile {profile} does not lint: {} error(s) in what env {} applies, nothing was created\n  {}",
            blocking.len(),
            env.name,
            lines.join("\n  ")
        ))
        .with_hint(format!(
            "make each fix in the repository and push it (`gitops-bootstrap lint --env {}` checks a working copy first), or rerun with --skip-lint",
            env.name
        )));
    }
    if let Some(key) = key.filter(|_| !remembered) {
        remember(&at.cache, key, &summary);
    }
    let note = match reported.len() {
        0 => "lint clean".to_owned(),
        n => format!("lint: {n} finding(s) reported, none in what the env applies"),
    };
    Ok(if remembered {
        format!("{note} (tree unchanged since the last lint)")
    } else {
        note
    })
}

/// Saves a passing lint; failing to is only a slower next run.
fn remember(cache: &Path, key: String, summary: &LintSummary) {
    let remembered = Remembered {
        key,
        findings: summary.findings.clone(),
        applied: summary.applied.clone(),
    };
    let saved = serde_json::to_string(&remembered)
        .map_err(|err| err.to_string())
        .and_then(|text| std::fs::write(cache, text).map_err(|err| err.to_string()));
    if let Err(message) = saved {
        tracing::debug!(
            "lint result not remembered ({}): {message}",
            cache.display()
        );
    }
}
