//! `wharf-store`: the platform's state in SQLite.
//!
//! One [`Store`] owns one SQLite connection, on a thread of its own: async code sends it
//! closures ([`Store::call`]) and awaits their results, so no query ever blocks a tokio
//! worker. A closure that changes several rows runs in one transaction
//! ([`Store::transaction`]). A closure gets a [`Tx`], which only the typed queries of this
//! crate's modules can use: the SQL stays here. The database runs in WAL mode with foreign keys on and a busy
//! timeout, and its schema is brought up to date by forward-only migrations when it is
//! opened.
//!
//! This is the only crate that names rusqlite. It knows tables and rows, not HTTP, plugins
//! or deployments, and must not hold a lock or a transaction across an await.

pub mod apps;
pub mod artefacts;
pub mod audit;
pub mod auth;
pub mod clusters;
mod column;
pub mod deployments;
pub mod envs;
mod migrations;
pub mod plugins;
pub mod provisioned;
pub mod resources;
pub mod rules;
pub mod secrets;
pub mod sets;
#[cfg(test)]
mod tests;
pub mod webhooks;

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database file could not be opened or configured.
    #[error("cannot open the database at {path}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The database file could not be made readable by its owner only.
    #[error("cannot make {path} readable by its owner only")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The database was written by a newer Wharf, whose schema this one does not know.
    #[error(
        "the database at {path} has schema version {found}, newer than this Wharf knows \
         ({known}); run the newer Wharf, or restore a backup"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest version this binary knows.
        known: i64,
    },
    /// A migration failed; the database is left at the version before it.
    #[error("migration to schema version {version} failed")]
    Migration {
        /// The version that failed.
        version: i64,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// A row with the same key exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// The row is still used by others and cannot be deleted.
    #[error("{what} is in use by {by}")]
    InUse {
        /// What was to be deleted.
        what: String,
        /// What uses it.
        by: String,
    },
    /// A value read from the database is not valid (it was written by something else).
    #[error("invalid value in the database: {0}")]
    Corrupt(String),
    /// A query failed.
    #[error("database query failed")]
    Query(#[source] rusqlite::Error),
    /// The store's thread has stopped (the store was closed, or a query panicked).
    #[error("the database thread has stopped")]
    Closed,
}

/// A value that does not parse as what its column holds (what the row readers of the
/// `column` module report) is [`Error::Corrupt`]; every other rusqlite error is a failed
/// query.
impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::FromSqlConversionFailure(_, _, cause)
                if cause.is::<column::Invalid>() =>
            {
                Self::Corrupt(cause.to_string())
            }
            e => Self::Query(e),
        }
    }
}

/// The connection, as a closure sent to the store sees it: what this crate's typed queries
/// take. It exposes no SQL: callers use the functions of [`apps`], [`envs`] and the other
/// modules.
pub struct Tx<'a>(&'a Connection);

impl Tx<'_> {
    /// The connection, for this crate's queries.
    pub(crate) fn conn(&self) -> &Connection {
        self.0
    }
}

/// Work for the database thread.
enum Job {
    /// Run a closure on the connection.
    Run(Box<dyn FnOnce(&mut Connection) + Send>),
    /// Finish: close the connection and end the thread.
    Stop,
}

/// The handle to the database. Cheap to clone; every clone talks to the same thread, which
/// stops when the last clone is dropped (after finishing the queued work).
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
    thread: std::sync::Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub async fn open(path: &Path) -> Result<Self, Error> {
        let path = path.to_path_buf();
        Self::start(move || {
            let open = |source| Error::Open {
                path: path.clone(),
                source,
            };
            owner_only(&path)?;
            let mut conn = Connection::open(&path).map_err(open)?;
            configure(&conn).map_err(open)?;
            migrations::run(&mut conn, &path)?;
            Ok(conn)
        })
        .await
    }

    /// A store in memory, for tests.
    pub async fn open_in_memory() -> Result<Self, Error> {
        Self::start(|| {
            let path = PathBuf::from(":memory:");
            let mut conn = Connection::open_in_memory().map_err(|source| Error::Open {
                path: path.clone(),
                source,
            })?;
            conn.execute_batch("PRAGMA foreign_keys = ON;")?;
            migrations::run(&mut conn, &path)?;
            Ok(conn)
        })
        .await
    }

    async fn start(
        open: impl FnOnce() -> Result<Connection, Error> + Send + 'static,
    ) -> Result<Self, Error> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready, opened) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("wharf-store".into())
            .spawn(move || {
                let mut conn = match open() {
                    Ok(conn) => {
                        let _ = ready.send(Ok(()));
                        conn
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                while let Ok(Job::Run(job)) = queue.recv() {
                    job(&mut conn);
                }
                if let Err((_, e)) = conn.close() {
                    tracing::warn!(error = %e, "closing the database failed");
                }
            })
            .map_err(|_| Error::Closed)?;
        opened.await.map_err(|_| Error::Closed)??;
        Ok(Self {
            jobs,
            thread: std::sync::Arc::new(std::sync::Mutex::new(Some(thread))),
        })
    }

    /// Runs `f` on the database thread, outside a transaction (each statement commits on
    /// its own), and returns its result.
    pub async fn call<R, F>(&self, f: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<R, Error> + Send + 'static,
    {
        self.raw(move |conn| f(&Tx(conn))).await
    }

    /// Runs `f` in one transaction: committed when it returns `Ok`, rolled back otherwise.
    pub async fn transaction<R, F>(&self, f: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<R, Error> + Send + 'static,
    {
        self.raw(move |conn| {
            let tx = conn.transaction()?;
            let value = f(&Tx(&tx))?;
            tx.commit()?;
            Ok(value)
        })
        .await
    }

    /// Runs `f` with the connection itself, on the database thread.
    async fn raw<R, F>(&self, f: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, Error> + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Job::Run(Box::new(move |conn| {
                let _ = done.send(f(conn));
            })))
            .map_err(|_| Error::Closed)?;
        result.await.map_err(|_| Error::Closed)?
    }

    /// Moves what the write-ahead log holds into the database file and empties the log:
    /// after secrets were rewritten sealed, no page of the log keeps them in clear.
    pub async fn checkpoint(&self) -> Result<(), Error> {
        self.raw(|conn| {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    /// Writes a consistent copy of the database to `dest` while it stays in use (SQLite's
    /// online backup).
    pub async fn backup(&self, dest: &Path) -> Result<(), Error> {
        let dest = dest.to_path_buf();
        self.raw(move |conn| {
            conn.backup(
                rusqlite::MAIN_DB,
                &dest,
                None::<fn(rusqlite::backup::Progress)>,
            )?;
            Ok(())
        })
        .await
    }

    /// The schema version of the database.
    pub async fn schema_version(&self) -> Result<i64, Error> {
        self.raw(|conn| Ok(migrations::version(conn)?)).await
    }

    /// Closes the store: waits for the work queued before it to finish and the thread to
    /// stop. Calls through other clones then fail with [`Error::Closed`].
    pub async fn close(self) {
        let Self { jobs, thread } = self;
        let _ = jobs.send(Job::Stop);
        let handle = thread
            .lock()
            .expect("store thread lock is never poisoned")
            .take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

/// True when `e` is a uniqueness or primary-key violation.
pub(crate) fn is_conflict(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ConstraintViolation)
    )
}

/// Makes the database file (and its write-ahead log and shared memory, which SQLite
/// creates with the database's mode) readable by its owner only: it holds every token hash
/// and every sealed secret. A new file is created 0600, never readable in between.
fn owner_only(path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let fail = |source| Error::Permissions {
            path: path.to_path_buf(),
            source,
        };
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(fail)?;
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::Permissions {
                        path: file,
                        source: e,
                    });
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// WAL for concurrent readers and crash safety; `synchronous = NORMAL` is durable across
/// a crash of the process (what WAL guarantees), not across a power cut, and avoids an
/// fsync per commit. `secure_delete` overwrites what a change removes, so that a value
/// replaced (a secret sealed, a row deleted) does not linger in the file's free space.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;
         PRAGMA secure_delete = ON;",
    )
}
