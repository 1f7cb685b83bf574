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

include!(concat!(env!("OUT_DIR"), "/worlds.rs"));

/// The interfaces the world of `kind` imports, as `namespace:package/interface@version`.
fn world_imports(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Driver => DRIVER_IMPORTS,
        Kind::Policy => POLICY_IMPORTS,
        Kind::Transformer => TRANSFORMER_IMPORTS,
    }
}

/// Splits `wasi:io/streams@0.2.4` into the interface and its version.
fn versioned(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((interface, version)) => (interface, Some(version)),
        None => (name, None),
    }
}

/// Whether versions `a` and `b` are semver-compatible, as the linker matches them: the
/// same major version, and for 0.x the same minor.
fn compatible(a: &str, b: &str) -> bool {
    let parts = |v: &str| -> Vec<String> { v.split('.').take(2).map(str::to_string).collect() };
    let (a, b) = (parts(a), parts(b));
    match (a.first().map(String::as_str), b.first().map(String::as_str)) {
        (Some("0"), Some("0")) => a.get(1) == b.get(1),
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Whether interface `name` is one the world of `kind` imports, at a compatible version.
fn import_allowed(kind: Kind, name: &str) -> bool {
    let (interface, version) = versioned(name);
    world_imports(kind).iter().any(|allowed| {
        let (allowed, allowed_version) = versioned(allowed);
        allowed == interface
            && match (version, allowed_version) {
                (Some(v), Some(a)) => compatible(v, a),
                (v, a) => v == a,
            }
    })
}

/// The world a plugin of `kind` exports, with the contract's version:
/// `wharf:plugin/driver@0.2.0`.
pub fn world_name(kind: Kind) -> String {
    format!("wharf:plugin/{kind}@{CONTRACT_VERSION}")
}

/// Whether export `name` is interface `interface` at a version compatible with the
/// contract's.
fn exports_contract(name: &str, interface: &str) -> bool {
    match versioned(name) {
        (i, Some(v)) => i == interface && compatible(v, CONTRACT_VERSION),
        _ => false,
    }
}

/// Checks the component's imports and exports against the world of `kind`.
pub(crate) fn world(engine: &Engine, component: &Component, kind: Kind) -> Result<(), Error> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let mut problems = Vec::new();

    let wanted = crate::manifest::export_interface(kind);
    let exported = |iface: &str| exports.iter().any(|e| exports_contract(e, iface));
    if !exported(wanted) {
        let mut problem = format!("it does not export `{wanted}@{CONTRACT_VERSION}`");
        if let Some(other) = Kind::ALL
            .into_iter()
            .find(|k| *k != kind && exported(crate::manifest::export_interface(*k)))
        {
            problem.push_str(&format!(
                " but `{}@{CONTRACT_VERSION}`: it is a {other} plugin, install it as kind \
                 {other}",
                crate::manifest::export_interface(other)
            ));
        } else if let Some(old) = exports.iter().find(|e| e.starts_with(wanted)) {
            problem.push_str(&format!(
                " (it exports `{old}`, an incompatible version of the contract: rebuild it \
                 against wharf:plugin@{CONTRACT_VERSION})"
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
