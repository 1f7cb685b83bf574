//! Builds every Wasm component of the repository from source, for `wasm32-wasip2`, with
//! the workspace's `plugin` profile, in a target directory of its own (a nested cargo
//! must not wait on the lock of the build that runs this script).
//!
//! Nothing is downloaded: the components come from the crates listed in `COMPONENTS`, built
//! with the same Cargo.lock as the host.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// First-party plugins bundled into the host: (name, kind, package).
const BUNDLED: &[(&str, &str, &str)] = &[
    ("rbac", "policy", "wharf-plugin-rbac"),
    ("echo", "driver", "wharf-plugin-echo"),
    ("password", "driver", "wharf-plugin-password"),
    ("template", "driver", "wharf-plugin-template"),
    ("baseline", "transformer", "wharf-plugin-baseline"),
    ("dns", "driver", "wharf-plugin-dns"),
    ("volume", "driver", "wharf-plugin-volume"),
    ("s3", "driver", "wharf-plugin-s3"),
    ("postgres", "driver", "wharf-plugin-postgres"),
];

/// (constant name, package) of each component to build.
const COMPONENTS: &[(&str, &str)] = &[
    ("RBAC", "wharf-plugin-rbac"),
    ("ECHO", "wharf-plugin-echo"),
    ("PASSWORD", "wharf-plugin-password"),
    ("TEMPLATE", "wharf-plugin-template"),
    ("BASELINE", "wharf-plugin-baseline"),
    ("DNS", "wharf-plugin-dns"),
    ("VOLUME", "wharf-plugin-volume"),
    ("S3", "wharf-plugin-s3"),
    ("POSTGRES", "wharf-plugin-postgres"),
    ("FREEZE_WINDOW", "freeze-window"),
    ("TEST_DRIVER", "test-driver"),
    ("TEST_POLICY", "test-policy"),
    ("TEST_TRANSFORMER", "test-transformer"),
    ("TEST_HOSTILE", "test-hostile"),
];

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
    for (_, package) in COMPONENTS {
        cmd.args(["-p", package]);
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
    for (name, package) in COMPONENTS {
        let file = out_dir.join(format!("{}.wasm", package.replace('-', "_")));
        assert!(file.exists(), "{} was not built", file.display());
        code.push_str(&format!(
            "/// Path of the `{package}` component.\npub const {name}: &str = {:?};\n",
            file.display().to_string()
        ));
    }
    code.push_str(
        "/// The first-party plugins embedded in the host, built from `plugins/`.\n\
         pub const BUNDLED: &[Bundled] = &[\n",
    );
    let version = std::env::var("CARGO_PKG_VERSION").expect("set by cargo");
    for (name, kind, package) in BUNDLED {
        let file = out_dir.join(format!("{}.wasm", package.replace('-', "_")));
        let bytes = std::fs::read(&file).expect("bundled component was built");
        let digest: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        code.push_str(&format!(
            "    Bundled {{ name: {name:?}, kind: {kind:?}, version: {version:?}, \
             sha256: {digest:?}, bytes: include_bytes!({:?}) }},\n",
            file.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("set by cargo")).join("components.rs");
    std::fs::write(out, code).expect("failed to write components.rs");
}
