//! Reads the plugin worlds of `wit/` and writes, for each kind, the interfaces its world
//! imports (with their versions) and the contract's version: the check of an upload
//! allows exactly what the worlds say, and nothing here repeats them.

use std::fmt::Write as _;
use std::path::PathBuf;
use wit_parser::{Resolve, WorldItem, WorldKey};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let wit = manifest.join("../../wit");
    println!("cargo::rerun-if-changed={}", wit.display());
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_dir(&wit)
        .unwrap_or_else(|e| panic!("{} does not parse: {e:?}", wit.display()));
    let version = resolve.packages[package]
        .name
        .version
        .clone()
        .expect("the wharf:plugin package has a version");
    let mut out = format!(
        "/// The version of the `wharf:plugin` contract this host implements.\n\
         pub const CONTRACT_VERSION: &str = \"{version}\";\n"
    );
    for (constant, world) in [
        ("DRIVER_IMPORTS", "driver"),
        ("POLICY_IMPORTS", "policy"),
        ("TRANSFORMER_IMPORTS", "transformer"),
    ] {
        let id = resolve
            .select_world(&[package], Some(world))
            .unwrap_or_else(|e| panic!("world {world}: {e:?}"));
        let mut names: Vec<String> = resolve.worlds[id]
            .imports
            .iter()
            .filter_map(|(key, item)| match (key, item) {
                (WorldKey::Interface(iface), WorldItem::Interface { .. }) => resolve.id_of(*iface),
                _ => None,
            })
            .collect();
        names.sort();
        writeln!(out, "/// The interfaces the `{world}` world imports.").unwrap();
        writeln!(out, "pub(crate) const {constant}: &[&str] = &{names:?};").unwrap();
    }
    let path = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("worlds.rs");
    std::fs::write(&path, out).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
