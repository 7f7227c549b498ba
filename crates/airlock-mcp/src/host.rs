//! [`McpTools`]: the configured MCP servers as one [`ToolHost`], tools named
//! `<server>.<tool>`.
//!
//! Results: a tool's `structuredContent` when it sends one; otherwise `{"content": [...]}`
//! with the MCP content items as they came (text items are not parsed, even when they hold
//! JSON: a result's shape never depends on what a text happens to look like).

use std::sync::Arc;

use airlock_engine::clock::BoxFuture;
use airlock_engine::tool_host::{ToolAnnotations, ToolError, ToolHost, ToolInfo, ToolRequest};
use indexmap::IndexMap;
use rmcp::model::{RequestMetaObject, Tool};
use serde_json::Value;

use crate::config::{AnnotationOverrides, ServersConfig};
use crate::connection::{Connection, EnvLookup, IDEMPOTENCY_META_KEY, ServerStatus};

/// The argument name a tool declares in its input schema to receive the idempotency key.
pub const IDEMPOTENCY_ARGUMENT: &str = "idempotency_key";

pub struct McpTools {
    servers: IndexMap<String, Connection>,
}

impl McpTools {
    /// Starts every server concurrently, resolving `${env:..}` from the process environment.
    /// A server that fails to start is reported in [`McpTools::servers`] and retried on its
    /// next use; it never keeps the others from working.
    pub async fn connect(config: ServersConfig) -> McpTools {
        McpTools::connect_with_env(config, Arc::new(|name: &str| std::env::var(name).ok())).await
    }

    /// Like [`McpTools::connect`], with `env` answering `${env:NAME}` references (also on
    /// every restart).
    pub async fn connect_with_env(config: ServersConfig, env: EnvLookup) -> McpTools {
        let servers: IndexMap<String, Connection> = config
            .servers
            .into_iter()
            .map(|(name, server)| {
                let connection = Connection::new(&name, server, env.clone());
                (name, connection)
            })
            .collect();
        let tools = McpTools { servers };
        let starts = tools.servers.values().map(|c| async move {
            // The error is in the server's status.
            let _ = c.ensure_started().await;
        });
        join_all(starts).await;
        tools
    }

    /// Each server's state, in configuration order.
    pub fn servers(&self) -> Vec<ServerStatus> {
        self.servers.values().map(Connection::status).collect()
    }

    fn info(connection: &Connection, tool: &Tool) -> ToolInfo {
        let hints = tool.annotations.as_ref();
        // MCP's defaults for absent hints.
        let mut annotations = ToolAnnotations {
            read_only: hints.and_then(|a| a.read_only_hint).unwrap_or(false),
            destructive: hints.and_then(|a| a.destructive_hint).unwrap_or(true),
            idempotent: hints.and_then(|a| a.idempotent_hint).unwrap_or(false),
            open_world: hints.and_then(|a| a.open_world_hint).unwrap_or(true),
        };
        if let Some(overrides) = connection.config().airlock.tools.get(tool.name.as_ref()) {
            apply(&mut annotations, overrides);
        }
        ToolInfo {
            name: format!("{}.{}", connection.name(), tool.name),
            description: tool.description.as_deref().unwrap_or_default().to_owned(),
            input_schema: Value::Object((*tool.input_schema).clone()),
            output_schema: tool
                .output_schema
                .as_ref()
                .map(|s| Value::Object((**s).clone())),
            annotations,
        }
    }

    async fn call_tool(&self, request: ToolRequest<'_>) -> Result<Value, ToolError> {
        let unknown = || ToolError::Unknown(request.tool.to_owned());
        let (server, tool) = request.tool.split_once('.').ok_or_else(unknown)?;
        let connection = self.servers.get(server).ok_or_else(unknown)?;
        let find = || {
            connection
                .tools()
                .into_iter()
                .find(|t| t.name.as_ref() == tool)
        };
        let definition = match find() {
            Some(definition) => definition,
            None => {
                // Never started, or started before the tool existed: start and look again.
                connection
                    .ensure_started()
                    .await
                    .map_err(ToolError::Failed)?;
                find().ok_or_else(unknown)?
            }
        };
        let Value::Object(mut arguments) = request.args.clone() else {
            return Err(ToolError::Failed(format!(
                "the arguments of `{}` must be a JSON object",
                request.tool
            )));
        };
        let declares_key = definition
            .input_schema
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| p.contains_key(IDEMPOTENCY_ARGUMENT));
        if declares_key && !arguments.contains_key(IDEMPOTENCY_ARGUMENT) {
            arguments.insert(
                IDEMPOTENCY_ARGUMENT.into(),
                Value::String(request.idempotency_key.to_owned()),
            );
        }
        let mut meta = RequestMetaObject::new();
        meta.0.insert(
            IDEMPOTENCY_META_KEY.into(),
            Value::String(request.idempotency_key.to_owned()),
        );
        connection
            .call(tool, arguments, meta, request.progress)
            .await
    }
}

fn apply(annotations: &mut ToolAnnotations, overrides: &AnnotationOverrides) {
    if let Some(v) = overrides.read_only {
        annotations.read_only = v;
    }
    if let Some(v) = overrides.destructive {
        annotations.destructive = v;
    }
    if let Some(v) = overrides.idempotent {
        annotations.idempotent = v;
    }
    if let Some(v) = overrides.open_world {
        annotations.open_world = v;
    }
}

async fn join_all<F: Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut pending: Vec<_> = futures.map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

impl ToolHost for McpTools {
    fn tools(&self) -> Vec<ToolInfo> {
        self.servers
            .values()
            .flat_map(|c| {
                c.tools()
                    .iter()
                    .map(|t| McpTools::info(c, t))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn describe(&self, tool: &str) -> Option<ToolInfo> {
        let (server, name) = tool.split_once('.')?;
        let connection = self.servers.get(server)?;
        connection
            .tools()
            .iter()
            .find(|t| t.name.as_ref() == name)
            .map(|t| McpTools::info(connection, t))
    }

    fn call<'a>(&'a self, request: ToolRequest<'a>) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(self.call_tool(request))
    }
}
