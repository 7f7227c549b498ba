//! The History view's commands: pages of every tool call across tasks, counts, the filter's
//! choices, and the CSV export of everything a filter matches.
//!
//! The export goes to the user's Downloads folder (else home) under a timestamped name,
//! and the path comes back for the window to show and copy. A save dialog would need the
//! dialog plugin, its JavaScript package and a capability for it; this needs nothing the
//! window does not already have, and works the same under Xvfb and in tests.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use airlock_engine::history::{ExportError, export_history_csv};
use airlock_engine::store::{HistoryFilter, HistoryRange, MAX_HISTORY_PAGE, Millis, Store};
use tauri::{AppHandle, Manager, Runtime, State};

use crate::state::Desktop;
use crate::wire::{
    CommandError, ErrorCode, HistoryCall, HistoryChoices, HistoryCursor, HistoryExport,
    HistoryQuery,
};

/// Calls matching `filter`, newest first: `limit` of them (at most 1,000), after skipping
/// `skip` below `below` (a row the window already has; none: from the newest).
#[tauri::command]
#[tracing::instrument(skip(desktop))]
pub async fn list_history(
    desktop: State<'_, Desktop>,
    filter: HistoryQuery,
    below: Option<HistoryCursor>,
    skip: u32,
    limit: u32,
) -> Result<Vec<HistoryCall>, CommandError> {
    if limit == 0 || limit > MAX_HISTORY_PAGE {
        return Err(CommandError::new(
            ErrorCode::InvalidInput,
            format!("Ask for 1 to {MAX_HISTORY_PAGE} calls at a time, not {limit}."),
        ));
    }
    let airlock = desktop.airlock().await?;
    let range = HistoryRange {
        older_than: below.map(Into::into),
        newer_than: None,
    };
    let rows = airlock
        .opened
        .engine
        .store()
        .call_history(&filter.to_filter(), &range, u64::from(skip), limit)
        .await?;
    Ok(rows.iter().map(HistoryCall::from).collect())
}

/// How many calls match `filter` below `below` and above `above` (each optional): all of
/// them, those under the newest row the window has, or those that arrived since.
#[tauri::command]
#[tracing::instrument(skip(desktop))]
pub async fn count_history(
    desktop: State<'_, Desktop>,
    filter: HistoryQuery,
    below: Option<HistoryCursor>,
    above: Option<HistoryCursor>,
) -> Result<u64, CommandError> {
    let airlock = desktop.airlock().await?;
    let range = HistoryRange {
        older_than: below.map(Into::into),
        newer_than: above.map(Into::into),
    };
    Ok(airlock
        .opened
        .engine
        .store()
        .count_call_history(&filter.to_filter(), &range)
        .await?)
}

/// The servers, tools, workflows and approvers to offer in the filter bar.
#[tauri::command]
#[tracing::instrument(skip_all)]
pub async fn history_choices(desktop: State<'_, Desktop>) -> Result<HistoryChoices, CommandError> {
    let airlock = desktop.airlock().await?;
    Ok(airlock
        .opened
        .engine
        .store()
        .history_choices()
        .await?
        .into())
}

/// Writes every call matching `filter` as CSV into the Downloads folder; says where.
#[tauri::command]
#[tracing::instrument(skip(app, desktop))]
pub async fn export_history<R: Runtime>(
    app: AppHandle<R>,
    desktop: State<'_, Desktop>,
    filter: HistoryQuery,
) -> Result<HistoryExport, CommandError> {
    let airlock = desktop.airlock().await?;
    let engine = &airlock.opened.engine;
    let folder = app
        .path()
        .download_dir()
        .or_else(|_| app.path().home_dir())
        .map_err(|e| {
            CommandError::new(
                ErrorCode::NotConfigured,
                format!("There is no Downloads or home folder to save the CSV in ({e})."),
            )
        })?;
    export_into(
        engine.store(),
        &filter.to_filter(),
        &folder,
        engine.clock().now(),
    )
    .await
}

/// The export itself: `airlock-history-<UTC time>.csv` in `folder` (a new name if that is
/// taken), written under a `.partial` name and renamed when complete, so a file with the
/// final name is always a whole export.
pub async fn export_into(
    store: &Store,
    filter: &HistoryFilter,
    folder: &Path,
    now: Millis,
) -> Result<HistoryExport, CommandError> {
    let cannot = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        CommandError::new(
            ErrorCode::Internal,
            format!("Cannot {what} {}: {e}.", path.display()),
        )
    };
    let stamp: String = airlock_engine::history::utc_time(now)
        .chars()
        .take(19)
        .filter(char::is_ascii_digit)
        .collect();
    let path = free_name(
        folder,
        &format!("airlock-history-{}-{}", &stamp[..8], &stamp[8..]),
    );
    let partial = path.with_extension("csv.partial");
    let file = File::create(&partial).map_err(|e| cannot("create", &partial, &e))?;
    let mut out = BufWriter::new(file);
    let rows = match export_history_csv(store, filter, &mut out).await {
        Ok(rows) => rows,
        Err(e) => {
            drop(out);
            let _ = std::fs::remove_file(&partial);
            return Err(match e {
                ExportError::Store(e) => e.into(),
                ExportError::Write(e) => cannot("write", &partial, &e),
            });
        }
    };
    out.flush().map_err(|e| cannot("write", &partial, &e))?;
    drop(out);
    std::fs::rename(&partial, &path).map_err(|e| cannot("finish", &path, &e))?;
    Ok(HistoryExport {
        path: path.display().to_string(),
        rows,
    })
}

/// `<folder>/<stem>.csv`, or `<stem>-2.csv`, `-3`, … when it exists.
fn free_name(folder: &Path, stem: &str) -> PathBuf {
    let mut path = folder.join(format!("{stem}.csv"));
    let mut n = 2;
    while path.exists() {
        path = folder.join(format!("{stem}-{n}.csv"));
        n += 1;
    }
    path
}
