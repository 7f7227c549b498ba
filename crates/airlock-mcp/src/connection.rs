//! One MCP server: starting it (a child process over stdio, or a Streamable HTTP endpoint),
//! the handshake, its tool list (paginated, refreshed on `notifications/tools/list_changed`),
//! calls with a timeout and a result cap, restarts with backoff, and a status for UIs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, CancelledNotificationParam,
    ClientCapabilities, ClientConfig, ClientRequest, Implementation, JsonObject, MetaObject,
    ProgressNotificationParam, ProgressToken, ProtocolVersion, RequestId, RequestMetaObject,
    ServerResult, Tool,
};
use rmcp::service::{NotificationContext, Peer, PeerRequestOptions, RunningService, ServiceError};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{ChildStderr, Command};
use tokio::sync::{Mutex, mpsc, oneshot, watch};

use airlock_engine::tool_host::{ProgressSink, ToolError, ToolProgress};

use crate::config::{ResolvedTransport, ServerConfig, format_duration};
use crate::stdio_transport::{StdioTransport, StrayOutput, is_lost};

/// How long starting a server (spawn or connect, handshake, first tool list) may take.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest wait between restart attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Room for the JSON-RPC envelope around a result, on top of the result cap.
const ENVELOPE_ALLOWANCE: usize = 64 * 1024;
/// The request `_meta` key carrying the engine's idempotency key.
pub const IDEMPOTENCY_META_KEY: &str = "dev.airlock/idempotency_key";

/// Where a server is, for UIs.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerStatus {
    pub name: String,
    pub state: ServerState,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ServerState {
    /// Being started (first start or a restart).
    Starting,
    /// Connected; the names of its tools, as the server calls them.
    Ready { tools: Vec<String> },
    /// Not running. The next use at or after `retry_at` starts it again.
    Failed { error: String, retry_at: SystemTime },
}

/// Looks up `${env:NAME}` references.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

pub(crate) struct Connection {
    shared: Arc<Shared>,
}

struct Shared {
    name: Arc<str>,
    config: ServerConfig,
    env: EnvLookup,
    /// The last tool list; kept while the server is down so its tools stay known.
    tools: RwLock<Vec<Tool>>,
    state: RwLock<ServerState>,
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    live: Option<Arc<Live>>,
    /// Consecutive failures (start failures and deaths); reset by a successful call.
    failures: u32,
    retry_at: Option<Instant>,
}

/// A running session. Dropping it stops the session and kills the child process.
struct Live {
    service: RunningService<RoleClient, Notifications>,
    peer: Peer<RoleClient>,
    /// Where this session's `notifications/progress` go, by progress token.
    progress: ProgressRoutes,
    /// How the child process ended, once it has (stdio only).
    exit: Option<watch::Receiver<Option<String>>>,
    stray: StrayOutput,
    _kill: Option<oneshot::Sender<()>>,
    refresher: tokio::task::JoinHandle<()>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.service.cancellation_token().cancel();
        self.refresher.abort();
    }
}

impl Live {
    fn is_dead(&self) -> bool {
        self.peer.is_transport_closed()
            || self
                .exit
                .as_ref()
                .is_some_and(|exit| exit.borrow().is_some())
    }

    /// What happened to a session whose transport broke during a call.
    async fn loss(&self, during: &str) -> String {
        let mut message = match &self.exit {
            Some(exit) => {
                let mut exit = exit.clone();
                match tokio::time::timeout(Duration::from_secs(2), exit.wait_for(Option::is_some))
                    .await
                {
                    Ok(Ok(status)) => format!(
                        "the server exited{during} ({})",
                        status.as_deref().unwrap_or("unknown status")
                    ),
                    _ => format!("the server closed its output{during}"),
                }
            }
            None => format!("the connection to the server broke{during}"),
        };
        if let Some(stray) = self.stray.lock().ok().and_then(|s| s.clone()) {
            message.push_str(&format!(
                "; before that it wrote a line to stdout that is not JSON-RPC: `{stray}`"
            ));
        }
        message
    }
}

/// The calls under way that want to hear their progress, by the token of their request.
///
/// (Not rmcp's `ProgressDispatcher`: its subscriber is a `futures::Stream`, and reports go
/// straight to the engine's unbounded sink here, with no relay task or bounded queue that
/// could hold up the session's notifications.)
#[derive(Clone, Default)]
struct ProgressRoutes(Arc<std::sync::Mutex<HashMap<ProgressToken, ProgressSink>>>);

impl ProgressRoutes {
    /// Sends the progress of the request with `token` to `sink` until the guard is dropped.
    fn route(&self, token: ProgressToken, sink: ProgressSink) -> ProgressRoute {
        lock(&self.0).insert(token.clone(), sink);
        ProgressRoute {
            routes: self.clone(),
            token,
        }
    }

    fn dispatch(&self, params: ProgressNotificationParam) {
        let sink = lock(&self.0).get(&params.progress_token).cloned();
        if let Some(sink) = sink {
            sink.report(ToolProgress {
                progress: params.progress,
                total: params.total,
                message: params.message,
            });
        }
    }
}

struct ProgressRoute {
    routes: ProgressRoutes,
    token: ProgressToken,
}

impl Drop for ProgressRoute {
    fn drop(&mut self) {
        lock(&self.routes.0).remove(&self.token);
    }
}

/// Sends `notifications/cancelled` for a request whose caller stopped waiting for it (the
/// call future was dropped: a timeout, or the engine cancelling the task), as rmcp's own
/// `call_tool` does. Disarmed once the answer is in.
struct CancelOnDrop<'a> {
    peer: &'a Peer<RoleClient>,
    id: Option<RequestId>,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let peer = self.peer.clone();
        runtime.spawn(async move {
            let params = CancelledNotificationParam::new(
                Some(id),
                Some("request abandoned by the caller".into()),
            );
            if let Err(e) = peer.notify_cancelled(params).await {
                tracing::debug!(error = %e, "could not send notifications/cancelled");
            }
        });
    }
}

/// The client side's handler: it listens for tool list changes and progress.
struct Notifications {
    list_changed: mpsc::UnboundedSender<()>,
    progress: ProgressRoutes,
}

impl ClientHandler for Notifications {
    fn get_info(&self) -> ClientConfig {
        // The newest revision that servers in the wild answer through `initialize`.
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("airlock", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.list_changed.send(());
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.dispatch(params);
    }
}

impl Connection {
    pub(crate) fn new(name: &str, config: ServerConfig, env: EnvLookup) -> Connection {
        Connection {
            shared: Arc::new(Shared {
                name: name.into(),
                config,
                env,
                tools: RwLock::new(Vec::new()),
                state: RwLock::new(ServerState::Starting),
                slot: Mutex::new(Slot::default()),
            }),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.shared.name
    }

    pub(crate) fn config(&self) -> &ServerConfig {
        &self.shared.config
    }

    pub(crate) fn status(&self) -> ServerStatus {
        ServerStatus {
            name: self.shared.name.to_string(),
            state: read(&self.shared.state).clone(),
        }
    }

    /// The last tool list seen.
    pub(crate) fn tools(&self) -> Vec<Tool> {
        read(&self.shared.tools).clone()
    }

    /// Starts the server if it is not running and may be (re)started now.
    pub(crate) async fn ensure_started(&self) -> Result<(), String> {
        self.live().await.map(|_| ())
    }

    async fn live(&self) -> Result<Arc<Live>, String> {
        let shared = &self.shared;
        let mut slot = shared.slot.lock().await;
        if let Some(live) = &slot.live {
            if !live.is_dead() {
                return Ok(live.clone());
            }
            let loss = live.loss("").await;
            tracing::warn!(server = %shared.name, "{loss}");
            slot.live = None;
            slot.failures += 1;
            slot.retry_at = Some(Instant::now() + backoff(slot.failures));
        }
        if let Some(retry_at) = slot.retry_at {
            let now = Instant::now();
            if now < retry_at {
                let error = match &*read(&shared.state) {
                    ServerState::Failed { error, .. } => error.clone(),
                    _ => "it stopped".into(),
                };
                return Err(format!(
                    "server `{}` is not running ({error}); the next start is in {:.1}s",
                    shared.name,
                    (retry_at - now).as_secs_f64()
                ));
            }
        }
        *write(&shared.state) = ServerState::Starting;
        let started = tokio::time::timeout(STARTUP_TIMEOUT, self.start()).await;
        let started = started.unwrap_or_else(|_| {
            Err(format!(
                "did not finish starting within {}",
                format_duration(STARTUP_TIMEOUT)
            ))
        });
        match started {
            Ok(live) => {
                slot.retry_at = None;
                slot.live = Some(live.clone());
                Ok(live)
            }
            Err(error) => {
                slot.failures += 1;
                let delay = backoff(slot.failures);
                slot.retry_at = Some(Instant::now() + delay);
                tracing::warn!(server = %shared.name, %error, "the server did not start");
                *write(&shared.state) = ServerState::Failed {
                    error: error.clone(),
                    retry_at: SystemTime::now() + delay,
                };
                Err(format!("server `{}` did not start: {error}", shared.name))
            }
        }
    }

    async fn start(&self) -> Result<Arc<Live>, String> {
        let shared = &self.shared;
        let resolved = shared
            .config
            .resolve(&shared.name, shared.env.as_ref())
            .map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::unbounded_channel();
        let progress = ProgressRoutes::default();
        let handler = Notifications {
            list_changed: tx,
            progress: progress.clone(),
        };
        let max_line = shared
            .config
            .airlock
            .max_result_bytes
            .saturating_add(ENVELOPE_ALLOWANCE);
        let stray = StrayOutput::default();
        let (service, exit, kill) = match resolved {
            ResolvedTransport::Stdio { command, args, env } => {
                let program = resolve_command(&command)?;
                let mut cmd = Command::new(&program);
                cmd.args(&args)
                    .envs(env)
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .kill_on_drop(true);
                let mut child = cmd
                    .spawn()
                    .map_err(|e| format!("cannot run `{}`: {e}", program.display()))?;
                let (Some(stdin), Some(stdout), Some(stderr)) =
                    (child.stdin.take(), child.stdout.take(), child.stderr.take())
                else {
                    return Err("the child process has no stdio pipes".into());
                };
                tokio::spawn(log_stderr(shared.name.clone(), stderr));
                let (exit_tx, exit_rx) = watch::channel(None);
                let (kill_tx, kill_rx) = oneshot::channel::<()>();
                tokio::spawn(async move {
                    let status = tokio::select! {
                        status = child.wait() => status,
                        _ = kill_rx => {
                            let _ = child.start_kill();
                            child.wait().await
                        }
                    };
                    let _ = exit_tx.send(Some(match status {
                        Ok(status) => describe_exit(status),
                        Err(e) => format!("its exit status is unknown: {e}"),
                    }));
                });
                let transport = StdioTransport::new(
                    shared.name.clone(),
                    stdout,
                    stdin,
                    max_line,
                    shared.config.airlock.max_result_bytes,
                    stray.clone(),
                );
                let exit_text = exit_rx.clone();
                let service = match handler.serve(transport).await {
                    Ok(service) => service,
                    Err(e) => {
                        let mut message = format!("the MCP handshake failed: {e}");
                        let mut exit = exit_text;
                        if let Ok(Ok(status)) = tokio::time::timeout(
                            Duration::from_millis(500),
                            exit.wait_for(Option::is_some),
                        )
                        .await
                        {
                            message = format!(
                                "the server exited during the handshake ({})",
                                status.as_deref().unwrap_or("unknown status")
                            );
                        }
                        return Err(message);
                    }
                };
                (service, Some(exit_rx), Some(kill_tx))
            }
            ResolvedTransport::Http { url, headers } => {
                let mut header_map = std::collections::HashMap::new();
                for (key, value) in headers {
                    let name = http::HeaderName::from_bytes(key.as_bytes())
                        .map_err(|e| format!("header `{key}`: {e}"))?;
                    // The value may be a secret: never put it in a message.
                    let value = http::HeaderValue::from_str(&value).map_err(|_| {
                        format!("header `{key}` has a value that is not allowed in HTTP")
                    })?;
                    header_map.insert(name, value);
                }
                let config = StreamableHttpClientTransportConfig::with_uri(url)
                    .custom_headers(header_map)
                    .max_json_response_size(max_line)
                    .max_sse_event_size(max_line);
                let transport = StreamableHttpClientTransport::from_config(config);
                let service = handler
                    .serve(transport)
                    .await
                    .map_err(|e| format!("the MCP handshake failed: {e}"))?;
                (service, None, None)
            }
        };
        let peer = service.peer().clone();
        let tools = peer
            .list_all_tools()
            .await
            .map_err(|e| format!("listing its tools failed: {e}"))?;
        set_tools(shared, tools);
        let refresher = tokio::spawn(refresh_on_change(Arc::downgrade(shared), peer.clone(), rx));
        Ok(Arc::new(Live {
            service,
            peer,
            progress,
            exit,
            stray,
            _kill: kill,
            refresher,
        }))
    }

    /// Calls `tool` (the server's own name). Never retries: the engine decides that.
    /// The server's `notifications/progress` for the call go to `progress`.
    pub(crate) async fn call(
        &self,
        tool: &str,
        arguments: JsonObject,
        meta: RequestMetaObject,
        progress: Option<&ProgressSink>,
    ) -> Result<Value, ToolError> {
        let live = self.live().await.map_err(ToolError::Failed)?;
        let options = &self.shared.config.airlock;
        let mut params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        params.meta = Some(meta);
        // Dropping the call future on timeout sends `notifications/cancelled`.
        let outcome =
            tokio::time::timeout(options.timeout, call_tool(&live, params, progress)).await;
        let result = match outcome {
            Err(_) => {
                return Err(ToolError::Lost(format!(
                    "no answer within {}; the request was cancelled",
                    format_duration(options.timeout)
                )));
            }
            Ok(Ok(result)) => result,
            Ok(Err(ServiceError::McpError(error))) if is_lost(&error) => {
                return Err(ToolError::Lost(error.message.into_owned()));
            }
            Ok(Err(ServiceError::McpError(error))) => {
                // A JSON-RPC error is the server refusing the request.
                self.succeeded().await;
                return Err(ToolError::Failed(format!(
                    "the server refused the call: {} (JSON-RPC error {})",
                    error.message, error.code.0
                )));
            }
            Ok(Err(ServiceError::UnexpectedResponse)) => {
                return Err(ToolError::Lost(
                    "the server answered with something other than a tool result \
                     (input requests and tasks are not supported)"
                        .into(),
                ));
            }
            Ok(Err(e @ (ServiceError::TransportClosed | ServiceError::TransportSend(_)))) => {
                let mut message = live.loss(" during the call").await;
                if matches!(e, ServiceError::TransportSend(_)) {
                    message.push_str(&format!(": {e}"));
                }
                self.mark_lost(&message);
                return Err(ToolError::Lost(message));
            }
            Ok(Err(e)) => return Err(ToolError::Lost(format!("the call broke off: {e}"))),
        };
        self.succeeded().await;
        convert_result(result, options.max_result_bytes)
    }

    async fn succeeded(&self) {
        self.shared.slot.lock().await.failures = 0;
    }

    fn mark_lost(&self, message: &str) {
        *write(&self.shared.state) = ServerState::Failed {
            error: message.to_owned(),
            retry_at: SystemTime::now(),
        };
    }
}

/// One `tools/call`, its progress routed to `progress` while the answer is awaited. Dropped
/// before the answer, it tells the server the request is abandoned.
async fn call_tool(
    live: &Live,
    params: CallToolRequestParams,
    progress: Option<&ProgressSink>,
) -> Result<CallToolResult, ServiceError> {
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
    let handle = live
        .peer
        .send_request_with_option(request, PeerRequestOptions::no_options())
        .await?;
    let _route = progress.map(|sink| {
        live.progress
            .route(handle.progress_token.clone(), sink.clone())
    });
    let mut abandoned = CancelOnDrop {
        peer: &live.peer,
        id: Some(handle.id.clone()),
    };
    let response = handle.await_response().await;
    abandoned.id = None;
    match response? {
        ServerResult::CallToolResult(result) => Ok(result),
        other => contentless(other).ok_or(ServiceError::UnexpectedResponse),
    }
}

/// A reply with no content (`{}`, a bare `resultType`, or only `_meta`) is an empty tool
/// result, as rmcp's own `call_tool` reads it.
fn contentless(result: ServerResult) -> Option<CallToolResult> {
    let meta = match result {
        ServerResult::EmptyResult(_) => None,
        ServerResult::TaskAckResult(ack) => ack.meta,
        ServerResult::CustomResult(custom) => {
            let Value::Object(mut object) = custom.0 else {
                return None;
            };
            let meta = object.remove("_meta")?;
            if !object.is_empty() {
                return None;
            }
            Some(serde_json::from_value::<MetaObject>(meta).ok()?)
        }
        _ => return None,
    };
    let mut empty = CallToolResult::default();
    empty.meta = meta;
    Some(empty)
}

/// `isError` → [`ToolError::Failed`] with its text; otherwise the result as JSON, after the
/// size check.
fn convert_result(result: CallToolResult, cap: usize) -> Result<Value, ToolError> {
    let size = serialized_size(&result);
    if size > cap {
        return Err(ToolError::Lost(format!(
            "result of {size} bytes exceeds the cap of {cap}"
        )));
    }
    if result.is_error == Some(true) {
        let text: Vec<&str> = result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
            .collect();
        let message = if text.is_empty() {
            match &result.structured_content {
                Some(value) => value.to_string(),
                None => "the tool reported an error without a message".into(),
            }
        } else {
            text.join("\n")
        };
        return Err(ToolError::Failed(message));
    }
    if let Some(structured) = result.structured_content {
        return Ok(structured);
    }
    let content = serde_json::to_value(&result.content)
        .map_err(|e| ToolError::Lost(format!("the result could not be converted: {e}")))?;
    Ok(serde_json::json!({ "content": content }))
}

fn serialized_size(value: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

fn set_tools(shared: &Shared, tools: Vec<Tool>) {
    let names = tools.iter().map(|t| t.name.to_string()).collect();
    *write(&shared.tools) = tools;
    *write(&shared.state) = ServerState::Ready { tools: names };
}

async fn refresh_on_change(
    shared: std::sync::Weak<Shared>,
    peer: Peer<RoleClient>,
    mut changes: mpsc::UnboundedReceiver<()>,
) {
    while changes.recv().await.is_some() {
        // Several notifications in a row need one refresh.
        while changes.try_recv().is_ok() {}
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match peer.list_all_tools().await {
            Ok(tools) => {
                tracing::info!(server = %shared.name, tools = tools.len(), "tool list changed");
                set_tools(&shared, tools);
            }
            Err(e) => {
                tracing::warn!(server = %shared.name, error = %e, "refreshing the tool list failed")
            }
        }
    }
}

/// Forwards the server's stderr to tracing, one event per line, never parsed.
async fn log_stderr(server: Arc<str>, stderr: ChildStderr) {
    const MAX_LINE: usize = 8 * 1024;
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    let mut truncated = false;
    loop {
        let available = match reader.fill_buf().await {
            Ok(available) if !available.is_empty() => available,
            _ => break,
        };
        let newline = available.iter().position(|b| *b == b'\n');
        let take = newline.map_or(available.len(), |i| i + 1);
        let room = MAX_LINE.saturating_sub(line.len());
        line.extend_from_slice(&available[..take.min(room)]);
        truncated |= take > room;
        reader.consume(take);
        if newline.is_some() {
            emit_stderr(&server, &line, truncated);
            line.clear();
            truncated = false;
        }
    }
    if !line.is_empty() {
        emit_stderr(&server, &line, truncated);
    }
}

fn emit_stderr(server: &str, line: &[u8], truncated: bool) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches(['\n', '\r']);
    if truncated {
        tracing::info!(target: "airlock_mcp::stderr", server, "{text} [line shortened]");
    } else {
        tracing::info!(target: "airlock_mcp::stderr", server, "{text}");
    }
}

/// A bare command name is looked for next to the current executable first (bundled
/// `airlock-demo-*` servers), then on `PATH`. A name with a `/` is used as it is.
pub fn resolve_command(command: &str) -> Result<PathBuf, String> {
    if command.contains(std::path::MAIN_SEPARATOR) || command.contains('/') {
        return Ok(PathBuf::from(command));
    }
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(command)));
    if let Some(sibling) = sibling.as_ref().filter(|p| is_executable(p)) {
        return Ok(sibling.clone());
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(command);
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    Err(format!(
        "command `{command}` was not found next to {} or on PATH",
        sibling
            .as_ref()
            .and_then(|p| p.parent())
            .map_or_else(|| "this program".into(), |d| d.display().to_string())
    ))
}

fn is_executable(path: &std::path::Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("killed by signal {signal}");
        }
    }
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "unknown exit status".into(),
    }
}

/// No wait before the first restart after a failure; then 1 s, 2 s, 4 s ... up to 30 s.
fn backoff(failures: u32) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let secs = 1u64 << (failures - 2).min(5);
    Duration::from_secs(secs).min(MAX_BACKOFF)
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
