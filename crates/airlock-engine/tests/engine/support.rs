//! Shared fixtures: a temp directory per test with real SQLite files, engines opened on
//! it, a tool host that can hang mid-call, and checks that hold for every task.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_engine::clock::BoxFuture;
use airlock_engine::event::replay;
use airlock_engine::store::{StoreOptions, TaskRecord, ToolCallRecord};
use airlock_engine::workflow::Workflow;
use airlock_engine::{
    BuiltinTools, Clock, Engine, EngineConfig, TaskEvent, ToolError, ToolHost, ToolInfo,
    ToolRequest,
};
use serde_json::{Map, Value};
use tempfile::TempDir;

/// Every async test body runs under this, so a hang fails instead of blocking.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, fut)
        .await
        .expect("the test did not finish in time")
}

/// Polls `check` every 10 ms until it is true (or panics after 10 s).
pub async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn parse(src: &str) -> Workflow {
    airlock_engine::workflow::parse(Path::new("test.toml"), src)
        .unwrap_or_else(|d| panic!("test workflow does not parse:\n{d}"))
}

pub fn inputs(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("inputs must be an object, not {other}"),
    }
}

pub struct Env {
    pub dir: TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("airlock.sqlite")
    }

    pub fn effects_db(&self) -> PathBuf {
        self.dir.path().join("effects.sqlite")
    }

    pub fn config(&self) -> EngineConfig {
        EngineConfig::new(StoreOptions::new(self.db()))
    }

    pub async fn builtin(&self) -> Arc<BuiltinTools> {
        Arc::new(
            BuiltinTools::open(&self.effects_db())
                .await
                .expect("effects db"),
        )
    }

    pub async fn engine(&self, clock: Arc<dyn Clock>) -> Engine {
        let tools = self.builtin().await;
        self.engine_with(self.config(), clock, tools).await
    }

    pub async fn engine_with(
        &self,
        config: EngineConfig,
        clock: Arc<dyn Clock>,
        tools: Arc<dyn ToolHost>,
    ) -> Engine {
        Engine::open(config, clock, tools, None)
            .await
            .expect("engine opens")
    }

    async fn effects_pool(&self) -> sqlx::SqlitePool {
        // Make sure the tables exist even before any tool ran.
        drop(self.builtin().await);
        sqlx::SqlitePool::connect_with(
            sqlx::sqlite::SqliteConnectOptions::new().filename(self.effects_db()),
        )
        .await
        .expect("open effects db")
    }

    /// Rows in the built-in tools' `effects` table (one per `builtin.record` call made).
    pub async fn effects(&self) -> i64 {
        let pool = self.effects_pool().await;
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM effects")
            .fetch_one(&pool)
            .await
            .expect("count effects");
        pool.close().await;
        n
    }

    /// `(value, idempotency_key)` of one `builtin.upsert` key.
    pub async fn kv(&self, key: &str) -> Option<(String, String)> {
        let pool = self.effects_pool().await;
        let row = sqlx::query_as("SELECT value, idempotency_key FROM kv WHERE key = ?")
            .bind(key)
            .fetch_optional(&pool)
            .await
            .expect("read kv");
        pool.close().await;
        row
    }

    /// How many times `builtin.fail` was called with this idempotency key.
    pub async fn fail_count(&self, key: &str) -> Option<i64> {
        let pool = self.effects_pool().await;
        let n = sqlx::query_scalar("SELECT count FROM failures WHERE idempotency_key = ?")
            .bind(key)
            .fetch_optional(&pool)
            .await
            .expect("read failures");
        pool.close().await;
        n
    }

    /// Reads one column of an approval straight from the store's file.
    pub async fn approval_decided_by(&self, approval_id: &str) -> Option<String> {
        let pool = sqlx::SqlitePool::connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(self.db())
                .read_only(true),
        )
        .await
        .expect("open store read-only");
        let by: Option<String> =
            sqlx::query_scalar("SELECT decided_by FROM approvals WHERE id = ?")
                .bind(approval_id)
                .fetch_one(&pool)
                .await
                .expect("read approval");
        pool.close().await;
        by
    }
}

/// The task's events, parsed.
pub async fn events(engine: &Engine, task: &str) -> Vec<TaskEvent> {
    engine
        .store()
        .events(task)
        .await
        .expect("events")
        .into_iter()
        .map(|e| serde_json::from_value(e.body).expect("every stored event parses"))
        .collect()
}

pub async fn kinds(engine: &Engine, task: &str) -> Vec<String> {
    engine
        .store()
        .events(task)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

pub async fn task(engine: &Engine, id: &str) -> TaskRecord {
    engine
        .store()
        .task(id)
        .await
        .expect("read task")
        .expect("task exists")
}

pub async fn calls(engine: &Engine, task: &str) -> Vec<ToolCallRecord> {
    engine.store().tool_calls(task).await.expect("tool calls")
}

/// What must hold for every task at every commit: the stored row is the fold of the
/// stored events, the events are numbered 1..=last_seq, and each stored kind matches
/// its body.
pub async fn assert_consistent(engine: &Engine, id: &str) {
    let task = task(engine, id).await;
    let stored = engine.store().events(id).await.expect("events");
    let seqs: Vec<i64> = stored.iter().map(|e| e.seq).collect();
    let expected: Vec<i64> = (1..=task.last_seq).collect();
    assert_eq!(seqs, expected, "event seqs of task {id}");
    let parsed: Vec<TaskEvent> = stored
        .iter()
        .map(|e| {
            let event: TaskEvent =
                serde_json::from_value(e.body.clone()).expect("every stored event parses");
            assert_eq!(event.kind(), e.kind, "stored kind vs body at seq {}", e.seq);
            event
        })
        .collect();
    let folded = replay(&parsed);
    let p = &task.projection;
    // Field by field first, for a readable failure, then the whole.
    assert_eq!(folded.status, p.status, "status");
    assert_eq!(folded.current_state, p.current_state, "current_state");
    assert_eq!(folded.step_no, p.step_no, "step_no");
    assert_eq!(folded.attempt, p.attempt, "attempt");
    assert_eq!(folded.phase, p.phase, "phase");
    assert_eq!(folded.state, p.state, "state");
    assert_eq!(folded.error, p.error, "error");
    assert_eq!(folded.wake_at, p.wake_at, "wake_at");
    assert_eq!(
        folded.recovery_failures, p.recovery_failures,
        "recovery_failures"
    );
    assert_eq!(&folded, p);
}

/// When a wrapped call stops forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hang {
    /// Before the real tool runs: the call made no effect.
    BeforeEffect,
    /// After the real tool ran: the effect is made but its answer never arrives.
    AfterEffect,
}

/// Built-in tools, except that calls to one tool can hang forever (a process that dies
/// mid-call, without killing the test process). Records every call it sees.
pub struct TestTools {
    inner: Arc<BuiltinTools>,
    hang_tool: Option<String>,
    hang: Hang,
    /// How many more calls of `hang_tool` hang (`usize::MAX`: all of them).
    hangs_left: AtomicUsize,
    /// Calls currently hanging.
    pub hanging: AtomicUsize,
    /// `(tool, idempotency_key)` of every call, in order.
    pub seen: Mutex<Vec<(String, String)>>,
}

impl TestTools {
    pub fn new(inner: Arc<BuiltinTools>) -> TestTools {
        TestTools {
            inner,
            hang_tool: None,
            hang: Hang::BeforeEffect,
            hangs_left: AtomicUsize::new(0),
            hanging: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        }
    }

    pub fn hanging_on(inner: Arc<BuiltinTools>, tool: &str, hang: Hang, times: usize) -> TestTools {
        TestTools {
            hang_tool: Some(tool.to_owned()),
            hang,
            hangs_left: AtomicUsize::new(times),
            ..TestTools::new(inner)
        }
    }

    pub fn is_hanging(&self) -> bool {
        self.hanging.load(Ordering::SeqCst) > 0
    }

    pub fn keys(&self) -> Vec<(String, String)> {
        self.seen.lock().expect("seen").clone()
    }

    fn take_hang(&self, tool: &str) -> bool {
        if self.hang_tool.as_deref() != Some(tool) {
            return false;
        }
        self.hangs_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n > 0).then(|| if n == usize::MAX { n } else { n - 1 })
            })
            .is_ok()
    }
}

impl ToolHost for TestTools {
    fn tools(&self) -> Vec<ToolInfo> {
        self.inner.tools()
    }

    fn call<'a>(&'a self, r: ToolRequest<'a>) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            if let Ok(mut seen) = self.seen.lock() {
                seen.push((r.tool.to_owned(), r.idempotency_key.to_owned()));
            }
            let hang = self.take_hang(r.tool);
            if hang && self.hang == Hang::BeforeEffect {
                self.hanging.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await;
            }
            let result = self.inner.call(r).await;
            if hang {
                self.hanging.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await;
            }
            result
        })
    }
}
