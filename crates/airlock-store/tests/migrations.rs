//! Migrations on real files: one that lands after a higher-numbered one still runs, and
//! the metrics' per-task tallies (0010) agree with the ledger and events they count —
//! both as rows are inserted (triggers) and for rows written before the migration; the
//! rebuild of the ledger that lets it hold refused proposals (0012); the tools the history
//! offers (0015).

use airlock_store::{ApprovalStatus, CallRefusal, Store, StoreOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};

const T0: i64 = 1_795_392_000_000;

async fn raw(path: &std::path::Path) -> SqliteConnection {
    SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path))
        .await
        .expect("open the file")
}

async fn exec(conn: &mut SqliteConnection, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{sql}"));
}

async fn versions(conn: &mut SqliteConnection) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all(&mut *conn)
        .await
        .expect("versions")
}

#[tokio::test]
async fn a_migration_missing_below_the_highest_applied_one_is_still_applied() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("airlock.sqlite");
    let all = {
        let store = Store::open(StoreOptions::new(&path), T0)
            .await
            .expect("open");
        drop(store);
        versions(&mut raw(&path).await).await
    };
    assert!(all.contains(&10), "{all:?}");
    // As if 0008 had landed on main after this file was already at 0010 (the gap 0009 is
    // the same case for whichever migration fills it).
    let conn = raw(&path).await;
    let store = write_and_reopen(
        conn,
        &path,
        "DROP INDEX lessons_by_workflow; DROP TABLE lessons;
         DELETE FROM schema_migrations WHERE version = 8;",
    )
    .await;
    assert!(store.lessons(None, None).await.expect("lessons").is_empty());
    drop(store);
    assert_eq!(versions(&mut raw(&path).await).await, all);
}

/// Two tasks: calls (one not idempotent repeated twice, one idempotent repeated) and model
/// turns of two models, one without a usage count.
const HISTORY: &str = "
INSERT INTO workflows (id, name, version, hash, source, origin, created_at) VALUES (1, 'w', 1, 'h', '', NULL, 0);
INSERT INTO tasks (id, workflow_id, workflow_name, requester, inputs, status, current_state,
    step_no, attempt, phase, state, recovery_failures, last_seq, created_at, updated_at)
VALUES ('t1', 1, 'w', 'a', '{}', 'succeeded', 'x', 1, 1, '{}', '{}', 0, 1, 5, 9),
       ('t2', 1, 'w', 'a', '{}', 'succeeded', 'x', 1, 1, '{}', '{}', 0, 1, 6, 9);
INSERT INTO tool_calls (id, task_id, step_no, attempt, call_index, tool, args, args_hash,
    idempotency_key, idempotent, intent_at) VALUES
 ('c1', 't1', 1, 1, 0, 'erp.refund', '{}', 'h1', 'k1', 0, 1),
 ('c2', 't1', 2, 1, 0, 'erp.refund', '{}', 'h1', 'k2', 0, 2),
 ('c3', 't1', 3, 1, 0, 'erp.refund', '{}', 'h1', 'k3', 0, 3),
 ('c4', 't1', 4, 1, 0, 'erp.refund', '{}', 'h2', 'k4', 0, 4),
 ('c5', 't1', 5, 1, 0, 'crm.lookup', '{}', 'h1', 'k5', 1, 5),
 ('c6', 't1', 6, 1, 0, 'crm.lookup', '{}', 'h1', 'k6', 1, 6),
 ('c7', 't2', 1, 1, 0, 'erp.refund', '{}', 'h1', 'k7', 0, 7);
INSERT INTO task_events (task_id, seq, at, kind, body) VALUES
 ('t1', 1, 1, 'model_turn', '{\"kind\":\"model_turn\",\"model\":\"big\",\"usage\":{\"input_tokens\":10,\"output_tokens\":2,\"cache_creation_input_tokens\":1,\"cache_read_input_tokens\":3}}'),
 ('t1', 2, 2, 'model_turn', '{\"kind\":\"model_turn\",\"model\":\"big\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0}}'),
 ('t1', 3, 3, 'model_turn', '{\"kind\":\"model_turn\",\"model\":\"local\"}'),
 ('t1', 4, 4, 'tool_called', '{\"kind\":\"tool_called\"}'),
 ('t2', 1, 1, 'model_turn', '{\"kind\":\"model_turn\",\"model\":\"big\",\"usage\":{\"input_tokens\":7,\"output_tokens\":7,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0}}');
";

async fn tallies(conn: &mut SqliteConnection) -> (Vec<(String, i64, i64)>, Vec<String>) {
    let calls =
        sqlx::query_as("SELECT task_id, tool_calls, repeats FROM task_tallies ORDER BY task_id")
            .fetch_all(&mut *conn)
            .await
            .expect("tallies");
    #[allow(clippy::type_complexity)]
    let usage: Vec<(String, String, String, i64, i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT task_id, model, workflow, created_at, turns, counted_turns, input_tokens, output_tokens,
                cache_creation_input_tokens, cache_read_input_tokens
         FROM task_model_usage ORDER BY task_id, model",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("usage");
    (calls, usage.into_iter().map(|u| format!("{u:?}")).collect())
}

fn expected() -> (Vec<(String, i64, i64)>, Vec<String>) {
    (
        // t1: six calls; refund h1 three times (two repeats); h2 once; the idempotent
        // lookup's repeat is not one. t2: one call.
        vec![("t1".into(), 6, 2), ("t2".into(), 1, 0)],
        vec![
            r#"("t1", "big", "w", 5, 2, 2, 15, 3, 1, 3)"#.into(),
            r#"("t1", "local", "w", 5, 1, 0, 0, 0, 0, 0)"#.into(),
            r#"("t2", "big", "w", 6, 1, 1, 7, 7, 0, 0)"#.into(),
        ],
    )
}

/// A migrated store's file holding [`HISTORY`], and a raw connection to it.
async fn with_history() -> (tempfile::TempDir, std::path::PathBuf, SqliteConnection) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("airlock.sqlite");
    drop(
        Store::open(StoreOptions::new(&path), T0)
            .await
            .expect("open"),
    );
    let mut conn = raw(&path).await;
    exec(&mut conn, HISTORY).await;
    (dir, path, conn)
}

/// Runs `sql` on `conn` (a migration undone by hand, as if the file predated it, or rows
/// written around the store), closes it, and opens the store on `path` again, which
/// applies any migration found missing.
async fn write_and_reopen(mut conn: SqliteConnection, path: &std::path::Path, sql: &str) -> Store {
    exec(&mut conn, sql).await;
    conn.close().await.expect("close");
    reopen(path).await
}

/// The store on `path` opened again: any migration found missing runs.
async fn reopen(path: &std::path::Path) -> Store {
    Store::open(StoreOptions::new(path), T0)
        .await
        .expect("reopen")
}

#[tokio::test]
async fn tallies_count_what_is_inserted_and_what_was_there_before() {
    let (_dir, path, mut conn) = with_history().await;
    assert_eq!(tallies(&mut conn).await, expected(), "kept by the triggers");

    // The same history written before 0010 existed: the migration counts it.
    drop(
        write_and_reopen(
            conn,
            &path,
            "DROP TRIGGER tool_calls_tally; DROP TRIGGER task_events_model_usage;
         DROP TABLE task_tallies; DROP TABLE task_model_usage;
         DELETE FROM schema_migrations WHERE version = 10;",
        )
        .await,
    );
    let mut conn = raw(&path).await;
    assert_eq!(
        tallies(&mut conn).await,
        expected(),
        "counted by the migration"
    );
}

/// Migration 0012 rebuilds `tool_calls` (its outcome gains `refused`): every row is kept,
/// the tallies are not counted twice, and the rebuilt table's trigger leaves refused rows
/// out of them. A refused row says what refused it, and only a refused row does.
#[tokio::test]
async fn refused_rows_are_kept_apart_from_calls() {
    let (_dir, path, mut conn) = with_history().await;
    let ids = async |conn: &mut SqliteConnection| -> Vec<(String, Option<String>)> {
        sqlx::query_as("SELECT id, outcome FROM tool_calls ORDER BY id")
            .fetch_all(&mut *conn)
            .await
            .expect("ids")
    };
    let before = ids(&mut conn).await;
    drop(
        write_and_reopen(
            conn,
            &path,
            "DELETE FROM schema_migrations WHERE version = 12;",
        )
        .await,
    );
    let mut conn = raw(&path).await;
    assert_eq!(ids(&mut conn).await, before, "the rebuild keeps every row");
    assert_eq!(
        tallies(&mut conn).await,
        expected(),
        "and counts none twice"
    );

    // A refused proposal repeating refund h1 of t2 is neither a call nor a repeat.
    exec(
        &mut conn,
        "INSERT INTO tool_calls (id, task_id, step_no, attempt, call_index, tool, args,
             args_hash, idempotency_key, idempotent, intent_at, outcome, error, outcome_at,
             refused_by, refusal_rule)
         VALUES ('r1', 't2', 2, 1, 0, 'erp.refund', '{}', 'h1', 'k8', 0, 8, 'refused',
             'refused by policy rule “no”: no', 8, 'policy', 'no');",
    )
    .await;
    assert_eq!(
        tallies(&mut conn).await,
        expected(),
        "a refusal is not counted"
    );
    exec(
        &mut conn,
        "INSERT INTO tool_calls (id, task_id, step_no, attempt, call_index, tool, args,
             args_hash, idempotency_key, idempotent, intent_at)
         VALUES ('c8', 't2', 3, 1, 0, 'erp.refund', '{}', 'h1', 'k9', 0, 9);",
    )
    .await;
    assert_eq!(
        tallies(&mut conn).await.0[1],
        ("t2".into(), 2, 1),
        "a call after a refusal repeats only the call before it"
    );

    // Neither can pass for the other.
    for bad in [
        "UPDATE tool_calls SET outcome = 'in_doubt' WHERE id = 'r1'",
        "UPDATE tool_calls SET outcome = NULL WHERE id = 'r1'",
        "UPDATE tool_calls SET outcome = 'refused' WHERE id = 'c8'",
        "UPDATE tool_calls SET refused_by = 'person' WHERE id = 'c8'",
    ] {
        let err = sqlx::raw_sql(bad).execute(&mut conn).await.expect_err(bad);
        assert!(
            err.to_string().contains("CHECK constraint failed"),
            "{bad}: {err}"
        );
    }
}

#[tokio::test]
async fn the_tools_the_history_offers_are_kept_and_those_from_before_are_counted() {
    let (_dir, path, conn) = with_history().await;
    // A ledger written before 0015: its tools are found by the migration.
    let store = write_and_reopen(
        conn,
        &path,
        "DROP TRIGGER tool_calls_tools; DROP TABLE ledger_tools;
         DELETE FROM schema_migrations WHERE version = 15;",
    )
    .await;
    let tools = store.history_choices().await.expect("choices").tools;
    assert_eq!(tools, ["crm.lookup", "erp.refund"]);
    drop(store);
    // Calls from then on: a new tool joins the list once, a known one adds nothing.
    let conn = raw(&path).await;
    let store = write_and_reopen(
        conn,
        &path,
        "INSERT INTO tool_calls (id, task_id, step_no, attempt, call_index, tool, args, args_hash,
             idempotency_key, idempotent, intent_at) VALUES
          ('c8', 't2', 2, 1, 0, 'hr.onboard', '{}', 'h1', 'k8', 0, 8),
          ('c9', 't2', 3, 1, 0, 'hr.onboard', '{}', 'h2', 'k9', 0, 9),
          ('c10', 't2', 4, 1, 0, 'crm.lookup', '{}', 'h3', 'k10', 1, 10);",
    )
    .await;
    let tools = store.history_choices().await.expect("choices").tools;
    assert_eq!(tools, ["crm.lookup", "erp.refund", "hr.onboard"]);
}

/// Processes that open a new file at the same moment (a desktop and a CLI, two CLIs):
/// each migration is applied once, by whichever gets the write lock first, and every
/// opener ends up on the same complete schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stores_opened_at_once_on_a_new_file_all_open_and_migrate_it_once() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("airlock.sqlite");
    let opens: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            tokio::spawn(async move { Store::open(StoreOptions::new(&path), T0).await })
        })
        .collect();
    for open in opens {
        let store = open.await.expect("joined");
        if let Err(e) = store {
            panic!("a store opened beside others failed: {e}");
        }
    }
    let mut conn = raw(&path).await;
    let applied = versions(&mut conn).await;
    let once: Vec<i64> = (1..=applied.len() as i64).collect();
    assert_eq!(applied, once, "every migration, each once");
}

/// Migration 0016 rebuilds `approvals` (referred to by `approval_votes`) and the ledger so
/// an approval can be withdrawn and a call refused by a cancel: every row and vote is
/// kept, and what earlier versions recorded as the canceller's rejection becomes a
/// withdrawal, while a real rejection stays one.
#[tokio::test]
async fn cancels_recorded_as_rejections_become_withdrawals_and_nothing_is_lost() {
    let (_dir, path, mut conn) = with_history().await;
    // Task t3 was cancelled at 20; at that same instant carol had rejected one of its
    // approvals (its decision event says so): only the other was the cancel's.
    exec(
        &mut conn,
        "INSERT INTO tasks (id, workflow_id, workflow_name, requester, inputs, status, current_state,
             step_no, attempt, phase, state, recovery_failures, last_seq, created_at, updated_at)
         VALUES ('t3', 1, 'w', 'a', '{}', 'cancelled', 'x', 2, 1, '{}', '{}', 0, 1, 7, 20);
         INSERT INTO approvals (id, task_id, step_no, state_name, prompt, approvers, status,
             requested_at, decided_at, decided_by, reason)
         VALUES ('rejected', 't3', 1, 'x', 'p', '[]', 'rejected', 8, 20, 'carol', 'no'),
                ('by-cancel', 't3', 2, 'x', 'p', '[]', 'rejected', 16, 20, 'dana', 'bust');
         INSERT INTO approval_votes (approval_id, voter, roles, at)
         VALUES ('by-cancel', 'carl', '[]', 17);
         INSERT INTO task_events (task_id, seq, at, kind, body) VALUES
          ('t3', 1, 20, 'approval_decided', '{\"kind\":\"approval_decided\",\"approval_id\":\"rejected\"}'),
          ('t3', 2, 20, 'cancelled', '{\"kind\":\"cancelled\",\"by\":\"dana\"}');
         INSERT INTO tool_calls (id, task_id, step_no, attempt, call_index, tool, args, args_hash,
             idempotency_key, idempotent, intent_at, outcome, error, outcome_at, refused_by,
             refusal_ref, rejected_by)
         VALUES ('r1', 't3', 1, 1, 0, 'erp.refund', '{}', 'h9', 'k-r1', 0, 15, 'refused',
                 'refused: carol rejected this call: dana cancelled the task while this call waited for approval, they said',
                 15, 'person', 'rejected', 'carol'),
                ('r2', 't3', 2, 1, 0, 'erp.refund', '{}', 'h9', 'k-r2', 0, 20, 'refused',
                 'refused: dana cancelled the task while this call waited for approval: bust',
                 20, 'person', 'by-cancel', 'dana');",
    )
    .await;
    let count = async |conn: &mut SqliteConnection, table: &str| -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&mut *conn)
            .await
            .expect("count")
    };
    let before = [
        count(&mut conn, "approvals").await,
        count(&mut conn, "approval_votes").await,
        count(&mut conn, "tool_calls").await,
    ];
    // The rows above are what a file written before 0016 holds; 0016 runs again on it.
    let store = write_and_reopen(
        conn,
        &path,
        "DELETE FROM schema_migrations WHERE version = 16;",
    )
    .await;
    let status = async |id: &str| {
        store
            .approval(id)
            .await
            .expect("read")
            .expect("kept")
            .status
    };
    assert!(
        matches!(status("rejected").await, ApprovalStatus::Rejected { by, .. } if by == "carol")
    );
    assert!(
        matches!(status("by-cancel").await, ApprovalStatus::Withdrawn { by, .. } if by == "dana")
    );
    let calls = store.tool_calls("t3").await.expect("calls");
    let refusal = |id: &str| {
        calls
            .iter()
            .find(|c| c.id == id)
            .and_then(|c| c.refusal.clone())
    };
    assert!(
        matches!(refusal("r1"), Some(CallRefusal::Person { rejected_by, .. }) if rejected_by == "carol")
    );
    assert!(
        matches!(refusal("r2"), Some(CallRefusal::Cancel { cancelled_by, .. }) if cancelled_by == "dana")
    );
    drop(store);

    let mut conn = raw(&path).await;
    let after = [
        count(&mut conn, "approvals").await,
        count(&mut conn, "approval_votes").await,
        count(&mut conn, "tool_calls").await,
    ];
    assert_eq!(before, after);
    let broken: Vec<(String,)> = sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
        .fetch_all(&mut conn)
        .await
        .expect("check");
    assert!(broken.is_empty(), "{broken:?}");
    // `approval_votes` refers to the rebuilt table, not to a dropped one.
    let orphan = sqlx::raw_sql(
        "INSERT INTO approval_votes (approval_id, voter, roles, at) VALUES ('nope', 'x', '[]', 1)",
    )
    .execute(&mut conn)
    .await
    .expect_err("a vote for no approval");
    assert!(orphan.to_string().contains("FOREIGN KEY"), "{orphan}");
    // Tallies and the history's tool list are still kept by the rebuilt ledger's triggers.
    assert_eq!(tallies(&mut conn).await, expected());
    let tools: Vec<String> = sqlx::query_scalar("SELECT tool FROM ledger_tools ORDER BY tool")
        .fetch_all(&mut conn)
        .await
        .expect("tools");
    assert_eq!(tools, ["crm.lookup", "erp.refund"]);
}
