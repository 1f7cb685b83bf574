//! What the process target writes: an environment's own state (the server's only) and
//! its workloads' files, links and directories, handed to the workloads' user.

use super::Confinement;
use super::spec::WorkloadSpec;
use super::system;
use crate::target::TargetError;
use std::collections::BTreeMap;
use std::path::Path;

/// Only the owner may read an environment's directory (files may hold secrets).
pub(super) fn restrict(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}

pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TargetError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(system(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(system(format!("writing {}", path.display())))
}

pub(super) fn read_ports(dir: &Path) -> BTreeMap<String, u16> {
    std::fs::read(dir.join("ports.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Writes a workload's files and links, under `workloads` (the root of every
/// environment's): the directories on the way are passable and not listable by the
/// workloads' user, and what the workload owns (its container directories, its
/// `emptyDir` volumes, the files written there, a volume directory a Wharf driver made)
/// is handed to that user.
pub(super) fn materialize(
    spec: &WorkloadSpec,
    workloads: &Path,
    confinement: &Confinement,
) -> Result<(), TargetError> {
    use std::os::unix::fs::PermissionsExt;
    let passable = if confinement.user.is_some() {
        0o711
    } else {
        0o700
    };
    // Creates `to` and the directories above it up to `workloads`, passable only.
    let make = |to: &Path| -> Result<(), TargetError> {
        std::fs::create_dir_all(to).map_err(system(format!("creating {}", to.display())))?;
        let mut at = to.parent();
        while let Some(dir) = at.filter(|d| d.starts_with(workloads)) {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(passable))
                .map_err(system(format!("setting the mode of {}", dir.display())))?;
            at = dir.parent();
        }
        Ok(())
    };
    let owned = |to: &Path| -> Result<(), TargetError> {
        hand_over_tree(to, confinement).map_err(system(format!("handing over {}", to.display())))
    };
    for c in &spec.containers {
        make(&c.dir)?;
        std::fs::create_dir_all(c.dir.join("tmp"))
            .map_err(system(format!("creating {}", c.dir.join("tmp").display())))?;
        // The server's own: logs and pid files, in the environment's state.
        for own in [c.log.parent(), c.pid_file.parent()].into_iter().flatten() {
            std::fs::create_dir_all(own).map_err(system(format!("creating {}", own.display())))?;
        }
    }
    for f in &spec.files {
        if let Some(parent) = f.path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(system(format!("creating {}", parent.display())))?;
        }
        std::fs::write(&f.path, &f.bytes)
            .map_err(system(format!("writing {}", f.path.display())))?;
        std::fs::set_permissions(&f.path, std::fs::Permissions::from_mode(f.mode & 0o7777))
            .map_err(system(format!("setting the mode of {}", f.path.display())))?;
    }
    for l in &spec.links {
        if l.create {
            make(&l.to)?;
            owned(&l.to)?;
        } else if driver_made(&l.to) {
            // A directory a Wharf driver made for this resource (the volume driver's):
            // the workload's to write in. Other host paths keep their owner and mode.
            confinement
                .hand_over(&l.to)
                .map_err(system(format!("handing over {}", l.to.display())))?;
        }
        if let Some(parent) = l.link.parent() {
            std::fs::create_dir_all(parent)
                .map_err(system(format!("creating {}", parent.display())))?;
        }
        let _ = std::fs::remove_file(&l.link);
        std::os::unix::fs::symlink(&l.to, &l.link)
            .map_err(system(format!("linking {}", l.link.display())))?;
    }
    for c in &spec.containers {
        owned(&c.dir)?;
    }
    Ok(())
}

/// Whether a Wharf driver made `dir` for a resource: it leaves the resource's mark beside
/// it, in `DIR.wharf-owner` (the volume driver does).
pub(super) fn driver_made(dir: &Path) -> bool {
    let mut mark = dir.as_os_str().to_owned();
    mark.push(".wharf-owner");
    Path::new(&mark).is_file()
}

/// Hands `root` and everything under it (links themselves, never where they lead) to the
/// workloads' user; owner-only modes for directories.
pub(super) fn hand_over_tree(root: &Path, confinement: &Confinement) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(root)?;
    confinement.hand_over(root)?;
    if meta.is_dir() {
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))?;
        for entry in std::fs::read_dir(root)? {
            hand_over_tree(&entry?.path(), confinement)?;
        }
    }
    Ok(())
}
