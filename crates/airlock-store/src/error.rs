//! Store errors, each with the operation that failed.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database at {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot create the folder {path} for the database: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("migrating the database to version {version} failed: {source}")]
    Migrate {
        version: i64,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the database was written by a newer Airlock (schema version {found}, this build knows {known})"
    )]
    TooNew { found: i64, known: i64 },
    #[error("{what}: {source}")]
    Sql {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// A statement run on the writer's handle directly failed.
    #[error("{what}: {source}")]
    Sqlite {
        what: &'static str,
        #[source]
        source: crate::commit::DirectError,
    },
    #[error("{what}: stored value is not valid: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("the store's writer has stopped")]
    WriterGone,
    #[error("the memory search `{search}` is not valid full-text search syntax ({detail})")]
    BadSearch { search: String, detail: String },
}

impl StoreError {
    /// Whether SQLite gave up waiting for another connection's lock on the database.
    pub fn is_busy(&self) -> bool {
        const SQLITE_BUSY: i32 = 5;
        match self {
            // Extended result codes keep the primary code in their low byte.
            StoreError::Sqlite { source, .. } => source.code & 0xff == SQLITE_BUSY,
            StoreError::Sql { source, .. } => sqlx_busy(source),
            _ => false,
        }
    }
}

/// Whether sqlx's error is SQLite's "database is locked" (`SQLITE_BUSY`, or an extended
/// code of it).
pub(crate) fn sqlx_busy(e: &sqlx::Error) -> bool {
    const SQLITE_BUSY: i32 = 5;
    e.as_database_error()
        .and_then(|e| e.code())
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| code & 0xff == SQLITE_BUSY)
}

/// Attaches the name of the operation to a sqlx error.
pub(crate) trait SqlContext<T> {
    fn ctx(self, what: &'static str) -> Result<T, StoreError>;
}

impl<T> SqlContext<T> for Result<T, sqlx::Error> {
    fn ctx(self, what: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sql { what, source })
    }
}

impl From<crate::commit::DirectError> for StoreError {
    fn from(source: crate::commit::DirectError) -> StoreError {
        StoreError::Sqlite {
            what: "committing on the writer's handle",
            source,
        }
    }
}
