//! `wharf-api`: the REST API of Wharf, under `/api/v1`.
//!
//! Every request is authenticated by a bearer token ([`auth`]) and every action is decided
//! by the policy chain ([`authz`]) before a handler touches the store; errors are RFC 9457
//! problem documents ([`ApiError`]). Handlers write desired state to the store and return:
//! they never call drivers or targets inline.
//!
//! This crate must not bypass the policy chain for any route, and must not return a 5xx
//! for a client's mistake.

pub mod auth;
pub mod authz;
mod error;
mod routes;

pub use authz::PolicyChain;
pub use error::ApiError;

use axum::Router;
use std::sync::Arc;
use wharf_store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The platform's state.
    pub store: Store,
    /// The policies that decide every action.
    pub policies: Arc<PolicyChain>,
}

/// The whole API, ready to serve.
pub fn router(state: AppState) -> Router {
    routes::router().with_state(state)
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
