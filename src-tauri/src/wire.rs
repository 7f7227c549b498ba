//! Types that cross the IPC boundary to the TypeScript UI.
//!
//! They are deliberately separate from engine and store types: a rename in the domain must
//! not silently change what the UI receives. Each one derives [`ts_rs::TS`] and is listed in
//! [`typescript_bindings`]; a test compares the generated TypeScript with the committed files
//! in `ui/src/bindings/` and fails on drift.

use std::path::{Path, PathBuf};

use serde::Serialize;
use ts_rs::TS;

use crate::locations::{LocationError, Locations};

/// What the Overview panel shows: which build is running and where its data lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct AppInfo {
    /// The app's version (the workspace version it was built from).
    pub version: String,
    /// The SQLite database file the app uses (`$AIRLOCK_DB`, else `<data_dir>/airlock.sqlite`).
    pub database_path: String,
    /// The workspace folder (`$AIRLOCK_WORKSPACE`), if one was given.
    pub workspace_path: Option<String>,
    /// The per-user folder Airlock keeps its data in.
    pub data_dir: String,
}

impl AppInfo {
    pub fn new(version: &str, locations: &Locations) -> Self {
        Self {
            version: version.to_owned(),
            database_path: display(&locations.database_path),
            workspace_path: locations.workspace_path.as_deref().map(display),
            data_dir: display(&locations.data_dir),
        }
    }
}

/// The error every command returns: a code the UI can branch on and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    pub code: ErrorCode,
    /// A complete sentence saying what went wrong and what to do about it.
    pub message: String,
}

/// The small set of error kinds the UI acts on. New engine errors map onto these at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The app cannot tell where its data lives; the fix is a setting, not a retry.
    NotConfigured,
}

impl From<&LocationError> for CommandError {
    fn from(error: &LocationError) -> Self {
        let code = match error {
            LocationError::NoDataDir => ErrorCode::NotConfigured,
        };
        Self {
            code,
            message: error.to_string(),
        }
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// One generated TypeScript file: its path relative to `ui/src/bindings/` and its contents.
#[derive(Debug)]
pub struct Binding {
    pub file: PathBuf,
    pub contents: String,
}

/// Generates the TypeScript for every wire type. This list is the IPC contract.
pub fn typescript_bindings() -> Result<Vec<Binding>, ts_rs::ExportError> {
    fn one<T: TS + 'static>(cfg: &ts_rs::Config) -> Result<Binding, ts_rs::ExportError> {
        let file = T::output_path().ok_or(ts_rs::ExportError::CannotBeExported(
            std::any::type_name::<T>(),
        ))?;
        Ok(Binding {
            file,
            contents: T::export_to_string(cfg)?,
        })
    }
    let cfg = ts_rs::Config::new();
    Ok(vec![
        one::<AppInfo>(&cfg)?,
        one::<CommandError>(&cfg)?,
        one::<ErrorCode>(&cfg)?,
    ])
}
