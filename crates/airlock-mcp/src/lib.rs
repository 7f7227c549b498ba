//! The MCP adapter: starts or connects to the configured MCP servers and offers their tools
//! to the engine as one [`airlock_engine::ToolHost`] ([`McpTools`]), tools named
//! `<server>.<tool>`.
//!
//! - [`config`]: the servers file (Claude's `mcpServers` shape plus an `airlock` section).
//! - [`import`]: importing servers from Claude Desktop / Claude Code config files.
//! - [`connection`]: one server (process or endpoint, tool list, calls, restarts, status).
//! - [`host`]: [`McpTools`], the `ToolHost`.
//!
//! The engine validates arguments and results against the schemas, records intents and
//! outcomes, and pins tool definitions; this crate only talks to servers. It never retries a
//! call: an answer that did not come is [`airlock_engine::ToolError::Lost`], and the engine
//! decides.

pub mod config;
pub mod connection;
pub mod host;
pub mod import;
mod stdio_transport;

pub use config::{
    AirlockOptions, AnnotationOverrides, ConfigError, ServerConfig, ServerTransport, ServersConfig,
    load_servers, parse_servers,
};
pub use connection::{ServerState, ServerStatus};
pub use host::McpTools;
pub use import::{MergeReport, import_servers, merge_into};
