//! Reads, and the few writes that are not task transitions (workflow registration).

use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{Connection, Row};

use crate::Millis;
use crate::error::{SqlContext, StoreError};
use crate::open::Store;
use crate::records::{
    ApprovalRecord, ApprovalStatus, CallAllowance, CallRefusal, EventRecord, StepRecord,
    TaskProjection, TaskRecord, TaskStatus, ToolCallOutcome, ToolCallRecord, WorkflowRecord,
    parse_json, parse_status,
};

/// Which tasks to list, newest first.
#[derive(Clone, Debug, Default)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub workflow: Option<String>,
    pub limit: Option<i64>,
}

fn get<'r, T>(row: &'r SqliteRow, col: &'static str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(col).ctx(col)
}

fn json_col(row: &SqliteRow, col: &'static str) -> Result<Value, StoreError> {
    parse_json(col, &get::<String>(row, col)?)
}

fn opt_json_col(row: &SqliteRow, col: &'static str) -> Result<Option<Value>, StoreError> {
    get::<Option<String>>(row, col)?
        .map(|s| parse_json(col, &s))
        .transpose()
}

pub(crate) fn task_from_row(row: &SqliteRow) -> Result<TaskRecord, StoreError> {
    Ok(TaskRecord {
        id: get(row, "id")?,
        workflow_id: get(row, "workflow_id")?,
        workflow_name: get(row, "workflow_name")?,
        requester: get(row, "requester")?,
        inputs: json_col(row, "inputs")?,
        projection: TaskProjection {
            status: parse_status(&get::<String>(row, "status")?)?,
            current_state: get(row, "current_state")?,
            step_no: get(row, "step_no")?,
            attempt: get(row, "attempt")?,
            phase: json_col(row, "phase")?,
            state: json_col(row, "state")?,
            error: get(row, "error")?,
            wake_at: get(row, "wake_at")?,
            recovery_failures: get(row, "recovery_failures")?,
        },
        last_seq: get(row, "last_seq")?,
        cancel_requested: get(row, "cancel_requested")?,
        lease_owner: get(row, "lease_owner")?,
        lease_expires_at: get(row, "lease_expires_at")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

/// Puts each task's outputs (one row per completed state) into its `state`.
pub(crate) async fn fill_outputs<'e, E>(exec: E, tasks: &mut [TaskRecord]) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    if tasks.is_empty() {
        return Ok(());
    }
    let mut sql =
        String::from("SELECT task_id, state_name, output FROM task_outputs WHERE task_id IN (");
    for i in 0..tasks.len() {
        sql.push_str(if i == 0 { "?" } else { ", ?" });
    }
    sql.push(')');
    let mut query = sqlx::query_as::<_, (String, String, String)>(sqlx::AssertSqlSafe(sql));
    for task in tasks.iter() {
        query = query.bind(task.id.clone());
    }
    let rows = query.fetch_all(exec).await.ctx("reading state outputs")?;
    for (task_id, state_name, output) in rows {
        if let Some(task) = tasks.iter_mut().find(|t| t.id == task_id) {
            let output = parse_json("state output", &output)?;
            if !task.projection.state.is_object() {
                task.projection.state = Value::Object(serde_json::Map::new());
            }
            if let Some(map) = task.projection.state.as_object_mut() {
                map.insert(state_name, output);
            }
        }
    }
    Ok(())
}

pub(crate) fn tool_call_from_row(row: &SqliteRow) -> Result<ToolCallRecord, StoreError> {
    Ok(ToolCallRecord {
        id: get(row, "id")?,
        task_id: get(row, "task_id")?,
        step_no: get(row, "step_no")?,
        attempt: get(row, "attempt")?,
        call_index: get(row, "call_index")?,
        tool: get(row, "tool")?,
        args: json_col(row, "args")?,
        args_hash: get(row, "args_hash")?,
        idempotency_key: get(row, "idempotency_key")?,
        idempotent: get(row, "idempotent")?,
        intent_at: get(row, "intent_at")?,
        outcome: get::<Option<String>>(row, "outcome")?
            .map(|s| ToolCallOutcome::parse(&s))
            .transpose()?,
        result: opt_json_col(row, "result")?,
        error: get(row, "error")?,
        outcome_at: get(row, "outcome_at")?,
        resolved_by: get(row, "resolved_by")?,
        allowed: CallAllowance::from_columns(
            get::<Option<&str>>(row, "allowed_by")?,
            get(row, "allow_rule")?,
            get(row, "allow_ref")?,
            get(row, "approved_by")?,
        )?,
        refusal: CallRefusal::from_columns(
            get::<Option<&str>>(row, "refused_by")?,
            get(row, "refusal_rule")?,
            get(row, "refusal_ref")?,
            get(row, "rejected_by")?,
        )?,
    })
}

fn approval_from_row(row: &SqliteRow) -> Result<ApprovalRecord, StoreError> {
    let status: String = get(row, "status")?;
    let decided_at: Option<Millis> = get(row, "decided_at")?;
    let by: Option<String> = get(row, "decided_by")?;
    let reason: Option<String> = get(row, "reason")?;
    let corrupt = || StoreError::Corrupt {
        what: "approval status",
        detail: format!("status {status:?} with decided_at {decided_at:?} and decided_by {by:?}"),
    };
    let status = match (status.as_str(), decided_at) {
        ("pending", None) => ApprovalStatus::Pending,
        ("approved", Some(at)) => ApprovalStatus::Approved {
            by: by.clone().ok_or_else(corrupt)?,
            at,
            reason,
            edited_args: opt_json_col(row, "edited_args")?,
        },
        ("rejected", Some(at)) => ApprovalStatus::Rejected {
            by: by.clone().ok_or_else(corrupt)?,
            at,
            reason,
        },
        ("expired", Some(at)) => ApprovalStatus::Expired { at },
        ("withdrawn", Some(at)) => ApprovalStatus::Withdrawn {
            by: by.clone().ok_or_else(corrupt)?,
            at,
            reason,
        },
        _ => return Err(corrupt()),
    };
    let approvers: Vec<String> =
        serde_json::from_value(json_col(row, "approvers")?).map_err(|e| StoreError::Corrupt {
            what: "approval approvers",
            detail: e.to_string(),
        })?;
    Ok(ApprovalRecord {
        id: get(row, "id")?,
        task_id: get(row, "task_id")?,
        step_no: get(row, "step_no")?,
        state_name: get(row, "state_name")?,
        tool_call_id: get(row, "tool_call_id")?,
        args_hash: get(row, "args_hash")?,
        policy_version: get(row, "policy_version")?,
        prompt: get(row, "prompt")?,
        approvers,
        requested_at: get(row, "requested_at")?,
        expires_at: get(row, "expires_at")?,
        held_call: opt_json_col(row, "held_call")?
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                what: "held call",
                detail: e.to_string(),
            })?,
        status,
    })
}

fn workflow_from_row(row: &SqliteRow) -> Result<WorkflowRecord, StoreError> {
    Ok(WorkflowRecord {
        id: get(row, "id")?,
        name: get(row, "name")?,
        version: get(row, "version")?,
        hash: get(row, "hash")?,
        source: get(row, "source")?,
        origin: get(row, "origin")?,
        created_at: get(row, "created_at")?,
    })
}

impl Store {
    /// Records a workflow definition. The same name and text gives back the existing
    /// version; changed text under the same name becomes the next version.
    pub async fn register_workflow(
        &self,
        name: &str,
        hash: &str,
        source: &str,
        origin: Option<&str>,
        now: Millis,
    ) -> Result<WorkflowRecord, StoreError> {
        let mut w = self.inner.writer.lock().await;
        // One transaction holding the write lock, so two processes registering at once
        // cannot both insert (or both pick the same next version).
        let mut tx = w
            .begin_with("BEGIN IMMEDIATE")
            .await
            .ctx("beginning a workflow registration")?;
        let existing = sqlx::query("SELECT * FROM workflows WHERE name = ? AND hash = ?")
            .bind(name)
            .bind(hash)
            .fetch_optional(&mut *tx)
            .await
            .ctx("looking up a workflow")?;
        if let Some(row) = existing {
            return workflow_from_row(&row);
        }
        let row = sqlx::query(
            "INSERT INTO workflows (name, version, hash, source, origin, created_at)
             VALUES (?, (SELECT COALESCE(MAX(version), 0) + 1 FROM workflows WHERE name = ?), ?, ?, ?, ?)
             RETURNING *",
        )
        .bind(name)
        .bind(name)
        .bind(hash)
        .bind(source)
        .bind(origin)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .ctx("registering a workflow")?;
        let record = workflow_from_row(&row)?;
        tx.commit()
            .await
            .ctx("committing a workflow registration")?;
        Ok(record)
    }

    pub async fn workflow(&self, id: i64) -> Result<Option<WorkflowRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM workflows WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.inner.reads)
            .await
            .ctx("reading a workflow")?;
        row.as_ref().map(workflow_from_row).transpose()
    }

    /// The newest version of every workflow.
    pub async fn latest_workflows(&self) -> Result<Vec<WorkflowRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM workflows w WHERE version = (SELECT MAX(version) FROM workflows WHERE name = w.name)
             ORDER BY name",
        )
        .fetch_all(&self.inner.reads)
        .await
        .ctx("listing workflows")?;
        rows.iter().map(workflow_from_row).collect()
    }

    pub async fn task(&self, id: &str) -> Result<Option<TaskRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM tasks WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.inner.reads)
            .await
            .ctx("reading a task")?;
        let Some(row) = row else { return Ok(None) };
        let mut tasks = [task_from_row(&row)?];
        fill_outputs(&self.inner.reads, &mut tasks).await?;
        let [task] = tasks;
        Ok(Some(task))
    }

    /// Tasks whose id starts with `prefix` (for short ids typed by people).
    pub async fn tasks_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.ids_with_prefix(IdKind::Task, prefix).await
    }

    /// Ids of `kind` that start with `prefix` (at most 10), for short ids typed by people.
    pub async fn ids_with_prefix(
        &self,
        kind: IdKind,
        prefix: &str,
    ) -> Result<Vec<String>, StoreError> {
        let sql = match kind {
            IdKind::Task => "SELECT id FROM tasks WHERE id LIKE ? ORDER BY id LIMIT 10",
            IdKind::Approval => "SELECT id FROM approvals WHERE id LIKE ? ORDER BY id LIMIT 10",
            IdKind::ToolCall => "SELECT id FROM tool_calls WHERE id LIKE ? ORDER BY id LIMIT 10",
        };
        let pattern = format!("{}%", prefix.replace(['%', '_'], ""));
        sqlx::query_scalar(sql)
            .bind(pattern)
            .fetch_all(&self.inner.reads)
            .await
            .ctx("looking up ids by prefix")
    }

    pub async fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<TaskRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM tasks WHERE (? IS NULL OR status = ?) AND (? IS NULL OR workflow_name = ?)
             ORDER BY created_at DESC, id LIMIT ?",
        )
        .bind(filter.status.map(TaskStatus::as_str))
        .bind(filter.status.map(TaskStatus::as_str))
        .bind(&filter.workflow)
        .bind(&filter.workflow)
        .bind(filter.limit.unwrap_or(i64::MAX))
        .fetch_all(&self.inner.reads)
        .await
        .ctx("listing tasks")?;
        let mut tasks = rows
            .iter()
            .map(task_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        for chunk in tasks.chunks_mut(500) {
            fill_outputs(&self.inner.reads, chunk).await?;
        }
        Ok(tasks)
    }

    /// Running tasks this engine has or could take (not held by another live lease),
    /// and the earliest time one of the waiting ones becomes due.
    pub async fn open_work(
        &self,
        engine_id: &str,
        now: Millis,
    ) -> Result<(i64, Option<Millis>), StoreError> {
        sqlx::query_as(
            "SELECT COUNT(*), MIN(wake_at) FROM tasks WHERE status = 'running'
               AND (lease_owner IS NULL OR lease_owner = ? OR lease_expires_at < ?)",
        )
        .bind(engine_id)
        .bind(now)
        .fetch_one(&self.inner.reads)
        .await
        .ctx("counting open work")
    }

    pub async fn events(&self, task_id: &str) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM task_events WHERE task_id = ? ORDER BY seq")
            .bind(task_id)
            .fetch_all(&self.inner.reads)
            .await
            .ctx("reading task events")?;
        rows.iter()
            .map(|row| {
                Ok(EventRecord {
                    task_id: get(row, "task_id")?,
                    seq: get(row, "seq")?,
                    at: get(row, "at")?,
                    kind: get(row, "kind")?,
                    body: json_col(row, "body")?,
                })
            })
            .collect()
    }

    pub async fn steps(&self, task_id: &str) -> Result<Vec<StepRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM steps WHERE task_id = ? ORDER BY step_no")
            .bind(task_id)
            .fetch_all(&self.inner.reads)
            .await
            .ctx("reading steps")?;
        rows.iter()
            .map(|row| {
                Ok(StepRecord {
                    task_id: get(row, "task_id")?,
                    step_no: get(row, "step_no")?,
                    state_name: get(row, "state_name")?,
                    kind: get(row, "kind")?,
                    attempts: get(row, "attempts")?,
                    started_at: get(row, "started_at")?,
                    ended_at: get(row, "ended_at")?,
                    outcome: get(row, "outcome")?,
                    error: get(row, "error")?,
                })
            })
            .collect()
    }

    pub async fn tool_calls(&self, task_id: &str) -> Result<Vec<ToolCallRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM tool_calls WHERE task_id = ? ORDER BY step_no, attempt, call_index",
        )
        .bind(task_id)
        .fetch_all(&self.inner.reads)
        .await
        .ctx("reading tool calls")?;
        rows.iter().map(tool_call_from_row).collect()
    }

    pub async fn tool_call(&self, id: &str) -> Result<Option<ToolCallRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM tool_calls WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.inner.reads)
            .await
            .ctx("reading a tool call")?;
        row.as_ref().map(tool_call_from_row).transpose()
    }

    /// Every call across tasks, newest first, optionally only those of one outcome
    /// (`None` outcome filter with `open_only` lists intents without an outcome).
    pub async fn all_tool_calls(
        &self,
        outcome: Option<ToolCallOutcome>,
        limit: i64,
    ) -> Result<Vec<ToolCallRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM tool_calls WHERE (? IS NULL OR outcome = ?) ORDER BY intent_at DESC, id LIMIT ?",
        )
        .bind(outcome.map(ToolCallOutcome::as_str))
        .bind(outcome.map(ToolCallOutcome::as_str))
        .bind(limit)
        .fetch_all(&self.inner.reads)
        .await
        .ctx("listing tool calls")?;
        rows.iter().map(tool_call_from_row).collect()
    }

    pub async fn approval(&self, id: &str) -> Result<Option<ApprovalRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM approvals WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.inner.reads)
            .await
            .ctx("reading an approval")?;
        row.as_ref().map(approval_from_row).transpose()
    }

    pub async fn pending_approvals(&self) -> Result<Vec<ApprovalRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM approvals WHERE status = 'pending' ORDER BY requested_at, id",
        )
        .fetch_all(&self.inner.reads)
        .await
        .ctx("listing pending approvals")?;
        rows.iter().map(approval_from_row).collect()
    }

    pub async fn task_approvals(&self, task_id: &str) -> Result<Vec<ApprovalRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM approvals WHERE task_id = ? ORDER BY requested_at, id")
                .bind(task_id)
                .fetch_all(&self.inner.reads)
                .await
                .ctx("listing a task's approvals")?;
        rows.iter().map(approval_from_row).collect()
    }

    /// Pending approvals whose expiry has passed.
    pub async fn expired_approvals(&self, now: Millis) -> Result<Vec<ApprovalRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM approvals WHERE status = 'pending' AND expires_at IS NOT NULL AND expires_at <= ?",
        )
        .bind(now)
        .fetch_all(&self.inner.reads)
        .await
        .ctx("listing expired approvals")?;
        rows.iter().map(approval_from_row).collect()
    }
}

/// What an id names, for [`Store::ids_with_prefix`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    Task,
    Approval,
    ToolCall,
}
