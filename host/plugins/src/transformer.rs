//! The typed API of configuration transformers.

use crate::bindings::transformer::exports::wharf::plugin::transform as wit;
use crate::bindings::transformer::{Transformer, TransformerPre};
use crate::driver::{info, json};
use crate::error::PluginFailure;
use crate::runtime::{CallFuture, Called, Loaded, WarmPool};
use crate::sandbox::{HostState, text_len};
use crate::types::{Issue, PluginInfo, TransformContext};
use std::sync::Arc;
use wasmtime::Store;
use wasmtime::component::InstancePre;

/// An installed configuration transformer. Cheap to clone; clones share warm instances.
#[derive(Clone)]
pub struct TransformerPlugin {
    pub(crate) loaded: Arc<Loaded>,
    pre: TransformerPre<HostState>,
    warm: Arc<WarmPool<Transformer>>,
}

impl TransformerPlugin {
    pub(crate) fn new(loaded: Arc<Loaded>, pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        Ok(Self {
            loaded,
            pre: TransformerPre::new(pre)?,
            warm: Arc::default(),
        })
    }

    /// The sha256 of the component, hex.
    pub fn digest(&self) -> &str {
        &self.loaded.digest
    }

    /// What the transformer says it is.
    pub async fn describe(&self) -> Result<PluginInfo, PluginFailure> {
        let i = self
            .call("", "describe", |b, store| {
                Box::pin(async move { b.wharf_plugin_transform().call_describe(store).await })
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
                    b.wharf_plugin_transform()
                        .call_validate_config(store, &c)
                        .await
                })
            })
            .await?
            .value;
        Ok(crate::bindings::issues(result))
    }

    /// Transforms `objects` under `config`.
    pub async fn transform(
        &self,
        context: &TransformContext,
        config: &serde_json::Value,
        objects: &[serde_json::Value],
    ) -> Result<Vec<serde_json::Value>, PluginFailure> {
        let texts: Vec<String> = objects.iter().map(|o| o.to_string()).collect();
        self.transform_json(context, config, texts)
            .await?
            .iter()
            .enumerate()
            .map(|(i, o)| json(&format!("objects[{i}]"), o))
            .collect()
    }

    /// Transforms objects given as JSON texts, returning JSON texts exactly as the plugin
    /// wrote them.
    pub async fn transform_json(
        &self,
        context: &TransformContext,
        config: &serde_json::Value,
        objects: Vec<String>,
    ) -> Result<Vec<String>, PluginFailure> {
        let config = config.to_string();
        let c = config.clone();
        let context = wit::Context {
            app: context.app.clone(),
            env: context.env.clone(),
            env_type: context.env_type.clone(),
        };
        self.call(&config, "transform", move |b, store| {
            Box::pin(async move {
                b.wharf_plugin_transform()
                    .call_transform(store, &context, &c, &objects)
                    .await
            })
        })
        .await?
        .judge(self.loaded.sandbox.limits.output_bytes, |o| text_len(o))
    }

    async fn call<T: Send + 'static>(
        &self,
        config: &str,
        export: &'static str,
        call: impl for<'a> FnOnce(&'a Transformer, &'a mut Store<HostState>) -> CallFuture<'a, T> + Send,
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
