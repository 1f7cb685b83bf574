//! `/webhooks` and `/apps/{app}/webhooks`: where the platform's events are posted,
//! org-wide (every app's events) or for one app, and the history of their deliveries.
//!
//! An app's webhook is reached only under its app, an org-wide one only under `/webhooks`:
//! elsewhere it is a 404, after authorization. The signing secret is in the answer to the
//! creation only. The audit log names a URL by its origin (a URL may hold a token).

use crate::auth::Caller;
use crate::authz::Target;
use crate::routes::{MAX_JSON_BODY, Page, PageQuery, Unread, audit, id, page, page_read};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wharf_core::clock::{now, now_ms};
use wharf_store::apps;
use wharf_store::webhooks::{self as stored, Delivery, DeliveryStatus};
use wharf_store::webhooks::{State as HookState, Webhook};

mod check;

use check::{check_change, check_new, origin};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_org, create_org))
        .routes(routes!(show_org, update_org, remove_org))
        .routes(routes!(deliveries_org))
        .routes(routes!(list_app, create_app))
        .routes(routes!(show_app, update_app, remove_app))
        .routes(routes!(deliveries_app))
}

// The longest URL, and the shortest and longest secret, accepted from a caller.
const MAX_URL: usize = 2048;
const MIN_SECRET: usize = 24;
const MAX_SECRET: usize = 1024;

/// Where webhooks live: an app (`Some`), or the org (`None`: sent every app's events).
#[derive(Debug, Clone)]
struct Scope(Option<String>);

impl Scope {
    const ORG: Self = Self(None);

    /// The scope of `/apps/{app}/webhooks`, with the app's id checked.
    fn app(app: &str) -> Result<Self, ApiError> {
        Ok(Self(Some(id(app, "app")?.to_string())))
    }

    /// What the policies decide on: the app (none for org-wide webhooks), the webhook.
    fn target(&self, webhook: Option<&str>) -> Target {
        Target {
            app: self.0.clone(),
            object: webhook.map(|w| format!("webhook:{w}")),
            ..Target::default()
        }
    }

    /// Whether `w` is reached here (an app's webhook only under its app).
    fn holds(&self, w: &Webhook) -> bool {
        w.app == self.0
    }

    fn path(&self) -> String {
        match &self.0 {
            None => "/api/v1/webhooks".to_string(),
            Some(app) => format!("/api/v1/apps/{app}/webhooks"),
        }
    }

    /// A webhook, as the audit log names it.
    fn audit_target(&self, webhook: &str) -> String {
        match &self.0 {
            None => format!("webhook:{webhook}"),
            Some(app) => format!("webhook:{app}/{webhook}"),
        }
    }
}

/// Whether a webhook is sent events.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum WebhookState {
    /// It is sent the events it wants.
    Active,
    /// It is sent nothing: disabled by a person, or after a delivery failed every attempt.
    Disabled,
}

/// A webhook.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebhookView {
    /// 12 hex digits.
    id: String,
    /// The app whose events it is sent; null: every app's (org-wide).
    app: Option<String>,
    /// Where deliveries are posted.
    url: String,
    /// The event types it is sent, or `*` for all.
    events: Vec<String>,
    state: WebhookState,
    /// Why it is disabled: who disabled it, or the deliveries that failed.
    disabled_reason: Option<String>,
    created_at: i64,
    created_by: String,
    /// The secret deliveries are signed with: in the answer to the creation only.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl From<Webhook> for WebhookView {
    fn from(w: Webhook) -> Self {
        Self {
            id: w.id,
            app: w.app,
            url: w.url,
            events: w.events,
            state: match w.state {
                HookState::Active => WebhookState::Active,
                HookState::Disabled => WebhookState::Disabled,
            },
            disabled_reason: w.disabled_reason,
            created_at: w.created_at,
            created_by: w.created_by,
            secret: None,
        }
    }
}

/// Where a delivery is.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum DeliveryState {
    /// Waiting for its first attempt or a retry.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up: every attempt failed, or its webhook was disabled.
    Failed,
}

/// One event sent (or to be sent) to a webhook.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryView {
    id: i64,
    /// The event's id: the same in every webhook's delivery of the event.
    event_id: String,
    /// `deployment.failed`, `environment.created`...
    event_type: String,
    app: Option<String>,
    env: Option<String>,
    status: DeliveryState,
    attempts: i64,
    /// The receiver's status at the last attempt, when it answered.
    last_status_code: Option<u16>,
    /// Why the last attempt failed, or why the delivery was given up.
    last_error: Option<String>,
    /// When the event happened (Unix milliseconds).
    created_ms: i64,
    /// When it was delivered or given up (Unix milliseconds).
    finished_ms: Option<i64>,
    /// When the next attempt is due (Unix milliseconds), while pending.
    next_attempt_ms: Option<i64>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        let pending = d.status == DeliveryStatus::Pending;
        Self {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            app: d.app,
            env: d.env,
            status: match d.status {
                DeliveryStatus::Pending => DeliveryState::Pending,
                DeliveryStatus::Delivered => DeliveryState::Delivered,
                DeliveryStatus::Failed => DeliveryState::Failed,
            },
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            created_ms: d.created_ms,
            finished_ms: d.finished_ms,
            next_attempt_ms: pending.then_some(d.next_attempt_ms),
        }
    }
}

/// The body of `POST .../webhooks`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewWebhook {
    /// Where to post the events: `https://...` (or `http://...`), with no user or password.
    #[schema(max_length = 2048)]
    url: String,
    /// The event types to send (`deployment.failed`...), or `*` for every type.
    #[schema(min_items = 1)]
    events: Vec<String>,
    /// The secret to sign deliveries with (24 characters or more); else a random one.
    #[schema(min_length = 24, max_length = 1024)]
    secret: Option<String>,
}

/// The body of `PATCH .../webhooks/{webhook}`: what to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookChange {
    /// Enable it (after a failure: from the next event on), or disable it.
    active: Option<bool>,
    /// New event types.
    events: Option<Vec<String>>,
    /// A new URL.
    url: Option<String>,
}

/// The most webhooks an app (or the org) may have.
const MAX_WEBHOOKS: usize = 20;

/// A request on webhooks: who asks, and where.
struct Hooks {
    state: AppState,
    caller: Caller,
    scope: Scope,
}

impl Hooks {
    fn new(state: AppState, caller: Caller, scope: Scope) -> Self {
        Self {
            state,
            caller,
            scope,
        }
    }

    /// Whether the policies let the caller take `action` here (on `webhook`, if any).
    async fn authorize(&self, action: &str, webhook: Option<&str>) -> Result<(), ApiError> {
        let target = self.scope.target(webhook);
        self.state
            .policies
            .authorize(&self.caller, action, target)
            .await
    }

    /// The webhook `webhook`, if it is reached here; else a 404.
    async fn load(&self, webhook: &str) -> Result<Webhook, ApiError> {
        let id = webhook.to_string();
        let found = self.state.store.call(move |tx| stored::get(tx, &id));
        found
            .await?
            .filter(|w| self.scope.holds(w))
            .ok_or_else(|| ApiError::NotFound(format!("webhook {webhook}")))
    }

    async fn list(self, query: &PageQuery) -> Result<Page<WebhookView>, ApiError> {
        self.authorize("webhooks.list", None).await?;
        let app = self.scope.0.clone();
        let found = self
            .state
            .store
            .call(move |tx| {
                if let Some(app) = &app
                    && apps::get(tx, app)?.is_none()
                {
                    return Ok(Err(ApiError::NotFound(format!("app {app}"))));
                }
                Ok(Ok(stored::list(tx, app.as_deref())?))
            })
            .await??;
        let views = found.into_iter().map(Into::into).collect();
        page(
            views,
            |w: &WebhookView| w.id.clone(),
            query,
            &self.scope.path(),
        )
    }

    async fn create(self, request: Unread) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
        self.authorize("webhooks.create", None).await?;
        let new: NewWebhook = request.json(MAX_JSON_BODY).await?;
        let events = check_new(&new)?;
        let secret = new.secret.unwrap_or_else(stored::new_secret);
        let webhook = Webhook {
            id: stored::new_id(),
            app: self.scope.0.clone(),
            url: new.url,
            events,
            state: HookState::Active,
            disabled_reason: None,
            created_at: now(),
            created_by: self.caller.id.clone(),
        };
        let (row, sealer, key) = (webhook.clone(), self.state.sealer.clone(), secret.clone());
        let scope = self.scope;
        self.state
            .store
            .transaction(move |tx| {
                if let Some(app) = &row.app
                    && apps::get(tx, app)?.is_none()
                {
                    return Ok(Err(ApiError::NotFound(format!("app {app}"))));
                }
                // Every event is queued once per webhook that wants it: bounded.
                let held = stored::list(tx, row.app.as_deref())?.len();
                if held >= MAX_WEBHOOKS {
                    let whose = row
                        .app
                        .as_deref()
                        .map_or("the org".into(), |a| format!("app {a}"));
                    return Ok(Err(ApiError::Clash(format!(
                        "{whose} has {held} webhooks, the most it may have; delete one first"
                    ))));
                }
                stored::create(tx, &sealer, &row, &key)?;
                let detail = json!({ "origin": origin(&row.url), "events": row.events });
                let target = scope.audit_target(&row.id);
                audit(tx, &row.created_by, "webhooks.create", target, detail)?;
                Ok(Ok(()))
            })
            .await??;
        let view = WebhookView {
            secret: Some(secret),
            ..WebhookView::from(webhook)
        };
        Ok((StatusCode::CREATED, Json(view)))
    }

    async fn show(self, webhook: &str) -> Result<Json<WebhookView>, ApiError> {
        self.authorize("webhooks.get", Some(webhook)).await?;
        Ok(Json(self.load(webhook).await?.into()))
    }

    async fn update(self, webhook: String, request: Unread) -> Result<Json<WebhookView>, ApiError> {
        self.authorize("webhooks.update", Some(&webhook)).await?;
        let change: WebhookChange = request.json(MAX_JSON_BODY).await?;
        let events = check_change(&change)?;
        let (principal, scope) = (self.caller.id, self.scope);
        let updated = self
            .state
            .store
            .transaction(move |tx| {
                let Some(current) = stored::get(tx, &webhook)?.filter(|w| scope.holds(w)) else {
                    return Ok(Err(ApiError::NotFound(format!("webhook {webhook}"))));
                };
                stored::update(tx, &webhook, change.url.as_deref(), events.as_deref())?;
                let active = current.state == HookState::Active;
                match change.active {
                    Some(true) if !active => {
                        stored::set_state(tx, &webhook, true, None)?;
                    }
                    Some(false) if active => {
                        let reason = format!("disabled by {principal}");
                        stored::set_state(tx, &webhook, false, Some(&reason))?;
                        let why = format!("the webhook was {reason}");
                        stored::fail_pending(tx, &webhook, &why, now_ms())?;
                    }
                    _ => {}
                }
                let mut detail = json!({ "active": change.active, "events": events });
                if let Some(url) = &change.url {
                    detail["origin"] = Value::String(origin(url));
                }
                let target = scope.audit_target(&webhook);
                audit(tx, &principal, "webhooks.update", target, detail)?;
                let updated = stored::get(tx, &webhook)?.expect("changed in this transaction");
                Ok(Ok(updated))
            })
            .await??;
        Ok(Json(updated.into()))
    }

    async fn remove(self, webhook: String) -> Result<StatusCode, ApiError> {
        self.authorize("webhooks.delete", Some(&webhook)).await?;
        let (target, what) = (
            self.scope.audit_target(&webhook),
            format!("webhook {webhook}"),
        );
        let scope = self.scope.clone();
        crate::routes::delete_audited(
            &self.state,
            &self.caller.id,
            "webhooks.delete",
            target,
            what,
            move |tx| match stored::get(tx, &webhook)? {
                Some(w) if scope.holds(&w) => stored::delete(tx, &webhook),
                _ => Ok(false),
            },
        )
        .await
    }

    async fn deliveries(
        self,
        webhook: String,
        query: &PageQuery,
    ) -> Result<Page<DeliveryView>, ApiError> {
        self.authorize("webhooks.get", Some(&webhook)).await?;
        let size = query.size()?;
        let after = query.after.as_deref().map(str::parse::<i64>).transpose();
        let before =
            after.map_err(|_| ApiError::BadRequest("after: a delivery's number".into()))?;
        self.load(&webhook).await?;
        let id = webhook.clone();
        let found = self
            .state
            .store
            .call(move |tx| stored::deliveries(tx, &id, before, size + 1))
            .await?;
        let base = format!("{}/{webhook}/deliveries?limit={size}", self.scope.path());
        let views: Vec<DeliveryView> = found.into_iter().map(Into::into).collect();
        Ok(page_read(views, size, |last| {
            format!("{base}&after={}", last.id)
        }))
    }
}

/// Lists the org-wide webhooks.
#[utoipa::path(get, path = "/webhooks", operation_id = "listWebhooks", tag = "webhooks", params(PageQuery),
    responses((status = 200, description = "The org-wide webhooks", body = [WebhookView])))]
async fn list_org(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> Result<Page<WebhookView>, ApiError> {
    Hooks::new(state, caller, Scope::ORG).list(&query).await
}

/// Creates an org-wide webhook, sent every app's events it wants. The answer holds the
/// signing secret: the only time it is shown.
#[utoipa::path(post, path = "/webhooks", operation_id = "createWebhook", tag = "webhooks", request_body = NewWebhook,
    responses((status = 201, description = "Created, with its secret", body = WebhookView)))]
async fn create_org(
    State(state): State<AppState>,
    caller: Caller,
    request: Unread,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    Hooks::new(state, caller, Scope::ORG).create(request).await
}

/// Shows an org-wide webhook.
#[utoipa::path(get, path = "/webhooks/{webhook}", operation_id = "getWebhook", tag = "webhooks",
    params(("webhook" = String, Path, description = "The webhook's id")),
    responses((status = 200, description = "The webhook", body = WebhookView)))]
async fn show_org(
    State(state): State<AppState>,
    caller: Caller,
    Path(webhook): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    Hooks::new(state, caller, Scope::ORG).show(&webhook).await
}

/// Changes an org-wide webhook: enables or disables it, its events, its URL.
#[utoipa::path(patch, path = "/webhooks/{webhook}", operation_id = "updateWebhook", tag = "webhooks",
    params(("webhook" = String, Path, description = "The webhook's id")), request_body = WebhookChange,
    responses((status = 200, description = "Changed", body = WebhookView)))]
async fn update_org(
    State(state): State<AppState>,
    caller: Caller,
    Path(webhook): Path<String>,
    request: Unread,
) -> Result<Json<WebhookView>, ApiError> {
    Hooks::new(state, caller, Scope::ORG)
        .update(webhook, request)
        .await
}

/// Deletes an org-wide webhook with its deliveries.
#[utoipa::path(delete, path = "/webhooks/{webhook}", operation_id = "deleteWebhook", tag = "webhooks",
    params(("webhook" = String, Path, description = "The webhook's id")),
    responses((status = 204, description = "Deleted")))]
async fn remove_org(
    State(state): State<AppState>,
    caller: Caller,
    Path(webhook): Path<String>,
) -> Result<StatusCode, ApiError> {
    Hooks::new(state, caller, Scope::ORG).remove(webhook).await
}

/// Lists an org-wide webhook's deliveries, newest first.
#[utoipa::path(get, path = "/webhooks/{webhook}/deliveries", operation_id = "listWebhookDeliveries", tag = "webhooks",
    params(("webhook" = String, Path, description = "The webhook's id"), PageQuery),
    responses((status = 200, description = "Its deliveries, newest first", body = [DeliveryView])))]
async fn deliveries_org(
    State(state): State<AppState>,
    caller: Caller,
    Path(webhook): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Page<DeliveryView>, ApiError> {
    Hooks::new(state, caller, Scope::ORG)
        .deliveries(webhook, &query)
        .await
}

/// Lists an app's webhooks.
#[utoipa::path(get, path = "/apps/{app}/webhooks", operation_id = "listAppWebhooks", tag = "webhooks",
    params(("app" = String, Path, description = "The app's id"), PageQuery),
    responses((status = 200, description = "The app's webhooks", body = [WebhookView])))]
async fn list_app(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Page<WebhookView>, ApiError> {
    Hooks::new(state, caller, Scope::app(&app)?)
        .list(&query)
        .await
}

/// Creates a webhook of an app, sent the app's events it wants. The answer holds the
/// signing secret: the only time it is shown.
#[utoipa::path(post, path = "/apps/{app}/webhooks", operation_id = "createAppWebhook", tag = "webhooks",
    params(("app" = String, Path, description = "The app's id")), request_body = NewWebhook,
    responses((status = 201, description = "Created, with its secret", body = WebhookView)))]
async fn create_app(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    request: Unread,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    Hooks::new(state, caller, Scope::app(&app)?)
        .create(request)
        .await
}

/// Shows a webhook of an app.
#[utoipa::path(get, path = "/apps/{app}/webhooks/{webhook}", operation_id = "getAppWebhook", tag = "webhooks",
    params(("app" = String, Path, description = "The app's id"),
           ("webhook" = String, Path, description = "The webhook's id")),
    responses((status = 200, description = "The webhook", body = WebhookView)))]
async fn show_app(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, webhook)): Path<(String, String)>,
) -> Result<Json<WebhookView>, ApiError> {
    Hooks::new(state, caller, Scope::app(&app)?)
        .show(&webhook)
        .await
}

/// Changes a webhook of an app: enables or disables it, its events, its URL.
#[utoipa::path(patch, path = "/apps/{app}/webhooks/{webhook}", operation_id = "updateAppWebhook", tag = "webhooks",
    params(("app" = String, Path, description = "The app's id"),
           ("webhook" = String, Path, description = "The webhook's id")), request_body = WebhookChange,
    responses((status = 200, description = "Changed", body = WebhookView)))]
async fn update_app(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, webhook)): Path<(String, String)>,
    request: Unread,
) -> Result<Json<WebhookView>, ApiError> {
    Hooks::new(state, caller, Scope::app(&app)?)
        .update(webhook, request)
        .await
}

/// Deletes a webhook of an app with its deliveries.
#[utoipa::path(delete, path = "/apps/{app}/webhooks/{webhook}", operation_id = "deleteAppWebhook", tag = "webhooks",
    params(("app" = String, Path, description = "The app's id"),
           ("webhook" = String, Path, description = "The webhook's id")),
    responses((status = 204, description = "Deleted")))]
async fn remove_app(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, webhook)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    Hooks::new(state, caller, Scope::app(&app)?)
        .remove(webhook)
        .await
}

/// Lists the deliveries of a webhook of an app, newest first.
#[utoipa::path(get, path = "/apps/{app}/webhooks/{webhook}/deliveries", operation_id = "listAppWebhookDeliveries", tag = "webhooks",
    params(("app" = String, Path, description = "The app's id"),
           ("webhook" = String, Path, description = "The webhook's id"), PageQuery),
    responses((status = 200, description = "Its deliveries, newest first", body = [DeliveryView])))]
async fn deliveries_app(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, webhook)): Path<(String, String)>,
    Query(query): Query<PageQuery>,
) -> Result<Page<DeliveryView>, ApiError> {
    Hooks::new(state, caller, Scope::app(&app)?)
        .deliveries(webhook, &query)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_of_a_new_webhook_is_named_with_its_place() {
        let new = NewWebhook {
            url: "ftp://me:pw@example.com/x".into(),
            events: vec!["deployment.failed".into(), "deployment.exploded".into()],
            secret: Some("short".into()),
        };
        let Err(ApiError::Invalid(found)) = check_new(&new) else {
            panic!("accepted")
        };
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["/url", "/url", "/events/1", "/secret"]);
        assert!(found[2].1.contains("deployment.started"), "{found:?}");
        let url = "https://hooks.example.com:8443/services/T0/B0/secret-token";
        assert_eq!(origin(url), "https://hooks.example.com:8443");
    }
}
