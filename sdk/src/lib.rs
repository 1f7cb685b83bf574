//! `wharf-sdk`: write Wharf plugins in Rust.
//!
//! Wharf runs three kinds of plugin, each a WebAssembly component built for
//! `wasm32-wasip2` and run in a sandbox: [resource drivers](driver) provision resources
//! (`postgres`, `dns`, `s3`) for environments, [policies](policy) decide who may do what,
//! and [transformers](transformer) rewrite rendered objects before they are applied. A
//! plugin implements one plain Rust trait and exports it with one macro; the WIT contract
//! (`wharf:plugin`) and its bindings stay hidden. JSON is [`serde_json::Value`].
//!
//! The traits are plain Rust, so a plugin's logic is unit-tested natively with
//! `cargo test`, without Wasm. Inside the sandbox, [`log`] goes to the host's logs and
//! [`http`] reaches the origins the operator granted (drivers only).
//!
//! This crate must stay small and free of I/O of its own: it is linked into every plugin.
//!
//! # A driver
//!
//! ```
//! use wharf_sdk::driver::{Description, Driver, Outputs, Request, ResourceType, Step};
//! use wharf_sdk::{json, PluginError, PluginInfo};
//!
//! struct Greeting;
//!
//! impl Driver for Greeting {
//!     fn describe() -> Description {
//!         Description {
//!             info: PluginInfo::new("greeting", "0.1.0", "Provisions a greeting"),
//!             resource_types: vec![ResourceType::new("greeting")],
//!         }
//!     }
//!
//!     fn provision(request: Request) -> Result<Step, PluginError> {
//!         let name = request.params["name"]
//!             .as_str()
//!             .ok_or_else(|| PluginError::invalid_input("params.name must be a string"))?;
//!         Ok(Step::Done(Outputs::values(json!({ "text": format!("hello, {name}") }))))
//!     }
//!
//!     fn deprovision(_request: Request) -> Result<Step, PluginError> {
//!         Ok(Step::Done(Outputs::default()))
//!     }
//! }
//!
//! // In the plugin crate (a `cdylib` built for `wasm32-wasip2`):
//! // wharf_sdk::export_driver!(Greeting);
//!
//! // And natively, in its tests:
//! let mut request = Request::test("greeting");
//! request.params = json!({ "name": "shop" });
//! let Step::Done(outputs) = Greeting::provision(request).unwrap() else { panic!() };
//! assert_eq!(outputs.outputs.values["text"], "hello, shop");
//! ```
//!
//! # A policy
//!
//! ```
//! use wharf_sdk::policy::{Decision, Policy, Request};
//! use wharf_sdk::{PluginInfo, Value};
//!
//! struct NoDeletes;
//!
//! impl Policy for NoDeletes {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("no-deletes", "0.1.0", "Denies every delete")
//!     }
//!
//!     fn decide(_config: &Value, request: &Request) -> Decision {
//!         if request.action.ends_with(".delete") {
//!             Decision::Deny(format!("{} is disabled here", request.action))
//!         } else {
//!             Decision::Abstain
//!         }
//!     }
//! }
//!
//! // wharf_sdk::export_policy!(NoDeletes);
//! let request = Request::test("alice", "apps.delete");
//! assert!(matches!(NoDeletes::decide(&Value::Null, &request), Decision::Deny(_)));
//! ```
//!
//! # A transformer
//!
//! ```
//! use wharf_sdk::transformer::{Context, Transformer};
//! use wharf_sdk::{PluginError, PluginInfo, Value};
//!
//! struct TeamLabel;
//!
//! impl Transformer for TeamLabel {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("team-label", "0.1.0", "Labels every object with its team")
//!     }
//!
//!     fn transform(_context: &Context, config: &Value, mut objects: Vec<Value>)
//!         -> Result<Vec<Value>, PluginError>
//!     {
//!         let team = config["team"].clone();
//!         for object in &mut objects {
//!             object["metadata"]["labels"]["team"] = team.clone();
//!         }
//!         Ok(objects)
//!     }
//! }
//!
//! // wharf_sdk::export_transformer!(TeamLabel);
//! let objects = vec![wharf_sdk::json!({ "kind": "Service", "metadata": { "name": "web" } })];
//! let config = wharf_sdk::json!({ "team": "payments" });
//! let out = TeamLabel::transform(&Context::test(), &config, objects).unwrap();
//! assert_eq!(out[0]["metadata"]["labels"]["team"], "payments");
//! ```

pub mod driver;
mod error;
pub mod http;
pub mod log;
pub mod names;
pub mod policy;
pub mod transformer;

pub use error::{ErrorKind, Issue, PluginError, PluginInfo};
pub use serde_json::{self, Value, json};

/// What the export macros expand to. Not part of the API: may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use wharf_sdk_macros::world;
    pub use wit_bindgen;

    /// Bindings of the imports every plugin may use, shared by the three worlds.
    #[allow(missing_docs, clippy::all)]
    pub mod wit {
        wit_bindgen::generate!({
            world: "wharf:plugin/imports",
            path: "../wit",
            generate_all,
        });
    }

    pub use crate::driver::glue as driver;
    pub use crate::policy::glue as policy;

    /// Parses a JSON argument from the host; a malformed one is the host's bug, reported
    /// as `invalid-input` naming the argument.
    pub fn parse_json(what: &str, text: &str) -> Result<serde_json::Value, crate::PluginError> {
        serde_json::from_str(text).map_err(|e| {
            crate::PluginError::invalid_input(format!("{what} is not valid JSON: {e}"))
        })
    }
}
