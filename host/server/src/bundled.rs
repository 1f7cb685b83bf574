//! The plugins bundled with this binary, kept in the store: a new one is added, one this
//! binary changed is replaced (its installations keep their configuration), and a new
//! Wharf gets the `rbac` policy installed, so that it decides by roles from the start.

use serde_json::json;
use wharf_api::registry::{self, ANY, Registry, Requested};
use wharf_artifacts::Bundled;
use wharf_store::Store;
use wharf_store::plugins::{self as stored, Installation, Plugin};
use wharf_store::secrets::Sealer;

/// The policy installed on a new Wharf, the one that decides by roles.
const RBAC: &str = "rbac";

/// Stores `bundled` if it is new or changed with this binary.
pub(crate) async fn store(
    store: &Store,
    registry: &Registry,
    bundled: &Bundled,
) -> Result<(), registry::Error> {
    let requested = requests(bundled.grants);
    let loaded = registry
        .check(bundled.name, bundled.kind, &requested, bundled.bytes)
        .await?;
    let info = registry::describe(&loaded).await?;
    let row = Plugin {
        id: bundled.name.to_string(),
        kind: bundled.kind,
        version: info["version"].as_str().unwrap_or_default().to_string(),
        digest: loaded.digest().to_string(),
        manifest: serde_json::to_value(&requested).expect("a manifest serializes"),
        info,
        bundled: true,
        created_at: wharf_core::clock::now(),
        created_by: "wharf".into(),
    };
    let bytes = bundled.bytes.to_vec();
    store
        .transaction(move |tx| {
            match stored::get(tx, &row.id)? {
                None => {
                    stored::create(tx, &row, &bytes)?;
                    if row.id == RBAC && stored::installation_by_id(tx, RBAC)?.is_none() {
                        stored::install(tx, &rbac_installation(row.created_at))?;
                    }
                }
                Some(old) if old.bundled && old.digest != row.digest => {
                    stored::replace_bundled(tx, &row, &bytes)?;
                }
                Some(_) => {}
            }
            Ok(())
        })
        .await?;
    Ok(())
}

/// The `rbac` policy's installation on a new Wharf: first in the chain, enabled.
fn rbac_installation(at: i64) -> Installation {
    Installation {
        id: RBAC.into(),
        plugin: RBAC.into(),
        config: json!({}),
        grants: json!({}),
        enabled: true,
        position: 0,
        revision: 1,
        created_at: at,
        updated_at: at,
        updated_by: "wharf".into(),
    }
}

/// What a bundled plugin's manifest requests: the grants its crate's metadata names
/// (`http`, `sockets`, `directories`) may be given for whatever origin, address or
/// directory the operator grants its installations; the others get no network and no
/// files.
fn requests(grants: &[&str]) -> Requested {
    let mut requested = Requested::default();
    for grant in grants {
        match *grant {
            "http" => requested.grants.http = vec![ANY.into()],
            "sockets" => requested.grants.sockets = vec![ANY.into()],
            "directories" => requested.grants.directories = vec![ANY.into()],
            _ => {}
        }
    }
    requested
}

/// Seals the secrets of driver installations stored before they were sealed at rest (their
/// revision stays: what they hold is unchanged).
pub(crate) async fn seal_installation_secrets(
    store: &Store,
    sealer: &Sealer,
) -> Result<(), wharf_store::Error> {
    let sealer = sealer.clone();
    let sealed = store
        .transaction(move |tx| {
            let drivers: std::collections::HashSet<String> = stored::list(tx)?
                .into_iter()
                .filter(|p| p.kind == wharf_core::Kind::Driver)
                .map(|p| p.id)
                .collect();
            let mut sealed = Vec::new();
            for mut i in stored::installations(tx)? {
                if drivers.contains(&i.plugin)
                    && i.config["secrets"].is_object()
                    && i.config.get("secrets_sealed").is_none()
                {
                    i.config = registry::seal_config(&sealer, &i.id, &i.config)?;
                    stored::update(tx, &i)?;
                    sealed.push(i.id);
                }
            }
            Ok(sealed)
        })
        .await?;
    if !sealed.is_empty() {
        // The old text is overwritten in the file (secure_delete); the write-ahead log,
        // which may hold earlier pages with it, is emptied into the file.
        store.checkpoint().await?;
        tracing::info!(installations = ?sealed, "sealed the secrets of driver installations");
    }
    Ok(())
}
