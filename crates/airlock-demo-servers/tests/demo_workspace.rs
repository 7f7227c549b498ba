//! The demo workspace as a user meets it: every workflow in `workspace/demo` runs end to
//! end against the four bundled servers (real processes, seeded SQLite files) and the
//! built-in tools, under the
//! demo's own `policy.toml` and `identities.toml`, with the scripted offline model. Every
//! approval (a workflow checkpoint or a call the policy held) is approved by the person
//! giving the demo, and every task must succeed.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use airlock_engine::policy::{Identities, PolicyFile};
use airlock_engine::store::{ApprovalStatus, StoreOptions, TaskStatus};
use airlock_engine::workflow::load_dir;
use airlock_engine::{
    Answer, BuiltinTools, Engine, EngineConfig, Governance, ScriptedModel, SystemClock, TaskEvent,
    ToolHosts,
};
use airlock_mcp::{McpTools, ServerConfig, ServersConfig};
use serde_json::{Value, json};

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workspace/demo")
}

async fn servers(dir: &Path) -> Arc<McpTools> {
    let mut config = ServersConfig::default();
    for (name, bin) in [
        ("support", env!("CARGO_BIN_EXE_airlock-demo-support")),
        ("crm", env!("CARGO_BIN_EXE_airlock-demo-crm")),
        ("hr", env!("CARGO_BIN_EXE_airlock-demo-hr")),
        ("erp", env!("CARGO_BIN_EXE_airlock-demo-erp")),
    ] {
        let db = dir.join(format!("demo-{name}.sqlite"));
        config.servers.insert(
            name.into(),
            ServerConfig::stdio(bin, &["--db", db.to_str().unwrap()]),
        );
    }
    Arc::new(McpTools::connect(config).await)
}

async fn engine(dir: &Path) -> Engine {
    let governance = Governance {
        policy: Arc::new(PolicyFile::open(&demo().join("policy.toml")).unwrap()),
        identities: Arc::new(Identities::load(&demo().join("identities.toml")).unwrap()),
        check_approvers: true,
    };
    Engine::open(
        EngineConfig {
            governance,
            ..EngineConfig::new(StoreOptions::new(dir.join("airlock.sqlite")))
        },
        Arc::new(SystemClock),
        Arc::new(
            ToolHosts::new()
                .with(Arc::new(
                    BuiltinTools::open(&dir.join("builtin-effects.sqlite"))
                        .await
                        .unwrap(),
                ))
                .with(servers(dir).await),
        ),
        Some(Arc::new(
            ScriptedModel::load(&demo().join("models")).unwrap(),
        )),
    )
    .await
    .unwrap()
}

/// Runs a task, approving whatever waits (as the demo's presenter, who has the default
/// roles), until it ends; returns its final record and how many approvals it needed.
async fn run_approving(
    engine: &Engine,
    workflow: &str,
    inputs: Value,
) -> (airlock_engine::store::TaskRecord, usize) {
    let (workflows, problems) = load_dir(&demo());
    assert!(
        problems.is_empty(),
        "the demo workspace validates: {problems}"
    );
    let wf = workflows.iter().find(|w| w.name == workflow).unwrap();
    let id = engine
        .start_task(wf, inputs.as_object().cloned().unwrap(), "presenter", None)
        .await
        .unwrap();
    for approvals in 0..10 {
        let task = engine.run_task(&id).await.unwrap();
        if task.projection.status != TaskStatus::WaitingApproval {
            return (task, approvals);
        }
        let pending = engine
            .store()
            .task_approvals(&id)
            .await
            .unwrap()
            .into_iter()
            .find(|a| a.status == ApprovalStatus::Pending)
            .unwrap();
        engine
            .answer_approval(&pending.id, Answer::Approve { reason: None }, "dana")
            .await
            .unwrap();
    }
    panic!("task {id} of {workflow} kept waiting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_demo_workflow_runs_end_to_end_under_the_demo_policy() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path()).await;
        let cases = [
            (
                "support-refund",
                json!({"order_id": "ORD-5002", "amount_cents": 6000}),
                1,
            ),
            // Above 200.00: the workflow's checkpoint, then the policy holds the refund.
            (
                "support-refund",
                json!({"order_id": "ORD-5004", "amount_cents": 25000}),
                2,
            ),
            ("finance-variance", json!({"month": "2026-06"}), 0),
            (
                "hr-onboarding",
                json!({"employee_id": "EMP-6010", "document": "handbook_ack"}),
                1,
            ),
            ("sales-renewal", json!({"account_id": "ACC-3003"}), 0),
            ("nightly-sync", json!({}), 0),
        ];
        for (workflow, inputs, at_least) in cases {
            let (task, approvals) = run_approving(&engine, workflow, inputs.clone()).await;
            assert_eq!(
                task.projection.status,
                TaskStatus::Succeeded,
                "{workflow} {inputs}: {:?}",
                task.projection.error
            );
            assert!(
                approvals >= at_least,
                "{workflow} {inputs} needed {approvals} approvals, expected at least {at_least}"
            );
            // Every call was decided by the demo policy, by name.
            let events = engine.store().events(&task.id).await.unwrap();
            for event in events {
                if let Ok(TaskEvent::PolicyDecided {
                    effect, rule, tool, ..
                }) = serde_json::from_value::<TaskEvent>(event.body)
                {
                    assert_ne!(effect, "deny", "{workflow}: {tool} was denied");
                    assert!(rule.is_some(), "{workflow}: {tool} decided by a named rule");
                }
            }
        }
        // The second day of the onboarding recalls the acknowledgement (filed and remembered
        // on the first) instead of filing it again.
        let (again, _) = run_approving(
            &engine,
            "hr-onboarding",
            json!({"employee_id": "EMP-6010", "document": "handbook_ack"}),
        )
        .await;
        assert_eq!(again.projection.status, TaskStatus::Succeeded);
        assert!(again.projection.state.get("record_document").is_none());
        assert_eq!(again.projection.state["recall"]["count"], json!(1));
        let remembered = &again.projection.state["recall"]["entries"][0];
        assert_eq!(remembered["key"], "handbook_ack");
        assert!(remembered["value"]["document_id"].is_i64(), "{remembered}");
        assert!(engine.store().verify_audit().await.unwrap().is_intact());
    })
    .await
    .expect("the demo workflows did not finish in time");
}
