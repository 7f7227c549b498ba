//! The checked path's static checks: arguments against the input schema before anything
//! is recorded or called, results against the output schema, and tool definitions pinned
//! on first use and held when their server changes them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use airlock_engine::clock::BoxFuture;
use airlock_engine::store::{CallRefusal, TaskStatus, ToolCallOutcome};
use airlock_engine::{SystemClock, ToolAnnotations, ToolError, ToolHost, ToolInfo, ToolRequest};
use serde_json::{Value, json};

use crate::support::{Env, assert_consistent, calls, inputs, parse, task, within};

/// One tool, `shop.refund`, whose description a test can change (as a server upgrade would)
/// and which can be told to return a malformed result.
struct Shop {
    description: Mutex<String>,
    calls: AtomicUsize,
}

impl Shop {
    fn new() -> Arc<Shop> {
        Arc::new(Shop {
            description: Mutex::new("Refund an order".into()),
            calls: AtomicUsize::new(0),
        })
    }
}

impl ToolHost for Shop {
    fn tools(&self) -> Vec<ToolInfo> {
        vec![ToolInfo {
            name: "shop.refund".into(),
            description: self.description.lock().unwrap().clone(),
            input_schema: json!({
                "type": "object",
                "properties": {"amount": {"type": "number", "minimum": 0}, "broken": {"type": "boolean"}},
                "required": ["amount"]
            }),
            output_schema: Some(json!({
                "type": "object",
                "properties": {"refunded": {"type": "number"}},
                "required": ["refunded"]
            })),
            annotations: ToolAnnotations {
                read_only: false,
                destructive: false,
                idempotent: true,
                open_world: false,
            },
        }]
    }

    fn call<'a>(&'a self, r: ToolRequest<'a>) -> BoxFuture<'a, Result<Value, ToolError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let broken = r
            .args
            .get("broken")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let amount = r.args.get("amount").cloned().unwrap_or(Value::Null);
        Box::pin(async move {
            Ok(if broken {
                json!({"oops": true})
            } else {
                json!({"refunded": amount})
            })
        })
    }
}

const WORKFLOW: &str = r#"
name = "refund"
start = "refund"

[inputs.amount]
type = "number"

[inputs.broken]
type = "boolean"
default = false

[states.refund]
kind = "tool"
tool = "shop.refund"
args = { amount = "inputs.amount", broken = "inputs.broken" }
next = "done"
on_error = "failed"

[states.done]
kind = "end"
status = "succeeded"

[states.failed]
kind = "end"
status = "failed"
"#;

async fn run(env: &Env, shop: &Arc<Shop>, args: Value) -> airlock_engine::store::TaskRecord {
    let engine = env
        .engine_with(env.config(), Arc::new(SystemClock), shop.clone())
        .await;
    let id = engine
        .start_task(&parse(WORKFLOW), inputs(args), "ada", None)
        .await
        .unwrap();
    engine.run_task(&id).await.unwrap();
    assert_consistent(&engine, &id).await;
    let t = task(&engine, &id).await;
    engine.close().await.unwrap();
    t
}

#[tokio::test]
async fn arguments_that_break_the_input_schema_are_refused_and_never_called() {
    within(async {
        let env = Env::new();
        let shop = Shop::new();
        let t = run(&env, &shop, json!({"amount": -5})).await;
        assert_eq!(t.projection.current_state.as_deref(), Some("failed"));
        let error = t.projection.state["refund"]["error"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(error.contains("do not match its input schema"), "{error}");
        assert!(
            error.contains("/amount") && error.contains("minimum"),
            "{error}"
        );
        assert_eq!(shop.calls.load(Ordering::SeqCst), 0);
        let engine = env
            .engine_with(env.config(), Arc::new(SystemClock), shop.clone())
            .await;
        // No intent for a refused call: its row is written refused, with why.
        let ledger = calls(&engine, &t.id).await;
        assert_eq!(ledger.len(), 1, "{ledger:#?}");
        assert_eq!(ledger[0].outcome, Some(ToolCallOutcome::Refused));
        assert_eq!(ledger[0].refusal, Some(CallRefusal::Check));
        assert_eq!(ledger[0].args["amount"].as_f64(), Some(-5.0));
        assert_eq!(ledger[0].error.as_deref(), Some(error.as_str()));
    })
    .await;
}

#[tokio::test]
async fn a_result_that_breaks_the_output_schema_fails_the_step() {
    within(async {
        let env = Env::new();
        let shop = Shop::new();
        let t = run(&env, &shop, json!({"amount": 5, "broken": true})).await;
        assert_eq!(t.projection.current_state.as_deref(), Some("failed"));
        let error = t.projection.state["refund"]["error"].as_str().unwrap();
        assert!(
            error.contains("does not match its output schema"),
            "{error}"
        );
        let good = run(&env, &shop, json!({"amount": 5})).await;
        assert_eq!(good.projection.status, TaskStatus::Succeeded);
        assert_eq!(good.projection.state["refund"], json!({"refunded": 5.0}));
    })
    .await;
}

#[tokio::test]
async fn a_changed_tool_is_held_until_a_person_accepts_the_change() {
    within(async {
        let env = Env::new();
        let shop = Shop::new();
        // First use pins the definition.
        let first = run(&env, &shop, json!({"amount": 1})).await;
        assert_eq!(first.projection.status, TaskStatus::Succeeded);
        assert_eq!(shop.calls.load(Ordering::SeqCst), 1);

        // The server changes the tool: the next call is refused with a reason, not made.
        *shop.description.lock().unwrap() = "Refund an order, and email the customer".into();
        let held = run(&env, &shop, json!({"amount": 2})).await;
        assert_eq!(held.projection.current_state.as_deref(), Some("failed"));
        let error = held.projection.state["refund"]["error"].as_str().unwrap();
        assert!(
            error.contains("is held") && error.contains("review"),
            "{error}"
        );
        assert_eq!(shop.calls.load(Ordering::SeqCst), 1);

        let engine = env
            .engine_with(env.config(), Arc::new(SystemClock), shop.clone())
            .await;
        let pin = engine
            .store()
            .tool_pin("shop.refund")
            .await
            .unwrap()
            .unwrap();
        let change = pin.changed.expect("the change is recorded for review");
        assert_eq!(
            change.definition["description"],
            "Refund an order, and email the customer"
        );
        assert!(
            engine
                .accept_tool_change("shop.refund", "carol")
                .await
                .unwrap()
        );
        assert!(
            !engine
                .accept_tool_change("shop.refund", "carol")
                .await
                .unwrap(),
            "nothing left to accept"
        );
        engine.close().await.unwrap();

        let after = run(&env, &shop, json!({"amount": 3})).await;
        assert_eq!(after.projection.status, TaskStatus::Succeeded);
        assert_eq!(shop.calls.load(Ordering::SeqCst), 2);
    })
    .await;
}
