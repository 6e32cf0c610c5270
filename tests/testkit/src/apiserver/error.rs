//! The API server's errors, answered as the real server does: a `metav1.Status` body with
//! `status: Failure`, a machine-readable `reason`, the HTTP `code` and `details`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One failed request, rendered as a `metav1.Status`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: Value) -> ApiError {
        self.details = Some(details);
        self
    }

    pub fn not_found(group: &str, plural: &str, name: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(group, plural)),
        )
        .with_details(json!({"name": name, "group": group, "kind": plural}))
    }

    /// A 404 for a path the server does not serve at all.
    pub fn not_found_path(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "NotFound", message)
    }

    pub fn already_exists(group: &str, plural: &str, name: &str) -> ApiError {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(group, plural)),
        )
        .with_details(json!({"name": name, "group": group, "kind": plural}))
    }

    pub fn conflict(group: &str, plural: &str, name: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                qualified(group, plural)
            ),
        )
        .with_details(json!({"name": name, "group": group, "kind": plural}))
    }

    /// A server-side apply conflict; `causes` are `(manager, field path)` pairs.
    pub fn apply_conflict(causes: &[(String, String)], api_version: &str) -> ApiError {
        let lines: Vec<String> = causes
            .iter()
            .map(|(manager, field)| {
                format!("conflict with \"{manager}\" using {api_version}: {field}")
            })
            .collect();
        let message = if lines.len() == 1 {
            format!("Apply failed with 1 conflict: {}", lines[0])
        } else {
            format!(
                "Apply failed with {} conflicts: {}",
                lines.len(),
                lines.join("\n")
            )
        };
        let causes: Vec<Value> = causes
            .iter()
            .map(|(manager, field)| {
                json!({
                    // metav1.StatusCause's `type` is `reason` in JSON.
                    "reason": "FieldManagerConflict",
                    "message": format!("conflict with \"{manager}\" using {api_version}"),
                    "field": field,
                })
            })
            .collect();
        ApiError::new(409, "Conflict", message).with_details(json!({ "causes": causes }))
    }

    pub fn invalid(kind: &str, name: &str, message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError::new(
            422,
            "Invalid",
            format!("{kind} \"{name}\" is invalid: {message}"),
        )
        .with_details(json!({"name": name, "kind": kind, "causes": [{"message": message}]}))
    }

    /// A custom resource its schema rejects, worded as apiextensions-apiserver words it.
    pub fn invalid_fields(
        group: &str,
        kind: &str,
        name: &str,
        causes: &[super::schema::Cause],
    ) -> ApiError {
        let lines: Vec<String> = causes.iter().map(super::schema::Cause::line).collect();
        let errors = match lines.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let causes: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.body, "field": c.field}))
            .collect();
        ApiError::new(
            422,
            "Invalid",
            format!("{kind}.{group} \"{name}\" is invalid: {errors}"),
        )
        .with_details(json!({"name": name, "group": group, "kind": kind, "causes": causes}))
    }

    /// A server-side apply without `fieldManager`, refused as kube-apiserver validates
    /// PatchOptions.
    pub fn apply_without_field_manager() -> ApiError {
        let body = "Required value: is required for apply patch";
        ApiError::new(
            422,
            "Invalid",
            format!("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: {body}"),
        )
        .with_details(json!({
            "group": "meta.k8s.io",
            "kind": "PatchOptions",
            "causes": [{"reason": "FieldValueRequired", "message": body, "field": "fieldManager"}],
        }))
    }

    /// A merge or JSON patch whose result strict decoding refuses (`problems`: `strict
    /// decoding error: unknown field "spec.foo"`): kube-apiserver reports the patched object
    /// as the invalid value of `patch`, with no kind or name.
    pub fn invalid_patch(patched: &str, problems: &str) -> ApiError {
        let body = format!("Invalid value: {patched:?}: {problems}");
        ApiError::new(422, "Invalid", format!(" \"\" is invalid: patch: {body}")).with_details(
            json!({
                "causes": [{"reason": "FieldValueInvalid", "message": body, "field": "patch"}],
            }),
        )
    }

    /// A Strict server-side apply naming fields the CRD's schema lacks: the field manager
    /// cannot type it, and the error reaches the client as a plain 500 (no reason).
    pub fn typed_patch_failed(gvk: &str, unknown: &[String]) -> ApiError {
        let errors: Vec<String> = unknown
            .iter()
            .map(|path| format!(".{path}: field not declared in schema"))
            .collect();
        let errors = match errors.as_slice() {
            [one] => one.clone(),
            many => format!("errors:\n  {}", many.join("\n  ")),
        };
        ApiError::new(
            500,
            "",
            format!("failed to create typed patch object ({gvk}): {errors}"),
        )
    }

    /// The problems of a Strict decoding refusal ([`super::schema::Directive::settle`]).
    pub fn strict_problems(&self) -> Option<&str> {
        let at = self.message.find("strict decoding error: ")?;
        (self.code == 400).then(|| &self.message[at..])
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "Forbidden", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new(405, "MethodNotAllowed", message)
    }

    pub fn unsupported_media_type(content_type: &str) -> ApiError {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format: {content_type}"),
        )
    }

    /// What the real server answers a strategic merge patch of a custom resource.
    pub fn unsupported_media_type_for_custom_resources() -> ApiError {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json, \
             application/apply-patch+yaml",
        )
    }

    /// A 415 with its own explanation (a body the server can read only in part).
    pub fn unsupported(message: impl Into<String>) -> ApiError {
        ApiError::new(415, "UnsupportedMediaType", message)
    }

    pub fn gone(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalError", message)
    }

    pub fn too_many_requests(retry_after_seconds: u64) -> ApiError {
        ApiError::new(
            429,
            "TooManyRequests",
            "the server has received too many requests",
        )
        .with_details(json!({ "retryAfterSeconds": retry_after_seconds }))
    }

    /// The `metav1.Status` body.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        // StatusReasonUnknown is the empty string, which the server omits.
        if self.reason.is_empty() {
            status.as_object_mut().expect("object").remove("reason");
        }
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = super::json_response(code, &self.status());
        if let Some(seconds) = self
            .details
            .as_ref()
            .and_then(|details| details["retryAfterSeconds"].as_u64())
        {
            response
                .headers_mut()
                .insert("Retry-After", seconds.to_string().parse().expect("digits"));
        }
        response
    }
}
