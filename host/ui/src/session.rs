//! Sessions: who is signed in, kept on the server.
//!
//! Signing in with an API token opens a session: a random id (32 bytes) in an `HttpOnly`,
//! `SameSite=Strict` cookie scoped to `/ui` (`Secure` when the request came over TLS),
//! and on the server the hash of the token (never the token), the principal, and a CSRF
//! token that every form must send back. The table is keyed by the id's sha256, so
//! what is in memory cannot be replayed as a cookie. A session ends when its viewer
//! signs out, after `idle` without a request, after `lifetime` in any case, or when its
//! token is revoked or expires (the API refuses the token, and the session goes).
//!
//! Sessions live in memory: a restart of the server signs everyone out (a deliberate
//! choice over a table in the store: nothing of a session survives the process, and
//! there is nothing to clean up). At most `max` sessions are kept; beyond that the one
//! idle longest is dropped.

use crate::Ui;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use wharf_api::auth::Caller;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "wharf_session";
/// The cookie that carries the sign-in form's CSRF token before there is a session.
pub(crate) const LOGIN_COOKIE: &str = "wharf_login";

/// How long sessions live, and how many there may be.
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    /// Without a request for this long, a session ends.
    pub idle: Duration,
    /// A session ends this long after it began, whatever happens.
    pub lifetime: Duration,
    /// The most sessions kept at once.
    pub max: usize,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(30 * 60),
            lifetime: Duration::from_secs(12 * 3600),
            max: 10_000,
        }
    }
}

/// One signed-in viewer, as the server keeps it.
#[derive(Debug, Clone)]
struct Session {
    token_hash: String,
    csrf: String,
    began: Instant,
    seen: Instant,
}

/// The sessions of the server.
pub(crate) struct Sessions {
    settings: SessionSettings,
    by_id_hash: Mutex<HashMap<String, Session>>,
}

fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A random token of 32 bytes, hex.
pub(crate) fn random() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl Sessions {
    pub(crate) fn new(settings: SessionSettings) -> Self {
        Self {
            settings,
            by_id_hash: Mutex::new(HashMap::new()),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_id_hash
            .lock()
            .expect("the session table is never poisoned")
    }

    /// Opens a session for the token with hash `token_hash`; gives its id (for the cookie).
    pub(crate) fn open(&self, token_hash: String) -> String {
        let id = random();
        let now = Instant::now();
        let mut table = self.table();
        let settings = self.settings;
        table.retain(|_, s| alive(s, now, settings));
        if table.len() >= settings.max
            && let Some(oldest) = table
                .iter()
                .min_by_key(|(_, s)| s.seen)
                .map(|(k, _)| k.clone())
        {
            table.remove(&oldest);
        }
        table.insert(
            digest(&id),
            Session {
                token_hash,
                csrf: random(),
                began: now,
                seen: now,
            },
        );
        id
    }

    /// The live session with id `id` (its token's hash and CSRF token), marked as seen.
    fn touch(&self, id: &str) -> Option<(String, String)> {
        let now = Instant::now();
        let mut table = self.table();
        let key = digest(id);
        let session = table.get_mut(&key)?;
        if !alive(session, now, self.settings) {
            table.remove(&key);
            return None;
        }
        session.seen = now;
        Some((session.token_hash.clone(), session.csrf.clone()))
    }

    /// Ends the session with id `id`.
    pub(crate) fn close(&self, id: &str) {
        self.table().remove(&digest(id));
    }
}

fn alive(s: &Session, now: Instant, settings: SessionSettings) -> bool {
    now.duration_since(s.seen) < settings.idle && now.duration_since(s.began) < settings.lifetime
}

/// The value of cookie `name` in `headers`.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the request came over TLS (directly, or through a proxy that says so).
pub(crate) fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value for cookie `name` scoped to `/ui`; `None` deletes it.
pub(crate) fn set_cookie(name: &str, value: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match value {
        Some(v) => format!("{name}={v}; Path=/ui; HttpOnly; SameSite=Strict{secure}"),
        None => format!("{name}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

/// The signed-in viewer of a page: its session and the caller the API sees.
pub(crate) struct Viewer {
    /// The session's id (from the cookie).
    pub(crate) session: String,
    /// The CSRF token its forms carry.
    pub(crate) csrf: String,
    /// Who it is, with its role bindings.
    pub(crate) caller: Caller,
}

impl Viewer {
    /// Whether `sent` is this session's CSRF token (compared in constant time).
    pub(crate) fn csrf_matches(&self, sent: &str) -> bool {
        let (a, b) = (self.csrf.as_bytes(), sent.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// No session: the browser goes to the sign-in page, which brings it back here after.
pub(crate) struct SignIn {
    next: String,
    why: Option<&'static str>,
}

impl IntoResponse for SignIn {
    fn into_response(self) -> Response {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("next", &self.next);
        if let Some(why) = self.why {
            query.append_pair("why", why);
        }
        Redirect::to(&format!("/ui/login?{}", query.finish())).into_response()
    }
}

impl FromRequestParts<Ui> for Viewer {
    type Rejection = SignIn;

    async fn from_request_parts(parts: &mut Parts, ui: &Ui) -> Result<Self, SignIn> {
        let next = parts
            .uri
            .path_and_query()
            .map_or("/ui/".to_string(), |p| p.to_string());
        let sign_in = |why| SignIn {
            next: next.clone(),
            why,
        };
        let session = cookie(&parts.headers, COOKIE)
            .ok_or_else(|| sign_in(None))?
            .to_string();
        let (token_hash, csrf) = ui
            .sessions
            .touch(&session)
            .ok_or_else(|| sign_in(Some("expired")))?;
        let caller = match wharf_api::auth::caller(&ui.state, token_hash).await {
            Ok(caller) => caller,
            Err(_) => {
                ui.sessions.close(&session);
                return Err(sign_in(Some("token")));
            }
        };
        Ok(Self {
            session,
            csrf,
            caller,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(idle: u64, lifetime: u64, max: usize) -> SessionSettings {
        SessionSettings {
            idle: Duration::from_secs(idle),
            lifetime: Duration::from_secs(lifetime),
            max,
        }
    }

    #[test]
    fn a_session_is_found_by_its_id_only_until_it_is_closed() {
        let sessions = Sessions::new(settings(60, 60, 10));
        let id = sessions.open("hash".into());
        let (hash, csrf) = sessions.touch(&id).unwrap();
        assert_eq!(hash, "hash");
        assert_eq!(csrf.len(), 64);
        assert!(sessions.touch("another").is_none());
        sessions.close(&id);
        assert!(sessions.touch(&id).is_none());
    }

    #[test]
    fn an_idle_session_ends() {
        let sessions = Sessions::new(settings(0, 60, 10));
        let id = sessions.open("hash".into());
        assert!(sessions.touch(&id).is_none());
    }

    #[test]
    fn beyond_the_most_sessions_the_one_idle_longest_goes() {
        let sessions = Sessions::new(settings(60, 60, 2));
        let first = sessions.open("a".into());
        let second = sessions.open("b".into());
        sessions.touch(&first);
        let third = sessions.open("c".into());
        assert!(sessions.touch(&second).is_none());
        assert!(sessions.touch(&first).is_some() && sessions.touch(&third).is_some());
    }

    #[test]
    fn cookies_are_read_by_name_and_written_strict() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; wharf_session=xyz".parse().unwrap());
        assert_eq!(cookie(&headers, COOKIE), Some("xyz"));
        assert_eq!(
            set_cookie(COOKIE, Some("v"), true),
            "wharf_session=v; Path=/ui; HttpOnly; SameSite=Strict; Secure"
        );
    }
}
