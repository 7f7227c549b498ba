//! The seam to tools. The engine calls tools only through [`ToolHost`]; the MCP layer
//! implements it for real servers, [`crate::builtin_tools`] for the built-in test tools.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::BoxFuture;

/// What the engine needs to know about a tool before calling it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolInfo {
    /// `<server>.<tool>`
    pub name: String,
    pub description: String,
    pub input_schema: Value,
    /// Reads only; calling it changes nothing anywhere.
    pub read_only: bool,
    /// Calling it twice with the same arguments and idempotency key has the effect of once.
    pub idempotent: bool,
}

/// One call, as the engine makes it after the intent is on disk.
#[derive(Clone, Debug)]
pub struct ToolRequest<'a> {
    pub tool: &'a str,
    pub args: &'a Value,
    /// Stable across retries of the same logical call; tools that honour it deduplicate.
    pub idempotency_key: &'a str,
    pub task_id: &'a str,
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ToolError {
    /// The tool is not known to the host.
    #[error("there is no tool named `{0}`")]
    Unknown(String),
    /// The tool answered with an error: it did not take effect.
    #[error("{0}")]
    Failed(String),
    /// The call broke off without an answer (transport gone, process died): it may or
    /// may not have taken effect.
    #[error("no answer from the tool: {0}")]
    Lost(String),
}

pub trait ToolHost: Send + Sync + 'static {
    fn tools(&self) -> Vec<ToolInfo>;
    fn describe(&self, tool: &str) -> Option<ToolInfo> {
        self.tools().into_iter().find(|t| t.name == tool)
    }
    fn call<'a>(&'a self, request: ToolRequest<'a>) -> BoxFuture<'a, Result<Value, ToolError>>;
}
