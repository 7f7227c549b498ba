//! Progress a tool reports while its call is under way: recorded on the step as
//! `tool_progress` events (throttled on the engine's clock, the last report kept), without
//! changing what happens to the call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use airlock_engine::clock::BoxFuture;
use airlock_engine::store::{TaskStatus, ToolCallOutcome};
use airlock_engine::tool_host::ToolProgress;
use airlock_engine::{
    ManualClock, TaskEvent, ToolAnnotations, ToolError, ToolHost, ToolInfo, ToolRequest,
};
use serde_json::{Value, json};

use crate::support::*;

const T0: i64 = 1_700_000_000_000;

/// `slow.job` reports its progress three times (at T0, T0+100 ms and T0+200 ms of the
/// engine's clock) and answers at T0+600 ms. `slow.stuck` reports once and never answers.
struct Reporting {
    clock: Arc<ManualClock>,
    stuck: AtomicBool,
}

fn step(n: f64) -> ToolProgress {
    ToolProgress {
        progress: n,
        total: Some(3.0),
        message: Some(format!("step {n}")),
    }
}

impl ToolHost for Reporting {
    fn tools(&self) -> Vec<ToolInfo> {
        ["slow.job", "slow.stuck"]
            .into_iter()
            .map(|name| ToolInfo {
                name: name.into(),
                description: "takes a while and says how far it got".into(),
                input_schema: json!({"type": "object"}),
                output_schema: None,
                annotations: ToolAnnotations::default(),
            })
            .collect()
    }

    fn call<'a>(&'a self, r: ToolRequest<'a>) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let sink = r.progress.expect("the engine passes a progress sink");
            // Real pauses between reports give the runner time to hear each one.
            let pause = || tokio::time::sleep(Duration::from_millis(150));
            if r.tool == "slow.stuck" {
                sink.report(step(1.0));
                self.stuck.store(true, Ordering::SeqCst);
                std::future::pending::<()>().await;
            }
            sink.report(step(1.0));
            pause().await;
            self.clock.advance(Duration::from_millis(100));
            sink.report(step(2.0));
            pause().await;
            self.clock.advance(Duration::from_millis(100));
            sink.report(step(3.0));
            pause().await;
            self.clock.advance(Duration::from_millis(400));
            pause().await;
            Ok(json!({"done": true}))
        })
    }
}

fn workflow(tool: &str, timeout: &str) -> String {
    format!(
        r#"
name = "progress"
start = "work"

[states.work]
kind = "tool"
tool = "{tool}"
args = {{ n = "3" }}
timeout = "{timeout}"
next = "done"

[states.done]
kind = "end"
status = "succeeded"
"#
    )
}

/// `(seq, at, progress)` of the task's `tool_progress` events, and `(seq, at)` of its
/// `tool_returned` event.
async fn progress_events(
    engine: &airlock_engine::Engine,
    id: &str,
) -> (Vec<(i64, i64, TaskEvent)>, Option<(i64, i64)>) {
    let stored = engine.store().events(id).await.unwrap();
    let returned = stored
        .iter()
        .find(|e| e.kind == "tool_returned")
        .map(|e| (e.seq, e.at));
    let progress = stored
        .into_iter()
        .filter(|e| e.kind == "tool_progress")
        .map(|e| (e.seq, e.at, serde_json::from_value(e.body).unwrap()))
        .collect();
    (progress, returned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_recorded_on_the_step_throttled_with_the_last_report_kept() {
    within(async {
        let env = Env::new();
        let clock = Arc::new(ManualClock::new(T0));
        let tools = Arc::new(Reporting {
            clock: clock.clone(),
            stuck: AtomicBool::new(false),
        });
        let engine = env.engine_with(env.config(), clock.clone(), tools).await;
        let wf = parse(&workflow("slow.job", "1m"));
        let id = engine
            .start_task(&wf, inputs(json!({})), "ada", None)
            .await
            .unwrap();
        let task = engine.run_task(&id).await.unwrap();
        assert_eq!(task.projection.status, TaskStatus::Succeeded);
        assert_eq!(task.projection.state["work"], json!({"done": true}));
        assert_eq!(
            calls(&engine, &id).await[0].outcome,
            Some(ToolCallOutcome::Succeeded)
        );

        let (progress, returned) = progress_events(&engine, &id).await;
        let (returned_seq, returned_at) = returned.expect("the call returned");
        let call_id = match events(&engine, &id)
            .await
            .into_iter()
            .find(|e| matches!(e, TaskEvent::ToolCalled { .. }))
        {
            Some(TaskEvent::ToolCalled { call_id, .. }) => call_id,
            other => panic!("no tool_called event: {other:?}"),
        };
        let values: Vec<f64> = progress
            .iter()
            .map(|(_, _, e)| match e {
                TaskEvent::ToolProgress {
                    call_id: of,
                    progress,
                    total,
                    message,
                } => {
                    assert_eq!(of, &call_id);
                    assert_eq!(*total, Some(3.0));
                    assert_eq!(
                        message.as_deref(),
                        Some(format!("step {progress}").as_str())
                    );
                    *progress
                }
                other => panic!("not a progress event: {other:?}"),
            })
            .collect();
        // The first report is committed at once, the last one is never lost, and they are
        // in the order the tool sent them, all before the outcome.
        assert_eq!(values.first(), Some(&1.0), "{values:?}");
        assert_eq!(values.last(), Some(&3.0), "{values:?}");
        assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
        assert!(progress.iter().all(|(seq, _, _)| *seq < returned_seq));
        // Throttled: apart from the one that travels with the outcome, progress commits are
        // at least 250 ms of the engine's clock apart (the reports came 100 ms apart).
        for pair in progress.windows(2) {
            let ((_, a, _), (_, b, _)) = (&pair[0], &pair[1]);
            assert!(
                b - a >= 250 || *b == returned_at,
                "progress committed {} ms apart: {progress:?}",
                b - a
            );
        }
        assert_eq!(
            progress[0].1, T0,
            "the first report is committed when heard"
        );
        assert_consistent(&engine, &id).await;
    })
    .await;
}

/// Progress of a call that never answers is on disk while the call waits, and the state's
/// timeout still ends the call (in doubt: the tool is not idempotent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_of_a_hanging_call_is_recorded_and_the_timeout_still_holds() {
    within(async {
        let env = Env::new();
        let clock = Arc::new(ManualClock::new(T0));
        let tools = Arc::new(Reporting {
            clock: clock.clone(),
            stuck: AtomicBool::new(false),
        });
        let engine = env
            .engine_with(env.config(), clock.clone(), tools.clone())
            .await;
        let wf = parse(&workflow("slow.stuck", "1s"));
        let id = engine
            .start_task(&wf, inputs(json!({})), "ada", None)
            .await
            .unwrap();
        let runner = {
            let engine = engine.clone();
            let id = id.clone();
            tokio::spawn(async move { engine.run_task(&id).await })
        };
        wait_for(
            "the progress to be committed while the call waits",
            || async {
                tools.stuck.load(Ordering::SeqCst)
                    && !progress_events(&engine, &id).await.0.is_empty()
            },
        )
        .await;
        let mid = task(&engine, &id).await;
        assert_eq!(mid.projection.status, TaskStatus::Running);
        assert_eq!(mid.projection.phase["at"], "calling");
        assert_consistent(&engine, &id).await;

        clock.advance(Duration::from_secs(1));
        let task = tokio::time::timeout(Duration::from_secs(5), runner)
            .await
            .expect("the timeout ends the call")
            .unwrap()
            .unwrap();
        assert_eq!(task.projection.status, TaskStatus::InDoubt);
        let calls = calls(&engine, &id).await;
        assert_eq!(calls[0].outcome, Some(ToolCallOutcome::InDoubt));
        assert_eq!(calls[0].error.as_deref(), Some("no answer within 1s"));
        let (progress, _) = progress_events(&engine, &id).await;
        assert_eq!(progress.len(), 1, "{progress:?}");
        assert_consistent(&engine, &id).await;
    })
    .await;
}
