//! Third-party MCP servers from npm driven through the adapter and the engine: real
//! processes (`@modelcontextprotocol/server-filesystem` over stdio, `server-everything` over
//! stdio and Streamable HTTP), a real SQLite store in a temp dir, and small TOML workflows
//! whose `tool` states call them.
//!
//! The servers are installed with npm into `$HOME/.cache/airlock/mcp-peers` when the pinned
//! versions are missing; a failing npm fails the test with npm's message (never a skip).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock_engine::clock::BoxFuture;
use airlock_engine::event::replay;
use airlock_engine::store::{
    StoreOptions, TaskRecord, TaskStatus, ToolCallOutcome, ToolCallRecord,
};
use airlock_engine::tool_host::{Risk, ToolError, ToolHost, ToolHosts, ToolInfo, ToolRequest};
use airlock_engine::{Engine, EngineConfig, SystemClock, TaskEvent};
use airlock_mcp::{McpTools, ServerState, parse_servers};
use serde_json::{Value, json};

const EVERYTHING_VERSION: &str = "2026.8.31";
const FILESYSTEM_VERSION: &str = "2026.8.31";

/// Every test runs under this limit.
async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(90), f)
        .await
        .expect("the test did not finish within 90 s")
}

// --- installing the peers --------------------------------------------------------------

static INSTALL: Mutex<()> = Mutex::new(());

fn peers_dir() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    Path::new(&home).join(".cache/airlock/mcp-peers")
}

/// Installs the pinned packages that are missing (one npm run; tests in this binary wait for
/// each other) and returns the `node_modules/.bin` folder.
fn install_peers() -> PathBuf {
    let _guard = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = peers_dir();
    let wanted = [
        (
            "@modelcontextprotocol/server-everything",
            EVERYTHING_VERSION,
        ),
        (
            "@modelcontextprotocol/server-filesystem",
            FILESYSTEM_VERSION,
        ),
    ];
    let missing: Vec<String> = wanted
        .iter()
        .filter(|(name, version)| {
            let package = dir.join("node_modules").join(name).join("package.json");
            !std::fs::read_to_string(&package)
                .ok()
                .and_then(|text| serde_json::from_str::<Value>(&text).ok())
                .is_some_and(|p| p["version"] == *version)
        })
        .map(|(name, version)| format!("{name}@{version}"))
        .collect();
    if !missing.is_empty() {
        std::fs::create_dir_all(&dir).expect("create the npm cache dir");
        let output = std::process::Command::new("npm")
            .arg("install")
            .arg("--no-audit")
            .arg("--no-fund")
            .arg("--prefix")
            .arg(&dir)
            .args(&missing)
            .output()
            .unwrap_or_else(|e| panic!("cannot run npm to install {missing:?}: {e}"));
        assert!(
            output.status.success(),
            "`npm install --prefix {} {}` failed ({}); these tests need the npm registry once, \
             then run offline:\n{}",
            dir.display(),
            missing.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    dir.join("node_modules/.bin")
}

// --- the engine ------------------------------------------------------------------------

struct Harness {
    engine: Engine,
    _dir: tempfile::TempDir,
}

async fn harness(tools: Arc<dyn ToolHost>) -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("airlock.sqlite");
    let engine = Engine::open(
        EngineConfig::new(StoreOptions::new(db)),
        Arc::new(SystemClock),
        Arc::new(ToolHosts::new().with(tools)),
        None,
    )
    .await
    .expect("the engine opens");
    Harness { engine, _dir: dir }
}

impl Harness {
    /// Runs `workflow` to its end (or until it waits for a person).
    async fn run(&self, workflow: &str, inputs: Value) -> (TaskRecord, Vec<ToolCallRecord>) {
        let wf = airlock_engine::workflow::parse(Path::new("peer-test.toml"), workflow)
            .unwrap_or_else(|d| panic!("the test workflow does not parse:\n{d}"));
        let Value::Object(inputs) = inputs else {
            panic!("inputs must be an object")
        };
        let id = self
            .engine
            .start_task(&wf, inputs, "peer-test", None)
            .await
            .expect("the task starts");
        let task = self.engine.run_task(&id).await.expect("the task runs");
        let calls = self
            .engine
            .store()
            .tool_calls(&id)
            .await
            .expect("the ledger reads");
        (task, calls)
    }

    /// The error the step in `state` failed with.
    async fn step_error(&self, task: &TaskRecord, state: &str) -> String {
        let steps = self
            .engine
            .store()
            .steps(&task.id)
            .await
            .expect("steps read");
        let step = steps
            .iter()
            .find(|s| s.state_name == state)
            .unwrap_or_else(|| panic!("no step in `{state}`: {steps:?}"));
        assert_eq!(step.outcome.as_deref(), Some("failed"), "{step:?}");
        step.error.clone().unwrap_or_default()
    }
}

fn ledger(calls: &[ToolCallRecord]) -> Vec<(&str, Option<ToolCallOutcome>)> {
    calls.iter().map(|c| (c.tool.as_str(), c.outcome)).collect()
}

async fn connect(servers: Value) -> McpTools {
    let text = json!({ "mcpServers": servers }).to_string();
    let tools =
        McpTools::connect(parse_servers(Path::new("servers.json"), &text).expect("parses")).await;
    for status in tools.servers() {
        assert!(
            matches!(status.state, ServerState::Ready { .. }),
            "server `{}` did not start: {:?}",
            status.name,
            status.state
        );
    }
    tools
}

// --- server-filesystem -----------------------------------------------------------------

const WRITE_THEN_READ: &str = r#"
name = "write-then-read"
start = "write"

[inputs.path]
type = "string"

[inputs.text]
type = "string"

[states.write]
kind = "tool"
tool = "filesystem.write_file"
args = { path = "inputs.path", content = "inputs.text" }
next = "read"
on_error = "refused"

[states.read]
kind = "tool"
tool = "filesystem.read_text_file"
args = { path = "inputs.path" }
next = "verify"

[states.verify]
kind = "check"
assert = "state.read.content == inputs.text"
next = "done"
on_fail = "mismatch"

[states.done]
kind = "end"
status = "succeeded"

[states.mismatch]
kind = "end"
status = "failed"

[states.refused]
kind = "end"
status = "failed"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_filesystem_writes_and_reads_back_through_the_engine() {
    within(async {
        let bin = install_peers();
        let allowed = tempfile::tempdir().expect("temp dir");
        let outside = tempfile::tempdir().expect("temp dir");
        // The server compares real paths; /tmp may be a link.
        let allowed_path = allowed.path().canonicalize().expect("canonical path");
        let outside_path = outside.path().canonicalize().expect("canonical path");
        let tools = Arc::new(
            connect(json!({"filesystem": {
                "command": bin.join("mcp-server-filesystem"),
                "args": [allowed_path]
            }}))
            .await,
        );

        // Hints as the server gives them, with MCP's defaults for the absent ones.
        let read = tools.describe("filesystem.read_text_file").expect("listed");
        assert!(read.annotations.read_only && !read.annotations.open_world);
        assert_eq!(read.risk(), Risk::Low);
        assert!(read.output_schema.is_some());
        let write = tools.describe("filesystem.write_file").expect("listed");
        assert!(
            !write.annotations.read_only
                && write.annotations.destructive
                && write.annotations.idempotent
                && !write.annotations.open_world,
            "{:?}",
            write.annotations
        );
        assert_eq!(write.risk(), Risk::High);
        let create = tools
            .describe("filesystem.create_directory")
            .expect("listed");
        assert!(!create.annotations.read_only && !create.annotations.destructive);
        assert_eq!(create.risk(), Risk::Medium);
        let edit = tools.describe("filesystem.edit_file").expect("listed");
        assert!(edit.annotations.destructive && !edit.safe_to_repeat());

        let h = harness(tools.clone()).await;
        let file = allowed_path.join("note.txt");
        let text = "written by an airlock workflow\nsecond line";
        let (task, calls) = h
            .run(WRITE_THEN_READ, json!({"path": file, "text": text}))
            .await;
        assert_eq!(
            task.projection.status,
            TaskStatus::Succeeded,
            "{:?}",
            task.projection
        );
        assert_eq!(task.projection.current_state.as_deref(), Some("done"));
        assert_eq!(task.projection.state["verify"], json!({"passed": true}));
        assert_eq!(task.projection.state["read"], json!({"content": text}));
        assert_eq!(
            ledger(&calls),
            [
                ("filesystem.write_file", Some(ToolCallOutcome::Succeeded)),
                (
                    "filesystem.read_text_file",
                    Some(ToolCallOutcome::Succeeded)
                ),
            ]
        );
        assert_eq!(calls[0].args["path"], json!(file));
        assert!(calls[0].idempotent, "write_file is annotated idempotent");
        assert_eq!(
            std::fs::read_to_string(&file).expect("the file is on disk"),
            text
        );

        // Outside the allowed folder: the server refuses with its own message, nothing is
        // written, and the task takes `on_error`.
        let stray = outside_path.join("escape.txt");
        let (task, calls) = h
            .run(WRITE_THEN_READ, json!({"path": stray, "text": "x"}))
            .await;
        assert_eq!(task.projection.status, TaskStatus::Failed);
        assert_eq!(task.projection.current_state.as_deref(), Some("refused"));
        assert_eq!(
            ledger(&calls),
            [("filesystem.write_file", Some(ToolCallOutcome::Failed))]
        );
        let error = calls[0].error.as_deref().unwrap_or_default();
        assert!(
            error.contains("Access denied - path outside allowed directories"),
            "{error}"
        );
        let step_error = h.step_error(&task, "write").await;
        assert!(step_error.contains("Access denied"), "{step_error}");
        assert!(!stray.exists(), "nothing was written outside");
        h.engine.close().await.expect("close");
    })
    .await;
}

// --- server-everything -----------------------------------------------------------------

const ECHO_AND_WEATHER: &str = r#"
name = "echo-and-weather"
start = "echo"

[inputs.message]
type = "string"

[states.echo]
kind = "tool"
tool = "everything.echo"
args = { message = "inputs.message" }
next = "weather"

[states.weather]
kind = "tool"
tool = "everything.get-structured-content"
args = { location = "'Chicago'" }
next = "verify"
on_error = "bad_result"

[states.verify]
kind = "check"
assert = "state.echo.content[0].text == 'Echo: ' + inputs.message && state.weather.conditions != ''"
next = "done"
on_fail = "mismatch"

[states.done]
kind = "end"
status = "succeeded"

[states.mismatch]
kind = "end"
status = "failed"

[states.bad_result]
kind = "end"
status = "failed"
"#;

/// A state `timeout` shorter than the operation. `idempotent` is left to the tool's
/// annotations (`{}`) or set in the state.
fn long_running(idempotent: Option<bool>) -> String {
    let line = idempotent.map_or(String::new(), |i| format!("idempotent = {i}\n"));
    format!(
        r#"
name = "long-running"
start = "long"

[states.long]
kind = "tool"
tool = "everything.trigger-long-running-operation"
args = {{ duration = 3, steps = 3 }}
timeout = "400ms"
{line}next = "done"
on_error = "gave_up"

[states.done]
kind = "end"
status = "succeeded"

[states.gave_up]
kind = "end"
status = "failed"
"#
    )
}

/// Wraps a host and makes one tool's output schema stricter than the server's, to show that
/// the engine checks the server's `structuredContent` against the schema it is given.
struct StricterSchema {
    inner: Arc<McpTools>,
    tool: &'static str,
    required: &'static str,
}

impl StricterSchema {
    fn adjust(&self, mut info: ToolInfo) -> ToolInfo {
        if info.name == self.tool
            && let Some(Value::Object(schema)) = info.output_schema.as_mut()
        {
            let required = schema.entry("required").or_insert_with(|| json!([]));
            if let Value::Array(list) = required {
                list.push(json!(self.required));
            }
        }
        info
    }
}

impl ToolHost for StricterSchema {
    fn tools(&self) -> Vec<ToolInfo> {
        self.inner
            .tools()
            .into_iter()
            .map(|t| self.adjust(t))
            .collect()
    }
    fn describe(&self, tool: &str) -> Option<ToolInfo> {
        self.inner.describe(tool).map(|t| self.adjust(t))
    }
    fn call<'a>(&'a self, request: ToolRequest<'a>) -> BoxFuture<'a, Result<Value, ToolError>> {
        self.inner.call(request)
    }
}

/// The JSON-RPC messages the client sent, as captured on the way to the server.
type Captured = Arc<dyn Fn() -> Vec<Value> + Send + Sync>;

/// The same checks over either transport.
async fn exercise_everything(tools: Arc<McpTools>, sent: Captured) {
    let long = tools
        .describe("everything.trigger-long-running-operation")
        .expect("listed");
    // Annotated read-only and idempotent: safe to repeat, so a lost call is a failed attempt
    // (retried per the state's policy), not an in-doubt one.
    assert!(long.annotations.read_only && long.annotations.idempotent);
    assert!(long.safe_to_repeat());
    let weather = tools
        .describe("everything.get-structured-content")
        .expect("listed");
    let schema = weather
        .output_schema
        .clone()
        .expect("it has an outputSchema");
    assert!(
        schema["required"].as_array().is_some_and(|r| !r.is_empty()),
        "{schema}"
    );

    let h = harness(tools.clone()).await;
    let (task, calls) = h
        .run(ECHO_AND_WEATHER, json!({"message": "from a workflow"}))
        .await;
    assert_eq!(
        task.projection.status,
        TaskStatus::Succeeded,
        "{:?}",
        task.projection
    );
    assert_eq!(
        task.projection.state["echo"],
        json!({"content": [{"type": "text", "text": "Echo: from a workflow"}]})
    );
    let result = &task.projection.state["weather"];
    for key in schema["required"].as_array().into_iter().flatten() {
        let key = key.as_str().expect("a property name");
        assert!(
            result.get(key).is_some(),
            "`{key}` is missing from {result}"
        );
    }
    assert_eq!(
        ledger(&calls),
        [
            ("everything.echo", Some(ToolCallOutcome::Succeeded)),
            (
                "everything.get-structured-content",
                Some(ToolCallOutcome::Succeeded)
            ),
        ]
    );
    // The definition the engine pinned on first use is the server's, outputSchema included.
    let pin = h
        .engine
        .store()
        .tool_pin("everything.get-structured-content")
        .await
        .expect("reads")
        .expect("pinned on first use");
    assert_eq!(pin.definition["output_schema"], schema);

    // The same server result against a schema it does not meet: the call happened (the
    // ledger says so) but the step fails and the task takes `on_error`.
    let strict = harness(Arc::new(StricterSchema {
        inner: tools.clone(),
        tool: "everything.get-structured-content",
        required: "pressure_hpa",
    }))
    .await;
    let (task, calls) = strict.run(ECHO_AND_WEATHER, json!({"message": "m"})).await;
    assert_eq!(task.projection.current_state.as_deref(), Some("bad_result"));
    let error = strict.step_error(&task, "weather").await;
    assert!(
        error.contains("does not match its output schema") && error.contains("pressure_hpa"),
        "{error}"
    );
    assert_eq!(calls[1].outcome, Some(ToolCallOutcome::Succeeded));
    strict.engine.close().await.expect("close");

    // Longer than the state's timeout, as annotated (idempotent): the engine gives the call
    // up as a failed attempt and takes `on_error`.
    let started = Instant::now();
    let (task, calls) = h.run(&long_running(None), json!({})).await;
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "the timeout did not cut the 3 s operation short: {:?}",
        started.elapsed()
    );
    assert_eq!(task.projection.status, TaskStatus::Failed);
    assert_eq!(task.projection.current_state.as_deref(), Some("gave_up"));
    assert_eq!(calls.len(), 1);
    assert!(calls[0].idempotent);
    assert_eq!(calls[0].outcome, Some(ToolCallOutcome::Failed));
    assert_eq!(
        calls[0].error.as_deref(),
        Some("no answer from the tool: no answer within 400ms")
    );

    // The same call with the state saying it is not idempotent: in doubt, for a person.
    let (task, calls) = h.run(&long_running(Some(false)), json!({})).await;
    assert_eq!(
        task.projection.status,
        TaskStatus::InDoubt,
        "{:?}",
        task.projection
    );
    assert_eq!(calls.len(), 1);
    assert!(!calls[0].idempotent);
    assert_eq!(calls[0].outcome, Some(ToolCallOutcome::InDoubt));
    assert_eq!(calls[0].error.as_deref(), Some("no answer within 400ms"));

    // Both cancellations reached the server: one `notifications/cancelled` per abandoned
    // request id, and the idempotency key went along in `_meta`.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let messages = sent();
        let long_calls: Vec<&Value> = messages
            .iter()
            .filter(|m| {
                m["method"] == "tools/call"
                    && m["params"]["name"] == "trigger-long-running-operation"
            })
            .collect();
        let cancelled: Vec<&Value> = messages
            .iter()
            .filter(|m| m["method"] == "notifications/cancelled")
            .map(|m| &m["params"]["requestId"])
            .collect();
        let all_cancelled =
            long_calls.len() == 2 && long_calls.iter().all(|c| cancelled.contains(&&c["id"]));
        if all_cancelled {
            let keys: Vec<&Value> = long_calls
                .iter()
                .map(|c| &c["params"]["_meta"]["dev.airlock/idempotency_key"])
                .collect();
            assert!(
                keys.iter().all(|k| k.is_string()) && keys[0] != keys[1],
                "{keys:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected a notifications/cancelled for each of {long_calls:?}; cancelled: {cancelled:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The server's late answers are ignored and the session keeps working.
    tokio::time::sleep(Duration::from_millis(2700)).await;
    let (task, _) = h.run(ECHO_AND_WEATHER, json!({"message": "after"})).await;
    assert_eq!(
        task.projection.status,
        TaskStatus::Succeeded,
        "{:?}",
        task.projection
    );
    assert!(
        matches!(tools.servers()[0].state, ServerState::Ready { .. }),
        "{:?}",
        tools.servers()
    );

    // The server's `notifications/progress` for a call reach the engine, which records them
    // on the step while the call is under way.
    let (task, calls) = h.run(PROGRESS, json!({})).await;
    assert_eq!(
        task.projection.status,
        TaskStatus::Succeeded,
        "{:?}",
        task.projection
    );
    assert_eq!(calls[0].outcome, Some(ToolCallOutcome::Succeeded));
    let events = h.engine.store().events(&task.id).await.expect("events");
    let parsed: Vec<TaskEvent> = events
        .iter()
        .map(|e| serde_json::from_value(e.body.clone()).expect("every stored event parses"))
        .collect();
    let progress: Vec<(f64, Option<f64>)> = parsed
        .iter()
        .filter_map(|e| match e {
            TaskEvent::ToolProgress {
                call_id,
                progress,
                total,
                ..
            } if *call_id == calls[0].id => Some((*progress, *total)),
            _ => None,
        })
        .collect();
    // Reports come 500 ms apart, so the first two are committed mid-call; the third comes
    // with the answer and is recorded when it is heard before it.
    assert!(
        progress.len() >= 2
            && progress[..2] == [(1.0, Some(3.0)), (2.0, Some(3.0))]
            && progress.windows(2).all(|w| w[0].0 < w[1].0)
            && progress.iter().all(|p| p.1 == Some(3.0)),
        "{progress:?}"
    );
    assert_eq!(replay(&parsed), task.projection);
    h.engine.close().await.expect("close");
}

/// `trigger-long-running-operation` reports its progress (three steps, 500 ms apart) when
/// the request carries a `progressToken`, which rmcp gives every request.
const PROGRESS: &str = r#"
name = "progress"
start = "long"

[states.long]
kind = "tool"
tool = "everything.trigger-long-running-operation"
args = { duration = 1.5, steps = 3 }
timeout = "20s"
next = "done"

[states.done]
kind = "end"
status = "succeeded"
"#;

/// Newline-delimited JSON-RPC in a file.
fn read_json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_everything_over_stdio_through_the_engine() {
    within(async {
        let bin = install_peers().join("mcp-server-everything");
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("client-to-server.jsonl");
        // `tee` keeps a copy of everything the client writes to the server's stdin.
        let tools = Arc::new(
            connect(json!({"everything": {
                "command": "sh",
                "args": ["-c", "tee -a \"$0\" | \"$1\"", log, bin]
            }}))
            .await,
        );
        let sent: Captured = Arc::new(move || read_json_lines(&log));
        exercise_everything(tools.clone(), sent).await;
        drop(tools);
    })
    .await;
}

/// A loopback TCP relay in front of an HTTP server that keeps a copy of the bytes the
/// client sent.
async fn recording_relay(target: u16) -> (u16, Arc<Mutex<Vec<u8>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let record = Arc::new(Mutex::new(Vec::new()));
    let copy = record.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let record = copy.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let Ok(outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                else {
                    return;
                };
                let (mut client_read, mut client_write) = inbound.into_split();
                let (mut server_read, mut server_write) = outbound.into_split();
                let upstream = async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        match client_read.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                record.lock().expect("lock").extend_from_slice(&buf[..n]);
                                if server_write.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = server_write.shutdown().await;
                };
                let downstream = async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                    let _ = client_write.shutdown().await;
                };
                tokio::join!(upstream, downstream);
            });
        }
    });
    (port, record)
}

/// The JSON-RPC messages in recorded HTTP request bodies (JSON bodies start with `{` or `[`
/// after the blank line; chunked bodies are not used by the client for small messages).
fn jsonrpc_in_http(bytes: &[u8]) -> Vec<Value> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    for piece in text.split("\r\n\r\n").skip(1) {
        let mut stream = serde_json::Deserializer::from_str(piece).into_iter::<Value>();
        match stream.next() {
            Some(Ok(Value::Array(batch))) => out.extend(batch),
            Some(Ok(message)) => out.push(message),
            _ => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_everything_over_streamable_http_through_the_engine() {
    within(async {
        let bin = install_peers().join("mcp-server-everything");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // It listens on all interfaces; this test only ever sends it loopback traffic.
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
        let (relay, record) = recording_relay(port).await;
        let tools = Arc::new(
            connect(json!({"everything": {"url": format!("http://127.0.0.1:{relay}/mcp")}})).await,
        );
        let sent: Captured = Arc::new(move || jsonrpc_in_http(&record.lock().expect("lock")));
        exercise_everything(tools.clone(), sent).await;
        drop(tools);
        server.kill().await.expect("stop server-everything");
    })
    .await;
}
