//! Boundary tests of the desktop shell: the app boots on Tauri's mock runtime through the
//! same `run_app` as the binary and answers commands over real IPC (with the real config and
//! capabilities), and the committed TypeScript bindings match the Rust wire types.

use std::path::{Path, PathBuf};

use airlock_desktop::locations::{LocationError, Locations};
use airlock_desktop::wire::{AppInfo, ErrorCode};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{INVOKE_KEY, get_ipc_response, mock_builder};
use tauri::webview::InvokeRequest;
use tauri::{App, WebviewWindow, WebviewWindowBuilder, test::MockRuntime};

fn boot(
    locations: Result<Locations, LocationError>,
) -> (App<MockRuntime>, WebviewWindow<MockRuntime>) {
    let app = airlock_desktop::run_app_with(mock_builder(), locations)
        .build(tauri::generate_context!("../tauri.conf.json"))
        .expect("the app builds on the mock runtime");
    let window = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .expect("the main window opens");
    (app, window)
}

fn invoke(
    window: &WebviewWindow<MockRuntime>,
    cmd: &str,
) -> Result<serde_json::Value, serde_json::Value> {
    let request = InvokeRequest {
        cmd: cmd.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: "tauri://localhost".parse().expect("static url"),
        body: InvokeBody::default(),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    };
    get_ipc_response(window, request).map(|body| {
        body.deserialize::<serde_json::Value>()
            .expect("a JSON reply")
    })
}

#[test]
fn app_info_reports_version_and_locations_over_ipc() {
    let dir = tempfile::tempdir().expect("temp dir");
    let locations = Locations {
        data_dir: dir.path().join("data"),
        database_path: dir.path().join("custom.sqlite"),
        workspace_path: Some(dir.path().join("workspace")),
    };
    let (_app, window) = boot(Ok(locations.clone()));

    let reply = invoke(&window, "app_info").expect("app_info succeeds");
    let expected = AppInfo::new(env!("CARGO_PKG_VERSION"), &locations);
    assert_eq!(
        reply,
        serde_json::to_value(&expected).expect("serializable")
    );
    assert_eq!(
        reply["database_path"],
        path_json(&dir.path().join("custom.sqlite"))
    );
    assert_eq!(
        reply["workspace_path"],
        path_json(&dir.path().join("workspace"))
    );
    assert_eq!(reply["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn app_info_without_a_data_location_explains_itself() {
    let (_app, window) = boot(Err(LocationError::NoDataDir));

    let error = invoke(&window, "app_info").expect_err("app_info fails");
    assert_eq!(
        error["code"],
        serde_json::to_value(ErrorCode::NotConfigured).expect("code")
    );
    assert_eq!(error["code"], "not_configured");
    let message = error["message"].as_str().expect("a message string");
    assert!(
        message.contains("AIRLOCK_DB"),
        "the message names the fix: {message}"
    );
}

#[test]
fn commands_not_granted_to_the_window_are_refused() {
    let (_app, window) = boot(Ok(Locations {
        data_dir: "/nonexistent/data".into(),
        database_path: "/nonexistent/data/airlock.sqlite".into(),
        workspace_path: None,
    }));
    // A core command the UI does not use, so the capability does not grant it.
    let refused = invoke(&window, "plugin:window|close").expect_err("the call is refused");
    let reason = refused.as_str().unwrap_or_default();
    assert!(
        reason.contains("not allowed"),
        "refused by the ACL, not by accident: {refused}"
    );
}

fn path_json(path: &Path) -> serde_json::Value {
    serde_json::Value::String(path.display().to_string())
}

/// Regenerates `ui/src/bindings/*.ts` from the wire types. Fails when the committed files
/// differ; with `AIRLOCK_UPDATE_BINDINGS=1` it rewrites them instead.
#[test]
fn typescript_bindings_match_the_wire_types() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ui/src/bindings");
    let update = std::env::var("AIRLOCK_UPDATE_BINDINGS").is_ok_and(|v| v == "1");
    let bindings = airlock_desktop::wire::typescript_bindings().expect("bindings generate");

    let mut drifted = Vec::new();
    for binding in &bindings {
        let path = dir.join(&binding.file);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != binding.contents {
            if update {
                std::fs::create_dir_all(&dir).expect("bindings dir");
                std::fs::write(&path, &binding.contents).expect("write binding");
            } else {
                drifted.push(binding.file.display().to_string());
            }
        }
    }
    let expected: Vec<_> = bindings.iter().map(|b| b.file.clone()).collect();
    let stale: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| PathBuf::from(entry.file_name()))
                .filter(|name| !expected.contains(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if update {
        for name in &stale {
            std::fs::remove_file(dir.join(name)).expect("remove stale binding");
        }
        return;
    }
    assert!(
        drifted.is_empty() && stale.is_empty(),
        "ui/src/bindings is out of date (changed: {drifted:?}, not generated: {stale:?}); \
         run `AIRLOCK_UPDATE_BINDINGS=1 cargo test -p airlock-desktop --test shell` and commit"
    );
}
