//! A deployment: its steps (live, over server-sent events, while it runs), each
//! resource's progress, the error with its step and scope, and the resource graph drawn
//! as SVG on the server, colored by state (a node links to its outputs below).

use super::{fail, items};
use crate::Ui;
use crate::api::{self, enc};
use crate::layout::{self, PageResult, badge, page, short, text, time_ms};
use crate::session::Viewer;
use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;
use std::collections::BTreeMap;

fn steps(d: &Value) -> Markup {
    html! {
        table class="steps" id="steps" {
            caption { "Steps" }
            thead { tr { th scope="col" { "Step" } th scope="col" { "State" } th scope="col" { "Took" } th scope="col" { "Detail" } } }
            tbody {
                @for s in items(&d["steps"]) {
                    tr data-step=(text(s, "name")) {
                        th scope="row" { (text(s, "name")) }
                        td class="state" { (badge(text(s, "status"))) }
                        td class="took" { @if let Some(ms) = s["duration_ms"].as_i64() { (ms) " ms" } }
                        td class="detail" {
                            @if let Some(e) = s.get("error").filter(|e| e.is_object()) {
                                span class="reason" { (text(e, "scope")) " " (text(e, "object")) ": " (text(e, "message")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A resource of the graph: its uid, its type, the workloads that declare it.
type Node = (String, String, Vec<String>);

/// The graph's nodes: each workload of the set, and each resource with the workloads that
/// declare it, as `(uid, type, declared by)`.
fn graph_of(set: &Value) -> (Vec<String>, Vec<Node>) {
    let mut workloads = Vec::new();
    let mut resources: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    if let Some(all) = set["workloads"].as_object() {
        for (name, w) in all {
            workloads.push(name.clone());
            for (res, r) in w["resources"].as_object().into_iter().flatten() {
                let res_type = text(r, "type").to_string();
                let class = r["class"].as_str().unwrap_or("default");
                let id = r["id"]
                    .as_str()
                    .map_or(format!("{name}.{res}"), str::to_string);
                let uid = format!("{res_type}.{class}#{id}");
                let entry = resources.entry(uid).or_insert((res_type, Vec::new()));
                entry.1.push(name.clone());
            }
        }
    }
    let resources = resources
        .into_iter()
        .map(|(uid, (t, by))| (uid, t, by))
        .collect();
    (workloads, resources)
}

/// The resource graph as SVG: workloads on the left, their resources on the right, an
/// edge for each declaration; each node colored by its state and linked to its details.
fn graph(set: &Value, states: &BTreeMap<String, String>) -> Markup {
    let (workloads, resources) = graph_of(set);
    let rows = workloads.len().max(resources.len()).max(1);
    let (w, h, row) = (720, 24 + rows * 56, 56);
    let y = |i: usize| 24 + i * row;
    let workload_y: BTreeMap<&str, usize> = workloads
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), y(i)))
        .collect();
    let tone = |state: &str| match state {
        "done" | "ready" => "good",
        "failed" => "bad",
        "" => "quiet",
        _ => "busy",
    };
    html! {
        figure class="graph" {
            svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (w) " " (h) }
                aria-labelledby="graph-title" {
                title id="graph-title" { "The resource graph: workloads and the resources they use" }
                @for (i, (_, _, by)) in resources.iter().enumerate() {
                    @for name in by {
                        @if let Some(wy) = workload_y.get(name.as_str()) {
                            path class="edge" d={ "M 220 " (wy + 18) " C 320 " (wy + 18) ", 380 " (y(i) + 18) ", 460 " (y(i) + 18) } {}
                        }
                    }
                }
                @for (i, name) in workloads.iter().enumerate() {
                    a href={ "#workload-" (name) } {
                        rect class="node workload" x="20" y=(y(i)) width="200" height="36" rx="6" {}
                        text x="32" y=(y(i) + 23) { (name) }
                    }
                }
                @for (i, (uid, res_type, _)) in resources.iter().enumerate() {
                    @let state = states.get(uid).map_or("", String::as_str);
                    a href={ "#res-" (anchor(uid)) } {
                        rect class={ "node resource " (tone(state)) } x="460" y=(y(i)) width="240" height="36" rx="6" {}
                        text x="472" y=(y(i) + 23) { (res_type) " · " (uid.rsplit('#').next().unwrap_or_default()) }
                    }
                }
            }
            figcaption { "Workloads (left) and the resources they declare (right), colored by state." }
        }
    }
}

/// An id usable as a URL fragment for a resource uid.
fn anchor(uid: &str) -> String {
    uid.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `GET /ui/apps/{app}/envs/{env}/deployments/{id}`.
pub(crate) async fn show(
    State(ui): State<Ui>,
    viewer: Viewer,
    Path((app, env, id)): Path<(String, String, String)>,
) -> PageResult {
    let api_env = format!("/apps/{}/envs/{}", enc(&app), enc(&env));
    let d = api::get(&ui, &viewer, &format!("{api_env}/deployments/{}", enc(&id)))
        .await
        .map_err(fail(&viewer))?;
    let set = api::get(
        &ui,
        &viewer,
        &format!("/apps/{}/sets/{}", enc(&app), enc(text(&d, "set"))),
    )
    .await
    .unwrap_or(Value::Null);
    let status = api::get(&ui, &viewer, &format!("{api_env}/status"))
        .await
        .unwrap_or(Value::Null);
    let states: BTreeMap<String, String> = items(&status["resources"])
        .iter()
        .map(|r| (text(r, "uid").to_string(), text(r, "status").to_string()))
        .collect();
    let live = matches!(text(&d, "status"), "queued" | "running");
    let events = format!(
        "/ui/apps/{}/envs/{}/deployments/{}/events",
        enc(&app),
        enc(&env),
        enc(&id)
    );
    let body = html! {
        div class="deployment" data-events=[live.then_some(events.as_str())] {
            p class="meta" {
                (text(&d, "kind")) " of set " code { (short(text(&d, "set"))) }
                " by " (text(&d, "created_by")) ", " (time_ms(d["created_at_ms"].as_i64().unwrap_or(0)))
                @if !text(&d, "comment").is_empty() { ": " q { (text(&d, "comment")) } }
            }
            p class="status" { "State: " span id="deployment-status" role="status" aria-live="polite" { (badge(text(&d, "status"))) } }
            @if let Some(e) = d.get("error").filter(|e| e.is_object()) {
                p class="problem" role="alert" id="deployment-error" {
                    "Failed at " strong { (text(e, "step")) } " (" (text(e, "scope")) " " (text(e, "object")) "): " (text(e, "message"))
                }
            } @else {
                p class="problem" role="alert" id="deployment-error" hidden {}
            }
            (steps(&d))
            ul class="progress" id="resource-progress" aria-label="Resources as their drivers answer" {}
        }
        @if set.is_object() {
            section aria-labelledby="graph" {
                h2 id="graph" { "Resource graph" }
                (graph(&set, &states))
                @for r in items(&status["resources"]) {
                    section class="node-detail" id={ "res-" (anchor(text(r, "uid"))) } aria-label={ "Resource " (text(r, "uid")) } {
                        h3 { code { (text(r, "uid")) } " " (badge(text(r, "status"))) }
                        p { "Definition " (text(r, "definition")) ", driver " (text(r, "driver")) }
                        (super::env::outputs(r))
                    }
                }
                @for name in set["workloads"].as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
                    section class="node-detail" id={ "workload-" (name) } aria-label={ "Workload " (name) } {
                        h3 { (name) }
                        @for w in items(&status["workloads"]).iter().filter(|w| text(w, "name") == name) {
                            p { (badge(text(w, "state"))) @if let Some(r) = w["reason"].as_str() { " " (r) } }
                        }
                    }
                }
            }
        }
    };
    let crumbs = [
        ("Apps", "/ui/".to_string()),
        (app.as_str(), format!("/ui/apps/{}", enc(&app))),
        (
            env.as_str(),
            format!("/ui/apps/{}/envs/{}", enc(&app), enc(&env)),
        ),
    ];
    let title = format!("Deployment #{id} of {app}/{env}");
    layout::ok(page(&title, Some(&viewer), &crumbs, body))
}

/// `GET .../deployments/{id}/events`: the API's server-sent events, as they come.
pub(crate) async fn events(
    State(ui): State<Ui>,
    viewer: Viewer,
    Path((app, env, id)): Path<(String, String, String)>,
) -> Response {
    let path = format!(
        "/apps/{}/envs/{}/deployments/{}/events",
        enc(&app),
        enc(&env),
        enc(&id)
    );
    api::forward(&ui, &viewer, &path).await
}
