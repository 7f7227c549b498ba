//! The Airlock desktop shell: a thin Tauri layer over the engine.
//!
//! Everything the window can call is registered in [`run_app`], which is generic over the
//! Tauri runtime so tests boot the same app on `tauri::test::mock_builder()`. The shell owns
//! no behaviour of its own: [`commands`] adapt IPC calls to engine calls, [`wire`] holds the
//! types that cross to TypeScript, and [`locations`] decides where data lives on this machine.

pub mod commands;
pub mod locations;
pub mod wire;

use locations::Locations;

/// Process-wide state the commands read; placed in Tauri's state by [`run_app`].
#[derive(Debug)]
pub struct Desktop {
    /// Where the database and workspace are, or why they could not be resolved. Kept as a
    /// `Result` so a machine without a user data dir still opens a window that explains it.
    pub locations: Result<Locations, locations::LocationError>,
}

/// Registers the shell's state and commands on `builder`, resolving locations from the
/// process environment (`AIRLOCK_DB`, `AIRLOCK_WORKSPACE`, the OS user data dir).
pub fn run_app<R: tauri::Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    run_app_with(builder, Locations::from_env())
}

/// [`run_app`] with the locations given by the caller (tests pass temp paths here rather than
/// mutating the process environment).
pub fn run_app_with<R: tauri::Runtime>(
    builder: tauri::Builder<R>,
    locations: Result<Locations, locations::LocationError>,
) -> tauri::Builder<R> {
    match &locations {
        Ok(found) => tracing::info!(
            database = %found.database_path.display(),
            workspace = ?found.workspace_path,
            "desktop shell starting"
        ),
        Err(error) => tracing::warn!(%error, "desktop shell starting without a data location"),
    }
    builder
        .manage(Desktop { locations })
        .invoke_handler(tauri::generate_handler![commands::app_info])
}

/// Logs to stderr, filtered by `RUST_LOG` (default: `info` for the `airlock*` crates, whose
/// targets all start with `airlock`, and `warn` for everything else).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,airlock=info"));
    // A second initialisation (e.g. from a test harness) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
