//! The seam to the reasoning engine. An agent state asks a [`Model`] for its next move;
//! the model only ever *proposes* tool calls, which the runner checks and records before
//! anything runs. The Claude client and the scripted demo model implement this trait.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::BoxFuture;
use crate::tool_host::ToolInfo;

/// What the model sees: the goal, the tools it may use, and this step's own turns so far
/// (not a transcript of the whole task).
#[derive(Clone, Debug, Serialize)]
pub struct ModelRequest {
    pub task_id: String,
    pub workflow: String,
    pub state: String,
    /// The task's inputs and the outputs of its completed states: what the model may
    /// rely on, instead of a transcript of everything before.
    pub context: Value,
    pub goal: String,
    pub tools: Vec<ToolInfo>,
    pub output_schema: Option<Value>,
    pub turns: Vec<Turn>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Turn {
    Model {
        reply: ModelReply,
    },
    ToolResult {
        call: String,
        tool: String,
        ok: bool,
        content: Value,
    },
    /// The model's previous final answer was rejected (it broke the output schema); this
    /// says why, so the next turn can repair it.
    Repair {
        problem: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ModelReply {
    /// Proposals, decided one by one.
    ToolCalls { calls: Vec<ProposedCall> },
    /// The state's answer.
    Final { output: Value },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProposedCall {
    /// The model's own id for the call, echoed in the result.
    pub id: String,
    pub tool: String,
    pub args: Value,
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ModelError(pub String);

/// Tokens a model used, as its API counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
    #[serde(default)]
    pub cache_read_input_tokens: u64,
}

impl ModelUsage {
    /// What counts against a state's `max_tokens`.
    pub fn total(&self) -> u64 {
        self.input_tokens
            + self.output_tokens
            + self.cache_creation_input_tokens
            + self.cache_read_input_tokens
    }
}

pub trait Model: Send + Sync + 'static {
    /// How the model is named wherever a model name appears.
    fn name(&self) -> String;
    fn respond(&self, request: ModelRequest) -> BoxFuture<'_, Result<ModelReply, ModelError>>;
    /// What the task's requests used since the last time this was asked; recorded with
    /// each turn. Models that do not count (the scripted one) say nothing.
    fn take_usage(&self, _task_id: &str) -> Option<ModelUsage> {
        None
    }
}
