//! What a person's choice on a notification or in the tray does: bring the window forward
//! on the Approvals inbox (on one approval, its reject reason asked for when they chose
//! Reject), or approve as the app's Approve button does and say so when the engine refuses.

use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::mpsc;

use crate::commands::answer_as_os_user;
use crate::notifier::Notifier;
use crate::notify::{Chosen, Notice};
use crate::state::DesktopExt;
use crate::wire::{AnswerReply, AnswerRequest, OPEN_INBOX, OpenInbox};

/// Acts on every choice until the notifier is gone.
pub async fn follow<R: Runtime>(
    app: AppHandle<R>,
    mut chosen: mpsc::UnboundedReceiver<Chosen>,
    notifier: Notifier,
) {
    while let Some(choice) = chosen.recv().await {
        match choice {
            Chosen::Open {
                approval_id,
                call_id,
            } => open_inbox(
                &app,
                &OpenInbox {
                    approval_id,
                    call_id,
                    reject: false,
                },
            ),
            Chosen::Reject { approval_id } => open_inbox(
                &app,
                &OpenInbox {
                    approval_id: Some(approval_id),
                    call_id: None,
                    reject: true,
                },
            ),
            Chosen::Approve {
                approval_id,
                task_id,
            } => approve(&app, &notifier, &approval_id, &task_id).await,
        }
    }
}

/// Shows, restores and focuses the main window.
pub fn focus<R: Runtime>(app: &AppHandle<R>) {
    let Some(window) = app.get_webview_window("main") else {
        tracing::warn!("there is no main window to bring forward");
        return;
    };
    for (what, done) in [
        ("show", window.show()),
        ("unminimize", window.unminimize()),
        ("focus", window.set_focus()),
    ] {
        if let Err(error) = done {
            tracing::debug!(%error, what, "could not bring the window forward");
        }
    }
}

/// Brings the window forward and asks it for the Approvals inbox.
pub fn open_inbox<R: Runtime>(app: &AppHandle<R>, open: &OpenInbox) {
    focus(app);
    tracing::info!(
        approval = ?open.approval_id,
        call = ?open.call_id,
        reject = open.reject,
        "opening the inbox"
    );
    if let Err(error) = app.emit(OPEN_INBOX, open) {
        tracing::warn!(%error, "could not ask the window for the inbox");
    }
}

/// Approves as the OS user through the same path as the window's Approve; a refusal (four
/// eyes, a missing role, already decided…) or a counted vote is told in a notification.
async fn approve<R: Runtime>(
    app: &AppHandle<R>,
    notifier: &Notifier,
    approval_id: &str,
    task_id: &str,
) {
    let airlock = match app.desktop().airlock().await {
        Ok(airlock) => airlock,
        Err(error) => {
            notifier.show(Notice::refused(
                "this approval",
                approval_id,
                task_id,
                &error.message,
            ));
            return;
        }
    };
    let workflow = match airlock.opened.engine.store().task(task_id).await {
        Ok(Some(task)) => task.workflow_name,
        _ => "this approval".to_owned(),
    };
    let answer = AnswerRequest::Approve { reason: None };
    match answer_as_os_user(&airlock, approval_id, answer).await {
        Ok(AnswerReply::Decided { task }) => {
            tracing::info!(approval = approval_id, task = %task.id, "approved from a notification");
        }
        Ok(AnswerReply::Voted { votes, needed, .. }) => {
            tracing::info!(
                approval = approval_id,
                votes,
                needed,
                "approval counted from a notification"
            );
            notifier.show(Notice::counted(
                &workflow,
                approval_id,
                task_id,
                votes,
                needed,
            ));
        }
        Err(error) => {
            tracing::info!(approval = approval_id, reason = %error.message, "approval from a notification refused");
            notifier.show(Notice::refused(
                &workflow,
                approval_id,
                task_id,
                &error.message,
            ));
        }
    }
}
