//! Bad policy files: every problem with its exact message, code and place.

use std::path::Path;

use airlock_policy::Policy;
use airlock_workflow::DiagnosticCode;

/// `line:column code: message` for each diagnostic, in order.
fn problems(source: &str) -> Vec<String> {
    match Policy::parse(Path::new("policy.toml"), source) {
        Ok(_) => vec!["valid".to_owned()],
        Err(diagnostics) => diagnostics
            .iter()
            .map(|d| {
                assert_eq!(d.file, Path::new("policy.toml"));
                format!("{}:{} {}: {}", d.line, d.column, d.code, d.message)
            })
            .collect(),
    }
}

#[test]
fn bad_policies_are_reported_where_they_are() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "TOML syntax",
            "[[rules]\nname = \"a\"\n",
            &["1:9 toml-syntax: this is not valid TOML: unclosed array table, expected `]`"],
        ),
        (
            "a key twice",
            "[[rules]]\nname = \"a\"\nname = \"b\"\neffect = \"allow\"\n",
            &["3:1 duplicate-name: `name` is defined twice; each key may appear only once"],
        ),
        (
            "an unknown field, with a suggestion",
            "[[rules]]\nname = \"a\"\neffect = \"allow\"\ntool = [\"x.y\"]\n",
            &[
                "4:1 unknown-field: unknown field `tool`; did you mean `tools`? The fields allowed here are `name`, `description`, `workflows`, `roles`, `servers`, `tools`, `risk`, `when`, `effect`, `approvers`, `approvals`, `expires_after`, `escalate_after`, `escalate_to`, `four_eyes`, `reason`.",
            ],
        ),
        (
            "an unknown top-level field",
            "rule = 1\n",
            &[
                "1:1 unknown-field: unknown field `rule`; did you mean `rules`? The fields allowed here are `version`, `rules`.",
            ],
        ),
        (
            "a string where a list belongs",
            "[[rules]]\nname = \"a\"\neffect = \"allow\"\nrisk = \"high\"\n",
            &["4:8 wrong-type: wrong type: expected an array, but found string \"high\""],
        ),
        (
            "a string where a number belongs",
            "[[rules]]\nname = \"a\"\neffect = \"require_approval\"\napprovers = [\"x\"]\napprovals = \"two\"\n",
            &["5:13 wrong-type: wrong type: expected an integer, but found string \"two\""],
        ),
        (
            "`[rules]` instead of `[[rules]]`",
            "[rules]\nname = \"a\"\n",
            &["1:1 wrong-type: wrong type: expected an array, but found a table"],
        ),
        (
            "missing name and effect, each reported",
            "[[rules]]\ntools = [\"x.*\"]\n\n[[rules]]\nname = \"b\"\n",
            &[
                "1:1 missing-field: rule 1 has no `name`; every rule needs a unique name, which its decisions cite",
                "1:1 missing-field: rule 1 has no `effect`; write allow, require_approval or deny",
                "4:1 missing-field: rule `b` has no `effect`; write allow, require_approval or deny",
            ],
        ),
        (
            "an empty name",
            "[[rules]]\nname = \" \"\neffect = \"allow\"\n",
            &["2:8 bad-value: the name of rule 1 is empty; give it a name that says what it does"],
        ),
        (
            "duplicate rule names",
            "[[rules]]\nname = \"reads\"\neffect = \"allow\"\n\n[[rules]]\nname = \"reads\"\neffect = \"deny\"\n",
            &[
                "6:8 duplicate-name: the rule name `reads` is already used by the rule on line 1; each rule needs its own name",
            ],
        ),
        (
            "an unknown effect",
            "[[rules]]\nname = \"a\"\neffect = \"alow\"\n",
            &[
                "3:10 bad-value: rule `a` has the unknown effect `alow`; use allow, require_approval or deny (did you mean `allow`?)",
            ],
        ),
        (
            "an unknown risk level",
            "[[rules]]\nname = \"a\"\nrisk = [\"low\", \"meduim\", \"severe\"]\neffect = \"allow\"\n",
            &[
                "3:16 bad-value: rule `a` lists the unknown risk level `meduim`; use low, medium or high (did you mean `medium`?)",
                "3:26 bad-value: rule `a` lists the unknown risk level `severe`; use low, medium or high",
            ],
        ),
        (
            "bad CEL, pointing inside the string",
            "[[rules]]\nname = \"a\"\nwhen = \"args.amount > \"\neffect = \"deny\"\n",
            &[
                "3:23 bad-expression: `when` of rule `a` is not a valid expression: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}",
            ],
        ),
        (
            "an empty condition",
            "[[rules]]\nname = \"a\"\nwhen = \"\"\neffect = \"deny\"\n",
            &[
                "3:8 bad-expression: `when` of rule `a` is not a valid expression: the expression is empty",
            ],
        ),
        (
            "unknown root variables and fields",
            "[[rules]]\nname = \"a\"\nwhen = \"arg.amount > 1 || call.tol == 'x' || principal.role == 'y' || inputs.x\"\neffect = \"deny\"\n",
            &[
                "3:9 unknown-variable: `when` of rule `a` uses `arg`, which is not defined; conditions can use `args`, `inputs`, `state`, `task`, `call` and `principal`; did you mean `args`?",
                "3:27 unknown-variable: `when` of rule `a` uses `call.tol`, but a call only has `tool`, `server` and `risk`; did you mean `tool`?",
                "3:46 unknown-variable: `when` of rule `a` uses `principal.role`, but a principal only has `name` and `roles`; did you mean `roles`?",
            ],
        ),
        (
            "bad durations",
            "[[rules]]\nname = \"a\"\neffect = \"require_approval\"\napprovers = [\"x\"]\nexpires_after = \"4 hours\"\nescalate_after = \"0s\"\nescalate_to = [\"y\"]\n",
            &[
                "5:17 bad-duration: `expires_after` of rule `a`: `4 hours` is not a duration; write a whole number and a unit, such as \"250ms\", \"10s\", \"5m\", \"24h\" or \"2d\"",
                "6:18 bad-duration: `escalate_after` of rule `a` must be longer than zero",
            ],
        ),
        (
            "require_approval without approvers",
            "[[rules]]\nname = \"a\"\neffect = \"require_approval\"\n",
            &[
                "3:10 missing-field: rule `a` requires approval but has no `approvers`; list the roles that may decide",
            ],
        ),
        (
            "approver fields on allow and deny rules",
            "[[rules]]\nname = \"a\"\neffect = \"allow\"\napprovers = [\"x\"]\nfour_eyes = true\n\n[[rules]]\nname = \"b\"\neffect = \"deny\"\nexpires_after = \"1h\"\n",
            &[
                "4:13 misplaced-field: `approvers` is only for require_approval rules, but rule `a` has effect `allow`",
                "5:13 misplaced-field: `four_eyes` is only for require_approval rules, but rule `a` has effect `allow`",
                "10:17 misplaced-field: `expires_after` is only for require_approval rules, but rule `b` has effect `deny`",
            ],
        ),
        (
            "a reason on an allow rule",
            "[[rules]]\nname = \"a\"\neffect = \"allow\"\nreason = \"because\"\n",
            &[
                "4:10 misplaced-field: `reason` is only for deny rules, but rule `a` has effect `allow`; use `description` to say what a rule is for",
            ],
        ),
        (
            "zero and negative approvals",
            "[[rules]]\nname = \"a\"\neffect = \"require_approval\"\napprovers = [\"x\"]\napprovals = 0\n\n[[rules]]\nname = \"b\"\neffect = \"require_approval\"\napprovers = [\"x\"]\napprovals = -2\n",
            &[
                "5:13 bad-value: `approvals` of rule `a` is 0, but it must be at least 1",
                "11:13 bad-value: `approvals` of rule `b` is -2, but it must be at least 1",
            ],
        ),
        (
            "escalation half given",
            "[[rules]]\nname = \"a\"\neffect = \"require_approval\"\napprovers = [\"x\"]\nescalate_after = \"1h\"\n\n[[rules]]\nname = \"b\"\neffect = \"require_approval\"\napprovers = [\"x\"]\nescalate_to = [\"y\"]\n",
            &[
                "5:18 missing-field: rule `a` sets `escalate_after` but not `escalate_to`, the roles that may decide after that delay",
                "11:15 missing-field: rule `b` sets `escalate_to` but not `escalate_after`, the delay after which those roles may decide",
            ],
        ),
        (
            "escalation after expiry",
            "[[rules]]\nname = \"a\"\neffect = \"require_approval\"\napprovers = [\"x\"]\nexpires_after = \"1h\"\nescalate_after = \"2h\"\nescalate_to = [\"y\"]\n",
            &[
                "6:18 bad-value: rule `a` escalates after 2h, but its approval expires after 1h, so it would never escalate",
            ],
        ),
        (
            "empty globs and empty lists",
            "[[rules]]\nname = \"a\"\ntools = []\nworkflows = [\"\"]\nroles = [\"ops\", \" \"]\nrisk = []\neffect = \"allow\"\n",
            &[
                "3:9 bad-value: `tools` of rule `a` is empty, so the rule could never match; leave it out to match any tool",
                "4:14 bad-value: `workflows` of rule `a` holds an empty pattern; write a name or a glob such as \"*\"",
                "5:17 bad-value: `roles` of rule `a` holds an empty pattern; write a name or a glob such as \"*\"",
                "6:8 bad-value: `risk` of rule `a` is empty, so the rule could never match; leave it out to match any risk",
            ],
        ),
        (
            "approver lists: empty, blank and patterns",
            "[[rules]]\nname = \"a\"\neffect = \"require_approval\"\napprovers = []\n\n[[rules]]\nname = \"b\"\neffect = \"require_approval\"\napprovers = [\"\", \"fin*\"]\n",
            &[
                "4:13 bad-value: `approvers` of rule `a` is empty; name at least one role",
                "9:14 bad-value: `approvers` of rule `b` holds an empty role name",
                "9:18 bad-value: `approvers` of rule `b` holds `fin*`, but approvers are role names, not patterns",
            ],
        ),
        (
            "a version label of the wrong type",
            "version = 3\n",
            &["1:11 wrong-type: wrong type: expected a string or a date, but found integer `3`"],
        ),
        (
            "an empty file is a valid policy that denies everything",
            "",
            &["valid"],
        ),
    ];
    let mut failures = Vec::new();
    for (what, source, expected) in cases {
        let got = problems(source);
        if got != *expected {
            failures.push(format!("{what}:\n  expected {expected:#?}\n  got {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn diagnostics_display_as_file_line_column() {
    let error = Policy::parse(
        Path::new("ws/policy.toml"),
        "[[rules]]\nname = \"a\"\neffect = \"alow\"\n",
    )
    .expect_err("invalid");
    assert_eq!(
        error.to_string(),
        "ws/policy.toml:3:10: error[bad-value]: rule `a` has the unknown effect `alow`; use allow, require_approval or deny (did you mean `allow`?)"
    );
}

#[test]
fn every_problem_in_a_file_is_reported_at_once() {
    let source = "[[rules]]\nname = \"a\"\neffect = \"alow\"\n\n[[rules]]\nname = \"a\"\nrisk = [\"extreme\"]\nwhen = \"foo\"\neffect = \"deny\"\n";
    let codes: Vec<DiagnosticCode> = Policy::parse(Path::new("p.toml"), source)
        .expect_err("invalid")
        .iter()
        .map(|d| d.code)
        .collect();
    assert_eq!(
        codes,
        [
            DiagnosticCode::BadValue,
            DiagnosticCode::DuplicateName,
            DiagnosticCode::BadValue,
            DiagnosticCode::UnknownVariable,
        ]
    );
}

#[test]
fn load_reports_an_unreadable_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("missing.toml");
    let error = Policy::load(&path).expect_err("no such file");
    assert_eq!(error.len(), 1);
    let d = &error.0[0];
    assert_eq!(
        (d.code, d.line, d.column),
        (DiagnosticCode::UnreadableFile, 1, 1)
    );
    assert!(
        d.message.starts_with("cannot read this file: "),
        "{}",
        d.message
    );
    assert_eq!(d.file, path);
}
