//! The apps the viewer may see, each with its environments at a glance: the deployed set,
//! whether its workloads are ready, the last deployment, who made it and when.

use super::{fail, items};
use crate::api::{self, enc};
use crate::layout::{self, PageResult, badge, page, short, text, time_ms};
use crate::session::Viewer;
use crate::{Ui, api::Problem};
use axum::extract::{Path, Query, State};
use futures_util::future::join_all;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

/// The most apps one page lists; the rest are on the next pages.
const PER_PAGE: usize = 50;

#[derive(Deserialize)]
pub(crate) struct Paging {
    #[serde(default)]
    after: Option<String>,
}

/// One environment's line: its id and type, and its status (null when it could not be
/// read: the viewer may see the environment but not its status, say).
async fn environments(ui: &Ui, viewer: &Viewer, app: &str) -> Result<Vec<(Value, Value)>, Problem> {
    let envs = api::get(ui, viewer, &format!("/apps/{}/envs", enc(app))).await?;
    let statuses = join_all(items(&envs).iter().map(|e| {
        let path = format!("/apps/{}/envs/{}/status", enc(app), enc(text(e, "id")));
        async move { api::get(ui, viewer, &path).await.unwrap_or(Value::Null) }
    }))
    .await;
    Ok(items(&envs).iter().cloned().zip(statuses).collect())
}

fn health(status: &Value) -> Markup {
    let workloads = items(&status["workloads"]);
    let ready = workloads.iter().filter(|w| w["ready"] == true).count();
    html! {
        @if status.is_null() {
            span class="quiet" { "unknown" }
        } @else if workloads.is_empty() {
            span class="quiet" { "nothing running" }
        } @else {
            (badge(if ready == workloads.len() { "ready" } else { "not ready" }))
            " " span class="count" { (ready) "/" (workloads.len()) " ready" }
        }
    }
}

fn env_rows(app: &str, envs: &[(Value, Value)]) -> Markup {
    html! {
        @if envs.is_empty() {
            p class="quiet" { "No environments yet: " code { "wharf envs create " (app) " dev --type development" } }
        } @else {
            table class="envs" {
                thead { tr {
                    th scope="col" { "Environment" } th scope="col" { "Type" }
                    th scope="col" { "Set" } th scope="col" { "Workloads" }
                    th scope="col" { "Last deployment" }
                } }
                tbody {
                    @for (env, status) in envs {
                        @let id = text(env, "id");
                        @let latest = &status["latest"];
                        tr {
                            th scope="row" {
                                a href={ "/ui/apps/" (enc(app)) "/envs/" (enc(id)) } { (id) }
                                @if env["state"] == "paused" { " " (badge("paused")) }
                                @if let Some(left) = env["expires_in"].as_i64() {
                                    " " span class="quiet" { "expires in " (wharf_core::duration::format_duration(left)) }
                                }
                            }
                            td { (text(env, "env_type")) }
                            td { @match status["set"].as_str() { Some(s) => code { (short(s)) }, None => span class="quiet" { "none" } } }
                            td { (health(status)) }
                            td {
                                @if latest.is_object() {
                                    a href={ "/ui/apps/" (enc(app)) "/envs/" (enc(id)) "/deployments/" (latest["id"]) } {
                                        "#" (latest["id"])
                                    }
                                    " " (badge(text(latest, "status")))
                                    " by " (text(latest, "created_by"))
                                    ", " time datetime=(time_ms(latest["created_at_ms"].as_i64().unwrap_or(0))) {
                                        (time_ms(latest["created_at_ms"].as_i64().unwrap_or(0)))
                                    }
                                } @else {
                                    span class="quiet" { "never deployed" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /ui/`: every app the viewer may see, with its environments.
pub(crate) async fn list(
    State(ui): State<Ui>,
    viewer: Viewer,
    Query(paging): Query<Paging>,
) -> PageResult {
    let mut path = format!("/apps?limit={PER_PAGE}");
    if let Some(after) = &paging.after {
        path.push_str(&format!("&after={}", enc(after)));
    }
    let listed = api::get(&ui, &viewer, &path).await;
    // A viewer who may not list apps still gets the page, saying why, with the way to an
    // app it may open.
    let (apps, refused) = match listed {
        Ok(apps) => (apps, None),
        Err(p) if p.status == axum::http::StatusCode::FORBIDDEN => (Value::Null, Some(p)),
        Err(p) => return Err(fail(&viewer)(p)),
    };
    let apps = items(&apps);
    let envs = join_all(
        apps.iter()
            .map(|a| environments(&ui, &viewer, text(a, "id"))),
    )
    .await;
    let body = html! {
        @if let Some(p) = &refused {
            p class="problem" role="alert" { "You may not list the apps: " (p.detail)
                ". Open an app you work on at /ui/apps/NAME." }
        } @else if apps.is_empty() {
            p { "No apps you may see yet. Create one with " code { "wharf apps create NAME" } "." }
        }
        @for (a, envs) in apps.iter().zip(&envs) {
            @let id = text(a, "id");
            section class="app" aria-labelledby={ "app-" (id) } {
                h2 id={ "app-" (id) } { a href={ "/ui/apps/" (enc(id)) } { (text(a, "name")) } }
                @match envs {
                    Ok(envs) => (env_rows(id, envs)),
                    Err(p) => p class="problem" { (p.detail) },
                }
            }
        }
        @if apps.len() == PER_PAGE {
            @if let Some(last) = apps.last() {
                p { a rel="next" href={ "/ui/?after=" (enc(text(last, "id"))) } { "More apps" } }
            }
        }
    };
    layout::ok(page("Apps", Some(&viewer), &[], body))
}

/// `GET /ui/apps/{app}`: one app and its environments.
pub(crate) async fn show(
    State(ui): State<Ui>,
    viewer: Viewer,
    Path(app): Path<String>,
) -> PageResult {
    let found = api::get(&ui, &viewer, &format!("/apps/{}", enc(&app)))
        .await
        .map_err(fail(&viewer))?;
    let envs = environments(&ui, &viewer, &app)
        .await
        .map_err(fail(&viewer))?;
    let body = html! {
        p class="meta" {
            "Created by " (text(&found, "created_by")) " on "
            (layout::time_s(found["created_at"].as_i64().unwrap_or(0)))
            @if found["deleting"] == true { " " (badge("deleting")) }
        }
        (env_rows(&app, &envs))
    };
    let crumbs = [("Apps", "/ui/".to_string())];
    layout::ok(page(text(&found, "name"), Some(&viewer), &crumbs, body))
}
