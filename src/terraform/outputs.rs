//! Terraform's outputs, as `terraform output -json` gives them: per name `{ "sensitive",
//! "type", "value" }`. Parsed here, where Terraform is; what they mean to the tool is
//! [`crate::contract`]'s business. The whole text is secret (sensitive values are in it in
//! clear), so the values stay in [`SecretValue`] and no error quotes the text.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::error::TerraformError;

/// An output's value. May be a sensitive one, so Debug never shows it.
pub struct SecretValue(Value);

impl SecretValue {
    pub fn expose_secret(&self) -> &Value {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// One output.
#[derive(Debug)]
pub struct Output {
    /// Declared `sensitive = true` (or derived from a sensitive value).
    pub sensitive: bool,
    /// Terraform's type in its JSON form: `"string"`, `["map", "string"]`,
    /// `["object", {…}]`; `null` when Terraform did not say.
    pub declared_type: Value,
    pub value: SecretValue,
}

/// An env's outputs, by name.
#[derive(Debug, Default)]
pub struct Outputs {
    by_name: BTreeMap<String, Output>,
}

impl Outputs {
    /// Parses the stdout of `terraform output -json`.
    pub fn parse(raw: &SecretString) -> Result<Outputs, TerraformError> {
        let malformed = |reason: String| TerraformError::MalformedOutputs { reason };
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
            let output = Output {
                sensitive,
                declared_type,
                value: SecretValue(value),
            };
            by_name.insert(name, output);
        }
        Ok(Outputs { by_name })
    }

    pub fn get(&self, name: &str) -> Option<&Output> {
        self.by_name.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// The outputs as `` `name` (type[, sensitive]) ``, for messages; never a value.
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
}

/// The type of `segment` (an attribute name or an index) inside a value of type `ty`.
pub fn element_type<'a>(ty: &'a Value, segment: &str) -> Option<&'a Value> {
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

/// A type in HCL syntax: `string`, `map(string)`, `object({a = string})`.
pub fn describe_type(ty: &Value) -> String {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::{Diagnose, ExitStatus};

    const CANARY: &str = "canary-5d1e";

    #[test]
    fn outputs_keep_type_and_sensitivity_and_hide_values() {
        let raw = SecretString::from(
            json!({
                "kubeconfig": { "sensitive": true, "type": "string", "value": CANARY },
                "network": { "sensitive": false, "type": ["object", {"vpc": "string"}],
                             "value": { "vpc": "vpc-1" } },
            })
            .to_string(),
        );
        let outputs = Outputs::parse(&raw).unwrap();
        let kubeconfig = outputs.get("kubeconfig").unwrap();
        assert!(kubeconfig.sensitive);
        assert_eq!(kubeconfig.value.expose_secret(), &json!(CANARY));
        assert_eq!(
            outputs.names().collect::<Vec<_>>(),
            ["kubeconfig", "network"]
        );
        assert_eq!(
            outputs.declared(),
            "`kubeconfig` (string, sensitive), `network` (object({vpc = string}))"
        );
        assert!(!format!("{outputs:?}").contains(CANARY));
        assert_eq!(Outputs::default().declared(), "no outputs");
    }

    /// Terraform always prints a well-formed document; anything else says so without
    /// quoting it, and asks the user to look at what Terraform prints.
    #[test]
    fn malformed_outputs_are_reported_without_their_text() {
        let cases = [
            (format!("{{\"kubeconfig\": {CANARY}"), "not JSON"),
            (format!("[\"{CANARY}\"]"), "expected a JSON object"),
            (
                format!("{{\"a\": \"{CANARY}\"}}"),
                "output `a` is not an object",
            ),
            (
                format!("{{\"cluster_name\": {{\"value\": \"{CANARY}\"}}}}"),
                "`cluster_name` lacks `sensitive` or `value`",
            ),
        ];
        for (raw, expected) in cases {
            let err = Outputs::parse(&SecretString::from(raw)).unwrap_err();
            let message = err.to_string();
            assert!(message.contains("failed to read `terraform output -json`"));
            assert!(message.contains(expected), "{message}");
            assert!(!message.contains(CANARY), "{message}");
            assert!(err.hint().unwrap().contains("terraform output -json"));
            assert_eq!(err.exit_status(), ExitStatus::BadInput);
        }
    }

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
