//! The tray icon: what waits for a person, in its menu and tooltip (updated as tasks
//! change), and Open Airlock / Open inbox / Quit. Without a tray host (a bare X server,
//! a desktop without one) the app runs the same, only without the icon.

use std::panic::AssertUnwindSafe;

use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager, Runtime};

use crate::actions;
use crate::wire::OpenInbox;

/// The tray's parts that change, kept in the app's state.
pub struct Tray<R: Runtime> {
    icon: TrayIcon<R>,
    count: MenuItem<R>,
}

/// The words for what waits: "3 approvals waiting", "1 approval waiting, 2 calls in doubt".
pub fn count_words(approvals: usize, in_doubt: usize) -> String {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    match (approvals, in_doubt) {
        (0, 0) => "Nothing waits for you".to_owned(),
        (a, 0) => format!("{} waiting", plural(a, "approval", "approvals")),
        (0, d) => plural(d, "call in doubt", "calls in doubt"),
        (a, d) => format!(
            "{} waiting, {}",
            plural(a, "approval", "approvals"),
            plural(d, "call in doubt", "calls in doubt")
        ),
    }
}

/// Puts the icon in the tray. A failure (including the panic of a missing
/// libayatana-appindicator) is logged and the app carries on without it.
pub fn install<R: Runtime>(app: &AppHandle<R>) {
    match std::panic::catch_unwind(AssertUnwindSafe(|| build(app))) {
        Ok(Ok(tray)) => {
            app.manage(tray);
        }
        Ok(Err(error)) => tracing::warn!(%error, "no tray icon; the app runs without it"),
        Err(_) => tracing::warn!(
            "no tray icon (is libayatana-appindicator3 installed?); the app runs without it"
        ),
    }
}

fn build<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<Tray<R>> {
    let words = count_words(0, 0);
    let count = MenuItem::with_id(app, "count", &words, false, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open Airlock", true, None::<&str>)?;
    let inbox = MenuItem::with_id(app, "inbox", "Open inbox", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(
        app,
        &[
            &count,
            &PredefinedMenuItem::separator(app)?,
            &open,
            &inbox,
            &PredefinedMenuItem::separator(app)?,
            &quit,
        ],
    )?;
    let mut builder = TrayIconBuilder::with_id("airlock")
        .menu(&menu)
        .tooltip(format!("Airlock: {words}"))
        .on_menu_event(|app, event| match event.id().as_ref() {
            "open" => actions::focus(app),
            "inbox" => actions::open_inbox(app, &OpenInbox::default()),
            "quit" => app.exit(0),
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    let icon = builder.build(app)?;
    tracing::debug!("tray icon installed");
    Ok(Tray { icon, count })
}

/// Shows what waits in the tray, if there is one.
pub fn show_count<R: Runtime>(app: &AppHandle<R>, approvals: usize, in_doubt: usize) {
    let Some(tray) = app.try_state::<Tray<R>>() else {
        return;
    };
    let words = count_words(approvals, in_doubt);
    let waiting = approvals + in_doubt;
    // Linux shows no tooltips; the title is the label beside the icon there.
    let title = (waiting > 0).then(|| waiting.to_string());
    let done = tray
        .count
        .set_text(&words)
        .and_then(|()| tray.icon.set_tooltip(Some(format!("Airlock: {words}"))))
        .and_then(|()| tray.icon.set_title(title));
    match done {
        Ok(()) => tracing::debug!(%words, "tray updated"),
        Err(error) => tracing::debug!(%error, "could not update the tray"),
    }
}

#[cfg(test)]
mod tests {
    use super::count_words;

    #[test]
    fn the_count_is_said_in_words() {
        assert_eq!(count_words(0, 0), "Nothing waits for you");
        assert_eq!(count_words(1, 0), "1 approval waiting");
        assert_eq!(count_words(5, 0), "5 approvals waiting");
        assert_eq!(count_words(0, 2), "2 calls in doubt");
        assert_eq!(count_words(3, 1), "3 approvals waiting, 1 call in doubt");
    }
}
