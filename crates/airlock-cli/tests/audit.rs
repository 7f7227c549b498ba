//! `airlock audit`: the real binary runs the approve-payout example through an approval,
//! the audit log holds who did what, and after the SQLite file is tampered with,
//! `airlock audit verify` names the changed and the deleted entry and exits 7.

use std::path::PathBuf;

use airlock_tests::Sandbox;
use serde_json::Value;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};

fn payout() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../workspace/examples/approve-payout.toml")
}

fn verify(sb: &Sandbox) -> (Option<i32>, String) {
    let out = sb
        .airlock(["audit", "verify"])
        .output()
        .expect("audit verify");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn tamper(sb: &Sandbox, sql: &str) {
    let mut conn = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(sb.db()))
        .await
        .expect("connect");
    let done = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .expect("tamper");
    assert_eq!(done.rows_affected(), 1, "{sql}");
    conn.close().await.expect("close");
}

#[tokio::test]
async fn verify_names_a_changed_and_a_deleted_entry() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    let (code, task) = sb
        .json([
            "run".as_ref(),
            payout().as_os_str(),
            "-i".as_ref(),
            "amount=500".as_ref(),
            "-i".as_ref(),
            "payee=Ada".as_ref(),
            "--as".as_ref(),
            "alice".as_ref(),
        ])
        .expect("run");
    assert_eq!(code, Some(5), "waits for approval: {task}");
    let task_id = task["id"].as_str().expect("task id").to_owned();
    let (_, approvals) = sb.json(["approvals"]).expect("approvals");
    let approval = approvals[0]["id"].as_str().expect("approval id").to_owned();
    let (code, _) = sb
        .json(["approve", &approval, "--as", "controller"])
        .expect("approve");
    assert_eq!(code, Some(0));

    let (code, out) = verify(&sb);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("audit log intact: "), "{out}");
    let (_, report) = sb.json(["audit", "verify"]).expect("verify --json");
    let anchor = report["anchor"].as_str().expect("anchor").to_owned();
    assert!(
        out.contains(&format!("airlock audit verify --expect {anchor}")),
        "{out}"
    );
    let last = report["head_seq"].as_i64().expect("head seq");

    // The last entry is cut off: the chain alone is intact, the kept head says otherwise.
    tamper(&sb, &format!("DELETE FROM audit_log WHERE seq = {last}")).await;
    let (code, out) = verify(&sb);
    assert_eq!(code, Some(0), "{out}");
    let out = sb
        .airlock(["audit", "verify", "--expect", &anchor])
        .output()
        .expect("verify --expect");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(7), "{text}");
    assert!(
        text.contains(&format!(
            "entries from {last} on are gone: the log ends at {}, but it held entry {last}",
            last - 1
        )),
        "{text}"
    );

    let (code, entries) = sb
        .json(["audit", "list", "--task", &task_id[..8]])
        .expect("audit list");
    assert_eq!(code, Some(0));
    let entries = entries.as_array().expect("entries").clone();
    let who: Vec<(&str, &str)> = entries
        .iter()
        .filter_map(|e| Some((e["kind"].as_str()?, e["actor"].as_str()?)))
        .filter(|(kind, _)| matches!(*kind, "created" | "approval_decided"))
        .collect();
    assert_eq!(
        who,
        [("created", "alice"), ("approval_decided", "controller")]
    );
    // Bookkeeping events are not audited; the call and its outcome are.
    let kinds: Vec<&str> = entries.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(!kinds.contains(&"step_started"), "{kinds:?}");
    assert!(kinds.contains(&"tool_called") && kinds.contains(&"tool_returned"));
    let seq_of = |kind: &str| {
        entries
            .iter()
            .find(|e| e["kind"] == kind)
            .and_then(|e| e["seq"].as_i64())
            .expect("entry")
    };
    let decided = seq_of("approval_decided");
    let called = seq_of("tool_called");

    // Someone rewrites who approved.
    tamper(
        &sb,
        &format!(
            "UPDATE audit_log SET body = replace(body, 'controller', 'mallory') WHERE seq = {decided}"
        ),
    )
    .await;
    let (code, out) = verify(&sb);
    assert_eq!(code, Some(7), "{out}");
    let short = &task_id[..8];
    assert!(
        out.contains(&format!(
            "entry {decided} (approval_decided, task {short}, "
        )) && out.contains("was changed: its hash does not match its contents"),
        "{out}"
    );

    // And deletes the call.
    tamper(&sb, &format!("DELETE FROM audit_log WHERE seq = {called}")).await;
    let (code, out) = verify(&sb);
    assert_eq!(code, Some(7), "{out}");
    assert!(
        out.contains(&format!(
            "entry {called} is missing: the chain jumps from {} to {}",
            called - 1,
            called + 1
        )),
        "{out}"
    );

    let (code, report) = sb.json(["audit", "verify"]).expect("verify --json");
    assert_eq!(code, Some(7));
    assert_eq!(report["intact"], Value::Bool(false));
    let faults: Vec<(i64, &str)> = report["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| Some((p["seq"].as_i64()?, p["fault"]["fault"].as_str()?)))
        .collect();
    assert!(faults.contains(&(decided, "changed")), "{faults:?}");
    assert!(faults.contains(&(called, "missing")), "{faults:?}");
}
