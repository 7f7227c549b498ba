//! Airlock's engine benchmark: `cargo bench -p airlock-cli --bench engine [TEST...]`.
//!
//! Prints one line per test, in a shape shared with other engines' harnesses:
//!
//! `peer=airlock test=<linear|concurrent|hitl|crash|floor> steps=N total_s=… per_step_ms=… key=value…`
//!
//! Every test uses real SQLite files (WAL, `synchronous=FULL`, the store's default) in a
//! fresh folder under the system temp dir (`TMPDIR`), so `floor` (bare single-row durable
//! commits) and the engine tests pay for the same disk. `linear` runs in rounds, each
//! right after a floor run, and reports the median of the rounds' ratios: fsync latency
//! on a shared virtual disk swings too much for one floor to stand for a later run. Timing uses `std::time::Instant`;
//! the engine itself runs on its injected `SystemClock`.
//!
//! Under `cargo test` (no `--bench` argument) this does nothing.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use airlock_engine::store::{Durability, StoreOptions, TaskFilter, TaskStatus};
use airlock_engine::workflow::{Workflow, parse};
use airlock_engine::{BuiltinTools, Engine, EngineConfig, SystemClock, TaskChange};
use airlock_tests::Sandbox;
use serde_json::Map;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use tempfile::TempDir;
use tokio::sync::broadcast;

type Res<T> = Result<T, Box<dyn Error>>;

const FLOOR_COMMITS: usize = 1000;
const LINEAR_STEPS: usize = 1000;
const HITL_CYCLES: usize = 200;
const CRASH_STEPS: usize = 100;
/// The run is killed once this step has started.
const CRASH_KILL_AT: i64 = 50;

/// Floor + linear rounds; the median round is reported.
const ROUNDS: usize = 3;

/// Tables the wide floor's commits write one row each to: about the pages of a step
/// commit (`pages_per_commit` on the linear line), so the wide floor is the disk's price
/// for a durable commit of a step's size, with no engine around it.
const WIDE_TABLES: usize = 16;

const TESTS: [&str; 5] = ["floor", "linear", "concurrent", "hitl", "crash"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        eprintln!(
            "the engine benchmark only runs under `cargo bench -p airlock-cli --bench engine`"
        );
        return;
    }
    let wanted: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .map(String::as_str)
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Err(e) = runtime.block_on(run_all(&wanted)) {
        eprintln!("benchmark failed: {e}");
        std::process::exit(1);
    }
}

async fn run_all(wanted: &[&str]) -> Res<()> {
    let selected = |name: &str| wanted.is_empty() || wanted.contains(&name);
    if let Some(unknown) = wanted.iter().find(|w| !TESTS.contains(w)) {
        return Err(format!("unknown test `{unknown}`; the tests are {TESTS:?}").into());
    }
    eprintln!("bench folders under {}", std::env::temp_dir().display());
    let started = Instant::now();
    // `linear` is compared with the floor, so the floor is measured whenever it runs: in
    // rounds, each linear run right after its own floor, because this disk's fsync
    // latency swings by 10x from one second to the next when the machine is shared.
    if selected("floor") || selected("linear") {
        let rounds = if selected("linear") { ROUNDS } else { 1 };
        let mut floors = Vec::with_capacity(rounds);
        let mut wides = Vec::with_capacity(rounds);
        let mut events = Vec::with_capacity(rounds);
        let mut linears = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            floors.push(floor(1).await?);
            wides.push(floor(WIDE_TABLES).await?);
            events.push(events_floor().await?);
            if selected("linear") {
                linears.push(linear(Durability::Full).await?);
            }
        }
        print_floor(&floors, &wides, &events);
        if !linears.is_empty() {
            // The same task without its fsyncs: everything a step costs but the wait for
            // the disk, on the same disk.
            let unsynced = linear(Durability::Normal).await?;
            print_linear(&floors, &wides, &events, linears, &unsynced);
        }
    }
    if selected("concurrent") {
        let small = concurrent(100, 20, None).await?;
        concurrent(1000, 10, Some(small)).await?;
    }
    if selected("hitl") {
        hitl().await?;
    }
    if selected("crash") {
        crash().await?;
    }
    eprintln!("bench done in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

fn bench_dir() -> Res<TempDir> {
    Ok(tempfile::Builder::new()
        .prefix("airlock-bench-")
        .tempdir()?)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One floor run: each commit's time, and the run's.
struct FloorRun {
    total: Duration,
    each: Vec<f64>,
}

impl FloorRun {
    fn per_step_ms(&self) -> f64 {
        ms(self.total) / FLOOR_COMMITS as f64
    }
}

/// The physical limit of one durable step: single-row INSERT commits, one after another,
/// into a fresh SQLite file with WAL and `synchronous=FULL`. With `tables` > 1, each
/// commit also writes a row to each of the other tables (a trigger does it, so a commit is
/// still one statement): a commit of that many pages.
async fn floor(tables: usize) -> Res<FloorRun> {
    let dir = bench_dir()?;
    let mut conn = SqliteConnectOptions::new()
        .filename(dir.path().join("floor.sqlite"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .connect()
        .await?;
    sqlx::query("CREATE TABLE rows (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&mut conn)
        .await?;
    if tables > 1 {
        let mut fan_out = String::from("CREATE TRIGGER fan_out AFTER INSERT ON rows BEGIN ");
        for t in 1..tables {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE TABLE rows_{t} (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"
            )))
            .execute(&mut conn)
            .await?;
            fan_out.push_str(&format!("INSERT INTO rows_{t} (body) VALUES (NEW.body); "));
        }
        fan_out.push_str("END");
        sqlx::raw_sql(sqlx::AssertSqlSafe(fan_out))
            .execute(&mut conn)
            .await?;
    }
    let mut each = Vec::with_capacity(FLOOR_COMMITS);
    let start = Instant::now();
    for i in 0..FLOOR_COMMITS {
        let t = Instant::now();
        sqlx::query("INSERT INTO rows (body) VALUES (?)")
            .bind(format!("row {i}"))
            .execute(&mut conn)
            .await?;
        each.push(ms(t.elapsed()));
    }
    let total = start.elapsed();
    conn.close().await?;
    Ok(FloorRun { total, each })
}

/// The least any engine that keeps this store's event log pays per step: commits of one
/// step's events alone (the rows a real step of `builtin.echo` appended, one multi-row
/// `INSERT` per commit) into `task_events` of a store the engine made, with its indexes
/// and triggers, on the same disk. No task row, step, ledger row or audit entry is
/// written, and no engine runs: what a step costs beyond this is everything else.
async fn events_floor() -> Res<FloorRun> {
    let (dir, engine) = open_engine(1, Durability::Full).await?;
    let wf = echo_chain("events", 2)?;
    let id = engine.start_task(&wf, Map::new(), "bench", None).await?;
    engine.run_task(&id).await?;
    engine.close().await?;
    let mut conn = SqliteConnectOptions::new()
        .filename(dir.path().join("airlock.sqlite"))
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .connect()
        .await?;
    let events: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT seq, kind, body FROM task_events WHERE task_id = ? ORDER BY seq")
            .bind(&id)
            .fetch_all(&mut conn)
            .await?;
    // The first step's events: from its start to its success.
    let first = events.iter().position(|e| e.1 == "step_started");
    let last = events.iter().position(|e| e.1 == "step_succeeded");
    let (Some(first), Some(last)) = (first, last) else {
        return Err("the events floor's task has no started and succeeded step".into());
    };
    let step = &events[first..=last];
    let mut seq = events.last().map_or(0, |e| e.0);
    let sql = format!(
        "INSERT INTO task_events (task_id, seq, at, kind, body) VALUES {}",
        vec!["(?, ?, ?, ?, ?)"; step.len()].join(", ")
    );
    let mut each = Vec::with_capacity(FLOOR_COMMITS);
    let start = Instant::now();
    for _ in 0..FLOOR_COMMITS {
        let t = Instant::now();
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
        for (_, kind, body) in step {
            seq += 1;
            insert = insert
                .bind(&id)
                .bind(seq)
                .bind(wall_ms())
                .bind(kind)
                .bind(body);
        }
        insert.execute(&mut conn).await?;
        each.push(ms(t.elapsed()));
    }
    let total = start.elapsed();
    conn.close().await?;
    Ok(FloorRun { total, each })
}

/// The median of `values` (the upper one of an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The floor's figures, the wide floor's (`wide_*`: commits of [`WIDE_TABLES`] pages) and
/// the events floor's (`events_*`: commits of one step's events, [`events_floor`]).
fn print_floor(rounds: &[FloorRun], wides: &[FloorRun], events: &[FloorRun]) {
    let per_step: Vec<f64> = rounds.iter().map(FloorRun::per_step_ms).collect();
    let mut each: Vec<f64> = rounds.iter().flat_map(|r| r.each.iter().copied()).collect();
    each.sort_by(f64::total_cmp);
    let per_step_ms = median(&per_step);
    let wide: Vec<f64> = wides.iter().map(FloorRun::per_step_ms).collect();
    let events: Vec<f64> = events.iter().map(FloorRun::per_step_ms).collect();
    println!(
        "peer=airlock test=floor steps={FLOOR_COMMITS} total_s={:.3} per_step_ms={per_step_ms:.3} p50_ms={:.3} p95_ms={:.3} rounds={} round_ms={} wide_pages={WIDE_TABLES} wide_ms={:.3} wide_round_ms={} events_ms={:.3} events_round_ms={}",
        per_step_ms * FLOOR_COMMITS as f64 / 1000.0,
        percentile(&each, 50.0),
        percentile(&each, 95.0),
        rounds.len(),
        list(&per_step),
        median(&wide),
        list(&wide),
        median(&events),
        list(&events),
    );
}

/// `a,b,c` with three decimals.
fn list(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.3}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// An engine on a fresh store and effects file in its own folder.
async fn open_engine(max_concurrent: usize, durability: Durability) -> Res<(TempDir, Engine)> {
    let dir = bench_dir()?;
    let mut store = StoreOptions::new(dir.path().join("airlock.sqlite"));
    store.durability = durability;
    let mut config = EngineConfig::new(store);
    config.max_concurrent = max_concurrent;
    let tools = BuiltinTools::open(&dir.path().join("effects.sqlite")).await?;
    let engine = Engine::open(config, Arc::new(SystemClock), Arc::new(tools), None).await?;
    Ok((dir, engine))
}

fn workflow(name: &str, source: &str) -> Res<Workflow> {
    parse(Path::new(&format!("{name}.toml")), source)
        .map_err(|d| format!("the generated workflow `{name}` does not parse:\n{d}").into())
}

/// `steps` tool states in a row, each calling `tool` with `args(i)`, then an end state.
fn chain_source(name: &str, steps: usize, tool: &str, args: impl Fn(usize) -> String) -> String {
    let mut src = format!("name = \"{name}\"\nstart = \"s0\"\n\n");
    for i in 0..steps {
        let next = if i + 1 == steps {
            "done".to_owned()
        } else {
            format!("s{}", i + 1)
        };
        src += &format!(
            "[states.s{i}]\nkind = \"tool\"\ntool = \"{tool}\"\nargs = {}\nnext = \"{next}\"\n\n",
            args(i)
        );
    }
    src += "[states.done]\nkind = \"end\"\nstatus = \"succeeded\"\n";
    src
}

fn echo_chain(name: &str, steps: usize) -> Res<Workflow> {
    workflow(
        name,
        &chain_source(name, steps, "builtin.echo", |i| format!("{{ i = {i} }}")),
    )
}

/// Commits announced on the engine's change feed since `rx` subscribed (one per
/// committed transition; the lease claims and heartbeats are not announced).
fn drain(rx: &mut broadcast::Receiver<TaskChange>) -> u64 {
    let mut n = 0;
    loop {
        match rx.try_recv() {
            Ok(_) => n += 1,
            Err(broadcast::error::TryRecvError::Lagged(missed)) => n += missed,
            Err(_) => return n,
        }
    }
}

/// One linear run: the task's time and what it shows about where the time goes.
struct LinearRun {
    total: Duration,
    commits: u64,
    /// Pages the store's writer wrote during the run.
    pages: i64,
    first100: f64,
    last100: f64,
    state_bytes: usize,
}

impl LinearRun {
    fn per_step_ms(&self) -> f64 {
        ms(self.total) / LINEAR_STEPS as f64
    }
}

/// One task of N instant tool steps, run to the end in this call.
async fn linear(durability: Durability) -> Res<LinearRun> {
    let (_dir, engine) = open_engine(1, durability).await?;
    let wf = echo_chain("linear", LINEAR_STEPS)?;
    let id = engine.start_task(&wf, Map::new(), "bench", None).await?;
    let mut rx = engine.subscribe();
    let pages_before = engine.store().pages_written().await?;
    let start = Instant::now();
    let task = engine.run_task(&id).await?;
    let total = start.elapsed();
    let pages = engine.store().pages_written().await? - pages_before;
    let commits = drain(&mut rx);
    if task.projection.status != TaskStatus::Succeeded {
        return Err(format!("the linear task ended {:?}", task.projection.status).into());
    }
    // Where the time goes: step cost early vs late in the run (from the steps' own start
    // times), and how big the task's stored position has grown (rewritten every commit).
    let starts: Vec<i64> = engine
        .store()
        .steps(&id)
        .await?
        .iter()
        .map(|s| s.started_at)
        .collect();
    let bucket = |from: usize| -> f64 {
        let to = (from + 100).min(starts.len() - 1);
        (starts[to] - starts[from]) as f64 / (to - from) as f64
    };
    let (first100, last100) = (bucket(0), bucket(starts.len().saturating_sub(101)));
    let state_bytes = task.projection.state.to_string().len();
    engine.close().await?;
    Ok(LinearRun {
        total,
        commits,
        pages,
        first100,
        last100,
        state_bytes,
    })
}

/// The median round's figures; `vs_floor` is the median of the rounds' ratios, each
/// linear run against the floor measured just before it, and `vs_wide_floor` the same
/// against the wide floor (what the engine adds to the disk's price for its pages), and
/// `events_vs_floor` the events floor against the floor (what the event log alone takes of
/// the target's margin); `unsynced_ms` is a run with `synchronous=NORMAL` (no fsync per
/// commit), and `unsynced_vs_floor` it against the median floor: a step's work besides
/// its wait for the disk, which the target's margin over one fsync has to hold.
fn print_linear(
    floors: &[FloorRun],
    wides: &[FloorRun],
    events: &[FloorRun],
    mut rounds: Vec<LinearRun>,
    unsynced: &LinearRun,
) {
    let ratios_to = |floors: &[FloorRun]| -> Vec<f64> {
        floors
            .iter()
            .zip(&rounds)
            .map(|(f, l)| l.per_step_ms() / f.per_step_ms())
            .collect()
    };
    let ratios = ratios_to(floors);
    let wide_ratios = ratios_to(wides);
    let events_ratios: Vec<f64> = floors
        .iter()
        .zip(events)
        .map(|(f, e)| e.per_step_ms() / f.per_step_ms())
        .collect();
    rounds.sort_by_key(|r| r.total);
    let run = &rounds[rounds.len() / 2];
    let per_step = run.per_step_ms();
    println!(
        "peer=airlock test=linear steps={LINEAR_STEPS} total_s={:.3} per_step_ms={per_step:.3} vs_floor={:.2} vs_wide_floor={:.2} events_vs_floor={:.2} unsynced_ms={:.3} unsynced_vs_floor={:.2} commits={} commits_per_step={:.3} pages_per_commit={:.1} first100_ms={:.3} last100_ms={:.3} state_bytes={} rounds={} round_ratios={}",
        run.total.as_secs_f64(),
        median(&ratios),
        median(&wide_ratios),
        median(&events_ratios),
        unsynced.per_step_ms(),
        unsynced.per_step_ms()
            / median(&floors.iter().map(FloorRun::per_step_ms).collect::<Vec<_>>()),
        run.commits,
        run.commits as f64 / LINEAR_STEPS as f64,
        run.pages as f64 / run.commits.max(1) as f64,
        run.first100,
        run.last100,
        run.state_bytes,
        rounds.len(),
        list(&ratios),
    );
}

/// `tasks` tasks of `steps` instant steps each, all started, then run at once.
/// Returns per_step_ms; `baseline` is the smaller run's, to print the growth.
async fn concurrent(tasks: usize, steps: usize, baseline: Option<f64>) -> Res<f64> {
    let (_dir, engine) = open_engine(tasks, Durability::Full).await?;
    let wf = Arc::new(echo_chain(&format!("concurrent-{steps}"), steps)?);
    let mut starting = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let (engine, wf) = (engine.clone(), wf.clone());
        starting.spawn(async move { engine.start_task(&wf, Map::new(), "bench", None).await });
    }
    while let Some(started) = starting.join_next().await {
        started??;
    }
    let mut rx = engine.subscribe();
    let start = Instant::now();
    engine.run_until_idle().await?;
    let total = start.elapsed();
    let commits = drain(&mut rx);
    let done = engine
        .store()
        .list_tasks(&TaskFilter {
            status: Some(TaskStatus::Succeeded),
            workflow: None,
            limit: None,
        })
        .await?
        .len();
    if done != tasks {
        return Err(format!("only {done} of {tasks} concurrent tasks succeeded").into());
    }
    engine.close().await?;
    let all = (tasks * steps) as f64;
    let per_step = ms(total) / all;
    let growth = baseline.map_or(String::new(), |b| format!(" growth={:.2}", per_step / b));
    println!(
        "peer=airlock test=concurrent steps={} total_s={:.3} per_step_ms={per_step:.3} tasks={tasks} steps_per_task={steps} steps_per_s={:.0} commits_per_step={:.3}{growth}",
        tasks * steps,
        total.as_secs_f64(),
        all / total.as_secs_f64(),
        commits as f64 / all,
    );
    Ok(per_step)
}

const HITL: &str = r#"
name = "hitl"
start = "approve"

[states.approve]
kind = "approval"
prompt = "Carry on?"
approvers = ["bench"]
next = "act"
on_reject = "rejected"

[states.act]
kind = "tool"
tool = "builtin.echo"
args = { approved = true }
next = "done"

[states.done]
kind = "end"
status = "succeeded"

[states.rejected]
kind = "end"
status = "cancelled"
"#;

/// Pause at an approval, then time approve + carry on to the end, many times.
async fn hitl() -> Res<()> {
    let (_dir, engine) = open_engine(1, Durability::Full).await?;
    let wf = workflow("hitl", HITL)?;
    let mut cycles = Vec::with_capacity(HITL_CYCLES);
    let mut commits = 0;
    for _ in 0..HITL_CYCLES {
        let id = engine.start_task(&wf, Map::new(), "bench", None).await?;
        let waiting = engine.run_task(&id).await?;
        if waiting.projection.status != TaskStatus::WaitingApproval {
            return Err(format!("the hitl task is {:?}", waiting.projection.status).into());
        }
        let approval = engine
            .store()
            .task_approvals(&id)
            .await?
            .into_iter()
            .next()
            .ok_or("no approval was requested")?;
        let mut rx = engine.subscribe();
        let start = Instant::now();
        engine
            .decide_approval(&approval.id, true, "bench", None)
            .await?;
        let task = engine.run_task(&id).await?;
        cycles.push(ms(start.elapsed()));
        commits += drain(&mut rx);
        if task.projection.status != TaskStatus::Succeeded {
            return Err(format!("the approved task ended {:?}", task.projection.status).into());
        }
    }
    engine.close().await?;
    let total: f64 = cycles.iter().sum();
    cycles.sort_by(f64::total_cmp);
    println!(
        "peer=airlock test=hitl steps={HITL_CYCLES} total_s={:.3} per_step_ms={:.3} p50_ms={:.3} p95_ms={:.3} max_ms={:.3} commits_per_cycle={:.2}",
        total / 1000.0,
        total / HITL_CYCLES as f64,
        percentile(&cycles, 50.0),
        percentile(&cycles, 95.0),
        percentile(&cycles, 100.0),
        commits as f64 / HITL_CYCLES as f64,
    );
    Ok(())
}

async fn read_only(db: &Path) -> Option<SqliteConnection> {
    if !db.exists() {
        return None;
    }
    SqliteConnectOptions::new()
        .filename(db)
        .read_only(true)
        .connect()
        .await
        .ok()
}

/// (kind, at) of the task's events after `seq`.
async fn events_after(db: &Path, seq: i64) -> Res<Vec<(String, i64)>> {
    let mut conn = read_only(db).await.ok_or("the store is missing")?;
    let rows = sqlx::query_as("SELECT kind, at FROM task_events WHERE seq > ? ORDER BY seq")
        .bind(seq)
        .fetch_all(&mut conn)
        .await?;
    conn.close().await?;
    Ok(rows)
}

async fn last_seq(db: &Path) -> Res<i64> {
    let mut conn = read_only(db).await.ok_or("the store is missing")?;
    let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM task_events")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(seq)
}

/// Seconds from `spawned_ms` to the first of `events` satisfying `pick`.
fn first_after(events: &[(String, i64)], spawned_ms: i64, pick: impl Fn(&str) -> bool) -> f64 {
    events
        .iter()
        .find(|(kind, _)| pick(kind))
        .map_or(f64::NAN, |(_, at)| (at - spawned_ms) as f64 / 1000.0)
}

fn is_step(kind: &str) -> bool {
    kind == "step_started" || kind == "tool_called"
}

fn checked(out: &std::process::Output, what: &str) -> Res<()> {
    // 0: done; 5: the task waits for a person (approval, in doubt).
    match out.status.code() {
        Some(0 | 5) => Ok(()),
        _ => Err(format!(
            "`airlock {what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into()),
    }
}

/// SIGKILL the real CLI in the middle of a 100-step run of non-idempotent effects, then
/// restart it, settle what is in doubt as a person would, and finish.
async fn crash() -> Res<()> {
    let scenario = Instant::now();
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock"))?;
    let source = chain_source("crash", CRASH_STEPS, "builtin.record", |i| {
        format!("{{ label = \"'s{i}'\" }}")
    });
    workflow("crash", &source)?;
    let file = sb.write("crash.toml", &source)?;
    let db = sb.db();

    let mut child = sb
        .airlock(["run".as_ref(), file.as_os_str()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut reached = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while reached < CRASH_KILL_AT {
        if Instant::now() > deadline || child.try_wait()?.is_some() {
            let _ = child.kill();
            return Err(format!("the run ended or stalled before step {CRASH_KILL_AT}").into());
        }
        if let Some(mut conn) = read_only(&db).await {
            reached = sqlx::query_scalar("SELECT COALESCE(MAX(step_no), 0) FROM steps")
                .fetch_one(&mut conn)
                .await
                .unwrap_or(0);
            conn.close().await?;
        }
        if reached < CRASH_KILL_AT {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    child.kill()?;
    child.wait()?;
    let before = last_seq(&db).await?;
    let killed_at_step: i64 = {
        let mut conn = read_only(&db).await.ok_or("the store is missing")?;
        let n = sqlx::query_scalar("SELECT MAX(step_no) FROM steps")
            .fetch_one(&mut conn)
            .await?;
        conn.close().await?;
        n
    };
    // Steady-state cost of one step in the killed run, from its own event timestamps.
    let run_steps = {
        let starts: Vec<i64> = events_after(&db, 0)
            .await?
            .into_iter()
            .filter(|(kind, _)| kind == "step_started")
            .map(|(_, at)| at)
            .collect();
        match (starts.first(), starts.last()) {
            (Some(a), Some(b)) if starts.len() > 1 => (b - a) as f64 / (starts.len() - 1) as f64,
            _ => f64::NAN,
        }
    };

    // Restart: how soon does the new process act on the interrupted task?
    let spawned_ms = wall_ms();
    let spawned = Instant::now();
    let out = sb.airlock(["resume"]).output()?;
    let resume_exit_s = spawned.elapsed().as_secs_f64();
    checked(&out, "resume")?;
    let after_resume = events_after(&db, before).await?;
    let resume_s = first_after(&after_resume, spawned_ms, |_| true);
    let mut first_step_s = first_after(&after_resume, spawned_ms, is_step);
    let resume_kinds: Vec<&str> = after_resume.iter().map(|(k, _)| k.as_str()).collect();

    // A person settles each in-doubt call by looking at the effects, then it carries on.
    let (_, calls) = sb.json(["in-doubt"])?;
    let calls = calls.as_array().cloned().unwrap_or_default();
    let effects: BTreeMap<String, i64> = sb.record_effects().await?.into_iter().collect();
    let mut answers = Vec::new();
    for call in &calls {
        let id = call["id"]
            .as_str()
            .ok_or("an in-doubt call without an id")?;
        let key = call["idempotency_key"]
            .as_str()
            .ok_or("an in-doubt call without a key")?;
        let answer = if effects.contains_key(key) {
            "--happened"
        } else {
            "--not-happened"
        };
        answers.push(answer.trim_start_matches('-').to_owned());
        let seq = last_seq(&db).await?;
        let spawned_ms = wall_ms();
        let out = sb
            .airlock(["resolve", id, answer, "--as", "bench"])
            .output()?;
        checked(&out, "resolve")?;
        if first_step_s.is_nan() {
            first_step_s = first_after(&events_after(&db, seq).await?, spawned_ms, is_step);
        }
    }
    let out = sb.airlock(["resume"]).output()?;
    checked(&out, "resume")?;

    let (_, tasks) = sb.json(["tasks"])?;
    let status = tasks[0]["status"].as_str().unwrap_or("?").to_owned();
    let effects = sb.record_effects().await?;
    let reexecuted = effects.iter().filter(|(_, n)| *n > 1).count();
    let total = scenario.elapsed();
    eprintln!(
        "crash: killed at step {killed_at_step}; the restarted `airlock resume` wrote {resume_kinds:?} and exited after {resume_exit_s:.3}s; answers {answers:?}"
    );
    println!(
        "peer=airlock test=crash steps={CRASH_STEPS} total_s={:.3} per_step_ms={run_steps:.3} reexecuted={reexecuted} resume_s={resume_s:.3} first_step_s={first_step_s:.3} resume_exit_s={resume_exit_s:.3} in_doubt={} killed_at_step={killed_at_step} effects={} status={status}",
        total.as_secs_f64(),
        calls.len(),
        effects.len(),
    );
    if status != "succeeded" || reexecuted > 0 || effects.len() != CRASH_STEPS {
        return Err(format!(
            "crash: the task is {status}, {reexecuted} effects were made twice, {} of {CRASH_STEPS} effects exist",
            effects.len()
        )
        .into());
    }
    Ok(())
}
