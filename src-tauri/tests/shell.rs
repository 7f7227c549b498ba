//! Boundary tests of the desktop shell: the app boots on Tauri's mock runtime through the
//! same `run_app` as the binary, opens a real engine on a temp SQLite file, and answers
//! commands over real IPC (with the real config and capabilities); the change feed reaches
//! the window; and the committed TypeScript bindings match the Rust wire types.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock_desktop::locations::{ConfigFiles, LocationError, Locations};
use airlock_desktop::wire::{AppInfo, ErrorCode};
use serde_json::{Value, json};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{INVOKE_KEY, get_ipc_response, mock_builder};
use tauri::webview::InvokeRequest;
use tauri::{App, Listener, WebviewWindow, WebviewWindowBuilder, test::MockRuntime};

const PAYOUT: &str = include_str!("../../workspace/examples/approve-payout.toml");
const POLICY: &str = include_str!("../../workspace/examples/policy.toml");

fn boot(
    locations: Result<Locations, LocationError>,
) -> (App<MockRuntime>, WebviewWindow<MockRuntime>) {
    let app = airlock_desktop::run_app_with(mock_builder(), locations)
        .build(tauri::generate_context!("../tauri.conf.json"))
        .expect("the app builds on the mock runtime");
    // What the binary's `setup` hook does; the mock runtime has no event loop to run it.
    airlock_desktop::start_engine(app.handle());
    let window = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .expect("the main window opens");
    (app, window)
}

/// A temp database and a workspace holding the approve-payout example, its policy and
/// one broken file.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Self::with_policy(POLICY, None)
    }

    /// A sandbox whose workspace has this policy, and this identities file if given.
    fn with_policy(policy: &str, identities: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let workspace = dir.path().join("workspace");
        std::fs::create_dir_all(&workspace).expect("workspace dir");
        std::fs::write(workspace.join("approve-payout.toml"), PAYOUT).expect("workflow");
        std::fs::write(workspace.join("policy.toml"), policy).expect("policy");
        if let Some(identities) = identities {
            std::fs::write(workspace.join("identities.toml"), identities).expect("identities");
        }
        std::fs::write(
            workspace.join("broken.toml"),
            "name = \"broken\"\nstart = \"nowhere\"\n",
        )
        .expect("broken workflow");
        Self { dir }
    }

    fn policy_file(&self) -> PathBuf {
        self.dir.path().join("workspace/policy.toml")
    }

    fn locations(&self) -> Locations {
        Locations {
            data_dir: self.dir.path().join("data"),
            database_path: self.dir.path().join("data/airlock.sqlite"),
            workspace_path: Some(self.dir.path().join("workspace")),
            files: ConfigFiles::default(),
        }
    }
}

fn invoke_with(
    window: &WebviewWindow<MockRuntime>,
    cmd: &str,
    args: Value,
) -> Result<Value, Value> {
    let request = InvokeRequest {
        cmd: cmd.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: "tauri://localhost".parse().expect("static url"),
        body: InvokeBody::Json(args),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    };
    get_ipc_response(window, request).map(|body| body.deserialize::<Value>().expect("a JSON reply"))
}

fn invoke(window: &WebviewWindow<MockRuntime>, cmd: &str) -> Result<Value, Value> {
    invoke_with(window, cmd, json!({}))
}

/// Asks `cmd` until `done` holds for its answer (the engine runs tasks in the background).
fn wait_for(
    window: &WebviewWindow<MockRuntime>,
    cmd: &str,
    args: Value,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = invoke_with(window, cmd, args.clone()).expect("the command succeeds");
        if done(&reply) {
            return reply;
        }
        assert!(Instant::now() < deadline, "{cmd} never got there: {reply}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_payout(window: &WebviewWindow<MockRuntime>, amount: f64) -> String {
    let started = invoke_with(
        window,
        "start_task",
        json!({"workflow": "approve-payout", "inputs": {"amount": amount, "payee": "Ada"}}),
    )
    .expect("start_task succeeds");
    started["task_id"].as_str().expect("a task id").to_owned()
}

fn pending(inbox: &Value) -> usize {
    inbox["approvals"].as_array().map_or(0, Vec::len)
}

fn answer(window: &WebviewWindow<MockRuntime>, id: &Value, answer: Value) -> Result<Value, Value> {
    invoke_with(
        window,
        "answer_approval",
        json!({"id": id, "answer": answer}),
    )
}

/// Starts a payout above the checkpoint's threshold, approves the checkpoint, and answers
/// the approval that comes next: the call the policy holds.
fn held_payout(window: &WebviewWindow<MockRuntime>, amount: f64) -> (String, Value) {
    let task_id = start_payout(window, amount);
    let checkpoint = wait_for(window, "list_approvals", json!({}), |inbox| {
        inbox["approvals"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["task_id"] == task_id.as_str()))
    });
    let checkpoint = checkpoint["approvals"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["task_id"] == task_id.as_str()))
        .expect("the checkpoint")
        .clone();
    assert_eq!(checkpoint["held"], Value::Null);
    answer(
        window,
        &checkpoint["id"],
        json!({"kind": "approve", "reason": null}),
    )
    .expect("the checkpoint is approved");
    let held = wait_for(window, "list_approvals", json!({}), |inbox| {
        inbox["approvals"].as_array().is_some_and(|a| {
            a.iter()
                .any(|a| a["task_id"] == task_id.as_str() && a["held"].is_object())
        })
    });
    let held = held["approvals"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|a| a["task_id"] == task_id.as_str() && a["held"].is_object())
        })
        .expect("the held call")
        .clone();
    (task_id, held)
}

fn summaries(detail: &Value) -> Vec<String> {
    detail["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["summary"].as_str().expect("a summary").to_owned())
        .collect()
}

#[test]
fn app_info_reports_version_and_locations_over_ipc() {
    let sandbox = Sandbox::new();
    let locations = sandbox.locations();
    let (_app, window) = boot(Ok(locations.clone()));

    let reply = invoke(&window, "app_info").expect("app_info succeeds");
    let expected = AppInfo::new(env!("CARGO_PKG_VERSION"), &locations);
    assert_eq!(
        reply,
        serde_json::to_value(&expected).expect("serializable")
    );
    assert_eq!(reply["database_path"], path_json(&locations.database_path));
    assert_eq!(
        reply["workspace_path"],
        path_json(&sandbox.dir.path().join("workspace"))
    );
    assert_eq!(reply["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn app_info_names_the_folder_beside_the_database_it_uses() {
    let sandbox = Sandbox::new();
    // As with AIRLOCK_DB: the database lives outside the OS data dir, which nothing reads.
    let locations = Locations {
        database_path: sandbox.dir.path().join("elsewhere/airlock.sqlite"),
        ..sandbox.locations()
    };
    let (_app, window) = boot(Ok(locations));

    let reply = invoke(&window, "app_info").expect("app_info succeeds");
    assert_eq!(
        reply["data_dir"],
        path_json(&sandbox.dir.path().join("elsewhere"))
    );
}

#[test]
fn app_info_without_a_data_location_explains_itself() {
    let (_app, window) = boot(Err(LocationError::NoDataDir));

    let error = invoke(&window, "app_info").expect_err("app_info fails");
    assert_eq!(
        error["code"],
        serde_json::to_value(ErrorCode::NotConfigured).expect("code")
    );
    assert_eq!(error["code"], "not_configured");
    let message = error["message"].as_str().expect("a message string");
    assert!(
        message.contains("AIRLOCK_DB"),
        "the message names the fix: {message}"
    );
    // The engine commands say the same instead of hanging.
    let error = invoke(&window, "list_tasks").expect_err("list_tasks fails");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("AIRLOCK_DB")),
        "{error}"
    );
}

#[test]
fn an_engine_that_cannot_open_is_explained_and_the_window_still_answers() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The database's folder is a file, so the store cannot be created.
    std::fs::write(dir.path().join("blocked"), "not a folder").expect("file");
    let locations = Locations {
        data_dir: dir.path().to_path_buf(),
        database_path: dir.path().join("blocked/airlock.sqlite"),
        workspace_path: None,
        files: ConfigFiles::default(),
    };
    let (_app, window) = boot(Ok(locations));

    let error = invoke(&window, "list_approvals").expect_err("the engine is unavailable");
    assert_eq!(error["code"], "engine_unavailable");
    let message = error["message"].as_str().expect("a message");
    assert!(
        message.starts_with("Airlock could not open its engine") && message.contains("blocked"),
        "the message says what and where: {message}"
    );
    assert!(
        invoke(&window, "app_info").is_ok(),
        "app_info does not need the engine"
    );
}

#[test]
fn workflows_are_listed_with_their_inputs_and_the_files_that_do_not_validate() {
    let sandbox = Sandbox::new();
    let (_app, window) = boot(Ok(sandbox.locations()));

    let list = invoke(&window, "list_workflows").expect("list_workflows succeeds");
    let workflows = list["workflows"].as_array().expect("workflows");
    assert_eq!(workflows.len(), 1, "{list}");
    let payout = &workflows[0];
    assert_eq!(payout["name"], "approve-payout");
    assert_eq!(
        payout["inputs"],
        json!([
            {"name": "amount", "type": "number", "required": true, "default": null, "description": "How much to pay"},
            {"name": "payee", "type": "string", "required": true, "default": null, "description": null},
        ])
    );
    let problems = list["problems"].as_array().expect("problems");
    assert!(!problems.is_empty(), "the broken file is reported");
    assert!(
        problems.iter().all(|p| p["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("broken.toml"))
            && p["line"].as_u64().is_some_and(|l| l >= 1)
            && !p["message"].as_str().unwrap_or_default().is_empty()),
        "{problems:?}"
    );
}

#[test]
fn a_task_waits_for_approval_and_finishes_once_approved_with_changes_on_the_feed() {
    let sandbox = Sandbox::new();
    let (app, window) = boot(Ok(sandbox.locations()));
    let changes = Arc::new(Mutex::new(Vec::<Value>::new()));
    {
        let changes = changes.clone();
        app.listen("task-changed", move |event| {
            let change: Value = serde_json::from_str(event.payload()).expect("JSON payload");
            changes.lock().expect("lock").push(change);
        });
    }

    let task_id = start_payout(&window, 250.0);
    let inbox = wait_for(&window, "list_approvals", json!({}), |i| pending(i) == 1);
    let approval = &inbox["approvals"][0];
    assert_eq!(approval["held"], Value::Null, "a checkpoint holds no call");
    assert_eq!(approval["task_id"], task_id.as_str());
    assert_eq!(approval["workflow"], "approve-payout");
    assert_eq!(approval["prompt"], "Pay 250 to Ada?");
    assert_eq!(approval["approvers"], json!(["controller"]));
    assert_eq!(approval["state"], "pending");
    let requested = approval["requested_at"].as_i64().expect("a number");
    assert_eq!(
        approval["expires_at"].as_i64(),
        Some(requested + 2 * 24 * 3600 * 1000)
    );

    let waiting = invoke_with(&window, "list_tasks", json!({"status": "waiting_approval"}))
        .expect("list_tasks succeeds");
    assert_eq!(waiting.as_array().map(Vec::len), Some(1));
    assert_eq!(waiting[0]["current_state"], "approve");

    let after = answer(
        &window,
        &approval["id"],
        json!({"kind": "approve", "reason": "within budget"}),
    )
    .expect("answer_approval succeeds");
    assert_eq!(after["outcome"], "decided");
    assert_eq!(after["task"]["id"], task_id.as_str());

    let detail = wait_for(&window, "task_detail", json!({"id": task_id}), |d| {
        d["task"]["status"] == "succeeded"
    });
    let me = airlock_engine::os_user();
    let lines = summaries(&detail);
    assert!(
        lines.contains(&format!("Approved by {me} (within budget); next: pay")),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"Ended succeeded at done".to_owned()),
        "{lines:#?}"
    );
    assert_eq!(detail["inputs"], json!({"amount": 250.0, "payee": "Ada"}));
    assert_eq!(detail["tool_calls"][0]["tool"], "builtin.record");
    assert_eq!(detail["tool_calls"][0]["outcome"], "succeeded");
    assert_eq!(detail["approvals"][0]["state"], "approved");
    assert_eq!(detail["approvals"][0]["decided_by"], me.as_str());
    assert!(
        detail["outputs"]["pay"].is_object(),
        "{}",
        detail["outputs"]
    );

    // Every status the task went through reached the window, in order, ending in success.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = changes.lock().expect("lock").clone();
        let statuses: Vec<&str> = seen
            .iter()
            .filter(|c| c["task_id"] == task_id.as_str())
            .filter_map(|c| c["status"].as_str())
            .collect();
        if statuses.last() == Some(&"succeeded") {
            assert!(statuses.contains(&"waiting_approval"), "{statuses:?}");
            let seqs: Vec<i64> = seen.iter().filter_map(|c| c["seq"].as_i64()).collect();
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the feed never said succeeded: {statuses:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        invoke(&window, "list_approvals").expect("list_approvals")["approvals"],
        json!([])
    );
}

#[test]
fn a_rejected_approval_cancels_the_task_and_cannot_be_decided_twice() {
    let sandbox = Sandbox::new();
    let (_app, window) = boot(Ok(sandbox.locations()));

    let task_id = start_payout(&window, 900.0);
    let inbox = wait_for(&window, "list_approvals", json!({}), |i| pending(i) == 1);
    let id = inbox["approvals"][0]["id"].clone();
    answer(
        &window,
        &id,
        json!({"kind": "reject", "reason": "payee unknown"}),
    )
    .expect("the rejection is recorded");
    let detail = wait_for(&window, "task_detail", json!({"id": task_id}), |d| {
        d["task"]["status"] == "cancelled"
    });
    assert_eq!(detail["approvals"][0]["state"], "rejected");
    assert_eq!(detail["approvals"][0]["reason"], "payee unknown");
    assert_eq!(detail["tool_calls"], json!([]), "nothing was paid");

    let again = answer(&window, &id, json!({"kind": "approve", "reason": null}))
        .expect_err("a decided approval cannot be decided again");
    assert_eq!(again["code"], "conflict");
    assert!(
        again["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("was already decided.")),
        "{again}"
    );
}

#[test]
fn bad_requests_are_refused_in_words() {
    let sandbox = Sandbox::new();
    let (_app, window) = boot(Ok(sandbox.locations()));

    let wrong = invoke_with(
        &window,
        "start_task",
        json!({"workflow": "approve-payout", "inputs": {"amount": "lots"}}),
    )
    .expect_err("wrong inputs are refused");
    assert_eq!(wrong["code"], "invalid_input");
    let message = wrong["message"].as_str().expect("a message");
    assert!(
        message.contains("`amount`") && message.contains("`payee` is required"),
        "every problem is named: {message}"
    );

    let unknown = invoke_with(
        &window,
        "start_task",
        json!({"workflow": "no-such-flow", "inputs": {}}),
    )
    .expect_err("an unknown workflow is refused");
    assert_eq!(unknown["code"], "not_found");
    assert!(
        unknown["message"]
            .as_str()
            .is_some_and(|m| m.contains("no-such-flow")),
        "{unknown}"
    );

    let missing = invoke_with(&window, "task_detail", json!({"id": "nope"}))
        .expect_err("an unknown task is refused");
    assert_eq!(missing["code"], "not_found");

    let servers = invoke(&window, "list_servers").expect("list_servers succeeds");
    assert_eq!(servers, json!({"servers_file": null, "servers": []}));
}

/// The examples' policy, and a rule that denies very large payouts (for edits).
const POLICY_WITH_CEILING: &str = concat!(
    include_str!("../../workspace/examples/policy.toml"),
    r#"
[[rules]]
name = "no payout above a million"
tools = ["builtin.record"]
when = "args.amount > 1000000"
effect = "deny"
reason = "payouts this large go through the bank"
"#
);

#[test]
fn a_held_call_shows_what_and_why_and_is_approved_with_changed_arguments() {
    let sandbox = Sandbox::with_policy(POLICY_WITH_CEILING, None);
    let (_app, window) = boot(Ok(sandbox.locations()));
    let me = airlock_engine::os_user();

    let (task_id, approval) = held_payout(&window, 20000.0);
    let held = &approval["held"];
    assert_eq!(held["tool"], "builtin.record");
    assert_eq!(
        held["args"],
        json!({"label": "payout", "amount": 20000.0, "payee": "Ada"})
    );
    assert_eq!(held["risk"], "medium", "{held}");
    assert_eq!(held["rule"], "large payouts need a controller");
    assert_eq!(held["condition"], "args.amount > 10000");
    assert!(
        held["seen"]
            .as_array()
            .is_some_and(|seen| seen.contains(&json!({"path": "args.amount", "value": 20000.0}))),
        "the values the rule saw: {held}"
    );
    assert_eq!(held["condition_error"], Value::Null);
    assert_eq!(held["requester"], me.as_str());
    assert_eq!(held["approvals_needed"], 1);
    assert_eq!(held["votes"], json!([]));
    assert_eq!(held["four_eyes"], false);
    assert_eq!(approval["approvers"], json!(["controller"]));
    assert!(approval["expires_at"].is_i64());
    let inbox = invoke(&window, "list_approvals").expect("list_approvals");
    assert_eq!(inbox["acting_as"]["name"], me.as_str());

    // An edit the schema refuses, and one the policy denies, leave it waiting.
    let id = &approval["id"];
    let refused = answer(
        &window,
        id,
        json!({"kind": "approve_edited", "args": {"label": 5, "amount": 900.0, "payee": "Ada"}, "reason": null}),
    )
    .expect_err("the schema refuses a number for a label");
    assert_eq!(refused["code"], "invalid_input");
    let message = refused["message"].as_str().expect("a message");
    assert!(
        message.starts_with("The edited call cannot be approved: the arguments do not match the input schema of `builtin.record`"),
        "{message}"
    );
    let denied = answer(
        &window,
        id,
        json!({"kind": "approve_edited", "args": {"label": "payout", "amount": 2000000.0, "payee": "Ada"}, "reason": null}),
    )
    .expect_err("the policy denies the edit");
    assert_eq!(denied["code"], "invalid_input");
    assert_eq!(
        denied["message"],
        "The edited call cannot be approved: the policy denies it (rule “no payout above a million”): payouts this large go through the bank."
    );

    let edited = json!({"label": "payout", "amount": 9000.0, "payee": "Ada"});
    let reply = answer(
        &window,
        id,
        json!({"kind": "approve_edited", "args": edited, "reason": "only the first instalment"}),
    )
    .expect("the edited call is approved");
    assert_eq!(reply["outcome"], "decided");

    let detail = wait_for(&window, "task_detail", json!({"id": task_id}), |d| {
        d["task"]["status"] == "succeeded"
    });
    assert_eq!(detail["tool_calls"][0]["args"]["amount"], 9000.0);
    let decided = &detail["approvals"][1];
    assert_eq!(decided["state"], "approved");
    assert_eq!(decided["edited_args"], edited);
    assert_eq!(
        decided["held"]["args"]["amount"], 20000.0,
        "the proposal is kept"
    );
    assert_eq!(decided["reason"], "only the first instalment");
    let lines = summaries(&detail);
    assert!(
        lines.contains(&format!(
            "The call was approved with changed arguments by {me} (only the first instalment)"
        )),
        "{lines:#?}"
    );
}

#[test]
fn four_eyes_and_missing_roles_are_refused_in_words() {
    let me = airlock_engine::os_user();
    let policy = POLICY.replace(
        "expires_after = \"24h\"",
        "expires_after = \"24h\"\nfour_eyes = true",
    );
    // This app acts as the OS user: a controller here, so it can pass the checkpoint.
    let identities = format!("[identities.{me:?}]\nroles = [\"controller\"]\n");
    let sandbox = Sandbox::with_policy(&policy, Some(&identities));
    let (_app, window) = boot(Ok(sandbox.locations()));

    let (task_id, approval) = held_payout(&window, 20000.0);
    assert_eq!(approval["held"]["four_eyes"], true);
    let refused = answer(
        &window,
        &approval["id"],
        json!({"kind": "approve", "reason": null}),
    )
    .expect_err("the requester may not approve their own call");
    assert_eq!(refused["code"], "not_allowed");
    assert_eq!(
        refused["message"],
        format!(
            "{me} asked for this call, and its rule needs four eyes: someone else must approve it."
        )
    );
    // Declining one's own call is allowed.
    answer(
        &window,
        &approval["id"],
        json!({"kind": "reject", "reason": "changed my mind"}),
    )
    .expect("the requester may reject");
    wait_for(&window, "task_detail", json!({"id": task_id}), |d| {
        d["approvals"][1]["state"] == "rejected"
    });

    // Someone without an approver role may not decide at all.
    let identities = format!("[identities.{me:?}]\nroles = [\"operator\"]\n");
    let sandbox = Sandbox::with_policy(POLICY, Some(&identities));
    let (_app, window) = boot(Ok(sandbox.locations()));
    start_payout(&window, 500.0);
    let inbox = wait_for(&window, "list_approvals", json!({}), |i| pending(i) == 1);
    assert_eq!(inbox["acting_as"]["roles"], json!(["operator"]));
    assert_eq!(inbox["acting_as"]["listed"], true);
    let refused = answer(
        &window,
        &inbox["approvals"][0]["id"],
        json!({"kind": "approve", "reason": null}),
    )
    .expect_err("an operator may not approve");
    assert_eq!(refused["code"], "not_allowed");
    assert_eq!(
        refused["message"],
        format!(
            "{me} may not decide this approval: it needs one of the roles controller ({me} has operator)."
        )
    );
}

#[test]
fn a_call_needing_two_approvers_counts_votes_and_refuses_a_second_from_the_same_person() {
    let policy = POLICY.replace(
        "expires_after = \"24h\"",
        "expires_after = \"24h\"\napprovals = 2",
    );
    let sandbox = Sandbox::with_policy(&policy, None);
    let (_app, window) = boot(Ok(sandbox.locations()));
    let me = airlock_engine::os_user();

    let (_, approval) = held_payout(&window, 20000.0);
    assert_eq!(approval["held"]["approvals_needed"], 2);
    let id = &approval["id"];
    let reply = answer(&window, id, json!({"kind": "approve", "reason": null}))
        .expect("the first approval counts");
    assert_eq!(reply["outcome"], "voted");
    assert_eq!(
        (reply["votes"].as_u64(), reply["needed"].as_u64()),
        (Some(1), Some(2))
    );
    let inbox = invoke(&window, "list_approvals").expect("list_approvals");
    let votes = &inbox["approvals"][0]["held"]["votes"];
    assert_eq!(votes[0]["voter"], me.as_str(), "{inbox}");

    let again = answer(&window, id, json!({"kind": "approve", "reason": null}))
        .expect_err("one person counts once");
    assert_eq!(again["code"], "not_allowed");
    assert_eq!(
        again["message"],
        format!("{me} has already approved this call; it needs another approver.")
    );
    let edit = answer(
        &window,
        id,
        json!({"kind": "approve_edited", "args": {"label": "payout", "amount": 1.0, "payee": "Ada"}, "reason": null}),
    )
    .expect_err("one of several approvers cannot change the call");
    assert!(
        edit["message"]
            .as_str()
            .is_some_and(|m| m.contains("it needs 2 approvers, so it cannot be changed by one")),
        "{edit}"
    );
}

#[test]
fn a_grant_made_from_an_approval_lets_the_next_call_through_until_revoked() {
    let sandbox = Sandbox::new();
    let (_app, window) = boot(Ok(sandbox.locations()));
    let me = airlock_engine::os_user();

    let (_, approval) = held_payout(&window, 20000.0);
    let grant = invoke_with(
        &window,
        "create_grant",
        json!({"grant": {
            "tool": "builtin.record",
            "workflow": "approve-payout",
            "task_id": null,
            "condition": "args.amount <= 30000",
            "max_uses": 5,
            "valid_for_minutes": 60,
            "from_approval": approval["id"],
            "note": "  ",
        }}),
    )
    .expect("the grant is made");
    assert_eq!(grant["state"], "in_force");
    assert_eq!(grant["uses"], 0);
    assert_eq!(grant["created_by"], me.as_str());
    assert_eq!(grant["note"], Value::Null, "a blank note is no note");
    let expires = grant["expires_at"].as_i64().expect("an expiry");
    let created = grant["created_at"].as_i64().expect("a creation time");
    assert_eq!(expires - created, 3_600_000);
    answer(
        &window,
        &approval["id"],
        json!({"kind": "approve", "reason": null}),
    )
    .expect("approved");

    // The next payout in scope passes the policy on the grant: only its checkpoint waits.
    let task_id = start_payout(&window, 25000.0);
    let inbox = wait_for(&window, "list_approvals", json!({}), |i| pending(i) == 1);
    answer(
        &window,
        &inbox["approvals"][0]["id"],
        json!({"kind": "approve", "reason": null}),
    )
    .expect("the checkpoint is approved");
    let detail = wait_for(&window, "task_detail", json!({"id": task_id}), |d| {
        d["task"]["status"] == "succeeded"
    });
    assert_eq!(detail["approvals"].as_array().map(Vec::len), Some(1));
    let grants = invoke(&window, "list_grants").expect("list_grants");
    assert_eq!(grants[0]["id"], grant["id"]);
    assert_eq!(grants[0]["uses"], 1);

    let revoked = invoke_with(&window, "revoke_grant", json!({"id": grant["id"]}))
        .expect("the grant is revoked");
    assert_eq!(revoked["state"], "revoked");
    assert_eq!(revoked["revoked_by"], me.as_str());
    let again = invoke_with(&window, "revoke_grant", json!({"id": grant["id"]}))
        .expect_err("a revoked grant cannot be revoked again");
    assert_eq!(again["code"], "not_found");

    // Revoked: the next payout is held again.
    held_payout(&window, 25000.0);

    let bad = invoke_with(
        &window,
        "create_grant",
        json!({"grant": {
            "tool": "builtin.record", "workflow": null, "task_id": null,
            "condition": "args.amount <=", "max_uses": null, "valid_for_minutes": null,
            "from_approval": null, "note": null,
        }}),
    )
    .expect_err("a condition that does not compile is refused");
    assert_eq!(bad["code"], "invalid_input");
    assert!(
        bad["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("The grant cannot be made")),
        "{bad}"
    );
}

#[test]
fn the_policy_in_force_is_described_and_a_refused_edit_is_explained() {
    let sandbox = Sandbox::new();
    let (_app, window) = boot(Ok(sandbox.locations()));

    let view = invoke(&window, "policy_info").expect("policy_info");
    assert_eq!(view["file"], path_json(&sandbox.policy_file()));
    assert_eq!(view["label"], "examples-1");
    let version = view["version"].as_str().expect("a version").to_owned();
    assert_eq!(version.len(), 12);
    assert_eq!(view["problems"], json!([]));
    assert_eq!(view["approver_roles_checked"], false, "no identities file");
    assert_eq!(view["identities_file"], Value::Null);
    assert_eq!(
        view["rules"][1],
        json!({
            "name": "large payouts need a controller",
            "description": null,
            "line": 12,
            "workflows": ["approve-payout"],
            "roles": [],
            "servers": [],
            "tools": ["builtin.record"],
            "risk": [],
            "when": "args.amount > 10000",
            "effect": "require_approval",
            "effect_words": "1 approval from controller; expires after 1d",
        })
    );
    assert_eq!(view["rules"][0]["effect"], "allow");

    // A broken edit is refused with its place; the version in force stays.
    std::fs::write(
        sandbox.policy_file(),
        POLICY.replace("effect = \"allow\"", "effect = \"permit\""),
    )
    .expect("edit the policy");
    std::thread::sleep(Duration::from_millis(300));
    let view = invoke(&window, "policy_info").expect("policy_info");
    assert_eq!(view["version"], version.as_str());
    let problem = &view["problems"][0];
    assert!(
        problem["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("policy.toml")),
        "{problem}"
    );
    assert_eq!(problem["line"], 10, "{problem}");
    assert!(
        problem["message"]
            .as_str()
            .is_some_and(|m| m.contains("permit")),
        "{problem}"
    );

    // A valid edit takes effect.
    std::fs::write(
        sandbox.policy_file(),
        POLICY.replace("examples-1", "examples-2"),
    )
    .expect("edit the policy");
    std::thread::sleep(Duration::from_millis(300));
    let view = invoke(&window, "policy_info").expect("policy_info");
    assert_eq!(view["label"], "examples-2");
    assert_ne!(view["version"], version.as_str());
    assert_eq!(view["problems"], json!([]));
}

/// A tool state that sleeps long enough to be cancelled while it runs.
const NAP: &str = r#"
name = "nap"
start = "nap"

[states.nap]
kind = "tool"
tool = "builtin.sleep"
args = { ms = 20000 }
next = "done"

[states.done]
kind = "end"
status = "succeeded"
"#;

/// A record whose answer comes too late: the effect is made, the call times out, and
/// `builtin.record` is not safe to repeat, so the call is in doubt.
const SLOW_RECORD: &str = r#"
name = "slow-record"
start = "record"

[states.record]
kind = "tool"
tool = "builtin.record"
args = { label = "'slow'", linger_ms = 2000 }
timeout = "100ms"
next = "done"
on_error = "failed"

[states.done]
kind = "end"
status = "succeeded"

[states.failed]
kind = "end"
status = "failed"
"#;

fn start(window: &WebviewWindow<MockRuntime>, workflow: &str, inputs: Value) -> String {
    let started = invoke_with(
        window,
        "start_task",
        json!({"workflow": workflow, "inputs": inputs}),
    )
    .expect("start_task succeeds");
    started["task_id"].as_str().expect("a task id").to_owned()
}

fn status_of(window: &WebviewWindow<MockRuntime>, task_id: &str, status: &str) -> Value {
    wait_for(window, "task_detail", json!({"id": task_id}), |d| {
        d["task"]["status"] == status
    })
}

#[test]
fn a_waiting_task_is_cancelled_at_once_a_running_one_at_its_next_safe_point() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.dir.path().join("workspace/nap.toml"), NAP).expect("workflow");
    let (_app, window) = boot(Ok(sandbox.locations()));
    let me = airlock_engine::os_user();

    // Waiting for its checkpoint: cancelled now, and the approval leaves the inbox.
    let task_id = start_payout(&window, 250.0);
    wait_for(&window, "list_approvals", json!({}), |i| pending(i) == 1);
    let reply = invoke_with(
        &window,
        "cancel_task",
        json!({"id": task_id, "reason": "  sent to the wrong payee  "}),
    )
    .expect("the task is cancelled");
    assert_eq!(reply["outcome"], "cancelled");
    assert_eq!(reply["task"]["status"], "cancelled");
    assert_eq!(
        pending(&invoke(&window, "list_approvals").expect("inbox")),
        0
    );
    let detail = status_of(&window, &task_id, "cancelled");
    // Withdrawn by the cancel: nobody's rejection.
    assert_eq!(detail["approvals"][0]["state"], "withdrawn");
    assert_eq!(detail["approvals"][0]["decided_by"], me.as_str());
    assert_eq!(detail["approvals"][0]["reason"], "sent to the wrong payee");
    assert!(
        summaries(&detail).iter().any(|l| l.contains(me.as_str())),
        "{:#?}",
        summaries(&detail)
    );

    let again = invoke_with(
        &window,
        "cancel_task",
        json!({"id": task_id, "reason": null}),
    )
    .expect_err("an ended task cannot be cancelled");
    assert_eq!(again["code"], "conflict");
    assert_eq!(
        again["message"],
        "This task has already ended (it was cancelled); there is nothing to cancel."
    );

    // Running a call: asked to stop, and it does.
    let napping = start(&window, "nap", json!({}));
    wait_for(&window, "task_detail", json!({"id": napping}), |d| {
        d["tool_calls"][0]["outcome"] == "intent_only"
    });
    let reply = invoke_with(
        &window,
        "cancel_task",
        json!({"id": napping, "reason": null}),
    )
    .expect("the cancellation is requested");
    assert_eq!(reply["outcome"], "requested");
    status_of(&window, &napping, "cancelled");

    let missing = invoke_with(
        &window,
        "cancel_task",
        json!({"id": "nope", "reason": null}),
    )
    .expect_err("an unknown task");
    assert_eq!(missing["code"], "not_found");
}

#[test]
fn a_call_in_doubt_waits_in_the_inbox_until_a_person_says_whether_it_happened() {
    let sandbox = Sandbox::new();
    std::fs::write(
        sandbox.dir.path().join("workspace/slow-record.toml"),
        SLOW_RECORD,
    )
    .expect("workflow");
    let (_app, window) = boot(Ok(sandbox.locations()));
    let me = airlock_engine::os_user();

    let first = start(&window, "slow-record", json!({}));
    let inbox = wait_for(&window, "list_approvals", json!({}), |i| {
        i["in_doubt"].as_array().is_some_and(|d| d.len() == 1)
    });
    assert_eq!(pending(&inbox), 0, "no approval, only the call in doubt");
    let doubt = &inbox["in_doubt"][0];
    assert_eq!(doubt["task_id"], first.as_str());
    assert_eq!(doubt["workflow"], "slow-record");
    assert_eq!(doubt["state_name"], "record");
    assert_eq!(doubt["tool"], "builtin.record");
    assert_eq!(doubt["args"], json!({"label": "slow", "linger_ms": 2000}));
    assert_eq!(doubt["requester"], me.as_str());
    assert_eq!(doubt["attempt"], 1);
    assert_eq!(doubt["reason"], "no answer within 100ms", "{doubt}");
    assert!(
        doubt["idempotency_key"]
            .as_str()
            .is_some_and(|k| k.starts_with(&first))
    );
    assert!(doubt["outcome_at"].as_i64() >= doubt["intent_at"].as_i64());

    // It happened: the task moves on without making the call again.
    let call_id = doubt["call_id"].clone();
    let task = invoke_with(
        &window,
        "resolve_in_doubt",
        json!({"callId": call_id, "happened": true}),
    )
    .expect("resolved");
    assert_eq!(task["id"], first.as_str());
    let detail = status_of(&window, &first, "succeeded");
    assert_eq!(detail["tool_calls"].as_array().map(Vec::len), Some(1));
    assert_eq!(detail["tool_calls"][0]["outcome"], "happened");
    assert_eq!(detail["tool_calls"][0]["resolved_by"], me.as_str());
    let again = invoke_with(
        &window,
        "resolve_in_doubt",
        json!({"callId": call_id, "happened": false}),
    )
    .expect_err("a settled call cannot be settled again");
    assert_eq!(again["code"], "conflict");
    assert!(
        again["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("This call is no longer in doubt")),
        "{again}"
    );

    // It did not happen: the call is made again, as a new attempt.
    let second = start(&window, "slow-record", json!({}));
    let inbox = wait_for(&window, "list_approvals", json!({}), |i| {
        i["in_doubt"].as_array().is_some_and(|d| d.len() == 1)
    });
    let call_id = inbox["in_doubt"][0]["call_id"].clone();
    invoke_with(
        &window,
        "resolve_in_doubt",
        json!({"callId": call_id, "happened": false}),
    )
    .expect("resolved");
    let detail = wait_for(&window, "task_detail", json!({"id": second}), |d| {
        d["tool_calls"].as_array().map(Vec::len) == Some(2)
    });
    assert_eq!(detail["tool_calls"][0]["outcome"], "not_happened");
    assert_eq!(detail["tool_calls"][1]["attempt"], 2);
    // The new attempt's answer is late too: in doubt again, in the inbox again.
    let inbox = wait_for(&window, "list_approvals", json!({}), |i| {
        i["in_doubt"][0]["attempt"] == 2
    });
    assert_eq!(inbox["in_doubt"].as_array().map(Vec::len), Some(1));

    assert_eq!(inbox["in_doubt"][0]["task_status"], "in_doubt");

    // A cancelled task's call in doubt stays in the inbox, marked: the answer is recorded
    // for its history, the task stays cancelled, and then the call leaves the inbox.
    invoke_with(
        &window,
        "cancel_task",
        json!({"id": second, "reason": null}),
    )
    .expect("cancelled");
    status_of(&window, &second, "cancelled");
    let inbox = invoke(&window, "list_approvals").expect("inbox");
    assert_eq!(inbox["in_doubt"][0]["task_status"], "cancelled", "{inbox}");
    let call_id = inbox["in_doubt"][0]["call_id"].clone();
    let task = invoke_with(
        &window,
        "resolve_in_doubt",
        json!({"callId": call_id, "happened": true}),
    )
    .expect("recorded");
    assert_eq!(task["status"], "cancelled");
    let detail = status_of(&window, &second, "cancelled");
    assert_eq!(detail["tool_calls"][1]["outcome"], "happened");
    assert_eq!(detail["tool_calls"].as_array().map(Vec::len), Some(2));
    let inbox = invoke(&window, "list_approvals").expect("inbox");
    assert_eq!(inbox["in_doubt"], json!([]));
}

/// A demo file starting two payouts that wait at their checkpoint.
const DEMO: &str = r#"
[[start]]
workflow = "approve-payout"
inputs = { amount = 250.0, payee = "Ada" }

[[start]]
workflow = "approve-payout"
inputs = { amount = 900.0, payee = "Grace" }
"#;

fn task_count(window: &WebviewWindow<MockRuntime>) -> usize {
    invoke_with(window, "list_tasks", json!({"status": null}))
        .expect("list_tasks")
        .as_array()
        .map_or(0, Vec::len)
}

#[test]
fn a_demo_workspace_starts_its_tasks_on_the_first_launch_only() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.dir.path().join("workspace/demo.toml"), DEMO).expect("demo file");
    {
        let (app, window) = boot(Ok(sandbox.locations()));
        let inbox = wait_for(&window, "list_approvals", json!({}), |i| pending(i) == 2);
        let prompts: Vec<&str> = inbox["approvals"]
            .as_array()
            .expect("approvals")
            .iter()
            .filter_map(|a| a["prompt"].as_str())
            .collect();
        assert!(
            prompts.contains(&"Pay 250 to Ada?") && prompts.contains(&"Pay 900 to Grace?"),
            "{prompts:?}"
        );
        let tasks = invoke_with(&window, "list_tasks", json!({"status": null})).expect("tasks");
        assert!(
            tasks
                .as_array()
                .expect("tasks")
                .iter()
                .all(|t| t["requester"] == airlock_engine::os_user().as_str()),
            "{tasks}"
        );
        airlock_desktop::on_exit(app.handle());
    }
    // The second launch on the same database starts nothing.
    let (app, window) = boot(Ok(sandbox.locations()));
    wait_for(&window, "list_approvals", json!({}), |i| pending(i) == 2);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(task_count(&window), 2);
    airlock_desktop::on_exit(app.handle());

    // A demo file that names a workflow the workspace lacks starts nothing at all.
    let broken = Sandbox::new();
    std::fs::write(
        broken.dir.path().join("workspace/demo.toml"),
        format!("{DEMO}\n[[start]]\nworkflow = \"no-such-flow\"\n"),
    )
    .expect("demo file");
    let (_app, window) = boot(Ok(broken.locations()));
    invoke(&window, "list_workflows").expect("the engine is open");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(task_count(&window), 0);
}

#[test]
fn the_files_the_cli_reads_from_the_environment_are_the_ones_the_app_uses() {
    let sandbox = Sandbox::new();
    let elsewhere = sandbox.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("dir");
    let files = ConfigFiles {
        servers: Some(elsewhere.join("servers.json")),
        effects_db: Some(elsewhere.join("effects.sqlite")),
        policy: Some(elsewhere.join("policy.toml")),
        identities: Some(elsewhere.join("identities.toml")),
    };
    std::fs::write(elsewhere.join("servers.json"), r#"{"mcpServers": {}}"#).expect("servers");
    std::fs::write(
        elsewhere.join("policy.toml"),
        POLICY.replace("examples-1", "from-the-environment"),
    )
    .expect("policy");
    std::fs::write(
        elsewhere.join("identities.toml"),
        "[identities.sam]\nroles = [\"controller\"]\n",
    )
    .expect("identities");
    let locations = Locations {
        files,
        ..sandbox.locations()
    };
    let (_app, window) = boot(Ok(locations));

    let policy = invoke(&window, "policy_info").expect("policy_info");
    assert_eq!(policy["file"], path_json(&elsewhere.join("policy.toml")));
    assert_eq!(policy["label"], "from-the-environment");
    assert_eq!(
        policy["identities_file"],
        path_json(&elsewhere.join("identities.toml"))
    );
    assert_eq!(policy["people"][0]["name"], "sam");
    let servers = invoke(&window, "list_servers").expect("list_servers");
    assert_eq!(
        servers["servers_file"],
        path_json(&elsewhere.join("servers.json"))
    );

    // A payout below the checkpoint runs straight through and records its effect there.
    let task_id = start_payout(&window, 50.0);
    status_of(&window, &task_id, "succeeded");
    assert!(elsewhere.join("effects.sqlite").is_file());
    assert!(
        !sandbox
            .dir
            .path()
            .join("data/builtin-effects.sqlite")
            .exists()
    );
}

#[test]
fn commands_not_granted_to_the_window_are_refused() {
    let sandbox = Sandbox::new();
    let (_app, window) = boot(Ok(sandbox.locations()));
    // A core command the UI does not use, so the capability does not grant it.
    let refused = invoke(&window, "plugin:window|close").expect_err("the call is refused");
    let reason = refused.as_str().unwrap_or_default();
    assert!(
        reason.contains("not allowed"),
        "refused by the ACL, not by accident: {refused}"
    );
}

fn path_json(path: &Path) -> Value {
    Value::String(path.display().to_string())
}

/// Regenerates `ui/src/bindings/*.ts` from the wire types. Fails when the committed files
/// differ; with `AIRLOCK_UPDATE_BINDINGS=1` it rewrites them instead.
#[test]
fn typescript_bindings_match_the_wire_types() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ui/src/bindings");
    let update = std::env::var("AIRLOCK_UPDATE_BINDINGS").is_ok_and(|v| v == "1");
    let bindings = airlock_desktop::wire::typescript_bindings().expect("bindings generate");

    let mut drifted = Vec::new();
    for binding in &bindings {
        let path = dir.join(&binding.file);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != binding.contents {
            if update {
                std::fs::create_dir_all(&dir).expect("bindings dir");
                std::fs::write(&path, &binding.contents).expect("write binding");
            } else {
                drifted.push(binding.file.display().to_string());
            }
        }
    }
    let expected: Vec<_> = bindings.iter().map(|b| b.file.clone()).collect();
    let stale: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| PathBuf::from(entry.file_name()))
                .filter(|name| !expected.contains(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if update {
        for name in &stale {
            std::fs::remove_file(dir.join(name)).expect("remove stale binding");
        }
        return;
    }
    assert!(
        drifted.is_empty() && stale.is_empty(),
        "ui/src/bindings is out of date (changed: {drifted:?}, not generated: {stale:?}); \
         run `AIRLOCK_UPDATE_BINDINGS=1 cargo test -p airlock-desktop --test shell` and commit"
    );
}

/// A workflow that remembers a customer's preferred contact.
const NOTE: &str = r#"
name = "note-preference"
start = "remember"

[inputs.customer]
type = "string"

[inputs.contact]
type = "string"

[states.remember]
kind = "remember"
subject = "inputs.customer"
category = "preference"
key = "'contact'"
value = "inputs.contact"
text = "{{ inputs.customer }} prefers to be contacted by {{ inputs.contact }}"
next = "done"

[states.done]
kind = "end"
status = "succeeded"
"#;

fn memory(window: &WebviewWindow<MockRuntime>, filter: Value) -> Vec<Value> {
    invoke_with(window, "list_memory", json!({ "filter": filter }))
        .expect("list_memory succeeds")
        .as_array()
        .expect("a list")
        .clone()
}

#[test]
fn memory_is_listed_searched_corrected_with_its_history_and_forgotten() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.dir.path().join("workspace/note.toml"), NOTE).expect("workflow");
    let (_app, window) = boot(Ok(sandbox.locations()));
    let me = airlock_engine::os_user();
    let live = json!({"subject": null, "search": null, "with_history": false});
    assert_eq!(memory(&window, live.clone()), Vec::<Value>::new());

    let first = start(
        &window,
        "note-preference",
        json!({"customer": "CUST-1", "contact": "email"}),
    );
    status_of(&window, &first, "succeeded");
    let second = start(
        &window,
        "note-preference",
        json!({"customer": "CUST-2", "contact": "phone"}),
    );
    status_of(&window, &second, "succeeded");

    let all = memory(&window, live.clone());
    assert_eq!(all.len(), 2, "{all:?}");
    let one = all
        .iter()
        .find(|m| m["subject"] == "CUST-1")
        .expect("CUST-1");
    assert_eq!(one["category"], "preference");
    assert_eq!(one["key"], "contact");
    assert_eq!(one["value"], "email");
    assert_eq!(one["text"], "CUST-1 prefers to be contacted by email");
    assert_eq!(one["source_task"], first.as_str());
    assert_eq!(one["state"], "live");

    let by_subject = memory(
        &window,
        json!({"subject": "CUST-2", "search": null, "with_history": false}),
    );
    assert_eq!(by_subject.len(), 1);
    assert_eq!(by_subject[0]["value"], "phone");
    // Words, not query syntax: a prefix, and punctuation taken as text.
    let found = memory(
        &window,
        json!({"subject": null, "search": "contacted ema", "with_history": false}),
    );
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["subject"], "CUST-1");
    let odd = memory(
        &window,
        json!({"subject": null, "search": "\"CUST-1 (", "with_history": false}),
    );
    assert!(odd.len() <= 2);

    let corrected = invoke_with(
        &window,
        "correct_memory",
        json!({"id": one["id"], "value": {"channel": "email", "address": "a@example.com"}, "text": null}),
    )
    .expect("the correction is recorded");
    assert_eq!(corrected["source_person"], me.as_str());
    assert_eq!(corrected["value"]["address"], "a@example.com");
    assert_eq!(corrected["state"], "live");
    let again = invoke_with(
        &window,
        "correct_memory",
        json!({"id": one["id"], "value": "sms", "text": null}),
    )
    .expect_err("a replaced entry cannot be corrected");
    assert_eq!(again["code"], "conflict");

    let history = memory(
        &window,
        json!({"subject": "CUST-1", "search": null, "with_history": true}),
    );
    assert_eq!(history.len(), 2, "{history:?}");
    let old = history.iter().find(|m| m["id"] == one["id"]).expect("old");
    assert_eq!(old["state"], "replaced");
    assert_eq!(old["superseded_by"], corrected["id"]);

    invoke_with(&window, "forget_memory", json!({"id": corrected["id"]}))
        .expect("the entry is forgotten");
    let after = memory(&window, live);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["subject"], "CUST-2");
    let history = memory(
        &window,
        json!({"subject": "CUST-1", "search": null, "with_history": true}),
    );
    let gone = history
        .iter()
        .find(|m| m["id"] == corrected["id"])
        .expect("the tombstone");
    assert_eq!(gone["state"], "forgotten");
    assert_eq!(gone["value"], Value::Null);
    assert_eq!(gone["deleted_by"], me.as_str());
    let twice = invoke_with(&window, "forget_memory", json!({"id": corrected["id"]}))
        .expect_err("a forgotten entry cannot be forgotten again");
    assert_eq!(twice["code"], "conflict");
}

#[test]
fn a_rejection_reason_becomes_a_lesson_a_person_accepts_in_their_own_words() {
    let sandbox = Sandbox::new();
    let (_app, window) = boot(Ok(sandbox.locations()));
    let me = airlock_engine::os_user();
    assert_eq!(invoke(&window, "list_lessons"), Ok(json!([])));

    let (_task, held) = held_payout(&window, 20000.0);
    answer(
        &window,
        &held["id"],
        json!({"kind": "reject", "reason": "Never pay Ada above 1000 without an invoice"}),
    )
    .expect("the rejection is recorded");
    let lessons = wait_for(&window, "list_lessons", json!({}), |l| {
        l.as_array().is_some_and(|l| !l.is_empty())
    });
    let lesson = lessons[0].clone();
    assert_eq!(lesson["workflow"], "approve-payout");
    assert_eq!(lesson["origin"], "rejection");
    assert_eq!(lesson["state"], "proposed");
    assert!(
        lesson["text"]
            .as_str()
            .is_some_and(|t| t.contains("without an invoice")),
        "{lesson}"
    );

    let accepted = invoke_with(
        &window,
        "review_lesson",
        json!({"id": lesson["id"], "accept": true, "text": "Ask for an invoice before paying more than 1000."}),
    )
    .expect("the lesson is accepted");
    assert_eq!(accepted["state"], "accepted");
    assert_eq!(accepted["reviewed_by"], me.as_str());
    assert_eq!(
        accepted["text"],
        "Ask for an invoice before paying more than 1000."
    );
    let again = invoke_with(
        &window,
        "review_lesson",
        json!({"id": lesson["id"], "accept": false, "text": null}),
    )
    .expect_err("a reviewed lesson is not reviewed again");
    assert_eq!(again["code"], "conflict");
}

#[test]
fn an_ended_task_is_rated_from_the_app_and_a_running_one_is_not() {
    let sandbox = Sandbox::new();
    let (_app, window) = boot(Ok(sandbox.locations()));

    let task_id = start_payout(&window, 900.0);
    wait_for(&window, "list_approvals", json!({}), |i| pending(i) == 1);
    let early = invoke_with(
        &window,
        "rate_task",
        json!({"id": task_id, "rating": 4, "comment": null}),
    )
    .expect_err("a task that waits is not rated");
    assert_eq!(early["code"], "conflict");
    assert_eq!(
        early["message"],
        "This task has not ended yet; it can be rated once it has."
    );

    let inbox = invoke(&window, "list_approvals").expect("inbox");
    answer(
        &window,
        &inbox["approvals"][0]["id"],
        json!({"kind": "reject", "reason": "payee unknown"}),
    )
    .expect("rejected");
    wait_for(&window, "task_detail", json!({"id": task_id}), |d| {
        d["task"]["status"] == "cancelled"
    });
    let bad = invoke_with(
        &window,
        "rate_task",
        json!({"id": task_id, "rating": 6, "comment": null}),
    )
    .expect_err("six is not a rating");
    assert_eq!(bad["code"], "invalid_input");
    assert_eq!(
        bad["message"],
        "A rating is a whole number from 1 to 5, not 6."
    );

    let rated = invoke_with(
        &window,
        "rate_task",
        json!({"id": task_id, "rating": 2, "comment": "  stopped at the right place, but slowly  "}),
    )
    .expect("an ended task is rated");
    assert_eq!(rated["rating"], 2);
    assert_eq!(rated["comment"], "stopped at the right place, but slowly");
    assert_eq!(rated["rated_by"], airlock_engine::os_user().as_str());
    let detail = invoke_with(&window, "task_detail", json!({"id": task_id})).expect("detail");
    assert_eq!(detail["ratings"], json!([rated]));
    // The payout workflow has no model turns: nothing to price.
    assert_eq!(detail["spend"], json!([]));
}

fn millis(value: &Value) -> i64 {
    value.as_i64().expect("milliseconds")
}

#[test]
fn metrics_count_a_period_s_tasks_per_workflow_and_per_day_every_day_listed() {
    let sandbox = Sandbox::new();
    let (_app, window) = boot(Ok(sandbox.locations()));

    // One payout approved all the way, one rejected at its checkpoint, one left waiting.
    let (paid, held) = held_payout(&window, 20000.0);
    answer(
        &window,
        &held["id"],
        json!({"kind": "approve", "reason": null}),
    )
    .expect("the held call is approved");
    status_of(&window, &paid, "succeeded");
    let rejected = start_payout(&window, 900.0);
    let inbox = wait_for(&window, "list_approvals", json!({}), |inbox| {
        inbox["approvals"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["task_id"] == rejected.as_str()))
    });
    let checkpoint = inbox["approvals"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["task_id"] == rejected.as_str()))
        .expect("the checkpoint")["id"]
        .clone();
    answer(
        &window,
        &checkpoint,
        json!({"kind": "reject", "reason": "not this month"}),
    )
    .expect("rejected");
    status_of(&window, &rejected, "cancelled");
    let waiting = start_payout(&window, 900.0);
    status_of(&window, &waiting, "waiting_approval");

    let view = invoke_with(
        &window,
        "metrics",
        json!({"workflow": null, "bucket": "day", "count": 7}),
    )
    .expect("metrics");
    let total = &view["total"];
    assert_eq!(total["tasks"], 3, "{view}");
    assert_eq!(total["succeeded"], 1);
    assert_eq!(total["cancelled"], 1);
    assert_eq!(total["open"], 1);
    assert_eq!(total["completion_rate"], 0.5);
    assert_eq!(total["duplicate_actions"], 0);
    assert_eq!(total["approved"], 2, "the checkpoint and the held call");
    assert_eq!(total["rejected"], 1);
    assert!(total["time_to_decision_p50_ms"].is_number());
    assert_eq!(view["workflows"][0]["workflow"], "approve-payout");
    assert_eq!(view["workflows"][0]["figures"]["tasks"], 3);

    let days = view["buckets"].as_array().expect("buckets");
    assert_eq!(days.len(), 7, "every day of the period, empty ones too");
    let day = 86_400_000_i64;
    for pair in days.windows(2) {
        assert_eq!(millis(&pair[1]["start"]) - millis(&pair[0]["start"]), day);
    }
    assert_eq!(days[6]["figures"]["tasks"], 3, "today holds every task");
    assert_eq!(days[0]["figures"]["tasks"], 0);
    assert_eq!(days[0]["figures"]["completion_rate"], Value::Null);
    assert_eq!(millis(&view["until"]) - millis(&view["since"]), 7 * day);

    let weeks = invoke_with(
        &window,
        "metrics",
        json!({"workflow": "approve-payout", "bucket": "week", "count": 4}),
    )
    .expect("weekly metrics");
    assert_eq!(weeks["buckets"].as_array().map(Vec::len), Some(4));
    assert_eq!(weeks["buckets"][3]["figures"]["tasks"], 3);
    let none = invoke_with(
        &window,
        "metrics",
        json!({"workflow": "nothing-by-this-name", "bucket": "day", "count": 1}),
    )
    .expect("an unknown workflow has no tasks");
    assert_eq!(none["total"]["tasks"], 0);

    let refused = invoke_with(
        &window,
        "metrics",
        json!({"workflow": null, "bucket": "day", "count": 0}),
    )
    .expect_err("an empty period is refused");
    assert_eq!(refused["code"], "invalid_input");
}

#[test]
fn a_metrics_period_ends_with_the_current_day_or_week() {
    use airlock_desktop::commands::period;
    use airlock_desktop::wire::MetricsBucket;
    let day = 86_400_000_i64;
    // Thursday 1 January 1970, noon.
    let noon = day / 2;
    assert_eq!(period(noon, MetricsBucket::Day, 1), (0, day));
    assert_eq!(period(noon, MetricsBucket::Day, 3), (-2 * day, day));
    // Its week began on Monday 29 December 1969 and ends before Monday 5 January.
    assert_eq!(period(noon, MetricsBucket::Week, 1), (-3 * day, 4 * day));
    assert_eq!(period(noon, MetricsBucket::Week, 2), (-10 * day, 4 * day));
}

#[test]
fn the_history_lists_counts_and_filters_every_call_with_who_approved_it() {
    let sandbox = Sandbox::new();
    let (_app, window) = boot(Ok(sandbox.locations()));
    let empty = json!({"filter": {}, "below": null, "above": null});
    assert_eq!(
        invoke_with(&window, "count_history", empty.clone()).expect("count"),
        0
    );

    let (paid, held) = held_payout(&window, 20000.0);
    answer(
        &window,
        &held["id"],
        json!({"kind": "approve", "reason": null}),
    )
    .expect("the held call is approved");
    status_of(&window, &paid, "succeeded");

    let page = |filter: Value, below: Value, skip: u32| {
        invoke_with(
            &window,
            "list_history",
            json!({"filter": filter, "below": below, "skip": skip, "limit": 50}),
        )
        .expect("list_history")
    };
    let all = page(json!({}), Value::Null, 0);
    let rows = all.as_array().expect("rows");
    assert!(!rows.is_empty(), "{all}");
    let approved: Vec<&Value> = rows
        .iter()
        .filter(|r| r["allowed_by"] == "approval")
        .collect();
    assert_eq!(approved.len(), 1, "{all}");
    let call = approved[0];
    assert_eq!(call["task_id"], paid.as_str());
    assert_eq!(call["workflow"], "approve-payout");
    assert_eq!(call["outcome"], "succeeded");
    assert_eq!(call["approved_by"], airlock_engine::os_user().as_str());
    assert_eq!(call["allowed_ref"], held["id"]);
    assert_eq!(
        call["server"],
        call["tool"]
            .as_str()
            .expect("tool")
            .split('.')
            .next()
            .expect("server")
    );

    let total = invoke_with(&window, "count_history", empty).expect("count");
    assert_eq!(total, rows.len());
    let by_approval = json!({"allowed_by": "approval", "task": &paid[..8]});
    assert_eq!(
        page(by_approval.clone(), Value::Null, 0)
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        invoke_with(
            &window,
            "count_history",
            json!({"filter": by_approval, "below": null, "above": null})
        )
        .expect("count"),
        1
    );
    // Below the newest row: everything else; nothing newer than the newest.
    let newest = json!({"intent_at": rows[0]["intent_at"], "id": rows[0]["id"]});
    assert_eq!(
        page(json!({}), newest.clone(), 0).as_array().map(Vec::len),
        Some(rows.len() - 1)
    );
    assert_eq!(
        invoke_with(
            &window,
            "count_history",
            json!({"filter": {}, "below": null, "above": newest})
        )
        .expect("count"),
        0
    );

    let choices = invoke(&window, "history_choices").expect("choices");
    assert_eq!(choices["workflows"], json!(["approve-payout"]));
    assert_eq!(choices["approvers"], json!([airlock_engine::os_user()]));
    assert!(
        choices["tools"]
            .as_array()
            .is_some_and(|t| t.contains(&call["tool"]))
    );

    let refused = invoke_with(
        &window,
        "list_history",
        json!({"filter": {}, "below": null, "skip": 0, "limit": 5000}),
    )
    .expect_err("too many at once");
    assert_eq!(refused["code"], "invalid_input");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("1 to 1000")),
        "{refused}"
    );
}

#[test]
fn a_history_export_is_a_whole_csv_file_with_a_new_name_each_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        use airlock_engine::history_seed::{SeedPlan, seed_history};
        use airlock_engine::store::{HistoryFilter, Store, StoreOptions};
        let store = Store::open(StoreOptions::new(dir.path().join("a.sqlite")), 0)
            .await
            .expect("store");
        seed_history(&store, &SeedPlan::ending_at(1_200, 1_795_392_000_000))
            .await
            .expect("seeded");
        let out = dir.path().join("Downloads");
        std::fs::create_dir_all(&out).expect("folder");
        let now = 1_795_399_384_000; // 2026-11-23 02:03:04 UTC
        let first = airlock_desktop::commands::history::export_into(
            &store,
            &HistoryFilter::default(),
            &out,
            now,
        )
        .await
        .expect("exported");
        assert_eq!(first.rows, 1_200);
        assert!(
            first.path.ends_with("airlock-history-20261123-020304.csv"),
            "{}",
            first.path
        );
        let text = std::fs::read_to_string(&first.path).expect("the file");
        assert_eq!(
            text.matches("\r\n").count(),
            1_201,
            "a header and every call"
        );
        let second = airlock_desktop::commands::history::export_into(
            &store,
            &HistoryFilter::default(),
            &out,
            now,
        )
        .await
        .expect("exported again");
        assert!(
            second
                .path
                .ends_with("airlock-history-20261123-020304-2.csv"),
            "{}",
            second.path
        );
        let left: Vec<_> = std::fs::read_dir(&out)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left.len(), 2, "no partial file is left behind: {left:?}");
    });
}

/// A step that gives up and whose error path ends the task `failed` leaves the task
/// without an error of its own: Task detail still says what went wrong.
#[test]
fn a_task_failed_along_its_error_path_says_which_step_gave_up_and_why() {
    let sandbox = Sandbox::new();
    std::fs::write(
        sandbox.dir.path().join("workspace/flaky.toml"),
        r#"
name = "flaky"
start = "try"

[states.try]
kind = "tool"
tool = "builtin.fail"
args = { times = 5 }
retry = { max_attempts = 1 }
next = "done"
on_error = "failed"

[states.done]
kind = "end"
status = "succeeded"

[states.failed]
kind = "end"
status = "failed"
"#,
    )
    .expect("workflow");
    let (_app, window) = boot(Ok(sandbox.locations()));
    let id = start(&window, "flaky", json!({}));
    let detail = status_of(&window, &id, "failed");
    assert_eq!(detail["task"]["error"], Value::Null, "{detail}");
    assert_eq!(
        detail["gave_up"], "`try` gave up: deliberate failure 1 of 5",
        "{detail}"
    );
}
