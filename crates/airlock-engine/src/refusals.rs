//! Refused proposals on the ledger. A proposed call that is refused — by the static checks,
//! a policy rule, a person, or an approval's expiry — is never made, and still gets a
//! ledger row, so the history of every call shows what was tried and stopped. The row is
//! whole when written (outcome `refused`, what refused it, the reason as its error), in
//! the same draft as the refusal's events: no intent is ever left without an outcome, so
//! a refused call can never be taken for one in doubt after a restart.
//!
//! A call held for approval is refused too when its task is cancelled while it waits:
//! the approval is withdrawn (nobody decided it), and the call is refused by the cancel,
//! naming whoever cancelled — never as a person's rejection.

use airlock_store::{CallRefusal, HeldCall, ProposedCall, Store, TaskProjection, ToolCallWrite};
use serde_json::Value;

use crate::draft::Draft;
use crate::error::EngineError;
use crate::event::{Phase, phase_of};
use crate::ledger::{args_hash, idempotency_key, new_id};

/// A proposal that was refused, as the ledger records it.
pub(crate) struct Refused<'a> {
    pub tool: &'a str,
    pub args: &'a Value,
    pub call_index: i64,
    /// Whether the tool is safe to repeat, when it is known (for the record only: a
    /// refused row is never made, counted as a call, or taken for a repeat).
    pub idempotent: bool,
    pub refusal: CallRefusal,
    pub reason: &'a str,
}

/// Why a call held on `approval_id` was not made when `by` cancelled its task, and the
/// refusal as the ledger records it.
pub(crate) fn withdrawn(
    approval_id: &str,
    by: &str,
    reason: Option<&str>,
    rule: Option<String>,
) -> (String, CallRefusal) {
    let why = match reason {
        Some(reason) => format!(
            "refused: {by} cancelled the task while this call waited for approval: {reason}"
        ),
        None => format!("refused: {by} cancelled the task while this call waited for approval"),
    };
    let refusal = CallRefusal::Cancel {
        approval_id: approval_id.to_owned(),
        cancelled_by: by.to_owned(),
        rule,
    };
    (why, refusal)
}

impl Draft {
    /// Drafts the ledger row of a refused proposal at the current step and attempt.
    pub(crate) fn record_refusal(&mut self, refused: Refused<'_>) {
        let step_no = self.proj.step_no;
        self.tool_calls.push(ToolCallWrite::Refused {
            call: ProposedCall {
                id: new_id(),
                step_no,
                attempt: self.proj.attempt,
                call_index: refused.call_index,
                tool: refused.tool.to_owned(),
                args: refused.args.clone(),
                args_hash: args_hash(refused.args),
                idempotency_key: idempotency_key(&self.task_id, step_no, refused.call_index),
                idempotent: refused.idempotent,
            },
            refusal: refused.refusal,
            reason: refused.reason.to_owned(),
        });
    }
}

/// The call a task holds for approval, when it waits on one (a workflow's `approval`
/// state holds no call).
pub(crate) async fn held_call(
    store: &Store,
    proj: &TaskProjection,
) -> Result<Option<HeldCall>, EngineError> {
    let Some(Phase::WaitingApproval { approval_id }) = phase_of(proj) else {
        return Ok(None);
    };
    let approval = store.approval(&approval_id).await?;
    Ok(approval.and_then(|approval| approval.held_call))
}
