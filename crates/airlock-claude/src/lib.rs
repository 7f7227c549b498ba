//! Model providers behind the engine's [`Model`](airlock_engine::Model) trait.
//!
//! - [`Claude`] speaks Anthropic's Messages API (`POST {base_url}/v1/messages`).
//! - [`OpenAiCompatible`] speaks the chat-completions dialect that Ollama, the llama.cpp
//!   server and LM Studio offer (`POST {base_url}/v1/chat/completions`), for local demos.
//!
//! Both only ever *propose*: a reply becomes [`ModelReply::ToolCalls`] (every tool call of
//! the reply, ids preserved, tool names mapped back to the engine's `<server>.<tool>`) or
//! [`ModelReply::Final`] (the input of the `final_answer` tool both providers add, whose
//! schema is the state's output schema). The engine checks and records everything after.
//!
//! Shared rules (in [`transport`]): retries with backoff on 408, 429, 5xx (529 included) and
//! on dropped connections and timeouts, honouring `retry-after`; no retry on other 4xx,
//! which fail at once with the API's own `error.message`. Backoff waits go through an
//! injected [`Clock`](airlock_engine::Clock), so tests never sleep for real.
//!
//! TLS is the operating system's (reqwest's `native-tls`: OpenSSL on Linux). reqwest 0.13's
//! `rustls` feature brings aws-lc-rs; its `rustls-no-provider` feature (to use `ring`) makes
//! *every* `reqwest::Client` built in the process panic unless a crypto provider was
//! installed first, and cargo's feature unification would hand that to the rmcp client in
//! `airlock-mcp` too. native-tls has neither cost.
//!
//! [`ModelReply::ToolCalls`]: airlock_engine::ModelReply::ToolCalls
//! [`ModelReply::Final`]: airlock_engine::ModelReply::Final

mod key;
pub mod messages;
mod names;
pub mod openai;
pub mod pricing;
mod prompt;
pub mod transport;
mod usage;

pub use key::{API_KEY_ENV, ApiKey};
pub use messages::{Claude, ClaudeConfig};
pub use names::FINAL_ANSWER_TOOL;
pub use openai::{OpenAiCompatible, OpenAiConfig};
pub use transport::RetryPolicy;
pub use usage::{Pricing, Usage};
