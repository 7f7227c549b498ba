//! Long-lived memory: an onboarding that runs over several days (tasks on later dates, the
//! engine restarted in between, a manual clock) never asks again for a document already
//! handed in, and never skips the manager's approval; people correct and forget entries,
//! and each change is audited.

use std::sync::Arc;
use std::time::Duration;

use airlock_engine::store::{AuditFilter, MemoryQuery, TaskStatus};
use airlock_engine::{Engine, EngineError, ManualClock};
use serde_json::json;

use crate::approval::T0;
use crate::support::*;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// A day of onboarding: what was handed in before is recalled, a new document is filed
/// (a real effect) and remembered, and the laptop is ordered only after a manager approves
/// and only if it was not ordered already.
const ONBOARDING: &str = r#"
name = "onboarding"
start = "recall"

[inputs.employee]
type = "string"

[inputs.document]
type = "string"
default = ""

[states.recall]
kind = "recall"
subject = "inputs.employee"
next = "new_document"

[states.new_document]
kind = "choice"
default = "laptop_needed"

[[states.new_document.branches]]
when = "inputs.document != '' && !state.recall.entries.exists(e, e.category == 'document' && e.key == inputs.document)"
next = "file_document"

[states.file_document]
kind = "tool"
tool = "builtin.record"
args = { label = "'document'", employee = "inputs.employee", kind = "inputs.document" }
next = "remember_document"

[states.remember_document]
kind = "remember"
subject = "inputs.employee"
category = "document"
key = "inputs.document"
value = "{'filed_by_task': task.id, 'effect': state.file_document.effect_id}"
text = "{{ inputs.document }} handed in by {{ inputs.employee }}"
next = "laptop_needed"

[states.laptop_needed]
kind = "choice"
default = "done"

[[states.laptop_needed.branches]]
when = "!state.recall.entries.exists(e, e.category == 'equipment' && e.key == 'laptop')"
next = "manager_approval"

[states.manager_approval]
kind = "approval"
prompt = "Order a laptop for {{ inputs.employee }}?"
approvers = ["manager"]
expires_after = "3d"
next = "order_laptop"
on_reject = "done"
on_expire = "done"

[states.order_laptop]
kind = "tool"
tool = "builtin.record"
args = { label = "'laptop'", employee = "inputs.employee" }
next = "remember_laptop"

[states.remember_laptop]
kind = "remember"
subject = "inputs.employee"
category = "equipment"
key = "'laptop'"
value = "{'ordered_by_task': task.id}"
next = "done"

[states.done]
kind = "end"
status = "succeeded"
"#;

async fn day(engine: &Engine, employee: &str, document: &str) -> String {
    let id = engine
        .start_task(
            &parse(ONBOARDING),
            inputs(json!({ "employee": employee, "document": document })),
            "hr",
            None,
        )
        .await
        .unwrap();
    engine.run_task(&id).await.unwrap();
    id
}

async fn approve_pending(engine: &Engine, task: &str) {
    let approvals = engine.store().task_approvals(task).await.unwrap();
    let pending = approvals
        .iter()
        .find(|a| a.status == airlock_engine::store::ApprovalStatus::Pending)
        .expect("a pending approval");
    engine
        .decide_approval(&pending.id, true, "maya", None)
        .await
        .unwrap();
}

async fn effects_labelled(env: &Env, label: &str) -> i64 {
    let pool = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new().filename(env.effects_db()),
    )
    .await
    .unwrap();
    let n = sqlx::query_scalar("SELECT COUNT(*) FROM effects WHERE label = ?")
        .bind(label)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_onboarding_over_several_days_never_asks_twice_and_never_skips_the_approval() {
    within(async {
        let env = Env::new();
        let clock = Arc::new(ManualClock::new(T0));

        // Day 1: the W-4 is handed in and filed; the laptop waits for the manager.
        let monday = {
            let engine = env.engine(clock.clone()).await;
            let id = day(&engine, "EMP-1", "w4").await;
            assert_eq!(
                task(&engine, &id).await.projection.status,
                TaskStatus::WaitingApproval
            );
            engine.close().await.unwrap();
            id
        };
        assert_eq!(effects_labelled(&env, "document").await, 1);

        // Day 2, a restarted engine: the same W-4 is handed in again. It is recalled, not
        // filed again, and the laptop still needs the manager (nobody approved yet).
        clock.advance(DAY);
        let engine = env.engine(clock.clone()).await;
        let tuesday = day(&engine, "EMP-1", "w4").await;
        let t = task(&engine, &tuesday).await;
        assert_eq!(t.projection.status, TaskStatus::WaitingApproval);
        assert_eq!(t.projection.state["recall"]["count"], json!(1));
        assert_eq!(
            effects_labelled(&env, "document").await,
            1,
            "not filed twice"
        );
        assert_eq!(
            effects_labelled(&env, "laptop").await,
            0,
            "no approval, no laptop"
        );

        // The manager approves Monday's request on Tuesday: the laptop is ordered, once.
        approve_pending(&engine, &monday).await;
        assert_eq!(
            engine.run_task(&monday).await.unwrap().projection.status,
            TaskStatus::Succeeded
        );
        assert_eq!(effects_labelled(&env, "laptop").await, 1);
        engine.close().await.unwrap();

        // Day 4, restarted again: Tuesday's request expired unanswered (3 days), so it
        // ordered nothing; a new day's task with a new document files only that one and
        // knows the laptop is on its way, so it asks nobody for it.
        clock.advance(DAY * 3);
        let engine = env.engine(clock.clone()).await;
        engine.run_until_idle().await.unwrap();
        assert_eq!(
            task(&engine, &tuesday).await.projection.status,
            TaskStatus::Succeeded
        );
        assert_eq!(
            effects_labelled(&env, "laptop").await,
            1,
            "expiry orders nothing"
        );
        let thursday = day(&engine, "EMP-1", "i9").await;
        let t = task(&engine, &thursday).await;
        assert_eq!(t.projection.status, TaskStatus::Succeeded);
        assert!(
            engine
                .store()
                .task_approvals(&thursday)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(effects_labelled(&env, "document").await, 2);
        for id in [&monday, &tuesday, &thursday] {
            assert_consistent(&engine, id).await;
        }

        // What is remembered, with its source.
        let remembered = engine
            .memory(&MemoryQuery {
                subject: Some("EMP-1".into()),
                limit: 10,
                ..MemoryQuery::default()
            })
            .await
            .unwrap();
        let keys: Vec<(&str, &str)> = remembered
            .iter()
            .map(|m| (m.category.as_str(), m.key.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("document", "i9"),
                ("equipment", "laptop"),
                ("document", "w4")
            ]
        );
        assert_eq!(remembered[2].source_task.as_deref(), Some(monday.as_str()));
        let found = engine
            .memory(&MemoryQuery {
                search: Some("w4".into()),
                limit: 10,
                ..MemoryQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "full-text search finds the W-4");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_correct_and_forget_entries_and_each_change_is_recorded() {
    within(async {
        let env = Env::new();
        let clock = Arc::new(ManualClock::new(T0));
        let engine = env.engine(clock.clone()).await;
        let monday = day(&engine, "EMP-2", "nda").await;
        approve_pending(&engine, &monday).await;
        engine.run_task(&monday).await.unwrap();
        let nda = |engine: Engine| async move {
            engine
                .memory(&MemoryQuery {
                    subject: Some("EMP-2".into()),
                    categories: vec!["document".into()],
                    limit: 10,
                    ..MemoryQuery::default()
                })
                .await
                .unwrap()
        };
        let before = nda(engine.clone()).await;
        assert_eq!(before.len(), 1);

        let corrected = engine
            .correct_memory(
                &before[0].id,
                json!({"filed_by_task": "paper"}),
                None,
                "sam",
            )
            .await
            .unwrap();
        assert_eq!(corrected.source_person.as_deref(), Some("sam"));
        let now = nda(engine.clone()).await;
        assert_eq!(now.len(), 1);
        assert_eq!(now[0].value, Some(json!({"filed_by_task": "paper"})));
        let old = engine
            .store()
            .memory_entry(&before[0].id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(old.superseded_by.as_deref(), Some(corrected.id.as_str()));

        engine.forget_memory(&corrected.id, "sam").await.unwrap();
        assert!(nda(engine.clone()).await.is_empty());
        // What it corrected is forgotten with it: no value or text left in its history,
        // and a search of the history finds neither.
        for id in [&before[0].id, &corrected.id] {
            let gone = engine.store().memory_entry(id).await.unwrap().unwrap();
            assert_eq!(gone.value, None, "{id}");
            assert_eq!(gone.text, "", "{id}");
            assert_eq!(gone.deleted_by.as_deref(), Some("sam"), "{id}");
        }
        let searched = engine
            .memory(&MemoryQuery {
                subject: Some("EMP-2".into()),
                with_history: true,
                limit: 10,
                ..MemoryQuery::default()
            })
            .await
            .unwrap();
        // Other facts about EMP-2 stay; the NDA's two entries are empty.
        let nda_history: Vec<_> = searched
            .iter()
            .filter(|m| m.key == before[0].key && m.category == before[0].category)
            .collect();
        assert_eq!(nda_history.len(), 2, "{searched:#?}");
        assert!(
            nda_history.iter().all(|m| m.value.is_none()),
            "{nda_history:#?}"
        );
        assert!(matches!(
            engine.forget_memory(&corrected.id, "sam").await,
            Err(EngineError::NoMemory(_))
        ));
        // Forgotten, so a new day's NDA is filed again.
        let tuesday = day(&engine, "EMP-2", "nda").await;
        assert_eq!(
            task(&engine, &tuesday).await.projection.status,
            TaskStatus::Succeeded
        );
        assert_eq!(effects_labelled(&env, "document").await, 2);

        let kinds: Vec<String> = engine
            .store()
            .audit_entries(&AuditFilter {
                limit: Some(1000),
                ..AuditFilter::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        for kind in ["memory_written", "memory_corrected", "memory_forgotten"] {
            assert!(kinds.iter().any(|k| k == kind), "{kind} audited: {kinds:?}");
        }
        assert!(engine.store().verify_audit().await.unwrap().is_intact());

        // A search that is not FTS5 syntax says so, in words.
        let bad = engine
            .memory(&MemoryQuery {
                search: Some("\"unclosed".into()),
                limit: 5,
                ..MemoryQuery::default()
            })
            .await
            .unwrap_err();
        assert!(
            bad.to_string().contains("not valid full-text search"),
            "{bad}"
        );
    })
    .await;
}
