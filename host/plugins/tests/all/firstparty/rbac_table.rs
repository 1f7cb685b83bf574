//! The bundled rbac policy decides a table of cases, one row per rule of the role model.

use super::{bundled, installed_policy};
use crate::runtime;
use serde_json::json;
use wharf_plugins::{AuthzRequest, Decision, Principal, RoleBinding, Scope, Target};

fn principal(id: &str, bindings: &[(&str, &str)]) -> Principal {
    Principal {
        id: id.into(),
        role_bindings: bindings
            .iter()
            .map(|(scope, role)| RoleBinding {
                scope: match scope.split_once(':') {
                    Some(("app", a)) => Scope::App(a.into()),
                    Some(("env-type", t)) => Scope::EnvType(t.into()),
                    _ => Scope::Org,
                },
                role: role.to_string(),
            })
            .collect(),
        ..Default::default()
    }
}

/// What a row asks: who wants to do what, on which target.
struct Ask {
    who: &'static str,
    action: &'static str,
    app: Option<&'static str>,
    env_type: Option<&'static str>,
    attributes: serde_json::Value,
}

/// One row of the table: a request and the answer the policy must give.
struct Case {
    ask: Ask,
    expected: Expected,
}

#[derive(Debug, Clone, Copy)]
enum Expected {
    Allow,
    /// A deny whose reason contains this text.
    Deny(&'static str),
}

/// An action whose target names no app and no environment type.
fn in_org(who: &'static str, action: &'static str) -> Ask {
    Ask {
        who,
        action,
        app: None,
        env_type: None,
        attributes: json!({}),
    }
}

fn on_app(who: &'static str, action: &'static str, app: &'static str) -> Ask {
    Ask {
        app: Some(app),
        ..in_org(who, action)
    }
}

fn on_env_type(
    who: &'static str,
    action: &'static str,
    app: &'static str,
    env_type: &'static str,
) -> Ask {
    Ask {
        env_type: Some(env_type),
        ..on_app(who, action, app)
    }
}

impl Ask {
    fn with(self, attributes: serde_json::Value) -> Self {
        Self { attributes, ..self }
    }

    fn allowed(self) -> Case {
        Case {
            ask: self,
            expected: Expected::Allow,
        }
    }

    fn denied(self, reason_contains: &'static str) -> Case {
        Case {
            ask: self,
            expected: Expected::Deny(reason_contains),
        }
    }

    fn request(&self) -> AuthzRequest {
        AuthzRequest {
            principal: principals(self.who).into(),
            action: self.action.to_string(),
            target: Target {
                app: self.app.map(Into::into),
                env_type: self.env_type.map(Into::into),
                ..Default::default()
            },
            attributes: self.attributes.clone(),
        }
    }
}

impl Case {
    fn is_answered_by(&self, decision: &Decision) -> bool {
        match (self.expected, decision) {
            (Expected::Allow, Decision::Allow) => true,
            (Expected::Deny(part), Decision::Deny(reason)) => reason.contains(part),
            _ => false,
        }
    }
}

fn cases() -> Vec<Case> {
    [
        org_roles(),
        app_roles(),
        env_type_roles(),
        viewers_and_strangers(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The organisation's roles: admin, manager, member.
fn org_roles() -> Vec<Case> {
    vec![
        in_org("admin", "apps.create").allowed(),
        in_org("admin", "env-types.create").allowed(),
        on_env_type("admin", "deployments.create", "shop", "production").allowed(),
        in_org("admin", "plugins.install").allowed(),
        on_app("admin", "apps.explode", "shop").denied("unknown action \"apps.explode\""),
        in_org("manager", "apps.create").allowed(),
        in_org("manager", "env-types.create").denied("needs the org role admin"),
        in_org("manager", "role-bindings.create")
            .with(json!({ "role": "developer" }))
            .allowed(),
        in_org("manager", "role-bindings.create")
            .with(json!({ "role": "admin" }))
            .denied("needs the org role admin"),
        in_org("manager", "users.create").allowed(),
        in_org("manager", "plugins.install").denied("needs the org role admin"),
        on_app("manager", "apps.get", "shop")
            .denied("needs the role viewer (or higher) on app shop"),
        in_org("manager", "audit.read").allowed(),
        in_org("member", "apps.list").allowed(),
        in_org("member", "apps.create").denied("needs the org role manager"),
        in_org("member", "env-types.list").allowed(),
        in_org("member", "plugins.list").allowed(),
        in_org("member", "users.list").denied("needs the org role manager"),
        in_org("member", "resource-definitions.create").denied("needs the org role admin"),
    ]
}

/// Roles on an app, with and without a deployer binding beside them.
fn app_roles() -> Vec<Case> {
    vec![
        on_app("owner", "apps.delete", "shop").allowed(),
        on_app("owner", "app-members.create", "shop").allowed(),
        on_app("owner", "apps.delete", "bank").denied("on app bank"),
        on_env_type("owner", "deployments.create", "shop", "development")
            .denied("needs the role deployer on environment type development"),
        on_app("owner", "resources.delete", "shop").allowed(),
        on_env_type("owner-prod", "deployments.create", "shop", "production").allowed(),
        on_env_type("owner-prod", "deployments.cancel", "shop", "production").allowed(),
        on_app("developer", "workloads.create", "shop").allowed(),
        on_app("developer", "apps.delete", "shop")
            .denied("needs the role owner (or higher) on app shop"),
        on_app("developer", "app-members.create", "shop").denied("needs the role owner"),
        on_env_type("developer", "deployments.create", "shop", "development")
            .denied("needs the role deployer on environment type development"),
        on_app("developer", "secrets.read", "shop").allowed(),
        on_app("developer", "values.update", "shop").allowed(),
        on_app("developer", "deployments.list", "shop").allowed(),
        in_org("developer", "role-bindings.create")
            .with(json!({ "role": "viewer" }))
            .denied("needs the org role manager"),
        in_org("developer", "workloads.create").denied("needs an app in its target"),
    ]
}

/// A deployer on one environment type, developer on one app and viewer on another.
fn env_type_roles() -> Vec<Case> {
    vec![
        on_env_type("dev-deployer", "deployments.create", "shop", "development").allowed(),
        on_env_type("dev-deployer", "deployments.create", "shop", "production")
            .denied("deployer on environment type production"),
        on_env_type("dev-deployer", "environments.create", "shop", "development").allowed(),
        on_env_type("dev-deployer", "environments.delete", "shop", "development").allowed(),
        on_env_type("dev-deployer", "environments.clone", "shop", "development").allowed(),
        on_env_type("dev-deployer", "environments.create", "bank", "development")
            .denied("on app bank"),
        on_app("dev-deployer", "deployments.create", "shop")
            .denied("needs an environment type in its target"),
    ]
}

/// A viewer of one app, and a principal with no binding at all.
fn viewers_and_strangers() -> Vec<Case> {
    vec![
        on_app("viewer", "apps.get", "shop").allowed(),
        on_app("viewer", "logs.read", "shop").allowed(),
        on_app("viewer", "workloads.update", "shop").denied("needs the role developer"),
        on_app("viewer", "secrets.read", "shop").denied("needs the role developer"),
        on_env_type("viewer", "deployments.create", "shop", "development")
            .denied("needs the role developer"),
        on_app("viewer", "deployments.get", "bank").denied("on app bank"),
        in_org("nobody", "apps.list").denied("needs the org role member"),
        on_app("nobody", "apps.get", "shop").denied("on app shop"),
        in_org("nobody", "").denied("unknown action \"\""),
    ]
}

fn principals(id: &str) -> Principal {
    match id {
        "admin" => principal(id, &[("org", "admin")]),
        "manager" => principal(id, &[("org", "manager")]),
        "member" => principal(id, &[("org", "member")]),
        "owner" => principal(id, &[("org", "member"), ("app:shop", "owner")]),
        "owner-prod" => principal(
            id,
            &[("app:shop", "owner"), ("env-type:production", "deployer")],
        ),
        "developer" => principal(id, &[("org", "member"), ("app:shop", "developer")]),
        "dev-deployer" => principal(
            id,
            &[
                ("app:shop", "developer"),
                ("env-type:development", "deployer"),
                ("app:bank", "viewer"),
            ],
        ),
        "viewer" => principal(id, &[("app:shop", "viewer")]),
        _ => principal(id, &[]),
    }
}

#[tokio::test]
async fn rbac_decides_every_case_of_the_table_through_the_runtime() {
    let (rt, _dir) = runtime();
    let rbac = installed_policy(&rt, bundled("rbac").bytes).await;
    let cases = cases();
    assert!(cases.len() >= 40);
    let requests: Vec<AuthzRequest> = cases.iter().map(|c| c.ask.request()).collect();
    let decisions = rbac.authorize(&json!({}), &requests).await.unwrap();
    let wrong: Vec<String> = cases
        .iter()
        .zip(&decisions)
        .filter(|(case, decision)| !case.is_answered_by(decision))
        .map(|(case, decision)| {
            let Ask {
                who,
                action,
                app,
                env_type,
                ..
            } = &case.ask;
            let expected = case.expected;
            format!("{who} {action} {app:?} {env_type:?}: expected {expected:?}, got {decision:?}")
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // One at a time decides the same as the batch.
    for (request, decision) in requests.iter().zip(&decisions).take(10) {
        let single = rbac
            .authorize(&json!({}), std::slice::from_ref(request))
            .await
            .unwrap();
        assert_eq!(&single[0], decision);
    }
}

#[tokio::test]
async fn rbac_lets_principals_manage_their_own_tokens_and_guards_admins_tokens() {
    let (rt, _dir) = runtime();
    let rbac = installed_policy(&rt, bundled("rbac").bytes).await;
    let ask = |who: &str, action: &str, object: &str, target_is_admin: bool| AuthzRequest {
        principal: principals(who).into(),
        action: action.into(),
        target: Target {
            object: Some(object.into()),
            ..Default::default()
        },
        attributes: json!({ "target_is_admin": target_is_admin }),
    };
    let decisions = rbac
        .authorize(
            &json!({}),
            &[
                ask("viewer", "tokens.create", "viewer", false),
                ask("nobody", "tokens.list", "nobody", false),
                ask("viewer", "tokens.create", "developer", false),
                ask("manager", "tokens.create", "developer", false),
                ask("manager", "tokens.delete", "admin", true),
                ask("admin", "tokens.delete", "root", true),
                ask("manager", "tokens.delete", "developer", false),
                ask("admin", "tokens.create", "developer", false),
                ask("admin", "tokens.create", "root", true),
            ],
        )
        .await
        .unwrap();
    assert_eq!(decisions[0], Decision::Allow, "own token");
    assert_eq!(
        decisions[1],
        Decision::Allow,
        "own tokens, even without roles"
    );
    assert_eq!(
        decisions[2],
        Decision::Deny("tokens.create needs the org role admin (or higher)".into())
    );
    assert_eq!(
        decisions[3],
        Decision::Deny("tokens.create needs the org role admin (or higher)".into()),
        "a manager makes no token for another"
    );
    assert_eq!(
        decisions[4],
        Decision::Deny("tokens.delete needs the org role admin (or higher)".into())
    );
    assert_eq!(decisions[5], Decision::Allow);
    assert_eq!(decisions[6], Decision::Allow, "a manager revokes another's");
    assert_eq!(decisions[7], Decision::Allow, "an admin makes another's");
    assert_eq!(
        decisions[8],
        Decision::Deny(
            "tokens.create: no one may make a token for another admin; they make their own".into()
        ),
        "not even an admin, for another admin"
    );
}

#[tokio::test]
async fn rbac_refuses_a_configuration() {
    let (rt, _dir) = runtime();
    let rbac = installed_policy(&rt, bundled("rbac").bytes).await;
    assert!(rbac.validate_config(&json!({})).await.unwrap().is_empty());
    let issues = rbac
        .validate_config(&json!({ "admins": ["x"] }))
        .await
        .unwrap();
    assert_eq!(issues[0].path, "/admins");
}
