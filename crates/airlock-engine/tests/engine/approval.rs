//! Approvals: waiting, approve, reject, deciding twice, expiry under a manual clock.

use std::sync::Arc;
use std::time::Duration;

use airlock_engine::event::Phase;
use airlock_engine::store::{ApprovalStatus, TaskStatus};
use airlock_engine::{EngineError, ManualClock};
use serde_json::json;

use crate::support::*;

pub const T0: i64 = 1_700_000_000_000;

pub const PAYOUT: &str = r#"
name = "payout"
start = "approve"

[inputs.payee]
type = "string"

[states.approve]
kind = "approval"
prompt = "Pay {{ inputs.payee }}?"
approvers = ["controller"]
expires_after = "1h"
next = "pay"
on_reject = "rejected"
on_expire = "expired"

[states.pay]
kind = "tool"
tool = "builtin.record"
args = { label = "'payout'", payee = "inputs.payee" }
next = "done"

[states.done]
kind = "end"
status = "succeeded"

[states.rejected]
kind = "end"
status = "cancelled"

[states.expired]
kind = "end"
status = "failed"
"#;

/// Starts a payout and runs it to its approval; returns (task, approval id).
pub async fn waiting_payout(engine: &airlock_engine::Engine) -> (String, String) {
    let id = engine
        .start_task(
            &parse(PAYOUT),
            inputs(json!({"payee": "zoe"})),
            "requester",
            None,
        )
        .await
        .unwrap();
    let t = engine.run_task(&id).await.unwrap();
    assert_eq!(t.projection.status, TaskStatus::WaitingApproval);
    assert_eq!(
        t.lease_owner, None,
        "a task waiting for a person holds no lease"
    );
    let approvals = engine.store().task_approvals(&id).await.unwrap();
    assert_eq!(approvals.len(), 1);
    let a = &approvals[0];
    assert_eq!(a.status, ApprovalStatus::Pending);
    assert_eq!(a.prompt, "Pay zoe?");
    assert_eq!(a.approvers, ["controller"]);
    assert_eq!(a.state_name, "approve");
    assert_eq!(a.step_no, 1);
    assert_eq!(a.expires_at, Some(a.requested_at + 3_600_000));
    assert_eq!(
        serde_json::from_value::<Phase>(t.projection.phase.clone()).unwrap(),
        Phase::WaitingApproval {
            approval_id: a.id.clone()
        }
    );
    assert_consistent(engine, &id).await;
    (id, a.id.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_proceeds_to_next_and_succeeds() {
    within(async {
        let env = Env::new();
        let clock = Arc::new(ManualClock::new(T0));
        let engine = env.engine(clock.clone()).await;
        let (id, approval) = waiting_payout(&engine).await;
        assert_eq!(env.effects().await, 0, "nothing is paid before approval");
        // Waiting tasks are left alone by the scheduler.
        engine.run_until_idle().await.unwrap();
        assert_eq!(
            task(&engine, &id).await.projection.status,
            TaskStatus::WaitingApproval
        );

        clock.advance(Duration::from_secs(60));
        let t = engine
            .decide_approval(&approval, true, "carol", Some("looks right".into()))
            .await
            .unwrap();
        assert_eq!(t.projection.status, TaskStatus::Running);
        assert_eq!(t.projection.current_state.as_deref(), Some("pay"));
        assert_eq!(
            t.projection.state["approve"],
            json!({"decision": "approved", "by": "carol", "reason": "looks right"})
        );
        let a = engine.store().approval(&approval).await.unwrap().unwrap();
        assert_eq!(
            a.status,
            ApprovalStatus::Approved {
                by: "carol".into(),
                at: T0 + 60_000,
                reason: Some("looks right".into()),
                edited_args: None,
            }
        );
        let t = engine.run_task(&id).await.unwrap();
        assert_eq!(t.projection.status, TaskStatus::Succeeded);
        assert_eq!(t.projection.current_state.as_deref(), Some("done"));
        assert_eq!(env.effects().await, 1);
        let steps = engine.store().steps(&id).await.unwrap();
        assert_eq!(steps[0].outcome.as_deref(), Some("approved"));
        assert_eq!(steps[1].outcome.as_deref(), Some("succeeded"));
        assert_eq!(
            kinds(&engine, &id).await[..4],
            [
                "created",
                "step_started",
                "approval_requested",
                "approval_decided"
            ]
        );

        // Deciding again, either way, is refused and changes nothing.
        let seq = task(&engine, &id).await.last_seq;
        for approve in [true, false] {
            let again = engine
                .decide_approval(&approval, approve, "dave", None)
                .await;
            assert!(
                matches!(&again, Err(EngineError::AlreadyDecided(a)) if *a == approval),
                "{again:?}"
            );
        }
        assert_eq!(task(&engine, &id).await.last_seq, seq);
        assert!(matches!(
            engine.decide_approval("nope", true, "dave", None).await,
            Err(EngineError::NoApproval(_))
        ));
        assert_consistent(&engine, &id).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_follows_on_reject() {
    within(async {
        let env = Env::new();
        let clock = Arc::new(ManualClock::new(T0));
        let engine = env.engine(clock.clone()).await;
        let (id, approval) = waiting_payout(&engine).await;
        let t = engine
            .decide_approval(&approval, false, "carol", None)
            .await
            .unwrap();
        assert_eq!(t.projection.current_state.as_deref(), Some("rejected"));
        let t = engine.run_task(&id).await.unwrap();
        assert_eq!(t.projection.status, TaskStatus::Cancelled);
        assert_eq!(t.projection.current_state.as_deref(), Some("rejected"));
        assert_eq!(env.effects().await, 0, "a rejected payout is never paid");
        assert_eq!(
            engine
                .store()
                .approval(&approval)
                .await
                .unwrap()
                .unwrap()
                .status,
            ApprovalStatus::Rejected {
                by: "carol".into(),
                at: T0,
                reason: None
            }
        );
        assert_eq!(
            env.approval_decided_by(&approval).await.as_deref(),
            Some("carol")
        );
        assert!(matches!(
            engine.decide_approval(&approval, true, "carol", None).await,
            Err(EngineError::AlreadyDecided(_))
        ));
        assert_consistent(&engine, &id).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_follows_on_expire_and_records_no_decider() {
    within(async {
        let env = Env::new();
        let clock = Arc::new(ManualClock::new(T0));
        let engine = env.engine(clock.clone()).await;
        let (id, approval) = waiting_payout(&engine).await;

        // Not yet due: nothing changes.
        clock.advance(Duration::from_secs(3_599));
        engine.run_until_idle().await.unwrap();
        assert_eq!(
            task(&engine, &id).await.projection.status,
            TaskStatus::WaitingApproval
        );
        assert_eq!(
            engine
                .store()
                .approval(&approval)
                .await
                .unwrap()
                .unwrap()
                .status,
            ApprovalStatus::Pending
        );

        clock.set(T0 + 2 * 3_600_000);
        engine.run_until_idle().await.unwrap();
        let t = task(&engine, &id).await;
        assert_eq!(t.projection.status, TaskStatus::Failed);
        assert_eq!(t.projection.current_state.as_deref(), Some("expired"));
        assert_eq!(
            t.projection.state["approve"],
            json!({"decision": "expired", "by": null, "reason": null})
        );
        let a = engine.store().approval(&approval).await.unwrap().unwrap();
        assert_eq!(
            a.status,
            ApprovalStatus::Expired {
                at: T0 + 2 * 3_600_000
            }
        );
        assert_eq!(env.approval_decided_by(&approval).await, None);
        assert_eq!(env.effects().await, 0);
        assert!(engine.store().pending_approvals().await.unwrap().is_empty());
        let steps = engine.store().steps(&id).await.unwrap();
        assert_eq!(steps[0].outcome.as_deref(), Some("expired"));
        // Too late to decide.
        assert!(matches!(
            engine.decide_approval(&approval, true, "carol", None).await,
            Err(EngineError::AlreadyDecided(_))
        ));
        assert_consistent(&engine, &id).await;
    })
    .await;
}
