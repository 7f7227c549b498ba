//! How the real binary fails: acting on something no longer in a state that allows it
//! is a refusal (exit 8), not an error of Airlock's (1).

use std::path::PathBuf;

use airlock_tests::{Sandbox, text};

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
