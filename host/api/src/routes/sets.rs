//! `/apps/{app}/sets`: deployment sets, immutable and content-addressed; deltas (JSON
//! Patch) make new sets; diffs compare two.

use crate::auth::Caller;
use crate::authz::Target;
use crate::routes::{MAX_DOCUMENTS_BODY, Page, PageQuery, Unread, audit, blocking, id, page};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wharf_core::clock::now;
use wharf_core::score::{self, Problem};
use wharf_core::set::Set;
use wharf_store::{apps, sets};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show))
        .routes(routes!(delta))
        .routes(routes!(diff))
}

fn app_target(app: &str) -> Target {
    Target {
        app: Some(app.to_string()),
        ..Target::default()
    }
}

/// A set in a list.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SetSummary {
    /// Its content address (sha256 of its canonical JSON).
    id: String,
    /// The names of its workloads.
    workloads: Vec<String>,
    created_at: i64,
    created_by: String,
}

/// A whole set.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SetView {
    id: String,
    /// Workloads by name, as validated Score documents.
    #[schema(value_type = Object)]
    workloads: Value,
    created_at: i64,
    created_by: String,
}

fn summary(s: &sets::StoredSet) -> SetSummary {
    SetSummary {
        id: s.id.clone(),
        workloads: s.body["workloads"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        created_at: s.created_at,
        created_by: s.created_by.clone(),
    }
}

fn view(s: sets::StoredSet) -> SetView {
    SetView {
        id: s.id,
        workloads: s.body["workloads"].clone(),
        created_at: s.created_at,
        created_by: s.created_by,
    }
}

/// Lists an app's sets, oldest first.
#[utoipa::path(get, path = "/apps/{app}/sets", operation_id = "listSets", tag = "sets",
    params(("app" = String, Path, description = "The app's id"), PageQuery),
    responses((status = 200, description = "The app's sets", body = [SetSummary])))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Page<SetSummary>, ApiError> {
    let app_id = id(&app, "app")?;
    state
        .policies
        .authorize(&caller, "sets.list", app_target(&app))
        .await?;
    let found = state
        .store
        .call(move |conn| {
            Ok(match apps::get(conn, app_id.as_str())? {
                Some(_) => Some(sets::list(conn, app_id.as_str())?),
                None => None,
            })
        })
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("app {app}")))?;
    let mut summaries: Vec<SetSummary> = found.iter().map(summary).collect();
    summaries.sort_by(|a, b| a.id.cmp(&b.id));
    page(
        summaries,
        |s| s.id.clone(),
        &query,
        &format!("/api/v1/apps/{app}/sets"),
    )
}

/// The body of `POST /apps/{app}/sets`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewSet {
    /// The workloads: each a Score document, as a JSON object or as YAML text.
    #[schema(value_type = Vec<Object>)]
    workloads: Vec<Value>,
}

/// Parses and validates Score documents (JSON objects or YAML text) into a set; a 400
/// lists every problem of every document, with its path (`/workloads/I/...`).
pub(crate) fn parse(documents: Vec<Value>) -> Result<Set, ApiError> {
    if documents.is_empty() {
        return Err(ApiError::BadRequest(
            "workloads: give at least one Score document".into(),
        ));
    }
    let mut workloads = Vec::new();
    let mut problems = Vec::new();
    for (i, doc) in documents.into_iter().enumerate() {
        let loaded = match doc {
            Value::String(text) => score::load(&text),
            other => score::from_value(other),
        };
        match loaded {
            Ok((w, _)) => workloads.push(w),
            Err(found) => problems.extend(found.into_iter().map(|p| Problem {
                path: format!("/workloads/{i}{}", p.path),
                message: p.message,
            })),
        }
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    Set::new(workloads).map_err(invalid)
}

pub(crate) fn invalid(problems: Vec<Problem>) -> ApiError {
    ApiError::Invalid(problems.into_iter().map(|p| (p.path, p.message)).collect())
}

/// Stores `set` for `app` (if new) and answers with it.
async fn store(
    state: &AppState,
    caller: &Caller,
    app: &str,
    set: Set,
    action: &'static str,
    detail: Value,
) -> Result<(StatusCode, Json<SetView>), ApiError> {
    let record = sets::StoredSet {
        app: app.to_string(),
        id: set.id(),
        body: set.to_json(),
        created_at: now(),
        created_by: caller.id.clone(),
    };
    let row = record.clone();
    let new = state
        .store
        .transaction(move |tx| {
            if apps::get(tx, &row.app)?.is_none() {
                return Ok(Err(ApiError::NotFound(format!("app {}", row.app))));
            }
            let new = sets::put(tx, &row)?;
            if new {
                audit(
                    tx,
                    &row.created_by,
                    action,
                    format!("set:{}/{}", row.app, row.id),
                    detail,
                )?;
            }
            Ok(Ok(new))
        })
        .await??;
    let app_id = app.to_string();
    let id = record.id.clone();
    let stored = state
        .store
        .call(move |conn| sets::get(conn, &app_id, &id))
        .await?
        .ok_or_else(|| ApiError::internal("a set vanished after it was stored"))?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view(stored))))
}

/// Creates a set from Score documents; the same workloads give the same set (200).
#[utoipa::path(post, path = "/apps/{app}/sets", operation_id = "createSet", tag = "sets", request_body = NewSet,
    params(("app" = String, Path, description = "The app's id")),
    responses((status = 201, description = "A new set", body = SetView),
              (status = 200, description = "The app has this set already", body = SetView)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    request: Unread,
) -> Result<(StatusCode, Json<SetView>), ApiError> {
    id(&app, "app")?;
    state
        .policies
        .authorize(&caller, "sets.create", app_target(&app))
        .await?;
    let new: NewSet = request.json(MAX_DOCUMENTS_BODY).await?;
    let set = blocking(move || parse(new.workloads)).await?;
    let names: Vec<String> = set.workloads.keys().cloned().collect();
    store(
        &state,
        &caller,
        &app,
        set,
        "sets.create",
        json!({ "workloads": names }),
    )
    .await
}

async fn load(state: &AppState, app: &str, set: &str) -> Result<sets::StoredSet, ApiError> {
    let (a, s) = (app.to_string(), set.to_string());
    state
        .store
        .call(move |conn| sets::get(conn, &a, &s))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("set {set} of app {app}")))
}

/// Shows a set.
#[utoipa::path(get, path = "/apps/{app}/sets/{set}", operation_id = "getSet", tag = "sets",
    params(("app" = String, Path, description = "The app's id"),
           ("set" = String, Path, description = "The set's id")),
    responses((status = 200, description = "The set", body = SetView)))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, set)): Path<(String, String)>,
) -> Result<Json<SetView>, ApiError> {
    id(&app, "app")?;
    state
        .policies
        .authorize(&caller, "sets.get", app_target(&app))
        .await?;
    Ok(Json(view(load(&state, &app, &set).await?)))
}

/// Applies a delta (a JSON Patch on the set's JSON, `{"workloads": {NAME: ...}}`) and
/// stores the result as a set; the original is unchanged.
#[utoipa::path(post, path = "/apps/{app}/sets/{set}/deltas", operation_id = "createSetFromDelta", tag = "sets",
    params(("app" = String, Path, description = "The app's id"),
           ("set" = String, Path, description = "The set the delta applies to")),
    request_body(content = Vec<Object>, description = "RFC 6902 JSON Patch operations"),
    responses((status = 201, description = "The new set", body = SetView),
              (status = 200, description = "The app has the resulting set already", body = SetView)))]
async fn delta(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, set)): Path<(String, String)>,
    request: Unread,
) -> Result<(StatusCode, Json<SetView>), ApiError> {
    id(&app, "app")?;
    state
        .policies
        .authorize(&caller, "sets.create", app_target(&app))
        .await?;
    let patch: json_patch::Patch = request.json(MAX_DOCUMENTS_BODY).await?;
    let base = load(&state, &app, &set).await?;
    let from = set.clone();
    let next = blocking(move || {
        let base = Set::from_json(base.body).map_err(|p| {
            ApiError::internal(format!("stored set {from} does not validate: {p:?}"))
        })?;
        base.apply(&patch).map_err(invalid)
    })
    .await?;
    store(
        &state,
        &caller,
        &app,
        next,
        "sets.create",
        json!({ "from": set }),
    )
    .await
}

/// Which set to compare with.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DiffQuery {
    /// The other set's id.
    to: String,
}

/// The delta (JSON Patch) that turns this set into another.
#[utoipa::path(get, path = "/apps/{app}/sets/{set}/diff", operation_id = "diffSets", tag = "sets",
    params(("app" = String, Path, description = "The app's id"),
           ("set" = String, Path, description = "The set to start from"), DiffQuery),
    responses((status = 200, description = "RFC 6902 operations", body = Vec<Object>)))]
async fn diff(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, set)): Path<(String, String)>,
    Query(query): Query<DiffQuery>,
) -> Result<Json<json_patch::Patch>, ApiError> {
    id(&app, "app")?;
    state
        .policies
        .authorize(&caller, "sets.get", app_target(&app))
        .await?;
    let from = load(&state, &app, &set).await?;
    let to = load(&state, &app, &query.to).await?;
    Ok(Json(json_patch::diff(&from.body, &to.body)))
}
