//! The feedback loop: a person's rejection (with its reason) and a failed outcome check
//! become proposed lessons of the workflow; once a person accepts one, the next run's
//! agent request carries it (asserted on the recorded request); dismissed ones never do.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use airlock_engine::clock::BoxFuture;
use airlock_engine::policy::Policy;
use airlock_engine::store::{ApprovalStatus, LessonSource, LessonStatus, StoreOptions, TaskStatus};
use airlock_engine::{
    Answer, BuiltinTools, Engine, EngineConfig, EngineError, Governance, Model, ModelError,
    ModelReply, ModelRequest, ProposedCall, Rating, SystemClock, Turn,
};
use serde_json::json;

/// Proposes one refund, then answers whatever came back.
struct Refunder {
    requests: Mutex<Vec<ModelRequest>>,
}

impl Model for Refunder {
    fn name(&self) -> String {
        "fake (test)".into()
    }

    fn respond(&self, request: ModelRequest) -> BoxFuture<'_, Result<ModelReply, ModelError>> {
        let answered = request
            .turns
            .iter()
            .any(|t| matches!(t, Turn::ToolResult { .. }));
        self.requests.lock().unwrap().push(request);
        Box::pin(async move {
            Ok(if answered {
                ModelReply::Final {
                    output: json!({"summary": "done"}),
                }
            } else {
                ModelReply::ToolCalls {
                    calls: vec![ProposedCall {
                        id: "refund".into(),
                        tool: "builtin.record".into(),
                        args: json!({"label": "refund", "amount": 500}),
                    }],
                }
            })
        })
    }
}

const WORKFLOW: &str = r#"
name = "refunds"
start = "handle"

[states.handle]
kind = "agent"
goal = "Handle the refund request"
tools = ["builtin.record"]
output_schema = { type = "object", properties = { summary = { type = "string" } }, required = ["summary"] }
next = "verify"

[states.verify]
kind = "check"
assert = "state.handle.summary == 'refunded'"
message = "the agent said {{ state.handle.summary }}"
next = "done"
on_fail = "exception"

[states.done]
kind = "end"
status = "succeeded"

[states.exception]
kind = "end"
status = "failed"
"#;

const RULES: &str = r#"
[[rules]]
name = "refunds need a controller"
tools = ["builtin.record"]
effect = "require_approval"
approvers = ["controller"]
"#;

async fn engine(dir: &Path, model: Arc<Refunder>) -> Engine {
    let policy = Policy::parse(Path::new("policy.toml"), RULES).unwrap();
    let config = EngineConfig {
        governance: Governance {
            policy: Arc::new(Arc::new(policy)),
            ..Governance::unrestricted()
        },
        ..EngineConfig::new(StoreOptions::new(dir.join("airlock.sqlite")))
    };
    Engine::open(
        config,
        Arc::new(SystemClock),
        Arc::new(
            BuiltinTools::open(&dir.join("effects.sqlite"))
                .await
                .unwrap(),
        ),
        Some(model),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_rejection_reason_reaches_the_next_runs_agent() {
    let dir = tempfile::tempdir().unwrap();
    let model = Arc::new(Refunder {
        requests: Mutex::new(Vec::new()),
    });
    let engine = engine(dir.path(), model.clone()).await;
    let wf = airlock_engine::workflow::parse(Path::new("refunds.toml"), WORKFLOW).unwrap();

    // First run: the refund is held, a controller rejects it with a reason; the agent
    // answers without it, so the outcome check fails too.
    let first = engine
        .start_task(&wf, serde_json::Map::new(), "ada", None)
        .await
        .unwrap();
    engine.run_task(&first).await.unwrap();
    let held = engine.store().task_approvals(&first).await.unwrap();
    assert_eq!(held[0].status, ApprovalStatus::Pending);
    engine
        .answer_approval(
            &held[0].id,
            Answer::Reject {
                reason: Some("orders above 200 are refunded by finance, not here".into()),
            },
            "carol",
        )
        .await
        .unwrap();
    let done = engine.run_task(&first).await.unwrap();
    assert_eq!(done.projection.status, TaskStatus::Failed);

    let proposed = engine
        .lessons(Some("refunds"), Some("proposed"))
        .await
        .unwrap();
    let sources: Vec<LessonSource> = proposed.iter().map(|l| l.source).collect();
    assert!(sources.contains(&LessonSource::Rejection), "{proposed:?}");
    assert!(sources.contains(&LessonSource::FailedCheck), "{proposed:?}");
    let rejection = proposed
        .iter()
        .find(|l| l.source == LessonSource::Rejection)
        .unwrap();
    assert!(
        rejection
            .text
            .contains("orders above 200 are refunded by finance"),
        "{}",
        rejection.text
    );
    assert!(
        model
            .requests
            .lock()
            .unwrap()
            .iter()
            .all(|r| r.context.get("lessons").is_none()),
        "a proposed lesson is not given to the model"
    );

    // A person accepts the rejection's lesson and dismisses the check's.
    engine
        .review_lesson(&rejection.id, true, None, "lead")
        .await
        .unwrap();
    let check = proposed
        .iter()
        .find(|l| l.source == LessonSource::FailedCheck)
        .unwrap();
    engine
        .review_lesson(&check.id, false, None, "lead")
        .await
        .unwrap();
    assert!(matches!(
        engine.review_lesson(&check.id, true, None, "lead").await,
        Err(EngineError::NoLesson(_))
    ));
    let accepted = engine
        .lessons(Some("refunds"), Some("accepted"))
        .await
        .unwrap();
    assert!(matches!(
        &accepted[0].status,
        LessonStatus::Accepted { by, .. } if by == "lead"
    ));

    // Second run: its first request carries the accepted lesson, and only that one.
    let before = model.requests.lock().unwrap().len();
    let second = engine
        .start_task(&wf, serde_json::Map::new(), "ada", None)
        .await
        .unwrap();
    engine.run_task(&second).await.unwrap();
    {
        let requests = model.requests.lock().unwrap();
        let lessons = requests[before].context["lessons"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(lessons.len(), 1, "{lessons:?}");
        assert!(
            lessons[0]
                .as_str()
                .unwrap()
                .contains("orders above 200 are refunded by finance")
        );
    }

    // A low rating that says why proposes a lesson too; one without a reason does not
    // (nor does rejecting the second run's refund without a reason).
    let held = engine.store().task_approvals(&second).await.unwrap();
    engine
        .answer_approval(&held[0].id, Answer::Reject { reason: None }, "carol")
        .await
        .unwrap();
    assert!(
        engine
            .run_task(&second)
            .await
            .unwrap()
            .projection
            .status
            .is_terminal()
    );
    engine
        .rate_task(
            &first,
            Rating::new(1).unwrap(),
            Some("it refunded nothing and told nobody"),
            "ada",
        )
        .await
        .unwrap();
    engine
        .rate_task(&second, Rating::new(2).unwrap(), None, "ada")
        .await
        .unwrap();
    let low: Vec<_> = engine
        .lessons(Some("refunds"), Some("proposed"))
        .await
        .unwrap()
        .into_iter()
        .filter(|l| l.source == LessonSource::LowRating)
        .collect();
    assert_eq!(low.len(), 1, "{low:?}");
    assert!(low[0].text.contains("it refunded nothing and told nobody"));
}
