//! Configuration transformers: rewrite the objects rendered for a deployment.
//!
//! A transformer implements [`Transformer`] and is exported with
//! [`export_transformer!`](crate::export_transformer). Transformers are pure: no network,
//! no state kept between calls. They should leave alone whatever their configuration does
//! not ask them to change: objects pass through as JSON with their key order kept.

use crate::{Issue, PluginError, PluginInfo, Value};

/// A configuration transformer.
pub trait Transformer {
    /// Describes the transformer. Must be pure.
    fn describe() -> PluginInfo;

    /// Checks a configuration, listing every problem. Must be pure.
    fn validate_config(config: &Value) -> Result<(), Vec<Issue>> {
        let _ = config;
        Ok(())
    }

    /// Returns the objects, transformed.
    fn transform(
        context: &Context,
        config: &Value,
        objects: Vec<Value>,
    ) -> Result<Vec<Value>, PluginError>;
}

/// What is being deployed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Context {
    /// Application.
    pub app: String,
    /// Environment.
    pub env: String,
    /// Environment type.
    pub env_type: String,
}

impl Context {
    /// `shop/development` of type `development`, for tests.
    pub fn test() -> Self {
        Self {
            app: "shop".into(),
            env: "development".into(),
            env_type: "development".into(),
        }
    }
}

/// Exports a [`Transformer`] as the plugin's `wharf:plugin/transformer` world.
///
/// Call it once, at the root of a `cdylib` crate built for `wasm32-wasip2`. On other
/// targets it expands to nothing, so the crate still builds and tests natively.
#[macro_export]
macro_rules! export_transformer {
    ($transformer:ty) => {
        // Exports exist only in the component: natively (unit tests, clippy) the plugin
        // is a plain library whose symbol names need not suit the native linker.
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[allow(missing_docs, unused_imports, clippy::all)]
        mod __wharf_export_transformer {
            use super::*;
            $crate::__private::world!(transformer);
            use exports::wharf::plugin::transform as x;
            use $crate::__private::policy as glue;
            use $crate::__private::wit::wharf::plugin::types as t;
            type X = $transformer;
            struct Export;
            impl x::Guest for Export {
                fn describe() -> t::PluginInfo {
                    <X as $crate::transformer::Transformer>::describe().into()
                }
                fn validate_config(
                    config: ::std::string::String,
                ) -> ::core::result::Result<(), ::std::vec::Vec<t::Issue>> {
                    let config = glue::config(&config).map_err(glue::issues)?;
                    <X as $crate::transformer::Transformer>::validate_config(&config)
                        .map_err(glue::issues)
                }
                fn transform(
                    context: x::Context,
                    config: ::std::string::String,
                    objects: ::std::vec::Vec<::std::string::String>,
                ) -> ::core::result::Result<::std::vec::Vec<::std::string::String>, t::PluginError>
                {
                    let context = $crate::transformer::Context {
                        app: context.app,
                        env: context.env,
                        env_type: context.env_type,
                    };
                    let config = $crate::__private::parse_json("config", &config)?;
                    let objects = objects
                        .iter()
                        .enumerate()
                        .map(|(i, o)| {
                            $crate::__private::parse_json(&::std::format!("objects[{i}]"), o)
                        })
                        .collect::<::core::result::Result<::std::vec::Vec<_>, _>>()?;
                    let objects = <X as $crate::transformer::Transformer>::transform(
                        &context, &config, objects,
                    )?;
                    Ok(objects.iter().map(|o| o.to_string()).collect())
                }
            }
            export!(Export);
        }
    };
}
