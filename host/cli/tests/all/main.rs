//! End-to-end tests of the `wharf` binary (one test binary, to keep link time down).

mod automation;
mod client;
mod clusters;
mod deploy;
mod drivers;
mod durability;
mod kubernetes_emulator;
mod kubernetes_live;
mod openapi;
mod ownership;
mod plugin;
mod serve;
mod support;
mod tenancy;
mod ui;
mod webhooks;
