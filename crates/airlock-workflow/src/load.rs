//! Entry points: parse a workflow from text, load one file, or load a folder of them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, DiagnosticCode, Diagnostics, Reporter};
use crate::model::Workflow;
use crate::validate::{name_span, parse_workflow};

/// Why a workflow file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// Parses and validates a workflow; `file` is only used in messages.
pub fn parse(file: &Path, source: &str) -> Result<Workflow, Diagnostics> {
    parse_workflow(file, source)
}

/// Reads and validates one workflow file.
pub fn load(path: &Path) -> Result<Workflow, LoadError> {
    let source = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &source).map_err(LoadError::Invalid)
}

/// The other TOML files a workspace folder holds beside its workflows.
pub const NOT_WORKFLOWS: [&str; 3] = ["policy.toml", "identities.toml", "demo.toml"];

/// Loads every `*.toml` file directly in `dir` (but [`NOT_WORKFLOWS`]), in file-name
/// order. Invalid files are left out and reported; so is any file whose workflow `name`
/// an earlier file already uses.
pub fn load_dir(dir: &Path) -> (Vec<Workflow>, Diagnostics) {
    let (files, problems) = load_dir_files(dir);
    (files.into_iter().map(|(_, w)| w).collect(), problems)
}

/// [`load_dir`], with the file each workflow came from (its origin, for what is said
/// about it later and for the stored definition).
pub fn load_dir_files(dir: &Path) -> (Vec<(PathBuf, Workflow)>, Diagnostics) {
    let mut problems = Vec::new();
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|entry| match entry {
                Ok(entry) => Some(entry.path()),
                Err(error) => {
                    problems.push(unreadable(dir, &error));
                    None
                }
            })
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
            .filter(|p| {
                !p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| NOT_WORKFLOWS.contains(&n))
            })
            .collect(),
        Err(error) => return (Vec::new(), Diagnostics(vec![unreadable(dir, &error)])),
    };
    paths.sort();

    let mut workflows: Vec<(PathBuf, Workflow)> = Vec::new();
    let mut first_file: HashMap<String, PathBuf> = HashMap::new();
    for path in paths {
        let source = match std::fs::read_to_string(&path) {
            Ok(source) => source,
            Err(error) => {
                problems.push(unreadable(&path, &error));
                continue;
            }
        };
        match parse(&path, &source) {
            Ok(workflow) => {
                if let Some(earlier) = first_file.get(&workflow.name) {
                    let mut reporter = Reporter::new(&path, &source);
                    let at = name_span(&source).map_or(0, |s| s.start);
                    reporter.error(
                        DiagnosticCode::DuplicateName,
                        at,
                        format!(
                            "the workflow name `{}` is already used by {}; each workflow needs its own name",
                            workflow.name,
                            earlier.display()
                        ),
                    );
                    problems.extend(reporter.finish());
                } else {
                    first_file.insert(workflow.name.clone(), path.clone());
                    workflows.push((path, workflow));
                }
            }
            Err(diagnostics) => problems.extend(diagnostics),
        }
    }
    (workflows, Diagnostics(problems))
}

fn unreadable(path: &Path, error: &std::io::Error) -> Diagnostic {
    Diagnostic {
        code: DiagnosticCode::UnreadableFile,
        message: format!("cannot read this file or folder: {error}"),
        file: path.to_path_buf(),
        line: 1,
        column: 1,
    }
}
