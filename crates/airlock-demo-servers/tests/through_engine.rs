//! The bundled servers driven through the whole engine: the demo workspace's support
//! refund workflow against a real `airlock-demo-support` process, including an engine that
//! stops after the server made the refund but before the outcome was recorded.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use airlock_engine::clock::BoxFuture;
use airlock_engine::store::{MetricsFilter, StoreOptions, TaskFilter, TaskStatus, ToolCallOutcome};
use airlock_engine::{
    Engine, EngineConfig, ScriptedModel, SystemClock, ToolError, ToolHost, ToolHosts, ToolInfo,
    ToolRequest,
};
use airlock_mcp::{McpTools, ServerConfig, ServersConfig};
use serde_json::{Value, json};

fn demo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workspace/demo")
}

fn workflow() -> airlock_engine::workflow::Workflow {
    airlock_engine::workflow::load(&demo().join("support-refund.toml")).unwrap()
}

async fn support(dir: &Path) -> Arc<McpTools> {
    let db = dir.join("support.sqlite");
    let db = db.to_str().unwrap();
    let mut config = ServersConfig::default();
    config.servers.insert(
        "support".into(),
        ServerConfig::stdio(env!("CARGO_BIN_EXE_airlock-demo-support"), &["--db", db]),
    );
    Arc::new(McpTools::connect(config).await)
}

async fn engine(dir: &Path, tools: Arc<dyn ToolHost>) -> Engine {
    Engine::open(
        EngineConfig::new(StoreOptions::new(dir.join("airlock.sqlite"))),
        Arc::new(SystemClock),
        Arc::new(ToolHosts::new().with(tools)),
        Some(Arc::new(
            ScriptedModel::load(&demo().join("models")).unwrap(),
        )),
    )
    .await
    .unwrap()
}

async fn refunds(dir: &Path, order: &str) -> Vec<i64> {
    let pool = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.join("support.sqlite"))
            .read_only(true),
    )
    .await
    .unwrap();
    sqlx::query_scalar("SELECT amount_cents FROM refunds WHERE order_id = ? ORDER BY id")
        .bind(order)
        .fetch_all(&pool)
        .await
        .unwrap()
}

fn inputs(order: &str, cents: i64) -> serde_json::Map<String, Value> {
    json!({ "order_id": order, "amount_cents": cents })
        .as_object()
        .cloned()
        .unwrap()
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("the test did not finish in time")
}

#[tokio::test]
async fn a_small_refund_runs_end_to_end_and_its_outcome_is_checked() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path(), support(dir.path()).await).await;
        let before = refunds(dir.path(), "ORD-5001").await;
        let id = engine
            .start_task(&workflow(), inputs("ORD-5001", 1500), "ada", None)
            .await
            .unwrap();
        let task = engine.run_task(&id).await.unwrap();
        assert_eq!(
            task.projection.status,
            TaskStatus::Succeeded,
            "{:?}",
            task.projection.error
        );
        assert_eq!(task.projection.state["done"]["passed"], true);
        let after = refunds(dir.path(), "ORD-5001").await;
        assert_eq!(after.len(), before.len() + 1);
        assert_eq!(after.last(), Some(&1500));
        // Every call is in the ledger with its outcome; the refund carried the engine's key.
        let calls = engine.store().tool_calls(&id).await.unwrap();
        let tools: Vec<_> = calls.iter().map(|c| c.tool.as_str()).collect();
        assert_eq!(
            tools,
            [
                "support.get_order",
                "support.issue_refund",
                // the scripted model's proposals in the agent state, checked the same way
                "support.get_order",
                "support.get_customer",
                // the post-condition's read, in the ledger like any call
                "support.get_order",
            ]
        );
        let note = task.projection.state["draft_note"]["note"]
            .as_str()
            .unwrap();
        assert!(
            note.contains("refunded $15.00 on your order ORD-5001"),
            "{note}"
        );
        assert!(
            calls
                .iter()
                .all(|c| c.outcome == Some(ToolCallOutcome::Succeeded))
        );
        assert!(
            calls[1].idempotent,
            "issue_refund is annotated idempotent (it takes a key)"
        );
    })
    .await;
}

#[tokio::test]
async fn a_large_refund_waits_for_a_controller_and_too_much_is_refused() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path(), support(dir.path()).await).await;
        let before = refunds(dir.path(), "ORD-5002").await.len();
        let id = engine
            .start_task(&workflow(), inputs("ORD-5002", 6000), "ada", None)
            .await
            .unwrap();
        let waiting = engine.run_task(&id).await.unwrap();
        assert_eq!(waiting.projection.status, TaskStatus::WaitingApproval);
        assert_eq!(
            refunds(dir.path(), "ORD-5002").await.len(),
            before,
            "nothing before approval"
        );
        let approval = engine.store().pending_approvals().await.unwrap().remove(0);
        assert!(
            approval.prompt.contains("Refund $60.00 on order ORD-5002")
                && approval.prompt.contains("The order total was $"),
            "{}",
            approval.prompt
        );
        engine
            .decide_approval(&approval.id, true, "carol", None)
            .await
            .unwrap();
        let done = engine.run_task(&id).await.unwrap();
        assert_eq!(
            done.projection.status,
            TaskStatus::Succeeded,
            "{:?}",
            done.projection.error
        );
        assert_eq!(refunds(dir.path(), "ORD-5002").await.len(), before + 1);

        let id = engine
            .start_task(&workflow(), inputs("ORD-5002", 10_000_000), "ada", None)
            .await
            .unwrap();
        let refused = engine.run_task(&id).await.unwrap();
        assert_eq!(
            refused.projection.current_state.as_deref(),
            Some("too_much")
        );
        assert_eq!(refunds(dir.path(), "ORD-5002").await.len(), before + 1);
    })
    .await;
}

/// Passes calls through, but after `issue_refund` has been made it never answers: the
/// server did the refund, the engine never learns of it (as if it crashed right then).
struct LoseTheRefundAnswer {
    inner: Arc<McpTools>,
    made: AtomicBool,
}

impl ToolHost for LoseTheRefundAnswer {
    fn tools(&self) -> Vec<ToolInfo> {
        self.inner.tools()
    }

    fn describe(&self, tool: &str) -> Option<ToolInfo> {
        self.inner.describe(tool)
    }

    fn call<'a>(&'a self, r: ToolRequest<'a>) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let is_refund = r.tool == "support.issue_refund";
            let result = self.inner.call(r).await;
            if is_refund {
                self.made.store(true, Ordering::SeqCst);
                std::future::pending::<()>().await;
            }
            result
        })
    }
}

#[tokio::test]
async fn an_engine_that_dies_after_the_refund_never_refunds_twice() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let before = {
            let _warm = support(dir.path()).await; // seeds the database
            refunds(dir.path(), "ORD-5003").await.len()
        };
        let lossy = Arc::new(LoseTheRefundAnswer {
            inner: support(dir.path()).await,
            made: AtomicBool::new(false),
        });
        let first = engine(dir.path(), lossy.clone()).await;
        let id = first
            .start_task(&workflow(), inputs("ORD-5003", 2000), "ada", None)
            .await
            .unwrap();
        let run = {
            let first = first.clone();
            let id = id.clone();
            tokio::spawn(async move { first.run_task(&id).await })
        };
        while !lossy.made.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        run.abort();
        first.close().await.unwrap();
        assert_eq!(
            refunds(dir.path(), "ORD-5003").await.len(),
            before + 1,
            "the server made the refund"
        );

        // A new engine finds the intent without an outcome; the tool is idempotent, so the
        // call is made again with the same key and the server answers from its record.
        let second = engine(dir.path(), support(dir.path()).await).await;
        second.run_until_idle().await.unwrap();
        let task = second.find_task(&id).await.unwrap();
        assert_eq!(
            task.projection.status,
            TaskStatus::Succeeded,
            "{:?}",
            task.projection.error
        );
        assert_eq!(
            refunds(dir.path(), "ORD-5003").await.len(),
            before + 1,
            "refunded once, not twice"
        );
        let refund_calls: Vec<_> = second
            .store()
            .tool_calls(&id)
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.tool == "support.issue_refund")
            .collect();
        assert_eq!(
            refund_calls.len(),
            1,
            "one ledger row, re-made under the same key"
        );
        assert_eq!(refund_calls[0].outcome, Some(ToolCallOutcome::Succeeded));
        assert_eq!(task.projection.state["done"]["passed"], true);
    })
    .await;
}

/// Passes calls through; right after the task's refund, another clerk refunds 1.00 more on
/// the same order through the same real server (a concurrent change the workflow never
/// sees). Every step of the task succeeds; the order no longer shows what it should.
struct AnotherClerkRefundsToo {
    inner: Arc<McpTools>,
}

impl ToolHost for AnotherClerkRefundsToo {
    fn tools(&self) -> Vec<ToolInfo> {
        self.inner.tools()
    }

    fn describe(&self, tool: &str) -> Option<ToolInfo> {
        self.inner.describe(tool)
    }

    fn call<'a>(&'a self, r: ToolRequest<'a>) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let refund = (r.tool == "support.issue_refund").then(|| r.args.clone());
            let result = self.inner.call(r.clone()).await;
            if let Some(mut args) = refund {
                args["amount_cents"] = json!(100);
                args["reason"] = json!("goodwill, by another clerk");
                let clerk = ToolRequest {
                    tool: "support.issue_refund",
                    args: &args,
                    idempotency_key: "another-clerk/1",
                    task_id: "outside-airlock",
                    progress: None,
                };
                self.inner.call(clerk).await.unwrap();
            }
            result
        })
    }
}

#[tokio::test]
async fn every_step_succeeds_but_the_order_is_wrong_so_the_outcome_fails() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let host = Arc::new(AnotherClerkRefundsToo {
            inner: support(dir.path()).await,
        });
        let engine = engine(dir.path(), host).await;
        let before = refunds(dir.path(), "ORD-5001").await;
        let id = engine
            .start_task(&workflow(), inputs("ORD-5001", 1500), "ada", None)
            .await
            .unwrap();
        let task = engine.run_task(&id).await.unwrap();

        // The refund and the other clerk's are both on the order.
        let after = refunds(dir.path(), "ORD-5001").await;
        assert_eq!(after[before.len()..], [1500, 100]);
        // Every step succeeded, every call too ...
        let steps = engine.store().steps(&id).await.unwrap();
        assert!(
            steps.iter().all(|s| s.outcome.as_deref() == Some("succeeded")),
            "{steps:?}"
        );
        let calls = engine.store().tool_calls(&id).await.unwrap();
        assert!(
            calls
                .iter()
                .all(|c| c.outcome == Some(ToolCallOutcome::Succeeded))
        );
        // ... but the post-condition read the order and the outcome is failed.
        assert_eq!(task.projection.status, TaskStatus::Failed);
        assert_eq!(task.projection.current_state.as_deref(), Some("done"));
        let done = &task.projection.state["done"];
        assert_eq!(done["passed"], false, "{done}");
        let refunded_before = before.iter().sum::<i64>();
        let dollars = |cents: i64| format!("${}.{:02}", cents / 100, cents % 100);
        let expected = format!(
            "post-condition `refund_recorded` did not hold: order ORD-5001 shows {} refunded, expected {}",
            dollars(refunded_before + 1600),
            dollars(refunded_before + 1500)
        );
        assert_eq!(task.projection.error.as_deref(), Some(expected.as_str()));
        assert_eq!(
            done["postconditions"]["refund_recorded"]["result"]["refunded_cents"],
            refunded_before + 1600
        );

        // It is an exception, for the metrics and the review alike.
        let filter = MetricsFilter::default();
        let exceptions = engine.store().exceptions(&filter, 10).await.unwrap();
        assert_eq!(exceptions.len(), 1, "{exceptions:?}");
        assert_eq!(exceptions[0].task_id, id);
        assert_eq!(exceptions[0].reasons, ["failed", "check_failed"]);
        let m = engine.store().metrics(&filter).await.unwrap();
        assert_eq!(m.total.failed, 1);
        assert_eq!(m.total.exceptions.tasks, 1);
        assert_eq!(m.total.exceptions.check_failed, 1);
        assert_eq!((m.total.checks.runs, m.total.checks.passed), (1, 0));
        let review = engine.review(&filter, None, 10).await.unwrap();
        assert_eq!(review.exceptions.len(), 1);
        let mode = review
            .failure_modes
            .iter()
            .find(|f| f.kind == "check")
            .expect("the failed post-condition is a failure mode");
        assert_eq!((mode.place.as_str(), mode.error.as_str()), ("done", expected.as_str()));

        // And it proposes a lesson for the workflow.
        let lessons = engine
            .store()
            .lessons(Some("support-refund"), Some("proposed"))
            .await
            .unwrap();
        assert_eq!(lessons.len(), 1, "{lessons:?}");
        assert!(
            lessons[0].text.starts_with("The post-condition `refund_recorded` failed: order ORD-5001 shows"),
            "{}",
            lessons[0].text
        );
        assert_eq!(lessons[0].task_id.as_deref(), Some(id.as_str()));
    })
    .await;
}

/// Passes calls through, but never answers the third `get_order` (the post-condition's
/// read, after the lookup and the agent's): the engine stops mid-post-condition.
struct StopAtTheCheck {
    inner: Arc<McpTools>,
    reads: std::sync::atomic::AtomicUsize,
    reached: AtomicBool,
}

impl ToolHost for StopAtTheCheck {
    fn tools(&self) -> Vec<ToolInfo> {
        self.inner.tools()
    }

    fn describe(&self, tool: &str) -> Option<ToolInfo> {
        self.inner.describe(tool)
    }

    fn call<'a>(&'a self, r: ToolRequest<'a>) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            if r.tool == "support.get_order" && self.reads.fetch_add(1, Ordering::SeqCst) == 2 {
                self.reached.store(true, Ordering::SeqCst);
                std::future::pending::<()>().await;
            }
            self.inner.call(r).await
        })
    }
}

#[tokio::test]
async fn an_engine_that_dies_mid_postcondition_makes_only_the_read_again() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let stopping = Arc::new(StopAtTheCheck {
            inner: support(dir.path()).await,
            reads: std::sync::atomic::AtomicUsize::new(0),
            reached: AtomicBool::new(false),
        });
        let first = engine(dir.path(), stopping.clone()).await;
        let before = refunds(dir.path(), "ORD-5003").await.len();
        let id = first
            .start_task(&workflow(), inputs("ORD-5003", 2000), "ada", None)
            .await
            .unwrap();
        let run = {
            let first = first.clone();
            let id = id.clone();
            tokio::spawn(async move { first.run_task(&id).await })
        };
        while !stopping.reached.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        run.abort();
        first.close().await.unwrap();
        let open: Vec<_> = first
            .store()
            .tool_calls(&id)
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.outcome.is_none())
            .collect();
        assert_eq!(
            open.len(),
            1,
            "the read's intent is recorded, its outcome is not"
        );
        assert_eq!(open[0].tool, "support.get_order");

        let second = engine(dir.path(), support(dir.path()).await).await;
        second.run_until_idle().await.unwrap();
        let task = second.find_task(&id).await.unwrap();
        assert_eq!(
            task.projection.status,
            TaskStatus::Succeeded,
            "{:?}",
            task.projection.error
        );
        assert_eq!(task.projection.state["done"]["passed"], true);
        assert_eq!(refunds(dir.path(), "ORD-5003").await.len(), before + 1);
        // Nothing before the post-condition was made again: one row per call, the read
        // re-made under its own key.
        let calls = second.store().tool_calls(&id).await.unwrap();
        let tools: Vec<_> = calls.iter().map(|c| c.tool.as_str()).collect();
        assert_eq!(
            tools,
            [
                "support.get_order",
                "support.issue_refund",
                "support.get_order",
                "support.get_customer",
                "support.get_order",
            ]
        );
        assert_eq!(calls[4].id, open[0].id);
        assert_eq!(calls[4].outcome, Some(ToolCallOutcome::Succeeded));
        let turns = second
            .store()
            .events(&id)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "model_turn")
            .count();
        assert_eq!(turns, 3, "the model was not asked again");
    })
    .await;
}

#[tokio::test]
async fn a_postcondition_that_would_write_is_refused_before_the_task_starts() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path(), support(dir.path()).await).await;
        let source = std::fs::read_to_string(demo().join("support-refund.toml"))
            .unwrap()
            .replace(
                "tool = \"support.get_order\"\nargs = { order_id = \"inputs.order_id\" }\nexpect",
                "tool = \"support.issue_refund\"\nargs = { order_id = \"inputs.order_id\" }\nexpect",
            );
        let wf = airlock_engine::workflow::parse(Path::new("support-refund.toml"), &source).unwrap();
        let err = engine
            .start_task(&wf, inputs("ORD-5001", 1500), "ada", Some("support-refund.toml"))
            .await
            .unwrap_err()
            .to_string();
        let lines: Vec<&str> = source.lines().collect();
        let line = lines
            .iter()
            .rposition(|l| *l == "tool = \"support.issue_refund\"")
            .unwrap()
            + 1;
        assert!(
            err.contains(&format!(
                "support-refund.toml:{line}:8: error[not-read-only]: post-condition `refund_recorded` uses `support.issue_refund`, which is not declared read-only"
            )),
            "{err}"
        );
        assert!(engine
                .store()
                .list_tasks(&TaskFilter::default())
                .await
                .unwrap()
                .is_empty(), "no task was made");
    })
    .await;
}
