//! Workflow definitions: the TOML format, its validation, and the CEL expressions in it.
//!
//! [`parse`], [`load`] and [`load_dir`] turn TOML into a validated [`Workflow`] or into
//! [`Diagnostics`], every one located at file:line:column with a stable code. The
//! validated types are `Clone + Send + Sync` so the engine can share a workflow across
//! tasks. This crate does no IO except reading the files it is asked to load.

mod args;
mod diagnostic;
mod duration;
mod expr;
mod glob;
mod inputs;
mod load;
mod model;
mod raw;
mod schema;
mod template;
mod tools;
mod validate;

pub use args::{ArgNode, Args};
pub use diagnostic::{Diagnostic, DiagnosticCode, Diagnostics, Reporter, did_you_mean};
pub use duration::{format_duration, parse_duration};
pub use expr::{Bindings, EvalError, Expr, Scope, SyntaxError, VariablePath};
pub use glob::glob_matches;
pub use inputs::{InputError, InputErrors, parse_cli_value};
pub use load::{LoadError, load, load_dir, load_dir_files, parse};
pub use model::{
    AgentState, ApprovalState, Branch, CheckState, ChoiceState, EndState, EndStatus, InputSpec,
    InputType, Postcondition, PostconditionCall, RecallState, RememberState, RetryPolicy, State,
    StateKind, ToolState, Workflow,
};
pub use schema::workflow_json_schema;
pub use template::Template;
pub use tools::ToolAccess;
