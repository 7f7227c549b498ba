//! A loopback HTTP/1.1 server that plays a script of replies in the real wire formats and
//! records every request; a clock that records the waits asked of it and returns at once.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_engine::Clock;
use airlock_engine::clock::BoxFuture;
use airlock_engine::store::Millis;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every test runs under this.
pub async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("the test took longer than 20 s")
}

pub enum Reply {
    /// A status, extra headers and a JSON body.
    Json(u16, Vec<(&'static str, String)>, Value),
    /// Read the request, then close the connection without a word.
    Drop,
    /// Read the request, then never answer.
    Hang,
}

pub fn ok(body: Value) -> Reply {
    Reply::Json(200, vec![], body)
}

pub fn status(code: u16, body: Value) -> Reply {
    Reply::Json(code, vec![], body)
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone)]
pub struct Server {
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Server {
    pub async fn start(script: Vec<Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let recorded = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(stream, recorded.clone(), script.clone()));
            }
        });
        Server { url, requests }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

/// Serves requests on one connection until the script says to drop or hang, or the
/// client closes it.
async fn serve(
    mut stream: TcpStream,
    requests: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
) {
    let mut buf = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        requests.lock().unwrap().push(request);
        let reply = script.lock().unwrap().pop_front();
        let (code, headers, body) = match reply {
            Some(Reply::Json(code, headers, body)) => (code, headers, body),
            Some(Reply::Drop) => return,
            Some(Reply::Hang) => {
                std::future::pending::<()>().await;
                return;
            }
            None => (
                418,
                vec![],
                json!({"type": "error", "error": {"type": "test_error", "message": "the test script has no more replies"}}),
            ),
        };
        let body = body.to_string();
        let mut head = format!(
            "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        if stream.write_all(head.as_bytes()).await.is_err()
            || stream.write_all(body.as_bytes()).await.is_err()
        {
            return;
        }
    }
}

async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Recorded> {
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < end + length {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = serde_json::from_slice(&buf[end..end + length]).unwrap_or(Value::Null);
    buf.drain(..end + length);
    Some(Recorded {
        method,
        path,
        headers,
        body,
    })
}

/// A clock whose sleeps return at once, moving its time forward, and are recorded.
#[derive(Default)]
pub struct RecordingClock {
    now: AtomicI64,
    waits: Mutex<Vec<Duration>>,
}

impl RecordingClock {
    pub fn waits(&self) -> Vec<Duration> {
        self.waits.lock().unwrap().clone()
    }
}

impl Clock for RecordingClock {
    fn now(&self) -> Millis {
        self.now.load(Ordering::SeqCst)
    }

    fn sleep_until(&self, at: Millis) -> BoxFuture<'static, ()> {
        let now = self.now.fetch_max(at, Ordering::SeqCst);
        self.waits
            .lock()
            .unwrap()
            .push(Duration::from_millis(at.saturating_sub(now).max(0) as u64));
        Box::pin(std::future::ready(()))
    }
}

/// A Messages API reply, as the API writes one.
pub fn message(content: Value, stop_reason: &str) -> Value {
    json!({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {
            "input_tokens": 2095,
            "output_tokens": 503,
            "cache_creation_input_tokens": 1800,
            "cache_read_input_tokens": 0
        }
    })
}

/// A chat-completions reply, as Ollama writes one.
pub fn completion(message: Value, finish_reason: &str) -> Value {
    json!({
        "id": "chatcmpl-711",
        "object": "chat.completion",
        "created": 1_750_000_000,
        "model": "llama3.1",
        "system_fingerprint": "fp_ollama",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 412, "completion_tokens": 37, "total_tokens": 449}
    })
}
