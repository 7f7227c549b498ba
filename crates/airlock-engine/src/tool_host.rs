//! The seam to tools. The engine calls tools only through [`ToolHost`]; the MCP layer
//! implements it for real servers, [`crate::builtin_tools`] for the built-in test tools.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::clock::BoxFuture;

/// What the engine needs to know about a tool before calling it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolInfo {
    /// `<server>.<tool>`
    pub name: String,
    pub description: String,
    /// JSON Schema the arguments must match; checked before the intent is recorded.
    pub input_schema: Value,
    /// JSON Schema of the structured result, when the tool declares one; checked after.
    pub output_schema: Option<Value>,
    pub annotations: ToolAnnotations,
}

/// MCP's tool hints. A server's hints are untrusted defaults: configuration may override
/// them, and the engine only ever relaxes its care for a tool on their word in one way
/// (an idempotent tool may be called again after an interruption).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolAnnotations {
    /// Reads only; calling it changes nothing anywhere.
    pub read_only: bool,
    /// May overwrite or delete (meaningful for tools that are not read-only).
    pub destructive: bool,
    /// Calling it twice with the same arguments and idempotency key has the effect of once.
    pub idempotent: bool,
    /// Reaches outside the system it belongs to (the internet, other people).
    pub open_world: bool,
}

/// How much harm a call can do; the default for policy decisions.
pub use airlock_policy::Risk;

impl ToolInfo {
    /// Whether the call may be made again after an interruption without asking a person.
    pub fn safe_to_repeat(&self) -> bool {
        self.annotations.read_only || self.annotations.idempotent
    }

    /// The default risk: reads are low, writes medium, destructive or open-world writes high.
    pub fn risk(&self) -> Risk {
        let a = self.annotations;
        if a.read_only {
            Risk::Low
        } else if a.destructive || a.open_world {
            Risk::High
        } else {
            Risk::Medium
        }
    }

    /// A hash of everything a person approves when they allow a tool: its description,
    /// schemas and hints. A server that changes any of them changes the hash.
    pub fn definition_hash(&self) -> String {
        let definition = serde_json::json!({
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
            "output_schema": self.output_schema,
            "annotations": self.annotations,
        });
        crate::ledger::args_hash(&definition)
    }
}

/// One call, as the engine makes it after the intent is on disk.
#[derive(Clone, Debug)]
pub struct ToolRequest<'a> {
    pub tool: &'a str,
    pub args: &'a Value,
    /// Stable across retries of the same logical call; tools that honour it deduplicate.
    pub idempotency_key: &'a str,
    pub task_id: &'a str,
    /// Where the host may report how far the call has got (MCP's `notifications/progress`).
    /// The engine records what it hears on the step; it never changes what happens to the
    /// call.
    pub progress: Option<&'a ProgressSink>,
}

/// How far a call under way has got, as the tool reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolProgress {
    /// Grows with every report, even when the total is unknown.
    pub progress: f64,
    pub total: Option<f64>,
    pub message: Option<String>,
}

/// The engine's ear for the progress of one call. Reports that come after the call has
/// ended are dropped.
#[derive(Clone, Debug)]
pub struct ProgressSink(mpsc::UnboundedSender<ToolProgress>);

impl ProgressSink {
    /// A sink and the receiving end of what is reported through it.
    pub fn channel() -> (ProgressSink, mpsc::UnboundedReceiver<ToolProgress>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (ProgressSink(tx), rx)
    }

    pub fn report(&self, progress: ToolProgress) {
        let _ = self.0.send(progress);
    }
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

/// Several hosts seen as one (the built-in tools and the MCP servers). A tool belongs to
/// the first host that lists it.
#[derive(Clone, Default)]
pub struct ToolHosts {
    hosts: Vec<std::sync::Arc<dyn ToolHost>>,
}

impl ToolHosts {
    pub fn new() -> ToolHosts {
        ToolHosts::default()
    }

    pub fn with(mut self, host: std::sync::Arc<dyn ToolHost>) -> ToolHosts {
        self.hosts.push(host);
        self
    }
}

impl ToolHost for ToolHosts {
    fn tools(&self) -> Vec<ToolInfo> {
        let mut seen = std::collections::BTreeSet::new();
        let mut all = Vec::new();
        for host in &self.hosts {
            for tool in host.tools() {
                if seen.insert(tool.name.clone()) {
                    all.push(tool);
                }
            }
        }
        all
    }

    fn describe(&self, tool: &str) -> Option<ToolInfo> {
        self.hosts.iter().find_map(|h| h.describe(tool))
    }

    fn call<'a>(&'a self, request: ToolRequest<'a>) -> BoxFuture<'a, Result<Value, ToolError>> {
        match self
            .hosts
            .iter()
            .find(|h| h.describe(request.tool).is_some())
        {
            Some(host) => host.call(request),
            None => {
                let name = request.tool.to_owned();
                Box::pin(async move { Err(ToolError::Unknown(name)) })
            }
        }
    }
}
