//! Types that cross the IPC boundary to the TypeScript UI.
//!
//! They are deliberately separate from engine and store types: a rename in the domain must
//! not silently change what the UI receives. Each one derives [`ts_rs::TS`] and is listed in
//! [`typescript_bindings`]; a test compares the generated TypeScript with the committed files
//! in `ui/src/bindings/` and fails on drift. Timestamps are milliseconds since the Unix
//! epoch, as the store records them; the UI formats them and never makes its own.

use std::path::{Path, PathBuf};

use airlock_claude::pricing;
use airlock_engine::policy::{Effect, Identities, Policy, Rule};
use airlock_engine::spend::{ModelSpend, model_spend};
use airlock_engine::store::{
    ApprovalRecord, ApprovalStatus, ApprovalVote, EventRecord, Figures, GrantRecord, HeldCall,
    LessonRecord, LessonStatus, MemoryRecord, RatingRecord, TaskRecord,
    TaskStatus as StoreTaskStatus, ToolCallOutcome, ToolCallRecord,
};
use airlock_engine::workflow::{Diagnostics, InputSpec, InputType, Workflow};
use airlock_engine::{Answer, CancelOutcome, EngineError, GrantSpec};
use airlock_mcp::{ServerState as McpServerState, ServerStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ts_rs::TS;

use crate::locations::{LocationError, Locations};
use crate::timeline;

mod history;
pub use history::{
    Allowance, HistoryCall, HistoryChoices, HistoryCursor, HistoryExport, HistoryOutcome,
    HistoryQuery, Refusal,
};

/// What the Overview panel shows: which build is running and where its data lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct AppInfo {
    /// The app's version (the workspace version it was built from).
    pub version: String,
    /// The SQLite database file the app uses (`$AIRLOCK_DB`, else `<data_dir>/airlock.sqlite`).
    pub database_path: String,
    /// The workspace folder (`$AIRLOCK_WORKSPACE`), if one was given.
    pub workspace_path: Option<String>,
    /// The folder beside the database where the app keeps what belongs with it: the
    /// built-in tools' effects, and the servers, policy and identities files when neither
    /// a variable nor the workspace names them.
    pub data_dir: String,
}

impl AppInfo {
    pub fn new(version: &str, locations: &Locations) -> Self {
        Self {
            version: version.to_owned(),
            database_path: display(&locations.database_path),
            workspace_path: locations.workspace_path.as_deref().map(display),
            // The folder the app really uses (`Setup::data_dir`), not the OS default one,
            // which nothing reads once `AIRLOCK_DB` names a database elsewhere.
            data_dir: display(&crate::feed::setup_for(locations).data_dir()),
        }
    }
}

/// The error every command returns: a code the UI can branch on and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    pub code: ErrorCode,
    /// A complete sentence saying what went wrong and what to do about it.
    pub message: String,
}

/// The small set of error kinds the UI acts on. New engine errors map onto these at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The app cannot tell where its data lives; the fix is a setting, not a retry.
    NotConfigured,
    /// The engine could not be opened (database, servers file or model scripts).
    EngineUnavailable,
    /// What was given does not fit: unknown workflow, wrong input types, missing inputs.
    InvalidInput,
    /// No task, approval or workflow with that id or name.
    NotFound,
    /// The thing changed meanwhile: the approval was decided or the task moved on.
    Conflict,
    /// The person this app acts as may not do it: not one of the approver roles, four
    /// eyes, or they already approved. The message says who may.
    NotAllowed,
    /// The store or engine failed; the message says how.
    Internal,
}

impl CommandError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<&LocationError> for CommandError {
    fn from(error: &LocationError) -> Self {
        let code = match error {
            LocationError::NoDataDir => ErrorCode::NotConfigured,
        };
        Self::new(code, error.to_string())
    }
}

impl From<EngineError> for CommandError {
    fn from(error: EngineError) -> Self {
        // Answers to an approval are shown on that approval: its id adds nothing there.
        match &error {
            EngineError::NotAllowed { reason, .. } => {
                // It starts with a person's name, which keeps its case.
                return Self::new(ErrorCode::NotAllowed, full_stop(reason));
            }
            EngineError::AlreadyVoted { who, .. } => {
                return Self::new(
                    ErrorCode::NotAllowed,
                    format!("{who} has already approved this call; it needs another approver."),
                );
            }
            EngineError::EditRefused { reason, .. } => {
                return Self::new(
                    ErrorCode::InvalidInput,
                    sentence(&format!("the edited call cannot be approved: {reason}")),
                );
            }
            _ => {}
        }
        let code = match &error {
            EngineError::Inputs { .. }
            | EngineError::WorkflowTools { .. }
            | EngineError::EditRefused { .. }
            | EngineError::BadGrant(_) => ErrorCode::InvalidInput,
            EngineError::NoTask(_)
            | EngineError::NoApproval(_)
            | EngineError::NoToolCall(_)
            | EngineError::NoGrant(_)
            | EngineError::NoTool(_)
            | EngineError::NoMemory(_)
            | EngineError::NoLesson(_)
            | EngineError::AmbiguousTask { .. }
            | EngineError::Ambiguous { .. } => ErrorCode::NotFound,
            EngineError::WrongStatus { .. }
            | EngineError::AlreadyDecided(_)
            | EngineError::Expired { .. }
            | EngineError::Busy { .. } => ErrorCode::Conflict,
            EngineError::NotAllowed { .. } | EngineError::AlreadyVoted { .. } => {
                ErrorCode::NotAllowed
            }
            EngineError::Store(_)
            | EngineError::BadStoredWorkflow { .. }
            | EngineError::Refused { .. } => ErrorCode::Internal,
        };
        Self::new(code, sentence(&error.to_string()))
    }
}

impl From<airlock_engine::store::StoreError> for CommandError {
    fn from(error: airlock_engine::store::StoreError) -> Self {
        EngineError::Store(error).into()
    }
}

/// Engine messages are lower-case clauses made for the CLI; the UI shows sentences.
pub(crate) fn sentence(text: &str) -> String {
    let mut chars = text.trim().chars();
    match chars.next() {
        Some(first) => full_stop(&first.to_uppercase().chain(chars).collect::<String>()),
        None => String::new(),
    }
}

/// `text`, ending in a full stop unless it ends a sentence already.
fn full_stop(text: &str) -> String {
    let mut out = text.trim().to_owned();
    if !out.is_empty() && !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// Where a task stands (the store's statuses, one for one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
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

impl From<StoreTaskStatus> for TaskStatus {
    fn from(status: StoreTaskStatus) -> Self {
        match status {
            StoreTaskStatus::Running => Self::Running,
            StoreTaskStatus::WaitingApproval => Self::WaitingApproval,
            StoreTaskStatus::InDoubt => Self::InDoubt,
            StoreTaskStatus::Quarantined => Self::Quarantined,
            StoreTaskStatus::Succeeded => Self::Succeeded,
            StoreTaskStatus::Failed => Self::Failed,
            StoreTaskStatus::Cancelled => Self::Cancelled,
        }
    }
}

impl From<TaskStatus> for StoreTaskStatus {
    fn from(status: TaskStatus) -> Self {
        match status {
            TaskStatus::Running => Self::Running,
            TaskStatus::WaitingApproval => Self::WaitingApproval,
            TaskStatus::InDoubt => Self::InDoubt,
            TaskStatus::Quarantined => Self::Quarantined,
            TaskStatus::Succeeded => Self::Succeeded,
            TaskStatus::Failed => Self::Failed,
            TaskStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// The `task-changed` event: one per committed transition of a task. The UI re-reads
/// what it shows of that task; it never applies the change itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct TaskChanged {
    pub task_id: String,
    pub status: TaskStatus,
    /// The sequence number of the task's last event after the transition.
    #[ts(type = "number")]
    pub seq: i64,
}

/// The name of the Tauri event carrying [`TaskChanged`].
pub const TASK_CHANGED: &str = "task-changed";

/// Sent to the window when a notification or the tray asks for the Approvals inbox: on an
/// approval or a call in doubt when there is one, and with the approval's reject reason
/// asked for when the person chose Reject.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, TS)]
pub struct OpenInbox {
    pub approval_id: Option<String>,
    pub call_id: Option<String>,
    pub reject: bool,
}

/// The name of the Tauri event carrying [`OpenInbox`].
pub const OPEN_INBOX: &str = "open-inbox";

/// A workflow of the workspace, with what the Start form needs.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct WorkflowInfo {
    pub name: String,
    pub description: Option<String>,
    /// In file order.
    pub inputs: Vec<InputInfo>,
}

impl From<&Workflow> for WorkflowInfo {
    fn from(workflow: &Workflow) -> Self {
        Self {
            name: workflow.name.clone(),
            description: workflow.description.clone(),
            inputs: workflow.inputs.iter().map(InputInfo::from).collect(),
        }
    }
}

/// One declared input of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct InputInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: InputKind,
    /// False when the input has a default or is declared optional.
    pub required: bool,
    /// The default value, already of the input's type; `null` when there is none.
    #[ts(type = "unknown")]
    pub default: Option<Value>,
    pub description: Option<String>,
}

impl From<&InputSpec> for InputInfo {
    fn from(input: &InputSpec) -> Self {
        Self {
            name: input.name.clone(),
            ty: input.ty.into(),
            required: input.required,
            default: input.default.clone(),
            description: input.description.clone(),
        }
    }
}

/// The type of an input, as written in a workflow file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
}

impl From<InputType> for InputKind {
    fn from(ty: InputType) -> Self {
        match ty {
            InputType::String => Self::String,
            InputType::Number => Self::Number,
            InputType::Integer => Self::Integer,
            InputType::Boolean => Self::Boolean,
            InputType::Object => Self::Object,
            InputType::Array => Self::Array,
        }
    }
}

/// The workspace's workflows and the problems of the files that did not validate.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct WorkflowList {
    /// The workspace folder, or `null` when the app was started without one.
    pub workspace_path: Option<String>,
    pub workflows: Vec<WorkflowInfo>,
    pub problems: Vec<WorkflowProblem>,
}

impl WorkflowList {
    pub fn new(workspace: Option<&Path>, workflows: &[Workflow], problems: &Diagnostics) -> Self {
        Self {
            workspace_path: workspace.map(display),
            workflows: workflows.iter().map(WorkflowInfo::from).collect(),
            problems: WorkflowProblem::all(problems),
        }
    }
}

/// One validation error in a workspace file (a workflow, or the policy), at a 1-based
/// line and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct WorkflowProblem {
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// The stable diagnostic code, e.g. `unknown-state`.
    pub code: String,
    pub message: String,
}

impl WorkflowProblem {
    pub fn all(diagnostics: &Diagnostics) -> Vec<Self> {
        diagnostics
            .iter()
            .map(|d| Self {
                file: display(&d.file),
                line: d.line,
                column: d.column,
                code: d.code.as_str().to_owned(),
                message: d.message.clone(),
            })
            .collect()
    }
}

/// What `start_task` answers: the new task, which the engine runs in the background.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct StartedTask {
    pub task_id: String,
}

/// One row of the Tasks table.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct TaskRow {
    pub id: String,
    pub workflow: String,
    pub status: TaskStatus,
    /// The state the task is in (or ended in); `null` before its first step.
    pub current_state: Option<String>,
    pub requester: String,
    /// Why it failed or was quarantined, when it did.
    pub error: Option<String>,
    #[ts(type = "number")]
    pub created_at: i64,
    #[ts(type = "number")]
    pub updated_at: i64,
}

impl From<&TaskRecord> for TaskRow {
    fn from(task: &TaskRecord) -> Self {
        Self {
            id: task.id.clone(),
            workflow: task.workflow_name.clone(),
            status: task.projection.status.into(),
            current_state: task.projection.current_state.clone(),
            requester: task.requester.clone(),
            error: task.projection.error.clone(),
            created_at: task.created_at,
            updated_at: task.updated_at,
        }
    }
}

/// Everything the Task detail view shows about one task.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct TaskDetail {
    pub task: TaskRow,
    /// The inputs as bound (defaults filled in).
    #[ts(type = "Record<string, unknown>")]
    pub inputs: Value,
    /// Outputs of the completed states, by state name.
    #[ts(type = "Record<string, unknown>")]
    pub outputs: Value,
    /// The history, oldest first.
    pub events: Vec<TimelineEntry>,
    pub tool_calls: Vec<ToolCallRow>,
    pub approvals: Vec<ApprovalRow>,
    /// What its model turns used and cost, per model, in model-name order.
    pub spend: Vec<ModelCost>,
    /// The ratings people gave it once it had ended, oldest first.
    pub ratings: Vec<RatingView>,
    /// Why a failed task failed when it has no error of its own: its workflow's error
    /// path took it to a failing end after a step gave up, and this is that step's error.
    pub gave_up: Option<String>,
}

/// The error of the last step that gave up, for a failed task without an error.
fn gave_up(task: &TaskRecord, events: &[EventRecord]) -> Option<String> {
    if task.projection.status != StoreTaskStatus::Failed || task.projection.error.is_some() {
        return None;
    }
    let event = events.iter().rev().find(|e| e.kind == "step_gave_up")?;
    let field = |k: &str| event.body.get(k).and_then(Value::as_str);
    Some(format!(
        "`{}` gave up: {}",
        field("state").unwrap_or("a step"),
        field("error").unwrap_or("no error was recorded")
    ))
}

impl TaskDetail {
    pub fn new(
        task: &TaskRecord,
        events: &[EventRecord],
        calls: &[ToolCallRecord],
        approvals: Vec<ApprovalRow>,
        ratings: &[RatingRecord],
    ) -> Self {
        Self {
            task: task.into(),
            inputs: task.inputs.clone(),
            outputs: task.projection.state.clone(),
            events: events.iter().map(TimelineEntry::from).collect(),
            tool_calls: calls.iter().map(ToolCallRow::from).collect(),
            approvals,
            spend: model_spend(events).iter().map(ModelCost::from).collect(),
            ratings: ratings.iter().map(RatingView::from).collect(),
            gave_up: gave_up(task, events),
        }
    }
}

/// One model's share of a task: its turns, tokens and, when its price is known, dollars.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct ModelCost {
    pub model: String,
    #[ts(type = "number")]
    pub turns: u64,
    /// Turns whose tokens were counted; a model that counts none (the offline demo model)
    /// has no cost to tell.
    #[ts(type = "number")]
    pub counted_turns: u64,
    #[ts(type = "number")]
    pub input_tokens: u64,
    #[ts(type = "number")]
    pub output_tokens: u64,
    #[ts(type = "number")]
    pub cache_write_tokens: u64,
    #[ts(type = "number")]
    pub cache_read_tokens: u64,
    /// US dollars for the counted tokens; `null` when the model's price is unknown or it
    /// counted no tokens.
    pub usd: Option<f64>,
}

impl From<&ModelSpend> for ModelCost {
    fn from(spend: &ModelSpend) -> Self {
        let usage = &spend.usage;
        Self {
            model: spend.model.clone(),
            turns: spend.turns,
            counted_turns: spend.counted_turns,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cache_write_tokens: usage.cache_creation_input_tokens,
            cache_read_tokens: usage.cache_read_input_tokens,
            usd: if spend.counted_turns == 0 {
                None
            } else {
                pricing::cost_usd(&spend.model, usage)
            },
        }
    }
}

/// A person's rating of an ended task: 1 (poor) to 5 (excellent), with what they said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct RatingView {
    #[ts(type = "number")]
    pub id: i64,
    pub rating: u8,
    pub comment: Option<String>,
    pub rated_by: String,
    #[ts(type = "number")]
    pub rated_at: i64,
}

impl From<&RatingRecord> for RatingView {
    fn from(record: &RatingRecord) -> Self {
        Self {
            id: record.id,
            rating: record.rating,
            comment: record.comment.clone(),
            rated_by: record.rated_by.clone(),
            rated_at: record.rated_at,
        }
    }
}

/// One event of a task's history, with a one-line description for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct TimelineEntry {
    #[ts(type = "number")]
    pub seq: i64,
    #[ts(type = "number")]
    pub at: i64,
    /// The event kind, e.g. `tool_called`.
    pub kind: String,
    pub summary: String,
}

impl From<&EventRecord> for TimelineEntry {
    fn from(event: &EventRecord) -> Self {
        Self {
            seq: event.seq,
            at: event.at,
            kind: event.kind.clone(),
            summary: timeline::describe(event),
        }
    }
}

/// What became of a tool call; `intent_only` while the outcome is not recorded yet;
/// `refused` for a proposal that was refused and never made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    IntentOnly,
    Succeeded,
    Failed,
    InDoubt,
    Happened,
    NotHappened,
    Refused,
}

impl From<Option<ToolCallOutcome>> for CallOutcome {
    fn from(outcome: Option<ToolCallOutcome>) -> Self {
        match outcome {
            None => Self::IntentOnly,
            Some(ToolCallOutcome::Succeeded) => Self::Succeeded,
            Some(ToolCallOutcome::Failed) => Self::Failed,
            Some(ToolCallOutcome::InDoubt) => Self::InDoubt,
            Some(ToolCallOutcome::Happened) => Self::Happened,
            Some(ToolCallOutcome::NotHappened) => Self::NotHappened,
            Some(ToolCallOutcome::Refused) => Self::Refused,
        }
    }
}

/// One ledgered tool call of a task.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct ToolCallRow {
    pub id: String,
    /// `<server>.<tool>`.
    pub tool: String,
    #[ts(type = "number")]
    pub step_no: i64,
    #[ts(type = "number")]
    pub attempt: i64,
    #[ts(type = "unknown")]
    pub args: Value,
    pub outcome: CallOutcome,
    #[ts(type = "unknown")]
    pub result: Option<Value>,
    pub error: Option<String>,
    /// Who said whether an in-doubt call happened.
    pub resolved_by: Option<String>,
    #[ts(type = "number")]
    pub intent_at: i64,
    #[ts(type = "number | null")]
    pub outcome_at: Option<i64>,
}

impl From<&ToolCallRecord> for ToolCallRow {
    fn from(call: &ToolCallRecord) -> Self {
        Self {
            id: call.id.clone(),
            tool: call.tool.clone(),
            step_no: call.step_no,
            attempt: call.attempt,
            args: call.args.clone(),
            outcome: call.outcome.into(),
            result: call.result.clone(),
            error: call.error.clone(),
            resolved_by: call.resolved_by.clone(),
            intent_at: call.intent_at,
            outcome_at: call.outcome_at,
        }
    }
}

/// Whether an approval waits, and how it was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    Pending,
    Approved,
    Rejected,
    Expired,
    /// Its task was cancelled while it waited: nobody decided it (`decided_by` cancelled).
    Withdrawn,
}

/// An approval with the task it belongs to: a checkpoint of the workflow, or a tool call
/// a policy rule held for people.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct ApprovalRow {
    pub id: String,
    pub task_id: String,
    pub workflow: String,
    /// The state of the workflow it belongs to (the approval state, or the state whose
    /// call is held).
    pub state_name: String,
    /// Who requested the task.
    pub requester: String,
    pub prompt: String,
    /// The roles or people who may decide it (before any escalation).
    pub approvers: Vec<String>,
    #[ts(type = "number")]
    pub requested_at: i64,
    /// When it expires if nobody decides; `null` when it never does.
    #[ts(type = "number | null")]
    pub expires_at: Option<i64>,
    pub state: ApprovalState,
    /// Who decided, when a person did.
    pub decided_by: Option<String>,
    #[ts(type = "number | null")]
    pub decided_at: Option<i64>,
    pub reason: Option<String>,
    /// The tool call it holds; `null` for a workflow's `approval` checkpoint.
    pub held: Option<HeldCallView>,
    /// The arguments the call was approved with instead of the proposed ones (an
    /// override); `null` unless an approver changed them.
    #[ts(type = "Record<string, unknown> | null")]
    pub edited_args: Option<Value>,
}

/// A tool call held for approval, with what the approver needs: the call, why it was
/// held, and how far the decision has got.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct HeldCallView {
    /// `<server>.<tool>`.
    pub tool: String,
    /// The arguments as proposed.
    #[ts(type = "Record<string, unknown>")]
    pub args: Value,
    /// `low`, `medium` or `high`.
    pub risk: String,
    /// The policy rule that asked for approval (`null`: no rule named, approval required).
    pub rule: Option<String>,
    /// The rule's `when` condition, when the policy version that held the call is still in
    /// force and the rule has one.
    pub condition: Option<String>,
    /// The values the rule looked at, by path (`args.amount_cents`, `call.tool`, ...).
    pub seen: Vec<SeenValue>,
    /// Why the rule's condition could not be evaluated, when it could not (it then
    /// applies: approval rules fail closed).
    pub condition_error: Option<String>,
    /// The policy version that held it.
    pub policy_version: Option<String>,
    /// Who the call acts for.
    pub requester: String,
    /// Distinct approvals needed.
    pub approvals_needed: u32,
    /// The approvals given so far, oldest first (a call needing one has none until decided).
    pub votes: Vec<VoteView>,
    /// When the `escalate_to` roles may decide too; `null` when it never escalates.
    #[ts(type = "number | null")]
    pub escalate_at: Option<i64>,
    pub escalate_to: Vec<String>,
    /// The requester may not approve it.
    pub four_eyes: bool,
}

/// One value a policy rule looked at.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct SeenValue {
    pub path: String,
    #[ts(type = "unknown")]
    pub value: Value,
}

/// One person's approval of a call that needs several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct VoteView {
    pub voter: String,
    #[ts(type = "number")]
    pub at: i64,
}

impl ApprovalRow {
    /// `votes`: the approval's votes so far; `policy`: the policy in force, for the
    /// condition of the rule that held a call.
    pub fn new(
        approval: &ApprovalRecord,
        task: &TaskRecord,
        votes: &[ApprovalVote],
        policy: &Policy,
    ) -> Self {
        let (state, decided_by, decided_at, reason, edited_args) = match &approval.status {
            ApprovalStatus::Pending => (ApprovalState::Pending, None, None, None, None),
            ApprovalStatus::Approved {
                by,
                at,
                reason,
                edited_args,
            } => (
                ApprovalState::Approved,
                Some(by.clone()),
                Some(*at),
                reason.clone(),
                edited_args.clone(),
            ),
            ApprovalStatus::Rejected { by, at, reason } => (
                ApprovalState::Rejected,
                Some(by.clone()),
                Some(*at),
                reason.clone(),
                None,
            ),
            ApprovalStatus::Expired { at } => (ApprovalState::Expired, None, Some(*at), None, None),
            ApprovalStatus::Withdrawn { by, at, reason } => (
                ApprovalState::Withdrawn,
                Some(by.clone()),
                Some(*at),
                reason.clone(),
                None,
            ),
        };
        Self {
            id: approval.id.clone(),
            task_id: approval.task_id.clone(),
            workflow: task.workflow_name.clone(),
            state_name: approval.state_name.clone(),
            requester: task.requester.clone(),
            prompt: approval.prompt.clone(),
            approvers: approval.approvers.clone(),
            requested_at: approval.requested_at,
            expires_at: approval.expires_at,
            state,
            decided_by,
            decided_at,
            reason,
            held: approval.held_call.as_ref().map(|held| {
                let in_force = approval.policy_version.as_deref() == Some(policy.version());
                HeldCallView::new(
                    held,
                    approval.policy_version.clone(),
                    votes,
                    in_force.then_some(policy),
                )
            }),
            edited_args,
        }
    }
}

impl HeldCallView {
    fn new(
        held: &HeldCall,
        policy_version: Option<String>,
        votes: &[ApprovalVote],
        policy: Option<&Policy>,
    ) -> Self {
        let mut seen = Vec::new();
        let mut condition_error = None;
        if let Some(values) = held.seen.as_object() {
            for (path, value) in values {
                match (path.as_str(), value) {
                    ("error", Value::String(message)) => condition_error = Some(message.clone()),
                    _ => seen.push(SeenValue {
                        path: path.clone(),
                        value: value.clone(),
                    }),
                }
            }
        }
        let condition = held.rule.as_deref().and_then(|name| {
            policy?
                .rules()
                .iter()
                .find(|rule| rule.name == name)?
                .when
                .clone()
        });
        Self {
            tool: held.tool.clone(),
            args: held.args.clone(),
            risk: held.risk.clone(),
            rule: held.rule.clone(),
            condition,
            seen,
            condition_error,
            policy_version,
            requester: held.requester.clone(),
            approvals_needed: held.approvals,
            votes: votes
                .iter()
                .map(|vote| VoteView {
                    voter: vote.voter.clone(),
                    at: vote.at,
                })
                .collect(),
            escalate_at: held.escalate_at,
            escalate_to: held.escalate_to.clone(),
            four_eyes: held.four_eyes,
        }
    }
}

/// The Approvals inbox: who this app decides as, and what waits for a decision.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct Inbox {
    pub acting_as: Person,
    /// Oldest first.
    pub approvals: Vec<ApprovalRow>,
    /// Calls whose effect is in doubt: those whose tasks wait for a person to say whether
    /// they happened, and those of tasks cancelled while the call was under way (the
    /// answer is only recorded); oldest first.
    pub in_doubt: Vec<InDoubtCall>,
}

/// A tool call that may or may not have taken effect (its answer never came, or the engine
/// stopped while it was under way, and the tool is not safe to repeat). Its task waits
/// until a person says whether it happened, unless it was cancelled meanwhile.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct InDoubtCall {
    /// The ledger row's id, which `resolve_in_doubt` takes.
    pub call_id: String,
    pub task_id: String,
    pub workflow: String,
    /// The state of the workflow that made the call.
    pub state_name: Option<String>,
    /// Who requested the task.
    pub requester: String,
    /// `<server>.<tool>`.
    pub tool: String,
    #[ts(type = "Record<string, unknown>")]
    pub args: Value,
    /// Why it is in doubt, as the engine recorded it.
    pub reason: Option<String>,
    #[ts(type = "number")]
    pub attempt: i64,
    /// The key the call carried; a tool that honours it will not repeat the effect.
    pub idempotency_key: String,
    /// When the intent was recorded (the call was about to be made).
    #[ts(type = "number")]
    pub intent_at: i64,
    /// When it was found to be in doubt.
    #[ts(type = "number | null")]
    pub outcome_at: Option<i64>,
    /// `in_doubt` when the task waits for the answer; `cancelled` when it ended meanwhile
    /// and the answer is only recorded (nothing is made again).
    pub task_status: TaskStatus,
}

impl InDoubtCall {
    pub fn new(call: &ToolCallRecord, task: &TaskRecord) -> Self {
        Self {
            call_id: call.id.clone(),
            task_id: task.id.clone(),
            workflow: task.workflow_name.clone(),
            state_name: task.projection.current_state.clone(),
            requester: task.requester.clone(),
            tool: call.tool.clone(),
            args: call.args.clone(),
            reason: call.error.clone(),
            attempt: call.attempt,
            idempotency_key: call.idempotency_key.clone(),
            intent_at: call.intent_at,
            outcome_at: call.outcome_at,
            task_status: task.projection.status.into(),
        }
    }
}

/// What a cancellation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum CancelResult {
    /// The task is cancelled now.
    Cancelled,
    /// The task was running: it stops at its next safe point (a call under way is
    /// abandoned and recorded as in doubt).
    Requested,
}

impl From<CancelOutcome> for CancelResult {
    fn from(outcome: CancelOutcome) -> Self {
        match outcome {
            CancelOutcome::Cancelled => Self::Cancelled,
            CancelOutcome::Requested => Self::Requested,
        }
    }
}

/// What `cancel_task` answers: what it did, and the task as it is now.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct CancelReply {
    pub outcome: CancelResult,
    pub task: TaskRow,
}

/// An identity and its roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct Person {
    pub name: String,
    pub display_name: Option<String>,
    pub roles: Vec<String>,
    /// False when the identities file does not list them (they have the default roles).
    pub listed: bool,
}

impl Person {
    pub fn new(name: &str, identities: &Identities) -> Self {
        let listed = identities.get(name);
        Self {
            name: name.to_owned(),
            display_name: listed.and_then(|i| i.display_name.clone()),
            roles: identities.roles_of(name),
            listed: listed.is_some(),
        }
    }
}

/// How a person answers an approval.
#[derive(Debug, Clone, PartialEq, Deserialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AnswerRequest {
    Approve {
        reason: Option<String>,
    },
    /// Approve the held call with these arguments instead (checked against the tool's
    /// schema and the policy again, recorded as an override).
    ApproveEdited {
        #[ts(type = "Record<string, unknown>")]
        args: Value,
        reason: Option<String>,
    },
    Reject {
        reason: Option<String>,
    },
}

impl From<AnswerRequest> for Answer {
    fn from(request: AnswerRequest) -> Self {
        let clean = |reason: Option<String>| reason.filter(|r| !r.trim().is_empty());
        match request {
            AnswerRequest::Approve { reason } => Answer::Approve {
                reason: clean(reason),
            },
            AnswerRequest::ApproveEdited { args, reason } => Answer::ApproveEdited {
                args,
                reason: clean(reason),
            },
            AnswerRequest::Reject { reason } => Answer::Reject {
                reason: clean(reason),
            },
        }
    }
}

/// What an answer did: the approval is decided, or this approval was counted and more
/// are needed.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AnswerReply {
    Decided {
        task: TaskRow,
    },
    Voted {
        task: TaskRow,
        votes: u32,
        needed: u32,
    },
}

/// A grant as the UI asks for it (see `Engine::create_grant`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, TS)]
pub struct GrantRequest {
    /// A glob over `<server>.<tool>`.
    pub tool: String,
    /// Only tasks of this workflow.
    pub workflow: Option<String>,
    /// Only this task.
    pub task_id: Option<String>,
    /// A CEL condition over the call that must hold, e.g. `args.amount_cents <= 25000`.
    pub condition: Option<String>,
    /// At most this many calls.
    #[ts(type = "number | null")]
    pub max_uses: Option<i64>,
    /// For this many minutes from now.
    pub valid_for_minutes: Option<u32>,
    /// The approval it is made from.
    pub from_approval: Option<String>,
    pub note: Option<String>,
}

impl From<GrantRequest> for GrantSpec {
    fn from(request: GrantRequest) -> Self {
        let text =
            |value: Option<String>| value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        Self {
            tool: request.tool.trim().to_owned(),
            workflow: text(request.workflow),
            task_id: text(request.task_id),
            condition: text(request.condition),
            max_uses: request.max_uses,
            valid_for: request
                .valid_for_minutes
                .map(|m| std::time::Duration::from_secs(u64::from(m) * 60)),
            from_approval: text(request.from_approval),
            note: text(request.note),
        }
    }
}

/// Whether a grant still lets calls through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum GrantState {
    InForce,
    Revoked,
    UsedUp,
    Expired,
}

/// A grant with its scope, use count and expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct GrantRow {
    pub id: String,
    /// A glob over `<server>.<tool>`.
    pub tool: String,
    pub workflow: Option<String>,
    pub task_id: Option<String>,
    pub condition: Option<String>,
    #[ts(type = "number | null")]
    pub max_uses: Option<i64>,
    #[ts(type = "number")]
    pub uses: i64,
    #[ts(type = "number | null")]
    pub expires_at: Option<i64>,
    pub created_by: String,
    #[ts(type = "number")]
    pub created_at: i64,
    pub from_approval: Option<String>,
    pub note: Option<String>,
    #[ts(type = "number | null")]
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
    pub state: GrantState,
}

impl GrantRow {
    /// `now`: the engine's clock, which decides expiry.
    pub fn new(grant: &GrantRecord, now: i64) -> Self {
        let state = if grant.revoked_at.is_some() {
            GrantState::Revoked
        } else if grant.max_uses.is_some_and(|max| grant.uses >= max) {
            GrantState::UsedUp
        } else if grant.expires_at.is_some_and(|at| now >= at) {
            GrantState::Expired
        } else {
            GrantState::InForce
        };
        Self {
            id: grant.id.clone(),
            tool: grant.tool.clone(),
            workflow: grant.workflow.clone(),
            task_id: grant.task_id.clone(),
            condition: grant.condition.clone(),
            max_uses: grant.max_uses,
            uses: grant.uses,
            expires_at: grant.expires_at,
            created_by: grant.created_by.clone(),
            created_at: grant.created_at,
            from_approval: grant.from_approval.clone(),
            note: grant.note.clone(),
            revoked_at: grant.revoked_at,
            revoked_by: grant.revoked_by.clone(),
            state,
        }
    }
}

/// The policy in force, the people decisions are made for, and whether the policy file
/// on disk was refused.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct PolicyView {
    /// The policy file in force; `null` when there is none (then every call is denied).
    pub file: Option<String>,
    /// Where a policy file is looked for, when there is none.
    pub looked_for: Vec<String>,
    /// The SHA-256 of the file's text, 12 hex digits (`none` without a file).
    pub version: String,
    /// The file's `version` label.
    pub label: Option<String>,
    /// In file order.
    pub rules: Vec<RuleView>,
    /// Why the file as it is now was refused; the version above stays in force. Empty
    /// when the file is what is in force.
    pub problems: Vec<WorkflowProblem>,
    /// The identities file; `null` when there is none (then anyone may decide).
    pub identities_file: Option<String>,
    /// The listed identities, in file order.
    pub people: Vec<Person>,
    /// The roles of anyone not listed.
    pub default_roles: Vec<String>,
    /// Whether deciding an approval needs one of its approver roles (false without an
    /// identities file).
    pub approver_roles_checked: bool,
    /// Who this app decides as.
    pub acting_as: Person,
}

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum RuleEffect {
    Allow,
    RequireApproval,
    Deny,
}

/// One rule of the policy: which calls it selects and what it does with them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct RuleView {
    pub name: String,
    pub description: Option<String>,
    /// The line of the policy file it starts on.
    pub line: u32,
    /// Globs; empty means any.
    pub workflows: Vec<String>,
    pub roles: Vec<String>,
    pub servers: Vec<String>,
    pub tools: Vec<String>,
    /// Risk levels; empty means any.
    pub risk: Vec<String>,
    /// The CEL condition, if any.
    pub when: Option<String>,
    pub effect: RuleEffect,
    /// The effect in words: who must approve, how many, expiry and escalation, four
    /// eyes; or why it denies.
    pub effect_words: String,
}

impl From<&Rule> for RuleView {
    fn from(rule: &Rule) -> Self {
        let (effect, effect_words) = match &rule.effect {
            Effect::Allow => (RuleEffect::Allow, "allowed".to_owned()),
            Effect::RequireApproval(demand) => (RuleEffect::RequireApproval, demand.describe()),
            Effect::Deny { reason } => (RuleEffect::Deny, reason.clone()),
        };
        Self {
            name: rule.name.clone(),
            description: rule.description.clone(),
            line: rule.line,
            workflows: rule.workflows.clone(),
            roles: rule.roles.clone(),
            servers: rule.servers.clone(),
            tools: rule.tools.clone(),
            risk: rule.risk.iter().map(|r| r.as_str().to_owned()).collect(),
            when: rule.when.clone(),
            effect,
            effect_words,
        }
    }
}

/// The MCP servers of the servers file in force and where each stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct ServerList {
    /// The servers file, or `null` when there is none.
    pub servers_file: Option<String>,
    pub servers: Vec<ServerRow>,
}

/// Where one MCP server is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ServerHealth {
    Starting,
    Ready,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct ServerRow {
    pub name: String,
    pub health: ServerHealth,
    /// The server's tool names (known while it is ready).
    pub tools: Vec<String>,
    /// Why it is not running, when it failed.
    pub error: Option<String>,
}

impl From<&ServerStatus> for ServerRow {
    fn from(status: &ServerStatus) -> Self {
        let (health, tools, error) = match &status.state {
            McpServerState::Starting => (ServerHealth::Starting, Vec::new(), None),
            McpServerState::Ready { tools } => (ServerHealth::Ready, tools.clone(), None),
            McpServerState::Failed { error, .. } => {
                (ServerHealth::Failed, Vec::new(), Some(error.clone()))
            }
        };
        Self {
            name: status.name.clone(),
            health,
            tools,
            error,
        }
    }
}

/// One long-lived memory entry as the Memory view shows it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct MemoryEntry {
    pub id: String,
    /// Who or what it is about (a customer, an employee).
    pub subject: String,
    pub category: String,
    pub key: String,
    /// The value; `null` once forgotten.
    #[ts(type = "unknown")]
    pub value: Option<Value>,
    /// The entry in words, as the workflow (or the person correcting it) wrote it.
    pub text: String,
    /// The task that wrote it, if a workflow did.
    pub source_task: Option<String>,
    /// The step of that task.
    #[ts(type = "number | null")]
    pub source_step: Option<i64>,
    /// The person who wrote it (a correction), if a person did.
    pub source_person: Option<String>,
    #[ts(type = "number")]
    pub created_at: i64,
    /// Live, replaced by a newer entry, or forgotten.
    pub state: MemoryState,
    /// The entry that replaced this one.
    pub superseded_by: Option<String>,
    #[ts(type = "number | null")]
    pub deleted_at: Option<i64>,
    pub deleted_by: Option<String>,
}

/// Whether a memory entry is the one in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum MemoryState {
    Live,
    Replaced,
    Forgotten,
}

impl From<&MemoryRecord> for MemoryEntry {
    fn from(m: &MemoryRecord) -> Self {
        let state = if m.deleted_at.is_some() {
            MemoryState::Forgotten
        } else if m.superseded_by.is_some() {
            MemoryState::Replaced
        } else {
            MemoryState::Live
        };
        Self {
            id: m.id.clone(),
            subject: m.subject.clone(),
            category: m.category.clone(),
            key: m.key.clone(),
            value: m.value.clone(),
            text: m.text.clone(),
            source_task: m.source_task.clone(),
            source_step: m.source_step,
            source_person: m.source_person.clone(),
            created_at: m.created_at,
            state,
            superseded_by: m.superseded_by.clone(),
            deleted_at: m.deleted_at,
            deleted_by: m.deleted_by.clone(),
        }
    }
}

/// What the Memory view asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, TS)]
pub struct MemoryFilter {
    /// Only this subject (exact).
    pub subject: Option<String>,
    /// Words to find (SQLite FTS5 over the entries' text).
    pub search: Option<String>,
    /// Replaced and forgotten entries too.
    pub with_history: bool,
}

/// Where a lesson comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum LessonOrigin {
    Rejection,
    Edit,
    FailedCheck,
    LowRating,
    Policy,
}

/// Where a lesson is in its review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum LessonState {
    Proposed,
    Accepted,
    Dismissed,
}

/// A lesson for a workflow's agents, proposed from a person's correction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct LessonRow {
    pub id: String,
    pub workflow: String,
    pub origin: LessonOrigin,
    /// The approval, task or rating it comes from.
    pub source_ref: String,
    pub task_id: Option<String>,
    pub text: String,
    #[ts(type = "number")]
    pub created_at: i64,
    pub state: LessonState,
    /// Who accepted or dismissed it.
    pub reviewed_by: Option<String>,
    #[ts(type = "number | null")]
    pub reviewed_at: Option<i64>,
}

impl From<&LessonRecord> for LessonRow {
    fn from(l: &LessonRecord) -> Self {
        use airlock_engine::store::LessonSource;
        let origin = match l.source {
            LessonSource::Rejection => LessonOrigin::Rejection,
            LessonSource::Edit => LessonOrigin::Edit,
            LessonSource::FailedCheck => LessonOrigin::FailedCheck,
            LessonSource::LowRating => LessonOrigin::LowRating,
            LessonSource::Policy => LessonOrigin::Policy,
        };
        let (state, reviewed_by, reviewed_at) = match &l.status {
            LessonStatus::Proposed => (LessonState::Proposed, None, None),
            LessonStatus::Accepted { by, at } => {
                (LessonState::Accepted, Some(by.clone()), Some(*at))
            }
            LessonStatus::Dismissed { by, at } => {
                (LessonState::Dismissed, Some(by.clone()), Some(*at))
            }
        };
        Self {
            id: l.id.clone(),
            workflow: l.workflow.clone(),
            origin,
            source_ref: l.source_ref.clone(),
            task_id: l.task_id.clone(),
            text: l.text.clone(),
            created_at: l.created_at,
            state,
            reviewed_by,
            reviewed_at,
        }
    }
}

/// How the Metrics view groups a period: by day or by week (UTC; weeks start on Monday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum MetricsBucket {
    Day,
    Week,
}

/// The figures of one set of tasks, flat, as the Metrics view draws them. Rates are
/// fractions from 0 to 1, `null` when there was nothing to divide by; durations are in
/// milliseconds (median and 90th percentile), `null` when nothing was timed.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct FigureSet {
    #[ts(type = "number")]
    pub tasks: i64,
    #[ts(type = "number")]
    pub succeeded: i64,
    #[ts(type = "number")]
    pub failed: i64,
    #[ts(type = "number")]
    pub cancelled: i64,
    /// Running or waiting for a person.
    #[ts(type = "number")]
    pub open: i64,
    /// Succeeded ÷ ended.
    pub completion_rate: Option<f64>,
    /// Tasks that failed, had a call in doubt, were quarantined or failed an outcome check.
    #[ts(type = "number")]
    pub exceptions: i64,
    pub exception_rate: Option<f64>,
    #[ts(type = "number")]
    pub tool_calls: i64,
    /// Calls of a tool not safe to repeat, repeated with the same arguments in one task
    /// after the first took effect. Should be 0.
    #[ts(type = "number")]
    pub duplicate_actions: i64,
    #[ts(type = "number")]
    pub approvals_requested: i64,
    #[ts(type = "number")]
    pub approved: i64,
    #[ts(type = "number")]
    pub rejected: i64,
    #[ts(type = "number")]
    pub expired: i64,
    /// Approved after a person changed the arguments.
    #[ts(type = "number")]
    pub overridden: i64,
    pub approval_rate: Option<f64>,
    pub rejection_rate: Option<f64>,
    pub override_rate: Option<f64>,
    #[ts(type = "number | null")]
    pub time_to_decision_p50_ms: Option<i64>,
    #[ts(type = "number | null")]
    pub time_to_decision_p90_ms: Option<i64>,
    #[ts(type = "number")]
    pub checks_run: i64,
    #[ts(type = "number")]
    pub checks_passed: i64,
    pub check_pass_rate: Option<f64>,
    /// Edits, in-doubt calls resolved by a person, and rejections.
    #[ts(type = "number")]
    pub corrections: i64,
    #[ts(type = "number")]
    pub ratings: i64,
    /// The mean rating, 1 to 5.
    pub satisfaction: Option<f64>,
    /// Input and output tokens of every model turn (cache reads and writes included).
    #[ts(type = "number")]
    pub tokens: i64,
    #[ts(type = "number")]
    pub model_turns: i64,
    #[ts(type = "number | null")]
    pub wall_time_p50_ms: Option<i64>,
    #[ts(type = "number | null")]
    pub wall_time_p90_ms: Option<i64>,
}

impl From<&Figures> for FigureSet {
    fn from(f: &Figures) -> Self {
        let a = &f.approvals;
        Self {
            tasks: f.tasks,
            succeeded: f.succeeded,
            failed: f.failed,
            cancelled: f.cancelled,
            open: f.open,
            completion_rate: f.completion_rate,
            exceptions: f.exceptions.tasks,
            exception_rate: f.exceptions.rate,
            tool_calls: f.tool_calls,
            duplicate_actions: f.duplicate_actions,
            approvals_requested: a.requested,
            approved: a.approved,
            rejected: a.rejected,
            expired: a.expired,
            overridden: a.edited,
            approval_rate: a.approval_rate,
            rejection_rate: a.rejection_rate,
            override_rate: a.override_rate,
            time_to_decision_p50_ms: a.time_to_decision.p50_ms,
            time_to_decision_p90_ms: a.time_to_decision.p90_ms,
            checks_run: f.checks.runs,
            checks_passed: f.checks.passed,
            check_pass_rate: f.checks.pass_rate,
            corrections: f.corrections.total,
            ratings: f.satisfaction.ratings,
            satisfaction: f.satisfaction.mean,
            tokens: f
                .tokens
                .iter()
                .map(|t| {
                    t.input_tokens
                        + t.output_tokens
                        + t.cache_creation_input_tokens
                        + t.cache_read_input_tokens
                })
                .sum(),
            model_turns: f.tokens.iter().map(|t| t.turns).sum(),
            wall_time_p50_ms: f.wall_time.p50_ms,
            wall_time_p90_ms: f.wall_time.p90_ms,
        }
    }
}

/// One workflow's figures over the period.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct WorkflowFigureSet {
    pub workflow: String,
    pub figures: FigureSet,
}

/// One day's or week's figures.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct BucketFigureSet {
    /// The bucket's first millisecond (UTC midnight; a Monday for weeks).
    #[ts(type = "number")]
    pub start: i64,
    pub figures: FigureSet,
}

/// The Metrics view: a period's figures in total, per workflow and per day or week (every
/// bucket of the period, empty ones included, oldest first).
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct MetricsView {
    /// The workflow the figures are about; every workflow when `null`.
    pub workflow: Option<String>,
    /// Tasks created at or after this time…
    #[ts(type = "number")]
    pub since: i64,
    /// …and before this one.
    #[ts(type = "number")]
    pub until: i64,
    pub bucket: MetricsBucket,
    pub total: FigureSet,
    pub workflows: Vec<WorkflowFigureSet>,
    pub buckets: Vec<BucketFigureSet>,
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// One generated TypeScript file: its path relative to `ui/src/bindings/` and its contents.
#[derive(Debug)]
pub struct Binding {
    pub file: PathBuf,
    pub contents: String,
}

/// Generates the TypeScript for every wire type. This list is the IPC contract.
pub fn typescript_bindings() -> Result<Vec<Binding>, ts_rs::ExportError> {
    fn one<T: TS + 'static>(cfg: &ts_rs::Config) -> Result<Binding, ts_rs::ExportError> {
        let file = T::output_path().ok_or(ts_rs::ExportError::CannotBeExported(
            std::any::type_name::<T>(),
        ))?;
        Ok(Binding {
            file,
            contents: T::export_to_string(cfg)?,
        })
    }
    let cfg = ts_rs::Config::new();
    Ok(vec![
        one::<AppInfo>(&cfg)?,
        one::<CommandError>(&cfg)?,
        one::<ErrorCode>(&cfg)?,
        one::<TaskStatus>(&cfg)?,
        one::<TaskChanged>(&cfg)?,
        one::<OpenInbox>(&cfg)?,
        one::<WorkflowInfo>(&cfg)?,
        one::<InputInfo>(&cfg)?,
        one::<InputKind>(&cfg)?,
        one::<WorkflowList>(&cfg)?,
        one::<WorkflowProblem>(&cfg)?,
        one::<StartedTask>(&cfg)?,
        one::<TaskRow>(&cfg)?,
        one::<TaskDetail>(&cfg)?,
        one::<TimelineEntry>(&cfg)?,
        one::<ModelCost>(&cfg)?,
        one::<RatingView>(&cfg)?,
        one::<CallOutcome>(&cfg)?,
        one::<ToolCallRow>(&cfg)?,
        one::<ApprovalState>(&cfg)?,
        one::<ApprovalRow>(&cfg)?,
        one::<HeldCallView>(&cfg)?,
        one::<SeenValue>(&cfg)?,
        one::<VoteView>(&cfg)?,
        one::<Inbox>(&cfg)?,
        one::<InDoubtCall>(&cfg)?,
        one::<CancelResult>(&cfg)?,
        one::<CancelReply>(&cfg)?,
        one::<Person>(&cfg)?,
        one::<AnswerRequest>(&cfg)?,
        one::<AnswerReply>(&cfg)?,
        one::<GrantRequest>(&cfg)?,
        one::<GrantState>(&cfg)?,
        one::<GrantRow>(&cfg)?,
        one::<PolicyView>(&cfg)?,
        one::<RuleEffect>(&cfg)?,
        one::<RuleView>(&cfg)?,
        one::<ServerList>(&cfg)?,
        one::<ServerHealth>(&cfg)?,
        one::<ServerRow>(&cfg)?,
        one::<MemoryEntry>(&cfg)?,
        one::<MemoryState>(&cfg)?,
        one::<MemoryFilter>(&cfg)?,
        one::<LessonOrigin>(&cfg)?,
        one::<LessonState>(&cfg)?,
        one::<LessonRow>(&cfg)?,
        one::<MetricsBucket>(&cfg)?,
        one::<FigureSet>(&cfg)?,
        one::<WorkflowFigureSet>(&cfg)?,
        one::<BucketFigureSet>(&cfg)?,
        one::<MetricsView>(&cfg)?,
        one::<HistoryQuery>(&cfg)?,
        one::<HistoryOutcome>(&cfg)?,
        one::<Allowance>(&cfg)?,
        one::<Refusal>(&cfg)?,
        one::<HistoryCursor>(&cfg)?,
        one::<HistoryCall>(&cfg)?,
        one::<HistoryChoices>(&cfg)?,
        one::<HistoryExport>(&cfg)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::{ModelCost, sentence};
    use airlock_engine::ModelUsage;
    use airlock_engine::spend::ModelSpend;

    fn spend(model: &str, counted_turns: u64) -> ModelSpend {
        ModelSpend {
            model: model.into(),
            turns: 2,
            counted_turns,
            usage: ModelUsage {
                input_tokens: 1_000_000,
                output_tokens: 100_000,
                cache_creation_input_tokens: 0,
                cache_read_input_tokens: 0,
            },
        }
    }

    #[test]
    fn a_known_model_is_priced_an_unknown_one_is_not_and_uncounted_turns_cost_nothing_known() {
        // Sonnet 4: $3 per million in, $15 per million out.
        let sonnet = ModelCost::from(&spend("claude (claude-sonnet-4-5)", 2));
        assert!(
            sonnet.usd.is_some_and(|usd| (usd - 4.5).abs() < 1e-9),
            "{sonnet:?}"
        );
        assert_eq!(sonnet.input_tokens, 1_000_000);
        assert_eq!(
            ModelCost::from(&spend("claude (claude-mystery-9)", 2)).usd,
            None
        );
        assert_eq!(
            ModelCost::from(&spend("scripted (offline demo model)", 0)).usd,
            None
        );
    }

    #[test]
    fn engine_clauses_become_sentences() {
        assert_eq!(
            sentence("approval a1 was already decided"),
            "Approval a1 was already decided."
        );
        assert_eq!(sentence("no task `x`!"), "No task `x`!");
        assert_eq!(sentence("  "), "");
    }
}
