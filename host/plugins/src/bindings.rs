//! Host bindings of the `wharf:plugin` worlds, generated from `wit/`.
//!
//! The shared interfaces (`types`, `log`) are generated once, from the `imports` world,
//! and reused by the three plugin worlds so that each type exists once on the host.
//! `wasi:*` interfaces come from wasmtime-wasi and wasmtime-wasi-http.

#![allow(missing_docs, clippy::all)]

pub mod base {
    wasmtime::component::bindgen!({
        world: "wharf:plugin/imports",
        path: "../../wit",
        require_store_data_send: true,
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

pub mod driver {
    wasmtime::component::bindgen!({
        world: "wharf:plugin/driver",
        path: "../../wit",
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "wharf:plugin/types": super::base::wharf::plugin::types,
            "wharf:plugin/log": super::base::wharf::plugin::log,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:sockets": wasmtime_wasi::p2::bindings::sockets,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:random": wasmtime_wasi::p2::bindings::random,
            "wasi:cli": wasmtime_wasi::p2::bindings::cli,
            "wasi:filesystem": wasmtime_wasi::p2::bindings::filesystem,
        },
    });
}

pub mod policy {
    wasmtime::component::bindgen!({
        world: "wharf:plugin/policy",
        path: "../../wit",
        exports: { default: async },
        with: {
            "wharf:plugin/types": super::base::wharf::plugin::types,
            "wharf:plugin/log": super::base::wharf::plugin::log,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:random": wasmtime_wasi::p2::bindings::random,
            "wasi:cli": wasmtime_wasi::p2::bindings::cli,
            "wasi:filesystem": wasmtime_wasi::p2::bindings::filesystem,
        },
    });
}

pub mod transformer {
    wasmtime::component::bindgen!({
        world: "wharf:plugin/transformer",
        path: "../../wit",
        exports: { default: async },
        with: {
            "wharf:plugin/types": super::base::wharf::plugin::types,
            "wharf:plugin/log": super::base::wharf::plugin::log,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:random": wasmtime_wasi::p2::bindings::random,
            "wasi:cli": wasmtime_wasi::p2::bindings::cli,
            "wasi:filesystem": wasmtime_wasi::p2::bindings::filesystem,
        },
    });
}

pub use base::wharf::plugin::types as wit_types;

impl From<wit_types::PluginError> for crate::types::PluginError {
    fn from(e: wit_types::PluginError) -> Self {
        use crate::types::ErrorKind as K;
        use wit_types::ErrorKind as W;
        let kind = match e.kind {
            W::InvalidInput => K::InvalidInput,
            W::Conflict => K::Conflict,
            W::NotFound => K::NotFound,
            W::PermissionDenied => K::PermissionDenied,
            W::Unavailable => K::Unavailable,
            W::RateLimited => K::RateLimited,
            W::Other => K::Other,
        };
        Self {
            kind,
            message: e.message,
            retry_after_ms: e.retry_after_ms,
        }
    }
}

impl From<wit_types::Issue> for crate::types::Issue {
    fn from(i: wit_types::Issue) -> Self {
        Self {
            path: i.path,
            message: i.message,
        }
    }
}

/// The issues of a `validate-config` result; none when the configuration is valid.
pub fn issues(result: Result<(), Vec<wit_types::Issue>>) -> Vec<crate::types::Issue> {
    result
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(Into::into)
        .collect()
}
