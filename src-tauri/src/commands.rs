//! The `#[tauri::command]` adapters the UI invokes.
//!
//! Each command is an adapter and nothing more: take the IPC arguments, call one function
//! of the engine (or of [`crate::locations`]), and map the result into [`crate::wire`]
//! types, with errors as [`CommandError`]. No SQL, prompts, HTTP or retries live here.
//! A new command is also added to `generate_handler!` in [`crate::run_app`], to the command
//! list in `build.rs`, and to the window's capability in `capabilities/main.json`.

use tauri::State;

use crate::Desktop;
use crate::wire::{AppInfo, CommandError};

/// Which build is running and where its database and workspace are.
#[tauri::command]
#[tracing::instrument(skip_all)]
pub fn app_info(desktop: State<'_, Desktop>) -> Result<AppInfo, CommandError> {
    let locations = desktop.locations.as_ref().map_err(CommandError::from)?;
    let info = AppInfo::new(env!("CARGO_PKG_VERSION"), locations);
    tracing::debug!(database = %info.database_path, "answered app_info");
    Ok(info)
}
