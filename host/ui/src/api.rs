//! The API, called in-process as the viewer: the same routes, the same checks, the same
//! policy chain as over HTTP, with the viewer (authenticated by its session's token when
//! the page's request came in) given as [`wharf_api::auth::Authenticated`] instead of a
//! header.

use crate::Ui;
use crate::session::Viewer;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use wharf_api::auth::Authenticated;

/// The most a page reads of one answer: a page never shows more.
const MAX_ANSWER: usize = 16 << 20;

/// What the API refused, as its problem document says.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    /// The HTTP status.
    pub(crate) status: StatusCode,
    /// The problem's title.
    pub(crate) title: String,
    /// What to do about it.
    pub(crate) detail: String,
}

impl Problem {
    pub(crate) fn new(status: StatusCode, title: &str, detail: impl Into<String>) -> Self {
        Self {
            status,
            title: title.into(),
            detail: detail.into(),
        }
    }
}

fn request(viewer: &Viewer, method: Method, path: &str, body: Option<&Value>) -> Request<Body> {
    request_if(viewer, method, path, body, None)
}

fn request_if(
    viewer: &Viewer,
    method: Method,
    path: &str,
    body: Option<&Value>,
    revision: Option<i64>,
) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("/api/v1{path}"))
        .header(header::ACCEPT, "application/json");
    if let Some(r) = revision {
        request = request.header(header::IF_MATCH, format!("\"{r}\""));
    }
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let mut request = request
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("a path built from ids is a valid URI");
    request
        .extensions_mut()
        .insert(Authenticated(viewer.caller.clone()));
    request
}

/// `GET path` as `viewer`, the answer passed on as it comes (a stream of log lines or
/// server-sent events) with its status and content type.
pub(crate) async fn forward(ui: &Ui, viewer: &Viewer, path: &str) -> Response {
    let request = request(viewer, Method::GET, path, None);
    let answer = match ui.api.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = answer.into_parts();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or(header::HeaderValue::from_static("text/plain"));
    (
        parts.status,
        [(header::CONTENT_TYPE, content_type)],
        Body::new(body),
    )
        .into_response()
}

/// Calls the API as `viewer`: the JSON answer, or the problem it answered.
pub(crate) async fn call(
    ui: &Ui,
    viewer: &Viewer,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, Problem> {
    answer(ui, request(viewer, method, path, body)).await
}

/// `PATCH path` as `viewer`, only if the object is still at `revision` (`If-Match`).
pub(crate) async fn patch_at(
    ui: &Ui,
    viewer: &Viewer,
    path: &str,
    body: &Value,
    revision: i64,
) -> Result<Value, Problem> {
    let request = request_if(viewer, Method::PATCH, path, Some(body), Some(revision));
    answer(ui, request).await
}

async fn answer(ui: &Ui, request: Request<Body>) -> Result<Value, Problem> {
    let response = match ui.api.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    let bytes = http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| {
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The answer could not be read",
                e.to_string(),
            )
        })?
        .to_bytes();
    let value: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    if status.is_success() {
        Ok(value)
    } else {
        let text = |key: &str| value[key].as_str().unwrap_or_default().to_string();
        Err(Problem {
            status,
            title: match text("title") {
                t if t.is_empty() => status.canonical_reason().unwrap_or("Error").to_string(),
                t => t,
            },
            detail: text("detail"),
        })
    }
}

/// `GET path` as `viewer`.
pub(crate) async fn get(ui: &Ui, viewer: &Viewer, path: &str) -> Result<Value, Problem> {
    call(ui, viewer, Method::GET, path, None).await
}

/// Percent-encodes one path segment or query value.
pub(crate) fn enc(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
