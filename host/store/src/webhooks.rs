//! Webhooks: where Wharf sends the platform's events (a deployment started or failed, an
//! environment created or deleted, an image pushed), for one app or org-wide, and the
//! deliveries of each event to each webhook.
//!
//! An event becomes deliveries when it happens ([`emit`], in the transaction of the change
//! that caused it, so that an event is recorded if and only if its change is): one row per
//! webhook that wants it, each holding the CloudEvents document to send, built once, so
//! that every attempt sends the same bytes. The deliverer (in `wharf-api`) takes what is
//! [`due`] and records each attempt ([`record_attempt`]).
//!
//! A webhook's deliveries go out one at a time, in the order of their events: [`due`]
//! gives only the oldest pending delivery of each webhook, so a receiver sees an
//! environment's events in the order they happened, even across retries. The alternative,
//! sending whatever is due, would let a retried `deployment.started` arrive after its
//! `deployment.succeeded`.
//!
//! The secret deliveries are signed with is sealed at rest, bound to its webhook's id, and
//! read only by [`secret`]: a [`Webhook`] as listed never carries it.

use crate::column::{self, parsed};
use crate::secrets::Sealer;
use crate::{Error, Tx, is_conflict};
use rusqlite::{OptionalExtension, params};
use serde_json::Value;

/// The tables: webhooks (the secret sealed, the events they want as a JSON list) and
/// their deliveries, each with the CloudEvents document it sends.
pub(crate) const MIGRATION: &str = "CREATE TABLE webhooks (
        id              TEXT PRIMARY KEY NOT NULL,
        app             TEXT REFERENCES apps (id) ON DELETE CASCADE,
        url             TEXT NOT NULL,
        events          TEXT NOT NULL,
        secret          BLOB NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('active', 'disabled')),
        disabled_reason TEXT,
        created_at      INTEGER NOT NULL,
        created_by      TEXT NOT NULL
     ) STRICT;
     CREATE INDEX webhooks_app ON webhooks (app);
     CREATE TABLE webhook_deliveries (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        webhook          TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
        event_id         TEXT NOT NULL,
        event_type       TEXT NOT NULL,
        app              TEXT,
        env              TEXT,
        body             TEXT NOT NULL,
        status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts         INTEGER NOT NULL,
        next_attempt_ms  INTEGER NOT NULL,
        last_status_code INTEGER,
        last_error       TEXT,
        created_ms       INTEGER NOT NULL,
        finished_ms      INTEGER,
        UNIQUE (webhook, event_id)
     ) STRICT;
     CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_ms);
     CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook, id);";

/// Defines an enum whose variants are written as the given names (in the store, in JSON,
/// in messages), with `ALL`, `as_str`, `Display` and `FromStr` (whose error lists the
/// names allowed).
macro_rules! names {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name it is written as.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                match text {
                    $( $text => Ok(Self::$variant), )+
                    other => Err(format!(
                        "unknown {} {other:?}: expected one of {}",
                        $what,
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

names! {
    /// The kinds of events a webhook can ask for.
    pub enum EventType ("event type") {
        /// The engine started a deployment.
        DeploymentStarted = "deployment.started",
        /// A deployment finished: the environment runs its set.
        DeploymentSucceeded = "deployment.succeeded",
        /// A deployment failed.
        DeploymentFailed = "deployment.failed",
        /// An environment was created.
        EnvironmentCreated = "environment.created",
        /// An environment's time to live is about to run out.
        EnvironmentExpiring = "environment.expiring",
        /// An environment was deleted.
        EnvironmentDeleted = "environment.deleted",
        /// CI registered an image.
        ArtefactPushed = "artefact.pushed",
        /// An environment's workloads were stopped, its resources kept.
        EnvironmentPaused = "environment.paused",
        /// A paused environment's workloads run again.
        EnvironmentResumed = "environment.resumed",
    }
}

names! {
    /// Whether a webhook is sent events.
    pub enum State ("webhook state") {
        /// It is sent the events it wants.
        Active = "active",
        /// It is sent nothing, and no delivery is queued for it: turned off by a person, or
        /// by the deliverer after a delivery failed every attempt.
        Disabled = "disabled",
    }
}

names! {
    /// Where a delivery is.
    pub enum DeliveryStatus ("delivery status") {
        /// Not delivered yet: waiting for its first attempt or for a retry.
        Pending = "pending",
        /// The receiver answered 2xx.
        Delivered = "delivered",
        /// Given up: every attempt failed, or its webhook was disabled.
        Failed = "failed",
    }
}

/// In a webhook's events, every event type (including those added later).
pub const ANY_EVENT: &str = "*";

/// A webhook, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// 12 hex digits, made by the server.
    pub id: String,
    /// The app whose events it is sent; `None`: every app's (org-wide).
    pub app: Option<String>,
    /// Where deliveries are posted (`http://` or `https://`).
    pub url: String,
    /// The event types it wants (names of [`EventType`]), or [`ANY_EVENT`].
    pub events: Vec<String>,
    /// Whether it is sent events.
    pub state: State,
    /// Why it is disabled, when it is.
    pub disabled_reason: Option<String>,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
}

impl Webhook {
    /// Whether it wants events of type `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.iter().any(|e| e == ANY_EVENT || e == kind)
    }
}

/// A new webhook id: 12 random hex digits.
pub fn new_id() -> String {
    hex::encode(rand::random::<[u8; 6]>())
}

/// A new signing secret: `whsec_` and 32 random bytes in hex.
pub fn new_secret() -> String {
    format!("whsec_{}", hex::encode(rand::random::<[u8; 32]>()))
}

fn context(id: &str) -> String {
    format!("webhook:{id}")
}

const COLUMNS: &str = "id, app, url, events, state, disabled_reason, created_at, created_by";

fn webhook(r: &rusqlite::Row<'_>) -> rusqlite::Result<Webhook> {
    Ok(Webhook {
        id: r.get("id")?,
        app: r.get("app")?,
        url: r.get("url")?,
        events: column::json(r, "events")?,
        state: parsed(r, "state")?,
        disabled_reason: r.get("disabled_reason")?,
        created_at: r.get("created_at")?,
        created_by: r.get("created_by")?,
    })
}

fn events_json(events: &[String]) -> String {
    serde_json::to_string(events).expect("a list of strings serializes")
}

/// Stores a webhook with its `secret` (sealed); [`Error::Conflict`] when the id is taken.
/// Its app must exist (check it in the same transaction).
pub fn create(tx: &Tx<'_>, sealer: &Sealer, w: &Webhook, secret: &str) -> Result<(), Error> {
    let sealed = sealer.seal(secret.as_bytes(), &context(&w.id));
    tx.conn()
        .execute(
            "INSERT INTO webhooks (id, app, url, events, secret, state, disabled_reason,
                                   created_at, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                w.id,
                w.app,
                w.url,
                events_json(&w.events),
                sealed,
                w.state.as_str(),
                w.disabled_reason,
                w.created_at,
                w.created_by
            ],
        )
        .map_err(|e| {
            if is_conflict(&e) {
                Error::Conflict(format!("webhook {}", w.id))
            } else {
                e.into()
            }
        })?;
    Ok(())
}

/// The webhook `id`, if any.
pub fn get(tx: &Tx<'_>, id: &str) -> Result<Option<Webhook>, Error> {
    Ok(tx
        .conn()
        .query_row(
            &format!("SELECT {COLUMNS} FROM webhooks WHERE id = ?1"),
            [id],
            webhook,
        )
        .optional()?)
}

/// The webhooks of `app`, or the org-wide ones when `app` is `None`, by id.
pub fn list(tx: &Tx<'_>, app: Option<&str>) -> Result<Vec<Webhook>, Error> {
    let mut stmt = tx.conn().prepare_cached(&format!(
        "SELECT {COLUMNS} FROM webhooks WHERE app IS ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map(params![app], webhook)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The secret of webhook `id`, opened; `None` when there is no such webhook.
pub fn secret(tx: &Tx<'_>, sealer: &Sealer, id: &str) -> Result<Option<Vec<u8>>, Error> {
    let sealed: Option<Vec<u8>> = tx
        .conn()
        .query_row("SELECT secret FROM webhooks WHERE id = ?1", [id], |r| {
            r.get("secret")
        })
        .optional()?;
    sealed
        .map(|s| {
            sealer.open(&s, &context(id)).map_err(|e| {
                Error::Corrupt(format!(
                    "the secret of webhook {id} does not open ({e}); the secret key changed: \
                     delete the webhook and create it again"
                ))
            })
        })
        .transpose()
}

/// Changes where a webhook posts and what it wants (what is `None` stays); whether it
/// exists.
pub fn update(
    tx: &Tx<'_>,
    id: &str,
    url: Option<&str>,
    events: Option<&[String]>,
) -> Result<bool, Error> {
    Ok(tx.conn().execute(
        "UPDATE webhooks SET url = COALESCE(?2, url), events = COALESCE(?3, events)
         WHERE id = ?1",
        params![id, url, events.map(events_json)],
    )? == 1)
}

/// Enables a webhook (which clears its reason) or disables it for `reason`; whether it
/// exists. Disabling leaves its pending deliveries as they are: [`fail_pending`] ends them.
pub fn set_state(tx: &Tx<'_>, id: &str, active: bool, reason: Option<&str>) -> Result<bool, Error> {
    let (state, reason) = if active {
        (State::Active, None)
    } else {
        (State::Disabled, reason)
    };
    Ok(tx.conn().execute(
        "UPDATE webhooks SET state = ?2, disabled_reason = ?3 WHERE id = ?1",
        params![id, state.as_str(), reason],
    )? == 1)
}

/// Removes a webhook with its deliveries; whether it was there.
pub fn delete(tx: &Tx<'_>, id: &str) -> Result<bool, Error> {
    Ok(tx
        .conn()
        .execute("DELETE FROM webhooks WHERE id = ?1", [id])?
        > 0)
}

/// Something that happened, as the code that made it happen tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutEvent {
    /// Its type: the name of an [`EventType`] (`deployment.failed`).
    pub kind: String,
    /// The app it happened in, if any.
    pub app: Option<String>,
    /// The environment it happened in, if any.
    pub env: Option<String>,
    /// What it is about, in the app (`deployments/7`, `envs/dev`).
    pub subject: String,
    /// What a receiver needs to act on it (a JSON object).
    pub data: Value,
}

/// Queues `event` for every active webhook that wants it (its app's and the org-wide
/// ones); how many deliveries were queued. Every delivery of the event carries the same
/// event id, so a receiver subscribed twice can tell. Call it in the transaction of the
/// change the event tells of.
pub fn emit(tx: &Tx<'_>, event: &OutEvent, now_ms: i64) -> Result<usize, Error> {
    let conn = tx.conn();
    let wanted: Vec<String> = {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM webhooks
             WHERE state = 'active' AND (app IS NULL OR app = ?1) ORDER BY id"
        ))?;
        let hooks = stmt
            .query_map(params![event.app], webhook)?
            .collect::<Result<Vec<_>, _>>()?;
        hooks
            .into_iter()
            .filter(|w| w.wants(&event.kind))
            .map(|w| w.id)
            .collect()
    };
    if wanted.is_empty() {
        return Ok(0);
    }
    let event_id = hex::encode(rand::random::<[u8; 8]>());
    let body = cloud_event(event, &event_id, now_ms).to_string();
    let mut insert = conn.prepare_cached(
        "INSERT INTO webhook_deliveries (webhook, event_id, event_type, app, env, body, status,
                                         attempts, next_attempt_ms, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7, ?7)",
    )?;
    for id in &wanted {
        insert.execute(params![
            id, event_id, event.kind, event.app, event.env, body, now_ms
        ])?;
    }
    Ok(wanted.len())
}

/// The CloudEvents 1.0 document (structured mode) of `event`.
fn cloud_event(event: &OutEvent, id: &str, now_ms: i64) -> Value {
    let source = match (&event.app, &event.env) {
        (Some(app), Some(env)) => format!("/apps/{app}/envs/{env}"),
        (Some(app), None) => format!("/apps/{app}"),
        (None, _) => "/".to_string(),
    };
    serde_json::json!({
        "specversion": "1.0",
        "id": id,
        "source": source,
        "type": format!("dev.wharf.{}", event.kind),
        "subject": event.subject,
        "time": rfc3339_ms(now_ms),
        "datacontenttype": "application/json",
        "data": event.data,
    })
}

/// A time in Unix milliseconds as RFC 3339 in UTC, with milliseconds
/// (`2026-12-02T06:14:33.123Z`).
fn rfc3339_ms(ms: i64) -> String {
    let seconds = wharf_core::clock::rfc3339(ms.div_euclid(1000));
    format!(
        "{}.{:03}Z",
        seconds.trim_end_matches('Z'),
        ms.rem_euclid(1000)
    )
}

/// One event queued for one webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its number, in the order deliveries were queued.
    pub id: i64,
    /// The webhook it goes to.
    pub webhook: String,
    /// The event's id (16 hex digits), the same in every delivery of the event.
    pub event_id: String,
    /// The event's type (`deployment.failed`).
    pub event_type: String,
    /// The event's app, if any.
    pub app: Option<String>,
    /// The event's environment, if any.
    pub env: Option<String>,
    /// The CloudEvents document sent, as JSON text.
    pub body: String,
    /// Where it is.
    pub status: DeliveryStatus,
    /// How many attempts were made.
    pub attempts: i64,
    /// When the next attempt is due (Unix milliseconds), while pending.
    pub next_attempt_ms: i64,
    /// The HTTP status of the last attempt, when the receiver answered.
    pub last_status_code: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was queued (Unix milliseconds).
    pub created_ms: i64,
    /// When it was delivered or given up (Unix milliseconds).
    pub finished_ms: Option<i64>,
}

const DELIVERY_COLUMNS: &str = "id, webhook, event_id, event_type, app, env, body, status, \
                                attempts, next_attempt_ms, last_status_code, last_error, \
                                created_ms, finished_ms";

fn delivery(r: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: r.get("id")?,
        webhook: r.get("webhook")?,
        event_id: r.get("event_id")?,
        event_type: r.get("event_type")?,
        app: r.get("app")?,
        env: r.get("env")?,
        body: r.get("body")?,
        status: parsed(r, "status")?,
        attempts: r.get("attempts")?,
        next_attempt_ms: r.get("next_attempt_ms")?,
        last_status_code: r.get("last_status_code")?,
        last_error: r.get("last_error")?,
        created_ms: r.get("created_ms")?,
        finished_ms: r.get("finished_ms")?,
    })
}

/// What is to be sent now: of each active webhook, its oldest pending delivery, when that
/// one's next attempt is due at `now_ms`; at most `limit`, the longest waiting first. A
/// webhook's later deliveries wait while an earlier one is pending.
pub fn due(tx: &Tx<'_>, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, Error> {
    let mut stmt = tx.conn().prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
         WHERE next_attempt_ms <= ?1
           AND id IN (SELECT min(d.id) FROM webhook_deliveries d
                      JOIN webhooks w ON w.id = d.webhook
                      WHERE d.status = 'pending' AND w.state = 'active'
                      GROUP BY d.webhook)
         ORDER BY next_attempt_ms, id LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![now_ms, limit as i64], delivery)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How an attempt to deliver ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver answered 2xx.
    Delivered {
        /// Its status.
        status_code: u16,
    },
    /// It failed, and is tried again at `at_ms`.
    Retry {
        /// When (Unix milliseconds).
        at_ms: i64,
        /// The receiver's status, when it answered.
        status_code: Option<u16>,
        /// Why it failed.
        error: String,
    },
    /// It failed, and the delivery is given up.
    Failed {
        /// The receiver's status, when it answered.
        status_code: Option<u16>,
        /// Why it failed.
        error: String,
    },
}

/// Records an attempt at delivery `id`; whether the delivery was still pending (one
/// failed meanwhile, because its webhook was disabled, is left as it is).
pub fn record_attempt(tx: &Tx<'_>, id: i64, attempt: &Attempt, now_ms: i64) -> Result<bool, Error> {
    use DeliveryStatus::{Delivered, Failed, Pending};
    let (status, next, code, error, finished) = match attempt {
        Attempt::Delivered { status_code } => {
            (Delivered, None, Some(*status_code), None, Some(now_ms))
        }
        Attempt::Retry {
            at_ms,
            status_code,
            error,
        } => (
            Pending,
            Some(*at_ms),
            *status_code,
            Some(error.as_str()),
            None,
        ),
        Attempt::Failed { status_code, error } => (
            Failed,
            None,
            *status_code,
            Some(error.as_str()),
            Some(now_ms),
        ),
    };
    Ok(tx.conn().execute(
        "UPDATE webhook_deliveries
         SET status = ?2, attempts = attempts + 1, next_attempt_ms = COALESCE(?3, next_attempt_ms),
             last_status_code = ?4, last_error = ?5, finished_ms = ?6
         WHERE id = ?1 AND status = 'pending'",
        params![id, status.as_str(), next, code, error, finished],
    )? == 1)
}

/// Gives up every pending delivery of `webhook`, for `reason`; how many there were.
pub fn fail_pending(tx: &Tx<'_>, webhook: &str, reason: &str, now_ms: i64) -> Result<usize, Error> {
    Ok(tx.conn().execute(
        "UPDATE webhook_deliveries SET status = 'failed', last_error = ?2, finished_ms = ?3
         WHERE webhook = ?1 AND status = 'pending'",
        params![webhook, reason, now_ms],
    )?)
}

/// The deliveries of `webhook`, newest first: at most `limit`, numbered below `before`
/// when given (the next page of a listing).
pub fn deliveries(
    tx: &Tx<'_>,
    webhook: &str,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<Delivery>, Error> {
    let mut stmt = tx.conn().prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
         WHERE webhook = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
    ))?;
    let rows = stmt.query_map(
        params![webhook, before.unwrap_or(i64::MAX), limit as i64],
        delivery,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Removes the deliveries that finished (delivered or failed) before `before_ms`; how
/// many. Pending ones stay, however old.
pub fn prune(tx: &Tx<'_>, before_ms: i64) -> Result<usize, Error> {
    Ok(tx.conn().execute(
        "DELETE FROM webhook_deliveries WHERE status != 'pending' AND finished_ms < ?1",
        [before_ms],
    )?)
}
