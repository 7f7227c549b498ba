//! The example workspace validates, and `load`/`load_dir` report files and duplicates.

use std::path::{Path, PathBuf};

use airlock_workflow::{DiagnosticCode, LoadError, load, load_dir};

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../workspace/examples")
}

/// Tools the examples may use: the engine's built-ins.
const BUILTINS: [&str; 5] = [
    "builtin.echo",
    "builtin.record",
    "builtin.upsert",
    "builtin.sleep",
    "builtin.fail",
];

#[test]
fn every_example_validates_and_uses_only_builtin_tools() {
    let (workflows, diagnostics) = load_dir(&examples_dir());
    assert!(diagnostics.is_empty(), "{diagnostics}");
    let mut names: Vec<&str> = workflows.iter().map(|w| w.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["approve-payout", "echo-and-record", "flaky-upsert"]);
    for workflow in &workflows {
        for state in &workflow.states {
            if let airlock_workflow::StateKind::Tool(tool) = &state.kind {
                assert!(
                    BUILTINS.contains(&tool.tool.as_str()),
                    "{}: {}",
                    workflow.name,
                    tool.tool
                );
            }
        }
    }
}

#[test]
fn load_dir_reports_bad_files_and_duplicate_names() {
    let dir = tempfile::tempdir().expect("temp dir");
    let valid = "name = \"same\"\nstart = \"done\"\n[states.done]\nkind = \"end\"\nstatus = \"succeeded\"\n";
    std::fs::write(dir.path().join("a.toml"), valid).expect("write");
    std::fs::write(dir.path().join("b.toml"), valid).expect("write");
    std::fs::write(dir.path().join("c.toml"), "name = ").expect("write");
    std::fs::write(dir.path().join("notes.txt"), "not a workflow").expect("write");
    let (workflows, diagnostics) = load_dir(dir.path());
    assert_eq!(workflows.len(), 1);
    let found: Vec<(String, DiagnosticCode, u32, u32)> = diagnostics
        .iter()
        .map(|d| {
            let file = d
                .file
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            (file, d.code, d.line, d.column)
        })
        .collect();
    assert_eq!(
        found,
        [
            ("b.toml".to_owned(), DiagnosticCode::DuplicateName, 1, 8),
            ("c.toml".to_owned(), DiagnosticCode::TomlSyntax, 1, 8),
        ]
    );
    assert!(
        diagnostics.0[0].message.contains("already used by"),
        "{diagnostics}"
    );
}

#[test]
fn load_distinguishes_unreadable_from_invalid() {
    let missing = Path::new("/nonexistent/airlock/workflow.toml");
    assert!(matches!(load(missing), Err(LoadError::Io { .. })));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "name = \"x\"\n").expect("write");
    match load(&path) {
        Err(LoadError::Invalid(d)) => assert_eq!(d.0[0].file, path),
        other => panic!("expected invalid, got {other:?}"),
    }
    let (none, diagnostics) = load_dir(Path::new("/nonexistent/airlock"));
    assert!(none.is_empty());
    assert_eq!(diagnostics.0[0].code, DiagnosticCode::UnreadableFile);
}
