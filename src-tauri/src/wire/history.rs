//! The History view's types: its filter, a row, the filter's choices and an export.

use airlock_engine::store::{
    AllowedBy, CallAllowance, CallRefusal, HistoryChoices as StoreChoices, HistoryFilter,
    HistoryKey, HistoryRow, OutcomeFilter, RefusedBy, ToolCallOutcome,
};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::ToolCallRow;

/// What the History view filters by; every field that is set narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, TS)]
pub struct HistoryQuery {
    /// The server part of `server.tool`.
    pub server: Option<String>,
    /// The full tool name, `server.tool`.
    pub tool: Option<String>,
    pub outcome: Option<HistoryOutcome>,
    pub allowed_by: Option<Allowance>,
    /// Calls refused this way.
    pub refused_by: Option<Refusal>,
    /// A task id, or the start of one.
    pub task: Option<String>,
    pub workflow: Option<String>,
    /// Calls recorded at or after this time.
    #[ts(type = "number | null")]
    pub since: Option<i64>,
    /// Calls recorded before this time.
    #[ts(type = "number | null")]
    pub until: Option<i64>,
    pub approved_by: Option<String>,
    /// Calls this person rejected.
    pub rejected_by: Option<String>,
    /// Words in the tool's name, the arguments or the error.
    pub text: Option<String>,
}

/// A call's outcome as a filter: `pending` while only its intent is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum HistoryOutcome {
    Pending,
    Succeeded,
    Failed,
    InDoubt,
    Happened,
    NotHappened,
    /// Refused before it was made.
    Refused,
}

/// What refused a proposed call, so it was never made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// A policy rule denied it (or no rule allowed it).
    Policy,
    /// A person rejected it.
    Person,
    /// Its approval expired before anyone decided.
    Expiry,
    /// Its task was cancelled while it waited for approval.
    Cancel,
    /// The static checks stopped it (a tool the step may not use, arguments that break
    /// its schema, a changed tool held for review).
    Check,
}

/// What let a call through the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Allowance {
    /// A rule allowed it.
    Policy,
    /// A person's grant covered it.
    Grant,
    /// People approved it.
    Approval,
}

/// Where a row sits in the history's order (newest first); pages continue after one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct HistoryCursor {
    #[ts(type = "number")]
    pub intent_at: i64,
    pub id: String,
}

/// One tool call with its task and what let it through.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct HistoryCall {
    pub task_id: String,
    pub workflow: String,
    pub server: String,
    /// The call as Task detail shows it; flattened, so the UI reads `call.tool` either way.
    #[serde(flatten)]
    #[ts(flatten)]
    pub call: ToolCallRow,
    /// `null` for a refused call, and for one recorded before Airlock kept this.
    pub allowed_by: Option<Allowance>,
    /// What refused it; set exactly when the outcome is `refused` (the reason is `error`).
    pub refused_by: Option<Refusal>,
    /// The policy rule that decided the call: the one that let it through, the one that
    /// denied it, or the one that asked for the approval it was refused on.
    pub rule: Option<String>,
    /// Who approved it (for `approval`).
    pub approved_by: Option<String>,
    /// Who rejected it (for `person`).
    pub rejected_by: Option<String>,
    /// The grant's or the approval's id.
    pub allowed_ref: Option<String>,
}

/// Values worth offering in the filter bar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct HistoryChoices {
    pub servers: Vec<String>,
    pub tools: Vec<String>,
    pub workflows: Vec<String>,
    pub approvers: Vec<String>,
    pub rejecters: Vec<String>,
}

/// A finished CSV export: where the file is and how many calls it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct HistoryExport {
    pub path: String,
    #[ts(type = "number")]
    pub rows: u64,
}

impl HistoryQuery {
    /// The store's filter; blank text fields count as unset.
    pub fn to_filter(&self) -> HistoryFilter {
        let text = |s: &Option<String>| {
            s.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        HistoryFilter {
            server: text(&self.server),
            tool: text(&self.tool),
            outcome: self.outcome.map(|o| match o {
                HistoryOutcome::Pending => OutcomeFilter::Pending,
                HistoryOutcome::Succeeded => OutcomeFilter::Is(ToolCallOutcome::Succeeded),
                HistoryOutcome::Failed => OutcomeFilter::Is(ToolCallOutcome::Failed),
                HistoryOutcome::InDoubt => OutcomeFilter::Is(ToolCallOutcome::InDoubt),
                HistoryOutcome::Happened => OutcomeFilter::Is(ToolCallOutcome::Happened),
                HistoryOutcome::NotHappened => OutcomeFilter::Is(ToolCallOutcome::NotHappened),
                HistoryOutcome::Refused => OutcomeFilter::Is(ToolCallOutcome::Refused),
            }),
            allowed_by: self.allowed_by.map(|a| match a {
                Allowance::Policy => AllowedBy::Policy,
                Allowance::Grant => AllowedBy::Grant,
                Allowance::Approval => AllowedBy::Approval,
            }),
            refused_by: self.refused_by.map(|r| match r {
                Refusal::Policy => RefusedBy::Policy,
                Refusal::Person => RefusedBy::Person,
                Refusal::Expiry => RefusedBy::Expiry,
                Refusal::Cancel => RefusedBy::Cancel,
                Refusal::Check => RefusedBy::Check,
            }),
            task: text(&self.task),
            workflow: text(&self.workflow),
            since: self.since,
            until: self.until,
            approved_by: text(&self.approved_by),
            rejected_by: text(&self.rejected_by),
            text: text(&self.text),
        }
    }
}

impl From<HistoryCursor> for HistoryKey {
    fn from(c: HistoryCursor) -> Self {
        HistoryKey {
            intent_at: c.intent_at,
            id: c.id,
        }
    }
}

impl From<&HistoryRow> for HistoryCall {
    fn from(row: &HistoryRow) -> Self {
        let c = &row.call;
        let allowed = c.allowed.as_ref();
        let refused = c.refusal.as_ref();
        Self {
            task_id: c.task_id.clone(),
            workflow: row.workflow.clone(),
            server: row.server().to_owned(),
            call: ToolCallRow::from(c),
            allowed_by: allowed.map(|a| match a {
                CallAllowance::Policy { .. } => Allowance::Policy,
                CallAllowance::Grant { .. } => Allowance::Grant,
                CallAllowance::Approval { .. } => Allowance::Approval,
            }),
            refused_by: refused.map(|r| match r.kind() {
                RefusedBy::Policy => Refusal::Policy,
                RefusedBy::Person => Refusal::Person,
                RefusedBy::Expiry => Refusal::Expiry,
                RefusedBy::Cancel => Refusal::Cancel,
                RefusedBy::Check => Refusal::Check,
            }),
            rule: allowed
                .and_then(CallAllowance::rule)
                .or_else(|| refused.and_then(CallRefusal::rule))
                .map(str::to_owned),
            approved_by: allowed.and_then(CallAllowance::approver).map(str::to_owned),
            rejected_by: refused
                .and_then(CallRefusal::rejected_by)
                .map(str::to_owned),
            allowed_ref: allowed
                .and_then(CallAllowance::reference)
                .map(str::to_owned),
        }
    }
}

impl From<StoreChoices> for HistoryChoices {
    fn from(c: StoreChoices) -> Self {
        let mut servers: Vec<String> = c
            .tools
            .iter()
            .map(|t| airlock_engine::store::server_of(t).to_owned())
            .collect();
        servers.dedup();
        Self {
            servers,
            tools: c.tools,
            workflows: c.workflows,
            approvers: c.approvers,
            rejecters: c.rejecters,
        }
    }
}
