//! The typed API of authorization policies.

use crate::bindings::policy::exports::wharf::plugin::authorizer as wit;
use crate::bindings::policy::{Policy, PolicyPre};
use crate::driver::info;
use crate::error::PluginFailure;
use crate::runtime::{CallFuture, Called, Loaded, WarmPool};
use crate::sandbox::HostState;
use crate::types::{AuthzRequest, Decision, Issue, PluginInfo, PrincipalKind, Scope};
use std::sync::Arc;
use wasmtime::Store;
use wasmtime::component::InstancePre;

/// An installed authorization policy. Cheap to clone; clones share warm instances.
#[derive(Clone)]
pub struct PolicyPlugin {
    pub(crate) loaded: Arc<Loaded>,
    pre: PolicyPre<HostState>,
    warm: Arc<WarmPool<Policy>>,
}

impl PolicyPlugin {
    pub(crate) fn new(loaded: Arc<Loaded>, pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        Ok(Self {
            loaded,
            pre: PolicyPre::new(pre)?,
            warm: Arc::default(),
        })
    }

    /// The sha256 of the component, hex.
    pub fn digest(&self) -> &str {
        &self.loaded.digest
    }

    /// What the policy says it is.
    pub async fn describe(&self) -> Result<PluginInfo, PluginFailure> {
        let i = self
            .call("", "describe", |b, store| {
                Box::pin(async move { b.wharf_plugin_authorizer().call_describe(store).await })
            })
            .await?
            .value;
        info(i)
    }

    /// Checks a configuration; an empty list means it is valid.
    pub async fn validate_config(
        &self,
        config: &serde_json::Value,
    ) -> Result<Vec<Issue>, PluginFailure> {
        let config = config.to_string();
        let c = config.clone();
        let result = self
            .call(&config, "validate-config", move |b, store| {
                Box::pin(async move {
                    b.wharf_plugin_authorizer()
                        .call_validate_config(store, &c)
                        .await
                })
            })
            .await?
            .value;
        Ok(crate::bindings::issues(result))
    }

    /// Decides a batch of requests under `config`: one decision per request, in order.
    /// Consecutive requests by the same principal go to the plugin in one call, which
    /// carries the principal once.
    pub async fn authorize(
        &self,
        config: &serde_json::Value,
        requests: &[AuthzRequest],
    ) -> Result<Vec<Decision>, PluginFailure> {
        let config = config.to_string();
        let mut decisions = Vec::with_capacity(requests.len());
        let mut start = 0;
        while start < requests.len() {
            let principal = &requests[start].principal;
            let run = requests[start..]
                .iter()
                .take_while(|r| {
                    std::sync::Arc::ptr_eq(&r.principal, principal) || r.principal == *principal
                })
                .count();
            decisions.extend(
                self.authorize_batch(&config, principal, &requests[start..start + run])
                    .await?,
            );
            start += run;
        }
        Ok(decisions)
    }

    async fn authorize_batch(
        &self,
        config: &str,
        principal: &crate::Principal,
        requests: &[AuthzRequest],
    ) -> Result<Vec<Decision>, PluginFailure> {
        let wit_principal = wit_principal(principal);
        let wit_requests: Vec<wit::Request> = requests.iter().map(wit_request).collect();
        let c = config.to_string();
        let decisions = self
            .call(config, "authorize", move |b, store| {
                Box::pin(async move {
                    b.wharf_plugin_authorizer()
                        .call_authorize(store, &c, &wit_principal, &wit_requests)
                        .await
                })
            })
            .await?
            .judge(self.loaded.sandbox.limits.output_bytes, |d| {
                d.iter()
                    .map(|d| match d {
                        wit::Decision::Deny(reason) => reason.len() + 1,
                        _ => 1,
                    })
                    .sum()
            })?;
        if decisions.len() != requests.len() {
            return Err(PluginFailure::Contract(format!(
                "authorize returned {} decisions for {} requests",
                decisions.len(),
                requests.len()
            )));
        }
        Ok(decisions
            .into_iter()
            .map(|d| match d {
                wit::Decision::Allow => Decision::Allow,
                wit::Decision::Deny(reason) => Decision::Deny(reason),
                wit::Decision::Abstain => Decision::Abstain,
            })
            .collect())
    }

    async fn call<T: Send + 'static>(
        &self,
        config: &str,
        export: &'static str,
        call: impl for<'a> FnOnce(&'a Policy, &'a mut Store<HostState>) -> CallFuture<'a, T> + Send,
    ) -> Result<Called<T>, PluginFailure> {
        let pre = self.pre.clone();
        self.loaded
            .warm(
                &self.warm,
                config,
                export,
                move |store| Box::pin(async move { pre.instantiate_async(store).await }),
                call,
            )
            .await
    }
}

fn wit_principal(p: &crate::Principal) -> wit::Principal {
    wit::Principal {
        id: p.id.clone(),
        kind: match p.kind {
            PrincipalKind::User => wit::PrincipalKind::User,
            PrincipalKind::ServiceAccount => wit::PrincipalKind::ServiceAccount,
        },
        groups: p.groups.clone(),
        role_bindings: p
            .role_bindings
            .iter()
            .map(|b| wit::RoleBinding {
                scope: match &b.scope {
                    Scope::Org => wit::Scope::Org,
                    Scope::App(a) => wit::Scope::App(a.clone()),
                    Scope::EnvType(t) => wit::Scope::EnvType(t.clone()),
                },
                role: b.role.clone(),
            })
            .collect(),
    }
}

fn wit_request(r: &AuthzRequest) -> wit::Request {
    wit::Request {
        action: r.action.clone(),
        target: wit::Target {
            app: r.target.app.clone(),
            env: r.target.env.clone(),
            env_type: r.target.env_type.clone(),
            object: r.target.object.clone(),
        },
        attributes: r.attributes.to_string(),
    }
}
