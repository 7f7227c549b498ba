//! One-line descriptions of task events for the Task detail timeline. The event log is the
//! engine's [`TaskEvent`]; this module only words it for people.

use airlock_engine::store::EventRecord;
use airlock_engine::{Decision, ModelReply, TaskEvent};

/// Describes a stored event. An event this build cannot read (written by a newer engine)
/// is described by its kind rather than hidden.
pub fn describe(event: &EventRecord) -> String {
    match serde_json::from_value::<TaskEvent>(event.body.clone()) {
        Ok(known) => describe_event(&known),
        Err(_) => format!(
            "{} (recorded by another version of Airlock)",
            event.kind.replace('_', " ")
        ),
    }
}

fn describe_event(event: &TaskEvent) -> String {
    match event {
        TaskEvent::Created {
            workflow,
            workflow_version,
            requester,
            ..
        } => format!("Created by {requester} from {workflow} (version {workflow_version})"),
        TaskEvent::StepStarted {
            step_no,
            state,
            state_kind,
            attempt,
        } => {
            let again = if *attempt > 1 {
                format!(", attempt {attempt}")
            } else {
                String::new()
            };
            format!("Step {step_no}: entered {state} ({state_kind} state{again})")
        }
        TaskEvent::ToolCalled { tool, .. } => format!("Called {tool} (intent recorded first)"),
        TaskEvent::ToolReturned { ok: true, .. } => "The tool call succeeded".into(),
        TaskEvent::ToolReturned { error, .. } => format!(
            "The tool call failed: {}",
            error.as_deref().unwrap_or("no reason given")
        ),
        TaskEvent::ToolProgress {
            progress,
            total,
            message,
            ..
        } => {
            let amount = match total {
                Some(total) if *total > 0.0 => format!("{:.0}%", progress / total * 100.0),
                _ => format!("{progress}"),
            };
            match message {
                Some(message) => format!("The tool reports progress {amount}: {message}"),
                None => format!("The tool reports progress {amount}"),
            }
        }
        TaskEvent::ToolRefused { tool, reason, .. } => {
            format!("Refused a call to {tool}: {reason}")
        }
        TaskEvent::ModelTurn {
            turn, model, reply, ..
        } => match serde_json::from_value::<ModelReply>(reply.clone()) {
            Ok(ModelReply::ToolCalls { calls }) => {
                let tools: Vec<&str> = calls.iter().map(|c| c.tool.as_str()).collect();
                format!("{model}, turn {turn}: proposed {}", tools.join(", "))
            }
            Ok(ModelReply::Final { .. }) => format!("{model}, turn {turn}: gave its answer"),
            Err(_) => format!("{model}, turn {turn}"),
        },
        TaskEvent::StepSucceeded { state, next, .. } => format!("{state} done; next: {next}"),
        TaskEvent::PostconditionsChecked { passed: true, .. } => {
            "Post-conditions held: the outcome is as it should be".into()
        }
        TaskEvent::PostconditionsChecked { error, .. } => format!(
            "Outcome failed: {}",
            error.as_deref().unwrap_or("a post-condition did not hold")
        ),
        TaskEvent::StepFailed {
            state,
            attempt,
            error,
            ..
        } => format!("{state} failed on attempt {attempt}, will retry: {error}"),
        TaskEvent::StepGaveUp {
            state, error, next, ..
        } => match next {
            Some(next) => format!("{state} gave up ({error}); continuing at {next}"),
            None => format!("{state} gave up: {error}"),
        },
        TaskEvent::ApprovalRequested {
            state, approvers, ..
        } => format!("{state}: waiting for approval by {}", approvers.join(", ")),
        TaskEvent::ApprovalDecided {
            decision,
            by,
            reason,
            next,
            ..
        } => {
            let who = by
                .as_deref()
                .map(|b| format!(" by {b}"))
                .unwrap_or_default();
            let why = reason
                .as_deref()
                .filter(|r| !r.trim().is_empty())
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            let what = match decision {
                Decision::Approved => "Approved",
                Decision::Rejected => "Rejected",
                Decision::Expired => "Expired without a decision",
            };
            format!("{what}{who}{why}; next: {next}")
        }
        TaskEvent::PolicyDecided {
            tool,
            effect,
            rule,
            via,
            reason,
            ..
        } => {
            let rule = rule
                .as_deref()
                .map_or_else(|| "no rule matched".to_owned(), |r| format!("rule “{r}”"));
            match (effect.as_str(), via, reason) {
                (_, _, Some(reason)) => format!("Policy refused {tool}: {reason}"),
                (_, Some(via), None) => format!("Policy let {tool} through ({via}; {rule})"),
                ("allow", None, None) => format!("Policy allowed {tool} ({rule})"),
                (_, None, None) => format!("Policy requires approval for {tool} ({rule})"),
            }
        }
        TaskEvent::CallHeld {
            tool, approvers, ..
        } => format!(
            "The call to {tool} waits for approval by {}",
            approvers.join(" or ")
        ),
        TaskEvent::CallApprovalDecided {
            decision,
            by,
            reason,
            edited_args,
            ..
        } => {
            let who = by
                .as_deref()
                .map(|b| format!(" by {b}"))
                .unwrap_or_default();
            let why = reason
                .as_deref()
                .filter(|r| !r.trim().is_empty())
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            match (decision, edited_args) {
                (Decision::Approved, Some(_)) => {
                    format!("The call was approved with changed arguments{who}{why}")
                }
                (Decision::Approved, None) => format!("The call was approved{who}{why}"),
                (Decision::Rejected, _) => format!("The call was rejected{who}{why}"),
                (Decision::Expired, _) => "The call's approval expired without a decision".into(),
            }
        }
        TaskEvent::CallInDoubt { tool, reason, .. } => {
            format!("The call to {tool} may or may not have happened: {reason}")
        }
        TaskEvent::InDoubtResolved { happened, by, .. } => {
            if *happened {
                format!("{by} said the call happened")
            } else {
                format!("{by} said the call did not happen; it will be made again")
            }
        }
        TaskEvent::InDoubtSettled { happened, by, .. } => {
            let did = if *happened {
                "happened"
            } else {
                "did not happen"
            };
            format!("{by} said the call {did}; the task had already ended")
        }
        TaskEvent::RecoveryStarted { failures, .. } => {
            // `failures` counts this recovery too.
            format!("Picked up again after an interruption (recovery {failures})")
        }
        TaskEvent::RecoveryFailed { error, .. } => format!("Recovery failed: {error}"),
        TaskEvent::Quarantined { error } => {
            format!("Quarantined until a person releases it: {error}")
        }
        TaskEvent::Released { by } => format!("Released from quarantine by {by}"),
        TaskEvent::Cancelled { by, reason } => match reason {
            Some(reason) => format!("Cancelled by {by}: {reason}"),
            None => format!("Cancelled by {by}"),
        },
        TaskEvent::Ended { state, status } => format!("Ended {} at {state}", status.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_engine::workflow::EndStatus;
    use serde_json::json;

    fn record(event: &TaskEvent) -> EventRecord {
        EventRecord {
            task_id: "t".into(),
            seq: 1,
            at: 0,
            kind: event.kind().into(),
            body: serde_json::to_value(event).expect("serializable"),
        }
    }

    #[test]
    fn events_read_as_sentences() {
        let cases = [
            (
                TaskEvent::StepStarted {
                    step_no: 2,
                    state: "refund".into(),
                    state_kind: "tool".into(),
                    attempt: 2,
                },
                "Step 2: entered refund (tool state, attempt 2)",
            ),
            (
                TaskEvent::ToolReturned {
                    call_id: "c".into(),
                    ok: false,
                    error: Some("timed out".into()),
                },
                "The tool call failed: timed out",
            ),
            (
                TaskEvent::ModelTurn {
                    step_no: 5,
                    attempt: 1,
                    turn: 1,
                    model: "scripted".into(),
                    reply: json!({"type": "tool_calls", "calls": [{"id": "1", "tool": "support.get_order", "args": {}}]}),
                    usage: None,
                },
                "scripted, turn 1: proposed support.get_order",
            ),
            (
                TaskEvent::ApprovalDecided {
                    approval_id: "a".into(),
                    state: "approve".into(),
                    decision: Decision::Rejected,
                    by: Some("ada".into()),
                    reason: Some("payee unknown".into()),
                    next: "rejected".into(),
                },
                "Rejected by ada (payee unknown); next: rejected",
            ),
            (
                TaskEvent::ApprovalDecided {
                    approval_id: "a".into(),
                    state: "approve".into(),
                    decision: Decision::Expired,
                    by: None,
                    reason: None,
                    next: "expired".into(),
                },
                "Expired without a decision; next: expired",
            ),
            (
                TaskEvent::Ended {
                    state: "done".into(),
                    status: EndStatus::Succeeded,
                },
                "Ended succeeded at done",
            ),
        ];
        for (event, expected) in cases {
            assert_eq!(describe(&record(&event)), expected);
        }
    }

    #[test]
    fn an_unknown_event_is_named_by_its_kind() {
        let event = EventRecord {
            task_id: "t".into(),
            seq: 1,
            at: 0,
            kind: "policy_checked".into(),
            body: json!({"kind": "policy_checked"}),
        };
        assert_eq!(
            describe(&event),
            "policy checked (recorded by another version of Airlock)"
        );
    }
}
