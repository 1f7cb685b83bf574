//! Kubernetes clusters: where the kubernetes target deploys. The credentials are sealed at
//! rest, bound to the cluster's id (copied to another row, they do not open).

use crate::Tx;
use crate::secrets::Sealer;
use crate::{Error, is_conflict};
use rusqlite::params;
use serde::{Deserialize, Serialize};

/// How Wharf authenticates to a cluster, in the clear (only ever in memory).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Credentials {
    /// A bearer token (a service account's).
    Token(String),
    /// A client certificate and its key, PEM.
    ClientCertificate {
        /// The certificate, PEM.
        certificate: String,
        /// Its private key, PEM.
        key: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Credentials::Token(..)"),
            Self::ClientCertificate { .. } => f.write_str("Credentials::ClientCertificate(..)"),
        }
    }
}

/// A cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// Its id, named by environment types' targets.
    pub id: String,
    /// The API server's URL (`https://...`).
    pub server: String,
    /// The CA certificates the API server's certificate is checked against, PEM; the
    /// system's roots when none.
    pub ca_bundle: Option<String>,
    /// What ops gave: `token`, `client-certificate` or `kubeconfig`.
    pub source: String,
    /// The credentials.
    pub credentials: Credentials,
    /// When it was added (Unix seconds).
    pub created_at: i64,
    /// Who added it.
    pub created_by: String,
}

fn context(id: &str) -> String {
    format!("clusters/credentials:{id}")
}

const COLUMNS: &str = "id, server, ca_bundle, source, credentials, created_at, created_by";

fn row(sealer: &Sealer, r: &rusqlite::Row<'_>) -> Result<Cluster, Error> {
    let id: String = r.get("id")?;
    let sealed: Vec<u8> = r.get("credentials")?;
    let clear = sealer.open(&sealed, &context(&id)).map_err(|e| {
        Error::Corrupt(format!(
            "the credentials of cluster {id} do not open ({e}); the secret key changed: \
             give the cluster its credentials again"
        ))
    })?;
    let credentials =
        serde_json::from_slice(&clear).map_err(|e| Error::Corrupt(format!("credentials: {e}")))?;
    Ok(Cluster {
        id,
        server: r.get("server")?,
        ca_bundle: r.get("ca_bundle")?,
        source: r.get("source")?,
        credentials,
        created_at: r.get("created_at")?,
        created_by: r.get("created_by")?,
    })
}

/// Stores a cluster; [`Error::Conflict`] when the id is taken.
pub fn create(tx: &Tx<'_>, sealer: &Sealer, c: &Cluster) -> Result<(), Error> {
    let clear = serde_json::to_vec(&c.credentials).expect("credentials serialize");
    let sealed = sealer.seal(&clear, &context(&c.id));
    tx.conn()
        .execute(
            &format!("INSERT INTO clusters ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
            params![
                c.id,
                c.server,
                c.ca_bundle,
                c.source,
                sealed,
                c.created_at,
                c.created_by
            ],
        )
        .map_err(|e| {
            if is_conflict(&e) {
                Error::Conflict(format!("cluster {}", c.id))
            } else {
                e.into()
            }
        })?;
    Ok(())
}

/// The cluster with `id`, if any.
pub fn get(tx: &Tx<'_>, sealer: &Sealer, id: &str) -> Result<Option<Cluster>, Error> {
    let mut stmt = tx
        .conn()
        .prepare_cached(&format!("SELECT {COLUMNS} FROM clusters WHERE id = ?1"))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => Ok(Some(row(sealer, r)?)),
        None => Ok(None),
    }
}

/// Whether a cluster `id` exists (its credentials are not opened).
pub fn exists(tx: &Tx<'_>, id: &str) -> Result<bool, Error> {
    let mut stmt = tx
        .conn()
        .prepare_cached("SELECT 1 FROM clusters WHERE id = ?1")?;
    Ok(stmt.exists([id])?)
}

/// Every cluster, by id.
pub fn list(tx: &Tx<'_>, sealer: &Sealer) -> Result<Vec<Cluster>, Error> {
    let mut stmt = tx
        .conn()
        .prepare_cached(&format!("SELECT {COLUMNS} FROM clusters ORDER BY id"))?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(row(sealer, r)?);
    }
    Ok(out)
}

/// Removes a cluster; whether it was there.
pub fn delete(tx: &Tx<'_>, id: &str) -> Result<bool, Error> {
    Ok(tx
        .conn()
        .execute("DELETE FROM clusters WHERE id = ?1", [id])?
        > 0)
}
