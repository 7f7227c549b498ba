//! Runs one task from wherever its history left it until it ends or waits for a person.
//!
//! The order of things is the whole point: a step's start and its call intent are
//! committed before the call is made; the call's outcome is committed (together with
//! the pure transitions that follow it, up to the next intent) before anything else
//! happens. A runner that dies anywhere leaves a history another runner can continue
//! without repeating an effect: an intent with no outcome is retried only for idempotent
//! tools, and otherwise becomes an in-doubt call for a person to settle.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_store::{
    ApprovalWrite, CallAllowance, CallRefusal, LessonSource, MemoryQuery, Millis, NewMemory,
    ProposedCall, StepWrite, StoreError, TaskRecord, TaskStatus, ToolCallOutcome, ToolCallWrite,
};
use airlock_workflow::{EndStatus, Scope, State, StateKind, Workflow, glob_matches};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::checks::check_pin;
use crate::clock::{millis, with_timeout};
use crate::draft::Draft;
use crate::engine::Inner;
use crate::error::EngineError;
use crate::event::{Phase, TaskEvent, phase_of};
use crate::gate::{CallSite, Verdict};
use crate::ledger::{args_hash, idempotency_key, new_id};
use crate::model::{ModelReply, ModelRequest, Turn};
use crate::tool_host::{ProgressSink, ToolError, ToolInfo, ToolProgress, ToolRequest};

mod postconditions;
use crate::refusals::{Refused, held_call};

/// Flushed at least this often even when only pure transitions pile up (a looping workflow).
const MAX_DRAFT_EVENTS: usize = 256;
/// A call without a `timeout` in its state is given up after this long.
const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(300);
/// Final answers that break the output schema are sent back this many times at most.
const MAX_REPAIRS: usize = 2;
/// Agent call indexes are `turn * CALLS_PER_TURN + position`.
const CALLS_PER_TURN: i64 = 1000;
/// A call's progress is committed at most this often (of the engine's clock).
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// A memory subject: the expression's string (a number or other value in its JSON form).
fn subject_of(expr: &airlock_workflow::Expr, scope: &Scope) -> Result<String, String> {
    match expr.eval(scope).map_err(|e| e.to_string())? {
        Value::String(s) if !s.trim().is_empty() => Ok(s),
        Value::String(_) | Value::Null => {
            Err(format!("the memory subject `{}` is empty", expr.source()))
        }
        other => Ok(other.to_string()),
    }
}

/// A person's request to stop a task, seen by its runner at the next safe point.
#[derive(Default)]
pub(crate) struct CancelFlag {
    requested: Mutex<Option<(String, Option<String>)>>,
    notify: Notify,
}

impl CancelFlag {
    pub fn request(&self, by: &str, reason: Option<String>) {
        if let Ok(mut r) = self.requested.lock() {
            r.get_or_insert((by.to_owned(), reason));
        }
        self.notify.notify_waiters();
    }

    fn get(&self) -> Option<(String, Option<String>)> {
        self.requested.lock().ok().and_then(|r| r.clone())
    }
}

/// A call whose intent is recorded and whose outcome is not.
#[derive(Clone, Debug)]
struct Intent {
    call_id: String,
    tool: String,
    args: Value,
    key: String,
    idempotent: bool,
}

/// The progress of the call under way, between commits.
#[derive(Default)]
struct ProgressLog {
    /// The latest report not yet in the draft.
    pending: Option<ToolProgress>,
    /// When progress was last committed (the engine's clock).
    last_commit: Option<Millis>,
    /// A progress commit failed: the rest waits for the outcome.
    stopped: bool,
}

impl ProgressLog {
    /// Keeps a report as the latest; one whose numbers JSON cannot hold is ignored.
    fn note(&mut self, mut report: ToolProgress) {
        if !report.progress.is_finite() {
            return;
        }
        report.total = report.total.filter(|t| t.is_finite());
        self.pending = Some(report);
    }

    /// When the pending report may be committed on its own, if there is one.
    fn next_commit_at(&self) -> Option<Millis> {
        if self.stopped || self.pending.is_none() {
            return None;
        }
        Some(self.last_commit.map_or(Millis::MIN, |at| {
            at.saturating_add(millis(PROGRESS_INTERVAL))
        }))
    }

    /// Moves the pending report into the draft as an event; false when there is none.
    fn take_into(&mut self, draft: &mut Draft, call_id: &str) -> bool {
        let Some(report) = self.pending.take() else {
            return false;
        };
        draft.push(TaskEvent::ToolProgress {
            call_id: call_id.to_owned(),
            progress: report.progress,
            total: report.total,
            message: report.message,
        });
        true
    }
}

pub(crate) struct Runner {
    inner: Arc<Inner>,
    wf: Arc<Workflow>,
    inputs: Value,
    task_meta: Value,
    draft: Draft,
    cancel: Arc<CancelFlag>,
    inflight: Option<Intent>,
}

impl Runner {
    pub fn new(
        inner: Arc<Inner>,
        wf: Arc<Workflow>,
        task: &TaskRecord,
        cancel: Arc<CancelFlag>,
    ) -> Runner {
        if let Some(by) = &task.cancel_requested {
            cancel.request(by, None);
        }
        Runner {
            task_meta: json!({
                "id": task.id,
                "requester": task.requester,
                "workflow": task.workflow_name,
            }),
            inputs: task.inputs.clone(),
            draft: Draft::of(task),
            inner,
            wf,
            cancel,
            inflight: None,
        }
    }

    fn owner(&self) -> String {
        self.inner.id.clone()
    }

    async fn flush(&mut self) -> Result<(), EngineError> {
        if self.draft.is_empty() {
            return Ok(());
        }
        let owner = self.owner();
        self.draft.commit(&self.inner, Some(&owner), false).await
    }

    /// Runs until the task ends or waits; always gives the lease back. `interrupted`: the
    /// lease was taken over from an engine that stopped while running the task.
    pub async fn run(mut self, interrupted: bool) -> Result<TaskStatus, EngineError> {
        let outcome = self.drive(interrupted).await;
        let owner = self.owner();
        match outcome {
            Ok(()) => {
                if self.draft.is_empty() {
                    self.inner
                        .store
                        .release(&self.draft.task_id, &owner)
                        .await?;
                } else {
                    self.draft.commit(&self.inner, Some(&owner), true).await?;
                }
                Ok(self.draft.proj.status)
            }
            Err(e @ EngineError::Refused { .. }) => Err(e),
            Err(e) => {
                // Something in the engine (not the task's own steps) failed: count it
                // toward quarantine and let the task be picked up again later.
                self.note_failure(&e).await;
                Err(e)
            }
        }
    }

    async fn note_failure(&mut self, error: &EngineError) {
        let fresh = match self.inner.store.task(&self.draft.task_id).await {
            Ok(Some(task)) if task.lease_owner.as_deref() == Some(self.inner.id.as_str()) => task,
            _ => return,
        };
        let mut draft = Draft::of(&fresh);
        let failures = fresh.projection.recovery_failures + 1;
        if failures >= self.inner.config.max_recoveries {
            draft.push(TaskEvent::Quarantined {
                error: format!("stopped after {failures} failed recoveries; last error: {error}"),
            });
        } else {
            let backoff = 500_i64.saturating_mul(1 << failures.min(10));
            draft.push(TaskEvent::RecoveryFailed {
                error: error.to_string(),
                failures,
                retry_at: self.inner.clock.now() + backoff,
            });
        }
        let owner = self.owner();
        if let Err(e) = draft.commit(&self.inner, Some(&owner), true).await {
            tracing::error!(task = %self.draft.task_id, error = %e, "could not record a failed recovery");
        }
    }

    #[tracing::instrument(skip(self), fields(task = %self.draft.task_id))]
    async fn drive(&mut self, interrupted: bool) -> Result<(), EngineError> {
        if interrupted {
            self.count_recovery().await?;
        }
        loop {
            if self.draft.proj.status.is_terminal() {
                return Ok(());
            }
            // Before the status check: a task waiting for a person is claimed only to
            // carry out a cancellation requested while someone held its lease.
            if let Some((by, reason)) = self.cancel.get() {
                let held = held_call(&self.inner.store, &self.draft.proj).await?;
                let now = self.inner.clock.now();
                self.draft.cancel(&by, reason, now, held.as_ref());
                return Ok(());
            }
            if self.draft.proj.status != TaskStatus::Running {
                return Ok(());
            }
            let phase = phase_of(&self.draft.proj).ok_or_else(|| self.corrupt("its phase"))?;
            match phase {
                Phase::Enter => self.enter().await?,
                Phase::Working => self.work().await?,
                Phase::Calling { call_id } => {
                    self.flush().await?;
                    self.perform(&call_id).await?;
                }
                Phase::Backoff => {
                    self.flush().await?;
                    let at = self.draft.proj.wake_at.unwrap_or(0);
                    if self.wait_until(at).await {
                        self.new_attempt().await?;
                    }
                }
                Phase::WaitingApproval { .. } | Phase::InDoubt { .. } | Phase::Ended => {
                    return Ok(());
                }
            }
            if self.draft.events.len() >= MAX_DRAFT_EVENTS {
                self.flush().await?;
            }
        }
    }

    /// A task taken over in the middle of a step was running in an engine that stopped.
    /// (One handed over cleanly mid-step, after a person's decision or release, was not.)
    async fn count_recovery(&mut self) -> Result<(), EngineError> {
        let mid_step = matches!(
            phase_of(&self.draft.proj),
            Some(Phase::Calling { .. } | Phase::Working)
        );
        if !mid_step || self.draft.proj.status != TaskStatus::Running {
            return Ok(());
        }
        let failures = self.draft.proj.recovery_failures + 1;
        if failures > self.inner.config.max_recoveries {
            self.draft.push(TaskEvent::Quarantined {
                error: format!(
                    "the task was interrupted {} times in a row in state `{}`; last error: {}",
                    failures,
                    self.draft.proj.current_state.as_deref().unwrap_or("?"),
                    self.draft.proj.error.as_deref().unwrap_or("none recorded")
                ),
            });
        } else {
            self.draft.push(TaskEvent::RecoveryStarted {
                engine: self.owner(),
                failures,
            });
        }
        self.flush().await
    }

    /// Sleeps until `at`; false when a cancellation came first.
    async fn wait_until(&self, at: i64) -> bool {
        if self.inner.clock.now() >= at {
            return true;
        }
        let cancelled = self.cancel.notify.notified();
        tokio::pin!(cancelled);
        cancelled.as_mut().enable();
        // A request that came in before we started listening is seen here.
        if self.cancel.get().is_some() {
            return false;
        }
        tokio::select! {
            () = self.inner.clock.sleep_until(at) => true,
            () = cancelled => false,
        }
    }

    fn corrupt(&self, what: &str) -> EngineError {
        EngineError::BadStoredWorkflow {
            id: 0,
            detail: format!("task {} has an unreadable {what}", self.draft.task_id),
        }
    }

    fn current(&self) -> Result<State, EngineError> {
        let name = self
            .draft
            .proj
            .current_state
            .clone()
            .ok_or_else(|| self.corrupt("state"))?;
        self.wf
            .state(&name)
            .cloned()
            .ok_or_else(|| EngineError::BadStoredWorkflow {
                id: 0,
                detail: format!("workflow `{}` has no state `{name}`", self.wf.name),
            })
    }

    /// What expressions see, borrowed: the task's `state` holds the output of every
    /// completed state, so copying it at each step would make a task quadratic in its
    /// length. Evaluate first, then draft (a borrowed scope and a push cannot overlap).
    fn scope(&self) -> Scope<'_> {
        Scope {
            inputs: &self.inputs,
            state: &self.draft.proj.state,
            task: &self.task_meta,
        }
    }

    fn start_step(&mut self, state: &State, step_no: i64, attempt: i64) {
        self.draft.push(TaskEvent::StepStarted {
            step_no,
            state: state.name.clone(),
            state_kind: state.kind_name().to_owned(),
            attempt,
        });
        self.draft.steps.push(StepWrite::Start {
            step_no,
            state_name: state.name.clone(),
            kind: state.kind_name().to_owned(),
            attempt,
        });
    }

    fn succeed(&mut self, state: &State, output: Value, next: &str) {
        let step_no = self.draft.proj.step_no;
        self.draft.push(TaskEvent::StepSucceeded {
            step_no,
            state: state.name.clone(),
            output,
            next: next.to_owned(),
        });
        self.draft.steps.push(StepWrite::End {
            step_no,
            outcome: "succeeded".into(),
            error: None,
        });
    }

    fn give_up(&mut self, state: &State, error: String) {
        let step_no = self.draft.proj.step_no;
        self.draft.steps.push(StepWrite::End {
            step_no,
            outcome: "failed".into(),
            error: Some(error.clone()),
        });
        self.draft.push(TaskEvent::StepGaveUp {
            step_no,
            state: state.name.clone(),
            error,
            next: state.on_error.clone(),
        });
    }

    fn step_failed(&mut self, state: &State, error: String, retryable: bool) {
        let attempt = self.draft.proj.attempt;
        if retryable && attempt < i64::from(state.retry.max_attempts) {
            let wait = state
                .retry
                .backoff_after(u32::try_from(attempt).unwrap_or(u32::MAX));
            self.draft.push(TaskEvent::StepFailed {
                step_no: self.draft.proj.step_no,
                state: state.name.clone(),
                attempt,
                error,
                retry_at: self.inner.clock.now() + millis(wait),
            });
        } else {
            self.give_up(state, error);
        }
    }

    /// Begins the current state as a new step. Pure: only drafts events.
    async fn enter(&mut self) -> Result<(), EngineError> {
        let state = self.current()?;
        let step_no = self.draft.proj.step_no + 1;
        match &state.kind {
            // A success is only recorded once the post-conditions hold (postconditions.rs).
            StateKind::End(end)
                if end.status == EndStatus::Succeeded && !self.wf.postconditions.is_empty() =>
            {
                self.start_postconditions(&state, step_no);
            }
            StateKind::End(end) => {
                self.draft.push(TaskEvent::Ended {
                    state: state.name.clone(),
                    status: end.status,
                });
            }
            StateKind::Choice(choice) => {
                self.start_step(&state, step_no, 1);
                let scope = self.scope();
                let mut picked = Ok((Value::String("default".into()), choice.default.clone()));
                for (i, branch) in choice.branches.iter().enumerate() {
                    match branch.when.eval_bool(&scope) {
                        Ok(true) => {
                            picked = Ok((json!(i), branch.next.clone()));
                            break;
                        }
                        Ok(false) => {}
                        Err(e) => {
                            picked = Err(e.to_string());
                            break;
                        }
                    }
                }
                match picked {
                    Ok((branch, next)) => {
                        self.succeed(&state, json!({ "branch": branch, "next": next }), &next)
                    }
                    Err(e) => self.give_up(&state, e),
                }
            }
            StateKind::Check(check) => {
                self.start_step(&state, step_no, 1);
                // `Ok(None)`: passed; `Ok(Some(message))`: failed, saying why.
                let verdict = {
                    let scope = self.scope();
                    match check.assert.eval_bool(&scope) {
                        Ok(true) => Ok(None),
                        Ok(false) => Ok(Some(match &check.message {
                            Some(t) => t.render(&scope).unwrap_or_else(|e| e.to_string()),
                            None => format!("`{}` was false", check.assert.source()),
                        })),
                        Err(e) => Err(e.to_string()),
                    }
                };
                match verdict {
                    Ok(None) => self.succeed(&state, json!({ "passed": true }), &check.next),
                    Ok(Some(message)) => {
                        self.inner
                            .propose_lesson(
                                &self.wf.name,
                                LessonSource::FailedCheck,
                                &format!("{}/{step_no}", self.draft.task_id),
                                Some(&self.draft.task_id),
                                &format!("The outcome check `{}` failed: {message}", state.name),
                            )
                            .await;
                        self.succeed(
                            &state,
                            json!({ "passed": false, "message": message }),
                            &check.on_fail,
                        );
                    }
                    Err(e) => self.give_up(&state, e),
                }
            }
            StateKind::Approval(approval) => {
                self.start_step(&state, step_no, 1);
                let prompt = approval.prompt.render(&self.scope());
                match prompt {
                    Ok(prompt) => {
                        let approval_id = new_id();
                        let requested_at = self.inner.clock.now();
                        let expires_at = approval.expires_after.map(|d| requested_at + millis(d));
                        self.draft.approvals.push(ApprovalWrite::Request {
                            id: approval_id.clone(),
                            step_no,
                            state_name: state.name.clone(),
                            prompt: prompt.clone(),
                            approvers: approval.approvers.clone(),
                            requested_at,
                            expires_at,
                            tool_call_id: None,
                            args_hash: None,
                            policy_version: None,
                            held_call: None,
                        });
                        self.draft.push(TaskEvent::ApprovalRequested {
                            approval_id,
                            state: state.name.clone(),
                            prompt,
                            approvers: approval.approvers.clone(),
                            expires_at,
                        });
                    }
                    Err(e) => self.give_up(&state, e.to_string()),
                }
            }
            StateKind::Tool(_) => {
                self.start_step(&state, step_no, 1);
                self.intend_tool_state_call(&state, true).await?;
            }
            StateKind::Agent(_) => self.start_step(&state, step_no, 1),
            StateKind::Recall(recall) => {
                self.start_step(&state, step_no, 1);
                let scope = self.scope();
                let query = (|| {
                    Ok::<_, String>(MemoryQuery {
                        subject: Some(subject_of(&recall.subject, &scope)?),
                        categories: recall.categories.clone(),
                        search: match &recall.search {
                            Some(t) => Some(t.render(&scope).map_err(|e| e.to_string())?),
                            None => None,
                        },
                        limit: i64::from(recall.limit),
                        with_history: false,
                    })
                })();
                let query = match query {
                    Ok(query) => query,
                    Err(e) => {
                        self.give_up(&state, e);
                        return Ok(());
                    }
                };
                match self.inner.store.recall(&query).await {
                    Ok(entries) => {
                        let entries: Vec<Value> = entries
                            .iter()
                            .map(|m| {
                                json!({
                                    "id": m.id, "category": m.category, "key": m.key,
                                    "value": m.value, "text": m.text, "at": m.created_at,
                                    "source_task": m.source_task, "source_person": m.source_person,
                                })
                            })
                            .collect();
                        let output = json!({
                            "subject": query.subject, "count": entries.len(), "entries": entries,
                        });
                        self.succeed(&state, output, &recall.next);
                    }
                    Err(e @ StoreError::BadSearch { .. }) => self.give_up(&state, e.to_string()),
                    Err(e) => return Err(e.into()),
                }
            }
            StateKind::Remember(remember) => {
                self.start_step(&state, step_no, 1);
                let scope = self.scope();
                let entry = (|| {
                    let key = match remember.key.eval(&scope).map_err(|e| e.to_string())? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    let value = remember.value.eval(&scope).map_err(|e| e.to_string())?;
                    let text = match &remember.text {
                        Some(t) => t.render(&scope).map_err(|e| e.to_string())?,
                        None => format!("{} {key}: {value}", remember.category),
                    };
                    Ok::<_, String>(NewMemory {
                        // One entry per step: writing it again after a crash is a no-op.
                        id: format!("{}/{step_no}", self.draft.task_id),
                        subject: subject_of(&remember.subject, &scope)?,
                        category: remember.category.clone(),
                        key,
                        value,
                        text,
                        source_task: Some(self.draft.task_id.clone()),
                        source_step: Some(step_no),
                        source_person: None,
                        at: self.inner.clock.now(),
                    })
                })();
                match entry {
                    Ok(entry) => {
                        let written = self.inner.store.remember(&entry).await?;
                        self.succeed(
                            &state,
                            json!({
                                "memory_id": written.id, "subject": written.subject,
                                "category": written.category, "key": written.key,
                            }),
                            &remember.next,
                        );
                    }
                    Err(e) => self.give_up(&state, e),
                }
            }
        }
        Ok(())
    }

    /// A new attempt at the current step after a failed one.
    async fn new_attempt(&mut self) -> Result<(), EngineError> {
        let state = self.current()?;
        let attempt = self.draft.proj.attempt + 1;
        self.start_step(&state, self.draft.proj.step_no, attempt);
        if let StateKind::Tool(_) = state.kind {
            self.intend_tool_state_call(&state, false).await?;
        }
        Ok(())
    }

    /// The policy half of the checked path for one proposed call (see `gate.rs`); what it
    /// decided, and the approval it asks for, go into the draft. `step_is_new`: the step
    /// was entered in this draft, so none of its calls can have been held before.
    async fn gate(
        &mut self,
        state: &State,
        tool: &ToolInfo,
        args: &Value,
        call_index: i64,
        step_is_new: bool,
    ) -> Result<Verdict, EngineError> {
        let inner = self.inner.clone();
        let requester = self.requester();
        let result = {
            let site = CallSite {
                task_id: &self.draft.task_id,
                requester: &requester,
                workflow: &self.wf.name,
                state_name: &state.name,
                step_no: self.draft.proj.step_no,
                inputs: &self.inputs,
                state: &self.draft.proj.state,
                task: &self.task_meta,
            };
            inner
                .gate(&site, tool, args, call_index, step_is_new)
                .await?
        };
        self.draft.approvals.extend(result.approval);
        for event in result.events {
            self.draft.push(event);
        }
        Ok(result.verdict)
    }

    fn requester(&self) -> String {
        self.task_meta["requester"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Proposes a tool state's call: static checks, then the gate; the intent is drafted
    /// when the call may be made, the step gives up (to `on_error`) when it may not, and
    /// the task waits when people must decide first. `step_is_new`: see [`Runner::gate`].
    async fn intend_tool_state_call(
        &mut self,
        state: &State,
        step_is_new: bool,
    ) -> Result<(), EngineError> {
        let StateKind::Tool(tool_state) = &state.kind else {
            return Ok(());
        };
        let args = tool_state.args.eval(&self.scope());
        let args = match args {
            Ok(args) => args,
            Err(e) => {
                self.give_up(state, format!("arguments for `{}`: {e}", tool_state.tool));
                return Ok(());
            }
        };
        let info = self.inner.tools.describe(&tool_state.tool);
        let idempotent = tool_state
            .idempotent
            .unwrap_or(info.as_ref().is_some_and(ToolInfo::safe_to_repeat));
        let refused = match &info {
            None => Some(ToolError::Unknown(tool_state.tool.clone()).to_string()),
            Some(info) => match self.inner.checks.validate(&info.input_schema, &args) {
                Err(problem) => Some(format!(
                    "arguments for `{}` do not match its input schema: {problem}",
                    info.name
                )),
                Ok(()) => check_pin(&self.inner, info).await.err(),
            },
        };
        let (reason, refusal) = match (info, refused) {
            (Some(info), None) => match self.gate(state, &info, &args, 0, step_is_new).await? {
                Verdict::Proceed { args, allowed } => {
                    self.intend(tool_state.tool.clone(), args, 0, idempotent, allowed);
                    return Ok(());
                }
                Verdict::Hold => return Ok(()),
                Verdict::Refuse { reason, refusal } => (reason, refusal),
            },
            (_, reason) => (
                reason.unwrap_or_else(|| "refused".into()),
                CallRefusal::Check,
            ),
        };
        self.draft.record_refusal(Refused {
            tool: &tool_state.tool,
            args: &args,
            call_index: 0,
            idempotent,
            refusal,
            reason: &reason,
        });
        self.give_up(state, reason);
        Ok(())
    }

    fn intend(
        &mut self,
        tool: String,
        args: Value,
        call_index: i64,
        idempotent: bool,
        allowed: CallAllowance,
    ) {
        let step_no = self.draft.proj.step_no;
        let intent = Intent {
            call_id: new_id(),
            key: idempotency_key(&self.draft.task_id, step_no, call_index),
            tool,
            args,
            idempotent,
        };
        let hash = args_hash(&intent.args);
        self.draft.tool_calls.push(ToolCallWrite::Intent {
            call: ProposedCall {
                id: intent.call_id.clone(),
                step_no,
                attempt: self.draft.proj.attempt,
                call_index,
                tool: intent.tool.clone(),
                args: intent.args.clone(),
                args_hash: hash.clone(),
                idempotency_key: intent.key.clone(),
                idempotent,
            },
            allowed,
        });
        self.draft.push(TaskEvent::ToolCalled {
            call_id: intent.call_id.clone(),
            tool: intent.tool.clone(),
            args_hash: hash,
            idempotency_key: intent.key.clone(),
        });
        self.inflight = Some(intent);
    }

    /// Makes the call whose intent is on disk, or, when the intent was left by an engine
    /// that stopped, decides whether it may be made again.
    async fn perform(&mut self, call_id: &str) -> Result<(), EngineError> {
        let intent = match self.inflight.take() {
            Some(intent) if intent.call_id == call_id => intent,
            _ => {
                let record = self
                    .inner
                    .store
                    .tool_call(call_id)
                    .await?
                    .ok_or_else(|| EngineError::NoToolCall(call_id.to_owned()))?;
                let intent = Intent {
                    call_id: record.id,
                    tool: record.tool,
                    args: record.args,
                    key: record.idempotency_key,
                    idempotent: record.idempotent,
                };
                if !intent.idempotent {
                    self.in_doubt(
                        &intent,
                        "the engine stopped while this call was under way; it may or may not have taken effect"
                            .into(),
                    );
                    return Ok(());
                }
                tracing::info!(call = %intent.call_id, tool = %intent.tool, "re-making an idempotent call after a restart");
                intent
            }
        };
        let state = self.current()?;
        let task_id = self.draft.task_id.clone();
        let (sink, mut reports) = ProgressSink::channel();
        let request = ToolRequest {
            tool: &intent.tool,
            args: &intent.args,
            idempotency_key: &intent.key,
            task_id: &task_id,
            progress: Some(&sink),
        };
        let limit = state.timeout.unwrap_or(DEFAULT_CALL_TIMEOUT);
        let tools = self.inner.tools.clone();
        let clock = self.inner.clock.clone();
        let call = with_timeout(&*clock, Some(limit), tools.call(request));
        tokio::pin!(call);
        // A person cancelling the task stops the call too (an MCP call that is dropped
        // sends `notifications/cancelled`); whether it took effect is then unknown.
        let cancel = self.cancel.clone();
        let cancelled = cancel.notify.notified();
        tokio::pin!(cancelled);
        cancelled.as_mut().enable();
        if cancel.get().is_some() {
            // Asked to stop before the call was made: it was not made.
            self.record_outcome(
                &intent,
                ToolCallOutcome::Failed,
                None,
                Some("not made: the task was cancelled".into()),
            );
            return Ok(());
        }

        // While the call is under way, what the tool reports of its progress is committed
        // on the step, at most once per PROGRESS_INTERVAL (the latest report wins); the
        // last one not yet committed goes with the outcome. The call future borrows only
        // locals, so committing does not disturb it; it is polled again right after.
        let mut progress = ProgressLog::default();
        let result = loop {
            let window = progress.next_commit_at();
            tokio::select! {
                result = &mut call => {
                    break result.unwrap_or_else(|| {
                        Err(ToolError::Lost(format!(
                            "no answer within {}",
                            airlock_workflow::format_duration(limit)
                        )))
                    });
                }
                () = &mut cancelled => {
                    while let Ok(report) = reports.try_recv() {
                        progress.note(report);
                    }
                    progress.take_into(&mut self.draft, &intent.call_id);
                    self.draft.tool_calls.push(ToolCallWrite::Outcome {
                        id: intent.call_id.clone(),
                        outcome: ToolCallOutcome::InDoubt,
                        result: None,
                        error: Some("the task was cancelled while this call was under way; it may or may not have taken effect".into()),
                        resolved_by: None,
                    });
                    // The loop sees the cancellation next and ends the task.
                    return Ok(());
                }
                Some(report) = reports.recv() => {
                    progress.note(report);
                    if self.inner.clock.now() >= progress.next_commit_at().unwrap_or(Millis::MAX) {
                        self.commit_progress(&mut progress, &intent.call_id).await;
                    }
                }
                () = clock.sleep_until(window.unwrap_or(Millis::MAX)), if window.is_some() => {
                    self.commit_progress(&mut progress, &intent.call_id).await;
                }
            }
        };
        while let Ok(report) = reports.try_recv() {
            progress.note(report);
        }
        progress.take_into(&mut self.draft, &intent.call_id);
        // Agent steps and post-condition reads judge their calls' outcomes themselves.
        let is_agent = matches!(state.kind, StateKind::Agent(_) | StateKind::End(_));
        match result {
            Ok(output) => {
                self.record_outcome(
                    &intent,
                    ToolCallOutcome::Succeeded,
                    Some(output.clone()),
                    None,
                );
                if !is_agent {
                    let next = match &state.kind {
                        StateKind::Tool(t) => t.next.clone(),
                        _ => return Ok(()),
                    };
                    // The call happened either way; a result that breaks the tool's own
                    // output schema fails the step rather than flow on as if it were sound.
                    let schema = self
                        .inner
                        .tools
                        .describe(&intent.tool)
                        .and_then(|i| i.output_schema);
                    match schema.map(|s| self.inner.checks.validate(&s, &output)) {
                        Some(Err(problem)) => self.step_failed(
                            &state,
                            format!(
                                "`{}` returned a result that does not match its output schema: {problem}",
                                intent.tool
                            ),
                            intent.idempotent,
                        ),
                        _ => self.succeed(&state, output, &next),
                    }
                }
            }
            Err(ToolError::Lost(reason)) if !intent.idempotent => {
                self.in_doubt(&intent, reason);
            }
            Err(error) => {
                let retryable = !matches!(error, ToolError::Unknown(_));
                let message = error.to_string();
                self.record_outcome(
                    &intent,
                    ToolCallOutcome::Failed,
                    None,
                    Some(message.clone()),
                );
                if !is_agent {
                    self.step_failed(&state, message, retryable);
                }
            }
        }
        Ok(())
    }

    fn record_outcome(
        &mut self,
        intent: &Intent,
        outcome: ToolCallOutcome,
        result: Option<Value>,
        error: Option<String>,
    ) {
        self.draft.tool_calls.push(ToolCallWrite::Outcome {
            id: intent.call_id.clone(),
            outcome,
            result,
            error: error.clone(),
            resolved_by: None,
        });
        self.draft.push(TaskEvent::ToolReturned {
            call_id: intent.call_id.clone(),
            ok: outcome == ToolCallOutcome::Succeeded,
            error,
        });
    }

    /// Commits the pending progress report of the call under way. A commit that fails
    /// leaves its event in the draft (it goes with the outcome) and ends progress
    /// commits for this call; the call itself is not affected.
    async fn commit_progress(&mut self, progress: &mut ProgressLog, call_id: &str) {
        if !progress.take_into(&mut self.draft, call_id) {
            return;
        }
        progress.last_commit = Some(self.inner.clock.now());
        if let Err(error) = self.flush().await {
            tracing::warn!(call = %call_id, %error, "could not record the progress of a call; it is kept for the outcome");
            progress.stopped = true;
        }
    }

    fn in_doubt(&mut self, intent: &Intent, reason: String) {
        self.draft.tool_calls.push(ToolCallWrite::Outcome {
            id: intent.call_id.clone(),
            outcome: ToolCallOutcome::InDoubt,
            result: None,
            error: Some(reason.clone()),
            resolved_by: None,
        });
        self.draft.push(TaskEvent::CallInDoubt {
            call_id: intent.call_id.clone(),
            tool: intent.tool.clone(),
            reason,
        });
    }

    /// One move of an agent state: make the next proposed call, or ask the model for its
    /// next turn. The step's turns and calls are read back from the store, so a restarted
    /// engine replays recorded turns instead of asking the model again.
    async fn work(&mut self) -> Result<(), EngineError> {
        self.flush().await?;
        let state = self.current()?;
        if let StateKind::Tool(_) = &state.kind {
            // Back from people deciding its held call.
            return self.intend_tool_state_call(&state, false).await;
        }
        if let StateKind::End(_) = &state.kind {
            return self.check_postconditions(&state).await;
        }
        let StateKind::Agent(agent) = &state.kind else {
            return Err(self.corrupt("step (working outside an agent or tool state)"));
        };
        let (step_no, attempt) = (self.draft.proj.step_no, self.draft.proj.attempt);
        let mut replies: Vec<ModelReply> = Vec::new();
        let mut refused: BTreeMap<i64, String> = BTreeMap::new();
        let mut tokens_used: u64 = 0;
        let mut started_at = self.inner.clock.now();
        for event in self.inner.store.events(&self.draft.task_id).await? {
            let at = event.at;
            match serde_json::from_value::<TaskEvent>(event.body) {
                Ok(TaskEvent::StepStarted {
                    step_no: s,
                    attempt: a,
                    ..
                }) if s == step_no && a == attempt => started_at = at,
                // Turns and calls of earlier attempts of this step are part of its
                // history too: a new attempt (after a model error, or a call a person said
                // did not happen) carries on the conversation instead of starting over and
                // proposing again what was already done.
                Ok(TaskEvent::ModelTurn {
                    step_no: s,
                    reply,
                    usage,
                    ..
                }) if s == step_no => {
                    tokens_used += usage.map_or(0, |u| u.total());
                    let reply = serde_json::from_value(reply)
                        .map_err(|_| self.corrupt("recorded model turn"))?;
                    replies.push(reply);
                }
                Ok(TaskEvent::ToolRefused {
                    step_no: s,
                    call_index,
                    reason,
                    ..
                }) if s == step_no => {
                    refused.insert(call_index, reason);
                }
                _ => {}
            }
        }
        let calls: BTreeMap<i64, _> = self
            .inner
            .store
            .tool_calls(&self.draft.task_id)
            .await?
            .into_iter()
            .filter(|c| c.step_no == step_no)
            .map(|c| (c.call_index, c))
            .collect();
        // A final answer is checked against the output schema; a rejected one goes back
        // to the model with why, for a bounded number of repairs.
        let rejection = |output: &Value| match &agent.output_schema {
            Some(schema) => self.inner.checks.validate(schema, output).err(),
            None => None,
        };
        let mut turns = Vec::new();
        let mut rejected = Vec::new();
        for (t, reply) in replies.iter().enumerate() {
            turns.push(Turn::Model {
                reply: reply.clone(),
            });
            if let ModelReply::Final { output } = reply {
                if let Some(problem) = rejection(output) {
                    turns.push(Turn::Repair {
                        problem: problem.clone(),
                    });
                    rejected.push(problem);
                }
                continue;
            }
            let ModelReply::ToolCalls { calls: proposed } = reply else {
                continue;
            };
            for (i, call) in proposed.iter().enumerate() {
                let index = t as i64 * CALLS_PER_TURN + i as i64;
                match calls.get(&index) {
                    Some(done) => turns.push(Turn::ToolResult {
                        call: call.id.clone(),
                        tool: call.tool.clone(),
                        // A call a person confirmed as made did take effect: telling the
                        // model it failed would invite it to make it again.
                        ok: matches!(
                            done.outcome,
                            Some(ToolCallOutcome::Succeeded | ToolCallOutcome::Happened)
                        ),
                        content: match done.outcome {
                            Some(ToolCallOutcome::Happened) => Value::String(
                                "a person confirmed this call took effect; its result is unknown"
                                    .into(),
                            ),
                            _ => done
                                .result
                                .clone()
                                .or_else(|| done.error.clone().map(Value::String))
                                .unwrap_or(Value::Null),
                        },
                    }),
                    None if refused.contains_key(&index) => turns.push(Turn::ToolResult {
                        call: call.id.clone(),
                        tool: call.tool.clone(),
                        ok: false,
                        content: Value::String(refused[&index].clone()),
                    }),
                    None => {
                        // The next proposal to decide.
                        let allowed = agent.tools.iter().any(|g| glob_matches(g, &call.tool));
                        let info = self.inner.tools.describe(&call.tool).filter(|_| allowed);
                        let refusal = match &info {
                            None => Some(format!(
                                "refused: `{}` is not a tool this step may use",
                                call.tool
                            )),
                            Some(info) => {
                                match self.inner.checks.validate(&info.input_schema, &call.args) {
                                    Err(problem) => Some(format!(
                                        "refused: the arguments do not match the input schema of `{}`: {problem}",
                                        call.tool
                                    )),
                                    Ok(()) => check_pin(&self.inner, info).await.err(),
                                }
                            }
                        };
                        let idempotent = info.as_ref().is_some_and(ToolInfo::safe_to_repeat);
                        let (reason, refusal) = match (info, refusal) {
                            (Some(info), None) => {
                                match self.gate(&state, &info, &call.args, index, false).await? {
                                    Verdict::Proceed { args, allowed } => {
                                        self.intend(
                                            call.tool.clone(),
                                            args,
                                            index,
                                            idempotent,
                                            allowed,
                                        );
                                        return Ok(());
                                    }
                                    Verdict::Hold => return Ok(()),
                                    Verdict::Refuse { reason, refusal } => (reason, refusal),
                                }
                            }
                            (_, refusal) => (
                                refusal.unwrap_or_else(|| "refused".into()),
                                CallRefusal::Check,
                            ),
                        };
                        self.draft.record_refusal(Refused {
                            tool: &call.tool,
                            args: &call.args,
                            call_index: index,
                            idempotent,
                            refusal,
                            reason: &reason,
                        });
                        self.draft.push(TaskEvent::ToolRefused {
                            step_no,
                            attempt,
                            call_index: index,
                            tool: call.tool.clone(),
                            reason,
                        });
                        return Ok(());
                    }
                }
            }
        }
        if let Some(ModelReply::Final { output }) = replies.last()
            && rejection(output).is_none()
        {
            // A self-reported confidence below the state's threshold routes the task to
            // its exception path; an answer that reports none counts as not confident.
            let next = match &agent.min_confidence {
                Some((min, low))
                    if output
                        .get("confidence")
                        .and_then(Value::as_f64)
                        .unwrap_or(0.0)
                        < *min =>
                {
                    low.clone()
                }
                _ => agent.next.clone(),
            };
            let output = output.clone();
            self.succeed(&state, output, &next);
            return Ok(());
        }
        if rejected.len() > MAX_REPAIRS {
            let last = rejected.last().cloned().unwrap_or_default();
            self.step_failed(
                &state,
                format!(
                    "the model's answer still broke the output schema after {MAX_REPAIRS} repairs: {last}"
                ),
                false,
            );
            return Ok(());
        }
        if replies.len() >= agent.max_turns as usize {
            self.step_failed(
                &state,
                format!("no answer within {} model turns", agent.max_turns),
                false,
            );
            return Ok(());
        }
        if let Some(max) = agent.max_tokens
            && tokens_used >= max
        {
            self.step_failed(
                &state,
                format!(
                    "the model used {tokens_used} tokens, reaching the state's max_tokens of {max}"
                ),
                false,
            );
            return Ok(());
        }
        if let Some(total) = state.timeout
            && self.inner.clock.now() >= started_at + millis(total)
        {
            self.step_failed(
                &state,
                format!(
                    "the agent state ran for its whole timeout of {}",
                    airlock_workflow::format_duration(total)
                ),
                false,
            );
            return Ok(());
        }
        let Some(model) = self.inner.model.clone() else {
            self.give_up(
                &state,
                "no model is configured, so agent states cannot run".into(),
            );
            return Ok(());
        };
        let goal = agent.goal.render(&self.scope());
        let goal = match goal {
            Ok(goal) => goal,
            Err(e) => {
                self.give_up(&state, e.to_string());
                return Ok(());
            }
        };
        // Tools the step may not use, tools the policy never lets this requester call,
        // and held tools, are not even shown to the model.
        let policy = self.inner.governance.policy.current();
        let roles = self.inner.governance.identities.roles_of(&self.requester());
        let mut tools = Vec::new();
        for tool in self.inner.tools.tools() {
            if agent.tools.iter().any(|g| glob_matches(g, &tool.name))
                && policy.could_allow(&roles, &self.wf.name, &tool.name, tool.risk())
                && check_pin(&self.inner, &tool).await.is_ok()
            {
                tools.push(tool);
            }
        }
        // Accepted lessons of this workflow travel with every request of its agents.
        let mut context = json!({ "inputs": self.inputs, "state": self.draft.proj.state });
        let lessons = self.inner.accepted_lessons(&self.wf.name).await?;
        if !lessons.is_empty()
            && let Some(map) = context.as_object_mut()
        {
            map.insert("lessons".into(), json!(lessons));
        }
        let request = ModelRequest {
            task_id: self.draft.task_id.clone(),
            workflow: self.wf.name.clone(),
            state: state.name.clone(),
            context,
            goal,
            tools,
            output_schema: agent.output_schema.clone(),
            turns,
        };
        // An agent state's `timeout` bounds the whole step, across its turns and calls.
        let limit = match state.timeout {
            Some(total) => {
                let left = started_at + millis(total) - self.inner.clock.now();
                Duration::from_millis(u64::try_from(left).unwrap_or(0).max(1))
            }
            None => DEFAULT_CALL_TIMEOUT,
        };
        let cancel = self.cancel.clone();
        let cancelled = cancel.notify.notified();
        tokio::pin!(cancelled);
        cancelled.as_mut().enable();
        if cancel.get().is_some() {
            return Ok(());
        }
        let reply = tokio::select! {
            reply = with_timeout(&*self.inner.clock, Some(limit), model.respond(request)) => reply,
            // The loop sees the cancellation next; a reply never recorded is simply dropped.
            () = &mut cancelled => return Ok(()),
        };
        let usage = model.take_usage(&self.draft.task_id);
        match reply {
            Some(Ok(reply)) => {
                self.draft.push(TaskEvent::ModelTurn {
                    step_no,
                    attempt,
                    turn: replies.len() as i64,
                    model: model.name(),
                    reply: serde_json::to_value(&reply).unwrap_or_default(),
                    usage,
                });
                // The turn is durable before any of its proposals is acted on.
                self.flush().await?;
            }
            Some(Err(e)) => self.step_failed(&state, format!("the model failed: {e}"), true),
            None => self.step_failed(&state, "the model did not answer in time".into(), true),
        }
        Ok(())
    }
}
