//! A transition being assembled: events folded into the task's position as they are
//! pushed, with the store rows they imply, committed as one unit. Pure transitions
//! (choices, checks, the start of the next step and its call intent) accumulate in one
//! draft; a draft is committed before anything outside the engine happens.

use std::collections::BTreeSet;

use airlock_store::{
    ApprovalStatus, ApprovalWrite, CommitOutcome, HeldCall, Millis, NewEvent, NewTask, StepWrite,
    TaskCommit, TaskProjection, TaskRecord, ToolCallOutcome, ToolCallWrite,
};

use serde_json::Value;

use crate::engine::{Inner, TaskChange};
use crate::error::EngineError;
use crate::event::{Phase, TaskEvent, apply, empty_projection, output_set_by, phase_of};
use crate::refusals::{Refused, withdrawn};

pub(crate) struct Draft {
    pub task_id: String,
    pub seq: i64,
    pub proj: TaskProjection,
    pub create: Option<NewTask>,
    pub events: Vec<TaskEvent>,
    pub steps: Vec<StepWrite>,
    pub tool_calls: Vec<ToolCallWrite>,
    pub approvals: Vec<ApprovalWrite>,
    /// States whose output this draft set (only those rows are written).
    outputs: BTreeSet<String>,
}

impl Draft {
    pub fn new_task(task_id: String, create: NewTask) -> Draft {
        Draft {
            task_id,
            seq: 0,
            proj: empty_projection(),
            create: Some(create),
            events: Vec::new(),
            steps: Vec::new(),
            tool_calls: Vec::new(),
            approvals: Vec::new(),
            outputs: BTreeSet::new(),
        }
    }

    pub fn of(task: &TaskRecord) -> Draft {
        Draft {
            task_id: task.id.clone(),
            seq: task.last_seq,
            proj: task.projection.clone(),
            create: None,
            events: Vec::new(),
            steps: Vec::new(),
            tool_calls: Vec::new(),
            approvals: Vec::new(),
            outputs: BTreeSet::new(),
        }
    }

    pub fn push(&mut self, event: TaskEvent) {
        if let Some(state) = output_set_by(&event) {
            self.outputs.insert(state.to_owned());
        }
        apply(&mut self.proj, &event);
        self.events.push(event);
    }

    /// Ends the task as cancelled by `by`. The approval it waits for, if any, ends with
    /// it (declined by whoever cancelled), or it would stay pending, and later expire,
    /// for a task that can no longer move; the call that approval holds (`held`, read
    /// by the caller) is refused by the same person, so the ledger shows it was stopped.
    pub fn cancel(
        &mut self,
        by: &str,
        reason: Option<String>,
        now: Millis,
        held: Option<&HeldCall>,
    ) {
        // A step under way (waiting, in backoff, in doubt) ends with the task.
        let mid_step = !matches!(
            phase_of(&self.proj),
            Some(Phase::Enter | Phase::Ended) | None
        );
        if mid_step && self.proj.step_no > 0 {
            self.steps.push(StepWrite::End {
                step_no: self.proj.step_no,
                outcome: "cancelled".into(),
                error: reason.clone(),
            });
        }
        if let Some(Phase::WaitingApproval { approval_id }) = phase_of(&self.proj) {
            if let Some(held) = held {
                let (why, refusal) =
                    withdrawn(&approval_id, by, reason.as_deref(), held.rule.clone());
                self.record_refusal(Refused {
                    tool: &held.tool,
                    args: &held.args,
                    call_index: held.call_index,
                    // Not known without the tool's host; recorded only, never acted on.
                    idempotent: false,
                    refusal,
                    reason: &why,
                });
            }
            self.approvals.push(ApprovalWrite::Decide {
                id: approval_id,
                status: ApprovalStatus::Withdrawn {
                    by: by.to_owned(),
                    at: now,
                    reason: reason.clone(),
                },
            });
        }
        // A call whose intent is recorded and whose outcome is not may have happened.
        if let Some(Phase::Calling { call_id }) = phase_of(&self.proj) {
            let already = self
                .tool_calls
                .iter()
                .any(|c| matches!(c, ToolCallWrite::Outcome { id, .. } if *id == call_id));
            if !already {
                self.tool_calls.push(ToolCallWrite::Outcome {
                    id: call_id,
                    outcome: ToolCallOutcome::InDoubt,
                    result: None,
                    error: Some(
                        "the task was cancelled before this call's outcome was known".into(),
                    ),
                    resolved_by: None,
                });
            }
        }
        self.push(TaskEvent::Cancelled {
            by: by.to_owned(),
            reason,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Commits what is drafted; on success the draft is empty and at the new sequence.
    pub async fn commit(
        &mut self,
        inner: &Inner,
        lease_owner: Option<&str>,
        release_lease: bool,
    ) -> Result<(), EngineError> {
        let events: Vec<NewEvent> = self
            .events
            .iter()
            .map(|e| NewEvent {
                kind: e.kind().to_owned(),
                body: serde_json::to_value(e).unwrap_or_default(),
            })
            .collect();
        let p = &self.proj;
        // The store needs the position, not the whole state: only changed outputs go.
        let projection = TaskProjection {
            status: p.status,
            current_state: p.current_state.clone(),
            step_no: p.step_no,
            attempt: p.attempt,
            phase: p.phase.clone(),
            state: Value::Null,
            error: p.error.clone(),
            wake_at: p.wake_at,
            recovery_failures: p.recovery_failures,
        };
        let outputs = std::mem::take(&mut self.outputs)
            .into_iter()
            .map(|name| {
                let output = p.state.get(&name).cloned().unwrap_or(Value::Null);
                (name, output)
            })
            .collect();
        let commit = TaskCommit {
            task_id: self.task_id.clone(),
            at: inner.clock.now(),
            expected_seq: self.seq,
            lease_owner: lease_owner.map(str::to_owned),
            create: self.create.take(),
            events,
            projection,
            outputs,
            steps: std::mem::take(&mut self.steps),
            tool_calls: std::mem::take(&mut self.tool_calls),
            approvals: std::mem::take(&mut self.approvals),
            release_lease,
        };
        match inner.store.commit(commit).await? {
            CommitOutcome::Committed { last_seq } => {
                self.seq = last_seq;
                self.events.clear();
                inner.announce(TaskChange {
                    task_id: self.task_id.clone(),
                    status: self.proj.status,
                    seq: last_seq,
                });
                Ok(())
            }
            CommitOutcome::ApprovalAlreadyDecided { id } => Err(EngineError::AlreadyDecided(id)),
            outcome => Err(EngineError::Refused {
                task: self.task_id.clone(),
                outcome,
            }),
        }
    }
}
