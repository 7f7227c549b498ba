//! One task, two engines on one file: only the lease holder runs it.

use std::sync::Arc;
use std::time::Duration;

use airlock_engine::store::{TaskFilter, TaskStatus};
use airlock_engine::{Engine, EngineError, SystemClock};

use crate::in_doubt::RECORD;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_held_by_a_live_engine_is_not_run_by_another() {
    within(async {
        let env = Env::new();
        let tools = Arc::new(TestTools::hanging_on(
            env.builtin().await,
            "builtin.record",
            Hang::AfterEffect,
            1,
        ));
        let a = env
            .engine_with(env.config(), Arc::new(SystemClock), tools.clone())
            .await;
        let id = a
            .start_task(&parse(RECORD), Default::default(), "t", None)
            .await
            .unwrap();
        // Opened after the task exists: see `two_engines_create_tasks_in_one_file_at_once`.
        let b = env.engine(Arc::new(SystemClock)).await;
        assert_ne!(a.id(), b.id());
        let runner = tokio::spawn({
            let a = a.clone();
            let id = id.clone();
            async move { a.run_task(&id).await }
        });
        wait_for("A's call to hang", || async { tools.is_hanging() }).await;
        assert_eq!(env.effects().await, 1);

        // B sees no work it may take, and returns at once.
        tokio::time::timeout(Duration::from_secs(5), b.run_until_idle())
            .await
            .expect("B does not wait for a task another live engine holds")
            .unwrap();
        assert_eq!(env.effects().await, 1, "B did not make the call again");
        let t = task(&b, &id).await;
        assert_eq!(t.lease_owner.as_deref(), Some(a.id()));
        assert_eq!(t.projection.status, TaskStatus::Running);
        assert_eq!(calls(&b, &id).await.len(), 1);
        assert!(
            !kinds(&b, &id)
                .await
                .contains(&"recovery_started".to_owned())
        );

        // Asked directly, B says who holds it.
        let busy = b.run_task(&id).await;
        assert!(
            matches!(&busy, Err(EngineError::Busy { holder, .. }) if holder == a.id()),
            "{busy:?}"
        );
        // A's heartbeat keeps the lease alive beyond one renewal period.
        let before = task(&b, &id).await.lease_expires_at.unwrap();
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let after = task(&b, &id).await.lease_expires_at.unwrap();
        assert!(after > before, "lease renewed: {before} -> {after}");
        b.run_until_idle().await.unwrap();
        assert_eq!(env.effects().await, 1);

        runner.abort();
        let _ = runner.await;
        assert_consistent(&b, &id).await;
    })
    .await;
}

async fn start_and_run_on_both(a: &Engine, b: &Engine, register_first: bool) {
    let wf = parse(crate::in_doubt::UPSERT);
    if register_first {
        a.register_workflow(&wf, None).await.unwrap();
        b.register_workflow(&wf, None).await.unwrap();
    }
    let mut starts = tokio::task::JoinSet::new();
    for i in 0..40 {
        let engine = if i % 2 == 0 { a.clone() } else { b.clone() };
        let wf = wf.clone();
        starts.spawn(async move {
            let id = engine
                .start_task(&wf, Default::default(), "t", None)
                .await?;
            engine.run_task(&id).await
        });
    }
    while let Some(joined) = starts.join_next().await {
        let t = joined.unwrap().expect("every commit lands");
        assert_eq!(t.projection.status, TaskStatus::Succeeded);
    }
    let all = a.store().list_tasks(&TaskFilter::default()).await.unwrap();
    assert_eq!(all.len(), 40);
}

/// Two engines (as two processes would) creating tasks in one file at once: every
/// commit must land. (A deferred group-commit transaction that read before writing once
/// failed here with "database is locked"; commits now begin IMMEDIATE.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_engines_create_tasks_in_one_file_at_once() {
    within(async {
        let env = Env::new();
        let a = env.engine(Arc::new(SystemClock)).await;
        let b = env.engine(Arc::new(SystemClock)).await;
        start_and_run_on_both(&a, &b, true).await;
    })
    .await;
}

/// Two engines registering the same new workflow at once must both get its one version.
/// (Look-up-then-insert outside one transaction once let both insert.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_engines_register_one_workflow_at_once() {
    within(async {
        let env = Env::new();
        let a = env.engine(Arc::new(SystemClock)).await;
        let b = env.engine(Arc::new(SystemClock)).await;
        start_and_run_on_both(&a, &b, false).await;
    })
    .await;
}
