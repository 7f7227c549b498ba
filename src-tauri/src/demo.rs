//! The demo's first run: a workspace with a `demo.toml` lists tasks to start the first time
//! the app opens an empty database on it, so a new user meets approvals waiting (and a
//! notification) instead of an empty inbox. Never on a later launch (the database has
//! tasks), never in a workspace without the file.
//!
//! ```toml
//! [[start]]
//! workflow = "support-refund"
//! inputs = { order_id = "ORD-5002", amount_cents = 6000 }
//! ```

use std::path::{Path, PathBuf};

use airlock_engine::store::TaskFilter;
use airlock_engine::workflow::Workflow;
use airlock_engine::{Engine, EngineError, os_user};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The file in a workspace that makes it a demo.
pub const DEMO_FILE: &str = "demo.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoFile {
    #[serde(default)]
    start: Vec<DemoTask>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoTask {
    workflow: String,
    #[serde(default)]
    inputs: Map<String, Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("reading {file}: {source}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file} is not a valid demo file: {source}")]
    Parse {
        file: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("{file} starts `{workflow}`, which is not a workflow of the workspace")]
    NoWorkflow { file: PathBuf, workflow: String },
    #[error("starting `{workflow}` from {file}: {source}")]
    Start {
        file: PathBuf,
        workflow: String,
        #[source]
        source: EngineError,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Starts the tasks `<workspace>/demo.toml` lists, as the OS user, when the database has
/// no task yet; returns their ids (none when it is not a first run or not a demo). The
/// whole file is checked before any task starts, so a mistake in it starts nothing.
pub async fn first_run(
    engine: &Engine,
    workspace: &Path,
    workflows: &[(PathBuf, Workflow)],
) -> Result<Vec<String>, DemoError> {
    let file = workspace.join(DEMO_FILE);
    if !file.is_file() {
        return Ok(Vec::new());
    }
    let empty = TaskFilter {
        status: None,
        workflow: None,
        limit: Some(1),
    };
    if !engine
        .store()
        .list_tasks(&empty)
        .await
        .map_err(EngineError::Store)?
        .is_empty()
    {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&file).map_err(|source| DemoError::Read {
        file: file.clone(),
        source,
    })?;
    let demo: DemoFile = toml::from_str(&text).map_err(|source| DemoError::Parse {
        file: file.clone(),
        source: Box::new(source),
    })?;
    let mut found = Vec::new();
    for task in &demo.start {
        let (origin, workflow) = workflows
            .iter()
            .find(|(_, w)| w.name == task.workflow)
            .ok_or_else(|| DemoError::NoWorkflow {
                file: file.clone(),
                workflow: task.workflow.clone(),
            })?;
        found.push((origin.display().to_string(), workflow, task));
    }
    let me = os_user();
    let mut started = Vec::new();
    for (origin, workflow, task) in found {
        let id = engine
            .start_task(workflow, task.inputs.clone(), &me, Some(&origin))
            .await
            .map_err(|source| DemoError::Start {
                file: file.clone(),
                workflow: workflow.name.clone(),
                source,
            })?;
        started.push(id);
    }
    Ok(started)
}
