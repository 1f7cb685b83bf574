//! `wharf-engine`: turns what the platform decided into what a target runs.
//!
//! So far: the provisioning loop ([`provision`]: a resource graph through its drivers'
//! step protocol, in dependency levels, with retries and a journal), the renderer
//! ([`render`]: a Score workload and its resources' outputs into Kubernetes objects,
//! deterministic in names and order, with secret outputs kept in a Secret), and targets
//! ([`target`]: the trait, and the gitops target). The deployment pipeline that ties
//! them to the store builds on these.

pub mod journal;
pub mod provision;
pub mod render;
pub mod target;
