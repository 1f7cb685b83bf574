//! The platform as ops see it: environment types and their targets, resource types and
//! definitions (with the match explainer: which definition would an app's environment get
//! for a resource type, and why), plugin installations (grants, configuration with its
//! secrets by name, state, order in the chain), role bindings, and the audit log with
//! filters. Each part shows what the viewer may read; what it may not is said, not hidden
//! behind an error.

use super::{fail, items};
use crate::Ui;
use crate::api::{self, Problem, enc};
use crate::layout::{self, PageResult, badge, csrf, page, text, time_s};
use crate::session::Viewer;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

fn refused(what: &str, p: &Problem) -> Markup {
    html! { p class="quiet" { "You may not see the " (what) ": " (p.detail) } }
}

fn env_types(list: &[Value]) -> Markup {
    html! {
        table { thead { tr { th scope="col" { "Type" } th scope="col" { "Target" } th scope="col" { "Transformers" } th scope="col" { "Description" } } }
            tbody { @for t in list { tr {
                th scope="row" { (text(t, "id")) }
                td { code { (t["target"].to_string()) } }
                td { @for x in items(&t["transformers"]) { code { (x.as_str().unwrap_or_default()) } " " } }
                td { (text(t, "description")) }
            } } }
        }
    }
}

fn definitions(list: &[Value]) -> Markup {
    html! {
        table { thead { tr { th scope="col" { "Definition" } th scope="col" { "Type" } th scope="col" { "Driver" } th scope="col" { "Criteria" } th scope="col" { "Inputs" } } }
            tbody { @for d in list { tr {
                th scope="row" { (text(d, "id")) " " span class="quiet" { "v" (d["version"]) } }
                td { (text(d, "type")) }
                td { (text(d, "driver")) }
                td { code { (d["criteria"].to_string()) } }
                td {
                    code { (d["driver_values"].to_string()) }
                    @for k in items(&d["driver_secret_keys"]) { " " span class="secret" { (k.as_str().unwrap_or_default()) ": secret" } }
                }
            } } }
        }
    }
}

fn installations(list: &[Value], switch: Option<&Viewer>) -> Markup {
    let mut sorted: Vec<&Value> = list.iter().collect();
    sorted.sort_by_key(|i| {
        (
            text(i, "kind").to_string(),
            i["position"].as_i64().unwrap_or(0),
        )
    });
    html! {
        table { thead { tr { th scope="col" { "Installation" } th scope="col" { "Plugin" } th scope="col" { "Kind" } th scope="col" { "Order" } th scope="col" { "State" } th scope="col" { "Grants" } th scope="col" { "Configuration" }
                @if switch.is_some() { th scope="col" { "Action" } } } }
            tbody { @for i in sorted { tr {
                th scope="row" { (text(i, "id")) }
                td { (text(i, "plugin")) }
                td { (text(i, "kind")) }
                td { (i["position"]) }
                td { (badge(if i["enabled"] == true { "enabled" } else { "disabled" })) }
                td { code { (i["grants"].to_string()) } }
                td {
                    code { (i["config"]["values"].to_string()) }
                    @for k in items(&i["config"]["secret_keys"]) { " " span class="secret" { (k.as_str().unwrap_or_default()) ": secret" } }
                }
                @if let Some(viewer) = switch {
                    @let enabled = i["enabled"] == true;
                    td {
                        form method="post" action={ "/ui/platform/installations/" (enc(text(i, "id"))) } {
                            (csrf(viewer))
                            input type="hidden" name="revision" value=(i["revision"]);
                            input type="hidden" name="enabled" value=(!enabled);
                            button type="submit" { (if enabled { "Disable " } else { "Enable " }) (text(i, "id")) }
                        }
                    }
                }
            } } }
        }
    }
}

fn plugin_list(list: &[Value]) -> Markup {
    html! {
        table { thead { tr { th scope="col" { "Plugin" } th scope="col" { "Kind" } th scope="col" { "Version" } th scope="col" { "Contract" } th scope="col" { "Description" } th scope="col" { "Digest" } } }
            tbody { @for p in list { tr {
                th scope="row" { (text(p, "id")) }
                td { (text(p, "kind")) }
                td { (text(p, "version")) }
                td { code { (text(p, "world")) } }
                td { (text(p, "description")) }
                td { code { (layout::short(text(p, "digest"))) } }
            } } }
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct Explain {
    #[serde(default, rename = "type")]
    res_type: Option<String>,
    #[serde(default)]
    app: Option<String>,
    #[serde(default)]
    env: Option<String>,
}

fn explainer(q: &Explain, answer: Option<&Result<Value, Problem>>) -> Markup {
    let field = |v: &Option<String>| v.clone().unwrap_or_default();
    html! {
        form class="explain" method="get" action="/ui/platform" {
            fieldset {
                legend { "Which definition would an environment get?" }
                label for="m-type" { "Resource type" }
                input id="m-type" name="type" value=(field(&q.res_type)) required;
                label for="m-app" { "App" }
                input id="m-app" name="app" value=(field(&q.app)) required;
                label for="m-env" { "Environment" }
                input id="m-env" name="env" value=(field(&q.env)) required;
                button type="submit" { "Explain" }
            }
        }
        @match answer {
            Some(Ok(m)) => p class="answer" role="status" {
                "Definition " strong { (text(m, "definition")) } " (version " (m["version"]) "): " (text(m, "reason"))
            },
            Some(Err(p)) => p class="problem" role="alert" { (p.detail) },
            None => {}
        }
    }
}

/// `GET /ui/platform`.
pub(crate) async fn show(
    State(ui): State<Ui>,
    viewer: Viewer,
    Query(q): Query<Explain>,
) -> PageResult {
    let read = |path: &'static str| api::get(&ui, &viewer, path);
    let (types, res_types, defs, installed, plugins, users) = futures_util::join!(
        read("/env-types"),
        read("/resource-types"),
        read("/resource-definitions"),
        read("/plugin-installations"),
        read("/plugins"),
        read("/users"),
    );
    let mut bindings = Vec::new();
    if let Ok(users) = &users {
        for u in items(users) {
            let path = format!("/users/{}/role-bindings", enc(text(u, "id")));
            if let Ok(b) = api::get(&ui, &viewer, &path).await {
                bindings.extend(items(&b).iter().cloned());
            }
        }
    }
    let may_switch =
        super::allowed(&ui, &viewer, &[("plugins.update", Default::default())]).await[0];
    let answer = match (&q.res_type, &q.app, &q.env) {
        (Some(t), Some(a), Some(e)) => Some(
            api::call(
                &ui,
                &viewer,
                Method::POST,
                "/resource-definitions/match",
                Some(&json!({ "type": t, "app": a, "env": e })),
            )
            .await,
        ),
        _ => None,
    };
    let body = html! {
        section aria-labelledby="env-types" { h2 id="env-types" { "Environment types" }
            @match &types { Ok(t) => (env_types(items(t))), Err(p) => (refused("environment types", p)) } }
        section aria-labelledby="res-types" { h2 id="res-types" { "Resource types" }
            @match &res_types {
                Ok(t) => ul { @for r in items(t) { li { strong { (text(r, "id")) } " " (text(r, "description")) } } },
                Err(p) => (refused("resource types", p)),
            } }
        section aria-labelledby="definitions" { h2 id="definitions" { "Resource definitions" }
            (explainer(&q, answer.as_ref()))
            @match &defs { Ok(d) => (definitions(items(d))), Err(p) => (refused("resource definitions", p)) } }
        section aria-labelledby="plugins" { h2 id="plugins" { "Plugin installations" }
            @match &installed {
                Ok(i) => (installations(items(i), may_switch.then_some(&viewer))),
                Err(p) => (refused("plugin installations", p)),
            } }
        section aria-labelledby="components" { h2 id="components" { "Plugins" }
            @match &plugins {
                Ok(p) => (plugin_list(items(p))),
                Err(p) => (refused("plugins", p)),
            } }
        section aria-labelledby="bindings" { h2 id="bindings" { "Role bindings" }
            @match &users {
                Ok(_) => table { thead { tr { th scope="col" { "Principal" } th scope="col" { "Scope" } th scope="col" { "Role" } } }
                    tbody { @for b in &bindings { tr {
                        th scope="row" { (text(b, "principal")) }
                        td { (text(&b["scope"], "kind")) @if let Some(id) = b["scope"]["id"].as_str() { " " (id) } }
                        td { (text(b, "role")) }
                    } } } },
                Err(p) => (refused("role bindings", p)),
            } }
    };
    layout::ok(page("Platform", Some(&viewer), &[], body))
}

#[derive(Deserialize)]
pub(crate) struct Switch {
    #[serde(default)]
    csrf: String,
    revision: i64,
    enabled: bool,
}

/// `POST /ui/platform/installations/{installation}`: enables or disables an installation
/// (only if nobody changed it since the page was read).
pub(crate) async fn switch(
    State(ui): State<Ui>,
    viewer: Viewer,
    Path(installation): Path<String>,
    Form(form): Form<Switch>,
) -> Response {
    if !viewer.csrf_matches(&form.csrf) {
        return super::forged(&viewer);
    }
    let path = format!("/plugin-installations/{}", enc(&installation));
    let body = json!({ "enabled": form.enabled });
    match api::patch_at(&ui, &viewer, &path, &body, form.revision).await {
        Ok(_) => Redirect::to("/ui/platform#plugins").into_response(),
        Err(p) => fail(&viewer)(p).into_response(),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct AuditFilter {
    #[serde(default)]
    principal: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    target: Option<String>,
}

/// `GET /ui/audit`: the audit log, newest last, with filters.
pub(crate) async fn audit(
    State(ui): State<Ui>,
    viewer: Viewer,
    Query(f): Query<AuditFilter>,
) -> PageResult {
    let mut path = "/audit?limit=200".to_string();
    for (key, value) in [
        ("principal", &f.principal),
        ("action", &f.action),
        ("target", &f.target),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            path.push_str(&format!("&{key}={}", enc(v)));
        }
    }
    let events = api::get(&ui, &viewer, &path).await.map_err(fail(&viewer))?;
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let body = html! {
        form class="filters" method="get" action="/ui/audit" {
            fieldset { legend { "Filter" }
                label for="f-principal" { "Principal" } input id="f-principal" name="principal" value=(value(&f.principal));
                label for="f-action" { "Action" } input id="f-action" name="action" value=(value(&f.action)) placeholder="apps. or deployments.create";
                label for="f-target" { "Target" } input id="f-target" name="target" value=(value(&f.target)) placeholder="env:shop/";
                button type="submit" { "Filter" }
            }
        }
        table class="audit" {
            thead { tr { th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Principal" } th scope="col" { "Action" } th scope="col" { "Target" } th scope="col" { "Detail" } } }
            tbody { @for e in items(&events) { tr {
                td { (e["seq"]) }
                td { (time_s(e["at"].as_i64().unwrap_or(0))) }
                td { (text(e, "principal")) }
                th scope="row" { (text(e, "action")) }
                td { (text(e, "target")) }
                td { code class="value" { (e["detail"].to_string()) } }
            } } }
        }
    };
    layout::ok(page("Audit log", Some(&viewer), &[], body))
}
