//! `airlock rate`, `airlock metrics` and `airlock review` through the real binary, over
//! tasks of the approve-payout example: one small payout (no approval), one approved,
//! one rejected, one whose held call was approved with a changed amount, one still
//! waiting; one rated.

use std::path::PathBuf;

use airlock_tests::{Sandbox, text};
use serde_json::Value;

fn payout() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../workspace/examples/approve-payout.toml")
}

const PEOPLE: &str = r#"
[identities.carol]
roles = ["controller"]
[identities.alice]
roles = ["operator"]
"#;

/// Starts a payout as alice; its exit code and the task's id.
fn run_payout(sb: &Sandbox, amount: u32) -> (Option<i32>, String) {
    let (code, task) = sb
        .json([
            "run".as_ref(),
            payout().as_os_str(),
            "-i".as_ref(),
            format!("amount={amount}").as_ref(),
            "-i".as_ref(),
            "payee=Ada".as_ref(),
            "--as".as_ref(),
            "alice".as_ref(),
        ])
        .expect("run");
    (code, task["id"].as_str().expect("a task id").to_owned())
}

/// The id of the one approval waiting for `task`.
fn pending_of(sb: &Sandbox, task: &str) -> String {
    let (code, approvals) = sb.json(["approvals"]).expect("approvals");
    assert_eq!(code, Some(0));
    let mine: Vec<_> = approvals
        .as_array()
        .expect("a list")
        .iter()
        .filter(|a| a["task_id"] == task)
        .collect();
    assert_eq!(mine.len(), 1, "{approvals}");
    mine[0]["id"].as_str().expect("id").to_owned()
}

fn approve(sb: &Sandbox, approval: &str, extra: &[&str]) -> Option<i32> {
    let mut args = vec!["approve", approval, "--as", "carol"];
    args.extend_from_slice(extra);
    sb.json(args).expect("approve").0
}

#[test]
fn ratings_metrics_and_the_review_tell_what_happened() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    sb.write("identities.toml", PEOPLE).expect("write");

    // 50: no checkpoint, paid at once.
    let (code, small) = run_payout(&sb, 50);
    assert_eq!(code, Some(0));
    // 500: the workflow's checkpoint, approved.
    let (code, approved) = run_payout(&sb, 500);
    assert_eq!(code, Some(5));
    assert_eq!(approve(&sb, &pending_of(&sb, &approved), &[]), Some(0));
    // 700: rejected at the checkpoint (the workflow ends cancelled).
    let (code, rejected) = run_payout(&sb, 700);
    assert_eq!(code, Some(5));
    let (code, _) = sb
        .json([
            "reject",
            &pending_of(&sb, &rejected),
            "--as",
            "carol",
            "--reason",
            "not this vendor",
        ])
        .expect("reject");
    assert_eq!(code, Some(4));
    // 20000: the checkpoint, then the policy holds the call itself; carol approves it
    // with a smaller amount (an override).
    let (code, edited) = run_payout(&sb, 20000);
    assert_eq!(code, Some(5));
    assert_eq!(approve(&sb, &pending_of(&sb, &edited), &[]), Some(5));
    let edit = r#"{"label": "payout", "amount": 9000, "payee": "Ada"}"#;
    assert_eq!(
        approve(&sb, &pending_of(&sb, &edited), &["--edit", edit]),
        Some(0)
    );
    // 600: left waiting at its checkpoint.
    let (code, waiting) = run_payout(&sb, 600);
    assert_eq!(code, Some(5));

    // Only an ended task takes a rating, and only from 1 to 5.
    let out = sb
        .airlock(["rate", &waiting, "4", "--as", "alice"])
        .output()
        .expect("rate");
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    assert!(text(&out).contains("cannot be rated"), "{}", text(&out));
    let out = sb
        .airlock(["rate", &approved, "6", "--as", "alice"])
        .output()
        .expect("rate");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("a rating is a whole number from 1 to 5, not 6"),
        "{}",
        text(&out)
    );
    let (code, rated) = sb
        .json([
            "rate",
            &approved[..8],
            "2",
            "--comment",
            "slow",
            "--as",
            "alice",
        ])
        .expect("rate");
    assert_eq!(code, Some(0), "{rated}");
    // Rated again: the newest rating counts.
    let (code, rated) = sb
        .json([
            "rate",
            &approved,
            "4",
            "--comment",
            "fine after all",
            "--as",
            "alice",
        ])
        .expect("rate");
    assert_eq!(code, Some(0), "{rated}");
    assert_eq!(
        (rated["rating"].as_i64(), rated["rated_by"].as_str()),
        (Some(4), Some("alice"))
    );
    let (_, entries) = sb
        .json(["audit", "list", "--task", &approved])
        .expect("audit");
    let ratings: Vec<_> = entries
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["kind"] == "task_rated")
        .collect();
    assert_eq!(ratings.len(), 2, "each rating is audited: {entries}");
    assert_eq!(ratings[1]["actor"], "alice");
    assert_eq!(ratings[1]["body"]["rating"], 4);

    // Five tasks: three succeeded (small, approved, edited), one cancelled (rejected),
    // one not ended (waiting).
    let (code, m) = sb.json(["metrics"]).expect("metrics");
    assert_eq!(code, Some(0), "{m}");
    let f = &m["total"];
    let n = |v: &Value| v.as_i64().unwrap_or(-1);
    assert_eq!(
        [
            &f["tasks"],
            &f["succeeded"],
            &f["failed"],
            &f["cancelled"],
            &f["open"]
        ]
        .map(n),
        [5, 3, 0, 1, 1],
        "{m}"
    );
    assert_eq!(f["completion_rate"], 0.75);
    assert_eq!(f["exceptions"]["tasks"], 0);
    assert_eq!((n(&f["tool_calls"]), n(&f["duplicate_actions"])), (3, 0));
    // Checkpoints of approved, rejected, edited and waiting, and edited's held call.
    let a = &f["approvals"];
    assert_eq!(
        [
            &a["requested"],
            &a["approved"],
            &a["rejected"],
            &a["expired"],
            &a["pending"],
            &a["edited"]
        ]
        .map(n),
        [5, 3, 1, 0, 1, 1],
        "{m}"
    );
    assert_eq!(a["approval_rate"], 0.75);
    assert_eq!(a["rejection_rate"], 0.25);
    let override_rate = a["override_rate"].as_f64().unwrap_or_default();
    assert!((override_rate - 1.0 / 3.0).abs() < 1e-9, "{m}");
    assert_eq!(a["time_to_decision"]["count"], 4);
    assert_eq!(f["corrections"]["total"], 2, "one edit and one rejection");
    assert_eq!(f["satisfaction"]["ratings"], 1);
    assert_eq!(f["satisfaction"]["mean"], 4.0);
    assert_eq!(f["checks"]["runs"], 0);
    assert_eq!(f["checks"]["pass_rate"], Value::Null);
    assert_eq!(f["wall_time"]["count"], 4);
    assert_eq!(f["cost"]["usd"], 0.0, "no model turns");
    assert_eq!(m["workflows"][0]["workflow"], "approve-payout");

    let (_, by_day) = sb.json(["metrics", "--by", "day"]).expect("metrics");
    let per_day: i64 = by_day["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| n(&b["tasks"]))
        .sum();
    assert_eq!(per_day, 5);
    let (_, later) = sb
        .json([
            "metrics",
            "--since",
            "2999-01-01",
            "--workflow",
            "approve-payout",
        ])
        .expect("metrics");
    assert_eq!(later["total"]["tasks"], 0);
    let out = sb
        .airlock(["metrics", "--since", "last tuesday"])
        .output()
        .expect("metrics");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let out = sb.airlock(["metrics"]).output().expect("metrics");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out).contains("completion        75.0% (3 of 4 ended tasks succeeded"),
        "{}",
        text(&out)
    );

    // The corrections proposed lessons: the rejection's reason, the edit, the low rating
    // with its comment. carol accepts the first in her words and dismisses the last.
    let (_, lessons) = sb
        .json(["lessons", "list", "--status", "proposed"])
        .expect("lessons");
    let of = |source: &str| {
        lessons
            .as_array()
            .expect("a list")
            .iter()
            .find(|l| l["source"] == source)
            .unwrap_or_else(|| panic!("a {source} lesson in {lessons}"))["id"]
            .as_str()
            .expect("id")
            .to_owned()
    };
    let (from_rejection, from_edit, from_rating) = (of("rejection"), of("edit"), of("low_rating"));
    let (code, _) = sb
        .json([
            "lessons",
            "accept",
            &from_rejection,
            "--text",
            "Check the vendor is approved first",
            "--as",
            "carol",
        ])
        .expect("accept");
    assert_eq!(code, Some(0));
    let (code, _) = sb
        .json(["lessons", "dismiss", &from_rating, "--as", "carol"])
        .expect("dismiss");
    assert_eq!(code, Some(0));

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
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect(name);
    let md = read("review.md");
    assert!(
        md.starts_with("# Airlock review, since 2000-01-01\n"),
        "{md}"
    );
    for expected in [
        "## Figures",
        "- **completion**: 75.0% (3 of 4 ended tasks succeeded",
        "- **overrides**: 1 approved with changed arguments (33.3% of approvals)",
        "## Failure modes",
        "## Overrides",
        "carol approved `builtin.record`",
        "held by rule \"large payouts need a controller\"",
        "`amount: 20000.0 → 9000`",
        "## Exceptions\n\nNone",
        "## Lessons\n\n3 proposed, 1 accepted and 1 dismissed in the period",
        "### Proposed",
        &format!(
            "from a rejection with a reason in task {} (approve-payout) (since accepted by carol) `{from_rejection}`: “Check the vendor is approved first”",
            &rejected[..8]
        ),
        &format!(
            "from an approver's edit in task {} (approve-payout) (waiting for review) `{from_edit}`",
            &edited[..8]
        ),
        "### Accepted",
        &format!(
            "accepted by carol, from a rejection with a reason in task {} (approve-payout) `{from_rejection}`: “Check the vendor is approved first”",
            &rejected[..8]
        ),
        "### Dismissed",
        &format!(
            "dismissed by carol, from a low rating in task {} (approve-payout) `{from_rating}`: “alice rated a finished task 2/5: slow”",
            &approved[..8]
        ),
        "## Suggested policy changes\n\nNone",
    ] {
        assert!(md.contains(expected), "{expected:?} missing from:\n{md}");
    }
    assert!(md.contains(&edited[..8]), "the override names its task");

    let html = read("review.html");
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(
        html.contains("<code>amount: 20000.0 → 9000</code>"),
        "{html}"
    );
    assert!(
        !html.contains("http") && !html.contains("<script") && !html.contains("<link"),
        "self-contained: {html}"
    );

    let csv = read("metrics.csv");
    let mut lines = csv.lines();
    let header: Vec<_> = lines.next().expect("header").split(',').collect();
    let total: Vec<_> = lines.next().expect("total").split(',').collect();
    let col = |name: &str| {
        let i = header.iter().position(|h| *h == name).expect(name);
        total[i]
    };
    assert_eq!(
        (
            col("scope"),
            col("tasks"),
            col("overrides"),
            col("approval_rate")
        ),
        ("total", "5", "1", "0.7500")
    );
    assert!(csv.contains("\nworkflow,approve-payout,5,"), "{csv}");
    assert_eq!(
        (
            col("lessons_proposed"),
            col("lessons_accepted"),
            col("lessons_dismissed")
        ),
        ("3", "1", "1")
    );

    // A period in which nothing happened has no lessons either.
    let empty = sb.path().join("empty-review");
    let out = sb
        .airlock([
            "review".as_ref(),
            "--since".as_ref(),
            "2000-01-01".as_ref(),
            "--until".as_ref(),
            "2000-01-07".as_ref(),
            "--out".as_ref(),
            empty.as_os_str(),
        ])
        .output()
        .expect("review");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let md = std::fs::read_to_string(empty.join("review.md")).expect("review.md");
    assert!(
        md.contains(
            "## Lessons\n\nNone: no lesson was proposed, accepted or dismissed in this period."
        ),
        "{md}"
    );

    let out = sb
        .airlock(["review".as_ref(), "--out".as_ref(), dir.as_os_str()])
        .output()
        .expect("review");
    assert_eq!(
        out.status.code(),
        Some(3),
        "a review needs --since: {}",
        text(&out)
    );
    let _ = (small, rejected);
}
