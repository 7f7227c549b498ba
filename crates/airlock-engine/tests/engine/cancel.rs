//! Cancellation by a person.

use std::sync::Arc;
use std::time::Duration;

use airlock_engine::store::{ApprovalStatus, TaskStatus};
use airlock_engine::{CancelOutcome, EngineError, ManualClock, TaskEvent};

use crate::approval::{T0, waiting_payout};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_waiting_task_ends_it_and_a_finished_task_cannot_be_cancelled() {
    within(async {
        let env = Env::new();
        let clock = Arc::new(ManualClock::new(T0));
        let engine = env.engine(clock.clone()).await;
        let (id, approval) = waiting_payout(&engine).await;

        let outcome = engine
            .cancel(&id, "bob", Some("not needed".into()))
            .await
            .unwrap();
        assert_eq!(outcome, CancelOutcome::Cancelled);
        let t = task(&engine, &id).await;
        assert_eq!(t.projection.status, TaskStatus::Cancelled);
        assert_eq!(t.lease_owner, None);
        assert_eq!(
            events(&engine, &id).await.last(),
            Some(&TaskEvent::Cancelled {
                by: "bob".into(),
                reason: Some("not needed".into())
            })
        );
        assert_consistent(&engine, &id).await;

        // The approval ended with the task, withdrawn (nobody decided it) by whoever
        // cancelled it, never as their rejection...
        assert_eq!(
            engine
                .store()
                .approval(&approval)
                .await
                .unwrap()
                .unwrap()
                .status,
            ApprovalStatus::Withdrawn {
                by: "bob".into(),
                at: T0,
                reason: Some("not needed".into())
            }
        );
        // ...and can no longer move the task.
        assert!(matches!(
            engine.decide_approval(&approval, true, "carol", None).await,
            Err(EngineError::AlreadyDecided(_))
        ));
        assert_eq!(
            task(&engine, &id).await.projection.status,
            TaskStatus::Cancelled
        );
        assert_eq!(env.effects().await, 0);

        // A cancelled (finished) task cannot be cancelled again.
        let seq = task(&engine, &id).await.last_seq;
        let again = engine.cancel(&id, "bob", None).await;
        assert!(
            matches!(
                &again,
                Err(EngineError::WrongStatus {
                    status: TaskStatus::Cancelled,
                    ..
                })
            ),
            "{again:?}"
        );
        assert_eq!(task(&engine, &id).await.last_seq, seq);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_succeeded_task_is_an_error() {
    within(async {
        let env = Env::new();
        let engine = env.engine(Arc::new(ManualClock::new(T0))).await;
        let (id, approval) = waiting_payout(&engine).await;
        engine
            .decide_approval(&approval, true, "carol", None)
            .await
            .unwrap();
        assert_eq!(
            engine.run_task(&id).await.unwrap().projection.status,
            TaskStatus::Succeeded
        );
        let result = engine.cancel(&id, "bob", None).await;
        assert!(
            matches!(
                &result,
                Err(EngineError::WrongStatus {
                    status: TaskStatus::Succeeded,
                    ..
                })
            ),
            "{result:?}"
        );
        let t = task(&engine, &id).await;
        assert_eq!(t.projection.status, TaskStatus::Succeeded);
        assert!(!kinds(&engine, &id).await.contains(&"cancelled".to_owned()));
        assert!(matches!(
            engine.cancel("no-such-task", "bob", None).await,
            Err(EngineError::NoTask(_))
        ));
    })
    .await;
}

/// A cancelled task's approval must not outlive it: once its expiry passes, the
/// scheduler has to keep working (and the approval must not stay pending forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_approval_of_a_cancelled_task_does_not_stop_the_scheduler() {
    within(async {
        let env = Env::new();
        let clock = Arc::new(ManualClock::new(T0));
        let engine = env.engine(clock.clone()).await;
        let (id, approval) = waiting_payout(&engine).await;
        engine.cancel(&id, "bob", None).await.unwrap();

        clock.advance(Duration::from_secs(2 * 3_600));
        engine
            .run_until_idle()
            .await
            .expect("the scheduler keeps running past a cancelled task's expired approval");
        assert!(
            engine.store().pending_approvals().await.unwrap().is_empty(),
            "the approval of a cancelled task is still pending"
        );
        assert_ne!(
            engine
                .store()
                .approval(&approval)
                .await
                .unwrap()
                .unwrap()
                .status,
            ApprovalStatus::Pending
        );
        assert_eq!(
            task(&engine, &id).await.projection.status,
            TaskStatus::Cancelled
        );
    })
    .await;
}

/// A cancellation asked for while another engine briefly held the lease is recorded as
/// a request; the next engine to pick the task up must carry it out, even though the
/// task waits for a person rather than running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requested_cancel_of_a_waiting_task_is_carried_out() {
    within(async {
        let env = Env::new();
        let clock = Arc::new(ManualClock::new(T0));
        let engine = env.engine(clock.clone()).await;
        let (id, approval) = waiting_payout(&engine).await;

        // Someone else holds the lease while the person cancels.
        let held = engine
            .store()
            .claim(&id, "other-engine", T0, T0 + 60_000)
            .await
            .unwrap();
        assert!(held.is_some());
        let outcome = engine
            .cancel(&id, "bob", Some("changed my mind".into()))
            .await
            .unwrap();
        assert_eq!(outcome, CancelOutcome::Requested);
        let t = task(&engine, &id).await;
        assert_eq!(t.cancel_requested.as_deref(), Some("bob"));
        assert_eq!(t.projection.status, TaskStatus::WaitingApproval);
        engine.store().release(&id, "other-engine").await.unwrap();

        engine.run_until_idle().await.unwrap();
        let t = task(&engine, &id).await;
        assert_eq!(t.projection.status, TaskStatus::Cancelled);
        assert_eq!(t.cancel_requested, None);
        assert_eq!(t.lease_owner, None);
        assert!(matches!(
            events(&engine, &id).await.last(),
            Some(TaskEvent::Cancelled { by, .. }) if by == "bob"
        ));
        assert!(matches!(
            engine.store().approval(&approval).await.unwrap().unwrap().status,
            ApprovalStatus::Withdrawn { by, .. } if by == "bob"
        ));
        assert_eq!(env.effects().await, 0);
        assert_consistent(&engine, &id).await;
    })
    .await;
}

/// A person cancels a task while one of its calls hangs: the call is abandoned (an MCP call
/// dropped this way sends `notifications/cancelled`), the ledger says its effect is in doubt,
/// and the task ends cancelled instead of waiting for an answer that may never come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_task_stops_the_call_under_way() {
    within(async {
        let env = Env::new();
        let tools = Arc::new(TestTools::hanging_on(
            env.builtin().await,
            "builtin.record",
            Hang::BeforeEffect,
            usize::MAX,
        ));
        let engine = env
            .engine_with(
                env.config(),
                Arc::new(airlock_engine::SystemClock),
                tools.clone(),
            )
            .await;
        let wf = parse(
            r#"
name = "slow"
start = "write"
[states.write]
kind = "tool"
tool = "builtin.record"
args = { label = "'x'" }
next = "done"
[states.done]
kind = "end"
status = "succeeded"
"#,
        );
        let id = engine
            .start_task(&wf, inputs(serde_json::json!({})), "ada", None)
            .await
            .unwrap();
        let runner = {
            let engine = engine.clone();
            let id = id.clone();
            tokio::spawn(async move { engine.run_task(&id).await })
        };
        wait_for("the call to hang", || async { tools.is_hanging() }).await;
        let outcome = engine
            .cancel(&id, "carol", Some("taking too long".into()))
            .await
            .unwrap();
        assert_eq!(outcome, CancelOutcome::Requested);
        let task = tokio::time::timeout(Duration::from_secs(5), runner)
            .await
            .expect("the run ends once cancelled")
            .unwrap()
            .unwrap();
        assert_eq!(task.projection.status, TaskStatus::Cancelled);
        let calls = calls(&engine, &id).await;
        assert_eq!(calls.len(), 1);
        assert_eq!(
            calls[0].outcome,
            Some(airlock_engine::store::ToolCallOutcome::InDoubt)
        );
        assert!(
            calls[0]
                .error
                .as_deref()
                .unwrap_or("")
                .contains("cancelled while this call was under way")
        );
        assert!(
            events(&engine, &id)
                .await
                .iter()
                .any(|e| matches!(e, TaskEvent::Cancelled { by, .. } if by == "carol"))
        );
        assert_consistent(&engine, &id).await;

        // Someone checks and says whether it happened: the answer is recorded, and the
        // task stays cancelled (nothing is made again).
        let ended_at = task.updated_at;
        let after = engine
            .resolve_in_doubt(&calls[0].id, true, "dave")
            .await
            .unwrap();
        assert_eq!(after.projection.status, TaskStatus::Cancelled);
        assert_eq!(after.updated_at, ended_at, "it still ended when it ended");
        let settled = &crate::support::calls(&engine, &id).await[0];
        assert_eq!(
            settled.outcome,
            Some(airlock_engine::store::ToolCallOutcome::Happened)
        );
        assert_eq!(settled.resolved_by.as_deref(), Some("dave"));
        assert_eq!(
            events(&engine, &id).await.last(),
            Some(&TaskEvent::InDoubtSettled {
                call_id: calls[0].id.clone(),
                happened: true,
                by: "dave".into(),
            })
        );
        assert!(tools.keys().len() <= 1, "never made again");
        // Answered once: a second answer is refused and changes nothing.
        assert!(matches!(
            engine.resolve_in_doubt(&calls[0].id, false, "erin").await,
            Err(EngineError::WrongStatus { .. })
        ));
        assert_consistent(&engine, &id).await;
    })
    .await;
}

/// A person's action on a task this engine is running (here: a release from quarantine,
/// which does not apply) waits for the runner and fails cleanly; it never takes the lease
/// from under the call in flight, so no second runner starts the call again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_person_action_leaves_a_running_call_alone() {
    within(async {
        let env = Env::new();
        let tools = Arc::new(TestTools::hanging_on(
            env.builtin().await,
            "builtin.upsert",
            Hang::BeforeEffect,
            usize::MAX,
        ));
        let engine = env
            .engine_with(
                env.config(),
                Arc::new(airlock_engine::SystemClock),
                tools.clone(),
            )
            .await;
        let wf = parse(
            r#"
name = "slow"
start = "write"
[states.write]
kind = "tool"
tool = "builtin.upsert"
args = { key = "'k'", value = 1 }
next = "done"
[states.done]
kind = "end"
status = "succeeded"
"#,
        );
        let id = engine
            .start_task(&wf, inputs(serde_json::json!({})), "ada", None)
            .await
            .unwrap();
        let serving = engine.serve();
        wait_for("the call to hang", || async { tools.is_hanging() }).await;
        let refused = engine.release_quarantined(&id, "carol").await;
        assert!(refused.is_err(), "the task is not quarantined: {refused:?}");
        // Give the scheduler a few polls to (wrongly) pick the task up again.
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(
            tools.keys().len(),
            1,
            "the call was made once, not again by a second runner"
        );
        let t = task(&engine, &id).await;
        assert_eq!(
            t.lease_owner.as_deref(),
            Some(engine.id()),
            "the runner still holds the lease"
        );
        serving.abort();
    })
    .await;
}
