//! Forward-only schema migrations, tracked in `PRAGMA user_version`.
//!
//! Each entry of [`MIGRATIONS`] moves the schema one version forward and runs in its own
//! transaction. A released migration is never edited: a change is a new entry.

use crate::Error;
use rusqlite::Connection;
use std::path::Path;

/// The migrations, in order; migration `i` brings the schema to version `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: settings of this Wharf installation (its id, whether the bootstrap admin token
    // was issued...).
    "CREATE TABLE meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
     ) STRICT;",
    // 2: principals, their API tokens (stored as sha256 of the secret) and role bindings;
    // applications. Times are Unix seconds.
    "CREATE TABLE principals (
        id         TEXT PRIMARY KEY NOT NULL,
        kind       TEXT NOT NULL CHECK (kind IN ('user', 'service-account')),
        created_at INTEGER NOT NULL
     ) STRICT;
     CREATE TABLE tokens (
        id         TEXT PRIMARY KEY NOT NULL,
        principal  TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
        hash       TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        revoked_at INTEGER
     ) STRICT;
     CREATE TABLE role_bindings (
        principal  TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
        scope_kind TEXT NOT NULL CHECK (scope_kind IN ('org', 'app', 'env-type')),
        scope_id   TEXT NOT NULL DEFAULT '',
        role       TEXT NOT NULL,
        PRIMARY KEY (principal, scope_kind, scope_id, role)
     ) STRICT;
     CREATE TABLE apps (
        id         TEXT PRIMARY KEY NOT NULL,
        name       TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL
     ) STRICT;",
    // 3: environment types (with their target, as JSON) and environments.
    "CREATE TABLE env_types (
        id          TEXT PRIMARY KEY NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        target      TEXT NOT NULL,
        created_at  INTEGER NOT NULL
     ) STRICT;
     CREATE TABLE environments (
        app        TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
        id         TEXT NOT NULL,
        env_type   TEXT NOT NULL REFERENCES env_types (id),
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        PRIMARY KEY (app, id)
     ) STRICT;",
    // 4: plugins (the uploaded components, with their manifest), their installations
    // (configuration, capability grants, order in the policy chain), resource types,
    // resource definitions with every version kept, and the audit log.
    "CREATE TABLE plugins (
        id          TEXT PRIMARY KEY NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('driver', 'policy', 'transformer')),
        version     TEXT NOT NULL,
        digest      TEXT NOT NULL,
        component   BLOB NOT NULL,
        manifest    TEXT NOT NULL,
        info        TEXT NOT NULL,
        bundled     INTEGER NOT NULL DEFAULT 0,
        created_at  INTEGER NOT NULL,
        created_by  TEXT NOT NULL
     ) STRICT;
     CREATE TABLE installations (
        id          TEXT PRIMARY KEY NOT NULL,
        plugin      TEXT NOT NULL REFERENCES plugins (id),
        config      TEXT NOT NULL,
        grants      TEXT NOT NULL,
        enabled     INTEGER NOT NULL,
        position    INTEGER NOT NULL,
        revision    INTEGER NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        updated_by  TEXT NOT NULL
     ) STRICT;
     CREATE TABLE resource_types (
        id          TEXT PRIMARY KEY NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        outputs     TEXT NOT NULL,
        created_at  INTEGER NOT NULL
     ) STRICT;
     CREATE TABLE resource_definitions (
        id          TEXT PRIMARY KEY NOT NULL,
        type        TEXT NOT NULL REFERENCES resource_types (id),
        driver      TEXT NOT NULL REFERENCES installations (id),
        body        TEXT NOT NULL,
        version     INTEGER NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        updated_by  TEXT NOT NULL
     ) STRICT;
     CREATE TABLE resource_definition_versions (
        id          TEXT NOT NULL REFERENCES resource_definitions (id) ON DELETE CASCADE,
        version     INTEGER NOT NULL,
        body        TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        created_by  TEXT NOT NULL,
        PRIMARY KEY (id, version)
     ) STRICT;
     CREATE TABLE audit (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        at          INTEGER NOT NULL,
        principal   TEXT NOT NULL,
        action      TEXT NOT NULL,
        target      TEXT NOT NULL,
        detail      TEXT NOT NULL
     );
     CREATE INDEX audit_principal ON audit (principal, seq);
     CREATE INDEX audit_action ON audit (action, seq);",
    // 5: deployment sets, immutable and content-addressed, per app.
    "CREATE TABLE sets (
        app         TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
        id          TEXT NOT NULL,
        body        TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        created_by  TEXT NOT NULL,
        PRIMARY KEY (app, id)
     ) STRICT;",
    // 6: resources as provisioned in each environment: the last step's status, the
    // driver's state and the secret outputs sealed, the other outputs in clear.
    "CREATE TABLE provisioned (
        app         TEXT NOT NULL,
        env         TEXT NOT NULL,
        uid         TEXT NOT NULL,
        status      TEXT NOT NULL
                    CHECK (status IN ('in-progress', 'retrying', 'done', 'failed')),
        message     TEXT NOT NULL DEFAULT '',
        state       BLOB,
        outputs     TEXT NOT NULL DEFAULT '{}',
        secrets     BLOB,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (app, env, uid),
        FOREIGN KEY (app, env) REFERENCES environments (app, id) ON DELETE CASCADE
     ) STRICT;",
    // 7: deployments and their steps (times in Unix milliseconds); an environment type's
    // transformer chain and implicit resources; environments being deleted; and, for each
    // provisioned resource, what provisioned it (deployment, definition, driver), what it
    // depends on, and its resolved params (sealed), so that it can be deprovisioned in
    // reverse dependency order without the set that declared it.
    "ALTER TABLE env_types ADD COLUMN transformers TEXT NOT NULL DEFAULT '[]';
     ALTER TABLE env_types ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
     ALTER TABLE environments ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'deleting'));
     CREATE TABLE provisioned_next (
        app         TEXT NOT NULL,
        env         TEXT NOT NULL,
        uid         TEXT NOT NULL,
        status      TEXT NOT NULL
                    CHECK (status IN ('in-progress', 'retrying', 'done', 'failed', 'deprovisioning')),
        message     TEXT NOT NULL DEFAULT '',
        state       BLOB,
        outputs     TEXT NOT NULL DEFAULT '{}',
        secrets     BLOB,
        updated_at  INTEGER NOT NULL,
        deployment  INTEGER NOT NULL DEFAULT 0,
        definition  TEXT NOT NULL DEFAULT '',
        driver      TEXT NOT NULL DEFAULT '',
        depends_on  TEXT NOT NULL DEFAULT '[]',
        params      BLOB,
        PRIMARY KEY (app, env, uid),
        FOREIGN KEY (app, env) REFERENCES environments (app, id) ON DELETE CASCADE
     ) STRICT;
     INSERT INTO provisioned_next (app, env, uid, status, message, state, outputs, secrets, updated_at)
        SELECT app, env, uid, status, message, state, outputs, secrets, updated_at FROM provisioned;
     DROP TABLE provisioned;
     ALTER TABLE provisioned_next RENAME TO provisioned;
     CREATE TABLE deployments (
        app            TEXT NOT NULL,
        env            TEXT NOT NULL,
        id             INTEGER NOT NULL,
        kind           TEXT NOT NULL CHECK (kind IN ('deploy', 'delete')),
        set_id         TEXT NOT NULL DEFAULT '',
        images         TEXT NOT NULL DEFAULT '{}',
        comment        TEXT NOT NULL DEFAULT '',
        status         TEXT NOT NULL
                       CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
        error          TEXT,
        created_at_ms  INTEGER NOT NULL,
        created_by     TEXT NOT NULL,
        started_at_ms  INTEGER,
        finished_at_ms INTEGER,
        PRIMARY KEY (app, env, id),
        FOREIGN KEY (app, env) REFERENCES environments (app, id) ON DELETE CASCADE
     ) STRICT;
     CREATE INDEX deployments_pending ON deployments (status)
        WHERE status IN ('queued', 'running');
     CREATE TABLE deployment_steps (
        app            TEXT NOT NULL,
        env            TEXT NOT NULL,
        deployment     INTEGER NOT NULL,
        position       INTEGER NOT NULL,
        name           TEXT NOT NULL,
        status         TEXT NOT NULL
                       CHECK (status IN ('pending', 'running', 'done', 'failed', 'skipped')),
        started_at_ms  INTEGER,
        finished_at_ms INTEGER,
        detail         TEXT NOT NULL DEFAULT '{}',
        error          TEXT,
        PRIMARY KEY (app, env, deployment, position),
        FOREIGN KEY (app, env, deployment) REFERENCES deployments (app, env, id) ON DELETE CASCADE
     ) STRICT;",
    // 8: apps being deleted (their environments' deletions are under way; the app goes
    // with the last of them).
    "ALTER TABLE apps ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'deleting'));",
    // 9: Kubernetes clusters, which environment types deploy to; their credentials sealed.
    "CREATE TABLE clusters (
        id TEXT PRIMARY KEY,
        server TEXT NOT NULL,
        ca_bundle TEXT,
        source TEXT NOT NULL CHECK (source IN ('token', 'client-certificate', 'kubeconfig')),
        credentials BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL
     ) STRICT;",
    // 10: the Kubernetes objects a driver returned with a resource (a JSON list).
    "ALTER TABLE provisioned ADD COLUMN objects TEXT NOT NULL DEFAULT '[]';",
    // 11: the images CI pushed, one row per repository and digest.
    "CREATE TABLE artefacts (
        id INTEGER PRIMARY KEY,
        repository TEXT NOT NULL,
        digest TEXT NOT NULL,
        tag TEXT,
        git_ref TEXT NOT NULL,
        git_commit TEXT NOT NULL,
        pushed_by TEXT NOT NULL,
        first_pushed_at INTEGER NOT NULL,
        last_pushed_at INTEGER NOT NULL,
        pushes INTEGER NOT NULL,
        UNIQUE (repository, digest)
     ) STRICT;",
    // 12: delivery automation: preview environments' time to live and paused
    // environments; what environment types allow previews; the rules that deploy pushed
    // artefacts, and what each push made them do.
    "ALTER TABLE environments ADD COLUMN ttl INTEGER;
     ALTER TABLE environments ADD COLUMN expires_at INTEGER;
     ALTER TABLE environments ADD COLUMN warned_at INTEGER;
     ALTER TABLE environments ADD COLUMN paused_at INTEGER;
     ALTER TABLE environments ADD COLUMN paused_by TEXT;
     CREATE INDEX environments_expiring ON environments (expires_at)
        WHERE expires_at IS NOT NULL;
     ALTER TABLE env_types ADD COLUMN previews TEXT NOT NULL DEFAULT '{}';
     CREATE TABLE automation_rules (
        app TEXT NOT NULL,
        env TEXT NOT NULL,
        id TEXT NOT NULL,
        image TEXT NOT NULL,
        git_ref TEXT NOT NULL,
        containers TEXT NOT NULL DEFAULT '[]',
        pushers TEXT NOT NULL DEFAULT '[]',
        preview TEXT,
        paused INTEGER NOT NULL DEFAULT 0,
        owner TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (app, env, id),
        FOREIGN KEY (app, env) REFERENCES environments (app, id) ON DELETE CASCADE
     ) STRICT;
     CREATE TABLE artefact_outcomes (
        artefact INTEGER NOT NULL REFERENCES artefacts (id) ON DELETE CASCADE,
        app TEXT NOT NULL,
        env TEXT NOT NULL,
        rule TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('deployed', 'refused', 'failed', 'ignored')),
        pushed_by TEXT NOT NULL,
        deployment INTEGER,
        reason TEXT NOT NULL DEFAULT '',
        at INTEGER NOT NULL
     ) STRICT;
     CREATE INDEX artefact_outcomes_by_artefact ON artefact_outcomes (artefact);",
    // 13: webhooks, and their deliveries (a persisted queue with each one's history).
    crate::webhooks::MIGRATION,
];

pub(crate) fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |row| row.get("user_version"))
}

/// Brings the schema of `conn` to the newest version.
pub(crate) fn run(conn: &mut Connection, path: &Path) -> Result<(), Error> {
    let known = MIGRATIONS.len() as i64;
    let found = version(conn)?;
    if found > known {
        return Err(Error::TooNew {
            path: path.to_path_buf(),
            found,
            known,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let target = i as i64 + 1;
        let migrate = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", target)?;
            tx.commit()
        };
        migrate(conn).map_err(|source| Error::Migration {
            version: target,
            source,
        })?;
        tracing::info!(version = target, "database migrated");
    }
    Ok(())
}
