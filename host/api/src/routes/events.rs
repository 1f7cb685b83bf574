//! `GET .../deployments/{id}/events`: a deployment as it happens, as server-sent events.

use crate::auth::Caller;
use crate::routes::deployments::{load, number, view};
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use std::convert::Infallible;
use tokio::sync::broadcast;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wharf_core::status::{DeploymentStatus, ResourceProgress, ResourceState};
use wharf_engine::pipeline::{Event, What};
use wharf_store::{Store, deployments, provisioned};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

type Item = Result<SseEvent, Infallible>;

/// The deployment as it happens, as server-sent events: first `deployment` (the whole
/// deployment as it is), then `step`, `resource` and `status` events as the engine
/// writes them, until it is over.
#[utoipa::path(get, path = "/apps/{app}/envs/{env}/deployments/{id}/events", operation_id = "followDeployment", tag = "deployments",
    params(("app" = String, Path, description = "The app's id"),
           ("env" = String, Path, description = "The environment's id"),
           ("id" = i64, Path, description = "The deployment's number")),
    responses((status = 200, description = "Server-sent events", body = String, content_type = "text/event-stream"),
              (status = 429, description = "The caller follows as many streams as one principal may", body = Object, content_type = "application/problem+json")))]
async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, env, n)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let n = number(&n)?;
    // Subscribed before reading, so that nothing between the read and the first event is
    // missed; an event that repeats what was read is harmless (each carries its state).
    let receiver = state.engine.subscribe();
    let first = load(&state, &caller, &app, &env, n).await?;
    let slot = state
        .streams
        .open(&caller.id, state.limits.streams_per_principal)?;
    let over = first.status.is_final();
    let snapshot = SseEvent::default()
        .event("deployment")
        .json_data(view(first))
        .map_err(ApiError::internal)?;
    let mut head = vec![Item::Ok(snapshot)];
    head.extend(resources(&state.store, &app, &env, n).await?);
    let followed = Followed {
        receiver,
        over,
        store: state.store.clone(),
        app,
        env,
        deployment: n,
    };
    let live = futures_util::stream::unfold(followed, |mut followed| async move {
        let item = followed.next().await?;
        Some((item, followed))
    });
    // The slot goes with the stream: it is given back when the client leaves.
    let stream = futures_util::stream::iter(head)
        .chain(live)
        .map(move |item| {
            let _held = &slot;
            item
        });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Where each resource deployment `n` touched is, as `resource` events, so that a client
/// connecting late still sees every resource (the steps are in the snapshot).
async fn resources(store: &Store, app: &str, env: &str, n: i64) -> Result<Vec<Item>, ApiError> {
    let (a, e) = (app.to_string(), env.to_string());
    let touched = store
        .call(move |conn| provisioned::progress(conn, &a, &e, n))
        .await?;
    touched
        .into_iter()
        .map(|t| {
            // In the names the live events use.
            let status = match t.status {
                ResourceState::InProgress => ResourceProgress::InProgress,
                ResourceState::Retrying => ResourceProgress::Retrying,
                ResourceState::Done => ResourceProgress::Done,
                ResourceState::Deprovisioning => ResourceProgress::DeprovisionInProgress,
                ResourceState::Failed if t.message.starts_with("deprovisioning failed") => {
                    ResourceProgress::DeprovisionFailed
                }
                ResourceState::Failed => ResourceProgress::Failed,
            };
            let event = Event {
                app: app.to_string(),
                env: env.to_string(),
                deployment: n,
                what: What::Resource {
                    uid: t.uid,
                    status,
                    message: t.message,
                },
            };
            let event = SseEvent::default().event("resource").json_data(&event);
            Ok(Item::Ok(event.map_err(ApiError::internal)?))
        })
        .collect()
}

/// A deployment being followed: the engine's events about it, until it is over.
struct Followed {
    receiver: broadcast::Receiver<Event>,
    over: bool,
    store: Store,
    app: String,
    env: String,
    deployment: i64,
}

impl Followed {
    /// The next event, or none once the deployment is over.
    async fn next(&mut self) -> Option<Item> {
        if self.over {
            return None;
        }
        loop {
            match self.receiver.recv().await {
                Ok(e)
                    if e.app == self.app
                        && e.env == self.env
                        && e.deployment == self.deployment =>
                {
                    let name = match &e.what {
                        What::Step { .. } => "step",
                        What::Resource { .. } => "resource",
                        What::Status { .. } => "status",
                    };
                    self.over = matches!(
                        &e.what,
                        What::Status { status, .. } if *status != DeploymentStatus::Running
                    );
                    let event = SseEvent::default()
                        .event(name)
                        .json_data(&e)
                        .unwrap_or_else(|_| SseEvent::default().event(name));
                    return Some(Item::Ok(event));
                }
                Ok(_) => {}
                // Too slow to keep up: send the whole deployment again.
                Err(broadcast::error::RecvError::Lagged(_)) => return self.again().await,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The whole deployment as it is now.
    async fn again(&mut self) -> Option<Item> {
        let (a, e, n) = (self.app.clone(), self.env.clone(), self.deployment);
        let now = self
            .store
            .call(move |conn| deployments::get(conn, &a, &e, n))
            .await
            .ok()
            .flatten()?;
        self.over = now.status.is_final();
        let event = SseEvent::default()
            .event("deployment")
            .json_data(view(now))
            .unwrap_or_else(|_| SseEvent::default().event("deployment"));
        Some(Item::Ok(event))
    }
}
