//! Engine errors: what a caller of the engine API can get back.

use airlock_store::{CommitOutcome, StoreError, TaskStatus};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the inputs do not fit workflow `{workflow}`:\n{errors}")]
    Inputs {
        workflow: String,
        errors: airlock_workflow::InputErrors,
    },
    #[error("workflow `{workflow}` cannot run with the tools at hand:\n{diagnostics}")]
    WorkflowTools {
        workflow: String,
        diagnostics: airlock_workflow::Diagnostics,
    },
    #[error("no task `{0}`")]
    NoTask(String),
    #[error("`{prefix}` matches several tasks: {}", matches.join(", "))]
    AmbiguousTask {
        prefix: String,
        matches: Vec<String>,
    },
    #[error("`{prefix}` matches several {what}: {}", matches.join(", "))]
    Ambiguous {
        what: &'static str,
        prefix: String,
        matches: Vec<String>,
    },
    #[error("no approval `{0}`")]
    NoApproval(String),
    #[error("no tool call `{0}`")]
    NoToolCall(String),
    #[error("task {task} is {status}, so it cannot be {action}")]
    WrongStatus {
        task: String,
        status: TaskStatus,
        action: &'static str,
    },
    #[error("approval {0} was already decided")]
    AlreadyDecided(String),
    #[error("approval {approval}: {reason}")]
    NotAllowed { approval: String, reason: String },
    /// Its time ran out before this answer: it is recorded as expired (the task takes
    /// its expiry path, a held call is not made), whatever the answer was.
    #[error(
        "approval {approval} expired before it was decided: it is recorded as expired, and the task takes its expiry path"
    )]
    Expired { approval: String, task: String },
    #[error("{who} has already approved {approval}; it needs another approver")]
    AlreadyVoted { approval: String, who: String },
    #[error("approval {approval}: the edited call cannot be approved: {reason}")]
    EditRefused { approval: String, reason: String },
    #[error("no grant `{0}` that is still in force")]
    NoGrant(String),
    #[error("the grant cannot be made: {0}")]
    BadGrant(String),
    #[error("no tool `{0}`")]
    NoTool(String),
    #[error("no memory entry `{0}` that is still in force")]
    NoMemory(String),
    #[error("no proposed lesson `{0}`")]
    NoLesson(String),
    #[error("task {task} is being run by another engine ({holder})")]
    Busy { task: String, holder: String },
    #[error("the stored definition of workflow #{id} cannot be used: {detail}")]
    BadStoredWorkflow { id: i64, detail: String },
    #[error("task {task}: the store refused a transition ({outcome:?})")]
    Refused {
        task: String,
        outcome: CommitOutcome,
    },
}
