//! The authorization suite. The matrix: every route of the API, as every kind of caller,
//! in three places: on the app where the caller holds its role, on another app (its role
//! is on app `home`), and on an environment of another type (`staging`, where the
//! deployer has no `deployer`). A caller the rbac plugin's documented grants allow there
//! gets a 2xx; any other gets a 403, and a caller without a valid token a 401. The route
//! list is checked against the router's own (the OpenAPI document is generated from the
//! same route registrations), so a new route that is not in this matrix fails the build's
//! tests.
//!
//! Beside it: the decisions that depend on attributes (whose token, which role a binding
//! grants and where), and that no work is done before authorization (a denied caller's
//! unparseable body is a 403, not a 400).

use super::*;
use std::collections::{BTreeSet, HashMap};

#[path = "matrix/automation.rs"]
mod automation;
#[path = "matrix/routes.rs"]
mod routes;

pub(crate) use routes::score_set;
use routes::{Payload, Target, V1};

/// Every route: method, path as registered, the action the rbac table must allow (None:
/// public).
static ROUTES: std::sync::LazyLock<Vec<(&str, &str, Option<&str>)>> =
    std::sync::LazyLock::new(|| {
        routes::BASE_ROUTES
            .iter()
            .chain(automation::ROUTES)
            .copied()
            .collect()
    });

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Who {
    Admin,
    Manager,
    Member,
    Owner,
    Developer,
    Viewer,
    /// App developer and `deployer` on the `development` environment type.
    Deployer,
    /// A user with no role.
    Nobody,
    NoToken,
    Revoked,
    Expired,
}

const EVERYONE: [Who; 11] = [
    Who::Admin,
    Who::Manager,
    Who::Member,
    Who::Owner,
    Who::Developer,
    Who::Viewer,
    Who::Deployer,
    Who::Nobody,
    Who::NoToken,
    Who::Revoked,
    Who::Expired,
];

/// Where a case acts, relative to where its caller holds its app role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// On the caller's app, of type `development` (where the deployer is `deployer`).
    Own,
    /// On an app where the caller holds no role (its role is on app `home`).
    OtherApp,
    /// On the caller's app, in an environment of type `staging`.
    OtherEnvType,
}

const PLACES: [Place; 3] = [Place::Own, Place::OtherApp, Place::OtherEnvType];

/// The rbac plugin's documented grants: action → what it needs, from its README.
fn documented_needs() -> Vec<(String, String)> {
    let readme = include_str!("../../../../plugins/rbac/README.md");
    let actions = readme
        .split("## Actions")
        .nth(1)
        .expect("the README has an Actions section");
    actions
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let action = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((action.to_string(), cells.get(2)?.to_string()))
        })
        .collect()
}

/// Whether the documented grant `need` allows `who` at `place` (on a principal that is
/// neither itself nor an admin, granting a role that is not admin).
fn allows(need: &str, who: Who, place: Place) -> bool {
    let org = match who {
        Who::Admin => 3,
        Who::Manager => 2,
        Who::Member => 1,
        _ => 0,
    };
    let app = match (who, place) {
        (_, Place::OtherApp) => 0,
        (Who::Owner, _) => 3,
        (Who::Developer | Who::Deployer, _) => 2,
        (Who::Viewer, _) => 1,
        _ => 0,
    };
    if org == 3 {
        return true;
    }
    if need.starts_with("the principal itself; else org admin") {
        return false; // the target is another principal, and only an admin may
    }
    if need.starts_with("the principal itself") {
        return org >= 2;
    }
    let need = need.split(" (").next().unwrap();
    let (base, deployer) = match need.split_once(" + ") {
        Some((base, "env type deployer")) => (base, true),
        Some((_, other)) => panic!("unknown need {other:?}"),
        None => (need, false),
    };
    let level = |role: &str| match role {
        "admin" | "owner" => 3,
        "manager" | "developer" => 2,
        "member" | "viewer" => 1,
        other => panic!("unknown role {other:?}"),
    };
    let base_ok = match base.split_once(' ') {
        Some(("org", role)) => org >= level(role),
        Some(("app", role)) => app >= level(role),
        _ => panic!("unknown need {base:?}"),
    };
    base_ok && (!deployer || (who == Who::Deployer && place != Place::OtherEnvType))
}

/// What a case must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Unauthorized,
    Forbidden,
}

impl Outcome {
    fn allowed_if(allowed: bool) -> Self {
        if allowed {
            Outcome::Success
        } else {
            Outcome::Forbidden
        }
    }

    fn is(self, status: StatusCode) -> bool {
        match self {
            Outcome::Success => status.is_success(),
            Outcome::Unauthorized => status == StatusCode::UNAUTHORIZED,
            Outcome::Forbidden => status == StatusCode::FORBIDDEN,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Success => "2xx",
            Outcome::Unauthorized => "401",
            Outcome::Forbidden => "403",
        })
    }
}

/// The cases checked so far and those that failed, so that one run lists every failure.
#[derive(Default)]
struct Tally {
    cases: usize,
    failures: Vec<String>,
}

impl Tally {
    fn check(&mut self, what: String, expected: Outcome, status: StatusCode, body: &Value) {
        self.cases += 1;
        if !expected.is(status) {
            self.failures
                .push(format!("{what}: expected {expected}, got {status}: {body}"));
        }
    }

    /// Asserts that no case failed; `failed` ends the message ("cases failed", "failed").
    #[track_caller]
    fn assert_none_failed(&self, failed: &str) {
        assert!(
            self.failures.is_empty(),
            "{} of {} {failed}:\n{}",
            self.failures.len(),
            self.cases,
            self.failures.join("\n")
        );
    }
}

/// The routes the router serves, from the OpenAPI document generated with it.
fn router_routes() -> BTreeSet<(String, String)> {
    let doc = wharf_api::openapi();
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.insert((method.to_uppercase(), path.clone()));
        }
    }
    routes
}

#[test]
fn every_route_is_in_the_matrix() {
    let served = router_routes();
    let matrix: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = served.difference(&matrix).collect();
    let stale: Vec<_> = matrix.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "routes not covered by the RBAC matrix: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "matrix rows for routes that do not exist: {stale:?}"
    );
    let needs = documented_needs();
    for (_, _, action) in ROUTES.iter() {
        if let Some(action) = action {
            assert!(
                needs.iter().any(|(a, _)| a == action),
                "{action} is not in the rbac plugin's documented actions"
            );
        }
    }
}

/// Creates, as the admin, what every case can refer to.
async fn prepare_what_every_case_refers_to(api: &Api) {
    let admin = Some(api.admin.as_str());
    for (path, body) in [
        ("apps", json!({ "id": "home" })),
        (
            "env-types",
            json!({ "id": "staging", "target": { "kind": "process" } }),
        ),
        ("users", json!({ "id": "target" })),
        ("resource-types", json!({ "id": "rt" })),
        (
            "artefacts",
            json!({ "image": format!("registry.example.com/base@sha256:{}", "0".repeat(64)) }),
        ),
        (
            "plugin-installations",
            json!({ "id": "echo-i", "plugin": "echo" }),
        ),
        (
            "resource-definitions",
            json!({ "id": "def-base", "type": "rt", "driver": "echo-i", "criteria": [{}] }),
        ),
    ] {
        let (status, body) = api
            .send("POST", &format!("{V1}/{path}"), admin, Some(body))
            .await;
        assert!(status.is_success(), "{path}: {status} {body}");
    }
}

/// Every caller: its principal's id and its token (None: it sends none). Its app role is
/// bound per case.
async fn callers(api: &Api) -> HashMap<Who, (String, Option<String>)> {
    let mut callers = HashMap::new();
    for who in EVERYONE {
        let id = format!("{who:?}").to_lowercase();
        let token = match who {
            Who::Admin => Some(api.admin.clone()),
            Who::Manager => Some(api.user(&id, &[(Scope::Org, "manager")]).await),
            Who::Member => Some(api.user(&id, &[(Scope::Org, "member")]).await),
            Who::Owner | Who::Developer | Who::Viewer | Who::Nobody => {
                Some(api.user(&id, &[]).await)
            }
            Who::Deployer => Some(
                api.user(
                    &id,
                    &[(Scope::EnvType(Id::new("development").unwrap()), "deployer")],
                )
                .await,
            ),
            Who::NoToken => None,
            Who::Revoked => Some(revoked(api, &id).await),
            Who::Expired => Some(api.user_expiring(&id, &[(Scope::Org, "admin")], 5).await),
        };
        callers.insert(who, (id, token));
    }
    callers
}

/// The token of admin `id`, revoked.
async fn revoked(api: &Api, id: &str) -> String {
    let token = api.user(id, &[(Scope::Org, "admin")]).await;
    let principal = id.to_string();
    api.state
        .store
        .call(move |tx| {
            for t in wharf_store::auth::list_tokens(tx, &principal)? {
                wharf_store::auth::revoke_token(tx, &principal, &t.id, 5)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    token
}

/// Creates case `n`'s own app `c{n}`, with an environment `e` of type `env_type`, and binds
/// `principal`'s app role (if it has one) on it, or at `place` other-app on app `home`.
async fn prepare_case(
    api: &Api,
    n: usize,
    who: Who,
    place: Place,
    principal: &str,
    env_type: &str,
) -> String {
    let admin = Some(api.admin.as_str());
    let app = format!("c{n}");
    let (status, body) = api
        .send(
            "POST",
            &format!("{V1}/apps"),
            admin,
            Some(json!({ "id": app })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = api
        .send(
            "POST",
            &format!("{V1}/apps/{app}/envs"),
            admin,
            Some(json!({ "id": "e", "env_type": env_type })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let app_role = match who {
        Who::Owner => Some("owner"),
        Who::Developer | Who::Deployer => Some("developer"),
        Who::Viewer => Some("viewer"),
        _ => None,
    };
    // Elsewhere, the role is on app `home`: not on the case's app.
    let role_app = match place {
        Place::OtherApp => "home",
        _ => app.as_str(),
    };
    if let Some(role) = app_role {
        let (status, body) = api
            .send(
                "POST",
                &format!("{V1}/role-bindings"),
                admin,
                Some(json!({ "principal": principal, "scope": { "kind": "app", "id": role_app }, "role": role })),
            )
            .await;
        assert!(status.is_success(), "{body}");
    }
    app
}

/// What `who` must get for `method route` (which needs `action`) at `place`, by the
/// documented grants.
fn expected(
    needs: &[(String, String)],
    (method, route, action): (&str, &str, Option<&str>),
    who: Who,
    place: Place,
) -> Outcome {
    let Some(action) = action else {
        return Outcome::Success;
    };
    if matches!(who, Who::NoToken | Who::Revoked | Who::Expired) {
        return Outcome::Unauthorized;
    }
    // Org-wide webhooks have no app: an app role counts for nothing there.
    let place = if route.starts_with("/api/v1/webhooks") {
        Place::OtherApp
    } else {
        place
    };
    let need = |action: &str| &needs.iter().find(|(a, _)| a == action).unwrap().1;
    // Deleting an app deletes its environments, each authorized as such. Explaining a
    // match tells whether the environment exists: only to those who may see it.
    let also = match (method, route) {
        ("DELETE", "/api/v1/apps/{app}") => Some("environments.delete"),
        ("POST", "/api/v1/resource-definitions/match") => Some("environments.get"),
        _ => None,
    };
    Outcome::allowed_if(
        allows(need(action), who, place) && also.is_none_or(|a| allows(need(a), who, place)),
    )
}

async fn send(
    api: &Api,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Payload,
) -> (StatusCode, Value) {
    match body {
        Payload::None => api.send(method, uri, token, None).await,
        Payload::Json(v) => api.send(method, uri, token, Some(v)).await,
        Payload::Wasm(bytes) => {
            api.send_bytes(method, uri, token, "application/wasm", bytes)
                .await
        }
    }
}

#[tokio::test]
async fn every_route_as_every_caller_gets_what_the_rbac_grants_say() {
    let api = api().await;
    prepare_what_every_case_refers_to(&api).await;
    let callers = callers(&api).await;
    let needs = documented_needs();
    let mut tally = Tally::default();
    let all: Vec<(&str, &str, Option<&str>, Who, Place)> = ROUTES
        .iter()
        .flat_map(|&(m, p, a)| {
            EVERYONE
                .iter()
                .flat_map(move |&w| PLACES.iter().map(move |&place| (m, p, a, w, place)))
        })
        .collect();
    let (mut allowed, mut denied) = (0, 0);
    for (n, (method, route, action, who, place)) in all.into_iter().enumerate() {
        let env_type = match place {
            Place::OtherEnvType => "staging",
            _ => "development",
        };
        // Each case has an app of its own, with an environment, where its caller holds
        // its app role.
        let (principal, token) = &callers[&who];
        let app = prepare_case(&api, n, who, place, principal, env_type).await;
        let target = Target {
            api: &api,
            method,
            route,
            n,
            app: &app,
            env_type,
        };
        let (uri, body) = routes::request(&target).await;
        let (status, response) = send(&api, method, &uri, token.as_deref(), body).await;
        let expected = expected(&needs, (method, route, action), who, place);
        match expected {
            Outcome::Success => allowed += 1,
            Outcome::Forbidden => denied += 1,
            _ => {}
        }
        tally.check(
            format!("{method} {uri} as {who:?} ({place:?})"),
            expected,
            status,
            &response,
        );
    }
    tally.assert_none_failed("cases failed");
    let cases = tally.cases;
    assert_eq!(cases, ROUTES.len() * EVERYONE.len() * PLACES.len());
    eprintln!(
        "{cases} cases: {} routes x {} callers x {} places; {allowed} allowed, {denied} \
         denied, the rest public or unauthenticated",
        ROUTES.len(),
        EVERYONE.len(),
        PLACES.len()
    );
    // The grants are neither all-allow nor all-deny: both outcomes were exercised.
    assert!(
        allowed > 100 && denied > 100,
        "{allowed} allowed, {denied} denied"
    );
}

/// The callers of the attribute-dependent cases, by id, with their bindings.
fn attribute_callers() -> [(&'static str, Vec<(Scope, &'static str)>); 4] {
    [
        ("root2", vec![(Scope::Org, "admin")]),
        ("manager", vec![(Scope::Org, "manager")]),
        ("member", vec![(Scope::Org, "member")]),
        (
            "owner-a",
            vec![(Scope::App(Id::new("a").unwrap()), "owner")],
        ),
    ]
}

/// Tokens: one's own, another principal's, another admin's.
async fn check_tokens(api: &Api, tokens: &HashMap<&str, String>, tally: &mut Tally) {
    for (caller, _) in &attribute_callers() {
        let token = tokens[caller].as_str();
        for (whose, principal) in [
            ("own", *caller),
            ("another's", "plain"),
            ("an admin's", "admin"),
        ] {
            let org = match *caller {
                "root2" => 3,
                "manager" => 2,
                "member" => 1,
                _ => 0,
            };
            let own = whose == "own";
            let admin_target = whose == "an admin's" || (own && org == 3);
            let path = format!("/api/v1/principals/{principal}/tokens");
            let (status, body) = api.send("GET", &path, Some(token), None).await;
            let may_list = own || (org >= 2 && !admin_target) || org == 3;
            tally.check(
                format!("{caller} lists {whose} tokens"),
                Outcome::allowed_if(may_list),
                status,
                &body,
            );
            let (status, body) = api.send("POST", &path, Some(token), None).await;
            tally.check(
                format!("{caller} makes {whose} token"),
                Outcome::allowed_if(own || (org == 3 && !admin_target)),
                status,
                &body,
            );
        }
    }
}

/// Role bindings: which role, at which scope.
async fn check_grants(api: &Api, tokens: &HashMap<&str, String>, tally: &mut Tally) {
    /// A binding: what it grants, where, and which callers may.
    type Grant = (&'static str, Value, fn(&str) -> bool);
    let grants: [Grant; 5] = [
        ("org member", json!({ "kind": "org" }), |c| {
            matches!(c, "root2" | "manager")
        }),
        ("org admin", json!({ "kind": "org" }), |c| c == "root2"),
        (
            "developer on app a",
            json!({ "kind": "app", "id": "a" }),
            |c| matches!(c, "root2" | "owner-a"),
        ),
        (
            "developer on app b",
            json!({ "kind": "app", "id": "b" }),
            |c| c == "root2",
        ),
        (
            "deployer on development",
            json!({ "kind": "env-type", "id": "development" }),
            |c| matches!(c, "root2" | "manager"),
        ),
    ];
    for (caller, _) in &attribute_callers() {
        let token = tokens[caller].as_str();
        for (what, scope, may) in &grants {
            let role = what
                .split(' ')
                .nth(usize::from(what.starts_with("org")))
                .unwrap();
            let binding = json!({ "principal": "plain", "scope": scope, "role": role });
            let (status, body) = api
                .send("POST", "/api/v1/role-bindings", Some(token), Some(binding))
                .await;
            tally.check(
                format!("{caller} grants {what}"),
                Outcome::allowed_if(may(caller)),
                status,
                &body,
            );
        }
    }
}

#[tokio::test]
async fn decisions_that_depend_on_attributes_follow_the_grants() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    for app in ["a", "b"] {
        let (status, body) = api
            .send("POST", "/api/v1/apps", admin, Some(json!({ "id": app })))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let mut tokens = HashMap::new();
    for (id, bindings) in &attribute_callers() {
        tokens.insert(*id, api.user(id, bindings).await);
    }
    api.user("plain", &[]).await;
    let mut tally = Tally::default();
    check_tokens(&api, &tokens, &mut tally).await;
    check_grants(&api, &tokens, &mut tally).await;
    tally.assert_none_failed("failed");
    eprintln!("{} attribute-dependent cases", tally.cases);
}

#[tokio::test]
async fn a_denied_caller_is_answered_before_its_body_is_read() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    for (path, body) in [
        ("/api/v1/apps", json!({ "id": "shop" })),
        ("/api/v1/apps", json!({ "id": "home" })),
        (
            "/api/v1/apps/shop/envs",
            json!({ "id": "dev", "env_type": "development" }),
        ),
    ] {
        let (status, body) = api.send("POST", path, admin, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let viewer = api
        .user(
            "viewer",
            &[(Scope::App(Id::new("shop").unwrap()), "viewer")],
        )
        .await;
    let other = api
        .user(
            "other",
            &[
                (Scope::App(Id::new("home").unwrap()), "developer"),
                (Scope::EnvType(Id::new("development").unwrap()), "deployer"),
            ],
        )
        .await;
    let member = api.user("member", &[(Scope::Org, "member")]).await;
    // Routes whose target is in their path read their body only once the caller may act.
    let routes = [
        "/api/v1/apps/shop/envs/dev/deployments",
        "/api/v1/apps/shop/sets",
        "/api/v1/apps/shop/sets/0123/deltas",
        "/api/v1/plugins?id=up&kind=policy",
    ];
    let mut cases = 0;
    for route in routes {
        for (who, token) in [
            ("viewer", &viewer),
            ("another app's developer", &other),
            ("member", &member),
        ] {
            let (status, body, polls) = api
                .send_unending(route, token, b"{\"workloads\": [\"\\u00zz, *")
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{route} as {who}: {body}");
            assert_eq!(
                polls, 0,
                "{route} as {who}: the body was polled {polls} times"
            );
            cases += 1;
        }
    }
    eprintln!("{cases} denied callers, no body read");
}
