//! The `#[tauri::command]` adapters the UI invokes.
//!
//! Each command is an adapter and nothing more: take the IPC arguments, call the engine
//! (or [`crate::locations`]), and map the result into [`crate::wire`] types, with errors as
//! [`CommandError`]. No SQL, prompts, HTTP or retries live here. A new command is also
//! added to `generate_handler!` in [`crate::run_app`], to the command list in `build.rs`,
//! and to the window's capability in `capabilities/main.json`.

use airlock_engine::os_user;
use airlock_engine::store::TaskFilter;
use serde_json::{Map, Value};
use tauri::State;

use crate::state::Desktop;
use crate::wire::{
    AppInfo, ApprovalRow, CommandError, ErrorCode, ServerList, ServerRow, StartedTask, TaskDetail,
    TaskRow, TaskStatus, WorkflowList,
};

/// The most tasks one `list_tasks` returns (newest first).
const TASK_PAGE: i64 = 500;

/// Which build is running and where its database and workspace are.
#[tauri::command]
#[tracing::instrument(skip_all)]
pub fn app_info(desktop: State<'_, Desktop>) -> Result<AppInfo, CommandError> {
    let locations = desktop.locations.as_ref().map_err(CommandError::from)?;
    let info = AppInfo::new(env!("CARGO_PKG_VERSION"), locations);
    tracing::debug!(database = %info.database_path, "answered app_info");
    Ok(info)
}

/// The workspace's workflows as they are on disk now, with the files' validation errors.
#[tauri::command]
#[tracing::instrument(skip_all)]
pub async fn list_workflows(desktop: State<'_, Desktop>) -> Result<WorkflowList, CommandError> {
    let airlock = desktop.airlock().await?;
    let (workflows, problems) = airlock.setup.workflows();
    Ok(WorkflowList::new(
        airlock.workspace().map(|p| p.as_path()),
        &workflows,
        &problems,
    ))
}

/// Starts a task of a workspace workflow as the OS user; the engine runs it in the background.
#[tauri::command]
#[tracing::instrument(skip(desktop, inputs))]
pub async fn start_task(
    desktop: State<'_, Desktop>,
    workflow: String,
    inputs: Map<String, Value>,
) -> Result<StartedTask, CommandError> {
    let airlock = desktop.airlock().await?;
    let (workflows, _) = airlock.setup.workflows();
    let Some(found) = workflows.iter().find(|w| w.name == workflow) else {
        let place = airlock.workspace().map_or_else(
            || "no workspace is open (set AIRLOCK_WORKSPACE)".to_owned(),
            |w| format!("the workspace {} has none by that name", w.display()),
        );
        return Err(CommandError::new(
            ErrorCode::NotFound,
            format!("There is no workflow `{workflow}`: {place}."),
        ));
    };
    let origin = airlock.workspace().map(|w| w.display().to_string());
    let task_id = airlock
        .opened
        .engine
        .start_task(found, inputs, &os_user(), origin.as_deref())
        .await?;
    Ok(StartedTask { task_id })
}

/// Tasks, newest first, optionally only those with one status.
#[tauri::command]
#[tracing::instrument(skip(desktop))]
pub async fn list_tasks(
    desktop: State<'_, Desktop>,
    status: Option<TaskStatus>,
) -> Result<Vec<TaskRow>, CommandError> {
    let airlock = desktop.airlock().await?;
    let filter = TaskFilter {
        status: status.map(Into::into),
        workflow: None,
        limit: Some(TASK_PAGE),
    };
    let tasks = airlock.opened.engine.store().list_tasks(&filter).await?;
    Ok(tasks.iter().map(TaskRow::from).collect())
}

/// One task with its history, tool calls and approvals.
#[tauri::command]
#[tracing::instrument(skip(desktop))]
pub async fn task_detail(
    desktop: State<'_, Desktop>,
    id: String,
) -> Result<TaskDetail, CommandError> {
    let airlock = desktop.airlock().await?;
    let engine = &airlock.opened.engine;
    let task = engine.find_task(&id).await?;
    let store = engine.store();
    let events = store.events(&task.id).await?;
    let calls = store.tool_calls(&task.id).await?;
    let approvals = store.task_approvals(&task.id).await?;
    Ok(TaskDetail::new(&task, &events, &calls, &approvals))
}

/// Approvals waiting for a decision, with their tasks' workflow and requester.
#[tauri::command]
#[tracing::instrument(skip_all)]
pub async fn list_approvals(desktop: State<'_, Desktop>) -> Result<Vec<ApprovalRow>, CommandError> {
    let airlock = desktop.airlock().await?;
    let store = airlock.opened.engine.store();
    let mut rows = Vec::new();
    for approval in store.pending_approvals().await? {
        // A task is never deleted, so a pending approval always has one.
        if let Some(task) = store.task(&approval.task_id).await? {
            rows.push(ApprovalRow::new(&approval, &task));
        }
    }
    tracing::debug!(pending = rows.len(), "answered list_approvals");
    Ok(rows)
}

/// Approves or rejects a pending approval as the OS user; answers the task as it is after.
#[tauri::command]
#[tracing::instrument(skip(desktop, reason))]
pub async fn decide_approval(
    desktop: State<'_, Desktop>,
    id: String,
    approve: bool,
    reason: Option<String>,
) -> Result<TaskRow, CommandError> {
    let airlock = desktop.airlock().await?;
    let reason = reason.filter(|r| !r.trim().is_empty());
    let task = airlock
        .opened
        .engine
        .decide_approval(&id, approve, &os_user(), reason)
        .await?;
    Ok(TaskRow::from(&task))
}

/// The MCP servers of the servers file in force and where each one stands.
#[tauri::command]
#[tracing::instrument(skip_all)]
pub async fn list_servers(desktop: State<'_, Desktop>) -> Result<ServerList, CommandError> {
    let airlock = desktop.airlock().await?;
    let servers = airlock
        .opened
        .mcp
        .as_ref()
        .map(|mcp| mcp.servers().iter().map(ServerRow::from).collect())
        .unwrap_or_default();
    Ok(ServerList {
        servers_file: airlock
            .setup
            .servers_file()
            .map(|p| p.display().to_string()),
        servers,
    })
}
