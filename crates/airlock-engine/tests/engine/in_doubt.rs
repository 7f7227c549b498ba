//! A runner that dies between a call's intent and its outcome, and what the next
//! engine does about it: in doubt for a non-idempotent tool, re-made for an idempotent one.

use std::sync::Arc;

use airlock_engine::event::Phase;
use airlock_engine::store::{TaskStatus, ToolCallOutcome};
use airlock_engine::{Engine, EngineError, SystemClock, TaskEvent};
use serde_json::json;

use crate::support::*;

pub const RECORD: &str = r#"
name = "record-once"
start = "record"

[states.record]
kind = "tool"
tool = "builtin.record"
args = { label = "'once'" }
next = "after"

[states.after]
kind = "tool"
tool = "builtin.echo"
args = { ok = true }
next = "done"

[states.done]
kind = "end"
status = "succeeded"
"#;

pub const UPSERT: &str = r#"
name = "upsert-once"
start = "save"

[states.save]
kind = "tool"
tool = "builtin.upsert"
args = { key = "'k'", value = "task.id" }
next = "done"

[states.done]
kind = "end"
status = "succeeded"
"#;

/// Opens an engine whose tools hang on `tool`, starts a task of `src`, runs it until the
/// call hangs (intent on disk, no outcome), then kills the runner and closes the engine,
/// as a crashed process would leave things. Returns the task id and what the tools saw.
pub async fn crash_mid_call(
    env: &Env,
    src: &str,
    tool: &str,
    hang: Hang,
) -> (String, Vec<(String, String)>) {
    let tools = Arc::new(TestTools::hanging_on(env.builtin().await, tool, hang, 1));
    let a = env
        .engine_with(env.config(), Arc::new(SystemClock), tools.clone())
        .await;
    let id = a
        .start_task(&parse(src), Default::default(), "t", None)
        .await
        .unwrap();
    (id.clone(), crash_run(&a, &id, &tools).await)
}

/// Runs `id` on `a` until its tools hang, then aborts the runner and closes `a`.
pub async fn crash_run(a: &Engine, id: &str, tools: &TestTools) -> Vec<(String, String)> {
    let runner = tokio::spawn({
        let a = a.clone();
        let id = id.to_owned();
        async move { a.run_task(&id).await }
    });
    wait_for("the call to hang", || async { tools.is_hanging() }).await;
    let open: Vec<_> = calls(a, id)
        .await
        .into_iter()
        .filter(|c| c.outcome.is_none())
        .collect();
    assert_eq!(open.len(), 1, "exactly one intent without an outcome");
    assert_eq!(task(a, id).await.lease_owner.as_deref(), Some(a.id()));
    runner.abort();
    assert!(runner.await.unwrap_err().is_cancelled());
    a.close().await.unwrap();
    assert_eq!(
        task(a, id).await.lease_owner,
        None,
        "close gives the lease back"
    );
    tools.keys()
}

async fn in_doubt_after_restart(env: &Env, hang: Hang) -> (Engine, String, String) {
    let (id, seen) = crash_mid_call(env, RECORD, "builtin.record", hang).await;
    assert_eq!(seen, [("builtin.record".to_owned(), format!("{id}/1/0"))]);
    let effects_before = env.effects().await;
    assert_eq!(effects_before, i64::from(hang == Hang::AfterEffect));

    let b = env.engine(Arc::new(SystemClock)).await;
    b.run_until_idle().await.unwrap();
    let t = task(&b, &id).await;
    assert_eq!(t.projection.status, TaskStatus::InDoubt);
    assert_eq!(t.lease_owner, None);
    let ledger = calls(&b, &id).await;
    assert_eq!(ledger.len(), 1);
    let call = &ledger[0];
    assert_eq!(call.outcome, Some(ToolCallOutcome::InDoubt));
    assert!(!call.idempotent);
    assert!(
        call.error
            .as_deref()
            .unwrap_or_default()
            .contains("engine stopped"),
        "{:?}",
        call.error
    );
    assert_eq!(
        serde_json::from_value::<Phase>(t.projection.phase.clone()).unwrap(),
        Phase::InDoubt {
            call_id: call.id.clone()
        }
    );
    assert_eq!(
        env.effects().await,
        effects_before,
        "the effect was not made again"
    );
    let k = kinds(&b, &id).await;
    assert_eq!(
        k[k.len() - 2..],
        ["recovery_started", "call_in_doubt"],
        "{k:?}"
    );
    assert_consistent(&b, &id).await;
    let call_id = call.id.clone();
    (b, id, call_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_mid_call_of_non_idempotent_tool_is_in_doubt_then_remade_when_it_did_not_happen() {
    within(async {
        let env = Env::new();
        let (b, id, call_id) = in_doubt_after_restart(&env, Hang::BeforeEffect).await;

        let t = b.resolve_in_doubt(&call_id, false, "ops").await.unwrap();
        assert_eq!(t.projection.status, TaskStatus::Running);
        let resolved = b.store().tool_call(&call_id).await.unwrap().unwrap();
        assert_eq!(resolved.outcome, Some(ToolCallOutcome::NotHappened));
        assert_eq!(resolved.resolved_by.as_deref(), Some("ops"));
        // Settled once; a second answer is refused.
        assert!(matches!(
            b.resolve_in_doubt(&call_id, true, "ops").await,
            Err(EngineError::WrongStatus { .. })
        ));

        b.run_until_idle().await.unwrap();
        let t = task(&b, &id).await;
        assert_eq!(t.projection.status, TaskStatus::Succeeded);
        assert_eq!(env.effects().await, 1, "made exactly once, as attempt 2");
        let ledger = calls(&b, &id).await;
        let rows: Vec<_> = ledger
            .iter()
            .filter(|c| c.step_no == 1)
            .map(|c| (c.attempt, c.outcome, c.idempotency_key.clone()))
            .collect();
        let key = format!("{id}/1/0");
        assert_eq!(
            rows,
            [
                (1, Some(ToolCallOutcome::NotHappened), key.clone()),
                (2, Some(ToolCallOutcome::Succeeded), key.clone()),
            ]
        );
        let steps = b.store().steps(&id).await.unwrap();
        assert_eq!(
            (steps[0].attempts, steps[0].outcome.as_deref()),
            (2, Some("succeeded"))
        );
        assert_consistent(&b, &id).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_mid_call_resolved_as_happened_moves_on_without_calling_again() {
    within(async {
        let env = Env::new();
        let (b, id, call_id) = in_doubt_after_restart(&env, Hang::AfterEffect).await;

        let t = b.resolve_in_doubt(&call_id, true, "ops").await.unwrap();
        assert_eq!(t.projection.current_state.as_deref(), Some("after"));
        assert_eq!(
            t.projection.state["record"],
            json!({"in_doubt": "happened", "confirmed_by": "ops"})
        );
        b.run_until_idle().await.unwrap();
        let t = task(&b, &id).await;
        assert_eq!(t.projection.status, TaskStatus::Succeeded);
        assert_eq!(env.effects().await, 1, "not called again");
        let ledger = calls(&b, &id).await;
        assert_eq!(ledger.iter().filter(|c| c.step_no == 1).count(), 1);
        assert_eq!(ledger[0].outcome, Some(ToolCallOutcome::Happened));
        assert_eq!(ledger[0].resolved_by.as_deref(), Some("ops"));
        let steps = b.store().steps(&id).await.unwrap();
        assert_eq!(
            (steps[0].attempts, steps[0].outcome.as_deref()),
            (1, Some("succeeded"))
        );
        assert!(events(&b, &id).await.iter().any(|e| matches!(
            e,
            TaskEvent::InDoubtResolved { happened: true, by, .. } if by == "ops"
        )));
        assert_consistent(&b, &id).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_mid_call_of_idempotent_tool_is_remade_with_the_same_key() {
    within(async {
        let env = Env::new();
        let (id, seen_a) = crash_mid_call(&env, UPSERT, "builtin.upsert", Hang::AfterEffect).await;
        let key = format!("{id}/1/0");
        assert_eq!(seen_a, [("builtin.upsert".to_owned(), key.clone())]);

        let tools_b = Arc::new(TestTools::new(env.builtin().await));
        let b = env
            .engine_with(env.config(), Arc::new(SystemClock), tools_b.clone())
            .await;
        b.run_until_idle().await.unwrap();
        let t = task(&b, &id).await;
        assert_eq!(t.projection.status, TaskStatus::Succeeded);
        assert_eq!(tools_b.keys(), [("builtin.upsert".to_owned(), key.clone())]);
        let ledger = calls(&b, &id).await;
        assert_eq!(ledger.len(), 1, "the same call, re-made, not a new attempt");
        assert_eq!(ledger[0].outcome, Some(ToolCallOutcome::Succeeded));
        assert_eq!(ledger[0].attempt, 1);
        let (value, stored_key) = env.kv("k").await.unwrap();
        assert_eq!(value, json!(id).to_string());
        assert_eq!(stored_key, key);
        let k = kinds(&b, &id).await;
        assert!(!k.contains(&"call_in_doubt".to_owned()), "{k:?}");
        assert!(k.contains(&"recovery_started".to_owned()), "{k:?}");
        assert_eq!(t.projection.recovery_failures, 0);
        assert_consistent(&b, &id).await;
    })
    .await;
}
