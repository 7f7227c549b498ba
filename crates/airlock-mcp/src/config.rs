//! The MCP servers file: the `mcpServers` shape of Claude Desktop and Claude Code, plus an
//! optional `airlock` section per server (timeout, result cap, annotation overrides).
//!
//! ```json
//! {"mcpServers": {
//!   "files": {"command": "mcp-server-filesystem", "args": ["/tmp/work"],
//!             "env": {"TOKEN": "${env:FILES_TOKEN}"},
//!             "airlock": {"timeout": "30s", "max_result_bytes": 1048576,
//!                         "tools": {"write_file": {"destructive": false}}}},
//!   "crm": {"url": "http://127.0.0.1:8080/mcp", "headers": {"Authorization": "Bearer ${env:CRM_TOKEN}"}}
//! }}
//! ```
//!
//! Values in `env` and `headers` may contain `${env:NAME}` references. They are checked for
//! syntax when the file is parsed and resolved only when a server is started
//! ([`ServerConfig::resolve`]); resolved values are never logged.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How long a call may take before it is cancelled and reported as lost.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest tool result accepted, measured as serialized JSON.
pub const DEFAULT_MAX_RESULT_BYTES: usize = 4 * 1024 * 1024;

/// A parsed, checked servers file. Server names are unique and match `[a-z0-9_-]+`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServersConfig {
    /// In file order.
    pub servers: IndexMap<String, ServerConfig>,
}

/// One server: how to reach it, and what Airlock adds.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    pub transport: ServerTransport,
    pub airlock: AirlockOptions,
}

/// How to reach a server. `env` and `headers` values are unresolved (may hold `${env:..}`).
#[derive(Clone, Debug, PartialEq)]
pub enum ServerTransport {
    /// A child process speaking MCP over stdin/stdout.
    Stdio {
        command: String,
        args: Vec<String>,
        env: IndexMap<String, String>,
    },
    /// A Streamable HTTP endpoint.
    Http {
        url: String,
        headers: IndexMap<String, String>,
    },
}

/// The `airlock` section of a server.
#[derive(Clone, Debug, PartialEq)]
pub struct AirlockOptions {
    pub timeout: Duration,
    pub max_result_bytes: usize,
    /// Per tool (the server's own tool name, without the `<server>.` prefix).
    pub tools: BTreeMap<String, AnnotationOverrides>,
}

impl Default for AirlockOptions {
    fn default() -> Self {
        AirlockOptions {
            timeout: DEFAULT_TIMEOUT,
            max_result_bytes: DEFAULT_MAX_RESULT_BYTES,
            tools: BTreeMap::new(),
        }
    }
}

/// Annotation overrides for one tool: each set field replaces the server's hint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnotationOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destructive: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_world: Option<bool>,
}

/// A server's transport with every `${env:..}` reference replaced. Its `Debug` output hides
/// the values of `env` and `headers`.
#[derive(Clone, PartialEq)]
pub enum ResolvedTransport {
    Stdio {
        command: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
    },
    Http {
        url: String,
        headers: Vec<(String, String)>,
    },
}

impl fmt::Debug for ResolvedTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolvedTransport::Stdio { command, args, env } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", args)
                .field("env", &env.iter().map(|(k, _)| k).collect::<Vec<_>>())
                .finish(),
            ResolvedTransport::Http { url, headers } => f
                .debug_struct("Http")
                .field("url", url)
                .field(
                    "headers",
                    &headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
                )
                .finish(),
        }
    }
}

/// A position in a file, 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not JSON, or JSON of the wrong shape (serde_json's message and position).
    #[error("{}:{}:{}: {message}", path.display(), at.line, at.column)]
    Syntax {
        path: PathBuf,
        at: Location,
        message: String,
    },
    /// Well-formed, but wrong for a server (both `command` and `url`, a bad name, ...).
    #[error("{}:{}:{}: server `{server}`: {message}", path.display(), at.line, at.column)]
    Invalid {
        path: PathBuf,
        at: Location,
        server: String,
        message: String,
    },
    /// An `${env:NAME}` reference to a variable that is not set, found at connect time.
    #[error(
        "server `{server}`: {key} refers to {}, which is not set",
        describe_reference(variable)
    )]
    MissingEnv {
        server: String,
        /// `env.NAME` or `headers.NAME`.
        key: String,
        variable: String,
    },
}

// --- The raw, serde-shaped file --------------------------------------------------------

#[derive(Debug, Default, Deserialize, Serialize)]
pub(crate) struct RawFile {
    #[serde(rename = "mcpServers", default)]
    pub mcp_servers: IndexMap<String, RawServer>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<IndexMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<IndexMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub airlock: Option<RawAirlock>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAirlock {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_result_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tools: BTreeMap<String, AnnotationOverrides>,
}

/// Reads and checks a servers file.
pub fn load_servers(path: &Path) -> Result<ServersConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_servers(path, &text)
}

/// Parses and checks a servers file's text; `path` is only used in messages.
pub fn parse_servers(path: &Path, text: &str) -> Result<ServersConfig, ConfigError> {
    let raw: RawFile = serde_json::from_str(text).map_err(|e| syntax_error(path, &e))?;
    let mut servers = IndexMap::new();
    for (name, raw_server) in raw.mcp_servers {
        let at = locate(text, &[&name]);
        let config = check_server(&name, raw_server, |message, key: Option<&str>| {
            let at = match key {
                Some(key) => locate(text, &[&name, key]),
                None => at,
            };
            ConfigError::Invalid {
                path: path.to_owned(),
                at,
                server: name.clone(),
                message,
            }
        })?;
        servers.insert(name, config);
    }
    Ok(ServersConfig { servers })
}

pub(crate) fn syntax_error(path: &Path, e: &serde_json::Error) -> ConfigError {
    // serde_json's Display appends " at line L column C"; the location goes in front.
    let message = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = message.strip_suffix(&suffix).unwrap_or(&message).to_owned();
    ConfigError::Syntax {
        path: path.to_owned(),
        at: Location {
            line: e.line(),
            column: e.column(),
        },
        message,
    }
}

/// Whether `name` can be a server name: `[a-z0-9_-]+`.
pub fn valid_server_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Checks one raw server entry. `err(message, key)` builds the error; `key` names the field
/// the message is about, for its location.
pub(crate) fn check_server(
    name: &str,
    raw: RawServer,
    err: impl Fn(String, Option<&str>) -> ConfigError,
) -> Result<ServerConfig, ConfigError> {
    if !valid_server_name(name) {
        return Err(err(
            "server names may only hold lowercase letters, digits, `_` and `-` \
             (tool names are `<server>.<tool>`)"
                .into(),
            None,
        ));
    }
    let transport = match (raw.command, raw.url) {
        (Some(_), Some(_)) => {
            return Err(err(
                "has both `command` and `url`; a server is either a process or an endpoint".into(),
                Some("url"),
            ));
        }
        (None, None) => {
            return Err(err(
                "needs either `command` (a process) or `url` (an HTTP endpoint)".into(),
                None,
            ));
        }
        (Some(command), None) => {
            if let Some(kind) = raw.kind.as_deref().filter(|k| *k != "stdio") {
                return Err(err(
                    format!("has `command` but `type` is `{kind}`; a process server is `stdio`"),
                    Some("type"),
                ));
            }
            if raw.headers.is_some() {
                return Err(err(
                    "`headers` only applies to `url` servers".into(),
                    Some("headers"),
                ));
            }
            if command.trim().is_empty() {
                return Err(err("`command` is empty".into(), Some("command")));
            }
            let env = raw.env.unwrap_or_default();
            for (key, value) in &env {
                check_references(value)
                    .map_err(|m| err(format!("env.{key}: {m}"), Some(key.as_str())))?;
            }
            ServerTransport::Stdio {
                command,
                args: raw.args.unwrap_or_default(),
                env,
            }
        }
        (None, Some(url)) => {
            match raw.kind.as_deref() {
                None | Some("http") | Some("streamable-http") => {}
                Some("sse") => {
                    return Err(err(
                        "`type` `sse` (the legacy HTTP+SSE transport) is not supported; \
                         use the server's Streamable HTTP endpoint"
                            .into(),
                        Some("type"),
                    ));
                }
                Some(kind) => {
                    return Err(err(
                        format!("has `url` but `type` is `{kind}`; an endpoint is `http`"),
                        Some("type"),
                    ));
                }
            }
            if raw.args.is_some() || raw.env.is_some() {
                return Err(err(
                    "`args` and `env` only apply to `command` servers".into(),
                    Some(if raw.args.is_some() { "args" } else { "env" }),
                ));
            }
            check_url(&url).map_err(|m| err(m, Some("url")))?;
            let headers = raw.headers.unwrap_or_default();
            for (key, value) in &headers {
                if http::HeaderName::from_bytes(key.as_bytes()).is_err() {
                    return Err(err(
                        format!("`{key}` is not a valid HTTP header name"),
                        Some(key.as_str()),
                    ));
                }
                check_references(value)
                    .map_err(|m| err(format!("headers.{key}: {m}"), Some(key.as_str())))?;
            }
            ServerTransport::Http { url, headers }
        }
    };
    let mut airlock = AirlockOptions::default();
    if let Some(raw_airlock) = raw.airlock {
        if let Some(timeout) = raw_airlock.timeout {
            airlock.timeout = parse_duration(&timeout)
                .map_err(|m| err(format!("airlock.timeout: {m}"), Some("timeout")))?;
        }
        if let Some(max) = raw_airlock.max_result_bytes {
            if max == 0 {
                return Err(err(
                    "airlock.max_result_bytes must be at least 1".into(),
                    Some("max_result_bytes"),
                ));
            }
            airlock.max_result_bytes = usize::try_from(max).unwrap_or(usize::MAX);
        }
        airlock.tools = raw_airlock.tools;
    }
    Ok(ServerConfig { transport, airlock })
}

fn check_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("`url` `{url}` is not a valid URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(format!("`url` `{url}` must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("`url` `{url}` has no host"));
    }
    Ok(())
}

/// `"30s"`, `"500ms"`, `"2m"`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || format!("`{text}` is not a duration like \"30s\", \"500ms\" or \"2m\"");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let duration = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(bad()),
    };
    if duration.is_zero() {
        return Err(format!("`{text}` is zero; a timeout must be positive"));
    }
    Ok(duration)
}

pub(crate) fn format_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

// --- ${env:NAME} and ${keychain:NAME} ------------------------------------------------------

/// Where a secret in a servers file comes from. The lookup a host is given receives the
/// environment variable's name for `${env:NAME}`, and `keychain:NAME` for
/// `${keychain:NAME}` (an environment variable's name never holds a `:`).
const REF_KINDS: [(&str, &str); 2] = [("${env:", ""), ("${keychain:", "keychain:")];

/// Splits a value into literal text and references (as the lookup receives them).
enum Piece<'a> {
    Text(&'a str),
    Var(String),
}

fn next_reference(rest: &str) -> Option<(usize, &'static str, &'static str)> {
    REF_KINDS
        .iter()
        .filter_map(|(open, prefix)| rest.find(open).map(|at| (at, *open, *prefix)))
        .min_by_key(|(at, _, _)| *at)
}

fn pieces(value: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some((start, open, prefix)) = next_reference(rest) {
        out.push(Piece::Text(&rest[..start]));
        let after = &rest[start + open.len()..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("`{open}` without a closing `}}`"))?;
        let name = &after[..end];
        let valid = if prefix.is_empty() {
            name.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        } else {
            // Keychain entries are named by people: letters, digits, `-`, `_`, `.`.
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        };
        if !valid {
            return Err(format!(
                "`{open}{name}}}` does not name {}",
                if prefix.is_empty() {
                    "a variable"
                } else {
                    "a keychain entry (letters, digits, `-`, `_`, `.`)"
                }
            ));
        }
        out.push(Piece::Var(format!("{prefix}{name}")));
        rest = &after[end + 1..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

fn check_references(value: &str) -> Result<(), String> {
    pieces(value).map(|_| ())
}

fn resolve_value(
    server: &str,
    key: &str,
    value: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    // Checked at parse time; a value built in code gets the same check here.
    let pieces = pieces(value).map_err(|message| ConfigError::MissingEnv {
        server: server.to_owned(),
        key: key.to_owned(),
        variable: message,
    })?;
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Var(name) => {
                out.push_str(&lookup(&name).ok_or_else(|| ConfigError::MissingEnv {
                    server: server.to_owned(),
                    key: key.to_owned(),
                    variable: name.to_owned(),
                })?)
            }
        }
    }
    Ok(out)
}

/// `the environment variable `X`` or `the keychain entry `Y`` (the entry's service is
/// `airlock`; `airlock secrets set Y` stores it).
fn describe_reference(reference: &str) -> String {
    match reference.strip_prefix("keychain:") {
        Some(entry) => {
            format!("the keychain entry `{entry}` (store it with `airlock secrets set {entry}`)")
        }
        None => format!("the environment variable `{reference}`"),
    }
}

impl ServerConfig {
    /// Resolves `${env:NAME}` and `${keychain:NAME}` references with `lookup` (the process environment in
    /// production). A missing variable is an error naming the server and key.
    pub fn resolve(
        &self,
        server: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ResolvedTransport, ConfigError> {
        Ok(match &self.transport {
            ServerTransport::Stdio { command, args, env } => ResolvedTransport::Stdio {
                command: command.clone(),
                args: args.clone(),
                env: env
                    .iter()
                    .map(|(k, v)| {
                        Ok((
                            k.clone(),
                            resolve_value(server, &format!("env.{k}"), v, lookup)?,
                        ))
                    })
                    .collect::<Result<_, ConfigError>>()?,
            },
            ServerTransport::Http { url, headers } => ResolvedTransport::Http {
                url: url.clone(),
                headers: headers
                    .iter()
                    .map(|(k, v)| {
                        Ok((
                            k.clone(),
                            resolve_value(server, &format!("headers.{k}"), v, lookup)?,
                        ))
                    })
                    .collect::<Result<_, ConfigError>>()?,
            },
        })
    }

    /// A stdio server with no Airlock options.
    pub fn stdio(command: impl Into<String>, args: &[&str]) -> ServerConfig {
        ServerConfig {
            transport: ServerTransport::Stdio {
                command: command.into(),
                args: args.iter().map(|a| a.to_string()).collect(),
                env: IndexMap::new(),
            },
            airlock: AirlockOptions::default(),
        }
    }

    /// The entry as it is written in a servers file (the `airlock` section only when it
    /// differs from the defaults).
    pub fn to_json(&self) -> Value {
        let mut raw = RawServer::default();
        match &self.transport {
            ServerTransport::Stdio { command, args, env } => {
                raw.command = Some(command.clone());
                raw.args = (!args.is_empty()).then(|| args.clone());
                raw.env = (!env.is_empty()).then(|| env.clone());
            }
            ServerTransport::Http { url, headers } => {
                raw.kind = Some("http".into());
                raw.url = Some(url.clone());
                raw.headers = (!headers.is_empty()).then(|| headers.clone());
            }
        }
        let defaults = AirlockOptions::default();
        if self.airlock != defaults {
            raw.airlock = Some(RawAirlock {
                timeout: (self.airlock.timeout != defaults.timeout)
                    .then(|| format_duration(self.airlock.timeout)),
                max_result_bytes: (self.airlock.max_result_bytes != defaults.max_result_bytes)
                    .then_some(self.airlock.max_result_bytes as u64),
                tools: self.airlock.tools.clone(),
            });
        }
        serde_json::to_value(raw).unwrap_or(Value::Null)
    }
}

/// Where the key `path[last]` is: the first occurrence of each quoted key after the
/// previous one. A heuristic for messages about well-formed JSON (serde only gives
/// positions for errors it finds itself); falls back to the last key found.
pub(crate) fn locate(text: &str, path: &[&str]) -> Location {
    let mut offset = text.find("\"mcpServers\"").unwrap_or(0);
    for key in path {
        let quoted = serde_json::to_string(key).unwrap_or_default();
        match text[offset..].find(&quoted) {
            Some(found) => offset += found,
            None => break,
        }
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Location { line, column }
}
