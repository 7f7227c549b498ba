//! Embedded migrations: the SQL files in `migrations/` compiled into the binary and
//! applied in order, each in its own transaction, recorded in `schema_migrations`.

use sqlx::{Connection, SqliteConnection};

use crate::error::{SqlContext, StoreError};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_tool_pins.sql")),
    (3, include_str!("../migrations/0003_task_outputs.sql")),
    (4, include_str!("../migrations/0004_policy.sql")),
    (5, include_str!("../migrations/0005_audit.sql")),
    (6, include_str!("../migrations/0006_ratings.sql")),
    (7, include_str!("../migrations/0007_memory.sql")),
    (8, include_str!("../migrations/0008_lessons.sql")),
    (9, include_str!("../migrations/0009_tool_calls_index.sql")),
    (10, include_str!("../migrations/0010_metrics_tallies.sql")),
    (11, include_str!("../migrations/0011_call_history.sql")),
    (12, include_str!("../migrations/0012_refused_calls.sql")),
    (13, include_str!("../migrations/0013_refused_index.sql")),
    (14, include_str!("../migrations/0014_audit_seq_rowid.sql")),
    (15, include_str!("../migrations/0015_ledger_tools.sql")),
    (16, include_str!("../migrations/0016_withdrawn.sql")),
    (17, include_str!("../migrations/0017_lease_left_by.sql")),
];

pub(crate) async fn migrate(conn: &mut SqliteConnection, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await
    .ctx("creating the migrations table")?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(&mut *conn)
        .await
        .ctx("reading the schema version")?;
    let current = applied.iter().copied().max().unwrap_or(0);
    // The highest known, not the last listed: migrations may land out of order.
    let known = MIGRATIONS.iter().map(|(v, _)| *v).max().unwrap_or(0);
    if current > known {
        return Err(StoreError::TooNew {
            found: current,
            known,
        });
    }
    // Every migration not yet applied, in order — not only those above the highest
    // applied one, so a migration that landed after a higher-numbered one still runs.
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| !applied.contains(v)) {
        match rebuilt_tables(sql) {
            Some(tables) => {
                // Only outside a transaction does this pragma take effect.
                set_foreign_keys(conn, *version, false).await?;
                let applied = apply(conn, *version, sql, now, Some(&tables)).await;
                let restored = set_foreign_keys(conn, *version, true).await;
                // The migration's own error says more than the pragma's.
                applied?;
                restored?;
            }
            None => apply(conn, *version, sql, now, None).await?,
        }
    }
    Ok(())
}

/// How a migration that rebuilds tables begins, followed by their names: it runs with
/// foreign keys off, and `PRAGMA foreign_key_check` must find nothing wrong with those
/// tables' references before its commit (SQLite's procedure for schema changes ALTER
/// TABLE cannot make).
const REBUILDS: &str = "-- airlock: rebuilds ";

async fn set_foreign_keys(
    conn: &mut SqliteConnection,
    version: i64,
    on: bool,
) -> Result<(), StoreError> {
    let sql = if on {
        "PRAGMA foreign_keys = ON"
    } else {
        "PRAGMA foreign_keys = OFF"
    };
    sqlx::query(sql)
        .execute(&mut *conn)
        .await
        .map(drop)
        .map_err(|source| StoreError::Migrate { version, source })
}

/// Applies one migration in its own transaction, unless another process applied it first.
async fn apply(
    conn: &mut SqliteConnection,
    version: i64,
    sql: &str,
    now: i64,
    rebuilt: Option<&[&str]>,
) -> Result<(), StoreError> {
    let fail = |source| StoreError::Migrate { version, source };
    // IMMEDIATE: the write lock before reading, so that another process opening the
    // same new file waits here (busy_timeout) rather than both running the same
    // migration; whoever comes second finds it applied and skips it.
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(fail)?;
    let done: Option<i64> =
        sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = ?")
            .bind(version)
            .fetch_optional(&mut *tx)
            .await
            .map_err(fail)?;
    if done.is_some() {
        tx.rollback().await.map_err(fail)?;
        return Ok(());
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    if let Some(tables) = rebuilt {
        let broken: Vec<(String, Option<i64>, String)> =
            // The tables a rebuild touched and those referring to them, not the whole
            // file: an old dangling reference elsewhere must not stop every open.
            sqlx::query_as(
                "SELECT \"table\", rowid, parent FROM pragma_foreign_key_check
                 WHERE \"table\" IN (SELECT value FROM json_each(?1))
                    OR parent IN (SELECT value FROM json_each(?1))",
            )
            .bind(serde_json::to_string(tables).unwrap_or_else(|_| "[]".into()))
            .fetch_all(&mut *tx)
            .await
            .map_err(fail)?;
        if let Some((table, rowid, parent)) = broken.first() {
            // Dropped with the transaction: the file stays as it was.
            return Err(StoreError::Corrupt {
                what: "a migration",
                detail: format!(
                    "migration {version} would leave {} row(s) referring to rows that do not exist (first: {table} row {} refers to {parent})",
                    broken.len(),
                    rowid.map_or_else(|| "?".to_owned(), |r| r.to_string()),
                ),
            });
        }
    }
    sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
        .bind(version)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    tx.commit().await.map_err(fail)
}

/// The tables a migration says on its first line that it rebuilds ([`REBUILDS`]).
fn rebuilt_tables(sql: &str) -> Option<Vec<&str>> {
    let first = sql.lines().next()?;
    let names = first.strip_prefix(REBUILDS)?;
    Some(names.split_whitespace().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebuild_names_its_tables_on_its_first_line() {
        let sql = MIGRATIONS
            .iter()
            .find(|(v, _)| *v == 16)
            .map(|(_, sql)| *sql)
            .expect("0016");
        assert_eq!(rebuilt_tables(sql), Some(vec!["approvals", "tool_calls"]));
        assert_eq!(rebuilt_tables("CREATE TABLE a (x);"), None);
    }
}
