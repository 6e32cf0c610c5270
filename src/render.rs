//! The files the tool commits under `<prefix>/clusters/<env>/`, rendered from the tera
//! templates in `bootstrap/` (embedded in the binary), and what a rerun reads back from the
//! committed copies ([`CommittedEnv`]).
//!
//! Every value goes into the YAML through the `yaml` filter, which writes a double-quoted
//! scalar, so a branch or URL with `:`, `#`, quotes or newlines cannot change the structure.

use std::collections::HashMap;

use serde::Serialize;
use serde_yaml_ng::Value;

use crate::config::{FluxInstall, SubstituteKind, SubstitutionConfig};
use crate::error::{Diagnose, ExitStatus};

mod committed;
mod kept;

pub use committed::{CommittedEnv, CommittedFlux};
pub use kept::{DirEntry, EntryKind, KUSTOMIZATION_FILES, KeptContent, kept_content};

/// The annotation on the `profile` Kustomization naming the env's profile.
pub const PROFILE_ANNOTATION: &str = "gitops-bootstrap.io/profile";

/// How long the `profile` Kustomization waits for its apps in one reconcile. Fixed: a flag of
/// one run (`--timeout`) never changes what is committed.
const PROFILE_TIMEOUT: &str = "15m";

/// Files of `clusters/<env>/` that are read back, relative to that dir.
pub const COMPONENTS_FILE: &str = "flux-system/gotk-components.yaml";
pub const SYNC_FILE: &str = "flux-system/gotk-sync.yaml";
/// The Flux Operator's install manifest as applied (operator mode); no kustomization lists it:
/// the tool applies it, Flux does not.
pub const OPERATOR_FILE: &str = "flux-system/flux-operator.yaml";
pub const INSTANCE_FILE: &str = "flux-system/flux-instance.yaml";
/// The first line of the FluxInstance the tool renders; a flux-instance.yaml without it is the
/// repository's own.
pub const INSTANCE_HEADER: &str = "# The Flux Operator installs Flux from this FluxInstance";
pub const PROFILE_FILE: &str = "profile.yaml";
pub const SOPS_FILE: &str = ".sops.yaml";

/// What the cluster dir of one env is rendered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderInput {
    pub env: String,
    /// A directory under `<prefix>/<profiles_dir>/`.
    pub profile: String,
    /// The directory under the prefix holding the profiles (`profiles`, `clusters/_profiles`).
    pub profiles_dir: String,
    /// The URL Flux clones (the `flux-system` GitRepository).
    pub repo_url: String,
    pub branch: String,
    /// `""` or a relative directory such as `platform` holding `clusters/` and the profiles.
    pub path_prefix: String,
    /// Recorded on the GitRepository so a reader sees which Flux wrote the sync.
    pub flux_version: String,
    /// Flux duration between syncs, e.g. `1m`.
    pub interval: String,
    /// The env's age recipient (`age1…`) for `.sops.yaml`.
    pub age_recipient: String,
    /// The ConfigMap and Secret the profile substitutes from, and further sources.
    pub substitution: SubstitutionConfig,
    /// What the env's directory already holds that its kustomization.yaml keeps applying.
    pub kept: KeptContent,
    /// How Flux is installed: which of the flux-system files are rendered.
    pub install: FluxInstall,
    /// The repository keeps a FluxInstance of its own in flux-system/ (operator mode): that
    /// directory is the repository's, and neither the FluxInstance nor its kustomization.yaml
    /// is rendered.
    pub own_instance: bool,
}

/// One rendered file, its path relative to the repository root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: String,
    pub contents: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot render clusters/{env}/: {field} {reason}")]
    InvalidInput {
        env: String,
        field: &'static str,
        reason: String,
    },
    #[error("failed to render bootstrap template {template}: {source}")]
    Template {
        template: &'static str,
        #[source]
        source: tera::Error,
    },
}

impl Diagnose for RenderError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            RenderError::InvalidInput { .. } => ExitStatus::BadInput,
            RenderError::Template { .. } => ExitStatus::Failure,
        }
    }
}

/// A template of `bootstrap/` and where its output goes inside `clusters/<env>/`, for the
/// envs it is rendered for.
struct Template {
    output: &'static str,
    source: &'static str,
    wanted: fn(&RenderInput) -> bool,
}

fn always(_: &RenderInput) -> bool {
    true
}

fn components(input: &RenderInput) -> bool {
    input.install == FluxInstall::Components
}

fn rendered_instance(input: &RenderInput) -> bool {
    input.install == FluxInstall::Operator && !input.own_instance
}

const TEMPLATES: &[Template] = &[
    Template {
        output: SYNC_FILE,
        source: include_str!("../bootstrap/flux-system/gotk-sync.yaml.tera"),
        wanted: components,
    },
    Template {
        output: "flux-system/kustomization.yaml",
        source: include_str!("../bootstrap/flux-system/kustomization.yaml.tera"),
        wanted: components,
    },
    Template {
        output: INSTANCE_FILE,
        source: include_str!("../bootstrap/flux-system/flux-instance.yaml.tera"),
        wanted: rendered_instance,
    },
    Template {
        output: "flux-system/kustomization.yaml",
        source: include_str!("../bootstrap/flux-system/kustomization-operator.yaml.tera"),
        wanted: rendered_instance,
    },
    Template {
        output: PROFILE_FILE,
        source: include_str!("../bootstrap/profile.yaml.tera"),
        wanted: always,
    },
    Template {
        output: "kustomization.yaml",
        source: include_str!("../bootstrap/kustomization.yaml.tera"),
        wanted: always,
    },
    Template {
        output: SOPS_FILE,
        source: include_str!("../bootstrap/.sops.yaml.tera"),
        wanted: always,
    },
];

/// The flux-system files of the other install method, removed when an env changes methods
/// (the FluxInstance only when the tool wrote it).
pub fn other_method_files(install: FluxInstall) -> &'static [&'static str] {
    match install {
        FluxInstall::Components => &[OPERATOR_FILE],
        FluxInstall::Operator => &[COMPONENTS_FILE, SYNC_FILE],
    }
}

/// Every file create-env may write in `clusters/<env>/`, relative to it, whichever the install
/// method: what a teardown removes (anything else there is the user's). [`INSTANCE_FILE`] is
/// the tool's only when it starts with [`INSTANCE_HEADER`]: a repository may bring its own.
pub fn tool_files() -> Vec<&'static str> {
    let mut files: Vec<&'static str> = Vec::new();
    let all = TEMPLATES.iter().map(|template| template.output);
    for file in all.chain([COMPONENTS_FILE, OPERATOR_FILE]) {
        if !files.contains(&file) {
            files.push(file);
        }
    }
    files
}

/// The template variables: the input plus the repository paths derived from it.
#[derive(Serialize)]
struct Vars<'a> {
    env: &'a str,
    profile: &'a str,
    repo_url: &'a str,
    branch: &'a str,
    flux_version: &'a str,
    interval: &'a str,
    timeout: &'a str,
    age_recipient: &'a str,
    cluster_path: String,
    profile_path: String,
    profiles_root: String,
    substitute_from: Vec<SubstituteVar<'a>>,
    kept_resources: &'a [String],
    kept_fields: &'a str,
    distribution_version: &'a str,
    sync_ref: String,
    /// `<prefix>/clusters/<env>`, as the operator's `sync.path` spells it (no `./`).
    sync_path: String,
}

/// One `postBuild.substituteFrom` entry.
#[derive(Serialize)]
struct SubstituteVar<'a> {
    kind: &'static str,
    name: &'a str,
    optional: bool,
}

fn substitute_from(substitution: &SubstitutionConfig) -> Vec<SubstituteVar<'_>> {
    let own = [
        (SubstituteKind::ConfigMap, &substitution.config_map),
        (SubstituteKind::Secret, &substitution.secret),
    ]
    .into_iter()
    .map(|(kind, name)| (kind, name, false));
    let extra = substitution
        .extra
        .iter()
        .map(|source| (source.kind, &source.name, source.optional));
    own.chain(extra)
        .map(|(kind, name, optional)| SubstituteVar {
            kind: match kind {
                SubstituteKind::ConfigMap => "ConfigMap",
                SubstituteKind::Secret => "Secret",
            },
            name,
            optional,
        })
        .collect()
}

/// `<prefix>/clusters/<env>`, repository-relative without a leading `./`.
pub fn cluster_dir(path_prefix: &str, env: &str) -> String {
    repo_path(path_prefix, &format!("clusters/{env}"))
}

/// `<prefix>/<profiles_dir>/<profile>`, repository-relative without a leading `./`.
fn profile_dir(path_prefix: &str, profiles_dir: &str, profile: &str) -> String {
    repo_path(path_prefix, &format!("{profiles_dir}/{profile}"))
}

fn repo_path(path_prefix: &str, rest: &str) -> String {
    let prefix = path_prefix.trim_matches('/');
    if prefix.is_empty() {
        rest.to_owned()
    } else {
        format!("{prefix}/{rest}")
    }
}

/// Renders every file of `<prefix>/clusters/<env>/` except [`COMPONENTS_FILE`] (written as
/// applied, not from a template).
pub fn render_cluster_dir(input: &RenderInput) -> Result<Vec<RenderedFile>, RenderError> {
    validate(input)?;
    let vars = Vars {
        env: &input.env,
        profile: &input.profile,
        repo_url: &input.repo_url,
        branch: &input.branch,
        flux_version: &input.flux_version,
        interval: &input.interval,
        timeout: PROFILE_TIMEOUT,
        age_recipient: &input.age_recipient,
        cluster_path: format!("./{}", cluster_dir(&input.path_prefix, &input.env)),
        profile_path: format!(
            "./{}",
            profile_dir(&input.path_prefix, &input.profiles_dir, &input.profile)
        ),
        profiles_root: format!("./{}", repo_path(&input.path_prefix, &input.profiles_dir)),
        substitute_from: substitute_from(&input.substitution),
        kept_resources: &input.kept.resources,
        kept_fields: input.kept.fields.as_deref().unwrap_or_default(),
        distribution_version: input
            .flux_version
            .strip_prefix('v')
            .unwrap_or(&input.flux_version),
        sync_ref: format!("refs/heads/{}", input.branch),
        sync_path: cluster_dir(&input.path_prefix, &input.env),
    };
    let context = tera::Context::from_serialize(&vars).map_err(|source| RenderError::Template {
        template: "context",
        source,
    })?;
    let mut engine = tera::Tera::default();
    // YAML, not HTML: escaping is the `yaml` filter's job.
    engine.autoescape_on(Vec::new());
    engine.register_filter("yaml", yaml_filter);
    let dir = cluster_dir(&input.path_prefix, &input.env);
    TEMPLATES
        .iter()
        .filter(|template| (template.wanted)(input))
        .map(|template| {
            let contents = engine
                .render_str(template.source, &context)
                .map_err(|source| RenderError::Template {
                    template: template.output,
                    source,
                })?;
            Ok(RenderedFile {
                path: format!("{dir}/{}", template.output),
                contents,
            })
        })
        .collect()
}

/// Names become path segments: refuse anything that could leave `clusters/` or `profiles/`.
fn validate(input: &RenderInput) -> Result<(), RenderError> {
    let invalid = |field: &'static str, reason: &str| RenderError::InvalidInput {
        env: input.env.clone(),
        field,
        reason: reason.to_owned(),
    };
    let is_segment = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\']);
    if !is_segment(&input.env) {
        return Err(invalid("env", "must be a single directory name"));
    }
    if !is_segment(&input.profile) {
        return Err(invalid("profile", "must be a single directory name"));
    }
    let prefix = input.path_prefix.trim_matches('/');
    if !prefix.is_empty() && !prefix.split('/').all(is_segment) {
        return Err(invalid(
            "path_prefix",
            "must be a relative directory without `.` or `..` segments",
        ));
    }
    if !input.profiles_dir.split('/').all(is_segment) {
        return Err(invalid(
            "profiles_dir",
            "must be a relative directory without `.` or `..` segments",
        ));
    }
    if !input.age_recipient.starts_with("age1") {
        return Err(invalid("age_recipient", "must be an age recipient (age1…)"));
    }
    Ok(())
}

/// Quotes a string as a YAML double-quoted scalar: JSON string syntax is valid YAML.
fn yaml_filter(
    value: &tera::Value,
    _args: &HashMap<String, tera::Value>,
) -> tera::Result<tera::Value> {
    let text = value
        .as_str()
        .ok_or_else(|| tera::Error::msg(format!("the yaml filter takes a string, not {value}")))?;
    let quoted = serde_json::to_string(text)
        .map_err(|e| tera::Error::msg(format!("cannot quote a string for YAML: {e}")))?;
    Ok(tera::Value::String(quoted))
}

/// The profile recorded on a committed `profile.yaml`, if it has one.
pub fn committed_profile(profile_yaml: &str) -> Option<String> {
    let doc: Value = serde_yaml_ng::from_str(profile_yaml).ok()?;
    doc.get("metadata")?
        .get("annotations")?
        .get(PROFILE_ANNOTATION)?
        .as_str()
        .map(str::to_owned)
}

/// The first age recipient of a committed `.sops.yaml`, if it names one.
pub fn sops_recipient(sops_yaml: &str) -> Option<String> {
    let doc: Value = serde_yaml_ng::from_str(sops_yaml).ok()?;
    doc.get("creation_rules")?
        .as_sequence()?
        .iter()
        .filter_map(|rule| rule.get("age")?.as_str())
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .find(|recipient| !recipient.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use serde::Deserialize;

    use super::*;

    const RECIPIENT: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

    fn input(prefix: &str) -> RenderInput {
        RenderInput {
            env: "dev".into(),
            profile: "minimal".into(),
            profiles_dir: "profiles".into(),
            repo_url: "https://git.example.com/platform/fleet.git".into(),
            branch: "main".into(),
            path_prefix: prefix.into(),
            flux_version: "v2.5.1".into(),
            interval: "1m".into(),
            age_recipient: RECIPIENT.into(),
            substitution: SubstitutionConfig::default(),
            kept: KeptContent::default(),
            install: FluxInstall::Components,
            own_instance: false,
        }
    }

    fn file<'a>(files: &'a [RenderedFile], path: &str) -> &'a str {
        &files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("{path} was not rendered"))
            .contents
    }

    fn documents(text: &str) -> Vec<Value> {
        serde_yaml_ng::Deserializer::from_str(text)
            .map(|doc| Value::deserialize(doc).expect("rendered YAML parses"))
            .filter(|doc| !doc.is_null())
            .collect()
    }

    fn kind_and_name(doc: &Value) -> (String, String) {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
        (
            text(doc.get("kind")),
            text(doc.get("metadata").and_then(|m| m.get("name"))),
        )
    }

    #[test]
    fn renders_the_files_of_the_cluster_dir() {
        let files = render_cluster_dir(&input("")).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "clusters/dev/flux-system/gotk-sync.yaml",
                "clusters/dev/flux-system/kustomization.yaml",
                "clusters/dev/profile.yaml",
                "clusters/dev/kustomization.yaml",
                "clusters/dev/.sops.yaml",
            ]
        );
    }

    #[test]
    fn operator_mode_renders_a_flux_instance_syncing_the_env_directory() {
        let operator = RenderInput {
            install: FluxInstall::Operator,
            flux_version: "v2.10.0".into(),
            ..input("platform")
        };
        let files = render_cluster_dir(&operator).unwrap();
        let instance_path = format!("platform/clusters/dev/{INSTANCE_FILE}");
        let text = file(&files, &instance_path);
        assert!(text.starts_with(INSTANCE_HEADER));
        let instance = crate::cluster::flux_operator::parse_instance(&instance_path, text).unwrap();
        assert_eq!(instance.spec.distribution.version, "2.10.0");
        let sync = instance.spec.sync.unwrap();
        assert_eq!(
            (
                sync.kind.as_str(),
                sync.reference.as_str(),
                sync.path.as_str()
            ),
            ("GitRepository", "refs/heads/main", "platform/clusters/dev")
        );
        assert_eq!(sync.pull_secret.as_deref(), Some("flux-system"));
        assert!(!files.iter().any(|f| f.path.ends_with(SYNC_FILE)));
        let own = RenderInput {
            own_instance: true,
            ..operator
        };
        let paths: Vec<String> = render_cluster_dir(&own)
            .unwrap()
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert!(
            !paths.iter().any(|p| p.contains("flux-system/")),
            "{paths:?}"
        );
        insta::assert_snapshot!("operator_flux_instance", text);
    }

    #[test]
    fn snapshots_without_prefix() {
        for rendered in render_cluster_dir(&input("")).unwrap() {
            let name = rendered.path.replace(['/', '.'], "_");
            insta::assert_snapshot!(name, rendered.contents);
        }
    }

    #[test]
    fn prefix_moves_every_path() {
        let files = render_cluster_dir(&input("platform")).unwrap();
        assert!(
            files
                .iter()
                .all(|f| f.path.starts_with("platform/clusters/dev/"))
        );
        let sync = documents(file(
            &files,
            "platform/clusters/dev/flux-system/gotk-sync.yaml",
        ));
        assert_eq!(sync[1]["spec"]["path"], "./platform/clusters/dev");
        let profile = &documents(file(&files, "platform/clusters/dev/profile.yaml"))[0];
        assert_eq!(profile["spec"]["path"], "./platform/profiles/minimal");
        assert_eq!(
            profile["spec"]["postBuild"]["substitute"]["profiles_root"],
            "./platform/profiles"
        );
    }

    #[test]
    fn every_file_parses_back_with_the_expected_objects() {
        let files = render_cluster_dir(&input("")).unwrap();
        let objects = |path: &str| -> Vec<(String, String)> {
            documents(file(&files, path))
                .iter()
                .map(kind_and_name)
                .collect()
        };
        let pair = |k: &str, n: &str| (k.to_owned(), n.to_owned());
        assert_eq!(
            objects("clusters/dev/flux-system/gotk-sync.yaml"),
            [
                pair("GitRepository", "flux-system"),
                pair("Kustomization", "flux-system")
            ]
        );
        assert_eq!(
            objects("clusters/dev/profile.yaml"),
            [pair("Kustomization", "profile")]
        );
        assert_eq!(
            objects("clusters/dev/kustomization.yaml"),
            [pair("Kustomization", "")]
        );
        let profile = &documents(file(&files, "clusters/dev/profile.yaml"))[0];
        assert_eq!(profile["metadata"]["namespace"], "flux-system");
        assert_eq!(profile["spec"]["wait"], true);
        assert_eq!(
            profile["spec"]["decryption"]["secretRef"]["name"],
            "sops-age"
        );
        let sources = &profile["spec"]["postBuild"]["substituteFrom"];
        assert_eq!(sources[0]["name"], "cluster-config");
        assert_eq!(sources[1]["kind"], "Secret");
        assert_eq!(sources[1]["name"], "cluster-secrets");
    }

    /// A repository with its own layout: profiles as Components under `clusters/_profiles`,
    /// its own ConfigMap name and an extra source, and a `platform/` already in the env's dir.
    #[test]
    fn a_repositorys_own_layout_and_names_reach_the_files() {
        let mut own = input("");
        own.profile = "home".into();
        own.profiles_dir = "clusters/_profiles".into();
        own.substitution.config_map = "platform-namespace-vars".into();
        own.substitution
            .extra
            .push(crate::config::SubstituteSource {
                kind: SubstituteKind::Secret,
                name: "platform-secrets".into(),
                optional: true,
            });
        own.kept = KeptContent {
            resources: vec!["platform".into()],
            fields: Some("components:\n- ../_profiles/extra\n".into()),
            unapplied: Vec::new(),
        };
        let files = render_cluster_dir(&own).unwrap();
        let profile = &documents(file(&files, "clusters/dev/profile.yaml"))[0];
        assert_eq!(profile["spec"]["path"], "./clusters/_profiles/home");
        assert_eq!(profile["spec"]["timeout"], PROFILE_TIMEOUT);
        let post_build = &profile["spec"]["postBuild"];
        assert_eq!(
            post_build["substitute"]["profiles_root"],
            "./clusters/_profiles"
        );
        let sources = post_build["substituteFrom"].as_sequence().unwrap();
        let names: Vec<_> = sources
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "platform-namespace-vars",
                "cluster-secrets",
                "platform-secrets"
            ]
        );
        assert_eq!(sources[2]["optional"], true);
        assert!(sources[0].get("optional").is_none());
        let kustomization = file(&files, "clusters/dev/kustomization.yaml");
        insta::assert_snapshot!("kept_kustomization", kustomization);
        let doc = &documents(kustomization)[0];
        assert_eq!(doc["resources"][2], "platform");
        assert_eq!(doc["components"][0], "../_profiles/extra");
    }

    #[test]
    fn special_characters_stay_inside_their_values() {
        let mut tricky = input("");
        tricky.branch = "feature/x: \"y\" #1\n- injected: true".into();
        tricky.repo_url = "https://host/repo.git?a=1&b='2' #frag".into();
        let files = render_cluster_dir(&tricky).unwrap();
        let sync = documents(file(&files, "clusters/dev/flux-system/gotk-sync.yaml"));
        assert_eq!(sync[0]["spec"]["ref"]["branch"], tricky.branch.as_str());
        assert_eq!(sync[0]["spec"]["url"], tricky.repo_url.as_str());
        assert_eq!(sync[0]["spec"]["ref"].as_mapping().unwrap().len(), 1);
    }

    #[test]
    fn reads_back_profile_and_recipient() {
        let files = render_cluster_dir(&input("")).unwrap();
        assert_eq!(
            committed_profile(file(&files, "clusters/dev/profile.yaml")).as_deref(),
            Some("minimal")
        );
        assert_eq!(
            sops_recipient(file(&files, "clusters/dev/.sops.yaml")).as_deref(),
            Some(RECIPIENT)
        );
        assert_eq!(committed_profile("kind: Kustomization\n"), None);
        assert_eq!(sops_recipient("creation_rules: []\n"), None);
        assert_eq!(sops_recipient(": not yaml: ["), None);
    }

    #[test]
    fn refuses_names_that_leave_the_cluster_dir() {
        for (field, value) in [
            ("env", "../prod"),
            ("profile", "a/b"),
            ("path_prefix", "x/../.."),
            ("profiles_dir", "../elsewhere"),
        ] {
            let mut bad = input("");
            match field {
                "env" => bad.env = value.into(),
                "profile" => bad.profile = value.into(),
                "profiles_dir" => bad.profiles_dir = value.into(),
                _ => bad.path_prefix = value.into(),
            }
            let err = render_cluster_dir(&bad).unwrap_err();
            assert_eq!(err.exit_status(), ExitStatus::BadInput, "{field}");
            assert!(err.to_string().contains(field), "{err}");
        }
    }

    /// `kubectl kustomize` (v5 kustomize) builds the rendered dir with a stand-in for the
    /// Flux components, as Flux's kustomize-controller will.
    #[test]
    fn kubectl_kustomize_builds_the_rendered_dir() {
        let root = tempfile::tempdir().unwrap();
        let files = render_cluster_dir(&input("platform")).unwrap();
        for rendered in &files {
            write(&root.path().join(&rendered.path), &rendered.contents);
        }
        let dir = root.path().join("platform/clusters/dev");
        write(
            &dir.join(COMPONENTS_FILE),
            "# Flux version: v2.5.1\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n",
        );
        let built = documents(&kustomize(&dir));
        let mut objects: Vec<(String, String)> = built.iter().map(kind_and_name).collect();
        objects.sort();
        let pair = |k: &str, n: &str| (k.to_owned(), n.to_owned());
        assert_eq!(
            objects,
            [
                pair("GitRepository", "flux-system"),
                pair("Kustomization", "flux-system"),
                pair("Kustomization", "profile"),
                pair("Namespace", "flux-system"),
            ]
        );
    }

    fn write(path: &Path, contents: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    /// Output of `kubectl kustomize <dir>`; panics with kubectl's stderr when it fails.
    fn kustomize(dir: &Path) -> String {
        let kubectl = which::which("kubectl").expect("kubectl on PATH (FACTS: /usr/bin/kubectl)");
        let output = Command::new(kubectl)
            .arg("kustomize")
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "kubectl kustomize {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    #[test]
    fn the_tool_files_are_the_templates_outputs_and_the_flux_manifests() {
        assert_eq!(
            tool_files(),
            [
                SYNC_FILE,
                "flux-system/kustomization.yaml",
                INSTANCE_FILE,
                PROFILE_FILE,
                "kustomization.yaml",
                SOPS_FILE,
                COMPONENTS_FILE,
                OPERATOR_FILE,
            ]
        );
    }
}
