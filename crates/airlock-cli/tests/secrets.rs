//! `airlock secrets`: a value goes from standard input into the OS keychain (the kernel
//! keyring here) and is never printed; another process finds it; delete removes it.

use std::io::Write;
use std::process::Stdio;

use airlock_tests::Sandbox;

#[test]
fn a_secret_is_stored_from_stdin_found_by_another_process_and_removed() {
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_airlock")).expect("sandbox");
    let name = format!("airlock-cli-test-{}", std::process::id());
    let mut set = sb
        .airlock(["secrets", "set", &name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    set.stdin
        .take()
        .expect("stdin")
        .write_all(b"hunter2\n")
        .expect("write");
    let out = set.wait_with_output().expect("set");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{printed}");
    assert!(!printed.contains("hunter2"), "the value is never printed");

    let (code, state) = sb.json(["secrets", "check", &name]).expect("check");
    assert_eq!((code, state["state"].as_str()), (Some(0), Some("stored")));
    let (code, _) = sb.json(["secrets", "delete", &name]).expect("delete");
    assert_eq!(code, Some(0));
    let (code, state) = sb.json(["secrets", "check", &name]).expect("check");
    assert_eq!((code, state["state"].as_str()), (Some(6), Some("missing")));
}
