//! Authorization: every action is decided by the chain of installed policies.
//!
//! Each policy answers allow, deny (with a reason) or abstain. The chain combines them:
//! any deny wins, else any allow, else the action is denied. A policy that fails (trap,
//! timeout) fails closed: the request is refused with a server error that names it,
//! never allowed. The chain can change while the server runs; a request uses the chain
//! as it was when it started.

use crate::ApiError;
use crate::auth::Caller;
use serde_json::Value;
use std::sync::{Arc, RwLock};
use wharf_core::roles::Scope;
use wharf_plugins::{AuthzRequest, Decision, PolicyPlugin, Principal, PrincipalKind, RoleBinding};

/// One policy of the chain, with its configuration.
#[derive(Clone)]
pub struct Policy {
    /// The installation's name, shown in denials.
    pub name: String,
    /// The installed plugin.
    pub plugin: PolicyPlugin,
    /// Its configuration.
    pub config: Value,
}

/// The chain of policies, in order.
#[derive(Default)]
pub struct PolicyChain {
    policies: RwLock<Arc<Vec<Policy>>>,
}

/// What the chain decided for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed.
    Allow,
    /// Denied by `policy` for `reason`.
    Deny {
        /// The first policy that denied (or `chain` when none allowed).
        policy: String,
        /// Why.
        reason: String,
    },
}

/// What an action is about.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Application.
    pub app: Option<String>,
    /// Environment.
    pub env: Option<String>,
    /// Environment type.
    pub env_type: Option<String>,
    /// Object within the collection.
    pub object: Option<String>,
    /// More about the request, for policies (a JSON object; null is sent as `{}`).
    pub attributes: Value,
}

impl PolicyChain {
    /// Replaces the chain.
    pub fn set(&self, policies: Vec<Policy>) {
        *self
            .policies
            .write()
            .expect("policy chain lock is never poisoned") = Arc::new(policies);
    }

    fn snapshot(&self) -> Arc<Vec<Policy>> {
        self.policies
            .read()
            .expect("policy chain lock is never poisoned")
            .clone()
    }

    /// Decides a batch of actions by `caller`, one verdict per `(action, target)`, with one
    /// call to each policy.
    pub async fn decide(
        &self,
        caller: &Caller,
        requests: &[(&str, Target)],
    ) -> Result<Vec<Verdict>, ApiError> {
        let principal = std::sync::Arc::new(principal(caller));
        let batch: Vec<AuthzRequest> = requests
            .iter()
            .map(|(action, target)| AuthzRequest {
                principal: principal.clone(),
                action: action.to_string(),
                target: wharf_plugins::Target {
                    app: target.app.clone(),
                    env: target.env.clone(),
                    env_type: target.env_type.clone(),
                    object: target.object.clone(),
                },
                attributes: if target.attributes.is_null() {
                    serde_json::json!({})
                } else {
                    target.attributes.clone()
                },
            })
            .collect();
        let mut verdicts: Vec<Option<Verdict>> = vec![None; requests.len()];
        let mut allowed = vec![false; requests.len()];
        for policy in self.snapshot().iter() {
            let decisions = policy
                .plugin
                .authorize(&policy.config, &batch)
                .await
                .map_err(|e| ApiError::internal(format!("policy {} failed: {e}", policy.name)))?;
            for (i, decision) in decisions.into_iter().enumerate() {
                match decision {
                    Decision::Deny(reason) if verdicts[i].is_none() => {
                        verdicts[i] = Some(Verdict::Deny {
                            policy: policy.name.clone(),
                            reason,
                        });
                    }
                    Decision::Allow => allowed[i] = true,
                    _ => {}
                }
            }
        }
        Ok(verdicts
            .into_iter()
            .zip(allowed)
            .zip(requests)
            .map(|((verdict, allowed), (action, _))| match verdict {
                Some(deny) => deny,
                None if allowed => Verdict::Allow,
                None => Verdict::Deny {
                    policy: "chain".into(),
                    reason: format!("no policy allows {action}"),
                },
            })
            .collect())
    }

    /// Decides one action; a denial is a 403 naming the policy and its reason.
    pub async fn authorize(
        &self,
        caller: &Caller,
        action: &str,
        target: Target,
    ) -> Result<(), ApiError> {
        let verdict = self
            .decide(caller, &[(action, target)])
            .await?
            .pop()
            .expect("one verdict per request");
        match verdict {
            Verdict::Allow => Ok(()),
            Verdict::Deny { policy, reason } => Err(ApiError::Forbidden {
                action: action.to_string(),
                policy,
                reason,
            }),
        }
    }
}

/// The principal the policies see for `caller`.
pub(crate) fn principal(caller: &Caller) -> Principal {
    Principal {
        id: caller.id.clone(),
        kind: if caller.kind == "service-account" {
            PrincipalKind::ServiceAccount
        } else {
            PrincipalKind::User
        },
        groups: Vec::new(),
        role_bindings: caller
            .bindings
            .iter()
            .map(|(scope, role)| RoleBinding {
                scope: match scope {
                    Scope::Org => wharf_plugins::Scope::Org,
                    Scope::App(id) => wharf_plugins::Scope::App(id.to_string()),
                    Scope::EnvType(id) => wharf_plugins::Scope::EnvType(id.to_string()),
                },
                role: role.clone(),
            })
            .collect(),
    }
}
