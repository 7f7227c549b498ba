//! The one connection a process writes through, and who may use it when.
//!
//! A write of several statements that stops half-way (a future dropped between the
//! statements of a sqlx batch, or a panic in a commit run on the handle directly) can
//! leave a transaction open on the connection. Such a write marks the connection before
//! it starts and unmarks it when it is done, and whoever takes the connection next rolls
//! the leftover back first, so no later statement ever runs inside another's unfinished
//! transaction.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sqlx::SqliteConnection;
use tokio::sync::{Mutex, MutexGuard};

use crate::commit::Statements;

pub(crate) struct Writer {
    conn: Mutex<WriterConn>,
    /// A multi-statement write on the connection did not finish.
    unfinished: AtomicBool,
    /// Task commits between their submission and their outcome.
    commits_in_flight: AtomicUsize,
}

/// The connection and the statements prepared on its handle directly.
struct WriterConn {
    statements: Statements,
    conn: SqliteConnection,
}

impl Drop for WriterConn {
    fn drop(&mut self) {
        // Before the connection closes (its fields drop after this): sqlx's close panics
        // on a handle with statements left open.
        self.statements.finalize_all();
    }
}

pub(crate) struct WriterGuard<'a> {
    conn: MutexGuard<'a, WriterConn>,
    writer: &'a Writer,
}

impl Writer {
    pub fn new(conn: SqliteConnection) -> Writer {
        Writer {
            conn: Mutex::new(WriterConn {
                statements: Statements::default(),
                conn,
            }),
            unfinished: AtomicBool::new(false),
            commits_in_flight: AtomicUsize::new(0),
        }
    }

    /// Waits for the connection (in turn: the lock is fair).
    pub async fn lock(&self) -> WriterGuard<'_> {
        let mut guard = WriterGuard {
            conn: self.conn.lock().await,
            writer: self,
        };
        if self.unfinished.load(Ordering::Acquire) {
            // An error only means no transaction was open (the write got to its end).
            let _ = sqlx::raw_sql("ROLLBACK")
                .execute(&mut guard.conn.conn)
                .await;
            self.unfinished.store(false, Ordering::Release);
        }
        guard
    }

    /// The connection if nobody holds it or waits for it, and no write was left
    /// unfinished on it.
    pub fn try_lock(&self) -> Option<WriterGuard<'_>> {
        let conn = self.conn.try_lock().ok()?;
        if self.unfinished.load(Ordering::Acquire) {
            return None;
        }
        Some(WriterGuard { conn, writer: self })
    }

    /// Counts a task commit from its submission until it is dropped; `true` when no
    /// other commit was in flight.
    pub fn enter_commit(&self) -> (InFlight<'_>, bool) {
        let before = self.commits_in_flight.fetch_add(1, Ordering::AcqRel);
        (InFlight(self), before == 0)
    }
}

impl<'a> WriterGuard<'a> {
    /// The connection, the statements prepared on its handle (for [`Statements::on`]),
    /// and the writer, to mark a write unfinished while it runs.
    pub fn parts(&mut self) -> (&mut SqliteConnection, &mut Statements, Unfinished<'a>) {
        let WriterConn { statements, conn } = &mut *self.conn;
        (conn, statements, Unfinished(&self.writer.unfinished))
    }
}

/// The mark of a write of several statements under way: until [`Self::write_done`], the
/// next holder of the connection rolls back what the write may have left open.
pub(crate) struct Unfinished<'a>(&'a AtomicBool);

impl Unfinished<'_> {
    pub fn write_starts(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn write_done(&self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Deref for WriterGuard<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.conn.conn
    }
}

impl DerefMut for WriterGuard<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn.conn
    }
}

/// One task commit in flight (see [`Writer::enter_commit`]).
pub(crate) struct InFlight<'a>(&'a Writer);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.commits_in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
