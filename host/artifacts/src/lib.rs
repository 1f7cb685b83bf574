//! The repository's Wasm components, built from source by this crate's build script.
//!
//! Tests, benchmarks and the host binary use these paths and bytes instead of checked-in
//! binaries: every component is rebuilt from its crate when its source, the SDK or the
//! WIT contract changes. This crate must not contain logic beyond naming the components.

pub use wharf_core::Kind;

/// A plugin embedded in the host binary.
#[derive(Debug, Clone, Copy)]
pub struct Bundled {
    /// Its name (`rbac`, `echo`).
    pub name: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// Its version, the host's version.
    pub version: &'static str,
    /// The sha256 of the component, hex.
    pub sha256: &'static str,
    /// What an operator may grant its installations: `http`, `sockets`, `directories`
    /// (any origin, address or directory).
    pub grants: &'static [&'static str],
    /// The component.
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/components.rs"));

/// Reads a component built by this crate.
pub fn read(path: &str) -> Vec<u8> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("component {path} was built but cannot be read: {e}"))
}
