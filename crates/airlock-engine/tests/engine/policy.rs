//! Policy on the checked path: allow, deny and require_approval for tool calls; the
//! lifecycle of a held call (approve, reject, edit then approve, expiry, escalation, four
//! eyes, several approvers, a permission revoked between approval and execution, a
//! restart while waiting); grants.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use airlock_engine::event::Decision;
use airlock_engine::policy::{Identities, Policy, PolicyFile};
use airlock_engine::store::{
    ApprovalStatus, AuditFilter, CallAllowance, CallRefusal, TaskStatus, ToolCallOutcome,
};
use airlock_engine::{
    Answer, Answered, CancelOutcome, Engine, EngineConfig, EngineError, Governance, GrantSpec,
    ManualClock, TaskEvent,
};
use serde_json::json;

use crate::approval::T0;
use crate::support::*;

const RULES: &str = r#"
[[rules]]
name = "small records"
tools = ["builtin.record"]
effect = "allow"

[[rules]]
name = "big records need a controller"
tools = ["builtin.record"]
when = "args.amount > 50"
effect = "require_approval"
approvers = ["controller"]
expires_after = "1h"
escalate_after = "30m"
escalate_to = ["cfo"]

[[rules]]
name = "no upserts"
tools = ["builtin.upsert"]
effect = "deny"
reason = "upserts are switched off"
"#;

const PEOPLE: &str = r#"
[identities.req]
roles = ["operator"]
[identities.carol]
roles = ["controller"]
[identities.carl]
roles = ["controller"]
[identities.dave]
roles = ["cfo"]
[identities.eve]
roles = ["operator"]
"#;

const PAY: &str = r#"
name = "pay"
start = "pay"

[inputs.amount]
type = "integer"

[states.pay]
kind = "tool"
tool = "builtin.record"
args = { label = "'payout'", amount = "inputs.amount" }
next = "done"
on_error = "refused"

[states.done]
kind = "end"
status = "succeeded"

[states.refused]
kind = "end"
status = "failed"
"#;

const UPSERT: &str = r#"
name = "upsert"
start = "put"

[states.put]
kind = "tool"
tool = "builtin.upsert"
args = { key = "'k'", value = "1" }
next = "done"
on_error = "refused"

[states.done]
kind = "end"
status = "succeeded"

[states.refused]
kind = "end"
status = "failed"
"#;

fn policy(source: &str) -> Arc<Policy> {
    Arc::new(
        Policy::parse(Path::new("policy.toml"), source)
            .unwrap_or_else(|d| panic!("test policy does not parse:\n{d}")),
    )
}

fn governance(rules: &str) -> Governance {
    Governance {
        policy: Arc::new(policy(rules)),
        identities: Arc::new(Identities::parse(Path::new("identities.toml"), PEOPLE).unwrap()),
        check_approvers: true,
    }
}

async fn governed(env: &Env, clock: Arc<ManualClock>, governance: Governance) -> Engine {
    let config = EngineConfig {
        governance,
        ..env.config()
    };
    let tools = env.builtin().await;
    env.engine_with(config, clock, tools).await
}

async fn start_pay(engine: &Engine, amount: i64, requester: &str) -> String {
    let id = engine
        .start_task(
            &parse(PAY),
            inputs(json!({ "amount": amount })),
            requester,
            None,
        )
        .await
        .unwrap();
    engine.run_task(&id).await.unwrap();
    id
}

async fn pending_for(engine: &Engine, task: &str) -> String {
    let approvals = engine.store().task_approvals(task).await.unwrap();
    let pending: Vec<_> = approvals
        .iter()
        .filter(|a| a.status == ApprovalStatus::Pending)
        .collect();
    assert_eq!(pending.len(), 1, "one pending approval: {approvals:?}");
    pending[0].id.clone()
}

fn decisions(events: &[TaskEvent]) -> Vec<(String, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            TaskEvent::PolicyDecided { effect, rule, .. } => Some((effect.clone(), rule.clone())),
            _ => None,
        })
        .collect()
}

async fn audit_kinds(engine: &Engine) -> Vec<String> {
    engine
        .store()
        .audit_entries(&AuditFilter {
            limit: Some(10_000),
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

fn approve(reason: &str) -> Answer {
    Answer::Approve {
        reason: Some(reason.into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_calls_run_and_record_the_rule_that_allowed_them() {
    within(async {
        let env = Env::new();
        let engine = governed(&env, Arc::new(ManualClock::new(T0)), governance(RULES)).await;
        let id = start_pay(&engine, 20, "req").await;
        assert_eq!(
            task(&engine, &id).await.projection.status,
            TaskStatus::Succeeded
        );
        assert_eq!(env.effects().await, 1);
        let events = events(&engine, &id).await;
        assert_eq!(
            decisions(&events),
            [("allow".to_owned(), Some("small records".to_owned()))]
        );
        let seen = events
            .iter()
            .find_map(|e| match e {
                TaskEvent::PolicyDecided {
                    seen,
                    policy_version,
                    ..
                } => Some((seen.clone(), policy_version.clone())),
                _ => None,
            })
            .unwrap();
        assert_eq!(seen.1, policy(RULES).version());
        let recorded = engine.store().policy_versions().await.unwrap();
        assert_eq!(recorded.len(), 1);
        assert_eq!(
            recorded[0].source, RULES,
            "the rules decided under are kept"
        );
        assert_eq!(
            calls(&engine, &id).await[0].allowed,
            Some(CallAllowance::Policy {
                rule: Some("small records".into())
            }),
            "the ledger row says what let the call through"
        );
        assert_consistent(&engine, &id).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_call_is_never_made_and_the_task_takes_its_error_path() {
    within(async {
        let env = Env::new();
        let engine = governed(&env, Arc::new(ManualClock::new(T0)), governance(RULES)).await;
        let id = engine
            .start_task(&parse(UPSERT), inputs(json!({})), "req", None)
            .await
            .unwrap();
        let t = engine.run_task(&id).await.unwrap();
        assert_eq!(t.projection.status, TaskStatus::Failed);
        assert_eq!(t.projection.current_state.as_deref(), Some("refused"));
        let error = t.projection.state["put"]["error"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            error.contains("no upserts") && error.contains("upserts are switched off"),
            "{error}"
        );
        // Never made: its ledger row is the refusal, with the rule and why.
        let ledger = calls(&engine, &id).await;
        assert_eq!(ledger.len(), 1, "{ledger:#?}");
        assert_eq!(ledger[0].outcome, Some(ToolCallOutcome::Refused));
        assert_eq!(
            ledger[0].refusal,
            Some(CallRefusal::Policy {
                rule: Some("no upserts".into()),
                approval_id: None,
            })
        );
        assert_eq!(ledger[0].error.as_deref(), Some(error.as_str()));
        assert_eq!(env.kv("k").await, None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_no_rule_matches_is_denied_by_default() {
    within(async {
        let env = Env::new();
        let rules =
            "[[rules]]\nname = \"only echo\"\ntools = [\"builtin.echo\"]\neffect = \"allow\"\n";
        let engine = governed(&env, Arc::new(ManualClock::new(T0)), governance(rules)).await;
        let id = start_pay(&engine, 5, "req").await;
        let t = task(&engine, &id).await;
        assert_eq!(t.projection.status, TaskStatus::Failed);
        assert_eq!(
            decisions(&events(&engine, &id).await),
            [("deny".to_owned(), None)]
        );
        assert_eq!(env.effects().await, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_call_waits_for_an_approver_role_then_runs_once() {
    within(async {
        let env = Env::new();
        let engine = governed(&env, Arc::new(ManualClock::new(T0)), governance(RULES)).await;
        let id = start_pay(&engine, 75, "req").await;
        let t = task(&engine, &id).await;
        assert_eq!(t.projection.status, TaskStatus::WaitingApproval);
        assert_eq!(t.lease_owner, None);
        assert_eq!(env.effects().await, 0, "nothing runs before approval");
        assert!(calls(&engine, &id).await.is_empty(), "no intent before approval");

        let approval_id = pending_for(&engine, &id).await;
        let approval = engine.store().approval(&approval_id).await.unwrap().unwrap();
        let held = approval.held_call.clone().unwrap();
        assert_eq!(held.tool, "builtin.record");
        assert_eq!(held.args, json!({"label": "payout", "amount": 75}));
        assert_eq!(held.rule.as_deref(), Some("big records need a controller"));
        assert_eq!(held.seen["args.amount"], json!(75), "{}", held.seen);
        assert_eq!(held.requester, "req");
        assert_eq!(approval.approvers, ["controller"]);
        assert_eq!(approval.expires_at, Some(T0 + 3_600_000));
        assert_eq!(approval.policy_version.as_deref(), Some(policy(RULES).version()));

        // Someone without the role cannot decide, and nothing changes.
        let refused = engine
            .answer_approval(&approval_id, approve("fine"), "eve")
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, EngineError::NotAllowed { reason, .. } if reason.contains("controller")),
            "{refused}"
        );
        assert_eq!(
            task(&engine, &id).await.projection.status,
            TaskStatus::WaitingApproval
        );

        let decided = engine
            .answer_approval(&approval_id, approve("checked the invoice"), "carol")
            .await
            .unwrap();
        assert!(matches!(decided, Answered::Decided(_)));
        let second = engine
            .answer_approval(&approval_id, Answer::Reject { reason: None }, "carl")
            .await
            .unwrap_err();
        assert!(matches!(second, EngineError::AlreadyDecided(_)), "{second}");

        let t = engine.run_task(&id).await.unwrap();
        assert_eq!(t.projection.status, TaskStatus::Succeeded);
        assert_eq!(env.effects().await, 1, "the approved call ran exactly once");
        let events = events(&engine, &id).await;
        assert!(events.iter().any(|e| matches!(
            e,
            TaskEvent::PolicyDecided { via: Some(via), effect, .. }
                if via == &format!("approval {approval_id} by carol") && effect == "require_approval"
        )), "the execution-time check is recorded: {events:?}");
        // Carrying a task on after a person's decision is no recovery from a crash.
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, TaskEvent::RecoveryStarted { .. })),
            "{events:?}"
        );
        assert_eq!(
            calls(&engine, &id).await[0].allowed,
            Some(CallAllowance::Approval {
                approval_id: approval_id.clone(),
                approver: "carol".into(),
                rule: Some("big records need a controller".into()),
            })
        );
        assert_consistent(&engine, &id).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_call_is_not_made_and_the_reason_reaches_the_error_path() {
    within(async {
        let env = Env::new();
        let engine = governed(&env, Arc::new(ManualClock::new(T0)), governance(RULES)).await;
        let id = start_pay(&engine, 75, "req").await;
        let approval_id = pending_for(&engine, &id).await;
        engine
            .answer_approval(
                &approval_id,
                Answer::Reject {
                    reason: Some("duplicate invoice".into()),
                },
                "carol",
            )
            .await
            .unwrap();
        let t = engine.run_task(&id).await.unwrap();
        assert_eq!(t.projection.status, TaskStatus::Failed);
        assert_eq!(t.projection.current_state.as_deref(), Some("refused"));
        let error = t.projection.state["pay"]["error"].as_str().unwrap();
        assert!(
            error.contains("carol rejected this call: duplicate invoice"),
            "{error}"
        );
        assert_eq!(env.effects().await, 0);
        let ledger = calls(&engine, &id).await;
        assert_eq!(ledger.len(), 1, "{ledger:#?}");
        assert_eq!(ledger[0].outcome, Some(ToolCallOutcome::Refused));
        assert_eq!(
            ledger[0].refusal,
            Some(CallRefusal::Person {
                approval_id: approval_id.clone(),
                rejected_by: "carol".into(),
                rule: Some("big records need a controller".into()),
            })
        );
        assert_consistent(&engine, &id).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_then_approve_runs_the_edited_call_and_keeps_both_versions() {
    within(async {
        let env = Env::new();
        let engine = governed(&env, Arc::new(ManualClock::new(T0)), governance(RULES)).await;
        let id = start_pay(&engine, 75, "req").await;
        let approval_id = pending_for(&engine, &id).await;

        // An edit that breaks the tool's schema is refused; the approval stays pending.
        let bad = engine
            .answer_approval(
                &approval_id,
                Answer::ApproveEdited {
                    args: json!({"label": 5, "amount": 40}),
                    reason: None,
                },
                "carol",
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&bad, EngineError::EditRefused { reason, .. } if reason.contains("input schema")),
            "{bad}"
        );

        engine
            .answer_approval(
                &approval_id,
                Answer::ApproveEdited {
                    args: json!({"label": "payout", "amount": 40}),
                    reason: Some("only 40 is owed".into()),
                },
                "carol",
            )
            .await
            .unwrap();
        let t = engine.run_task(&id).await.unwrap();
        assert_eq!(t.projection.status, TaskStatus::Succeeded);
        let made = calls(&engine, &id).await;
        assert_eq!(made.len(), 1);
        assert_eq!(made[0].args, json!({"label": "payout", "amount": 40}));
        let approval = engine.store().approval(&approval_id).await.unwrap().unwrap();
        assert_eq!(approval.held_call.unwrap().args["amount"], json!(75), "the proposal is kept");
        assert!(matches!(
            approval.status,
            ApprovalStatus::Approved { edited_args: Some(ref args), .. } if args["amount"] == json!(40)
        ));
        let events = events(&engine, &id).await;
        assert!(events.iter().any(|e| matches!(
            e,
            TaskEvent::CallApprovalDecided { decision: Decision::Approved, edited_args: Some(_), .. }
        )));
        assert_consistent(&engine, &id).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_the_policy_denies_is_refused() {
    within(async {
        let env = Env::new();
        let rules = format!(
            "{RULES}\n[[rules]]\nname = \"never above 1000\"\ntools = [\"builtin.record\"]\nwhen = \"args.amount > 1000\"\neffect = \"deny\"\n"
        );
        let engine = governed(&env, Arc::new(ManualClock::new(T0)), governance(&rules)).await;
        let id = start_pay(&engine, 75, "req").await;
        let approval_id = pending_for(&engine, &id).await;
        let refused = engine
            .answer_approval(
                &approval_id,
                Answer::ApproveEdited {
                    args: json!({"label": "payout", "amount": 5000}),
                    reason: None,
                },
                "carol",
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, EngineError::EditRefused { reason, .. } if reason.contains("never above 1000")),
            "{refused}"
        );
        assert_eq!(
            task(&engine, &id).await.projection.status,
            TaskStatus::WaitingApproval
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_approval_fails_closed_and_is_recorded_as_expiry() {
    within(async {
        let env = Env::new();
        let clock = Arc::new(ManualClock::new(T0));
        let engine = governed(&env, clock.clone(), governance(RULES)).await;
        let id = start_pay(&engine, 75, "req").await;
        let approval_id = pending_for(&engine, &id).await;
        clock.advance(Duration::from_secs(3601));
        engine.run_until_idle().await.unwrap();
        let t = task(&engine, &id).await;
        assert_eq!(t.projection.status, TaskStatus::Failed);
        assert_eq!(t.projection.current_state.as_deref(), Some("refused"));
        let approval = engine
            .store()
            .approval(&approval_id)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(approval.status, ApprovalStatus::Expired { .. }));
        assert_eq!(
            env.approval_decided_by(&approval_id).await,
            None,
            "nobody denied it"
        );
        assert_eq!(env.effects().await, 0);
        assert_consistent(&engine, &id).await;
    })
    .await;
}

/// A call held for approval whose task is cancelled is refused by the cancel, naming who
/// cancelled, and its approval is withdrawn — neither reads as a person's rejection (the
/// one who cancelled may not even be allowed to reject it): whether the task was
/// cancelled at once (no engine was running it) or at the next engine's pick-up (someone
/// held its lease).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_call_of_a_cancelled_task_is_withdrawn_not_rejected() {
    within(async {
        let env = Env::new();
        let engine = governed(&env, Arc::new(ManualClock::new(T0)), governance(RULES)).await;
        let at_once = start_pay(&engine, 75, "req").await;
        let later = start_pay(&engine, 80, "req").await;
        let at_once_approval = pending_for(&engine, &at_once).await;
        let later_approval = pending_for(&engine, &later).await;

        let outcome = engine
            .cancel(&at_once, "dana", Some("vendor went bust".into()))
            .await
            .unwrap();
        assert_eq!(outcome, CancelOutcome::Cancelled);
        let held = engine
            .store()
            .claim(&later, "other-engine", T0, T0 + 60_000)
            .await
            .unwrap();
        assert!(held.is_some());
        let outcome = engine.cancel(&later, "erin", None).await.unwrap();
        assert_eq!(outcome, CancelOutcome::Requested);
        engine.store().release(&later, "other-engine").await.unwrap();
        engine.run_until_idle().await.unwrap();

        for (task_id, approval_id, by, reason) in [
            (
                &at_once,
                &at_once_approval,
                "dana",
                "refused: dana cancelled the task while this call waited for approval: vendor went bust",
            ),
            (
                &later,
                &later_approval,
                "erin",
                "refused: erin cancelled the task while this call waited for approval",
            ),
        ] {
            let t = task(&engine, task_id).await;
            assert_eq!(t.projection.status, TaskStatus::Cancelled);
            let ledger = calls(&engine, task_id).await;
            assert_eq!(ledger.len(), 1, "{ledger:#?}");
            assert_eq!(ledger[0].tool, "builtin.record");
            assert_eq!(ledger[0].outcome, Some(ToolCallOutcome::Refused));
            assert_eq!(
                ledger[0].refusal,
                Some(CallRefusal::Cancel {
                    approval_id: approval_id.clone(),
                    cancelled_by: by.into(),
                    rule: Some("big records need a controller".into()),
                })
            );
            assert_eq!(ledger[0].error.as_deref(), Some(reason));
            let approval = engine.store().approval(approval_id).await.unwrap().unwrap();
            assert!(
                matches!(&approval.status, ApprovalStatus::Withdrawn { by: who, .. } if who == by),
                "{:?}",
                approval.status
            );
            assert_consistent(&engine, task_id).await;
        }
        assert_eq!(env.effects().await, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_lets_another_role_decide_after_the_delay() {
    within(async {
        let env = Env::new();
        let clock = Arc::new(ManualClock::new(T0));
        let engine = governed(&env, clock.clone(), governance(RULES)).await;
        let id = start_pay(&engine, 75, "req").await;
        let approval_id = pending_for(&engine, &id).await;
        let early = engine
            .answer_approval(&approval_id, approve("cfo says yes"), "dave")
            .await
            .unwrap_err();
        assert!(matches!(early, EngineError::NotAllowed { .. }), "{early}");
        clock.advance(Duration::from_secs(31 * 60));
        engine
            .answer_approval(&approval_id, approve("cfo says yes"), "dave")
            .await
            .unwrap();
        let t = engine.run_task(&id).await.unwrap();
        assert_eq!(t.projection.status, TaskStatus::Succeeded);
        assert_eq!(
            env.approval_decided_by(&approval_id).await.as_deref(),
            Some("dave")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_eyes_stops_the_requester_approving_their_own_call() {
    within(async {
        let env = Env::new();
        let rules = RULES.replace(
            "escalate_to = [\"cfo\"]",
            "escalate_to = [\"cfo\"]\nfour_eyes = true",
        );
        let engine = governed(&env, Arc::new(ManualClock::new(T0)), governance(&rules)).await;
        let id = start_pay(&engine, 75, "carol").await;
        let approval_id = pending_for(&engine, &id).await;
        let own = engine
            .answer_approval(&approval_id, approve("mine"), "carol")
            .await
            .unwrap_err();
        assert!(
            matches!(&own, EngineError::NotAllowed { reason, .. } if reason.contains("four eyes")),
            "{own}"
        );
        // Nor can the requester grant their own calls from it.
        let grant = engine
            .create_grant(
                GrantSpec {
                    tool: "builtin.record".into(),
                    from_approval: Some(approval_id.clone()),
                    ..GrantSpec::default()
                },
                "carol",
            )
            .await
            .unwrap_err();
        assert!(matches!(grant, EngineError::NotAllowed { .. }), "{grant}");
        engine
            .answer_approval(&approval_id, approve("second pair of eyes"), "carl")
            .await
            .unwrap();
        assert_eq!(
            engine.run_task(&id).await.unwrap().projection.status,
            TaskStatus::Succeeded
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_approvals_need_two_distinct_approvers() {
    within(async {
        let env = Env::new();
        let rules = RULES.replace(
            "expires_after = \"1h\"",
            "expires_after = \"1h\"\napprovals = 2",
        );
        let engine = governed(&env, Arc::new(ManualClock::new(T0)), governance(&rules)).await;
        let id = start_pay(&engine, 75, "req").await;
        let approval_id = pending_for(&engine, &id).await;
        let first = engine
            .answer_approval(&approval_id, approve("one"), "carol")
            .await
            .unwrap();
        assert!(matches!(
            first,
            Answered::Voted {
                votes: 1,
                needed: 2,
                ..
            }
        ));
        let again = engine
            .answer_approval(&approval_id, approve("one again"), "carol")
            .await
            .unwrap_err();
        assert!(matches!(again, EngineError::AlreadyVoted { .. }), "{again}");
        assert_eq!(
            task(&engine, &id).await.projection.status,
            TaskStatus::WaitingApproval
        );
        let second = engine
            .answer_approval(&approval_id, approve("two"), "carl")
            .await
            .unwrap();
        assert!(matches!(second, Answered::Decided(_)));
        assert_eq!(
            engine.run_task(&id).await.unwrap().projection.status,
            TaskStatus::Succeeded
        );
        let votes = engine.store().approval_votes(&approval_id).await.unwrap();
        assert_eq!(votes.len(), 2);
        let audited = audit_kinds(&engine).await;
        assert_eq!(
            audited.iter().filter(|k| *k == "approval_vote").count(),
            2,
            "each vote is audited: {audited:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_revoked_after_approval_blocks_the_call() {
    within(async {
        let env = Env::new();
        let file = env.dir.path().join("policy.toml");
        std::fs::write(&file, RULES).unwrap();
        let source = Arc::new(PolicyFile::open(&file).unwrap());
        let mut gov = governance(RULES);
        gov.policy = source.clone();
        let engine = governed(&env, Arc::new(ManualClock::new(T0)), gov).await;
        let id = start_pay(&engine, 75, "req").await;
        let approval_id = pending_for(&engine, &id).await;
        engine
            .answer_approval(&approval_id, approve("ok"), "carol")
            .await
            .unwrap();
        // Before the task runs again, records are switched off.
        std::fs::write(
            &file,
            format!("{RULES}\n[[rules]]\nname = \"records frozen\"\ntools = [\"builtin.record\"]\neffect = \"deny\"\nreason = \"audit freeze\"\n"),
        )
        .unwrap();
        assert!(source.reload_now().unwrap(), "the new policy is in force");
        let t = engine.run_task(&id).await.unwrap();
        assert_eq!(t.projection.status, TaskStatus::Failed);
        let error = t.projection.state["pay"]["error"].as_str().unwrap();
        assert!(
            error.contains("carol approved this call, but the policy in force now denies it")
                && error.contains("records frozen"),
            "{error}"
        );
        assert_eq!(env.effects().await, 0);
        assert_eq!(engine.store().policy_versions().await.unwrap().len(), 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_approval_and_its_decision_survive_a_restart() {
    within(async {
        let env = Env::new();
        let clock = Arc::new(ManualClock::new(T0));
        let id = {
            let engine = governed(&env, clock.clone(), governance(RULES)).await;
            let id = start_pay(&engine, 75, "req").await;
            engine.close().await.unwrap();
            id
        };
        let engine = governed(&env, clock.clone(), governance(RULES)).await;
        let approval_id = pending_for(&engine, &id).await;
        engine
            .answer_approval(&approval_id, approve("after restart"), "carol")
            .await
            .unwrap();
        engine.close().await.unwrap();
        let engine = governed(&env, clock, governance(RULES)).await;
        engine.run_until_idle().await.unwrap();
        assert_eq!(
            task(&engine, &id).await.projection.status,
            TaskStatus::Succeeded
        );
        assert_eq!(env.effects().await, 1);
    })
    .await;
}

/// A grant is an approval given in advance: it covers a call only where its giver could
/// approve that call. An operator's grant (the rule asks a controller) covers nothing, and
/// the call waits for a person; a controller's grant covers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_covers_only_calls_its_giver_may_approve() {
    within(async {
        let env = Env::new();
        let clock = Arc::new(ManualClock::new(T0));
        let engine = governed(&env, clock.clone(), governance(RULES)).await;
        let spec = GrantSpec {
            tool: "builtin.*".into(),
            valid_for: Some(Duration::from_secs(600)),
            ..GrantSpec::default()
        };
        engine.create_grant(spec.clone(), "eve").await.unwrap();
        let by_operator = start_pay(&engine, 75, "req").await;
        assert_eq!(
            task(&engine, &by_operator).await.projection.status,
            TaskStatus::WaitingApproval,
            "an operator's grant does not stand in for a controller"
        );
        assert_eq!(env.effects().await, 0);

        engine.create_grant(spec, "carol").await.unwrap();
        let by_controller = start_pay(&engine, 75, "req").await;
        assert_eq!(
            task(&engine, &by_controller).await.projection.status,
            TaskStatus::Succeeded
        );
        assert_eq!(env.effects().await, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_covers_exactly_its_count_within_its_window_and_stops_when_revoked() {
    within(async {
        let env = Env::new();
        let clock = Arc::new(ManualClock::new(T0));
        let engine = governed(&env, clock.clone(), governance(RULES)).await;
        let grant = engine
            .create_grant(
                GrantSpec {
                    tool: "builtin.record".into(),
                    workflow: Some("pay".into()),
                    condition: Some("args.amount < 100".into()),
                    max_uses: Some(2),
                    valid_for: Some(Duration::from_secs(3600)),
                    ..GrantSpec::default()
                },
                "carol",
            )
            .await
            .unwrap();
        let status = |id: String| {
            let engine = engine.clone();
            async move { task(&engine, &id).await.projection.status }
        };
        // Outside its condition: held as usual.
        let big = start_pay(&engine, 500, "req").await;
        assert_eq!(status(big).await, TaskStatus::WaitingApproval);
        for _ in 0..2 {
            let id = start_pay(&engine, 75, "req").await;
            assert_eq!(status(id.clone()).await, TaskStatus::Succeeded);
            assert!(events(&engine, &id).await.iter().any(|e| matches!(
                e,
                TaskEvent::PolicyDecided { via: Some(via), .. } if via == &format!("grant {}", grant.id)
            )));
            assert_eq!(
                calls(&engine, &id).await[0].allowed,
                Some(CallAllowance::Grant {
                    grant_id: grant.id.clone(),
                    rule: Some("big records need a controller".into()),
                })
            );
        }
        let third = start_pay(&engine, 75, "req").await;
        assert_eq!(status(third).await, TaskStatus::WaitingApproval, "used up");
        assert_eq!(engine.grants().await.unwrap()[0].uses, 2);

        // A fresh grant stops matching the moment it is revoked, and one whose time
        // is up stops matching too.
        let spec = GrantSpec {
            tool: "builtin.*".into(),
            valid_for: Some(Duration::from_secs(600)),
            ..GrantSpec::default()
        };
        let revoked = engine.create_grant(spec.clone(), "carol").await.unwrap();
        let covered = start_pay(&engine, 75, "req").await;
        assert_eq!(status(covered).await, TaskStatus::Succeeded);
        engine.revoke_grant(&revoked.id, "carol").await.unwrap();
        let after = start_pay(&engine, 75, "req").await;
        assert_eq!(status(after).await, TaskStatus::WaitingApproval);
        assert!(matches!(
            engine.revoke_grant(&revoked.id, "carol").await,
            Err(EngineError::NoGrant(_))
        ));

        engine.create_grant(spec, "carol").await.unwrap();
        clock.advance(Duration::from_secs(601));
        let late = start_pay(&engine, 75, "req").await;
        assert_eq!(status(late).await, TaskStatus::WaitingApproval, "expired");
        assert_eq!(env.effects().await, 3);

        let bad = engine
            .create_grant(
                GrantSpec {
                    tool: "builtin.record".into(),
                    condition: Some("args.amount <".into()),
                    ..GrantSpec::default()
                },
                "carol",
            )
            .await
            .unwrap_err();
        assert!(matches!(bad, EngineError::BadGrant(_)), "{bad}");

        let audited = audit_kinds(&engine).await;
        for kind in ["policy_loaded", "grant_created", "grant_revoked", "policy_decided", "call_held"] {
            assert!(audited.iter().any(|k| k == kind), "{kind} is audited: {audited:?}");
        }
        assert!(engine.store().verify_audit().await.unwrap().is_intact());
    })
    .await;
}
