//! The validated workflow: what the engine runs. Built only by [`crate::parse`].

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::args::Args;
use crate::expr::Expr;
use crate::template::Template;

/// A validated workflow definition. Cheap enough to clone; `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Workflow {
    pub name: String,
    pub description: Option<String>,
    /// The name of the first state.
    pub start: String,
    /// Inputs in file order.
    pub inputs: Vec<InputSpec>,
    /// States in file order.
    pub states: Vec<State>,
    /// Checked in order when a task reaches a `succeeded` end (see [`Postcondition`]).
    pub postconditions: Vec<Postcondition>,
    /// The TOML it was read from.
    pub source: String,
    /// Lower-case hex SHA-256 of `source`: the workflow's version.
    pub hash: String,
}

impl Workflow {
    /// The state with this name.
    pub fn state(&self, name: &str) -> Option<&State> {
        self.states.iter().find(|s| s.name == name)
    }

    /// The input with this name.
    pub fn input(&self, name: &str) -> Option<&InputSpec> {
        self.inputs.iter().find(|i| i.name == name)
    }
}

/// What must hold once a task has reached a `succeeded` end, checked before its outcome
/// is recorded: an optional read-only tool call, then expressions over its `result` and
/// the task. One that is false makes the task's outcome `failed`.
#[derive(Clone, Debug)]
pub struct Postcondition {
    pub name: String,
    pub description: Option<String>,
    pub call: Option<PostconditionCall>,
    /// All must be true; never empty.
    pub expect: Vec<Expr>,
    pub message: Option<Template>,
    /// Where the tool (or, without one, the name) is written: for the problems found when
    /// the workflow meets its tools.
    pub(crate) span: std::ops::Range<usize>,
}

/// The read a post-condition makes.
#[derive(Clone, Debug)]
pub struct PostconditionCall {
    /// `<server>.<tool>`; only a read-only tool may be used.
    pub tool: String,
    pub args: Args,
}

/// One declared input.
#[derive(Clone, Debug, PartialEq)]
pub struct InputSpec {
    pub name: String,
    pub ty: InputType,
    /// False when the input has a default or says `required = false`.
    pub required: bool,
    /// Already checked against `ty`; `number` defaults are stored as doubles.
    pub default: Option<Value>,
    pub description: Option<String>,
}

/// The type of an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    /// Text.
    String,
    /// Any number; stored as a double.
    Number,
    /// A whole number.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// A JSON object (a TOML table).
    Object,
    /// A JSON array.
    Array,
}

impl InputType {
    pub const ALL: [InputType; 6] = [
        Self::String,
        Self::Number,
        Self::Integer,
        Self::Boolean,
        Self::Object,
        Self::Array,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Integer => "integer",
            Self::Boolean => "boolean",
            Self::Object => "object",
            Self::Array => "array",
        }
    }

    /// Reads a type name as written in a workflow file.
    pub fn from_name(name: &str) -> Option<InputType> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for InputType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One state of the machine.
#[derive(Clone, Debug)]
pub struct State {
    pub name: String,
    pub description: Option<String>,
    pub kind: StateKind,
    /// Always present; `max_attempts = 1` (the default) means no retry.
    pub retry: RetryPolicy,
    pub timeout: Option<Duration>,
    /// Where to go when the step errors or its attempts are exhausted.
    pub on_error: Option<String>,
}

impl State {
    /// Every state this one can go to, `on_error` included, without repeats.
    pub fn successors(&self) -> Vec<&str> {
        let mut out: Vec<&str> = match &self.kind {
            StateKind::Tool(s) => vec![&s.next],
            StateKind::Agent(s) => {
                let mut to = vec![s.next.as_str()];
                to.extend(s.min_confidence.as_ref().map(|(_, low)| low.as_str()));
                to
            }
            StateKind::Choice(s) => s
                .branches
                .iter()
                .map(|b| b.next.as_str())
                .chain([s.default.as_str()])
                .collect(),
            StateKind::Approval(s) => vec![&s.next, &s.on_reject, &s.on_expire],
            StateKind::Check(s) => vec![&s.next, &s.on_fail],
            StateKind::Recall(s) => vec![&s.next],
            StateKind::Remember(s) => vec![&s.next],
            StateKind::End(_) => vec![],
        };
        out.extend(self.on_error.as_deref());
        let mut seen = Vec::with_capacity(out.len());
        out.retain(|name| {
            let fresh = !seen.contains(name);
            seen.push(*name);
            fresh
        });
        out
    }

    /// `tool`, `agent`, `choice`, `approval`, `check` or `end`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            StateKind::Tool(_) => "tool",
            StateKind::Agent(_) => "agent",
            StateKind::Choice(_) => "choice",
            StateKind::Approval(_) => "approval",
            StateKind::Check(_) => "check",
            StateKind::Recall(_) => "recall",
            StateKind::Remember(_) => "remember",
            StateKind::End(_) => "end",
        }
    }
}

#[derive(Clone, Debug)]
pub enum StateKind {
    Tool(ToolState),
    Agent(AgentState),
    Choice(ChoiceState),
    Approval(ApprovalState),
    Check(CheckState),
    Recall(RecallState),
    Remember(RememberState),
    End(EndState),
}

/// Reads memory about a subject; its output is `{ "entries": [...], "count": n }`.
#[derive(Clone, Debug)]
pub struct RecallState {
    pub subject: Expr,
    /// Only these categories; all when empty.
    pub categories: Vec<String>,
    pub search: Option<Template>,
    pub limit: u32,
    pub next: String,
}

/// Writes one memory entry; its output is the entry's id.
#[derive(Clone, Debug)]
pub struct RememberState {
    pub subject: Expr,
    pub category: String,
    pub key: Expr,
    pub value: Expr,
    pub text: Option<Template>,
    pub next: String,
}

/// One deterministic tool call.
#[derive(Clone, Debug)]
pub struct ToolState {
    /// `<server>.<tool>`.
    pub tool: String,
    pub args: Args,
    /// Overrides the tool's own idempotency declaration when set.
    pub idempotent: Option<bool>,
    pub next: String,
}

/// Claude works toward a goal with some tools.
#[derive(Clone, Debug)]
pub struct AgentState {
    pub goal: Template,
    /// Globs over `<server>.<tool>`; see [`crate::glob_matches`].
    pub tools: Vec<String>,
    pub output_schema: Option<Value>,
    pub max_turns: u32,
    /// The most model tokens (input + output) the state may use.
    pub max_tokens: Option<u64>,
    /// A self-reported `confidence` below this sends the task to `on_low_confidence`.
    pub min_confidence: Option<(f64, String)>,
    pub next: String,
}

/// Branch on expressions; the first true `when` wins, else `default`.
#[derive(Clone, Debug)]
pub struct ChoiceState {
    pub branches: Vec<Branch>,
    pub default: String,
}

#[derive(Clone, Debug)]
pub struct Branch {
    pub when: Expr,
    pub next: String,
}

/// A human checkpoint.
#[derive(Clone, Debug)]
pub struct ApprovalState {
    pub prompt: Template,
    /// Roles allowed to decide.
    pub approvers: Vec<String>,
    pub expires_after: Option<Duration>,
    pub next: String,
    pub on_reject: String,
    /// Defaults to `on_reject`.
    pub on_expire: String,
}

/// An outcome assertion.
#[derive(Clone, Debug)]
pub struct CheckState {
    pub assert: Expr,
    pub message: Option<Template>,
    pub next: String,
    pub on_fail: String,
}

#[derive(Clone, Debug)]
pub struct EndState {
    pub status: EndStatus,
}

/// How a task ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EndStatus {
    Succeeded,
    Failed,
    Cancelled,
}

impl EndStatus {
    pub const ALL: [EndStatus; 3] = [Self::Succeeded, Self::Failed, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn from_name(name: &str) -> Option<EndStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for EndStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How often and how patiently a step is retried.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// At least 1; 1 means a single attempt.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    /// At least 1.0.
    pub multiplier: f64,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 1,
            initial_backoff: Duration::from_millis(200),
            multiplier: 2.0,
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait after attempt `failed_attempt` (1-based) failed: `initial_backoff`,
    /// then multiplied each time, never more than `max_backoff`.
    pub fn backoff_after(&self, failed_attempt: u32) -> Duration {
        let exponent = i32::try_from(failed_attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let factor = self.multiplier.max(1.0).powi(exponent);
        // Work in whole nanoseconds so 100ms × 2 is exactly 200ms.
        let nanos = (self.initial_backoff.as_nanos() as f64 * factor).round();
        let cap = self.max_backoff.as_nanos() as f64;
        if !nanos.is_finite() || nanos >= cap {
            self.max_backoff
        } else {
            Duration::from_nanos(nanos as u64)
        }
    }
}
