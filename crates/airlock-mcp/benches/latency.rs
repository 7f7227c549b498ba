//! What the orchestrator adds to a tool call, against a direct rmcp call to the same kind of
//! stdio server (the bundled fault server's `ok` tool, which echoes its arguments).
//!
//!     cargo bench -p airlock-mcp --bench latency
//!
//! 1. direct: an rmcp client over a child process's stdio, `call_tool` in a loop;
//! 2. adapter: `McpTools::call` (server lookup, idempotency key in arguments and `_meta`,
//!    timeout, result conversion) on its own child process;
//! 3. engine: tasks of a workflow made of `tool` states calling it, on a SQLite store with
//!    durability FULL; per step, which includes the durable commits of intent and outcome.
//!
//! Direct and adapter calls alternate in blocks so drift hits both alike. Prints one line
//! per measurement:
//!
//!     peer=airlock test=mcp_added_latency calls=... direct_p50_us=... adapter_p50_us=... added_p50_us=...
//!     peer=airlock test=engine_tool_step steps=... step_p50_us=... ...

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock_engine::store::{StoreOptions, TaskStatus};
use airlock_engine::tool_host::{ToolHost, ToolHosts, ToolRequest};
use airlock_engine::{Engine, EngineConfig, SystemClock};
use airlock_mcp::{McpTools, parse_servers};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, RequestMetaObject};
use serde_json::{Value, json};

const FAULT: &str = env!("CARGO_BIN_EXE_airlock-mcp-fault-server");
const CALLS: usize = 2000;
const BLOCK: usize = 100;
const WARMUP: usize = 200;
const STATES: usize = 50;
const TASKS: usize = 24;
const KEY: &str = "bench-task/1/0";

fn percentile(sorted: &[Duration], p: f64) -> u128 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_micros()
}

fn mean_us(samples: &[Duration]) -> u128 {
    samples.iter().map(Duration::as_micros).sum::<u128>() / samples.len() as u128
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    // --- direct: rmcp over the child's stdio ---------------------------------------------
    let mut child = tokio::process::Command::new(FAULT)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the fault server");
    let stdout = child.stdout.take().expect("stdout");
    let stdin = child.stdin.take().expect("stdin");
    let direct = ().serve((stdout, stdin)).await.expect("the direct handshake");
    let direct_call = || {
        let mut params = CallToolRequestParams::new("ok").with_arguments(
            json!({"message": "hi", "idempotency_key": KEY})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        let mut meta = RequestMetaObject::new();
        meta.0.insert(
            "dev.airlock/idempotency_key".into(),
            Value::String(KEY.into()),
        );
        params.meta = Some(meta);
        let peer = direct.peer().clone();
        async move {
            let result = peer.call_tool(params).await.expect("the direct call");
            assert_ne!(result.is_error, Some(true));
        }
    };

    // --- adapter: McpTools on its own child ----------------------------------------------
    let text = json!({"mcpServers": {"fault": {"command": FAULT}}}).to_string();
    let config = parse_servers(Path::new("bench.json"), &text).expect("parses");
    let tools = Arc::new(McpTools::connect(config).await);
    let args = json!({"message": "hi"});
    let adapter_call = || {
        let tools = tools.clone();
        let args = args.clone();
        async move {
            let result = tools
                .call(ToolRequest {
                    tool: "fault.ok",
                    args: &args,
                    idempotency_key: KEY,
                    task_id: "bench-task",
                    progress: None,
                })
                .await
                .expect("the adapter call");
            assert_eq!(result["arguments"]["idempotency_key"], KEY);
        }
    };

    for _ in 0..WARMUP {
        direct_call().await;
        adapter_call().await;
    }
    let mut direct_samples = Vec::with_capacity(CALLS);
    let mut adapter_samples = Vec::with_capacity(CALLS);
    while direct_samples.len() < CALLS {
        for _ in 0..BLOCK {
            let t = Instant::now();
            direct_call().await;
            direct_samples.push(t.elapsed());
        }
        for _ in 0..BLOCK {
            let t = Instant::now();
            adapter_call().await;
            adapter_samples.push(t.elapsed());
        }
    }
    direct_samples.sort();
    adapter_samples.sort();
    let (d50, d99) = (
        percentile(&direct_samples, 0.5),
        percentile(&direct_samples, 0.99),
    );
    let (a50, a99) = (
        percentile(&adapter_samples, 0.5),
        percentile(&adapter_samples, 0.99),
    );
    println!(
        "peer=airlock test=mcp_added_latency calls={CALLS} direct_p50_us={d50} direct_p99_us={d99} \
         adapter_p50_us={a50} adapter_p99_us={a99} added_p50_us={} added_p99_us={} \
         direct_mean_us={} adapter_mean_us={}",
        a50 as i128 - d50 as i128,
        a99 as i128 - d99 as i128,
        mean_us(&direct_samples),
        mean_us(&adapter_samples),
    );
    drop(direct);
    let _ = child.kill().await;

    // --- engine: tool steps with durable commits -------------------------------------------
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Engine::open(
        EngineConfig::new(StoreOptions::new(dir.path().join("bench.sqlite"))),
        Arc::new(SystemClock),
        Arc::new(ToolHosts::new().with(tools.clone() as Arc<dyn ToolHost>)),
        None,
    )
    .await
    .expect("the engine opens");
    let mut source = String::from("name = \"bench-steps\"\nstart = \"s0\"\n");
    for i in 0..STATES {
        let next = if i + 1 == STATES {
            "done".to_owned()
        } else {
            format!("s{}", i + 1)
        };
        source.push_str(&format!(
            "\n[states.s{i}]\nkind = \"tool\"\ntool = \"fault.ok\"\nargs = {{ message = \"'step {i}'\" }}\nnext = \"{next}\"\n"
        ));
    }
    source.push_str("\n[states.done]\nkind = \"end\"\nstatus = \"succeeded\"\n");
    let workflow = airlock_engine::workflow::parse(Path::new("bench.toml"), &source)
        .unwrap_or_else(|d| panic!("the bench workflow does not parse:\n{d}"));
    let mut per_step = Vec::with_capacity(TASKS);
    // The first task pins the tool and warms the caches; it is not counted.
    for round in 0..=TASKS {
        let t = Instant::now();
        let id = engine
            .start_task(&workflow, serde_json::Map::new(), "bench", None)
            .await
            .expect("start");
        let task = engine.run_task(&id).await.expect("run");
        let elapsed = t.elapsed();
        assert_eq!(task.projection.status, TaskStatus::Succeeded);
        if round > 0 {
            per_step.push(elapsed / STATES as u32);
        }
    }
    per_step.sort();
    let (s50, s99) = (percentile(&per_step, 0.5), percentile(&per_step, 0.99));
    println!(
        "peer=airlock test=engine_tool_step steps={} tasks={TASKS} states_per_task={STATES} \
         durability=full step_p50_us={s50} step_p99_us={s99} step_mean_us={} \
         over_adapter_p50_us={}",
        TASKS * STATES,
        mean_us(&per_step),
        s50 as i128 - a50 as i128,
    );
    engine.close().await.expect("close");
}
