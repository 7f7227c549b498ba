//! The orchestrator: runs workflows as explicit state machines against the store.
//!
//! Claude proposes, the engine disposes: a tool call runs only after its intent is on
//! disk, and its outcome is on disk before the task moves on. Entry point: [`Engine`].
//! The engine reaches tools only through [`ToolHost`], the model only through [`Model`],
//! and time only through [`Clock`].

pub mod builtin_tools;
mod checks;
pub mod clock;
mod draft;
mod engine;
mod error;
pub mod evaluation;
pub mod event;
mod gate;
pub mod history;
pub mod history_seed;
mod identity;
pub mod ledger;
mod lessons;
mod memory;
pub mod model;
mod refusals;
mod runner;
pub mod scripted_model;
pub mod spend;
pub mod tool_host;

pub use builtin_tools::BuiltinTools;
pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{Answer, Answered, CancelOutcome, Engine, EngineConfig, GrantSpec, TaskChange};
pub use error::EngineError;
pub use evaluation::{
    BadRating, Cost, MetricsReport, PolicySuggestion, PricedFigures, Pricing, Rating, Review,
    SuggestionKind,
};
pub use event::{Decision, Phase, TaskEvent};
pub use gate::{Governance, PolicySource};
pub use identity::os_user;
pub use model::{Model, ModelError, ModelReply, ModelRequest, ModelUsage, ProposedCall, Turn};
pub use scripted_model::ScriptedModel;
pub use tool_host::{Risk, ToolAnnotations, ToolError, ToolHost, ToolHosts, ToolInfo, ToolRequest};

pub use airlock_policy as policy;
pub use airlock_store as store;
pub use airlock_workflow as workflow;
