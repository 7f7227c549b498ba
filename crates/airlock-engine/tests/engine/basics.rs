//! Linear tool workflows, the ledger's identities, choices and checks.

use std::sync::Arc;

use airlock_engine::SystemClock;
use airlock_engine::event::{apply, empty_projection, replay};
use airlock_engine::ledger::args_hash;
use airlock_engine::store::{TaskStatus, ToolCallOutcome};
use serde_json::json;

use crate::support::*;

const LINEAR: &str = r#"
name = "linear"
start = "greet"

[inputs.who]
type = "string"

[states.greet]
kind = "tool"
tool = "builtin.echo"
args = { greeting = "'hello, ' + inputs.who" }
next = "save"

[states.save]
kind = "tool"
tool = "builtin.upsert"
args = { key = "inputs.who", value = { text = "state.greet.greeting", n = 7 } }
next = "done"

[states.done]
kind = "end"
status = "succeeded"
"#;

/// The same arguments as `LINEAR`'s `save`, written in another key order.
const LINEAR_REORDERED: &str = r#"
name = "linear-reordered"
start = "greet"

[inputs.who]
type = "string"

[states.greet]
kind = "tool"
tool = "builtin.echo"
args = { greeting = "'hello, ' + inputs.who" }
next = "save"

[states.save]
kind = "tool"
tool = "builtin.upsert"
args = { value = { n = 7, text = "state.greet.greeting" }, key = "inputs.who" }
next = "done"

[states.done]
kind = "end"
status = "succeeded"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linear_tool_workflow_records_events_steps_and_ledger() {
    within(async {
        let env = Env::new();
        let engine = env.engine(Arc::new(SystemClock)).await;
        let wf = parse(LINEAR);
        let id = engine
            .start_task(&wf, inputs(json!({"who": "ada"})), "tester", None)
            .await
            .unwrap();
        let done = engine.run_task(&id).await.unwrap();
        assert_eq!(done.projection.status, TaskStatus::Succeeded);
        assert_eq!(done.projection.current_state.as_deref(), Some("done"));
        assert_eq!(
            done.projection.state["greet"],
            json!({"greeting": "hello, ada"})
        );
        assert_eq!(
            done.projection.state["save"],
            json!({"key": "ada", "value": {"text": "hello, ada", "n": 7}})
        );
        assert_eq!(done.lease_owner, None, "a finished task holds no lease");

        assert_eq!(
            kinds(&engine, &id).await,
            [
                "created",
                "step_started",
                "policy_decided",
                "tool_called",
                "tool_returned",
                "step_succeeded",
                "step_started",
                "policy_decided",
                "tool_called",
                "tool_returned",
                "step_succeeded",
                "ended",
            ]
        );

        let steps = engine.store().steps(&id).await.unwrap();
        let summary: Vec<_> = steps
            .iter()
            .map(|s| {
                (
                    s.step_no,
                    s.state_name.as_str(),
                    s.kind.as_str(),
                    s.attempts,
                    s.outcome.as_deref(),
                    s.ended_at.is_some(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (1, "greet", "tool", 1, Some("succeeded"), true),
                (2, "save", "tool", 1, Some("succeeded"), true),
            ]
        );

        let ledger = calls(&engine, &id).await;
        assert_eq!(ledger.len(), 2);
        for (call, (step, tool)) in ledger
            .iter()
            .zip([(1, "builtin.echo"), (2, "builtin.upsert")])
        {
            assert_eq!(call.tool, tool);
            assert_eq!(call.step_no, step);
            assert_eq!(call.attempt, 1);
            assert_eq!(call.call_index, 0);
            assert_eq!(call.idempotency_key, format!("{id}/{step}/0"));
            assert_eq!(call.outcome, Some(ToolCallOutcome::Succeeded));
            assert!(call.outcome_at.is_some_and(|at| at >= call.intent_at));
            assert_eq!(call.args_hash, args_hash(&call.args));
            assert!(call.idempotent, "echo is read-only and upsert idempotent");
        }
        assert_eq!(
            ledger[1].result,
            Some(done.projection.state["save"].clone())
        );
        // The tool_called events name the ledger rows.
        let called: Vec<String> = events(&engine, &id)
            .await
            .into_iter()
            .filter_map(|e| match e {
                airlock_engine::TaskEvent::ToolCalled {
                    call_id,
                    idempotency_key,
                    args_hash,
                    ..
                } => Some(format!("{call_id} {idempotency_key} {args_hash}")),
                _ => None,
            })
            .collect();
        let ledgered: Vec<String> = ledger
            .iter()
            .map(|c| format!("{} {} {}", c.id, c.idempotency_key, c.args_hash))
            .collect();
        assert_eq!(called, ledgered);

        // The effect itself, with the idempotency key the tool was given.
        let (value, key) = env.kv("ada").await.expect("upserted");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&value).unwrap(),
            json!({"text": "hello, ada", "n": 7})
        );
        assert_eq!(key, format!("{id}/2/0"));
        assert_consistent(&engine, &id).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn args_hash_ignores_key_order_across_tasks() {
    within(async {
        let env = Env::new();
        let engine = env.engine(Arc::new(SystemClock)).await;
        let a = engine
            .start_task(&parse(LINEAR), inputs(json!({"who": "bo"})), "t", None)
            .await
            .unwrap();
        let b = engine
            .start_task(
                &parse(LINEAR_REORDERED),
                inputs(json!({"who": "bo"})),
                "t",
                None,
            )
            .await
            .unwrap();
        let c = engine
            .start_task(&parse(LINEAR), inputs(json!({"who": "cy"})), "t", None)
            .await
            .unwrap();
        for id in [&a, &b, &c] {
            let t = engine.run_task(id).await.unwrap();
            assert_eq!(t.projection.status, TaskStatus::Succeeded);
        }
        let save = |ledger: Vec<airlock_engine::store::ToolCallRecord>| {
            ledger
                .into_iter()
                .find(|c| c.tool == "builtin.upsert")
                .unwrap()
        };
        let (sa, sb, sc) = (
            save(calls(&engine, &a).await),
            save(calls(&engine, &b).await),
            save(calls(&engine, &c).await),
        );
        // The stored arguments really are in different orders...
        assert_ne!(sa.args.to_string(), sb.args.to_string());
        assert_eq!(sa.args, sb.args);
        // ...and hash the same, while different arguments do not.
        assert_eq!(sa.args_hash, sb.args_hash);
        assert_ne!(sa.args_hash, sc.args_hash);
        assert_eq!(
            sa.args_hash,
            args_hash(&json!({"key": "bo", "value": {"n": 7, "text": "hello, bo"}}))
        );
        // Keys are per task, never shared.
        assert_eq!(sa.idempotency_key, format!("{a}/2/0"));
        assert_eq!(sb.idempotency_key, format!("{b}/2/0"));
    })
    .await;
}

const ROUTE: &str = r#"
name = "route"
start = "route"

[inputs.amount]
type = "integer"

[states.route]
kind = "choice"
default = "small"

[[states.route.branches]]
when = "inputs.amount > 1000"
next = "huge"

[[states.route.branches]]
when = "inputs.amount > 100"
next = "big"

[states.small]
kind = "tool"
tool = "builtin.echo"
args = { size = "'small'" }
next = "limit"

[states.big]
kind = "tool"
tool = "builtin.echo"
args = { size = "'big'" }
next = "limit"

[states.huge]
kind = "tool"
tool = "builtin.echo"
args = { size = "'huge'" }
next = "limit"

[states.limit]
kind = "check"
assert = "inputs.amount < 5000"
message = "amount {{ inputs.amount }} is over the limit"
next = "done"
on_fail = "too_much"

[states.done]
kind = "end"
status = "succeeded"

[states.too_much]
kind = "end"
status = "failed"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn choice_branches_by_input_and_failing_check_goes_to_on_fail() {
    within(async {
        let env = Env::new();
        let engine = env.engine(Arc::new(SystemClock)).await;
        let wf = parse(ROUTE);
        // (amount, state taken, branch output, check passed, final state, status)
        let cases = [
            (50, "small", json!("default"), true, "done", TaskStatus::Succeeded),
            (500, "big", json!(1), true, "done", TaskStatus::Succeeded),
            (2000, "huge", json!(0), true, "done", TaskStatus::Succeeded),
            (9000, "huge", json!(0), false, "too_much", TaskStatus::Failed),
        ];
        for (amount, taken, branch, passed, last, status) in cases {
            let id = engine
                .start_task(&wf, inputs(json!({"amount": amount})), "t", None)
                .await
                .unwrap();
            let t = engine.run_task(&id).await.unwrap();
            let s = &t.projection.state;
            assert_eq!(t.projection.status, status, "amount {amount}");
            assert_eq!(t.projection.current_state.as_deref(), Some(last));
            assert_eq!(s["route"], json!({"branch": branch, "next": taken}));
            assert_eq!(s[taken], json!({"size": taken}));
            for other in ["small", "big", "huge"].into_iter().filter(|o| *o != taken) {
                assert!(s.get(other).is_none(), "{other} must not have run");
            }
            if passed {
                assert_eq!(s["limit"], json!({"passed": true}));
            } else {
                assert_eq!(
                    s["limit"],
                    json!({"passed": false, "message": format!("amount {amount} is over the limit")})
                );
            }
            let steps: Vec<_> = engine
                .store()
                .steps(&id)
                .await
                .unwrap()
                .into_iter()
                .map(|s| (s.state_name, s.kind, s.outcome))
                .collect();
            let ok = Some("succeeded".to_owned());
            assert_eq!(
                steps,
                [
                    ("route".into(), "choice".into(), ok.clone()),
                    (taken.into(), "tool".into(), ok.clone()),
                    ("limit".into(), "check".into(), ok.clone()),
                ]
            );
            // A failed check is the check doing its job: no error on the task.
            assert_eq!(t.projection.error, None);
            assert_eq!(calls(&engine, &id).await.len(), 1);
            assert_consistent(&engine, &id).await;
        }
    })
    .await;
}

/// Every committed transition (as announced on the change feed) is the fold of the
/// event prefix it ends at, and folding a prefix equals applying its events one by one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_of_every_prefix_matches_incremental_apply_and_committed_status() {
    within(async {
        let env = Env::new();
        let engine = env.engine(Arc::new(SystemClock)).await;
        let mut changes = engine.subscribe();
        let id = engine
            .start_task(&parse(ROUTE), inputs(json!({"amount": 9000})), "t", None)
            .await
            .unwrap();
        engine.run_task(&id).await.unwrap();
        let all = events(&engine, &id).await;
        let mut incremental = empty_projection();
        let mut prefixes = vec![incremental.clone()];
        for (k, event) in all.iter().enumerate() {
            apply(&mut incremental, event);
            assert_eq!(
                replay(&all[..=k]),
                incremental,
                "prefix of {} events",
                k + 1
            );
            prefixes.push(incremental.clone());
        }
        let mut seen = Vec::new();
        while let Ok(change) = changes.try_recv() {
            if change.task_id == id {
                let at = usize::try_from(change.seq).unwrap();
                assert_eq!(prefixes[at].status, change.status, "status at seq {at}");
                seen.push(change.seq);
            }
        }
        assert!(seen.len() >= 2, "commits announced: {seen:?}");
        assert_eq!(seen.last().copied(), Some(all.len() as i64));
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        assert_eq!(replay(&all), task(&engine, &id).await.projection);
    })
    .await;
}
