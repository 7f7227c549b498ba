//! Expressions, templates, argument trees, input binding and retry backoff.

use std::time::Duration;

use airlock_workflow::{
    Expr, InputError, InputType, RetryPolicy, Scope, Template, parse_cli_value,
};
use serde_json::{Value, json};

use crate::support::parse_ok;

fn eval(source: &str, inputs: Value) -> Result<Value, String> {
    let state = json!({"refund": {"amount": 60, "ok": true}});
    let task = json!({"id": "t-1", "requester": "ana", "workflow": "support-refund"});
    let scope = Scope {
        inputs: &inputs,
        state: &state,
        task: &task,
    };
    let expr = Expr::compile(source).map_err(|e| e.to_string())?;
    expr.eval(&scope).map_err(|e| e.to_string())
}

#[test]
fn expressions_evaluate_to_json() {
    let cases: &[(&str, Value, Result<Value, &str>)] = &[
        // Mixed numerics compare naturally, whichever side is the double.
        (
            "inputs.amount > 50",
            json!({"amount": 60.5}),
            Ok(json!(true)),
        ),
        ("inputs.amount > 50", json!({"amount": 60}), Ok(json!(true))),
        (
            "inputs.amount > 50.5",
            json!({"amount": 50}),
            Ok(json!(false)),
        ),
        (
            "inputs.amount == 60.0",
            json!({"amount": 60}),
            Ok(json!(true)),
        ),
        (
            "state.refund.amount == inputs.amount",
            json!({"amount": 60.0}),
            Ok(json!(true)),
        ),
        (
            "inputs.amount * 2.0",
            json!({"amount": 1.25}),
            Ok(json!(2.5)),
        ),
        ("inputs.n + 1", json!({"n": 41}), Ok(json!(42))),
        (
            "'order ' + inputs.id",
            json!({"id": "A-1"}),
            Ok(json!("order A-1")),
        ),
        ("task.requester", json!({}), Ok(json!("ana"))),
        (
            "[inputs.n, 'x', null]",
            json!({"n": 1}),
            Ok(json!([1, "x", null])),
        ),
        (
            "{'b': 1, 'a': inputs.n}",
            json!({"n": 2}),
            Ok(json!({"a": 2, "b": 1})),
        ),
        (
            "has(inputs.note) ? inputs.note : 'none'",
            json!({}),
            Ok(json!("none")),
        ),
        (
            "inputs.tags.exists(t, t == 'vip')",
            json!({"tags": ["new", "vip"]}),
            Ok(json!(true)),
        ),
        ("size(inputs.id)", json!({"id": "abc"}), Ok(json!(3))),
        // Errors name the expression and what went wrong.
        (
            "inputs.amount > 'x'",
            json!({"amount": 1.5}),
            Err(
                "`inputs.amount > 'x'`: no such overload: found no matching overload for '_>_' applied to '(double, string)'",
            ),
        ),
        (
            "inputs.missing == 1",
            json!({}),
            Err(
                "`inputs.missing == 1`: there is no field `missing` (it is missing or was not set)",
            ),
        ),
        ("1 / 0", json!({}), Err("`1 / 0`: Division by zero")),
        ("1 +", json!({}), Err("`1 +`: Syntax error")),
    ];
    for (source, inputs, expected) in cases {
        let got = eval(source, inputs.clone());
        match expected {
            Ok(value) => assert_eq!(got.as_ref(), Ok(value), "{source}"),
            Err(prefix) => {
                let message = got.expect_err(source);
                assert!(message.starts_with(prefix), "{source}: {message}");
            }
        }
    }
}

#[test]
fn eval_bool_insists_on_a_boolean() {
    let (inputs, state, task) = (json!({"n": 3}), json!({}), json!({}));
    let scope = Scope {
        inputs: &inputs,
        state: &state,
        task: &task,
    };
    let yes = Expr::compile("inputs.n >= 3").expect("compiles");
    assert_eq!(yes.eval_bool(&scope), Ok(true));
    let not_bool = Expr::compile("inputs.n").expect("compiles");
    let error = not_bool.eval_bool(&scope).expect_err("3 is not a boolean");
    assert_eq!(
        error.to_string(),
        "`inputs.n`: expected true or false, but got the number 3"
    );
    assert_eq!(error.expression(), "inputs.n");
}

#[test]
fn templates_render_holes() {
    let (inputs, state, task) = (
        json!({"amount": 60.0, "id": "A-1", "tags": ["a"], "price": 2.5}),
        json!({}),
        json!({"id": "t-9"}),
    );
    let scope = Scope {
        inputs: &inputs,
        state: &state,
        task: &task,
    };
    let cases = [
        (
            "Refund {{ inputs.amount }} on {{inputs.id}}?",
            "Refund 60 on A-1?",
        ),
        ("{{ inputs.price }} each", "2.5 each"),
        ("tags: {{ inputs.tags }}", "tags: [\"a\"]"),
        ("task {{ task.id }}", "task t-9"),
        ("no holes at all", "no holes at all"),
        ("", ""),
    ];
    for (source, expected) in cases {
        let template = Template::parse(source).expect(source);
        assert_eq!(template.source(), source);
        assert_eq!(template.render(&scope).as_deref(), Ok(expected), "{source}");
    }
    let error = Template::parse("a {{ inputs.x").expect_err("unclosed");
    assert!(error.to_string().contains("never closed"), "{error}");
    let error = Template::parse("{{ }}").expect_err("empty hole");
    assert!(error.to_string().contains("empty"), "{error}");
    let missing = Template::parse("{{ inputs.nope }}").expect("parses");
    let error = missing.render(&scope).expect_err("no such input value");
    assert_eq!(error.expression(), "inputs.nope");
}

#[test]
fn args_trees_evaluate_leaves_and_keep_literals() {
    let wf = parse_ok(
        r#"name = "args"
start = "a"
[inputs.id]
type = "string"
[states.a]
kind = "tool"
tool = "builtin.record"
args = { label = "'refund ' + inputs.id", n = 3, ratio = 0.5, on = true, when = 1979-05-27, nested = { list = [1, "inputs.id", { deep = "task.id" }] } }
next = "done"
[states.done]
kind = "end"
status = "succeeded"
"#,
    );
    let airlock_workflow::StateKind::Tool(tool) = &wf.states[0].kind else {
        panic!("a tool state")
    };
    let keys: Vec<&str> = tool
        .args
        .entries()
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(keys, ["label", "n", "ratio", "on", "when", "nested"]);
    assert_eq!(tool.args.expressions().len(), 3);
    let (inputs, state, task) = (json!({"id": "A-1"}), json!({}), json!({"id": "t-1"}));
    let scope = Scope {
        inputs: &inputs,
        state: &state,
        task: &task,
    };
    let value = tool.args.eval(&scope).expect("evaluates");
    assert_eq!(
        serde_json::to_string(&value).ok().as_deref(),
        Some(
            r#"{"label":"refund A-1","n":3,"ratio":0.5,"on":true,"when":"1979-05-27","nested":{"list":[1,"A-1",{"deep":"t-1"}]}}"#
        )
    );
    let empty = Scope {
        inputs: &json!({}),
        state: &state,
        task: &task,
    };
    let error = tool.args.eval(&empty).expect_err("inputs.id is missing");
    assert_eq!(error.expression(), "'refund ' + inputs.id");
}

const INPUTS: &str = r#"name = "inputs"
start = "done"
[inputs.order_id]
type = "string"
[inputs.amount]
type = "number"
default = 10
[inputs.count]
type = "integer"
required = false
[inputs.rush]
type = "boolean"
default = false
[inputs.meta]
type = "object"
required = false
[states.done]
kind = "end"
status = "succeeded"
"#;

#[test]
fn bind_inputs_applies_defaults_and_normalizes_numbers() {
    let wf = parse_ok(INPUTS);
    let given = json!({"order_id": "A-1", "count": 3.0});
    let Value::Object(given) = given else {
        unreachable!()
    };
    let bound = wf.bind_inputs(given).expect("valid inputs");
    assert_eq!(
        Value::Object(bound),
        json!({"order_id": "A-1", "amount": 10.0, "count": 3, "rush": false})
    );
    let Value::Object(given) = json!({"order_id": "A-1", "amount": 12}) else {
        unreachable!()
    };
    let bound = wf.bind_inputs(given).expect("an integer is a number");
    assert_eq!(bound.get("amount"), Some(&json!(12.0)));
    assert!(
        bound["amount"].is_f64(),
        "numbers are doubles, so CEL arithmetic never mixes types"
    );
}

#[test]
fn bind_inputs_reports_every_problem() {
    let wf = parse_ok(INPUTS);
    let Value::Object(given) =
        json!({"amount": "abc", "count": 2.5, "rush": "yes", "meta": [], "colour": "red"})
    else {
        unreachable!()
    };
    let errors = wf.bind_inputs(given).expect_err("all wrong");
    let messages: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "there is no input `colour`; this workflow takes `order_id`, `amount`, `count`, `rush`, `meta`",
            "input `order_id` is required, but no value was given",
            "input `amount` should be a number, but got the string \"abc\"",
            "input `count` should be an integer, but got the number 2.5",
            "input `rush` should be a boolean, but got the string \"yes\"",
            "input `meta` should be an object, but got an array",
        ]
    );
    assert_eq!(errors.to_string().lines().count(), 6);
}

#[test]
fn cli_values_parse_by_type() {
    let ok: &[(InputType, &str, Value)] = &[
        (InputType::String, " spaced ", json!(" spaced ")),
        (InputType::Number, "12.5", json!(12.5)),
        (InputType::Number, "12", json!(12.0)),
        (InputType::Integer, "-7", json!(-7)),
        (InputType::Boolean, "true", json!(true)),
        (InputType::Object, r#"{"a": [1]}"#, json!({"a": [1]})),
        (InputType::Array, "[1, 2]", json!([1, 2])),
    ];
    for (ty, raw, expected) in ok {
        assert_eq!(
            parse_cli_value(*ty, raw).as_ref(),
            Ok(expected),
            "{ty} {raw}"
        );
    }
    let bad: &[(InputType, &str, &str)] = &[
        (
            InputType::Number,
            "abc",
            "`abc` is not a number: write a number such as `12.5`",
        ),
        (InputType::Number, "inf", "`inf` is not a number"),
        (
            InputType::Integer,
            "1.5",
            "`1.5` is not an integer: write a whole number",
        ),
        (
            InputType::Boolean,
            "yes",
            "`yes` is not a boolean: write `true` or `false`",
        ),
        (
            InputType::Object,
            "[1]",
            "`[1]` is not an object: the JSON is an array",
        ),
        (
            InputType::Array,
            "{",
            "`{` is not an array: it is not valid JSON",
        ),
    ];
    for (ty, raw, prefix) in bad {
        let error: InputError = parse_cli_value(*ty, raw).expect_err(raw);
        assert!(error.to_string().starts_with(prefix), "{ty} {raw}: {error}");
    }
}

#[test]
fn backoff_grows_by_the_multiplier_and_is_capped() {
    let policy = RetryPolicy {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(100),
        multiplier: 2.0,
        max_backoff: Duration::from_millis(500),
    };
    let waits: Vec<u128> = (1..=6)
        .map(|n| policy.backoff_after(n).as_millis())
        .collect();
    assert_eq!(waits, [100, 200, 400, 500, 500, 500]);
    let defaults = RetryPolicy::default();
    assert_eq!(defaults.max_attempts, 1);
    assert_eq!(defaults.backoff_after(1), Duration::from_millis(200));
    assert_eq!(defaults.backoff_after(u32::MAX), Duration::from_secs(30));
    let flat = RetryPolicy {
        multiplier: 1.0,
        ..defaults
    };
    assert_eq!(flat.backoff_after(7), Duration::from_millis(200));
}

#[test]
fn globs_match_tool_names() {
    use airlock_workflow::glob_matches;
    assert!(glob_matches("support.*", "support.get_order"));
    assert!(glob_matches("*.read_*", "crm.read_account"));
    assert!(glob_matches("builtin.echo", "builtin.echo"));
    assert!(!glob_matches("support.*", "billing.refund"));
    assert!(!glob_matches("builtin.echo", "builtin.echo2"));
}

#[test]
fn durations_read_and_write_each_unit() {
    use airlock_workflow::{format_duration, parse_duration};
    let cases = [
        ("250ms", Duration::from_millis(250)),
        ("10s", Duration::from_secs(10)),
        ("5m", Duration::from_secs(300)),
        ("25h", Duration::from_secs(90_000)),
        ("2d", Duration::from_secs(172_800)),
    ];
    for (text, duration) in cases {
        assert_eq!(parse_duration(text), Ok(duration), "{text}");
        assert_eq!(format_duration(duration), text);
    }
    for bad in [
        "",
        "10",
        "s",
        "1.5s",
        "10 sec",
        "-1s",
        "99999999999999999999d",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?} should not parse");
    }
}
