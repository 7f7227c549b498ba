//! Property test: random valid workflows run to completion, and whatever path they
//! take, the stored row is the fold of the stored log, the log is gap-free, every call
//! has an outcome, every step ended, and the task ends where a simple model says.

use std::fmt::Write as _;
use std::sync::Arc;

use airlock_engine::event::replay;
use airlock_engine::store::{Durability, StoreOptions, TaskStatus};
use airlock_engine::{BuiltinTools, Engine, EngineConfig, SystemClock, TaskEvent};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;

use crate::support::parse;

#[derive(Clone, Debug)]
enum Gen {
    Echo,
    Upsert,
    /// `builtin.fail` failing `times` attempts out of `max_attempts`; gives up to
    /// `on_error` (a later state) or fails the task.
    Fail {
        times: u32,
        max_attempts: u32,
        on_error: Option<usize>,
    },
    /// `inputs.x > threshold` jumps to `target`, else the next state.
    Choice {
        threshold: i64,
        target: usize,
    },
    /// `inputs.x < threshold` goes on, else to `on_fail`.
    Check {
        threshold: i64,
        on_fail: usize,
    },
}

/// A workflow: states `s0..s{n-1}` in a chain, then `done`; `failed` is an end reached
/// through the last `check`. Targets point forward (index `n` = `done`, `n + 1` =
/// `failed`), so every task ends.
#[derive(Clone, Debug)]
struct Case {
    states: Vec<Gen>,
    last_check: i64,
    x: i64,
}

fn name(i: usize, n: usize) -> String {
    match i {
        _ if i == n => "verify".into(),
        _ if i == n + 1 => "failed".into(),
        _ => format!("s{i}"),
    }
}

fn case() -> impl Strategy<Value = Case> {
    (2usize..=8)
        .prop_flat_map(|n| {
            let states: Vec<_> = (0..n)
                .map(|i| {
                    // Forward targets: a later state, `verify` or `failed`.
                    let target = (i + 1)..=(n + 1);
                    prop_oneof![
                        Just(Gen::Echo),
                        Just(Gen::Upsert),
                        (0u32..=3, 1u32..=3, proptest::option::of(target.clone())).prop_map(
                            |(times, max_attempts, on_error)| Gen::Fail {
                                times,
                                max_attempts,
                                on_error,
                            }
                        ),
                        (-50i64..50, target.clone())
                            .prop_map(|(threshold, target)| Gen::Choice { threshold, target }),
                        (-50i64..50, target)
                            .prop_map(|(threshold, on_fail)| Gen::Check { threshold, on_fail }),
                    ]
                })
                .collect();
            (states, -50i64..50, -60i64..60)
        })
        .prop_map(|(states, last_check, x)| Case {
            states,
            last_check,
            x,
        })
}

impl Case {
    fn toml(&self, id: usize) -> String {
        let n = self.states.len();
        let mut s =
            format!("name = \"prop-{id}\"\nstart = \"s0\"\n\n[inputs.x]\ntype = \"integer\"\n\n");
        for (i, g) in self.states.iter().enumerate() {
            let next = name(i + 1, n);
            let _ = writeln!(s, "[states.s{i}]");
            match g {
                Gen::Echo => {
                    let _ = writeln!(
                        s,
                        "kind = \"tool\"\ntool = \"builtin.echo\"\nargs = {{ i = {i}, x = \"inputs.x\" }}\nnext = \"{next}\""
                    );
                }
                Gen::Upsert => {
                    let _ = writeln!(
                        s,
                        "kind = \"tool\"\ntool = \"builtin.upsert\"\nargs = {{ key = \"task.id + '/{i}'\", value = \"inputs.x\" }}\nnext = \"{next}\""
                    );
                }
                Gen::Fail {
                    times,
                    max_attempts,
                    on_error,
                } => {
                    let _ = writeln!(
                        s,
                        "kind = \"tool\"\ntool = \"builtin.fail\"\nargs = {{ times = {times} }}\nretry = {{ max_attempts = {max_attempts}, initial_backoff = \"1ms\" }}\nnext = \"{next}\""
                    );
                    if let Some(t) = on_error {
                        let _ = writeln!(s, "on_error = \"{}\"", name(*t, n));
                    }
                }
                Gen::Choice { threshold, target } => {
                    let _ = writeln!(
                        s,
                        "kind = \"choice\"\ndefault = \"{next}\"\n\n[[states.s{i}.branches]]\nwhen = \"inputs.x > {threshold}\"\nnext = \"{}\"",
                        name(*target, n)
                    );
                }
                Gen::Check { threshold, on_fail } => {
                    let _ = writeln!(
                        s,
                        "kind = \"check\"\nassert = \"inputs.x < {threshold}\"\nnext = \"{next}\"\non_fail = \"{}\"",
                        name(*on_fail, n)
                    );
                }
            }
            s.push('\n');
        }
        let _ = write!(
            s,
            "[states.verify]\nkind = \"check\"\nassert = \"inputs.x < {}\"\nnext = \"done\"\non_fail = \"failed\"\n\n\
             [states.done]\nkind = \"end\"\nstatus = \"succeeded\"\n\n\
             [states.failed]\nkind = \"end\"\nstatus = \"failed\"\n",
            self.last_check
        );
        s
    }

    /// Where a task should end: (status, last state, states run in order).
    fn expected(&self) -> (TaskStatus, String, Vec<String>) {
        let n = self.states.len();
        let mut path = Vec::new();
        let mut i = 0;
        loop {
            if i == n + 1 {
                return (TaskStatus::Failed, "failed".into(), path);
            }
            path.push(name(i, n));
            if i == n {
                return if self.x < self.last_check {
                    (TaskStatus::Succeeded, "done".into(), path)
                } else {
                    (TaskStatus::Failed, "failed".into(), path)
                };
            }
            i = match &self.states[i] {
                Gen::Echo | Gen::Upsert => i + 1,
                Gen::Fail {
                    times,
                    max_attempts,
                    on_error,
                } => {
                    if times < max_attempts {
                        i + 1
                    } else if let Some(t) = on_error {
                        *t
                    } else {
                        return (TaskStatus::Failed, format!("s{i}"), path);
                    }
                }
                Gen::Choice { threshold, target } => {
                    if self.x > *threshold {
                        *target
                    } else {
                        i + 1
                    }
                }
                Gen::Check { threshold, on_fail } => {
                    if self.x < *threshold {
                        i + 1
                    } else {
                        *on_fail
                    }
                }
            };
        }
    }
}

async fn check_case(engine: &Engine, case: &Case, id: usize) -> Result<(), TestCaseError> {
    let src = case.toml(id);
    let wf = parse(&src);
    let task_id = engine
        .start_task(
            &wf,
            crate::support::inputs(json!({"x": case.x})),
            "prop",
            None,
        )
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let t = engine
        .run_task(&task_id)
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let store = engine.store();
    let stored = store.events(&task_id).await.unwrap();
    let parsed: Vec<TaskEvent> = stored
        .iter()
        .map(|e| serde_json::from_value(e.body.clone()).expect("event parses"))
        .collect();

    // The model's prediction.
    let (status, last, path) = case.expected();
    prop_assert_eq!(t.projection.status, status, "\n{}", src);
    prop_assert_eq!(t.projection.current_state.as_deref(), Some(last.as_str()));
    let entered: Vec<String> = parsed
        .iter()
        .filter_map(|e| match e {
            TaskEvent::StepStarted {
                state, attempt: 1, ..
            } => Some(state.clone()),
            _ => None,
        })
        .collect();
    prop_assert_eq!(&entered, &path);

    // (a) the row is the fold of the log, field by field.
    let folded = replay(&parsed);
    let p = &t.projection;
    prop_assert_eq!(&folded.status, &p.status);
    prop_assert_eq!(&folded.current_state, &p.current_state);
    prop_assert_eq!(folded.step_no, p.step_no);
    prop_assert_eq!(folded.attempt, p.attempt);
    prop_assert_eq!(&folded.phase, &p.phase);
    prop_assert_eq!(&folded.state, &p.state);
    prop_assert_eq!(&folded.error, &p.error);
    prop_assert_eq!(folded.wake_at, p.wake_at);
    prop_assert_eq!(folded.recovery_failures, p.recovery_failures);
    prop_assert_eq!(&folded, p);

    // (b) seqs are 1..=last_seq, and kinds match bodies.
    let seqs: Vec<i64> = stored.iter().map(|e| e.seq).collect();
    prop_assert_eq!(seqs, (1..=t.last_seq).collect::<Vec<_>>());
    for (e, p) in stored.iter().zip(&parsed) {
        prop_assert_eq!(e.kind.as_str(), p.kind());
    }

    // (c) every tool_called has a ledger row with an outcome, and nothing else is ledgered.
    let ledger = store.tool_calls(&task_id).await.unwrap();
    let called: Vec<&String> = parsed
        .iter()
        .filter_map(|e| match e {
            TaskEvent::ToolCalled { call_id, .. } => Some(call_id),
            _ => None,
        })
        .collect();
    prop_assert_eq!(called.len(), ledger.len());
    for call_id in called {
        let row = ledger.iter().find(|c| &c.id == call_id);
        prop_assert!(
            row.is_some_and(|c| c.outcome.is_some()),
            "call {} has no outcome",
            call_id
        );
    }
    for c in &ledger {
        prop_assert_eq!(&c.idempotency_key, &format!("{task_id}/{}/0", c.step_no));
    }

    // (d) every step that started has ended, once per step number.
    let steps = store.steps(&task_id).await.unwrap();
    let started: std::collections::BTreeSet<i64> = parsed
        .iter()
        .filter_map(|e| match e {
            TaskEvent::StepStarted { step_no, .. } => Some(*step_no),
            _ => None,
        })
        .collect();
    prop_assert_eq!(
        steps
            .iter()
            .map(|s| s.step_no)
            .collect::<std::collections::BTreeSet<_>>(),
        started
    );
    for s in &steps {
        prop_assert!(
            s.ended_at.is_some() && s.outcome.is_some(),
            "step {:?} never ended",
            s
        );
    }
    prop_assert_eq!(t.lease_owner, None);
    Ok(())
}

#[test]
fn random_workflows_fold_to_their_stored_rows() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = rt.block_on(async {
        let mut store = StoreOptions::new(dir.path().join("airlock.sqlite"));
        // Speed only: a crash is not part of this test.
        store.durability = Durability::Normal;
        let tools = BuiltinTools::open(&dir.path().join("effects.sqlite"))
            .await
            .unwrap();
        Engine::open(
            EngineConfig::new(store),
            Arc::new(SystemClock),
            Arc::new(tools),
            None,
        )
        .await
        .unwrap()
    });
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let started = std::time::Instant::now();
    let result = runner.run(&case(), |case| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        rt.block_on(async {
            tokio::time::timeout(
                std::time::Duration::from_secs(20),
                check_case(&engine, &case, n),
            )
            .await
            .map_err(|_| TestCaseError::fail("a case did not finish in time"))?
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}
