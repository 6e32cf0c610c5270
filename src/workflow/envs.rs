//! `envs`: the configured environments in the shapes CI engines fan out over, so N envs run
//! as N parallel jobs (per-env locks, state and run records keep them apart).

use serde::Serialize;

use crate::config::Config;

/// One env as a matrix entry.
#[derive(Debug, Clone, Serialize)]
pub struct EnvEntry {
    pub env: String,
    /// As written relative to the config file's directory when it is under it.
    pub module: String,
    pub profile: String,
    pub repository: String,
    pub branch: String,
    pub flux_version: String,
}

/// `github`: a GitHub Actions `strategy.matrix` (`{"include": [...]}`); `gitlab`: a GitLab
/// `parallel:matrix` list (`[{"GITOPS_BOOTSTRAP_ENV": [...]}]`).
#[derive(Debug, Clone, Serialize)]
pub struct EnvMatrix {
    pub github: GithubMatrix,
    pub gitlab: Vec<GitlabMatrixEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GithubMatrix {
    pub include: Vec<EnvEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GitlabMatrixEntry {
    #[serde(rename = "GITOPS_BOOTSTRAP_ENV")]
    pub envs: Vec<String>,
}

pub fn matrix(config: &Config) -> EnvMatrix {
    let include: Vec<EnvEntry> = config
        .envs
        .values()
        .map(|env| EnvEntry {
            env: env.name.clone(),
            module: env
                .module
                .strip_prefix(config.dir())
                .unwrap_or(&env.module)
                .to_string_lossy()
                .into_owned(),
            profile: env.profile.clone(),
            repository: env.repository.url.clone(),
            branch: env.repository.branch.clone(),
            flux_version: env.flux_version.clone(),
        })
        .collect();
    let names = include.iter().map(|entry| entry.env.clone()).collect();
    EnvMatrix {
        github: GithubMatrix { include },
        gitlab: vec![GitlabMatrixEntry { envs: names }],
    }
}

impl EnvMatrix {
    /// An aligned table, one env a line.
    pub fn text(&self) -> String {
        let rows = &self.github.include;
        let width = |field: fn(&EnvEntry) -> &str, title: &str| {
            rows.iter()
                .map(|row| field(row).len())
                .chain([title.len()])
                .max()
                .unwrap_or(0)
        };
        let (env, module, profile) = (
            width(|r| &r.env, "ENV"),
            width(|r| &r.module, "MODULE"),
            width(|r| &r.profile, "PROFILE"),
        );
        let mut text = format!(
            "{:<env$}  {:<module$}  {:<profile$}  REPOSITORY\n",
            "ENV", "MODULE", "PROFILE"
        );
        for row in rows {
            text.push_str(&format!(
                "{:<env$}  {:<module$}  {:<profile$}  {} ({})\n",
                row.env, row.module, row.profile, row.repository, row.branch
            ));
        }
        text.trim_end().to_owned()
    }
}
