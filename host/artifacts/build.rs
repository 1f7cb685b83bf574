//! Builds every Wasm component of the repository from source, for `wasm32-wasip2`, with
//! the workspace's `plugin` profile, in a target directory of its own (a nested cargo
//! must not wait on the lock of the build that runs this script).
//!
//! The components are the crates under `plugins/`, `tests/plugins/` and
//! `examples/plugins/` whose `Cargo.toml` has a `[package.metadata.wharf]` table: its
//! `kind` (driver, policy, transformer), and, for the plugins embedded in the host, the
//! `bundle` id and the `grants` an operator may give their installations. That table is
//! the only list of them. Nothing is downloaded: the components are built with the same
//! Cargo.lock as the host.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One component, from its crate's manifest.
struct Component {
    /// The crate (`wharf-plugin-rbac`).
    package: String,
    /// The constant naming its path (`RBAC`, `TEST_DRIVER`).
    constant: String,
    /// `driver`, `policy` or `transformer`.
    kind: String,
    /// The id it is embedded under, when it is bundled.
    bundle: Option<String>,
    /// What its installations may be granted (`http`, `sockets`, `directories`).
    grants: Vec<String>,
}

/// The components of the repository, in a stable order.
fn components(root: &Path) -> Vec<Component> {
    let mut found = Vec::new();
    for dir in ["plugins", "tests/plugins", "examples/plugins"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut crates: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path().join("Cargo.toml"))
            .filter(|p| p.exists())
            .collect();
        crates.sort();
        for manifest in crates {
            let text = std::fs::read_to_string(&manifest).expect("a crate's manifest reads");
            let doc: toml::Table = text
                .parse()
                .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
            let package = &doc["package"];
            let Some(meta) = package
                .get("metadata")
                .and_then(|m| m.get("wharf"))
                .and_then(|w| w.as_table())
            else {
                continue;
            };
            let name = package["name"].as_str().expect("a package has a name");
            let text_of = |key: &str| meta.get(key).and_then(|v| v.as_str()).map(str::to_string);
            let kind = text_of("kind").unwrap_or_else(|| {
                panic!("{}: metadata.wharf.kind is required", manifest.display())
            });
            assert!(
                ["driver", "policy", "transformer"].contains(&kind.as_str()),
                "{}: metadata.wharf.kind {kind:?} is not driver, policy or transformer",
                manifest.display()
            );
            found.push(Component {
                package: name.to_string(),
                constant: name
                    .trim_start_matches("wharf-plugin-")
                    .replace('-', "_")
                    .to_ascii_uppercase(),
                kind,
                bundle: text_of("bundle"),
                grants: meta
                    .get("grants")
                    .and_then(|g| g.as_array())
                    .map(|g| {
                        g.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
    }
    found
}

/// Adds the `wasm32-wasip2` target when rustup manages the toolchain and the target is
/// missing. rustup installs the targets of `rust-toolchain.toml` only when it installs
/// the toolchain itself; a machine that already had the toolchain would otherwise fail
/// here with "can't find crate for `std`".
fn ensure_wasm_target() {
    const TARGET: &str = "wasm32-wasip2";
    let Ok(listed) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    else {
        return; // no rustup: the build below says what is missing
    };
    let installed = String::from_utf8_lossy(&listed.stdout);
    if !listed.status.success() || installed.lines().any(|l| l.trim() == TARGET) {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target (rustup target add {TARGET})");
    match Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
    {
        Ok(status) if status.success() => {}
        _ => println!(
            "cargo:warning=rustup target add {TARGET} failed; plugins cannot be built without it"
        ),
    }
}

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .join("../..")
        .canonicalize()
        .expect("workspace root exists");
    for dir in [
        "sdk",
        "wit",
        "plugins",
        "examples/plugins",
        "tests/plugins",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let components = components(&root);
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => root.join("target"),
    }
    .join("wasm-components");

    ensure_wasm_target();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--profile", "plugin", "--target", "wasm32-wasip2"])
        .arg("--target-dir")
        .arg(&target_dir);
    for c in &components {
        cmd.args(["-p", &c.package]);
    }
    // Paths of this checkout and of the cargo home would end up in the components (panic
    // locations); remapping them makes a component's digest depend on its source only.
    let cargo_home = std::env::var("CARGO_HOME")
        .unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap_or_default()));
    let flags = [
        format!("--remap-path-prefix={}=/wharf", root.display()),
        format!("--remap-path-prefix={cargo_home}=/cargo"),
    ];
    // The outer build's settings are for the host, not for the guests: wrappers such as
    // clippy-driver and host RUSTFLAGS must not leak into the nested build (the encoded
    // flags are replaced by the remapping above).
    for var in [
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_LLVM_COV",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"));
    let status = cmd
        .status()
        .expect("failed to run cargo to build the Wasm components");
    if !status.success() {
        panic!(
            "building the Wasm components failed ({status}); is the wasm32-wasip2 target installed? \
             (rustup target add wasm32-wasip2)"
        );
    }

    let out_dir = target_dir.join("wasm32-wasip2/plugin");
    let mut code = String::new();
    for c in &components {
        let file = out_dir.join(format!("{}.wasm", c.package.replace('-', "_")));
        assert!(file.exists(), "{} was not built", file.display());
        code.push_str(&format!(
            "/// Path of the `{}` component.\npub const {}: &str = {:?};\n",
            c.package,
            c.constant,
            file.display().to_string()
        ));
    }
    code.push_str(
        "/// The first-party plugins embedded in the host, built from `plugins/`.\n\
         pub const BUNDLED: &[Bundled] = &[\n",
    );
    let version = std::env::var("CARGO_PKG_VERSION").expect("set by cargo");
    for c in &components {
        let Some(name) = &c.bundle else {
            continue;
        };
        let file = out_dir.join(format!("{}.wasm", c.package.replace('-', "_")));
        let bytes = std::fs::read(&file).expect("bundled component was built");
        let digest: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        code.push_str(&format!(
            "    Bundled {{ name: {name:?}, kind: Kind::{}, version: {version:?}, \
             sha256: {digest:?}, grants: &{:?}, bytes: include_bytes!({:?}) }},\n",
            {
                let mut kind = c.kind.clone();
                kind[..1].make_ascii_uppercase();
                kind
            },
            c.grants,
            file.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("set by cargo")).join("components.rs");
    std::fs::write(out, code).expect("failed to write components.rs");
}
