//! Finding each contract field in the module's outputs (parsed by [`crate::terraform`])
//! through the env's output mapping.

use serde_json::Value;

use super::error::ContractError;
use crate::config::{ContractField, OutputMapping, OutputRef};
use crate::terraform::{self, Output, describe_type, element_type};

/// The module's outputs, as the contract reads them.
pub(super) struct Outputs<'a> {
    outputs: &'a terraform::Outputs,
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

impl<'a> Outputs<'a> {
    pub fn new(outputs: &'a terraform::Outputs) -> Outputs<'a> {
        Outputs { outputs }
    }

    /// The module's outputs as `name (type[, sensitive])`, for messages.
    pub fn declared(&self) -> String {
        self.outputs.declared()
    }

    /// The output name closest to `wanted`, for a hint.
    pub fn closest(&self, wanted: &str) -> Option<String> {
        super::error::closest(wanted, self.outputs.names())
    }

    /// Every mapped output must exist, even for optional fields: a mapping to nothing is a typo.
    pub fn check_mapping(&self, mapping: &OutputMapping) -> Result<(), ContractError> {
        for (_, field, source) in mapping.refs() {
            if self.outputs.get(&source.output).is_none() {
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
        self.outputs
            .get(&source.output)
            .is_some_and(|output| matches!(walk(output, &source, field, mapping), Ok(Some(_))))
    }

    /// The value of `field` (absent or `null`: `None`), after checking its sensitivity.
    pub fn find(
        &self,
        field: ContractField,
        mapping: &OutputMapping,
        sensitivity: Sensitivity,
    ) -> Result<Option<Found<'a>>, ContractError> {
        self.find_source(field, &mapping.source(field), mapping, sensitivity)
    }

    /// The value at `source` for `field`, as [`Outputs::find`].
    pub fn find_source(
        &self,
        field: ContractField,
        source: &OutputRef,
        mapping: &OutputMapping,
        sensitivity: Sensitivity,
    ) -> Result<Option<Found<'a>>, ContractError> {
        let Some(output) = self.outputs.get(&source.output) else {
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
    output: &'a Output,
    source: &OutputRef,
    field: ContractField,
    mapping: &OutputMapping,
) -> Result<Option<(Option<&'a Value>, &'a Value)>, ContractError> {
    let mut declared_type = Some(&output.declared_type);
    let mut value = output.value.expose_secret();
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
