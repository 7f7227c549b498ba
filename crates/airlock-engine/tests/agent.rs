//! Agent states driven by a fake model (the Claude layer plugs in behind the same trait):
//! proposals go through the checked path, a tool the step may not use is refused and never
//! runs, and after a restart recorded turns are replayed instead of asked again.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_engine::clock::BoxFuture;
use airlock_engine::store::{CallRefusal, StoreOptions, TaskStatus, ToolCallOutcome};
use airlock_engine::{
    BuiltinTools, Engine, EngineConfig, Model, ModelError, ModelReply, ModelRequest, ProposedCall,
    SystemClock, TaskEvent, ToolError, ToolHost, ToolInfo, ToolRequest, Turn,
};
use serde_json::{Value, json};

const WORKFLOW: &str = r#"
name = "agent-demo"
start = "think"

[inputs.order]
type = "string"

[states.think]
kind = "agent"
goal = "Summarise order {{ inputs.order }}"
tools = ["builtin.echo"]
max_turns = 4
next = "done"

[states.done]
kind = "end"
status = "succeeded"
"#;

/// Plays a fixed script: first proposes an allowed and a forbidden call, then answers.
/// Records every request it was sent.
#[derive(Default)]
struct ScriptedModel {
    requests: Mutex<Vec<ModelRequest>>,
    asked: AtomicUsize,
}

impl Model for ScriptedModel {
    fn name(&self) -> String {
        "fake (scripted, test)".into()
    }

    fn respond(&self, request: ModelRequest) -> BoxFuture<'_, Result<ModelReply, ModelError>> {
        let turn = request
            .turns
            .iter()
            .filter(|t| matches!(t, Turn::Model { .. }))
            .count();
        self.asked.fetch_add(1, Ordering::SeqCst);
        self.requests.lock().unwrap().push(request);
        Box::pin(async move {
            Ok(match turn {
                0 => ModelReply::ToolCalls {
                    calls: vec![
                        ProposedCall {
                            id: "c1".into(),
                            tool: "builtin.echo".into(),
                            args: json!({"order": "A-1"}),
                        },
                        ProposedCall {
                            id: "c2".into(),
                            tool: "builtin.record".into(),
                            args: json!({"label": "sneaky"}),
                        },
                    ],
                },
                _ => ModelReply::Final {
                    output: json!({ "summary": "order A-1 looks fine" }),
                },
            })
        })
    }
}

/// The built-in tools, except that `builtin.echo` hangs while `hang` is set.
struct Hanging {
    inner: BuiltinTools,
    hang: bool,
    calls: AtomicUsize,
}

impl ToolHost for Hanging {
    fn tools(&self) -> Vec<ToolInfo> {
        self.inner.tools()
    }

    fn call<'a>(&'a self, r: ToolRequest<'a>) -> BoxFuture<'a, Result<Value, ToolError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.hang && r.tool == "builtin.echo" {
            return Box::pin(std::future::pending());
        }
        self.inner.call(r)
    }
}

async fn engine(dir: &Path, model: Arc<ScriptedModel>, hang: bool) -> (Engine, Arc<Hanging>) {
    let tools = Arc::new(Hanging {
        inner: BuiltinTools::open(&dir.join("effects.sqlite"))
            .await
            .unwrap(),
        hang,
        calls: AtomicUsize::new(0),
    });
    let engine = Engine::open(
        EngineConfig::new(StoreOptions::new(dir.join("airlock.sqlite"))),
        Arc::new(SystemClock),
        tools.clone(),
        Some(model),
    )
    .await
    .unwrap();
    (engine, tools)
}

fn workflow() -> airlock_engine::workflow::Workflow {
    airlock_engine::workflow::parse(Path::new("agent.toml"), WORKFLOW).unwrap()
}

#[tokio::test]
async fn proposals_are_checked_and_a_forbidden_tool_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let model = Arc::new(ScriptedModel::default());
    let (engine, tools) = engine(dir.path(), model.clone(), false).await;
    let inputs = json!({"order": "A-1"}).as_object().cloned().unwrap();
    let id = engine
        .start_task(&workflow(), inputs, "ada", None)
        .await
        .unwrap();
    let task = tokio::time::timeout(Duration::from_secs(20), engine.run_task(&id))
        .await
        .unwrap()
        .unwrap();

    assert_eq!(task.projection.status, TaskStatus::Succeeded);
    assert_eq!(
        task.projection.state["think"],
        json!({ "summary": "order A-1 looks fine" })
    );
    // Only the permitted call reached the tool host; the forbidden one is on the ledger
    // as refused by the checks, never made.
    assert_eq!(tools.calls.load(Ordering::SeqCst), 1);
    let calls = engine.store().tool_calls(&id).await.unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].tool, "builtin.echo");
    assert_eq!(calls[0].outcome, Some(ToolCallOutcome::Succeeded));
    assert_eq!(calls[1].tool, "builtin.record");
    assert_eq!(calls[1].outcome, Some(ToolCallOutcome::Refused));
    assert_eq!(calls[1].refusal, Some(CallRefusal::Check));
    assert_eq!(calls[1].allowed, None);
    let events: Vec<TaskEvent> = engine
        .store()
        .events(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| serde_json::from_value(e.body).unwrap())
        .collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, TaskEvent::ToolRefused { tool, .. } if tool == "builtin.record"))
    );
    // The model saw both results: the echo's output and the refusal, and only its tools.
    let requests = model.requests.lock().unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].goal, "Summarise order A-1");
    assert_eq!(
        requests[0]
            .tools
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["builtin.echo"]
    );
    let results: Vec<_> = requests[1]
        .turns
        .iter()
        .filter_map(|t| match t {
            Turn::ToolResult {
                tool, ok, content, ..
            } => Some((tool.clone(), *ok, content.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        results[0],
        ("builtin.echo".into(), true, json!({"order": "A-1"}))
    );
    assert_eq!(results[1].0, "builtin.record");
    assert!(!results[1].1);
    assert!(
        results[1]
            .2
            .as_str()
            .unwrap()
            .contains("not a tool this step may use")
    );
}

#[tokio::test]
async fn a_restart_replays_recorded_turns_instead_of_asking_again() {
    let dir = tempfile::tempdir().unwrap();
    let first_model = Arc::new(ScriptedModel::default());
    let (first, _) = engine(dir.path(), first_model.clone(), true).await;
    let inputs = json!({"order": "A-1"}).as_object().cloned().unwrap();
    let id = first
        .start_task(&workflow(), inputs, "ada", None)
        .await
        .unwrap();
    let runner = {
        let first = first.clone();
        let id = id.clone();
        tokio::spawn(async move { first.run_task(&id).await })
    };
    // Wait until the first turn is recorded and its echo call is under way, then "crash".
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let calls = first.store().tool_calls(&id).await.unwrap();
        if calls.iter().any(|c| c.outcome.is_none()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the call never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    runner.abort();
    first.close().await.unwrap();
    assert_eq!(first_model.asked.load(Ordering::SeqCst), 1);

    let second_model = Arc::new(ScriptedModel::default());
    let (second, tools) = engine(dir.path(), second_model.clone(), false).await;
    tokio::time::timeout(Duration::from_secs(20), second.run_until_idle())
        .await
        .unwrap()
        .unwrap();
    let task = second.find_task(&id).await.unwrap();
    assert_eq!(task.projection.status, TaskStatus::Succeeded);
    // Turn 0 came from the store; only turn 1 was asked of the model after the restart.
    assert_eq!(second_model.asked.load(Ordering::SeqCst), 1);
    let first_turn = second_model.requests.lock().unwrap()[0].turns[0].clone();
    assert!(
        matches!(first_turn, Turn::Model { .. }),
        "the replayed turn is in the context"
    );
    // The idempotent echo was re-made once with the same key; the forbidden call never ran.
    assert_eq!(tools.calls.load(Ordering::SeqCst), 1);
    let calls = second.store().tool_calls(&id).await.unwrap();
    let made: Vec<_> = calls
        .iter()
        .filter(|c| c.outcome != Some(ToolCallOutcome::Refused))
        .collect();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].idempotency_key, format!("{id}/1/0"));
    assert_eq!(calls.len(), 2, "and the refused proposal, once");
}
