//! Finding the workflow a command names (a file, a name in the workspace folder, or a
//! name already in the store) and turning `name=value` arguments into typed inputs.

use std::path::Path;

use airlock_engine::store::Store;
use airlock_engine::workflow::{
    Diagnostics, LoadError, Workflow, load, load_dir_files, parse, parse_cli_value,
};
use anyhow::Result;
use serde_json::{Map, Value};

/// A user error in what was asked for (exit code 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Files that do not validate (exit code 3): the message people read, and the problems
/// at file:line:column that `--json` gives scripts one by one.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Diagnosed {
    pub message: String,
    pub diagnostics: Diagnostics,
}

impl Diagnosed {
    pub fn new(diagnostics: Diagnostics) -> Diagnosed {
        Diagnosed {
            message: diagnostics.to_string().trim_end().to_owned(),
            diagnostics,
        }
    }
}

pub async fn find_workflow(
    arg: &str,
    workspace: Option<&Path>,
    store: &Store,
) -> Result<(Workflow, Option<String>)> {
    let path = Path::new(arg);
    if path.is_file() {
        return match load(path) {
            Ok(w) => Ok((w, Some(path.display().to_string()))),
            Err(LoadError::Invalid(d)) => Err(Diagnosed::new(d).into()),
            Err(e) => Err(Invalid(e.to_string()).into()),
        };
    }
    let mut broken = None;
    if let Some(dir) = workspace {
        let (workflows, problems) = load_dir_files(dir);
        broken = (!problems.is_empty()).then_some(problems);
        // Its origin is the file it came from, so that what is said about it later (its
        // tools at the start, the stored definition's origin) names the file.
        if let Some((file, w)) = workflows.into_iter().find(|(_, w)| w.name == arg) {
            return Ok((w, Some(file.display().to_string())));
        }
    }
    if let Some(record) = store
        .latest_workflows()
        .await?
        .into_iter()
        .find(|w| w.name == arg)
    {
        let origin = record.origin.clone().unwrap_or_else(|| record.name.clone());
        let w = parse(Path::new(&origin), &record.source).map_err(Diagnosed::new)?;
        // Not what the workspace holds now (if there is one): say which definition runs.
        crate::output::notice(
            "note",
            &format!(
                "`{arg}` is not {}; running its stored definition (version {}, from {origin})",
                if workspace.is_some() {
                    "in the workspace"
                } else {
                    "a file"
                },
                record.version,
            ),
        );
        return Ok((w, record.origin));
    }
    let mut message = format!(
        "no workflow `{arg}`: give a path to a .toml file, or a name found in the workspace{}",
        workspace
            .map(|d| format!(" ({})", d.display()))
            .unwrap_or_default()
    );
    // It may be one of the workspace's files that does not validate.
    if let Some(problems) = broken {
        message.push_str(&format!(
            "\nthese workspace files do not validate, so their workflows cannot be found by name:\n{}",
            problems.to_string().trim_end()
        ));
        return Err(Diagnosed {
            message,
            diagnostics: problems,
        }
        .into());
    }
    Err(Invalid(message).into())
}

pub fn parse_inputs(workflow: &Workflow, raw: &[String]) -> Result<Map<String, Value>> {
    let mut inputs = Map::new();
    for item in raw {
        let Some((name, value)) = item.split_once('=') else {
            return Err(Invalid(format!("input `{item}` should look like name=value")).into());
        };
        let value = match workflow.input(name) {
            Some(spec) => parse_cli_value(spec.ty, value).map_err(|e| Invalid(e.to_string()))?,
            // Unknown names are reported by the engine, with the inputs that do exist.
            None => Value::String(value.to_owned()),
        };
        inputs.insert(name.to_owned(), value);
    }
    Ok(inputs)
}
