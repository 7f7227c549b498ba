//! Types that cross the IPC boundary to the TypeScript UI.
//!
//! They are deliberately separate from engine and store types: a rename in the domain must
//! not silently change what the UI receives. Each one derives [`ts_rs::TS`] and is listed in
//! [`typescript_bindings`]; a test compares the generated TypeScript with the committed files
//! in `ui/src/bindings/` and fails on drift. Timestamps are milliseconds since the Unix
//! epoch, as the store records them; the UI formats them and never makes its own.

use std::path::{Path, PathBuf};

use airlock_engine::EngineError;
use airlock_engine::store::{
    ApprovalRecord, ApprovalStatus, EventRecord, TaskRecord, TaskStatus as StoreTaskStatus,
    ToolCallOutcome, ToolCallRecord,
};
use airlock_engine::workflow::{Diagnostics, InputSpec, InputType, Workflow};
use airlock_mcp::{ServerState as McpServerState, ServerStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ts_rs::TS;

use crate::locations::{LocationError, Locations};
use crate::timeline;

/// What the Overview panel shows: which build is running and where its data lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct AppInfo {
    /// The app's version (the workspace version it was built from).
    pub version: String,
    /// The SQLite database file the app uses (`$AIRLOCK_DB`, else `<data_dir>/airlock.sqlite`).
    pub database_path: String,
    /// The workspace folder (`$AIRLOCK_WORKSPACE`), if one was given.
    pub workspace_path: Option<String>,
    /// The per-user folder Airlock keeps its data in.
    pub data_dir: String,
}

impl AppInfo {
    pub fn new(version: &str, locations: &Locations) -> Self {
        Self {
            version: version.to_owned(),
            database_path: display(&locations.database_path),
            workspace_path: locations.workspace_path.as_deref().map(display),
            data_dir: display(&locations.data_dir),
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
        let code = match &error {
            EngineError::Inputs { .. }
            | EngineError::EditRefused { .. }
            | EngineError::BadGrant(_) => ErrorCode::InvalidInput,
            EngineError::NoTask(_)
            | EngineError::NoApproval(_)
            | EngineError::NoToolCall(_)
            | EngineError::NoGrant(_)
            | EngineError::NoTool(_)
            | EngineError::AmbiguousTask { .. } => ErrorCode::NotFound,
            EngineError::WrongStatus { .. }
            | EngineError::AlreadyDecided(_)
            | EngineError::NotAllowed { .. }
            | EngineError::AlreadyVoted { .. }
            | EngineError::Busy { .. } => ErrorCode::Conflict,
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
fn sentence(text: &str) -> String {
    let mut chars = text.trim().chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
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
            problems: problems
                .iter()
                .map(|d| WorkflowProblem {
                    file: display(&d.file),
                    line: d.line,
                    column: d.column,
                    code: d.code.as_str().to_owned(),
                    message: d.message.clone(),
                })
                .collect(),
        }
    }
}

/// One validation error in a workflow file, at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct WorkflowProblem {
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// The stable diagnostic code, e.g. `unknown-state`.
    pub code: String,
    pub message: String,
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
}

impl TaskDetail {
    pub fn new(
        task: &TaskRecord,
        events: &[EventRecord],
        calls: &[ToolCallRecord],
        approvals: &[ApprovalRecord],
    ) -> Self {
        Self {
            task: task.into(),
            inputs: task.inputs.clone(),
            outputs: task.projection.state.clone(),
            events: events.iter().map(TimelineEntry::from).collect(),
            tool_calls: calls.iter().map(ToolCallRow::from).collect(),
            approvals: approvals
                .iter()
                .map(|a| ApprovalRow::new(a, task))
                .collect(),
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

/// What became of a tool call; `intent_only` while the outcome is not recorded yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    IntentOnly,
    Succeeded,
    Failed,
    InDoubt,
    Happened,
    NotHappened,
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
}

/// An approval with the task it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct ApprovalRow {
    pub id: String,
    pub task_id: String,
    pub workflow: String,
    /// The approval state of the workflow.
    pub state_name: String,
    /// Who requested the task.
    pub requester: String,
    pub prompt: String,
    /// The roles or people the workflow names as approvers.
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
}

impl ApprovalRow {
    pub fn new(approval: &ApprovalRecord, task: &TaskRecord) -> Self {
        let (state, decided_by, decided_at, reason) = match &approval.status {
            ApprovalStatus::Pending => (ApprovalState::Pending, None, None, None),
            ApprovalStatus::Approved { by, at, reason, .. } => (
                ApprovalState::Approved,
                Some(by.clone()),
                Some(*at),
                reason.clone(),
            ),
            ApprovalStatus::Rejected { by, at, reason } => (
                ApprovalState::Rejected,
                Some(by.clone()),
                Some(*at),
                reason.clone(),
            ),
            ApprovalStatus::Expired { at } => (ApprovalState::Expired, None, Some(*at), None),
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
        one::<WorkflowInfo>(&cfg)?,
        one::<InputInfo>(&cfg)?,
        one::<InputKind>(&cfg)?,
        one::<WorkflowList>(&cfg)?,
        one::<WorkflowProblem>(&cfg)?,
        one::<StartedTask>(&cfg)?,
        one::<TaskRow>(&cfg)?,
        one::<TaskDetail>(&cfg)?,
        one::<TimelineEntry>(&cfg)?,
        one::<CallOutcome>(&cfg)?,
        one::<ToolCallRow>(&cfg)?,
        one::<ApprovalState>(&cfg)?,
        one::<ApprovalRow>(&cfg)?,
        one::<ServerList>(&cfg)?,
        one::<ServerHealth>(&cfg)?,
        one::<ServerRow>(&cfg)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::sentence;

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
