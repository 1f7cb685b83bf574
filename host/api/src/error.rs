//! Errors as RFC 9457 problem documents.

use axum::extract::Request;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error the API returns. A 4xx says exactly what to fix; a 5xx logs its cause once and
/// tells the client only that the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No credentials, or credentials that are not valid.
    #[error("{0}")]
    Unauthenticated(String),
    /// The policy chain denied the action.
    #[error("{action} denied by policy {policy}: {reason}")]
    Forbidden {
        /// The action.
        action: String,
        /// The policy that denied it.
        policy: String,
        /// Its reason.
        reason: String,
    },
    /// The request is malformed or invalid.
    #[error("{0}")]
    BadRequest(String),
    /// The request is invalid in several places, each named by a JSON Pointer.
    #[error("{}", .0.iter().map(|(path, message)| if path.is_empty() { message.clone() } else { format!("{path}: {message}") }).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<(String, String)>),
    /// The request body is larger than the server accepts.
    #[error("{0}")]
    TooLarge(String),
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The thing to create exists already.
    #[error("{0} already exists")]
    Conflict(String),
    /// Nothing matches what was asked for (the message says what and lists candidates).
    #[error("{0}")]
    NoMatch(String),
    /// The request conflicts with what exists (the message says how).
    #[error("{0}")]
    Clash(String),
    /// The thing to delete is still in use.
    #[error("{0}")]
    InUse(String),
    /// The client's `If-Match` does not name the current version.
    #[error("{0}")]
    PreconditionFailed(String),
    /// The caller has too many of something open at once (streams it follows).
    #[error("{0}")]
    TooMany(String),
    /// The server failed. The client is told only that; the cause is logged once, with
    /// the request, by [`log_internal`].
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// The server failed because of `cause` (an error, or a message saying what broke).
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(cause.into())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::TooLarge(format!(
                "the request body is larger than {} MiB",
                crate::routes::MAX_JSON_BODY >> 20
            ))
        } else {
            Self::BadRequest(e.body_text())
        }
    }
}

/// The cause of a 5xx, carried from the handler to [`log_internal`] in the response's
/// extensions.
#[derive(Clone)]
struct InternalCause(std::sync::Arc<str>);

/// Middleware: logs the cause of each 5xx a handler returned, once, with the request's
/// method and path.
pub(crate) async fn log_internal(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let response = next.run(request).await;
    if let Some(InternalCause(cause)) = response.extensions().get::<InternalCause>() {
        tracing::error!(%method, %path, error = %cause, "request failed");
    }
    response
}

impl From<wharf_store::Error> for ApiError {
    fn from(e: wharf_store::Error) -> Self {
        match e {
            wharf_store::Error::Conflict(what) => Self::Conflict(
                what.strip_suffix(" already exists")
                    .unwrap_or(&what)
                    .to_string(),
            ),
            e @ wharf_store::Error::InUse { .. } => Self::InUse(e.to_string()),
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = match &self {
            Self::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Self::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request"),
            Self::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too-large"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::InUse(_) => (StatusCode::CONFLICT, "in-use"),
            Self::NoMatch(_) => (StatusCode::NOT_FOUND, "no-match"),
            Self::Clash(_) => (StatusCode::CONFLICT, "conflict"),
            Self::PreconditionFailed(_) => (StatusCode::PRECONDITION_FAILED, "precondition-failed"),
            Self::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, "too-many"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let detail = match &self {
            Self::Internal(_) => "the server failed; the cause is in its log".to_string(),
            other => other.to_string(),
        };
        let mut body = json!({
            "type": format!("https://wharf.dev/problems/{kind}"),
            "title": status.canonical_reason().unwrap_or("error"),
            "status": status.as_u16(),
            "detail": detail,
        });
        if let Self::Invalid(problems) = &self {
            body["problems"] = problems
                .iter()
                .map(|(path, message)| json!({ "path": path, "message": message }))
                .collect();
        }
        let mut response = (status, body.to_string()).into_response();
        if let Self::Internal(cause) = &self {
            let chain = wharf_core::error_chain(cause.as_ref());
            response
                .extensions_mut()
                .insert(InternalCause(chain.into()));
        }
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
