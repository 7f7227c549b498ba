//! Opening the engine at start-up and following its change feed: every committed
//! transition goes to the UI as one `task-changed` event, and a task that starts waiting
//! for an approval (a workflow checkpoint or a tool call a policy rule held), or for a
//! person to say whether a call in doubt happened, raises a desktop notification.

use std::collections::HashSet;
use std::sync::Arc;

use airlock_engine::store::{ApprovalStatus, TaskFilter, TaskStatus, ToolCallOutcome};
use airlock_engine::{Engine, TaskChange};
use airlock_workspace::Setup;
use tauri::{AppHandle, Emitter, Runtime};
use tokio::sync::{broadcast, mpsc};

use crate::locations::Locations;
use crate::notifier::Notifier;
use crate::notify::{ApprovalNote, HeldNote, InDoubtNote, Subject};
use crate::state::{Airlock, DesktopExt, EngineSlot};
use crate::tray;
use crate::wire::{TASK_CHANGED, TaskChanged};

/// Where the desktop's engine comes from: the resolved locations (the same files the CLI
/// would use with the same environment), servers started.
pub fn setup_for(locations: &Locations) -> Setup {
    let files = &locations.files;
    Setup {
        db: Some(locations.database_path.clone()),
        workspace: locations.workspace_path.clone(),
        servers: files.servers.clone(),
        effects_db: files.effects_db.clone(),
        policy: files.policy.clone(),
        identities: files.identities.clone(),
        start_servers: true,
        ..Setup::default()
    }
}

/// Opens the engine, starts running tasks in the background, registers the workspace's
/// workflows and starts forwarding the change feed. Whatever happens ends up in the
/// [`EngineSlot`], so the window can say it in words.
pub async fn open_engine<R: Runtime>(
    app: AppHandle<R>,
    notes: mpsc::UnboundedSender<ApprovalNote>,
    notifier: Notifier,
) {
    let desktop = app.desktop();
    let locations = match &desktop.locations {
        Ok(locations) => locations.clone(),
        Err(error) => {
            desktop.set_engine(EngineSlot::Failed(error.to_string().into()));
            return;
        }
    };
    let setup = setup_for(&locations);
    let opened = match setup.open().await {
        Ok(opened) => opened,
        Err(error) => {
            tracing::error!(%error, "the engine could not be opened");
            let reason = format!("Airlock could not open its engine: {error}");
            desktop.set_engine(EngineSlot::Failed(reason.into()));
            return;
        }
    };
    let changes = opened.engine.subscribe();
    tauri::async_runtime::spawn(forward(
        app.clone(),
        opened.engine.clone(),
        changes,
        notes,
        notifier,
    ));
    let (workflows, problems) = setup.workflow_files();
    for (file, workflow) in &workflows {
        let origin = file.display().to_string();
        if let Err(error) = opened
            .engine
            .register_workflow(workflow, Some(&origin))
            .await
        {
            tracing::warn!(workflow = %workflow.name, %error, "could not register a workflow");
        }
    }
    if !problems.is_empty() {
        tracing::warn!(
            count = problems.len(),
            "some workflow files do not validate"
        );
    }
    if let Some(workspace) = &setup.workspace {
        match crate::demo::first_run(&opened.engine, workspace, &workflows).await {
            Ok(started) if !started.is_empty() => {
                tracing::info!(
                    tasks = started.len(),
                    "first run of the demo: tasks started"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "the demo's first tasks were not started"),
        }
    }
    opened.engine.serve();
    tracing::info!(workflows = workflows.len(), "engine open and serving");
    desktop.set_engine(EngineSlot::Ready(Arc::new(Airlock { setup, opened })));
}

/// Sends each change to the UI and notes new pending approvals for notification. Ends
/// when the engine is gone.
async fn forward<R: Runtime>(
    app: AppHandle<R>,
    engine: Engine,
    mut changes: broadcast::Receiver<TaskChange>,
    notes: mpsc::UnboundedSender<ApprovalNote>,
    notifier: Notifier,
) {
    let mut noted: HashSet<String> = HashSet::new();
    count_waiting(&app, &engine).await;
    loop {
        let change = match changes.recv().await {
            Ok(change) => change,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                // The UI's slow safety refresh catches up with what was skipped.
                tracing::warn!(missed, "the change feed fell behind");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let event = TaskChanged {
            task_id: change.task_id.clone(),
            status: change.status.into(),
            seq: change.seq,
        };
        if let Err(error) = app.emit(TASK_CHANGED, &event) {
            tracing::warn!(%error, "could not send a task change to the window");
        }
        match change.status {
            TaskStatus::WaitingApproval => {
                note_approvals(&engine, &change.task_id, &mut noted, &notes).await;
            }
            TaskStatus::InDoubt => {
                note_in_doubt(&engine, &change.task_id, &mut noted, &notes).await;
            }
            _ => {}
        }
        withdraw_answered(&engine, &change, &notifier).await;
        if change.status != TaskStatus::Running {
            count_waiting(&app, &engine).await;
        }
    }
}

/// Closes the task's notifications that ask for what no longer waits: an approval decided
/// (in the window, the CLI, or from another notification) or expired, a call in doubt
/// settled, or anything of a task that ended.
async fn withdraw_answered(engine: &Engine, change: &TaskChange, notifier: &Notifier) {
    let followed = notifier.followed(&change.task_id);
    if followed.is_empty() {
        return;
    }
    let pending: HashSet<String> = match engine.store().task_approvals(&change.task_id).await {
        Ok(approvals) => approvals
            .into_iter()
            .filter(|a| a.status == ApprovalStatus::Pending)
            .map(|a| a.id)
            .collect(),
        Err(error) => {
            tracing::debug!(%error, "could not read a task's approvals");
            return;
        }
    };
    let task_id = change.task_id.as_str();
    notifier.withdraw(|subject| match subject {
        Subject::Approval {
            approval_id,
            task_id: of,
        } => of == task_id && !pending.contains(approval_id),
        Subject::InDoubt { task_id: of, .. } => {
            of == task_id && change.status != TaskStatus::InDoubt
        }
        Subject::Answered { .. } | Subject::Burst => false,
    });
}

/// Counts the approvals and calls in doubt that wait for a person, for the tray.
async fn count_waiting<R: Runtime>(app: &AppHandle<R>, engine: &Engine) {
    let store = engine.store();
    let doubt = TaskFilter {
        status: Some(TaskStatus::InDoubt),
        workflow: None,
        limit: None,
    };
    match (
        store.pending_approvals().await,
        store.list_tasks(&doubt).await,
    ) {
        (Ok(approvals), Ok(in_doubt)) => tray::show_count(app, approvals.len(), in_doubt.len()),
        (Err(error), _) | (_, Err(error)) => {
            tracing::warn!(%error, "could not count what waits for a person");
        }
    }
}

async fn note_approvals(
    engine: &Engine,
    task_id: &str,
    noted: &mut HashSet<String>,
    notes: &mpsc::UnboundedSender<ApprovalNote>,
) {
    let store = engine.store();
    let (task, approvals) = match (
        store.task(task_id).await,
        store.task_approvals(task_id).await,
    ) {
        (Ok(Some(task)), Ok(approvals)) => (task, approvals),
        (Err(error), _) | (_, Err(error)) => {
            tracing::warn!(task = task_id, %error, "could not read a task's approvals");
            return;
        }
        (Ok(None), _) => return,
    };
    for approval in approvals {
        if approval.status == ApprovalStatus::Pending && noted.insert(approval.id.clone()) {
            let _ = notes.send(ApprovalNote {
                id: approval.id,
                workflow: task.workflow_name.clone(),
                task_id: task.id.clone(),
                prompt: approval.prompt,
                held: approval.held_call.map(|held| HeldNote {
                    tool: held.tool,
                    rule: held.rule,
                }),
                in_doubt: None,
            });
        }
    }
}

/// Notes the task's calls in doubt not noted before (each call once).
async fn note_in_doubt(
    engine: &Engine,
    task_id: &str,
    noted: &mut HashSet<String>,
    notes: &mpsc::UnboundedSender<ApprovalNote>,
) {
    let store = engine.store();
    let (task, calls) = match (store.task(task_id).await, store.tool_calls(task_id).await) {
        (Ok(Some(task)), Ok(calls)) => (task, calls),
        (Err(error), _) | (_, Err(error)) => {
            tracing::warn!(task = task_id, %error, "could not read a task's calls");
            return;
        }
        (Ok(None), _) => return,
    };
    for call in calls {
        if call.outcome == Some(ToolCallOutcome::InDoubt) && noted.insert(call.id.clone()) {
            let _ = notes.send(ApprovalNote {
                id: call.id.clone(),
                workflow: task.workflow_name.clone(),
                task_id: task.id.clone(),
                prompt: format!("Did `{}` happen?", call.tool),
                held: None,
                in_doubt: Some(InDoubtNote {
                    tool: call.tool,
                    reason: call.error,
                }),
            });
        }
    }
}
