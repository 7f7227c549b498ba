//! The offline scripted model: plays a recorded script of turns per workflow and agent
//! state, so demos and tests run agent states with no network and no API key. It goes
//! through exactly the same checked path as Claude: it only proposes. Its name always
//! says it is scripted.
//!
//! A script is a TOML file named after its workflow (`<workflow>.toml`) in a folder:
//!
//! ```toml
//! [[states.draft_reply.turns]]
//! calls = [{ tool = "support.get_order", args = { order_id = "inputs.order_id" } }]
//!
//! [[states.draft_reply.turns]]
//! final = { reply = "'Refunded ' + string(inputs.amount_cents) + ' cents'" }
//! ```
//!
//! String leaves of `args` and `final` are CEL over `inputs`, `state` (the task's
//! completed states) and, for the current state, `state.<name>.results[<tool>]`: the
//! results of this step's calls so far.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use airlock_workflow::{Expr, Scope};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::clock::BoxFuture;
use crate::model::{Model, ModelError, ModelReply, ModelRequest, ProposedCall, Turn};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Script {
    #[serde(default)]
    states: HashMap<String, StateScript>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateScript {
    turns: Vec<ScriptTurn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptTurn {
    #[serde(default)]
    calls: Vec<ScriptCall>,
    #[serde(rename = "final")]
    final_output: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptCall {
    tool: String,
    #[serde(default)]
    args: Option<toml::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("cannot read the model scripts in {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Plays scripts; labelled `scripted (offline demo model)` wherever a model name appears.
#[derive(Debug, Default)]
pub struct ScriptedModel {
    scripts: HashMap<String, Script>,
}

impl ScriptedModel {
    /// Loads every `<workflow>.toml` in `dir`. A missing folder means no scripts.
    pub fn load(dir: &Path) -> Result<ScriptedModel, ScriptError> {
        let mut scripts = HashMap::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ScriptedModel::default());
            }
            Err(source) => {
                return Err(ScriptError::Read {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|source| ScriptError::Read {
                path: path.clone(),
                source,
            })?;
            let script: Script = toml::from_str(&text).map_err(|e| ScriptError::Invalid {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            scripts.insert(name, script);
        }
        Ok(ScriptedModel { scripts })
    }

    pub fn has_scripts(&self) -> bool {
        !self.scripts.is_empty()
    }
}

/// Evaluates the string leaves of a script value as CEL.
fn evaluate(value: &toml::Value, scope: &Scope) -> Result<Value, String> {
    Ok(match value {
        toml::Value::String(source) => {
            let expr = Expr::compile(source).map_err(|e| e.to_string())?;
            expr.eval(scope).map_err(|e| e.to_string())?
        }
        toml::Value::Table(table) => {
            let mut map = Map::new();
            for (k, v) in table {
                map.insert(k.clone(), evaluate(v, scope)?);
            }
            Value::Object(map)
        }
        toml::Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| evaluate(v, scope))
                .collect::<Result<_, _>>()?,
        ),
        other => serde_json::to_value(other).map_err(|e| e.to_string())?,
    })
}

impl ScriptedModel {
    fn reply(&self, request: &ModelRequest) -> Result<ModelReply, ModelError> {
        let turns = self
            .scripts
            .get(&request.workflow)
            .and_then(|s| s.states.get(&request.state))
            .ok_or_else(|| {
                ModelError(format!(
                    "the scripted model has no script for state `{}` of workflow `{}` (add models/{}.toml)",
                    request.state, request.workflow, request.workflow
                ))
            })?;
        let played = request
            .turns
            .iter()
            .filter(|t| matches!(t, Turn::Model { .. }))
            .count();
        let turn = turns.turns.get(played).ok_or_else(|| {
            ModelError(format!(
                "the script for `{}` has {} turns and all were played",
                request.state,
                turns.turns.len()
            ))
        })?;
        // This step's results so far, by tool, under `state.<this state>.results`.
        let mut results = Map::new();
        for t in &request.turns {
            if let Turn::ToolResult { tool, content, .. } = t {
                results.insert(tool.clone(), content.clone());
            }
        }
        let inputs = request.context.get("inputs").cloned().unwrap_or(json!({}));
        let mut state = request.context.get("state").cloned().unwrap_or(json!({}));
        if let Some(map) = state.as_object_mut() {
            map.insert(request.state.clone(), json!({ "results": results }));
        }
        let task = json!({ "id": request.task_id, "workflow": request.workflow });
        let scope = Scope {
            inputs: &inputs,
            state: &state,
            task: &task,
        };
        let fail = |m: String| {
            ModelError(format!(
                "script for `{}`, turn {}: {m}",
                request.state,
                played + 1
            ))
        };
        if let Some(output) = &turn.final_output {
            return Ok(ModelReply::Final {
                output: evaluate(output, &scope).map_err(fail)?,
            });
        }
        let mut calls = Vec::new();
        for (i, call) in turn.calls.iter().enumerate() {
            let args = match &call.args {
                Some(a) => evaluate(a, &scope).map_err(fail)?,
                None => json!({}),
            };
            calls.push(ProposedCall {
                id: format!("scripted-{played}-{i}"),
                tool: call.tool.clone(),
                args,
            });
        }
        Ok(ModelReply::ToolCalls { calls })
    }
}

impl Model for ScriptedModel {
    fn name(&self) -> String {
        "scripted (offline demo model)".into()
    }

    fn respond(&self, request: ModelRequest) -> BoxFuture<'_, Result<ModelReply, ModelError>> {
        let reply = self.reply(&request);
        Box::pin(async move { reply })
    }
}
