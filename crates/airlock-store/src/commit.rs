//! Task commits: everything one transition writes (events, the task's projection, steps,
//! ledger rows, approvals) made durable atomically, guarded by the sequence number the
//! engine last saw and by its lease. Concurrent commits are grouped into one transaction
//! by a single writer, so many tasks share one fsync.

use std::sync::Arc;

use serde_json::Value;
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::Millis;
use crate::error::{SqlContext, StoreError};
use crate::open::Store;
use crate::records::{ApprovalStatus, HeldCall, NewEvent, TaskProjection, ToolCallOutcome};

/// Most commits one transaction takes; bounds the latency of the first in line.
const MAX_GROUP: usize = 256;

#[derive(Clone, Debug)]
pub struct NewTask {
    pub workflow_id: i64,
    pub workflow_name: String,
    pub requester: String,
    pub inputs: Value,
}

#[derive(Clone, Debug)]
pub enum StepWrite {
    /// A step begins, or a new attempt of it begins.
    Start {
        step_no: i64,
        state_name: String,
        kind: String,
        attempt: i64,
    },
    End {
        step_no: i64,
        outcome: String,
        error: Option<String>,
    },
}

#[derive(Clone, Debug)]
pub enum ToolCallWrite {
    /// Written before the call is made.
    Intent {
        id: String,
        step_no: i64,
        attempt: i64,
        call_index: i64,
        tool: String,
        args: Value,
        args_hash: String,
        idempotency_key: String,
        idempotent: bool,
    },
    /// Written after the call returned (or when a person resolved an in-doubt call).
    Outcome {
        id: String,
        outcome: ToolCallOutcome,
        result: Option<Value>,
        error: Option<String>,
        resolved_by: Option<String>,
    },
}

#[derive(Clone, Debug)]
pub enum ApprovalWrite {
    Request {
        id: String,
        step_no: i64,
        state_name: String,
        prompt: String,
        approvers: Vec<String>,
        expires_at: Option<Millis>,
        tool_call_id: Option<String>,
        args_hash: Option<String>,
        policy_version: Option<String>,
        held_call: Option<Box<HeldCall>>,
    },
    /// Only a pending approval can be decided; deciding twice is a conflict.
    Decide { id: String, status: ApprovalStatus },
}

/// One transition of one task.
#[derive(Clone, Debug)]
pub struct TaskCommit {
    pub task_id: String,
    pub at: Millis,
    /// The `last_seq` the engine saw; 0 for a new task.
    pub expected_seq: i64,
    /// When set, the commit only lands while this engine holds the task's lease.
    pub lease_owner: Option<String>,
    pub create: Option<NewTask>,
    pub events: Vec<NewEvent>,
    /// The task's position. Its `state` is not written: outputs are, one row each, below.
    pub projection: TaskProjection,
    /// The outputs this transition set, by state name.
    pub outputs: Vec<(String, Value)>,
    pub steps: Vec<StepWrite>,
    pub tool_calls: Vec<ToolCallWrite>,
    pub approvals: Vec<ApprovalWrite>,
    /// Give up the lease in the same transaction (the task now waits for a person or ended).
    pub release_lease: bool,
}

/// A commit either landed, or was refused without writing anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed {
        last_seq: i64,
    },
    /// Someone else appended first: the engine's view is stale.
    StaleSequence {
        expected: i64,
        found: i64,
    },
    LeaseLost {
        holder: Option<String>,
    },
    TaskMissing,
    TaskExists,
    ApprovalAlreadyDecided {
        id: String,
    },
}

pub(crate) struct Pending {
    commit: TaskCommit,
    reply: oneshot::Sender<Result<CommitOutcome, StoreError>>,
}

impl Store {
    /// Makes one transition durable. Returns once it is on disk (or refused).
    pub async fn commit(&self, commit: TaskCommit) -> Result<CommitOutcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .commits
            .send(Pending { commit, reply })
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }
}

pub(crate) async fn run_writer(
    conn: Arc<Mutex<SqliteConnection>>,
    mut rx: mpsc::UnboundedReceiver<Pending>,
) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(p) => group.push(p),
                Err(_) => break,
            }
        }
        let mut conn = conn.lock().await;
        let commits: Vec<&TaskCommit> = group.iter().map(|p| &p.commit).collect();
        match write_group(&mut conn, &commits).await {
            Ok(outcomes) => {
                for (pending, outcome) in group.into_iter().zip(outcomes) {
                    let _ = pending.reply.send(Ok(outcome));
                }
            }
            Err(e) if group.len() > 1 => {
                // One bad commit must not sink the others: write each on its own.
                tracing::warn!(error = %e, commits = group.len(), "group commit failed; writing one by one");
                for pending in group {
                    let result = write_group(&mut conn, &[&pending.commit])
                        .await
                        .map(|mut o| o.remove(0));
                    let _ = pending.reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "commit failed");
                for pending in group {
                    let _ = pending.reply.send(Err(StoreError::Corrupt {
                        what: "committing a transition",
                        detail: e.to_string(),
                    }));
                }
            }
        }
    }
}

/// Writes the commits in one transaction (one fsync). Each commit is checked before any
/// of its rows is written, so a refused one writes nothing and needs no savepoint (a
/// savepoint makes SQLite journal every page it touches).
async fn write_group(
    conn: &mut SqliteConnection,
    commits: &[&TaskCommit],
) -> Result<Vec<CommitOutcome>, StoreError> {
    // IMMEDIATE takes the write lock up front (waiting on busy_timeout if another
    // process holds it); a deferred transaction that reads first cannot wait and fails.
    let mut tx = conn
        .begin_with("BEGIN IMMEDIATE")
        .await
        .ctx("beginning a commit")?;
    let mut outcomes = Vec::with_capacity(commits.len());
    let mut audit = Vec::new();
    for commit in commits {
        let outcome = write_one(&mut tx, commit).await?;
        if matches!(outcome, CommitOutcome::Committed { .. }) {
            crate::audit::entries_of(commit, &mut audit);
        }
        outcomes.push(outcome);
    }
    // Chained onto the head read under this transaction's write lock, so it lands (or
    // rolls back) with the events, and a retry one by one re-reads the head.
    crate::audit::append_entries(&mut tx, &audit).await?;
    tx.commit().await.ctx("committing")?;
    Ok(outcomes)
}

async fn write_one(
    conn: &mut SqliteConnection,
    c: &TaskCommit,
) -> Result<CommitOutcome, StoreError> {
    let p = &c.projection;
    let new_seq = c.expected_seq + c.events.len() as i64;
    for approval in &c.approvals {
        if let ApprovalWrite::Decide { id, .. } = approval {
            let pending: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM approvals WHERE id = ? AND task_id = ? AND status = 'pending'",
            )
            .bind(id)
            .bind(&c.task_id)
            .fetch_optional(&mut *conn)
            .await
            .ctx("checking an approval is pending")?;
            if pending.is_none() {
                return Ok(CommitOutcome::ApprovalAlreadyDecided { id: id.clone() });
            }
        }
    }
    let phase = p.phase.to_string();
    if let Some(new) = &c.create {
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM tasks WHERE id = ?")
            .bind(&c.task_id)
            .fetch_optional(&mut *conn)
            .await
            .ctx("checking for an existing task")?;
        if exists.is_some() {
            return Ok(CommitOutcome::TaskExists);
        }
        sqlx::query(
            "INSERT INTO tasks (id, workflow_id, workflow_name, requester, inputs, status, current_state,
                step_no, attempt, phase, state, error, wake_at, recovery_failures, last_seq,
                lease_owner, lease_expires_at, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}', ?, ?, ?, ?, ?, NULL, ?, ?)",
        )
        .bind(&c.task_id)
        .bind(new.workflow_id)
        .bind(&new.workflow_name)
        .bind(&new.requester)
        .bind(new.inputs.to_string())
        .bind(p.status.as_str())
        .bind(&p.current_state)
        .bind(p.step_no)
        .bind(p.attempt)
        .bind(&phase)
        .bind(&p.error)
        .bind(p.wake_at)
        .bind(p.recovery_failures)
        .bind(new_seq)
        .bind(if c.release_lease { None } else { c.lease_owner.as_deref() })
        .bind(c.at)
        .bind(c.at)
        .execute(&mut *conn)
        .await
        .ctx("inserting a task")?;
    } else {
        let done = sqlx::query(
            "UPDATE tasks SET status = ?, current_state = ?, step_no = ?, attempt = ?, phase = ?,
                error = ?, wake_at = ?, recovery_failures = ?, last_seq = ?, updated_at = ?,
                lease_owner = CASE WHEN ? THEN NULL ELSE lease_owner END,
                lease_expires_at = CASE WHEN ? THEN NULL ELSE lease_expires_at END,
                cancel_requested = CASE WHEN ? THEN NULL ELSE cancel_requested END
             WHERE id = ? AND last_seq = ? AND (? IS NULL OR lease_owner = ?)",
        )
        .bind(p.status.as_str())
        .bind(&p.current_state)
        .bind(p.step_no)
        .bind(p.attempt)
        .bind(&phase)
        .bind(&p.error)
        .bind(p.wake_at)
        .bind(p.recovery_failures)
        .bind(new_seq)
        .bind(c.at)
        .bind(c.release_lease)
        .bind(c.release_lease)
        .bind(p.status.is_terminal())
        .bind(&c.task_id)
        .bind(c.expected_seq)
        .bind(&c.lease_owner)
        .bind(&c.lease_owner)
        .execute(&mut *conn)
        .await
        .ctx("updating a task")?;
        if done.rows_affected() == 0 {
            return refusal(conn, c).await;
        }
    }
    if !c.events.is_empty() {
        // One statement for all of a commit's events.
        let mut sql =
            String::from("INSERT INTO task_events (task_id, seq, at, kind, body) VALUES ");
        for i in 0..c.events.len() {
            sql.push_str(if i == 0 {
                "(?, ?, ?, ?, ?)"
            } else {
                ", (?, ?, ?, ?, ?)"
            });
        }
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, event) in c.events.iter().enumerate() {
            insert = insert
                .bind(&c.task_id)
                .bind(c.expected_seq + 1 + i as i64)
                .bind(c.at)
                .bind(&event.kind)
                .bind(event.body.to_string());
        }
        insert.execute(&mut *conn).await.ctx("appending events")?;
    }
    for (state_name, output) in &c.outputs {
        sqlx::query(
            "INSERT INTO task_outputs (task_id, state_name, output) VALUES (?, ?, ?)
             ON CONFLICT (task_id, state_name) DO UPDATE SET output = excluded.output",
        )
        .bind(&c.task_id)
        .bind(state_name)
        .bind(output.to_string())
        .execute(&mut *conn)
        .await
        .ctx("recording a state's output")?;
    }
    for step in &c.steps {
        write_step(conn, &c.task_id, c.at, step).await?;
    }
    for call in &c.tool_calls {
        write_tool_call(conn, &c.task_id, c.at, call).await?;
    }
    for approval in &c.approvals {
        // Checked above under the same write lock, so this cannot happen; if it does,
        // fail the transaction rather than keep half a commit.
        if let Some(refused) = write_approval(conn, &c.task_id, c.at, approval).await? {
            return Err(StoreError::Corrupt {
                what: "approval decision",
                detail: format!("{refused:?} after it was checked pending"),
            });
        }
    }
    Ok(CommitOutcome::Committed { last_seq: new_seq })
}

/// Works out why the guarded update touched no row.
async fn refusal(conn: &mut SqliteConnection, c: &TaskCommit) -> Result<CommitOutcome, StoreError> {
    let row: Option<(i64, Option<String>)> =
        sqlx::query_as("SELECT last_seq, lease_owner FROM tasks WHERE id = ?")
            .bind(&c.task_id)
            .fetch_optional(&mut *conn)
            .await
            .ctx("reading a task after a refused commit")?;
    Ok(match row {
        None => CommitOutcome::TaskMissing,
        Some((found, _)) if found != c.expected_seq => CommitOutcome::StaleSequence {
            expected: c.expected_seq,
            found,
        },
        Some((_, holder)) => CommitOutcome::LeaseLost { holder },
    })
}

async fn write_step(
    conn: &mut SqliteConnection,
    task_id: &str,
    at: Millis,
    step: &StepWrite,
) -> Result<(), StoreError> {
    match step {
        StepWrite::Start {
            step_no,
            state_name,
            kind,
            attempt,
        } => {
            sqlx::query(
                "INSERT INTO steps (task_id, step_no, state_name, kind, attempts, started_at)
                 VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (task_id, step_no) DO UPDATE SET attempts = excluded.attempts,
                    ended_at = NULL, outcome = NULL, error = NULL",
            )
            .bind(task_id)
            .bind(step_no)
            .bind(state_name)
            .bind(kind)
            .bind(attempt)
            .bind(at)
            .execute(&mut *conn)
            .await
            .ctx("recording a step start")?;
        }
        StepWrite::End {
            step_no,
            outcome,
            error,
        } => {
            sqlx::query(
                "UPDATE steps SET ended_at = ?, outcome = ?, error = ? WHERE task_id = ? AND step_no = ?",
            )
            .bind(at)
            .bind(outcome)
            .bind(error)
            .bind(task_id)
            .bind(step_no)
            .execute(&mut *conn)
            .await
            .ctx("recording a step end")?;
        }
    }
    Ok(())
}

async fn write_tool_call(
    conn: &mut SqliteConnection,
    task_id: &str,
    at: Millis,
    call: &ToolCallWrite,
) -> Result<(), StoreError> {
    match call {
        ToolCallWrite::Intent {
            id,
            step_no,
            attempt,
            call_index,
            tool,
            args,
            args_hash,
            idempotency_key,
            idempotent,
        } => {
            sqlx::query(
                "INSERT INTO tool_calls (id, task_id, step_no, attempt, call_index, tool, args, args_hash,
                    idempotency_key, idempotent, intent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(task_id)
            .bind(step_no)
            .bind(attempt)
            .bind(call_index)
            .bind(tool)
            .bind(args.to_string())
            .bind(args_hash)
            .bind(idempotency_key)
            .bind(idempotent)
            .bind(at)
            .execute(&mut *conn)
            .await
            .ctx("recording a tool-call intent")?;
        }
        ToolCallWrite::Outcome {
            id,
            outcome,
            result,
            error,
            resolved_by,
        } => {
            sqlx::query(
                "UPDATE tool_calls SET outcome = ?, result = ?, error = ?, outcome_at = ?,
                    resolved_by = COALESCE(?, resolved_by) WHERE id = ?",
            )
            .bind(outcome.as_str())
            .bind(result.as_ref().map(Value::to_string))
            .bind(error)
            .bind(at)
            .bind(resolved_by)
            .bind(id)
            .execute(&mut *conn)
            .await
            .ctx("recording a tool-call outcome")?;
        }
    }
    Ok(())
}

async fn write_approval(
    conn: &mut SqliteConnection,
    task_id: &str,
    at: Millis,
    approval: &ApprovalWrite,
) -> Result<Option<CommitOutcome>, StoreError> {
    match approval {
        ApprovalWrite::Request {
            id,
            step_no,
            state_name,
            prompt,
            approvers,
            expires_at,
            tool_call_id,
            args_hash,
            policy_version,
            held_call,
        } => {
            let approvers = serde_json::to_string(approvers).map_err(|e| StoreError::Corrupt {
                what: "approval approvers",
                detail: e.to_string(),
            })?;
            let held_call = held_call
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| StoreError::Corrupt {
                    what: "held call",
                    detail: e.to_string(),
                })?;
            sqlx::query(
                "INSERT INTO approvals (id, task_id, step_no, state_name, tool_call_id, args_hash,
                    policy_version, prompt, approvers, status, requested_at, expires_at, held_call)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
            )
            .bind(id)
            .bind(task_id)
            .bind(step_no)
            .bind(state_name)
            .bind(tool_call_id)
            .bind(args_hash)
            .bind(policy_version)
            .bind(prompt)
            .bind(approvers)
            .bind(at)
            .bind(expires_at)
            .bind(held_call)
            .execute(&mut *conn)
            .await
            .ctx("recording an approval request")?;
            Ok(None)
        }
        ApprovalWrite::Decide { id, status } => {
            let (by, decided_at, reason, edited) = match status {
                ApprovalStatus::Pending => {
                    return Err(StoreError::Corrupt {
                        what: "approval decision",
                        detail: "a decision cannot be `pending`".into(),
                    });
                }
                ApprovalStatus::Approved {
                    by,
                    at,
                    reason,
                    edited_args,
                } => (
                    Some(by.as_str()),
                    *at,
                    reason.as_deref(),
                    edited_args.as_ref().map(Value::to_string),
                ),
                ApprovalStatus::Rejected { by, at, reason } => {
                    (Some(by.as_str()), *at, reason.as_deref(), None)
                }
                ApprovalStatus::Expired { at } => (None, *at, None, None),
            };
            let done = sqlx::query(
                "UPDATE approvals SET status = ?, decided_at = ?, decided_by = ?, reason = ?,
                    edited_args = ?
                 WHERE id = ? AND task_id = ? AND status = 'pending'",
            )
            .bind(status.as_str())
            .bind(decided_at)
            .bind(by)
            .bind(reason)
            .bind(edited)
            .bind(id)
            .bind(task_id)
            .execute(&mut *conn)
            .await
            .ctx("recording an approval decision")?;
            Ok((done.rows_affected() == 0)
                .then(|| CommitOutcome::ApprovalAlreadyDecided { id: id.clone() }))
        }
    }
}
