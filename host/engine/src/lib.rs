//! `wharf-engine`: turns what the platform decided into what a target runs.
//!
//! The deployment pipeline ([`pipeline`]: the [`Engine`] that carries out the
//! deployments the API queues, one at a time per environment, resumable after a crash),
//! the provisioning loop ([`provision`]: a resource graph through its drivers' step
//! protocol, in dependency levels, with retries and a journal; deprovisioning in reverse),
//! the renderer ([`render`]: a Score workload and its resources' outputs into Kubernetes
//! objects, deterministic in names and order, with secret outputs kept in a Secret), and
//! targets ([`target`]: the trait, the process target that runs workloads as local
//! processes, and the gitops target).
//!
//! It calls plugins only through the [`provision::Drivers`] and
//! [`pipeline::Transformers`] traits, which the host implements; it never answers HTTP.

pub mod journal;
pub mod pipeline;
pub mod provision;
pub mod render;
pub mod target;

pub use pipeline::{Engine, Settings};
