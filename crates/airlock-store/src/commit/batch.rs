//! Several SQL statements sent to the writer connection as one.
//!
//! sqlx runs each SQLite connection on a worker thread, and every statement sent to it is
//! a hand-off between threads (a message and a reply, each waking a thread). A batch is
//! one `query_with` whose text holds many statements separated by `;`: SQLite's driver
//! prepares and steps them one after another on the worker, consuming the bound arguments
//! in order, so the whole batch costs one hand-off.
//!
//! This is the SQLite writer's own trick (sqlx calls multi-statement prepared queries a
//! SQLite-only behaviour; the version is pinned). Every statement in a batch is portable
//! SQL on its own; a Postgres backend would send the same statements as a pipeline.

use sqlx::error::BoxDynError;
use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, Encode, Sqlite, Type};

/// Rows per multi-row statement (a power of two: see [`Batch::padded_values`]); at most 20
/// values each, so far under SQLite's limit of bound values per statement (32,766).
pub(crate) const ROWS_PER_STATEMENT: usize = 512;

#[derive(Default)]
pub(crate) struct Batch {
    sql: String,
    args: SqliteArguments,
    /// The first value that could not be encoded (none of the store's types can fail).
    error: Option<BoxDynError>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Appends one statement, written out whole.
    pub fn statement(&mut self, sql: &str) {
        self.sql.push_str(sql);
        self.sql.push_str(";\n");
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
        self.sql.push_str(";\n");
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
        self.sql.push_str(";\n");
        let rows = items.len();
        for item in items {
            self.bind(item);
        }
        for _ in rows..padded {
            self.bind(None::<&str>);
        }
    }

    /// Appends a check that the statement before it changed exactly `expected` rows; when
    /// it did not, the check fails with `message`, which ends the batch before anything
    /// after it (the `COMMIT`) runs. SQLite has no `RAISE` outside triggers, so the error
    /// comes from `json_extract` given a path that is not one: the message is the path.
    pub fn expect_changes(&mut self, expected: usize, message: &str) {
        self.statement("SELECT json_extract('{}', CASE WHEN changes() = ? THEN '$' ELSE ? END)");
        self.bind(i64::try_from(expected).unwrap_or(i64::MAX));
        self.bind(format!("store invariant broken: {message}"));
    }

    pub fn bind<'t, T>(&mut self, value: T)
    where
        T: Encode<'t, Sqlite> + Type<Sqlite>,
    {
        if let Err(e) = self.args.add(value) {
            self.error.get_or_insert(e);
        }
    }

    /// The whole batch as one query. `persistent` keeps its prepared statements in the
    /// connection's cache (worth it for shapes that repeat).
    pub fn into_query(
        self,
        persistent: bool,
    ) -> Result<Query<'static, Sqlite, SqliteArguments>, BoxDynError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        Ok(sqlx::query_with(sqlx::AssertSqlSafe(self.sql), self.args).persistent(persistent))
    }
}
