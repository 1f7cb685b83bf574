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

pub mod clock;
pub mod duration;
pub mod glob;
pub mod graph;
pub mod id;
pub mod image;
mod kind;
pub mod matching;
pub mod roles;
pub mod score;
pub mod set;
pub mod status;
pub mod target;
pub mod yaml;

pub use id::{Id, IdError};
pub use kind::Kind;

/// An error and its sources, outermost first, joined by `": "`: what a log line or a
/// problem document says when the whole chain matters.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
