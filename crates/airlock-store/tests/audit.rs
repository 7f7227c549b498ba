//! The audit log: task commits and other entries build one hash chain, and tampering with
//! the table (a changed body, a deleted row, a changed hash, a re-hashed row) is reported
//! against the entry it touched.

use airlock_store::{
    AuditAnchor, AuditEntryWrite, AuditFault, AuditFilter, AuditReport, CallAllowance,
    CommitOutcome, GENESIS, NewEvent, NewTask, ProposedCall, Store, StoreError, StoreOptions,
    TaskCommit, TaskProjection, TaskStatus, ToolCallWrite, entry_hash,
};
use serde_json::{Value, json};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};

const T0: i64 = 1_795_777_200_000;

async fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(StoreOptions::new(dir.path().join("airlock.sqlite")), T0)
        .await
        .expect("open store")
}

async fn workflow(store: &Store) -> i64 {
    store
        .register_workflow("wf", "h1", "name = 'wf'", None, T0)
        .await
        .expect("register workflow")
        .id
}

fn event(kind: &str, body: Value) -> NewEvent {
    let mut body = body;
    if let Some(map) = body.as_object_mut() {
        map.insert("kind".into(), json!(kind));
    }
    NewEvent {
        kind: kind.into(),
        body,
    }
}

fn projection() -> TaskProjection {
    TaskProjection {
        status: TaskStatus::Running,
        current_state: Some("a".into()),
        step_no: 1,
        attempt: 1,
        phase: json!({ "at": "enter" }),
        state: Value::Null,
        error: None,
        wake_at: None,
        recovery_failures: 0,
    }
}

fn commit(task: &str, at: i64, expected_seq: i64, events: Vec<NewEvent>) -> TaskCommit {
    TaskCommit {
        task_id: task.into(),
        at,
        expected_seq,
        lease_owner: Some("engine-1".into()),
        create: None,
        events,
        projection: projection(),
        outputs: Vec::new(),
        steps: Vec::new(),
        tool_calls: Vec::new(),
        approvals: Vec::new(),
        release_lease: false,
    }
}

/// A new task: `created` (audited, by its requester) and `step_started` (not audited).
fn create(task: &str, workflow_id: i64, at: i64) -> TaskCommit {
    let mut c = commit(
        task,
        at,
        0,
        vec![
            event(
                "created",
                json!({ "workflow": "wf", "requester": "alice", "inputs": {} }),
            ),
            event("step_started", json!({ "step_no": 1, "state": "a" })),
        ],
    );
    c.create = Some(NewTask {
        workflow_id,
        workflow_name: "wf".into(),
        requester: "alice".into(),
        inputs: json!({}),
    });
    c
}

async fn landed(store: &Store, c: TaskCommit) -> i64 {
    match store.commit(c).await.expect("commit") {
        CommitOutcome::Committed { last_seq } => last_seq,
        other => panic!("commit refused: {other:?}"),
    }
}

/// One task through a few commits, plus one entry outside any task: 5 audit entries.
async fn history(store: &Store) {
    let wf = workflow(store).await;
    let seq = landed(store, create("task-1", wf, T0)).await;
    let seq = landed(
        store,
        commit(
            "task-1",
            T0 + 10,
            seq,
            vec![
                event(
                    "tool_called",
                    json!({ "call_id": "c1", "tool": "builtin.echo" }),
                ),
                event("tool_progress", json!({ "call_id": "c1", "progress": 0.5 })),
            ],
        ),
    )
    .await;
    store
        .append_audit(AuditEntryWrite {
            at: T0 + 15,
            kind: "policy_loaded".into(),
            actor: "engine-1".into(),
            task_id: None,
            body: json!({ "version": "p1" }),
        })
        .await
        .expect("append");
    landed(
        store,
        commit(
            "task-1",
            T0 + 20,
            seq,
            vec![
                event("tool_returned", json!({ "call_id": "c1", "ok": true })),
                event("step_succeeded", json!({ "step_no": 1, "next": "b" })),
                event(
                    "approval_decided",
                    json!({ "approval_id": "a1", "decision": "approved", "by": "bob" }),
                ),
            ],
        ),
    )
    .await;
}

async fn tamper(dir: &tempfile::TempDir, sql: &str) {
    let mut conn = SqliteConnection::connect_with(
        &SqliteConnectOptions::new().filename(dir.path().join("airlock.sqlite")),
    )
    .await
    .expect("connect");
    let done = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .expect("tamper");
    assert!(done.rows_affected() > 0, "`{sql}` changed nothing");
    conn.close().await.expect("close");
}

fn faults(report: &AuditReport) -> Vec<(i64, AuditFault)> {
    report
        .problems
        .iter()
        .map(|p| (p.seq, p.fault.clone()))
        .collect()
}

#[tokio::test]
async fn task_commits_and_other_entries_build_one_chain() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir).await;
    history(&store).await;

    let entries = store
        .audit_entries(&AuditFilter::default())
        .await
        .expect("entries");
    let summary: Vec<(i64, &str, &str, Option<&str>)> = entries
        .iter()
        .map(|e| {
            (
                e.seq,
                e.kind.as_str(),
                e.actor.as_str(),
                e.task_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "created", "alice", Some("task-1")),
            (2, "tool_called", "engine-1", Some("task-1")),
            (3, "policy_loaded", "engine-1", None),
            (4, "tool_returned", "engine-1", Some("task-1")),
            (5, "approval_decided", "bob", Some("task-1")),
        ]
    );
    // The chain, recomputed from the rows as an outside tool would.
    let mut prev = GENESIS.to_owned();
    for e in &entries {
        assert_eq!(e.prev_hash, prev);
        let body = e.body.to_string();
        let hash = entry_hash(
            &prev,
            e.seq,
            e.at,
            &e.kind,
            &e.actor,
            e.task_id.as_deref(),
            &body,
        );
        assert_eq!(e.hash, hash, "entry {}", e.seq);
        prev = hash;
    }
    // The body is the event's body as stored in task_events.
    let events = store.events("task-1").await.expect("events");
    assert_eq!(entries[0].body, events[0].body);

    let report = store.verify_audit().await.expect("verify");
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.entries, 5);
    assert_eq!(report.head.as_deref(), Some(prev.as_str()));

    let only_task = store
        .audit_entries(&AuditFilter {
            task_id: Some("task-1".into()),
            after_seq: Some(1),
            limit: Some(2),
            newest_first: false,
        })
        .await
        .expect("filtered");
    assert_eq!(only_task.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 4]);
    let newest = store
        .audit_entries(&AuditFilter {
            limit: Some(2),
            newest_first: true,
            ..AuditFilter::default()
        })
        .await
        .expect("newest");
    assert_eq!(newest.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 4]);
}

#[tokio::test]
async fn a_refused_commit_appends_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir).await;
    let wf = workflow(&store).await;
    landed(&store, create("task-1", wf, T0)).await;
    let stale = commit(
        "task-1",
        T0 + 1,
        0,
        vec![event("cancelled", json!({ "by": "mallory" }))],
    );
    assert!(matches!(
        store.commit(stale).await.expect("commit"),
        CommitOutcome::StaleSequence { .. }
    ));
    let report = store.verify_audit().await.expect("verify");
    assert!(report.is_intact());
    assert_eq!(report.entries, 1);
}

#[tokio::test]
async fn an_empty_log_is_intact() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir).await;
    let report = store.verify_audit().await.expect("verify");
    assert!(report.is_intact());
    assert_eq!((report.entries, report.head), (0, None));
}

#[tokio::test]
async fn a_changed_body_names_the_entry() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir).await;
    history(&store).await;
    tamper(
        &dir,
        r#"UPDATE audit_log SET body = replace(body, '"bob"', '"mallory"') WHERE seq = 5"#,
    )
    .await;
    let report = store.verify_audit().await.expect("verify");
    assert_eq!(faults(&report), [(5, AuditFault::Changed)]);
    let p = &report.problems[0];
    assert_eq!(p.kind.as_deref(), Some("approval_decided"));
    assert_eq!(p.task_id.as_deref(), Some("task-1"));
    assert_eq!(p.at, Some(T0 + 20));
}

#[tokio::test]
async fn a_changed_actor_or_time_names_the_entry() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir).await;
    history(&store).await;
    tamper(&dir, "UPDATE audit_log SET actor = 'nobody' WHERE seq = 1").await;
    tamper(&dir, "UPDATE audit_log SET at = at + 1 WHERE seq = 3").await;
    let report = store.verify_audit().await.expect("verify");
    assert_eq!(
        faults(&report),
        [(1, AuditFault::Changed), (3, AuditFault::Changed)]
    );
}

#[tokio::test]
async fn a_deleted_entry_is_named_as_missing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir).await;
    history(&store).await;
    tamper(&dir, "DELETE FROM audit_log WHERE seq = 3").await;
    let report = store.verify_audit().await.expect("verify");
    assert_eq!(
        faults(&report),
        [
            (3, AuditFault::Missing { last: 3 }),
            (4, AuditFault::Unlinked { after: 2 }),
        ]
    );
    assert_eq!(report.entries, 4);
    // The first entry gone too: the chain must start at 1.
    tamper(&dir, "DELETE FROM audit_log WHERE seq = 1").await;
    let report = store.verify_audit().await.expect("verify");
    assert_eq!(
        faults(&report)[..2],
        [
            (1, AuditFault::Missing { last: 1 }),
            (2, AuditFault::Unlinked { after: 0 }),
        ]
    );
}

#[tokio::test]
async fn a_changed_hash_names_that_entry_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir).await;
    history(&store).await;
    tamper(
        &dir,
        "UPDATE audit_log SET hash = substr(hash, 2) || '0' WHERE seq = 2",
    )
    .await;
    let report = store.verify_audit().await.expect("verify");
    assert_eq!(faults(&report), [(2, AuditFault::Changed)]);
}

#[tokio::test]
async fn a_re_hashed_entry_breaks_the_next_link() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir).await;
    history(&store).await;
    // A forger who knows the formula changes entry 4 and gives it a matching hash; the
    // entry after it still names the old one.
    let e = store
        .audit_entries(&AuditFilter {
            after_seq: Some(3),
            limit: Some(1),
            ..AuditFilter::default()
        })
        .await
        .expect("entry 4")
        .remove(0);
    let body = json!({ "kind": "tool_returned", "call_id": "c1", "ok": false }).to_string();
    let hash = entry_hash(
        &e.prev_hash,
        4,
        e.at,
        &e.kind,
        &e.actor,
        Some("task-1"),
        &body,
    );
    tamper(
        &dir,
        &format!("UPDATE audit_log SET body = '{body}', hash = '{hash}' WHERE seq = 4"),
    )
    .await;
    let report = store.verify_audit().await.expect("verify");
    assert_eq!(faults(&report), [(5, AuditFault::Unlinked { after: 4 })]);
}

#[tokio::test]
async fn verification_reads_past_one_page() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir).await;
    for i in 0..2_500 {
        store
            .append_audit(AuditEntryWrite {
                at: T0 + i,
                kind: "grant_created".into(),
                actor: "alice".into(),
                task_id: None,
                body: json!({ "n": i }),
            })
            .await
            .expect("append");
    }
    assert!(store.verify_audit().await.expect("verify").is_intact());
    tamper(&dir, "DELETE FROM audit_log WHERE seq = 1500").await;
    tamper(&dir, "UPDATE audit_log SET body = '{}' WHERE seq = 2400").await;
    let report = store.verify_audit().await.expect("verify");
    assert_eq!(report.entries, 2_499);
    assert_eq!(
        faults(&report),
        [
            (1500, AuditFault::Missing { last: 1500 }),
            (1501, AuditFault::Unlinked { after: 1499 }),
            (2400, AuditFault::Changed),
        ]
    );
}

/// A group that fails on an SQL error is retried commit by commit; the chain must hold
/// only what landed, with no gap left by the rolled-back group or by the failed commit.
#[tokio::test]
async fn a_failed_group_retried_one_by_one_keeps_the_chain() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir).await;
    let wf = workflow(&store).await;
    for task in ["t1", "t2", "t3"] {
        landed(&store, create(task, wf, T0)).await;
    }
    let with_call = |task: &str, call_id: &str| {
        let mut c = commit(
            task,
            T0 + 5,
            2,
            vec![event("tool_called", json!({ "call_id": call_id }))],
        );
        c.tool_calls.push(ToolCallWrite::Intent {
            call: ProposedCall {
                id: call_id.into(),
                step_no: 1,
                attempt: 1,
                call_index: 0,
                tool: "builtin.echo".into(),
                args: json!({}),
                args_hash: "x".into(),
                idempotency_key: format!("{task}/1/0"),
                idempotent: true,
            },
            allowed: CallAllowance::Policy { rule: None },
        });
        c
    };
    // All three are sent before the writer runs (one runtime thread), so they form one
    // group; t2 reuses t1's call id, which fails the group on a unique constraint.
    let (a, b, c) = tokio::join!(
        store.commit(with_call("t1", "call-1")),
        store.commit(with_call("t2", "call-1")),
        store.commit(with_call("t3", "call-3")),
    );
    assert!(matches!(a, Ok(CommitOutcome::Committed { .. })), "{a:?}");
    // SQLite's own error (not the single-commit path's `Corrupt`): b was retried on its
    // own, and the error says which constraint failed.
    assert!(
        matches!(&b, Err(StoreError::Sqlite { source, .. })
            if source.message.contains("UNIQUE constraint failed: tool_calls.id")),
        "{b:?}"
    );
    assert!(matches!(c, Ok(CommitOutcome::Committed { .. })), "{c:?}");
    let report = store.verify_audit().await.expect("verify");
    assert!(report.is_intact(), "{:?}", report.problems);
    let tasks: Vec<Option<String>> = store
        .audit_entries(&AuditFilter::default())
        .await
        .expect("entries")
        .into_iter()
        .filter(|e| e.kind == "tool_called")
        .map(|e| e.task_id)
        .collect();
    assert_eq!(tasks, [Some("t1".into()), Some("t3".into())]);
}

/// Two handles on one file (as the CLI and the desktop app are) commit at once; each reads
/// the head under the write lock, so the result is one chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_keep_one_chain() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = open(&dir).await;
    let second = open(&dir).await;
    let wf = workflow(&first).await;
    const TASKS: usize = 20;
    const STEPS: i64 = 10;
    let mut runs = Vec::new();
    for t in 0..TASKS {
        let store = if t % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        runs.push(tokio::spawn(async move {
            let task = format!("task-{t}");
            let mut seq = landed(&store, create(&task, wf, T0)).await;
            for step in 0..STEPS {
                seq = landed(
                    &store,
                    commit(
                        &task,
                        T0 + step,
                        seq,
                        vec![
                            event("tool_returned", json!({ "ok": true, "step": step })),
                            event("step_started", json!({ "step_no": step })),
                        ],
                    ),
                )
                .await;
                if step % 3 == 0 {
                    store
                        .append_audit(AuditEntryWrite {
                            at: T0 + step,
                            kind: "approval_vote_cast".into(),
                            actor: "carol".into(),
                            task_id: Some(task.clone()),
                            body: json!({ "step": step }),
                        })
                        .await
                        .expect("append");
                }
            }
        }));
    }
    for run in runs {
        run.await.expect("task run");
    }
    let report = first.verify_audit().await.expect("verify");
    assert!(report.is_intact(), "{:?}", report.problems);
    // Per task: created, STEPS tool_returned, and a vote at steps 0, 3, 6, 9.
    assert_eq!(report.entries, (TASKS as u64) * (1 + STEPS as u64 + 4));
}

/// Puts the log back as migrations 0005–0013 left it (`seq BIGINT PRIMARY KEY`, a key
/// beside the rowid), holding the same rows plus what `extra` inserts into
/// `audit_log_old`, with 0014 not yet applied.
async fn before_rowid_key(dir: &tempfile::TempDir, extra: &str) {
    tamper(
        dir,
        &format!(
            "CREATE TABLE audit_log_old (seq BIGINT PRIMARY KEY, at BIGINT NOT NULL,
                 kind TEXT NOT NULL, actor TEXT NOT NULL, task_id TEXT, body TEXT NOT NULL,
                 prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
             INSERT INTO audit_log_old SELECT * FROM audit_log;
             {extra}
             DROP TABLE audit_log;
             ALTER TABLE audit_log_old RENAME TO audit_log;
             CREATE INDEX audit_log_by_task ON audit_log (task_id, seq);
             DROP TABLE audit_log_unkeyed;
             DELETE FROM schema_migrations WHERE version = 14;"
        ),
    )
    .await;
}

/// Migration 0014 rebuilds the log with `seq` as its rowid (one B-tree instead of two):
/// a log written under the old table is copied whole, still verifies, and the chain goes
/// on from where it was.
#[tokio::test]
async fn a_log_written_before_the_rowid_key_still_verifies_and_grows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir).await;
    history(&store).await;
    let before = store
        .audit_entries(&AuditFilter::default())
        .await
        .expect("entries");
    drop(store);
    before_rowid_key(&dir, "").await;

    let store = open(&dir).await;
    let after = store
        .audit_entries(&AuditFilter::default())
        .await
        .expect("entries");
    assert_eq!(
        serde_json::to_value(&after).expect("as JSON"),
        serde_json::to_value(&before).expect("as JSON")
    );
    assert!(store.verify_audit().await.expect("verify").is_intact());
    store
        .append_audit(AuditEntryWrite {
            at: T0 + 30,
            kind: "policy_loaded".into(),
            actor: "engine-1".into(),
            task_id: None,
            body: json!({ "version": "p2" }),
        })
        .await
        .expect("append");
    let report = store.verify_audit().await.expect("verify");
    assert!(report.is_intact(), "{:?}", report.problems);
    drop(store);

    let mut conn = SqliteConnection::connect_with(
        &SqliteConnectOptions::new().filename(dir.path().join("airlock.sqlite")),
    )
    .await
    .expect("connect");
    let (keys,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM pragma_index_list('audit_log') WHERE origin = 'pk'")
            .fetch_one(&mut conn)
            .await
            .expect("index list");
    assert_eq!(keys, 0, "seq is the rowid, not a key beside it");
    let (last,): (i64,) = sqlx::query_as("SELECT max(rowid) FROM audit_log")
        .fetch_one(&mut conn)
        .await
        .expect("rowid");
    assert_eq!(last, before.len() as i64 + 1);
}

/// A row someone gave a `seq` that is not an integer (possible under the old key) does not
/// stop migration 0014, and so the store from opening: it is set aside and reported.
#[tokio::test]
async fn a_row_with_a_tampered_seq_is_set_aside_by_the_rowid_migration_and_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir).await;
    history(&store).await;
    drop(store);
    before_rowid_key(
        &dir,
        "INSERT INTO audit_log_old VALUES ('six', 1, 'forged', 'mallory', NULL, '{}', 'x', 'y');",
    )
    .await;

    let store = open(&dir).await;
    let report = store.verify_audit().await.expect("verify");
    assert_eq!(report.entries, 6);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let problem = &report.problems[0];
    assert_eq!(problem.kind.as_deref(), Some("forged"));
    assert!(
        matches!(&problem.fault, AuditFault::Unreadable { detail } if detail.contains("\"six\"")),
        "{problem:?}"
    );
}

/// Entries cut off the end leave a chain that is intact as far as it goes; the head an
/// earlier verification printed, kept elsewhere, shows they are gone.
#[tokio::test]
async fn an_anchor_kept_elsewhere_catches_a_log_cut_short_or_rewritten() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir).await;
    history(&store).await;
    let before = store.verify_audit().await.expect("verify");
    let anchor = before.anchor().expect("a head");
    assert_eq!(anchor.seq, before.entries as i64);
    assert_eq!(
        anchor.to_string().parse::<AuditAnchor>(),
        Ok(anchor.clone())
    );
    let intact = store
        .verify_audit_against(Some(&anchor))
        .await
        .expect("verify");
    assert!(intact.is_intact(), "{:?}", intact.problems);

    tamper(
        &dir,
        &format!("DELETE FROM audit_log WHERE seq > {}", anchor.seq - 2),
    )
    .await;
    let alone = store.verify_audit().await.expect("verify");
    assert!(alone.is_intact(), "the chain alone cannot tell");
    let report = store
        .verify_audit_against(Some(&anchor))
        .await
        .expect("verify");
    assert_eq!(
        faults(&report),
        [(anchor.seq - 1, AuditFault::CutShort { anchor: anchor.seq })]
    );

    // An entry still there, but not the one the anchor names: the log was re-chained.
    let other = AuditAnchor {
        seq: 2,
        hash: "ab".repeat(32),
    };
    let report = store
        .verify_audit_against(Some(&other))
        .await
        .expect("verify");
    assert_eq!(
        faults(&report),
        [(
            2,
            AuditFault::NotAnchor {
                expected: "ab".repeat(32)
            }
        )]
    );
}

#[test]
fn an_anchor_is_seq_colon_hash() {
    let hash = "0f".repeat(32);
    assert_eq!(
        format!("12:{}", hash.to_uppercase()).parse::<AuditAnchor>(),
        Ok(AuditAnchor {
            seq: 12,
            hash: hash.clone()
        })
    );
    for bad in [
        "",
        "12",
        "x:ab",
        "0:".to_owned().as_str(),
        &format!("12:{}", &hash[1..]),
    ] {
        let e = bad.parse::<AuditAnchor>().expect_err("refused");
        assert!(e.contains("expected SEQ:HASH"), "{bad}: {e}");
    }
}
