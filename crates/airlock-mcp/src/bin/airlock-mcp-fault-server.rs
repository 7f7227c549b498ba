//! TEST FIXTURE: an MCP server over stdio that misbehaves on request, for airlock-mcp's tests.
//! Not for use outside tests.
//!
//! Tools: `ok` (echoes its arguments, the request `_meta`, the `FAULT_ECHO_ENV` variable and
//! every cancellation received so far, as structured content), `text` (echoes its arguments as
//! JSON in one text item), `exit_mid_call` (exits with status 3 while handling the call),
//! `hang` (never answers until cancelled), `garbage` (writes a line that is not JSON to
//! stdout, then answers or exits with status 4), `huge` (a text result of `bytes` bytes,
//! default 50 MB), `fail` (a tool error), `add_tool` (adds a tool named `extra` and sends
//! `notifications/tools/list_changed`). `tools/list` pages two tools at a time.

use std::io::Write;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelledNotificationParam,
    ContentBlock, ErrorData, Implementation, JsonObject, ListToolsResult, PaginatedRequestParams,
    ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};

const PAGE: usize = 2;

#[derive(Clone, Default)]
struct Fault {
    cancelled: Arc<Mutex<Vec<Value>>>,
    extra: Arc<Mutex<bool>>,
}

fn schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => Arc::new(JsonObject::new()),
    }
}

impl Fault {
    fn tools(&self) -> Vec<Tool> {
        let object = || schema(json!({"type": "object"}));
        let mut tools = vec![
            Tool::new(
                "ok",
                "Echoes its arguments, the request _meta and the cancellations seen so far.",
                schema(json!({
                    "type": "object",
                    "properties": {
                        "message": {"type": "string"},
                        "idempotency_key": {"type": "string"}
                    }
                })),
            )
            .with_annotations(ToolAnnotations::new().read_only(true).open_world(false)),
            Tool::new(
                "text",
                "Echoes its arguments as JSON in a text item.",
                object(),
            ),
            Tool::new(
                "exit_mid_call",
                "Exits with status 3 while handling the call.",
                object(),
            ),
            Tool::new("hang", "Never answers.", object()),
            Tool::new(
                "garbage",
                "Writes a non-JSON line to stdout, then answers (then=answer) or exits 4 (then=exit).",
                object(),
            ),
            Tool::new("huge", "Returns a text result of `bytes` bytes.", object()),
            Tool::new("fail", "Reports a tool error.", object()),
            Tool::new(
                "add_tool",
                "Adds the tool `extra` and says the list changed.",
                object(),
            ),
        ];
        if *lock(&self.extra) {
            tools.push(Tool::new("extra", "Added at run time.", object()));
        }
        tools
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn text(s: impl Into<String>) -> CallToolResponse {
    CallToolResult::success(vec![ContentBlock::text(s)]).into()
}

impl ServerHandler for Fault {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new("airlock-mcp-fault-server", "0"))
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let start: usize = request
            .and_then(|r| r.cursor)
            .map(|c| {
                c.parse()
                    .map_err(|_| ErrorData::invalid_params("bad cursor", None))
            })
            .transpose()?
            .unwrap_or(0);
        let tools = self.tools();
        let end = (start + PAGE).min(tools.len());
        let mut result = ListToolsResult::with_all_items(tools[start..end].to_vec());
        result.next_cursor = (end < tools.len()).then(|| end.to_string());
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = Value::Object(request.arguments.clone().unwrap_or_default());
        match request.name.as_ref() {
            "ok" => {
                let structured = json!({
                    "arguments": args,
                    "meta": Value::Object(context.meta.0.0.clone()),
                    "params_meta": request.meta.as_ref().map(|m| Value::Object(m.0.0.clone())),
                    "env": std::env::var("FAULT_ECHO_ENV").ok(),
                    "cancelled": lock(&self.cancelled).clone(),
                });
                let mut result = CallToolResult::success(vec![]);
                result.structured_content = Some(structured);
                Ok(result.into())
            }
            "text" => Ok(text(args.to_string())),
            "exit_mid_call" => {
                eprintln!("exit_mid_call: exiting with status 3");
                std::process::exit(3);
            }
            "hang" => {
                context.ct.cancelled().await;
                eprintln!("hang: cancelled");
                Err(ErrorData::internal_error("cancelled", None))
            }
            "garbage" => {
                {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(b"this is not JSON-RPC\n");
                    let _ = out.flush();
                }
                if args["then"] == "exit" {
                    std::process::exit(4);
                }
                Ok(text("answered after the garbage"))
            }
            "huge" => {
                let bytes = args["bytes"].as_u64().unwrap_or(50_000_000) as usize;
                Ok(text("x".repeat(bytes)))
            }
            "fail" => Ok(CallToolResult::error(vec![ContentBlock::text(
                "the fault server failed on purpose",
            )])
            .into()),
            "add_tool" => {
                *lock(&self.extra) = true;
                let _ = context.peer.notify_tool_list_changed().await;
                Ok(text("added"))
            }
            "extra" => Ok(text("extra")),
            other => Err(ErrorData::invalid_params(
                format!("no tool named `{other}`"),
                None,
            )),
        }
    }

    async fn on_cancelled(
        &self,
        notification: CancelledNotificationParam,
        _context: NotificationContext<RoleServer>,
    ) {
        lock(&self.cancelled).push(json!({
            "request_id": notification.request_id.as_ref().map(|id| id.to_string()),
            "reason": notification.reason,
        }));
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    eprintln!("fault server starting");
    let service = match Fault::default().serve(rmcp::transport::stdio()).await {
        Ok(service) => service,
        Err(e) => {
            eprintln!("fault server: handshake failed: {e}");
            std::process::exit(1);
        }
    };
    let _ = service.waiting().await;
}
