//! Rows as the store reads and writes them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Millis;
use crate::error::StoreError;

/// Where a task stands. `waiting_approval` and `in_doubt` wait for a person;
/// `quarantined` waits for a person after its recovery kept failing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Running,
    WaitingApproval,
    InDoubt,
    Quarantined,
    Succeeded,
    Failed,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 7] = [
        TaskStatus::Running,
        TaskStatus::WaitingApproval,
        TaskStatus::InDoubt,
        TaskStatus::Quarantined,
        TaskStatus::Succeeded,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Running => "running",
            TaskStatus::WaitingApproval => "waiting_approval",
            TaskStatus::InDoubt => "in_doubt",
            TaskStatus::Quarantined => "quarantined",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<TaskStatus> {
        TaskStatus::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// An ended task never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Succeeded | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }

    /// Waiting for a person (approval, in-doubt call or quarantine).
    pub fn needs_person(self) -> bool {
        matches!(
            self,
            TaskStatus::WaitingApproval | TaskStatus::InDoubt | TaskStatus::Quarantined
        )
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) fn parse_status(s: &str) -> Result<TaskStatus, StoreError> {
    TaskStatus::parse(s).ok_or_else(|| StoreError::Corrupt {
        what: "task status",
        detail: format!("unknown status {s:?}"),
    })
}

pub(crate) fn parse_json(what: &'static str, s: &str) -> Result<Value, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

#[derive(Clone, Debug, Serialize)]
pub struct WorkflowRecord {
    pub id: i64,
    pub name: String,
    pub version: i64,
    pub hash: String,
    pub source: String,
    pub origin: Option<String>,
    pub created_at: Millis,
}

/// The part of a task row that is a fold of its event log. The engine computes it;
/// the store writes it beside the events in the same transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskProjection {
    pub status: TaskStatus,
    pub current_state: Option<String>,
    pub step_no: i64,
    pub attempt: i64,
    /// Engine-defined position inside the current step (JSON).
    pub phase: Value,
    /// Outputs of completed states, by state name (JSON object).
    pub state: Value,
    pub error: Option<String>,
    pub wake_at: Option<Millis>,
    pub recovery_failures: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct TaskRecord {
    pub id: String,
    pub workflow_id: i64,
    pub workflow_name: String,
    pub requester: String,
    pub inputs: Value,
    #[serde(flatten)]
    pub projection: TaskProjection,
    pub last_seq: i64,
    pub cancel_requested: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// An event to append; its sequence number is assigned by the commit.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub kind: String,
    pub body: Value,
}

#[derive(Clone, Debug, Serialize)]
pub struct EventRecord {
    pub task_id: String,
    pub seq: i64,
    pub at: Millis,
    pub kind: String,
    pub body: Value,
}

#[derive(Clone, Debug, Serialize)]
pub struct StepRecord {
    pub task_id: String,
    pub step_no: i64,
    pub state_name: String,
    pub kind: String,
    pub attempts: i64,
    pub started_at: Millis,
    pub ended_at: Option<Millis>,
    pub outcome: Option<String>,
    pub error: Option<String>,
}

/// What became of a ledgered call. `InDoubt` is recorded when the engine cannot know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolCallOutcome {
    Succeeded,
    Failed,
    InDoubt,
    /// A person said the in-doubt call did happen.
    Happened,
    /// A person said the in-doubt call did not happen.
    NotHappened,
    /// Never made: it was refused before any intent (see [`CallRefusal`]). Written with
    /// the row, in the commit that records the refusal, and never changed.
    Refused,
}

impl ToolCallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ToolCallOutcome::Succeeded => "succeeded",
            ToolCallOutcome::Failed => "failed",
            ToolCallOutcome::InDoubt => "in_doubt",
            ToolCallOutcome::Happened => "happened",
            ToolCallOutcome::NotHappened => "not_happened",
            ToolCallOutcome::Refused => "refused",
        }
    }

    pub const ALL: [ToolCallOutcome; 6] = [
        ToolCallOutcome::Succeeded,
        ToolCallOutcome::Failed,
        ToolCallOutcome::InDoubt,
        ToolCallOutcome::Happened,
        ToolCallOutcome::NotHappened,
        ToolCallOutcome::Refused,
    ];

    /// The outcome named `s`, if any.
    pub fn from_name(s: &str) -> Option<ToolCallOutcome> {
        ToolCallOutcome::ALL.into_iter().find(|o| o.as_str() == s)
    }

    pub(crate) fn parse(s: &str) -> Result<ToolCallOutcome, StoreError> {
        ToolCallOutcome::from_name(s).ok_or_else(|| StoreError::Corrupt {
            what: "tool call outcome",
            detail: format!("unknown outcome {s:?}"),
        })
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ToolCallRecord {
    pub id: String,
    pub task_id: String,
    pub step_no: i64,
    pub attempt: i64,
    pub call_index: i64,
    pub tool: String,
    pub args: Value,
    pub args_hash: String,
    pub idempotency_key: String,
    pub idempotent: bool,
    pub intent_at: Millis,
    /// `None` while only the intent is recorded.
    pub outcome: Option<ToolCallOutcome>,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub outcome_at: Option<Millis>,
    pub resolved_by: Option<String>,
    /// What let the call through the policy; `None` for a refused call, and on a row
    /// from before it was recorded whose decision could not be found (migration 0011).
    pub allowed: Option<CallAllowance>,
    /// What refused the call; set exactly when the outcome is `Refused`.
    pub refusal: Option<CallRefusal>,
}

/// What let a call through the policy, recorded on its ledger row with the intent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum CallAllowance {
    /// A rule allowed it outright.
    Policy { rule: Option<String> },
    /// A rule asked for approval and a person's grant covered the call.
    Grant {
        grant_id: String,
        rule: Option<String>,
    },
    /// People approved it; `approver` is the one whose decision completed the approval.
    Approval {
        approval_id: String,
        approver: String,
        rule: Option<String>,
    },
}

impl CallAllowance {
    /// The kind, as stored in `tool_calls.allowed_by`.
    pub fn kind(&self) -> AllowedBy {
        match self {
            CallAllowance::Policy { .. } => AllowedBy::Policy,
            CallAllowance::Grant { .. } => AllowedBy::Grant,
            CallAllowance::Approval { .. } => AllowedBy::Approval,
        }
    }

    pub fn rule(&self) -> Option<&str> {
        match self {
            CallAllowance::Policy { rule }
            | CallAllowance::Grant { rule, .. }
            | CallAllowance::Approval { rule, .. } => rule.as_deref(),
        }
    }

    /// The grant's or the approval's id.
    pub fn reference(&self) -> Option<&str> {
        match self {
            CallAllowance::Policy { .. } => None,
            CallAllowance::Grant { grant_id, .. } => Some(grant_id),
            CallAllowance::Approval { approval_id, .. } => Some(approval_id),
        }
    }

    pub fn approver(&self) -> Option<&str> {
        match self {
            CallAllowance::Approval { approver, .. } => Some(approver),
            _ => None,
        }
    }

    /// Reassembles one from its columns; `None` when `allowed_by` is NULL.
    pub(crate) fn from_columns(
        allowed_by: Option<&str>,
        rule: Option<String>,
        reference: Option<String>,
        approver: Option<String>,
    ) -> Result<Option<CallAllowance>, StoreError> {
        let Some(kind) = allowed_by else {
            return Ok(None);
        };
        let missing = |what: &str| StoreError::Corrupt {
            what: "a tool call's allowance",
            detail: format!("allowed by {kind} but no {what}"),
        };
        Ok(Some(match AllowedBy::parse(kind) {
            Some(AllowedBy::Policy) => CallAllowance::Policy { rule },
            Some(AllowedBy::Grant) => CallAllowance::Grant {
                grant_id: reference.ok_or_else(|| missing("grant id"))?,
                rule,
            },
            Some(AllowedBy::Approval) => CallAllowance::Approval {
                approval_id: reference.ok_or_else(|| missing("approval id"))?,
                approver: approver.ok_or_else(|| missing("approver"))?,
                rule,
            },
            None => {
                return Err(StoreError::Corrupt {
                    what: "a tool call's allowance",
                    detail: format!("unknown kind {kind:?}"),
                });
            }
        }))
    }
}

/// The kinds of [`CallAllowance`], for filtering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowedBy {
    Policy,
    Grant,
    Approval,
}

impl AllowedBy {
    pub const ALL: [AllowedBy; 3] = [AllowedBy::Policy, AllowedBy::Grant, AllowedBy::Approval];

    pub fn as_str(self) -> &'static str {
        match self {
            AllowedBy::Policy => "policy",
            AllowedBy::Grant => "grant",
            AllowedBy::Approval => "approval",
        }
    }

    pub fn parse(s: &str) -> Option<AllowedBy> {
        AllowedBy::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// What refused a proposed call before its intent (the reason, in words, is the row's
/// `error`). Recorded as a ledger row whose outcome is `Refused` (migration 0012).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum CallRefusal {
    /// A policy rule denied it (`rule` is `None` for the default deny). `approval_id` is
    /// set when people had approved the call and the policy in force denied it when it
    /// was about to run.
    Policy {
        rule: Option<String>,
        approval_id: Option<String>,
    },
    /// A person rejected it; `rule` asked for the approval.
    Person {
        approval_id: String,
        rejected_by: String,
        rule: Option<String>,
    },
    /// Nobody decided before its approval expired; `rule` asked for the approval.
    Expiry {
        approval_id: String,
        rule: Option<String>,
    },
    /// Its task was cancelled while it waited for approval (the approval is withdrawn,
    /// nobody decided it); `rule` asked for the approval.
    Cancel {
        approval_id: String,
        cancelled_by: String,
        rule: Option<String>,
    },
    /// The static checks stopped it: a tool the step may not use (or none by that name),
    /// arguments that break the tool's input schema, a changed tool held for review.
    Check,
}

impl CallRefusal {
    /// The kind, as stored in `tool_calls.refused_by`.
    pub fn kind(&self) -> RefusedBy {
        match self {
            CallRefusal::Policy { .. } => RefusedBy::Policy,
            CallRefusal::Person { .. } => RefusedBy::Person,
            CallRefusal::Expiry { .. } => RefusedBy::Expiry,
            CallRefusal::Cancel { .. } => RefusedBy::Cancel,
            CallRefusal::Check => RefusedBy::Check,
        }
    }

    /// The rule that denied the call, or that asked for the approval.
    pub fn rule(&self) -> Option<&str> {
        match self {
            CallRefusal::Policy { rule, .. }
            | CallRefusal::Person { rule, .. }
            | CallRefusal::Expiry { rule, .. }
            | CallRefusal::Cancel { rule, .. } => rule.as_deref(),
            CallRefusal::Check => None,
        }
    }

    /// The approval's id, when there was one.
    pub fn approval(&self) -> Option<&str> {
        match self {
            CallRefusal::Policy { approval_id, .. } => approval_id.as_deref(),
            CallRefusal::Person { approval_id, .. }
            | CallRefusal::Expiry { approval_id, .. }
            | CallRefusal::Cancel { approval_id, .. } => Some(approval_id),
            CallRefusal::Check => None,
        }
    }

    /// Who rejected it.
    pub fn rejected_by(&self) -> Option<&str> {
        match self {
            CallRefusal::Person { rejected_by, .. } => Some(rejected_by),
            _ => None,
        }
    }

    /// The person the row names (`rejected_by` column): who rejected it, or who
    /// cancelled its task.
    pub(crate) fn person(&self) -> Option<&str> {
        match self {
            CallRefusal::Person { rejected_by, .. } => Some(rejected_by),
            CallRefusal::Cancel { cancelled_by, .. } => Some(cancelled_by),
            _ => None,
        }
    }

    /// Reassembles one from its columns; `None` when `refused_by` is NULL.
    pub(crate) fn from_columns(
        refused_by: Option<&str>,
        rule: Option<String>,
        reference: Option<String>,
        rejected_by: Option<String>,
    ) -> Result<Option<CallRefusal>, StoreError> {
        let Some(kind) = refused_by else {
            return Ok(None);
        };
        let missing = |what: &str| StoreError::Corrupt {
            what: "a tool call's refusal",
            detail: format!("refused by {kind} but no {what}"),
        };
        Ok(Some(match RefusedBy::parse(kind) {
            Some(RefusedBy::Policy) => CallRefusal::Policy {
                rule,
                approval_id: reference,
            },
            Some(RefusedBy::Person) => CallRefusal::Person {
                approval_id: reference.ok_or_else(|| missing("approval id"))?,
                rejected_by: rejected_by.ok_or_else(|| missing("person"))?,
                rule,
            },
            Some(RefusedBy::Expiry) => CallRefusal::Expiry {
                approval_id: reference.ok_or_else(|| missing("approval id"))?,
                rule,
            },
            Some(RefusedBy::Cancel) => CallRefusal::Cancel {
                approval_id: reference.ok_or_else(|| missing("approval id"))?,
                cancelled_by: rejected_by.ok_or_else(|| missing("person"))?,
                rule,
            },
            Some(RefusedBy::Check) => CallRefusal::Check,
            None => {
                return Err(StoreError::Corrupt {
                    what: "a tool call's refusal",
                    detail: format!("unknown kind {kind:?}"),
                });
            }
        }))
    }
}

/// The kinds of [`CallRefusal`], for filtering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusedBy {
    Policy,
    Person,
    Expiry,
    Cancel,
    Check,
}

impl RefusedBy {
    pub const ALL: [RefusedBy; 5] = [
        RefusedBy::Policy,
        RefusedBy::Person,
        RefusedBy::Expiry,
        RefusedBy::Cancel,
        RefusedBy::Check,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RefusedBy::Policy => "policy",
            RefusedBy::Person => "person",
            RefusedBy::Expiry => "expiry",
            RefusedBy::Cancel => "cancel",
            RefusedBy::Check => "check",
        }
    }

    pub fn parse(s: &str) -> Option<RefusedBy> {
        RefusedBy::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// An approval is pending, or decided with who decided and when; the two cannot mix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved {
        by: String,
        at: Millis,
        reason: Option<String>,
        /// The arguments the approver changed the held call to (an override); the
        /// held call keeps what was proposed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        edited_args: Option<Value>,
    },
    Rejected {
        by: String,
        at: Millis,
        reason: Option<String>,
    },
    /// Expiry is not a person's decision; it is recorded as such.
    Expired {
        at: Millis,
    },
    /// Its task was cancelled while it was pending: nobody decided it. `by` cancelled.
    Withdrawn {
        by: String,
        at: Millis,
        reason: Option<String>,
    },
}

impl ApprovalStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved { .. } => "approved",
            ApprovalStatus::Rejected { .. } => "rejected",
            ApprovalStatus::Expired { .. } => "expired",
            ApprovalStatus::Withdrawn { .. } => "withdrawn",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ApprovalRecord {
    pub id: String,
    pub task_id: String,
    pub step_no: i64,
    pub state_name: String,
    pub tool_call_id: Option<String>,
    pub args_hash: Option<String>,
    pub policy_version: Option<String>,
    pub prompt: String,
    pub approvers: Vec<String>,
    pub requested_at: Millis,
    pub expires_at: Option<Millis>,
    /// The tool call this approval holds, when a policy asked for it (an `approval`
    /// state's checkpoint holds none).
    pub held_call: Option<HeldCall>,
    #[serde(flatten)]
    pub status: ApprovalStatus,
}

/// A proposed tool call waiting for people, with what a decision needs: who may decide,
/// how many must agree, and why it was held.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeldCall {
    /// The call's index within its step (agent turns propose several).
    pub call_index: i64,
    pub tool: String,
    pub args: Value,
    pub risk: String,
    /// The policy rule that asked for approval, and the values it saw.
    pub rule: Option<String>,
    pub seen: Value,
    /// Who the call acts for.
    pub requester: String,
    /// Distinct approvals needed.
    pub approvals: u32,
    /// When `escalate_to` roles may decide too.
    pub escalate_at: Option<Millis>,
    pub escalate_to: Vec<String>,
    /// The requester may not approve it.
    pub four_eyes: bool,
}
