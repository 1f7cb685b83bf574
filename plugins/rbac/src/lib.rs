#![doc = include_str!("../README.md")]
//!
//! This crate is the policy's code; it must stay a pure function of its input (no I/O),
//! and the table of actions in `README.md` must stay the same as [`ACTIONS`] (a test
//! checks both ways).

use wharf_sdk::policy::{Decision, Policy, Principal, Request, Scope};
use wharf_sdk::{Issue, PluginInfo, Value, json};

/// What an action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// An org role at least this high.
    Org(OrgRole),
    /// An app role at least this high on the target's app.
    App(AppRole),
    /// An app role at least this high, and `deployer` on the target's environment type.
    Deploy(AppRole),
    /// An app role at least this high on the target's app; for a target without an app
    /// (an org-wide object, such as an org-wide webhook), an org role at least this high.
    AppOrOrg(AppRole, OrgRole),
    /// Org manager, or org admin when the binding concerns the `admin` role.
    RoleBinding,
    /// The principal's own tokens; else org manager, or org admin for an admin's tokens.
    Token,
    /// A token for the principal itself; else org admin, and never for another admin (a
    /// token is a principal's power: only the highest role may mint it for someone else,
    /// and no one may mint an admin's).
    TokenCreate,
}

/// Org roles, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OrgRole {
    /// `member`
    Member,
    /// `manager`
    Manager,
    /// `admin`
    Admin,
}

/// App roles, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AppRole {
    /// `viewer`
    Viewer,
    /// `developer`
    Developer,
    /// `owner`
    Owner,
}

impl OrgRole {
    fn parse(role: &str) -> Option<Self> {
        match role {
            "member" => Some(Self::Member),
            "manager" => Some(Self::Manager),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Manager => "manager",
            Self::Admin => "admin",
        }
    }
}

impl AppRole {
    fn parse(role: &str) -> Option<Self> {
        match role {
            "viewer" => Some(Self::Viewer),
            "developer" => Some(Self::Developer),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Developer => "developer",
            Self::Owner => "owner",
        }
    }
}

use AppRole::{Developer, Owner, Viewer};
use OrgRole::{Admin, Manager, Member};

/// Every action Wharf knows, with what it needs. Keep in step with README.md.
pub const ACTIONS: &[(&str, Need)] = &[
    ("org.update", Need::Org(Admin)),
    ("apps.create", Need::Org(Manager)),
    ("apps.list", Need::Org(Member)),
    ("users.list", Need::Org(Manager)),
    ("users.get", Need::Org(Manager)),
    ("users.create", Need::Org(Manager)),
    ("users.update", Need::Org(Manager)),
    ("users.delete", Need::Org(Manager)),
    ("service-accounts.list", Need::Org(Manager)),
    ("service-accounts.get", Need::Org(Manager)),
    ("service-accounts.create", Need::Org(Manager)),
    ("service-accounts.delete", Need::Org(Manager)),
    ("role-bindings.list", Need::Org(Manager)),
    ("role-bindings.create", Need::RoleBinding),
    ("role-bindings.delete", Need::RoleBinding),
    ("audit.read", Need::Org(Manager)),
    ("tokens.list", Need::Token),
    ("tokens.create", Need::TokenCreate),
    ("tokens.delete", Need::Token),
    ("clusters.list", Need::Org(Manager)),
    ("clusters.get", Need::Org(Manager)),
    ("clusters.create", Need::Org(Admin)),
    ("clusters.delete", Need::Org(Admin)),
    ("clusters.check", Need::Org(Admin)),
    ("artefacts.list", Need::Org(Member)),
    ("artefacts.get", Need::Org(Member)),
    ("artefacts.create", Need::Org(Member)),
    ("env-types.list", Need::Org(Member)),
    ("env-types.get", Need::Org(Member)),
    ("env-types.create", Need::Org(Admin)),
    ("env-types.update", Need::Org(Admin)),
    ("env-types.delete", Need::Org(Admin)),
    ("resource-types.list", Need::Org(Member)),
    ("resource-types.get", Need::Org(Member)),
    ("resource-types.create", Need::Org(Admin)),
    ("resource-types.delete", Need::Org(Admin)),
    ("resource-definitions.list", Need::Org(Member)),
    ("resource-definitions.get", Need::Org(Member)),
    ("resource-definitions.create", Need::Org(Admin)),
    ("resource-definitions.update", Need::Org(Admin)),
    ("resource-definitions.delete", Need::Org(Admin)),
    ("plugins.list", Need::Org(Member)),
    ("plugins.get", Need::Org(Member)),
    ("plugins.upload", Need::Org(Admin)),
    ("plugins.install", Need::Org(Admin)),
    ("plugins.update", Need::Org(Admin)),
    ("plugins.delete", Need::Org(Admin)),
    ("apps.get", Need::App(Viewer)),
    ("apps.update", Need::App(Owner)),
    ("apps.delete", Need::App(Owner)),
    ("app-members.list", Need::App(Viewer)),
    ("app-members.create", Need::App(Owner)),
    ("app-members.delete", Need::App(Owner)),
    ("workloads.list", Need::App(Viewer)),
    ("workloads.get", Need::App(Viewer)),
    ("workloads.create", Need::App(Developer)),
    ("workloads.update", Need::App(Developer)),
    ("workloads.delete", Need::App(Developer)),
    ("environments.list", Need::App(Viewer)),
    ("environments.get", Need::App(Viewer)),
    ("environments.update", Need::App(Developer)),
    ("environments.create", Need::Deploy(Developer)),
    ("environments.clone", Need::Deploy(Developer)),
    ("environments.delete", Need::Deploy(Developer)),
    ("environments.pause", Need::Deploy(Developer)),
    ("environments.resume", Need::Deploy(Developer)),
    ("sets.list", Need::App(Viewer)),
    ("sets.get", Need::App(Viewer)),
    ("sets.create", Need::App(Developer)),
    ("deployments.list", Need::App(Viewer)),
    ("deployments.get", Need::App(Viewer)),
    ("deployments.create", Need::Deploy(Developer)),
    ("deployments.cancel", Need::Deploy(Developer)),
    ("values.list", Need::App(Viewer)),
    ("values.get", Need::App(Viewer)),
    ("values.create", Need::App(Developer)),
    ("values.update", Need::App(Developer)),
    ("values.delete", Need::App(Developer)),
    ("secrets.read", Need::App(Developer)),
    ("resources.list", Need::App(Viewer)),
    ("resources.get", Need::App(Viewer)),
    ("resources.delete", Need::App(Owner)),
    ("logs.read", Need::App(Viewer)),
    ("automation-rules.list", Need::App(Viewer)),
    ("automation-rules.get", Need::App(Viewer)),
    ("automation-rules.create", Need::App(Developer)),
    ("automation-rules.update", Need::App(Developer)),
    ("automation-rules.delete", Need::App(Developer)),
    ("webhooks.list", Need::AppOrOrg(Owner, Admin)),
    ("webhooks.get", Need::AppOrOrg(Owner, Admin)),
    ("webhooks.create", Need::AppOrOrg(Owner, Admin)),
    ("webhooks.update", Need::AppOrOrg(Owner, Admin)),
    ("webhooks.delete", Need::AppOrOrg(Owner, Admin)),
];

/// What an action needs, or `None` for an unknown action.
pub fn need(action: &str) -> Option<Need> {
    // A sorted copy of the table, made once per instance (warm instances serve many
    // decisions): a binary search instead of comparing with every action.
    static SORTED: std::sync::OnceLock<Vec<(&str, Need)>> = std::sync::OnceLock::new();
    let sorted = SORTED.get_or_init(|| {
        let mut table = ACTIONS.to_vec();
        table.sort_unstable_by_key(|(a, _)| *a);
        table
    });
    sorted
        .binary_search_by_key(&action, |(a, _)| *a)
        .ok()
        .map(|i| sorted[i].1)
}

/// The highest org role of the principal.
fn org_role(principal: &Principal) -> Option<OrgRole> {
    principal
        .role_bindings
        .iter()
        .filter(|b| b.scope == Scope::Org)
        .filter_map(|b| OrgRole::parse(&b.role))
        .max()
}

/// The highest role of the principal on `app`.
fn app_role(principal: &Principal, app: &str) -> Option<AppRole> {
    principal
        .role_bindings
        .iter()
        .filter(|b| matches!(&b.scope, Scope::App(a) if a == app))
        .filter_map(|b| AppRole::parse(&b.role))
        .max()
}

fn deployer(principal: &Principal, env_type: &str) -> bool {
    principal
        .role_bindings
        .iter()
        .any(|b| b.role == "deployer" && matches!(&b.scope, Scope::EnvType(t) if t == env_type))
}

fn deny_org_role(action: &str, role: OrgRole) -> Decision {
    Decision::Deny(format!(
        "{action} needs the org role {} (or higher)",
        role.name()
    ))
}

/// Decides one request.
pub fn decide(request: &Request) -> Decision {
    let action = request.action.as_str();
    let Some(need) = need(action) else {
        return Decision::Deny(format!("unknown action {action:?}"));
    };
    let principal = &request.principal;
    let org = org_role(principal);
    // An admin may do anything but make another principal's token (decided below).
    if org == Some(Admin) && need != Need::TokenCreate {
        return Decision::Allow;
    }
    let deny_org = |role: OrgRole| deny_org_role(action, role);
    match need {
        Need::Org(role) => {
            if org >= Some(role) {
                Decision::Allow
            } else {
                deny_org(role)
            }
        }
        Need::RoleBinding => {
            if request.attributes["role"] == "admin" {
                deny_org(Admin)
            } else if org >= Some(Manager) {
                Decision::Allow
            } else {
                deny_org(Manager)
            }
        }
        Need::Token => {
            if request.target.object.as_deref() == Some(principal.id.as_str()) {
                Decision::Allow
            } else if request.attributes["target_is_admin"] == true {
                deny_org(Admin)
            } else if org >= Some(Manager) {
                Decision::Allow
            } else {
                deny_org(Manager)
            }
        }
        Need::TokenCreate => {
            if request.target.object.as_deref() == Some(principal.id.as_str()) {
                Decision::Allow
            } else if request.attributes["target_is_admin"] == true {
                Decision::Deny(format!(
                    "{action}: no one may make a token for another admin; they make their own"
                ))
            } else if org == Some(Admin) {
                Decision::Allow
            } else {
                deny_org(Admin)
            }
        }
        Need::AppOrOrg(role, org_needed) => match request.target.app.as_deref() {
            None if org >= Some(org_needed) => Decision::Allow,
            None => deny_org(org_needed),
            Some(app) if app_role(principal, app) >= Some(role) => Decision::Allow,
            Some(app) => Decision::Deny(format!(
                "{action} needs the role {} (or higher) on app {app}",
                role.name()
            )),
        },
        Need::App(role) | Need::Deploy(role) => {
            let Some(app) = request.target.app.as_deref() else {
                return Decision::Deny(format!("{action} needs an app in its target"));
            };
            if app_role(principal, app) < Some(role) {
                return Decision::Deny(format!(
                    "{action} needs the role {} (or higher) on app {app}",
                    role.name()
                ));
            }
            if let Need::Deploy(_) = need {
                let Some(env_type) = request.target.env_type.as_deref() else {
                    return Decision::Deny(format!(
                        "{action} needs an environment type in its target"
                    ));
                };
                if !deployer(principal, env_type) {
                    return Decision::Deny(format!(
                        "{action} needs the role deployer on environment type {env_type}"
                    ));
                }
            }
            Decision::Allow
        }
    }
}

/// The rbac policy.
pub struct Rbac;

impl Policy for Rbac {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "rbac",
            env!("CARGO_PKG_VERSION"),
            "Role-based access control at org, app and environment-type scope",
        )
        .with_config_schema(json!({ "type": "object", "additionalProperties": false }))
    }

    fn validate_config(config: &Value) -> Result<(), Vec<Issue>> {
        match config {
            Value::Null => Ok(()),
            Value::Object(map) if map.is_empty() => Ok(()),
            Value::Object(map) => Err(map
                .keys()
                .map(|k| Issue::new(format!("/{k}"), "rbac takes no configuration"))
                .collect()),
            _ => Err(vec![Issue::new("", "must be an empty object")]),
        }
    }

    fn decide(_config: &Value, request: &Request) -> Decision {
        decide(request)
    }
}

wharf_sdk::export_policy!(Rbac);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_exactly_the_actions_of_the_table() {
        let readme = include_str!("../README.md");
        let documented: Vec<&str> = readme
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('`').map(|(a, _)| a))
            .filter(|a| a.contains('.'))
            .collect();
        let coded: Vec<&str> = ACTIONS.iter().map(|(a, _)| *a).collect();
        assert_eq!(documented, coded);
    }

    #[test]
    fn every_action_is_found_and_unknown_ones_are_not() {
        for (action, need_of) in ACTIONS {
            assert_eq!(need(action), Some(*need_of), "{action}");
        }
        assert_eq!(need("apps.explode"), None);
        assert_eq!(need(""), None);
    }

    /// The principals of the permission table: a name, and its bindings (app `a`,
    /// environment type `t`).
    fn principals() -> Vec<(&'static str, Vec<(Scope, &'static str)>)> {
        let app = || Scope::App("a".into());
        let env_type = || Scope::EnvType("t".into());
        vec![
            ("org admin", vec![(Scope::Org, "admin")]),
            ("org manager", vec![(Scope::Org, "manager")]),
            ("org member", vec![(Scope::Org, "member")]),
            ("app owner", vec![(app(), "owner")]),
            ("app developer", vec![(app(), "developer")]),
            (
                "app developer + deployer",
                vec![(app(), "developer"), (env_type(), "deployer")],
            ),
            ("app viewer", vec![(app(), "viewer")]),
            ("deployer only", vec![(env_type(), "deployer")]),
            (
                "owner of another app",
                vec![(Scope::App("b".into()), "owner")],
            ),
            (
                "deployer of another type",
                vec![
                    (app(), "developer"),
                    (Scope::EnvType("u".into()), "deployer"),
                ],
            ),
            ("no role", vec![]),
        ]
    }

    /// Every action as every principal, on app `a` of environment type `t`, on another
    /// principal (not an admin), granting a role that is not admin: the default policy's
    /// permission table, which `permissions.txt` holds. A change to it is a change to who
    /// may do what: the file must be updated on purpose (`WHARF_UPDATE_GOLDEN=1`) and the
    /// diff reviewed.
    #[test]
    fn the_permission_table_is_the_one_committed() {
        let principals = principals();
        let mut table = String::from(
            "# Who may do what under the default rbac policy: every action, as each kind of\n\
             # principal, on app `a` of environment type `t`, about another principal (not an\n\
             # admin), granting a role that is not admin. Generated by this crate's tests.\n\n",
        );
        let width = ACTIONS.iter().map(|(a, _)| a.len()).max().unwrap_or(0);
        table.push_str(&format!("{:width$}", "action"));
        for (name, _) in &principals {
            table.push_str(&format!(" | {name}"));
        }
        table.push('\n');
        for (action, _) in ACTIONS {
            table.push_str(&format!("{action:width$}"));
            for (name, bindings) in &principals {
                let mut request = Request::test("someone", action);
                let principal = std::sync::Arc::make_mut(&mut request.principal);
                principal.role_bindings = bindings
                    .iter()
                    .map(|(scope, role)| wharf_sdk::policy::RoleBinding {
                        scope: scope.clone(),
                        role: role.to_string(),
                    })
                    .collect();
                request.target.app = Some("a".into());
                request.target.env_type = Some("t".into());
                request.target.object = Some("another".into());
                request.attributes = json!({ "role": "member", "target_is_admin": false });
                let mark = match decide(&request) {
                    Decision::Allow => "allow",
                    _ => "-",
                };
                table.push_str(&format!(" | {mark:w$}", w = name.len()));
            }
            table.truncate(table.trim_end().len());
            table.push('\n');
        }
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("permissions.txt");
        if std::env::var_os("WHARF_UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &table).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == table,
            "the permission table changed; if that is meant, run with WHARF_UPDATE_GOLDEN=1 \
             and review the diff of {}:\n{table}",
            path.display()
        );
    }

    #[test]
    fn no_action_is_listed_twice() {
        let mut names: Vec<&str> = ACTIONS.iter().map(|(a, _)| *a).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }
}
