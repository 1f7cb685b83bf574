//! An environment: its workloads and resources as they are, why anything is not ready,
//! the live tail of a workload's logs, its deployment history with the diff between any
//! two sets, and redeploying or rolling back (after a confirmation that names what
//! changes).

use super::{allowed, env_target, fail, forged, items};
use crate::Ui;
use crate::api::{self, Problem, enc};
use crate::layout::{self, PageResult, badge, csrf, page, short, text, time_ms};
use crate::session::Viewer;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

fn base(app: &str, env: &str) -> String {
    format!("/ui/apps/{}/envs/{}", enc(app), enc(env))
}

/// The way up from a page of environment `env`: the apps, the app, the environment.
fn env_crumbs<'a>(app: &'a str, env: &'a str) -> [(&'a str, String); 3] {
    [
        ("Apps", "/ui/".to_string()),
        (app, format!("/ui/apps/{}", enc(app))),
        (env, base(app, env)),
    ]
}

fn api_base(app: &str, env: &str) -> String {
    format!("/apps/{}/envs/{}", enc(app), enc(env))
}

fn workloads(status: &Value) -> Markup {
    html! {
        @if items(&status["workloads"]).is_empty() {
            p class="quiet" { "No workloads run here." }
        }
        @for w in items(&status["workloads"]) {
            article class="workload" aria-label={ "Workload " (text(w, "name")) } {
                h3 { (text(w, "name")) " " (badge(text(w, "state"))) }
                @if let Some(reason) = w["reason"].as_str() {
                    p class="reason" role="status" { (reason) }
                }
                @if !items(&w["endpoints"]).is_empty() {
                    p { "Endpoints: "
                        @for e in items(&w["endpoints"]) {
                            @let url = e.as_str().unwrap_or_default();
                            a class="endpoint" href=(url) rel="noopener" { (url) } " "
                        }
                    }
                }
                @if !items(&w["containers"]).is_empty() {
                    table class="containers" {
                        caption { "Containers and processes" }
                        thead { tr { th scope="col" { "Name" } th scope="col" { "State" } th scope="col" { "Restarts" } th scope="col" { "Detail" } } }
                        tbody {
                            @for c in items(&w["containers"]) {
                                tr {
                                    th scope="row" { (text(c, "name")) }
                                    td { (badge(text(c, "state"))) }
                                    td { (c["restarts"].as_i64().unwrap_or(0)) }
                                    td {
                                        @if let Some(pid) = c["pid"].as_i64() { "pid " (pid) " " }
                                        @if let Some(r) = c["reason"].as_str() { (r) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A resource's outputs: plain ones with their values, secret ones by name only.
pub(crate) fn outputs(r: &Value) -> Markup {
    html! {
        dl class="outputs" {
            @if let Some(values) = r["outputs"].as_object() {
                @for (k, v) in values {
                    dt { (k) }
                    dd { code { @match v.as_str() { Some(s) => (s), None => (v.to_string()) } } }
                }
            }
            @for name in items(&r["secret_outputs"]) {
                dt { (name.as_str().unwrap_or_default()) }
                dd class="secret" { "secret (not shown)" }
            }
        }
    }
}

fn resources(status: &Value) -> Markup {
    html! {
        @if items(&status["resources"]).is_empty() {
            p class="quiet" { "No resources." }
        } @else {
            table class="resources" {
                thead { tr {
                    th scope="col" { "Resource" } th scope="col" { "State" }
                    th scope="col" { "Definition" } th scope="col" { "Driver" } th scope="col" { "Outputs" }
                } }
                tbody {
                    @for r in items(&status["resources"]) {
                        tr {
                            th scope="row" { code { (text(r, "uid")) } }
                            td { (badge(text(r, "status")))
                                @if let Some(m) = r["message"].as_str().filter(|m| !m.is_empty()) { p class="reason" { (m) } } }
                            td { (text(r, "definition")) }
                            td { (text(r, "driver")) }
                            td { (outputs(r)) }
                        }
                    }
                }
            }
        }
    }
}

fn history(
    app: &str,
    env: &str,
    deployments: &[Value],
    current: Option<i64>,
    may_deploy: bool,
) -> Markup {
    let base = base(app, env);
    html! {
        form class="diff" method="get" action={ (base) "/diff" } {
            table class="history" {
                caption { "Deployments, newest first. Pick two to compare their sets." }
                thead { tr {
                    th scope="col" { "From" } th scope="col" { "To" } th scope="col" { "Deployment" }
                    th scope="col" { "State" } th scope="col" { "Set" } th scope="col" { "By, when" }
                    @if may_deploy { th scope="col" { "Action" } }
                } }
                tbody {
                    @for (i, d) in deployments.iter().enumerate() {
                        @let id = d["id"].as_i64().unwrap_or(0);
                        tr {
                            td { input type="radio" name="from" value=(id) checked[i == 1] aria-label={ "Compare from deployment " (id) }; }
                            td { input type="radio" name="to" value=(id) checked[i == 0] aria-label={ "Compare to deployment " (id) }; }
                            th scope="row" {
                                a href={ (base) "/deployments/" (id) } { "#" (id) }
                                " " (text(d, "kind"))
                                @if Some(id) == current { " " span class="current" { "(serving)" } }
                            }
                            td { (badge(text(d, "status"))) }
                            td { code { (short(text(d, "set"))) } }
                            td { (text(d, "created_by")) ", " (time_ms(d["created_at_ms"].as_i64().unwrap_or(0))) }
                            @if may_deploy {
                                td {
                                    @if text(d, "kind") == "deploy" && Some(id) != current {
                                        a class="button" href={ (base) "/confirm?to=" (id) } { "Roll back to #" (id) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if deployments.len() > 1 { button type="submit" { "Compare sets" } }
        }
    }
}

fn log_tail(app: &str, env: &str, status: &Value) -> Markup {
    html! {
        form class="logs" data-logs={ (base(app, env)) "/logs" } {
            label for="log-workload" { "Workload" }
            select id="log-workload" name="workload" {
                @for w in items(&status["workloads"]) {
                    option value=(text(w, "name")) { (text(w, "name")) }
                }
            }
            button type="submit" { "Tail the logs" }
            button type="button" class="stop" disabled { "Stop" }
        }
        pre class="log" id="log" aria-live="polite" aria-label="Log lines" tabindex="0" {}
    }
}

/// `GET /ui/apps/{app}/envs/{env}`.
pub(crate) async fn show(
    State(ui): State<Ui>,
    viewer: Viewer,
    Path((app, env)): Path<(String, String)>,
) -> PageResult {
    let api = api_base(&app, &env);
    let status = api::get(&ui, &viewer, &format!("{api}/status"))
        .await
        .map_err(fail(&viewer))?;
    let deployments = api::get(&ui, &viewer, &format!("{api}/deployments?limit=50"))
        .await
        .unwrap_or(Value::Null);
    let target = || env_target(&app, &env);
    let may = allowed(
        &ui,
        &viewer,
        &[("deployments.create", target()), ("logs.read", target())],
    )
    .await;
    let current = status["current"].as_i64();
    let body = html! {
        p class="meta" {
            "Type " strong { (text(&status, "env_type")) } ", target " strong { (text(&status, "target")) }
            @if let Some(set) = status["set"].as_str() { ", set " code { (short(set)) } }
            @if let Some(c) = current { ", serving deployment " a href={ (base(&app, &env)) "/deployments/" (c) } { "#" (c) } }
            @if status["deleting"] == true { " " (badge("deleting")) }
            @if status["state"] == "paused" {
                " " (badge("paused")) " by " (text(&status, "paused_by"))
                ": its workloads are stopped, its resources kept (" code { "wharf envs resume " (app) " " (env) } ")"
            }
            @if let Some(at) = status["expires_at"].as_i64() {
                ", a preview that expires " time datetime=(crate::layout::time_s(at)) { (crate::layout::time_s(at)) }
            }
        }
        @if may[0] && current.is_some() {
            p { a class="button" href={ (base(&app, &env)) "/confirm?redeploy=1" } { "Redeploy the current set" } }
        }
        section aria-labelledby="workloads" { h2 id="workloads" { "Workloads" } (workloads(&status)) }
        section aria-labelledby="resources" { h2 id="resources" { "Resources" } (resources(&status)) }
        @if may[1] && !items(&status["workloads"]).is_empty() {
            section aria-labelledby="logs" { h2 id="logs" { "Logs" } (log_tail(&app, &env, &status)) }
        }
        section aria-labelledby="history" {
            h2 id="history" { "History" }
            (history(&app, &env, items(&deployments), current, may[0]))
        }
    };
    let crumbs = [
        ("Apps", "/ui/".to_string()),
        (app.as_str(), format!("/ui/apps/{}", enc(&app))),
    ];
    let title = format!("{app} / {env}");
    layout::ok(page(&title, Some(&viewer), &crumbs, body))
}

#[derive(Deserialize)]
pub(crate) struct LogQuery {
    #[serde(default)]
    workload: Option<String>,
    #[serde(default)]
    follow: bool,
}

/// `GET /ui/apps/{app}/envs/{env}/logs`: the API's log lines as they come (the page's
/// script reads them with a streamed fetch).
pub(crate) async fn logs(
    State(ui): State<Ui>,
    viewer: Viewer,
    Path((app, env)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> Response {
    let mut path = format!("{}/logs?tail=200&follow={}", api_base(&app, &env), q.follow);
    if let Some(w) = &q.workload {
        path.push_str(&format!("&workload={}", enc(w)));
    }
    api::forward(&ui, &viewer, &path).await
}

#[derive(Deserialize)]
pub(crate) struct Pair {
    #[serde(default)]
    from: Option<i64>,
    #[serde(default)]
    to: Option<i64>,
    #[serde(default)]
    redeploy: Option<u8>,
}

/// The deployment `n` of the environment, or its problem.
async fn deployment(
    ui: &Ui,
    viewer: &Viewer,
    app: &str,
    env: &str,
    n: i64,
) -> Result<Value, Problem> {
    api::get(
        ui,
        viewer,
        &format!("{}/deployments/{n}", api_base(app, env)),
    )
    .await
}

/// The JSON Patch from the set of deployment `from` to that of `to`.
async fn set_diff(
    ui: &Ui,
    viewer: &Viewer,
    app: &str,
    from: &str,
    to: &str,
) -> Result<Value, Problem> {
    if from == to {
        return Ok(json!([]));
    }
    let path = format!("/apps/{}/sets/{}/diff?to={}", enc(app), enc(from), enc(to));
    api::get(ui, viewer, &path).await
}

fn patch(diff: &Value) -> Markup {
    html! {
        @if items(diff).is_empty() {
            p { "The sets are the same." }
        } @else {
            table class="patch" {
                caption { "What changes, as JSON Patch operations on the set" }
                thead { tr { th scope="col" { "Operation" } th scope="col" { "Path" } th scope="col" { "Value" } } }
                tbody {
                    @for op in items(diff) {
                        tr {
                            td { (text(op, "op")) }
                            td { code { (text(op, "path")) } }
                            td { @if let Some(v) = op.get("value") { code class="value" { (v.to_string()) } } }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /ui/apps/{app}/envs/{env}/diff?from=N&to=M`: what changes between two sets.
pub(crate) async fn diff(
    State(ui): State<Ui>,
    viewer: Viewer,
    Path((app, env)): Path<(String, String)>,
    Query(q): Query<Pair>,
) -> PageResult {
    let pick = |n: Option<i64>| {
        n.ok_or_else(|| {
            fail(&viewer)(Problem::new(
                StatusCode::BAD_REQUEST,
                "Two deployments are needed",
                "pick a deployment to compare from and one to compare to",
            ))
        })
    };
    let (from, to) = (pick(q.from)?, pick(q.to)?);
    let a = deployment(&ui, &viewer, &app, &env, from)
        .await
        .map_err(fail(&viewer))?;
    let b = deployment(&ui, &viewer, &app, &env, to)
        .await
        .map_err(fail(&viewer))?;
    let d = set_diff(&ui, &viewer, &app, text(&a, "set"), text(&b, "set"))
        .await
        .map_err(fail(&viewer))?;
    let body = html! {
        p { "From deployment #" (from) " (set " code { (short(text(&a, "set"))) } ") to #" (to)
            " (set " code { (short(text(&b, "set"))) } ")." }
        (patch(&d))
    };
    let crumbs = env_crumbs(&app, &env);
    layout::ok(page("Compare sets", Some(&viewer), &crumbs, body))
}

/// `GET /ui/apps/{app}/envs/{env}/confirm?to=N` (or `?redeploy=1`): what a rollback (or a
/// redeploy) changes, and the button that does it.
pub(crate) async fn confirm(
    State(ui): State<Ui>,
    viewer: Viewer,
    Path((app, env)): Path<(String, String)>,
    Query(q): Query<Pair>,
) -> PageResult {
    let status = api::get(&ui, &viewer, &format!("{}/status", api_base(&app, &env)))
        .await
        .map_err(fail(&viewer))?;
    let current_set = text(&status, "set").to_string();
    let (title, target_set, action, to) = match (q.to, q.redeploy) {
        (Some(n), _) => {
            let d = deployment(&ui, &viewer, &app, &env, n)
                .await
                .map_err(fail(&viewer))?;
            (
                format!("Roll back to deployment #{n}"),
                text(&d, "set").to_string(),
                "rollback",
                Some(n),
            )
        }
        (None, Some(_)) => (
            "Redeploy the current set".to_string(),
            current_set.clone(),
            "redeploy",
            None,
        ),
        (None, None) => {
            return Err(fail(&viewer)(Problem::new(
                StatusCode::BAD_REQUEST,
                "Nothing to confirm",
                "say which deployment to roll back to (to=N) or redeploy=1",
            )));
        }
    };
    let d = if current_set.is_empty() {
        json!([])
    } else {
        set_diff(&ui, &viewer, &app, &current_set, &target_set)
            .await
            .map_err(fail(&viewer))?
    };
    let body = html! {
        p { "Environment " strong { (app) " / " (env) } " now runs set " code { (short(&current_set)) }
            "; this deploys set " code { (short(&target_set)) } "." }
        (patch(&d))
        form method="post" action={ (base(&app, &env)) "/deployments" } {
            (csrf(&viewer))
            input type="hidden" name="action" value=(action);
            @if let Some(n) = to { input type="hidden" name="to" value=(n); }
            label for="comment" { "Why (kept with the deployment)" }
            input id="comment" name="comment" type="text" maxlength="500";
            button type="submit" class="primary" { (title) }
            " " a href=(base(&app, &env)) { "Cancel" }
        }
    };
    let crumbs = env_crumbs(&app, &env);
    layout::ok(page(&title, Some(&viewer), &crumbs, body))
}

#[derive(Deserialize)]
pub(crate) struct DeployForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    to: Option<i64>,
    #[serde(default)]
    comment: String,
}

/// `POST /ui/apps/{app}/envs/{env}/deployments`: redeploys or rolls back, through the
/// API; the browser goes to the new deployment's page.
pub(crate) async fn deploy(
    State(ui): State<Ui>,
    viewer: Viewer,
    Path((app, env)): Path<(String, String)>,
    Form(form): Form<DeployForm>,
) -> Response {
    if !viewer.csrf_matches(&form.csrf) {
        return forged(&viewer);
    }
    let api = api_base(&app, &env);
    let body = match (form.action.as_str(), form.to) {
        ("rollback", Some(n)) => json!({ "rollback_to": n, "comment": form.comment }),
        ("redeploy", _) => match api::get(&ui, &viewer, &format!("{api}/status")).await {
            Ok(status) => json!({ "set": status["set"], "comment": form.comment }),
            Err(p) => return fail(&viewer)(p).into_response(),
        },
        _ => {
            return fail(&viewer)(Problem::new(
                StatusCode::BAD_REQUEST,
                "Unknown action",
                "the form asks for `redeploy`, or `rollback` with `to`",
            ))
            .into_response();
        }
    };
    match api::call(
        &ui,
        &viewer,
        Method::POST,
        &format!("{api}/deployments"),
        Some(&body),
    )
    .await
    {
        Ok(d) => {
            Redirect::to(&format!("{}/deployments/{}", base(&app, &env), d["id"])).into_response()
        }
        Err(p) => fail(&viewer)(p).into_response(),
    }
}
