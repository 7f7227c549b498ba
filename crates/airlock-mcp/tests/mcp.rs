//! airlock-mcp's tests: the servers file and imports, and the adapter against the real
//! fault-server process (`src/bin/airlock-mcp-fault-server.rs`).

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock_engine::tool_host::{ToolAnnotations, ToolError, ToolHost, ToolRequest};
use airlock_mcp::config::{ConfigError, Location, ServerTransport};
use airlock_mcp::import::{import_report, import_servers, merge_into};
use airlock_mcp::{McpTools, ServerState, ServersConfig, parse_servers};
use serde_json::{Value, json};

const FAULT: &str = env!("CARGO_BIN_EXE_airlock-mcp-fault-server");
const KEY: &str = "task-1/2/0";

/// Every test runs under this limit.
async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("the test did not finish within 60 s")
}

fn fixture(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// Fault servers named `names`, each with `airlock` as its Airlock section.
fn fault_config(names: &[&str], airlock: Value) -> ServersConfig {
    let servers: serde_json::Map<String, Value> = names
        .iter()
        .map(|n| {
            (
                n.to_string(),
                json!({"command": FAULT, "airlock": airlock.clone()}),
            )
        })
        .collect();
    let text = json!({ "mcpServers": servers }).to_string();
    parse_servers(Path::new("servers.json"), &text).expect("the test config parses")
}

async fn fault_host(airlock: Value) -> McpTools {
    McpTools::connect(fault_config(&["fault"], airlock)).await
}

async fn call(host: &McpTools, tool: &str, args: Value) -> Result<Value, ToolError> {
    host.call(ToolRequest {
        tool,
        args: &args,
        idempotency_key: KEY,
        task_id: "task-1",
        progress: None,
    })
    .await
}

fn lost(result: Result<Value, ToolError>) -> String {
    match result {
        Err(ToolError::Lost(message)) => message,
        other => panic!("expected Lost, got {other:?}"),
    }
}

// --- the servers file ------------------------------------------------------------------

#[tokio::test]
async fn bad_servers_files_say_what_and_where() {
    within(async {
        // (file text, expected line, column, server (None for serde errors), message part)
        let cases: &[(&str, usize, usize, Option<&str>, &str)] = &[
            (
                "{\"mcpServers\": {\n  \"a\": {\"command\": \"x\",}\n}}",
                2,
                24,
                None,
                "trailing comma",
            ),
            (
                "{\"mcpServers\": {\n  \"a\": {\"comand\": \"x\"}\n}}",
                2,
                16,
                None,
                "unknown field `comand`",
            ),
            (
                "{\"mcpServers\": {\n  \"a\": {\"command\": \"x\", \"args\": \"-v\"}\n}}",
                2,
                36,
                None,
                "invalid type: string \"-v\", expected a sequence",
            ),
            (
                "{\"mcpServers\": {\n  \"a\": {\n    \"command\": \"x\",\n    \"url\": \"http://h/mcp\"\n  }\n}}",
                4,
                5,
                Some("a"),
                "has both `command` and `url`",
            ),
            (
                "{\"mcpServers\": {\n  \"a\": {\n    \"command\": \"  \"\n  }\n}}",
                3,
                5,
                Some("a"),
                "`command` is empty",
            ),
            (
                "{\"mcpServers\": {\n  \"a\": {},\n  \"b\": {\n    \"url\": \"ftp://h/x\"\n  }\n}}",
                2,
                3,
                Some("a"),
                "needs either `command` (a process) or `url`",
            ),
            (
                "{\"mcpServers\": {\n  \"b\": {\n    \"url\": \"ftp://h/x\"\n  }\n}}",
                3,
                5,
                Some("b"),
                "`url` `ftp://h/x` must start with http:// or https://",
            ),
            (
                "{\"mcpServers\": {\n  \"b\": {\n    \"url\": \"not a url\"\n  }\n}}",
                3,
                5,
                Some("b"),
                "`url` `not a url` is not a valid URL",
            ),
            (
                "{\"mcpServers\": {\n  \"ok\": {\"command\": \"x\"},\n  \"My.Server\": {\"command\": \"x\"}\n}}",
                3,
                3,
                Some("My.Server"),
                "server names may only hold lowercase letters, digits, `_` and `-`",
            ),
            (
                "{\"mcpServers\": {\n  \"a\": {\"command\": \"x\",\n    \"airlock\": {\"timeout\": \"30 parsecs\"}}\n}}",
                3,
                17,
                Some("a"),
                "airlock.timeout: `30 parsecs` is not a duration",
            ),
            (
                "{\"mcpServers\": {\n  \"a\": {\"command\": \"x\",\n    \"env\": {\"TOKEN\": \"${env:TOK\"}}\n}}",
                3,
                13,
                Some("a"),
                "env.TOKEN: `${env:` without a closing `}`",
            ),
            (
                "{\"mcpServers\": {\n  \"a\": {\"url\": \"http://h/\", \"type\": \"sse\"}\n}}",
                2,
                29,
                Some("a"),
                "`type` `sse` (the legacy HTTP+SSE transport) is not supported",
            ),
            (
                "{\"mcpServers\": {\n  \"a\": {\"command\": \"x\",\n    \"airlock\": {\"tools\": {\"t\": {\"readonly\": true}}}}\n}}",
                3,
                42,
                None,
                "unknown field `readonly`, expected one of `read_only`",
            ),
        ];
        let mut wrong = Vec::new();
        for (text, line, column, server, part) in cases {
            let error = parse_servers(Path::new("servers.json"), text)
                .expect_err(&format!("this file should not parse:\n{text}"));
            let (at, got_server, message) = match &error {
                ConfigError::Syntax { at, message, .. } => (*at, None, message.clone()),
                ConfigError::Invalid {
                    at,
                    server,
                    message,
                    ..
                } => (*at, Some(server.as_str()), message.clone()),
                other => panic!("unexpected error {other:?}"),
            };
            let expected_at = Location {
                line: *line,
                column: *column,
            };
            let shown = error.to_string();
            if !message.contains(part)
                || got_server != *server
                || at != expected_at
                || !shown.starts_with(&format!("servers.json:{line}:{column}: "))
            {
                wrong.push(format!(
                    "{text}\n  expected {line}:{column} {server:?} {part:?}\n  got      {shown}"
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    })
    .await;
}

#[tokio::test]
async fn servers_file_defaults_and_airlock_section() {
    within(async {
        let text = r#"{"mcpServers": {
            "files": {"command": "mcp-server-filesystem", "args": ["/tmp"], "env": {"A": "1"}},
            "crm": {"url": "http://127.0.0.1:9/mcp", "headers": {"X-Key": "${env:CRM_KEY}"},
                    "airlock": {"timeout": "300ms", "max_result_bytes": 1024,
                                "tools": {"delete": {"destructive": true, "idempotent": false}}}}
        }}"#;
        let config = parse_servers(Path::new("s.json"), text).expect("parses");
        let names: Vec<&str> = config.servers.keys().map(String::as_str).collect();
        assert_eq!(names, ["files", "crm"], "file order is kept");
        let files = &config.servers["files"];
        assert_eq!(files.airlock.timeout, Duration::from_secs(60));
        assert_eq!(files.airlock.max_result_bytes, 4 * 1024 * 1024);
        assert!(matches!(
            &files.transport,
            ServerTransport::Stdio { command, args, .. } if command == "mcp-server-filesystem" && args == &["/tmp"]
        ));
        let crm = &config.servers["crm"];
        assert_eq!(crm.airlock.timeout, Duration::from_millis(300));
        assert_eq!(crm.airlock.max_result_bytes, 1024);
        assert_eq!(crm.airlock.tools["delete"].destructive, Some(true));
        assert_eq!(crm.airlock.tools["delete"].read_only, None);
        // Written back, an entry parses to the same thing.
        let again = json!({"mcpServers": {"crm": crm.to_json()}}).to_string();
        assert_eq!(
            parse_servers(Path::new("again.json"), &again).expect("parses").servers["crm"],
            *crm
        );
    })
    .await;
}

#[tokio::test]
async fn env_references_are_resolved_at_connect_time() {
    within(async {
        let text = r#"{"mcpServers": {
            "api": {"url": "http://127.0.0.1:9/mcp",
                    "headers": {"Authorization": "Bearer ${env:API_TOKEN}", "X-Both": "${env:A}-${env:B}"}},
            "proc": {"command": "x", "env": {"TOKEN": "${env:NOT_SET_ANYWHERE}"}},
            "vault": {"command": "x", "env": {"TOKEN": "${keychain:crm-token}", "KEY": "${keychain:gone}"}}
        }}"#;
        let config = parse_servers(Path::new("s.json"), text).expect("parses");
        let lookup = |name: &str| match name {
            "API_TOKEN" => Some("t0k3n".to_owned()),
            "keychain:crm-token" => Some("from-the-keychain".to_owned()),
            "A" => Some("1".to_owned()),
            "B" => Some("2".to_owned()),
            _ => None,
        };
        let resolved = config.servers["api"]
            .resolve("api", &lookup)
            .expect("resolves");
        match &resolved {
            airlock_mcp::config::ResolvedTransport::Http { headers, .. } => assert_eq!(
                headers,
                &[
                    ("Authorization".to_owned(), "Bearer t0k3n".to_owned()),
                    ("X-Both".to_owned(), "1-2".to_owned())
                ]
            ),
            other => panic!("{other:?}"),
        }
        assert!(
            !format!("{resolved:?}").contains("t0k3n"),
            "Debug output hides resolved values"
        );
        let error = config.servers["proc"]
            .resolve("proc", &lookup)
            .expect_err("the variable is missing");
        assert_eq!(
            error.to_string(),
            "server `proc`: env.TOKEN refers to the environment variable `NOT_SET_ANYWHERE`, which is not set"
        );
        // Keychain references reach the lookup as `keychain:NAME`; a missing one says
        // how to store it.
        let error = config.servers["vault"]
            .resolve("vault", &lookup)
            .expect_err("one entry is missing");
        assert_eq!(
            error.to_string(),
            "server `vault`: env.KEY refers to the keychain entry `gone` (store it with `airlock secrets set gone`), which is not set"
        );
        let bad = parse_servers(
            Path::new("s.json"),
            r#"{"mcpServers": {"p": {"command": "x", "env": {"T": "${keychain:no spaces}"}}}}"#,
        )
        .expect_err("an entry name with a space");
        assert!(bad.to_string().contains("keychain entry"), "{bad}");
    })
    .await;
}

// --- imports ---------------------------------------------------------------------------

#[tokio::test]
async fn imports_claude_desktop_config() {
    within(async {
        let servers = import_servers(&fixture("claude_desktop_config.json")).expect("imports");
        let names: Vec<&str> = servers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["filesystem", "github"]);
        match &servers[1].1.transport {
            ServerTransport::Stdio { command, env, .. } => {
                assert_eq!(command, "docker");
                assert_eq!(env["GITHUB_PERSONAL_ACCESS_TOKEN"], "${env:GITHUB_TOKEN}");
            }
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn imports_claude_code_project_file() {
    within(async {
        let import = import_report(&fixture("claude-code-project/.mcp.json")).expect("imports");
        let names: Vec<&str> = import.servers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["local-db", "api"]);
        match &import.servers[1].1.transport {
            ServerTransport::Http { url, headers } => {
                assert_eq!(url, "https://api.example.com/mcp");
                assert_eq!(headers["Authorization"], "Bearer ${env:API_KEY}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(import.skipped.len(), 1);
        assert_eq!(import.skipped[0].0, "legacy");
        assert!(
            import.skipped[0].1.contains("`sse`"),
            "{:?}",
            import.skipped
        );
    })
    .await;
}

#[tokio::test]
async fn imports_claude_json_with_projects() {
    within(async {
        let servers = import_servers(&fixture("claude.json")).expect("imports");
        let names: Vec<&str> = servers.iter().map(|(n, _)| n.as_str()).collect();
        // Top level first, then each project; names made valid.
        assert_eq!(names, ["memory", "app-docs", "memory"]);
    })
    .await;
}

#[tokio::test]
async fn merge_keeps_existing_entries_and_reports_duplicates() {
    within(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("servers.json");
        std::fs::write(
            &file,
            r#"{"mcpServers": {"memory": {"command": "my-memory", "airlock": {"timeout": "5s"}}},
                "note": "kept"}"#,
        )
        .expect("write");
        let servers = import_servers(&fixture("claude.json")).expect("imports");
        let report = merge_into(&file, servers).expect("merges");
        assert_eq!(report.added, ["app-docs"]);
        assert_eq!(report.skipped_duplicates, ["memory", "memory"]);
        let text = std::fs::read_to_string(&file).expect("read");
        let merged = parse_servers(&file, &text).expect("the merged file parses");
        let names: Vec<&str> = merged.servers.keys().map(String::as_str).collect();
        assert_eq!(names, ["memory", "app-docs"]);
        assert!(matches!(
            &merged.servers["memory"].transport,
            ServerTransport::Stdio { command, .. } if command == "my-memory"
        ));
        assert_eq!(
            serde_json::from_str::<Value>(&text).expect("json")["note"],
            "kept"
        );
        // Into a file that does not exist yet.
        let fresh = dir.path().join("new/servers.json");
        let report = merge_into(
            &fresh,
            import_servers(&fixture("claude_desktop_config.json")).expect("imports"),
        )
        .expect("merges");
        assert_eq!(report.added, ["filesystem", "github"]);
        assert!(report.skipped_duplicates.is_empty());
        airlock_mcp::load_servers(&fresh).expect("the new file parses");
    })
    .await;
}

// --- the adapter against the fault server ---------------------------------------------

#[tokio::test]
async fn lists_every_page_of_tools_with_hints_defaults_and_overrides() {
    within(async {
        let host =
            fault_host(json!({"tools": {"fail": {"destructive": false, "idempotent": true}}}))
                .await;
        let mut names: Vec<String> = host.tools().into_iter().map(|t| t.name).collect();
        names.sort();
        // The server pages two tools at a time.
        assert_eq!(
            names,
            [
                "fault.add_tool",
                "fault.exit_mid_call",
                "fault.fail",
                "fault.garbage",
                "fault.hang",
                "fault.huge",
                "fault.ok",
                "fault.text"
            ]
        );
        let ok = host.describe("fault.ok").expect("ok is known");
        assert_eq!(
            ok.annotations,
            ToolAnnotations {
                read_only: true,
                destructive: true,
                idempotent: false,
                open_world: false
            }
        );
        assert_eq!(
            ok.input_schema["properties"]["idempotency_key"]["type"],
            "string"
        );
        assert!(ok.description.starts_with("Echoes its arguments"));
        let hang = host.describe("fault.hang").expect("hang is known");
        assert_eq!(
            hang.annotations,
            ToolAnnotations {
                read_only: false,
                destructive: true,
                idempotent: false,
                open_world: true
            },
            "MCP's defaults when a tool has no hints"
        );
        let fail = host.describe("fault.fail").expect("fail is known");
        assert!(!fail.annotations.destructive && fail.annotations.idempotent);
        match &host.servers()[0].state {
            ServerState::Ready { tools } => assert_eq!(tools.len(), 8),
            other => panic!("{other:?}"),
        }
        assert!(host.describe("fault.nope").is_none());
        assert!(matches!(
            call(&host, "fault.nope", json!({})).await,
            Err(ToolError::Unknown(name)) if name == "fault.nope"
        ));
        assert!(matches!(
            call(&host, "nosuch.ok", json!({})).await,
            Err(ToolError::Unknown(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn exit_mid_call_is_lost_naming_the_exit_and_the_next_call_restarts() {
    within(async {
        let host = fault_host(json!({})).await;
        let message = lost(call(&host, "fault.exit_mid_call", json!({})).await);
        assert_eq!(message, "the server exited during the call (exit status 3)");
        assert!(matches!(
            &host.servers()[0].state,
            ServerState::Failed { error, .. } if error == &message
        ));
        let again = call(&host, "fault.ok", json!({"message": "after"}))
            .await
            .expect("the restarted server answers");
        assert_eq!(again["arguments"]["message"], "after");
        assert!(matches!(host.servers()[0].state, ServerState::Ready { .. }));
    })
    .await;
}

#[tokio::test]
async fn a_hanging_call_is_lost_after_the_timeout_and_cancelled() {
    within(async {
        let host = fault_host(json!({"timeout": "300ms"})).await;
        let started = Instant::now();
        let message = lost(call(&host, "fault.hang", json!({})).await);
        let waited = started.elapsed();
        assert_eq!(message, "no answer within 300ms; the request was cancelled");
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        // The server saw `notifications/cancelled` for it (it handles notifications
        // concurrently with requests, so look a few times).
        let mut cancelled = Value::Null;
        for _ in 0..50 {
            let echo = call(&host, "fault.ok", json!({}))
                .await
                .expect("ok answers");
            cancelled = echo["cancelled"].clone();
            if cancelled.as_array().is_some_and(|c| !c.is_empty()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            cancelled[0]["reason"], "request abandoned by the caller",
            "{cancelled}"
        );
        assert!(cancelled[0]["request_id"].is_string(), "{cancelled}");
    })
    .await;
}

#[tokio::test]
async fn garbage_on_stdout_is_ignored_and_named_when_the_server_then_dies() {
    within(async {
        let host = fault_host(json!({})).await;
        let answered = call(&host, "fault.garbage", json!({"then": "answer"}))
            .await
            .expect("a stray line does not break the session");
        assert_eq!(
            answered,
            json!({"content": [{"type": "text", "text": "answered after the garbage"}]})
        );
        let message = lost(call(&host, "fault.garbage", json!({"then": "exit"})).await);
        assert_eq!(
            message,
            "the server exited during the call (exit status 4); before that it wrote a line \
             to stdout that is not JSON-RPC: `this is not JSON-RPC`"
        );
        call(&host, "fault.ok", json!({}))
            .await
            .expect("the host is still usable");
    })
    .await;
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[tokio::test]
async fn a_huge_result_is_lost_at_the_cap_without_being_held_in_memory() {
    within(async {
        let cap = 1024 * 1024;
        let host = fault_host(json!({"max_result_bytes": cap})).await;
        let before = peak_rss_kib();
        let message = lost(call(&host, "fault.huge", json!({})).await);
        let grown_kib = peak_rss_kib().saturating_sub(before);
        let size: usize = message
            .strip_prefix("result of ")
            .and_then(|m| m.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected message {message:?}"));
        assert!(size > 50_000_000 && size < 50_001_000, "{message}");
        assert!(
            message.ends_with(&format!("exceeds the cap of {cap}")),
            "{message}"
        );
        // 50 MB went through; the peak grew by far less (the line is never kept).
        assert!(grown_kib < 20 * 1024, "peak memory grew by {grown_kib} KiB");
        // Just over the cap, but within the envelope allowance: measured after parsing.
        let message = lost(call(&host, "fault.huge", json!({"bytes": cap})).await);
        assert!(
            message.starts_with("result of ")
                && message.ends_with(&format!("exceeds the cap of {cap}")),
            "{message}"
        );
        let fits = call(&host, "fault.huge", json!({"bytes": 1000}))
            .await
            .expect("a small result passes");
        assert_eq!(
            fits["content"][0]["text"].as_str().map(str::len),
            Some(1000)
        );
    })
    .await;
}

#[tokio::test]
async fn a_tool_error_is_failed_with_its_text() {
    within(async {
        let host = fault_host(json!({})).await;
        assert_eq!(
            call(&host, "fault.fail", json!({})).await,
            Err(ToolError::Failed(
                "the fault server failed on purpose".into()
            ))
        );
    })
    .await;
}

#[tokio::test]
async fn one_server_crashing_leaves_the_other_working() {
    within(async {
        let host = McpTools::connect(fault_config(&["a", "b"], json!({}))).await;
        let (crashed, answered) = tokio::join!(
            call(&host, "a.exit_mid_call", json!({})),
            call(&host, "b.ok", json!({"message": "still here"}))
        );
        assert!(lost(crashed).contains("exit status 3"));
        assert_eq!(
            answered.expect("b answers")["arguments"]["message"],
            "still here"
        );
        assert!(matches!(
            host.servers()[0].state,
            ServerState::Failed { .. }
        ));
        assert!(matches!(host.servers()[1].state, ServerState::Ready { .. }));
        call(&host, "b.ok", json!({}))
            .await
            .expect("b answers again");
    })
    .await;
}

#[tokio::test]
async fn a_server_that_cannot_start_is_reported_and_does_not_stop_the_others() {
    within(async {
        let text = json!({"mcpServers": {
            "missing": {"command": "/nonexistent/airlock-test-server"},
            "noenv": {"command": FAULT, "env": {"X": "${env:AIRLOCK_TEST_SURELY_UNSET_VAR}"}},
            "fault": {"command": FAULT}
        }})
        .to_string();
        let config = parse_servers(Path::new("s.json"), &text).expect("parses");
        let host = McpTools::connect(config).await;
        let states = host.servers();
        match &states[0].state {
            ServerState::Failed { error, .. } => assert!(
                error.starts_with("cannot run `/nonexistent/airlock-test-server`"),
                "{error}"
            ),
            other => panic!("{other:?}"),
        }
        match &states[1].state {
            ServerState::Failed { error, .. } => assert_eq!(
                error,
                "server `noenv`: env.X refers to the environment variable \
                 `AIRLOCK_TEST_SURELY_UNSET_VAR`, which is not set"
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(states[2].state, ServerState::Ready { .. }));
        call(&host, "fault.ok", json!({}))
            .await
            .expect("fault works");
        // A call to the broken server did not take effect: it says why.
        match call(&host, "missing.anything", json!({})).await {
            Err(ToolError::Failed(message)) => assert!(
                message.starts_with("server `missing` did not start: cannot run"),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
        // Right after a second failure the next start waits (backoff).
        match call(&host, "missing.anything", json!({})).await {
            Err(ToolError::Failed(message)) => assert!(
                message.starts_with("server `missing` is not running (cannot run")
                    && message.contains("the next start is in"),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn the_idempotency_key_goes_in_meta_and_into_declared_arguments() {
    within(async {
        let host = fault_host(json!({})).await;
        let echo = call(&host, "fault.ok", json!({"message": "hi"}))
            .await
            .expect("ok answers");
        assert_eq!(
            echo["arguments"],
            json!({"message": "hi", "idempotency_key": KEY})
        );
        assert_eq!(echo["meta"]["dev.airlock/idempotency_key"], KEY);
        // An explicit argument is kept.
        let echo = call(&host, "fault.ok", json!({"idempotency_key": "mine"}))
            .await
            .expect("ok answers");
        assert_eq!(echo["arguments"], json!({"idempotency_key": "mine"}));
        assert_eq!(echo["meta"]["dev.airlock/idempotency_key"], KEY);
        // A tool that does not declare the argument does not get it; text stays text.
        let text = call(&host, "fault.text", json!({"message": "hi"}))
            .await
            .expect("text answers");
        assert_eq!(
            text,
            json!({"content": [{"type": "text", "text": "{\"message\":\"hi\"}"}]})
        );
    })
    .await;
}

#[tokio::test]
async fn the_tool_list_is_refreshed_when_the_server_says_it_changed() {
    within(async {
        let host = fault_host(json!({})).await;
        assert!(host.describe("fault.extra").is_none());
        call(&host, "fault.add_tool", json!({}))
            .await
            .expect("add_tool answers");
        let deadline = Instant::now() + Duration::from_secs(10);
        while host.describe("fault.extra").is_none() {
            assert!(Instant::now() < deadline, "the new tool never appeared");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            call(&host, "fault.extra", json!({}))
                .await
                .expect("extra answers"),
            json!({"content": [{"type": "text", "text": "extra"}]})
        );
    })
    .await;
}

/// Collects formatted tracing output.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn server_stderr_goes_to_tracing_and_resolved_secrets_do_not() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    within(async {
        let text = json!({"mcpServers": {
            "fault": {"command": FAULT, "env": {"FAULT_ECHO_ENV": "${env:FAULT_SECRET}"}}
        }})
        .to_string();
        let config = parse_servers(Path::new("s.json"), &text).expect("parses");
        let host = McpTools::connect_with_env(
            config,
            Arc::new(|name: &str| (name == "FAULT_SECRET").then(|| "s3cret-value-1234".to_owned())),
        )
        .await;
        let echo = call(&host, "fault.ok", json!({}))
            .await
            .expect("ok answers");
        assert_eq!(
            echo["env"], "s3cret-value-1234",
            "the server got the resolved value"
        );
        lost(call(&host, "fault.exit_mid_call", json!({})).await);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = String::from_utf8_lossy(&captured.0.lock().expect("lock")).into_owned();
            if log.contains("exit_mid_call: exiting with status 3") {
                let line = log
                    .lines()
                    .find(|l| l.contains("fault server starting"))
                    .expect("the startup line was logged");
                assert!(line.contains("airlock_mcp::stderr"), "{line}");
                assert!(
                    line.contains("server=\"fault\"") || line.contains("server=fault"),
                    "{line}"
                );
                assert!(
                    !log.contains("s3cret-value-1234"),
                    "a secret was logged:\n{log}"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "stderr never reached tracing:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

// --- a real server from npm ------------------------------------------------------------

/// The pinned `@modelcontextprotocol/server-everything`.
const EVERYTHING_VERSION: &str = "2026.8.31";

/// Installs server-everything into `$HOME/.cache/airlock/mcp-peers` with npm when the pinned
/// version is not there yet, and returns its binary. Fails (never skips) when npm cannot.
async fn server_everything() -> std::path::PathBuf {
    // Tests in this binary run at once: one installs, the others wait, so none starts a
    // half-installed server (seen on a cold cache: "exited during the handshake").
    static INSTALL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _guard = INSTALL.lock().await;
    let home = std::env::var_os("HOME").expect("HOME is set");
    let dir = Path::new(&home).join(".cache/airlock/mcp-peers");
    let package = dir.join("node_modules/@modelcontextprotocol/server-everything/package.json");
    let installed = std::fs::read_to_string(&package)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .is_some_and(|p| p["version"] == EVERYTHING_VERSION);
    if !installed {
        std::fs::create_dir_all(&dir).expect("create the npm cache dir");
        let spec = format!("@modelcontextprotocol/server-everything@{EVERYTHING_VERSION}");
        let output = tokio::process::Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(&dir)
            .arg(&spec)
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run npm to install {spec}: {e}"));
        assert!(
            output.status.success(),
            "`npm install --prefix {} {spec}` failed ({}); this test needs the npm registry \
             once, then runs offline:\n{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    dir.join("node_modules/.bin/mcp-server-everything")
}

#[tokio::test]
async fn server_everything_over_stdio() {
    within(async {
        let bin = server_everything().await;
        let text = json!({"mcpServers": {
            "everything": {"command": bin, "airlock": {"timeout": "500ms"}}
        }})
        .to_string();
        let host =
            McpTools::connect(parse_servers(Path::new("s.json"), &text).expect("parses")).await;
        match &host.servers()[0].state {
            ServerState::Ready { tools } => assert!(tools.len() >= 13, "{tools:?}"),
            other => panic!("server-everything did not start: {other:?}"),
        }
        let echo = host.describe("everything.echo").expect("echo is listed");
        assert_eq!(
            echo.annotations,
            ToolAnnotations {
                read_only: true,
                destructive: false,
                idempotent: true,
                open_world: false
            }
        );
        assert_eq!(
            call(&host, "everything.echo", json!({"message": "hi"}))
                .await
                .expect("echo answers"),
            json!({"content": [{"type": "text", "text": "Echo: hi"}]})
        );
        let weather = host
            .describe("everything.get-structured-content")
            .expect("listed");
        assert!(weather.output_schema.is_some());
        let structured = call(
            &host,
            "everything.get-structured-content",
            json!({"location": "New York"}),
        )
        .await
        .expect("answers");
        assert!(structured["temperature"].is_number(), "{structured}");
        // It keeps working on a cancelled operation; the late answer is ignored.
        let message = lost(
            call(
                &host,
                "everything.trigger-long-running-operation",
                json!({"duration": 2, "steps": 2}),
            )
            .await,
        );
        assert_eq!(message, "no answer within 500ms; the request was cancelled");
        assert_eq!(
            call(&host, "everything.get-sum", json!({"a": 2, "b": 3}))
                .await
                .expect("get-sum answers")["content"][0]["text"]
                .as_str()
                .map(|t| t.contains('5')),
            Some(true)
        );
    })
    .await;
}

#[tokio::test]
async fn server_everything_over_streamable_http() {
    within(async {
        let bin = server_everything().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // It listens on all interfaces; this test only sends it loopback traffic.
        let mut server = tokio::process::Command::new(&bin)
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start server-everything");
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "server-everything never listened on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let text = json!({"mcpServers": {
            "everything": {"url": format!("http://127.0.0.1:{port}/mcp"),
                           "headers": {"X-Airlock-Test": "${env:HOME}"}}
        }})
        .to_string();
        let host =
            McpTools::connect(parse_servers(Path::new("s.json"), &text).expect("parses")).await;
        match &host.servers()[0].state {
            ServerState::Ready { tools } => assert!(tools.len() >= 13, "{tools:?}"),
            other => panic!("the HTTP connection failed: {other:?}"),
        }
        assert_eq!(
            call(&host, "everything.echo", json!({"message": "over http"}))
                .await
                .expect("echo answers"),
            json!({"content": [{"type": "text", "text": "Echo: over http"}]})
        );
        drop(host);
        server.kill().await.expect("stop server-everything");
    })
    .await;
}

#[tokio::test]
async fn bare_command_names_are_found_on_path_and_missing_ones_named() {
    within(async {
        use airlock_mcp::connection::resolve_command;
        let sh = resolve_command("sh").expect("sh is on PATH");
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        assert_eq!(
            resolve_command("./relative/server").expect("paths are kept"),
            Path::new("./relative/server")
        );
        let error = resolve_command("airlock-surely-not-a-command").expect_err("not found");
        assert!(
            error.starts_with("command `airlock-surely-not-a-command` was not found next to /")
                && error.ends_with(" or on PATH"),
            "{error}"
        );
    })
    .await;
}
