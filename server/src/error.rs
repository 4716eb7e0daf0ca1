//! The one error shape of the API: a status and
//! `{"error": {"parameter": ..., "message": ...}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer: never a 500 for bad input.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The request parameter at fault (`where`, `page`, `name`), if any.
    pub parameter: Option<String>,
    /// What went wrong, for people.
    pub message: String,
    /// `Retry-After` seconds (429).
    pub retry_after: Option<u64>,
    /// Send `WWW-Authenticate: Bearer` (401).
    pub www_authenticate: bool,
}

impl ApiError {
    /// An error with `status` about `parameter`.
    pub fn new(status: StatusCode, parameter: Option<&str>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            parameter: parameter.map(str::to_string),
            message: message.into(),
            retry_after: None,
            www_authenticate: false,
        }
    }

    /// 400 about `parameter`.
    pub fn bad(parameter: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, Some(parameter), message)
    }

    /// 404 about `parameter`.
    pub fn not_found(parameter: Option<&str>, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, parameter, message)
    }

    /// A library error met while answering for `parameter`: invalid input
    /// is a 400, a query over the memory budget a 413, anything else
    /// (a damaged file) a 500.
    pub fn lib(parameter: Option<&str>, e: colsnap::Error) -> Self {
        match e {
            colsnap::Error::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, parameter, m),
            e @ colsnap::Error::Budget { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, parameter, e.to_string())
            }
            e => {
                tracing::error!(error = %e, "snapshot read failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, None, e.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"parameter": self.parameter, "message": self.message}});
        let mut r = (self.status, axum::Json(body)).into_response();
        let h = r.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.www_authenticate {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, None, e.to_string())
    }
}
