//! Opening the store: connection settings (WAL, foreign keys, durability), migrations,
//! the read pool and the single writer.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::mpsc;

use crate::Millis;
use crate::commit::{Pending, run_writer};
use crate::error::{StoreError, sqlx_busy};
use crate::migrate::migrate;
use crate::writer::Writer;

/// Prepared statements sqlx keeps for the writer's other writes (grants, leases, memory,
/// audit entries outside a commit); task commits keep their own (`commit/direct.rs`).
const WRITER_STATEMENT_CACHE: usize = 256;

/// The writer connection's page cache, in SQLite's negative-KiB form (32 MiB).
const WRITER_CACHE_KIB: &str = "-32768";

/// WAL pages after which a commit also checkpoints (SQLite's default is 1,000; 8,000
/// pages is 32 MiB).
const WRITER_CHECKPOINT_PAGES: &str = "8000";

/// Bytes the WAL file is truncated to when it is reset after a checkpoint (64 MiB).
const WAL_SIZE_LIMIT: &str = "67108864";

/// How much of the database file each read connection maps into memory (1 GiB of address
/// space, not of memory: the OS pages it in as it is read and can drop it at will).
const READ_MMAP_BYTES: &str = "1073741824";

/// How hard a commit tries to survive power loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: a committed transition survives power loss. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives a process crash, may lose the last commits on power loss.
    Normal,
}

#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub path: PathBuf,
    pub durability: Durability,
    /// How long a write waits for another process holding the write lock.
    pub busy_timeout: Duration,
    pub read_connections: u32,
}

impl StoreOptions {
    pub fn new(path: impl Into<PathBuf>) -> StoreOptions {
        StoreOptions {
            path: path.into(),
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(10),
            read_connections: 4,
        }
    }
}

/// A handle on the store; cheap to clone, shared by every part of one process.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) path: PathBuf,
    pub(crate) reads: SqlitePool,
    /// The one connection this process writes through.
    pub(crate) writer: Arc<Writer>,
    pub(crate) commits: mpsc::UnboundedSender<Pending>,
}

impl Store {
    /// Opens (creating if needed) the database at `options.path` and migrates it.
    pub async fn open(options: StoreOptions, now: Millis) -> Result<Store, StoreError> {
        let path = options.path.clone();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let connect = connect_options(&options).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        let writer_options = connect
            .clone()
            .statement_cache_capacity(WRITER_STATEMENT_CACHE)
            // A group of commits dirties pages all over the file; with SQLite's default
            // 2 MiB cache, big groups spill pages to the WAL before their commit and read
            // back pages they had just dropped.
            .pragma("cache_size", WRITER_CACHE_KIB)
            // A commit that crosses the threshold also copies the WAL's pages into the
            // database and syncs it (two more fsyncs): rarer, larger checkpoints copy a
            // page rewritten by many commits once instead of once per 1,000 pages.
            .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)
            .pragma("journal_size_limit", WAL_SIZE_LIMIT)
            // Commits run on this handle from the committing thread (commit/direct.rs);
            // SQLite's own lock then makes any overlap with sqlx's thread safe, not a race.
            .serialized(true);
        let mut writer = connect_retrying(options.busy_timeout, || writer_options.connect())
            .await
            .map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
        migrate(&mut writer, now).await?;
        let reads = connect_retrying(options.busy_timeout, || {
            SqlitePoolOptions::new()
                .max_connections(options.read_connections.max(1))
                // A connection to a local file cannot have gone away, so no ping before each
                // use (a ping is one more hand-off to the connection's thread per read).
                .test_before_acquire(false)
                // Reads map the database file instead of copying each page they visit out
                // of the OS's cache (the metrics visit every task); the WAL is read as before.
                .connect_with(
                    connect
                        .clone()
                        .read_only(true)
                        .pragma("mmap_size", READ_MMAP_BYTES),
                )
        })
        .await
        .map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        let writer = Arc::new(Writer::new(writer));
        let (commits, rx) = mpsc::unbounded_channel();
        tokio::spawn(run_writer(writer.clone(), rx));
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                reads,
                writer,
                commits,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }
}

/// Connects, trying again while SQLite says "database is locked", until `busy_timeout`.
///
/// Connecting sets `journal_mode = WAL`, which SQLite refuses at once, without waiting on
/// the busy timeout, while another connection holds the lock it needs (on a new file,
/// while another process switches it to WAL or migrates it: waiting could deadlock, so
/// SQLite does not). Two processes opening one new file is ordinary (the desktop and a
/// CLI, two CLIs), so this waits it out as a busy write would.
async fn connect_retrying<T, F, Fut>(
    busy_timeout: Duration,
    mut connect: F,
) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let deadline = tokio::time::Instant::now() + busy_timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        match connect().await {
            Err(e) if sqlx_busy(&e) && tokio::time::Instant::now() + pause < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            result => return result,
        }
    }
}

fn connect_options(options: &StoreOptions) -> Result<SqliteConnectOptions, sqlx::Error> {
    let synchronous = match options.durability {
        Durability::Full => SqliteSynchronous::Full,
        Durability::Normal => SqliteSynchronous::Normal,
    };
    Ok(SqliteConnectOptions::from_str("sqlite:")?
        .filename(&options.path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .foreign_keys(true)
        .busy_timeout(options.busy_timeout)
        // Statement journals and sorts stay in memory, never in temp files.
        .pragma("temp_store", "memory"))
}
