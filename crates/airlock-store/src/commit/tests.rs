//! Group commits written as batches: each commit of a group is checked on its own, and
//! the rows folded into a few statements are the rows the commits describe.
//!
//! Commits sent together from one current-thread runtime (`tokio::join!`) reach the
//! writer before it runs, so they form one group.

use serde_json::{Value, json};

use super::*;
use crate::lease::Claimed;
use crate::open::StoreOptions;
use crate::records::{NewEvent, TaskProjection, TaskStatus};

const T0: Millis = 1_795_777_200_000;

async fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(StoreOptions::new(dir.path().join("airlock.sqlite")), T0)
        .await
        .expect("open store")
}

fn event(kind: &str) -> NewEvent {
    NewEvent {
        kind: kind.into(),
        body: json!({ "kind": kind }),
    }
}

fn commit(task: &str, expected_seq: i64, events: &[&str]) -> TaskCommit {
    TaskCommit {
        task_id: task.into(),
        at: T0 + expected_seq,
        expected_seq,
        lease_owner: Some("engine-1".into()),
        create: None,
        events: events.iter().map(|k| event(k)).collect(),
        projection: TaskProjection {
            status: TaskStatus::Running,
            current_state: Some("a".into()),
            step_no: 1,
            attempt: 1,
            phase: json!({ "at": "enter" }),
            state: Value::Null,
            error: None,
            wake_at: None,
            recovery_failures: 0,
        },
        outputs: Vec::new(),
        steps: Vec::new(),
        tool_calls: Vec::new(),
        approvals: Vec::new(),
        release_lease: false,
    }
}

/// Creates `task` with two events (so its `last_seq` is 2), held by `engine-1`.
async fn create(store: &Store, task: &str) {
    let wf = store
        .register_workflow("wf", "h1", "name = 'wf'", None, T0)
        .await
        .expect("register workflow")
        .id;
    let mut c = commit(task, 0, &["created", "step_started"]);
    c.create = Some(NewTask {
        workflow_id: wf,
        workflow_name: "wf".into(),
        requester: "alice".into(),
        inputs: json!({}),
    });
    assert_eq!(
        store.commit(c).await.expect("create"),
        CommitOutcome::Committed { last_seq: 2 }
    );
}

async fn kinds(store: &Store, task: &str) -> Vec<String> {
    let events = store.events(task).await.expect("events");
    events.into_iter().map(|e| e.kind).collect()
}

#[tokio::test]
async fn refused_commits_in_a_group_write_nothing_and_the_others_land() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir).await;
    for task in ["stale", "stolen", "good"] {
        create(&store, task).await;
    }
    let mut stolen = commit("stolen", 2, &["tool_called"]);
    stolen.lease_owner = Some("engine-2".into());
    let (a, b, c, d) = tokio::join!(
        store.commit(commit("stale", 1, &["tool_called"])),
        store.commit(stolen),
        store.commit(commit("good", 2, &["tool_called", "step_succeeded"])),
        store.commit(commit("missing", 2, &["tool_called"])),
    );
    assert_eq!(
        a.expect("stale"),
        CommitOutcome::StaleSequence {
            expected: 1,
            found: 2
        }
    );
    assert_eq!(
        b.expect("stolen"),
        CommitOutcome::LeaseLost {
            holder: Some("engine-1".into())
        }
    );
    assert_eq!(c.expect("good"), CommitOutcome::Committed { last_seq: 4 });
    assert_eq!(d.expect("missing"), CommitOutcome::TaskMissing);
    assert_eq!(kinds(&store, "stale").await, ["created", "step_started"]);
    assert_eq!(kinds(&store, "stolen").await, ["created", "step_started"]);
    assert_eq!(
        kinds(&store, "good").await,
        ["created", "step_started", "tool_called", "step_succeeded"]
    );
    let report = store.verify_audit().await.expect("verify");
    assert!(report.is_intact(), "{:?}", report.problems);
    // created ×3, then the good commit's tool_called (step events are not audited).
    assert_eq!(report.entries, 4);
}

#[tokio::test]
async fn two_commits_of_one_task_in_a_group_land_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir).await;
    create(&store, "t").await;
    let mut second = commit("t", 3, &["step_succeeded"]);
    second.release_lease = true;
    second.projection.status = TaskStatus::Succeeded;
    let (a, b, c) = tokio::join!(
        store.commit(commit("t", 2, &["tool_called"])),
        store.commit(second),
        // Stale after the first two: it saw the task before either.
        store.commit(commit("t", 2, &["tool_called"])),
    );
    assert_eq!(a.expect("first"), CommitOutcome::Committed { last_seq: 3 });
    assert_eq!(b.expect("second"), CommitOutcome::Committed { last_seq: 4 });
    assert_eq!(
        c.expect("third"),
        CommitOutcome::StaleSequence {
            expected: 2,
            found: 4
        }
    );
    let task = store.task("t").await.expect("read").expect("task");
    assert_eq!(task.last_seq, 4);
    assert_eq!(task.projection.status, TaskStatus::Succeeded);
    assert_eq!(task.lease_owner, None);
    assert_eq!(
        kinds(&store, "t").await,
        ["created", "step_started", "tool_called", "step_succeeded"]
    );
}

#[tokio::test]
async fn folded_step_and_ledger_writes_leave_the_rows_written_one_by_one_would() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir).await;
    create(&store, "t").await;
    let intent = |id: &str, step_no: i64| ToolCallWrite::Intent {
        call: ProposedCall {
            id: id.into(),
            step_no,
            attempt: 1,
            call_index: 0,
            tool: "builtin.echo".into(),
            args: json!({ "step": step_no }),
            args_hash: "h".into(),
            idempotency_key: format!("t/{step_no}/0"),
            idempotent: true,
        },
        allowed: CallAllowance::Policy { rule: None },
    };
    let outcome = |id: &str, resolved_by: Option<&str>| ToolCallWrite::Outcome {
        id: id.into(),
        outcome: ToolCallOutcome::Succeeded,
        result: Some(json!({ "ok": id })),
        error: None,
        resolved_by: resolved_by.map(str::to_owned),
    };
    // Step 1 starts and calls c1.
    let mut first = commit("t", 2, &["tool_called"]);
    first.steps.push(StepWrite::Start {
        step_no: 1,
        state_name: "a".into(),
        kind: "tool".into(),
        attempt: 1,
    });
    first.tool_calls.push(intent("c1", 1));
    assert!(matches!(
        store.commit(first).await.expect("first"),
        CommitOutcome::Committed { .. }
    ));
    // c1's outcome, step 1 ends; step 2 starts, ends and starts again (a retry); c2 is
    // intended and settled in the same commit, then settled again without a name.
    let mut second = commit("t", 3, &["tool_succeeded", "step_succeeded"]);
    second.steps = vec![
        StepWrite::End {
            step_no: 1,
            outcome: "succeeded".into(),
            error: None,
        },
        StepWrite::Start {
            step_no: 2,
            state_name: "b".into(),
            kind: "tool".into(),
            attempt: 1,
        },
        StepWrite::End {
            step_no: 2,
            outcome: "failed".into(),
            error: Some("boom".into()),
        },
        StepWrite::Start {
            step_no: 2,
            state_name: "b".into(),
            kind: "tool".into(),
            attempt: 2,
        },
    ];
    second.tool_calls = vec![
        outcome("c1", None),
        intent("c2", 2),
        outcome("c2", Some("bob")),
        outcome("c2", None),
    ];
    second.outputs = vec![("a".into(), json!(1)), ("a".into(), json!(2))];
    assert!(matches!(
        store.commit(second).await.expect("second"),
        CommitOutcome::Committed { .. }
    ));

    let steps = store.steps("t").await.expect("steps");
    let rows: Vec<(i64, &str, i64, Option<&str>)> = steps
        .iter()
        .map(|s| {
            (
                s.step_no,
                s.state_name.as_str(),
                s.attempts,
                s.outcome.as_deref(),
            )
        })
        .collect();
    assert_eq!(rows, [(1, "a", 1, Some("succeeded")), (2, "b", 2, None)]);
    assert_eq!(steps[1].ended_at, None);
    let calls = store.tool_calls("t").await.expect("calls");
    let c1 = calls.iter().find(|c| c.id == "c1").expect("c1");
    let c2 = calls.iter().find(|c| c.id == "c2").expect("c2");
    assert_eq!(c1.outcome, Some(ToolCallOutcome::Succeeded));
    assert_eq!(c1.resolved_by, None);
    assert_eq!(c2.outcome, Some(ToolCallOutcome::Succeeded));
    assert_eq!(c2.result, Some(json!({ "ok": "c2" })));
    // A later outcome that names no one keeps the name an earlier one gave.
    assert_eq!(c2.resolved_by.as_deref(), Some("bob"));
    let task = store.task("t").await.expect("read").expect("task");
    assert_eq!(task.projection.state, json!({ "a": 2 }));
}

#[tokio::test]
async fn an_approval_decided_twice_in_one_group_is_decided_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir).await;
    create(&store, "t").await;
    let mut ask = commit("t", 2, &["approval_requested"]);
    ask.approvals.push(ApprovalWrite::Request {
        id: "ap1".into(),
        step_no: 1,
        state_name: "a".into(),
        prompt: "ok?".into(),
        approvers: vec!["bob".into()],
        requested_at: T0 + 2,
        expires_at: None,
        tool_call_id: None,
        args_hash: None,
        policy_version: None,
        held_call: None,
    });
    assert!(matches!(
        store.commit(ask).await.expect("ask"),
        CommitOutcome::Committed { last_seq: 3 }
    ));
    let decide = |expected_seq, by: &str| {
        let mut c = commit("t", expected_seq, &["approval_decided"]);
        c.approvals.push(ApprovalWrite::Decide {
            id: "ap1".into(),
            status: ApprovalStatus::Approved {
                by: by.into(),
                at: T0 + 9,
                reason: None,
                edited_args: None,
            },
        });
        c
    };
    let (a, b) = tokio::join!(
        store.commit(decide(3, "bob")),
        store.commit(decide(4, "carol"))
    );
    assert_eq!(a.expect("first"), CommitOutcome::Committed { last_seq: 4 });
    assert_eq!(
        b.expect("second"),
        CommitOutcome::ApprovalAlreadyDecided { id: "ap1".into() }
    );
    let approval = store.approval("ap1").await.expect("read").expect("ap1");
    assert!(
        matches!(&approval.status, ApprovalStatus::Approved { by, .. } if by == "bob"),
        "{:?}",
        approval.status
    );
    assert_eq!(
        store.task("t").await.expect("read").expect("task").last_seq,
        4
    );
}

/// Most step commits leave the task's status, wake time and lease as they were and do
/// not set those columns (so their indexes are not rewritten); the commits that change
/// them, in the same group or later, still leave every index matching its table.
#[tokio::test]
async fn commits_that_keep_or_change_the_indexed_columns_leave_the_indexes_matching() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir).await;
    create(&store, "t1").await;

    let mut moves = commit("t1", 2, &["step_ended"]);
    moves.projection.step_no = 2;
    let mut sleeps = commit("t1", 3, &["retry_scheduled"]);
    sleeps.projection.step_no = 2;
    sleeps.projection.wake_at = Some(T0 + 60_000);
    let mut moves_while_asleep = commit("t1", 4, &["note"]);
    moves_while_asleep.projection.step_no = 3;
    moves_while_asleep.projection.wake_at = Some(T0 + 60_000);
    let (a, b, c) = tokio::join!(
        store.commit(moves),
        store.commit(sleeps),
        store.commit(moves_while_asleep)
    );
    assert_eq!(a.expect("moves"), CommitOutcome::Committed { last_seq: 3 });
    assert_eq!(b.expect("sleeps"), CommitOutcome::Committed { last_seq: 4 });
    assert_eq!(
        c.expect("moves again"),
        CommitOutcome::Committed { last_seq: 5 }
    );
    let asleep = store.task("t1").await.expect("read").expect("task");
    assert_eq!(asleep.projection.step_no, 3, "the group's last move landed");
    assert_eq!(asleep.projection.wake_at, Some(T0 + 60_000));

    let mut waits = commit("t1", 5, &["approval_requested"]);
    waits.projection.status = TaskStatus::WaitingApproval;
    waits.projection.step_no = 3;
    waits.release_lease = true;
    assert_eq!(
        store.commit(waits).await.expect("waits"),
        CommitOutcome::Committed { last_seq: 6 }
    );

    let task = store.task("t1").await.expect("read").expect("task");
    assert_eq!(task.last_seq, 6);
    assert_eq!(task.projection.status, TaskStatus::WaitingApproval);
    assert_eq!(task.projection.step_no, 3);
    // Set by the commit that changed the status, which writes every column.
    assert_eq!(task.projection.wake_at, None);
    let waiting = store
        .list_tasks(&crate::query::TaskFilter {
            status: Some(TaskStatus::WaitingApproval),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(waiting.len(), 1, "found through tasks_by_status");
    let (check,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&store.inner.reads)
        .await
        .expect("integrity check");
    assert_eq!(check, "ok");
    let (held,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM tasks INDEXED BY tasks_by_lease WHERE lease_owner = 'engine-1'",
    )
    .fetch_one(&store.inner.reads)
    .await
    .expect("lease index");
    assert_eq!(held, 0, "the released lease left tasks_by_lease too");
}

/// A claim says whose run it takes over: an engine that was forgotten (stopped or found
/// dead) or whose lease ran out; nobody's when the lease was given back or is its own.
#[tokio::test]
async fn a_claim_names_the_engine_whose_run_it_takes_over() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir).await;
    create(&store, "t1").await;
    let claim = |engine: &'static str, now: Millis| {
        let store = store.clone();
        async move {
            store
                .claim("t1", engine, now, now + 1_000)
                .await
                .expect("claim")
                .expect("claimed")
        }
    };
    let left = |c: Claimed| c.left_by;

    assert_eq!(store.forget_engine("engine-1").await.expect("forget"), 1);
    // The forgotten engine's heartbeat cannot take its lease back.
    store
        .heartbeat("engine-1", T0, T0 + 60_000)
        .await
        .expect("heartbeat");
    let freed = store.task("t1").await.expect("task").expect("t1");
    assert_eq!((freed.lease_owner, freed.lease_expires_at), (None, None));
    assert_eq!(left(claim("engine-2", T0).await), Some("engine-1".into()));

    store.release("t1", "engine-2").await.expect("release");
    assert_eq!(left(claim("engine-3", T0).await), None, "given back");
    assert_eq!(left(claim("engine-3", T0).await), None, "its own");
    assert_eq!(
        left(claim("engine-4", T0 + 5_000).await),
        Some("engine-3".into()),
        "ran out"
    );

    // `claim_runnable` says the same, and a claim clears what it took over.
    store.forget_engine("engine-4").await.expect("forget");
    let runnable = store
        .claim_runnable("engine-5", T0 + 5_000, T0 + 6_000, 10)
        .await
        .expect("claim runnable");
    assert_eq!(runnable.len(), 1);
    assert_eq!(runnable[0].left_by.as_deref(), Some("engine-4"));
    store.release("t1", "engine-5").await.expect("release");
    assert_eq!(left(claim("engine-6", T0 + 5_000).await), None);
}
