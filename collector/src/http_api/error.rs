//! The HTTP face of `crate::Error`: a status and the JSON body
//! `{"error": {"code": "permission_denied", "message": "..."}}`. The one
//! place an HTTP error response is built, as `error.rs` is for gRPC.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::Error;

/// An error answer: HTTP status, a stable snake_case code, and a message a
/// human can act on.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, code: "invalid_argument", message: message.into() }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::NOT_FOUND, code: "not_found", message: message.into() }
    }

    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::METHOD_NOT_ALLOWED, code: "method_not_allowed", message: message.into() }
    }

    pub fn payload_too_large(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::PAYLOAD_TOO_LARGE, code: "payload_too_large", message: message.into() }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let (status, code) = match &e {
            Error::InvalidArgument(_) | Error::Rules(_) => (StatusCode::BAD_REQUEST, "invalid_argument"),
            Error::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Error::PermissionDenied(_) => (StatusCode::FORBIDDEN, "permission_denied"),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            // The target's state forbids the call (an alert already
            // resolved, an entry already delivered, a hostname naming
            // several hosts): a conflict with the resource, not a failed
            // conditional header (412).
            Error::FailedPrecondition(_) => (StatusCode::CONFLICT, "failed_precondition"),
            Error::ResourceExhausted(_) => (StatusCode::TOO_MANY_REQUESTS, "resource_exhausted"),
            Error::Store(_) | Error::Io { .. } => {
                // As over gRPC: logged here, retryable for the caller, no paths.
                tracing::error!(error = %e, "storage failure while serving an HTTP request");
                return ApiError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "unavailable",
                    message: "the collector could not read or store the request durably; retry later".into(),
                };
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError { status, code, message: e.to_string() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (self.status, super::json_body(&body)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"census\""));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_kind_has_its_status_and_code() {
        let cases = [
            (Error::InvalidArgument("x".into()), 400, "invalid_argument"),
            (Error::Unauthenticated("x".into()), 401, "unauthenticated"),
            (Error::PermissionDenied("x".into()), 403, "permission_denied"),
            (Error::NotFound("x".into()), 404, "not_found"),
            (Error::FailedPrecondition("x".into()), 409, "failed_precondition"),
            (Error::ResourceExhausted("x".into()), 429, "resource_exhausted"),
            (Error::Internal("x".into()), 500, "internal"),
            (Error::Store("/var/lib/x: disk full".into()), 503, "unavailable"),
        ];
        for (error, status, code) in cases {
            let e = ApiError::from(error);
            assert_eq!((e.status.as_u16(), e.code), (status, code), "{}", e.message);
        }
        let hidden = ApiError::from(Error::Store("/var/lib/x: disk full".into()));
        assert!(!hidden.message.contains("/var/lib"), "no paths to the caller: {}", hidden.message);
    }
}
