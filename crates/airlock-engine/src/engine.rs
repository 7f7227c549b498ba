//! The engine: the public API the CLI and the desktop app call. It owns the store, the
//! clock, the tool host and the model, runs tasks on tokio, and carries out what people
//! decide (approvals, in-doubt answers, cancellations, releases from quarantine).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use airlock_policy::{Effect, PolicyDecision};
use airlock_store::{
    ApprovalRecord, ApprovalStatus, ApprovalWrite, AuditEntryWrite, Claimed, EngineRegistration,
    GrantRecord, HeldCall, IdKind, Millis, NewGrant, NewTask, StepWrite, Store, StoreOptions,
    TaskRecord, TaskStatus, ToolCallOutcome, ToolCallRecord, ToolCallWrite,
};
use airlock_workflow::{Diagnostics, StateKind, ToolAccess, Workflow};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinSet;

use crate::checks::Checks;
use crate::clock::{Clock, millis};
use crate::draft::Draft;
use crate::error::EngineError;
use crate::event::{Decision, Phase, TaskEvent, phase_of};
use crate::gate::{CallSite, Governance, GrantRules, grant_policy, may_decide};
use crate::identity::{host_name, known_dead, process_started};
use crate::ledger::new_id;
use crate::lessons::lesson_from_decision;
use crate::model::Model;
use crate::runner::{CancelFlag, Runner};
use crate::tool_host::ToolHost;

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub store: StoreOptions,
    /// A lease not renewed for this long may be taken over by another engine.
    pub lease_ttl: Duration,
    /// Tasks run at once by this engine.
    pub max_concurrent: usize,
    /// Interrupted or failed recoveries in a row before a task is quarantined.
    pub max_recoveries: i64,
    /// How often an idle engine looks for due work (retries, expiries, other processes' tasks).
    pub poll_interval: Duration,
    /// The policy every proposed call is checked against, and who has which roles.
    pub governance: Governance,
}

impl EngineConfig {
    pub fn new(store: StoreOptions) -> EngineConfig {
        EngineConfig {
            store,
            lease_ttl: Duration::from_secs(15),
            max_concurrent: 256,
            max_recoveries: 5,
            poll_interval: Duration::from_millis(250),
            governance: Governance::unrestricted(),
        }
    }
}

/// Sent after every committed transition: the change feed the UI and waiters follow.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskChange {
    pub task_id: String,
    pub status: TaskStatus,
    pub seq: i64,
}

/// A person's answer to a pending approval.
#[derive(Clone, Debug)]
pub enum Answer {
    Approve {
        reason: Option<String>,
    },
    /// Approve the held call with these arguments instead: a new action, checked against
    /// the tool's schema and the policy again, and recorded as an override.
    ApproveEdited {
        args: Value,
        reason: Option<String>,
    },
    Reject {
        reason: Option<String>,
    },
}

/// What an answer did.
#[derive(Clone, Debug)]
pub enum Answered {
    /// The approval is decided; the task as it is now.
    Decided(TaskRecord),
    /// The approval needs more distinct approvers; this approval is counted.
    Voted {
        task: TaskRecord,
        votes: u32,
        needed: u32,
    },
}

/// The scope of a grant (see [`Engine::create_grant`]).
#[derive(Clone, Debug, Default)]
pub struct GrantSpec {
    /// A glob over `<server>.<tool>`.
    pub tool: String,
    pub workflow: Option<String>,
    pub task_id: Option<String>,
    /// A CEL condition over the call, e.g. `args.amount < 100`.
    pub condition: Option<String>,
    pub max_uses: Option<i64>,
    pub valid_for: Option<Duration>,
    pub from_approval: Option<String>,
    pub note: Option<String>,
}

/// What a cancellation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelOutcome {
    Cancelled,
    /// The task is running in an engine; it stops at its next safe point.
    Requested,
}

pub(crate) struct Inner {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub tools: Arc<dyn ToolHost>,
    pub model: Option<Arc<dyn Model>>,
    pub id: String,
    pub config: EngineConfig,
    host: String,
    workflows: Mutex<HashMap<i64, Arc<Workflow>>>,
    runners: Mutex<HashMap<String, Arc<CancelFlag>>>,
    changes: broadcast::Sender<TaskChange>,
    wake: Notify,
    pub(crate) checks: Checks,
    pub(crate) governance: Governance,
    pub(crate) grant_rules: GrantRules,
    /// Policy versions this engine has recorded in the store.
    pub(crate) policy_versions_seen: Mutex<HashSet<String>>,
}

impl Inner {
    /// Records an action that is not part of a task's history (a grant, a vote, a policy
    /// version) in the audit log.
    pub(crate) async fn audit(
        &self,
        kind: &str,
        actor: &str,
        task_id: Option<&str>,
        body: Value,
    ) -> Result<(), EngineError> {
        self.store
            .append_audit(AuditEntryWrite {
                at: self.clock.now(),
                kind: kind.to_owned(),
                actor: actor.to_owned(),
                task_id: task_id.map(str::to_owned),
                body,
            })
            .await?;
        Ok(())
    }

    pub fn announce(&self, change: TaskChange) {
        let _ = self.changes.send(change);
    }
}

/// The orchestrator. Cheap to clone; all clones drive the same engine.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl Engine {
    /// Opens the store, registers this engine, frees the leases of engines that are gone,
    /// and starts the heartbeat that keeps this engine's leases alive.
    pub async fn open(
        config: EngineConfig,
        clock: Arc<dyn Clock>,
        tools: Arc<dyn ToolHost>,
        model: Option<Arc<dyn Model>>,
    ) -> Result<Engine, EngineError> {
        let store = Store::open(config.store.clone(), clock.now()).await?;
        let now = clock.now();
        let pid = std::process::id();
        let registration = EngineRegistration {
            id: new_id(),
            host: host_name(),
            pid: i64::from(pid),
            pid_started: process_started(pid),
            started_at: now,
            heartbeat_at: now,
        };
        store.register_engine(&registration).await?;
        let (changes, _) = broadcast::channel(4096);
        let governance = config.governance.clone();
        let inner = Arc::new(Inner {
            store,
            clock,
            tools,
            model,
            id: registration.id,
            host: registration.host,
            config,
            workflows: Mutex::new(HashMap::new()),
            runners: Mutex::new(HashMap::new()),
            changes,
            wake: Notify::new(),
            checks: Checks::default(),
            governance,
            grant_rules: GrantRules::default(),
            policy_versions_seen: Mutex::new(HashSet::new()),
        });
        reap_gone_engines(&inner).await?;
        tokio::spawn(heartbeat(Arc::downgrade(&inner)));
        Ok(Engine { inner })
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn id(&self) -> &str {
        &self.inner.id
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    pub fn tools(&self) -> &Arc<dyn ToolHost> {
        &self.inner.tools
    }

    pub fn subscribe(&self) -> broadcast::Receiver<TaskChange> {
        self.inner.changes.subscribe()
    }

    /// Stops this engine: its leases are given back at once, so another engine can
    /// continue its tasks without waiting for them to expire.
    pub async fn close(&self) -> Result<(), EngineError> {
        self.inner.store.forget_engine(&self.inner.id).await?;
        Ok(())
    }

    /// Records a definition (a new version when its text changed) and returns its id.
    pub async fn register_workflow(
        &self,
        workflow: &Workflow,
        origin: Option<&str>,
    ) -> Result<i64, EngineError> {
        let record = self
            .inner
            .store
            .register_workflow(
                &workflow.name,
                &workflow.hash,
                &workflow.source,
                origin,
                self.inner.clock.now(),
            )
            .await?;
        if let Ok(mut cache) = self.inner.workflows.lock() {
            cache.insert(record.id, Arc::new(workflow.clone()));
        }
        Ok(record.id)
    }

    /// What is wrong with `workflow` given the tools this engine has (a post-condition
    /// that names a tool no server offers, or one that is not read-only), located in
    /// `file`, where its text came from. Empty when nothing is.
    pub fn check_workflow_tools(&self, workflow: &Workflow, file: &Path) -> Diagnostics {
        workflow.check_tools(
            file,
            self.inner.tools.tools().into_iter().map(|t| {
                let access = if t.annotations.read_only {
                    ToolAccess::ReadOnly
                } else {
                    ToolAccess::Writes
                };
                (t.name, access)
            }),
        )
    }

    /// Creates a task of `workflow` for `requester`. It runs when an engine picks it up
    /// ([`Engine::run_task`], [`Engine::run_until_idle`] or [`Engine::serve`]).
    #[tracing::instrument(skip(self, workflow, inputs), fields(workflow = %workflow.name))]
    pub async fn start_task(
        &self,
        workflow: &Workflow,
        inputs: Map<String, Value>,
        requester: &str,
        origin: Option<&str>,
    ) -> Result<String, EngineError> {
        let bound = workflow
            .bind_inputs(inputs)
            .map_err(|errors| EngineError::Inputs {
                workflow: workflow.name.clone(),
                errors,
            })?;
        // A task whose outcome could not be checked is not started.
        let file = origin.map_or_else(
            || PathBuf::from(format!("{}.toml", workflow.name)),
            PathBuf::from,
        );
        let diagnostics = self.check_workflow_tools(workflow, &file);
        if !diagnostics.is_empty() {
            return Err(EngineError::WorkflowTools {
                workflow: workflow.name.clone(),
                diagnostics,
            });
        }
        let workflow_id = self.register_workflow(workflow, origin).await?;
        let version = self
            .inner
            .store
            .workflow(workflow_id)
            .await?
            .map_or(0, |w| w.version);
        let task_id = new_id();
        let inputs = Value::Object(bound);
        let mut draft = Draft::new_task(
            task_id.clone(),
            NewTask {
                workflow_id,
                workflow_name: workflow.name.clone(),
                requester: requester.to_owned(),
                inputs: inputs.clone(),
            },
        );
        draft.push(TaskEvent::Created {
            workflow: workflow.name.clone(),
            workflow_version: version,
            start: workflow.start.clone(),
            requester: requester.to_owned(),
            inputs,
        });
        draft.commit(&self.inner, None, false).await?;
        Ok(task_id)
    }

    /// Finds a task by its id or an unambiguous prefix of it.
    pub async fn find_task(&self, id_or_prefix: &str) -> Result<TaskRecord, EngineError> {
        if let Some(task) = self.inner.store.task(id_or_prefix).await? {
            return Ok(task);
        }
        let matches = self.inner.store.tasks_with_prefix(id_or_prefix).await?;
        match matches.as_slice() {
            [one] => self
                .inner
                .store
                .task(one)
                .await?
                .ok_or_else(|| EngineError::NoTask(id_or_prefix.to_owned())),
            [] => Err(EngineError::NoTask(id_or_prefix.to_owned())),
            _ => Err(EngineError::AmbiguousTask {
                prefix: id_or_prefix.to_owned(),
                matches,
            }),
        }
    }

    /// The approval whose id is `id_or_prefix` or starts with it, when only one does.
    pub async fn find_approval_id(&self, id_or_prefix: &str) -> Result<String, EngineError> {
        self.find_id(
            IdKind::Approval,
            id_or_prefix,
            "approvals",
            EngineError::NoApproval,
        )
        .await
    }

    /// The tool call whose id is `id_or_prefix` or starts with it, when only one does.
    pub async fn find_tool_call_id(&self, id_or_prefix: &str) -> Result<String, EngineError> {
        self.find_id(
            IdKind::ToolCall,
            id_or_prefix,
            "tool calls",
            EngineError::NoToolCall,
        )
        .await
    }

    /// The id of `kind` that is `prefix` (a whole id wins) or the only one starting with it.
    async fn find_id(
        &self,
        kind: IdKind,
        prefix: &str,
        what: &'static str,
        none: fn(String) -> EngineError,
    ) -> Result<String, EngineError> {
        let mut matches = self.inner.store.ids_with_prefix(kind, prefix).await?;
        if matches.iter().any(|id| id == prefix) {
            return Ok(prefix.to_owned());
        }
        match matches.len() {
            1 => Ok(matches.remove(0)),
            0 => Err(none(prefix.to_owned())),
            _ => Err(EngineError::Ambiguous {
                what,
                prefix: prefix.to_owned(),
                matches,
            }),
        }
    }

    /// Runs one task in this call until it ends or waits for a person, and returns it.
    pub async fn run_task(&self, task_id: &str) -> Result<TaskRecord, EngineError> {
        loop {
            let now = self.inner.clock.now();
            let claimed = self
                .inner
                .store
                .claim(task_id, &self.inner.id, now, self.lease_until())
                .await?;
            match claimed {
                Some(claimed) => {
                    let task = &claimed.task;
                    let due = task.projection.wake_at.is_none_or(|at| at <= now)
                        || phase_of(&task.projection) == Some(Phase::Backoff);
                    if task.projection.status == TaskStatus::Running && !due {
                        // Waiting out a failed recovery: hand the lease back and sleep.
                        self.inner.store.release(task_id, &self.inner.id).await?;
                        self.inner
                            .clock
                            .sleep_until(task.projection.wake_at.unwrap_or(now))
                            .await;
                        continue;
                    }
                    let result = self.inner.clone().run_claimed(claimed).await;
                    if let Err(e) = result {
                        tracing::warn!(task = task_id, error = %e, "run ended with an error");
                    }
                }
                None => {
                    let task = self
                        .inner
                        .store
                        .task(task_id)
                        .await?
                        .ok_or_else(|| EngineError::NoTask(task_id.to_owned()))?;
                    if task.projection.status.is_terminal() {
                        return Ok(task);
                    }
                    return Err(EngineError::Busy {
                        task: task_id.to_owned(),
                        holder: task.lease_owner.unwrap_or_default(),
                    });
                }
            }
            let task = self
                .inner
                .store
                .task(task_id)
                .await?
                .ok_or_else(|| EngineError::NoTask(task_id.to_owned()))?;
            if task.projection.status != TaskStatus::Running {
                return Ok(task);
            }
        }
    }

    /// Runs every task this engine can take until none is left running: the recovery
    /// entry point after a restart. Tasks waiting for a person are left waiting.
    pub async fn run_until_idle(&self) -> Result<(), EngineError> {
        self.schedule(true).await
    }

    /// Runs tasks as they become due, until the engine is dropped (the desktop app).
    pub fn serve(&self) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            if let Err(e) = engine.schedule(false).await {
                tracing::error!(error = %e, "the scheduler stopped");
            }
        })
    }

    fn lease_until(&self) -> Millis {
        self.inner.clock.now() + millis(self.inner.config.lease_ttl)
    }

    async fn schedule(&self, until_idle: bool) -> Result<(), EngineError> {
        let mut running: JoinSet<()> = JoinSet::new();
        let mut failures = 0u32;
        loop {
            // A failing store (a long lock held by another process, say) must not end the
            // scheduler: that would abort every runner mid-call. Back off and try again;
            // `run_until_idle` gives up only after its runners have finished.
            match self.schedule_once(&mut running, until_idle).await {
                Ok(Some(())) => return Ok(()),
                Ok(None) => failures = 0,
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, failures, "scheduling failed; retrying");
                    if until_idle && failures >= 20 {
                        while running.join_next().await.is_some() {}
                        return Err(e);
                    }
                    tokio::time::sleep(self.inner.config.poll_interval * failures.min(20)).await;
                    continue;
                }
            }
            let wake = self.inner.wake.notified();
            tokio::select! {
                Some(joined) = running.join_next(), if !running.is_empty() => {
                    if let Err(e) = joined {
                        tracing::error!(error = %e, "a task runner panicked");
                    }
                }
                () = wake => {}
                () = tokio::time::sleep(self.inner.config.poll_interval) => {}
            }
        }
    }

    /// One round: expire approvals, claim and start due tasks. `Some(())` when
    /// `until_idle` and nothing is left.
    async fn schedule_once(
        &self,
        running: &mut JoinSet<()>,
        until_idle: bool,
    ) -> Result<Option<()>, EngineError> {
        {
            expire_approvals(&self.inner).await?;
            let free = self
                .inner
                .config
                .max_concurrent
                .saturating_sub(running.len());
            if free > 0 {
                let now = self.inner.clock.now();
                let claimed = self
                    .inner
                    .store
                    .claim_runnable(&self.inner.id, now, self.lease_until(), free as i64)
                    .await?;
                for claim in claimed {
                    let inner = self.inner.clone();
                    running.spawn(async move {
                        let id = claim.task.id.clone();
                        if let Err(e) = inner.run_claimed(claim).await {
                            tracing::warn!(task = %id, error = %e, "run ended with an error");
                        }
                    });
                }
            }
            if until_idle && running.is_empty() {
                let (open, next_due) = self
                    .inner
                    .store
                    .open_work(&self.inner.id, self.inner.clock.now())
                    .await?;
                if open == 0 {
                    return Ok(Some(()));
                }
                if let Some(at) = next_due.filter(|at| *at > self.inner.clock.now()) {
                    self.inner.clock.sleep_until(at).await;
                }
            }
            Ok(None)
        }
    }

    /// Stops a task: at once when no engine is running it, otherwise at its next safe point.
    pub async fn cancel(
        &self,
        task_id: &str,
        by: &str,
        reason: Option<String>,
    ) -> Result<CancelOutcome, EngineError> {
        let local = self
            .inner
            .runners
            .lock()
            .ok()
            .and_then(|r| r.get(task_id).cloned());
        if let Some(flag) = local {
            flag.request(by, reason);
            // Also on disk: if the runner is just finishing (and releases the task to wait
            // for a person), the scheduler still finds and carries out the request.
            self.inner.store.request_cancel(task_id, by).await?;
            return Ok(CancelOutcome::Requested);
        }
        match self.claim_for_person(task_id, "cancelled").await {
            Ok(task) => {
                let mut draft = Draft::of(&task);
                let held = crate::refusals::held_call(&self.inner.store, &task.projection).await?;
                draft.cancel(by, reason, self.inner.clock.now(), held.as_ref());
                self.commit_for_person(&mut draft).await?;
                Ok(CancelOutcome::Cancelled)
            }
            Err(EngineError::Busy { .. }) => {
                if self.inner.store.request_cancel(task_id, by).await? {
                    Ok(CancelOutcome::Requested)
                } else {
                    Err(EngineError::NoTask(task_id.to_owned()))
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Approves or rejects a pending approval as `by`; the task as it is afterwards (an
    /// approval that needs more approvers stays pending with this vote counted).
    pub async fn decide_approval(
        &self,
        approval_id: &str,
        approve: bool,
        by: &str,
        reason: Option<String>,
    ) -> Result<TaskRecord, EngineError> {
        let answer = if approve {
            Answer::Approve { reason }
        } else {
            Answer::Reject { reason }
        };
        match self.answer_approval(approval_id, answer, by).await? {
            Answered::Decided(task) => Ok(task),
            Answered::Voted { task, .. } => Ok(task),
        }
    }

    /// A person's answer to a pending approval. Only an identity with an approver role
    /// (or, after the escalation delay, an escalation role) may answer; under four eyes
    /// the requester may not approve their own call. An edited call is a new action: its
    /// arguments are checked against the tool's schema and the policy again.
    pub async fn answer_approval(
        &self,
        approval_id: &str,
        answer: Answer,
        by: &str,
    ) -> Result<Answered, EngineError> {
        let approval = self
            .inner
            .store
            .approval(approval_id)
            .await?
            .ok_or_else(|| EngineError::NoApproval(approval_id.to_owned()))?;
        if approval.status != ApprovalStatus::Pending {
            return Err(EngineError::AlreadyDecided(approval_id.to_owned()));
        }
        let now = self.inner.clock.now();
        // Still pending only because nothing has expired it yet (the scheduler does, when
        // an engine runs): an answer after the deadline does not count, or an expired
        // approval would let its call be made. Whoever answers settles it as expired.
        if approval.expires_at.is_some_and(|at| at <= now) {
            settle_expired(&self.inner, &approval.task_id, approval_id).await?;
            return Err(EngineError::Expired {
                approval: approval_id.to_owned(),
                task: approval.task_id.clone(),
            });
        }
        let held = approval.held_call.as_ref();
        let identities = &self.inner.governance.identities;
        let not_allowed = |reason: String| EngineError::NotAllowed {
            approval: approval_id.to_owned(),
            reason,
        };
        let approving = !matches!(answer, Answer::Reject { .. });
        // Four eyes stops the requester approving, not declining, their own call.
        let four_eyes_applies = approving;
        let check_held = held.map(|h| HeldCall {
            four_eyes: h.four_eyes && four_eyes_applies,
            ..h.clone()
        });
        may_decide(
            &self.inner.governance,
            by,
            &approval.approvers,
            check_held.as_ref(),
            now,
        )
        .map_err(not_allowed)?;
        let (decision, reason, edited_args) = match answer {
            Answer::Reject { reason } => (Decision::Rejected, reason, None),
            Answer::Approve { reason } => {
                if let Some(held) = held
                    && held.approvals > 1
                {
                    let roles = identities.roles_of(by);
                    if !self
                        .inner
                        .store
                        .cast_vote(approval_id, by, &roles, now)
                        .await?
                    {
                        return Err(EngineError::AlreadyVoted {
                            approval: approval_id.to_owned(),
                            who: by.to_owned(),
                        });
                    }
                    self.inner
                        .audit(
                            "approval_vote",
                            by,
                            Some(&approval.task_id),
                            serde_json::json!({
                                "approval_id": approval_id, "by": by, "roles": roles,
                                "tool": held.tool, "needed": held.approvals,
                            }),
                        )
                        .await?;
                    let votes = self.inner.store.approval_votes(approval_id).await?;
                    let votes = u32::try_from(votes.len()).unwrap_or(u32::MAX);
                    if votes < held.approvals {
                        let task = self.find_task(&approval.task_id).await?;
                        return Ok(Answered::Voted {
                            task,
                            votes,
                            needed: held.approvals,
                        });
                    }
                }
                (Decision::Approved, reason, None)
            }
            Answer::ApproveEdited { args, reason } => {
                let Some(held) = held else {
                    return Err(EngineError::EditRefused {
                        approval: approval_id.to_owned(),
                        reason: "it is a checkpoint of the workflow, not a tool call".into(),
                    });
                };
                self.check_edit(&approval, held, &args, by).await?;
                (Decision::Approved, reason, Some(args))
            }
        };
        let lesson = lesson_from_decision(
            &approval,
            decision == Decision::Rejected,
            reason.as_deref(),
            edited_args.as_ref(),
            by,
        );
        let task = settle_approval(
            &self.inner,
            &approval.task_id,
            approval_id,
            decision,
            Some(by),
            reason,
            edited_args,
        )
        .await?;
        if let Some((source, text)) = lesson {
            self.inner
                .propose_lesson(
                    &task.workflow_name,
                    source,
                    approval_id,
                    Some(&task.id),
                    &text,
                )
                .await;
        }
        Ok(Answered::Decided(task))
    }

    /// An edited call must match the tool's schema, be one the policy would let this
    /// approver approve alone, and not be denied.
    async fn check_edit(
        &self,
        approval: &ApprovalRecord,
        held: &HeldCall,
        args: &Value,
        by: &str,
    ) -> Result<(), EngineError> {
        let refuse = |reason: String| EngineError::EditRefused {
            approval: approval.id.clone(),
            reason,
        };
        if held.approvals > 1 {
            return Err(refuse(format!(
                "it needs {} approvers, so it cannot be changed by one; reject it with the change you want instead",
                held.approvals
            )));
        }
        let tool =
            self.inner.tools.describe(&held.tool).ok_or_else(|| {
                refuse(format!("the tool `{}` is no longer available", held.tool))
            })?;
        self.inner
            .checks
            .validate(&tool.input_schema, args)
            .map_err(|problem| {
                refuse(format!(
                    "the arguments do not match the input schema of `{}`: {problem}",
                    held.tool
                ))
            })?;
        let task = self.find_task(&approval.task_id).await?;
        let task_meta = serde_json::json!({
            "id": task.id,
            "requester": task.requester,
            "workflow": task.workflow_name,
        });
        let site = CallSite {
            task_id: &task.id,
            requester: &task.requester,
            workflow: &task.workflow_name,
            state_name: &approval.state_name,
            step_no: approval.step_no,
            inputs: &task.inputs,
            state: &task.projection.state,
            task: &task_meta,
        };
        let decision = self.inner.evaluate_policy(&site, &tool, args).await?;
        match &decision.effect {
            Effect::Deny { reason } => Err(refuse(format!(
                "the policy denies it{}: {reason}",
                decision
                    .rule
                    .as_deref()
                    .map(|r| format!(" (rule “{r}”)"))
                    .unwrap_or_default()
            ))),
            Effect::RequireApproval(demand) => {
                if demand.approvals > 1 {
                    return Err(refuse(format!(
                        "as edited it needs {} approvers",
                        demand.approvals
                    )));
                }
                may_decide(
                    &self.inner.governance,
                    by,
                    &demand.approvers,
                    None,
                    self.inner.clock.now(),
                )
                .map_err(refuse)
            }
            Effect::Allow => Ok(()),
        }
    }

    /// What the policy in force says about a call, without making it: the rule that
    /// decides and the values it saw (`airlock policy explain`).
    pub async fn explain_call(
        &self,
        requester: &str,
        workflow: &str,
        tool: &str,
        args: &Value,
        inputs: &Value,
    ) -> Result<PolicyDecision, EngineError> {
        let info = self
            .inner
            .tools
            .describe(tool)
            .ok_or_else(|| EngineError::NoTool(tool.to_owned()))?;
        let empty = serde_json::json!({});
        let task_meta = serde_json::json!({
            "id": "",
            "requester": requester,
            "workflow": workflow,
        });
        let site = CallSite {
            task_id: "",
            requester,
            workflow,
            state_name: "",
            step_no: 0,
            inputs,
            state: &empty,
            task: &task_meta,
        };
        self.inner.evaluate_policy(&site, &info, args).await
    }

    /// Gives a scoped, revocable permission in place of approving calls one at a time.
    /// Made from an approval, only someone who may decide that approval may give it.
    pub async fn create_grant(
        &self,
        spec: GrantSpec,
        by: &str,
    ) -> Result<GrantRecord, EngineError> {
        if spec.tool.trim().is_empty() {
            return Err(EngineError::BadGrant("it names no tool".into()));
        }
        if spec.max_uses.is_some_and(|n| n < 1) {
            return Err(EngineError::BadGrant(
                "its number of uses must be at least 1".into(),
            ));
        }
        grant_policy(&spec.tool, spec.condition.as_deref()).map_err(EngineError::BadGrant)?;
        if let Some(id) = &spec.from_approval {
            let approval = self
                .inner
                .store
                .approval(id)
                .await?
                .ok_or_else(|| EngineError::NoApproval(id.clone()))?;
            // Four eyes holds for grants too: a requester cannot grant their own calls.
            may_decide(
                &self.inner.governance,
                by,
                &approval.approvers,
                approval.held_call.as_ref(),
                self.inner.clock.now(),
            )
            .map_err(|reason| EngineError::NotAllowed {
                approval: id.clone(),
                reason,
            })?;
        }
        let now = self.inner.clock.now();
        let grant = NewGrant {
            id: new_id(),
            tool: spec.tool,
            workflow: spec.workflow,
            task_id: spec.task_id,
            condition: spec.condition,
            max_uses: spec.max_uses,
            expires_at: spec.valid_for.map(|d| now.saturating_add(millis(d))),
            created_by: by.to_owned(),
            created_at: now,
            from_approval: spec.from_approval,
            note: spec.note,
        };
        let grant = self.inner.store.create_grant(&grant).await?;
        self.inner
            .audit(
                "grant_created",
                by,
                grant.task_id.as_deref(),
                serde_json::to_value(&grant).unwrap_or_default(),
            )
            .await?;
        Ok(grant)
    }

    /// Revokes a grant: it stops matching at once.
    pub async fn revoke_grant(&self, id: &str, by: &str) -> Result<(), EngineError> {
        if self
            .inner
            .store
            .revoke_grant(id, by, self.inner.clock.now())
            .await?
        {
            self.inner
                .audit(
                    "grant_revoked",
                    by,
                    None,
                    serde_json::json!({ "grant_id": id, "by": by }),
                )
                .await?;
            Ok(())
        } else {
            Err(EngineError::NoGrant(id.to_owned()))
        }
    }

    /// Every grant, newest first.
    pub async fn grants(&self) -> Result<Vec<GrantRecord>, EngineError> {
        Ok(self.inner.store.grants().await?)
    }

    /// The policy in force and the identities decisions are made for.
    pub fn governance(&self) -> &Governance {
        &self.inner.governance
    }

    /// A person's answer to "did this call happen?". When it did, the step counts as done;
    /// when it did not, the call is made again as a new attempt. For a task that ended
    /// meanwhile (cancelled while the call was under way) the answer is only recorded.
    pub async fn resolve_in_doubt(
        &self,
        call_id: &str,
        happened: bool,
        by: &str,
    ) -> Result<TaskRecord, EngineError> {
        let call = self
            .inner
            .store
            .tool_call(call_id)
            .await?
            .ok_or_else(|| EngineError::NoToolCall(call_id.to_owned()))?;
        if self
            .find_task(&call.task_id)
            .await?
            .projection
            .status
            .is_terminal()
        {
            return self
                .settle_in_doubt(&call.task_id, call_id, happened, by)
                .await;
        }
        let task = match self.claim_for_person(&call.task_id, "resolved").await {
            // Cancelled in the meantime.
            Err(EngineError::WrongStatus { status, .. }) if status.is_terminal() => {
                return self
                    .settle_in_doubt(&call.task_id, call_id, happened, by)
                    .await;
            }
            claimed => claimed?,
        };
        let waiting_on_this = phase_of(&task.projection)
            == Some(Phase::InDoubt {
                call_id: call_id.to_owned(),
            })
            && task.projection.status == TaskStatus::InDoubt
            && call.outcome == Some(ToolCallOutcome::InDoubt);
        if !waiting_on_this {
            self.inner.store.release(&task.id, &self.inner.id).await?;
            return Err(EngineError::WrongStatus {
                task: task.id,
                status: task.projection.status,
                action: "resolved for this call",
            });
        }
        let workflow = self.inner.workflow_for(task.workflow_id).await?;
        let state_name = task.projection.current_state.clone().unwrap_or_default();
        let next = workflow.state(&state_name).and_then(|s| match &s.kind {
            StateKind::Tool(t) => Some(t.next.clone()),
            _ => None,
        });
        let mut draft = Draft::of(&task);
        draft.tool_calls.push(answered(&call, happened, by));
        if happened && next.is_some() {
            draft.steps.push(StepWrite::End {
                step_no: task.projection.step_no,
                outcome: "succeeded".into(),
                error: None,
            });
        }
        draft.push(TaskEvent::InDoubtResolved {
            call_id: call_id.to_owned(),
            state: state_name,
            happened,
            by: by.to_owned(),
            next,
            retry_at: (!happened).then(|| self.inner.clock.now()),
        });
        self.commit_for_person(&mut draft).await?;
        self.find_task(&task.id).await
    }

    /// Records the answer for an in-doubt call of a task that has ended. No engine runs
    /// an ended task, so there is no lease to take: the commit is guarded by the task's
    /// sequence alone (a second answer, or one racing it, is refused).
    async fn settle_in_doubt(
        &self,
        task_id: &str,
        call_id: &str,
        happened: bool,
        by: &str,
    ) -> Result<TaskRecord, EngineError> {
        // The call is read after the task: an answer committed between the two reads is
        // seen here, and one committed after them moves the sequence the commit is
        // guarded by.
        let task = self.find_task(task_id).await?;
        let call = self
            .inner
            .store
            .tool_call(call_id)
            .await?
            .ok_or_else(|| EngineError::NoToolCall(call_id.to_owned()))?;
        if call.outcome != Some(ToolCallOutcome::InDoubt) {
            return Err(EngineError::WrongStatus {
                task: task.id,
                status: task.projection.status,
                action: "resolved for this call, which is no longer in doubt",
            });
        }
        let mut draft = Draft::of(&task);
        draft.tool_calls.push(answered(&call, happened, by));
        draft.push(TaskEvent::InDoubtSettled {
            call_id: call.id.clone(),
            happened,
            by: by.to_owned(),
        });
        match draft.commit(&self.inner, None, false).await {
            // Someone else answered (or appended) first.
            Err(EngineError::Refused { .. }) => Err(EngineError::WrongStatus {
                task: task.id.clone(),
                status: task.projection.status,
                action: "resolved for this call",
            }),
            other => other,
        }?;
        self.find_task(&task.id).await
    }

    /// Lets a quarantined task run again (its recovery count starts over).
    pub async fn release_quarantined(
        &self,
        task_id: &str,
        by: &str,
    ) -> Result<TaskRecord, EngineError> {
        let task = self.claim_for_person(task_id, "released").await?;
        if task.projection.status != TaskStatus::Quarantined {
            self.inner.store.release(&task.id, &self.inner.id).await?;
            return Err(EngineError::WrongStatus {
                task: task.id,
                status: task.projection.status,
                action: "released from quarantine",
            });
        }
        let mut draft = Draft::of(&task);
        draft.push(TaskEvent::Released { by: by.to_owned() });
        self.commit_for_person(&mut draft).await?;
        self.find_task(&task.id).await
    }

    /// A person accepts a tool's changed definition: it becomes the pin, and the tool is
    /// offered and callable again. False when no change was waiting for that tool.
    pub async fn accept_tool_change(&self, tool: &str, by: &str) -> Result<bool, EngineError> {
        let Some(pin) = self.inner.store.tool_pin(tool).await? else {
            return Ok(false);
        };
        let Some(change) = pin.changed else {
            return Ok(false);
        };
        let accepted = self
            .inner
            .store
            .accept_tool_change(tool, &change.hash, by, self.inner.clock.now())
            .await?;
        if accepted {
            self.inner.checks.forget_pin(tool);
            self.inner
                .audit(
                    "tool_change_accepted",
                    by,
                    None,
                    serde_json::json!({ "tool": tool, "hash": change.hash, "by": by }),
                )
                .await?;
        }
        Ok(accepted)
    }

    async fn claim_for_person(
        &self,
        task_id: &str,
        action: &'static str,
    ) -> Result<TaskRecord, EngineError> {
        claim_for_person(&self.inner, task_id, action).await
    }

    async fn commit_for_person(&self, draft: &mut Draft) -> Result<(), EngineError> {
        let id = self.inner.id.clone();
        draft.commit(&self.inner, Some(&id), true).await?;
        self.inner.wake.notify_waiters();
        Ok(())
    }
}

/// The ledger's record of a person's answer to whether an in-doubt call happened.
fn answered(call: &ToolCallRecord, happened: bool, by: &str) -> ToolCallWrite {
    ToolCallWrite::Outcome {
        id: call.id.clone(),
        outcome: if happened {
            ToolCallOutcome::Happened
        } else {
            ToolCallOutcome::NotHappened
        },
        result: None,
        error: call.error.clone(),
        resolved_by: Some(by.to_owned()),
    }
}

/// A person's action needs the task's lease for a moment; a runner finishing its last
/// commit may hold it briefly, so try for a short while.
async fn claim_for_person(
    inner: &Arc<Inner>,
    task_id: &str,
    action: &'static str,
) -> Result<TaskRecord, EngineError> {
    for attempt in 0..40 {
        let now = inner.clock.now();
        let until = now + millis(inner.config.lease_ttl);
        // This engine's own runner holds the lease while it runs the task; `claim` would
        // let us in (same owner), and releasing afterwards would pull the lease from under
        // a call in flight. Wait for the runner instead.
        let running_here = inner.runners.lock().is_ok_and(|r| r.contains_key(task_id));
        if !running_here
            && let Some(claimed) = inner.store.claim(task_id, &inner.id, now, until).await?
        {
            return Ok(claimed.task);
        }
        let task = inner
            .store
            .task(task_id)
            .await?
            .ok_or_else(|| EngineError::NoTask(task_id.to_owned()))?;
        if task.projection.status.is_terminal() {
            return Err(EngineError::WrongStatus {
                task: task_id.to_owned(),
                status: task.projection.status,
                action,
            });
        }
        if attempt == 39 {
            return Err(EngineError::Busy {
                task: task_id.to_owned(),
                holder: task.lease_owner.unwrap_or_default(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(EngineError::NoTask(task_id.to_owned()))
}

async fn settle_approval(
    inner: &Arc<Inner>,
    task_id: &str,
    approval_id: &str,
    decision: Decision,
    by: Option<&str>,
    reason: Option<String>,
    edited_args: Option<Value>,
) -> Result<TaskRecord, EngineError> {
    let task = claim_for_person(inner, task_id, "decided").await?;
    let waiting = phase_of(&task.projection)
        == Some(Phase::WaitingApproval {
            approval_id: approval_id.to_owned(),
        });
    if !waiting {
        inner.store.release(task_id, &inner.id).await?;
        return Err(EngineError::AlreadyDecided(approval_id.to_owned()));
    }
    let at = inner.clock.now();
    let status = match (decision, by) {
        (Decision::Approved, Some(by)) => ApprovalStatus::Approved {
            by: by.to_owned(),
            at,
            reason: reason.clone(),
            edited_args: edited_args.clone(),
        },
        (Decision::Rejected, Some(by)) => ApprovalStatus::Rejected {
            by: by.to_owned(),
            at,
            reason: reason.clone(),
        },
        _ => ApprovalStatus::Expired { at },
    };
    let approval = inner
        .store
        .approval(approval_id)
        .await?
        .ok_or_else(|| EngineError::NoApproval(approval_id.to_owned()))?;
    if let Some(held) = approval.held_call {
        // A held tool call: the step carries on; its next move makes or refuses the call.
        let mut draft = Draft::of(&task);
        draft.approvals.push(ApprovalWrite::Decide {
            id: approval_id.to_owned(),
            status,
        });
        draft.push(TaskEvent::CallApprovalDecided {
            approval_id: approval_id.to_owned(),
            call_index: held.call_index,
            decision,
            by: by.map(str::to_owned),
            reason,
            edited_args,
        });
        let id = inner.id.clone();
        draft.commit(inner, Some(&id), true).await?;
        inner.wake.notify_waiters();
        return inner
            .store
            .task(task_id)
            .await?
            .ok_or_else(|| EngineError::NoTask(task_id.to_owned()));
    }
    let workflow = inner.workflow_for(task.workflow_id).await?;
    let state_name = task.projection.current_state.clone().unwrap_or_default();
    let Some(StateKind::Approval(state)) = workflow.state(&state_name).map(|s| &s.kind) else {
        inner.store.release(task_id, &inner.id).await?;
        return Err(EngineError::BadStoredWorkflow {
            id: task.workflow_id,
            detail: format!("`{state_name}` is not an approval state"),
        });
    };
    let next = match decision {
        Decision::Approved => state.next.clone(),
        Decision::Rejected => state.on_reject.clone(),
        Decision::Expired => state.on_expire.clone(),
    };
    let mut draft = Draft::of(&task);
    draft.approvals.push(ApprovalWrite::Decide {
        id: approval_id.to_owned(),
        status,
    });
    draft.steps.push(StepWrite::End {
        step_no: task.projection.step_no,
        outcome: serde_json::to_value(decision)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        error: None,
    });
    draft.push(TaskEvent::ApprovalDecided {
        approval_id: approval_id.to_owned(),
        state: state_name,
        decision,
        by: by.map(str::to_owned),
        reason,
        next,
    });
    let id = inner.id.clone();
    draft.commit(inner, Some(&id), true).await?;
    inner.wake.notify_waiters();
    inner
        .store
        .task(task_id)
        .await?
        .ok_or_else(|| EngineError::NoTask(task_id.to_owned()))
}

async fn expire_approvals(inner: &Arc<Inner>) -> Result<(), EngineError> {
    for approval in inner.store.expired_approvals(inner.clock.now()).await? {
        settle_expired(inner, &approval.task_id, &approval.id).await?;
    }
    Ok(())
}

/// Records an approval whose time ran out as expired, moving its task on its expiry path.
/// Nothing to do when it was decided meanwhile, when another engine holds the task (that
/// engine expires it), or when the task has ended (the approval can no longer move it).
async fn settle_expired(
    inner: &Arc<Inner>,
    task_id: &str,
    approval_id: &str,
) -> Result<(), EngineError> {
    match settle_approval(
        inner,
        task_id,
        approval_id,
        Decision::Expired,
        None,
        None,
        None,
    )
    .await
    {
        Ok(_)
        | Err(EngineError::AlreadyDecided(_))
        | Err(EngineError::Busy { .. })
        | Err(EngineError::WrongStatus { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

impl Inner {
    pub(crate) async fn workflow_for(&self, id: i64) -> Result<Arc<Workflow>, EngineError> {
        if let Some(wf) = self.workflows.lock().ok().and_then(|c| c.get(&id).cloned()) {
            return Ok(wf);
        }
        let record =
            self.store
                .workflow(id)
                .await?
                .ok_or_else(|| EngineError::BadStoredWorkflow {
                    id,
                    detail: "it is missing".into(),
                })?;
        let origin = record
            .origin
            .clone()
            .unwrap_or_else(|| format!("{} (stored)", record.name));
        let workflow = airlock_workflow::parse(std::path::Path::new(&origin), &record.source)
            .map_err(|d| EngineError::BadStoredWorkflow {
                id,
                detail: d.to_string(),
            })?;
        let workflow = Arc::new(workflow);
        if let Ok(mut cache) = self.workflows.lock() {
            cache.insert(id, workflow.clone());
        }
        Ok(workflow)
    }

    /// Runs a task this engine has just claimed, counting failures toward quarantine.
    pub(crate) async fn run_claimed(
        self: Arc<Self>,
        claimed: Claimed,
    ) -> Result<TaskStatus, EngineError> {
        let Claimed { task, left_by } = claimed;
        let flag = Arc::new(CancelFlag::default());
        if let Ok(mut runners) = self.runners.lock() {
            runners.insert(task.id.clone(), flag.clone());
        }
        let task_id = task.id.clone();
        let result = match self.workflow_for(task.workflow_id).await {
            Ok(workflow) => {
                let runner = Runner::new(self.clone(), workflow, &task, flag);
                runner.run(left_by.is_some()).await
            }
            Err(e) => {
                let mut draft = Draft::of(&task);
                draft.push(TaskEvent::Quarantined {
                    error: e.to_string(),
                });
                let id = self.id.clone();
                if let Err(commit) = draft.commit(&self, Some(&id), true).await {
                    tracing::error!(task = %task.id, error = %commit, "could not quarantine a task");
                }
                Err(e)
            }
        };
        if let Ok(mut runners) = self.runners.lock() {
            runners.remove(&task_id);
        }
        if result.is_err() {
            // Whatever failed, do not keep the task leased: the heartbeat would renew the
            // lease forever and no engine could pick the task up again.
            if let Err(e) = self.store.release(&task_id, &self.id).await {
                tracing::warn!(task = %task_id, error = %e, "could not release a failed task");
            }
        }
        result
    }
}

/// Frees the leases of engines that are known dead (same host, process gone) or that
/// stopped renewing them long ago.
async fn reap_gone_engines(inner: &Arc<Inner>) -> Result<(), EngineError> {
    let stale_before = inner.clock.now() - 3 * millis(inner.config.lease_ttl);
    for engine in inner.store.engines().await? {
        if engine.id == inner.id {
            continue;
        }
        if known_dead(&engine, &inner.host) || engine.heartbeat_at < stale_before {
            let freed = inner.store.forget_engine(&engine.id).await?;
            tracing::info!(engine = %engine.id, pid = engine.pid, freed, "freed the leases of a stopped engine");
        }
    }
    Ok(())
}

async fn heartbeat(inner: Weak<Inner>) {
    let period = inner.upgrade().map_or(Duration::from_secs(5), |i| {
        (i.config.lease_ttl / 3).min(Duration::from_secs(1))
    });
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let now = inner.clock.now();
        let until = now + millis(inner.config.lease_ttl);
        match inner.store.heartbeat(&inner.id, now, until).await {
            Ok(cancels) => {
                for (task_id, by) in cancels {
                    let flag = inner
                        .runners
                        .lock()
                        .ok()
                        .and_then(|r| r.get(&task_id).cloned());
                    if let Some(flag) = flag {
                        flag.request(&by, None);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
        }
        if let Err(e) = reap_gone_engines(&inner).await {
            tracing::warn!(error = %e, "could not check for stopped engines");
        }
        inner.wake.notify_waiters();
    }
}
