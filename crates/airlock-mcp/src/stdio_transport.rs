//! The stdio transport to a server process: newline-delimited JSON-RPC over the child's
//! stdin and stdout, read with a bounded line buffer.
//!
//! rmcp's own `AsyncRwTransport` drops a line longer than its limit and logs it, so the call
//! it answered waits forever; and it ignores lines that are not JSON without telling anyone.
//! This transport instead (a) streams through an over-long line without keeping it, finds
//! the response's top-level `id`, and answers that request with a [`lost`] error carrying
//! the size, and (b) keeps the last non-JSON line so the error for a server that then dies
//! can say what it printed.

use std::sync::{Arc, Mutex as StdMutex};

use rmcp::RoleClient;
use rmcp::model::{ErrorCode, ErrorData, JsonRpcMessage, NumberOrString};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::Mutex;

/// JSON-RPC error code of the errors this crate makes up for an answer it could not accept.
pub(crate) const LOST_CODE: i32 = -32090;
/// Marker in such an error's `data`: the call ran (or may have), but its answer is unusable.
pub(crate) const LOST_MARKER: &str = "dev.airlock/lost";

/// An error standing in for a server's answer that arrived but cannot be used.
pub(crate) fn lost(message: String) -> ErrorData {
    ErrorData::new(
        ErrorCode(LOST_CODE),
        message,
        Some(serde_json::json!({ LOST_MARKER: true })),
    )
}

pub(crate) fn is_lost(error: &ErrorData) -> bool {
    error.code.0 == LOST_CODE
        && error
            .data
            .as_ref()
            .and_then(|d| d.get(LOST_MARKER))
            .is_some()
}

/// The last line a server wrote to stdout that was not JSON-RPC (shortened).
pub(crate) type StrayOutput = Arc<StdMutex<Option<String>>>;

pub(crate) struct StdioTransport {
    server: Arc<str>,
    reader: BufReader<ChildStdout>,
    writer: Arc<Mutex<Option<ChildStdin>>>,
    /// The line being read; never longer than `max_line`.
    line: Vec<u8>,
    max_line: usize,
    /// The configured result cap, for messages.
    cap: usize,
    /// Set while streaming through a line longer than `max_line`.
    discarding: Option<Oversized>,
    stray: StrayOutput,
}

struct Oversized {
    scan: TopLevelScan,
    bytes: usize,
}

enum Read {
    Line,
    Oversized(Oversized),
    Eof,
}

impl StdioTransport {
    pub(crate) fn new(
        server: Arc<str>,
        stdout: ChildStdout,
        stdin: ChildStdin,
        max_line: usize,
        cap: usize,
        stray: StrayOutput,
    ) -> StdioTransport {
        StdioTransport {
            server,
            reader: BufReader::new(stdout),
            writer: Arc::new(Mutex::new(Some(stdin))),
            line: Vec::new(),
            max_line,
            cap,
            discarding: None,
            stray,
        }
    }

    /// Reads up to the next newline. Cancel-safe: all progress lives in `self`.
    async fn read_line(&mut self) -> Read {
        loop {
            let available = match self.reader.fill_buf().await {
                Ok(available) => available,
                Err(e) => {
                    tracing::warn!(server = %self.server, error = %e, "reading the server's output failed");
                    return Read::Eof;
                }
            };
            if available.is_empty() {
                return Read::Eof;
            }
            let newline = available.iter().position(|b| *b == b'\n');
            let take = newline.map_or(available.len(), |i| i + 1);
            let chunk = &available[..take];
            let done = newline.is_some();
            if let Some(discard) = self.discarding.as_mut() {
                discard.scan.feed(chunk);
                discard.bytes += take;
            } else if self.line.len() + take > self.max_line {
                let mut scan = TopLevelScan::default();
                scan.feed(&self.line);
                scan.feed(chunk);
                self.discarding = Some(Oversized {
                    scan,
                    bytes: self.line.len() + take,
                });
                self.line = Vec::new();
            } else {
                self.line.extend_from_slice(chunk);
            }
            self.reader.consume(take);
            if done {
                return match self.discarding.take() {
                    Some(mut oversized) => {
                        oversized.bytes -= 1; // the newline
                        Read::Oversized(oversized)
                    }
                    None => Read::Line,
                };
            }
        }
    }

    fn note_stray(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let short: String = text.chars().take(200).collect();
        tracing::warn!(
            target: "airlock_mcp::stdout",
            server = %self.server,
            line = %short,
            "the server wrote a line to stdout that is not JSON-RPC; ignored"
        );
        if let Ok(mut stray) = self.stray.lock() {
            *stray = Some(short);
        }
    }

    /// Turns one complete line into a message, or `None` to read on.
    fn parse(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        let mut line = self.line.as_slice();
        line = line.strip_suffix(b"\n").unwrap_or(line);
        line = line.strip_suffix(b"\r").unwrap_or(line);
        line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        let error = match serde_json::from_slice::<RxJsonRpcMessage<RoleClient>>(line) {
            Ok(message) => return Some(message),
            Err(e) => e,
        };
        let Ok(value) = serde_json::from_slice::<Value>(line) else {
            self.note_stray(line);
            return None;
        };
        let is_answer = value.get("method").is_none()
            && (value.get("result").is_some() || value.get("error").is_some());
        match value.get("id").and_then(request_id).filter(|_| is_answer) {
            Some(id) => Some(JsonRpcMessage::error(
                lost(format!("the server's answer could not be read: {error}")),
                Some(id),
            )),
            None => {
                tracing::debug!(server = %self.server, %error, "ignoring a message this client does not know");
                None
            }
        }
    }
}

fn request_id(value: &Value) -> Option<NumberOrString> {
    match value {
        Value::Number(n) => n.as_i64().map(NumberOrString::Number),
        Value::String(s) => Some(NumberOrString::String(s.as_str().into())),
        _ => None,
    }
}

impl Transport<RoleClient> for StdioTransport {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let writer = self.writer.clone();
        async move {
            let mut bytes = serde_json::to_vec(&item)?;
            bytes.push(b'\n');
            let mut writer = writer.lock().await;
            let Some(stdin) = writer.as_mut() else {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    "the transport is closed",
                ));
            };
            stdin.write_all(&bytes).await?;
            stdin.flush().await
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        loop {
            match self.read_line().await {
                Read::Eof => return None,
                Read::Line => {
                    let message = self.parse();
                    self.line.clear();
                    if let Some(message) = message {
                        return Some(message);
                    }
                }
                Read::Oversized(oversized) => {
                    let cap = self.cap;
                    match oversized.scan.answer_id() {
                        Some(id) => {
                            return Some(JsonRpcMessage::error(
                                lost(format!(
                                    "result of {} bytes exceeds the cap of {cap}",
                                    oversized.bytes
                                )),
                                Some(id),
                            ));
                        }
                        None => tracing::warn!(
                            server = %self.server,
                            bytes = oversized.bytes,
                            max_line = self.max_line,
                            "dropped an over-long message from the server that is not an answer"
                        ),
                    }
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        drop(self.writer.lock().await.take());
        Ok(())
    }
}

/// Follows the top level of one JSON object byte by byte, remembering its `id` value and
/// whether it has `method`, `result` or `error` keys, without keeping the rest.
#[derive(Default)]
struct TopLevelScan {
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// At depth 1, the next string is a key.
    expect_key: bool,
    reading_key: bool,
    key: Vec<u8>,
    capturing_id: bool,
    id: Vec<u8>,
    has_method: bool,
    has_answer: bool,
}

impl TopLevelScan {
    const MAX_KEY: usize = 16;
    const MAX_ID: usize = 256;

    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b);
        }
    }

    fn capture(&mut self, b: u8) {
        if self.capturing_id && self.id.len() < Self::MAX_ID {
            self.id.push(b);
        }
    }

    fn byte(&mut self, b: u8) {
        if self.in_string {
            self.capture(b);
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
                if self.reading_key {
                    self.reading_key = false;
                    match self.key.as_slice() {
                        b"method" => self.has_method = true,
                        b"result" | b"error" => self.has_answer = true,
                        _ => {}
                    }
                }
            } else if self.reading_key && self.key.len() < Self::MAX_KEY {
                self.key.push(b);
            }
            return;
        }
        match b {
            b'"' => {
                self.in_string = true;
                if self.depth == 1 && self.expect_key {
                    self.expect_key = false;
                    self.reading_key = true;
                    self.key.clear();
                } else {
                    self.capture(b);
                }
            }
            b'{' | b'[' => {
                self.capture(b);
                self.depth += 1;
                if self.depth == 1 && b == b'{' {
                    self.expect_key = true;
                }
            }
            b'}' | b']' => {
                if self.depth == 1 {
                    self.capturing_id = false;
                } else {
                    self.capture(b);
                }
                self.depth = self.depth.saturating_sub(1);
            }
            b',' if self.depth == 1 => {
                self.capturing_id = false;
                self.expect_key = true;
            }
            b':' if self.depth == 1 => {
                if self.key == b"id" {
                    self.capturing_id = true;
                    self.id.clear();
                }
            }
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ => self.capture(b),
        }
    }

    /// The id of the request this message answers, when it is an answer.
    fn answer_id(&self) -> Option<NumberOrString> {
        if self.has_method || !self.has_answer {
            return None;
        }
        serde_json::from_slice::<Value>(&self.id)
            .ok()
            .as_ref()
            .and_then(request_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> Option<NumberOrString> {
        let mut scan = TopLevelScan::default();
        // Feed in small pieces, as the reader would.
        for chunk in text.as_bytes().chunks(3) {
            scan.feed(chunk);
        }
        scan.answer_id()
    }

    #[test]
    fn finds_the_id_of_an_answer_wherever_it_is() {
        assert_eq!(
            scan(r#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"x"}]}}"#),
            Some(NumberOrString::Number(7))
        );
        // The TypeScript SDK writes the result first.
        assert_eq!(
            scan(
                r#"{"result":{"id":99,"text":"a \"quoted\" }, {id"},"jsonrpc":"2.0","id":"req-1"}"#
            ),
            Some(NumberOrString::String("req-1".into()))
        );
        assert_eq!(
            scan(r#"{"jsonrpc":"2.0","error":{"code":1,"message":"m"}, "id" : 12 }"#),
            Some(NumberOrString::Number(12))
        );
    }

    #[test]
    fn requests_and_notifications_are_not_answers() {
        assert_eq!(scan(r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#), None);
        assert_eq!(
            scan(r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"result":1}}"#),
            None
        );
    }
}
