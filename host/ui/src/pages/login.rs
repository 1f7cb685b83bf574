//! Signing in with an API token, and out.
//!
//! The sign-in form is protected from cross-site posting like every other form: its CSRF
//! token is in a cookie of its own (`SameSite=Strict`) and must come back in the form. The
//! token a viewer types is checked by the API's own check, kept only as its hash, and
//! never echoed back.

use crate::Ui;
use crate::layout::page;
use crate::session::{COOKIE, LOGIN_COOKIE, Viewer, cookie, over_tls, random, set_cookie};
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

#[derive(Deserialize)]
pub(crate) struct Next {
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    why: Option<String>,
}

/// Where to go after signing in: a page of the UI, never another site.
fn destination(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/ui/") && !n.starts_with("//") && !n.contains('\\') => {
            n.to_string()
        }
        _ => "/ui/".into(),
    }
}

fn form_page(
    csrf: &str,
    next: &str,
    message: Option<&str>,
    status: StatusCode,
    secure: bool,
) -> Response {
    let body = html! {
        @if let Some(m) = message {
            p class="problem" role="alert" { (m) }
        }
        form class="login" method="post" action="/ui/login" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="next" value=(next);
            label for="token" { "API token" }
            input id="token" name="token" type="password" autocomplete="off" required
                spellcheck="false" aria-describedby="token-help";
            p id="token-help" class="help" {
                "A token from " code { "wharf tokens create" } ", or the one "
                code { "wharf up" } " printed. It is checked, then kept only as its hash."
            }
            button type="submit" { "Sign in" }
        }
    };
    let mut response =
        (status, Html(page("Sign in", None, &[], body).into_string())).into_response();
    let value = set_cookie(LOGIN_COOKIE, Some(csrf), secure);
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&value).expect("a cookie of hex is a valid header"),
    );
    response
}

/// `GET /ui/login`: the form.
pub(crate) async fn form(headers: HeaderMap, Query(q): Query<Next>) -> Response {
    let message = match q.why.as_deref() {
        Some("expired") => Some("Your session ended. Sign in again."),
        Some("token") => Some("The token of your session is no longer valid. Sign in again."),
        Some("out") => Some("You are signed out."),
        _ => None,
    };
    form_page(
        &random(),
        &destination(q.next.as_deref()),
        message,
        StatusCode::OK,
        over_tls(&headers),
    )
}

#[derive(Deserialize)]
pub(crate) struct Credentials {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /ui/login`: checks the token and opens a session.
pub(crate) async fn sign_in(
    State(ui): State<Ui>,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Response {
    let secure = over_tls(&headers);
    let next = destination(form.next.as_deref());
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || expected != form.csrf {
        return form_page(
            &random(),
            &next,
            Some("The form was refused: it did not come from this page. Sign in again."),
            StatusCode::FORBIDDEN,
            secure,
        );
    }
    let hash = wharf_api::auth::hash(form.token.trim());
    if let Err(e) = wharf_api::auth::caller(&ui.state, hash.clone()).await {
        let message = match e {
            wharf_api::ApiError::Unauthenticated(why) => format!("Not signed in: {why}."),
            _ => "Signing in failed on the server; try again.".to_string(),
        };
        return form_page(
            &random(),
            &next,
            Some(&message),
            StatusCode::UNAUTHORIZED,
            secure,
        );
    }
    let session = ui.sessions.open(hash);
    let mut response = Redirect::to(&next).into_response();
    let headers = response.headers_mut();
    for value in [
        set_cookie(COOKIE, Some(&session), secure),
        set_cookie(LOGIN_COOKIE, None, secure),
    ] {
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_str(&value).expect("a cookie of hex is a valid header"),
        );
    }
    response
}

#[derive(Deserialize)]
pub(crate) struct SignOut {
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/logout`: ends the session.
pub(crate) async fn sign_out(
    State(ui): State<Ui>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(form): Form<SignOut>,
) -> Response {
    if !viewer.csrf_matches(&form.csrf) {
        return super::forged(&viewer);
    }
    ui.sessions.close(&viewer.session);
    let mut response = Redirect::to("/ui/login?why=out").into_response();
    let value = set_cookie(COOKIE, None, over_tls(&headers));
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&value).expect("a cookie is a valid header"),
    );
    response
}
