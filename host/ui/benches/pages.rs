//! The server time of the web UI's main pages for an org of 200 apps, each with an
//! environment: the apps page (its first 50 apps, each with its environment's status) and
//! an environment page, rendered in-process for a signed-in admin (every page goes through
//! the API and the policy chain as it does when served).
//!
//! Run: `cargo bench -p wharf-ui --bench pages`.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use criterion::Criterion;
use http_body_util::BodyExt;
use tower::ServiceExt;
use wharf_plugins::{Runtime, RuntimeConfig};
use wharf_store::Store;

/// The value of cookie `name` that `response` sets.
fn set_cookie(response: &axum::response::Response, name: &str) -> String {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}="))?.split(';').next())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

async fn send(router: &Router, request: Request<Body>) -> (u16, String) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A server with 200 apps, each with environment `dev`; the router and a session cookie.
async fn org(dir: &std::path::Path) -> (Router, String) {
    let store = Store::open(&dir.join("wharf.db")).await.unwrap();
    let plugins = Runtime::new(RuntimeConfig::new(dir.join("cache"))).unwrap();
    let sealer = wharf_store::secrets::Sealer::new([1; 32]);
    let engine = wharf_engine::Settings::new(dir.join("envs"));
    let state = wharf_server::start(
        store.clone(),
        plugins,
        sealer,
        wharf_artifacts::BUNDLED,
        engine,
    )
    .await
    .unwrap();
    let token = wharf_api::auth::bootstrap(&store, None)
        .await
        .unwrap()
        .unwrap();
    let router = wharf_ui::router(state, wharf_ui::SessionSettings::default());
    for i in 0..200 {
        for (path, body) in [
            (
                "/api/v1/apps".to_string(),
                format!(r#"{{"id": "app-{i:03}"}}"#),
            ),
            (
                format!("/api/v1/apps/app-{i:03}/envs"),
                r#"{"id": "dev", "env_type": "development"}"#.to_string(),
            ),
        ] {
            let request = Request::post(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .unwrap();
            let (status, text) = send(&router, request).await;
            assert_eq!(status, 201, "{text}");
        }
    }
    let form = router
        .clone()
        .oneshot(Request::get("/ui/login").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let csrf = set_cookie(&form, "wharf_login");
    let signed_in = router
        .clone()
        .oneshot(
            Request::post("/ui/login")
                .header(header::COOKIE, format!("wharf_login={csrf}"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!(
                    "csrf={csrf}&token={token}&next=%2Fui%2F"
                )))
                .unwrap(),
        )
        .await
        .unwrap();
    let session = set_cookie(&signed_in, "wharf_session");
    (router, format!("wharf_session={session}"))
}

fn pages(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (router, cookie) = runtime.block_on(org(dir.path()));
    let get = |path: &'static str| {
        let (router, cookie) = (router.clone(), cookie.clone());
        move || {
            let (router, cookie) = (router.clone(), cookie.clone());
            async move {
                let request = Request::get(path)
                    .header(header::COOKIE, cookie)
                    .body(Body::empty())
                    .unwrap();
                let (status, body) = send(&router, request).await;
                assert_eq!(status, 200, "{body}");
                body
            }
        }
    };
    let apps = runtime.block_on(get("/ui/")());
    assert_eq!(apps.matches("<section class=\"app\"").count(), 50);
    let mut group = c.benchmark_group("ui pages, an org of 200 apps");
    group.bench_function(
        "GET /ui/ (the first 50 apps, each with its environment)",
        |b| b.to_async(&runtime).iter(get("/ui/")),
    );
    group.bench_function("GET /ui/apps/app-100/envs/dev", |b| {
        b.to_async(&runtime).iter(get("/ui/apps/app-100/envs/dev"))
    });
    group.finish();
}

/// The benchmark group (criterion's macros generate undocumented items).
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(ui_benches, super::pages);
}

criterion::criterion_main!(group::ui_benches);
