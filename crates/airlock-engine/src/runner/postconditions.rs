//! Post-conditions: when a task reaches a `succeeded` end of a workflow that declares
//! some, its outcome is recorded only after they are judged. The end state begins a step
//! (kind `check`: it is an outcome check, and counts as one in the metrics) in which each
//! post-condition with a tool reads once — through the same checked path and ledger as
//! any call (call index = the post-condition's position), so a crash mid-read makes only
//! that read again (read-only tools are safe to repeat). When every read is in, the
//! expectations are evaluated and `postconditions_checked` records the verdict; a
//! post-condition that does not hold ends the task `failed`, names what was wrong as its
//! error, and proposes a lesson.

use std::collections::BTreeMap;

use airlock_store::{CallRefusal, LessonSource, StepWrite, ToolCallOutcome};
use airlock_workflow::{Bindings, EndStatus, PostconditionCall, State};
use serde_json::{Map, Value, json};

use super::Runner;
use crate::checks::check_pin;
use crate::error::EngineError;
use crate::event::TaskEvent;
use crate::gate::Verdict;
use crate::tool_host::ToolError;

/// The kind of step post-conditions are judged in.
const STEP_KIND: &str = "check";

/// A post-condition's read, as far as it has got.
enum Read {
    /// It has no tool: only the task's state is checked.
    NoTool,
    /// The tool answered.
    Answered(Value),
    /// It was not made or did not answer; the post-condition cannot hold.
    Missing(String),
}

/// What happened to a read proposed now.
enum Proposed {
    /// Its intent is in the draft (or people must decide first): the runner goes on from there.
    Pending,
    /// It will not be made, for this reason.
    Refused(String),
}

impl Runner {
    pub(super) fn start_postconditions(&mut self, state: &State, step_no: i64) {
        self.draft.push(TaskEvent::StepStarted {
            step_no,
            state: state.name.clone(),
            state_kind: STEP_KIND.to_owned(),
            attempt: 1,
        });
        self.draft.steps.push(StepWrite::Start {
            step_no,
            state_name: state.name.clone(),
            kind: STEP_KIND.to_owned(),
            attempt: 1,
        });
    }

    /// One move of the post-condition step: the next read that is not made yet, or, when
    /// all are in, the verdict and the end.
    pub(super) async fn check_postconditions(&mut self, state: &State) -> Result<(), EngineError> {
        let step_no = self.draft.proj.step_no;
        let calls: BTreeMap<i64, _> = self
            .inner
            .store
            .tool_calls(&self.draft.task_id)
            .await?
            .into_iter()
            .filter(|c| c.step_no == step_no)
            .map(|c| (c.call_index, c))
            .collect();
        let mut refused = BTreeMap::new();
        for event in self.inner.store.events(&self.draft.task_id).await? {
            if let Ok(TaskEvent::ToolRefused {
                step_no: s,
                call_index,
                reason,
                ..
            }) = serde_json::from_value::<TaskEvent>(event.body)
                && s == step_no
            {
                refused.insert(call_index, reason);
            }
        }
        let wf = self.wf.clone();
        let mut reads = Vec::with_capacity(wf.postconditions.len());
        for (i, pc) in wf.postconditions.iter().enumerate() {
            let index = i64::try_from(i).unwrap_or(i64::MAX);
            let Some(call) = &pc.call else {
                reads.push(Read::NoTool);
                continue;
            };
            if let Some(done) = calls.get(&index) {
                reads.push(match (done.outcome, &done.result) {
                    (Some(ToolCallOutcome::Succeeded), Some(result)) => {
                        Read::Answered(result.clone())
                    }
                    (outcome, _) => Read::Missing(done.error.clone().unwrap_or_else(|| {
                        format!(
                            "the read ended as {}",
                            outcome.map_or("unknown", ToolCallOutcome::as_str)
                        )
                    })),
                });
                continue;
            }
            if let Some(reason) = refused.get(&index) {
                reads.push(Read::Missing(reason.clone()));
                continue;
            }
            match self.propose_read(state, call, index).await? {
                Proposed::Pending => return Ok(()),
                Proposed::Refused(reason) => reads.push(Read::Missing(reason)),
            }
        }
        self.judge(state, &reads).await;
        Ok(())
    }

    /// The static checks, read-only-ness and the gate for one read; a read that may be
    /// made is drafted as an intent (safe to repeat, so a restart makes it again).
    async fn propose_read(
        &mut self,
        state: &State,
        call: &PostconditionCall,
        index: i64,
    ) -> Result<Proposed, EngineError> {
        let args = match call.args.eval(&self.scope()) {
            Ok(args) => args,
            // No arguments to record: the read gets no ledger row, like a tool state's.
            Err(e) => {
                return Ok(self.refuse_read(
                    call,
                    index,
                    format!("arguments for `{}`: {e}", call.tool),
                ));
            }
        };
        let checked = match self.inner.tools.describe(&call.tool) {
            None => Err(ToolError::Unknown(call.tool.clone()).to_string()),
            // Checked when the task was started too; a server may have changed since.
            Some(info) if !info.annotations.read_only => Err(format!(
                "`{}` is not declared read-only, and a post-condition may only read",
                info.name
            )),
            Some(info) => match self.inner.checks.validate(&info.input_schema, &args) {
                Err(problem) => Err(format!(
                    "arguments for `{}` do not match its input schema: {problem}",
                    info.name
                )),
                Ok(()) => check_pin(&self.inner, &info).await.map(|()| info),
            },
        };
        let (reason, refusal) = match checked {
            Err(reason) => (reason, CallRefusal::Check),
            Ok(info) => match self.gate(state, &info, &args, index, false).await? {
                Verdict::Proceed { args, allowed } => {
                    self.intend(call.tool.clone(), args, index, true, allowed);
                    return Ok(Proposed::Pending);
                }
                Verdict::Hold => return Ok(Proposed::Pending),
                Verdict::Refuse { reason, refusal } => (reason, refusal),
            },
        };
        self.draft.record_refusal(crate::refusals::Refused {
            tool: &call.tool,
            args: &args,
            call_index: index,
            idempotent: true,
            refusal,
            reason: &reason,
        });
        Ok(self.refuse_read(call, index, reason))
    }

    /// Records that a read was refused, and why.
    fn refuse_read(&mut self, call: &PostconditionCall, index: i64, reason: String) -> Proposed {
        self.draft.push(TaskEvent::ToolRefused {
            step_no: self.draft.proj.step_no,
            attempt: self.draft.proj.attempt,
            call_index: index,
            tool: call.tool.clone(),
            reason: reason.clone(),
        });
        Proposed::Refused(reason)
    }

    /// Evaluates every post-condition over its read and the task, records the verdict and
    /// ends the task: `succeeded` only when all of them hold.
    async fn judge(&mut self, state: &State, reads: &[Read]) {
        let step_no = self.draft.proj.step_no;
        // Copied once per task (its end), so the verdicts can be drafted while they are read.
        let (inputs, st, task) = (
            self.inputs.clone(),
            self.draft.proj.state.clone(),
            self.task_meta.clone(),
        );
        let wf = self.wf.clone();
        let mut each = Map::new();
        let mut failures: Vec<(String, String)> = Vec::new();
        for (pc, read) in wf.postconditions.iter().zip(reads) {
            let verdict = match read {
                Read::Missing(reason) => Err(format!(
                    "could not read with `{}`: {reason}",
                    pc.call.as_ref().map_or("?", |c| c.tool.as_str())
                )),
                Read::NoTool | Read::Answered(_) => {
                    let mut bindings = Bindings::new();
                    bindings.set("inputs", &inputs);
                    bindings.set("state", &st);
                    bindings.set("task", &task);
                    if let Read::Answered(result) = read {
                        bindings.set("result", result);
                    }
                    let mut verdict = Ok(());
                    for expect in &pc.expect {
                        match expect.eval_bool_in(&bindings) {
                            Ok(true) => {}
                            Ok(false) => {
                                verdict = Err(match &pc.message {
                                    Some(m) => m.render_in(&bindings).unwrap_or_else(|e| {
                                        format!("`{}` was false ({e})", expect.source())
                                    }),
                                    None => format!("`{}` was false", expect.source()),
                                });
                                break;
                            }
                            Err(e) => {
                                verdict = Err(e.to_string());
                                break;
                            }
                        }
                    }
                    verdict
                }
            };
            let result = match read {
                Read::Answered(result) => result.clone(),
                _ => Value::Null,
            };
            each.insert(
                pc.name.clone(),
                json!({
                    "passed": verdict.is_ok(),
                    "message": verdict.as_ref().err(),
                    "result": result,
                }),
            );
            if let Err(message) = verdict {
                failures.push((pc.name.clone(), message));
            }
        }
        let passed = failures.is_empty();
        let message = (!passed).then(|| {
            failures
                .iter()
                .map(|(name, m)| format!("post-condition `{name}` did not hold: {m}"))
                .collect::<Vec<_>>()
                .join("; ")
        });
        for (name, m) in &failures {
            self.inner
                .propose_lesson(
                    &wf.name,
                    LessonSource::FailedCheck,
                    &format!("{}/{step_no}/{name}", self.draft.task_id),
                    Some(&self.draft.task_id),
                    &format!("The post-condition `{name}` failed: {m}"),
                )
                .await;
        }
        self.draft.push(TaskEvent::PostconditionsChecked {
            step_no,
            state: state.name.clone(),
            passed,
            output: json!({ "passed": passed, "message": message, "postconditions": each }),
            error: message,
        });
        self.draft.steps.push(StepWrite::End {
            step_no,
            outcome: "succeeded".into(),
            error: None,
        });
        self.draft.push(TaskEvent::Ended {
            state: state.name.clone(),
            status: if passed {
                EndStatus::Succeeded
            } else {
                EndStatus::Failed
            },
        });
    }
}
