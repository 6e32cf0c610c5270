//! The raw `terraform output -json` document, and finding each contract field in it through
//! the env's output mapping.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::error::ContractError;
use crate::config::{ContractField, OutputMapping, OutputRef};

/// One output: `{ "sensitive": bool, "type": <type>, "value": <value> }`. Holds secret
/// values, so it has no Debug.
struct RawOutput {
    sensitive: bool,
    declared_type: Value,
    value: Value,
}

/// The outputs by name. Holds secret values, so it has no Debug.
pub(super) struct Outputs {
    by_name: BTreeMap<String, RawOutput>,
}

/// Whether a field must be, or must not be, a sensitive output.
#[derive(Clone, Copy)]
pub(super) enum Sensitivity {
    /// A secret: Terraform must mark it sensitive.
    Secret,
    /// Written in clear to the named place: it must not be sensitive.
    Clear(&'static str),
}

/// A contract field's value, found.
pub(super) struct Found<'a> {
    pub field: ContractField,
    /// `output` or `output.path`, for messages.
    pub source_path: String,
    /// The declared type at the path, when the declaration says.
    pub declared_type: Option<&'a Value>,
    pub value: &'a Value,
}

impl Outputs {
    pub fn parse(raw: &SecretString) -> Result<Outputs, ContractError> {
        let malformed = |reason: String| ContractError::Malformed { reason };
        // serde_json's syntax errors name a position, never the text around it.
        let document: Value = serde_json::from_str(raw.expose_secret())
            .map_err(|err| malformed(format!("not JSON: {err}")))?;
        let Value::Object(entries) = document else {
            return Err(malformed("expected a JSON object of outputs".to_owned()));
        };
        let mut by_name = BTreeMap::new();
        for (name, entry) in entries {
            let Value::Object(mut entry) = entry else {
                return Err(malformed(format!("output `{name}` is not an object")));
            };
            let sensitive = entry.get("sensitive").and_then(Value::as_bool);
            let (Some(sensitive), Some(value)) = (sensitive, entry.remove("value")) else {
                return Err(malformed(format!(
                    "output `{name}` lacks `sensitive` or `value`"
                )));
            };
            let declared_type = entry.remove("type").unwrap_or(Value::Null);
            by_name.insert(
                name,
                RawOutput {
                    sensitive,
                    declared_type,
                    value,
                },
            );
        }
        Ok(Outputs { by_name })
    }

    /// The module's outputs as `name (type[, sensitive])`, for messages.
    pub fn declared(&self) -> String {
        if self.by_name.is_empty() {
            return "no outputs".to_owned();
        }
        let listed: Vec<String> = self
            .by_name
            .iter()
            .map(|(name, output)| {
                let ty = describe_type(&output.declared_type);
                if output.sensitive {
                    format!("`{name}` ({ty}, sensitive)")
                } else {
                    format!("`{name}` ({ty})")
                }
            })
            .collect();
        listed.join(", ")
    }

    /// The output name closest to `wanted`, for a hint.
    pub fn closest(&self, wanted: &str) -> Option<String> {
        super::error::closest(wanted, self.by_name.keys().map(String::as_str))
    }

    /// Every mapped output must exist, even for optional fields: a mapping to nothing is a typo.
    pub fn check_mapping(&self, mapping: &OutputMapping) -> Result<(), ContractError> {
        for (_, field, source) in mapping.refs() {
            if !self.by_name.contains_key(&source.output) {
                return Err(ContractError::MappedOutputMissing {
                    field,
                    output: source.output.clone(),
                    declared: self.declared(),
                    table: mapping.table(),
                    closest: self.closest(&source.output),
                });
            }
        }
        Ok(())
    }

    /// Whether `field` has a non-null value (checking nothing else).
    pub fn has_value(&self, field: ContractField, mapping: &OutputMapping) -> bool {
        let source = mapping.source(field);
        self.by_name
            .get(&source.output)
            .is_some_and(|output| matches!(walk(output, &source, field, mapping), Ok(Some(_))))
    }

    /// The value of `field` (absent or `null`: `None`), after checking its sensitivity.
    pub fn find(
        &self,
        field: ContractField,
        mapping: &OutputMapping,
        sensitivity: Sensitivity,
    ) -> Result<Option<Found<'_>>, ContractError> {
        self.find_source(field, &mapping.source(field), mapping, sensitivity)
    }

    /// The value at `source` for `field`, as [`Outputs::find`].
    pub fn find_source(
        &self,
        field: ContractField,
        source: &OutputRef,
        mapping: &OutputMapping,
        sensitivity: Sensitivity,
    ) -> Result<Option<Found<'_>>, ContractError> {
        let Some(output) = self.by_name.get(&source.output) else {
            return Ok(None);
        };
        let Some((declared_type, value)) = walk(output, source, field, mapping)? else {
            return Ok(None);
        };
        match sensitivity {
            Sensitivity::Secret if !output.sensitive => {
                return Err(ContractError::NotSensitive {
                    field,
                    output: source.output.clone(),
                });
            }
            Sensitivity::Clear(destination) if output.sensitive => {
                return Err(ContractError::SensitiveInClear {
                    field,
                    output: source.output.clone(),
                    destination,
                });
            }
            _ => {}
        }
        Ok(Some(Found {
            field,
            source_path: source.to_string(),
            declared_type,
            value,
        }))
    }
}

/// Follows the mapping's path into the output's value (and its declared type, as far as the
/// declaration goes). `None` when the value there is `null`.
fn walk<'a>(
    output: &'a RawOutput,
    source: &OutputRef,
    field: ContractField,
    mapping: &OutputMapping,
) -> Result<Option<(Option<&'a Value>, &'a Value)>, ContractError> {
    let mut declared_type = Some(&output.declared_type);
    let mut value = &output.value;
    for segment in &source.path {
        let next = match value {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        let Some(next) = next else {
            return Err(ContractError::MappedPathMissing {
                field,
                source_path: source.to_string(),
                segment: segment.clone(),
                found: describe(declared_type, value),
                table: mapping.table(),
            });
        };
        declared_type = declared_type.and_then(|ty| element_type(ty, segment));
        value = next;
    }
    Ok((!value.is_null()).then_some((declared_type, value)))
}

/// The type of `segment` inside a value of Terraform type `ty`.
fn element_type<'a>(ty: &'a Value, segment: &str) -> Option<&'a Value> {
    let [kind, inner] = ty.as_array()?.as_slice() else {
        return None;
    };
    match kind.as_str()? {
        "object" => inner.get(segment),
        "tuple" => inner.get(segment.parse::<usize>().ok()?),
        "list" | "set" | "map" => Some(inner),
        _ => None,
    }
}

/// A Terraform type in HCL syntax: `string`, `map(string)`, `object({a = string})`.
pub(super) fn describe_type(ty: &Value) -> String {
    match ty {
        Value::String(primitive) => primitive.clone(),
        Value::Array(parts) => match parts.as_slice() {
            [Value::String(kind), Value::Object(attrs)] if kind == "object" => {
                let attrs: Vec<String> = attrs
                    .iter()
                    .map(|(name, ty)| format!("{name} = {}", describe_type(ty)))
                    .collect();
                format!("object({{{}}})", attrs.join(", "))
            }
            [Value::String(kind), Value::Array(elements)] if kind == "tuple" => {
                let elements: Vec<String> = elements.iter().map(describe_type).collect();
                format!("tuple([{}])", elements.join(", "))
            }
            [Value::String(kind), inner] => format!("{kind}({})", describe_type(inner)),
            _ => "an unknown type".to_owned(),
        },
        _ => "an unknown type".to_owned(),
    }
}

/// The JSON kind of a value, when no declared type is known. Never the value itself.
pub(super) fn describe_value(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// What was found, for messages: the declared type when known, else the value's kind.
pub(super) fn describe(declared_type: Option<&Value>, value: &Value) -> String {
    match declared_type {
        Some(ty) if !ty.is_null() => describe_type(ty),
        _ => describe_value(value).to_owned(),
    }
}

impl Found<'_> {
    /// A type error for this value (or for `inner` below it, named by `suffix`).
    pub fn wrong_type(
        &self,
        suffix: &str,
        inner: Option<&Value>,
        expected: &'static str,
        mapping: &OutputMapping,
    ) -> ContractError {
        let found = match inner {
            Some(value) => describe_value(value).to_owned(),
            None => describe(self.declared_type, self.value),
        };
        ContractError::WrongType {
            field: self.field,
            source_path: format!("{}{suffix}", self.source_path),
            expected,
            found,
            table: mapping.table(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn types_are_described_in_hcl_syntax() {
        assert_eq!(describe_type(&json!("string")), "string");
        assert_eq!(describe_type(&json!(["map", "string"])), "map(string)");
        assert_eq!(
            describe_type(&json!(["object", {"a": "string", "b": ["list", "number"]}])),
            "object({a = string, b = list(number)})"
        );
        assert_eq!(
            describe_type(&json!(["tuple", ["string", "bool"]])),
            "tuple([string, bool])"
        );
    }

    #[test]
    fn element_types_follow_paths() {
        let ty = json!(["list", ["object", {"data": "string"}]]);
        let element = element_type(&ty, "0").unwrap();
        assert_eq!(element_type(element, "data"), Some(&json!("string")));
        assert_eq!(element_type(&json!("string"), "x"), None);
    }
}
