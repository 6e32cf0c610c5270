//! What an env's directory already holds besides the tool's own files: the generated
//! `kustomization.yaml` keeps applying it (a user's `platform/`, a hand-written manifest, the
//! fields of a kustomization.yaml that was there), and says what nothing can apply.

use serde_yaml_ng::{Mapping, Value};

/// The entries of `clusters/<env>/` the tool writes; everything else there is the user's.
const TOOL_ENTRIES: [&str; 4] = [
    "flux-system",
    super::PROFILE_FILE,
    KUSTOMIZATION,
    super::SOPS_FILE,
];
const KUSTOMIZATION: &str = "kustomization.yaml";
/// The names kustomize accepts for a kustomization file; a directory holding none of them
/// cannot be a resource.
pub const KUSTOMIZATION_FILES: [&str; 3] = [KUSTOMIZATION, "kustomization.yml", "Kustomization"];
/// Fields of the kustomization.yaml the template writes itself.
const TEMPLATE_FIELDS: [&str; 3] = ["apiVersion", "kind", "resources"];

/// One top-level entry of the env's directory at the branch tip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir { has_kustomization: bool },
}

/// The user's content the generated kustomization.yaml keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeptContent {
    /// Resources listed after the tool's own: those of a kustomization.yaml that was there,
    /// then the directories and manifests found beside the tool's files.
    pub resources: Vec<String>,
    /// The other fields of a kustomization.yaml that was there (`patches`, `components`, …),
    /// as YAML, written after the resources.
    pub fields: Option<String>,
    /// What stays in the directory without being applied, and why.
    pub unapplied: Vec<String>,
}

/// What to keep, from the directory's entries and the kustomization.yaml committed there (the
/// tool's own from an earlier run, or the user's). An entry of that file naming a path of this
/// directory that is gone is dropped: kustomize could not build it.
pub fn kept_content(entries: &[DirEntry], existing: Option<&str>) -> Result<KeptContent, String> {
    let mut kept = KeptContent::default();
    let listed = |name: &str| entries.iter().any(|entry| entry.name == name);
    if let Some(text) = existing {
        let (resources, fields) = parse_existing(text)?;
        for resource in resources {
            let local = resource.trim_start_matches("./").trim_end_matches('/');
            let own = TOOL_ENTRIES.contains(&local);
            let gone = !local.contains('/') && !resource.contains("://") && !listed(local);
            if !own && !gone && !kept.resources.contains(&resource) {
                kept.resources.push(resource);
            }
        }
        kept.fields = fields;
    }
    let already = |kept: &KeptContent, name: &str| {
        kept.resources
            .iter()
            .any(|r| r.trim_start_matches("./").trim_end_matches('/') == name)
    };
    for entry in entries {
        let name = entry.name.as_str();
        if TOOL_ENTRIES.contains(&name) || name.starts_with('.') || already(&kept, name) {
            continue;
        }
        match entry.kind {
            EntryKind::Dir {
                has_kustomization: true,
            } => kept.resources.push(name.to_owned()),
            EntryKind::Dir {
                has_kustomization: false,
            } => kept
                .unapplied
                .push(format!("{name}/ (it holds no kustomization.yaml)")),
            EntryKind::File if KUSTOMIZATION_FILES.contains(&name) => kept.unapplied.push(format!(
                "{name} (a second kustomization file: merge it into {KUSTOMIZATION})"
            )),
            EntryKind::File if name.ends_with(".yaml") || name.ends_with(".yml") => {
                kept.resources.push(name.to_owned());
            }
            // READMEs and other non-manifests are not Kubernetes content.
            EntryKind::File => {}
        }
    }
    Ok(kept)
}

/// The `resources` of a committed kustomization.yaml, and its other fields as YAML.
fn parse_existing(text: &str) -> Result<(Vec<String>, Option<String>), String> {
    let doc: Value = serde_yaml_ng::from_str(text).map_err(|err| err.to_string())?;
    let Value::Mapping(mut doc) = doc else {
        return Ok((Vec::new(), None));
    };
    let resources = match doc.remove("resources") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Sequence(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(text) => Ok(text),
                other => Err(format!("resources holds a non-string entry: {other:?}")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("resources is not a list".to_owned()),
    };
    let fields: Mapping = doc
        .into_iter()
        .filter(|(key, _)| {
            !key.as_str()
                .is_some_and(|key| TEMPLATE_FIELDS.contains(&key))
        })
        .collect();
    let fields = if fields.is_empty() {
        None
    } else {
        Some(serde_yaml_ng::to_string(&fields).map_err(|err| err.to_string())?)
    };
    Ok((resources, fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str, has_kustomization: bool) -> DirEntry {
        DirEntry {
            name: name.into(),
            kind: EntryKind::Dir { has_kustomization },
        }
    }

    fn file(name: &str) -> DirEntry {
        DirEntry {
            name: name.into(),
            kind: EntryKind::File,
        }
    }

    #[test]
    fn a_fresh_directory_keeps_nothing() {
        assert_eq!(kept_content(&[], None).unwrap(), KeptContent::default());
    }

    #[test]
    fn directories_and_manifests_beside_the_tools_files_are_kept() {
        let entries = [
            dir("flux-system", true),
            dir("platform", true),
            dir("notes", false),
            file("profile.yaml"),
            file("extra.yaml"),
            file("README.md"),
            file(".sops.yaml"),
            file("kustomization.yml"),
        ];
        let kept = kept_content(&entries, None).unwrap();
        assert_eq!(kept.resources, ["platform", "extra.yaml"]);
        assert_eq!(
            kept.unapplied,
            [
                "notes/ (it holds no kustomization.yaml)",
                "kustomization.yml (a second kustomization file: merge it into kustomization.yaml)"
            ]
        );
        assert_eq!(kept.fields, None);
    }

    #[test]
    fn a_users_kustomization_keeps_its_resources_and_fields() {
        let existing = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
                        resources:\n  - ./platform\n  - ../shared/monitoring\n  - gone.yaml\n\
                        components:\n  - ../_profiles/home\nnamespace: apps\n";
        let entries = [dir("platform", true), file("kustomization.yaml")];
        let kept = kept_content(&entries, Some(existing)).unwrap();
        assert_eq!(kept.resources, ["./platform", "../shared/monitoring"]);
        let fields: Value = serde_yaml_ng::from_str(kept.fields.as_deref().unwrap()).unwrap();
        assert_eq!(fields["components"][0], "../_profiles/home");
        assert_eq!(fields["namespace"], "apps");
        assert!(fields.get("resources").is_none());
    }

    #[test]
    fn the_tools_own_output_reads_back_to_the_same_content() {
        let entries = [dir("flux-system", true), dir("platform", true)];
        let own = "# header\nresources:\n  - flux-system\n  - profile.yaml\n  - \"platform\"\n";
        let kept = kept_content(&entries, Some(own)).unwrap();
        assert_eq!(kept.resources, ["platform"]);
    }

    #[test]
    fn a_broken_kustomization_is_an_error_not_a_silent_drop() {
        assert!(kept_content(&[], Some("resources: [")).is_err());
        assert!(kept_content(&[], Some("resources: 3")).is_err());
    }
}
