//! Confining the workloads of the process target: a workload is someone else's code, run
//! on the server's machine, so it gets only what its container would.
//!
//! - **Files** (Linux Landlock): read and execute on the system directories a program
//!   needs (`/usr`, `/bin`, `/sbin`, `/lib*`, `/etc`, `/opt`) and on what the environment
//!   type lists in `read_only` (its `PATH` keeps only the server's entries among those);
//!   read and write on its
//!   own container directory and on the volumes linked into it, and on a few devices
//!   (`/dev/null`, `/dev/urandom`...). Nothing else: not the data directory, not another
//!   environment, not `/proc` (so not the server's environment or memory), not `/tmp`
//!   (`TMPDIR` is the container's own `tmp`).
//! - **Signals and abstract sockets** (Landlock scoping, ABI 6): a workload can signal
//!   and connect to its own processes only: not the server, not another workload.
//! - **No new privileges**: a setuid program does not raise them; the Landlock domain is
//!   inherited by everything the workload starts.
//! - **Never root**: when the server runs as root, workloads run as an unprivileged user
//!   (`nobody` unless configured), with no supplementary groups. Their directories are
//!   then outside the data directory (whose ancestors such a user could not pass), owned
//!   by that user.
//! - **Descriptors**: every descriptor above stderr is closed at exec, whatever the
//!   server inherited.
//!
//! Not confined: the network (a workload may connect anywhere the machine can, and
//! listen on any free port), CPU and memory, and what the file rules do not cover
//! (stat of paths it can name). A kernel without Landlock (before 5.13, or with it
//! disabled) cannot confine files; one before 6.12 cannot scope signals, which matters
//! when the workload runs as the server's own user. Then the target refuses to start
//! workloads unless their environment type says `"unconfined": true`.
//!
//! The ruleset is built in the server, before the fork (it allocates and opens paths); in
//! the child, between fork and exec, only raw system calls are made.

use landlock::{
    ABI, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, Scope, path_beneath_rules,
};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The Landlock ABI this confinement is written for: file rights through `IoctlDev` and
/// the scoping of signals and abstract sockets.
const ABI_USED: ABI = ABI::V6;

/// Where programs and what they load live: read and execute, never write.
const SYSTEM: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt",
];

/// Devices a program may expect to open.
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// An unprivileged user workloads run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its name.
    pub name: String,
    /// Its user id.
    pub uid: u32,
    /// Its primary group.
    pub gid: u32,
}

impl User {
    /// Looks `name` up in the user database.
    pub fn lookup(name: &str) -> Result<Self, String> {
        let c_name = std::ffi::CString::new(name).map_err(|_| format!("{name:?} is not a user"))?;
        // SAFETY: getpwnam_r writes into `entry` and `buf`, both alive for the call; the
        // strings it points `entry` at live in `buf`, which is read before it is dropped.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut buf = vec![0u8; 16 << 10];
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                &mut entry,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if rc != 0 || found.is_null() {
            return Err(format!("there is no user {name:?} on this machine"));
        }
        if entry.pw_uid == 0 {
            return Err(format!("{name:?} is root; workloads never run as root"));
        }
        Ok(Self {
            name: name.to_string(),
            uid: entry.pw_uid,
            gid: entry.pw_gid,
        })
    }
}

/// Keeps the server's memory, environment and descriptors out of reach of processes of
/// its own user through `/proc` and ptrace (a workload run as that user, when Landlock
/// does not already stop it). Called once at start.
pub fn shield_server() {
    // SAFETY: PR_SET_DUMPABLE with 0 changes a flag of this process; no memory is passed.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// Whether the server runs as root (and must give workloads another user).
pub fn server_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The kernel's Landlock ABI version, or why there is none.
pub fn kernel_abi() -> Result<i64, String> {
    // SAFETY: LANDLOCK_CREATE_RULESET_VERSION (1) with a null attribute and size 0 only
    // asks for the version; it creates nothing.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32,
        )
    };
    if version >= 0 {
        return Ok(version);
    }
    Err(match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ENOSYS) => "this kernel has no Landlock (it came with Linux 5.13)".into(),
        Some(libc::EOPNOTSUPP) => {
            "Landlock is disabled on this machine (add it to the kernel's `lsm=` boot option)"
                .into()
        }
        other => format!("Landlock is not available (error {other:?})"),
    })
}

/// How the process target confines the workloads it starts.
#[derive(Debug, Clone)]
pub struct Confinement {
    /// The user workloads run as, when not the server's own.
    pub user: Option<User>,
    /// Why workloads cannot be confined here, if they cannot.
    pub unavailable: Option<String>,
    /// Wharf's own directories (the data directory, the root of every environment's
    /// workloads): never reachable through a rule, even one on a directory above them.
    protected: Vec<PathBuf>,
}

/// What one process may reach, beyond the system directories.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Reach {
    /// Read and write: the container's own directory and its `emptyDir` volumes.
    pub own: Vec<PathBuf>,
    /// Read and write: the targets of its `hostPath` volumes.
    pub volumes: Vec<PathBuf>,
    /// Read and execute: the environment type's `read_only` paths.
    pub readable: Vec<PathBuf>,
    /// The environment type runs its workloads unconfined (`"unconfined": true`).
    pub unconfined: bool,
}

/// The paths that give what `path` gives, minus Wharf's own directories: `path` itself when
/// it holds none of them; else, one level down at a time, everything beside the way to
/// them. A path inside one of them is refused.
fn carve(path: &Path, protected: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let Ok(real) = std::fs::canonicalize(path) else {
        return Ok(Vec::new()); // nothing there: nothing to allow
    };
    if let Some(p) = protected.iter().find(|p| real.starts_with(p)) {
        return Err(format!(
            "{} is inside {}, which workloads never reach",
            path.display(),
            p.display()
        ));
    }
    if !protected.iter().any(|p| p.starts_with(&real)) {
        return Ok(vec![real]);
    }
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&real).map_err(|e| format!("{}: {e}", real.display()))?;
    for entry in entries.filter_map(Result::ok) {
        let child = entry.path();
        if protected.contains(&child) {
            continue;
        }
        // A symbolic link is followed by canonicalize: it is judged by where it leads.
        match carve(&child, protected) {
            Ok(paths) => out.extend(paths),
            Err(_) => continue,
        }
    }
    Ok(out)
}

impl Confinement {
    /// What this machine allows, for workloads run as `user` (`None`: as the server),
    /// keeping them out of `protected` (Wharf's data directory, the workloads' root).
    pub fn probe(user: Option<User>, protected: &[&Path]) -> Self {
        let unavailable = match kernel_abi() {
            Err(why) => Some(why),
            // Without scoping, a workload run as the server's own user could signal it.
            Ok(abi) if abi < 6 && user.is_none() => Some(format!(
                "this kernel's Landlock (ABI {abi}, before Linux 6.12) cannot keep a workload \
                 from signalling the server, which it runs as the same user"
            )),
            Ok(_) => None,
        };
        let protected = protected
            .iter()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()))
            .collect();
        Self {
            user,
            unavailable,
            protected,
        }
    }

    /// Prepares `command` to run confined to `reach`. Fails when it cannot be confined and
    /// the environment type did not say it may run unconfined.
    pub fn prepare(
        &self,
        command: &mut tokio::process::Command,
        reach: &Reach,
    ) -> Result<(), String> {
        if let Some(user) = &self.user {
            // std sets the groups to none, then the group, then the user, in the child.
            command.uid(user.uid).gid(user.gid);
        }
        let ruleset = if reach.unconfined {
            None
        } else if let Some(why) = &self.unavailable {
            return Err(format!(
                "workloads cannot be confined on this machine: {why}; an environment type \
                 whose workloads may run unconfined says \"unconfined\": true"
            ));
        } else {
            let mut readable = Vec::new();
            // The system: what holds Wharf's directories is carved around them.
            for dir in SYSTEM.iter().map(PathBuf::from) {
                readable.extend(carve(&dir, &self.protected).unwrap_or_default());
            }
            for dir in &reach.readable {
                readable
                    .extend(carve(dir, &self.protected).map_err(|e| format!("read_only: {e}"))?);
            }
            let mut writable = reach.own.clone();
            for dir in &reach.volumes {
                writable.extend(carve(dir, &self.protected).map_err(|e| format!("volume: {e}"))?);
            }
            ruleset(&readable, &writable).map_err(|e| format!("landlock: {e}"))?
        };
        let ruleset: Option<OwnedFd> = ruleset;
        // SAFETY: the closure runs in the child between fork and exec, where only
        // async-signal-safe calls are allowed: it makes raw system calls and reads a
        // descriptor number, nothing else (no allocation, no lock).
        unsafe {
            command.pre_exec(move || {
                // Landlock does not govern descriptors already open: none above stderr
                // survives the exec, whatever the server inherited.
                if libc::syscall(
                    libc::SYS_close_range,
                    3u32,
                    u32::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if let Some(fd) = &ruleset
                    && libc::syscall(libc::SYS_landlock_restrict_self, fd.as_raw_fd(), 0u32) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(())
    }

    /// Gives `path` (created by the server) to the workloads' user, when they have one.
    pub fn hand_over(&self, path: &Path) -> std::io::Result<()> {
        match &self.user {
            Some(user) => std::os::unix::fs::lchown(path, Some(user.uid), Some(user.gid)),
            None => Ok(()),
        }
    }
}

/// The `PATH` of a workload: the server's entries that it may read (under the system
/// directories or `read_only`), so that a program is found where it can run (not a shim
/// in a home directory whose tool it could not read); the server's own when unconfined.
pub fn workload_path(server: &str, read_only: &[PathBuf], unconfined: bool) -> String {
    if unconfined {
        return server.to_string();
    }
    let readable = |dir: &Path| {
        SYSTEM.iter().any(|s| dir.starts_with(s)) || read_only.iter().any(|r| dir.starts_with(r))
    };
    let kept: Vec<PathBuf> = std::env::split_paths(server)
        .filter(|p| p.is_absolute() && readable(p))
        .collect();
    if kept.is_empty() {
        return "/usr/local/bin:/usr/bin:/bin".into();
    }
    std::env::join_paths(kept)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())
}

/// The ruleset: everything handled, `readable` read and execute, `writable` all rights,
/// the devices read and write; signals and abstract sockets scoped.
fn ruleset(
    readable: &[PathBuf],
    writable: &[PathBuf],
) -> Result<Option<OwnedFd>, landlock::RulesetError> {
    let created = Ruleset::default()
        .handle_access(AccessFs::from_all(ABI_USED))?
        .scope(Scope::from_all(ABI_USED))?
        .create()?
        .add_rules(path_beneath_rules(readable, AccessFs::from_read(ABI_USED)))?
        .add_rules(path_beneath_rules(DEVICES, AccessFs::from_all(ABI_USED)))?
        .add_rules(path_beneath_rules(writable, AccessFs::from_all(ABI_USED)))?;
    Ok(created.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_never_the_workload_user_and_unknown_users_are_named() {
        assert!(
            User::lookup("root")
                .unwrap_err()
                .contains("never run as root")
        );
        assert!(
            User::lookup("no-such-user-here")
                .unwrap_err()
                .contains("no user \"no-such-user-here\"")
        );
        let nobody = User::lookup("nobody").unwrap();
        assert_ne!(nobody.uid, 0);
    }

    #[test]
    fn a_workload_path_keeps_what_it_may_read() {
        let server = "/root/.pyenv/shims:/usr/local/bin:/usr/bin:/srv/py/bin:relative:/bin";
        assert_eq!(
            workload_path(server, &[], false),
            "/usr/local/bin:/usr/bin:/bin"
        );
        assert_eq!(
            workload_path(server, &[PathBuf::from("/srv/py")], false),
            "/usr/local/bin:/usr/bin:/srv/py/bin:/bin"
        );
        assert_eq!(workload_path(server, &[], true), server);
        assert_eq!(
            workload_path("/home/a/bin", &[], false),
            "/usr/local/bin:/usr/bin:/bin"
        );
    }

    #[test]
    fn a_directory_that_holds_wharfs_own_is_opened_around_it() {
        let top = tempfile::tempdir().unwrap();
        let root = top.path().canonicalize().unwrap();
        for dir in [
            "opt/tools",
            "opt/wharf/data",
            "opt/wharf/other",
            "elsewhere",
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::fs::write(root.join("opt/readme"), "x").unwrap();
        let data = root.join("opt/wharf/data");
        let mut open = carve(&root.join("opt"), std::slice::from_ref(&data)).unwrap();
        open.sort();
        assert_eq!(
            open,
            [
                root.join("opt/readme"),
                root.join("opt/tools"),
                root.join("opt/wharf/other")
            ]
        );
        assert_eq!(
            carve(&root.join("elsewhere"), std::slice::from_ref(&data)).unwrap(),
            [root.join("elsewhere")]
        );
        let inside = carve(&data.join("."), std::slice::from_ref(&data)).unwrap_err();
        assert!(inside.contains("which workloads never reach"), "{inside}");
        assert!(carve(&root.join("missing"), &[data]).unwrap().is_empty());
    }
}
