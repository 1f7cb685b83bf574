//! The routes.

mod apps;
mod env_types;
mod envs;
mod principals;

use crate::AppState;
use axum::Router;
use axum::routing::get;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .nest(
            "/api/v1",
            apps::router()
                .merge(env_types::router())
                .merge(envs::router())
                .merge(principals::router())
                .method_not_allowed_fallback(method_not_allowed),
        )
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(problem_for_plain_errors))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(request_span))
}

/// The process is up.
async fn healthz() -> &'static str {
    "ok"
}

/// The process can serve: the store answers.
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<&'static str, crate::ApiError> {
    state.store.schema_version().await?;
    Ok("ready")
}

/// The JSON body of a request, or a 400 that says what is wrong with it.
pub(crate) fn body<T>(
    request: Result<axum::Json<T>, axum::extract::rejection::JsonRejection>,
) -> Result<T, crate::ApiError> {
    request.map(|axum::Json(body)| body).map_err(rejection)
}

/// The error for a body that could not be read or parsed.
pub(crate) fn rejection(e: axum::extract::rejection::JsonRejection) -> crate::ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        crate::ApiError::TooLarge(format!(
            "the request body is larger than {} MiB",
            MAX_BODY >> 20
        ))
    } else {
        crate::ApiError::BadRequest(e.body_text())
    }
}

/// A validated id, or a 400 naming the field.
pub(crate) fn id(text: &str, what: &str) -> Result<wharf_core::Id, crate::ApiError> {
    wharf_core::Id::new(text).map_err(|e| crate::ApiError::BadRequest(format!("{what}: {e}")))
}

/// Largest request body accepted (plugin uploads included), in bytes.
pub(crate) const MAX_BODY: usize = 32 << 20;

/// Gives every request an id (the client's `x-request-id` when it sent a sane one), a
/// tracing span, and the id back in the response.
async fn request_span(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::HeaderValue;
    use tracing::Instrument;
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 8]>()));
    let value = HeaderValue::from_str(&id).expect("checked to be visible ASCII");
    request.headers_mut().insert("x-request-id", value.clone());
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %id
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "request finished"));
    response.headers_mut().insert("x-request-id", value);
    response
}

async fn unknown_route(
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> crate::ApiError {
    crate::ApiError::NotFound(format!("route {}", uri.path()))
}

async fn method_not_allowed(
    method: axum::http::Method,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response =
        crate::ApiError::BadRequest(format!("{method} is not allowed on {}", uri.path()))
            .into_response();
    *response.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    response
}

/// Turns the plain-text errors that axum's extractors produce before a handler runs (a
/// path that does not decode, a query that does not parse) into problem documents, so
/// that every error a client sees has the same shape.
async fn problem_for_plain_errors(response: axum::response::Response) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/problem+json");
    if !status.is_client_error() || is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    let detail = match axum::body::to_bytes(body, 64 << 10).await {
        Ok(bytes) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).into_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_string(),
    };
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    let mut response =
        axum::response::Response::from_parts(parts, axum::body::Body::from(body.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response
}
