//! Authorization policies: decide whether a principal may do an action.
//!
//! A policy implements [`Policy`] and is exported with [`export_policy!`](crate::export_policy).
//! Policies are pure: no network, no state kept between calls (the host may reuse an
//! instance for many calls with the same configuration). The chain of policies combines
//! decisions: any [`Decision::Deny`] wins, else any [`Decision::Allow`], else the action
//! is denied.

use crate::{Issue, PluginError, PluginInfo, Value};

/// An authorization policy.
pub trait Policy {
    /// Describes the policy. Must be pure.
    fn describe() -> PluginInfo;

    /// Checks a configuration, listing every problem. Must be pure.
    fn validate_config(config: &Value) -> Result<(), Vec<Issue>> {
        let _ = config;
        Ok(())
    }

    /// Decides one request.
    fn decide(config: &Value, request: &Request) -> Decision;

    /// Decides a batch, one decision per request in order. Override it to parse the
    /// configuration once per batch, or to reject a configuration.
    fn authorize(config: &Value, requests: &[Request]) -> Result<Vec<Decision>, PluginError> {
        Ok(requests.iter().map(|r| Self::decide(config, r)).collect())
    }
}

/// A person or a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A person.
    User,
    /// A machine identity.
    ServiceAccount,
}

/// Where a role binding applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The whole organization.
    Org,
    /// One application.
    App(String),
    /// One environment type.
    EnvType(String),
}

/// A role at a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleBinding {
    /// Where it applies.
    pub scope: Scope,
    /// The role.
    pub role: String,
}

/// Who is asking, with every role binding that applies to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Id (`alice@example.com`).
    pub id: String,
    /// Person or machine.
    pub kind: PrincipalKind,
    /// Groups.
    pub groups: Vec<String>,
    /// Role bindings, including those held through groups.
    pub role_bindings: Vec<RoleBinding>,
}

impl Principal {
    /// True when the principal holds `role` at `scope`.
    pub fn has(&self, scope: &Scope, role: &str) -> bool {
        self.role_bindings
            .iter()
            .any(|b| b.role == role && &b.scope == scope)
    }
}

/// What an action is about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    /// Application.
    pub app: Option<String>,
    /// Environment.
    pub env: Option<String>,
    /// Environment type.
    pub env_type: Option<String>,
    /// The object within the collection.
    pub object: Option<String>,
}

/// May `principal` do `action` on `target`?
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Who (shared by every request of a batch).
    pub principal: std::sync::Arc<Principal>,
    /// `<collection>.<verb>`.
    pub action: String,
    /// On what.
    pub target: Target,
    /// More about the request (a JSON object).
    pub attributes: Value,
}

impl Request {
    /// A request by user `principal` with no role bindings, for tests.
    pub fn test(principal: &str, action: &str) -> Self {
        Self {
            principal: std::sync::Arc::new(Principal {
                id: principal.into(),
                kind: PrincipalKind::User,
                groups: Vec::new(),
                role_bindings: Vec::new(),
            }),
            action: action.into(),
            target: Target::default(),
            attributes: serde_json::json!({}),
        }
    }
}

/// One policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by this policy.
    Allow,
    /// Forbidden, with the reason shown to the principal.
    Deny(String),
    /// No opinion.
    Abstain,
}

/// Exports a [`Policy`] as the plugin's `wharf:plugin/policy` world.
///
/// Call it once, at the root of a `cdylib` crate built for `wasm32-wasip2`. On other
/// targets it expands to nothing, so the crate still builds and tests natively.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        // Exports exist only in the component: natively (unit tests, clippy) the plugin
        // is a plain library whose symbol names need not suit the native linker.
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[allow(missing_docs, unused_imports, clippy::all)]
        mod __wharf_export_policy {
            use super::*;
            $crate::__private::world!(policy);
            use exports::wharf::plugin::authorizer as a;
            use $crate::__private::policy as glue;
            use $crate::__private::wit::wharf::plugin::types as t;
            type P = $policy;
            struct Export;
            fn principal(p: a::Principal) -> $crate::policy::Principal {
                use $crate::policy as sdk;
                sdk::Principal {
                    id: p.id,
                    kind: match p.kind {
                        a::PrincipalKind::User => sdk::PrincipalKind::User,
                        a::PrincipalKind::ServiceAccount => sdk::PrincipalKind::ServiceAccount,
                    },
                    groups: p.groups,
                    role_bindings: p
                        .role_bindings
                        .into_iter()
                        .map(|b| sdk::RoleBinding {
                            scope: match b.scope {
                                a::Scope::Org => sdk::Scope::Org,
                                a::Scope::App(app) => sdk::Scope::App(app),
                                a::Scope::EnvType(t) => sdk::Scope::EnvType(t),
                            },
                            role: b.role,
                        })
                        .collect(),
                }
            }
            fn request(
                principal: &::std::sync::Arc<$crate::policy::Principal>,
                r: a::Request,
            ) -> ::core::result::Result<$crate::policy::Request, t::PluginError> {
                use $crate::policy as sdk;
                let principal = principal.clone();
                let target = sdk::Target {
                    app: r.target.app,
                    env: r.target.env,
                    env_type: r.target.env_type,
                    object: r.target.object,
                };
                Ok(sdk::Request {
                    principal,
                    action: r.action,
                    target,
                    attributes: $crate::__private::parse_json("attributes", &r.attributes)?,
                })
            }
            impl a::Guest for Export {
                fn describe() -> t::PluginInfo {
                    <P as $crate::policy::Policy>::describe().into()
                }
                fn validate_config(
                    config: ::std::string::String,
                ) -> ::core::result::Result<(), ::std::vec::Vec<t::Issue>> {
                    let config = glue::config(&config).map_err(glue::issues)?;
                    <P as $crate::policy::Policy>::validate_config(&config).map_err(glue::issues)
                }
                fn authorize(
                    config: ::std::string::String,
                    who: a::Principal,
                    requests: ::std::vec::Vec<a::Request>,
                ) -> ::core::result::Result<::std::vec::Vec<a::Decision>, t::PluginError> {
                    let config = $crate::__private::parse_json("config", &config)?;
                    let who = ::std::sync::Arc::new(principal(who));
                    let requests = requests
                        .into_iter()
                        .map(|r| request(&who, r))
                        .collect::<::core::result::Result<::std::vec::Vec<_>, _>>()?;
                    let decisions = <P as $crate::policy::Policy>::authorize(&config, &requests)?;
                    if decisions.len() != requests.len() {
                        return Err($crate::PluginError::other(::std::format!(
                            "policy returned {} decisions for {} requests",
                            decisions.len(),
                            requests.len()
                        ))
                        .into());
                    }
                    Ok(decisions
                        .into_iter()
                        .map(|d| match d {
                            $crate::policy::Decision::Allow => a::Decision::Allow,
                            $crate::policy::Decision::Deny(reason) => a::Decision::Deny(reason),
                            $crate::policy::Decision::Abstain => a::Decision::Abstain,
                        })
                        .collect())
                }
            }
            export!(Export);
        }
    };
}

/// Conversions used by the export macros. Not part of the API.
#[doc(hidden)]
pub mod glue {
    use crate::__private::wit::wharf::plugin::types as wit;
    use crate::{Issue, Value};

    pub fn config(text: &str) -> Result<Value, Vec<Issue>> {
        crate::__private::parse_json("config", text).map_err(|e| vec![Issue::new("", e.message)])
    }

    pub fn issues(issues: Vec<Issue>) -> Vec<wit::Issue> {
        issues.into_iter().map(Into::into).collect()
    }
}
