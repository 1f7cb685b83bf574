//! The bundled drivers for real systems, against the real servers, started here on
//! loopback with free ports: what a driver did is checked in the system itself. One
//! module per driver; [`servers`] starts the servers.
//!
//! A server that is not installed fails the test when CI=true (`.ci/run` installs them);
//! elsewhere the test says what it skipped and how to enable it, and passes.

mod dns;
mod postgres;
mod s3;
mod servers;
mod shop;
mod volume;

pub(crate) use servers::{EMPTY_SHA256, Moto, Postgres, PowerDns, http};

use crate::support::Client;
use std::path::Path;
use std::time::{Duration, Instant};

/// Lets everyone pass `dir` (list nothing): what an operator does with a directory whose
/// subdirectories are handed to workloads.
pub(crate) fn passable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
}

/// The arguments of `wharf deploy -f FILE --app shop --env ENV --follow`.
fn deploy_shop<'a>(file: &'a Path, env: &'a str) -> [&'a str; 8] {
    [
        "deploy",
        "-f",
        file.to_str().unwrap(),
        "--app",
        "shop",
        "--env",
        env,
        "--follow",
    ]
}

/// `wharf deploy -f FILE --app shop --env ENV --follow`, as run.
fn deploy(wharf: &Client, env: &str, file: &Path) -> std::process::Output {
    wharf.run(&deploy_shop(file, env))
}

/// Output `key` of the only resource of `shop`'s environment `env`.
fn output(wharf: &Client, env: &str, key: &str) -> String {
    let status = wharf.json(&["status", "shop", env]);
    status["resources"][0]["outputs"][key]
        .as_str()
        .unwrap_or_else(|| panic!("{status}"))
        .to_string()
}

/// Waits until deployment `n` of `shop`'s environment `env` succeeded; failing is a
/// failure.
fn wait_until_succeeded(wharf: &Client, env: &str, n: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = wharf.json(&["deployments", "get", "shop", env, n]);
        if d["status"] == "succeeded" {
            break;
        }
        assert!(d["status"] != "failed" && Instant::now() < deadline, "{d}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
