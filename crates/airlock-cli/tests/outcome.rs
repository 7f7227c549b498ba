//! Post-conditions through the real binary: a task whose every step succeeded but whose
//! outcome is wrong ends failed and is an exception in `airlock review`; a post-condition
//! that would write is refused at `airlock run`, at its file:line:column.

use airlock_tests::{Sandbox, text};

/// Writes a limit; above 100 it writes one more than asked. The post-condition reads it back.
const LIMIT: &str = r#"name = "set-limit"
start = "write"

[inputs.amount]
type = "integer"

[states.write]
kind = "tool"
tool = "builtin.upsert"
args = { key = "'limit'", value = "inputs.amount > 100 ? inputs.amount + 1 : inputs.amount" }
next = "done"

[states.done]
kind = "end"
status = "succeeded"

[[postconditions]]
name = "limit_as_asked"
tool = "builtin.echo"
args = { value = "state.write.value" }
expect = ["result.value == inputs.amount"]
message = "the limit is {{ result.value }}, not the {{ inputs.amount }} asked for"
"#;

#[test]
fn a_wrong_outcome_fails_the_task_and_is_an_exception_in_the_review() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    let wf = sb.write("set-limit.toml", LIMIT).expect("write");
    let (code, right) = sb
        .json([
            "run".as_ref(),
            wf.as_os_str(),
            "-i".as_ref(),
            "amount=50".as_ref(),
        ])
        .expect("run");
    assert_eq!(code, Some(0), "{right}");
    assert_eq!(right["status"], "succeeded");
    let (code, wrong) = sb
        .json([
            "run".as_ref(),
            wf.as_os_str(),
            "-i".as_ref(),
            "amount=500".as_ref(),
        ])
        .expect("run");
    assert_eq!(wrong["status"], "failed", "{wrong}");
    assert_ne!(code, Some(0));
    let id = wrong["id"].as_str().expect("id").to_owned();

    let (_, m) = sb.json(["metrics"]).expect("metrics");
    let f = &m["total"];
    assert_eq!(f["exceptions"]["tasks"], 1, "{m}");
    assert_eq!(f["exceptions"]["check_failed"], 1, "{m}");
    assert_eq!(
        (f["checks"]["runs"].as_i64(), f["checks"]["passed"].as_i64()),
        (Some(2), Some(1))
    );

    let dir = sb.path().join("review");
    let out = sb
        .airlock([
            "review".as_ref(),
            "--since".as_ref(),
            "2000-01-01".as_ref(),
            "--out".as_ref(),
            dir.as_os_str(),
        ])
        .output()
        .expect("review");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let md = std::fs::read_to_string(dir.join("review.md")).expect("review.md");
    let exceptions = &md[md.find("## Exceptions").expect("an exceptions section")..];
    let expected = format!("- task `{}` (set-limit, failed, created ", &id[..8]);
    assert!(
        exceptions.contains(&expected),
        "{expected:?} missing from:\n{md}"
    );
    assert!(
        exceptions.contains(
            "): failed, check failed — ``post-condition `limit_as_asked` did not hold: the limit is 501, not the 500 asked for``"
        ),
        "{md}"
    );
    assert!(
        md.contains("outcome check `done`: ``post-condition `limit_as_asked` did not hold"),
        "a failure mode too:\n{md}"
    );
}

#[test]
fn a_postcondition_that_would_write_is_refused_at_its_place() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    let bad = LIMIT.replace("tool = \"builtin.echo\"", "tool = \"builtin.upsert\"");
    let wf = sb.write("set-limit.toml", &bad).expect("write");
    let out = sb
        .airlock([
            "run".as_ref(),
            wf.as_os_str(),
            "-i".as_ref(),
            "amount=50".as_ref(),
        ])
        .output()
        .expect("run");
    assert_ne!(out.status.code(), Some(0));
    let line = bad
        .lines()
        .position(|l| l == "tool = \"builtin.upsert\"")
        .map(|i| i + 1);
    // The first `builtin.upsert` line is the write state's; the post-condition's is the last.
    let last = bad
        .lines()
        .enumerate()
        .filter(|(_, l)| *l == "tool = \"builtin.upsert\"")
        .map(|(i, _)| i + 1)
        .last()
        .expect("the post-condition's tool line");
    assert_ne!(line, Some(last));
    let expected = format!(
        "set-limit.toml:{last}:8: error[not-read-only]: post-condition `limit_as_asked` uses `builtin.upsert`, which is not declared read-only"
    );
    assert!(
        text(&out).contains(&expected),
        "{expected:?} missing from:\n{}",
        text(&out)
    );
    assert!(
        !sb.db().exists() || {
            let (_, tasks) = sb.json(["tasks"]).expect("tasks");
            tasks.as_array().is_some_and(Vec::is_empty)
        },
        "no task was made"
    );
}
