//! `wharf-core`: the domain model of Wharf, as pure code.
//!
//! Ids ([`Id`]), the role model ([`roles`]), resource-definition matching
//! ([`matching`]: which definition provisions a resource of a given type in a given
//! context, by Humanitec's most-specific-wins rule), and Score workloads ([`score`]:
//! parsing, validation, placeholders). Everything here is a plain function of
//! its input, so it is unit-tested without a store or a runtime.
//!
//! This crate is the leaf of the workspace: it must not do I/O, spawn tasks or depend on
//! another Wharf crate.

pub mod graph;
pub mod id;
mod kind;
pub mod matching;
pub mod roles;
pub mod score;
pub mod set;
pub mod target;
pub mod yaml;

pub use id::{Id, IdError};
pub use kind::Kind;
