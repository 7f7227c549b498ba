//! The Airlock desktop shell: a thin Tauri layer over the engine.
//!
//! Everything the window can call is registered in [`run_app`], which is generic over the
//! Tauri runtime so tests boot the same app on `tauri::test::mock_builder()`. The shell owns
//! no behaviour of its own: [`commands`] adapt IPC calls to engine calls, [`wire`] holds the
//! types that cross to TypeScript, [`feed`] opens the engine and forwards its change feed,
//! [`notify`] says what desktop notifications for approvals say and offer, [`notifier`]
//! shows them and hears their actions, [`actions`] does what a person chose on one (or in
//! the [`tray`], which shows the pending count), [`demo`] starts the demo's first tasks,
//! [`rendering`] decides whether the web view draws with WebKit's GL compositor, and
//! [`locations`] decides where data lives on this machine.

pub mod actions;
pub mod commands;
pub mod demo;
pub mod feed;
pub mod locations;
pub mod notifier;
pub mod notify;
pub mod rendering;
pub mod state;
mod timeline;
pub mod tray;
pub mod wire;

use locations::Locations;
use tauri::Manager;
use tokio::sync::mpsc;

pub use state::{Desktop, DesktopExt};

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
        .manage(Desktop::new(locations))
        .setup(|app| {
            // The window opens at once; the engine (database, MCP servers) opens behind it,
            // and commands wait for it.
            if let Some(window) = app.get_webview_window("main") {
                let machine = rendering::Machine::current();
                rendering::apply(&window, rendering::drawing_for(machine));
            }
            tray::install(app.handle());
            start_engine(app.handle());
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::list_workflows,
            commands::start_task,
            commands::list_tasks,
            commands::task_detail,
            commands::rate_task,
            commands::list_approvals,
            commands::answer_approval,
            commands::resolve_in_doubt,
            commands::cancel_task,
            commands::list_grants,
            commands::create_grant,
            commands::revoke_grant,
            commands::policy_info,
            commands::list_servers,
            commands::list_memory,
            commands::correct_memory,
            commands::forget_memory,
            commands::list_lessons,
            commands::review_lesson,
            commands::metrics,
            commands::history::list_history,
            commands::history::count_history,
            commands::history::history_choices,
            commands::history::export_history,
        ])
}

/// Opens the engine in the background and starts the notifier and what follows its
/// actions; commands wait for the engine. Called from the app's `setup` hook (tests on the mock runtime, which never runs
/// that hook, call it themselves).
pub fn start_engine<R: tauri::Runtime>(app: &tauri::AppHandle<R>) {
    let (chosen, choices) = mpsc::unbounded_channel();
    let notifier = notifier::Notifier::new(chosen);
    let (notes, queue) = mpsc::unbounded_channel();
    let shower = notifier.clone();
    tauri::async_runtime::spawn(notify::coalesce(
        queue,
        notify::BURST_WINDOW,
        move |notice| shower.show(notice),
    ));
    tauri::async_runtime::spawn(actions::follow(app.clone(), choices, notifier.clone()));
    tauri::async_runtime::spawn(feed::open_engine(app.clone(), notes, notifier));
}

/// Releases the engine's task leases when the app exits, so another process can carry on
/// with its tasks at once instead of waiting for the leases to expire.
pub fn on_exit<R: tauri::Runtime>(app: &tauri::AppHandle<R>) {
    let desktop = app.state::<Desktop>();
    if let Some(airlock) = desktop.ready()
        && let Err(error) = tauri::async_runtime::block_on(airlock.opened.engine.close())
    {
        tracing::warn!(%error, "could not release this engine's leases");
    }
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
