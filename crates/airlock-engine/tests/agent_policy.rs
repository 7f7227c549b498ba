//! Policy on an agent's proposals. A model turn may propose several calls: each is decided
//! on its own (allowed, held for a person, approved or rejected), the approved work is
//! kept, and every result or refusal goes back to the model. Tools the policy never lets
//! the requester call are not offered to the model at all; a held call whose approval
//! expires is refused to the model, and the step carries on.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_engine::clock::BoxFuture;
use airlock_engine::policy::{Identities, Policy};
use airlock_engine::store::{
    ApprovalStatus, CallRefusal, StoreOptions, TaskRecord, TaskStatus, ToolCallOutcome,
};
use airlock_engine::{
    Answer, Answered, BuiltinTools, Engine, EngineConfig, EngineError, Governance, ManualClock,
    Model, ModelError, ModelReply, ModelRequest, ProposedCall, TaskEvent, Turn,
};
use serde_json::{Value, json};

const T0: i64 = 1_700_000_000_000;

const RULES: &str = r#"
[[rules]]
name = "records"
tools = ["builtin.record"]
effect = "allow"

[[rules]]
name = "big records need a controller"
tools = ["builtin.record"]
when = "args.amount > 50"
effect = "require_approval"
approvers = ["controller"]
expires_after = "1h"

[[rules]]
name = "reads"
tools = ["builtin.echo"]
effect = "allow"

[[rules]]
name = "no upserts"
tools = ["builtin.upsert"]
effect = "deny"
reason = "upserts are switched off"

[[rules]]
name = "failures"
tools = ["builtin.fail"]
effect = "allow"

[[rules]]
name = "no endless failures"
tools = ["builtin.fail"]
when = "args.times > 3"
effect = "deny"

[[rules]]
name = "only controllers sleep"
tools = ["builtin.sleep"]
roles = ["controller"]
effect = "allow"
"#;

const PEOPLE: &str = r#"
[identities.req]
roles = ["operator"]
[identities.carol]
roles = ["controller"]
"#;

const WORKFLOW: &str = r#"
name = "agent-pay"
start = "think"

[states.think]
kind = "agent"
goal = "Pay what is owed"
tools = ["builtin.*"]
max_turns = 4
next = "done"

[states.done]
kind = "end"
status = "succeeded"
"#;

type Script = Box<dyn Fn(&ModelRequest) -> ModelReply + Send + Sync>;

/// A model whose reply is computed from the request; it keeps every request it was sent.
struct FakeModel {
    script: Script,
    requests: Mutex<Vec<ModelRequest>>,
}

impl Model for FakeModel {
    fn name(&self) -> String {
        "fake (test)".into()
    }

    fn respond(&self, request: ModelRequest) -> BoxFuture<'_, Result<ModelReply, ModelError>> {
        let reply = (self.script)(&request);
        self.requests.lock().unwrap().push(request);
        Box::pin(async move { Ok(reply) })
    }
}

impl FakeModel {
    fn requests(&self) -> Vec<ModelRequest> {
        self.requests.lock().unwrap().clone()
    }
}

fn record(id: &str, amount: i64) -> ProposedCall {
    ProposedCall {
        id: id.into(),
        tool: "builtin.record".into(),
        args: json!({ "label": id, "amount": amount }),
    }
}

/// Proposes `calls` in its first turn; once it has seen results, answers.
fn proposes(calls: Vec<ProposedCall>) -> Script {
    Box::new(move |r| {
        if r.turns.is_empty() {
            ModelReply::ToolCalls {
                calls: calls.clone(),
            }
        } else {
            ModelReply::Final {
                output: json!({ "done": true }),
            }
        }
    })
}

struct Setup {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    engine: Engine,
    model: Arc<FakeModel>,
}

impl Setup {
    async fn new(script: Script) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let model = Arc::new(FakeModel {
            script,
            requests: Mutex::new(Vec::new()),
        });
        let governance = Governance {
            policy: Arc::new(Arc::new(
                Policy::parse(Path::new("policy.toml"), RULES).unwrap(),
            )),
            identities: Arc::new(Identities::parse(Path::new("identities.toml"), PEOPLE).unwrap()),
            check_approvers: true,
        };
        let config = EngineConfig {
            governance,
            ..EngineConfig::new(StoreOptions::new(dir.path().join("airlock.sqlite")))
        };
        let tools = Arc::new(
            BuiltinTools::open(&dir.path().join("effects.sqlite"))
                .await
                .unwrap(),
        );
        let engine = Engine::open(config, clock.clone(), tools, Some(model.clone()))
            .await
            .unwrap();
        Setup {
            dir,
            clock,
            engine,
            model,
        }
    }

    async fn start(&self) -> String {
        let wf = airlock_engine::workflow::parse(Path::new("agent-pay.toml"), WORKFLOW).unwrap();
        self.engine
            .start_task(&wf, serde_json::Map::new(), "req", None)
            .await
            .unwrap()
    }

    async fn run(&self, id: &str) -> TaskRecord {
        tokio::time::timeout(Duration::from_secs(20), self.engine.run_task(id))
            .await
            .unwrap()
            .unwrap()
    }

    /// The one pending approval of the task: its id and the call index it holds.
    async fn pending(&self, id: &str) -> (String, i64) {
        let pending: Vec<_> = self
            .engine
            .store()
            .task_approvals(id)
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.status == ApprovalStatus::Pending)
            .collect();
        assert_eq!(pending.len(), 1, "one pending approval: {pending:?}");
        let held = pending[0].held_call.as_ref().expect("a held tool call");
        (pending[0].id.clone(), held.call_index)
    }

    /// `builtin.record` effects by idempotency key, read from the tools' own file.
    async fn effects(&self) -> BTreeMap<String, i64> {
        let pool = sqlx::SqlitePool::connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(self.dir.path().join("effects.sqlite"))
                .read_only(true),
        )
        .await
        .unwrap();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT idempotency_key, COUNT(*) FROM effects WHERE tool = 'record' GROUP BY idempotency_key",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        rows.into_iter().collect()
    }

    async fn events(&self, id: &str) -> Vec<TaskEvent> {
        self.engine
            .store()
            .events(id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| serde_json::from_value(e.body).unwrap())
            .collect()
    }
}

/// `(call id, ok, content)` of every tool result in a request, in order.
fn results(request: &ModelRequest) -> Vec<(String, bool, Value)> {
    request
        .turns
        .iter()
        .filter_map(|t| match t {
            Turn::ToolResult {
                call, ok, content, ..
            } => Some((call.clone(), *ok, content.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_of_several_proposals_is_decided_on_its_own() {
    let s = Setup::new(proposes(vec![
        record("small", 10),
        record("owed", 75),
        record("greedy", 500),
    ]))
    .await;
    let id = s.start().await;
    let key = |index: i64| format!("{id}/1/{index}");

    // The allowed call runs at once; the first held one stops the step.
    let t = s.run(&id).await;
    assert_eq!(t.projection.status, TaskStatus::WaitingApproval);
    assert_eq!(s.effects().await, BTreeMap::from([(key(0), 1)]));
    let (owed, index) = s.pending(&id).await;
    assert_eq!(index, 1);

    let decided = s
        .engine
        .answer_approval(
            &owed,
            Answer::Approve {
                reason: Some("it is owed".into()),
            },
            "carol",
        )
        .await
        .unwrap();
    assert!(matches!(decided, Answered::Decided(_)));
    // The approved call runs; the next proposal is put to a person on its own.
    let t = s.run(&id).await;
    assert_eq!(t.projection.status, TaskStatus::WaitingApproval);
    assert_eq!(
        s.effects().await,
        BTreeMap::from([(key(0), 1), (key(1), 1)])
    );
    let (greedy, index) = s.pending(&id).await;
    assert_eq!(index, 2);
    assert_eq!(
        s.model.requests().len(),
        1,
        "no new turn while a proposal waits"
    );

    s.engine
        .answer_approval(
            &greedy,
            Answer::Reject {
                reason: Some("nothing like 500 is owed".into()),
            },
            "carol",
        )
        .await
        .unwrap();
    let t = s.run(&id).await;
    assert_eq!(t.projection.status, TaskStatus::Succeeded);
    assert_eq!(t.projection.state["think"], json!({ "done": true }));

    // The approved work was kept and made once; the rejected call never ran.
    assert_eq!(
        s.effects().await,
        BTreeMap::from([(key(0), 1), (key(1), 1)])
    );
    let calls = s.engine.store().tool_calls(&id).await.unwrap();
    assert_eq!(
        calls
            .iter()
            .map(|c| (c.call_index, c.outcome))
            .collect::<Vec<_>>(),
        [
            (0, Some(ToolCallOutcome::Succeeded)),
            (1, Some(ToolCallOutcome::Succeeded)),
            (2, Some(ToolCallOutcome::Refused)),
        ],
        "the rejected call's row says it was refused, never made"
    );
    assert_eq!(
        calls[2].refusal,
        Some(CallRefusal::Person {
            approval_id: greedy.clone(),
            rejected_by: "carol".into(),
            rule: Some("big records need a controller".into()),
        })
    );

    // The model's next request carries all three: two results and one refusal with why.
    let requests = s.model.requests();
    assert_eq!(requests.len(), 2);
    let seen = results(&requests[1]);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!((seen[0].0.as_str(), seen[0].1), ("small", true));
    assert_eq!(seen[0].2["label"], "small");
    assert_eq!((seen[1].0.as_str(), seen[1].1), ("owed", true));
    assert_eq!(seen[1].2["label"], "owed");
    assert_eq!((seen[2].0.as_str(), seen[2].1), ("greedy", false));
    let refusal = seen[2].2.as_str().unwrap();
    assert!(
        refusal.contains("carol rejected this call: nothing like 500 is owed"),
        "{refusal}"
    );

    // Each proposal was decided on its own, and the record says how.
    let events = s.events(&id).await;
    let decided: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            TaskEvent::PolicyDecided {
                call_index,
                effect,
                via,
                ..
            } => Some((*call_index, effect.as_str(), via.is_some())),
            _ => None,
        })
        .collect();
    assert_eq!(
        decided,
        [
            (0, "allow", false),
            (1, "require_approval", false),
            (1, "require_approval", true),
            (2, "require_approval", false),
        ]
    );
    assert!(events.iter().any(|e| matches!(
        e,
        TaskEvent::ToolRefused { call_index: 2, reason, .. } if reason.contains("nothing like 500")
    )));
    assert_eq!(
        airlock_engine::event::replay(&events),
        t.projection,
        "the history folds to the stored row"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_the_policy_never_allows_are_not_offered() {
    let s = Setup::new(proposes(vec![ProposedCall {
        id: "sneak".into(),
        tool: "builtin.upsert".into(),
        args: json!({ "key": "k", "value": 1 }),
    }]))
    .await;
    let id = s.start().await;
    let t = s.run(&id).await;
    assert_eq!(t.projection.status, TaskStatus::Succeeded);

    let requests = s.model.requests();
    let offered: Vec<_> = requests[0].tools.iter().map(|t| t.name.as_str()).collect();
    // upsert: denied outright; sleep: only controllers, and `req` is an operator.
    // fail: denied only above 3 times, so it may be called.
    // record: allowed, or held above 50.
    assert_eq!(
        offered,
        ["builtin.echo", "builtin.record", "builtin.fail"],
        "offered: {offered:?}"
    );

    // A model that proposes one anyway is refused with the rule, and nothing runs.
    let seen = results(&requests[1]);
    assert_eq!(seen.len(), 1);
    assert!(!seen[0].1);
    let refusal = seen[0].2.as_str().unwrap();
    assert!(
        refusal.contains("no upserts") && refusal.contains("upserts are switched off"),
        "{refusal}"
    );
    let calls = s.engine.store().tool_calls(&id).await.unwrap();
    assert_eq!(calls.len(), 1, "only the refusal, never made: {calls:#?}");
    assert_eq!(calls[0].outcome, Some(ToolCallOutcome::Refused));
    assert_eq!(
        calls[0].refusal,
        Some(CallRefusal::Policy {
            rule: Some("no upserts".into()),
            approval_id: None,
        })
    );
}

/// Nothing expired the approval yet (no engine ran since its deadline), and a person who
/// may decide it approves: too late. It is settled as expired there and then, and its
/// call is never made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_answered_after_its_deadline_is_expired_not_approved() {
    let s = Setup::new(proposes(vec![record("late", 500), record("small", 5)])).await;
    let id = s.start().await;
    let t = s.run(&id).await;
    assert_eq!(t.projection.status, TaskStatus::WaitingApproval);
    let (late, _) = s.pending(&id).await;

    s.clock.advance(Duration::from_secs(3601));
    let err = s
        .engine
        .answer_approval(&late, Answer::Approve { reason: None }, "carol")
        .await
        .expect_err("answered after its deadline");
    assert!(matches!(err, EngineError::Expired { .. }), "{err}");
    assert!(err.to_string().contains("expired"), "{err}");
    let approval = s.engine.store().approval(&late).await.unwrap().unwrap();
    assert!(
        matches!(approval.status, ApprovalStatus::Expired { .. }),
        "{:?}",
        approval.status
    );
    // A second try finds it decided.
    let again = s
        .engine
        .answer_approval(&late, Answer::Approve { reason: None }, "carol")
        .await
        .expect_err("already expired");
    assert!(matches!(again, EngineError::AlreadyDecided(_)), "{again}");

    tokio::time::timeout(Duration::from_secs(20), s.engine.run_until_idle())
        .await
        .unwrap()
        .unwrap();
    // The expired call never ran; the next proposal did.
    assert_eq!(
        s.effects().await,
        BTreeMap::from([(format!("{id}/1/1"), 1)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_call_whose_approval_expires_is_refused_to_the_model() {
    let s = Setup::new(proposes(vec![record("late", 500), record("small", 5)])).await;
    let id = s.start().await;
    let t = s.run(&id).await;
    assert_eq!(t.projection.status, TaskStatus::WaitingApproval);
    let (late, index) = s.pending(&id).await;
    assert_eq!(index, 0);

    s.clock.advance(Duration::from_secs(3601));
    tokio::time::timeout(Duration::from_secs(20), s.engine.run_until_idle())
        .await
        .unwrap()
        .unwrap();
    let t = s.engine.find_task(&id).await.unwrap();
    assert_eq!(
        t.projection.status,
        TaskStatus::Succeeded,
        "the step carried on"
    );
    let approval = s.engine.store().approval(&late).await.unwrap().unwrap();
    assert!(
        matches!(approval.status, ApprovalStatus::Expired { .. }),
        "recorded as expired, not as anyone's denial: {:?}",
        approval.status
    );

    // The expired call never ran; the next proposal did.
    assert_eq!(
        s.effects().await,
        BTreeMap::from([(format!("{id}/1/1"), 1)])
    );
    let requests = s.model.requests();
    assert_eq!(requests.len(), 2);
    let seen = results(&requests[1]);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!((seen[0].0.as_str(), seen[0].1), ("late", false));
    let refusal = seen[0].2.as_str().unwrap();
    assert!(
        refusal.contains("approval expired") && refusal.contains("not made"),
        "{refusal}"
    );
    assert_eq!((seen[1].0.as_str(), seen[1].1), ("small", true));
}
