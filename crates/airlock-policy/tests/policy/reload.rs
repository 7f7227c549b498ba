//! PolicyFile: a valid edit takes effect, an invalid one is refused and the previous
//! version stays in force.

use std::time::{Duration, Instant};

use airlock_policy::{PolicyFile, Risk};
use serde_json::json;

use crate::support::Call;

const ALLOW_ECHO: &str =
    "[[rules]]\nname = \"echo\"\ntools = [\"builtin.echo\"]\neffect = \"allow\"\n";
const DENY_ECHO: &str =
    "[[rules]]\nname = \"no echo\"\ntools = [\"builtin.echo\"]\neffect = \"deny\"\n";
const BROKEN: &str = "[[rules]]\nname = \"echo\"\ntools = [\"builtin.echo\"]\neffect = \"alow\"\n";

fn echo_effect(file: &PolicyFile) -> &'static str {
    Call::new("builtin.echo", Risk::Low, json!({}))
        .decide(&file.current())
        .effect
        .name()
}

#[test]
fn reload_now_takes_valid_edits_and_refuses_invalid_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, ALLOW_ECHO).expect("write");
    let file = PolicyFile::open(&path).expect("valid");
    assert_eq!(file.path(), path);
    let first = file.current().version().to_owned();
    assert_eq!(echo_effect(&file), "allow");
    assert_eq!(file.reload_now(), Ok(false), "nothing changed yet");

    std::fs::write(&path, DENY_ECHO).expect("write");
    assert_eq!(file.reload_now(), Ok(true));
    let second = file.current().version().to_owned();
    assert_ne!(second, first);
    assert_eq!(echo_effect(&file), "deny");
    assert_eq!(file.last_error(), None);

    std::fs::write(&path, BROKEN).expect("write");
    let refused = file.reload_now().expect_err("invalid");
    assert_eq!(
        refused.to_string(),
        format!(
            "{}:4:10: error[bad-value]: rule `echo` has the unknown effect `alow`; use allow, require_approval or deny (did you mean `allow`?)",
            path.display()
        )
    );
    assert_eq!(
        file.current().version(),
        second,
        "the previous version stays"
    );
    assert_eq!(echo_effect(&file), "deny");
    assert_eq!(file.last_error(), Some(refused));

    // Fixing the file clears the error.
    std::fs::write(&path, ALLOW_ECHO).expect("write");
    assert_eq!(file.reload_now(), Ok(true));
    assert_eq!(file.current().version(), first);
    assert_eq!(file.last_error(), None);

    // A deleted file is an error too, and the policy in force stays.
    std::fs::remove_file(&path).expect("remove");
    let gone = file.reload_now().expect_err("no file");
    assert_eq!(gone.0[0].code.as_str(), "unreadable-file");
    assert_eq!(echo_effect(&file), "allow");
    assert_eq!(file.last_error(), Some(gone));
}

#[test]
fn current_notices_edits_on_its_own() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, ALLOW_ECHO).expect("write");
    let file = PolicyFile::open(&path).expect("valid");
    let first = file.current().version().to_owned();

    std::fs::write(&path, DENY_ECHO).expect("write");
    let changed = wait_for(|| file.current().version() != first);
    assert!(changed, "a valid edit took effect within 5 s");
    assert_eq!(echo_effect(&file), "deny");
    let second = file.current().version().to_owned();

    std::fs::write(&path, BROKEN).expect("write");
    // `current` is what looks at the file; `last_error` reports what it found.
    let refused = wait_for(|| {
        file.current();
        file.last_error().is_some()
    });
    assert!(refused, "an invalid edit was noticed within 5 s");
    let error = file.last_error().expect("refused");
    assert_eq!((error.0[0].line, error.0[0].column), (4, 10));
    assert_eq!(error.0[0].file, path);
    assert_eq!(file.current().version(), second);
    assert_eq!(echo_effect(&file), "deny");
}

#[test]
fn open_refuses_an_invalid_or_missing_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("policy.toml");
    let missing = PolicyFile::open(&path).expect_err("no file");
    assert_eq!(missing.0[0].code.as_str(), "unreadable-file");
    std::fs::write(&path, BROKEN).expect("write");
    let invalid = PolicyFile::open(&path).expect_err("invalid");
    assert_eq!((invalid.0[0].line, invalid.0[0].column), (4, 10));
}

fn wait_for(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
