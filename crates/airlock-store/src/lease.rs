//! Engines and task leases: a task is run by one engine at a time. An engine holds a
//! lease per running task and renews them all with a heartbeat; a lease that expired,
//! or whose engine is known dead, can be taken over.
//!
//! A lease given back (the task waits for a person, or a person acted on it) is cleared;
//! one freed because its engine stopped or died is cleared too, but its holder is kept in
//! `lease_left_by`, so whoever claims the task next knows it takes over an interrupted run
//! rather than a task handed over cleanly. (The holder must not stay in `lease_owner`: a
//! stopped engine's heartbeat would renew it.)

use std::collections::HashMap;

use serde::Serialize;
use sqlx::Connection;
use sqlx::sqlite::SqliteRow;

use crate::Millis;
use crate::error::{SqlContext, StoreError};
use crate::open::Store;
use crate::query::{fill_outputs, task_from_row};
use crate::records::TaskRecord;

/// A task an engine has just taken the lease of.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub task: TaskRecord,
    /// The engine whose lease was taken over: it stopped or died while running the task,
    /// so the run is a recovery. `None` when the task had been handed over cleanly.
    pub left_by: Option<String>,
}

/// The claimed rows as records (their outputs not yet read), each with the lease it took
/// over (`left`: the holders as read before, in the same transaction).
fn claims(
    rows: &[SqliteRow],
    left: Vec<(String, Option<String>)>,
    engine_id: &str,
) -> Result<Vec<Claimed>, StoreError> {
    let tasks = rows
        .iter()
        .map(task_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let left: HashMap<String, Option<String>> = left.into_iter().collect();
    Ok(tasks
        .into_iter()
        .map(|task| {
            let left_by = left
                .get(&task.id)
                .cloned()
                .flatten()
                .filter(|owner| owner != engine_id);
            Claimed { task, left_by }
        })
        .collect())
}

/// Reads the claimed tasks' outputs, after the claim's transaction: the write lock is not
/// held for it.
async fn fill(
    conn: &mut sqlx::SqliteConnection,
    claimed: Vec<Claimed>,
) -> Result<Vec<Claimed>, StoreError> {
    let (mut tasks, left): (Vec<TaskRecord>, Vec<Option<String>>) =
        claimed.into_iter().map(|c| (c.task, c.left_by)).unzip();
    fill_outputs(&mut *conn, &mut tasks).await?;
    Ok(tasks
        .into_iter()
        .zip(left)
        .map(|(task, left_by)| Claimed { task, left_by })
        .collect())
}

/// Who an engine is: enough to tell, on the same host, whether its process still lives.
#[derive(Clone, Debug, Serialize)]
pub struct EngineRegistration {
    pub id: String,
    pub host: String,
    pub pid: i64,
    /// The process's start time as the OS reports it, so a reused pid is not mistaken for it.
    pub pid_started: String,
    pub started_at: Millis,
    pub heartbeat_at: Millis,
}

impl Store {
    pub async fn register_engine(&self, reg: &EngineRegistration) -> Result<(), StoreError> {
        let mut w = self.inner.writer.lock().await;
        sqlx::query(
            "INSERT INTO engines (id, host, pid, pid_started, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&reg.id)
        .bind(&reg.host)
        .bind(reg.pid)
        .bind(&reg.pid_started)
        .bind(reg.started_at)
        .bind(reg.heartbeat_at)
        .execute(&mut *w)
        .await
        .ctx("registering the engine")?;
        Ok(())
    }

    pub async fn engines(&self) -> Result<Vec<EngineRegistration>, StoreError> {
        let rows: Vec<(String, String, i64, String, i64, i64)> = sqlx::query_as(
            "SELECT id, host, pid, pid_started, started_at, heartbeat_at FROM engines ORDER BY started_at",
        )
        .fetch_all(&self.inner.reads)
        .await
        .ctx("listing engines")?;
        Ok(rows
            .into_iter()
            .map(
                |(id, host, pid, pid_started, started_at, heartbeat_at)| EngineRegistration {
                    id,
                    host,
                    pid,
                    pid_started,
                    started_at,
                    heartbeat_at,
                },
            )
            .collect())
    }

    /// Removes an engine that is gone (stopped, or found dead) and frees its leases,
    /// noting that it left its tasks mid-run.
    pub async fn forget_engine(&self, engine_id: &str) -> Result<u64, StoreError> {
        let mut w = self.inner.writer.lock().await;
        let freed = sqlx::query(
            "UPDATE tasks SET lease_left_by = lease_owner, lease_owner = NULL, lease_expires_at = NULL
             WHERE lease_owner = ?",
        )
            .bind(engine_id)
            .execute(&mut *w)
            .await
            .ctx("freeing a gone engine's leases")?
            .rows_affected();
        sqlx::query("DELETE FROM engines WHERE id = ?")
            .bind(engine_id)
            .execute(&mut *w)
            .await
            .ctx("forgetting an engine")?;
        Ok(freed)
    }

    /// Renews the engine's heartbeat and every lease it holds. Returns its tasks that
    /// someone asked to cancel, with who asked.
    pub async fn heartbeat(
        &self,
        engine_id: &str,
        now: Millis,
        lease_until: Millis,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut w = self.inner.writer.lock().await;
        sqlx::query("UPDATE engines SET heartbeat_at = ? WHERE id = ?")
            .bind(now)
            .bind(engine_id)
            .execute(&mut *w)
            .await
            .ctx("recording a heartbeat")?;
        sqlx::query("UPDATE tasks SET lease_expires_at = ? WHERE lease_owner = ?")
            .bind(lease_until)
            .bind(engine_id)
            .execute(&mut *w)
            .await
            .ctx("renewing leases")?;
        drop(w);
        sqlx::query_as(
            "SELECT id, cancel_requested FROM tasks WHERE lease_owner = ? AND cancel_requested IS NOT NULL",
        )
        .bind(engine_id)
        .fetch_all(&self.inner.reads)
        .await
        .ctx("reading cancellation requests")
    }

    /// Takes the lease of one unfinished task if nobody live holds it.
    pub async fn claim(
        &self,
        task_id: &str,
        engine_id: &str,
        now: Millis,
        until: Millis,
    ) -> Result<Option<Claimed>, StoreError> {
        let mut w = self.inner.writer.lock().await;
        let mut tx = w
            .begin_with("BEGIN IMMEDIATE")
            .await
            .ctx("beginning a claim")?;
        let left: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT id, coalesce(lease_owner, lease_left_by) FROM tasks WHERE id = ?",
        )
        .bind(task_id)
        .fetch_all(&mut *tx)
        .await
        .ctx("reading a task's lease")?;
        let row: Option<SqliteRow> = sqlx::query(
            "UPDATE tasks SET lease_owner = ?, lease_expires_at = ?, lease_left_by = NULL
             WHERE id = ? AND status NOT IN ('succeeded', 'failed', 'cancelled')
               AND (lease_owner IS NULL OR lease_owner = ? OR lease_expires_at < ?)
             RETURNING *",
        )
        .bind(engine_id)
        .bind(until)
        .bind(task_id)
        .bind(engine_id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .ctx("claiming a task")?;
        let Some(row) = row else { return Ok(None) };
        let claimed = claims(&[row], left, engine_id)?;
        tx.commit().await.ctx("committing a claim")?;
        Ok(fill(&mut w, claimed).await?.pop())
    }

    /// Takes the leases of up to `limit` running tasks that are due and unowned.
    pub async fn claim_runnable(
        &self,
        engine_id: &str,
        now: Millis,
        until: Millis,
        limit: i64,
    ) -> Result<Vec<Claimed>, StoreError> {
        const CLAIMABLE: &str = "SELECT id FROM tasks
            WHERE (status = 'running' AND (wake_at IS NULL OR wake_at <= ?)
                   OR status IN ('waiting_approval', 'in_doubt', 'quarantined') AND cancel_requested IS NOT NULL)
              AND (lease_owner IS NULL OR lease_expires_at < ?)
            ORDER BY updated_at LIMIT ?";
        let mut w = self.inner.writer.lock().await;
        let mut tx = w
            .begin_with("BEGIN IMMEDIATE")
            .await
            .ctx("beginning a claim")?;
        let left: Vec<(String, Option<String>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, coalesce(lease_owner, lease_left_by) FROM tasks WHERE id IN ({CLAIMABLE})"
        )))
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .ctx("reading runnable tasks' leases")?;
        if left.is_empty() {
            return Ok(Vec::new());
        }
        // Exactly the tasks just read, whose leases `left` holds.
        let ids = serde_json::Value::from_iter(left.iter().map(|(id, _)| id.as_str()));
        let rows: Vec<SqliteRow> = sqlx::query(
            "UPDATE tasks SET lease_owner = ?, lease_expires_at = ?, lease_left_by = NULL
             WHERE id IN (SELECT value FROM json_each(?)) RETURNING *",
        )
        .bind(engine_id)
        .bind(until)
        .bind(ids.to_string())
        .fetch_all(&mut *tx)
        .await
        .ctx("claiming runnable tasks")?;
        let claimed = claims(&rows, left, engine_id)?;
        tx.commit().await.ctx("committing a claim")?;
        fill(&mut w, claimed).await
    }

    /// Gives a lease back without changing the task.
    pub async fn release(&self, task_id: &str, engine_id: &str) -> Result<(), StoreError> {
        let mut w = self.inner.writer.lock().await;
        sqlx::query(
            "UPDATE tasks SET lease_owner = NULL, lease_expires_at = NULL WHERE id = ? AND lease_owner = ?",
        )
        .bind(task_id)
        .bind(engine_id)
        .execute(&mut *w)
        .await
        .ctx("releasing a lease")?;
        Ok(())
    }

    /// Asks whoever runs the task to cancel it. False when the task has already ended.
    pub async fn request_cancel(&self, task_id: &str, by: &str) -> Result<bool, StoreError> {
        let mut w = self.inner.writer.lock().await;
        let done = sqlx::query(
            "UPDATE tasks SET cancel_requested = ?
             WHERE id = ? AND status NOT IN ('succeeded', 'failed', 'cancelled')",
        )
        .bind(by)
        .bind(task_id)
        .execute(&mut *w)
        .await
        .ctx("requesting cancellation")?;
        Ok(done.rows_affected() > 0)
    }
}
