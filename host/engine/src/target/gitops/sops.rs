//! SOPS, the format Flux decrypts natively: a Kubernetes Secret whose `data` and
//! `stringData` values are each encrypted with AES-256-GCM under a random data key, the
//! data key encrypted for each age recipient, and a MAC over every value.
//!
//! Written here from getsops/sops' own definition (`sops.go`, `aes/cipher.go`,
//! `age/keysource.go`, `stores/stores.go`, v3.9 to v3.13), with the `age` crate for the
//! age part: the only SOPS implementation on crates.io (`rops` 0.1) writes files that
//! `sops --decrypt` refuses (no `version`), and pulls a cloud SDK with it. The output is
//! checked against the real `sops` binary in the tests.
//!
//! - Each value under a key named `data` or `stringData` (what `encrypted_regex:
//!   ^(data|stringData)$` selects: sops matches the regex against every key of a value's
//!   path) becomes `ENC[AES256_GCM,data:…,iv:…,tag:…,type:str]`, with a 32-byte IV and
//!   the path's keys, each followed by `:`, as additional data. An empty string stays
//!   empty, as sops leaves it.
//! - The MAC is SHA-512 over every value of the document (encrypted or not) in document
//!   order, in upper-case hexadecimal, itself encrypted with the data key and the
//!   `lastmodified` time as additional data.
//! - The file is written as JSON, which YAML readers read alike: a YAML writer's choice
//!   of quoting (`1_000`, a date) could change a value as sops reads it, and with it the
//!   MAC.

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Key, Nonce};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

/// AES-256-GCM with the 32-byte nonce sops uses.
type SopsGcm = AesGcm<Aes256, U32>;

/// The keys whose values are encrypted, as sops names them.
pub const ENCRYPTED_REGEX: &str = "^(data|stringData)$";

/// The sops version the files say they follow.
const VERSION: &str = "3.9.0";

/// Parses age recipients (`age1…`), naming the first that is not one.
pub fn recipients(texts: &[String]) -> Result<Vec<age::x25519::Recipient>, String> {
    if texts.is_empty() {
        return Err("give at least one age recipient (age1...)".into());
    }
    texts
        .iter()
        .map(|t| {
            t.parse::<age::x25519::Recipient>()
                .map_err(|e| format!("{t:?} is not an age recipient ({e})"))
        })
        .collect()
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// One value, encrypted as sops writes it.
fn encrypt_value(key: &[u8; 32], plain: &[u8], kind: &str, additional: &str) -> String {
    if plain.is_empty() && kind == "str" {
        return String::new();
    }
    let iv: [u8; 32] = rand::random();
    let sealed = SopsGcm::new(Key::<SopsGcm>::from_slice(key))
        .encrypt(
            Nonce::<U32>::from_slice(&iv),
            Payload {
                msg: plain,
                aad: additional.as_bytes(),
            },
        )
        .expect("AES-GCM encrypts any input of this size");
    let (data, tag) = sealed.split_at(sealed.len() - 16);
    format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{kind}]",
        base64(data),
        base64(&iv),
        base64(tag)
    )
}

/// The bytes sops hashes and encrypts for a value, and its type's name.
fn value_bytes(v: &Value) -> Option<(Vec<u8>, &'static str)> {
    match v {
        Value::String(s) => Some((s.as_bytes().to_vec(), "str")),
        Value::Bool(b) => Some(((if *b { "True" } else { "False" }).into(), "bool")),
        Value::Number(n) if n.is_f64() => {
            Some((n.as_f64().unwrap_or_default().to_string().into(), "float"))
        }
        Value::Number(n) => Some((n.to_string().into(), "int")),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// Hashes every value in document order and encrypts those on an encrypted path.
fn walk(v: &mut Value, path: &mut Vec<String>, encrypt: bool, key: &[u8; 32], mac: &mut Sha512) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                let selected = encrypt || k == "data" || k == "stringData";
                path.push(k.clone());
                walk(child, path, selected, key, mac);
                path.pop();
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, path, encrypt, key, mac);
            }
        }
        leaf => {
            if let Some((bytes, kind)) = value_bytes(leaf) {
                mac.update(&bytes);
                if encrypt {
                    let additional: String = path.iter().map(|k| format!("{k}:")).collect();
                    *leaf = Value::String(encrypt_value(key, &bytes, kind, &additional));
                }
            }
        }
    }
}

/// `object` (a mapping) encrypted for `recipients`, at `now` (Unix seconds).
pub fn encrypt(
    object: &Value,
    recipients: &[age::x25519::Recipient],
    now: u64,
) -> Result<Value, String> {
    let mut doc = object.clone();
    if !doc.is_object() || doc.get("sops").is_some() {
        return Err("only a mapping without a `sops` key can be encrypted".into());
    }
    let data_key: [u8; 32] = rand::random();
    let mut mac = Sha512::new();
    walk(&mut doc, &mut Vec::new(), false, &data_key, &mut mac);
    let mac: String = mac.finalize().iter().map(|b| format!("{b:02X}")).collect();
    // Whole seconds: sops rebuilds the MAC's additional data from this text.
    let lastmodified = wharf_core::clock::rfc3339(now as i64);
    let mut keys = Vec::new();
    for r in recipients {
        let enc = age::encrypt_and_armor(r, &data_key).map_err(|e| format!("age: {e}"))?;
        keys.push(json!({ "recipient": r.to_string(), "enc": enc }));
    }
    let mut sops = Map::new();
    sops.insert("age".into(), Value::Array(keys));
    sops.insert("lastmodified".into(), lastmodified.clone().into());
    sops.insert(
        "mac".into(),
        encrypt_value(&data_key, mac.as_bytes(), "str", &lastmodified).into(),
    );
    sops.insert("encrypted_regex".into(), ENCRYPTED_REGEX.into());
    sops.insert("version".into(), VERSION.into());
    doc.as_object_mut()
        .expect("checked to be a mapping")
        .insert("sops".into(), Value::Object(sops));
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_data_and_string_data_are_encrypted_and_no_value_shows() {
        let identity = age::x25519::Identity::generate();
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": "db", "labels": { "app": "shop" } },
            "data": { "password": "aHVudGVyMg==", "empty": "" },
            "stringData": { "url": "postgres://u:hunter2@db/x" },
        });
        let out = encrypt(&secret, &[identity.to_public()], 1_796_192_073).unwrap();
        let text = out.to_string();
        for plain in ["aHVudGVyMg==", "hunter2"] {
            assert!(!text.contains(plain), "{plain} shows in {text}");
        }
        assert!(
            out["data"]["password"]
                .as_str()
                .unwrap()
                .starts_with("ENC[AES256_GCM,data:")
        );
        assert!(
            out["data"]["password"]
                .as_str()
                .unwrap()
                .ends_with(",type:str]")
        );
        assert_eq!(out["data"]["empty"], "");
        assert_eq!(out["metadata"]["name"], "db", "the rest stays readable");
        assert_eq!(out["sops"]["encrypted_regex"], ENCRYPTED_REGEX);
        assert_eq!(out["sops"]["lastmodified"], "2026-12-02T06:14:33Z");
        assert_eq!(
            out["sops"]["age"][0]["recipient"],
            identity.to_public().to_string()
        );
        assert!(
            out["sops"]["age"][0]["enc"]
                .as_str()
                .unwrap()
                .starts_with("-----BEGIN AGE ENCRYPTED FILE-----")
        );
        assert!(
            recipients(&["not-a-key".into()])
                .unwrap_err()
                .contains("not-a-key")
        );
        assert!(recipients(&[]).is_err());
    }
}
