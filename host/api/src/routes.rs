//! The routes, their OpenAPI description, and what handlers share: bodies, ids, pages,
//! versions (`ETag`/`If-Match`) and the audit log.

mod apps;
mod artefacts;
mod audit;
mod clusters;
mod definition_match;
mod definitions;
pub(crate) mod deployments;
mod env_types;
pub(crate) mod envs;
mod events;
mod installations;
mod pause;
mod plan;
mod plugins;
mod principals;
mod resources;
mod rules;
mod sets;
mod status;
mod webhooks;

use crate::{ApiError, AppState};
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes under `/api/v1` and at the root, with their OpenAPI description.
pub(crate) fn documented() -> (Router<AppState>, serde_json::Value) {
    let api = apps::router()
        .merge(artefacts::router())
        .merge(clusters::router())
        .merge(env_types::router())
        .merge(envs::router())
        .merge(principals::router())
        .merge(plugins::router())
        .merge(installations::router())
        .merge(resources::router())
        .merge(definitions::router())
        .merge(definition_match::router())
        .merge(sets::router())
        .merge(deployments::router())
        .merge(plan::router())
        .merge(pause::router())
        .merge(rules::router())
        .merge(events::router())
        .merge(status::router())
        .merge(webhooks::router())
        .merge(audit::router());
    let (router, openapi) = OpenApiRouter::with_openapi(base_document())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .nest("/api/v1", api)
        .split_for_parts();
    (router, crate::openapi::complete(&openapi))
}

pub(crate) fn router() -> Router<AppState> {
    let (router, openapi) = documented();
    let document = std::sync::Arc::new(openapi.to_string().into_bytes());
    router
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    document.as_ref().clone(),
                )
            }),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(unknown_route)
        .layer(axum::middleware::map_response(problem_for_plain_errors))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(axum::middleware::from_fn(crate::error::log_internal))
        .layer(axum::middleware::from_fn(request_span))
}

fn base_document() -> OpenApi {
    use utoipa::openapi::{InfoBuilder, OpenApiBuilder};
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Wharf API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The REST API of Wharf, the internal developer platform. Every request \
                     but the health checks carries `Authorization: Bearer <token>`; every \
                     action is decided by the policy chain; every error is an RFC 9457 \
                     problem document.",
                ))
                .build(),
        )
        .build()
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", operation_id = "getHealth", tag = "health",
    responses((status = 200, description = "The process is up", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok"
}

/// The process can serve: the store answers.
#[utoipa::path(get, path = "/readyz", operation_id = "getReadiness", tag = "health",
    responses((status = 200, description = "The store answers", body = String, content_type = "text/plain")))]
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<&'static str, ApiError> {
    state.store.schema_version().await?;
    Ok("ready")
}

/// A JSON request body, or a 400 (413 when too large) that says what is wrong with it.
pub(crate) struct Body<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(body) = axum::Json::from_request(request, state).await?;
        Ok(Self(body))
    }
}

/// An optional JSON body: none when the request has no `Content-Type`.
impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::OptionalFromRequest<S>
    for Body<T>
{
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Option<Self>, ApiError> {
        let body =
            <axum::Json<T> as axum::extract::OptionalFromRequest<S>>::from_request(request, state)
                .await?;
        Ok(body.map(|axum::Json(body)| Self(body)))
    }
}

/// A request body not read yet. Handlers that parse something costly (Score documents,
/// deltas) take it last and read it only once the caller is authorized: a caller who may
/// not act costs the server its headers, not its body.
pub(crate) struct Unread {
    body: axum::body::Body,
    json: bool,
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for Unread {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, _: &S) -> Result<Self, ApiError> {
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let v = v.trim();
                v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
            });
        Ok(Self {
            body: request.into_body(),
            json,
        })
    }
}

impl Unread {
    /// Reads the body, at most `limit` bytes.
    pub(crate) async fn bytes(self, limit: usize) -> Result<bytes::Bytes, ApiError> {
        axum::body::to_bytes(self.body, limit).await.map_err(|e| {
            use std::error::Error as _;
            if e.source()
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            {
                ApiError::TooLarge(format!(
                    "the request body is larger than {} MiB",
                    limit >> 20
                ))
            } else {
                ApiError::BadRequest(format!("the request body could not be read: {e}"))
            }
        })
    }

    /// Reads the body (at most `limit` bytes) and parses it as JSON, off the async
    /// workers.
    pub(crate) async fn json<T: serde::de::DeserializeOwned + Send + 'static>(
        self,
        limit: usize,
    ) -> Result<T, ApiError> {
        if !self.json {
            return Err(ApiError::BadRequest(
                "send the body as JSON, with `Content-Type: application/json`".into(),
            ));
        }
        let bytes = self.bytes(limit).await?;
        blocking(move || {
            serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::BadRequest(format!("the body is not what this request takes: {e}"))
            })
        })
        .await
    }
}

/// Runs CPU-heavy work (parsing, validating, patching) on the blocking pool, so that the
/// async workers keep answering other requests meanwhile.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("a blocking task failed: {e}")))?
}

/// Largest body of a request that carries Score documents or a delta, in bytes.
pub(crate) const MAX_DOCUMENTS_BODY: usize = 4 << 20;

/// A validated id, or a 400 naming the field.
pub(crate) fn id(text: &str, what: &str) -> Result<wharf_core::Id, ApiError> {
    wharf_core::Id::new(text).map_err(|e| ApiError::BadRequest(format!("{what}: {e}")))
}

/// Largest request body accepted (a plugin upload), in bytes.
pub(crate) const MAX_BODY: usize = 32 << 20;

/// Largest JSON body of the other requests (an object, a role binding...), in bytes.
pub(crate) const MAX_JSON_BODY: usize = 1 << 20;

/// Which page of a list to return.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// How many items at most (1 to 1000; 100 when absent).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Return the items after this one (the last id of the previous page; the `next`
    /// link in the `Link` header carries it).
    pub after: Option<String>,
}

impl PageQuery {
    /// The page size asked for, checked.
    pub(crate) fn size(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(100),
            Some(n @ 1..=1000) => Ok(n as usize),
            Some(n) => Err(ApiError::BadRequest(format!(
                "limit: {n} is out of range; ask for 1 to 1000 items"
            ))),
        }
    }
}

/// One page of a list: a JSON array, with a `Link: <...>; rel="next"` header when more
/// items follow.
pub(crate) struct Page<T> {
    items: Vec<T>,
    next: Option<String>,
}

/// Cuts the page `query` asks for out of `items` (ordered by `key`); `path` is the
/// collection's path, for the link to the next page.
pub(crate) fn page<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> String,
    query: &PageQuery,
    path: &str,
) -> Result<Page<T>, ApiError> {
    let size = query.size()?;
    if let Some(after) = &query.after {
        items.retain(|item| key(item).as_str() > after.as_str());
    }
    let more = items.len() > size;
    items.truncate(size);
    let next = match items.last() {
        Some(last) if more => Some(format!(
            "<{path}?limit={size}&after={}>; rel=\"next\"",
            query_escape(&key(last))
        )),
        _ => None,
    };
    Ok(Page { items, next })
}

/// A page read from the store with one item more than `size` asked for: the extra one
/// says that more follow, at `next` (a URL) after the last item kept.
pub(crate) fn page_read<T>(mut items: Vec<T>, size: usize, next: impl Fn(&T) -> String) -> Page<T> {
    let more = items.len() > size;
    items.truncate(size);
    let next = match items.last() {
        Some(last) if more => Some(format!("<{}>; rel=\"next\"", next(last))),
        _ => None,
    };
    Page { items, next }
}

/// Percent-encodes what is not unreserved in a query value.
pub(crate) fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl<T: Serialize> IntoResponse for Page<T> {
    fn into_response(self) -> Response {
        let mut response = axum::Json(self.items).into_response();
        if let Some(next) = self.next.and_then(|n| HeaderValue::from_str(&n).ok()) {
            response.headers_mut().insert(header::LINK, next);
        }
        response
    }
}

/// The entity tag of version `n` of something.
pub(crate) fn etag(n: i64) -> String {
    format!("\"{n}\"")
}

/// A response with an `ETag` header.
pub(crate) fn tagged(version: i64, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    if let Ok(value) = HeaderValue::from_str(&etag(version)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// The versions an `If-Match` header accepts: `None` when there is none (or it is `*`).
pub(crate) fn if_match(headers: &HeaderMap) -> Result<Option<Vec<String>>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::BadRequest("If-Match: not visible ASCII".into()))?
        .trim();
    if text == "*" {
        return Ok(None);
    }
    let tags: Vec<String> = text
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/").to_string())
        .collect();
    if tags
        .iter()
        .any(|t| t.len() < 2 || !t.starts_with('"') || !t.ends_with('"'))
    {
        return Err(ApiError::BadRequest(format!(
            "If-Match: {text:?} is not a list of entity tags (like \"3\")"
        )));
    }
    Ok(Some(tags))
}

/// A 412 unless `accepted` (from [`if_match`]) includes version `current` of `what`.
pub(crate) fn check_version(
    accepted: &Option<Vec<String>>,
    current: i64,
    what: &str,
) -> Result<(), ApiError> {
    match accepted {
        Some(tags) if !tags.contains(&etag(current)) => Err(ApiError::PreconditionFailed(format!(
            "If-Match: {what} is at version {}, not {}; fetch it again and reapply your change",
            etag(current),
            tags.join(", ")
        ))),
        _ => Ok(()),
    }
}

/// Appends an audit event; call it inside the transaction that makes the change.
pub(crate) fn audit(
    conn: &wharf_store::Tx<'_>,
    principal: &str,
    action: &str,
    target: String,
    detail: serde_json::Value,
) -> Result<(), wharf_store::Error> {
    wharf_store::audit::record(
        conn,
        &wharf_store::audit::Event {
            seq: 0,
            at: wharf_core::clock::now(),
            principal: principal.to_string(),
            action: action.to_string(),
            target,
            detail,
        },
    )
    .map(|_| ())
}

/// Deletes one thing and records `action` on `target` in the audit log, in one
/// transaction: 204, or a 404 naming `what` when there was nothing to delete.
pub(crate) async fn delete_audited(
    state: &AppState,
    principal: &str,
    action: &'static str,
    target: String,
    what: String,
    delete: impl FnOnce(&wharf_store::Tx<'_>) -> Result<bool, wharf_store::Error> + Send + 'static,
) -> Result<axum::http::StatusCode, ApiError> {
    let principal = principal.to_string();
    let deleted = state
        .store
        .transaction(move |tx| {
            let deleted = delete(tx)?;
            if deleted {
                audit(tx, &principal, action, target, serde_json::Value::Null)?;
            }
            Ok(deleted)
        })
        .await?;
    if deleted {
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(what))
    }
}

/// Gives every request an id (the client's `x-request-id` when it sent a sane one), a
/// tracing span, and the id back in the response.
async fn request_span(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
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

async fn unknown_route(axum::extract::OriginalUri(uri): axum::extract::OriginalUri) -> ApiError {
    ApiError::NotFound(format!("route {}", uri.path()))
}

async fn method_not_allowed(
    method: axum::http::Method,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> Response {
    let mut response =
        ApiError::BadRequest(format!("{method} is not allowed on {}", uri.path())).into_response();
    *response.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    response
}

/// Turns the plain-text errors that axum's extractors produce before a handler runs (a
/// path that does not decode, a query that does not parse) into problem documents, so
/// that every error a client sees has the same shape.
async fn problem_for_plain_errors(response: Response) -> Response {
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
    let mut response = Response::from_parts(parts, axum::body::Body::from(body.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response
}
