//! Several SQL statements written as one unit.
//!
//! A batch is a list of statements and the values they take, in order. A commit runs its
//! batches on the writer's handle directly ([`super::direct`]): each statement is
//! prepared once and kept, then bound and stepped on the committing thread. Other writes
//! send a batch through sqlx as one `query_with` whose text holds every statement
//! separated by `;` (SQLite's driver prepares and steps them in turn, consuming the values
//! in order): one hand-off to sqlx's thread for the whole batch instead of one per
//! statement.
//!
//! Every statement in a batch is portable SQL on its own; a Postgres backend would send
//! the same statements as a pipeline.

use sqlx::error::BoxDynError;
use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, Sqlite};

/// Rows per multi-row statement (a power of two: see [`Batch::padded_values`]); at most 20
/// values each, so far under SQLite's limit of bound values per statement (32,766).
pub(crate) const ROWS_PER_STATEMENT: usize = 512;

/// A value bound to a statement: the store writes only integers, text and NULLs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Arg {
    Null,
    Int(i64),
    Text(String),
}

impl From<i64> for Arg {
    fn from(n: i64) -> Arg {
        Arg::Int(n)
    }
}

impl From<bool> for Arg {
    fn from(b: bool) -> Arg {
        Arg::Int(i64::from(b))
    }
}

impl From<&str> for Arg {
    fn from(text: &str) -> Arg {
        Arg::Text(text.to_owned())
    }
}

impl From<String> for Arg {
    fn from(text: String) -> Arg {
        Arg::Text(text)
    }
}

impl<T: Into<Arg>> From<Option<T>> for Arg {
    fn from(value: Option<T>) -> Arg {
        value.map_or(Arg::Null, Into::into)
    }
}

#[derive(Default)]
pub(crate) struct Batch {
    /// Every statement's text, one after another.
    sql: String,
    /// Where each statement's text ends in `sql`.
    ends: Vec<usize>,
    args: Vec<Arg>,
    /// Rows the statements must change: checked after them, before what follows runs.
    checks: Vec<ChangeCheck>,
}

/// The rows a statement must change, and what it means when it does not.
pub(crate) struct ChangeCheck {
    /// The statement's position in the batch.
    pub after: usize,
    pub expected: usize,
    pub message: String,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Appends one statement, written out whole.
    pub fn statement(&mut self, sql: &str) {
        self.sql.push_str(sql);
        self.end_statement();
    }

    fn end_statement(&mut self) {
        self.ends.push(self.sql.len());
    }

    /// Each statement's text, in order.
    pub fn statements(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| &self.sql[start..end])
    }

    /// The values of every statement, in order.
    pub fn args(&self) -> &[Arg] {
        &self.args
    }

    /// Appends `{head}VALUES (?, …), (?, …){tail}` for `items`, one row of `columns`
    /// values each (bound by `bind`), padded with rows of NULLs up to the next power of
    /// two. The padding keeps the statement to a few shapes whatever the number of rows,
    /// so a batch's text repeats and its prepared statements are reused from the
    /// connection's cache instead of being parsed again (parsing a long `VALUES` list
    /// costs more than stepping through a few rows of NULLs). `head` and `tail` must make
    /// the NULL rows do nothing (`WHERE column1 IS NOT NULL`, or a join on a key).
    pub fn padded_values<T>(
        &mut self,
        head: &str,
        columns: usize,
        tail: &str,
        items: impl IntoIterator<Item = T, IntoIter: ExactSizeIterator>,
        mut bind: impl FnMut(&mut Batch, T),
    ) {
        let items = items.into_iter();
        let rows = items.len();
        debug_assert!(rows > 0 && columns > 0);
        let padded = rows.next_power_of_two();
        self.sql
            .reserve(head.len() + tail.len() + padded * (columns * 3 + 3) + 10);
        self.sql.push_str(head);
        self.sql.push_str("VALUES ");
        for r in 0..padded {
            if r > 0 {
                self.sql.push_str(", ");
            }
            self.sql.push('(');
            for c in 0..columns {
                self.sql.push_str(if c == 0 { "?" } else { ", ?" });
            }
            self.sql.push(')');
        }
        self.sql.push_str(tail);
        self.end_statement();
        let before = self.args.len();
        for item in items {
            bind(self, item);
        }
        debug_assert_eq!(self.args.len() - before, rows * columns, "{head}");
        for _ in 0..(padded - rows) * columns {
            self.bind(None::<i64>);
        }
    }

    /// Appends `{head}?, ?, …{tail}` for an `IN` list of `items`, padded with NULLs (which
    /// match nothing) up to the next power of two, for the reason given above.
    pub fn padded_list<'v>(
        &mut self,
        head: &str,
        tail: &str,
        items: impl IntoIterator<Item = &'v str, IntoIter: ExactSizeIterator>,
    ) {
        let items = items.into_iter();
        let padded = items.len().max(1).next_power_of_two();
        self.sql.push_str(head);
        for i in 0..padded {
            self.sql.push_str(if i == 0 { "?" } else { ", ?" });
        }
        self.sql.push_str(tail);
        self.end_statement();
        let rows = items.len();
        for item in items {
            self.bind(item);
        }
        for _ in rows..padded {
            self.bind(None::<&str>);
        }
    }

    /// Checks that the statement before changed exactly `expected` rows; when it did not,
    /// the batch fails with `message`, before anything after it (the `COMMIT`) runs.
    pub fn expect_changes(&mut self, expected: usize, message: &str) {
        let after = self.ends.len().saturating_sub(1);
        self.checks.push(ChangeCheck {
            after,
            expected,
            message: format!("store invariant broken: {message}"),
        });
    }

    /// The change checks, in statement order.
    pub fn checks(&self) -> &[ChangeCheck] {
        &self.checks
    }

    pub fn bind(&mut self, value: impl Into<Arg>) {
        self.args.push(value.into());
    }

    /// The whole batch as one sqlx query. `persistent` keeps its prepared statements in
    /// the connection's cache (worth it for shapes that repeat).
    pub fn into_query(
        self,
        persistent: bool,
    ) -> Result<Query<'static, Sqlite, SqliteArguments>, BoxDynError> {
        if !self.checks.is_empty() {
            // sqlx cannot look at the rows a statement changed between two statements of
            // one query; a batch with checks runs on the handle directly (`direct.rs`).
            return Err("a batch with change checks runs only on the writer's handle".into());
        }
        let mut args = SqliteArguments::default();
        for arg in self.args {
            match arg {
                Arg::Null => args.add(None::<i64>)?,
                Arg::Int(n) => args.add(n)?,
                Arg::Text(text) => args.add(text)?,
            }
        }
        let mut sql = String::with_capacity(self.sql.len() + 2 * self.ends.len());
        let mut start = 0;
        for end in self.ends {
            sql.push_str(&self.sql[start..end]);
            sql.push_str(";\n");
            start = end;
        }
        Ok(sqlx::query_with(sqlx::AssertSqlSafe(sql), args).persistent(persistent))
    }
}
