//! One JSON POST with bounded retries, shared by both providers.
//!
//! Retried: a dropped or refused connection, a request that timed out, 408, 429 and every
//! 5xx (Anthropic's 529 "overloaded" included), waiting what `retry-after-ms` or
//! `retry-after` (seconds) asks, else an exponential backoff; every wait is capped by
//! [`RetryPolicy::max_wait`]. Not retried: any other status, which fails at once with the
//! API's own `error.message`. Retrying a model request is always safe: it has no effect
//! beyond its cost, and a failed request costs nothing.

use std::sync::Arc;
use std::time::Duration;

use airlock_engine::clock::millis;
use airlock_engine::{Clock, ModelError};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The first backoff; each later one doubles.
    pub base_delay: Duration,
    /// No wait is longer, whatever the server asks.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_secs(1),
            max_wait: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_wait)
    }
}

pub(crate) struct Transport {
    pub(crate) client: reqwest::Client,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Duration,
    /// For messages: "the Messages API", "the chat-completions API".
    pub(crate) api: &'static str,
}

enum Failure {
    Retry {
        reason: String,
        wait: Option<Duration>,
    },
    Fatal(ModelError),
}

impl Transport {
    pub(crate) fn client(connect_timeout: Duration) -> Result<reqwest::Client, ModelError> {
        reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .user_agent(concat!("airlock/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ModelError(format!("cannot set up the HTTP client: {e}")))
    }

    /// POSTs `body` and returns the JSON of a 2xx answer.
    pub(crate) async fn post(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: &Value,
    ) -> Result<Value, ModelError> {
        let max = self.retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let (reason, wait) = match self.once(url, headers, body).await {
                Ok(json) => return Ok(json),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry { reason, wait }) => (reason, wait),
            };
            if attempt >= max {
                return Err(ModelError(format!(
                    "{} failed after {attempt} attempts: {reason}",
                    self.api
                )));
            }
            let wait = wait
                .unwrap_or_else(|| self.retry.backoff(attempt))
                .min(self.retry.max_wait);
            tracing::warn!(
                api = self.api,
                attempt,
                wait_ms = wait.as_millis() as u64,
                "{reason}; retrying"
            );
            let at = self.clock.now().saturating_add(millis(wait));
            self.clock.sleep_until(at).await;
            attempt += 1;
        }
    }

    async fn once(&self, url: &str, headers: &HeaderMap, body: &Value) -> Result<Value, Failure> {
        let sent = self
            .client
            .post(url)
            .headers(headers.clone())
            .json(body)
            .timeout(self.timeout)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Err(self.transport_failure(e)),
        };
        let status = response.status();
        let wait = retry_after(response.headers());
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Err(self.transport_failure(e)),
        };
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                Failure::Fatal(ModelError(format!(
                    "{} answered {status} with a body that is not JSON: {e}",
                    self.api
                )))
            });
        }
        let message = error_message(&bytes);
        if retryable(status) {
            Err(Failure::Retry {
                reason: format!("{} answered {status}: {message}", self.api),
                wait,
            })
        } else {
            Err(Failure::Fatal(ModelError(format!(
                "{} refused the request ({status}): {message}",
                self.api
            ))))
        }
    }

    fn transport_failure(&self, e: reqwest::Error) -> Failure {
        if e.is_builder() {
            return Failure::Fatal(ModelError(format!("cannot build the request: {e}")));
        }
        let reason = if e.is_timeout() {
            format!("no answer within {:?}", self.timeout)
        } else if e.is_connect() {
            format!("cannot connect: {}", chain(&e))
        } else {
            format!("the connection broke: {}", chain(&e))
        };
        Failure::Retry { reason, wait: None }
    }
}

fn retryable(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
        || status.as_u16() == 529
}

/// `retry-after-ms`, else `retry-after` in (possibly fractional) seconds. The HTTP-date
/// form is not honoured; the backoff applies instead.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| -> Option<f64> {
        let v: f64 = headers.get(name)?.to_str().ok()?.trim().parse().ok()?;
        (v.is_finite() && v >= 0.0).then_some(v)
    };
    number("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| number("retry-after").map(Duration::from_secs_f64))
}

/// The API's own words: `error.message` (Anthropic, OpenAI), `error` as a string (Ollama),
/// else the start of the body.
fn error_message(body: &[u8]) -> String {
    if let Ok(json) = serde_json::from_slice::<Value>(body) {
        if let Some(m) = json.pointer("/error/message").and_then(Value::as_str) {
            let kind = json.pointer("/error/type").and_then(Value::as_str);
            return match kind {
                Some(kind) => format!("{kind}: {m}"),
                None => m.to_string(),
            };
        }
        if let Some(m) = json
            .get("error")
            .or_else(|| json.get("message"))
            .and_then(Value::as_str)
        {
            return m.to_string();
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(no body)".into()
    } else {
        text.chars().take(300).collect()
    }
}

/// An error with its sources, so "error sending request" says why.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(500),
            max_wait: Duration::from_secs(3),
        };
        let waits: Vec<_> = (1..=5).map(|n| p.backoff(n).as_millis()).collect();
        assert_eq!(waits, [500, 1000, 2000, 3000, 3000]);
    }

    #[test]
    fn retry_after_reads_seconds_and_milliseconds() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(
            "retry-after",
            "2".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(
            "retry-after-ms",
            "250".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn error_messages_are_the_apis_own() {
        let anthropic = br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: field required"}}"#;
        assert_eq!(
            error_message(anthropic),
            "invalid_request_error: max_tokens: field required"
        );
        assert_eq!(
            error_message(br#"{"error":"model 'x' not found"}"#),
            "model 'x' not found"
        );
        assert_eq!(
            error_message(b"<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
        assert_eq!(error_message(b""), "(no body)");
    }
}
