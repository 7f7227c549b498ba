//! A task interrupted mid-call again and again is quarantined, and released by a person.

use std::sync::Arc;

use airlock_engine::store::{TaskStatus, ToolCallOutcome};
use airlock_engine::{EngineError, SystemClock, TaskEvent};

use crate::in_doubt::{UPSERT, crash_run};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeatedly_interrupted_task_is_quarantined_and_can_be_released() {
    within(async {
        let env = Env::new();
        let mut config = env.config();
        config.max_recoveries = 2;
        let hanging = || async {
            Arc::new(TestTools::hanging_on(
                env.builtin().await,
                "builtin.upsert",
                Hang::BeforeEffect,
                usize::MAX,
            ))
        };

        // The first run and two recoveries all die in the call.
        let tools = hanging().await;
        let first = env
            .engine_with(config.clone(), Arc::new(SystemClock), tools.clone())
            .await;
        let id = first
            .start_task(&parse(UPSERT), Default::default(), "t", None)
            .await
            .unwrap();
        let key = format!("{id}/1/0");
        crash_run(&first, &id, &tools).await;
        for failures in 1..=2 {
            let tools = hanging().await;
            let e = env
                .engine_with(config.clone(), Arc::new(SystemClock), tools.clone())
                .await;
            assert_eq!(
                crash_run(&e, &id, &tools).await,
                [("builtin.upsert".to_owned(), key.clone())]
            );
            let t = task(&e, &id).await;
            assert_eq!(t.projection.recovery_failures, failures);
            assert_eq!(t.projection.status, TaskStatus::Running);
        }

        // The third recovery gives up before calling.
        let tools = hanging().await;
        let e = env
            .engine_with(config.clone(), Arc::new(SystemClock), tools.clone())
            .await;
        let t = e.run_task(&id).await.unwrap();
        assert_eq!(t.projection.status, TaskStatus::Quarantined);
        assert_eq!(t.lease_owner, None);
        assert!(tools.keys().is_empty(), "a quarantined task makes no call");
        assert!(
            t.projection
                .error
                .as_deref()
                .unwrap_or_default()
                .contains("interrupted"),
            "{:?}",
            t.projection.error
        );
        let k = kinds(&e, &id).await;
        assert_eq!(k.iter().filter(|k| *k == "recovery_started").count(), 2);
        assert_eq!(k.last().map(String::as_str), Some("quarantined"));
        // Left alone by the scheduler.
        e.run_until_idle().await.unwrap();
        assert_eq!(
            task(&e, &id).await.projection.status,
            TaskStatus::Quarantined
        );
        assert_eq!(
            calls(&e, &id).await.len(),
            1,
            "one logical call the whole time"
        );
        assert_consistent(&e, &id).await;

        // Only a quarantined task can be released.
        let released = e.release_quarantined(&id, "ops").await.unwrap();
        assert_eq!(released.projection.status, TaskStatus::Running);
        assert_eq!(released.projection.recovery_failures, 0);
        assert_eq!(released.projection.error, None);
        assert_eq!(
            events(&e, &id).await.last(),
            Some(&TaskEvent::Released { by: "ops".into() })
        );
        assert!(matches!(
            e.release_quarantined(&id, "ops").await,
            Err(EngineError::WrongStatus {
                status: TaskStatus::Running,
                ..
            })
        ));
        assert_consistent(&e, &id).await;
        e.close().await.unwrap();

        // With a working tool it finishes, re-making the same call.
        let good = Arc::new(TestTools::new(env.builtin().await));
        let f = env
            .engine_with(config, Arc::new(SystemClock), good.clone())
            .await;
        f.run_until_idle().await.unwrap();
        let t = task(&f, &id).await;
        assert_eq!(t.projection.status, TaskStatus::Succeeded);
        // Released by a person, it was handed over, not interrupted again.
        let k = kinds(&f, &id).await;
        assert_eq!(k.iter().filter(|k| *k == "recovery_started").count(), 2);
        assert_eq!(good.keys(), [("builtin.upsert".to_owned(), key.clone())]);
        let ledger = calls(&f, &id).await;
        assert_eq!(ledger.len(), 1);
        assert_eq!(ledger[0].outcome, Some(ToolCallOutcome::Succeeded));
        assert_eq!(env.kv("k").await.map(|(_, k)| k), Some(key));
        assert_consistent(&f, &id).await;
    })
    .await;
}
