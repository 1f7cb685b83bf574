//! `wharf-ui`: the web UI, served by `wharf serve` beside the API, under `/ui`.
//!
//! Pages are HTML rendered on the server (maud: the markup is Rust, checked when it
//! compiles), styled by one stylesheet and enhanced by one small script of our own: the
//! steps of a deployment arrive live over server-sent events, the log tail over a streamed
//! `fetch`. Nothing third-party is served and nothing needs Node to build.
//!
//! A page reads and writes through the API itself, called in-process with the viewer's
//! identity ([`wharf_api::auth::Authenticated`]): it shows exactly what the API would show that
//! viewer, and every form a page posts is decided by the same policy chain. Buttons for
//! actions the chain refuses the viewer are left out, and the API refuses them anyway.
//!
//! Signing in takes an API token and opens a server-side session ([`session`]): an
//! `HttpOnly`, `SameSite=Strict` cookie (`Secure` behind TLS) names it, it ends after an
//! idle time, an absolute lifetime, a sign-out, or when its token is revoked or expires.
//! Every form carries the session's CSRF token; every response carries a strict
//! Content-Security-Policy (no inline script or style) and `X-Frame-Options: DENY`.
//! Tokens never appear in a URL or a page.
//!
//! This crate must not read the store or decide an action itself: everything a page
//! shows or does goes through the API.

mod api;
mod layout;
mod pages;
mod session;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use wharf_api::AppState;

pub use session::SessionSettings;

/// What every page handler reaches.
#[derive(Clone)]
pub(crate) struct Ui {
    /// The API, called in-process.
    api: Router,
    /// The server's state: the policy chain, asked which actions to offer.
    state: AppState,
    /// The signed-in viewers.
    sessions: Arc<session::Sessions>,
}

/// The API and the web UI, ready to serve: `/api/v1/...` as [`wharf_api::router`] serves
/// it, the pages under `/ui/`, and `/` sending a browser to them.
pub fn router(state: AppState, settings: SessionSettings) -> Router {
    let api = wharf_api::router(state.clone());
    let ui = Ui {
        api: api.clone(),
        state,
        sessions: Arc::new(session::Sessions::new(settings)),
    };
    let pages = pages::router()
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(ui);
    api.merge(pages)
}

/// The headers every page and asset carries: a Content-Security-Policy that allows only
/// this origin's own script and stylesheet (nothing inline), no framing, no sniffing, no
/// referrer outside the origin, and pages never cached (they show live state).
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
