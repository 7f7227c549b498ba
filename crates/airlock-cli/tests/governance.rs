//! `airlock policy`, `approve --edit`, `grants` and `identities` through the real binary:
//! a bad policy file is named at file:line:column, `policy explain` says which rule
//! decides and what it saw, a held call waits for an approver role, an edit is checked
//! and recorded, and a grant covers exactly its count; a late approval is refused, a
//! broken policy stops decisions but not reading, a mistyped tool stops the start, servers
//! are imported into the file in use, and a run on its error path says why.

use std::path::PathBuf;

use airlock_tests::{Sandbox, text};
use serde_json::Value;

fn payout() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../workspace/examples/approve-payout.toml")
}

const PEOPLE: &str = r#"
[identities.carol]
roles = ["controller"]
[identities.eve]
roles = ["operator"]
[identities.alice]
roles = ["operator"]
"#;

fn run_payout(sb: &Sandbox, amount: u32) -> (Option<i32>, Value) {
    sb.json([
        "run".as_ref(),
        payout().as_os_str(),
        "-i".as_ref(),
        format!("amount={amount}").as_ref(),
        "-i".as_ref(),
        "payee=Ada".as_ref(),
        "--as".as_ref(),
        "alice".as_ref(),
    ])
    .expect("run")
}

fn pending(sb: &Sandbox) -> Vec<Value> {
    let (code, approvals) = sb.json(["approvals"]).expect("approvals");
    assert_eq!(code, Some(0));
    approvals.as_array().expect("a list").clone()
}

#[test]
fn a_bad_policy_file_is_named_at_its_line_and_column() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    let bad = sb
        .write(
            "bad-policy.toml",
            "[[rules]]\nname = \"x\"\ntools = [\"*\"]\neffect = \"allow\"\n\n[[rules]]\nname = \"y\"\neffect = \"maybe\"\n",
        )
        .expect("write");
    let out = sb
        .airlock(["policy".as_ref(), "check".as_ref(), bad.as_os_str()])
        .output()
        .expect("policy check");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let printed = text(&out);
    assert!(
        printed.contains(&format!("{}:8:10: error[", bad.display())),
        "{printed}"
    );
    assert!(printed.contains("maybe"), "{printed}");

    let out = sb.airlock(["policy", "check"]).output().expect("check");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("ok, 2 rule(s)"), "{}", text(&out));
}

#[test]
fn explain_names_the_deciding_rule_and_the_values_it_saw() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    let (code, big) = sb
        .json([
            "policy",
            "explain",
            "builtin.record",
            "--workflow",
            "approve-payout",
            "--args",
            r#"{"amount": 20000}"#,
        ])
        .expect("explain");
    assert_eq!(code, Some(0), "{big}");
    assert_eq!(big["effect"]["effect"], "require_approval", "{big}");
    assert_eq!(big["rule"], "large payouts need a controller");
    assert_eq!(big["seen"]["args.amount"], 20000);

    let (_, small) = sb
        .json([
            "policy",
            "explain",
            "builtin.record",
            "--workflow",
            "approve-payout",
            "--args",
            r#"{"amount": 20}"#,
        ])
        .expect("explain");
    assert_eq!(small["effect"]["effect"], "allow", "{small}");
    assert_eq!(small["rule"], "the built-in test tools");

    sb.write(
        "policy.toml",
        "[[rules]]\nname = \"echo only\"\ntools = [\"builtin.echo\"]\neffect = \"allow\"\n",
    )
    .expect("write");
    let out = sb
        .airlock(["policy", "explain", "builtin.record", "--workflow", "w"])
        .output()
        .expect("explain");
    assert_eq!(out.status.code(), Some(8), "a deny exits 8: {}", text(&out));
    assert!(
        text(&out).contains("none matched, so the call is denied by default"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_held_call_waits_for_a_controller_and_an_edit_is_checked_and_recorded() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    sb.write("identities.toml", PEOPLE).expect("write");
    let (code, task) = run_payout(&sb, 20000);
    assert_eq!(code, Some(5), "the workflow's checkpoint first: {task}");
    let checkpoint = pending(&sb)[0]["id"].as_str().expect("id").to_owned();
    let (code, task) = sb
        .json(["approve", &checkpoint, "--as", "carol"])
        .expect("approve");
    assert_eq!(
        code,
        Some(5),
        "then the policy holds the call itself: {task}"
    );

    let held = pending(&sb);
    assert_eq!(held.len(), 1);
    let held_id = held[0]["id"].as_str().expect("id").to_owned();
    assert_eq!(held[0]["held_call"]["tool"], "builtin.record");
    assert_eq!(
        held[0]["held_call"]["rule"],
        "large payouts need a controller"
    );
    let listing = sb.airlock(["approvals"]).output().expect("approvals");
    assert!(
        text(&listing).contains("args.amount = 20000"),
        "{}",
        text(&listing)
    );

    let out = sb
        .airlock(["approve", &held_id, "--as", "eve"])
        .output()
        .expect("approve");
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    assert!(text(&out).contains("controller"), "{}", text(&out));

    let out = sb
        .airlock(["approve", &held_id, "--as", "carol", "--edit", "[1]"])
        .output()
        .expect("approve");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));

    let (code, done) = sb
        .json([
            "approve",
            &held_id,
            "--as",
            "carol",
            "--edit",
            r#"{"label": "payout", "amount": 9000, "payee": "Ada"}"#,
            "--reason",
            "the invoice says 9000",
        ])
        .expect("approve edited");
    assert_eq!(code, Some(0), "{done}");
    assert_eq!(done["status"], "succeeded");
    let task_id = done["id"].as_str().expect("id").to_owned();
    let (_, shown) = sb.json(["show", &task_id]).expect("show");
    let calls = shown["tool_calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["args"]["amount"], 9000, "the edited call ran");

    let (code, entries) = sb
        .json(["audit", "list", "--task", &task_id[..8]])
        .expect("audit");
    assert_eq!(code, Some(0));
    let decided = entries
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["kind"] == "call_approval_decided")
        .cloned()
        .expect("the override is in the audit log");
    assert_eq!(decided["actor"], "carol");
    let out = sb.airlock(["audit", "verify"]).output().expect("verify");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_grant_covers_its_count_then_calls_wait_again() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    // Above the policy's threshold but under the workflow's checkpoint: only the policy
    // holds these payouts.
    sb.write(
        "policy.toml",
        "[[rules]]\nname = \"payouts need a controller\"\ntools = [\"builtin.record\"]\neffect = \"require_approval\"\napprovers = [\"controller\"]\n",
    )
    .expect("write");
    let (code, grant) = sb
        .json([
            "grants",
            "add",
            "builtin.record",
            "--workflow",
            "approve-payout",
            "--uses",
            "1",
            "--for",
            "1h",
            "--when",
            "args.amount < 100",
        ])
        .expect("grant");
    assert_eq!(code, Some(0), "{grant}");
    let (code, first) = run_payout(&sb, 50);
    assert_eq!(code, Some(0), "covered by the grant: {first}");
    let (code, second) = run_payout(&sb, 50);
    assert_eq!(code, Some(5), "the grant is used up: {second}");
    let (_, grants) = sb.json(["grants"]).expect("grants");
    assert_eq!(grants[0]["uses"], 1);
    let out = sb.airlock(["grants"]).output().expect("grants");
    assert!(text(&out).contains("used up"), "{}", text(&out));

    let out = sb
        .airlock(["grants", "add", "builtin.*", "--when", "args.amount <"])
        .output()
        .expect("grant");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
}

#[test]
fn a_rejection_with_a_reason_becomes_a_lesson_a_person_accepts() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    let (code, _) = run_payout(&sb, 500);
    assert_eq!(code, Some(5));
    let checkpoint = pending(&sb)[0]["id"].as_str().expect("id").to_owned();
    let (code, _) = sb
        .json([
            "reject",
            &checkpoint,
            "--as",
            "carol",
            "--reason",
            "payees need a signed contract first",
        ])
        .expect("reject");
    assert_eq!(code, Some(4), "the task takes its rejection path");
    let (code, lessons) = sb
        .json(["lessons", "list", "--status", "proposed"])
        .expect("lessons");
    assert_eq!(code, Some(0));
    let lesson = &lessons[0];
    assert_eq!(lesson["workflow"], "approve-payout");
    assert_eq!(lesson["source"], "rejection");
    assert!(
        lesson["text"]
            .as_str()
            .is_some_and(|t| t.contains("payees need a signed contract first")),
        "{lesson}"
    );
    let id = lesson["id"].as_str().expect("id").to_owned();
    let (code, _) = sb
        .json([
            "lessons",
            "accept",
            &id,
            "--text",
            "Check that the payee has a signed contract before proposing a payout",
        ])
        .expect("accept");
    assert_eq!(code, Some(0));
    let (_, accepted) = sb
        .json(["lessons", "list", "--status", "accepted"])
        .expect("lessons");
    assert_eq!(
        accepted[0]["text"],
        "Check that the payee has a signed contract before proposing a payout"
    );
    let again = sb
        .airlock(["lessons", "dismiss", &id])
        .output()
        .expect("dismiss");
    assert_eq!(
        again.status.code(),
        Some(6),
        "a reviewed lesson is not reviewed again: {}",
        text(&again)
    );
}

/// An approval whose time ran out is not approved by a late answer, even before any
/// engine has recorded its expiry: the answer is refused (exit 8), the approval is
/// recorded as expired, the task takes its expiry path and the payout is never made.
#[test]
fn a_late_approval_is_refused_and_its_call_never_made() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    sb.write("identities.toml", PEOPLE).expect("write");
    let source = std::fs::read_to_string(payout()).expect("the example");
    assert!(source.contains("expires_after = \"2d\""), "{source}");
    let quick = sb
        .write(
            "quick-payout.toml",
            &source.replace("expires_after = \"2d\"", "expires_after = \"1s\""),
        )
        .expect("write");
    let (code, task) = sb
        .json([
            "run".as_ref(),
            quick.as_os_str(),
            "-i".as_ref(),
            "amount=500".as_ref(),
            "-i".as_ref(),
            "payee=Ada".as_ref(),
        ])
        .expect("run");
    assert_eq!(code, Some(5), "waits at its checkpoint: {task}");
    let task_id = task["id"].as_str().expect("id").to_owned();
    let checkpoint = pending(&sb)[0]["id"].as_str().expect("id").to_owned();
    std::thread::sleep(std::time::Duration::from_millis(1300));

    let late = sb
        .airlock(["approve", &checkpoint, "--as", "carol"])
        .output()
        .expect("approve");
    assert_eq!(late.status.code(), Some(8), "{}", text(&late));
    assert!(text(&late).contains("expired"), "{}", text(&late));
    assert!(pending(&sb).is_empty(), "nothing left to decide");
    let (_, shown) = sb.json(["show", &task_id]).expect("show");
    assert_eq!(shown["approvals"][0]["status"], "expired", "{shown}");
    assert_eq!(
        shown["task"]["current_state"], "expired",
        "carried on along its expiry path: {shown}"
    );
    let calls = shown["tool_calls"].as_array().expect("calls");
    assert!(
        calls.iter().all(|c| c["tool"] != "builtin.record"),
        "the payout was never made: {calls:?}"
    );
}

/// A policy file broken by an edit stops decisions, not reading: the commands that only
/// read, and `cancel`, still work (with a warning naming the file and place), while
/// anything that would decide refuses to start (exit 3). Nothing stored is lost.
#[test]
fn a_broken_policy_stops_decisions_not_reading() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    sb.write("identities.toml", PEOPLE).expect("write");
    let (code, task) = run_payout(&sb, 500);
    assert_eq!(code, Some(5), "waits at its checkpoint: {task}");
    let id = task["id"].as_str().expect("id").to_owned();
    let checkpoint = pending(&sb)[0]["id"].as_str().expect("id").to_owned();

    sb.write(
        "policy.toml",
        "[[rules]]\nname = \"y\"\neffect = \"maybe\"\n",
    )
    .expect("break the policy");
    for args in [
        vec!["tasks"],
        vec!["show", id.as_str()],
        vec!["approvals"],
        vec!["history"],
        vec!["audit", "verify"],
    ] {
        let out = sb.airlock(&args).output().expect("run");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            said.contains("warning:") && said.contains("policy.toml:3:10"),
            "{args:?}: {said}"
        );
    }
    let listed = sb.airlock(["approvals"]).output().expect("approvals");
    assert!(text(&listed).contains(&checkpoint), "{}", text(&listed));

    let approve = sb
        .airlock(["approve", &checkpoint, "--as", "carol"])
        .output()
        .expect("approve");
    assert_eq!(approve.status.code(), Some(3), "{}", text(&approve));
    assert!(
        text(&approve).contains("policy.toml:3:10"),
        "{}",
        text(&approve)
    );

    let cancel = sb
        .airlock(["cancel", &id, "--reason", "stop it"])
        .output()
        .expect("cancel");
    assert_eq!(cancel.status.code(), Some(0), "{}", text(&cancel));
    let (_, shown) = sb.json(["show", &id]).expect("show");
    assert_eq!(shown["task"]["status"], "cancelled", "{shown}");
    assert_eq!(shown["approvals"][0]["status"], "withdrawn", "{shown}");
}

/// A `tool` state naming a tool its server does not offer is caught before a task is
/// made (exit 3), at the file, line and column of the name, with the close name.
#[test]
fn a_mistyped_tool_stops_the_start_not_the_task() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    let typo = sb
        .write(
            "typo.toml",
            "name = \"typo\"\nstart = \"greet\"\n\n[states.greet]\nkind = \"tool\"\ntool = \"builtin.ehco\"\nargs = { text = \"'hi'\" }\nnext = \"done\"\n\n[states.done]\nkind = \"end\"\nstatus = \"succeeded\"\n",
        )
        .expect("write");
    let out = sb
        .airlock(["run".as_ref(), typo.as_os_str()])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!("{}:6:8: error[unknown-tool]", typo.display()))
            && said.contains("did you mean `builtin.echo`?"),
        "{said}"
    );
    let (_, tasks) = sb.json(["tasks"]).expect("tasks");
    assert_eq!(
        tasks.as_array().map(Vec::len),
        Some(0),
        "no task was made: {tasks}"
    );
}

/// `servers import` writes the servers file the other commands read: the workspace's
/// when one is given (created if missing), not one beside the database that a workspace
/// would shadow.
#[test]
fn servers_are_imported_into_the_file_in_use() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    let workspace = sb.db().parent().expect("dir").join("ws");
    std::fs::create_dir_all(&workspace).expect("workspace");
    let claude = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../airlock-mcp/tests/fixtures/claude_desktop_config.json");
    let (code, report) = sb
        .json([
            "--workspace".as_ref(),
            workspace.as_os_str(),
            "servers".as_ref(),
            "import".as_ref(),
            claude.as_os_str(),
        ])
        .expect("import");
    assert_eq!(code, Some(0), "{report}");
    let file = workspace.join("servers.json");
    assert_eq!(report["file"], file.display().to_string(), "{report}");
    let written = std::fs::read_to_string(&file).expect("the workspace's servers file");
    assert!(written.contains("filesystem"), "{written}");
    assert!(
        !sb.db().parent().expect("dir").join("servers.json").exists(),
        "nothing beside the database"
    );
}

/// A step that gives up and takes the workflow's error path leaves the task without an
/// error of its own; the run still says what went wrong on the way.
#[test]
fn a_run_that_ends_on_its_error_path_says_why() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    let flaky = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../workspace/examples/flaky-upsert.toml");
    let out = sb
        .airlock([
            "run".as_ref(),
            flaky.as_os_str(),
            "-i".as_ref(),
            "failures=9".as_ref(),
            "-i".as_ref(),
            "key=k".as_ref(),
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("failed at `gave_up`")
            && said.contains("after `flaky` gave up: deliberate failure"),
        "{said}"
    );
}

/// Decisions are recorded under a name and with a reason: neither may be blank.
#[test]
fn a_blank_name_or_rejection_reason_is_refused() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    sb.write("identities.toml", PEOPLE).expect("write");
    let (code, _) = run_payout(&sb, 500);
    assert_eq!(code, Some(5));
    let checkpoint = pending(&sb)[0]["id"].as_str().expect("id").to_owned();
    for args in [
        vec!["approve", checkpoint.as_str(), "--as", " "],
        vec![
            "reject",
            checkpoint.as_str(),
            "--as",
            "carol",
            "--reason",
            "  ",
        ],
    ] {
        let out = sb.airlock(&args).output().expect("run");
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", text(&out));
    }
    assert_eq!(pending(&sb).len(), 1, "still waiting, undecided");
}
