//! The starter content in `profiles/`: every profile builds with `kubectl kustomize`, its apps
//! build and resolve (through the testkit's Flux substitution) with nothing but `cluster_name`
//! set, and only charts of the testkit's catalogue (docs/design.md) are used.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize as _;
use serde_yaml_ng::Value;
use testkit::flux::substitution::substitute;

/// Directories of `profiles/` that are building blocks, not profiles.
const NOT_PROFILES: &[&str] = &["apps", "components"];

fn profiles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles")
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

pub(crate) fn profiles() -> Vec<PathBuf> {
    let profiles: Vec<PathBuf> = subdirs(&profiles_dir())
        .into_iter()
        .filter(|dir| !NOT_PROFILES.iter().any(|name| dir.ends_with(name)))
        .collect();
    assert!(profiles.len() >= 2, "profiles/ holds minimal and standard");
    profiles
}

fn only_cluster_name() -> BTreeMap<String, String> {
    BTreeMap::from([("cluster_name".to_string(), "dev".to_string())])
}

/// The `${name}` references in `text` with neither a value in `vars` nor a default (Flux
/// would substitute an empty string); `$${…}` is an escape.
fn bare_variables<'a>(text: &'a str, vars: &BTreeMap<String, String>) -> Vec<&'a str> {
    let mut bare = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        let escaped = rest[..at].ends_with('$');
        let expression = rest[at + 2..].split('}').next().unwrap_or_default();
        rest = &rest[at + 2..];
        if !escaped && !expression.contains([':', '=', '-']) && !vars.contains_key(expression) {
            bare.push(expression);
        }
    }
    bare
}

pub(crate) fn documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("YAML parses"))
        .filter(|doc| !doc.is_null())
        .collect()
}

pub(crate) fn kind_and_name(doc: &Value) -> (String, String) {
    (
        text(doc, &["kind"]).to_owned(),
        text(doc, &["metadata", "name"]).to_owned(),
    )
}

fn write(path: &Path, contents: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// Output of `kubectl kustomize <dir>`; panics with kubectl's stderr when it fails.
pub(crate) fn kustomize(dir: &Path) -> String {
    let output = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl on PATH");
    assert!(
        output.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn text<'a>(doc: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(doc, |value, key| value.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The objects an app's Flux Kustomization applies, as Flux would after substitution.
pub(crate) fn build_app(app_kustomization: &Value) -> Vec<Value> {
    let path = substitute(
        text(app_kustomization, &["spec", "path"]),
        &only_cluster_name(),
    )
    .unwrap();
    let relative = path
        .strip_prefix("./profiles/")
        .unwrap_or_else(|| panic!("app path {path} is not under ./profiles/"));
    let built = kustomize(&profiles_dir().join(relative));
    documents(&substitute(&built, &only_cluster_name()).unwrap())
}

/// Checks one app Kustomization of a profile and returns the charts its dir installs.
fn check_app(
    profile: &str,
    app: &Value,
    names: &BTreeSet<String>,
) -> Vec<(String, String, String)> {
    let (kind, name) = kind_and_name(app);
    assert_eq!(kind, "Kustomization", "{profile}: only Flux Kustomizations");
    assert_eq!(
        text(app, &["metadata", "namespace"]),
        "flux-system",
        "{profile}/{name}"
    );
    assert_eq!(
        text(app, &["spec", "sourceRef", "name"]),
        "flux-system",
        "{profile}/{name}"
    );
    assert_eq!(
        app["spec"]["wait"], true,
        "{profile}/{name} waits for its objects"
    );
    let sources: Vec<&str> = app["spec"]["postBuild"]["substituteFrom"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{profile}/{name} substitutes from the cluster's config"))
        .iter()
        .map(|source| text(source, &["name"]))
        .collect();
    assert_eq!(
        sources,
        ["cluster-config", "cluster-secrets"],
        "{profile}/{name}"
    );
    for dependency in app["spec"]["dependsOn"].as_sequence().into_iter().flatten() {
        let needed = text(dependency, &["name"]);
        assert!(
            names.contains(needed),
            "{profile}/{name} depends on {needed}, not in the profile"
        );
    }
    let objects = build_app(app);
    let repositories: BTreeMap<(String, String), String> = objects
        .iter()
        .filter(|o| kind_and_name(o).0 == "HelmRepository")
        .map(|o| {
            let key = (
                kind_and_name(o).1,
                text(o, &["metadata", "namespace"]).to_owned(),
            );
            (key, text(o, &["spec", "url"]).to_owned())
        })
        .collect();
    objects
        .iter()
        .filter(|o| kind_and_name(o).0 == "HelmRelease")
        .map(|release| {
            let chart = &release["spec"]["chart"]["spec"];
            let source = (
                text(chart, &["sourceRef", "name"]).to_owned(),
                text(chart, &["sourceRef", "namespace"]).to_owned(),
            );
            let url = repositories.get(&source).unwrap_or_else(|| {
                panic!("{profile}/{name}: HelmRepository {source:?} not beside its release")
            });
            (
                url.clone(),
                text(chart, &["chart"]).to_owned(),
                text(chart, &["version"]).to_owned(),
            )
        })
        .collect()
}

/// The app Kustomizations a profile dir builds to, checked, by name.
fn check_profile(dir: &Path) -> BTreeSet<String> {
    let profile = dir.file_name().unwrap().to_string_lossy().into_owned();
    let apps = documents(&kustomize(dir));
    let names: BTreeSet<String> = apps.iter().map(|app| kind_and_name(app).1).collect();
    for app in &apps {
        for (url, chart, version) in check_app(&profile, app, &names) {
            assert!(
                testkit::charts::lookup(&url, &chart, &version).is_some(),
                "{profile}: chart {chart} {version} from {url} is not in the catalogue"
            );
        }
    }
    names
}

#[test]
fn every_profile_builds_with_catalogued_charts_only() {
    for dir in profiles() {
        let names = check_profile(&dir);
        assert!(!names.is_empty(), "{} installs no app", dir.display());
    }
}

#[test]
fn minimal_has_no_cloud_dependency_and_standard_has_all_apps() {
    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        check_profile(&profiles_dir().join("minimal")),
        set(&["cert-manager", "cluster-issuer"])
    );
    assert_eq!(
        check_profile(&profiles_dir().join("standard")),
        set(&[
            "cert-manager",
            "cluster-issuer",
            "external-dns",
            "ingress-nginx"
        ])
    );
}

#[test]
fn every_variable_but_cluster_name_has_a_default() {
    let mut pending = vec![profiles_dir()];
    let mut checked = 0;
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "yaml") {
                let contents = std::fs::read_to_string(&path).unwrap();
                let bare = bare_variables(&contents, &only_cluster_name());
                assert!(
                    bare.is_empty(),
                    "{}: no default for {bare:?}",
                    path.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 10, "only {checked} files under profiles/");
}

#[test]
fn bare_variables_are_those_without_value_or_default() {
    let text = "a: ${cluster_name}-${x:=y} ${z:-w} $${escaped} ${region}";
    assert_eq!(bare_variables(text, &only_cluster_name()), ["region"]);
}

/// Addon components are not profiles of their own: build them on top of every app, as a
/// profile listing them would, in a copy of profiles/.
#[test]
fn addon_components_build_on_top_of_the_apps() {
    let copy = tempfile::tempdir().unwrap();
    let root = copy.path().join("profiles");
    copy_tree(&profiles_dir(), &root);
    let components = subdirs(&root.join("components"));
    let (apps, addons): (Vec<&PathBuf>, Vec<&PathBuf>) = components
        .iter()
        .partition(|dir| root.join("apps").join(dir.file_name().unwrap()).is_dir());
    let listed: String = apps
        .iter()
        .chain(&addons)
        .map(|dir| {
            format!(
                "  - ../components/{}\n",
                dir.file_name().unwrap().to_string_lossy()
            )
        })
        .collect();
    write(
        &root.join("everything/kustomization.yaml"),
        &format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\ncomponents:\n{listed}"
        ),
    );
    let built = documents(&kustomize(&root.join("everything")));
    let ingress = built
        .iter()
        .find(|doc| kind_and_name(doc).1 == "ingress-nginx")
        .expect("ingress-nginx app");
    assert_eq!(
        ingress["spec"]["postBuild"]["substitute"]["ingress_internal"],
        "true"
    );
    assert!(
        built
            .iter()
            .any(|doc| kind_and_name(doc).1 == "letsencrypt-staging")
    );
    assert!(!addons.is_empty());
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}
