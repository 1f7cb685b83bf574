//! Artefacts: the container images CI registered, by repository and digest. Pushing the
//! same image again (same repository and digest) updates its row (the latest git ref,
//! commit and tag, the push count): an image is one artefact however often it is pushed.

use crate::{Error, Tx};
use rusqlite::{OptionalExtension, params};

/// One image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artefact {
    /// Its number, in the order images were first pushed.
    pub id: i64,
    /// `registry.example.com/shop/api`.
    pub repository: String,
    /// `sha256:...`.
    pub digest: String,
    /// The tag of the latest push, if it had one.
    pub tag: Option<String>,
    /// The git ref of the latest push (`refs/heads/main`), empty when none was given.
    pub git_ref: String,
    /// The commit of the latest push, empty when none was given.
    pub git_commit: String,
    /// Who pushed it last.
    pub pushed_by: String,
    /// When it was first pushed (Unix seconds).
    pub first_pushed_at: i64,
    /// When it was last pushed (Unix seconds).
    pub last_pushed_at: i64,
    /// How many times it was pushed.
    pub pushes: i64,
}

/// A push of an image.
#[derive(Debug, Clone)]
pub struct Push<'a> {
    /// The repository.
    pub repository: &'a str,
    /// The digest.
    pub digest: &'a str,
    /// The tag, if any.
    pub tag: Option<&'a str>,
    /// The git ref.
    pub git_ref: &'a str,
    /// The commit.
    pub git_commit: &'a str,
    /// Who pushes.
    pub by: &'a str,
    /// When (Unix seconds).
    pub at: i64,
}

const COLUMNS: &str = "id, repository, digest, tag, git_ref, git_commit, pushed_by, \
                       first_pushed_at, last_pushed_at, pushes";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Artefact> {
    Ok(Artefact {
        id: r.get("id")?,
        repository: r.get("repository")?,
        digest: r.get("digest")?,
        tag: r.get("tag")?,
        git_ref: r.get("git_ref")?,
        git_commit: r.get("git_commit")?,
        pushed_by: r.get("pushed_by")?,
        first_pushed_at: r.get("first_pushed_at")?,
        last_pushed_at: r.get("last_pushed_at")?,
        pushes: r.get("pushes")?,
    })
}

/// Records a push; gives the artefact and whether it is new.
pub fn push(tx: &Tx<'_>, p: &Push<'_>) -> Result<(Artefact, bool), Error> {
    let conn = tx.conn();
    let existed: Option<i64> = conn
        .query_row(
            "SELECT id FROM artefacts WHERE repository = ?1 AND digest = ?2",
            [p.repository, p.digest],
            |r| r.get(0),
        )
        .optional()?;
    conn.execute(
        "INSERT INTO artefacts (repository, digest, tag, git_ref, git_commit, pushed_by,
                                first_pushed_at, last_pushed_at, pushes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, 1)
         ON CONFLICT (repository, digest) DO UPDATE SET
            tag = COALESCE(excluded.tag, artefacts.tag),
            git_ref = CASE WHEN excluded.git_ref = '' THEN artefacts.git_ref ELSE excluded.git_ref END,
            git_commit = CASE WHEN excluded.git_commit = '' THEN artefacts.git_commit
                              ELSE excluded.git_commit END,
            pushed_by = excluded.pushed_by,
            last_pushed_at = excluded.last_pushed_at,
            pushes = artefacts.pushes + 1",
        params![p.repository, p.digest, p.tag, p.git_ref, p.git_commit, p.by, p.at],
    )?;
    let artefact = conn.query_row(
        &format!("SELECT {COLUMNS} FROM artefacts WHERE repository = ?1 AND digest = ?2"),
        [p.repository, p.digest],
        row,
    )?;
    Ok((artefact, existed.is_none()))
}

/// Artefact `id`, if there is one.
pub fn get(tx: &Tx<'_>, id: i64) -> Result<Option<Artefact>, Error> {
    Ok(tx
        .conn()
        .query_row(
            &format!("SELECT {COLUMNS} FROM artefacts WHERE id = ?1"),
            [id],
            row,
        )
        .optional()?)
}

/// What a listing keeps.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only repositories starting with this.
    pub repository: Option<String>,
    /// Only this git ref.
    pub git_ref: Option<String>,
    /// Only artefacts numbered after this.
    pub after: Option<i64>,
    /// At most this many.
    pub limit: usize,
}

/// The artefacts `filter` keeps, oldest first.
pub fn list(tx: &Tx<'_>, filter: &Filter) -> Result<Vec<Artefact>, Error> {
    let conn = tx.conn();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM artefacts
         WHERE (?1 IS NULL OR substr(repository, 1, length(?1)) = ?1)
           AND (?2 IS NULL OR git_ref = ?2)
           AND id > ?3
         ORDER BY id LIMIT ?4"
    ))?;
    let rows = stmt.query_map(
        params![
            filter.repository,
            filter.git_ref,
            filter.after.unwrap_or(0),
            filter.limit as i64
        ],
        row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}
