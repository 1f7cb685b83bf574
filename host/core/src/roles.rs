//! The role model: which roles exist at which scope.
//!
//! What each role may do is the rbac policy's business (`plugins/rbac`); this module only
//! says which bindings can exist, so that a typo in a role is refused when it is granted
//! instead of silently granting nothing.

use crate::id::Id;
use serde::{Deserialize, Serialize};

/// Where a role binding applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "kebab-case")]
pub enum Scope {
    /// The organization.
    Org,
    /// One application.
    App(Id),
    /// One environment type.
    EnvType(Id),
}

/// Org roles, app roles and env-type roles, each list from most to least powerful.
pub const ORG_ROLES: &[&str] = &["admin", "manager", "member"];
/// Roles on an application.
pub const APP_ROLES: &[&str] = &["owner", "developer", "viewer"];
/// Roles on an environment type.
pub const ENV_TYPE_ROLES: &[&str] = &["deployer"];

impl Scope {
    /// The roles that exist at this scope.
    pub fn roles(&self) -> &'static [&'static str] {
        match self {
            Self::Org => ORG_ROLES,
            Self::App(_) => APP_ROLES,
            Self::EnvType(_) => ENV_TYPE_ROLES,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Org => "the org",
            Self::App(_) => "an app",
            Self::EnvType(_) => "an environment type",
        }
    }
}

/// A role that does not exist at the scope it was granted at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("there is no role {role:?} on {scope}; the roles are {allowed}")]
pub struct RoleError {
    /// The role asked for.
    pub role: String,
    /// The scope, in words.
    pub scope: &'static str,
    /// The roles that exist there, comma-separated.
    pub allowed: String,
}

/// Checks that `role` exists at `scope`.
pub fn check(scope: &Scope, role: &str) -> Result<(), RoleError> {
    if scope.roles().contains(&role) {
        Ok(())
    } else {
        Err(RoleError {
            role: role.to_string(),
            scope: scope.name(),
            allowed: scope.roles().join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_exist_only_at_their_scope() {
        let shop = Scope::App(Id::new("shop").unwrap());
        assert!(check(&Scope::Org, "manager").is_ok());
        assert!(check(&shop, "developer").is_ok());
        assert!(check(&Scope::EnvType(Id::new("production").unwrap()), "deployer").is_ok());
        let e = check(&shop, "admin").unwrap_err();
        assert_eq!(
            e.to_string(),
            "there is no role \"admin\" on an app; the roles are owner, developer, viewer"
        );
        assert!(check(&Scope::Org, "deployer").is_err());
    }

    #[test]
    fn scopes_serialize_with_their_kind() {
        let s = Scope::EnvType(Id::new("staging").unwrap());
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(text, r#"{"kind":"env-type","id":"staging"}"#);
        assert_eq!(serde_json::from_str::<Scope>(&text).unwrap(), s);
        assert_eq!(
            serde_json::to_string(&Scope::Org).unwrap(),
            r#"{"kind":"org"}"#
        );
    }
}
