//! How the real binary fails: acting on something no longer in a state that allows it
//! is a refusal (exit 8), not an error of Airlock's (1); under `--json` every failure is
//! one JSON object on stderr (with the file:line:column of a file that does not
//! validate), and whatever else goes to stderr is JSON too. A --db that is not there is
//! not a new empty database for commands that read or act on what is stored (6), while
//! `run` creates it, and so does any command at the default location.

use std::path::PathBuf;

use airlock_tests::{Sandbox, text};
use serde_json::Value;

fn payout() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../workspace/examples/approve-payout.toml")
}

/// Starts a payout of 250 as alice, which waits at its checkpoint: (task, approval).
fn waiting_payout(sb: &Sandbox) -> (String, String) {
    let (code, task) = sb
        .json([
            "run".as_ref(),
            payout().as_os_str(),
            "-i".as_ref(),
            "amount=250".as_ref(),
            "-i".as_ref(),
            "payee=Ada".as_ref(),
            "--as".as_ref(),
            "alice".as_ref(),
        ])
        .expect("run");
    assert_eq!(code, Some(5), "{task}");
    let approval = task["phase"]["approval_id"]
        .as_str()
        .expect("an approval")
        .to_owned();
    (task["id"].as_str().expect("id").to_owned(), approval)
}

/// The short ids the CLI prints work where it sends people: an approval answered by a
/// prefix of its id; a prefix nothing has is "not found".
#[test]
fn an_approval_is_answered_by_a_prefix_of_its_id() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    let (_, approval) = waiting_payout(&sb);
    // `resume` says by its code that someone has to act.
    let out = sb.airlock(["resume"]).output().expect("resume");
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let out = sb
        .airlock(["approve", "zz-none", "--as", "carol"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(
        text(&out).contains("no approval `zz-none`"),
        "{}",
        text(&out)
    );
    let (code, done) = sb
        .json(["approve", &approval[..8], "--as", "carol"])
        .expect("approve");
    assert_eq!(code, Some(0), "{done}");
    assert_eq!(done["status"], "succeeded", "{done}");
}

#[test]
fn acting_on_what_no_longer_allows_it_is_refused() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    let (task, approval) = waiting_payout(&sb);
    let (code, done) = sb
        .json(["approve", &approval, "--as", "carol"])
        .expect("approve");
    assert_eq!(code, Some(0), "{done}");

    let refused = |args: &[&str], says: &str| {
        let out = sb.airlock(args).output().expect("run");
        assert_eq!(out.status.code(), Some(8), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(says), "{args:?}: {}", text(&out));
    };
    refused(&["approve", &approval, "--as", "carol"], "already decided");
    refused(
        &["reject", &approval, "--as", "carol", "--reason", "too late"],
        "already decided",
    );
    refused(&["release", &task], "cannot be released");
    refused(&["cancel", &task], "cannot be cancelled");
}

#[test]
fn a_memory_search_that_is_not_valid_syntax_is_the_persons_input() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    waiting_payout(&sb);
    let out = sb
        .airlock(["memory", "list", "--search", "\"w4"])
        .output()
        .expect("memory list");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("not valid full-text search syntax"),
        "{}",
        text(&out)
    );
}

/// Runs with `--json`, expecting a failure: its exit code and the `error` object, after
/// checking that stdout is empty and that every line of stderr is a JSON object.
fn json_failure<S: AsRef<std::ffi::OsStr>>(sb: &Sandbox, args: &[S]) -> (Option<i32>, Value) {
    let out = sb.airlock(args).arg("--json").output().expect("run");
    assert!(out.stdout.is_empty(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let last = lines.last().expect("something on stderr");
    (out.status.code(), last["error"].clone())
}

#[test]
fn under_json_a_failure_is_one_json_object_on_stderr() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    let (task, approval) = waiting_payout(&sb);

    let (code, error) = json_failure(&sb, &["show", "nosuchtask"]);
    assert_eq!(code, Some(6), "{error}");
    assert_eq!(error["code"], "not_found", "{error}");
    assert_eq!(error["exit"], 6, "{error}");
    assert_eq!(error["message"], "no task `nosuchtask`", "{error}");
    assert_eq!(error["diagnostics"], serde_json::json!([]), "{error}");

    // Without --json, the same failure reads as before.
    let out = sb.airlock(["show", "nosuchtask"]).output().expect("show");
    assert_eq!(out.status.code(), Some(6));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: no task `nosuchtask`\n"
    );

    let (code, error) = json_failure(
        &sb,
        &["reject", &approval, "--as", "carol", "--reason", " "],
    );
    assert_eq!(
        (code, &error["code"]),
        (Some(3), &"invalid".into()),
        "{error}"
    );

    assert_eq!(
        sb.json(["approve", &approval, "--as", "carol"])
            .expect("approve")
            .0,
        Some(0)
    );
    let (code, error) = json_failure(&sb, &["approve", &approval, "--as", "carol"]);
    assert_eq!(
        (code, &error["code"]),
        (Some(8), &"refused".into()),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("already decided")),
        "{error}"
    );

    // A broken policy: reading still works, with a warning that is JSON too.
    let policy = sb
        .write("policy.toml", "[[rules]]\nname = 1\n")
        .expect("write");
    let (code, error) = json_failure(&sb, &["show", "nosuchtask"]);
    assert_eq!(code, Some(6), "{error}");
    // Deciding does not: the policy's problems come at their file:line:column.
    let (code, error) = json_failure(&sb, &["cancel", &task]);
    assert_eq!(code, Some(8), "cancel needs no policy: {error}");
    let (code, error) = json_failure(&sb, &["release", &task]);
    assert_eq!(
        (code, &error["code"]),
        (Some(3), &"invalid".into()),
        "{error}"
    );
    let first = &error["diagnostics"][0];
    assert_eq!(first["file"], policy.display().to_string(), "{error}");
    assert_eq!(
        (first["line"].as_u64(), first["column"].is_u64()),
        (Some(2), true),
        "{error}"
    );
}

#[test]
fn under_json_a_workflow_file_that_does_not_validate_gives_its_places() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    let bad = sb
        .write("bad.toml", "name = \"bad\"\nstart = \"nowhere\"\n")
        .expect("write");
    let (code, error) = json_failure(&sb, &[std::ffi::OsStr::new("run"), bad.as_os_str()]);
    assert_eq!(code, Some(3), "{error}");
    assert_eq!(error["code"], "invalid", "{error}");
    let places = error["diagnostics"].as_array().expect("diagnostics");
    assert!(!places.is_empty(), "{error}");
    for d in places {
        assert_eq!(d["file"], bad.display().to_string(), "{error}");
        assert!(d["line"].as_u64().is_some_and(|l| l >= 1), "{error}");
        assert!(d["column"].as_u64().is_some_and(|c| c >= 1), "{error}");
        assert!(d["message"].is_string() && d["code"].is_string(), "{error}");
    }
    // The message is what people read without --json: every problem at its place.
    let message = error["message"].as_str().expect("message");
    assert!(message.contains(&format!("{}:", bad.display())), "{error}");
}

#[test]
fn a_database_that_is_not_there_is_not_found_unless_the_command_creates_work() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    // The sandbox's AIRLOCK_DB names a file that is not there yet.
    let db = sb.db();
    for args in [
        &["tasks"][..],
        &["approvals"],
        &["show", "abc"],
        &["approve", "abc"],
        &["in-doubt"],
        &["history"],
        &["metrics"],
        &["audit", "verify"],
        &["memory"],
        &["lessons"],
        &["grants"],
        &["cancel", "abc"],
    ] {
        let out = sb.airlock(args).output().expect("run");
        assert_eq!(out.status.code(), Some(6), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains(&format!("no database at {}", db.display()))
                && text(&out).contains("airlock run"),
            "{args:?}: {}",
            text(&out)
        );
        assert!(!db.exists(), "{args:?} created {}", db.display());
    }
    // A mistyped --db says so, under --json too.
    let typo = sb.path().join("typo.db");
    let (code, error) = json_failure(&sb, &["tasks".as_ref(), "--db".as_ref(), typo.as_os_str()]);
    assert_eq!(
        (code, &error["code"]),
        (Some(6), &"not_found".into()),
        "{error}"
    );
    assert!(!typo.exists());

    // `resume` after a `run` killed before its database was made: nothing to carry on.
    let out = sb.airlock(["resume"]).output().expect("resume");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("nothing to run"), "{}", text(&out));

    // `run` creates it; then the same commands read it.
    waiting_payout(&sb);
    assert!(db.exists());
    let (code, tasks) = sb.json(["tasks"]).expect("tasks");
    assert_eq!(code, Some(0), "{tasks}");
    assert_eq!(tasks.as_array().map(Vec::len), Some(1), "{tasks}");
}

// Where the user data dir is comes from XDG_DATA_HOME on Linux only.
#[cfg(target_os = "linux")]
#[test]
fn the_default_database_is_created_on_first_use() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    let home = sb.path().join("home");
    let out = sb
        .airlock(["tasks"])
        .env_remove("AIRLOCK_DB")
        .env_remove("AIRLOCK_EFFECTS_DB")
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join("data"))
        .output()
        .expect("tasks");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("no tasks yet"), "{}", text(&out));
    assert!(home.join("data/airlock/airlock.sqlite").exists());
}
