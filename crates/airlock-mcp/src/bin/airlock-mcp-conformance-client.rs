//! The "client subject" of the MCP conformance suite (`@modelcontextprotocol/conformance`,
//! client mode): the suite starts a test server per scenario and runs this program with the
//! server's URL as the last argument and the scenario's name in `MCP_CONFORMANCE_SCENARIO`.
//!
//! It is [`McpTools`] as the engine uses it, over Streamable HTTP, with nothing added per
//! scenario beyond the arguments of the one tool the `tools_call` scenario defines:
//!
//! - every scenario: connect (initialize, initialized, tools/list); exit 1 when that fails;
//! - `initialize`: nothing more;
//! - `tools_call`: `add_numbers` with `{"a": 2, "b": 3}`, and the answer must say 5;
//! - any other scenario: every listed tool is called once with `{}` (what a workflow would
//!   do); the outcome is printed and any tool error makes the exit status 1. Features the
//!   adapter lacks (elicitation, OAuth) are not imitated, so those scenarios fail.
//!
//! Prints one JSON line per step on stdout (the suite saves it as `stdout.txt`).

use std::path::Path;
use std::process::ExitCode;

use airlock_engine::tool_host::{ToolHost, ToolRequest};
use airlock_mcp::{McpTools, ServerState, parse_servers};
use serde_json::{Value, json};

const SERVER: &str = "peer";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let Some(url) = std::env::args().skip(1).last() else {
        eprintln!("usage: airlock-mcp-conformance-client <server-url>");
        return ExitCode::from(2);
    };
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    match run(&url, &scenario).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("airlock-mcp-conformance-client ({scenario}): {message}");
            ExitCode::FAILURE
        }
    }
}

fn report(value: Value) {
    println!("{value}");
}

async fn run(url: &str, scenario: &str) -> Result<(), String> {
    let text = json!({"mcpServers": {SERVER: {"url": url, "airlock": {"timeout": "20s"}}}});
    let config = parse_servers(Path::new("conformance-servers.json"), &text.to_string())
        .map_err(|e| e.to_string())?;
    let tools = McpTools::connect(config).await;
    let status = tools
        .servers()
        .into_iter()
        .next()
        .ok_or("no server configured")?;
    let listed = match status.state {
        ServerState::Ready { tools } => tools,
        other => return Err(format!("the connection failed: {other:?}")),
    };
    report(json!({"step": "connected", "scenario": scenario, "tools": listed}));
    let calls: Vec<(String, Value)> = match scenario {
        "initialize" => Vec::new(),
        "tools_call" => vec![("add_numbers".into(), json!({"a": 2, "b": 3}))],
        _ => listed.iter().map(|t| (t.clone(), json!({}))).collect(),
    };
    let mut failures = Vec::new();
    for (index, (tool, args)) in calls.iter().enumerate() {
        let name = format!("{SERVER}.{tool}");
        let key = format!("conformance/{scenario}/{index}");
        let outcome = tools
            .call(ToolRequest {
                tool: &name,
                args,
                idempotency_key: &key,
                task_id: "conformance",
                progress: None,
            })
            .await;
        match outcome {
            Ok(result) => {
                report(json!({"step": "call", "tool": tool, "ok": true, "result": result}));
                if scenario == "tools_call" {
                    let text = result["content"][0]["text"].as_str().unwrap_or_default();
                    if text != "The sum of 2 and 3 is 5" {
                        failures.push(format!("add_numbers answered {result}, not the sum 5"));
                    }
                }
            }
            Err(error) => {
                report(
                    json!({"step": "call", "tool": tool, "ok": false, "error": error.to_string()}),
                );
                failures.push(format!("`{tool}`: {error}"));
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}
