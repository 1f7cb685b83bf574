//! `wharf-api`: the REST API of Wharf, under `/api/v1`.
//!
//! Every request is authenticated by a bearer token ([`auth`]) and every action is decided
//! by the policy chain ([`authz`]) before a handler touches the store; errors are RFC 9457
//! problem documents ([`ApiError`]). Handlers write desired state to the store and return:
//! they never call drivers or targets inline.
//!
//! This crate serves HTTP over the [`AppState`] it is given; it does not assemble the
//! server (`wharf-server` does). It must not bypass the policy chain for any route, and
//! must not return a 5xx for a client's mistake.

pub mod auth;
pub mod authz;
pub mod automation;
mod error;
mod openapi;
mod outbound;
pub mod registry;
pub(crate) mod routes;
mod streams;
pub mod webhooks;

pub use authz::PolicyChain;
pub use error::ApiError;
pub use registry::Registry;

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
    /// The installed plugins, loaded into the runtime.
    pub registry: Arc<Registry>,
    /// Seals secrets at rest.
    pub sealer: wharf_store::secrets::Sealer,
    /// Carries out deployments.
    pub engine: wharf_engine::Engine,
    /// What a request may make the server do.
    pub limits: Limits,
    /// The streams each principal holds open.
    pub streams: Arc<streams::Streams>,
}

/// What a request may make the server do, set by the operator.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The longest a new API token may live, in days; `None` lets tokens be made that never
    /// expire (a token still never outlives the one that made it).
    pub token_max_lifetime_days: Option<u32>,
    /// How many streams (deployment events, followed logs) one principal may hold open.
    pub streams_per_principal: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            token_max_lifetime_days: Some(90),
            streams_per_principal: 8,
        }
    }
}

/// The whole API, ready to serve.
pub fn router(state: AppState) -> Router {
    routes::router().with_state(state)
}

/// The OpenAPI 3.1 document of the API (what `GET /api/v1/openapi.json` serves).
pub fn openapi() -> serde_json::Value {
    routes::documented().1
}
