//! Procedural macros of the Wharf plugin SDK.
//!
//! Only `wharf-sdk` uses this crate: its `export_*!` macros call [`world!`] to generate
//! the guest bindings of one world inside the plugin's crate, against the WIT contract in
//! the repository's `wit/` folder. It must stay free of dependencies: it runs in every
//! plugin build.

use proc_macro::TokenStream;

/// The folder holding the `wharf:plugin` WIT package, fixed when this crate is compiled
/// so that plugins outside this repository find the same contract.
const WIT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../wit");

/// Generates the guest bindings of one world (`driver`, `policy` or `transformer`).
///
/// The imports (`log`, `wasi:http` and the shared types) are taken from `wharf-sdk`, so
/// only the world's export glue is generated in the plugin's crate. A plugin may export
/// one world only: a component built from two would be rejected by the host.
#[proc_macro]
pub fn world(input: TokenStream) -> TokenStream {
    let world = input.to_string();
    let world = world.trim();
    if !matches!(world, "driver" | "policy" | "transformer") {
        return r#"compile_error!("expected `driver`, `policy` or `transformer`");"#
            .parse()
            .expect("a constant compile_error! invocation parses");
    }
    let wit = std::path::Path::new(WIT_DIR)
        .canonicalize()
        .unwrap_or_else(|_| WIT_DIR.into());
    let mut with = String::from(
        r#""wharf:plugin/types@0.2.0": ::wharf_sdk::__private::wit::wharf::plugin::types,
           "wharf:plugin/log@0.2.0": ::wharf_sdk::__private::wit::wharf::plugin::log,"#,
    );
    if world == "driver" {
        with.push_str(
            r#""wasi:http/types@0.2.12": ::wharf_sdk::__private::wit::wasi::http::types,
               "wasi:http/outgoing-handler@0.2.12": ::wharf_sdk::__private::wit::wasi::http::outgoing_handler,
               "wasi:io/error@0.2.12": ::wharf_sdk::__private::wit::wasi::io::error,
               "wasi:io/poll@0.2.12": ::wharf_sdk::__private::wit::wasi::io::poll,
               "wasi:io/streams@0.2.12": ::wharf_sdk::__private::wit::wasi::io::streams,
               "wasi:clocks/monotonic-clock@0.2.12": ::wharf_sdk::__private::wit::wasi::clocks::monotonic_clock,"#,
        );
    }
    format!(
        r#"::wharf_sdk::__private::wit_bindgen::generate!({{
            world: "wharf:plugin/{world}",
            path: {wit:?},
            runtime_path: "::wharf_sdk::__private::wit_bindgen::rt",
            with: {{ {with} }},
            generate_all,
        }});"#,
        wit = wit.display().to_string(),
    )
    .parse()
    .expect("generated bindings invocation parses")
}
