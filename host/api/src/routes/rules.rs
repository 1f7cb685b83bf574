//! `/apps/{app}/envs/{env}/rules`: automation rules. When CI pushes an artefact whose
//! repository and git ref match a rule, the rule deploys it to its environment's current
//! set (or to a preview environment it creates), with the rights of the rule's owner:
//! whoever created or last changed it.

use crate::auth::Caller;
use crate::routes::deployments::authorized;
use crate::routes::{MAX_JSON_BODY, Page, PageQuery, Unread, audit, id, page};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wharf_core::clock::now;
use wharf_core::duration::{format_duration, parse_duration};
use wharf_core::glob;
use wharf_store::rules::{self as stored, Preview, Rule};

/// The most rules one environment may have.
pub(crate) const MAX_RULES: i64 = 20;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
}

/// A preview environment a rule creates for each matching ref.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreviewSpec {
    /// Its name, where `{n}` stands for what the ref pattern's `*` matched: `pr-{n}`.
    #[schema(example = "pr-{n}")]
    name: String,
    /// Its time to live (`48h`), renewed by every deployment to it.
    ttl: String,
    /// Its environment type; the rule's environment's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    env_type: Option<String>,
}

/// An automation rule.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RuleView {
    app: String,
    env: String,
    id: String,
    /// A glob over the artefact's repository: `registry.example.com/shop-*`.
    image: String,
    /// A glob over the git ref it was built from: `refs/heads/main`, `refs/pull/*/head`.
    #[serde(rename = "ref")]
    git_ref: String,
    /// The containers it updates; empty: those whose image names the artefact's
    /// repository.
    containers: Vec<String>,
    /// The principals whose pushes trigger it (CI's service account); empty: any
    /// principal with a role on the app.
    pushers: Vec<String>,
    /// The preview environment it creates, if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    preview: Option<PreviewSpec>,
    /// A paused rule does nothing.
    paused: bool,
    /// Whose rights its deployments have: who created or last changed it.
    owner: String,
    created_at: i64,
}

impl From<Rule> for RuleView {
    fn from(r: Rule) -> Self {
        Self {
            app: r.app.to_string(),
            env: r.env.to_string(),
            id: r.id.to_string(),
            image: r.image,
            git_ref: r.git_ref,
            containers: r.containers,
            pushers: r.pushers,
            preview: r.preview.map(|p| PreviewSpec {
                name: p.name,
                ttl: format_duration(p.ttl),
                env_type: p.env_type,
            }),
            paused: r.paused,
            owner: r.owner,
            created_at: r.created_at,
        }
    }
}

/// The body of `POST .../rules`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewRule {
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 50)]
    id: String,
    /// A glob over the artefact's repository (`*` stands for any run of characters).
    image: String,
    /// A glob over the git ref; every ref when absent.
    #[serde(default = "any_ref", rename = "ref")]
    git_ref: String,
    /// The containers to update, by name; when empty, those whose image names the
    /// artefact's repository.
    #[serde(default)]
    containers: Vec<String>,
    /// The principals whose pushes trigger it (CI's service account, `ci`); when empty,
    /// any principal with a role on the app. A push by anyone else does nothing here.
    #[serde(default)]
    pushers: Vec<String>,
    /// Create (or update) a preview environment for each matching ref instead.
    #[serde(default)]
    preview: Option<PreviewSpec>,
    #[serde(default)]
    paused: bool,
}

fn any_ref() -> String {
    "*".into()
}

/// The body of `PATCH .../rules/{rule}`: what to change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleChange {
    #[serde(default)]
    image: Option<String>,
    #[serde(default, rename = "ref")]
    git_ref: Option<String>,
    #[serde(default)]
    containers: Option<Vec<String>>,
    #[serde(default)]
    pushers: Option<Vec<String>>,
    /// A new preview; `null` makes the rule deploy to its own environment again.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<PreviewSpec>)]
    preview: Option<Option<PreviewSpec>>,
    #[serde(default)]
    paused: Option<bool>,
}

/// A field that is present (even as `null`) is `Some`.
fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<PreviewSpec>>, D::Error> {
    Option::<PreviewSpec>::deserialize(d).map(Some)
}

/// Every problem of a rule, listed at once.
fn check(rule: &Rule, preview: Option<&PreviewSpec>) -> Result<Option<Preview>, ApiError> {
    let mut problems = Vec::new();
    if let Err(e) = glob::check(&rule.image) {
        problems.push(("/image".to_string(), e));
    }
    if let Err(e) = glob::check(&rule.git_ref) {
        problems.push(("/ref".to_string(), e));
    }
    if rule.containers.len() > 32 {
        problems.push(("/containers".into(), "at most 32 containers".into()));
    }
    if rule.pushers.len() > 32 {
        problems.push(("/pushers".into(), "at most 32 principals".into()));
    }
    for (i, p) in rule.pushers.iter().enumerate() {
        if p.is_empty()
            || p.len() > 255
            || p.chars().any(|ch| ch.is_whitespace() || ch.is_control())
        {
            problems.push((
                format!("/pushers/{i}"),
                format!("{p:?} is not a principal id"),
            ));
        }
    }
    for (i, c) in rule.containers.iter().enumerate() {
        if c.is_empty() || c.len() > 63 || c.chars().any(|ch| ch.is_whitespace()) {
            problems.push((
                format!("/containers/{i}"),
                format!("{c:?} is not a container name"),
            ));
        }
    }
    let mut checked = None;
    if let Some(p) = preview {
        if p.name.matches("{n}").count() > 1 {
            problems.push(("/preview/name".into(), "use {n} at most once".into()));
        }
        if wharf_core::Id::new(p.name.replace("{n}", "1")).is_err() {
            problems.push((
                "/preview/name".into(),
                format!(
                    "{:?} does not make an environment id (lowercase letters, digits and \
                     dashes, such as pr-{{n}})",
                    p.name
                ),
            ));
        }
        if p.name.contains("{n}") && !rule.git_ref.contains('*') {
            problems.push((
                "/preview/name".into(),
                "{n} stands for what the ref's * matched, and the ref has no *".into(),
            ));
        }
        if let Some(t) = &p.env_type
            && wharf_core::Id::new(t).is_err()
        {
            problems.push(("/preview/env_type".into(), format!("{t:?} is not an id")));
        }
        match parse_duration(&p.ttl) {
            Ok(ttl) => {
                checked = Some(Preview {
                    name: p.name.clone(),
                    ttl,
                    env_type: p.env_type.clone(),
                })
            }
            Err(e) => problems.push(("/preview/ttl".into(), e)),
        }
    }
    if problems.is_empty() {
        Ok(checked)
    } else {
        Err(ApiError::Invalid(problems))
    }
}

/// Lists an environment's rules.
#[utoipa::path(get, path = "/apps/{app}/envs/{env}/rules", operation_id = "listRules", tag = "automation",
    params(("app" = String, Path, description = "The app's id"),
           ("env" = String, Path, description = "The environment's id"), PageQuery),
    responses((status = 200, description = "The rules", body = [RuleView])))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, env)): Path<(String, String)>,
    Query(query): Query<PageQuery>,
) -> Result<Page<RuleView>, ApiError> {
    authorized(&state, &caller, &app, &env, "automation-rules.list").await?;
    let (a, e) = (app.clone(), env.clone());
    let rules = state
        .store
        .call(move |conn| stored::list(conn, &a, &e))
        .await?;
    page(
        rules.into_iter().map(Into::into).collect(),
        |r: &RuleView| r.id.clone(),
        &query,
        &format!("/api/v1/apps/{app}/envs/{env}/rules"),
    )
}

/// Creates a rule, owned by the caller: its deployments have the caller's rights.
#[utoipa::path(post, path = "/apps/{app}/envs/{env}/rules", operation_id = "createRule", tag = "automation",
    request_body = NewRule,
    params(("app" = String, Path, description = "The app's id"),
           ("env" = String, Path, description = "The environment's id")),
    responses((status = 201, description = "Created", body = RuleView)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, env)): Path<(String, String)>,
    request: Unread,
) -> Result<(StatusCode, Json<RuleView>), ApiError> {
    let found = authorized(&state, &caller, &app, &env, "automation-rules.create").await?;
    let new: NewRule = request.json(MAX_JSON_BODY).await?;
    let mut rule = Rule {
        app: found.app.clone(),
        env: found.id.clone(),
        id: id(&new.id, "id")?,
        image: new.image,
        git_ref: new.git_ref,
        containers: new.containers,
        pushers: new.pushers,
        preview: None,
        paused: new.paused,
        owner: caller.id.clone(),
        created_at: now(),
    };
    rule.preview = check(&rule, new.preview.as_ref())?;
    let stored_rule = rule.clone();
    state
        .store
        .transaction(move |tx| {
            let (a, e) = (stored_rule.app.as_str(), stored_rule.env.as_str());
            if stored::count(tx, a, e)? >= MAX_RULES {
                return Ok(Err(ApiError::Clash(format!(
                    "environment {a}/{e} has {MAX_RULES} rules, the most it may have; \
                     delete one first"
                ))));
            }
            stored::create(tx, &stored_rule)?;
            audit(
                tx,
                &stored_rule.owner,
                "automation-rules.create",
                format!("rule:{a}/{e}/{}", stored_rule.id),
                json!({ "image": stored_rule.image, "ref": stored_rule.git_ref,
                        "preview": stored_rule.preview.as_ref().map(|p| &p.name) }),
            )?;
            Ok(Ok(()))
        })
        .await??;
    Ok((StatusCode::CREATED, Json(rule.into())))
}

/// Loads rule `app/env/rule` for a caller allowed `action` on the environment.
async fn load(
    state: &AppState,
    caller: &Caller,
    (app, env, rule): (&str, &str, &str),
    action: &str,
) -> Result<Rule, ApiError> {
    authorized(state, caller, app, env, action).await?;
    let (a, e, r) = (app.to_string(), env.to_string(), rule.to_string());
    state
        .store
        .call(move |conn| stored::get(conn, &a, &e, &r))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("rule {rule} of {app}/{env}")))
}

/// Shows a rule.
#[utoipa::path(get, path = "/apps/{app}/envs/{env}/rules/{rule}", operation_id = "getRule", tag = "automation",
    params(("app" = String, Path, description = "The app's id"),
           ("env" = String, Path, description = "The environment's id"),
           ("rule" = String, Path, description = "The rule's id")),
    responses((status = 200, description = "The rule", body = RuleView)))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, env, rule)): Path<(String, String, String)>,
) -> Result<Json<RuleView>, ApiError> {
    let found = load(&state, &caller, (&app, &env, &rule), "automation-rules.get").await?;
    Ok(Json(found.into()))
}

/// Changes a rule (pauses or resumes it, changes what it matches). The caller becomes
/// its owner: its deployments have the rights of who last changed it, so no one can
/// point another's rule at their own image.
#[utoipa::path(patch, path = "/apps/{app}/envs/{env}/rules/{rule}", operation_id = "updateRule", tag = "automation",
    request_body = RuleChange,
    params(("app" = String, Path, description = "The app's id"),
           ("env" = String, Path, description = "The environment's id"),
           ("rule" = String, Path, description = "The rule's id")),
    responses((status = 200, description = "The rule as it is now", body = RuleView)))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, env, rule)): Path<(String, String, String)>,
    request: Unread,
) -> Result<Json<RuleView>, ApiError> {
    let mut found = load(
        &state,
        &caller,
        (&app, &env, &rule),
        "automation-rules.update",
    )
    .await?;
    let change: RuleChange = request.json(MAX_JSON_BODY).await?;
    let mut preview = found.preview.as_ref().map(|p| PreviewSpec {
        name: p.name.clone(),
        ttl: p.ttl.to_string() + "s",
        env_type: p.env_type.clone(),
    });
    if let Some(image) = change.image {
        found.image = image;
    }
    if let Some(git_ref) = change.git_ref {
        found.git_ref = git_ref;
    }
    if let Some(containers) = change.containers {
        found.containers = containers;
    }
    if let Some(pushers) = change.pushers {
        found.pushers = pushers;
    }
    if let Some(p) = change.preview {
        preview = p;
    }
    if let Some(paused) = change.paused {
        found.paused = paused;
    }
    found.preview = check(&found, preview.as_ref())?;
    found.owner = caller.id.clone();
    let stored_rule = found.clone();
    state
        .store
        .transaction(move |tx| {
            stored::update(tx, &stored_rule)?;
            audit(
                tx,
                &stored_rule.owner,
                "automation-rules.update",
                format!(
                    "rule:{}/{}/{}",
                    stored_rule.app, stored_rule.env, stored_rule.id
                ),
                json!({ "image": stored_rule.image, "ref": stored_rule.git_ref,
                        "paused": stored_rule.paused }),
            )
        })
        .await?;
    Ok(Json(found.into()))
}

/// Deletes a rule.
#[utoipa::path(delete, path = "/apps/{app}/envs/{env}/rules/{rule}", operation_id = "deleteRule", tag = "automation",
    params(("app" = String, Path, description = "The app's id"),
           ("env" = String, Path, description = "The environment's id"),
           ("rule" = String, Path, description = "The rule's id")),
    responses((status = 204, description = "Deleted")))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, env, rule)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let found = load(
        &state,
        &caller,
        (&app, &env, &rule),
        "automation-rules.delete",
    )
    .await?;
    let principal = caller.id.clone();
    state
        .store
        .transaction(move |tx| {
            stored::delete(
                tx,
                found.app.as_str(),
                found.env.as_str(),
                found.id.as_str(),
            )?;
            audit(
                tx,
                &principal,
                "automation-rules.delete",
                format!("rule:{}/{}/{}", found.app, found.env, found.id),
                serde_json::Value::Null,
            )
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
