//! The routes.

mod apps;

use crate::AppState;
use axum::Router;
use axum::routing::get;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .nest("/api/v1", apps::router())
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
