//! Valid workflows parse into the values they spell.

use std::time::Duration;

use airlock_workflow::{EndStatus, InputType, RetryPolicy, Scope, StateKind, Workflow};
use serde_json::json;

use crate::support::parse_ok;

const EVERY_KIND: &str = include_str!("fixtures/every_kind.toml");

#[test]
fn every_kind_parses_with_its_values() {
    let wf = parse_ok(EVERY_KIND);
    assert_eq!(wf.name, "support-refund");
    assert_eq!(
        wf.description.as_deref(),
        Some("Refund an order, with a controller's approval above 50")
    );
    assert_eq!(wf.start, "lookup");
    assert_eq!(wf.source, EVERY_KIND);
    assert_eq!(wf.hash.len(), 64);
    assert!(wf.hash.chars().all(|c| c.is_ascii_hexdigit()));

    let inputs: Vec<(&str, InputType, bool)> = wf
        .inputs
        .iter()
        .map(|i| (i.name.as_str(), i.ty, i.required))
        .collect();
    assert_eq!(
        inputs,
        [
            ("order_id", InputType::String, true),
            ("amount", InputType::Number, false),
            ("note", InputType::String, false),
        ]
    );
    assert_eq!(
        wf.inputs[0].description.as_deref(),
        Some("The order to refund")
    );
    assert_eq!(wf.inputs[1].default, Some(json!(10.0)));
    assert_eq!(wf.inputs[2].default, None);

    let names: Vec<(&str, &str)> = wf
        .states
        .iter()
        .map(|s| (s.name.as_str(), s.kind_name()))
        .collect();
    assert_eq!(
        names,
        [
            ("lookup", "tool"),
            ("decide", "choice"),
            ("approve", "approval"),
            ("refund", "tool"),
            ("think", "agent"),
            ("verify", "check"),
            ("done", "end"),
            ("failed", "end"),
            ("rejected", "end"),
        ]
    );

    let lookup = wf.state("lookup").expect("lookup");
    assert_eq!(lookup.description.as_deref(), Some("Find the order"));
    assert_eq!(lookup.timeout, Some(Duration::from_secs(10)));
    assert_eq!(lookup.on_error.as_deref(), Some("failed"));
    assert_eq!(
        lookup.retry,
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            multiplier: 2.0,
            max_backoff: Duration::from_secs(5),
        }
    );
    assert_eq!(lookup.successors(), ["decide", "failed"]);
    let StateKind::Tool(tool) = &lookup.kind else {
        panic!("lookup is a tool state")
    };
    assert_eq!(tool.tool, "builtin.echo");
    assert_eq!(tool.idempotent, Some(true));
    assert_eq!(tool.next, "decide");
    let (inputs, state, task) = (
        json!({"order_id": "A-1", "amount": 60.5}),
        json!({}),
        json!({}),
    );
    let scope = Scope {
        inputs: &inputs,
        state: &state,
        task: &task,
    };
    assert_eq!(
        tool.args.eval(&scope).expect("args evaluate"),
        json!({"order_id": "A-1", "note": "a literal string", "nested": {"n": 3, "list": [1, 60.5]}})
    );

    let decide = wf.state("decide").expect("decide");
    assert_eq!(decide.retry, RetryPolicy::default());
    let StateKind::Choice(choice) = &decide.kind else {
        panic!("decide is a choice")
    };
    assert_eq!(choice.default, "refund");
    assert_eq!(choice.branches.len(), 1);
    assert_eq!(choice.branches[0].when.source(), "inputs.amount > 50");
    assert_eq!(choice.branches[0].next, "approve");
    assert_eq!(decide.successors(), ["approve", "refund"]);

    let StateKind::Approval(approval) = &wf.state("approve").expect("approve").kind else {
        panic!("approve is an approval")
    };
    assert_eq!(approval.approvers, ["controller"]);
    assert_eq!(approval.expires_after, Some(Duration::from_secs(24 * 3600)));
    assert_eq!(
        (approval.next.as_str(), approval.on_reject.as_str()),
        ("refund", "rejected")
    );
    assert_eq!(
        approval.on_expire, "rejected",
        "on_expire defaults to on_reject"
    );
    assert_eq!(
        approval.prompt.render(&scope).expect("prompt renders"),
        "Refund 60.5 on order A-1?"
    );

    let StateKind::Agent(agent) = &wf.state("think").expect("think").kind else {
        panic!("think is an agent")
    };
    assert_eq!(
        agent.goal.source(),
        "Draft a reply for order {{ inputs.order_id }}"
    );
    assert_eq!(agent.tools, ["support.*"]);
    assert_eq!(agent.max_turns, 8);
    assert_eq!(
        agent.output_schema,
        Some(
            json!({"type": "object", "properties": {"reply": {"type": "string"}}, "required": ["reply"]})
        )
    );

    let StateKind::Check(check) = &wf.state("verify").expect("verify").kind else {
        panic!("verify is a check")
    };
    assert_eq!(
        check.assert.source(),
        "state.refund.amount == inputs.amount"
    );
    assert_eq!(
        check.message.as_ref().map(|m| m.source()),
        Some("refunded {{ state.refund.amount }}")
    );
    assert_eq!(
        (check.next.as_str(), check.on_fail.as_str()),
        ("done", "failed")
    );

    let statuses: Vec<EndStatus> = wf
        .states
        .iter()
        .filter_map(|s| match &s.kind {
            StateKind::End(end) => Some(end.status),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses,
        [
            EndStatus::Succeeded,
            EndStatus::Failed,
            EndStatus::Cancelled
        ]
    );
    assert!(wf.state("done").expect("done").successors().is_empty());
    assert!(wf.state("nowhere").is_none());
}

#[test]
fn workflows_are_shareable_across_threads() {
    fn shareable<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}
    shareable::<Workflow>();
    shareable::<airlock_workflow::Expr>();
    shareable::<airlock_workflow::Template>();
    shareable::<airlock_workflow::Args>();
    let wf = parse_ok(EVERY_KIND);
    let handle = std::thread::spawn(move || wf.states.len());
    assert_eq!(handle.join().ok(), Some(9));
}

#[test]
fn hash_is_the_sha256_of_the_source() {
    let wf = parse_ok(EVERY_KIND);
    let changed = parse_ok(&format!("{EVERY_KIND}\n"));
    assert_ne!(wf.hash, changed.hash);
    let minimal =
        "name = \"m\"\nstart = \"done\"\n[states.done]\nkind = \"end\"\nstatus = \"succeeded\"\n";
    assert_eq!(parse_ok(minimal).hash, sha256_hex(minimal));
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

#[test]
fn enums_round_trip_through_json() {
    assert_eq!(
        serde_json::to_value(InputType::Integer).ok(),
        Some(json!("integer"))
    );
    assert_eq!(
        serde_json::to_value(EndStatus::Cancelled).ok(),
        Some(json!("cancelled"))
    );
    assert_eq!(
        serde_json::from_value::<EndStatus>(json!("failed")).ok(),
        Some(EndStatus::Failed)
    );
    assert_eq!(InputType::Number.to_string(), "number");
    assert_eq!(EndStatus::Succeeded.as_str(), "succeeded");
}
