//! List pagination (`limit`, `continue`) as kube-apiserver does it: items in key order
//! (namespace, then name), a continue token that is base64 of
//! `{"v":"meta.k8s.io/v1","rv":<list resourceVersion>,"start":"<next key>"}`, and
//! `410 Expired` for a token whose resourceVersion the event history no longer reaches.
//!
//! One difference: later pages show the objects as they are now, where the real server serves
//! them as of the first page's resourceVersion.

use base64::Engine as _;
use serde_json::{Value, json};

use super::Query;
use super::error::{ApiError, ApiResult};
use super::store::{Store, key_of};

const TOKEN_VERSION: &str = "meta.k8s.io/v1";

/// One page of a list.
pub struct Page<'a> {
    pub items: Vec<&'a Value>,
    pub resource_version: String,
    continue_token: Option<String>,
    remaining: usize,
}

impl Page<'_> {
    /// The list's `metadata`.
    pub fn metadata(&self) -> Value {
        let mut metadata = json!({ "resourceVersion": self.resource_version });
        if let Some(token) = &self.continue_token {
            metadata["continue"] = json!(token);
            metadata["remainingItemCount"] = json!(self.remaining);
        }
        metadata
    }
}

fn sort_key(object: &Value) -> String {
    let (namespace, name) = key_of(object);
    if namespace.is_empty() {
        name
    } else {
        format!("{namespace}/{name}")
    }
}

/// The page of `items` (sorted by key) that `limit` and `continue` ask for.
pub fn page<'a>(store: &Store, items: &[&'a Value], query: &Query) -> ApiResult<Page<'a>> {
    let (resource_version, start) = match query.get("continue").filter(|t| !t.is_empty()) {
        Some(token) => {
            let (rv, start) = decode(token)?;
            if rv < store.compacted() {
                return Err(ApiError::gone(
                    "The provided continue parameter is too old to display a consistent list \
                     result. You can start a new list without the continue parameter.",
                ));
            }
            (rv, start)
        }
        None => (store.resource_version(), String::new()),
    };
    let limit = match query.get("limit") {
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {text:?}")))?,
        None => 0,
    };
    let rest: Vec<&Value> = items
        .iter()
        .copied()
        .filter(|object| sort_key(object) >= start)
        .collect();
    if limit == 0 || rest.len() <= limit {
        return Ok(Page {
            items: rest,
            resource_version: resource_version.to_string(),
            continue_token: None,
            remaining: 0,
        });
    }
    let next = format!("{}\u{0}", sort_key(rest[limit - 1]));
    Ok(Page {
        items: rest[..limit].to_vec(),
        resource_version: resource_version.to_string(),
        continue_token: Some(encode(resource_version, &next)),
        remaining: rest.len() - limit,
    })
}

fn encode(resource_version: u64, start: &str) -> String {
    let token = json!({"v": TOKEN_VERSION, "rv": resource_version, "start": start});
    base64::engine::general_purpose::URL_SAFE.encode(token.to_string())
}

fn decode(token: &str) -> ApiResult<(u64, String)> {
    let invalid = || ApiError::bad_request(format!("invalid continue token {token:?}"));
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| invalid())?;
    let token: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    match (
        token["v"].as_str(),
        token["rv"].as_u64(),
        token["start"].as_str(),
    ) {
        (Some(TOKEN_VERSION), Some(rv), Some(start)) => Ok((rv, start.to_string())),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_junk_is_refused() {
        assert_eq!(
            decode(&encode(7, "ns/b\u{0}")).unwrap(),
            (7, "ns/b\u{0}".into())
        );
        assert_eq!(decode("not a token").unwrap_err().code, 400);
    }
}
