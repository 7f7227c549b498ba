//! Four small MCP servers for the demo workspace (support desk, CRM and billing, HR, ERP),
//! each with its own seeded SQLite file, so that the effects of their write tools are real
//! rows and duplicates are countable.
//!
//! This file holds what the servers share: opening and seeding a database
//! ([`Db::open`]), the idempotency store ([`Db::begin_write`], [`WriteTx::finish`]), tool
//! errors ([`ToolError`]) and the stdio entry point ([`main`]).
//!
//! Idempotency: every write tool takes an optional `idempotency_key` argument; when it is
//! absent, the key is read from the request's `_meta` under [`IDEMPOTENCY_META_KEY`]. The
//! first successful result per key is stored in the `idempotency` table, in the same
//! transaction as the effect; a repeat with the same key returns the stored result without
//! a second effect, and marks the result's `_meta` with [`REPLAY_META_KEY`].

pub mod crm;
pub mod erp;
pub mod hr;
pub mod support;

use std::future::Future;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::RequestMetaObject;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock, IntoContents, MetaObject};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Sqlite, SqliteConnection, Transaction};

/// The request `_meta` key a client may carry the idempotency key in, when the
/// `idempotency_key` argument is absent.
pub const IDEMPOTENCY_META_KEY: &str = "dev.airlock/idempotency_key";

/// Set to `true` in a write tool result's `_meta` when the result is the stored one of an
/// earlier call with the same idempotency key (no second effect happened).
pub const REPLAY_META_KEY: &str = "dev.airlock/idempotent_replay";

/// The table every server keeps its idempotency records in.
const IDEMPOTENCY_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    tool TEXT NOT NULL,
    result TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seeded (
    dataset TEXT PRIMARY KEY
);
";

/// One server's data: its tables and the rows they start with.
pub trait Dataset {
    /// Short name: `support`, `crm`, `hr` or `erp` (also the default file name).
    const NAME: &'static str;
    /// `CREATE TABLE IF NOT EXISTS ...` statements.
    const SCHEMA: &'static str;
    /// Inserts the seed rows. Called once, inside the transaction that creates the tables.
    /// Must be deterministic: no clock, no randomness.
    fn seed(conn: &mut SqliteConnection) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

/// A server's SQLite file.
#[derive(Clone, Debug)]
pub struct Db {
    pool: SqlitePool,
}

impl Db {
    /// Opens (creating if needed) the database at `path`, creates the dataset's tables and
    /// seeds them if this file has not been seeded yet.
    pub async fn open<D: Dataset>(path: &Path) -> Result<Db, sqlx::Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::raw_sql(IDEMPOTENCY_SCHEMA).execute(&mut *tx).await?;
        sqlx::raw_sql(D::SCHEMA).execute(&mut *tx).await?;
        let seeded: i64 = sqlx::query_scalar("SELECT count(*) FROM seeded WHERE dataset = ?")
            .bind(D::NAME)
            .fetch_one(&mut *tx)
            .await?;
        if seeded == 0 {
            D::seed(&mut tx).await?;
            sqlx::query("INSERT INTO seeded (dataset) VALUES (?)")
                .bind(D::NAME)
                .execute(&mut *tx)
                .await?;
            tracing::info!(dataset = D::NAME, path = %path.display(), "seeded a new database");
        }
        tx.commit().await?;
        Ok(Db { pool })
    }

    /// A connection for reads.
    pub async fn read(&self) -> Result<PoolConnection<Sqlite>, ToolError> {
        Ok(self.pool.acquire().await?)
    }

    /// Makes the effect of a write tool's call once: a repeat under the same `key` returns
    /// the first call's stored result; a new call runs `effect` in a transaction (holding
    /// the write lock) that stores its result under the key and commits with it.
    pub async fn write<T: Serialize>(
        &self,
        tool: &'static str,
        key: Option<String>,
        effect: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T, ToolError>,
    ) -> Result<Written<T>, ToolError> {
        let mut write = match self.begin_write(tool, key).await? {
            Begun::Replay(stored) => return Ok(stored),
            Begun::Fresh(write) => write,
        };
        let output = effect(write.conn()).await?;
        write.finish(output).await
    }

    /// Starts a write of `tool` under `key`: either the stored result of an earlier call
    /// with the same key, or a transaction (holding the write lock) to make the effect in.
    async fn begin_write<T>(
        &self,
        tool: &'static str,
        key: Option<String>,
    ) -> Result<Begun<T>, ToolError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if let Some(key) = &key {
            let stored: Option<(String, String)> =
                sqlx::query_as("SELECT tool, result FROM idempotency WHERE key = ?")
                    .bind(key.clone())
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some((stored_tool, result)) = stored {
                if stored_tool != tool {
                    return Err(ToolError::Invalid(format!(
                        "The idempotency key {key:?} was already used for a call of {stored_tool}, not {tool}."
                    )));
                }
                let value = serde_json::from_str(&result).map_err(|e| {
                    ToolError::Internal(format!("stored result for key {key:?} is unreadable: {e}"))
                })?;
                tracing::info!(tool, key, "repeat call: returning the stored result");
                return Ok(Begun::Replay(Written::new(value, true)));
            }
        }
        Ok(Begun::Fresh(WriteTx { tx, tool, key }))
    }
}

/// What [`Db::begin_write`] found.
#[derive(Debug)]
enum Begun<T> {
    /// The key was seen before: this is the first call's result. Return it as is.
    Replay(Written<T>),
    /// A new call: make the effect in this transaction, then [`WriteTx::finish`] it.
    Fresh(WriteTx),
}

/// A write in progress: dropping it without [`finish`](WriteTx::finish) rolls the effect
/// back.
#[derive(Debug)]
struct WriteTx {
    tx: Transaction<'static, Sqlite>,
    tool: &'static str,
    key: Option<String>,
}

impl WriteTx {
    fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }

    /// Stores `output` under the key (if any) and commits it with the effect.
    async fn finish<T: Serialize>(mut self, output: T) -> Result<Written<T>, ToolError> {
        let value = serde_json::to_value(&output)
            .map_err(|e| ToolError::Internal(format!("cannot serialise the result: {e}")))?;
        if let Some(key) = &self.key {
            sqlx::query("INSERT INTO idempotency (key, tool, result) VALUES (?, ?, ?)")
                .bind(key.clone())
                .bind(self.tool)
                .bind(value.to_string())
                .execute(&mut *self.tx)
                .await?;
        }
        self.tx.commit().await?;
        tracing::info!(tool = self.tool, key = ?self.key, "write committed");
        Ok(Written::new(value, false))
    }
}

/// The result of a write tool: structured content (the serialised `T`, or the stored copy
/// of an earlier call's), and whether it is a replay.
#[derive(Debug)]
pub struct Written<T> {
    value: serde_json::Value,
    replayed: bool,
    _output: PhantomData<fn() -> T>,
}

impl<T> Written<T> {
    fn new(value: serde_json::Value, replayed: bool) -> Self {
        Written {
            value,
            replayed,
            _output: PhantomData,
        }
    }

    pub fn replayed(&self) -> bool {
        self.replayed
    }

    pub fn value(&self) -> &serde_json::Value {
        &self.value
    }
}

impl<T: DeserializeOwned> Written<T> {
    pub fn output(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.value)
    }
}

impl<T: 'static> IntoCallToolResult for Written<T> {
    fn into_call_tool_result(self) -> Result<CallToolResponse, rmcp::ErrorData> {
        let mut result = CallToolResult::structured(self.value);
        if self.replayed {
            let mut meta = MetaObject::new();
            meta.insert(REPLAY_META_KEY.into(), serde_json::Value::Bool(true));
            result = result.with_meta(Some(meta));
        }
        Ok(result.into())
    }
}

/// The idempotency key of a write call: the `idempotency_key` argument, or else the
/// request's `_meta["dev.airlock/idempotency_key"]`.
pub fn idempotency_key(
    argument: Option<String>,
    meta: &RequestMetaObject,
) -> Result<Option<String>, ToolError> {
    let key = match argument {
        Some(key) => Some(key),
        None => match meta.get(IDEMPOTENCY_META_KEY) {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(key)) => Some(key.clone()),
            Some(other) => {
                return Err(ToolError::Invalid(format!(
                    "The _meta key {IDEMPOTENCY_META_KEY} must be a string, not {other}."
                )));
            }
        },
    };
    match key {
        Some(key) if key.trim().is_empty() => Err(ToolError::Invalid(
            "The idempotency key must not be empty.".into(),
        )),
        key => Ok(key),
    }
}

/// A tool call that failed; sent to the client as a tool error (`isError: true`) with one
/// plain sentence, never as a protocol error.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The arguments are wrong (negative amount, unknown status, ...).
    #[error("{0}")]
    Invalid(String),
    /// Something the arguments name does not exist.
    #[error("{0}")]
    NotFound(String),
    #[error("Internal error: {0}")]
    Internal(String),
    #[error("Database error: {0}")]
    Db(#[from] sqlx::Error),
}

impl ToolError {
    pub fn not_found(what: &str, id: &str) -> ToolError {
        ToolError::NotFound(format!("There is no {what} with id {id}."))
    }
}

impl IntoContents for ToolError {
    fn into_contents(self) -> Vec<ContentBlock> {
        if let ToolError::Db(_) | ToolError::Internal(_) = &self {
            tracing::error!(error = %self, "tool call failed");
        }
        vec![ContentBlock::text(self.to_string())]
    }
}

/// Fails with `NotFound` when `row` is `None`.
pub fn found<T>(row: Option<T>, what: &str, id: &str) -> Result<T, ToolError> {
    row.ok_or_else(|| ToolError::not_found(what, id))
}

/// Checks that a money amount is positive.
pub fn positive_cents(field: &str, cents: i64) -> Result<i64, ToolError> {
    if cents <= 0 {
        return Err(ToolError::Invalid(format!(
            "{field} must be a positive number of cents, not {cents}."
        )));
    }
    Ok(cents)
}

/// Checks that `checked` (the argument `given` as the tool reads it: trimmed, perhaps
/// lowercased) is one of `allowed`; otherwise says which are.
pub fn one_of(what: &str, given: &str, checked: &str, allowed: &[&str]) -> Result<(), ToolError> {
    if allowed.contains(&checked) {
        return Ok(());
    }
    Err(ToolError::Invalid(format!(
        "Unknown {what} {given:?}; use one of {}.",
        allowed.join(", ")
    )))
}

/// Checks that a free-text argument is not blank.
pub fn non_blank(field: &str, text: &str) -> Result<String, ToolError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ToolError::Invalid(format!("{field} must not be empty.")));
    }
    Ok(text.to_string())
}

/// The current time as an ISO-8601 UTC timestamp (for rows written by tools; the seed
/// never reads the clock).
pub async fn now_iso(conn: &mut SqliteConnection) -> Result<String, ToolError> {
    Ok(
        sqlx::query_scalar("SELECT strftime('%Y-%m-%dT%H:%M:%SZ', 'now')")
            .fetch_one(conn)
            .await?,
    )
}

/// A demo server: a dataset and the MCP handler over it.
pub trait DemoServer: Dataset + rmcp::ServerHandler + Sized {
    fn new(db: Db) -> Self;
}

/// The shared `main` of the four binaries: `--db <path>` (or `AIRLOCK_DEMO_DB`, or
/// `./<name>.sqlite`), logs on stderr (filter from `AIRLOCK_LOG`, default `info`), MCP on
/// stdin/stdout until the client closes stdin.
pub fn main<S: DemoServer>(binary: &'static str) -> ExitCode {
    let matches = <Args as clap::CommandFactory>::command()
        .name(binary)
        .about(format!(
            "Demo MCP server ({}) over stdio, with its own seeded SQLite file",
            S::NAME
        ))
        .get_matches();
    let args = match <Args as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    let filter = std::env::var("AIRLOCK_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let db_path = args
        .db
        .unwrap_or_else(|| PathBuf::from(format!("./{}.sqlite", S::NAME)));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{binary}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve::<S>(&db_path)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{binary}: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve<S: DemoServer>(db_path: &Path) -> Result<(), String> {
    let db = Db::open::<S>(db_path)
        .await
        .map_err(|e| format!("cannot open {}: {e}", db_path.display()))?;
    tracing::info!(server = S::NAME, db = %db_path.display(), "serving MCP on stdio");
    let service = S::new(db)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| format!("MCP start-up failed: {e}"))?;
    let reason = service
        .waiting()
        .await
        .map_err(|e| format!("MCP service failed: {e}"))?;
    tracing::info!(?reason, "MCP session ended");
    Ok(())
}

#[derive(clap::Parser, Debug)]
struct Args {
    /// The SQLite file to use (created and seeded on first start).
    #[arg(long, env = "AIRLOCK_DEMO_DB", value_name = "PATH")]
    db: Option<PathBuf>,
}
