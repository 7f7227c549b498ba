//! Checkpoints off the commit path.
//!
//! With SQLite's automatic checkpoints, the commit that pushes the WAL past the threshold
//! also copies the WAL's pages into the database file and syncs it, so every few hundred
//! steps one step waits for tens of megabytes to reach the disk. The writer connection
//! therefore never checkpoints; this task does, on a connection of its own, with a
//! PASSIVE checkpoint (it takes no lock a writer or a reader waits for) soon after the
//! writes that grew the WAL. Its sync runs beside the next commits instead of inside one.

use std::time::Duration;

use sqlx::SqliteConnection;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The least time between two checkpoints: writes in between are copied by one.
const MIN_INTERVAL: Duration = Duration::from_millis(250);

/// Wakes the checkpointer after writes; wakes while it is busy coalesce into one.
#[derive(Clone)]
pub(crate) struct CheckpointNudge(mpsc::Sender<()>);

impl CheckpointNudge {
    pub fn after_write(&self) {
        // Full: a wake-up is already pending, and it will see these frames too.
        let _ = self.0.try_send(());
    }
}

/// Starts the checkpointer on `conn`; it stops when every nudge is dropped (the store is).
pub(crate) fn spawn_checkpointer(conn: SqliteConnection) -> CheckpointNudge {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(run(conn, rx));
    CheckpointNudge(tx)
}

async fn run(mut conn: SqliteConnection, mut wakes: mpsc::Receiver<()>) {
    let mut last: Option<Instant> = None;
    while wakes.recv().await.is_some() {
        if let Some(at) = last {
            tokio::time::sleep_until(at + MIN_INTERVAL).await;
        }
        last = Some(Instant::now());
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut conn)
            .await
        {
            Ok((busy, frames, copied)) => {
                tracing::trace!(busy, frames, copied, "checkpoint");
            }
            // The next write wakes it again; the WAL only grows until a checkpoint works.
            Err(e) => tracing::warn!(error = %e, "checkpoint failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::open::{Store, StoreOptions};

    /// Commits never checkpoint, so the database file grows only if the checkpointer
    /// copies the WAL into it.
    #[tokio::test]
    async fn writes_reach_the_database_file_without_a_commit_checkpointing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("airlock.sqlite");
        let store = Store::open(StoreOptions::new(&path), 0)
            .await
            .expect("open store");
        let body = "x".repeat(10_000);
        for i in 0..200 {
            store
                .register_workflow(&format!("wf{i}"), &format!("h{i}"), &body, None, i)
                .await
                .expect("register workflow");
        }
        let size = || std::fs::metadata(&path).map_or(0, |m| m.len());
        let mut waited = Duration::ZERO;
        while size() < 2_000_000 && waited < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += Duration::from_millis(50);
        }
        assert!(
            size() >= 2_000_000,
            "the database file is {} bytes after 2 MB of writes: nothing was checkpointed",
            size()
        );
    }
}
