//! `/audit`: the audit log, filtered.

use crate::auth::Caller;
use crate::authz::Target;
use crate::routes::query_escape;
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wharf_store::audit::{self, Filter};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// Which events to list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Only this principal's actions.
    principal: Option<String>,
    /// Only this action (`apps.create`), or with a trailing dot every action of a
    /// collection (`apps.`).
    action: Option<String>,
    /// Only this target (`app:shop`), or with a trailing `:` or `/` every target with the
    /// prefix (`app:`, `env:shop/`).
    target: Option<String>,
    /// Only events at or after this time (Unix seconds).
    since: Option<i64>,
    /// Only events before this time (Unix seconds).
    until: Option<i64>,
    /// Only events after this sequence number (the `next` link carries it).
    after: Option<i64>,
    /// How many at most (1 to 1000; 100 when absent).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// One audited action.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventView {
    /// Its place in the log.
    seq: i64,
    /// When (Unix seconds).
    at: i64,
    /// Who.
    principal: String,
    /// The action.
    action: String,
    /// What it was done to.
    target: String,
    /// More about it.
    detail: Value,
}

/// Lists audit events, oldest first.
#[utoipa::path(get, path = "/audit", operation_id = "listAuditEvents", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "The events", body = [EventView])))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let limit = match query.limit {
        None => 100,
        Some(n @ 1..=1000) => i64::from(n),
        Some(n) => {
            return Err(ApiError::BadRequest(format!(
                "limit: {n} is out of range; ask for 1 to 1000 events"
            )));
        }
    };
    state
        .policies
        .authorize(&caller, "audit.read", Target::default())
        .await?;
    let filter = Filter {
        principal: query.principal.clone(),
        action: query.action.clone(),
        target: query.target.clone(),
        since: query.since,
        until: query.until,
        after: query.after,
        limit: limit + 1,
    };
    let mut events = state
        .store
        .call(move |conn| audit::list(conn, &filter))
        .await?;
    let more = events.len() as i64 > limit;
    events.truncate(limit as usize);
    let next = match events.last() {
        Some(last) if more => {
            let mut link = format!("/api/v1/audit?limit={limit}&after={}", last.seq);
            for (name, value) in [
                ("principal", &query.principal),
                ("action", &query.action),
                ("target", &query.target),
            ] {
                if let Some(v) = value {
                    link.push_str(&format!("&{name}={}", query_escape(v)));
                }
            }
            for (name, value) in [("since", query.since), ("until", query.until)] {
                if let Some(v) = value {
                    link.push_str(&format!("&{name}={v}"));
                }
            }
            Some(format!("<{link}>; rel=\"next\""))
        }
        _ => None,
    };
    let views: Vec<EventView> = events
        .into_iter()
        .map(|e| EventView {
            seq: e.seq,
            at: e.at,
            principal: e.principal,
            action: e.action,
            target: e.target,
            detail: e.detail,
        })
        .collect();
    let mut response = Json(views).into_response();
    if let Some(link) = next.and_then(|n| HeaderValue::from_str(&n).ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}
