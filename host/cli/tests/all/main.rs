//! End-to-end tests of the `wharf` binary (one test binary, to keep link time down).

mod client;
mod deploy;
mod drivers;
mod durability;
mod openapi;
mod ownership;
mod plugin;
mod serve;
mod support;
mod tenancy;
