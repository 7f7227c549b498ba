//! A commit's statements run straight on the writer's SQLite handle, on the committing
//! thread.
//!
//! sqlx runs each SQLite connection on a thread of its own and sends every statement's
//! result back over a channel as it finishes; the committing task, with nothing else to
//! do, parks in between, so each statement of a commit wakes two threads (measured: ~12
//! wake-ups per commit, most of a step's CPU besides its fsync; docs/benchmarks.md). sqlx
//! lends the handle out (`SqliteConnection::lock_handle`): one hand-off, after which this
//! module prepares, binds and steps the batch's statements itself and the thread only
//! waits for the disk.
//!
//! This is the store's only `unsafe` code: a few calls into SQLite's C API, through the
//! same `libsqlite3-sys` that sqlx links (pinned with it). The invariants it relies on:
//! - Statements are used only while the handle is lent ([`Statements::on`] borrows the
//!   lock), so sqlx's thread never uses the connection at the same time. The writer's
//!   connection is also opened serialized (SQLite then serializes calls on it), which is
//!   what makes finalizing the statements from whichever thread drops the writer safe.
//! - Text is bound without copying, and every binding is cleared before [`Direct::run`]
//!   returns (a guard does it, even on an error or a panic), so no statement keeps a
//!   pointer into a batch that is gone.
//! - Prepared statements are finalized before the connection closes: the writer finalizes
//!   them when it is dropped, before its connection (sqlx's close panics on a handle with
//!   statements left open). They belong to that one connection: [`Statements::on`]
//!   refuses another.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::{CStr, c_int};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use libsqlite3_sys as ffi;
use sqlx::sqlite::LockedSqliteHandle;

use super::batch::{Arg, Batch};

/// Prepared statements kept past one commit; commits take about 130 shapes (a dozen
/// statements, each padded to one of ten row counts: see [`Batch::padded_values`]), so
/// reaching this means something builds unbounded text.
const MAX_PREPARED: usize = 512;

/// A failed SQLite call, with SQLite's own words and the statement it was in.
#[derive(Debug, thiserror::Error)]
#[error("{message} (SQLite error {code}, in `{statement}`)")]
pub struct DirectError {
    pub code: i32,
    pub message: String,
    /// The start of the statement that failed.
    pub statement: String,
}

impl DirectError {
    fn new(code: c_int, message: impl Into<String>, sql: &str) -> DirectError {
        let statement: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        let statement = match statement.char_indices().nth(120) {
            Some((cut, _)) => format!("{}…", &statement[..cut]),
            None => statement,
        };
        DirectError {
            code,
            message: message.into(),
            statement,
        }
    }
}

/// The writer's prepared statements, by their text.
#[derive(Default)]
pub(crate) struct Statements {
    /// The connection they were prepared on.
    db: Option<NonNull<ffi::sqlite3>>,
    prepared: HashMap<Box<str>, NonNull<ffi::sqlite3_stmt>>,
}

// SAFETY: the pointers are only dereferenced (by SQLite) while the handle is lent to the
// holder of the writer's lock, which owns this value; one thread at a time.
unsafe impl Send for Statements {}

impl Statements {
    /// The handle, ready to run batches, for as long as it is lent.
    ///
    /// # Panics
    /// If the handle is not the one the statements were prepared on: they belong to the
    /// writer's one connection, and finalizing them under another would be unsound.
    pub fn on<'a>(&'a mut self, handle: &'a mut LockedSqliteHandle<'_>) -> Direct<'a> {
        let db = handle.as_raw_handle();
        let first = *self.db.get_or_insert(db);
        assert_eq!(
            first, db,
            "prepared statements used with another connection"
        );
        Direct {
            db,
            statements: self,
            _lent: PhantomData,
        }
    }

    pub fn finalize_all(&mut self) {
        for (_, stmt) in self.prepared.drain() {
            // SAFETY: each was prepared on `self.db`, which is still open (see `Drop`),
            // and is finalized once: it leaves the map here.
            unsafe { ffi::sqlite3_finalize(stmt.as_ptr()) };
        }
    }
}

impl Drop for Statements {
    fn drop(&mut self) {
        // The writer has finalized them already, before closing its connection; this is
        // for statements that outlive no connection (tests).
        self.finalize_all();
    }
}

/// The writer's handle while it is lent: runs batches on the calling thread.
pub(crate) struct Direct<'a> {
    db: NonNull<ffi::sqlite3>,
    statements: &'a mut Statements,
    _lent: PhantomData<&'a mut ()>,
}

/// One result row, readable while its statement is stepped.
pub(crate) struct Row {
    stmt: NonNull<ffi::sqlite3_stmt>,
}

impl Row {
    /// Column `i` as an integer; `None` when it is NULL.
    pub fn int(&self, i: c_int) -> Option<i64> {
        // SAFETY: the statement has a current row (we are inside its SQLITE_ROW).
        unsafe {
            match ffi::sqlite3_column_type(self.stmt.as_ptr(), i) {
                ffi::SQLITE_NULL => None,
                _ => Some(ffi::sqlite3_column_int64(self.stmt.as_ptr(), i)),
            }
        }
    }

    /// Column `i` as text; `None` when it is NULL, an error when it is not UTF-8 or SQLite
    /// ran out of memory converting it.
    pub fn text(&self, i: c_int) -> Result<Option<String>, DirectError> {
        // SAFETY: as above; the pointer SQLite returns is valid for `column_bytes` bytes
        // until the next step or reset, and is copied out before either.
        unsafe {
            let stmt = self.stmt.as_ptr();
            if ffi::sqlite3_column_type(stmt, i) == ffi::SQLITE_NULL {
                return Ok(None);
            }
            let text = ffi::sqlite3_column_text(stmt, i);
            let len = usize::try_from(ffi::sqlite3_column_bytes(stmt, i)).unwrap_or(0);
            if text.is_null() {
                return Err(DirectError::new(
                    ffi::SQLITE_NOMEM,
                    format!("column {i} could not be read as text"),
                    "",
                ));
            }
            let bytes = std::slice::from_raw_parts(text, len);
            std::str::from_utf8(bytes)
                .map(|s| Some(s.to_owned()))
                .map_err(|e| DirectError::new(ffi::SQLITE_MISMATCH, format!("column {i}: {e}"), ""))
        }
    }
}

/// Resets a statement and clears its bindings when dropped: after it, the statement holds
/// no pointer into the batch and can be stepped again.
struct Used(NonNull<ffi::sqlite3_stmt>);

impl Drop for Used {
    fn drop(&mut self) {
        // SAFETY: a live statement of the lent connection.
        unsafe {
            ffi::sqlite3_reset(self.0.as_ptr());
            ffi::sqlite3_clear_bindings(self.0.as_ptr());
        }
    }
}

impl Direct<'_> {
    /// Runs the batch's statements in order, binding its arguments to each in turn; every
    /// row any of them returns goes to `on_row`. Stops at the first error (the statements
    /// after it do not run).
    pub fn run<E: From<DirectError>>(
        &mut self,
        batch: &Batch,
        mut on_row: impl FnMut(&Row) -> Result<(), E>,
    ) -> Result<(), E> {
        let args = batch.args();
        let statements: Vec<&str> = batch.statements().collect();
        let mut next = 0;
        for (i, sql) in statements.iter().copied().enumerate() {
            let stmt = Used(self.prepare(sql)?);
            next += self.bind(stmt.0, &args[next.min(args.len())..], sql)?;
            // Checked before the last statement runs: it is usually the `COMMIT`.
            if i + 1 == statements.len() && next != args.len() {
                return Err(E::from(DirectError::new(
                    ffi::SQLITE_MISUSE,
                    format!(
                        "the batch has {} values but its statements take {next}",
                        args.len()
                    ),
                    sql,
                )));
            }
            loop {
                // SAFETY: a live, bound statement of the lent connection.
                match unsafe { ffi::sqlite3_step(stmt.0.as_ptr()) } {
                    ffi::SQLITE_ROW => on_row(&Row { stmt: stmt.0 })?,
                    ffi::SQLITE_DONE => break,
                    code => return Err(self.error(code, sql).into()),
                }
            }
            for check in batch.checks().iter().filter(|c| c.after == i) {
                // SAFETY: the connection is open; this counts the statement just stepped.
                let changed = unsafe { ffi::sqlite3_changes64(self.db.as_ptr()) };
                if usize::try_from(changed).ok() != Some(check.expected) {
                    return Err(E::from(DirectError::new(
                        ffi::SQLITE_CONSTRAINT,
                        format!(
                            "{} ({changed} rows changed, {} expected)",
                            check.message, check.expected
                        ),
                        sql,
                    )));
                }
            }
        }
        Ok(())
    }

    /// Whether a transaction is open on the connection (SQLite is not in autocommit).
    pub fn in_transaction(&self) -> bool {
        // SAFETY: the connection is open.
        unsafe { ffi::sqlite3_get_autocommit(self.db.as_ptr()) == 0 }
    }

    /// Runs one statement that takes no values and returns no rows worth reading.
    pub fn execute(&mut self, sql: &str) -> Result<(), DirectError> {
        let mut batch = Batch::new();
        batch.statement(sql);
        self.run(&batch, |_| Ok::<(), DirectError>(()))
    }

    /// Pages this connection has written to the WAL since it was opened: the disk cost of
    /// its commits (each page is one WAL frame, written and synced).
    pub fn pages_written(&self) -> i64 {
        let (mut current, mut highest) = (0, 0);
        // SAFETY: the connection is open; the out-pointers are valid.
        unsafe {
            ffi::sqlite3_db_status(
                self.db.as_ptr(),
                ffi::SQLITE_DBSTATUS_CACHE_WRITE,
                &mut current,
                &mut highest,
                0,
            );
        }
        i64::from(current)
    }

    fn prepare(&mut self, sql: &str) -> Result<NonNull<ffi::sqlite3_stmt>, DirectError> {
        if let Some(stmt) = self.statements.prepared.get(sql) {
            return Ok(*stmt);
        }
        let len = c_int::try_from(sql.len())
            .map_err(|_| DirectError::new(ffi::SQLITE_TOOBIG, "statement too long", sql))?;
        let mut stmt = ptr::null_mut();
        let mut tail = ptr::null();
        // SAFETY: `sql` is valid for `len` bytes (no NUL needed when the length is given);
        // the out-pointers are valid.
        let code = unsafe {
            ffi::sqlite3_prepare_v3(
                self.db.as_ptr(),
                sql.as_ptr().cast(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                &mut tail,
            )
        };
        if code != ffi::SQLITE_OK {
            return Err(self.error(code, sql));
        }
        let Some(stmt) = NonNull::new(stmt) else {
            return Err(DirectError::new(ffi::SQLITE_MISUSE, "empty statement", sql));
        };
        // SAFETY: `tail` points into `sql` (SQLite sets it to the end of what it parsed).
        let parsed = unsafe { tail.cast::<u8>().offset_from(sql.as_ptr()) };
        let rest = usize::try_from(parsed).ok().and_then(|p| sql.get(p..));
        if rest.is_none_or(|r| {
            !r.trim_matches(|c: char| c == ';' || c.is_whitespace())
                .is_empty()
        }) {
            // SAFETY: just prepared, not cached.
            unsafe { ffi::sqlite3_finalize(stmt.as_ptr()) };
            return Err(DirectError::new(
                ffi::SQLITE_MISUSE,
                "more than one statement in one batch entry",
                sql,
            ));
        }
        if self.statements.prepared.len() >= MAX_PREPARED {
            self.statements.finalize_all();
        }
        self.statements.prepared.insert(sql.into(), stmt);
        Ok(stmt)
    }

    /// Binds the statement's parameters (positional `?` only) from the front of `args`;
    /// returns how many it took.
    fn bind(
        &self,
        stmt: NonNull<ffi::sqlite3_stmt>,
        args: &[Arg],
        sql: &str,
    ) -> Result<usize, DirectError> {
        let stmt_ptr = stmt.as_ptr();
        // SAFETY: a live statement of the lent connection.
        let count = unsafe { ffi::sqlite3_bind_parameter_count(stmt_ptr) };
        let count = usize::try_from(count).unwrap_or(0);
        if count > args.len() {
            return Err(DirectError::new(
                ffi::SQLITE_RANGE,
                format!(
                    "the statement takes {count} values, {} are left",
                    args.len()
                ),
                sql,
            ));
        }
        for (i, arg) in args[..count].iter().enumerate() {
            let index = c_int::try_from(i + 1).unwrap_or(c_int::MAX);
            // SAFETY: `index` is within the statement's parameters. Text is bound without
            // a copy (SQLITE_STATIC): it lives in the batch, which outlives the statement's
            // use, and `Used` clears the binding before `run` returns.
            let code = unsafe {
                match arg {
                    Arg::Null => ffi::sqlite3_bind_null(stmt_ptr, index),
                    Arg::Int(n) => ffi::sqlite3_bind_int64(stmt_ptr, index, *n),
                    Arg::Text(text) => match c_int::try_from(text.len()) {
                        Ok(len) => ffi::sqlite3_bind_text(
                            stmt_ptr,
                            index,
                            text.as_ptr().cast(),
                            len,
                            ffi::SQLITE_STATIC(),
                        ),
                        Err(_) => {
                            return Err(DirectError::new(
                                ffi::SQLITE_TOOBIG,
                                format!("value {index} is longer than SQLite can bind"),
                                sql,
                            ));
                        }
                    },
                }
            };
            if code != ffi::SQLITE_OK {
                return Err(self.error(code, sql));
            }
        }
        Ok(count)
    }

    fn error(&self, code: c_int, sql: &str) -> DirectError {
        // SAFETY: the connection is open; SQLite's message is NUL-terminated and copied
        // before any other call on the connection.
        let message = unsafe {
            let text = ffi::sqlite3_errmsg(self.db.as_ptr());
            if text.is_null() {
                String::from("unknown error")
            } else {
                CStr::from_ptr(text).to_string_lossy().into_owned()
            }
        };
        DirectError::new(code, message, sql)
    }
}

#[cfg(test)]
mod tests {
    use sqlx::{ConnectOptions, SqliteConnection};

    use super::*;

    async fn connection() -> SqliteConnection {
        sqlx::sqlite::SqliteConnectOptions::new()
            .in_memory(true)
            .serialized(true)
            .connect()
            .await
            .expect("connect")
    }

    fn two_inserts_and_a_read() -> Batch {
        let mut batch = Batch::new();
        batch.statement("CREATE TABLE IF NOT EXISTS t (n INTEGER, s TEXT)");
        batch.statement("INSERT INTO t VALUES (?, ?)");
        batch.bind(1_i64);
        batch.bind("one");
        batch.statement("INSERT INTO t VALUES (?, ?)");
        batch.bind(2_i64);
        batch.bind(None::<&str>);
        batch.statement("SELECT n, s FROM t ORDER BY n");
        batch
    }

    #[tokio::test]
    async fn runs_statements_in_order_binding_values_and_reading_rows() {
        let mut conn = connection().await;
        let mut statements = Statements::default();
        let mut handle = conn.lock_handle().await.expect("lend");
        let mut db = statements.on(&mut handle);
        let mut rows = Vec::new();
        db.run(&two_inserts_and_a_read(), |row| {
            rows.push((row.int(0), row.text(1).expect("utf-8")));
            Ok::<(), DirectError>(())
        })
        .expect("run");
        assert_eq!(rows, [(Some(1), Some("one".to_owned())), (Some(2), None)]);
        // The same text again reuses what was prepared.
        let prepared = db.statements.prepared.len();
        db.run(&two_inserts_and_a_read(), |_| Ok::<(), DirectError>(()))
            .expect("run again");
        assert_eq!(db.statements.prepared.len(), prepared);
    }

    #[tokio::test]
    async fn an_error_names_the_statement_and_stops_the_batch() {
        let mut conn = connection().await;
        let mut statements = Statements::default();
        let mut handle = conn.lock_handle().await.expect("lend");
        let mut db = statements.on(&mut handle);
        let mut batch = Batch::new();
        batch.statement("CREATE TABLE u (id TEXT PRIMARY KEY)");
        batch.statement("INSERT INTO u VALUES (?), (?)");
        batch.bind("same");
        batch.bind("same");
        batch.statement("INSERT INTO u VALUES ('after')");
        let err = db
            .run(&batch, |_| Ok::<(), DirectError>(()))
            .expect_err("duplicate key");
        assert!(
            err.message.contains("UNIQUE constraint failed: u.id"),
            "{err}"
        );
        assert!(
            err.statement.starts_with("INSERT INTO u VALUES (?), (?)"),
            "{err}"
        );
        let mut count = None;
        let mut read = Batch::new();
        read.statement("SELECT count(*) FROM u WHERE id = 'after'");
        db.run(&read, |row| {
            count = row.int(0);
            Ok::<(), DirectError>(())
        })
        .expect("read");
        assert_eq!(count, Some(0), "the statement after the error did not run");
    }

    #[tokio::test]
    async fn a_statement_that_changes_other_than_the_rows_expected_stops_the_batch() {
        let mut conn = connection().await;
        let mut statements = Statements::default();
        let mut handle = conn.lock_handle().await.expect("lend");
        let mut db = statements.on(&mut handle);
        let mut batch = Batch::new();
        batch.statement("CREATE TABLE w (n INTEGER)");
        batch.statement("INSERT INTO w VALUES (1), (2)");
        batch.expect_changes(2, "two rows go in");
        batch.statement("UPDATE w SET n = 3 WHERE n = 9");
        batch.expect_changes(1, "the row to move was there");
        batch.statement("INSERT INTO w VALUES (4)");
        let err = db
            .run(&batch, |_| Ok::<(), DirectError>(()))
            .expect_err("the update changed nothing");
        assert!(
            err.message
                == "store invariant broken: the row to move was there (0 rows changed, 1 expected)",
            "{err}"
        );
        let mut count = Batch::new();
        count.statement("SELECT count(*) FROM w");
        let mut rows = None;
        db.run(&count, |row| {
            rows = row.int(0);
            Ok::<(), DirectError>(())
        })
        .expect("count");
        assert_eq!(
            rows,
            Some(2),
            "the statement after the failed check did not run"
        );
    }

    #[tokio::test]
    async fn values_that_do_not_match_the_statements_are_refused() {
        let mut conn = connection().await;
        let mut statements = Statements::default();
        let mut handle = conn.lock_handle().await.expect("lend");
        let mut db = statements.on(&mut handle);

        let mut too_few = Batch::new();
        too_few.statement("SELECT ?, ?");
        too_few.bind(1_i64);
        let err = db
            .run(&too_few, |_| Ok::<(), DirectError>(()))
            .expect_err("too few");
        assert!(err.message.contains("takes 2 values, 1 are left"), "{err}");

        let mut too_many = Batch::new();
        too_many.statement("SELECT ?");
        too_many.bind(1_i64);
        too_many.bind(2_i64);
        let err = db
            .run(&too_many, |_| Ok::<(), DirectError>(()))
            .expect_err("too many");
        assert!(
            err.message
                .contains("has 2 values but its statements take 1"),
            "{err}"
        );

        // Found before the last statement runs (in a commit, the `COMMIT`).
        let mut last_not_run = Batch::new();
        last_not_run.statement("CREATE TABLE v (n INTEGER)");
        last_not_run.statement("INSERT INTO v VALUES (?)");
        last_not_run.bind(1_i64);
        last_not_run.bind(2_i64);
        db.run(&last_not_run, |_| Ok::<(), DirectError>(()))
            .expect_err("too many");
        let mut count = Batch::new();
        count.statement("SELECT count(*) FROM v");
        let mut rows = None;
        db.run(&count, |row| {
            rows = row.int(0);
            Ok::<(), DirectError>(())
        })
        .expect("count");
        assert_eq!(rows, Some(0));

        let mut two_in_one = Batch::new();
        two_in_one.statement("SELECT 1; SELECT 2");
        let err = db
            .run(&two_in_one, |_| Ok::<(), DirectError>(()))
            .expect_err("two");
        assert!(err.message.contains("more than one statement"), "{err}");
    }
}
