//! What the process target runs, everything resolved: a workload's processes, ports,
//! files and links. Its digest tells whether a workload changed between applies.

use super::confine::Reach;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// A workload as this target runs it: everything resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct WorkloadSpec {
    pub(crate) name: String,
    pub(crate) ports: Vec<PortSpec>,
    pub(crate) containers: Vec<ContainerSpec>,
    pub(crate) files: Vec<FileSpec>,
    pub(crate) links: Vec<LinkSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct PortSpec {
    pub(crate) name: String,
    pub(crate) port: u16,
    pub(crate) target: u16,
    pub(crate) protocol: String,
    pub(crate) local: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ContainerSpec {
    /// What it may reach beyond the system directories.
    pub(crate) reach: Reach,
    pub(crate) name: String,
    pub(crate) workload: String,
    pub(crate) program: String,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) dir: PathBuf,
    pub(crate) log: PathBuf,
    pub(crate) pid_file: PathBuf,
    pub(crate) readiness: Option<Probe>,
    pub(crate) liveness: Option<Probe>,
    pub(crate) ports: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct FileSpec {
    pub(crate) path: PathBuf,
    pub(crate) digest: String,
    #[serde(skip)]
    pub(crate) bytes: Vec<u8>,
    pub(crate) mode: u32,
}

/// A mounted directory: `link` points at `to` (created when `create`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct LinkSpec {
    pub(crate) link: PathBuf,
    pub(crate) to: PathBuf,
    pub(crate) create: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) enum Probe {
    Http {
        port: u16,
        path: String,
        host: String,
        tcp_only: bool,
        headers: Vec<(String, String)>,
    },
    Exec {
        command: Vec<String>,
    },
}

pub(crate) fn digest(spec: &WorkloadSpec) -> String {
    hex::encode(Sha256::digest(
        serde_json::to_vec(spec).expect("a spec serializes"),
    ))
}
