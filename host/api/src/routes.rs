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
                .merge(principals::router()),
        )
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
    request
        .map(|axum::Json(body)| body)
        .map_err(|e| crate::ApiError::BadRequest(e.body_text()))
}

/// A validated id, or a 400 naming the field.
pub(crate) fn id(text: &str, what: &str) -> Result<wharf_core::Id, crate::ApiError> {
    wharf_core::Id::new(text).map_err(|e| crate::ApiError::BadRequest(format!("{what}: {e}")))
}
