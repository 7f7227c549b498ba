//! The `airlock-desktop` binary: the real window runtime around [`airlock_desktop::run_app`].

// No console window on Windows release builds; no effect elsewhere.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use tauri::Manager;

fn main() -> std::process::ExitCode {
    // First, while this is the process's only thread: what GTK and WebKit read from the
    // environment when they start (nothing is set where there is a GPU).
    #[allow(unsafe_code)]
    // SAFETY: nothing has started a thread yet (tracing, Tauri and GTK start below).
    let preset = unsafe { airlock_desktop::rendering::prepare_environment() };
    airlock_desktop::init_tracing();
    if !preset.is_empty() {
        tracing::info!(
            ?preset,
            "no GPU render node: GTK and WebKit start without GL"
        );
    }
    // Registered first, as the plugin requires: a second launch focuses the open window
    // instead of starting a second engine on the same database.
    let builder =
        tauri::Builder::default().plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            if let Some(window) = app.get_webview_window("main") {
                let _ = window.unminimize();
                let _ = window.set_focus();
            }
        }));
    let context = tauri::generate_context!("../tauri.conf.json");
    match airlock_desktop::run_app(builder).build(context) {
        Ok(app) => {
            app.run(|handle, event| {
                if let tauri::RunEvent::Exit = event {
                    airlock_desktop::on_exit(handle);
                }
            });
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "the desktop app stopped with an error");
            eprintln!("airlock-desktop: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
