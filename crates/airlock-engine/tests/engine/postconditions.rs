//! Post-conditions at a `succeeded` end: judged before the outcome is recorded; one that
//! does not hold fails the task (and proposes a lesson) though every step succeeded; a
//! read the policy refuses is never made and the post-condition cannot hold.

use std::path::Path;
use std::sync::Arc;

use airlock_engine::policy::{Identities, Policy};
use airlock_engine::store::{CallRefusal, TaskStatus, ToolCallOutcome};
use airlock_engine::{EngineConfig, Governance, SystemClock, TaskEvent};
use serde_json::json;

use crate::support::*;

/// Writes a limit; above 100 it writes one more than asked (the bug the post-condition
/// is there to catch). The post-condition reads the value back with `builtin.echo`.
const LIMIT: &str = r#"
name = "set-limit"
start = "write"

[inputs.amount]
type = "integer"

[states.write]
kind = "tool"
tool = "builtin.upsert"
args = { key = "'limit'", value = "inputs.amount > 100 ? inputs.amount + 1 : inputs.amount" }
next = "done"

[states.done]
kind = "end"
status = "succeeded"

[[postconditions]]
name = "limit_as_asked"
tool = "builtin.echo"
args = { value = "state.write.value" }
expect = ["result.value == inputs.amount"]
message = "the limit is {{ result.value }}, not the {{ inputs.amount }} asked for"

[[postconditions]]
name = "a_write_was_made"
expect = ["state.write.key == 'limit'"]
"#;

#[tokio::test]
async fn an_outcome_that_is_wrong_fails_the_task_though_every_step_succeeded() {
    within(async {
        let env = Env::new();
        let engine = env.engine(Arc::new(SystemClock)).await;
        let wf = parse(LIMIT);

        let right = engine
            .start_task(&wf, inputs(json!({ "amount": 50 })), "ada", None)
            .await
            .unwrap();
        let right = engine.run_task(&right).await.unwrap();
        assert_eq!(right.projection.status, TaskStatus::Succeeded);
        assert_eq!(right.projection.state["done"]["passed"], true);
        assert_eq!(right.projection.error, None);
        assert_consistent(&engine, &right.id).await;

        let wrong = engine
            .start_task(&wf, inputs(json!({ "amount": 500 })), "ada", None)
            .await
            .unwrap();
        let task = engine.run_task(&wrong).await.unwrap();
        assert_eq!(env.kv("limit").await.unwrap().0, "501", "the effect is real");
        assert_eq!(task.projection.status, TaskStatus::Failed);
        assert_eq!(task.projection.current_state.as_deref(), Some("done"));
        assert_eq!(
            task.projection.error.as_deref(),
            Some(
                "post-condition `limit_as_asked` did not hold: the limit is 501, not the 500 asked for"
            )
        );
        let done = &task.projection.state["done"];
        assert_eq!(done["passed"], false);
        assert_eq!(done["postconditions"]["a_write_was_made"]["passed"], true);
        assert_eq!(
            done["postconditions"]["limit_as_asked"]["result"],
            json!({ "value": 501 })
        );
        assert_consistent(&engine, &wrong).await;
        let kinds = kinds(&engine, &wrong).await;
        assert_eq!(
            kinds[kinds.len() - 3..],
            ["tool_returned", "postconditions_checked", "ended"],
            "{kinds:?}"
        );
        let steps = engine.store().steps(&wrong).await.unwrap();
        assert!(steps.iter().all(|s| s.outcome.as_deref() == Some("succeeded")));
        assert_eq!(steps.last().unwrap().kind, "check");

        let lessons = engine.store().lessons(Some("set-limit"), None).await.unwrap();
        assert_eq!(lessons.len(), 1, "only the wrong task proposes one: {lessons:?}");
        assert_eq!(
            lessons[0].text,
            "The post-condition `limit_as_asked` failed: the limit is 501, not the 500 asked for"
        );
    })
    .await;
}

#[tokio::test]
async fn a_read_the_policy_refuses_is_never_made_and_the_postcondition_cannot_hold() {
    within(async {
        let env = Env::new();
        let policy = Policy::parse(
            Path::new("policy.toml"),
            "[[rules]]\nname = \"writes\"\ntools = [\"builtin.upsert\"]\neffect = \"allow\"\n",
        )
        .unwrap();
        let config = EngineConfig {
            governance: Governance {
                policy: Arc::new(Arc::new(policy)),
                identities: Arc::new(Identities::empty()),
                check_approvers: false,
            },
            ..env.config()
        };
        let engine = env
            .engine_with(config, Arc::new(SystemClock), env.builtin().await)
            .await;
        let id = engine
            .start_task(&parse(LIMIT), inputs(json!({ "amount": 50 })), "ada", None)
            .await
            .unwrap();
        let task = engine.run_task(&id).await.unwrap();
        assert_eq!(task.projection.status, TaskStatus::Failed);
        let error = task.projection.error.unwrap();
        assert!(
            error.starts_with(
                "post-condition `limit_as_asked` did not hold: could not read with `builtin.echo`: "
            ),
            "{error}"
        );
        let tools: Vec<_> = calls(&engine, &id)
            .await
            .into_iter()
            .map(|c| (c.tool, c.outcome, c.refusal))
            .collect();
        assert_eq!(
            tools,
            [
                (
                    "builtin.upsert".to_owned(),
                    Some(ToolCallOutcome::Succeeded),
                    None
                ),
                (
                    "builtin.echo".to_owned(),
                    Some(ToolCallOutcome::Refused),
                    Some(CallRefusal::Policy {
                        rule: None,
                        approval_id: None
                    })
                ),
            ],
            "the refused read's row says it was refused, never made"
        );
        assert!(events(&engine, &id).await.iter().any(|e| matches!(
            e,
            TaskEvent::ToolRefused { tool, call_index: 0, .. } if tool == "builtin.echo"
        )));
        assert_consistent(&engine, &id).await;
    })
    .await;
}

/// A read whose arguments break its tool's input schema (known only once the task has run)
/// is stopped by the static checks: never made, and on the ledger as refused by them.
#[tokio::test]
async fn a_read_the_static_checks_stop_is_on_the_ledger_as_refused() {
    within(async {
        let env = Env::new();
        let engine = env.engine(Arc::new(SystemClock)).await;
        let workflow = LIMIT.replace(
            "tool = \"builtin.echo\"\nargs = { value = \"state.write.value\" }",
            "tool = \"builtin.sleep\"\nargs = { ms = \"0 - state.write.value\" }",
        );
        assert_ne!(workflow, LIMIT, "the read was swapped");
        let id = engine
            .start_task(
                &parse(&workflow),
                inputs(json!({ "amount": 50 })),
                "ada",
                None,
            )
            .await
            .unwrap();
        let task = engine.run_task(&id).await.unwrap();
        assert_eq!(task.projection.status, TaskStatus::Failed);
        let ledger = calls(&engine, &id).await;
        assert_eq!(ledger.len(), 2, "{ledger:#?}");
        assert_eq!(ledger[1].tool, "builtin.sleep");
        assert_eq!(ledger[1].args, json!({ "ms": -50 }));
        assert_eq!(ledger[1].outcome, Some(ToolCallOutcome::Refused));
        assert_eq!(ledger[1].refusal, Some(CallRefusal::Check));
        let error = ledger[1].error.as_deref().unwrap_or_default();
        assert!(error.contains("do not match its input schema"), "{error}");
        assert_consistent(&engine, &id).await;
    })
    .await;
}

#[tokio::test]
async fn a_postcondition_naming_a_tool_no_server_offers_stops_the_task_from_starting() {
    within(async {
        let env = Env::new();
        let engine = env.engine(Arc::new(SystemClock)).await;
        let wf = parse(&LIMIT.replace("tool = \"builtin.echo\"", "tool = \"builtin.ecko\""));
        let err = engine
            .start_task(&wf, inputs(json!({ "amount": 50 })), "ada", Some("limits/set-limit.toml"))
            .await
            .unwrap_err()
            .to_string();
        let line = LIMIT
            .lines()
            .position(|l| l == "tool = \"builtin.echo\"")
            .unwrap()
            + 1;
        assert!(
            err.contains(&format!(
                "limits/set-limit.toml:{line}:8: error[unknown-tool]: post-condition `limit_as_asked` reads with `builtin.ecko`, but no server offers a tool of that name (did you mean `builtin.echo`?)"
            )),
            "{err}"
        );
    })
    .await;
}
