//! Kill the real `airlock` process with SIGKILL at hundreds of points while it runs a
//! multi-step workflow with side effects, restart it each time, and check that every task
//! still ends, that no non-idempotent effect happened twice, and that every call the
//! engine could not be sure about was put to a person instead of being re-run.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use airlock_engine::event::{TaskEvent, replay};
use airlock_engine::store::TaskProjection;
use airlock_tests::Sandbox;
use serde_json::Value;

const WORKFLOW: &str = r#"
name = "crashy"
description = "Three non-idempotent effects, an idempotent one, reads and a check"
start = "first"

[inputs.n]
type = "integer"

[states.first]
kind = "tool"
tool = "builtin.record"
args = { label = "'first'", n = "inputs.n", delay_ms = 3, linger_ms = 3 }
next = "look"

[states.look]
kind = "tool"
tool = "builtin.echo"
args = { n = "inputs.n" }
next = "save"

[states.save]
kind = "tool"
tool = "builtin.upsert"
args = { key = "'k' + string(inputs.n)", value = "inputs.n" }
next = "second"

[states.second]
kind = "tool"
tool = "builtin.record"
args = { label = "'second'", delay_ms = 2 }
next = "pause"

[states.pause]
kind = "tool"
tool = "builtin.sleep"
args = { ms = 4 }
next = "third"

[states.third]
kind = "tool"
tool = "builtin.record"
args = { label = "'third'", linger_ms = 4 }
next = "verify"

[states.verify]
kind = "check"
assert = "state.look.n == inputs.n"
next = "done"
on_fail = "failed"

[states.done]
kind = "end"
status = "succeeded"

[states.failed]
kind = "end"
status = "failed"
"#;

/// SIGKILLs of a run that was still going; runs that finish first do not count.
const KILLS: usize = 210;
const MAX_RUNS: usize = 500;
const RECORD_STEPS_PER_TASK: usize = 3;

fn sandbox() -> Sandbox {
    Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("temp dir")
}

fn event_count(sb: &Sandbox) -> i64 {
    let (_, tasks) = sb.json(["tasks", "--limit", "100000"]).expect("tasks");
    tasks.as_array().map_or(0, |ts| {
        ts.iter().filter_map(|t| t["last_seq"].as_i64()).sum()
    })
}

/// What a person does: answers every in-doubt call truthfully (by looking at the effects)
/// and releases quarantined tasks. Returns how many calls were put to the person.
async fn play_the_person(sb: &Sandbox) -> usize {
    let (_, calls) = sb.json(["in-doubt"]).expect("in-doubt");
    let calls = calls.as_array().cloned().unwrap_or_default();
    let effects: BTreeMap<String, i64> = sb
        .record_effects()
        .await
        .expect("effects")
        .into_iter()
        .collect();
    for call in &calls {
        let id = call["id"].as_str().expect("call id");
        let key = call["idempotency_key"].as_str().expect("key");
        let answer = if effects.contains_key(key) {
            "--happened"
        } else {
            "--not-happened"
        };
        let out = sb
            .airlock(["resolve", id, answer, "--as", "crash-test"])
            .output()
            .expect("resolve");
        assert!(
            out.status.code().is_some_and(|c| c == 0 || c == 5),
            "resolve failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (_, quarantined) = sb
        .json(["tasks", "--status", "quarantined"])
        .expect("tasks");
    for t in quarantined.as_array().cloned().unwrap_or_default() {
        let id = t["id"].as_str().expect("task id");
        sb.airlock(["release", id, "--as", "crash-test"])
            .output()
            .expect("release");
    }
    calls.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_hundreds_of_points_never_duplicates_an_effect() {
    let sb = sandbox();
    let wf = sb.write("crashy.toml", WORKFLOW).expect("write workflow");
    let wf = wf.to_str().expect("utf-8 path").to_owned();

    // Kills are spread over the work, not lost in process start-up: measure how long a
    // run with nothing to do takes on this machine and this build, and aim past most of it.
    let mut startups: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let out = sb.airlock(["resume"]).output().expect("resume");
            assert!(
                out.status.success(),
                "resume failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            t.elapsed()
        })
        .collect();
    startups.sort();
    let startup = startups[2];

    let started = Instant::now();
    let mut killed = 0;
    let mut progress_points = BTreeSet::new();
    let mut surfaced = 0;
    let mut tasks = 0;
    let mut i = 0;
    while killed < KILLS && i < MAX_RUNS {
        i += 1;
        if i % 3 == 1 {
            let n = i.to_string();
            let status = sb
                .airlock(["run", &wf, "--detach", "-i", &format!("n={n}")])
                .stdout(Stdio::null())
                .status()
                .expect("create task");
            assert!(status.success(), "could not create a task");
            tasks += 1;
        }
        let mut child = sb
            .airlock(["resume"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn airlock resume");
        // Spread the kill points over process start-up and every phase of the steps.
        let delay = startup.mul_f64(0.7) + Duration::from_micros(((i * 7919) % 50_000) as u64);
        std::thread::sleep(delay);
        if child.try_wait().expect("try_wait").is_none() {
            child.kill().expect("SIGKILL");
            killed += 1;
        }
        child.wait().expect("reap");
        progress_points.insert(event_count(&sb));
        if i % 10 == 9 {
            surfaced += play_the_person(&sb).await;
        }
    }

    // Now let it finish: a person settles what is in doubt, the engine carries on.
    for _ in 0..20 {
        surfaced += play_the_person(&sb).await;
        let out = sb.airlock(["resume"]).output().expect("resume");
        assert!(
            out.status.success(),
            "resume failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (_, all) = sb.json(["tasks", "--limit", "100000"]).expect("tasks");
        if all.as_array().is_some_and(|ts| {
            ts.iter().all(|t| {
                ["succeeded", "failed", "cancelled"].contains(&t["status"].as_str().unwrap_or(""))
            })
        }) {
            break;
        }
    }

    let (_, all) = sb.json(["tasks", "--limit", "100000"]).expect("tasks");
    let all = all.as_array().cloned().unwrap_or_default();
    assert_eq!(all.len(), tasks);
    for t in &all {
        assert_eq!(t["status"], "succeeded", "task did not succeed: {t}");
    }

    // No non-idempotent effect twice; every one exactly once.
    let effects = sb.record_effects().await.expect("effects");
    let duplicated: Vec<_> = effects.iter().filter(|(_, n)| *n > 1).collect();
    assert!(duplicated.is_empty(), "effects made twice: {duplicated:?}");
    assert_eq!(
        effects.len(),
        tasks * RECORD_STEPS_PER_TASK,
        "an effect is missing"
    );

    // The history of every task folds to its stored position, and nothing is left in doubt.
    for t in &all {
        let id = t["id"].as_str().expect("id");
        let (_, shown) = sb.json(["show", id]).expect("show");
        let events: Vec<TaskEvent> = shown["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| serde_json::from_value(e["body"].clone()).expect("readable event"))
            .collect();
        let stored: TaskProjection =
            serde_json::from_value(shown["task"].clone()).expect("task projection");
        assert_eq!(
            replay(&events),
            stored,
            "task {id}: the log does not fold to the stored row"
        );
        for call in shown["tool_calls"].as_array().expect("calls") {
            let outcome = call["outcome"].as_str().unwrap_or("none");
            assert!(
                ["succeeded", "happened", "not_happened"].contains(&outcome),
                "call left as {outcome}: {call}"
            );
            if ["happened", "not_happened"].contains(&outcome) {
                assert_eq!(call["resolved_by"], Value::String("crash-test".into()));
            }
        }
    }

    assert!(killed >= KILLS, "only {killed} runs were killed mid-way");
    assert!(
        progress_points.len() >= 100,
        "kills landed at only {} distinct points",
        progress_points.len()
    );
    assert!(
        surfaced > 0,
        "no kill ever left a call in doubt: the test is not reaching its target"
    );
    eprintln!(
        "crash test (start-up {startup:?}): {tasks} tasks, {killed} kills at {} distinct points, {surfaced} in-doubt calls put to a person, {:.1}s",
        progress_points.len(),
        started.elapsed().as_secs_f64()
    );
}
