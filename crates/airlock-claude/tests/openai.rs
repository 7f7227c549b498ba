//! The OpenAI-compatible provider over a loopback server that speaks chat completions as
//! Ollama and the llama.cpp server do.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use airlock_claude::{ApiKey, OpenAiCompatible, OpenAiConfig, RetryPolicy};
use airlock_engine::{Model, ModelReply, ModelRequest, ProposedCall, ToolInfo, Turn};
use serde_json::{Value, json};
use support::{Recorded, RecordingClock, Reply, Server, completion, ok, status, within};

const KEY: &str = "lm-studio-SECRET-token";

fn model(server: &Server, key: Option<ApiKey>) -> (OpenAiCompatible, Arc<RecordingClock>) {
    let clock = Arc::new(RecordingClock::default());
    let config = OpenAiConfig {
        base_url: format!("{}/", server.url),
        model: "llama3.1".into(),
        max_tokens: 512,
        request_timeout: Duration::from_millis(500),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_wait: Duration::from_secs(10),
        },
        ..OpenAiConfig::default()
    };
    (
        OpenAiCompatible::new(config, key, clock.clone()).unwrap(),
        clock,
    )
}

fn request(turns: Vec<Turn>) -> ModelRequest {
    ModelRequest {
        task_id: "task-1".into(),
        workflow: "agent-demo".into(),
        state: "think".into(),
        context: json!({"inputs": {}, "state": {}}),
        goal: "Summarise order A-1".into(),
        tools: vec![ToolInfo {
            name: "builtin.echo".into(),
            description: "Returns its arguments unchanged.".into(),
            input_schema: json!({"type": "object"}),
            output_schema: None,
            annotations: Default::default(),
        }],
        output_schema: Some(
            json!({"type": "object", "properties": {"summary": {"type": "string"}}}),
        ),
        turns,
    }
}

async fn ask(
    script: Vec<Reply>,
    turns: Vec<Turn>,
) -> (Result<ModelReply, String>, Vec<Recorded>, Vec<Duration>) {
    let server = Server::start(script).await;
    let (model, clock) = model(&server, None);
    let reply = within(model.respond(request(turns))).await.map_err(|e| e.0);
    (reply, server.requests(), clock.waits())
}

fn call(id: &str, name: &str, arguments: &str) -> Value {
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
}

fn answer() -> Reply {
    ok(completion(
        json!({"role": "assistant", "content": "", "tool_calls": [call("call_9", "final_answer", r#"{"summary":"fine"}"#)]}),
        "tool_calls",
    ))
}

#[tokio::test]
async fn a_text_answer_with_json_in_it_is_the_final_output() {
    let (reply, _, _) = ask(
        vec![ok(completion(
            json!({"role": "assistant", "content": "{\"summary\": \"order A-1 is fine\"}"}),
            "stop",
        ))],
        vec![],
    )
    .await;
    assert_eq!(
        reply.unwrap(),
        ModelReply::Final {
            output: json!({"summary": "order A-1 is fine"})
        }
    );
}

#[tokio::test]
async fn a_final_answer_call_is_the_final_output() {
    let (reply, _, _) = ask(vec![answer()], vec![]).await;
    assert_eq!(
        reply.unwrap(),
        ModelReply::Final {
            output: json!({"summary": "fine"})
        }
    );
}

#[tokio::test]
async fn parallel_tool_calls_are_all_proposed_with_their_ids() {
    let (reply, _, _) = ask(
        vec![ok(completion(
            json!({"role": "assistant", "content": null, "tool_calls": [
                call("call_a", "builtin__echo", r#"{"order":"A-1"}"#),
                // Ollama has been known to leave ids out.
                {"type": "function", "function": {"name": "builtin__echo", "arguments": {"order": "A-2"}}},
                call("call_c", "builtin__echo", "order A-3, please"),
            ]}),
            "tool_calls",
        ))],
        vec![],
    )
    .await;
    let ModelReply::ToolCalls { calls } = reply.unwrap() else {
        panic!("expected tool calls");
    };
    assert_eq!(
        calls,
        [
            ProposedCall {
                id: "call_a".into(),
                tool: "builtin.echo".into(),
                args: json!({"order": "A-1"}),
            },
            ProposedCall {
                id: "call_0_1".into(),
                tool: "builtin.echo".into(),
                args: json!({"order": "A-2"}),
            },
            // Not JSON: passed on as text, for the engine's schema check to refuse.
            ProposedCall {
                id: "call_c".into(),
                tool: "builtin.echo".into(),
                args: json!("order A-3, please"),
            },
        ]
    );
}

#[tokio::test]
async fn the_request_has_the_chat_completions_shape() {
    let server = Server::start(vec![answer()]).await;
    let (model, _) = model(&server, Some(ApiKey::new(KEY)));
    let turns = vec![
        Turn::Model {
            reply: ModelReply::ToolCalls {
                calls: vec![
                    ProposedCall {
                        id: "call_a".into(),
                        tool: "builtin.echo".into(),
                        args: json!({"order": "A-1"}),
                    },
                    ProposedCall {
                        id: "call_b".into(),
                        tool: "builtin.record".into(),
                        args: json!({}),
                    },
                ],
            },
        },
        Turn::ToolResult {
            call: "call_a".into(),
            tool: "builtin.echo".into(),
            ok: true,
            content: json!({"order": "A-1"}),
        },
        Turn::ToolResult {
            call: "call_b".into(),
            tool: "builtin.record".into(),
            ok: false,
            content: json!("refused: not allowed"),
        },
    ];
    within(model.respond(request(turns))).await.unwrap();
    let r = &server.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    let b = &r.body;
    assert_eq!(b["model"], "llama3.1");
    assert_eq!(b["max_tokens"], 512);
    assert_eq!(
        b["tools"][0],
        json!({"type": "function", "function": {"name": "builtin__echo", "description": "Returns its arguments unchanged.", "parameters": {"type": "object"}}})
    );
    assert_eq!(b["tools"][1]["function"]["name"], "final_answer");
    assert_eq!(
        b["tools"][1]["function"]["parameters"],
        request(vec![]).output_schema.unwrap()
    );
    let messages = b["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    assert!(
        messages[0]["content"]
            .as_str()
            .unwrap()
            .contains("final_answer")
    );
    assert_eq!(
        messages[1],
        json!({"role": "user", "content": "Summarise order A-1"})
    );
    assert_eq!(
        &messages[2..],
        [
            json!({"role": "assistant", "content": null, "tool_calls": [
                call("call_a", "builtin__echo", r#"{"order":"A-1"}"#),
                call("call_b", "builtin__record", "{}"),
            ]}),
            json!({"role": "tool", "tool_call_id": "call_a", "content": "{\"order\":\"A-1\"}"}),
            json!({"role": "tool", "tool_call_id": "call_b", "content": "error: refused: not allowed"}),
        ]
    );
    assert_eq!(
        model.name(),
        format!("openai-compatible (llama3.1 at {})", server.url)
    );
    assert_eq!(model.usage().input_tokens, 412);
    assert_eq!(model.usage().output_tokens, 37);
}

#[tokio::test]
async fn a_429_waits_what_retry_after_asks_on_the_injected_clock() {
    let (reply, requests, waits) = ask(
        vec![
            Reply::Json(
                429,
                vec![("retry-after", "1".into())],
                json!({"error": {"message": "Rate limit reached", "type": "requests"}}),
            ),
            answer(),
        ],
        vec![],
    )
    .await;
    reply.unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(waits, [Duration::from_secs(1)]);
}

#[tokio::test]
async fn a_503_is_retried() {
    let (reply, requests, waits) = ask(
        vec![
            status(503, json!({"error": "server busy, please try again"})),
            answer(),
        ],
        vec![],
    )
    .await;
    reply.unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(waits, [Duration::from_millis(200)]);
}

#[tokio::test]
async fn a_404_fails_at_once_with_the_servers_message() {
    let (reply, requests, waits) = ask(
        vec![
            status(
                404,
                json!({"error": "model \"llama3.1\" not found, try pulling it first"}),
            ),
            answer(),
        ],
        vec![],
    )
    .await;
    let err = reply.unwrap_err();
    assert!(
        err.contains("404") && err.contains("try pulling it first"),
        "{err}"
    );
    assert_eq!(requests.len(), 1);
    assert!(waits.is_empty());
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let (reply, requests, _) = ask(vec![Reply::Drop, answer()], vec![]).await;
    reply.unwrap();
    assert_eq!(requests.len(), 2);
}

#[tokio::test]
async fn a_timeout_is_an_error_after_bounded_retries() {
    let (reply, requests, _) = ask(
        vec![Reply::Hang, Reply::Hang, Reply::Hang, answer()],
        vec![],
    )
    .await;
    let err = reply.unwrap_err();
    assert!(
        err.contains("failed after 3 attempts") && err.contains("no answer within"),
        "{err}"
    );
    assert_eq!(requests.len(), 3);
}

#[tokio::test]
async fn a_reply_cut_off_by_length_is_a_clear_error() {
    let (reply, _, _) = ask(
        vec![ok(completion(
            json!({"role": "assistant", "content": "{\"summ"}),
            "length",
        ))],
        vec![],
    )
    .await;
    let err = reply.unwrap_err();
    assert!(err.contains("cut off at max_tokens (512)"), "{err}");
}

#[tokio::test]
async fn the_key_is_redacted() {
    let server = Server::start(vec![]).await;
    let (model, _) = model(&server, Some(ApiKey::new(KEY)));
    let debug = format!("{model:?}");
    assert!(
        debug.contains("<redacted>") && !debug.contains("SECRET"),
        "{debug}"
    );
}
