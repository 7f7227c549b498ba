//! The durable store: one SQLite file holding workflows, tasks, their append-only event
//! logs, steps, the tool-call ledger, approvals and engine leases.
//!
//! The store knows SQL and nothing about workflow semantics: the engine decides what a
//! transition means and hands the store a [`TaskCommit`] to make durable. All writes of
//! one process go through a single writer connection that groups concurrent commits into
//! one transaction (one fsync for many tasks).

mod approval_votes;
mod audit;
mod commit;
mod error;
mod grants;
mod history;
mod lease;
mod lessons;
mod memory;
mod metrics;
mod migrate;
mod open;
mod policy_versions;
mod query;
mod records;
mod tool_pins;
mod writer;

pub use approval_votes::ApprovalVote;
pub use audit::{
    AuditAnchor, AuditEntry, AuditEntryWrite, AuditFault, AuditFilter, AuditProblem, AuditReport,
    GENESIS, UNAUDITED_KINDS, entry_hash,
};
pub use commit::{
    ApprovalWrite, CommitOutcome, NewTask, ProposedCall, StepWrite, TaskCommit, ToolCallWrite,
};
pub use error::StoreError;
pub use grants::{GrantRecord, NewGrant};
pub use history::{
    HistoryChoices, HistoryFilter, HistoryKey, HistoryRange, HistoryRow, MAX_HISTORY_PAGE,
    OutcomeFilter, server_of,
};
pub use lease::{Claimed, EngineRegistration};
pub use lessons::{LessonRecord, LessonSource, LessonStatus};
pub use memory::{MemoryQuery, MemoryRecord, NewMemory};
pub use metrics::{
    ApprovalFigures, Bucket, BucketFigures, CheckFigures, Corrections, DEFAULT_DUPLICATE_WINDOW,
    ExceptionRecord, Exceptions, FailureMode, Figures, HeldCallDecision, Metrics, MetricsFilter,
    ModelTokens, OverrideRecord, RatingRecord, Satisfaction, Spread, WorkflowFigures,
};
pub use open::{Durability, Store, StoreOptions};
pub use policy_versions::PolicyVersionRecord;
pub use query::{IdKind, TaskFilter};
pub use records::{
    AllowedBy, ApprovalRecord, ApprovalStatus, CallAllowance, CallRefusal, EventRecord, HeldCall,
    NewEvent, RefusedBy, StepRecord, TaskProjection, TaskRecord, TaskStatus, ToolCallOutcome,
    ToolCallRecord, WorkflowRecord,
};
pub use tool_pins::{PinnedChange, ToolPin};

/// Milliseconds since the Unix epoch; every timestamp in the store uses it.
pub type Millis = i64;
