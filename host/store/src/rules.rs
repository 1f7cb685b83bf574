//! Automation rules: what an environment does when CI pushes an artefact (deploy it, or
//! create a preview environment and deploy it there), and what each push made each rule
//! do (deployed, refused by a policy, failed), kept with the artefact.

use crate::column::{json, optional_json, parsed};
use crate::{Error, Tx, is_conflict};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use wharf_core::Id;

/// A rule of an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The app.
    pub app: Id,
    /// The environment whose rule it is.
    pub env: Id,
    /// Its id within the environment.
    pub id: Id,
    /// A glob over the artefact's repository (`registry.example.com/shop-*`).
    pub image: String,
    /// A glob over the git ref it was built from (`refs/heads/main`).
    pub git_ref: String,
    /// The containers to update; empty: those whose image names the artefact's repository.
    pub containers: Vec<String>,
    /// The principals whose pushes trigger it; empty: any principal with a role on the
    /// app.
    pub pushers: Vec<String>,
    /// When set, the rule creates (or updates) a preview environment instead.
    pub preview: Option<Preview>,
    /// A paused rule does nothing.
    pub paused: bool,
    /// Whose rights the deployments it makes have: who made it.
    pub owner: String,
    /// When it was made (Unix seconds).
    pub created_at: i64,
}

/// The preview environment a rule makes for a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    /// Its name, where `{n}` stands for what the ref's `*` matched (`pr-{n}`).
    pub name: String,
    /// Its time to live (seconds), renewed by each deployment.
    pub ttl: i64,
    /// Its environment type; the rule's environment's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_type: Option<String>,
}

const COLUMNS: &str =
    "app, env, id, image, git_ref, containers, pushers, preview, paused, owner, created_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Rule> {
    Ok(Rule {
        app: parsed(r, "app")?,
        env: parsed(r, "env")?,
        id: parsed(r, "id")?,
        image: r.get("image")?,
        git_ref: r.get("git_ref")?,
        containers: json(r, "containers")?,
        pushers: json(r, "pushers")?,
        preview: optional_json(r, "preview")?,
        paused: r.get("paused")?,
        owner: r.get("owner")?,
        created_at: r.get("created_at")?,
    })
}

/// Stores a new rule; [`Error::Conflict`] when the environment has one with its id.
pub fn create(tx: &Tx<'_>, rule: &Rule) -> Result<(), Error> {
    tx.conn()
        .execute(
            &format!("INSERT INTO automation_rules ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
            params![
                rule.app.as_str(),
                rule.env.as_str(),
                rule.id.as_str(),
                rule.image,
                rule.git_ref,
                serde_json::to_string(&rule.containers).expect("strings serialize"),
                serde_json::to_string(&rule.pushers).expect("strings serialize"),
                rule.preview.as_ref().map(|p| serde_json::to_string(p).expect("a preview serializes")),
                rule.paused,
                rule.owner,
                rule.created_at,
            ],
        )
        .map_err(|e| {
            if is_conflict(&e) {
                Error::Conflict(format!("rule {} of {}/{}", rule.id, rule.app, rule.env))
            } else {
                e.into()
            }
        })?;
    Ok(())
}

/// Replaces what rule `app/env/id` matches and does, whether it is paused, and its owner
/// (who changed it is whose rights it has from now on); true when it exists.
pub fn update(tx: &Tx<'_>, rule: &Rule) -> Result<bool, Error> {
    Ok(tx.conn().execute(
        "UPDATE automation_rules SET image = ?4, git_ref = ?5, containers = ?6, preview = ?7,
                                     paused = ?8, owner = ?9, pushers = ?10
          WHERE app = ?1 AND env = ?2 AND id = ?3",
        params![
            rule.app.as_str(),
            rule.env.as_str(),
            rule.id.as_str(),
            rule.image,
            rule.git_ref,
            serde_json::to_string(&rule.containers).expect("strings serialize"),
            rule.preview
                .as_ref()
                .map(|p| serde_json::to_string(p).expect("a preview serializes")),
            rule.paused,
            rule.owner,
            serde_json::to_string(&rule.pushers).expect("strings serialize"),
        ],
    )? == 1)
}

/// Rule `app/env/id`, if there is one.
pub fn get(tx: &Tx<'_>, app: &str, env: &str, id: &str) -> Result<Option<Rule>, Error> {
    Ok(tx
        .conn()
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM automation_rules WHERE app = ?1 AND env = ?2 AND id = ?3"
            ),
            [app, env, id],
            row,
        )
        .optional()?)
}

/// The rules of environment `app/env`, by id.
pub fn list(tx: &Tx<'_>, app: &str, env: &str) -> Result<Vec<Rule>, Error> {
    let conn = tx.conn();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM automation_rules WHERE app = ?1 AND env = ?2 ORDER BY id"
    ))?;
    let rows = stmt.query_map([app, env], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every rule that is not paused, of environments not being deleted, in a stable order.
pub fn active(tx: &Tx<'_>) -> Result<Vec<Rule>, Error> {
    let conn = tx.conn();
    let mut stmt = conn.prepare_cached(
        "SELECT r.app, r.env, r.id, r.image, r.git_ref, r.containers, r.pushers, r.preview,
                r.paused, r.owner, r.created_at
           FROM automation_rules r JOIN environments e ON e.app = r.app AND e.id = r.env
          WHERE r.paused = 0 AND e.status = 'active'
          ORDER BY r.app, r.env, r.id",
    )?;
    let rows = stmt.query_map([], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many rules environment `app/env` has.
pub fn count(tx: &Tx<'_>, app: &str, env: &str) -> Result<i64, Error> {
    Ok(tx.conn().query_row(
        "SELECT count(*) FROM automation_rules WHERE app = ?1 AND env = ?2",
        [app, env],
        |r| r.get(0),
    )?)
}

/// Deletes rule `app/env/id`; true when it existed.
pub fn delete(tx: &Tx<'_>, app: &str, env: &str, id: &str) -> Result<bool, Error> {
    Ok(tx.conn().execute(
        "DELETE FROM automation_rules WHERE app = ?1 AND env = ?2 AND id = ?3",
        [app, env, id],
    )? == 1)
}

/// What a push of an artefact made one rule do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The artefact.
    pub artefact: i64,
    /// The app of the rule.
    pub app: String,
    /// The environment deployed (for a preview, the preview's).
    pub env: String,
    /// The rule, as `ENV/RULE`.
    pub rule: String,
    /// `deployed`, `refused` (a policy said no: the reason says why), `failed`, or
    /// `ignored` (the pusher may not trigger the rule).
    pub outcome: String,
    /// Who pushed.
    pub pushed_by: String,
    /// The deployment queued, when one was.
    pub deployment: Option<i64>,
    /// Why it was refused or failed.
    pub reason: String,
    /// When (Unix seconds).
    pub at: i64,
}

/// Records what a push made a rule do.
pub fn record(tx: &Tx<'_>, o: &Outcome) -> Result<(), Error> {
    tx.conn().execute(
        "INSERT INTO artefact_outcomes (artefact, app, env, rule, outcome, pushed_by, deployment,
                                        reason, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            o.artefact,
            o.app,
            o.env,
            o.rule,
            o.outcome,
            o.pushed_by,
            o.deployment,
            o.reason,
            o.at
        ],
    )?;
    Ok(())
}

/// What pushes of `artefact` made rules do, oldest first (at most the last 100).
pub fn outcomes(tx: &Tx<'_>, artefact: i64) -> Result<Vec<Outcome>, Error> {
    let conn = tx.conn();
    let mut stmt = conn.prepare_cached(
        "SELECT * FROM (SELECT rowid, artefact, app, env, rule, outcome, pushed_by, deployment,
                               reason, at
                          FROM artefact_outcomes WHERE artefact = ?1
                         ORDER BY rowid DESC LIMIT 100)
          ORDER BY rowid",
    )?;
    let rows = stmt.query_map([artefact], |r| {
        Ok(Outcome {
            artefact: r.get("artefact")?,
            app: r.get("app")?,
            env: r.get("env")?,
            rule: r.get("rule")?,
            outcome: r.get("outcome")?,
            pushed_by: r.get("pushed_by")?,
            deployment: r.get("deployment")?,
            reason: r.get("reason")?,
            at: r.get("at")?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether rule `rule` (`ENV/RULE`) of `app` deployed `artefact` already.
pub fn deployed(tx: &Tx<'_>, artefact: i64, app: &str, rule: &str) -> Result<bool, Error> {
    Ok(tx.conn().query_row(
        "SELECT EXISTS (SELECT 1 FROM artefact_outcomes
                         WHERE artefact = ?1 AND app = ?2 AND rule = ?3 AND outcome = 'deployed')",
        params![artefact, app, rule],
        |r| r.get(0),
    )?)
}
