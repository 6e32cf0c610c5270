//! Rewriting one YAML document to a newer Flux API version: its top-level `apiVersion`, and the
//! fields the newer version does not have converted (a Kustomization's `patchesStrategicMerge`
//! and `patchesJson6902` become `patches`, its `validation` goes) or refused by name. The text
//! is edited line by line to keep comments and formatting, and every edit is proven by parsing
//! the result: it must be the document's value with exactly those changes, so a line that only
//! looks like `apiVersion:` (inside a block scalar, say) is never the one rewritten.

use serde_yaml_ng::{Mapping, Value};

use super::source::{api_group, text_at};

const KUSTOMIZE: &str = "kustomize.toolkit.fluxcd.io";
const SOURCE: &str = "source.toolkit.fluxcd.io";
const HELM: &str = "helm.toolkit.fluxcd.io";

/// The document's text at `api_version`, or why it cannot be rewritten.
pub fn rewrite(text: &str, value: &Value, api_version: &str) -> Result<String, String> {
    let group = api_group(api_version);
    let kind = text_at(value, &["kind"]);
    let new_version = api_version.rsplit('/').next().unwrap_or_default();
    let mut expected = value.clone();
    expected["apiVersion"] = Value::String(api_version.to_owned());
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    match (group, kind, new_version) {
        (KUSTOMIZE, "Kustomization", "v1") => kustomization_to_v1(&mut lines, &mut expected)?,
        (SOURCE, "GitRepository", "v1") => {
            // Without effect since Flux 2.0 (release notes): dropping them changes nothing.
            for field in ["gitImplementation", "accessFrom"] {
                remove_spec_field(&mut lines, &mut expected, field)?;
            }
        }
        (HELM, "HelmRelease", "v2") => refuse_helm_release_fields(value)?,
        _ => {}
    }
    set_api_version(&lines, &expected, api_version)
}

/// Replaces the top-level `apiVersion:` line: the one candidate whose result parses to
/// `expected`.
fn set_api_version(
    lines: &[String],
    expected: &Value,
    api_version: &str,
) -> Result<String, String> {
    for (index, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix("apiVersion:") else {
            continue;
        };
        let Some(current) = rest.split('#').next().map(str::trim) else {
            continue;
        };
        let mut candidate = lines.to_vec();
        candidate[index] = line.replacen(current, api_version, 1);
        let text = join_lines(&candidate);
        if parses_to(&text, expected) {
            return Ok(text);
        }
    }
    Err("found no top-level apiVersion line that can be rewritten alone".to_owned())
}

fn parses_to(text: &str, expected: &Value) -> bool {
    serde_yaml_ng::from_str::<Value>(text).is_ok_and(|value| &value == expected)
}

fn join_lines(lines: &[String]) -> String {
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// kustomize.toolkit.fluxcd.io/v1 has no `validation` (it always validates server-side) and
/// takes every patch in `patches`.
fn kustomization_to_v1(lines: &mut Vec<String>, expected: &mut Value) -> Result<(), String> {
    remove_spec_field(lines, expected, "validation")?;
    let spec = &expected["spec"];
    let mut converted: Vec<Value> = Vec::new();
    for entry in spec["patchesStrategicMerge"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        let patch = match entry {
            Value::String(text) => text.clone(),
            other => to_yaml(other)?,
        };
        converted.push(mapping([("patch", Value::String(patch))]));
    }
    for entry in spec["patchesJson6902"].as_sequence().into_iter().flatten() {
        let operations = to_yaml(&entry["patch"])?;
        converted.push(mapping([
            ("patch", Value::String(operations)),
            ("target", entry["target"].clone()),
        ]));
    }
    if converted.is_empty() {
        return Ok(());
    }
    let mut patches = spec["patches"].as_sequence().cloned().unwrap_or_default();
    patches.extend(converted);
    let patches = Value::Sequence(patches);
    let at = ["patches", "patchesStrategicMerge", "patchesJson6902"]
        .iter()
        .filter_map(|key| spec_child(lines, key))
        .map(|block| block.start)
        .min()
        .ok_or("cannot find spec's patch fields")?;
    let indent = spec_child_indent(lines).ok_or("cannot find spec's fields")?;
    for key in ["patches", "patchesStrategicMerge", "patchesJson6902"] {
        if let Some(spec) = expected["spec"].as_mapping_mut() {
            spec.remove(key);
        }
        if let Some(block) = spec_child(lines, key) {
            lines.drain(block.start..block.end);
        }
    }
    let rendered = render_child("patches", &patches, indent)?;
    let at = at.min(lines.len());
    lines.splice(at..at, rendered);
    expected["spec"]["patches"] = patches;
    Ok(())
}

/// helm.toolkit.fluxcd.io/v2 dropped fields lint does not convert: named, not rewritten.
fn refuse_helm_release_fields(value: &Value) -> Result<(), String> {
    let mut fields = Vec::new();
    if !value["spec"]["chart"]["spec"]["valuesFile"].is_null() {
        fields.push("spec.chart.spec.valuesFile (use valuesFiles)".to_owned());
    }
    for renderer in value["spec"]["postRenderers"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        for key in ["patchesStrategicMerge", "patchesJson6902"] {
            if !renderer["kustomize"][key].is_null() {
                fields.push(format!(
                    "spec.postRenderers[].kustomize.{key} (use patches)"
                ));
            }
        }
    }
    if fields.is_empty() {
        return Ok(());
    }
    fields.dedup();
    Err(format!(
        "v2 has no {}: convert them by hand",
        fields.join(", ")
    ))
}

fn remove_spec_field(
    lines: &mut Vec<String>,
    expected: &mut Value,
    key: &str,
) -> Result<(), String> {
    if expected["spec"][key].is_null() && expected["spec"].get(key).is_none() {
        return Ok(());
    }
    let block = spec_child(lines, key).ok_or_else(|| format!("cannot find spec.{key}"))?;
    lines.drain(block.start..block.end);
    if let Some(spec) = expected["spec"].as_mapping_mut() {
        spec.remove(key);
    }
    Ok(())
}

fn to_yaml(value: &Value) -> Result<String, String> {
    serde_yaml_ng::to_string(value).map_err(|err| err.to_string())
}

fn mapping<const N: usize>(entries: [(&str, Value); N]) -> Value {
    let mut map = Mapping::new();
    for (key, value) in entries {
        map.insert(Value::String(key.to_owned()), value);
    }
    Value::Mapping(map)
}

/// `key: value` as YAML lines indented by `indent` spaces.
fn render_child(key: &str, value: &Value, indent: usize) -> Result<Vec<String>, String> {
    let text = to_yaml(&mapping([(key, value.clone())]))?;
    let pad = " ".repeat(indent);
    Ok(text
        .lines()
        .map(|line| {
            if line.is_empty() {
                String::new()
            } else {
                format!("{pad}{line}")
            }
        })
        .collect())
}

/// Lines `start..end` of a document.
#[derive(Debug, PartialEq, Eq)]
struct Block {
    start: usize,
    end: usize,
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn content(line: &str) -> bool {
    let trimmed = line.trim();
    !trimmed.is_empty() && !trimmed.starts_with('#')
}

/// The line of the top-level `spec:` key.
fn spec_line(lines: &[String]) -> Option<usize> {
    lines.iter().position(|line| {
        line.split('#')
            .next()
            .is_some_and(|key| key.trim_end() == "spec:")
    })
}

/// How far `spec`'s own keys are indented.
fn spec_child_indent(lines: &[String]) -> Option<usize> {
    let spec = spec_line(lines)?;
    lines[spec + 1..]
        .iter()
        .find(|line| content(line))
        .map(|line| indentation(line))
        .filter(|&indent| indent > 0)
}

/// The lines of `spec.<key>`: its key line and everything under it.
fn spec_child(lines: &[String], key: &str) -> Option<Block> {
    let spec = spec_line(lines)?;
    let indent = spec_child_indent(lines)?;
    let mut start = None;
    for (index, line) in lines.iter().enumerate().skip(spec + 1) {
        if !content(line) {
            continue;
        }
        let at = indentation(line);
        let item = line.trim_start().starts_with('-');
        match start {
            None if at < indent => return None,
            None if at == indent && line.trim_start().starts_with(&format!("{key}:")) => {
                start = Some(index);
            }
            Some(begin) if at < indent || (at == indent && !item) => {
                return Some(Block {
                    start: begin,
                    end: last_content(lines, begin, index),
                });
            }
            _ => {}
        }
    }
    start.map(|begin| Block {
        start: begin,
        end: last_content(lines, begin, lines.len()),
    })
}

/// The end of a block that runs to before `next`, leaving out its trailing blank and comment
/// lines (they belong to what follows).
fn last_content(lines: &[String], start: usize, next: usize) -> usize {
    (start + 1..next)
        .rev()
        .find(|&index| content(&lines[index]))
        .map_or(start + 1, |index| index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Value {
        serde_yaml_ng::from_str(text).unwrap()
    }

    #[test]
    fn a_block_scalar_line_is_left_and_the_real_api_version_rewritten() {
        let text = "kind: ConfigMap\ndata:\n  note: |\n    apiVersion: source.toolkit.fluxcd.io/v1beta2\nmetadata:\n  name: x\napiVersion: source.toolkit.fluxcd.io/v1beta2  # keep\n";
        let text = text.replace("kind: ConfigMap", "kind: HelmRepository");
        let fixed = rewrite(&text, &value(&text), "source.toolkit.fluxcd.io/v1").unwrap();
        assert_eq!(
            fixed,
            text.replace(
                "apiVersion: source.toolkit.fluxcd.io/v1beta2  # keep",
                "apiVersion: source.toolkit.fluxcd.io/v1  # keep"
            )
        );
    }

    #[test]
    fn a_v1beta1_kustomization_loses_validation_and_gets_patches() {
        let text = "\
apiVersion: kustomize.toolkit.fluxcd.io/v1beta1
kind: Kustomization
metadata:
  name: app
spec:
  interval: 10m
  validation: client
  # the patch below scales the app
  patchesStrategicMerge:
    - apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: app
      spec:
        replicas: 2
  patchesJson6902:
  - target:
      kind: Deployment
      name: app
    patch:
      - op: add
        path: /metadata/labels/x
        value: y
  path: ./apps
";
        let fixed = rewrite(text, &value(text), "kustomize.toolkit.fluxcd.io/v1").unwrap();
        let parsed = value(&fixed);
        assert_eq!(parsed["apiVersion"], "kustomize.toolkit.fluxcd.io/v1");
        assert!(parsed["spec"].get("validation").is_none());
        assert!(parsed["spec"].get("patchesStrategicMerge").is_none());
        let patches = parsed["spec"]["patches"].as_sequence().unwrap();
        assert_eq!(patches.len(), 2);
        let first: Value = serde_yaml_ng::from_str(patches[0]["patch"].as_str().unwrap()).unwrap();
        assert_eq!(first["spec"]["replicas"], 2);
        assert_eq!(patches[1]["target"]["name"], "app");
        assert_eq!(parsed["spec"]["path"], "./apps");
        assert!(
            fixed.contains("# the patch below scales the app"),
            "{fixed}"
        );
    }

    #[test]
    fn helm_release_fields_v2_lacks_are_named() {
        let text = "apiVersion: helm.toolkit.fluxcd.io/v2beta1\nkind: HelmRelease\nmetadata:\n  name: a\nspec:\n  chart:\n    spec:\n      chart: a\n      valuesFile: values.yaml\n";
        let refused = rewrite(text, &value(text), "helm.toolkit.fluxcd.io/v2").unwrap_err();
        assert!(refused.contains("spec.chart.spec.valuesFile"), "{refused}");
    }
}
