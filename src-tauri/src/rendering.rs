//! How the web view draws: with WebKit's GL compositor (the default), or without it when
//! the machine has no GPU to run it on.
//!
//! Without a GPU render node, WebKitGTK composites through Mesa's software renderer
//! (llvmpipe): the app and its web process each load LLVM and keep GL buffers that a GPU
//! would hold, for no gain over drawing without the compositor (measured under Xvfb: about
//! 96 MB of RSS, see docs/benchmarks.md). On a real GPU compositing is what keeps scrolling
//! smooth, so it stays on there.
//!
//! Drawn without the compositor, WebKitGTK 2.50 answers WebDriver's Take Screenshot only
//! once the page paints again, which a view that has finished drawing never does: the
//! end-to-end harness repaints a transparent pixel while it takes one (`saveScreenshot` in
//! tests/e2e/app.mjs says why).
//!
//! Where there is no render node at all, [`prepare_environment`] also tells GTK and WebKit,
//! before they start, not to load GL where the app process has no use for it
//! ([`WITHOUT_GPU`]): without it GTK's GLX probe and two WebKit EGL probes each load Mesa
//! and LLVM into the app process (about 55 MB of RSS, see docs/benchmarks.md).

use std::path::Path;

/// What this machine offers the web view to draw with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    /// A DRM render node (`/dev/dri/renderD*`) exists: a GPU driver is loaded.
    pub render_node: bool,
    /// Mesa is told to render in software (`LIBGL_ALWAYS_SOFTWARE` set, not `0`).
    pub software_gl_forced: bool,
    /// The person chose for WebKit already (`WEBKIT_DISABLE_COMPOSITING_MODE` or
    /// `WEBKIT_FORCE_COMPOSITING_MODE` set): their choice stands.
    pub compositing_chosen: bool,
}

/// The web view's drawing, as the app sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drawing {
    /// WebKit's own default: its GL compositor.
    WebKitDefault,
    /// No GL compositor (hardware acceleration policy `Never`): drawn in software, as
    /// it would be anyway on this machine, without Mesa's GL in the app's processes.
    WithoutCompositor,
}

/// How the web view should draw on `machine`.
pub fn drawing_for(machine: Machine) -> Drawing {
    if machine.compositing_chosen {
        Drawing::WebKitDefault
    } else if !machine.render_node || machine.software_gl_forced {
        Drawing::WithoutCompositor
    } else {
        Drawing::WebKitDefault
    }
}

impl Machine {
    /// This machine: its render nodes under `dri` (normally `/dev/dri`) and the
    /// process's environment as read by `var`.
    pub fn probe(dri: &Path, var: impl Fn(&str) -> Option<String>) -> Self {
        let render_node = std::fs::read_dir(dri).is_ok_and(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|entry| entry.file_name().to_string_lossy().starts_with("renderD"))
        });
        let set = |name: &str| var(name).is_some_and(|value| !value.is_empty());
        Self {
            render_node,
            software_gl_forced: var("LIBGL_ALWAYS_SOFTWARE")
                .is_some_and(|value| !value.is_empty() && value != "0"),
            compositing_chosen: set("WEBKIT_DISABLE_COMPOSITING_MODE")
                || set("WEBKIT_FORCE_COMPOSITING_MODE"),
        }
    }

    /// This machine as the running process sees it.
    pub fn current() -> Self {
        Self::probe(Path::new("/dev/dri"), |name| std::env::var(name).ok())
    }
}

/// Variables the app sets in its own environment before GTK and WebKit start, where there
/// is no GPU render node, so that neither loads Mesa's GL for nothing (measured under Xvfb,
/// WebKitGTK 2.50, GTK 3.24: see docs/benchmarks.md). Each is left alone when the person set
/// it already. The web process still opens an EGL display of its own (WebKit requires one
/// and offers no switch for it), so Mesa stays in that process.
pub const WITHOUT_GPU: [(&str, &str); 3] = [
    // GTK opens the X display by probing GLX for its visuals (libepoxy → Mesa → LLVM) unless
    // told not to; the window draws with cairo either way.
    ("GDK_GL", "disable"),
    // WebKit probes EGL in the app process, when the web context is made, for its DMA-BUF
    // renderer: the way composited frames reach the window. Nothing is composited here.
    ("WEBKIT_DISABLE_DMABUF_RENDERER", "1"),
    // When it starts the web process, WebKit asks EGL which GPU to render on, loading Mesa in
    // the app process to learn that there is none. Named here, the answer needs no EGL: a
    // node that does not exist, which is the truth (nothing renders on a GPU), so nothing can
    // open it.
    ("WEBKIT_WEB_RENDER_DEVICE_FILE", "/dev/dri/no-render-node"),
];

/// The variables of [`WITHOUT_GPU`] to set on `machine`, given what is set already
/// (`var`; set even to nothing counts): none where there is a render node or the person
/// chose for WebKit's compositor.
pub fn environment_for(
    machine: Machine,
    var: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Vec<(&'static str, &'static str)> {
    if machine.render_node || drawing_for(machine) != Drawing::WithoutCompositor {
        return Vec::new();
    }
    WITHOUT_GPU
        .into_iter()
        .filter(|(name, _)| var(name).is_none())
        .collect()
}

/// Sets [`environment_for`] this machine in the process's environment and returns what it
/// set, for GTK and WebKit to read when they start.
///
/// # Safety
/// The process must have one thread: call it first thing in `main`, before anything
/// starts another. The environment is not safe to change while another thread may read
/// it (why `std::env::set_var` is `unsafe`).
#[allow(unsafe_code)]
pub unsafe fn prepare_environment() -> Vec<(&'static str, &'static str)> {
    #[cfg(target_os = "linux")]
    {
        let chosen = environment_for(Machine::current(), |name| std::env::var_os(name));
        for (name, value) in &chosen {
            // SAFETY: the caller guarantees no other thread exists to read it.
            unsafe { std::env::set_var(name, value) };
        }
        chosen
    }
    #[cfg(not(target_os = "linux"))]
    Vec::new()
}

/// Applies `drawing` to the main window's web view before it draws anything. On other
/// platforms than Linux (WebView2, WKWebView) there is nothing to set.
pub fn apply<R: tauri::Runtime>(window: &tauri::WebviewWindow<R>, drawing: Drawing) {
    if drawing == Drawing::WebKitDefault {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let applied = window.with_webview(|webview| {
            use webkit2gtk::{HardwareAccelerationPolicy, SettingsExt, WebViewExt};
            if let Some(settings) = WebViewExt::settings(&webview.inner()) {
                settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
            }
        });
        match applied {
            Ok(()) => tracing::info!(
                "no GPU to composite on: the web view draws without WebKit's GL compositor"
            ),
            Err(error) => tracing::warn!(%error, "could not set how the web view draws"),
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = window;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(render_node: bool) -> Machine {
        Machine {
            render_node,
            software_gl_forced: false,
            compositing_chosen: false,
        }
    }

    #[test]
    fn a_gpu_keeps_the_compositor() {
        assert_eq!(drawing_for(machine(true)), Drawing::WebKitDefault);
    }

    #[test]
    fn no_render_node_draws_without_the_compositor() {
        assert_eq!(drawing_for(machine(false)), Drawing::WithoutCompositor);
    }

    #[test]
    fn software_gl_forced_draws_without_the_compositor_even_with_a_gpu() {
        let forced = Machine {
            software_gl_forced: true,
            ..machine(true)
        };
        assert_eq!(drawing_for(forced), Drawing::WithoutCompositor);
    }

    #[test]
    fn a_choice_made_for_webkit_stands() {
        let chosen = Machine {
            compositing_chosen: true,
            ..machine(false)
        };
        assert_eq!(drawing_for(chosen), Drawing::WebKitDefault);
    }

    fn nothing_set(_: &str) -> Option<std::ffi::OsString> {
        None
    }

    #[test]
    fn without_a_render_node_every_gl_switch_is_set() {
        assert_eq!(environment_for(machine(false), nothing_set), WITHOUT_GPU);
    }

    #[test]
    fn a_gpu_sets_nothing_even_when_software_gl_is_forced() {
        assert!(environment_for(machine(true), nothing_set).is_empty());
        let forced = Machine {
            software_gl_forced: true,
            ..machine(true)
        };
        assert!(environment_for(forced, nothing_set).is_empty());
    }

    #[test]
    fn a_choice_made_for_webkit_sets_nothing() {
        let chosen = Machine {
            compositing_chosen: true,
            ..machine(false)
        };
        assert!(environment_for(chosen, nothing_set).is_empty());
    }

    #[test]
    fn a_variable_the_person_set_is_left_alone() {
        let gdk_gl_set = |name: &str| (name == "GDK_GL").then(|| "gles".into());
        let set = environment_for(machine(false), gdk_gl_set);
        assert!(set.iter().all(|(name, _)| *name != "GDK_GL"), "{set:?}");
        assert_eq!(set.len(), WITHOUT_GPU.len() - 1);

        let set_empty =
            |name: &str| (name == "WEBKIT_DISABLE_DMABUF_RENDERER").then(Default::default);
        let set = environment_for(machine(false), set_empty);
        assert!(
            set.iter()
                .all(|(name, _)| *name != "WEBKIT_DISABLE_DMABUF_RENDERER"),
            "{set:?}"
        );
    }

    #[test]
    fn the_render_device_named_does_not_exist() {
        let (_, device) = WITHOUT_GPU
            .iter()
            .find(|(name, _)| *name == "WEBKIT_WEB_RENDER_DEVICE_FILE")
            .expect("the render device is named");
        assert!(
            !Path::new(device).exists(),
            "{device} exists on this machine"
        );
    }

    #[test]
    fn probe_finds_render_nodes_and_reads_the_environment() {
        let dri = tempfile::tempdir().expect("a temp dir");
        let none = |_: &str| None;
        assert!(!Machine::probe(dri.path(), none).render_node);
        std::fs::write(dri.path().join("card0"), "").expect("a file");
        assert!(
            !Machine::probe(dri.path(), none).render_node,
            "a card is not a render node"
        );
        std::fs::write(dri.path().join("renderD128"), "").expect("a file");
        assert!(Machine::probe(dri.path(), none).render_node);
        assert!(!Machine::probe(&dri.path().join("missing"), none).render_node);

        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            }
        };
        let software = |pairs| Machine::probe(dri.path(), env(pairs)).software_gl_forced;
        assert!(software(&[("LIBGL_ALWAYS_SOFTWARE", "1")]));
        assert!(software(&[("LIBGL_ALWAYS_SOFTWARE", "true")]));
        assert!(!software(&[("LIBGL_ALWAYS_SOFTWARE", "0")]));
        assert!(!software(&[("LIBGL_ALWAYS_SOFTWARE", "")]));
        assert!(!software(&[]));

        let chosen = |pairs| Machine::probe(dri.path(), env(pairs)).compositing_chosen;
        assert!(chosen(&[("WEBKIT_DISABLE_COMPOSITING_MODE", "1")]));
        assert!(chosen(&[("WEBKIT_FORCE_COMPOSITING_MODE", "1")]));
        assert!(!chosen(&[("WEBKIT_DISABLE_COMPOSITING_MODE", "")]));
        assert!(!chosen(&[]));
    }
}
