//! `POST /resource-definitions/match`: which definition a context would use, and why.

use crate::auth::Caller;
use crate::authz::Target;
use crate::routes::{Body, id};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wharf_core::matching::{self, Candidate, Criterion, MatchError};
use wharf_store::envs;
use wharf_store::resources::{self as stored};

use crate::routes::definitions::criteria;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(match_definition))
}

/// The body of `POST /resource-definitions/match`: what would be provisioned, and where.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MatchRequest {
    /// The resource type.
    #[serde(rename = "type")]
    res_type: String,
    /// The resource class (`default` when absent).
    #[serde(default)]
    class: Option<String>,
    /// The resource id (empty when absent).
    #[serde(default)]
    res_id: Option<String>,
    /// The app.
    app: String,
    /// The environment.
    env: String,
    /// The environment type (the environment's, when it exists and this is absent).
    #[serde(default)]
    env_type: Option<String>,
}

/// Which definition a context matches, and why.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MatchView {
    /// The definition chosen.
    definition: String,
    /// Its current version.
    version: i64,
    /// The winning criterion.
    #[schema(value_type = Object)]
    criterion: Criterion,
    /// Why it won.
    reason: String,
    /// The context matched.
    #[schema(value_type = Object)]
    context: matching::Context,
}

/// Says which definition a context would use and why; no match and ambiguous matches
/// are errors that name the candidates.
#[utoipa::path(post, path = "/resource-definitions/match", operation_id = "matchResourceDefinition", tag = "resources",
    request_body = MatchRequest,
    responses((status = 200, description = "The definition chosen", body = MatchView)))]
async fn match_definition(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<MatchRequest>,
) -> Result<Json<MatchView>, ApiError> {
    let app = id(&request.app, "app")?;
    let env = id(&request.env, "env")?;
    id(&request.res_type, "type")?;
    if let Some(t) = &request.env_type {
        id(t, "env_type")?;
    }
    state
        .policies
        .authorize(&caller, "resource-definitions.list", Target::default())
        .await?;
    // The answer tells whether the environment exists and its type: only for those who
    // may see it.
    state
        .policies
        .authorize(
            &caller,
            "environments.get",
            Target {
                app: Some(app.to_string()),
                env: Some(env.to_string()),
                ..Target::default()
            },
        )
        .await?;
    let (app_id, env_id) = (app.to_string(), env.to_string());
    let (env_type, definitions) = state
        .store
        .call(move |conn| {
            let found = envs::get(conn, &app_id, &env_id)?.map(|e| e.env_type.to_string());
            Ok((found, stored::list_definitions(conn)?))
        })
        .await?;
    let env_type = match (request.env_type, env_type) {
        (Some(t), _) => t,
        (None, Some(t)) => t,
        (None, None) => {
            return Err(ApiError::BadRequest(format!(
                "env_type: environment {app}/{env} does not exist; name its type"
            )));
        }
    };
    let context = matching::Context {
        res_type: request.res_type,
        class: request
            .class
            .unwrap_or_else(|| matching::DEFAULT_CLASS.to_string()),
        res_id: request.res_id.unwrap_or_default(),
        app: app.to_string(),
        env: env.to_string(),
        env_type,
    };
    let all_criteria: Vec<Vec<Criterion>> = definitions.iter().map(criteria).collect();
    let candidates: Vec<Candidate<'_>> = definitions
        .iter()
        .zip(&all_criteria)
        .map(|(d, c)| Candidate {
            id: &d.id,
            res_type: &d.res_type,
            criteria: c,
        })
        .collect();
    match matching::best(&candidates, &context) {
        Ok(m) => {
            let version = definitions
                .iter()
                .find(|d| d.id == m.definition)
                .map_or(0, |d| d.version);
            let named: Vec<&str> = [
                ("env_type", &m.criterion.env_type),
                ("app", &m.criterion.app),
                ("env", &m.criterion.env),
                ("res_id", &m.criterion.res_id),
            ]
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(n, _)| *n)
            .collect();
            let reason = if named.is_empty() {
                format!(
                    "criterion {} matches any {} of class {}; no more specific criterion matches",
                    m.criterion, context.res_type, context.class
                )
            } else {
                format!(
                    "criterion {} names {}; no criterion of another definition that matches is \
                     as specific (env_type < app < env < res_id)",
                    m.criterion,
                    named.join(", ")
                )
            };
            Ok(Json(MatchView {
                definition: m.definition.to_string(),
                version,
                criterion: m.criterion.clone(),
                reason,
                context,
            }))
        }
        Err(e @ MatchError::NoMatch { .. }) => Err(ApiError::NoMatch(e.to_string())),
        Err(e @ MatchError::Ambiguous { .. }) => Err(ApiError::Clash(e.to_string())),
    }
}
