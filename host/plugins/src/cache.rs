//! The on-disk cache of compiled plugins.
//!
//! Compiling a component takes from a fraction of a second to many seconds; loading the
//! compiled artifact takes milliseconds. Artifacts are keyed by the sha256 of the
//! component and the engine's compatibility hash (wasmtime version and settings), and each
//! file carries an HMAC-SHA256, under a key that only this host knows (`cache.key`, created
//! 0600 on first use), of the component's digest, the engine's hash and the code: an
//! artifact is valid only for the component it was compiled from, so one plugin's
//! artifact put under another's name is refused. Deserializing compiled code is only safe for code this host produced, so
//! a file whose MAC does not verify (corrupt, copied from another host, tampered with) is
//! never loaded: it is recompiled and replaced.

use crate::error::Error;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"WHARFC2\n";
const KEY_FILE: &str = "cache.key";
const MAC_LEN: usize = 32;

pub(crate) struct CompileCache {
    dir: Dir,
    path: PathBuf,
    key: [u8; 32],
    engine_hash: String,
}

impl CompileCache {
    pub fn open(path: &Path, engine: &wasmtime::Engine) -> Result<Self, Error> {
        let io = |source| Error::Cache {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(path).map_err(io)?;
        let dir = Dir::open_ambient_dir(path, ambient_authority()).map_err(io)?;
        let key = match dir.read(KEY_FILE) {
            Ok(bytes) if bytes.len() == 32 => bytes.try_into().expect("length checked"),
            Ok(_) | Err(_) => {
                let key: [u8; 32] = rand::random();
                let tmp = format!("{KEY_FILE}.tmp");
                let _ = dir.remove_file(&tmp);
                // Created 0600: the key is never readable by others, not even for a moment.
                let mut options = cap_std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                cap_std::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = dir.open_with(&tmp, &options).map_err(io)?;
                std::io::Write::write_all(&mut file, &key)
                    .and_then(|()| file.sync_all())
                    .map_err(io)?;
                dir.rename(&tmp, &dir, KEY_FILE).map_err(io)?;
                key
            }
        };
        let engine_hash = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut h);
            format!("{:016x}", h.finish())
        };
        Ok(Self {
            dir,
            path: path.to_path_buf(),
            key,
            engine_hash,
        })
    }

    fn file_name(&self, digest: &str) -> String {
        format!("{digest}-{}.cwasm", self.engine_hash)
    }

    fn mac(&self, digest: &str, code: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length works");
        // Lengths first, so that no two (digest, hash, code) triples give the same input.
        for part in [digest.as_bytes(), self.engine_hash.as_bytes()] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        mac.update(code);
        mac
    }

    /// The compiled code for `digest`, if a verified artifact is cached.
    pub fn load(&self, digest: &str) -> Option<Vec<u8>> {
        let name = self.file_name(digest);
        let bytes = match self.dir.read(&name) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(error = %e, file = name, "cannot read cached plugin; recompiling");
                return None;
            }
        };
        let verified = bytes.len() > MAGIC.len() + MAC_LEN && bytes.starts_with(MAGIC) && {
            let (mac, code) = bytes[MAGIC.len()..].split_at(MAC_LEN);
            self.mac(digest, code).verify_slice(mac).is_ok()
        };
        if !verified {
            tracing::warn!(
                file = name,
                "cached plugin failed verification; recompiling"
            );
            return None;
        }
        Some(bytes[MAGIC.len() + MAC_LEN..].to_vec())
    }

    /// Stores compiled code for `digest`, atomically replacing any previous file.
    pub fn store(&self, digest: &str, code: &[u8]) -> Result<(), Error> {
        let name = self.file_name(digest);
        let tmp = format!("{name}.tmp");
        let mut bytes = Vec::with_capacity(MAGIC.len() + MAC_LEN + code.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&self.mac(digest, code).finalize().into_bytes());
        bytes.extend_from_slice(code);
        let io = |source| Error::Cache {
            path: self.path.display().to_string(),
            source,
        };
        self.dir.write(&tmp, &bytes).map_err(io)?;
        self.dir.rename(&tmp, &self.dir, &name).map_err(io)
    }

    /// Path of the artifact for `digest` (for tests and diagnostics).
    pub fn artifact_path(&self, digest: &str) -> PathBuf {
        self.path.join(self.file_name(digest))
    }
}
