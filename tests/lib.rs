//! Support for end-to-end tests and benchmarks that drive the real `airlock` binary:
//! a sandbox folder with its own database and effects file, commands preconfigured to
//! use them, and readers for what the built-in tools really did.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

/// A throwaway place for one test: `airlock.sqlite`, `effects.sqlite`, workflow files.
/// The policy of `workspace/examples`.
pub const EXAMPLES_POLICY: &str = include_str!("../workspace/examples/policy.toml");

pub struct Sandbox {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl Sandbox {
    /// `bin` is the `airlock` binary under test (`env!("CARGO_BIN_EXE_airlock")`).
    /// The sandbox starts with the example workspace's policy beside its database (the
    /// policy in force when no other is named); a test may overwrite it.
    pub fn new(bin: impl Into<PathBuf>) -> std::io::Result<Sandbox> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("policy.toml"), EXAMPLES_POLICY)?;
        Ok(Sandbox {
            dir,
            bin: bin.into(),
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("airlock.sqlite")
    }

    pub fn effects_db(&self) -> PathBuf {
        self.dir.path().join("effects.sqlite")
    }

    pub fn write(&self, name: &str, text: &str) -> std::io::Result<PathBuf> {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// `airlock <args>` against this sandbox's files, with quiet logs.
    pub fn airlock<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env("AIRLOCK_DB", self.db())
            .env("AIRLOCK_EFFECTS_DB", self.effects_db())
            .env("AIRLOCK_LOG", "error")
            .env_remove("AIRLOCK_WORKSPACE")
            .env_remove("AIRLOCK_POLICY")
            .env_remove("AIRLOCK_IDENTITIES");
        cmd
    }

    /// Runs `airlock <args> --json` to completion and parses what it printed.
    pub fn json<I, S>(&self, args: I) -> Result<(Option<i32>, Value), String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let out: Output = self
            .airlock(args)
            .arg("--json")
            .output()
            .map_err(|e| e.to_string())?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let value = serde_json::from_str(&stdout).map_err(|e| {
            format!(
                "output is not JSON ({e}): {stdout}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        Ok((out.status.code(), value))
    }

    /// Rows the built-in `record` tool wrote, as (idempotency key, count).
    pub async fn record_effects(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        let mut conn = SqliteConnection::connect_with(
            &SqliteConnectOptions::new()
                .filename(self.effects_db())
                .read_only(true),
        )
        .await?;
        let rows = sqlx::query_as(
            "SELECT idempotency_key, COUNT(*) FROM effects WHERE tool = 'record' GROUP BY idempotency_key",
        )
        .fetch_all(&mut conn)
        .await?;
        conn.close().await?;
        Ok(rows)
    }
}

/// What a command printed, standard output then standard error: for assertions and their
/// messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
