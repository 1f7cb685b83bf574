//! Secrets at rest: values sealed with XChaCha20-Poly1305 under the installation's key,
//! bound to where they are stored (the associated data names the row), so a sealed value
//! copied to another row does not open.
//!
//! The key is 32 random bytes, kept hex-encoded in a file of the data directory readable
//! by its owner only, or given by the operator (for example from a secret manager).

use crate::Error;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::path::Path;

/// The format version, the first byte of every sealed value.
const VERSION: u8 = 1;

/// Seals and opens secrets.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    /// For [`Sealer::digest`]: derived from the key, never the key itself.
    digest_key: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// A sealer with `key`.
    pub fn new(key: [u8; 32]) -> Self {
        use sha2::Digest;
        let mut derive = sha2::Sha256::new();
        derive.update(b"wharf digest key\0");
        derive.update(key);
        Self {
            cipher: XChaCha20Poly1305::new(&key.into()),
            digest_key: derive.finalize().into(),
        }
    }

    /// A keyed digest (HMAC-SHA256, hex) of `data` for `context`: the same input gives
    /// the same digest, and without this installation's key nothing of `data` can be
    /// learned or guessed from it. For telling whether a secret changed without keeping
    /// it (what the gitops target writes beside an encrypted Secret).
    pub fn digest(&self, context: &str, data: &[u8]) -> String {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.digest_key)
            .expect("HMAC takes any key length");
        mac.update(context.as_bytes());
        mac.update(&[0]);
        mac.update(data);
        hex::encode(mac.finalize().into_bytes())
    }

    /// A sealer from a key given as 64 hex characters.
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let bytes = hex::decode(text.trim()).map_err(|e| format!("the key is not hex: {e}"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "the key must be 32 bytes (64 hex characters)".to_string())?;
        Ok(Self::new(key))
    }

    /// The key in `file`, created (random, mode 0600) when the file does not exist.
    pub fn load_or_create(file: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(file) {
            Ok(text) => Self::from_hex(&text).map_err(|e| format!("{}: {e}", file.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                use std::io::Write;
                let mut f = options
                    .open(file)
                    .map_err(|e| format!("cannot create {}: {e}", file.display()))?;
                f.write_all(hex::encode(key).as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
                Ok(Self::new(key))
            }
            Err(e) => Err(format!("cannot read {}: {e}", file.display())),
        }
    }

    /// Seals `plaintext` for the place named `context`.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Vec<u8> {
        let nonce: [u8; 24] = rand::random();
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("encryption of an in-memory buffer does not fail");
        let mut out = Vec::with_capacity(1 + nonce.len() + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a value sealed for `context`; [`Error::Corrupt`] when it was sealed under
    /// another key, for another place, or changed.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, Error> {
        let corrupt = || {
            Error::Corrupt(format!(
                "a secret of {context} does not open: it was sealed under another key or changed"
            ))
        };
        if sealed.len() < 1 + 24 + 16 || sealed[0] != VERSION {
            return Err(corrupt());
        }
        self.cipher
            .decrypt(
                XNonce::from_slice(&sealed[1..25]),
                Payload {
                    msg: &sealed[25..],
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| corrupt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_place() {
        let sealer = Sealer::new([7; 32]);
        let sealed = sealer.seal(b"s3cret", "resource:shop/dev/db");
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        assert_eq!(
            sealer.open(&sealed, "resource:shop/dev/db").unwrap(),
            b"s3cret"
        );
        assert!(sealer.open(&sealed, "resource:shop/prod/db").is_err());
        assert!(
            Sealer::new([8; 32])
                .open(&sealed, "resource:shop/dev/db")
                .is_err()
        );
        let mut changed = sealed.clone();
        *changed.last_mut().unwrap() ^= 1;
        assert!(sealer.open(&changed, "resource:shop/dev/db").is_err());
        assert_ne!(
            sealer.seal(b"s3cret", "x"),
            sealer.seal(b"s3cret", "x"),
            "fresh nonces"
        );
    }

    #[test]
    fn the_key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret.key");
        let first = Sealer::load_or_create(&file).unwrap();
        let sealed = first.seal(b"x", "c");
        let again = Sealer::load_or_create(&file).unwrap();
        assert_eq!(again.open(&sealed, "c").unwrap(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&file, "nothex").unwrap();
        assert!(
            Sealer::load_or_create(&file)
                .unwrap_err()
                .contains("not hex")
        );
    }
}
