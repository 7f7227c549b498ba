//! Metrics over a large ledger: `cargo bench -p airlock-store --bench metrics`.
//!
//! Seeds one store with 100,000 tasks of three workflows over four weeks and 1,000,000
//! tool calls (ten per task), with their steps, a `tool_called` event per call, a model
//! turn per task, an outcome check in one task of seven, 20,000 approvals and 5,000 ratings, in one transaction of multi-row
//! inserts from recursive CTEs. Then computes every figure (totals and per workflow) for
//! all of it, and prints:
//!
//! `peer=airlock test=metrics tool_calls=1000000 total_s=… key=value…`
//!
//! `total_s` is the median of five runs of `Store::metrics` over all tasks and `cpu_s`
//! the CPU time it used (its queries run at once on the store's read connections, so
//! on an idle machine with two or more cores `total_s` is well under `cpu_s`); `first_s` the
//! first of them; `week_s` one week's tasks; `by_day_s` all tasks with daily buckets.
//!
//! Under `cargo test` (no `--bench` argument) this does nothing. With
//! `AIRLOCK_METRICS_BENCH_DB=<path>` the seeded database is written there and kept, and
//! a later run with the same path measures it again without seeding.

use std::error::Error;
use std::time::Instant;

use airlock_store::{Bucket, MetricsFilter, Store, StoreOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection};

type Res<T> = Result<T, Box<dyn Error>>;

/// Monday 2026-11-23 00:00 UTC.
const T0: i64 = 1_795_392_000_000;
const TASKS: i64 = 100_000;
const CALLS_PER_TASK: i64 = 10;
/// One call in this many repeats the call before it (same task, tool and arguments).
const DUPLICATE_EVERY: i64 = 100_000;

/// Task `i` is created at `T0 + i * 25 s` (four weeks in all) and its calls 100 ms apart.
/// Calls `i` with `i % 100000 = 6` repeat call `i - 1` (an `erp.refund`): the ten
/// duplicates the figures must find.
fn seed_sql() -> String {
    let last_task = TASKS - 1;
    let last_call = TASKS * CALLS_PER_TASK - 1;
    format!(
        "
INSERT INTO workflows (id, name, version, hash, source, origin, created_at) VALUES
 (1, 'refund', 1, 'h1', '', NULL, 0), (2, 'onboard', 1, 'h2', '', NULL, 0),
 (3, 'payout', 1, 'h3', '', NULL, 0);
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last_task})
INSERT INTO tasks (id, workflow_id, workflow_name, requester, inputs, status, current_state,
    step_no, attempt, phase, state, error, wake_at, recovery_failures, last_seq, created_at,
    updated_at)
SELECT printf('%032x', i), 1 + i % 3,
  CASE i % 3 WHEN 0 THEN 'refund' WHEN 1 THEN 'onboard' ELSE 'payout' END, 'alice', '{{}}',
  CASE WHEN i % 50 = 0 THEN 'failed' WHEN i % 97 = 0 THEN 'in_doubt'
       WHEN i % 20 = 0 THEN 'cancelled' WHEN i % 200 = 1 THEN 'running' ELSE 'succeeded' END,
  'done', 11, 1, '{{\"at\":\"ended\"}}', '{{}}',
  CASE WHEN i % 50 = 0 THEN 'erp.refund: card declined' END, NULL, 0, 13,
  {T0} + i * 25000, {T0} + i * 25000 + 1000 + (i * 7919) % 60000
FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last_call}),
m AS (SELECT i, CASE WHEN i % {DUPLICATE_EVERY} = 6 THEN i - 1 ELSE i END AS j FROM n)
INSERT INTO tool_calls (id, task_id, step_no, attempt, call_index, tool, args, args_hash,
    idempotency_key, idempotent, intent_at, outcome, result, error, outcome_at, resolved_by)
SELECT printf('c%031x', i), printf('%032x', i / 10), i % 10 + 1, 1, 0,
  CASE j % 4 WHEN 0 THEN 'crm.lookup' WHEN 1 THEN 'erp.refund' WHEN 2 THEN 'support.reply'
       ELSE 'hr.update' END,
  '{{\"order\":' || j || ',\"amount_cents\":' || (j % 50000) || '}}', printf('%064x', j),
  printf('%032x', i / 10) || '/' || (i % 10 + 1) || '/0',
  j % 4 = 0, {T0} + (i / 10) * 25000 + (i % 10) * 100,
  CASE WHEN i % 1000 = 7 THEN 'failed' WHEN i % 9700 = 3 THEN 'happened' ELSE 'succeeded' END,
  CASE WHEN i % 1000 = 7 THEN NULL ELSE '{{\"ok\":true,\"id\":' || i || '}}' END,
  CASE WHEN i % 1000 = 7 THEN 'timeout talking to erp' END,
  {T0} + (i / 10) * 25000 + (i % 10) * 100 + 50,
  CASE WHEN i % 9700 = 3 THEN 'carol' END
FROM m;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last_call})
INSERT INTO steps (task_id, step_no, state_name, kind, attempts, started_at, ended_at, outcome,
    error)
SELECT printf('%032x', i / 10), i % 10 + 1, 's' || (i % 10),
  CASE WHEN i % 10 = 9 AND i % 70 = 9 THEN 'check' ELSE 'tool' END, 1,
  {T0} + (i / 10) * 25000 + (i % 10) * 100, {T0} + (i / 10) * 25000 + (i % 10) * 100 + 60,
  'succeeded', NULL
FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last_call})
INSERT INTO task_events (task_id, seq, at, kind, body)
SELECT printf('%032x', i / 10), i % 10 + 3, {T0} + (i / 10) * 25000 + (i % 10) * 100,
  CASE WHEN i % 10 = 9 AND i % 70 = 9 THEN 'step_succeeded' ELSE 'tool_called' END,
  CASE WHEN i % 10 = 9 AND i % 70 = 9
    THEN '{{\"kind\":\"step_succeeded\",\"step_no\":10,\"state\":\"s9\",\"output\":{{\"passed\":'
         || CASE WHEN (i / 70) % 7 = 0 THEN 'false' ELSE 'true' END || '}},\"next\":\"done\"}}'
    ELSE '{{\"kind\":\"tool_called\",\"call_id\":\"' || printf('c%031x', i)
         || '\",\"tool\":\"erp.refund\",\"args_hash\":\"' || printf('%064x', i) || '\"}}' END
FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last_call})
INSERT INTO task_outputs (task_id, state_name, output)
SELECT printf('%032x', i / 10), 's9',
  '{{\"passed\":' || CASE WHEN (i / 70) % 7 = 0 THEN 'false' ELSE 'true' END || '}}'
FROM n WHERE i % 70 = 9;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last_task})
INSERT INTO task_events (task_id, seq, at, kind, body)
SELECT printf('%032x', i), 2, {T0} + i * 25000, 'model_turn',
  '{{\"kind\":\"model_turn\",\"step_no\":1,\"attempt\":1,\"turn\":1,\"model\":\"' ||
  CASE i % 2 WHEN 0 THEN 'claude (claude-sonnet-4-5)' ELSE 'claude (claude-haiku-4-5)' END ||
  '\",\"reply\":{{}},\"usage\":{{\"input_tokens\":1200,\"output_tokens\":300,' ||
  '\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":800}}}}'
FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {TASKS} / 5 - 1)
INSERT INTO approvals (id, task_id, step_no, state_name, prompt, approvers, status,
    requested_at, expires_at, decided_at, decided_by, reason, held_call, edited_args)
SELECT printf('a%031x', i), printf('%032x', i * 5), 3, 's2', 'Refund?', '[\"controller\"]',
  CASE WHEN i % 10 = 0 THEN 'rejected' WHEN i % 25 = 1 THEN 'expired' ELSE 'approved' END,
  {T0} + i * 5 * 25000, NULL, {T0} + i * 5 * 25000 + 1000 + (i * 613) % 600000,
  CASE WHEN i % 25 = 1 THEN NULL ELSE 'carol' END, NULL,
  '{{\"call_index\":0,\"tool\":\"erp.refund\",\"args\":{{\"n\":1}},\"risk\":\"write\",\"rule\":\"'
    || CASE i % 2 WHEN 0 THEN 'refunds need a controller' ELSE 'large payouts' END
    || '\",\"seen\":{{}},\"requester\":\"alice\",\"approvals\":1,\"escalate_at\":null,'
    || '\"escalate_to\":[],\"four_eyes\":false}}',
  CASE WHEN i % 10 = 3 THEN '{{\"n\":2}}' END
FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {TASKS} / 20 - 1)
INSERT INTO task_ratings (task_id, rating, comment, rated_by, rated_at)
SELECT printf('%032x', i * 20 + 2), 1 + i % 5, 'ok', 'alice', {T0} + (i * 20 + 2) * 25000 + 90000
FROM n;
"
    )
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!(
            "the metrics benchmark only runs under `cargo bench -p airlock-store --bench metrics`"
        );
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Err(e) = runtime.block_on(run()) {
        eprintln!("benchmark failed: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Res<()> {
    let dir = tempfile::tempdir()?;
    // `AIRLOCK_METRICS_BENCH_DB=<path>` seeds there and keeps the file, for
    // `EXPLAIN QUERY PLAN` and timing single queries in `sqlite3`.
    let path = std::env::var_os("AIRLOCK_METRICS_BENCH_DB").map_or_else(
        || dir.path().join("airlock.sqlite"),
        std::path::PathBuf::from,
    );
    // A kept database from an earlier run is used again as it is.
    let reuse = path.exists();
    let store = Store::open(StoreOptions::new(&path), T0).await?;

    let seeding = Instant::now();
    if !reuse {
        eprintln!("seeding {}", path.display());
        let mut conn = SqliteConnection::connect_with(
            &SqliteConnectOptions::new()
                .filename(&path)
                .synchronous(SqliteSynchronous::Off),
        )
        .await?;
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(seed_sql()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        // A running store's WAL stays small (the writer checkpoints every 32 MiB): measured
        // over the seeded file itself, not over a 1 GB WAL of the seed.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut conn)
            .await?;
        conn.close().await?;
    }
    let seed_s = seeding.elapsed().as_secs_f64();
    let size_mb = std::fs::metadata(&path)?.len() as f64 / 1e6;

    let all = MetricsFilter::default();
    let mut runs = Vec::new();
    let mut figures = None;
    let mut cpu = Vec::new();
    for _ in 0..5 {
        let (started, cpu_before) = (Instant::now(), cpu_seconds());
        let m = store.metrics(&all).await?;
        runs.push(started.elapsed().as_secs_f64());
        cpu.push(cpu_seconds().zip(cpu_before).map(|(a, b)| a - b));
        figures = Some(m);
    }
    let m = figures.ok_or("no run")?;
    let first_s = runs[0];
    // The CPU time of the median run: what the figures cost without other load.
    let median = {
        let mut order: Vec<usize> = (0..runs.len()).collect();
        order.sort_by(|a, b| runs[*a].total_cmp(&runs[*b]));
        order[order.len() / 2]
    };
    let total_s = runs[median];
    let cpu_s = cpu[median].map_or_else(|| "unknown".to_owned(), |c| format!("{c:.3}"));

    let expected = TASKS * CALLS_PER_TASK / DUPLICATE_EVERY;
    if m.total.tool_calls != TASKS * CALLS_PER_TASK || m.total.duplicate_actions != expected {
        return Err(format!(
            "wrong figures: {} calls, {} duplicates (expected {expected})",
            m.total.tool_calls, m.total.duplicate_actions
        )
        .into());
    }

    let started = Instant::now();
    let week = store
        .metrics(&MetricsFilter {
            since: Some(T0 + 7 * 86_400_000),
            until: Some(T0 + 14 * 86_400_000),
            ..MetricsFilter::default()
        })
        .await?;
    let week_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let by_day = store
        .metrics(&MetricsFilter {
            bucket: Some(Bucket::Day),
            ..MetricsFilter::default()
        })
        .await?;
    let by_day_s = started.elapsed().as_secs_f64();

    println!(
        "peer=airlock test=metrics tool_calls={} total_s={total_s:.3} cpu_s={cpu_s} \
         first_s={first_s:.3} tasks={} duplicates={} week_s={week_s:.3} week_calls={} \
         by_day_s={by_day_s:.3} days={} seed_s={seed_s:.1} db_mb={size_mb:.0}",
        m.total.tool_calls,
        m.total.tasks,
        m.total.duplicate_actions,
        week.total.tool_calls,
        by_day.buckets.len(),
    );
    Ok(())
}

/// This process's user + system CPU time (Linux, from `/proc/self/stat`, whose clock ticks
/// are 1/100 s); `None` elsewhere.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Some((ticks(11)? + ticks(12)?) / 100.0)
}
