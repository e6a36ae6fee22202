//! The store: SQLite through rusqlite.
//!
//! One writer thread owns the only write connection and takes jobs over a channel; every job is
//! one transaction started with `BEGIN IMMEDIATE`, so a mutation and the processing work it
//! queues commit together (P8). A few read-only connections answer queries; in WAL mode they
//! never wait for the writer.

pub mod alerts;
pub mod audited;
pub mod codec;
pub mod events;
pub mod export;
pub mod gauges;
pub mod generate;
pub mod history;
pub mod holders;
pub mod ops;
pub mod preview;
pub mod process;
pub mod provision;
pub mod read;
pub mod redundant;
mod schema;
pub mod sets;
pub mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::{Semaphore, oneshot};

use crate::engine::{DirectError, GroupLicenseError};

pub use codec::{decode_disabled, encode_disabled};

/// Why a store operation failed. Every variant but `Sqlite`, `Closed` and `Corrupt` is the
/// caller's mistake, and nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadInput(String),
    /// A name that must be unique is taken (SCIM's `uniqueness`; GraphQL reports it as bad input).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Direct(#[from] DirectError),
    #[error(transparent)]
    GroupLicense(#[from] GroupLicenseError),
    #[error(
        "the group still has licenses{0}: remove them and let processing finish before deleting it"
    )]
    GroupHasLicenses(&'static str),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the database holds data these rules cannot read: {0}")]
    Corrupt(String),
    #[error("the store is shutting down")]
    Closed,
}

impl StoreError {
    /// The GraphQL `extensions.code` (graphql-api.md conventions).
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::NotFound(_) => "NOT_FOUND",
            StoreError::BadInput(_) | StoreError::Conflict(_) => "BAD_USER_INPUT",
            StoreError::Direct(e) => e.api_code(),
            StoreError::GroupLicense(e) => e.api_code(),
            StoreError::GroupHasLicenses(_) => "GROUP_HAS_LICENSES",
            StoreError::Sqlite(_) | StoreError::Corrupt(_) | StoreError::Closed => {
                "INTERNAL_SERVER_ERROR"
            }
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A cheap, cloneable handle on the database.
#[derive(Clone)]
pub struct Store {
    writer: mpsc::Sender<Job>,
    readers: Arc<ReadPool>,
    path: PathBuf,
    /// Reads run so far; tests use it to check that a page costs a fixed number of reads.
    reads: Arc<AtomicU64>,
    /// Committed write transactions so far: any answer computed before the last one may be out
    /// of date (the HTTP layer's response cache keys on it).
    generation: Arc<AtomicU64>,
    /// Told of what each write committed (`events`).
    hub: Arc<events::Hub>,
}

const READERS: usize = 4;

/// The writer's page cache, in KiB.
const WRITER_CACHE_KIB: i64 = 32 * 1024;

impl Store {
    /// Opens (creating if needed) the database at `path`, applies the migrations it lacks and
    /// starts the writer and checkpointer threads.
    pub fn open(path: &Path) -> Result<Store> {
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        // WAL: readers never wait for the writer, and a crash loses no committed transaction.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Copying the log back into the database is the checkpointer's work, on a thread of its
        // own; the writer does it only when the log has grown this far regardless (see
        // `checkpointer`).
        conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)?;
        // A log emptied by a checkpoint is cut back to this size: one large transaction (a
        // migration, a generated tenant) would otherwise leave a log of hundreds of MiB on disk.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        // A processing step of 5,000 members touches more pages than SQLite's default cache
        // of 2 MiB holds once the history is written beside the sets: the cache would spill
        // pages into the log mid-transaction, to be written again at commit.
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        let version = |conn: &Connection| -> Result<i64> {
            Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
        };
        let found = version(&conn)?;
        schema::migrate(&mut conn)?;
        if found > 0 && version(&conn)? != found {
            // A migrated database leaves its whole rewrite in the log: copied back and the log
            // emptied before anyone reads (nothing else has the file open yet).
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            })?;
        }
        let kick = checkpointer(path)?;
        // Whatever a previous run left in the log is copied back now, not at the first write.
        let _ = kick.send(());
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            configure(&reader)?;
            readers.push(reader);
        }
        let (writer, jobs) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                for job in jobs {
                    let before = conn.total_changes();
                    job(&mut conn);
                    if conn.total_changes() != before {
                        // The checkpointer ends only when this sender is dropped; were it gone
                        // (a panic), the writer's own checkpoints would keep the log bounded.
                        let _ = kick.send(());
                    }
                }
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the writer thread: {e}")))?;
        Ok(Store {
            writer,
            readers: Arc::new(ReadPool {
                connections: Mutex::new(readers),
                permits: Semaphore::new(READERS),
            }),
            path: path.to_path_buf(),
            reads: Arc::new(AtomicU64::new(0)),
            generation: Arc::new(AtomicU64::new(0)),
            hub: Arc::new(events::Hub::default()),
        })
    }

    /// Where committed changes are announced.
    pub fn hub(&self) -> &Arc<events::Hub> {
        &self.hub
    }

    /// Changes after every committed write, before its caller hears of it: an answer computed
    /// under one generation is current as long as the generation is the same.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// How many reads ([`Store::read`]) have run on this store.
    pub fn read_count(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one write transaction (`BEGIN IMMEDIATE`): committed when `f` returns `Ok`,
    /// rolled back otherwise, so a failed mutation changes nothing.
    pub async fn write<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let generation = self.generation.clone();
        let hub = self.hub.clone();
        let job: Job = Box::new(move |conn| {
            let _ = tx.send(run_write(conn, &generation, &hub, f));
        });
        self.writer.send(job).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// [`Store::write`] for callers outside the async runtime (CLI, demo data).
    pub fn write_blocking<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<R> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let generation = self.generation.clone();
        let hub = self.hub.clone();
        let job: Job = Box::new(move |conn| {
            let _ = tx.send(run_write(conn, &generation, &hub, f));
        });
        self.writer.send(job).map_err(|_| StoreError::Closed)?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    /// Copies everything the write-ahead log holds into the database file and empties the log,
    /// so that the file alone is the whole database (before a copy, at shutdown).
    pub fn checkpoint_blocking(&self) -> Result<()> {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move |conn| {
            // The checkpointer thread may be copying the log at this moment: a busy answer is
            // retried for a while before giving up.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            let result = loop {
                match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    r.get::<_, i64>(0)
                }) {
                    Ok(0) => break Ok(()),
                    Ok(_) if std::time::Instant::now() < deadline => {}
                    Ok(_) => {
                        break Err(StoreError::Corrupt(
                            "the checkpoint could not finish: a reader holds the log".into(),
                        ));
                    }
                    Err(e) => break Err(e.into()),
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            };
            let _ = tx.send(result);
        });
        self.writer.send(job).map_err(|_| StoreError::Closed)?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on a read-only connection, on the calling task's thread.
    ///
    /// Reads are short (by key or one bounded page: the API caps pages and query complexity),
    /// so they run in place: handing each to a blocking thread cost more in context switches
    /// than the read itself (B2 in BENCHMARKS.md). The permit guarantees a free connection.
    pub async fn read<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        let _permit = self.reader_permit().await?;
        let conn = self.readers.take()?;
        let result = f(&conn);
        self.readers.put(conn);
        result
    }
}

impl Store {
    /// Counts a read and waits for a free reader connection.
    async fn reader_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.readers
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)
    }

    /// Runs `f` on a read-only connection inside one read transaction, so that everything it
    /// reads is one snapshot of the database, on a blocking thread: for reads that take long
    /// (a preview of a big group), which would otherwise hold up the runtime's other tasks.
    /// Returns the generation the snapshot belongs to, or `None` when a write committed while
    /// it was being taken (its result is then right, but may be of either side of that write).
    pub async fn snapshot<R, F>(&self, f: F) -> Result<(R, Option<u64>)>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        let _permit = self.reader_permit().await?;
        let readers = self.readers.clone();
        let generation = self.generation.clone();
        let job = tokio::task::spawn_blocking(move || {
            let conn = readers.take()?;
            let before = generation.load(Ordering::Acquire);
            let result = (|| {
                conn.execute_batch("BEGIN")?;
                // The snapshot starts at the first read: taken here, before the generation is
                // compared again.
                conn.query_row("SELECT count(*) FROM directory", [], |r| r.get::<_, i64>(0))?;
                let same = generation.load(Ordering::Acquire) == before;
                let value = f(&conn);
                conn.execute_batch("COMMIT")?;
                Ok((value?, same.then_some(before)))
            })();
            if result.is_err() && !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            readers.put(conn);
            result
        });
        job.await
            .map_err(|e| StoreError::Corrupt(format!("a snapshot read stopped: {e}")))?
    }
}

/// Pages (4 KiB each) the write-ahead log may reach before the writer checkpoints it itself:
/// only when the checkpointer falls far behind.
const WRITER_CHECKPOINT_PAGES: i64 = 16_384;

/// Starts the thread that copies committed pages from the write-ahead log into the database
/// (a `PASSIVE` checkpoint, which never blocks the writer or readers) after commits. Left to the
/// writer, that copy took a fifth of a large group's processing time (B1 in BENCHMARKS.md);
/// here it runs on the other core meanwhile. The thread ends when the returned sender, held by
/// the writer thread, is dropped.
fn checkpointer(path: &Path) -> Result<mpsc::Sender<()>> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    let (kick, kicks) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("store-checkpointer".into())
        .spawn(move || {
            while kicks.recv().is_ok() {
                // One checkpoint covers every commit made before it starts.
                while kicks.try_recv().is_ok() {}
                if let Err(e) =
                    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0))
                {
                    tracing::warn!(error = %e, "checkpoint failed; the writer's own checkpoints take over");
                }
                // At most 20 checkpoints a second: many small mutations share one.
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        })
        .map_err(|e| StoreError::Corrupt(format!("cannot start the checkpointer thread: {e}")))?;
    Ok(kick)
}

fn configure(conn: &Connection) -> Result<()> {
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(())
}

fn run_write<R>(
    conn: &mut Connection,
    generation: &AtomicU64,
    hub: &events::Hub,
    f: impl FnOnce(&Transaction<'_>) -> Result<R>,
) -> Result<R> {
    let before = conn.total_changes();
    // Whatever an earlier transaction staged and did not commit is not this one's.
    drop(events::take());
    let committed = (|| -> Result<R> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    })();
    let staged = events::take();
    let value = committed?;
    // A transaction that changed no row (the idle worker looks for work every second) leaves
    // every answer current.
    if conn.total_changes() != before {
        generation.fetch_add(1, Ordering::Release);
    }
    hub.publish(staged);
    Ok(value)
}

/// Read-only connections; a semaphore permit guarantees one is free when taken.
struct ReadPool {
    connections: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl ReadPool {
    fn take(&self) -> Result<Connection> {
        self.connections
            .lock()
            .map_err(|_| StoreError::Closed)?
            .pop()
            .ok_or(StoreError::Closed)
    }

    fn put(&self, conn: Connection) {
        if let Ok(mut connections) = self.connections.lock() {
            connections.push(conn);
        }
    }
}

/// A time as stored (RFC 3339, UTC, milliseconds): stored times compare as text.
pub fn stored_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A stored time read back; `None` for text that is not one.
pub fn parse_time(stored: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(stored)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// A stored time as GraphQL writes a `DateTime` (chrono's RFC 3339, `+00:00`), for JSON
/// written outside GraphQL that must read the same (webhook bodies).
pub fn graphql_time(stored: &str) -> String {
    parse_time(stored).map_or_else(|| stored.to_string(), |t| t.to_rfc3339())
}

/// The current time as stored.
pub fn now() -> String {
    stored_time(chrono::Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_pages_reach_the_database_file_without_the_writer_checkpointing() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("c.db");
        let store = Store::open(&path).expect("open");
        let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let before = size();
        // About 250 pages: far below the writer's own threshold.
        store
            .write_blocking(|tx| {
                let mut insert = tx.prepare("INSERT INTO groups (display_name) VALUES (?1)")?;
                for i in 0..4_000 {
                    insert.execute([format!("group {i} {}", "x".repeat(200))])?;
                }
                Ok(())
            })
            .expect("a large write");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while size() < before + 500_000 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(
            size() >= before + 500_000,
            "the database file stayed at {} bytes (from {before})",
            size()
        );
        // A full checkpoint still succeeds beside the checkpointer's.
        store.checkpoint_blocking().expect("truncate checkpoint");
    }

    #[test]
    fn a_migrated_database_leaves_no_log_behind() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("m.db");
        {
            let mut old = Connection::open(&path).expect("open");
            old.pragma_update(None, "journal_mode", "WAL").expect("wal");
            schema::migrate_until(&mut old, 4).expect("version 4");
            old.execute_batch(
                "INSERT INTO users (id, user_principal_name, display_name) VALUES (1, 'a@x', 'A');
                 INSERT INTO assignments (user_id, group_id, sku, applied_disabled, state, updated_at)
                     VALUES (1, 0, 'EMS', '[]', 'ACTIVE', 't');",
            )
            .expect("a version 4 row");
        }
        let store = Store::open(&path).expect("open and migrate");
        let wal = std::fs::metadata(dir.path().join("m.db-wal")).map_or(0, |m| m.len());
        assert_eq!(wal, 0, "the log after the migration");
        let sets = store
            .write_blocking(|tx| sets::load(tx, &[1]))
            .expect("the moved set");
        assert_eq!(sets.len(), 1);
    }

    #[test]
    fn the_generation_moves_with_commits_that_change_rows_only() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("g.db")).expect("open");
        let start = store.generation();
        store
            .write_blocking(|tx| {
                tx.query_row("SELECT count(*) FROM work", [], |r| r.get::<_, i64>(0))?;
                Ok(())
            })
            .expect("a read-only transaction");
        assert_eq!(store.generation(), start, "nothing changed");
        store
            .write_blocking(|tx| {
                tx.execute("INSERT INTO groups (display_name) VALUES ('G')", [])?;
                Ok(())
            })
            .expect("an insert");
        assert_eq!(store.generation(), start + 1);
        let failed: Result<()> = store.write_blocking(|tx| {
            tx.execute("INSERT INTO groups (display_name) VALUES ('H')", [])?;
            Err(StoreError::BadInput("refused".into()))
        });
        assert!(failed.is_err());
        assert_eq!(
            store.generation(),
            start + 1,
            "a rolled-back write changes nothing"
        );
    }
}
