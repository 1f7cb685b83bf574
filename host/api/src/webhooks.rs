//! The deliverer of outbound events: it posts each queued delivery (see
//! `wharf_store::webhooks`) to its webhook, signed, and records how it went.
//!
//! Every `poll` it takes what is due (the oldest pending delivery of each active webhook)
//! and sends each on a task of its own: webhooks are served concurrently, one webhook's
//! deliveries one at a time, in order. A 2xx answer delivers; any other answer, a
//! connection error or a timeout is a failed attempt, retried after a backoff that doubles
//! (at most 5 minutes). After the last attempt the delivery fails, its webhook is disabled
//! and its other pending deliveries fail too: a receiver that never comes back ends in a
//! visible failure, not in a queue that grows while nobody looks. Delivery is at least
//! once (what was in flight at shutdown is sent again; `webhook-id` tells a repeat).
//!
//! Egress: a webhook's URL is written by an app owner, and the server posts from inside
//! the platform's network. So the addresses a host resolves to are checked when the
//! connection is made (`Egress`): loopback, private, link-local (cloud metadata),
//! CGNAT, multicast and unspecified addresses are refused unless ops allowed their
//! network. Checking the URL's text instead would let through a name that resolves (or is
//! made to resolve, after the check: DNS rebinding) to a private address; for the same
//! reason redirects are not followed and no proxy from the environment is used.

mod egress;

pub use egress::{InvalidNetwork, Network};

use crate::AppState;
use egress::Egress;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::{Id, JoinError, JoinSet};
use tracing::Instrument;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::DefaultConnector;
use wharf_core::clock::{now, now_ms};
use wharf_store::Store;
use wharf_store::secrets::Sealer;
use wharf_store::webhooks::{self, Attempt, Delivery};

/// How many due deliveries one poll takes at most.
/// The most deliveries sent at once (each holds a blocking thread while it waits).
const IN_FLIGHT: usize = 32;

/// The most deliveries of one app's webhooks (or of the org-wide ones) sent at once.
const IN_FLIGHT_PER_APP: usize = 8;

const BATCH: usize = 64;

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How long finished deliveries are kept, for their webhook's history (30 days).
const RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;

/// How often finished deliveries older than that are removed.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// How the deliverer works, set by ops (`wharf serve`).
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Networks whose addresses a webhook may reach although they are private or local
    /// (`--webhook-allow-network`); none by default.
    pub allowed_networks: Vec<Network>,
    /// Attempts at a delivery before it fails and its webhook is disabled (8).
    pub attempts: u32,
    /// The wait before the first retry (1 s), doubled after each attempt, at most 5 minutes.
    pub backoff: Duration,
    /// The longest one attempt may take, connecting and answering included (10 s).
    pub timeout: Duration,
    /// How often due deliveries are looked for (500 ms).
    pub poll: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            allowed_networks: Vec::new(),
            attempts: 8,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            poll: Duration::from_millis(500),
        }
    }
}

impl DeliverySettings {
    /// The wait after failed attempt number `attempt` (from 1) before the next.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.backoff.saturating_mul(factor).min(MAX_BACKOFF)
    }
}

/// The HTTP client deliveries are posted with: the egress rules, no redirects, no proxy,
/// `timeout` for the whole exchange, and any status returned as a response.
fn agent(settings: &DeliverySettings) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .timeout_global(Some(settings.timeout))
        .user_agent("wharf-webhooks")
        .build();
    ureq::Agent::with_parts(
        config,
        DefaultConnector::default(),
        Egress {
            inner: DefaultResolver::default(),
            allowed: settings.allowed_networks.as_slice().into(),
        },
    )
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The HMAC-SHA256 of `"<timestamp>.<body>"` with `secret`.
fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut mac =
        <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// The `wharf-signature` header of `body` sent at `timestamp` (Unix seconds):
/// `t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>" with secret>`. The secret is
/// the webhook's, as its text's bytes.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac(secret, timestamp, body))
    )
}

/// Why a signature is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header is not `t=<unix seconds>,v1=<hex>[,v1=<hex>...]`.
    #[error("the signature header is not t=<unix seconds>,v1=<hex>")]
    Malformed,
    /// The timestamp is further from now than the tolerance.
    #[error(
        "the signature's timestamp is {} s away from now, more than the {} s allowed: a \
         replay, or a clock out of step",
        .age.saturating_abs(),
        .tolerance
    )]
    Stale {
        /// Seconds from the timestamp to now (negative: in the future).
        age: i64,
        /// The seconds allowed either way.
        tolerance: i64,
    },
    /// No `v1` matches: another secret, or a changed body.
    #[error("no v1 signature matches the body: it was signed with another secret, or changed")]
    Mismatch,
}

/// Checks a `wharf-signature` header (`header`) of `body` with `secret`, at `now` (Unix
/// seconds): its timestamp may be at most `tolerance_secs` away from now (a replayed
/// request is refused once it is that old), and one of its `v1` values must be the
/// HMAC-SHA256 of `"<t>.<body>"`, compared in constant time.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t.parse::<i64>()),
            Some(("v1", v)) => candidates.push(v),
            _ => {}
        }
    }
    let (Some(Ok(timestamp)), false) = (timestamp, candidates.is_empty()) else {
        return Err(SignatureError::Malformed);
    };
    let age = now.saturating_sub(timestamp);
    if age.saturating_abs() > tolerance_secs {
        return Err(SignatureError::Stale {
            age,
            tolerance: tolerance_secs,
        });
    }
    let expected = mac(secret, timestamp, body);
    let matches = |c: &&str| hex::decode(c).is_ok_and(|c| same(&c, &expected));
    let found = candidates.iter().any(matches);
    found.then_some(()).ok_or(SignatureError::Mismatch)
}

/// Whether `a` and `b` are equal, in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the deliverer's tasks share.
struct Deliverer {
    store: Store,
    sealer: Sealer,
    agent: ureq::Agent,
    settings: DeliverySettings,
}

/// Starts the deliverer. It runs until the handle is aborted (at shutdown); a delivery in
/// flight then is sent again at the next start.
pub fn spawn(state: AppState, settings: DeliverySettings) -> tokio::task::JoinHandle<()> {
    let deliverer = Arc::new(Deliverer {
        agent: agent(&settings),
        store: state.store,
        sealer: state.sealer,
        settings,
    });
    tokio::spawn(run(deliverer))
}

/// The loop: every `poll`, or as soon as a delivery finishes, starts what is due.
async fn run(d: Arc<Deliverer>) {
    let mut sending: JoinSet<()> = JoinSet::new();
    // The webhook each task in flight sends to.
    // The webhook (and its app) each task in flight sends to.
    let mut busy: HashMap<Id, (String, Option<String>)> = HashMap::new();
    let mut last_prune: Option<tokio::time::Instant> = None;
    loop {
        if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(tokio::time::Instant::now());
            prune(&d).await;
        }
        let now = now_ms();
        match d.store.call(move |tx| webhooks::due(tx, now, BATCH)).await {
            Ok(due) => {
                for delivery in due {
                    if busy.values().any(|(w, _)| *w == delivery.webhook) {
                        continue;
                    }
                    // One app's slow receivers do not hold every slot.
                    let same_app = busy.values().filter(|(_, a)| *a == delivery.app).count();
                    if same_app >= IN_FLIGHT_PER_APP {
                        continue;
                    }
                    // At most this many deliveries at once: the rest wait for the next
                    // round, in order.
                    if sending.len() >= IN_FLIGHT {
                        break;
                    }
                    let span = tracing::info_span!(
                        "webhook.delivery",
                        webhook = %delivery.webhook,
                        delivery = delivery.id,
                        event = %delivery.event_type
                    );
                    let webhook = (delivery.webhook.clone(), delivery.app.clone());
                    let task = sending.spawn(deliver(d.clone(), delivery).instrument(span));
                    busy.insert(task.id(), webhook);
                }
            }
            Err(e) => tracing::warn!(
                error = %wharf_core::error_chain(&e),
                "reading the due webhook deliveries failed"
            ),
        }
        tokio::select! {
            () = tokio::time::sleep(d.settings.poll) => {}
            Some(done) = sending.join_next_with_id() => finished(&mut busy, done),
        }
        while let Some(done) = sending.try_join_next_with_id() {
            finished(&mut busy, done);
        }
    }
}

/// Frees the webhook of a task that ended.
fn finished(busy: &mut HashMap<Id, (String, Option<String>)>, done: Result<(Id, ()), JoinError>) {
    let id = match done {
        Ok((id, ())) => id,
        Err(e) => {
            tracing::error!(error = %e, "a webhook delivery task failed");
            e.id()
        }
    };
    busy.remove(&id);
}

/// Removes the finished deliveries older than [`RETENTION_MS`].
async fn prune(d: &Deliverer) {
    let before = now_ms() - RETENTION_MS;
    match d.store.call(move |tx| webhooks::prune(tx, before)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "old webhook deliveries removed"),
        Err(e) => tracing::warn!(
            error = %wharf_core::error_chain(&e),
            "removing old webhook deliveries failed"
        ),
    }
}

/// The URL and secret of `webhook`; `None` when it was deleted meanwhile (its
/// deliveries with it).
async fn destination(
    d: &Deliverer,
    webhook: &str,
) -> Result<Option<(String, Vec<u8>)>, wharf_store::Error> {
    let (id, sealer) = (webhook.to_string(), d.sealer.clone());
    d.store
        .call(move |tx| {
            let Some(hook) = webhooks::get(tx, &id)? else {
                return Ok(None);
            };
            Ok(webhooks::secret(tx, &sealer, &id)?.map(|secret| (hook.url, secret)))
        })
        .await
}

/// One attempt at `delivery`, recorded.
async fn deliver(d: Arc<Deliverer>, delivery: Delivery) {
    let result = match destination(&d, &delivery.webhook).await {
        Ok(None) => return,
        Ok(Some((url, secret))) => {
            let (agent, timeout, sent) = (d.agent.clone(), d.settings.timeout, delivery.clone());
            tokio::task::spawn_blocking(move || post(&agent, &url, &secret, &sent, timeout))
                .await
                .unwrap_or_else(|e| Err(Failure::new(format!("the request failed: {e}"))))
        }
        // The secret does not open (the server's key changed): no attempt can succeed,
        // and the webhook ends disabled, saying why.
        Err(wharf_store::Error::Corrupt(why)) => Err(Failure::new(why)),
        Err(e) => {
            tracing::warn!(error = %wharf_core::error_chain(&e), "reading the webhook failed");
            return;
        }
    };
    if let Err(e) = record(&d, &delivery, result).await {
        tracing::warn!(
            error = %wharf_core::error_chain(&e),
            "recording a webhook delivery attempt failed"
        );
    }
}

/// Records how an attempt ended. The last failed attempt fails the delivery, disables
/// the webhook and fails its other pending deliveries, in one transaction.
async fn record(
    d: &Deliverer,
    delivery: &Delivery,
    result: Result<u16, Failure>,
) -> Result<(), wharf_store::Error> {
    let attempt_no = delivery.attempts.saturating_add(1);
    let attempts = d.settings.attempts.max(1);
    let now = now_ms();
    let attempt = match result {
        Ok(status_code) => {
            tracing::info!(status = status_code, "webhook delivered");
            Attempt::Delivered { status_code }
        }
        Err(f) if attempt_no >= i64::from(attempts) => {
            tracing::warn!(error = %f.error, attempts, "webhook delivery failed; webhook disabled");
            Attempt::Failed {
                status_code: f.status_code,
                error: f.error,
            }
        }
        Err(f) => {
            let delay = d
                .settings
                .delay(u32::try_from(attempt_no).unwrap_or(u32::MAX));
            let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
            let attempt = attempt_no;
            tracing::warn!(error = %f.error, attempt, retry_in = ?delay, "webhook delivery failed");
            Attempt::Retry {
                at_ms: now.saturating_add(delay_ms),
                status_code: f.status_code,
                error: f.error,
            }
        }
    };
    let (id, webhook) = (delivery.id, delivery.webhook.clone());
    d.store
        .transaction(move |tx| {
            let pending = webhooks::record_attempt(tx, id, &attempt, now)?;
            if let Attempt::Failed { error, .. } = &attempt
                && pending
            {
                let reason = format!("{attempts} deliveries failed in a row; last: {error}");
                webhooks::set_state(tx, &webhook, false, Some(&reason))?;
                let why = format!("the webhook was disabled: {reason}");
                webhooks::fail_pending(tx, &webhook, &why, now)?;
            }
            Ok(())
        })
        .await
}

/// Why an attempt failed.
struct Failure {
    /// The receiver's status, when it answered.
    status_code: Option<u16>,
    /// What happened, for the delivery's history.
    error: String,
}

impl Failure {
    /// A failure before any answer.
    fn new(error: String) -> Self {
        Self {
            status_code: None,
            error,
        }
    }
}

/// Posts `delivery` to `url`, signed with `secret` (blocking: run it off the async
/// workers); the status of a 2xx answer.
fn post(
    agent: &ureq::Agent,
    url: &str,
    secret: &[u8],
    delivery: &Delivery,
    timeout: Duration,
) -> Result<u16, Failure> {
    let (body, timestamp) = (delivery.body.as_bytes(), now());
    let response = agent
        .post(url)
        .header("content-type", "application/cloudevents+json")
        .header("webhook-id", delivery.event_id.as_str())
        .header("webhook-timestamp", timestamp.to_string())
        .header("wharf-signature", sign(secret, timestamp, body))
        .send(body)
        .map_err(|e| Failure::new(describe(e, timeout)))?;
    let status = response.status();
    if status.is_success() {
        Ok(status.as_u16())
    } else {
        Err(Failure {
            status_code: Some(status.as_u16()),
            error: format!("the receiver answered {status}"),
        })
    }
}

/// What a client error means for the person reading the delivery's history.
fn describe(e: ureq::Error, timeout: Duration) -> String {
    match e {
        ureq::Error::Timeout(_) => format!("no answer within {timeout:?}"),
        ureq::Error::HostNotFound => "the host name does not resolve".to_string(),
        ureq::Error::Io(io) => format!("the connection failed: {io}"),
        ureq::Error::Other(cause) => cause.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::egress::{Egress, permitted};
    use super::*;
    use std::net::IpAddr;
    use ureq::config::Config;
    use ureq::http::Uri;
    use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
    use ureq::unversioned::transport::NextTimeout;

    fn check(secret: &str, header: &str, body: &[u8], now: i64) -> Result<(), SignatureError> {
        verify(secret.as_bytes(), header, body, now, 300)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_signature_is_the_hmac_of_time_and_body_and_verifies_within_the_window() {
        let body = br#"{"a":1}"#;
        let header = sign(b"whsec_test", 1_700_000_000, body);
        // What Python's hmac.new(b"whsec_test", b'1700000000.{"a":1}', hashlib.sha256) gives.
        let v1 = "38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789";
        assert_eq!(header, format!("t=1700000000,v1={v1}"));
        assert_eq!(check("whsec_test", &header, body, 1_700_000_300), Ok(()));
        let rotated = format!("v1=00,{header}");
        assert_eq!(check("whsec_test", &rotated, body, 1_700_000_000), Ok(()));
        let mismatch = Err(SignatureError::Mismatch);
        assert_eq!(check("whsec_other", &header, body, 1_700_000_000), mismatch);
        assert_eq!(check("whsec_test", &header, b"{}", 1_700_000_000), mismatch);
        let stale = |now, age| {
            let err = check("whsec_test", &header, body, now).unwrap_err();
            err == SignatureError::Stale {
                age,
                tolerance: 300,
            }
        };
        assert!(stale(1_700_000_301, 301) && stale(1_699_999_000, -1000));
        for bad in ["", "v1=abc", "t=soon,v1=abc", "t=1700000000"] {
            let got = check("whsec_test", bad, body, 1_700_000_000);
            assert_eq!(got, Err(SignatureError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn networks_are_written_in_cidr_notation_and_hold_their_addresses() {
        let net = |text: &str| text.parse::<Network>().unwrap();
        assert!(net("10.0.0.0/8").contains(ip("10.200.3.4")));
        assert!(net("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
        assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(net("::1/128").contains(ip("::1")));
        assert!(net("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(!net("fd00::/8").contains(ip("10.0.0.1")));
        assert_eq!(net("192.168.1.7").to_string(), "192.168.1.7/32");
        for (text, why) in [
            ("10.0.0.1/8", "the network is 10.0.0.0/8"),
            ("10.0.0.0/33", "from 0 to 32"),
            ("::1/x", "from 0 to 128"),
            ("intranet", "not an IP address"),
        ] {
            let err = text.parse::<Network>().unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn private_and_local_addresses_are_refused_unless_their_network_is_allowed() {
        let refused = "127.0.0.1 10.1.2.3 172.16.0.1 192.168.0.1 169.254.169.254 100.64.0.1 \
                       0.0.0.0 224.0.0.1 255.255.255.255 ::1 :: fd12::1 fe80::1 \
                       ::ffff:127.0.0.1 ::ffff:169.254.169.254 192.0.0.8 198.18.0.1 \
                       240.0.0.1 64:ff9b::a9fe:a9fe 2002:a9fe:a9fe::1 ::a9fe:a9fe";
        for refused in refused.split_whitespace() {
            assert!(!permitted(ip(refused), &[]), "{refused}");
        }
        for public in [
            "8.8.8.8",
            "100.128.0.1",
            "172.32.0.1",
            "2001:db8::1",
            "64:ff9b::808:808",
        ] {
            assert!(permitted(ip(public), &[]), "{public}");
        }
        let loopback: Network = "127.0.0.0/8".parse().unwrap();
        assert!(permitted(ip("127.0.0.1"), &[loopback]));
        assert!(!permitted(ip("10.0.0.1"), &[loopback]));
    }

    fn resolve(url: &str, allowed: &[Network]) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let uri: Uri = url.parse().unwrap();
        let egress = Egress {
            inner: DefaultResolver::default(),
            allowed: allowed.into(),
        };
        egress.resolve(&uri, &Config::default(), NextTimeout::default())
    }

    #[test]
    fn the_address_connected_to_is_checked_and_the_refusal_says_how_to_allow_it() {
        let err = resolve("http://127.0.0.1:9/hook", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("host 127.0.0.1 resolves only to private or local addresses"),
            "{err}"
        );
        assert!(err.contains("--webhook-allow-network CIDR"), "{err}");
        let loopback: Network = "127.0.0.0/8".parse().unwrap();
        assert_eq!(
            resolve("http://127.0.0.1:9/", &[loopback]).unwrap().len(),
            1
        );
        assert!(resolve("http://[fd00::1]:80/", &[]).is_err());
    }

    #[test]
    fn the_backoff_doubles_up_to_five_minutes() {
        let settings = DeliverySettings::default();
        let waits = [1, 2, 3, 8, 9, 40].map(|n| settings.delay(n).as_secs());
        assert_eq!(waits, [1, 2, 4, 128, 256, 300]);
    }
}
