//! Webhooks and their deliveries: who is sent what, in which order, and what an attempt
//! leaves behind.

use crate::apps::{self, App};
use crate::secrets::Sealer;
use crate::webhooks::{self, Attempt, DeliveryStatus, OutEvent, State, Webhook};
use crate::{Store, Tx};
use serde_json::{Value, json};
use wharf_core::Id;

fn sealer() -> Sealer {
    Sealer::new([9; 32])
}

fn hook(id: &str, app: Option<&str>, events: &[&str]) -> Webhook {
    Webhook {
        id: id.into(),
        app: app.map(str::to_string),
        url: format!("https://hooks.example.com/{id}"),
        events: events.iter().map(|e| e.to_string()).collect(),
        state: State::Active,
        disabled_reason: None,
        created_at: 1,
        created_by: "alice".into(),
    }
}

fn event(kind: &str, app: Option<&str>, env: Option<&str>) -> OutEvent {
    OutEvent {
        kind: kind.into(),
        app: app.map(str::to_string),
        env: env.map(str::to_string),
        subject: "deployments/7".into(),
        data: json!({ "deployment": 7 }),
    }
}

/// A store with the apps `shop` and `bank`, and `hooks` created in it.
async fn store_with(hooks: Vec<Webhook>) -> Store {
    let store = Store::open_in_memory().await.unwrap();
    let sealer = sealer();
    store
        .transaction(move |tx| {
            for app in ["shop", "bank"] {
                apps::create(
                    tx,
                    &App {
                        id: Id::new(app).unwrap(),
                        name: app.into(),
                        created_at: 1,
                        created_by: "alice".into(),
                        deleting: false,
                    },
                )?;
            }
            for h in &hooks {
                webhooks::create(tx, &sealer, h, &format!("secret-of-{}", h.id))?;
            }
            Ok(())
        })
        .await
        .unwrap();
    store
}

/// What `f` returns on `store`, in one transaction.
async fn with<R: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Tx<'_>) -> Result<R, crate::Error> + Send + 'static,
) -> R {
    store.transaction(f).await.unwrap()
}

#[tokio::test]
async fn webhooks_read_back_as_written_and_their_secret_opens_only_by_itself() {
    let org = hook("0000000000aa", None, &["*"]);
    let shop = hook("0000000000bb", Some("shop"), &["deployment.failed"]);
    let store = store_with(vec![org.clone(), shop.clone()]).await;
    let (got, listed_org, listed_shop, listed_bank) = with(&store, |tx| {
        Ok((
            webhooks::get(tx, "0000000000bb")?,
            webhooks::list(tx, None)?,
            webhooks::list(tx, Some("shop"))?,
            webhooks::list(tx, Some("bank"))?,
        ))
    })
    .await;
    assert_eq!(got, Some(shop.clone()));
    assert_eq!(listed_org, [org]);
    assert_eq!(listed_shop, [shop]);
    assert!(listed_bank.is_empty());

    let opener = sealer();
    let secret = with(&store, move |tx| {
        webhooks::secret(tx, &opener, "0000000000bb")
    })
    .await;
    assert_eq!(secret.as_deref(), Some(&b"secret-of-0000000000bb"[..]));
    let stored: Vec<u8> = with(&store, |tx| {
        Ok(tx.conn().query_row(
            "SELECT secret FROM webhooks WHERE id = '0000000000bb'",
            [],
            |r| r.get("secret"),
        )?)
    })
    .await;
    assert!(!stored.windows(9).any(|w| w == b"secret-of"), "sealed");
    let other_key = Sealer::new([1; 32]);
    let err = store
        .call(move |tx| webhooks::secret(tx, &other_key, "0000000000bb"))
        .await
        .unwrap_err();
    assert!(matches!(err, crate::Error::Corrupt(_)), "{err}");

    let dup = store
        .call(|tx| {
            webhooks::create(
                tx,
                &sealer(),
                &hook("0000000000aa", None, &["*"]),
                "x".repeat(24).as_str(),
            )
        })
        .await
        .unwrap_err();
    assert_eq!(dup.to_string(), "webhook 0000000000aa already exists");
}

#[tokio::test]
async fn a_webhook_is_changed_disabled_with_a_reason_and_enabled_without_one() {
    let store = store_with(vec![hook("0000000000aa", Some("shop"), &["*"])]).await;
    let (disabled, enabled, changed) = with(&store, |tx| {
        let events = vec!["environment.created".to_string()];
        assert!(webhooks::set_state(
            tx,
            "0000000000aa",
            false,
            Some("8 deliveries failed in a row")
        )?);
        let disabled = webhooks::get(tx, "0000000000aa")?.unwrap();
        assert!(webhooks::set_state(
            tx,
            "0000000000aa",
            true,
            Some("ignored")
        )?);
        let enabled = webhooks::get(tx, "0000000000aa")?.unwrap();
        assert!(webhooks::update(
            tx,
            "0000000000aa",
            Some("http://other.example.com/"),
            Some(events.as_slice())
        )?);
        assert!(!webhooks::update(tx, "nope", None, None)?);
        assert!(!webhooks::set_state(tx, "nope", true, None)?);
        Ok((
            disabled,
            enabled,
            webhooks::get(tx, "0000000000aa")?.unwrap(),
        ))
    })
    .await;
    assert_eq!(
        (disabled.state, disabled.disabled_reason.as_deref()),
        (State::Disabled, Some("8 deliveries failed in a row"))
    );
    assert_eq!(
        (enabled.state, enabled.disabled_reason),
        (State::Active, None)
    );
    assert_eq!(changed.url, "http://other.example.com/");
    assert_eq!(changed.events, ["environment.created"]);
}

#[tokio::test]
async fn an_event_goes_to_every_active_webhook_that_wants_it_with_one_event_id() {
    let mut off = hook("0000000000dd", None, &["*"]);
    off.state = State::Disabled;
    let store = store_with(vec![
        hook("0000000000aa", None, &["*"]),
        hook("0000000000bb", Some("shop"), &["deployment.failed"]),
        hook("0000000000cc", Some("bank"), &["*"]),
        off,
        hook("0000000000ee", Some("shop"), &["environment.created"]),
    ])
    .await;
    let (queued, none_wanted, due) = with(&store, |tx| {
        let failed = event("deployment.failed", Some("shop"), Some("dev"));
        let queued = webhooks::emit(tx, &failed, 1_796_192_073_123)?;
        let none_wanted = webhooks::emit(tx, &event("artefact.pushed", None, None), 5)?;
        Ok((queued, none_wanted, webhooks::due(tx, i64::MAX, 10)?))
    })
    .await;
    assert_eq!(queued, 2, "the org-wide webhook and shop's failure hook");
    assert_eq!(none_wanted, 1, "only the org-wide webhook wants any event");
    let to: Vec<&str> = due.iter().map(|d| d.webhook.as_str()).collect();
    assert_eq!(to, ["0000000000aa", "0000000000bb"]);
    let (a, b) = (&due[0], &due[1]);
    assert_eq!(a.event_id, b.event_id);
    assert_eq!(a.event_id.len(), 16);
    assert_eq!(a.body, b.body, "one document, built once");
    assert_eq!((a.attempts, a.next_attempt_ms), (0, 1_796_192_073_123));
    assert_eq!(a.status, DeliveryStatus::Pending);
    let body: Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(
        body,
        json!({
            "specversion": "1.0",
            "id": a.event_id,
            "source": "/apps/shop/envs/dev",
            "type": "dev.wharf.deployment.failed",
            "subject": "deployments/7",
            "time": "2026-12-02T06:14:33.123Z",
            "datacontenttype": "application/json",
            "data": { "deployment": 7 },
        })
    );
}

#[tokio::test]
async fn a_webhooks_later_delivery_waits_while_an_earlier_one_is_pending() {
    let store = store_with(vec![
        hook("0000000000aa", Some("shop"), &["*"]),
        hook("0000000000bb", Some("shop"), &["*"]),
    ])
    .await;
    let first_due = with(&store, |tx| {
        webhooks::emit(
            tx,
            &event("deployment.started", Some("shop"), Some("dev")),
            10,
        )?;
        webhooks::emit(
            tx,
            &event("deployment.succeeded", Some("shop"), Some("dev")),
            20,
        )?;
        webhooks::due(tx, 100, 10)
    })
    .await;
    let kinds: Vec<(&str, &str)> = first_due
        .iter()
        .map(|d| (d.webhook.as_str(), d.event_type.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("0000000000aa", "deployment.started"),
            ("0000000000bb", "deployment.started")
        ]
    );
    let (a_started, b_started) = (first_due[0].id, first_due[1].id);
    let (retrying, later, after_delivery) = with(&store, move |tx| {
        let retry = Attempt::Retry {
            at_ms: 1_000,
            status_code: Some(503),
            error: "the receiver answered 503".into(),
        };
        assert!(webhooks::record_attempt(tx, a_started, &retry, 100)?);
        let delivered = Attempt::Delivered { status_code: 204 };
        assert!(webhooks::record_attempt(tx, b_started, &delivered, 100)?);
        let retrying = webhooks::due(tx, 500, 10)?;
        let later = webhooks::due(tx, 1_000, 10)?;
        webhooks::record_attempt(tx, a_started, &delivered, 1_000)?;
        Ok((retrying, later, webhooks::due(tx, 1_000, 10)?))
    })
    .await;
    let ids = |due: &[webhooks::Delivery]| -> Vec<(String, String)> {
        due.iter()
            .map(|d| (d.webhook.clone(), d.event_type.clone()))
            .collect()
    };
    let pair = |w: &str, e: &str| (w.to_string(), e.to_string());
    assert_eq!(
        ids(retrying.as_slice()),
        [pair("0000000000bb", "deployment.succeeded")],
        "a's succeeded waits for its started, whose retry is not due"
    );
    assert_eq!(
        ids(later.as_slice()),
        [
            pair("0000000000bb", "deployment.succeeded"),
            pair("0000000000aa", "deployment.started")
        ]
    );
    assert_eq!(
        ids(after_delivery.as_slice()),
        [
            pair("0000000000aa", "deployment.succeeded"),
            pair("0000000000bb", "deployment.succeeded")
        ],
        "a's succeeded goes once its started was delivered"
    );
    let history = with(&store, |tx| {
        webhooks::deliveries(tx, "0000000000aa", None, 10)
    })
    .await;
    let started = history.last().unwrap();
    assert_eq!(started.event_type, "deployment.started");
    assert_eq!(
        (started.status, started.attempts, started.last_status_code),
        (DeliveryStatus::Delivered, 2, Some(204))
    );
    assert_eq!(started.last_error, None);
    assert_eq!(started.finished_ms, Some(1_000));
}

#[tokio::test]
async fn a_disabled_webhook_is_given_nothing_and_its_pending_deliveries_fail() {
    let store = store_with(vec![hook("0000000000aa", None, &["*"])]).await;
    let (failed, due, not_queued, history, again) = with(&store, |tx| {
        for n in 0..3 {
            webhooks::emit(tx, &event("artefact.pushed", None, None), n)?;
        }
        let first = webhooks::due(tx, 10, 10)?[0].id;
        let given_up = Attempt::Failed {
            status_code: None,
            error: "connection refused".into(),
        };
        webhooks::record_attempt(tx, first, &given_up, 10)?;
        webhooks::set_state(
            tx,
            "0000000000aa",
            false,
            Some("8 deliveries failed in a row"),
        )?;
        let failed = webhooks::fail_pending(
            tx,
            "0000000000aa",
            "the webhook was disabled: 8 deliveries failed in a row",
            11,
        )?;
        let due = webhooks::due(tx, 100, 10)?;
        let not_queued = webhooks::emit(tx, &event("artefact.pushed", None, None), 12)?;
        let history = webhooks::deliveries(tx, "0000000000aa", None, 10)?;
        let late = Attempt::Delivered { status_code: 200 };
        let again = webhooks::record_attempt(tx, history[0].id, &late, 13)?;
        Ok((failed, due, not_queued, history, again))
    })
    .await;
    assert_eq!(failed, 2);
    assert!(due.is_empty());
    assert_eq!(not_queued, 0);
    assert!(!again, "a failed delivery stays failed");
    let seen: Vec<(DeliveryStatus, Option<&str>)> = history
        .iter()
        .map(|d| (d.status, d.last_error.as_deref()))
        .collect();
    let disabled = Some("the webhook was disabled: 8 deliveries failed in a row");
    assert_eq!(
        seen,
        [
            (DeliveryStatus::Failed, disabled),
            (DeliveryStatus::Failed, disabled),
            (DeliveryStatus::Failed, Some("connection refused")),
        ],
        "newest first"
    );
    let page = with(&store, move |tx| {
        webhooks::deliveries(tx, "0000000000aa", Some(history[1].id), 10)
    })
    .await;
    assert_eq!(page.len(), 1);
}

#[tokio::test]
async fn finished_deliveries_are_pruned_and_an_apps_webhooks_go_with_it() {
    let store = store_with(vec![
        hook("0000000000aa", Some("shop"), &["*"]),
        hook("0000000000bb", None, &["*"]),
    ])
    .await;
    let (pruned, left, hooks) = with(&store, |tx| {
        webhooks::emit(
            tx,
            &event("environment.created", Some("shop"), Some("dev")),
            1,
        )?;
        webhooks::emit(
            tx,
            &event("environment.created", Some("shop"), Some("qa")),
            2,
        )?;
        let first = webhooks::deliveries(tx, "0000000000bb", None, 10)?
            .last()
            .unwrap()
            .id;
        webhooks::record_attempt(tx, first, &Attempt::Delivered { status_code: 200 }, 5)?;
        let pruned = webhooks::prune(tx, 6)?;
        let left = webhooks::deliveries(tx, "0000000000bb", None, 10)?.len();
        apps::delete(tx, "shop")?;
        Ok((
            pruned,
            left,
            (webhooks::list(tx, Some("shop"))?, webhooks::list(tx, None)?),
        ))
    })
    .await;
    assert_eq!((pruned, left), (1, 1), "the pending delivery stays");
    assert!(hooks.0.is_empty());
    assert_eq!(hooks.1.len(), 1);
}

#[test]
fn event_types_are_written_as_their_names() {
    use crate::webhooks::EventType;
    for t in EventType::ALL {
        assert_eq!(t.as_str().parse::<EventType>(), Ok(*t));
    }
    let err = "deployment.exploded".parse::<EventType>().unwrap_err();
    assert!(err.contains("expected one of deployment.started"), "{err}");
}
