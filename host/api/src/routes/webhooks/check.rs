//! What a webhook request must be: its URL, its events, its secret; every problem listed
//! at once, by JSON Pointer.

use super::{MAX_SECRET, MAX_URL, MIN_SECRET, NewWebhook, WebhookChange};
use crate::ApiError;
use wharf_store::webhooks::{ANY_EVENT, EventType};

/// The problems of a webhook's URL, each with its pointer.
pub(super) fn check_url(text: &str, problems: &mut Vec<(String, String)>) {
    let mut problem = |message: String| problems.push(("/url".to_string(), message));
    if text.len() > MAX_URL {
        return problem(format!("at most {MAX_URL} characters"));
    }
    let url = match url::Url::parse(text) {
        Ok(url) => url,
        Err(e) => return problem(format!("{text:?} is not a URL ({e})")),
    };
    if !matches!(url.scheme(), "http" | "https") {
        problem(format!(
            "the scheme is {}: give an https:// URL",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        problem("take the user and password out: put a token in the path or the query".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        problem("name a host".into());
    }
}

/// The problems of a webhook's events, each with its pointer; the events without repeats.
pub(super) fn check_events(events: &[String], problems: &mut Vec<(String, String)>) -> Vec<String> {
    let known = || {
        let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        format!("{}, or \"{ANY_EVENT}\" for all", names.join(", "))
    };
    if events.is_empty() {
        problems.push(("/events".into(), format!("name an event type: {}", known())));
    }
    let mut kept: Vec<String> = Vec::new();
    for (i, event) in events.iter().enumerate() {
        if event != ANY_EVENT && event.parse::<EventType>().is_err() {
            problems.push((
                format!("/events/{i}"),
                format!("unknown event type {event:?}; the types are {}", known()),
            ));
        } else if !kept.contains(event) {
            kept.push(event.clone());
        }
    }
    kept
}

/// A new webhook's events, or every problem it has.
pub(super) fn check_new(new: &NewWebhook) -> Result<Vec<String>, ApiError> {
    let mut problems = Vec::new();
    check_url(&new.url, &mut problems);
    let events = check_events(&new.events, &mut problems);
    if let Some(secret) = &new.secret {
        let n = secret.chars().count();
        if !(MIN_SECRET..=MAX_SECRET).contains(&n) {
            problems.push((
                "/secret".into(),
                format!(
                    "{MIN_SECRET} to {MAX_SECRET} characters (it has {n}); or leave it out, \
                     and a random one is made"
                ),
            ));
        }
    }
    if problems.is_empty() {
        Ok(events)
    } else {
        Err(ApiError::Invalid(problems))
    }
}

/// A change's new events (if any), or every problem it has.
pub(super) fn check_change(change: &WebhookChange) -> Result<Option<Vec<String>>, ApiError> {
    if change.active.is_none() && change.events.is_none() && change.url.is_none() {
        return Err(ApiError::BadRequest(
            "nothing to change: give active, events or url".into(),
        ));
    }
    let mut problems = Vec::new();
    if let Some(url) = &change.url {
        check_url(url, &mut problems);
    }
    let events = change
        .events
        .as_deref()
        .map(|e| check_events(e, &mut problems));
    if problems.is_empty() {
        Ok(events)
    } else {
        Err(ApiError::Invalid(problems))
    }
}

/// A URL as the audit log names it: its origin (`https://hooks.example.com`).
pub(super) fn origin(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}
