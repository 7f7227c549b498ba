//! Printing. Results go to stdout; a reader that goes away (`airlock tasks | head`) ends
//! the command quietly instead of a panic: everything already committed stays committed.
//! Warnings, notes, logs and errors go to stderr: as text, or under `--json` as one JSON
//! object per line (a failure's is `{"error": {...}}`).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use airlock_engine::workflow::Diagnostic;
use serde_json::{Value, json};

use crate::exit::Exit;

static JSON: AtomicBool = AtomicBool::new(false);

/// Under `--json`, what goes to stderr is JSON too.
pub fn set_json(on: bool) {
    JSON.store(on, Ordering::Relaxed);
}

pub fn line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{args}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        error(Exit::Error, &format!("cannot write the output: {e}"), &[]);
        std::process::exit(Exit::Error as i32);
    }
}

/// A warning or a note on stderr: `warning: ...`, or `{"warning": "..."}` under `--json`.
pub fn notice(kind: &str, text: &str) {
    if JSON.load(Ordering::Relaxed) {
        eprintln!("{}", json!({ kind: text }));
    } else {
        eprintln!("{kind}: {text}");
    }
}

/// A failure on stderr: `error: ...`, or under `--json` one object on one line,
/// `{"error": {"code", "exit", "message", "diagnostics": [{file, line, column, code,
/// message}]}}` (`diagnostics` is empty unless the failure is about places in files).
pub fn error(exit: Exit, message: &str, diagnostics: &[Diagnostic]) {
    if JSON.load(Ordering::Relaxed) {
        let error = json!({ "error": {
            "code": exit.name(),
            "exit": exit as u8,
            "message": message,
            "diagnostics": diagnostics.iter().map(diagnostic_json).collect::<Vec<_>>(),
        }});
        eprintln!("{error}");
    } else {
        eprintln!("error: {message}");
    }
}

/// One problem at a place in a file, as `validate --json` and errors give it.
pub fn diagnostic_json(d: &Diagnostic) -> Value {
    json!({
        "file": d.file, "line": d.line, "column": d.column,
        "code": d.code.as_str(), "message": d.message,
    })
}

macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
