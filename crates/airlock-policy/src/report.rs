//! Small helpers for the policy and identities files' diagnostics. Locating errors and
//! wording toml's errors is `airlock_workflow::Reporter`'s job, shared by every format.

use std::path::Path;

use airlock_workflow::{Diagnostic, DiagnosticCode as Code, Diagnostics};

/// The diagnostic for a file that could not be read.
pub(crate) fn unreadable(path: &Path, error: &std::io::Error) -> Diagnostics {
    Diagnostics(vec![Diagnostic {
        code: Code::UnreadableFile,
        message: format!("cannot read this file: {error}"),
        file: path.to_path_buf(),
        line: 1,
        column: 1,
    }])
}

/// `hint` appended as "; did you mean `x`?" when there is one.
pub(crate) fn with_hint(mut message: String, hint: Option<&str>) -> String {
    if let Some(close) = hint {
        message.push_str(&format!("; did you mean `{close}`?"));
    }
    message
}

/// "a, b and c".
pub(crate) fn join_words<S: AsRef<str>>(words: &[S]) -> String {
    match words {
        [] => String::new(),
        [one] => one.as_ref().to_owned(),
        [init @ .., last] => {
            let init: Vec<&str> = init.iter().map(AsRef::as_ref).collect();
            format!("{} and {}", init.join(", "), last.as_ref())
        }
    }
}
