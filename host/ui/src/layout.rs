//! The shell every page shares (head, navigation, sign-out), the error page, and the small
//! pieces pages repeat: states as badges, times, CSRF fields.

use crate::api::Problem;
use crate::session::Viewer;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

/// Where a page sits: its links up, from the top.
pub(crate) type Crumbs<'a> = &'a [(&'a str, String)];

/// A whole page: `title`, the way back up, the viewer's name and sign-out, and `body`.
pub(crate) fn page(
    title: &str,
    viewer: Option<&Viewer>,
    crumbs: Crumbs<'_>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Wharf" }
                link rel="stylesheet" href="/ui/assets/wharf.css";
                script src="/ui/assets/wharf.js" defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to the content" }
                header class="top" {
                    a class="brand" href="/ui/" { "Wharf" }
                    @if let Some(v) = viewer {
                        nav aria-label="Sections" {
                            a href="/ui/" { "Apps" }
                            a href="/ui/platform" { "Platform" }
                            a href="/ui/audit" { "Audit" }
                        }
                        form class="signout" method="post" action="/ui/logout" {
                            (csrf(v))
                            span class="who" { (v.caller.id) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    @if !crumbs.is_empty() {
                        nav class="crumbs" aria-label="Breadcrumb" {
                            ol {
                                @for (label, href) in crumbs {
                                    li { a href=(href) { (label) } }
                                }
                            }
                        }
                    }
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden field that carries the session's CSRF token in a form.
pub(crate) fn csrf(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(viewer.csrf); }
}

/// A state as a badge (`succeeded`, `failed`, `ready`...), colored by what it means.
pub(crate) fn badge(state: &str) -> Markup {
    let tone = match state {
        "succeeded" | "ready" | "done" | "running" | "allow" => "good",
        "failed" | "crashed" | "deny" => "bad",
        "queued" | "pending" | "in-progress" | "retrying" | "starting" | "deprovisioning" => "busy",
        _ => "quiet",
    };
    html! { span class={ "badge " (tone) } data-state=(state) { (state) } }
}

/// A time in milliseconds since the epoch, as UTC (`2026-12-02 19:44:05`).
pub(crate) fn time_ms(ms: i64) -> String {
    time_s(ms.div_euclid(1000))
}

/// A time in seconds since the epoch, as UTC (`2026-12-02 19:44:05`).
pub(crate) fn time_s(secs: i64) -> String {
    let mut text = wharf_core::clock::rfc3339(secs).replacen('T', " ", 1);
    text.pop();
    text
}

/// A string field of a JSON value, empty when absent.
pub(crate) fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The short form of a set id.
pub(crate) fn short(set: &str) -> &str {
    set.get(..12).unwrap_or(set)
}

/// A page that shows what went wrong, with the status the API answered: the problem's own
/// words, never a stack.
pub(crate) fn problem_page(viewer: Option<&Viewer>, problem: &Problem) -> Response {
    let body = html! {
        div class="problem" role="alert" {
            p class="status" { (problem.status.as_u16()) " " (problem.title) }
            @if !problem.detail.is_empty() { p { (problem.detail) } }
            p { a href="/ui/" { "Back to the apps" } }
        }
    };
    let title = match problem.status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        s if s.is_client_error() => "That did not work",
        _ => "Something failed on the server",
    };
    (
        problem.status,
        Html(page(title, viewer, &[], body).into_string()),
    )
        .into_response()
}

/// The page shown instead of the one asked for (boxed: a response is large).
pub(crate) struct Failed(pub(crate) Box<Response>);

impl IntoResponse for Failed {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// A page's HTML, or the page that says why not.
pub(crate) type PageResult = Result<Html<String>, Failed>;

/// Renders `markup` as the answer.
pub(crate) fn ok(markup: Markup) -> PageResult {
    Ok(Html(markup.into_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_dates() {
        assert_eq!(time_s(0), "1970-01-01 00:00:00");
        assert_eq!(time_s(1_796_240_765), "2026-12-02 19:46:05");
        assert_eq!(time_ms(951_782_400_000), "2000-02-29 00:00:00");
    }
}
