//! What apiextensions-apiserver does with a custom resource and its CRD version's structural
//! `openAPIV3Schema`: prunes fields the schema does not know (unless
//! `x-kubernetes-preserve-unknown-fields`), drops nulls of non-nullable fields, fills in
//! `default`s, and validates types, `required`, `enum`, `pattern`, `format`, bounds and lengths
//! into field errors worded as kube-apiserver words them (`spec.size: Invalid value: …`).
//!
//! Paths are rendered as the server renders them: `spec.items[0].name`.

use serde_json::{Map, Value};

use super::error::{ApiError, ApiResult};

/// A write's `fieldValidation`: what happens to unknown and duplicate fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// Dropped silently.
    Ignore,
    /// Dropped, each named in a `Warning` header: the server's default.
    Warn,
    /// The write fails with 400 naming them: kubectl's default.
    Strict,
}

impl Directive {
    pub fn parse(directive: Option<&str>) -> ApiResult<Directive> {
        match directive {
            Some("Ignore") => Ok(Directive::Ignore),
            None | Some("" | "Warn") => Ok(Directive::Warn),
            Some("Strict") => Ok(Directive::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of Ignore, Warn or Strict, not {other:?}"
            ))),
        }
    }

    /// The warnings a write gets for its strict-decoding `problems` (`unknown field
    /// "spec.foo"`), or under Strict the error, its message after `prefix` as the server words
    /// it for the verb.
    pub fn settle(self, problems: Vec<String>, prefix: &str) -> ApiResult<Vec<String>> {
        match self {
            _ if problems.is_empty() => Ok(problems),
            Directive::Ignore => Ok(Vec::new()),
            Directive::Warn => Ok(problems),
            Directive::Strict => Err(ApiError::bad_request(format!(
                "{prefix}strict decoding error: {}",
                problems.join(", ")
            ))),
        }
    }
}

/// One field error, as a `metav1.StatusCause`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueTypeInvalid`, …
    pub reason: &'static str,
    pub field: String,
    /// The error without its field: `Required value`, `Invalid value: "x": …`.
    pub body: String,
}

impl Cause {
    fn new(reason: &'static str, field: &str, body: String) -> Cause {
        Cause {
            reason,
            field: field.to_string(),
            body,
        }
    }

    fn invalid(field: &str, value: &Value, detail: String) -> Cause {
        Cause::new(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {}: {detail}", shown(value)),
        )
    }

    /// The JSON pointer of the field (`/spec/items/0/id`), to compare it across writes.
    pub fn pointer(&self) -> String {
        let mut pointer = String::new();
        for part in self.field.split('.') {
            let (key, indexes) = part.split_once('[').unwrap_or((part, ""));
            pointer.push('/');
            pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            for index in indexes.split('[') {
                if let Some(index) = index.strip_suffix(']') {
                    pointer.push('/');
                    pointer.push_str(index);
                }
            }
        }
        pointer
    }

    /// `spec.size: Invalid value: …`, the line the server puts in its message.
    pub fn line(&self) -> String {
        format!("{}: {}", self.field, self.body)
    }
}

/// Fields every object keeps at its root (and every embedded resource at its own).
const OBJECT_ROOT: &[&str] = &["apiVersion", "kind", "metadata"];

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn flag(schema: &Value, key: &str) -> bool {
    schema[key].as_bool().unwrap_or(false)
}

/// Whether `key` of an object at `path` under `schema` is kept whatever the schema says.
fn always_kept(schema: &Value, path: &str, key: &str) -> bool {
    (path.is_empty() || flag(schema, "x-kubernetes-embedded-resource"))
        && OBJECT_ROOT.contains(&key)
}

/// Removes what the schema does not know from `object` and returns the removed fields' paths,
/// as strict decoding names them (`spec.foo`). `metadata` is never pruned here.
pub fn prune(schema: &Value, object: &mut Value) -> Vec<String> {
    let mut pruned = Vec::new();
    prune_at(schema, object, "", &mut pruned);
    pruned
}

fn prune_at(schema: &Value, value: &mut Value, path: &str, pruned: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let properties = schema["properties"].as_object();
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
            let mut unknown = Vec::new();
            for (key, field) in map.iter_mut() {
                if always_kept(schema, path, key) {
                    continue;
                }
                let known = properties.and_then(|p| p.get(key)).or(additional);
                match known {
                    Some(field_schema) => prune_at(field_schema, field, &child(path, key), pruned),
                    None if preserve || schema["additionalProperties"] == true => {}
                    None => unknown.push(key.clone()),
                }
            }
            for key in unknown {
                map.remove(&key);
                pruned.push(child(path, &key));
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter_mut().enumerate() {
                    prune_at(item_schema, item, &format!("{path}[{index}]"), pruned);
                }
            }
        }
        _ => {}
    }
}

/// Drops nulls of non-nullable fields and fills in the schema's `default`s, depth first, as
/// the server does on every write and on every read of a stored object.
pub fn default(schema: &Value, object: &mut Value) {
    match object {
        Value::Object(map) => {
            if let Some(properties) = schema["properties"].as_object() {
                for (key, field_schema) in properties {
                    if map.get(key).is_some_and(Value::is_null) && !flag(field_schema, "nullable") {
                        map.remove(key);
                    }
                    if let (None, Some(value)) = (map.get(key), field_schema.get("default")) {
                        map.insert(key.clone(), value.clone());
                    }
                }
            }
            for (key, field) in map.iter_mut() {
                let field_schema = schema["properties"]
                    .get(key)
                    .or_else(|| schema.get("additionalProperties"));
                if let Some(field_schema) = field_schema.filter(|s| s.is_object()) {
                    default(field_schema, field);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                items.iter_mut().for_each(|item| default(item_schema, item));
            }
        }
        _ => {}
    }
}

/// The field errors of `object` (its root `metadata` is the server's own business).
pub fn validate(schema: &Value, object: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    validate_at(schema, object, "", &mut causes);
    causes
}

/// The JSON type name the server puts in a type error.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value as a field error shows it: strings quoted, the rest as JSON.
fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => format!("{text:?}"),
        other => other.to_string(),
    }
}

fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => true,
    }
}

fn type_error(path: &str, value: &Value, expected: &str) -> Cause {
    let actual = type_name(value);
    Cause::new(
        "FieldValueTypeInvalid",
        path,
        format!("Invalid value: {actual:?}: {path} in body must be of type {expected}: {actual:?}"),
    )
}

fn validate_at(schema: &Value, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    if value.is_null() {
        if !flag(schema, "nullable") && schema.get("type").is_some() {
            let expected = schema["type"].as_str().unwrap_or_default();
            causes.push(type_error(path, value, expected));
        }
        return;
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            causes.push(type_error(path, value, "integer,string"));
        }
        return;
    }
    if let Some(expected) = schema["type"].as_str()
        && !type_matches(expected, value)
    {
        causes.push(type_error(path, value, expected));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        let supported: Vec<String> = allowed.iter().map(shown).collect();
        causes.push(Cause::new(
            "FieldValueNotSupported",
            path,
            format!(
                "Unsupported value: {}: supported values: {}",
                shown(value),
                supported.join(", ")
            ),
        ));
    }
    match value {
        Value::String(text) => validate_string(schema, text, value, path, causes),
        Value::Number(_) => validate_number(schema, value, path, causes),
        Value::Array(items) => {
            validate_items(schema, items, value, path, causes);
        }
        Value::Object(map) => validate_object(schema, map, path, causes),
        _ => {}
    }
    validate_rules(schema, value, path, causes);
}

/// `x-kubernetes-validations` rules of the one form the testkit evaluates, a field of `self`
/// compared with a string (`self.metadata.name == 'flux'`, the Flux Operator's name rule);
/// other rules are not evaluated (no CEL here). A failed rule reads as the server's:
/// `<nil>: Invalid value: "object": <message>` at the root.
fn validate_rules(schema: &Value, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    let Some(rules) = schema["x-kubernetes-validations"].as_array() else {
        return;
    };
    for rule in rules {
        let Some(holds) = rule["rule"].as_str().and_then(|r| evaluate(r, value)) else {
            continue;
        };
        if !holds {
            let message = rule["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    format!("failed rule: {}", rule["rule"].as_str().unwrap_or_default())
                });
            let field = if path.is_empty() { "<nil>" } else { path };
            let type_ = schema["type"].as_str().unwrap_or("object");
            causes.push(Cause::new(
                "FieldValueInvalid",
                field,
                format!("Invalid value: {type_:?}: {message}"),
            ));
        }
    }
}

/// `self.a.b == 'x'` or `!=`: `Some(result)`, `None` for any other rule.
fn evaluate(rule: &str, value: &Value) -> Option<bool> {
    let (left, right, equal) = match rule.split_once("==") {
        Some((l, r)) => (l, r, true),
        None => {
            let (l, r) = rule.split_once("!=")?;
            (l, r, false)
        }
    };
    let literal = right.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    let mut fields = left.trim().split('.');
    if fields.next()? != "self" || literal.contains('\'') {
        return None;
    }
    let mut current = value;
    for field in fields {
        let simple =
            !field.is_empty() && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !simple {
            return None;
        }
        current = current.get(field)?;
    }
    Some((current.as_str()? == literal) == equal)
}

fn validate_string(schema: &Value, text: &str, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    let length = text.chars().count() as u64;
    if let Some(max) = schema["maxLength"].as_u64()
        && length > max
    {
        let unit = if max == 1 { "byte" } else { "bytes" };
        causes.push(Cause::new(
            "FieldValueTooLong",
            path,
            format!("Too long: may not be more than {max} {unit}"),
        ));
    }
    if let Some(min) = schema["minLength"].as_u64()
        && length < min
    {
        let detail = format!("{path} in body should be at least {min} chars long");
        causes.push(Cause::invalid(path, value, detail));
    }
    if let Some(pattern) = schema["pattern"].as_str() {
        // A pattern the CRD could not have been created with matches nothing.
        let matches = regex::Regex::new(pattern).is_ok_and(|re| re.is_match(text));
        if !matches {
            let detail = format!("{path} in body should match '{pattern}'");
            causes.push(Cause::invalid(path, value, detail));
        }
    }
    if let Some(format) = schema["format"].as_str()
        && !format_matches(format, text)
    {
        causes.push(Cause::new(
            "FieldValueTypeInvalid",
            path,
            format!(
                "Invalid value: {}: {path} in body must be of type {format}: {}",
                shown(value),
                shown(value)
            ),
        ));
    }
}

/// The string formats the Flux CRDs use; others pass, as unknown formats do on the server.
fn format_matches(format: &str, text: &str) -> bool {
    match format {
        "date-time" => text.parse::<jiff::Timestamp>().is_ok(),
        "date" => text.parse::<jiff::civil::Date>().is_ok(),
        "duration" => duration_matches(text),
        "int-or-string" => true,
        "byte" => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .is_ok()
        }
        _ => true,
    }
}

/// Go's `time.ParseDuration` syntax: `1h30m`, `90s`, `1.5h`, `0`.
fn duration_matches(text: &str) -> bool {
    let pattern = r"^[-+]?(0|([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+)$";
    regex::Regex::new(pattern).is_ok_and(|re| re.is_match(text))
}

fn validate_number(schema: &Value, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    let number = value.as_f64().unwrap_or_default();
    if let Some(min) = schema.get("minimum").filter(|m| m.is_number()) {
        let bound = min.as_f64().unwrap_or_default();
        let (fails, words) = if flag(schema, "exclusiveMinimum") {
            (number <= bound, "greater than")
        } else {
            (number < bound, "greater than or equal to")
        };
        if fails {
            let detail = format!("{path} in body should be {words} {min}");
            causes.push(Cause::invalid(path, value, detail));
        }
    }
    if let Some(max) = schema.get("maximum").filter(|m| m.is_number()) {
        let bound = max.as_f64().unwrap_or_default();
        let (fails, words) = if flag(schema, "exclusiveMaximum") {
            (number >= bound, "less than")
        } else {
            (number > bound, "less than or equal to")
        };
        if fails {
            let detail = format!("{path} in body should be {words} {max}");
            causes.push(Cause::invalid(path, value, detail));
        }
    }
}

fn validate_items(
    schema: &Value,
    items: &[Value],
    value: &Value,
    path: &str,
    causes: &mut Vec<Cause>,
) {
    let count = items.len() as u64;
    if let Some(max) = schema["maxItems"].as_u64()
        && count > max
    {
        causes.push(Cause::new(
            "FieldValueTooMany",
            path,
            format!("Too many: {count}: must have at most {max} items"),
        ));
    }
    if let Some(min) = schema["minItems"].as_u64()
        && count < min
    {
        let detail = format!("{path} in body should have at least {min} items");
        causes.push(Cause::invalid(path, value, detail));
    }
    if let Some(item_schema) = schema.get("items") {
        for (index, item) in items.iter().enumerate() {
            validate_at(item_schema, item, &format!("{path}[{index}]"), causes);
        }
    }
}

fn validate_object(schema: &Value, map: &Map<String, Value>, path: &str, causes: &mut Vec<Cause>) {
    let mut required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if flag(schema, "x-kubernetes-embedded-resource") {
        required.extend(["apiVersion", "kind"]);
    }
    for key in required {
        if !map.contains_key(key) {
            causes.push(Cause::new(
                "FieldValueRequired",
                &child(path, key),
                "Required value".into(),
            ));
        }
    }
    for (key, field) in map {
        if path.is_empty() && key == "metadata" {
            continue;
        }
        let field_schema = schema["properties"]
            .get(key)
            .or_else(|| schema.get("additionalProperties"));
        if let Some(field_schema) = field_schema.filter(|s| s.is_object()) {
            validate_at(field_schema, field, &child(path, key), causes);
        }
    }
}

/// Paths of keys repeated within one JSON object of `body` (the last one wins when decoded),
/// as strict decoding names them; empty when `body` is not JSON.
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    use serde::de::DeserializeSeed as _;
    let found = std::cell::RefCell::new(Vec::new());
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let walk = Walk {
        path: String::new(),
        found: &found,
    };
    if walk.deserialize(&mut deserializer).is_err() {
        return Vec::new();
    }
    found.into_inner()
}

/// A deserializer pass that only records repeated keys.
struct Walk<'a> {
    path: String,
    found: &'a std::cell::RefCell<Vec<String>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            let walk = Walk {
                path: format!("{}[{index}]", self.path),
                found: self.found,
            };
            if seq.next_element_seed(walk)?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = child(&self.path, &key);
            if !seen.insert(key) {
                self.found.borrow_mut().push(path.clone());
            }
            map.next_value_seed(Walk {
                path,
                found: self.found,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn widget_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
                "spec": {
                    "type": "object",
                    "required": ["size"],
                    "properties": {
                        "size": {"type": "integer", "minimum": 1, "maximum": 10},
                        "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                        "interval": {"type": "string", "pattern": "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"},
                        "name": {"type": "string", "maxLength": 3, "minLength": 1},
                        "port": {"x-kubernetes-int-or-string": true},
                        "at": {"type": "string", "format": "date-time"},
                        "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "values": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "note": {"type": "string", "nullable": true},
                        "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                                     "x-kubernetes-preserve-unknown-fields": true},
                        "items": {"type": "array", "items": {"type": "object",
                            "properties": {"id": {"type": "string"}}}}
                    }
                }
            }
        })
    }

    fn lines(object: &Value) -> Vec<(String, &'static str)> {
        validate(&widget_schema(), object)
            .into_iter()
            .map(|c| (c.line(), c.reason))
            .collect()
    }

    #[test]
    fn unknown_fields_are_pruned_except_where_preserved() {
        let mut object = json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "a", "odd": 1},
            "spec": {"size": 1, "foo": 1, "values": {"any": {"thing": 1}},
                     "items": [{"id": "a", "bar": 2}], "labels": {"k": "v"},
                     "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": {}}},
            "status": {"x": 1}});
        let pruned = prune(&widget_schema(), &mut object);
        assert_eq!(pruned, vec!["spec.items[0].bar", "spec.foo", "status"]);
        assert_eq!(object["spec"]["values"]["any"]["thing"], 1);
        assert_eq!(object["spec"]["labels"]["k"], "v");
        assert_eq!(object["metadata"]["odd"], 1);
        assert!(object["spec"]["template"]["spec"].is_object());
    }

    #[test]
    fn defaults_fill_absent_and_non_nullable_null_fields() {
        let mut object = json!({"spec": {"size": 1, "color": null, "note": null}});
        default(&widget_schema(), &mut object);
        assert_eq!(object["spec"]["color"], "red");
        assert!(object["spec"].get("note").is_some_and(Value::is_null));
    }

    #[test]
    fn field_errors_are_worded_as_the_server_words_them() {
        assert_eq!(
            lines(&json!({"spec": {}})),
            vec![("spec.size: Required value".into(), "FieldValueRequired")]
        );
        assert_eq!(
            lines(&json!({"spec": {"size": "big"}})),
            vec![(
                r#"spec.size: Invalid value: "string": spec.size in body must be of type integer: "string""#.into(),
                "FieldValueTypeInvalid"
            )]
        );
        assert_eq!(
            lines(&json!({"spec": {"size": 11, "color": "green"}})),
            vec![
                (
                    r#"spec.color: Unsupported value: "green": supported values: "red", "blue""#
                        .into(),
                    "FieldValueNotSupported"
                ),
                (
                    "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10".into(),
                    "FieldValueInvalid"
                ),
            ]
        );
        let causes = lines(
            &json!({"spec": {"size": 1, "interval": "5x", "name": "long",
            "port": true, "at": "yesterday", "tags": ["a", "b", "c"], "items": [{"id": 1}]}}),
        );
        let expected = [
            (
                r#"spec.at: Invalid value: "yesterday": spec.at in body must be of type date-time: "yesterday""#,
                "FieldValueTypeInvalid",
            ),
            (
                r#"spec.interval: Invalid value: "5x": spec.interval in body should match '^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$'"#,
                "FieldValueInvalid",
            ),
            (
                r#"spec.items[0].id: Invalid value: "integer": spec.items[0].id in body must be of type string: "integer""#,
                "FieldValueTypeInvalid",
            ),
            (
                "spec.name: Too long: may not be more than 3 bytes",
                "FieldValueTooLong",
            ),
            (
                r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#,
                "FieldValueTypeInvalid",
            ),
            (
                "spec.tags: Too many: 3: must have at most 2 items",
                "FieldValueTooMany",
            ),
        ];
        let expected: Vec<(String, &str)> =
            expected.iter().map(|(l, r)| (l.to_string(), *r)).collect();
        assert_eq!(causes, expected);
        assert!(
            lines(
                &json!({"spec": {"size": 2, "port": "http", "at": "2026-11-30T06:00:00Z",
            "interval": "1m30s", "template": {"apiVersion": "v1", "kind": "Pod"}}})
            )
            .is_empty()
        );
        assert_eq!(
            lines(&json!({"spec": {"size": 2, "template": {}}})),
            vec![
                (
                    "spec.template.apiVersion: Required value".into(),
                    "FieldValueRequired"
                ),
                (
                    "spec.template.kind: Required value".into(),
                    "FieldValueRequired"
                ),
            ]
        );
    }

    #[test]
    fn repeated_keys_are_found_with_their_paths() {
        let body = br#"{"spec": {"size": 1, "size": 2, "items": [{"id": "a", "id": "b"}]}}"#;
        assert_eq!(
            duplicate_fields(body),
            vec!["spec.size", "spec.items[0].id"]
        );
        assert!(duplicate_fields(b"{\"a\": 1}").is_empty());
        assert!(duplicate_fields(b"not json").is_empty());
    }

    #[test]
    fn causes_know_their_json_pointer() {
        let cause = Cause::new("FieldValueRequired", "spec.items[0].a/b", String::new());
        assert_eq!(cause.pointer(), "/spec/items/0/a~1b");
    }

    #[test]
    fn directives_settle_problems() {
        let problems = || vec![r#"unknown field "spec.foo""#.to_string()];
        assert_eq!(Directive::parse(None).unwrap(), Directive::Warn);
        assert_eq!(Directive::Warn.settle(problems(), "").unwrap(), problems());
        assert!(Directive::Ignore.settle(problems(), "").unwrap().is_empty());
        let error = Directive::Strict.settle(problems(), "W: ").unwrap_err();
        assert_eq!(
            (error.code, error.message.as_str()),
            (400, r#"W: strict decoding error: unknown field "spec.foo""#)
        );
        assert_eq!(Directive::parse(Some("strict")).unwrap_err().code, 400);
    }

    #[test]
    fn go_durations_are_accepted() {
        assert!(
            ["0", "1h30m", "1.5h", "300ms"]
                .iter()
                .all(|d| duration_matches(d))
        );
        assert!(!duration_matches("5 minutes"));
    }
}
