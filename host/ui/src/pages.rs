//! The pages, by what they show: signing in and out, the apps, an environment, a
//! deployment, and the platform as ops see it. Every URL can be shared and reloaded.

mod apps;
mod deployment;
mod env;
mod login;
mod platform;

use crate::Ui;
use crate::api::Problem;
use crate::layout;
use crate::session::Viewer;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::Value;
use wharf_api::authz::{Target, Verdict};

pub(crate) fn router() -> Router<Ui> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(apps::list))
        .route("/ui/login", get(login::form).post(login::sign_in))
        .route("/ui/logout", post(login::sign_out))
        .route("/ui/apps/{app}", get(apps::show))
        .route("/ui/apps/{app}/envs/{env}", get(env::show))
        .route("/ui/apps/{app}/envs/{env}/logs", get(env::logs))
        .route("/ui/apps/{app}/envs/{env}/diff", get(env::diff))
        .route("/ui/apps/{app}/envs/{env}/confirm", get(env::confirm))
        .route("/ui/apps/{app}/envs/{env}/deployments", post(env::deploy))
        .route(
            "/ui/apps/{app}/envs/{env}/deployments/{id}",
            get(deployment::show),
        )
        .route(
            "/ui/apps/{app}/envs/{env}/deployments/{id}/events",
            get(deployment::events),
        )
        .route("/ui/platform", get(platform::show))
        .route(
            "/ui/platform/installations/{installation}",
            post(platform::switch),
        )
        .route("/ui/audit", get(platform::audit))
        .route("/ui/assets/wharf.css", get(stylesheet))
        .route("/ui/assets/wharf.js", get(script))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("../assets/wharf.css"),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("../assets/wharf.js"),
    )
        .into_response()
}

/// Which of `actions` the policy chain allows `viewer`, in order: what a page offers.
/// A chain that fails offers nothing (the API would refuse anyway).
pub(crate) async fn allowed(ui: &Ui, viewer: &Viewer, actions: &[(&str, Target)]) -> Vec<bool> {
    match ui.state.policies.decide(&viewer.caller, actions).await {
        Ok(verdicts) => verdicts.iter().map(|v| *v == Verdict::Allow).collect(),
        Err(_) => vec![false; actions.len()],
    }
}

/// The target of an action on environment `env` of `app`.
pub(crate) fn env_target(app: &str, env: &str) -> Target {
    Target {
        app: Some(app.to_string()),
        env: Some(env.to_string()),
        ..Target::default()
    }
}

/// A problem as the page the viewer sees.
pub(crate) fn fail(viewer: &Viewer) -> impl Fn(Problem) -> layout::Failed + '_ {
    move |problem| layout::Failed(Box::new(layout::problem_page(Some(viewer), &problem)))
}

/// A form that did not carry the session's CSRF token: refused before anything is done.
pub(crate) fn forged(viewer: &Viewer) -> Response {
    layout::problem_page(
        Some(viewer),
        &Problem::new(
            StatusCode::FORBIDDEN,
            "The form was refused",
            "it did not carry this session's CSRF token: reload the page and send it again",
        ),
    )
}

/// A JSON array, or nothing.
pub(crate) fn items(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}
