//! Post-conditions: what parses, and every problem with its code, place and words —
//! those of the file alone, and those found when the workflow meets its tools.

use std::path::Path;

use airlock_workflow::{ArgNode, DiagnosticCode as C, Scope, ToolAccess};
use serde_json::json;

use crate::support::{parse_err, parse_ok};

const HEAD: &str = r#"name = "refund"
start = "refund"
[inputs.order_id]
type = "string"
[states.refund]
kind = "tool"
tool = "support.issue_refund"
args = { order_id = "inputs.order_id" }
next = "done"
[states.done]
kind = "end"
status = "succeeded"
"#;

fn with(postconditions: &str) -> String {
    format!("{HEAD}{postconditions}")
}

/// The line of `HEAD` + `postconditions` where the post-conditions' first line is.
fn first_line() -> u32 {
    HEAD.lines().count() as u32 + 1
}

#[test]
fn postconditions_parse_in_order_with_their_call_and_expectations() {
    let wf = parse_ok(&with(
        r#"
[[postconditions]]
name = "refund_recorded"
description = "the order shows the refund"
tool = "support.get_order"
args = { order_id = "inputs.order_id" }
expect = ["result.refunded_cents == state.refund.amount_cents", "result.total_cents > 0"]
message = "order {{ inputs.order_id }} shows {{ result.refunded_cents }} refunded"

[[postconditions]]
name = "state_only"
expect = ["state.refund.amount_cents > 0"]
"#,
    ));
    assert_eq!(wf.postconditions.len(), 2);
    let first = &wf.postconditions[0];
    assert_eq!(first.name, "refund_recorded");
    let call = first.call.as_ref().expect("a read");
    assert_eq!(call.tool, "support.get_order");
    let args = call.args.entries();
    assert_eq!(args[0].0, "order_id");
    assert!(matches!(args[0].1, ArgNode::Expr(_)));
    assert_eq!(first.expect.len(), 2);
    assert!(first.message.is_some());
    assert!(wf.postconditions[1].call.is_none());
    let scope = Scope {
        inputs: &json!({ "order_id": "ORD-1" }),
        state: &json!({ "refund": { "amount_cents": 5 } }),
        task: &json!({}),
    };
    assert!(
        wf.postconditions[1].expect[0]
            .eval_bool(&scope)
            .expect("evaluates")
    );
}

struct Case {
    name: &'static str,
    postconditions: &'static str,
    code: C,
    /// Lines after the head (1 is the blank line the cases start with).
    line: u32,
    column: u32,
    words: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "a bad expectation",
        postconditions: "\n[[postconditions]]\nname = \"p\"\nexpect = [\"state.refund.amount_cents ==\"]\n",
        code: C::BadExpression,
        line: 4,
        column: 40,
        words: &["`expect[0]` of post-condition `p` is not a valid expression"],
    },
    Case {
        name: "result without a tool",
        postconditions: "\n[[postconditions]]\nname = \"p\"\nexpect = [\"result.ok\"]\n",
        code: C::UnknownVariable,
        line: 4,
        column: 12,
        words: &[
            "uses `result`, which is not defined",
            "`inputs`, `state` and `task`",
        ],
    },
    Case {
        name: "an unknown state in an expectation",
        postconditions: "\n[[postconditions]]\nname = \"p\"\ntool = \"support.get_order\"\nexpect = [\"result.x == state.refnd.x\"]\n",
        code: C::UnknownVariable,
        line: 5,
        column: 24,
        words: &["there is no state named `refnd`", "did you mean `refund`?"],
    },
    Case {
        name: "a bad message",
        postconditions: "\n[[postconditions]]\nname = \"p\"\nexpect = [\"true\"]\nmessage = \"{{ state.refund. }}\"\n",
        code: C::BadExpression,
        line: 5,
        column: 28,
        words: &["`message` of post-condition `p` is not a valid template"],
    },
    Case {
        name: "a badly named tool",
        postconditions: "\n[[postconditions]]\nname = \"p\"\ntool = \"get_order\"\nexpect = [\"true\"]\n",
        code: C::BadValue,
        line: 4,
        column: 8,
        words: &["a tool is named `<server>.<tool>`"],
    },
    Case {
        name: "no expectations",
        postconditions: "\n[[postconditions]]\nname = \"p\"\nexpect = []\n",
        code: C::BadValue,
        line: 4,
        column: 10,
        words: &["`expect` of post-condition `p` is empty"],
    },
    Case {
        name: "no expectations at all",
        postconditions: "\n[[postconditions]]\nname = \"p\"\n",
        code: C::MissingField,
        line: 2,
        column: 1,
        words: &["`expect`"],
    },
    Case {
        name: "args without a tool",
        postconditions: "\n[[postconditions]]\nname = \"p\"\nargs = { id = \"inputs.order_id\" }\nexpect = [\"true\"]\n",
        code: C::MisplacedField,
        line: 4,
        column: 8,
        words: &["has `args` but no `tool`"],
    },
    Case {
        name: "two with one name",
        postconditions: "\n[[postconditions]]\nname = \"p\"\nexpect = [\"true\"]\n[[postconditions]]\nname = \"p\"\nexpect = [\"true\"]\n",
        code: C::DuplicateName,
        line: 6,
        column: 8,
        words: &["two post-conditions named `p`"],
    },
    Case {
        name: "a name expressions cannot say",
        postconditions: "\n[[postconditions]]\nname = \"refund ok\"\nexpect = [\"true\"]\n",
        code: C::InvalidName,
        line: 3,
        column: 8,
        words: &["`refund ok` is not a valid post-condition name"],
    },
    Case {
        name: "an unknown field",
        postconditions: "\n[[postconditions]]\nname = \"p\"\nexpects = [\"true\"]\n",
        code: C::UnknownField,
        line: 4,
        column: 1,
        words: &["unknown field `expects`", "did you mean `expect`?"],
    },
];

#[test]
fn each_problem_has_its_code_place_and_words() {
    let mut failures = Vec::new();
    for case in CASES {
        let diagnostics = parse_err(&with(case.postconditions));
        let Some(d) = diagnostics.iter().find(|d| d.code == case.code) else {
            failures.push(format!(
                "{}: no {} in:\n{diagnostics}",
                case.name, case.code
            ));
            continue;
        };
        let line = first_line() + case.line - 1;
        if (d.line, d.column) != (line, case.column) {
            failures.push(format!(
                "{}: expected {line}:{}, got {d}",
                case.name, case.column
            ));
        }
        for word in case.words {
            if !d.message.contains(word) {
                failures.push(format!("{}: message lacks {word:?}: {d}", case.name));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn postconditions_need_an_end_that_succeeds() {
    let source = r#"name = "x"
start = "done"
[states.done]
kind = "end"
status = "failed"
[[postconditions]]
name = "p"
expect = ["true"]
"#;
    let diagnostics = parse_err(source);
    let d = diagnostics.iter().next().expect("a problem");
    assert_eq!((d.code, d.line, d.column), (C::BadValue, 7, 8), "{d}");
    assert!(d.message.contains("no such end state"), "{d}");
}

fn tools() -> Vec<(String, ToolAccess)> {
    vec![
        ("support.get_order".into(), ToolAccess::ReadOnly),
        ("support.issue_refund".into(), ToolAccess::Writes),
    ]
}

#[test]
fn tools_are_checked_when_the_workflow_meets_them() {
    let wf = parse_ok(&with(
        r#"
[[postconditions]]
name = "reads"
tool = "support.get_order"
expect = ["true"]

[[postconditions]]
name = "writes"
tool = "support.issue_refund"
expect = ["true"]

[[postconditions]]
name = "missing"
tool = "support.get_ordr"
expect = ["true"]

[[postconditions]]
name = "no_tool"
expect = ["true"]
"#,
    ));
    let found = wf.check_tools(Path::new("refund.toml"), tools());
    let found: Vec<_> = found.iter().collect();
    assert_eq!(found.len(), 2, "{found:?}");
    let base = first_line();
    let writes = found[0];
    assert_eq!(writes.code, C::NotReadOnly);
    assert_eq!((writes.line, writes.column), (base + 8, 8));
    assert_eq!(writes.file, Path::new("refund.toml"));
    assert!(
        writes.message.contains(
            "post-condition `writes` uses `support.issue_refund`, which is not declared read-only"
        ),
        "{writes}"
    );
    let missing = found[1];
    assert_eq!(missing.code, C::UnknownTool);
    assert_eq!((missing.line, missing.column), (base + 13, 8));
    assert!(
        missing
            .message
            .contains("no server offers a tool of that name")
            && missing
                .message
                .contains("did you mean `support.get_order`?"),
        "{missing}"
    );
    assert!(
        missing
            .to_string()
            .starts_with(&format!("refund.toml:{}:8: error[unknown-tool]", base + 13))
    );
}

/// A `tool` state's tool is checked against its server's tools when the workflow meets
/// them: a name its server does not offer is an error at the name, with the close one;
/// a tool of a server that is not there (not started, or down) is left to the step.
#[test]
fn a_tool_state_names_a_tool_its_server_offers() {
    let source = r#"name = "refund"
start = "look"
[states.look]
kind = "tool"
tool = "support.get_ordr"
next = "note"
[states.note]
kind = "tool"
tool = "crm.add_note"
next = "done"
[states.done]
kind = "end"
status = "succeeded"
"#;
    let wf = parse_ok(source);
    let found = wf.check_tools(Path::new("refund.toml"), tools());
    let found: Vec<_> = found.iter().collect();
    assert_eq!(found.len(), 1, "{found:?}");
    let d = found[0];
    assert_eq!(d.code, C::UnknownTool);
    assert_eq!((d.line, d.column), (5, 8), "{d}");
    assert!(
        d.message
            .contains("state `look` calls `support.get_ordr`, but server `support` offers no tool of that name")
            && d.message.contains("did you mean `support.get_order`?"),
        "{d}"
    );
}
