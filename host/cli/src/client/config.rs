//! The file `wharf login` writes: the server's URL and the API token, which the other
//! commands fall back on. Only reading and writing it; checking a login is `login`'s.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What `wharf login` keeps.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Saved {
    pub(crate) server: String,
    pub(crate) token: String,
}

/// `$XDG_CONFIG_HOME/wharf/config.json`, else `~/.config/wharf/config.json`.
fn config_file() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("wharf").join("config.json")
}

pub(crate) fn load_saved() -> Option<Saved> {
    let text = std::fs::read_to_string(config_file()).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes the file readable by its owner only (0600), atomically.
pub(crate) fn save(saved: &Saved) -> anyhow::Result<PathBuf> {
    let file = config_file();
    let dir = file.parent().expect("the config file is in a directory");
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let temp = dir.join(".config.json.tmp");
    let text = serde_json::to_string_pretty(saved)?;
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options
            .open(&temp)
            .with_context(|| format!("failed to write {}", temp.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&temp, &file).with_context(|| format!("failed to write {}", file.display()))?;
    Ok(file)
}
