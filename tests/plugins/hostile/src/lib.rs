//! A hostile driver for the runtime's tests. `params.behavior` picks what it does:
//! `loop` (spins forever), `memory` (allocates until it fails), `recursion` (overflows
//! the stack), `panic`, `big-output` (returns `params.mib` MiB, default 8), `http`
//! (fetches `params.url`), `socket` (opens a TCP connection to `params.addr`).
//!
//! It exists for tests and benchmarks only and must never be bundled into the host.

use std::hint::black_box;
use wharf_sdk::driver::{Description, Driver, Outputs, Request, ResourceType, Step};
use wharf_sdk::{ErrorKind, PluginError, PluginInfo, http, json};

/// The hostile driver.
pub struct Hostile;

#[expect(unconditional_recursion, reason = "overflowing the stack is the point")]
fn recurse(depth: u64) -> u64 {
    black_box(recurse(black_box(depth + 1))) + 1
}

impl Driver for Hostile {
    fn describe() -> Description {
        Description {
            info: PluginInfo::new("hostile", "0.0.1", "Misbehaves on request"),
            resource_types: vec![ResourceType::new("hostile")],
        }
    }

    fn provision(request: Request) -> Result<Step, PluginError> {
        match request.params["behavior"].as_str().unwrap_or_default() {
            "loop" => {
                let mut n = 0u64;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "memory" => {
                let mut hoard = Vec::new();
                loop {
                    hoard.push(black_box(vec![7u8; 1 << 20]));
                }
            }
            "recursion" => Ok(Step::Done(Outputs::values(json!(recurse(0))))),
            "panic" => panic!("the hostile plugin panics on purpose"),
            "big-output" => {
                let mib = request.params["mib"].as_u64().unwrap_or(8) as usize;
                let text = "x".repeat(mib << 20);
                Ok(Step::Done(Outputs::values(json!({ "text": text }))))
            }
            "http" => {
                let url = request.params["url"].as_str().unwrap_or_default();
                let response = http::send(&http::Request::get(url))?;
                Ok(Step::Done(Outputs::values(
                    json!({ "status": response.status }),
                )))
            }
            "socket" => {
                let addr = request.params["addr"].as_str().unwrap_or_default();
                match std::net::TcpStream::connect(addr) {
                    Ok(_) => Ok(Step::Done(Outputs::values(json!({ "connected": true })))),
                    Err(e) => Err(PluginError::new(
                        ErrorKind::PermissionDenied,
                        format!("connect {addr}: {e}"),
                    )),
                }
            }
            other => Err(PluginError::invalid_input(format!(
                "unknown behavior {other:?}"
            ))),
        }
    }

    fn deprovision(_request: Request) -> Result<Step, PluginError> {
        Ok(Step::Done(Outputs::default()))
    }
}

wharf_sdk::export_driver!(Hostile);
