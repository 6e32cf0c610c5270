//! Flux post-build variable substitution: `${var}`, `${var:=default}`, `${var:-default}`,
//! `$${var}` as an escape; `$var` without braces is left alone, as Flux documents. Variables
//! come from `substituteFrom` ConfigMaps and Secrets (in order) then the inline `substitute`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};

use super::types::PostBuild;

/// Substitutes the variables in `text`; unset variables without a default become empty.
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(escaped) = rest.strip_prefix("$${") {
            out.push_str("${");
            rest = escaped;
        } else if let Some(open) = rest.strip_prefix("${") {
            let close = open.find('}').ok_or_else(|| {
                format!("unterminated variable reference in '{}'", first_line(rest))
            })?;
            out.push_str(&expand(&open[..close], vars)?);
            rest = &open[close + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

fn expand(expression: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let (name, default) = match expression.find([':', '=', '-']) {
        Some(at) => {
            let operator = &expression[at..];
            let default = [":=", ":-", "=", "-"]
                .iter()
                .find_map(|op| operator.strip_prefix(op))
                .ok_or_else(|| format!("bad substitution: '${{{expression}}}'"))?;
            (&expression[..at], Some(default))
        }
        None => (expression, None),
    };
    if !is_valid_name(name) {
        return Err(format!("bad substitution: '${{{expression}}}'"));
    }
    Ok(match (vars.get(name), default) {
        (Some(value), Some(default)) if value.is_empty() => default.to_owned(),
        (Some(value), _) => value.clone(),
        (None, default) => default.unwrap_or_default().to_owned(),
    })
}

/// Flux's rule for variable names: `^[_a-zA-Z][_a-zA-Z0-9]*$`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Gathers the variables of `postBuild`, reading ConfigMaps and Secrets in `namespace`.
pub async fn variables(
    client: &Client,
    namespace: &str,
    post_build: &PostBuild,
) -> Result<BTreeMap<String, String>, String> {
    let mut vars = BTreeMap::new();
    for reference in &post_build.substitute_from {
        let found = match reference.kind.as_str() {
            "ConfigMap" => {
                let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
                api.get_opt(&reference.name)
                    .await
                    .map(|cm| cm.map(|cm| cm.data.unwrap_or_default()))
            }
            "Secret" => {
                let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
                api.get_opt(&reference.name)
                    .await
                    .map(|secret| secret.map(secret_strings))
            }
            other => {
                return Err(format!(
                    "substitute from '{other}/{}' failed: unsupported kind",
                    reference.name
                ));
            }
        };
        let what = format!("{}/{}", reference.kind, reference.name);
        match found.map_err(|e| format!("substitute from '{what}' failed: {e}"))? {
            Some(data) => vars.extend(data),
            None if reference.optional => {}
            None => {
                let plural = if reference.kind == "Secret" {
                    "secrets"
                } else {
                    "configmaps"
                };
                return Err(format!(
                    "substitute from '{what}' failed: {plural} \"{}\" not found",
                    reference.name
                ));
            }
        }
    }
    vars.extend(post_build.substitute.clone().unwrap_or_default());
    if let Some(bad) = vars.keys().find(|name| !is_valid_name(name)) {
        return Err(format!(
            "'{bad}' var name is invalid, must match '^[_[:alpha:]][_[:alpha:][:digit:]]*$'"
        ));
    }
    Ok(vars)
}

fn secret_strings(secret: Secret) -> BTreeMap<String, String> {
    secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [
            ("cluster_name", "dev"),
            ("empty", ""),
            ("region", "eu-west-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn substitutes_braced_variables_and_defaults() {
        let vars = vars();
        assert_eq!(
            substitute("name: ${cluster_name}-x", &vars).unwrap(),
            "name: dev-x"
        );
        assert_eq!(
            substitute("r: ${missing:=us-east-1}", &vars).unwrap(),
            "r: us-east-1"
        );
        assert_eq!(
            substitute("r: ${missing:-fallback}", &vars).unwrap(),
            "r: fallback"
        );
        assert_eq!(
            substitute("r: ${region:=other}", &vars).unwrap(),
            "r: eu-west-1"
        );
        assert_eq!(
            substitute("r: ${empty:-filled}", &vars).unwrap(),
            "r: filled"
        );
        assert_eq!(substitute("r: ${missing}.", &vars).unwrap(), "r: .");
    }

    #[test]
    fn leaves_unbraced_and_escaped_references() {
        let vars = vars();
        assert_eq!(
            substitute("echo $cluster_name $$HOME", &vars).unwrap(),
            "echo $cluster_name $$HOME"
        );
        assert_eq!(
            substitute("keep: $${cluster_name}", &vars).unwrap(),
            "keep: ${cluster_name}"
        );
        assert_eq!(substitute("cost: 5$", &vars).unwrap(), "cost: 5$");
    }

    #[test]
    fn rejects_bad_references() {
        assert!(
            substitute("x: ${1abc}", &vars())
                .unwrap_err()
                .contains("bad substitution")
        );
        assert!(
            substitute("x: ${open", &vars())
                .unwrap_err()
                .contains("unterminated")
        );
        assert!(is_valid_name("_a1") && is_valid_name("cluster_name"));
        assert!(!is_valid_name("a-b") && !is_valid_name("") && !is_valid_name("9a"));
    }
}
