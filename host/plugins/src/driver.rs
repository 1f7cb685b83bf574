//! The typed API of resource drivers.

use crate::bindings::driver::exports::wharf::plugin::provisioner as wit;
use crate::bindings::driver::{Driver, DriverPre};
use crate::error::PluginFailure;
use crate::runtime::{Called, Loaded};
use crate::sandbox::{HostState, text_len};
use crate::types::{
    DriverDescription, DriverRequest, Issue, PluginInfo, ResourceTypeInfo, Step, Values,
};
use std::sync::Arc;
use wasmtime::component::InstancePre;

/// An installed resource driver. Cheap to clone. Every call runs in a fresh instance.
#[derive(Clone)]
pub struct DriverPlugin {
    pub(crate) loaded: Arc<Loaded>,
    pre: DriverPre<HostState>,
}

impl DriverPlugin {
    pub(crate) fn new(loaded: Arc<Loaded>, pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        Ok(Self {
            loaded,
            pre: DriverPre::new(pre)?,
        })
    }

    /// The sha256 of the component, hex.
    pub fn digest(&self) -> &str {
        &self.loaded.digest
    }

    /// What the driver says it is and which resource types it serves.
    pub async fn describe(&self) -> Result<DriverDescription, PluginFailure> {
        let d = self
            .call("describe", move |b, store| {
                Box::pin(async move { b.wharf_plugin_provisioner().call_describe(store).await })
            })
            .await?
            .value;
        Ok(DriverDescription {
            info: info(d.info)?,
            resource_types: d
                .resource_types
                .into_iter()
                .map(|r| {
                    Ok(ResourceTypeInfo {
                        params_schema: json("params-schema", &r.params_schema)?,
                        outputs_schema: json("outputs-schema", &r.outputs_schema)?,
                        name: r.name,
                    })
                })
                .collect::<Result<_, PluginFailure>>()?,
        })
    }

    /// Checks a configuration; an empty list means it is valid.
    pub async fn validate_config(&self, config: &Values) -> Result<Vec<Issue>, PluginFailure> {
        let config = values(config);
        let result = self
            .call("validate-config", move |b, store| {
                Box::pin(async move {
                    b.wharf_plugin_provisioner()
                        .call_validate_config(store, &config)
                        .await
                })
            })
            .await?
            .value;
        Ok(crate::bindings::issues(result))
    }

    /// Runs one provision step.
    pub async fn provision(&self, request: &DriverRequest) -> Result<Step, PluginFailure> {
        self.step("provision", request).await
    }

    /// Runs one deprovision step.
    pub async fn deprovision(&self, request: &DriverRequest) -> Result<Step, PluginFailure> {
        self.step("deprovision", request).await
    }

    async fn step(
        &self,
        export: &'static str,
        request: &DriverRequest,
    ) -> Result<Step, PluginFailure> {
        let request = wit_request(request);
        let deprovision = export == "deprovision";
        let called = self
            .call(export, move |b, store| {
                Box::pin(async move {
                    let p = b.wharf_plugin_provisioner();
                    if deprovision {
                        p.call_deprovision(store, &request).await
                    } else {
                        p.call_provision(store, &request).await
                    }
                })
            })
            .await?;
        let step = called.judge(self.loaded.sandbox.limits.output_bytes, step_len)?;
        Ok(match step {
            wit::Step::Done(o) => Step::Done {
                outputs: Values {
                    values: json("outputs.values", &o.outputs.values)?,
                    secrets: json("outputs.secrets", &o.outputs.secrets)?,
                },
                state: json("state", &o.state)?,
                objects: objects(&o.objects)?,
            },
            wit::Step::InProgress(p) => Step::InProgress {
                state: json("state", &p.state)?,
                message: p.message,
                retry_after_ms: p.retry_after_ms,
            },
        })
    }

    async fn call<T: Send + 'static>(
        &self,
        export: &'static str,
        call: impl for<'a> FnOnce(
            &'a Driver,
            &'a mut wasmtime::Store<HostState>,
        ) -> crate::runtime::CallFuture<'a, T>
        + Send,
    ) -> Result<Called<T>, PluginFailure> {
        let pre = self.pre.clone();
        self.loaded
            .fresh(
                export,
                move |store| Box::pin(async move { pre.instantiate_async(store).await }),
                call,
            )
            .await
    }
}

/// The most objects one resource may come with.
const MAX_OBJECTS: usize = 32;

/// The objects a driver returned, each checked to be a Kubernetes object with a kind,
/// an apiVersion and a name.
fn objects(texts: &[String]) -> Result<Vec<serde_json::Value>, PluginFailure> {
    if texts.len() > MAX_OBJECTS {
        return Err(PluginFailure::Contract(format!(
            "it returned {} objects, more than the {MAX_OBJECTS} a resource may have",
            texts.len()
        )));
    }
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let object = json(&format!("objects[{i}]"), text)?;
            let text_at = |pointer: &str| object.pointer(pointer).and_then(|v| v.as_str());
            for (pointer, what) in [
                ("/apiVersion", "apiVersion"),
                ("/kind", "kind"),
                ("/metadata/name", "metadata.name"),
            ] {
                if text_at(pointer).is_none_or(str::is_empty) {
                    return Err(PluginFailure::Contract(format!(
                        "objects[{i}] has no {what}: every object needs apiVersion, kind and \
                         metadata.name"
                    )));
                }
            }
            Ok(object)
        })
        .collect()
}

fn step_len(step: &wit::Step) -> usize {
    match step {
        wit::Step::Done(o) => {
            text_len([&o.outputs.values, &o.outputs.secrets, &o.state]) + text_len(&o.objects)
        }
        wit::Step::InProgress(p) => text_len([&p.state, &p.message]),
    }
}

fn values(v: &Values) -> wit::Values {
    wit::Values {
        values: v.values.to_string(),
        secrets: v.secrets.to_string(),
    }
}

fn wit_request(r: &DriverRequest) -> wit::Request {
    let c = &r.context;
    wit::Request {
        context: wit::Context {
            app: c.app.clone(),
            env: c.env.clone(),
            env_type: c.env_type.clone(),
            resource_id: c.resource_id.clone(),
            resource_type: c.resource_type.clone(),
            class: c.class.clone(),
            workloads: c.workloads.clone(),
        },
        params: r.params.to_string(),
        config: values(&r.config),
        state: r.state.as_ref().map(|s| s.to_string()),
        idempotency_key: r.idempotency_key.clone(),
    }
}

/// Parses JSON text a plugin returned; text that is not JSON breaks the contract.
pub(crate) fn json(what: &str, text: &str) -> Result<serde_json::Value, PluginFailure> {
    serde_json::from_str(text)
        .map_err(|e| PluginFailure::Contract(format!("{what} is not valid JSON: {e}")))
}

pub(crate) fn info(
    i: crate::bindings::base::wharf::plugin::types::PluginInfo,
) -> Result<PluginInfo, PluginFailure> {
    Ok(PluginInfo {
        config_schema: json("config-schema", &i.config_schema)?,
        name: i.name,
        version: i.version,
        description: i.description,
    })
}
