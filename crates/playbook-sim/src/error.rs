//! `ApiError`: a failed simulator operation, rendered as the API server's `Status` object.

use serde_json::{Value, json};

/// The `reason` of a failed `Status`, as the real API server spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// 404: the object or resource does not exist.
    NotFound,
    /// 409: create of an object that exists.
    AlreadyExists,
    /// 409: stale `resourceVersion` on update.
    Conflict,
    /// 422: the object failed validation.
    Invalid,
    /// 400: malformed request (bad JSON, bad selector, ...).
    BadRequest,
    /// 405: the verb is not supported on this resource.
    MethodNotAllowed,
    /// 410: the requested resourceVersion is too old (watch).
    Expired,
    /// 410: gone.
    Gone,
    /// 403: forbidden (e.g. creating in a terminating namespace).
    Forbidden,
    /// 415: unsupported patch content type.
    UnsupportedMediaType,
    /// 503: service unavailable (e.g. service proxy without endpoints).
    ServiceUnavailable,
    /// 429: too many requests (an eviction a PodDisruptionBudget refuses).
    TooManyRequests,
    /// 500: internal error.
    InternalError,
    /// 500 without a reason: an error the API server did not turn into a `Status` itself
    /// (apiserver/pkg/endpoints/handlers/responsewriters/status.go `ErrorToAPIStatus`).
    Unknown,
}

impl Reason {
    /// The string the API server puts in `Status.reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotFound => "NotFound",
            Reason::AlreadyExists => "AlreadyExists",
            Reason::Conflict => "Conflict",
            Reason::Invalid => "Invalid",
            Reason::BadRequest => "BadRequest",
            Reason::MethodNotAllowed => "MethodNotAllowed",
            Reason::Expired => "Expired",
            Reason::Gone => "Gone",
            Reason::Forbidden => "Forbidden",
            Reason::UnsupportedMediaType => "UnsupportedMediaType",
            Reason::ServiceUnavailable => "ServiceUnavailable",
            Reason::TooManyRequests => "TooManyRequests",
            Reason::InternalError => "InternalError",
            Reason::Unknown => "",
        }
    }

    /// The HTTP status code that goes with this reason.
    pub fn code(self) -> u16 {
        match self {
            Reason::NotFound => 404,
            Reason::AlreadyExists | Reason::Conflict => 409,
            Reason::Invalid => 422,
            Reason::BadRequest => 400,
            Reason::MethodNotAllowed => 405,
            Reason::Expired | Reason::Gone => 410,
            Reason::Forbidden => 403,
            Reason::UnsupportedMediaType => 415,
            Reason::ServiceUnavailable => 503,
            Reason::TooManyRequests => 429,
            Reason::InternalError | Reason::Unknown => 500,
        }
    }
}

/// A failed operation on the simulated API; [`ApiError::status`] renders it as a `Status`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} ({})", reason.as_str())]
pub struct ApiError {
    /// Why it failed.
    pub reason: Reason,
    /// The human message, exactly as a real API server words it.
    pub message: String,
    /// `Status.details`, when the real server fills it.
    pub details: Option<Value>,
}

impl ApiError {
    /// A new error without details.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        ApiError {
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// `pods "x" not found` (resource is the plural, `.group` for non-core).
    pub fn not_found(qualified: &str, name: &str) -> Self {
        let (kind, group) = split_qualified(qualified);
        ApiError {
            reason: Reason::NotFound,
            message: format!("{qualified} \"{name}\" not found"),
            details: Some(json!({"name": name, "group": group, "kind": kind})),
        }
    }

    /// `pods "x" already exists`.
    pub fn already_exists(qualified: &str, name: &str) -> Self {
        let (kind, group) = split_qualified(qualified);
        ApiError {
            reason: Reason::AlreadyExists,
            message: format!("{qualified} \"{name}\" already exists"),
            details: Some(json!({"name": name, "group": group, "kind": kind})),
        }
    }

    /// The stale-resourceVersion conflict of an update.
    pub fn conflict(qualified: &str, name: &str) -> Self {
        let (kind, group) = split_qualified(qualified);
        ApiError {
            reason: Reason::Conflict,
            message: format!(
                "Operation cannot be fulfilled on {qualified} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
            details: Some(json!({"name": name, "group": group, "kind": kind})),
        }
    }

    /// `Kind.group "name" is invalid: [field: message, ...]` with `details.causes`.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: &[(String, String)]) -> Self {
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let rendered: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        let list = if rendered.len() == 1 {
            rendered[0].clone()
        } else {
            format!("[{}]", rendered.join(", "))
        };
        let causes_json: Vec<Value> = causes
            .iter()
            .map(|(f, m)| json!({"reason": cause_reason(m), "message": m, "field": f}))
            .collect();
        ApiError {
            reason: Reason::Invalid,
            message: format!("{qualified} \"{name}\" is invalid: {list}"),
            details: Some(
                json!({"name": name, "group": group, "kind": kind, "causes": causes_json}),
            ),
        }
    }

    /// 400 BadRequest with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(Reason::BadRequest, message)
    }

    /// The 404 for an unknown path or resource.
    pub fn no_resource() -> Self {
        ApiError::new(
            Reason::NotFound,
            "the server could not find the requested resource",
        )
    }

    /// 405 for a verb the resource does not support.
    pub fn method_not_allowed() -> Self {
        ApiError::new(
            Reason::MethodNotAllowed,
            "the server does not allow this method on the requested resource",
        )
    }

    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        self.reason.code()
    }

    /// The `Status` object a real API server would answer.
    pub fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason.as_str(),
            "code": self.code(),
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

/// The `reason` of a cause from its message's leading error type, as
/// apimachinery/pkg/util/validation/field/errors.go names them (`Unsupported value` is
/// `FieldValueNotSupported`, ...).
fn cause_reason(message: &str) -> &'static str {
    const TYPES: &[(&str, &str)] = &[
        ("Not found", "FieldValueNotFound"),
        ("Required value", "FieldValueRequired"),
        ("Duplicate value", "FieldValueDuplicate"),
        ("Invalid value", "FieldValueInvalid"),
        ("Unsupported value", "FieldValueNotSupported"),
        ("Forbidden", "FieldValueForbidden"),
        ("Too long", "FieldValueTooLong"),
        ("Too many", "FieldValueTooMany"),
        ("Internal error", "InternalError"),
        ("Type error", "FieldValueTypeInvalid"),
    ];
    TYPES
        .iter()
        .find(|(p, _)| message.starts_with(p))
        .map(|(_, r)| *r)
        .unwrap_or("FieldValueInvalid")
}

/// Splits `deployments.apps` into (`deployments`, `apps`).
fn split_qualified(q: &str) -> (&str, &str) {
    match q.split_once('.') {
        Some((k, g)) => (k, g),
        None => (q, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_message_matches_apiserver() {
        let e = ApiError::not_found("pods", "x");
        assert_eq!(e.status()["message"], "pods \"x\" not found");
        assert_eq!(e.status()["code"], 404);
        assert_eq!(e.status()["reason"], "NotFound");
    }

    #[test]
    fn invalid_brackets_only_for_many() {
        let one = ApiError::invalid(
            "PodChaos",
            "chaos-mesh.org",
            "p",
            &[("spec.mode".into(), "bad".into())],
        );
        assert_eq!(
            one.message,
            "PodChaos.chaos-mesh.org \"p\" is invalid: spec.mode: bad"
        );
        let two = ApiError::invalid(
            "Pod",
            "",
            "p",
            &[("a".into(), "x".into()), ("b".into(), "y".into())],
        );
        assert_eq!(two.message, "Pod \"p\" is invalid: [a: x, b: y]");
        assert_eq!(two.status()["details"]["causes"][1]["field"], "b");
    }
}
