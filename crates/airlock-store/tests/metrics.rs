//! Metrics on a seeded history whose answers were worked out by hand (in the comments
//! beside each task), including one deliberately duplicated action.

use airlock_store::{
    Bucket, Metrics, MetricsFilter, ModelTokens, Spread, Store, StoreOptions, TaskStatus,
};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};

/// Monday 2026-11-23 00:00 UTC.
const D0: i64 = 1_795_392_000_000;
const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
const SEC: i64 = 1_000;

struct Seed {
    store: Store,
    conn: SqliteConnection,
    _dir: tempfile::TempDir,
}

impl Seed {
    async fn sql(&mut self, sql: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut self.conn)
            .await
            .unwrap_or_else(|e| panic!("seeding failed: {e}\n{sql}"));
    }

    async fn task(&mut self, id: &str, wf: &str, status: &str, created: i64, ended: i64) {
        let error = if status == "failed" {
            "'erp.refund: card declined'"
        } else {
            "NULL"
        };
        self.sql(&format!(
            "INSERT INTO tasks (id, workflow_id, workflow_name, requester, inputs, status,
                current_state, step_no, attempt, phase, state, error, recovery_failures, last_seq,
                created_at, updated_at)
             SELECT '{id}', id, name, 'alice', '{{}}', '{status}', 'x', 1, 1, '{{}}', '{{}}', {error},
                0, 1, {created}, {ended} FROM workflows WHERE name = '{wf}'"
        ))
        .await;
    }

    #[allow(clippy::too_many_arguments)]
    async fn call(
        &mut self,
        id: &str,
        task: &str,
        (step, attempt): (i64, i64),
        tool: &str,
        args_hash: &str,
        idempotent: bool,
        at: i64,
        outcome: &str,
        resolved_by: Option<&str>,
    ) {
        let error = if outcome == "failed" {
            "'card declined'"
        } else {
            "NULL"
        };
        let by = resolved_by.map_or("NULL".to_owned(), |b| format!("'{b}'"));
        self.sql(&format!(
            "INSERT INTO tool_calls (id, task_id, step_no, attempt, call_index, tool, args, args_hash,
                idempotency_key, idempotent, intent_at, outcome, error, outcome_at, resolved_by)
             VALUES ('{id}', '{task}', {step}, {attempt}, 0, '{tool}', '{{}}', '{args_hash}',
                '{task}/{step}/0', {}, {at}, '{outcome}', {error}, {}, {by})",
            i64::from(idempotent),
            at + 100
        ))
        .await;
    }

    /// `rule` makes it a held call; `edited` an approval with changed arguments.
    #[allow(clippy::too_many_arguments)]
    async fn approval(
        &mut self,
        id: &str,
        task: &str,
        status: &str,
        requested: i64,
        decided: Option<i64>,
        rule: Option<&str>,
        edited: bool,
    ) {
        let held = rule.map_or("NULL".to_owned(), |r| {
            format!(
                r#"'{{"call_index":0,"tool":"erp.refund","args":{{"amount":120}},"risk":"write","rule":"{r}","seen":{{}},"requester":"alice","approvals":1,"escalate_at":null,"escalate_to":[],"four_eyes":false}}'"#
            )
        });
        let edited = if edited {
            r#"'{"amount":100}'"#
        } else {
            "NULL"
        };
        let by = match status {
            "approved" | "rejected" => "'carol'",
            _ => "NULL",
        };
        let decided = decided.map_or("NULL".to_owned(), |d| d.to_string());
        self.sql(&format!(
            "INSERT INTO approvals (id, task_id, step_no, state_name, prompt, approvers, status,
                requested_at, decided_at, decided_by, reason, held_call, edited_args)
             VALUES ('{id}', '{task}', 1, 'approve', 'ok?', '[\"controller\"]', '{status}',
                {requested}, {decided}, {by}, 'why not', {held}, {edited})"
        ))
        .await;
    }

    async fn event(&mut self, task: &str, seq: i64, at: i64, kind: &str, body: &str) {
        self.sql(&format!(
            "INSERT INTO task_events (task_id, seq, at, kind, body)
             VALUES ('{task}', {seq}, {at}, '{kind}', '{body}')"
        ))
        .await;
    }

    async fn step(&mut self, task: &str, no: i64, state: &str, kind: &str, outcome: &str) {
        let error = if outcome == "failed" {
            "'card declined'"
        } else {
            "NULL"
        };
        self.sql(&format!(
            "INSERT INTO steps (task_id, step_no, state_name, kind, attempts, started_at, ended_at,
                outcome, error)
             VALUES ('{task}', {no}, '{state}', '{kind}', 1, {D0}, {D0}, '{outcome}', {error})"
        ))
        .await;
    }

    /// A check step, its `step_succeeded` event and its output.
    async fn check(&mut self, task: &str, no: i64, seq: i64, at: i64, passed: bool) {
        self.step(task, no, "verify", "check", "succeeded").await;
        let output = if passed {
            r#"{"passed":true}"#.to_owned()
        } else {
            r#"{"passed":false,"message":"refunded 120, approved 100"}"#.to_owned()
        };
        self.sql(&format!(
            "INSERT INTO task_outputs (task_id, state_name, output) VALUES ('{task}', 'verify', '{output}')"
        ))
        .await;
        self.event(
            task,
            seq,
            at,
            "step_succeeded",
            &format!(
                r#"{{"kind":"step_succeeded","step_no":{no},"state":"verify","output":{output},"next":"done"}}"#
            ),
        )
        .await;
    }

    async fn turn(&mut self, task: &str, seq: i64, model: &str, usage: Option<(i64, i64, i64)>) {
        let usage = usage.map_or(String::new(), |(i, o, r)| {
            format!(
                r#","usage":{{"input_tokens":{i},"output_tokens":{o},"cache_creation_input_tokens":0,"cache_read_input_tokens":{r}}}"#
            )
        });
        self.event(
            task,
            seq,
            D0,
            "model_turn",
            &format!(
                r#"{{"kind":"model_turn","step_no":1,"attempt":1,"turn":1,"model":"{model}","reply":{{}}{usage}}}"#
            ),
        )
        .await;
    }
}

const SONNET: &str = "claude (claude-sonnet-4-5)";
const HAIKU: &str = "claude (claude-haiku-4-5)";
const SCRIPTED: &str = "scripted (offline demo model)";
const H1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const H2: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const H3: &str = "3333333333333333333333333333333333333333333333333333333333333333";

/// Seven tasks over two weeks; see each one's comment for what it contributes.
async fn seeded() -> Seed {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("airlock.sqlite");
    let store = Store::open(StoreOptions::new(&path), D0)
        .await
        .expect("open store");
    for name in ["refund", "onboard"] {
        store
            .register_workflow(name, name, "", None, D0)
            .await
            .expect("register workflow");
    }
    let conn = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&path))
        .await
        .expect("connect");
    let mut s = Seed {
        store,
        conn,
        _dir: dir,
    };

    // t1 refund, day 0: succeeded in 10 s. Two calls, an approval of a held call granted
    // unchanged after 60 s, a check that passed, a Sonnet turn. Rated 5, then re-rated 4.
    let t1 = D0 + HOUR;
    s.task("t1", "refund", "succeeded", t1, t1 + 10 * SEC).await;
    s.call(
        "c1",
        "t1",
        (1, 1),
        "erp.refund",
        H1,
        false,
        t1,
        "succeeded",
        None,
    )
    .await;
    s.call(
        "c2",
        "t1",
        (2, 1),
        "crm.lookup",
        H1,
        true,
        t1 + 1,
        "succeeded",
        None,
    )
    .await;
    let rule = Some("refunds over 100");
    s.approval("a1", "t1", "approved", t1, Some(t1 + 60 * SEC), rule, false)
        .await;
    s.check("t1", 3, 2, t1 + 5 * SEC, true).await;
    s.turn("t1", 3, SONNET, Some((100, 10, 0))).await;

    // t2 refund, day 0: succeeded in 20 s, but its outcome check failed (an exception).
    // erp.refund with the same arguments twice, five minutes apart, both taking effect:
    // the deliberate duplicate. crm.lookup repeated too, but it is idempotent. The held
    // call was approved with edited arguments after 120 s (an override). Rated 2.
    let t2 = D0 + 2 * HOUR;
    s.task("t2", "refund", "succeeded", t2, t2 + 20 * SEC).await;
    s.call(
        "c3",
        "t2",
        (1, 1),
        "erp.refund",
        H2,
        false,
        t2,
        "succeeded",
        None,
    )
    .await;
    s.call(
        "c4",
        "t2",
        (2, 1),
        "erp.refund",
        H2,
        false,
        t2 + 300 * SEC,
        "succeeded",
        None,
    )
    .await;
    s.call(
        "c5",
        "t2",
        (3, 1),
        "crm.lookup",
        H2,
        true,
        t2,
        "succeeded",
        None,
    )
    .await;
    s.call(
        "c5b",
        "t2",
        (4, 1),
        "crm.lookup",
        H2,
        true,
        t2 + 1,
        "succeeded",
        None,
    )
    .await;
    s.approval("a2", "t2", "approved", t2, Some(t2 + 120 * SEC), rule, true)
        .await;
    s.check("t2", 5, 2, t2 + 6 * SEC, false).await;

    // t3 refund, day 0: failed after 30 s. erp.refund failed, and its retry with the same
    // arguments failed too (a retry after a failure is no duplicate). The held call was
    // rejected after 30 s; the step gave up.
    let t3 = D0 + 3 * HOUR;
    s.task("t3", "refund", "failed", t3, t3 + 30 * SEC).await;
    s.call(
        "c6",
        "t3",
        (1, 1),
        "erp.refund",
        H3,
        false,
        t3,
        "failed",
        None,
    )
    .await;
    s.call(
        "c7",
        "t3",
        (1, 2),
        "erp.refund",
        H3,
        false,
        t3 + SEC,
        "failed",
        None,
    )
    .await;
    s.approval("a3", "t3", "rejected", t3, Some(t3 + 30 * SEC), rule, false)
        .await;
    s.step("t3", 1, "refund", "tool", "failed").await;

    // t4 onboard, day 1: waiting for a person to say whether hr.update happened.
    let t4 = D0 + DAY + HOUR;
    s.task("t4", "onboard", "in_doubt", t4, t4).await;
    s.call(
        "c8",
        "t4",
        (1, 1),
        "hr.update",
        H1,
        false,
        t4,
        "in_doubt",
        None,
    )
    .await;

    // t5 onboard, day 1: succeeded in 40 s after a person said its in-doubt call happened,
    // and after a quarantine it was released from. A Haiku turn and a scripted one.
    let t5 = D0 + DAY + 2 * HOUR;
    s.task("t5", "onboard", "succeeded", t5, t5 + 40 * SEC)
        .await;
    s.call(
        "c9",
        "t5",
        (1, 1),
        "hr.update",
        H1,
        false,
        t5,
        "happened",
        Some("carol"),
    )
    .await;
    s.event(
        "t5",
        2,
        t5,
        "quarantined",
        r#"{"kind":"quarantined","error":"boom"}"#,
    )
    .await;
    s.turn("t5", 3, HAIKU, Some((1000, 100, 500))).await;
    s.turn("t5", 4, SCRIPTED, None).await;

    // t6 onboard, day 8 (the next week): cancelled after 50 s when its approval expired.
    let t6 = D0 + 8 * DAY + HOUR;
    s.task("t6", "onboard", "cancelled", t6, t6 + 50 * SEC)
        .await;
    s.approval("a4", "t6", "expired", t6, Some(t6 + 50 * SEC), None, false)
        .await;

    // t7 refund, day 8: running, its approval pending.
    let t7 = D0 + 8 * DAY + 2 * HOUR;
    s.task("t7", "refund", "running", t7, t7).await;
    s.approval("a5", "t7", "pending", t7, None, None, false)
        .await;
    // Withdrawn when its task was cancelled: nobody answered it, so no approval figure
    // counts it.
    s.approval(
        "a6",
        "t7",
        "withdrawn",
        t7,
        Some(t7 + 10 * SEC),
        Some("refunds need a controller"),
        false,
    )
    .await;

    for (task, rating, at) in [
        ("t1", 5, t1 + HOUR),
        ("t2", 2, t2 + HOUR),
        ("t1", 4, t1 + DAY),
    ] {
        s.store
            .add_rating(task, rating, Some("noted"), "alice", at)
            .await
            .expect("rate")
            .expect("an ended task can be rated");
    }
    s
}

async fn metrics(s: &Seed, filter: MetricsFilter) -> Metrics {
    s.store.metrics(&filter).await.expect("metrics")
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[tokio::test]
async fn the_figures_of_a_seeded_history_are_the_hand_computed_ones() {
    let s = seeded().await;
    let m = metrics(&s, MetricsFilter::default()).await;
    let f = &m.total;

    assert_eq!(
        (f.tasks, f.succeeded, f.failed, f.cancelled, f.open),
        (7, 3, 1, 1, 2)
    );
    assert!(
        close(f.completion_rate, 3.0 / 5.0),
        "{:?}",
        f.completion_rate
    );

    // t2 (check), t3 (failed), t4 (in doubt), t5 (resolved in-doubt call, quarantined).
    let e = &f.exceptions;
    assert_eq!(
        (e.tasks, e.failed, e.in_doubt, e.quarantined, e.check_failed),
        (4, 1, 2, 1, 1)
    );
    assert!(close(e.rate, 4.0 / 7.0));

    assert_eq!(f.tool_calls, 10);
    assert_eq!(f.duplicate_actions, 1, "c4 repeats c3");

    let a = &f.approvals;
    assert_eq!(
        (
            a.requested,
            a.pending,
            a.approved,
            a.rejected,
            a.expired,
            a.edited
        ),
        (5, 1, 2, 1, 1, 1)
    );
    assert!(close(a.approval_rate, 0.5));
    assert!(close(a.rejection_rate, 0.25));
    assert!(close(a.override_rate, 0.5));
    // 30 s, 60 s, 120 s: the 2nd and the 3rd of three.
    assert_eq!(
        a.time_to_decision,
        Spread {
            count: 3,
            p50_ms: Some(60 * SEC),
            p90_ms: Some(120 * SEC)
        }
    );

    assert_eq!((f.checks.runs, f.checks.passed, f.checks.failed), (2, 1, 1));
    assert!(close(f.checks.pass_rate, 0.5));

    let c = &f.corrections;
    assert_eq!(
        (c.edits, c.in_doubt_resolutions, c.rejections, c.total),
        (1, 1, 1, 3)
    );

    // t1's newest rating (4, not 5) and t2's 2.
    assert_eq!((f.satisfaction.ratings, f.satisfaction.low), (2, 1));
    assert!(close(f.satisfaction.mean, 3.0));

    let tokens = |model: &str, turns, counted, i, o, r| ModelTokens {
        model: model.into(),
        turns,
        counted_turns: counted,
        input_tokens: i,
        output_tokens: o,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: r,
    };
    assert_eq!(
        f.tokens,
        vec![
            tokens(HAIKU, 1, 1, 1000, 100, 500),
            tokens(SONNET, 1, 1, 100, 10, 0),
            tokens(SCRIPTED, 1, 0, 0, 0, 0),
        ]
    );

    // Ended tasks took 10, 20, 30, 40 and 50 s: the 3rd and the 5th of five.
    assert_eq!(
        f.wall_time,
        Spread {
            count: 5,
            p50_ms: Some(30 * SEC),
            p90_ms: Some(50 * SEC)
        }
    );
    assert!(m.buckets.is_empty(), "no buckets unless asked");
}

#[tokio::test]
async fn figures_per_workflow_and_per_bucket_add_up_to_the_total() {
    let s = seeded().await;
    let m = metrics(
        &s,
        MetricsFilter {
            bucket: Some(Bucket::Day),
            ..MetricsFilter::default()
        },
    )
    .await;
    let names: Vec<_> = m.workflows.iter().map(|w| w.workflow.as_str()).collect();
    assert_eq!(names, ["onboard", "refund"]);
    let onboard = &m.workflows[0].figures;
    let refund = &m.workflows[1].figures;
    assert_eq!((refund.tasks, refund.succeeded, refund.failed), (4, 2, 1));
    assert!(close(refund.completion_rate, 2.0 / 3.0));
    assert_eq!((refund.duplicate_actions, refund.tool_calls), (1, 8));
    assert_eq!((onboard.tasks, onboard.exceptions.tasks), (3, 2));
    // t5 40 s and t6 50 s: the 1st and the 2nd of two.
    assert_eq!(
        onboard.wall_time,
        Spread {
            count: 2,
            p50_ms: Some(40 * SEC),
            p90_ms: Some(50 * SEC)
        }
    );
    assert_eq!(onboard.approvals.time_to_decision.count, 0);
    assert_eq!(onboard.approvals.approval_rate, Some(0.0), "one expiry");

    let days: Vec<_> = m
        .buckets
        .iter()
        .map(|b| (b.start, b.figures.tasks))
        .collect();
    assert_eq!(days, [(D0, 3), (D0 + DAY, 2), (D0 + 8 * DAY, 2)]);
    assert_eq!(m.buckets[0].figures.duplicate_actions, 1);
    assert_eq!(m.buckets[1].figures.exceptions.tasks, 2);
    assert_eq!(
        m.buckets[0].figures.wall_time,
        Spread {
            count: 3,
            p50_ms: Some(20 * SEC),
            p90_ms: Some(30 * SEC)
        }
    );

    let weeks = metrics(
        &s,
        MetricsFilter {
            bucket: Some(Bucket::Week),
            ..MetricsFilter::default()
        },
    )
    .await;
    let weeks: Vec<_> = weeks
        .buckets
        .iter()
        .map(|b| (b.start, b.figures.tasks))
        .collect();
    assert_eq!(weeks, [(D0, 5), (D0 + 7 * DAY, 2)], "weeks start on Monday");
}

#[tokio::test]
async fn a_period_a_workflow_and_the_duplicate_window_narrow_the_figures() {
    let s = seeded().await;
    // Day 1 only: t4 and t5.
    let m = metrics(
        &s,
        MetricsFilter {
            since: Some(D0 + DAY),
            until: Some(D0 + 2 * DAY),
            ..MetricsFilter::default()
        },
    )
    .await;
    assert_eq!((m.total.tasks, m.total.exceptions.tasks), (2, 2));
    assert_eq!(m.total.corrections.in_doubt_resolutions, 1);
    assert_eq!(m.total.tokens.len(), 2);

    let m = metrics(
        &s,
        MetricsFilter {
            workflow: Some("refund".into()),
            ..MetricsFilter::default()
        },
    )
    .await;
    assert_eq!(m.total.tasks, 4);
    assert_eq!(m.workflows.len(), 1);

    // c4 came five minutes after c3: outside a one-minute window.
    let m = metrics(
        &s,
        MetricsFilter {
            duplicate_window: 60 * SEC,
            ..MetricsFilter::default()
        },
    )
    .await;
    assert_eq!(m.total.duplicate_actions, 0);

    // A period with no tasks has counts of zero and no rates.
    let m = metrics(
        &s,
        MetricsFilter {
            since: Some(D0 + 100 * DAY),
            ..MetricsFilter::default()
        },
    )
    .await;
    assert_eq!(m.total.tasks, 0);
    assert_eq!(m.total.completion_rate, None);
    assert!(m.workflows.is_empty());
}

#[tokio::test]
async fn ratings_keep_their_history_and_only_ended_tasks_take_one() {
    let s = seeded().await;
    let history = s.store.ratings("t1").await.expect("ratings");
    let values: Vec<_> = history.iter().map(|r| r.rating).collect();
    assert_eq!(values, [5, 4], "oldest first; the last one counts");
    assert_eq!(
        s.store
            .add_rating("t7", 3, None, "alice", D0)
            .await
            .expect("rate"),
        None,
        "t7 is still running"
    );
    assert_eq!(
        s.store
            .add_rating("nope", 3, None, "alice", D0)
            .await
            .expect("rate"),
        None
    );
    assert!(
        s.store
            .add_rating("t1", 6, None, "alice", D0)
            .await
            .is_err(),
        "the table refuses a rating out of 1..=5"
    );
}

#[tokio::test]
async fn the_review_lists_failure_modes_overrides_exceptions_and_rule_decisions() {
    let s = seeded().await;
    let all = MetricsFilter::default();

    let modes = s
        .store
        .failure_modes(&all, 10)
        .await
        .expect("failure modes");
    let seen: Vec<_> = modes
        .iter()
        .map(|m| (m.kind.as_str(), m.place.as_str(), m.error.as_str(), m.count))
        .collect();
    assert_eq!(
        seen,
        [
            ("tool_call", "erp.refund", "card declined", 2),
            ("check", "verify", "refunded 120, approved 100", 1),
            ("step", "refund", "card declined", 1),
        ]
    );
    assert_eq!(modes[0].tasks, 1);

    let overrides = s.store.overrides(&all, 10).await.expect("overrides");
    assert_eq!(overrides.len(), 1);
    let o = &overrides[0];
    assert_eq!((o.approval_id.as_str(), o.task_id.as_str()), ("a2", "t2"));
    assert_eq!(o.rule.as_deref(), Some("refunds over 100"));
    assert_eq!(o.proposed_args, Some(serde_json::json!({"amount": 120})));
    assert_eq!(o.edited_args, serde_json::json!({"amount": 100}));

    let exceptions = s.store.exceptions(&all, 10).await.expect("exceptions");
    let seen: Vec<_> = exceptions
        .iter()
        .map(|e| (e.task_id.as_str(), e.status, e.reasons.join(",")))
        .collect();
    assert_eq!(
        seen,
        [
            ("t5", TaskStatus::Succeeded, "in_doubt,quarantined".into()),
            ("t4", TaskStatus::InDoubt, "in_doubt".into()),
            ("t3", TaskStatus::Failed, "failed".into()),
            ("t2", TaskStatus::Succeeded, "check_failed".to_owned()),
        ]
    );

    let decisions = s
        .store
        .held_call_decisions(None, None)
        .await
        .expect("decisions");
    let seen: Vec<_> = decisions
        .iter()
        .map(|d| (d.approval_id.as_str(), d.status.as_str(), d.edited))
        .collect();
    assert_eq!(
        seen,
        [
            ("a1", "approved", false),
            ("a2", "approved", true),
            ("a3", "rejected", false)
        ]
    );
    assert!(decisions.iter().all(|d| d.rule == "refunds over 100"));
    let before_t3 = s
        .store
        .held_call_decisions(Some("refund"), Some(D0 + 3 * HOUR))
        .await
        .expect("decisions");
    assert_eq!(before_t3.len(), 2);
}
