//! `wharf-engine`: turns what the platform decided into what a target runs.
//!
//! For now it holds the renderer ([`render`]): a Score workload and its resources'
//! outputs into Kubernetes objects, deterministic in names and order, with secret outputs
//! kept in a Secret. The deployment pipeline (provisioning loop, transformers, targets)
//! builds on it.

pub mod render;
pub mod target;
