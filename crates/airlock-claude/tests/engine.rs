//! End to end: the engine runs an agent state on `Claude` pointed at a loopback server
//! that speaks the Messages API. "Claude" proposes `builtin.echo`, sees its result in the
//! next request, and answers; the answer lands in the task's state.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use airlock_claude::{ApiKey, Claude, ClaudeConfig};
use airlock_engine::store::{StoreOptions, TaskStatus, ToolCallOutcome};
use airlock_engine::{BuiltinTools, Engine, EngineConfig, SystemClock, TaskEvent};
use serde_json::json;
use support::{RecordingClock, Server, message, ok, within};

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

[states.think.output_schema]
type = "object"
required = ["summary"]
properties = { summary = { type = "string" } }

[states.done]
kind = "end"
status = "succeeded"
"#;

#[tokio::test]
async fn claude_proposes_a_call_sees_its_result_and_answers() {
    within(async {
        let server = Server::start(vec![
            ok(message(
                json!([
                    {"type": "text", "text": "Let me look at the order."},
                    {"type": "tool_use", "id": "toolu_01Echo", "name": "builtin__echo", "input": {"order": "A-1"}}
                ]),
                "tool_use",
            )),
            ok(message(
                json!([{"type": "tool_use", "id": "toolu_02Done", "name": "final_answer", "input": {"summary": "order A-1 looks fine"}}]),
                "tool_use",
            )),
        ])
        .await;
        let claude = Claude::new(
            ClaudeConfig {
                base_url: server.url.clone(),
                request_timeout: Duration::from_secs(5),
                ..ClaudeConfig::default()
            },
            ApiKey::new("sk-ant-test"),
            Arc::new(RecordingClock::default()),
        )
        .unwrap();
        let claude = Arc::new(claude);

        let dir = tempfile::tempdir().unwrap();
        let tools = Arc::new(BuiltinTools::open(&dir.path().join("effects.sqlite")).await.unwrap());
        let engine = Engine::open(
            EngineConfig::new(StoreOptions::new(dir.path().join("airlock.sqlite"))),
            Arc::new(SystemClock),
            tools,
            Some(claude.clone()),
        )
        .await
        .unwrap();
        let workflow = airlock_engine::workflow::parse(Path::new("agent.toml"), WORKFLOW).unwrap();
        let inputs = json!({"order": "A-1"}).as_object().cloned().unwrap();
        let id = engine.start_task(&workflow, inputs, "ada", None).await.unwrap();
        let task = engine.run_task(&id).await.unwrap();

        assert_eq!(task.projection.status, TaskStatus::Succeeded);
        assert_eq!(task.projection.state["think"], json!({"summary": "order A-1 looks fine"}));

        // The proposal went through the ledger and ran once.
        let calls = engine.store().tool_calls(&id).await.unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].tool, "builtin.echo");
        assert_eq!(calls[0].outcome, Some(ToolCallOutcome::Succeeded));

        // The first request offered only the step's tool; the second carried its result.
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        let offered: Vec<_> = requests[0].body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(offered, ["builtin__echo", "final_answer"]);
        assert_eq!(
            requests[0].body["tools"][1]["input_schema"],
            json!({"type": "object", "required": ["summary"], "properties": {"summary": {"type": "string"}}})
        );
        let first = requests[0].body["messages"][0]["content"][0]["text"].as_str().unwrap();
        assert!(first.starts_with("Summarise order A-1"), "{first}");
        let messages = requests[1].body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(
            messages[1]["content"],
            json!([{"type": "tool_use", "id": "toolu_01Echo", "name": "builtin__echo", "input": {"order": "A-1"}}])
        );
        assert_eq!(
            messages[2],
            json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01Echo", "content": "{\"order\":\"A-1\"}"}
            ]})
        );

        // Each recorded turn names the model; usage was counted for the task.
        let turns: Vec<(String, Option<airlock_engine::ModelUsage>)> = engine
            .store()
            .events(&id)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|e| match serde_json::from_value(e.body).unwrap() {
                TaskEvent::ModelTurn { model, usage, .. } => Some((model, usage)),
                _ => None,
            })
            .collect();
        let models: Vec<&str> = turns.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(models, ["claude (claude-sonnet-4-5)", "claude (claude-sonnet-4-5)"]);
        // The engine takes each turn's usage from the provider and records it on the turn.
        let output: u64 = turns.iter().filter_map(|(_, u)| u.map(|u| u.output_tokens)).sum();
        assert_eq!(output, 2 * 503);
        assert_eq!(claude.usage().requests, 2);
        assert_eq!(claude.task_usage(&id).requests, 0, "taken by the engine turn by turn");

        // The task's cost, from its history alone: 2 turns of 2,095 in, 503 out and 1,800
        // cache-write tokens at Sonnet's list prices.
        let spend = airlock_engine::spend::model_spend(&engine.store().events(&id).await.unwrap());
        assert_eq!(spend.len(), 1);
        assert_eq!(spend[0].turns, 2);
        let cost = airlock_claude::pricing::cost_usd(&spend[0].model, &spend[0].usage).unwrap();
        let expected = 2.0 * (2095.0 * 3.0 + 503.0 * 15.0 + 1800.0 * 3.75) / 1_000_000.0;
        assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");
    })
    .await;
}
