//! `airlock history`: the real binary over a database the real seeder filled (300 calls in
//! the pattern `history_seed::SeedPlan` documents): filters, the table, `--json`, the CSV
//! file, an empty result and a bad filter value.

use std::process::Command;

use airlock_tests::Sandbox;

/// Seeds 300 calls into the sandbox's database, the newest task at 2026-11-23 00:00 UTC.
fn seeded() -> Sandbox {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    let out = Command::new(env!("CARGO_BIN_EXE_airlock-seed-history"))
        .args(["--calls", "300", "--newest-at", "1795392000000", "--db"])
        .arg(sb.db())
        .output()
        .expect("seeder");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sb
}

fn text(sb: &Sandbox, args: &[&str]) -> (Option<i32>, String, String) {
    let out = sb.airlock(args).output().expect("airlock history");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn filters_table_json_and_csv() {
    let sb = seeded();

    // Failed calls to erp's tools: calls 57 and 207 (i % 50 == 7 fails call 7 of its task,
    // which only a payout, tasks 5 and 20, makes to erp).
    let (code, v) = sb
        .json(["history", "--server", "erp", "--outcome", "failed"])
        .expect("json");
    assert_eq!(code, Some(0));
    assert_eq!(v["total"], 2, "{v}");
    let ids: Vec<&str> = v["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .map(|c| c["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [format!("c{:031x}", 207), format!("c{:031x}", 57)]);
    assert_eq!(v["calls"][0]["server"], "erp");
    assert_eq!(v["calls"][0]["outcome"], "failed");

    // Approved by dan: tasks 4, 12, 20 and 28 (k = 3, n % 4 == 0, (n / 4) % 2 == 1).
    let (_, v) = sb
        .json([
            "history",
            "--approved-by",
            "dan",
            "--allowed-by",
            "approval",
        ])
        .expect("json");
    assert_eq!(v["total"], 4, "{v}");
    assert_eq!(v["calls"][0]["allowed"]["approver"], "dan");

    // The table: a header, the newest calls first, and how many there are in all.
    let (code, out, _) = text(&sb, &["history", "--limit", "3"]);
    assert_eq!(code, Some(0));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("TIME (UTC)"), "{out}");
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[1].starts_with("2026-11-23 00:00:18.000"), "{out}");
    assert!(lines[4].starts_with("3 of 300 call(s)"), "{out}");

    // All the calls of one workflow as CSV, with a header.
    let csv = sb.path().join("payout.csv");
    let (code, _, err) = text(
        &sb,
        &[
            "history",
            "--workflow",
            "payout",
            "--csv",
            csv.to_str().expect("path"),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("100 call(s) written"), "{err}");
    let written = std::fs::read_to_string(&csv).expect("csv");
    let rows: Vec<&str> = written.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 101);
    assert!(rows[0].starts_with("intent_at,outcome_at,call_id,task_id,workflow,"));
    assert!(
        rows[1..].iter().all(|r| r.contains(",payout,")),
        "{written}"
    );

    // Refused calls (SeedPlan::refused_by): 23 and 223 held and rejected by dan, 76 and 276
    // denied by a rule. Each says what refused it, in JSON, in the table and in the CSV.
    let (code, v) = sb.json(["history", "--outcome", "refused"]).expect("json");
    assert_eq!(code, Some(0));
    assert_eq!(v["total"], 4, "{v}");
    let (_, v) = sb
        .json(["history", "--refused-by", "person"])
        .expect("json");
    assert_eq!(v["total"], 2, "{v}");
    assert_eq!(v["calls"][0]["id"], format!("c{:031x}", 223));
    assert_eq!(v["calls"][0]["outcome"], "refused");
    assert_eq!(v["calls"][0]["refusal"]["by"], "person");
    assert_eq!(v["calls"][0]["refusal"]["rejected_by"], "dan");
    assert_eq!(v["calls"][0]["allowed"], serde_json::Value::Null);
    let (code, out, _) = text(&sb, &["history", "--refused-by", "policy", "--limit", "1"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("refused") && out.contains("denied by rule “no writes for closed accounts”"),
        "{out}"
    );
    let (_, out, _) = text(&sb, &["history", "--refused-by", "person", "--limit", "1"]);
    assert!(
        out.contains("rejected by dan (rule “new accounts need IT”)"),
        "{out}"
    );
    let refused_csv = sb.path().join("refused.csv");
    let (code, _, err) = text(
        &sb,
        &[
            "history",
            "--refused-by",
            "person",
            "--csv",
            refused_csv.to_str().expect("path"),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let written = std::fs::read_to_string(&refused_csv).expect("csv");
    let rows: Vec<&str> = written.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 3, "{written}");
    assert!(
        rows[1].contains(",refused,,person,new accounts need IT,,dan,"),
        "{written}"
    );
    let (code, _, err) = text(&sb, &["history", "--refused-by", "someone"]);
    assert_eq!(code, Some(3));
    assert!(err.contains("`someone` is not a refusal"), "{err}");

    // Nothing matches: said in words.
    let (code, out, _) = text(&sb, &["history", "--tool", "erp.nothing"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.trim(), "no tool calls match these filters");

    // A bad value names what is allowed.
    let (code, _, err) = text(&sb, &["history", "--outcome", "maybe"]);
    assert_eq!(code, Some(3));
    assert!(err.contains("`maybe` is not an outcome"), "{err}");
}

#[test]
fn an_empty_database_says_how_calls_get_there() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    // A task created but not run: a database with no calls in it.
    let workflow = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../workspace/examples/echo-and-record.toml"
    );
    let (code, _, err) = text(&sb, &["run", workflow, "-i", "who=Ada", "--detach"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, _) = text(&sb, &["history"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("no tool calls yet"), "{out}");
}
