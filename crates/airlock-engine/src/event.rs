//! Task events: the append-only history of a task, and the fold that turns that history
//! into the task's current position. The stored `tasks` row is exactly this fold, written
//! in the same transaction as the events it folds.

use airlock_store::{Millis, TaskProjection, TaskStatus};
use airlock_workflow::EndStatus;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Where a task is inside its current state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "snake_case")]
pub enum Phase {
    /// About to begin `current_state` as a new step.
    Enter,
    /// A step is under way with no call in flight (agent states between turns).
    Working,
    /// A tool call's intent is on disk and its outcome is not.
    Calling {
        call_id: String,
    },
    /// The last attempt failed; a new one begins at `wake_at`.
    Backoff,
    WaitingApproval {
        approval_id: String,
    },
    InDoubt {
        call_id: String,
    },
    Ended,
}

/// How an approval was settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approved,
    Rejected,
    Expired,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskEvent {
    Created {
        workflow: String,
        workflow_version: i64,
        start: String,
        requester: String,
        inputs: Value,
    },
    StepStarted {
        step_no: i64,
        state: String,
        state_kind: String,
        attempt: i64,
    },
    /// The intent of a tool call (the ledger row is written in the same commit).
    ToolCalled {
        call_id: String,
        tool: String,
        args_hash: String,
        idempotency_key: String,
    },
    ToolReturned {
        call_id: String,
        ok: bool,
        error: Option<String>,
    },
    /// How far a call under way had got, as the tool reported it (throttled; the last
    /// report travels with the outcome). Changes nothing in the task's position.
    ToolProgress {
        call_id: String,
        progress: f64,
        total: Option<f64>,
        message: Option<String>,
    },
    /// A proposed call that was not made, and why.
    ToolRefused {
        step_no: i64,
        attempt: i64,
        call_index: i64,
        tool: String,
        reason: String,
    },
    ModelTurn {
        step_no: i64,
        attempt: i64,
        turn: i64,
        model: String,
        reply: Value,
        /// Tokens this turn used, when the model counts them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<crate::model::ModelUsage>,
    },
    StepSucceeded {
        step_no: i64,
        state: String,
        output: Value,
        next: String,
    },
    StepFailed {
        step_no: i64,
        state: String,
        attempt: i64,
        error: String,
        retry_at: Millis,
    },
    /// No attempts left: the task follows `on_error`, or fails when there is none.
    StepGaveUp {
        step_no: i64,
        state: String,
        error: String,
        next: Option<String>,
    },
    ApprovalRequested {
        approval_id: String,
        state: String,
        prompt: String,
        approvers: Vec<String>,
        expires_at: Option<Millis>,
    },
    ApprovalDecided {
        approval_id: String,
        state: String,
        decision: Decision,
        by: Option<String>,
        reason: Option<String>,
        next: String,
    },
    /// What the policy said about a proposed call, the rule that decided it and the values
    /// it saw. Changes nothing in the task's position; the audit trail of every call.
    PolicyDecided {
        step_no: i64,
        call_index: i64,
        tool: String,
        args_hash: String,
        /// `allow`, `require_approval` or `deny`.
        effect: String,
        rule: Option<String>,
        seen: Value,
        policy_version: String,
        /// What let an approval-requiring call through: `grant <id>` or `approval <id>`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        via: Option<String>,
        /// Why a call was refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A proposed call held for people to approve (a policy asked for it).
    CallHeld {
        approval_id: String,
        step_no: i64,
        call_index: i64,
        tool: String,
        args_hash: String,
        rule: Option<String>,
        approvers: Vec<String>,
        expires_at: Option<Millis>,
    },
    /// People decided a held call (or it expired); the step carries on and its next move
    /// makes the call or refuses it.
    CallApprovalDecided {
        approval_id: String,
        call_index: i64,
        decision: Decision,
        by: Option<String>,
        reason: Option<String>,
        /// The arguments an approver changed the call to (an override).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        edited_args: Option<Value>,
    },
    /// A call that may or may not have taken effect; a person must say which.
    CallInDoubt {
        call_id: String,
        tool: String,
        reason: String,
    },
    InDoubtResolved {
        call_id: String,
        state: String,
        happened: bool,
        by: String,
        /// Where the task goes when the call happened (it made the step's effect).
        next: Option<String>,
        /// When the call did not happen, the new attempt begins then.
        retry_at: Option<Millis>,
    },
    /// A person said whether an in-doubt call of a task that had already ended (it was
    /// cancelled while the call was under way) happened: recorded for the history and the
    /// ledger; the task stays as it ended and nothing is made again.
    InDoubtSettled {
        call_id: String,
        happened: bool,
        by: String,
    },
    /// An engine picked up a task that was mid-step when its previous engine stopped.
    RecoveryStarted {
        engine: String,
        failures: i64,
    },
    RecoveryFailed {
        error: String,
        failures: i64,
        retry_at: Millis,
    },
    Quarantined {
        error: String,
    },
    /// A person let a quarantined task run again.
    Released {
        by: String,
    },
    Cancelled {
        by: String,
        reason: Option<String>,
    },
    /// The workflow's post-conditions were judged at a `succeeded` end, before the
    /// outcome is recorded (the `ended` that follows says `failed` when one did not hold).
    /// `output` becomes the end state's output: `passed`, `message` and each one's result.
    PostconditionsChecked {
        step_no: i64,
        state: String,
        passed: bool,
        output: Value,
        /// What did not hold, in words; the task's error when set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    Ended {
        state: String,
        status: EndStatus,
    },
}

impl TaskEvent {
    pub fn kind(&self) -> &'static str {
        match self {
            TaskEvent::Created { .. } => "created",
            TaskEvent::StepStarted { .. } => "step_started",
            TaskEvent::ToolCalled { .. } => "tool_called",
            TaskEvent::ToolReturned { .. } => "tool_returned",
            TaskEvent::ToolProgress { .. } => "tool_progress",
            TaskEvent::ToolRefused { .. } => "tool_refused",
            TaskEvent::ModelTurn { .. } => "model_turn",
            TaskEvent::StepSucceeded { .. } => "step_succeeded",
            TaskEvent::StepFailed { .. } => "step_failed",
            TaskEvent::StepGaveUp { .. } => "step_gave_up",
            TaskEvent::ApprovalRequested { .. } => "approval_requested",
            TaskEvent::ApprovalDecided { .. } => "approval_decided",
            TaskEvent::PolicyDecided { .. } => "policy_decided",
            TaskEvent::CallHeld { .. } => "call_held",
            TaskEvent::CallApprovalDecided { .. } => "call_approval_decided",
            TaskEvent::CallInDoubt { .. } => "call_in_doubt",
            TaskEvent::InDoubtResolved { .. } => "in_doubt_resolved",
            TaskEvent::InDoubtSettled { .. } => "in_doubt_settled",
            TaskEvent::RecoveryStarted { .. } => "recovery_started",
            TaskEvent::RecoveryFailed { .. } => "recovery_failed",
            TaskEvent::Quarantined { .. } => "quarantined",
            TaskEvent::Released { .. } => "released",
            TaskEvent::Cancelled { .. } => "cancelled",
            TaskEvent::PostconditionsChecked { .. } => "postconditions_checked",
            TaskEvent::Ended { .. } => "ended",
        }
    }
}

/// The state whose output an event sets, if it sets one (what [`apply`] writes into
/// `state`); the store keeps each output in its own row.
pub fn output_set_by(event: &TaskEvent) -> Option<&str> {
    match event {
        TaskEvent::StepSucceeded { state, .. }
        | TaskEvent::ApprovalDecided { state, .. }
        | TaskEvent::PostconditionsChecked { state, .. } => Some(state),
        TaskEvent::StepGaveUp {
            state,
            next: Some(_),
            ..
        } => Some(state),
        TaskEvent::InDoubtResolved {
            state,
            happened: true,
            next: Some(_),
            ..
        } => Some(state),
        _ => None,
    }
}

/// The position of a task before its first event.
pub fn empty_projection() -> TaskProjection {
    TaskProjection {
        status: TaskStatus::Running,
        current_state: None,
        step_no: 0,
        attempt: 0,
        phase: phase_json(&Phase::Enter),
        state: json!({}),
        error: None,
        wake_at: None,
        recovery_failures: 0,
    }
}

pub fn phase_json(phase: &Phase) -> Value {
    serde_json::to_value(phase).unwrap_or(Value::Null)
}

pub fn phase_of(p: &TaskProjection) -> Option<Phase> {
    serde_json::from_value(p.phase.clone()).ok()
}

fn set_output(p: &mut TaskProjection, state: &str, output: Value) {
    if !p.state.is_object() {
        p.state = json!({});
    }
    if let Some(map) = p.state.as_object_mut() {
        map.insert(state.to_owned(), output);
    }
}

fn move_to(p: &mut TaskProjection, next: &str) {
    p.current_state = Some(next.to_owned());
    p.phase = phase_json(&Phase::Enter);
    p.attempt = 0;
    p.wake_at = None;
    p.error = None;
    p.recovery_failures = 0;
    p.status = TaskStatus::Running;
}

/// Applies one event to a task's position. Pure: the same events always fold to the
/// same projection, which is what makes the stored row derivable from the log.
pub fn apply(p: &mut TaskProjection, event: &TaskEvent) {
    match event {
        TaskEvent::Created { start, .. } => {
            *p = empty_projection();
            p.current_state = Some(start.clone());
        }
        TaskEvent::StepStarted {
            step_no,
            state,
            attempt,
            ..
        } => {
            p.step_no = *step_no;
            p.attempt = *attempt;
            p.current_state = Some(state.clone());
            p.phase = phase_json(&Phase::Working);
            p.wake_at = None;
            p.status = TaskStatus::Running;
        }
        TaskEvent::ToolCalled { call_id, .. } => {
            p.phase = phase_json(&Phase::Calling {
                call_id: call_id.clone(),
            });
        }
        TaskEvent::ToolReturned { .. } => {
            p.phase = phase_json(&Phase::Working);
            p.recovery_failures = 0;
        }
        TaskEvent::ToolRefused { .. }
        | TaskEvent::InDoubtSettled { .. }
        | TaskEvent::ModelTurn { .. }
        | TaskEvent::ToolProgress { .. }
        | TaskEvent::PolicyDecided { .. } => {}
        TaskEvent::CallHeld { approval_id, .. } => {
            p.status = TaskStatus::WaitingApproval;
            p.phase = phase_json(&Phase::WaitingApproval {
                approval_id: approval_id.clone(),
            });
        }
        TaskEvent::CallApprovalDecided { .. } => {
            p.status = TaskStatus::Running;
            p.phase = phase_json(&Phase::Working);
            p.error = None;
        }
        TaskEvent::StepSucceeded {
            state,
            output,
            next,
            ..
        } => {
            set_output(p, state, output.clone());
            move_to(p, next);
        }
        TaskEvent::StepFailed {
            error, retry_at, ..
        } => {
            p.phase = phase_json(&Phase::Backoff);
            p.wake_at = Some(*retry_at);
            p.error = Some(error.clone());
            p.recovery_failures = 0;
        }
        TaskEvent::StepGaveUp {
            state, error, next, ..
        } => match next {
            Some(next) => {
                set_output(p, state, json!({ "error": error }));
                move_to(p, next);
            }
            None => {
                p.status = TaskStatus::Failed;
                p.phase = phase_json(&Phase::Ended);
                p.error = Some(error.clone());
                p.wake_at = None;
            }
        },
        TaskEvent::ApprovalRequested { approval_id, .. } => {
            p.status = TaskStatus::WaitingApproval;
            p.phase = phase_json(&Phase::WaitingApproval {
                approval_id: approval_id.clone(),
            });
        }
        TaskEvent::ApprovalDecided {
            state,
            decision,
            by,
            reason,
            next,
            ..
        } => {
            set_output(
                p,
                state,
                json!({ "decision": decision, "by": by, "reason": reason }),
            );
            move_to(p, next);
        }
        TaskEvent::CallInDoubt {
            call_id, reason, ..
        } => {
            p.status = TaskStatus::InDoubt;
            p.phase = phase_json(&Phase::InDoubt {
                call_id: call_id.clone(),
            });
            p.error = Some(reason.clone());
        }
        TaskEvent::InDoubtResolved {
            state,
            happened,
            by,
            next,
            retry_at,
            ..
        } => {
            p.status = TaskStatus::Running;
            p.error = None;
            match (happened, next) {
                (true, Some(next)) => {
                    set_output(
                        p,
                        state,
                        json!({ "in_doubt": "happened", "confirmed_by": by }),
                    );
                    move_to(p, next);
                }
                // An agent's call happened: the agent carries on with its next move.
                (true, None) => p.phase = phase_json(&Phase::Working),
                (false, _) => {
                    p.phase = phase_json(&Phase::Backoff);
                    p.wake_at = *retry_at;
                }
            }
        }
        TaskEvent::RecoveryStarted { failures, .. } => {
            p.recovery_failures = *failures;
        }
        TaskEvent::RecoveryFailed {
            error,
            failures,
            retry_at,
        } => {
            p.recovery_failures = *failures;
            p.error = Some(error.clone());
            p.wake_at = Some(*retry_at);
        }
        TaskEvent::Quarantined { error } => {
            p.status = TaskStatus::Quarantined;
            p.error = Some(error.clone());
            p.wake_at = None;
        }
        TaskEvent::Released { .. } => {
            p.status = TaskStatus::Running;
            p.recovery_failures = 0;
            p.error = None;
            p.wake_at = None;
        }
        TaskEvent::Cancelled { .. } => {
            p.status = TaskStatus::Cancelled;
            p.phase = phase_json(&Phase::Ended);
            p.wake_at = None;
        }
        TaskEvent::PostconditionsChecked {
            state,
            output,
            error,
            ..
        } => {
            set_output(p, state, output.clone());
            if error.is_some() {
                p.error = error.clone();
            }
        }
        TaskEvent::Ended { state, status } => {
            p.current_state = Some(state.clone());
            p.status = match status {
                EndStatus::Succeeded => TaskStatus::Succeeded,
                EndStatus::Failed => TaskStatus::Failed,
                EndStatus::Cancelled => TaskStatus::Cancelled,
            };
            p.phase = phase_json(&Phase::Ended);
            p.wake_at = None;
        }
    }
}

/// Folds a whole history. Events that cannot be read are skipped by the caller's choice:
/// here every event must parse, or the history is reported as unreadable.
pub fn replay<'a>(events: impl IntoIterator<Item = &'a TaskEvent>) -> TaskProjection {
    let mut p = empty_projection();
    for e in events {
        apply(&mut p, e);
    }
    p
}
