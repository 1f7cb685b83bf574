//! `wharf-plugins`: the sandboxed WebAssembly plugin runtime of the Wharf host.
//!
//! Ops extend Wharf with plugins: WebAssembly components of one of three kinds (resource
//! [drivers](DriverPlugin), authorization [policies](PolicyPlugin) and configuration
//! [transformers](TransformerPlugin)) written against the `wharf:plugin` WIT contract in
//! `wit/`. This crate installs them ([`Runtime::install`]: checks that the bytes are a
//! component of the declared kind, compiles it once and caches the compiled code on disk)
//! and calls them through typed Rust APIs, each call in a sandbox: a memory cap, a CPU
//! budget, a wall-clock timeout, no filesystem, no environment, and outbound network only
//! to what the operator granted. A plugin that misbehaves fails its call with a
//! [`PluginFailure`] that says how; it never takes the host down.
//!
//! It knows nothing of deployments, environments or storage: the engine decides when to
//! call a plugin and what to do with the result. It must not block a tokio worker (Wasm
//! runs with epoch deadlines that yield) and must never trust compiled code it did not
//! produce itself.

mod bindings;
mod cache;
mod check;
mod driver;
mod error;
mod manifest;
mod policy;
mod runtime;
mod sandbox;
mod transformer;
mod types;

pub use check::{CONTRACT_VERSION, world_name};
pub use driver::DriverPlugin;
pub use error::{Error, PluginFailure};
pub use manifest::{Grants, Kind, Limits, Manifest};
pub use policy::PolicyPlugin;
pub use runtime::{Plugin, Runtime, RuntimeConfig, RuntimeStats};
pub use transformer::TransformerPlugin;
pub use types::*;
