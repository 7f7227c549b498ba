//! Retries with backoff under a manual clock, and timeouts under the system clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock_engine::event::Phase;
use airlock_engine::store::{TaskStatus, ToolCallOutcome};
use airlock_engine::{Engine, ManualClock, SystemClock};
use serde_json::json;

use crate::support::*;

const T0: i64 = 1_700_000_000_000;

/// A step that fails its first `times` attempts, with 3 attempts and 1s, 2s backoffs;
/// with `on_error` it goes to `gave_up` when they run out.
fn flaky_workflow(times: u32, on_error: bool) -> airlock_engine::workflow::Workflow {
    let on_error = if on_error {
        "on_error = \"gave_up\"\n\n[states.gave_up]\nkind = \"end\"\nstatus = \"failed\"\n"
    } else {
        ""
    };
    parse(&format!(
        r#"
name = "flaky"
start = "flaky"

[states.done]
kind = "end"
status = "succeeded"

[states.flaky]
kind = "tool"
tool = "builtin.fail"
args = {{ times = {times} }}
retry = {{ max_attempts = 3, initial_backoff = "1s" }}
next = "done"
{on_error}"#
    ))
}

/// Waits until the stored task is in backoff until `at` (durably: the row says so).
async fn wait_backoff(engine: &Engine, id: &str, at: i64) {
    wait_for(&format!("task {id} to back off until {at}"), || async {
        let t = task(engine, id).await;
        t.projection.wake_at == Some(at)
    })
    .await;
    let t = task(engine, id).await;
    assert_eq!(t.projection.status, TaskStatus::Running);
    assert_eq!(
        serde_json::from_value::<Phase>(t.projection.phase.clone()).unwrap(),
        Phase::Backoff
    );
    assert_consistent(engine, id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_waits_for_the_clock_and_keeps_one_idempotency_key() {
    within(async {
        let env = Env::new();
        let clock = Arc::new(ManualClock::new(T0));
        let engine = env.engine(clock.clone()).await;
        let id = engine
            .start_task(&flaky_workflow(2, true), Default::default(), "t", None)
            .await
            .unwrap();
        let key = format!("{id}/1/0");
        let runner = tokio::spawn({
            let engine = engine.clone();
            let id = id.clone();
            async move { engine.run_task(&id).await }
        });

        // Attempt 1 failed; the backoff is 1s from the failure.
        wait_backoff(&engine, &id, T0 + 1_000).await;
        let t = task(&engine, &id).await;
        assert_eq!(t.projection.attempt, 1);
        assert_eq!(
            t.projection.error.as_deref(),
            Some("deliberate failure 1 of 2")
        );
        // Real time passes, clock time does not: nothing happens.
        tokio::time::sleep(Duration::from_millis(150)).await;
        clock.advance(Duration::from_millis(999));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(env.fail_count(&key).await, Some(1));
        assert_eq!(task(&engine, &id).await.projection.attempt, 1);
        assert!(!runner.is_finished());

        // The last millisecond: attempt 2 runs and fails; backoff doubles to 2s.
        clock.advance(Duration::from_millis(1));
        wait_backoff(&engine, &id, T0 + 1_000 + 2_000).await;
        let t = task(&engine, &id).await;
        assert_eq!(t.projection.attempt, 2);
        assert_eq!(
            t.projection.error.as_deref(),
            Some("deliberate failure 2 of 2")
        );
        assert_eq!(env.fail_count(&key).await, Some(2));

        clock.advance(Duration::from_secs(2));
        let done = runner.await.unwrap().unwrap();
        assert_eq!(done.projection.status, TaskStatus::Succeeded);
        assert_eq!(done.projection.attempt, 0, "moved on to `done`");
        assert_eq!(done.projection.error, None);
        assert_eq!(done.projection.wake_at, None);
        assert_eq!(done.projection.state["flaky"], json!({"attempts": 3}));
        assert_eq!(env.fail_count(&key).await, Some(3));

        let ledger = calls(&engine, &id).await;
        let rows: Vec<_> = ledger
            .iter()
            .map(|c| (c.attempt, c.idempotency_key.as_str(), c.outcome))
            .collect();
        assert_eq!(
            rows,
            [
                (1, key.as_str(), Some(ToolCallOutcome::Failed)),
                (2, key.as_str(), Some(ToolCallOutcome::Failed)),
                (3, key.as_str(), Some(ToolCallOutcome::Succeeded)),
            ]
        );
        assert!(ledger.windows(2).all(|w| w[0].args_hash == w[1].args_hash));
        assert!(
            ledger.windows(2).all(|w| w[0].id != w[1].id),
            "one row per attempt"
        );
        let steps = engine.store().steps(&id).await.unwrap();
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].attempts, 3);
        assert_eq!(steps[0].outcome.as_deref(), Some("succeeded"));
        let k = kinds(&engine, &id).await;
        assert_eq!(k.iter().filter(|k| *k == "step_failed").count(), 2);
        assert_eq!(k.iter().filter(|k| *k == "step_started").count(), 3);
        assert_consistent(&engine, &id).await;
    })
    .await;
}

/// Runs a task to its end under a manual clock, jumping the clock to each wake-up.
async fn run_with_clock(
    engine: &Engine,
    clock: &ManualClock,
    id: &str,
) -> airlock_engine::store::TaskRecord {
    let runner = tokio::spawn({
        let engine = engine.clone();
        let id = id.to_owned();
        async move { engine.run_task(&id).await }
    });
    loop {
        if runner.is_finished() {
            return runner.await.unwrap().unwrap();
        }
        let t = task(engine, id).await;
        if let Some(at) = t.projection.wake_at.filter(|at| *at > clock.now_ms()) {
            clock.set(at);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

trait NowMs {
    fn now_ms(&self) -> i64;
}

impl NowMs for ManualClock {
    fn now_ms(&self) -> i64 {
        airlock_engine::Clock::now(self)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_follow_on_error() {
    within(async {
        let env = Env::new();
        let clock = Arc::new(ManualClock::new(T0));
        let engine = env.engine(clock.clone()).await;
        let id = engine
            .start_task(&flaky_workflow(5, true), Default::default(), "t", None)
            .await
            .unwrap();
        let t = run_with_clock(&engine, &clock, &id).await;
        assert_eq!(t.projection.status, TaskStatus::Failed);
        assert_eq!(t.projection.current_state.as_deref(), Some("gave_up"));
        assert_eq!(
            t.projection.state["flaky"],
            json!({"error": "deliberate failure 3 of 5"})
        );
        assert_eq!(
            env.fail_count(&format!("{id}/1/0")).await,
            Some(3),
            "max_attempts = 3"
        );
        let steps = engine.store().steps(&id).await.unwrap();
        assert_eq!(steps[0].outcome.as_deref(), Some("failed"));
        assert_eq!(steps[0].error.as_deref(), Some("deliberate failure 3 of 5"));
        assert_eq!(steps[0].attempts, 3);
        assert_eq!(
            kinds(&engine, &id).await.last().map(String::as_str),
            Some("ended")
        );
        assert_consistent(&engine, &id).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_without_on_error_fail_the_task_with_the_error() {
    within(async {
        let env = Env::new();
        let clock = Arc::new(ManualClock::new(T0));
        let engine = env.engine(clock.clone()).await;
        let id = engine
            .start_task(&flaky_workflow(5, false), Default::default(), "t", None)
            .await
            .unwrap();
        let t = run_with_clock(&engine, &clock, &id).await;
        assert_eq!(t.projection.status, TaskStatus::Failed);
        assert_eq!(t.projection.current_state.as_deref(), Some("flaky"));
        assert_eq!(
            t.projection.error.as_deref(),
            Some("deliberate failure 3 of 5")
        );
        assert_eq!(
            clock.now_ms(),
            T0 + 1_000 + 2_000,
            "two backoffs, 1s then 2s"
        );
        let k = kinds(&engine, &id).await;
        assert_eq!(k.last().map(String::as_str), Some("step_gave_up"));
        assert!(!k.contains(&"ended".to_owned()));
        assert_consistent(&engine, &id).await;
    })
    .await;
}

fn sleepy(idempotent: Option<bool>) -> String {
    format!(
        r#"
name = "sleepy"
start = "nap"

[states.nap]
kind = "tool"
tool = "builtin.sleep"
args = {{ ms = 5000 }}
timeout = "50ms"
retry = {{ max_attempts = 2, initial_backoff = "1ms" }}
{idempotent}
next = "done"
on_error = "timed_out"

[states.done]
kind = "end"
status = "succeeded"

[states.timed_out]
kind = "end"
status = "failed"
"#,
        idempotent = idempotent.map_or(String::new(), |i| format!("idempotent = {i}"))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_call_that_times_out_is_retried_then_given_up() {
    within(async {
        let env = Env::new();
        let engine = env.engine(Arc::new(SystemClock)).await;
        let id = engine
            .start_task(&parse(&sleepy(None)), Default::default(), "t", None)
            .await
            .unwrap();
        let started = Instant::now();
        let t = engine.run_task(&id).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(t.projection.status, TaskStatus::Failed);
        assert_eq!(t.projection.current_state.as_deref(), Some("timed_out"));
        let ledger = calls(&engine, &id).await;
        let rows: Vec<_> = ledger
            .iter()
            .map(|c| (c.attempt, c.outcome, c.error.as_deref(), c.idempotent))
            .collect();
        let lost = "no answer from the tool: no answer within 50ms";
        assert_eq!(
            rows,
            [
                (1, Some(ToolCallOutcome::Failed), Some(lost), true),
                (2, Some(ToolCallOutcome::Failed), Some(lost), true),
            ]
        );
        assert_eq!(t.projection.state["nap"], json!({"error": lost}));
        assert_consistent(&engine, &id).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_idempotent_call_that_times_out_is_in_doubt() {
    within(async {
        let env = Env::new();
        let engine = env.engine(Arc::new(SystemClock)).await;
        let id = engine
            .start_task(&parse(&sleepy(Some(false))), Default::default(), "t", None)
            .await
            .unwrap();
        let t = engine.run_task(&id).await.unwrap();
        assert_eq!(t.projection.status, TaskStatus::InDoubt);
        assert_eq!(t.projection.current_state.as_deref(), Some("nap"));
        let ledger = calls(&engine, &id).await;
        assert_eq!(ledger.len(), 1, "an in-doubt call is not retried");
        assert_eq!(ledger[0].outcome, Some(ToolCallOutcome::InDoubt));
        assert!(!ledger[0].idempotent);
        assert_eq!(ledger[0].error.as_deref(), Some("no answer within 50ms"));
        assert_eq!(
            serde_json::from_value::<Phase>(t.projection.phase.clone()).unwrap(),
            Phase::InDoubt {
                call_id: ledger[0].id.clone()
            }
        );
        assert_eq!(t.projection.error.as_deref(), Some("no answer within 50ms"));
        assert_eq!(
            t.lease_owner, None,
            "a task waiting for a person holds no lease"
        );
        assert_eq!(
            kinds(&engine, &id).await.last().map(String::as_str),
            Some("call_in_doubt")
        );
        // Nothing more happens by itself.
        engine.run_until_idle().await.unwrap();
        assert_eq!(
            task(&engine, &id).await.projection.status,
            TaskStatus::InDoubt
        );
        assert_eq!(calls(&engine, &id).await.len(), 1);
        assert_consistent(&engine, &id).await;
    })
    .await;
}
