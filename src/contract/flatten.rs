//! Turning the contract's maps into Flux substitution variables: checking key names and
//! flattening the `network` object into `network_<key>` strings.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::error::ContractError;
use super::outputs::Found;
use crate::config::{ContractField, OutputMapping};

/// Flux's `postBuild` substitution accepts `^[_a-zA-Z][_a-zA-Z0-9]*$` as variable names.
pub(super) fn is_variable_name(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The found value as an object, or a type error naming `expected`.
pub(super) fn object<'a>(
    found: &Found<'a>,
    expected: &'static str,
    mapping: &OutputMapping,
) -> Result<&'a Map<String, Value>, ContractError> {
    found
        .value
        .as_object()
        .ok_or_else(|| found.wrong_type("", None, expected, mapping))
}

/// A `map(string)` output: every key a variable name, every value a string (numbers and
/// bools are taken as Flux substitutes them, as in `network`).
pub(super) fn string_map(
    found: &Found<'_>,
    mapping: &OutputMapping,
) -> Result<BTreeMap<String, String>, ContractError> {
    const EXPECTED: &str = "map(string)";
    let mut strings = BTreeMap::new();
    for (key, value) in object(found, EXPECTED, mapping)? {
        check_key(found.field, key)?;
        let Some(text) = scalar_text(value) else {
            return Err(found.wrong_type(&format!(".{key}"), Some(value), EXPECTED, mapping));
        };
        strings.insert(key.clone(), text);
    }
    Ok(strings)
}

const EXEC_EXPECTED: &str =
    "an object { command = string, args = list(string), env = map(string) }";

/// `cluster_exec = { command = "aws", args = ["eks", "get-token", …], env = {…} }`; `args` and
/// `env` may be left out.
pub(super) fn exec_credential(
    found: &Found<'_>,
    mapping: &OutputMapping,
) -> Result<super::ExecCredential, ContractError> {
    let object = object(found, EXEC_EXPECTED, mapping)?;
    let wrong = |key: &str, value: &Value| {
        found.wrong_type(&format!(".{key}"), Some(value), EXEC_EXPECTED, mapping)
    };
    let command = match object.get("command") {
        Some(Value::String(command)) if !command.is_empty() => command.clone(),
        Some(value) => return Err(wrong("command", value)),
        None => return Err(found.wrong_type("", None, EXEC_EXPECTED, mapping)),
    };
    let args = match object.get("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| wrong("args", item))
            })
            .collect::<Result<_, _>>()?,
        Some(value) => return Err(wrong("args", value)),
    };
    let env = match object.get("env") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(vars)) => vars
            .iter()
            .map(|(key, value)| {
                let text = value.as_str().ok_or_else(|| wrong("env", value))?;
                Ok((key.clone(), text.to_owned()))
            })
            .collect::<Result<_, ContractError>>()?,
        Some(value) => return Err(wrong("env", value)),
    };
    Ok(super::ExecCredential { command, args, env })
}

/// One value assembled into `cluster_config`: a string, number or bool.
pub(super) fn scalar(found: &Found<'_>, mapping: &OutputMapping) -> Result<String, ContractError> {
    scalar_text(found.value)
        .ok_or_else(|| found.wrong_type("", None, "a string, number or bool", mapping))
}

pub(super) fn check_key(field: ContractField, key: &str) -> Result<(), ContractError> {
    if is_variable_name(key) {
        Ok(())
    } else {
        Err(ContractError::InvalidKey {
            field,
            key: key.to_owned(),
        })
    }
}

const NETWORK_EXPECTED: &str =
    "an object of strings, numbers, bools, lists of those, or nested objects";

/// `network = { vpc_id = "v", subnets = ["a", "b"], dns = { zone = "z" } }` becomes
/// `network_vpc_id = "v"`, `network_subnets = "a,b"`, `network_dns_zone = "z"`. `null`
/// attributes (unset optional ones) are left out.
pub(super) fn flatten_network(
    found: &Found<'_>,
    mapping: &OutputMapping,
) -> Result<BTreeMap<String, String>, ContractError> {
    let mut flat = BTreeMap::new();
    let root = object(found, NETWORK_EXPECTED, mapping)?;
    flatten_object(found, mapping, "network", "", root, &mut flat)?;
    Ok(flat)
}

fn flatten_object(
    found: &Found<'_>,
    mapping: &OutputMapping,
    prefix: &str,
    path: &str,
    object: &Map<String, Value>,
    flat: &mut BTreeMap<String, String>,
) -> Result<(), ContractError> {
    for (key, value) in object {
        let path = format!("{path}.{key}");
        let name = format!("{prefix}_{key}");
        if key.is_empty() || !is_variable_name(&name) {
            return Err(ContractError::InvalidKey {
                field: found.field,
                key: path.trim_start_matches('.').to_owned(),
            });
        }
        let text = match value {
            Value::Null => continue,
            Value::Object(inner) => {
                flatten_object(found, mapping, &name, &path, inner, flat)?;
                continue;
            }
            Value::Array(items) => {
                let texts: Option<Vec<String>> = items.iter().map(scalar_text).collect();
                texts
                    .ok_or_else(|| found.wrong_type(&path, Some(value), NETWORK_EXPECTED, mapping))?
                    .join(",")
            }
            scalar => scalar_text(scalar).unwrap_or_default(),
        };
        if flat.insert(name.clone(), text).is_some() {
            return Err(ContractError::Collision {
                field: found.field,
                key: path.trim_start_matches('.').to_owned(),
                other: format!("another `network` attribute that also flattens to `{name}`"),
            });
        }
    }
    Ok(())
}

/// Strings, numbers and bools as Flux will substitute them.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names() {
        for good in ["a", "_x", "vpc_id", "A1"] {
            assert!(is_variable_name(good), "{good}");
        }
        for bad in ["", "1a", "a-b", "a.b", "a b", "é"] {
            assert!(!is_variable_name(bad), "{bad}");
        }
    }
}
