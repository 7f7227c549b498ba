//! A large, known history for benchmarks and end-to-end tests: ended tasks whose tool
//! calls went through the same commits, events and ledger rows a run writes (intent,
//! policy decision, held calls and their approvals, grants, outcomes, calls in doubt that
//! a person settled, refused calls), without running workflows or servers. `airlock-seed-history` is its
//! command line; `docs/benchmarks.md` says how to call it.
//!
//! Everything is a function of the call's number, so a test knows its answers: see
//! [`SeedPlan`] for the pattern. Every seeded task has ended, so an engine that opens the
//! database has nothing to run.

use std::sync::Arc;

use airlock_store::{
    AllowedBy, ApprovalStatus, ApprovalWrite, CallAllowance, CallRefusal, CommitOutcome, HeldCall,
    Millis, NewEvent, NewTask, ProposedCall, RefusedBy, StepWrite, Store, TaskCommit,
    TaskProjection, ToolCallOutcome, ToolCallWrite,
};
use airlock_workflow::EndStatus;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::error::EngineError;
use crate::event::{Decision, TaskEvent, apply, empty_projection, output_set_by};
use crate::ledger::{args_hash, idempotency_key};

/// The workflows seeded tasks belong to, task `n` to `WORKFLOWS[n % 3]`. Each is a request
/// that came in as a support ticket: read it, look up who it is about, make the change
/// (the write a person approves), tell the requester, close the ticket.
pub const WORKFLOWS: [SeedWorkflow; 3] = [
    SeedWorkflow {
        name: "refund",
        subject: ("customer_id", "C"),
        tools: [
            "support.get_ticket",
            "crm.find_customer",
            "erp.get_invoice",
            "erp.create_refund",
            "erp.get_refund",
            "support.send_reply",
            "crm.add_note",
            "crm.get_account",
            "erp.post_credit_note",
            "support.close_ticket",
        ],
        held_rule: "refunds need a controller",
        approvers: "controller",
        write_rule: "writes for known customers",
    },
    SeedWorkflow {
        name: "onboard",
        subject: ("employee_id", "E"),
        tools: [
            "support.get_ticket",
            "hr.get_employee",
            "hr.get_checklist",
            "hr.create_account",
            "hr.order_laptop",
            "support.send_reply",
            "hr.book_orientation",
            "hr.assign_buddy",
            "hr.complete_item",
            "support.close_ticket",
        ],
        held_rule: "new accounts need IT",
        approvers: "it-admin",
        write_rule: "writes for listed employees",
    },
    SeedWorkflow {
        name: "payout",
        subject: ("vendor_id", "V"),
        tools: [
            "support.get_ticket",
            "erp.find_vendor",
            "erp.get_invoice",
            "erp.create_payout",
            "erp.get_payout",
            "support.send_reply",
            "erp.post_journal_entry",
            "erp.get_budget",
            "erp.reconcile_payout",
            "support.close_ticket",
        ],
        held_rule: "payouts need a controller",
        approvers: "controller",
        write_rule: "writes for approved vendors",
    },
];

/// One seeded workflow: the tools its tasks call, in order, and its policy's words.
#[derive(Clone, Copy, Debug)]
pub struct SeedWorkflow {
    pub name: &'static str,
    /// The argument naming who a task is about, and its ids' prefix (`C-17`).
    pub subject: (&'static str, &'static str),
    /// Call `k` of a task calls `tools[k % 10]`: its write at 3, its reply at 5.
    pub tools: [&'static str; 10],
    /// The rule that holds its write for a person.
    pub held_rule: &'static str,
    /// Who may approve the held write.
    pub approvers: &'static str,
    /// The rule that lets its other writes through.
    pub write_rule: &'static str,
}

impl SeedWorkflow {
    /// Whether `tool` only reads (such calls are idempotent and allowed by "reads are allowed").
    pub fn reads(tool: &str) -> bool {
        tool.contains(".get_") || tool.contains(".find_")
    }
}

/// Every tool the seeded workflows call, sorted, each once.
pub fn seeded_tools() -> Vec<&'static str> {
    let mut tools: Vec<&str> = WORKFLOWS.iter().flat_map(|w| w.tools).collect();
    tools.sort_unstable();
    tools.dedup();
    tools
}

/// The people who approve held calls, alternately.
pub const APPROVERS: [&str; 2] = ["carol", "dan"];
/// Who settles the calls in doubt.
pub const RESOLVER: &str = "carol";
/// The grant that lets seeded replies to requesters through.
pub const GRANT_ID: &str = "seed-grant-replies";
/// The rule the grant stands in for.
pub const GRANT_RULE: &str = "replies to requesters need approval";
/// Who rejects the held writes that are refused.
pub const REJECTER: &str = "dan";
/// The rule that denies the writes a policy refuses.
pub const DENY_RULE: &str = "no writes for closed accounts";

/// What to seed. With `calls_per_task = 10` (the default), for call `i` (counted from 0
/// across all tasks, oldest first) of task `n = i / 10`, position `k = i % 10` in it:
/// - its intent is at `first_at + n * task_every_ms + k * call_every_ms`;
/// - the task is of workflow `WORKFLOWS[n % 3]` and the call calls its `tools[k % 10]`
///   ([`SeedPlan::tool`]); arguments name who the task is about (`C-{n % 500}` for a
///   refund's customer) and a reference `SO-{i}`;
/// - it was refused, never made (outcome `refused`, its step gave up), when `k == 3` (the
///   workflow's write) and `n % 20 == 2` — held by the workflow's `held_rule`, rejected by
///   [`REJECTER`] — or when `k == 6` (a later write) and `n % 20 == 7` — denied by the rule
///   [`DENY_RULE`] ([`SeedPlan::refused_by`]);
/// - otherwise the outcome is `failed` when `i % 50 == 7`, `in_doubt` settled as
///   `happened` by [`RESOLVER`] when `i % 1000 == 13`, otherwise `succeeded`;
/// - a call that was not refused was held by the workflow's `held_rule` and approved by
///   `APPROVERS[(n / 4) % 2]` when `k == 3` and `n % 4 == 0`; let through by the grant
///   [`GRANT_ID`] when `k == 5` (the reply) and `n % 10 == 1`; otherwise allowed by a
///   policy rule.
#[derive(Clone, Debug)]
pub struct SeedPlan {
    pub calls: u64,
    pub calls_per_task: u32,
    /// When the first call's intent was recorded.
    pub first_at: Millis,
    pub task_every_ms: i64,
    pub call_every_ms: i64,
    /// How many tasks are written at once (their commits group into shared transactions).
    pub concurrency: usize,
}

impl SeedPlan {
    /// `calls` calls, ten per task, a task every 25 s and a call every 2 s, the newest
    /// task starting at `newest_at`.
    pub fn ending_at(calls: u64, newest_at: Millis) -> SeedPlan {
        let mut plan = SeedPlan {
            calls,
            calls_per_task: 10,
            first_at: 0,
            task_every_ms: 25_000,
            call_every_ms: 2_000,
            concurrency: 256,
        };
        let tasks = i64::try_from(plan.tasks()).unwrap_or(i64::MAX);
        plan.first_at = newest_at.saturating_sub(tasks.saturating_sub(1) * plan.task_every_ms);
        plan
    }

    pub fn tasks(&self) -> u64 {
        self.calls.div_ceil(u64::from(self.calls_per_task.max(1)))
    }

    /// The task id of task `n`: 32 hex digits like the engine's, the first eight a
    /// scramble of `n` (distinct for every task, so short ids differ as real ones do).
    pub fn task_id(n: u64) -> String {
        let scrambled = (n.wrapping_mul(2_654_435_761)) & 0xffff_ffff;
        format!("{scrambled:08x}{n:024x}")
    }

    /// The call id of call `i`.
    pub fn call_id(i: u64) -> String {
        format!("c{i:031x}")
    }

    pub fn intent_at(&self, i: u64) -> Millis {
        let cpt = u64::from(self.calls_per_task.max(1));
        let (n, k) = (i / cpt, i % cpt);
        self.first_at
            + i64::try_from(n).unwrap_or(i64::MAX) * self.task_every_ms
            + i64::try_from(k).unwrap_or(i64::MAX) * self.call_every_ms
    }

    /// The workflow of task `n`.
    pub fn workflow(n: u64) -> &'static SeedWorkflow {
        &WORKFLOWS[usize::try_from(n % 3).unwrap_or(0)]
    }

    /// The tool call `i` calls.
    pub fn tool(&self, i: u64) -> &'static str {
        let cpt = u64::from(self.calls_per_task.max(1));
        let (n, k) = (i / cpt, i % cpt);
        Self::workflow(n).tools[usize::try_from(k % 10).unwrap_or(0)]
    }

    /// What refused call `i`, if it was refused.
    pub fn refused_by(&self, i: u64) -> Option<RefusedBy> {
        let cpt = u64::from(self.calls_per_task.max(1));
        let (n, k) = (i / cpt, i % cpt);
        match (k, n % 20) {
            (3, 2) => Some(RefusedBy::Person),
            (6, 7) => Some(RefusedBy::Policy),
            _ => None,
        }
    }

    /// What call `i`'s outcome is, when it was not refused.
    pub fn outcome(i: u64) -> ToolCallOutcome {
        if i % 50 == 7 {
            ToolCallOutcome::Failed
        } else if i % 1000 == 13 {
            ToolCallOutcome::Happened
        } else {
            ToolCallOutcome::Succeeded
        }
    }

    /// How call `i` got through the policy (without ids and rules); `None` when it was
    /// refused.
    pub fn allowed_by(&self, i: u64) -> Option<AllowedBy> {
        let cpt = u64::from(self.calls_per_task.max(1));
        let (n, k) = (i / cpt, i % cpt);
        if self.refused_by(i).is_some() {
            None
        } else if k == 3 && n.is_multiple_of(4) {
            Some(AllowedBy::Approval)
        } else if k == 5 && n % 10 == 1 {
            Some(AllowedBy::Grant)
        } else {
            Some(AllowedBy::Policy)
        }
    }
}

/// What was seeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seeded {
    pub tasks: u64,
    pub calls: u64,
    pub commits: u64,
}

/// Writes `plan`'s tasks into `store`, through its ordinary commits. The database should
/// hold no seeded tasks yet (a seeded task id already there is an error).
pub async fn seed_history(store: &Store, plan: &SeedPlan) -> Result<Seeded, EngineError> {
    let workflow_ids = register_workflows(store, plan.first_at).await?;
    let plan = Arc::new(plan.clone());
    let mut running = JoinSet::new();
    let mut seeded = Seeded {
        tasks: 0,
        calls: 0,
        commits: 0,
    };
    let mut next = 0;
    let tasks = plan.tasks();
    while next < tasks || !running.is_empty() {
        while next < tasks && running.len() < plan.concurrency.max(1) {
            let (store, plan, workflows) = (store.clone(), plan.clone(), workflow_ids);
            running.spawn(async move { seed_task(&store, &plan, &workflows, next).await });
            next += 1;
        }
        if let Some(done) = running.join_next().await {
            // Nothing aborts these tasks, so a join error is a panic: let it through.
            let (calls, commits) =
                done.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
            seeded.tasks += 1;
            seeded.calls += calls;
            seeded.commits += commits;
        }
    }
    Ok(seeded)
}

async fn register_workflows(store: &Store, at: Millis) -> Result<[i64; 3], EngineError> {
    let mut ids = [0; 3];
    for (slot, name) in ids.iter_mut().zip(WORKFLOWS.map(|w| w.name)) {
        // The text says what it is; seeded tasks have all ended, so it is never run.
        let source = format!(
            "# `{name}`: a workflow of the seeded history (airlock-seed-history). Its tasks\n\
             # have all ended; this text is kept as the record of where they came from.\n"
        );
        let hash = crate::ledger::args_hash(&json!({ "seeded": name }));
        *slot = store
            .register_workflow(name, &hash, &source, Some("airlock-seed-history"), at)
            .await?
            .id;
    }
    Ok(ids)
}

/// One seeded task: its events folded as they are pushed (as the engine's draft does),
/// committed at the times the plan gives.
struct SeedTask<'a> {
    store: &'a Store,
    id: String,
    seq: i64,
    proj: TaskProjection,
    create: Option<NewTask>,
    events: Vec<TaskEvent>,
    outputs: Vec<String>,
    steps: Vec<StepWrite>,
    calls: Vec<ToolCallWrite>,
    approvals: Vec<ApprovalWrite>,
    commits: u64,
}

impl SeedTask<'_> {
    fn push(&mut self, event: TaskEvent) {
        if let Some(state) = output_set_by(&event) {
            self.outputs.push(state.to_owned());
        }
        apply(&mut self.proj, &event);
        self.events.push(event);
    }

    /// Seeded call `i`, proposed at `step_no` (the only call of its step).
    fn proposed(&self, i: u64, step_no: i64, tool: &str, args: &Value, hash: &str) -> ProposedCall {
        ProposedCall {
            id: SeedPlan::call_id(i),
            step_no,
            attempt: 1,
            call_index: 0,
            tool: tool.to_owned(),
            args: args.clone(),
            args_hash: hash.to_owned(),
            idempotency_key: idempotency_key(&self.id, step_no, 0),
            idempotent: SeedWorkflow::reads(tool),
        }
    }

    /// The step ends failed and the task goes on to `next`, its error path.
    fn give_up(&mut self, step_no: i64, state: &str, error: String, next: &str) {
        self.steps.push(StepWrite::End {
            step_no,
            outcome: "failed".into(),
            error: Some(error.clone()),
        });
        self.push(TaskEvent::StepGaveUp {
            step_no,
            state: state.to_owned(),
            error,
            next: Some(next.to_owned()),
        });
    }

    async fn commit(&mut self, at: Millis) -> Result<(), EngineError> {
        let events = self
            .events
            .drain(..)
            .map(|e| NewEvent {
                kind: e.kind().to_owned(),
                body: serde_json::to_value(&e).unwrap_or_default(),
            })
            .collect();
        let outputs = std::mem::take(&mut self.outputs)
            .into_iter()
            .map(|name| {
                let output = self.proj.state.get(&name).cloned().unwrap_or(Value::Null);
                (name, output)
            })
            .collect();
        let commit = TaskCommit {
            task_id: self.id.clone(),
            at,
            expected_seq: self.seq,
            lease_owner: None,
            create: self.create.take(),
            events,
            projection: TaskProjection {
                state: Value::Null,
                ..self.proj.clone()
            },
            outputs,
            steps: std::mem::take(&mut self.steps),
            tool_calls: std::mem::take(&mut self.calls),
            approvals: std::mem::take(&mut self.approvals),
            release_lease: false,
        };
        match self.store.commit(commit).await? {
            CommitOutcome::Committed { last_seq } => {
                self.seq = last_seq;
                self.commits += 1;
                Ok(())
            }
            outcome => Err(EngineError::Refused {
                task: self.id.clone(),
                outcome,
            }),
        }
    }
}

/// Seeds task `n`; returns its calls and commits.
async fn seed_task(
    store: &Store,
    plan: &SeedPlan,
    workflow_ids: &[i64; 3],
    n: u64,
) -> Result<(u64, u64), EngineError> {
    let cpt = u64::from(plan.calls_per_task.max(1));
    let first = n * cpt;
    let last = (first + cpt).min(plan.calls);
    let which = usize::try_from(n % 3).unwrap_or(0);
    let flow = SeedPlan::workflow(n);
    let workflow = flow.name;
    let requester = if n.is_multiple_of(2) { "alice" } else { "bob" };
    let (subject_key, prefix) = flow.subject;
    let subject = format!("{prefix}-{}", n % 500);
    let ticket = format!("T-{n}");
    let inputs = json!({ subject_key: subject, "ticket": ticket });
    let created_at = plan.intent_at(first) - 500;
    let mut t = SeedTask {
        store,
        id: SeedPlan::task_id(n),
        seq: 0,
        proj: empty_projection(),
        create: Some(NewTask {
            workflow_id: workflow_ids[which],
            workflow_name: workflow.to_owned(),
            requester: requester.to_owned(),
            inputs: inputs.clone(),
        }),
        events: Vec::new(),
        outputs: Vec::new(),
        steps: Vec::new(),
        calls: Vec::new(),
        approvals: Vec::new(),
        commits: 0,
    };
    t.push(TaskEvent::Created {
        workflow: workflow.to_owned(),
        workflow_version: 1,
        start: state_name(0),
        requester: requester.to_owned(),
        inputs,
    });
    t.commit(created_at).await?;

    for i in first..last {
        let k = i - first;
        let step_no = i64::try_from(k).unwrap_or(0) + 1;
        let state = state_name(k);
        let next = if i + 1 < last {
            state_name(k + 1)
        } else {
            "done".to_owned()
        };
        let tool = plan.tool(i);
        let args = call_args(tool, subject_key, &subject, &ticket, i);
        let hash = args_hash(&args);
        let at = plan.intent_at(i);
        let start = |t: &mut SeedTask<'_>| {
            t.steps.push(StepWrite::Start {
                step_no,
                state_name: state.clone(),
                kind: "tool".into(),
                attempt: 1,
            });
            t.push(TaskEvent::StepStarted {
                step_no,
                state: state.clone(),
                state_kind: "tool".into(),
                attempt: 1,
            });
        };
        let decided_because =
            |effect: &str, rule: &str, via: Option<String>, reason: Option<String>| {
                TaskEvent::PolicyDecided {
                    step_no,
                    call_index: 0,
                    tool: tool.to_owned(),
                    args_hash: hash.clone(),
                    effect: effect.to_owned(),
                    rule: Some(rule.to_owned()),
                    seen: json!({ "tool": tool, subject_key: subject }),
                    policy_version: "5eed5eed5eed".to_owned(),
                    via,
                    reason,
                }
            };
        let decided = |effect: &str, rule: &str, via: Option<String>| {
            decided_because(effect, rule, via, None)
        };

        // Held for a person a few minutes before it was decided; the approval's id.
        let hold = async |t: &mut SeedTask<'_>| -> Result<String, EngineError> {
            let rule = flow.held_rule;
            let approval_id = format!("a{i:031x}");
            start(t);
            t.push(decided("require_approval", rule, None));
            t.push(TaskEvent::CallHeld {
                approval_id: approval_id.clone(),
                step_no,
                call_index: 0,
                tool: tool.to_owned(),
                args_hash: hash.clone(),
                rule: Some(rule.to_owned()),
                approvers: vec![flow.approvers.into()],
                expires_at: None,
            });
            t.approvals.push(ApprovalWrite::Request {
                id: approval_id.clone(),
                step_no,
                state_name: state.clone(),
                prompt: format!(
                    "`{tool}` wants to run for task {} ({workflow}): rule “{rule}”",
                    t.id
                ),
                approvers: vec![flow.approvers.into()],
                requested_at: at - 180_000,
                expires_at: None,
                tool_call_id: None,
                args_hash: Some(hash.clone()),
                policy_version: Some("5eed5eed5eed".into()),
                held_call: Some(Box::new(HeldCall {
                    call_index: 0,
                    tool: tool.to_owned(),
                    args: args.clone(),
                    risk: "write".into(),
                    rule: Some(rule.to_owned()),
                    seen: json!({}),
                    requester: requester.to_owned(),
                    approvals: 1,
                    escalate_at: None,
                    escalate_to: Vec::new(),
                    four_eyes: false,
                })),
            });
            t.commit(at - 180_000).await?;
            Ok(approval_id)
        };
        if let Some(by) = plan.refused_by(i) {
            let (refusal, reason) = match by {
                RefusedBy::Person => {
                    let approval_id = hold(&mut t).await?;
                    let why = "a duplicate of an earlier request";
                    t.approvals.push(ApprovalWrite::Decide {
                        id: approval_id.clone(),
                        status: ApprovalStatus::Rejected {
                            by: REJECTER.to_owned(),
                            at,
                            reason: Some(why.to_owned()),
                        },
                    });
                    t.push(TaskEvent::CallApprovalDecided {
                        approval_id: approval_id.clone(),
                        call_index: 0,
                        decision: Decision::Rejected,
                        by: Some(REJECTER.to_owned()),
                        reason: Some(why.to_owned()),
                        edited_args: None,
                    });
                    (
                        CallRefusal::Person {
                            approval_id,
                            rejected_by: REJECTER.to_owned(),
                            rule: Some(flow.held_rule.to_owned()),
                        },
                        format!("refused: {REJECTER} rejected this call: {why}"),
                    )
                }
                _ => {
                    start(&mut t);
                    let reason =
                        format!("refused by policy rule “{DENY_RULE}”: the account is closed");
                    t.push(decided_because(
                        "deny",
                        DENY_RULE,
                        None,
                        Some(reason.clone()),
                    ));
                    (
                        CallRefusal::Policy {
                            rule: Some(DENY_RULE.to_owned()),
                            approval_id: None,
                        },
                        reason,
                    )
                }
            };
            t.calls.push(ToolCallWrite::Refused {
                call: t.proposed(i, step_no, tool, &args, &hash),
                refusal,
                reason: reason.clone(),
            });
            t.give_up(step_no, &state, reason, &next);
            t.commit(at).await?;
            continue;
        }

        let allowed = match plan.allowed_by(i) {
            Some(AllowedBy::Approval) => {
                let rule = flow.held_rule;
                let approval_id = hold(&mut t).await?;
                let approver = APPROVERS[usize::try_from((n / 4) % 2).unwrap_or(0)];
                t.approvals.push(ApprovalWrite::Decide {
                    id: approval_id.clone(),
                    status: ApprovalStatus::Approved {
                        by: approver.to_owned(),
                        at,
                        reason: None,
                        edited_args: None,
                    },
                });
                t.push(TaskEvent::CallApprovalDecided {
                    approval_id: approval_id.clone(),
                    call_index: 0,
                    decision: Decision::Approved,
                    by: Some(approver.to_owned()),
                    reason: None,
                    edited_args: None,
                });
                t.push(decided(
                    "require_approval",
                    rule,
                    Some(format!("approval {approval_id} by {approver}")),
                ));
                CallAllowance::Approval {
                    approval_id,
                    approver: approver.to_owned(),
                    rule: Some(rule.to_owned()),
                }
            }
            Some(AllowedBy::Grant) => {
                let rule = GRANT_RULE;
                start(&mut t);
                t.push(decided(
                    "require_approval",
                    rule,
                    Some(format!("grant {GRANT_ID}")),
                ));
                CallAllowance::Grant {
                    grant_id: GRANT_ID.to_owned(),
                    rule: Some(rule.to_owned()),
                }
            }
            // `None` (refused) was seeded above.
            Some(AllowedBy::Policy) | None => {
                let rule = if SeedWorkflow::reads(tool) {
                    "reads are allowed"
                } else {
                    flow.write_rule
                };
                start(&mut t);
                t.push(decided("allow", rule, None));
                CallAllowance::Policy {
                    rule: Some(rule.to_owned()),
                }
            }
        };
        let call = t.proposed(i, step_no, tool, &args, &hash);
        let (call_id, key) = (call.id.clone(), call.idempotency_key.clone());
        t.calls.push(ToolCallWrite::Intent { call, allowed });
        t.push(TaskEvent::ToolCalled {
            call_id: call_id.clone(),
            tool: tool.to_owned(),
            args_hash: hash.clone(),
            idempotency_key: key,
        });
        t.commit(at).await?;

        let returned_at = at + 40 + i64::try_from(i % 400).unwrap_or(0);
        let result = json!({ "ok": true, "id": format!("R-{i}"), "ref": format!("SO-{i}") });
        match SeedPlan::outcome(i) {
            ToolCallOutcome::Failed => {
                let error = format!("{tool}: the server is busy (code 503); try again later");
                t.calls.push(ToolCallWrite::Outcome {
                    id: call_id.clone(),
                    outcome: ToolCallOutcome::Failed,
                    result: None,
                    error: Some(error.clone()),
                    resolved_by: None,
                });
                t.push(TaskEvent::ToolReturned {
                    call_id,
                    ok: false,
                    error: Some(error.clone()),
                });
                t.give_up(step_no, &state, error, &next);
                t.commit(returned_at).await?;
            }
            ToolCallOutcome::Happened => {
                let reason = "the connection to the server was lost before it answered";
                t.calls.push(ToolCallWrite::Outcome {
                    id: call_id.clone(),
                    outcome: ToolCallOutcome::InDoubt,
                    result: None,
                    error: Some(reason.into()),
                    resolved_by: None,
                });
                t.push(TaskEvent::CallInDoubt {
                    call_id: call_id.clone(),
                    tool: tool.to_owned(),
                    reason: reason.into(),
                });
                t.commit(returned_at).await?;
                t.calls.push(ToolCallWrite::Outcome {
                    id: call_id.clone(),
                    outcome: ToolCallOutcome::Happened,
                    result: None,
                    error: Some(reason.into()),
                    resolved_by: Some(RESOLVER.into()),
                });
                t.steps.push(StepWrite::End {
                    step_no,
                    outcome: "succeeded".into(),
                    error: None,
                });
                t.push(TaskEvent::InDoubtResolved {
                    call_id,
                    state: state.clone(),
                    happened: true,
                    by: RESOLVER.into(),
                    next: Some(next.clone()),
                    retry_at: None,
                });
                t.commit(returned_at + 600_000).await?;
            }
            _ => {
                t.calls.push(ToolCallWrite::Outcome {
                    id: call_id.clone(),
                    outcome: ToolCallOutcome::Succeeded,
                    result: Some(result.clone()),
                    error: None,
                    resolved_by: None,
                });
                t.push(TaskEvent::ToolReturned {
                    call_id,
                    ok: true,
                    error: None,
                });
                t.steps.push(StepWrite::End {
                    step_no,
                    outcome: "succeeded".into(),
                    error: None,
                });
                t.push(TaskEvent::StepSucceeded {
                    step_no,
                    state: state.clone(),
                    output: result,
                    next: next.clone(),
                });
                if i + 1 == last {
                    t.push(TaskEvent::Ended {
                        state: "done".into(),
                        status: EndStatus::Succeeded,
                    });
                }
                t.commit(returned_at).await?;
            }
        }
    }
    if t.proj.status.is_terminal() {
        return Ok((last - first, t.commits));
    }
    // The last call failed, was refused or was in doubt: the task still ends, where
    // on_error led.
    t.push(TaskEvent::Ended {
        state: "done".into(),
        status: EndStatus::Succeeded,
    });
    t.commit(plan.intent_at(last - 1) + 1_000_000).await?;
    Ok((last - first, t.commits))
}

/// What call `i` (to `tool`, in a task about `subject`, from `ticket`) is given: who it is
/// about, a reference unique to the call, and what the tool needs.
fn call_args(tool: &str, subject_key: &str, subject: &str, ticket: &str, i: u64) -> Value {
    let mut args = json!({ subject_key: subject, "ref": format!("SO-{i}") });
    let amount = || json!((i * 37) % 90_000 + 100);
    let extra = match tool.rsplit('.').next().unwrap_or(tool) {
        "get_ticket" | "close_ticket" => json!({ "ticket": ticket }),
        "send_reply" => {
            json!({ "ticket": ticket, "body": format!("An update on {ticket}: done.") })
        }
        "create_refund" | "create_payout" | "post_credit_note" | "post_journal_entry" => {
            json!({ "amount_cents": amount() })
        }
        "create_account" => json!({ "groups": ["staff"] }),
        "order_laptop" => json!({ "model": "standard" }),
        "add_note" => json!({ "body": format!("Handled {ticket}; the customer was told.") }),
        _ => json!({}),
    };
    if let (Some(args), Value::Object(extra)) = (args.as_object_mut(), extra) {
        args.extend(extra);
    }
    args
}

fn state_name(k: u64) -> String {
    format!("step_{}", k + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_ends_where_it_was_asked_to() {
        let plan = SeedPlan::ending_at(95, 1_000_000_000);
        assert_eq!(plan.tasks(), 10);
        assert_eq!(plan.intent_at(90), 1_000_000_000);
        assert_eq!(plan.intent_at(0), 1_000_000_000 - 9 * 25_000);
        assert_eq!(plan.intent_at(13), plan.first_at + 25_000 + 3 * 2_000);
    }
}
