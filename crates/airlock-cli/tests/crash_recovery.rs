//! Kill the real `airlock` process with SIGKILL at hundreds of points while it runs a
//! multi-step workflow with side effects, restart it each time, and check that every task
//! still ends, that no non-idempotent effect happened twice, and that every call the
//! engine could not be sure about was put to a person instead of being re-run.
//!
//! Some of the tasks are large payouts (`approve-payout` above 10000): the workflow's
//! checkpoint first, then the example policy holds the payout call itself. A controller
//! decides those approvals between kills (and the `approve`/`reject` processes, which carry
//! the task on, are killed at random points too): approved payouts take effect exactly
//! once, rejected and still-pending ones never.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
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

/// Who may decide the payouts (the example policy names the `controller` role).
const PEOPLE: &str = "[identities.controller]\nroles = [\"controller\"]\n";
/// Why the controller turns down a held payout call.
const NOT_OWED: &str = "no invoice for this payout";

fn payout_workflow() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../workspace/examples/approve-payout.toml")
}

/// What the controller does with one large payout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    /// Approves the checkpoint and the held call: paid exactly once.
    Pay,
    /// Approves the checkpoint, rejects the held call with [`NOT_OWED`].
    RejectCall,
    /// Rejects the workflow's checkpoint: the call is never even proposed.
    RejectCheckpoint,
    /// Approves the checkpoint and never decides the held call.
    Leave,
}

impl Plan {
    fn of(nth: usize) -> Plan {
        [
            Plan::Pay,
            Plan::RejectCall,
            Plan::Pay,
            Plan::RejectCheckpoint,
            Plan::Leave,
        ][nth % 5]
    }
}

/// What the person did in one round.
#[derive(Default)]
struct Round {
    /// In-doubt calls settled.
    surfaced: usize,
    /// ... of which approved payout calls.
    payouts_in_doubt: usize,
    /// Approvals answered by a process that ran to its end.
    decided: usize,
    /// `approve`/`reject` processes killed mid-way.
    killed: usize,
    /// ... of which the decision had already landed (the kill hit the carrying on).
    killed_after_deciding: usize,
}

fn sandbox() -> Sandbox {
    Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("temp dir")
}

fn event_count(sb: &Sandbox) -> i64 {
    let (_, tasks) = sb.json(["tasks", "--limit", "100000"]).expect("tasks");
    tasks.as_array().map_or(0, |ts| {
        ts.iter().filter_map(|t| t["last_seq"].as_i64()).sum()
    })
}

/// What a person does: answers every in-doubt call truthfully (by looking at the effects),
/// releases quarantined tasks, and decides pending payout approvals as each task's plan
/// says. With `kill_seed`, each decision's process is SIGKILLed at a point picked from it
/// (a decision that never landed is made again in a later round).
async fn play_the_person(
    sb: &Sandbox,
    plans: &BTreeMap<String, Plan>,
    startup: Duration,
    kill_seed: Option<usize>,
) -> Round {
    let mut round = Round::default();
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
    round.surfaced = calls.len();
    round.payouts_in_doubt = calls
        .iter()
        .filter(|c| c["task_id"].as_str().is_some_and(|t| plans.contains_key(t)))
        .count();

    let (_, pending) = sb.json(["approvals"]).expect("approvals");
    let mut killed = Vec::new();
    for (k, approval) in pending
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let id = approval["id"].as_str().expect("approval id");
        let task = approval["task_id"].as_str().expect("task id");
        let plan = plans[task];
        let held = !approval["held_call"].is_null();
        let args: Vec<&str> = match (held, plan) {
            (false, Plan::RejectCheckpoint) => {
                vec![
                    "reject",
                    id,
                    "--reason",
                    "not this payee",
                    "--as",
                    "controller",
                ]
            }
            (false, _) | (true, Plan::Pay) => vec!["approve", id, "--as", "controller"],
            (true, Plan::RejectCall) => {
                vec!["reject", id, "--reason", NOT_OWED, "--as", "controller"]
            }
            (true, Plan::Leave) => continue,
            (true, Plan::RejectCheckpoint) => {
                panic!("a call was proposed after its checkpoint was rejected: {approval}")
            }
        };
        if held {
            assert_eq!(
                approval["held_call"]["tool"], "builtin.record",
                "{approval}"
            );
            assert_eq!(
                approval["held_call"]["rule"], "large payouts need a controller",
                "{approval}"
            );
        }
        match kill_seed {
            None => {
                let out = sb.airlock(&args).output().expect("decide");
                assert!(
                    out.status.code().is_some_and(|c| [0, 4, 5].contains(&c)),
                    "{args:?} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                round.decided += 1;
            }
            Some(seed) => {
                let mut child = sb
                    .airlock(&args)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn a decision");
                let at = (seed * 31 + k) * 7919 % 60_000;
                std::thread::sleep(startup.mul_f64(0.6) + Duration::from_micros(at as u64));
                if child.try_wait().expect("try_wait").is_none() {
                    child.kill().expect("SIGKILL");
                    child.wait().expect("reap");
                    killed.push(id.to_owned());
                } else {
                    let status = child.wait().expect("reap");
                    assert!(
                        status.code().is_some_and(|c| [0, 4, 5].contains(&c)),
                        "{args:?} failed: {status}"
                    );
                    round.decided += 1;
                }
            }
        }
    }
    if !killed.is_empty() {
        let (_, still) = sb.json(["approvals"]).expect("approvals");
        let still = still.as_array().cloned().unwrap_or_default();
        round.killed = killed.len();
        round.killed_after_deciding = killed
            .iter()
            .filter(|id| !still.iter().any(|a| a["id"] == id.as_str()))
            .count();
    }
    round
}

/// Creates a large payout task (detached) and returns its id.
fn start_payout(sb: &Sandbox, amount: usize) -> String {
    let (code, created) = sb
        .json([
            "run".as_ref(),
            payout_workflow().as_os_str(),
            "--detach".as_ref(),
            "-i".as_ref(),
            format!("amount={amount}").as_ref(),
            "-i".as_ref(),
            "payee=Ada".as_ref(),
        ])
        .expect("create a payout");
    assert_eq!(code, Some(0), "could not create a payout: {created}");
    created["task"].as_str().expect("task id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_hundreds_of_points_never_duplicates_an_effect() {
    let sb = sandbox();
    sb.write("identities.toml", PEOPLE)
        .expect("write identities");
    let wf = sb.write("crashy.toml", WORKFLOW).expect("write workflow");
    let wf = wf.to_str().expect("utf-8 path").to_owned();

    // Kills are spread over the work, not lost in process start-up: measure how long a
    // run with nothing to do takes on this machine and this build, and aim past most of it.
    let mut startups: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let out = sb.airlock(["resume"]).output().expect("resume");
            // 5: some task waits for a person (an approval or a call in doubt).
            assert!(
                matches!(out.status.code(), Some(0 | 5)),
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
    let mut person = Round::default();
    let mut crashy = BTreeSet::new();
    let mut plans: BTreeMap<String, Plan> = BTreeMap::new();
    let mut i = 0;
    while killed < KILLS && i < MAX_RUNS {
        i += 1;
        // One new task every third run, as before: two crashy ones, then a large payout.
        if i % 9 == 5 {
            let id = start_payout(&sb, 10_000 + i);
            plans.insert(id, Plan::of(plans.len()));
        } else if i % 3 == 1 && i % 9 != 7 {
            let n = i.to_string();
            let (code, created) = sb
                .json(["run", &wf, "--detach", "-i", &format!("n={n}")])
                .expect("create task");
            assert_eq!(code, Some(0), "could not create a task: {created}");
            crashy.insert(created["task"].as_str().expect("task id").to_owned());
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
            let round = play_the_person(&sb, &plans, startup, Some(i)).await;
            person.surfaced += round.surfaced;
            person.payouts_in_doubt += round.payouts_in_doubt;
            person.decided += round.decided;
            person.killed += round.killed;
            person.killed_after_deciding += round.killed_after_deciding;
        }
    }

    // Now let it finish: a person settles what is in doubt and decides the payouts, the
    // engine carries on. Payouts whose held call nobody decides stay waiting for it.
    let settled = |t: &Value| {
        let status = t["status"].as_str().unwrap_or("");
        let left = plans.get(t["id"].as_str().unwrap_or("")) == Some(&Plan::Leave);
        ["succeeded", "failed", "cancelled"].contains(&status)
            || (left && status == "waiting_approval" && t["current_state"] == "pay")
    };
    for _ in 0..20 {
        let round = play_the_person(&sb, &plans, startup, None).await;
        person.surfaced += round.surfaced;
        person.payouts_in_doubt += round.payouts_in_doubt;
        person.decided += round.decided;
        let out = sb.airlock(["resume"]).output().expect("resume");
        // 5: some task waits for a person (an approval or a call in doubt).
        assert!(
            matches!(out.status.code(), Some(0 | 5)),
            "resume failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (_, all) = sb.json(["tasks", "--limit", "100000"]).expect("tasks");
        if all.as_array().is_some_and(|ts| ts.iter().all(settled)) {
            break;
        }
    }

    let (_, all) = sb.json(["tasks", "--limit", "100000"]).expect("tasks");
    let all = all.as_array().cloned().unwrap_or_default();
    assert_eq!(all.len(), crashy.len() + plans.len());
    for t in &all {
        let id = t["id"].as_str().expect("id");
        let expected = match plans.get(id) {
            None | Some(Plan::Pay) => "succeeded",
            Some(Plan::RejectCall) => "failed",
            Some(Plan::RejectCheckpoint) => "cancelled",
            Some(Plan::Leave) => "waiting_approval",
        };
        assert_eq!(t["status"], expected, "task ended wrongly: {t}");
        if plans.get(id) == Some(&Plan::RejectCall) {
            let error = t["state"]["pay"]["error"].as_str().unwrap_or("");
            assert!(
                error.contains(&format!("controller rejected this call: {NOT_OWED}")),
                "the rejection reaches the error path: {t}"
            );
        }
    }

    // No non-idempotent effect twice; every crashy step and every approved payout exactly
    // once; no effect for a payout that was rejected or is still waiting.
    let effects = sb.record_effects().await.expect("effects");
    let duplicated: Vec<_> = effects.iter().filter(|(_, n)| *n > 1).collect();
    assert!(duplicated.is_empty(), "effects made twice: {duplicated:?}");
    let mut by_task: BTreeMap<&str, usize> = BTreeMap::new();
    for (key, _) in &effects {
        let task = key.split('/').next().expect("key names its task");
        *by_task.entry(task).or_default() += 1;
    }
    for id in &crashy {
        assert_eq!(
            by_task.get(id.as_str()).copied().unwrap_or(0),
            RECORD_STEPS_PER_TASK,
            "task {id}: an effect is missing"
        );
    }
    for (id, plan) in &plans {
        let paid = by_task.get(id.as_str()).copied().unwrap_or(0);
        let expected = usize::from(*plan == Plan::Pay);
        assert_eq!(paid, expected, "payout {id} ({plan:?}) paid {paid} time(s)");
    }
    assert_eq!(
        by_task.len(),
        crashy.len() + plans.values().filter(|p| **p == Plan::Pay).count(),
        "effects of unknown tasks: {by_task:?}"
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
                ["succeeded", "happened", "not_happened", "refused"].contains(&outcome),
                "call left as {outcome}: {call}"
            );
            if outcome == "refused" {
                // Only the held call the controller rejected, recorded once as refused.
                assert_eq!(plans.get(id), Some(&Plan::RejectCall), "{call}");
                assert_eq!(call["refusal"]["by"], "person", "{call}");
                assert_eq!(call["refusal"]["rejected_by"], "controller", "{call}");
            }
            if ["happened", "not_happened"].contains(&outcome) {
                assert_eq!(call["resolved_by"], Value::String("crash-test".into()));
            }
        }
        let Some(plan) = plans.get(id) else { continue };
        // Each payout's approvals: decided by the controller as planned, the held call
        // bound to the payout and still pending only where nobody decided it.
        let approvals = shown["approvals"].as_array().expect("approvals");
        let statuses: Vec<(bool, &str)> = approvals
            .iter()
            .map(|a| {
                (
                    !a["held_call"].is_null(),
                    a["status"].as_str().unwrap_or(""),
                )
            })
            .collect();
        let expected: &[(bool, &str)] = match plan {
            Plan::Pay => &[(false, "approved"), (true, "approved")],
            Plan::RejectCall => &[(false, "approved"), (true, "rejected")],
            Plan::RejectCheckpoint => &[(false, "rejected")],
            Plan::Leave => &[(false, "approved"), (true, "pending")],
        };
        assert_eq!(statuses, expected, "payout {id} ({plan:?}): {approvals:?}");
        for a in approvals.iter().filter(|a| a["status"] != "pending") {
            assert_eq!(a["by"], "controller", "{a}");
        }
        let calls = shown["tool_calls"].as_array().expect("calls");
        match plan {
            Plan::Pay => {}
            // The rejected call: one ledger row, refused (written with the refusal, so
            // no kill leaves it as an intent or writes it twice).
            Plan::RejectCall => assert!(
                calls.len() == 1 && calls[0]["outcome"] == "refused",
                "payout {id} ({plan:?}): {calls:?}"
            ),
            Plan::RejectCheckpoint | Plan::Leave => {
                assert!(calls.is_empty(), "payout {id} ({plan:?}) has a ledger row")
            }
        }
    }

    // Kills in the middle of commits never break the audit chain.
    let out = sb
        .airlock(["audit", "verify"])
        .output()
        .expect("audit verify");
    assert_eq!(
        out.status.code(),
        Some(0),
        "audit verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    assert!(killed >= KILLS, "only {killed} runs were killed mid-way");
    assert!(
        progress_points.len() >= 100,
        "kills landed at only {} distinct points",
        progress_points.len()
    );
    assert!(
        person.surfaced > 0,
        "no kill ever left a call in doubt: the test is not reaching its target"
    );
    assert!(
        person.killed_after_deciding > 0,
        "no decision's process was killed while carrying its task on: the test is not reaching its target"
    );
    eprintln!(
        "crash test (start-up {startup:?}): {} tasks ({} payouts), {killed} kills at {} distinct points, {} in-doubt calls put to a person ({} of them payouts), {} decisions made, {} decision processes killed ({} after deciding), {:.1}s",
        all.len(),
        plans.len(),
        progress_points.len(),
        person.surfaced,
        person.payouts_in_doubt,
        person.decided,
        person.killed,
        person.killed_after_deciding,
        started.elapsed().as_secs_f64()
    );
}
