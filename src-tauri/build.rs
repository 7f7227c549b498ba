//! Generates the Tauri context from the repository-root `tauri.conf.json` (the design card
//! keeps the config beside the workspace manifest) and the permission set of the app's own
//! commands: each command gets an `allow-<name>` permission that a capability must grant.

/// Every `#[tauri::command]` in `src/commands.rs`; keep in step with `generate_handler!`.
const COMMANDS: &[&str] = &[
    "app_info",
    "list_workflows",
    "start_task",
    "list_tasks",
    "task_detail",
    "rate_task",
    "list_approvals",
    "answer_approval",
    "resolve_in_doubt",
    "cancel_task",
    "list_grants",
    "create_grant",
    "revoke_grant",
    "policy_info",
    "list_servers",
    "list_memory",
    "correct_memory",
    "forget_memory",
    "list_lessons",
    "review_lesson",
    "metrics",
    "list_history",
    "count_history",
    "history_choices",
    "export_history",
];

fn main() {
    let attributes = tauri_build::Attributes::new()
        .config_path("../tauri.conf.json")
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(error) = tauri_build::try_build(attributes) {
        panic!("tauri build step failed: {error:#}");
    }
}
