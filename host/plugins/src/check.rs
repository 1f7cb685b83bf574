//! Checks that an upload is a component and implements the world of its declared kind,
//! naming what is missing or unexpected.

use crate::error::Error;
use crate::manifest::Kind;
use wasmtime::Engine;
use wasmtime::component::Component;

/// WebAssembly's magic number and the versions of a core module and of a component.
const MAGIC: &[u8; 4] = b"\0asm";
const CORE_VERSION: [u8; 4] = [1, 0, 0, 0];
const COMPONENT_VERSION: [u8; 4] = [0x0d, 0, 1, 0];

/// Refuses what is not a component, before any parsing or compiling.
pub(crate) fn sniff(bytes: &[u8]) -> Result<(), Error> {
    if Engine::detect_precompiled(bytes).is_some() {
        return Err(Error::Precompiled);
    }
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(Error::NotWasm);
    }
    match bytes[4..8].try_into().expect("slice of 4") {
        CORE_VERSION => Err(Error::CoreModule),
        COMPONENT_VERSION => Ok(()),
        _ => Err(Error::Invalid(wasmtime::format_err!(
            "unsupported WebAssembly binary version {:?}",
            &bytes[4..8]
        ))),
    }
}

/// The package and minor version every name must have (semver: 0.1.x is compatible).
const WHARF: &str = "wharf:plugin/";
const WHARF_VERSION: &str = "@0.1.";

/// Interfaces a plugin of `kind` may import.
fn import_allowed(kind: Kind, name: &str) -> bool {
    if let Some(rest) = name.strip_prefix(WHARF) {
        return (rest.starts_with("types@") || rest.starts_with("log@"))
            && name.contains(WHARF_VERSION);
    }
    // What the Rust standard library and other toolchains import on wasm32-wasip2. With
    // no preopens, no environment and no arguments they expose nothing of the host.
    let base = [
        "wasi:io/",
        "wasi:clocks/",
        "wasi:random/",
        "wasi:cli/",
        "wasi:filesystem/",
    ];
    if base.iter().any(|p| name.starts_with(p)) {
        return true;
    }
    let network = [
        "wasi:http/types@",
        "wasi:http/outgoing-handler@",
        "wasi:sockets/",
    ];
    kind == Kind::Driver && network.iter().any(|p| name.starts_with(p))
}

/// Checks the component's imports and exports against the world of `kind`.
pub(crate) fn world(engine: &Engine, component: &Component, kind: Kind) -> Result<(), Error> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let mut problems = Vec::new();

    let wanted = crate::manifest::export_interface(kind);
    let exported = |iface: &str| {
        exports
            .iter()
            .any(|e| e.starts_with(iface) && e[iface.len()..].starts_with(WHARF_VERSION))
    };
    if !exported(wanted) {
        let mut problem = format!("it does not export `{wanted}@0.1.0`");
        if let Some(other) = Kind::ALL
            .into_iter()
            .find(|k| *k != kind && exported(crate::manifest::export_interface(*k)))
        {
            problem.push_str(&format!(
                " but `{}@0.1.0`: it is a {other} plugin, install it as kind {other}",
                crate::manifest::export_interface(other)
            ));
        } else if let Some(old) = exports.iter().find(|e| e.starts_with(wanted)) {
            problem.push_str(&format!(
                " (it exports `{old}`, an incompatible version of the contract: rebuild it \
                 against wharf:plugin@0.1)"
            ));
        } else if exports.is_empty() {
            problem.push_str(" (it exports nothing)");
        } else {
            problem.push_str(&format!(" (it exports {})", exports.join(", ")));
        }
        problems.push(problem);
    }
    let unexpected: Vec<&String> = imports
        .iter()
        .filter(|i| !import_allowed(kind, i))
        .collect();
    if !unexpected.is_empty() {
        let names: Vec<&str> = unexpected.iter().map(|s| s.as_str()).collect();
        let why = if kind == Kind::Driver {
            "a driver may import only wharf:plugin/log, wasi:http, wasi:sockets and the basic WASI interfaces".to_string()
        } else {
            format!(
                "{kind} plugins get no network and may import only wharf:plugin/log and the basic WASI interfaces"
            )
        };
        problems.push(format!("it imports {} ({why})", names.join(", ")));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::WrongWorld { kind, problems })
    }
}
