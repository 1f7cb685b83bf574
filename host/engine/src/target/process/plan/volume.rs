//! Volumes: what mounting a ConfigMap, a Secret, an `emptyDir` or a `hostPath` at a path of
//! a container needs (files to write, links to make).

use super::{Planner, key_bytes, under};
use crate::target::process::spec::{FileSpec, LinkSpec, WorkloadSpec};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Adds what mounting `volume` at `path` (a file when `sub` names one item) needs.
impl Planner<'_> {
    pub(super) fn mount_volume(
        &self,
        volume: &Value,
        path: &Path,
        sub: Option<&str>,
        workload: &str,
        spec: &mut WorkloadSpec,
    ) -> Result<(), String> {
        let (by_kind, dir) = (&self.by_kind, self.run);
        let (files, links) = (&mut spec.files, &mut spec.links);
        let source = if volume["configMap"].is_object() {
            Some(("ConfigMap", &volume["configMap"], "name", 0o644))
        } else if volume["secret"].is_object() {
            Some(("Secret", &volume["secret"], "secretName", 0o600))
        } else {
            None
        };
        if let Some((kind, source, name_field, default_mode)) = source {
            let oname = source[name_field].as_str().unwrap_or_default();
            let (_, object) = by_kind
                .get(&(kind, oname))
                .ok_or_else(|| format!("there is no {kind} {oname}"))?;
            let default_mode = source["defaultMode"]
                .as_u64()
                .map_or(default_mode, |m| m as u32);
            let mut items: Vec<(String, String, u32)> = match source["items"].as_array() {
                Some(items) => items
                    .iter()
                    .map(|it| {
                        (
                            it["key"].as_str().unwrap_or_default().to_string(),
                            it["path"].as_str().unwrap_or_default().to_string(),
                            it["mode"].as_u64().map_or(default_mode, |m| m as u32),
                        )
                    })
                    .collect(),
                None => ["data", "binaryData", "stringData"]
                    .iter()
                    .flat_map(|f| object[*f].as_object().into_iter().flatten())
                    .map(|(k, _)| (k.clone(), k.clone(), default_mode))
                    .collect(),
            };
            if let Some(sub) = sub {
                items.retain(|(_, p, _)| p == sub);
                let (key, _, mode) = items
                    .pop()
                    .ok_or_else(|| format!("subPath {sub:?} is not an item of {kind} {oname}"))?;
                let bytes = key_bytes(object, &key)
                    .ok_or_else(|| format!("{kind} {oname} has no key {key:?}"))?;
                files.push(file(path.to_path_buf(), bytes, mode));
                return Ok(());
            }
            for (key, item_path, mode) in items {
                let bytes = key_bytes(object, &key)
                    .ok_or_else(|| format!("{kind} {oname} has no key {key:?}"))?;
                let at = under(path, &item_path)
                    .ok_or_else(|| format!("bad item path {item_path:?}"))?;
                files.push(file(at, bytes, mode));
            }
            return Ok(());
        }
        if volume["emptyDir"].is_object() {
            let vname = volume["name"].as_str().unwrap_or_default();
            let mut to = dir.join("volumes").join(workload).join(vname);
            if let Some(sub) = sub {
                to = under(&to, sub).ok_or_else(|| format!("bad subPath {sub:?}"))?;
            }
            links.push(LinkSpec {
                link: path.to_path_buf(),
                to,
                create: true,
            });
            return Ok(());
        }
        if let Some(host) = volume["hostPath"]["path"].as_str() {
            let mut to = PathBuf::from(host);
            if let Some(sub) = sub {
                to = under(&to, sub).ok_or_else(|| format!("bad subPath {sub:?}"))?;
            }
            links.push(LinkSpec {
                link: path.to_path_buf(),
                to,
                create: false,
            });
            return Ok(());
        }
        let kinds: Vec<&str> = volume
            .as_object()
            .map(|o| {
                o.keys()
                    .map(String::as_str)
                    .filter(|k| *k != "name")
                    .collect()
            })
            .unwrap_or_default();
        Err(format!(
            "the process target mounts configMap, secret, emptyDir and hostPath volumes, not {}",
            kinds.join(", ")
        ))
    }
}

pub(super) fn file(path: PathBuf, bytes: Vec<u8>, mode: u32) -> FileSpec {
    FileSpec {
        path,
        digest: hex::encode(Sha256::digest(&bytes)),
        bytes,
        mode,
    }
}
