//! Claude over Anthropic's Messages API (`POST {base_url}/v1/messages`, non-streaming).
//!
//! A [`ModelRequest`] becomes: a `system` prompt that depends only on the state and its
//! output schema, marked `cache_control: ephemeral` (tools and system are the cached
//! prefix); the request's `tools` under wire-safe names plus `final_answer`, whose input
//! schema is the output schema; and `messages`: the goal as the first user message, then
//! each model turn as assistant `tool_use` blocks and each tool result as a user
//! `tool_result` block (`is_error` when the call failed or was refused).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use airlock_engine::clock::BoxFuture;
use airlock_engine::{
    Clock, Model, ModelError, ModelReply, ModelRequest, ModelUsage, ProposedCall, Turn,
};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};

use crate::key::ApiKey;
use crate::names::{FINAL_ANSWER_TOOL, ToolNames, wire_name};
use crate::prompt::{
    AnswerShape, answer_from_text, first_message, result_text, short, system_prompt,
};
use crate::transport::{RetryPolicy, Transport};
use crate::usage::{Usage, UsageBook};

pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-5";
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

#[derive(Clone, Debug, PartialEq)]
pub struct ClaudeConfig {
    /// Without the `/v1/messages` path.
    pub base_url: String,
    pub model: String,
    pub max_tokens: u32,
    /// For one attempt, from sending the request to the end of the answer.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
}

impl Default for ClaudeConfig {
    fn default() -> ClaudeConfig {
        ClaudeConfig {
            base_url: DEFAULT_BASE_URL.into(),
            model: DEFAULT_MODEL.into(),
            max_tokens: 4096,
            request_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        }
    }
}

/// The Claude provider. Keeps running token totals (see [`Claude::usage`]).
pub struct Claude {
    config: ClaudeConfig,
    key: ApiKey,
    transport: Transport,
    usage: UsageBook,
}

impl fmt::Debug for Claude {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claude")
            .field("config", &self.config)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Claude {
    /// `clock` times the waits between retries (the engine's clock, or a test's).
    pub fn new(
        config: ClaudeConfig,
        key: ApiKey,
        clock: Arc<dyn Clock>,
    ) -> Result<Claude, ModelError> {
        let transport = Transport {
            client: Transport::client(config.connect_timeout)?,
            clock,
            retry: config.retry,
            timeout: config.request_timeout,
            api: "the Messages API",
        };
        Ok(Claude {
            config,
            key,
            transport,
            usage: UsageBook::default(),
        })
    }

    pub fn config(&self) -> &ClaudeConfig {
        &self.config
    }

    /// Tokens spent by every answered request so far.
    pub fn usage(&self) -> Usage {
        self.usage.total()
    }

    /// Tokens spent for one task so far.
    pub fn task_usage(&self, task_id: &str) -> Usage {
        self.usage.task(task_id)
    }

    /// Tokens spent for one task since the last take, forgetting them.
    pub fn take_task_usage(&self, task_id: &str) -> Usage {
        self.usage.take_task(task_id)
    }

    fn body(&self, request: &ModelRequest, shape: &AnswerShape) -> Result<Value, ModelError> {
        let mut tools = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for tool in &request.tools {
            let name = wire_name(&tool.name);
            if !seen.insert(name.clone()) {
                continue;
            }
            let mut t = Map::new();
            t.insert("name".into(), name.into());
            if !tool.description.is_empty() {
                t.insert("description".into(), tool.description.clone().into());
            }
            t.insert("input_schema".into(), tool.input_schema.clone());
            tools.push(Value::Object(t));
        }
        tools.push(json!({
            "name": FINAL_ANSWER_TOOL,
            "description": shape.description(),
            "input_schema": shape.input_schema,
        }));

        let mut messages = Messages::default();
        messages.push(
            "user",
            json!({"type": "text", "text": first_message(&request.goal, &request.context)}),
        );
        let mut finals = 0;
        for turn in &request.turns {
            match turn {
                Turn::Model {
                    reply: ModelReply::ToolCalls { calls },
                } => {
                    for call in calls {
                        let input = if call.args.is_object() {
                            call.args.clone()
                        } else {
                            json!({ "arguments": call.args })
                        };
                        messages.push(
                            "assistant",
                            json!({
                                "type": "tool_use",
                                "id": call.id,
                                "name": wire_name(&call.tool),
                                "input": input,
                            }),
                        );
                    }
                }
                Turn::Model {
                    reply: ModelReply::Final { output },
                } => {
                    // A rejected answer goes back as the `final_answer` call it was, and the
                    // repair turn that follows answers it with an error result.
                    finals += 1;
                    messages.push(
                        "assistant",
                        json!({
                            "type": "tool_use",
                            "id": format!("final_answer_{finals}"),
                            "name": FINAL_ANSWER_TOOL,
                            "input": shape.input(output),
                        }),
                    );
                }
                Turn::Repair { problem } => {
                    messages.push(
                        "user",
                        json!({
                            "type": "tool_result",
                            "tool_use_id": format!("final_answer_{finals}"),
                            "content": format!("This answer was not accepted: {problem}. Call final_answer again with a corrected answer."),
                            "is_error": true,
                        }),
                    );
                }
                Turn::ToolResult {
                    call, ok, content, ..
                } => {
                    let mut block = json!({
                        "type": "tool_result",
                        "tool_use_id": call,
                        "content": result_text(content),
                    });
                    if !ok {
                        block["is_error"] = Value::Bool(true);
                    }
                    messages.push("user", block);
                }
            }
        }

        Ok(json!({
            "model": self.config.model,
            "max_tokens": self.config.max_tokens,
            "system": [{
                "type": "text",
                "text": system_prompt(&request.workflow, &request.state, request.output_schema.as_ref()),
                "cache_control": {"type": "ephemeral"},
            }],
            "tools": tools,
            "messages": messages.0,
        }))
    }

    fn headers(&self) -> Result<HeaderMap, ModelError> {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", self.key.header("")?);
        h.insert(
            "anthropic-version",
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(ACCEPT, HeaderValue::from_static("application/json"));
        Ok(h)
    }

    async fn ask(&self, request: ModelRequest) -> Result<ModelReply, ModelError> {
        let names = ToolNames::new(&request.tools)?;
        let shape = AnswerShape::new(request.output_schema.as_ref());
        let body = self.body(&request, &shape)?;
        let url = format!("{}/v1/messages", self.config.base_url.trim_end_matches('/'));
        let reply = self.transport.post(&url, &self.headers()?, &body).await?;
        let usage = usage(&reply);
        self.usage.record(&request.task_id, usage);
        tracing::debug!(
            task_id = %request.task_id,
            state = %request.state,
            model = %self.config.model,
            stop_reason = reply["stop_reason"].as_str().unwrap_or("-"),
            input_tokens = usage.input_tokens,
            output_tokens = usage.output_tokens,
            cache_read_input_tokens = usage.cache_read_input_tokens,
            "claude replied"
        );
        self.reply(&reply, &names, &shape, request.output_schema.as_ref())
    }

    fn reply(
        &self,
        reply: &Value,
        names: &ToolNames,
        shape: &AnswerShape,
        output_schema: Option<&Value>,
    ) -> Result<ModelReply, ModelError> {
        let stop = reply["stop_reason"].as_str();
        match stop {
            Some("max_tokens") => {
                return Err(ModelError(format!(
                    "the reply was cut off at max_tokens ({}): raise max_tokens for model {} or ask for less",
                    self.config.max_tokens, self.config.model
                )));
            }
            Some("refusal") => {
                return Err(ModelError(
                    "the model declined to answer (stop_reason: refusal)".into(),
                ));
            }
            _ => {}
        }
        let Some(content) = reply["content"].as_array() else {
            return Err(ModelError(format!(
                "the Messages API answered without content: {}",
                short(&reply.to_string())
            )));
        };
        let mut text = String::new();
        let mut calls = Vec::new();
        let mut answer = None;
        for block in content {
            match block["type"].as_str() {
                Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
                Some("tool_use") => {
                    let (Some(id), Some(name)) = (block["id"].as_str(), block["name"].as_str())
                    else {
                        return Err(ModelError(format!(
                            "a tool_use block without id or name: {}",
                            short(&block.to_string())
                        )));
                    };
                    let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                    if name == FINAL_ANSWER_TOOL {
                        answer = Some(input);
                    } else {
                        calls.push(ProposedCall {
                            id: id.to_string(),
                            tool: names.engine_name(name),
                            args: input,
                        });
                    }
                }
                // Thinking and anything newer carry nothing the engine acts on.
                _ => {}
            }
        }
        match (answer, calls.is_empty()) {
            (Some(_), false) => Err(ModelError(format!(
                "the model called `{FINAL_ANSWER_TOOL}` together with other tools ({}) in one reply",
                calls
                    .iter()
                    .map(|c| c.tool.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            (Some(input), true) => Ok(ModelReply::Final {
                output: shape.answer(input)?,
            }),
            (None, false) => Ok(ModelReply::ToolCalls { calls }),
            (None, true) => match stop {
                Some("end_turn") | Some("stop_sequence") | None => Ok(ModelReply::Final {
                    output: answer_from_text(&text, output_schema)?,
                }),
                Some(other) => Err(ModelError(format!(
                    "the model stopped ({other}) without a tool call or an answer"
                ))),
            },
        }
    }
}

fn usage(reply: &Value) -> Usage {
    let n = |k: &str| reply["usage"][k].as_u64().unwrap_or(0);
    Usage {
        requests: 1,
        input_tokens: n("input_tokens"),
        output_tokens: n("output_tokens"),
        cache_creation_input_tokens: n("cache_creation_input_tokens"),
        cache_read_input_tokens: n("cache_read_input_tokens"),
    }
}

/// Messages with consecutive blocks of one role merged, as the API wants them (all the
/// results of one reply's calls go back in one user message).
#[derive(Default)]
struct Messages(Vec<Value>);

impl Messages {
    fn push(&mut self, role: &str, block: Value) {
        if let Some(last) = self.0.last_mut()
            && last["role"] == role
            && let Some(content) = last["content"].as_array_mut()
        {
            content.push(block);
            return;
        }
        self.0.push(json!({"role": role, "content": [block]}));
    }
}

impl Model for Claude {
    fn take_usage(&self, task_id: &str) -> Option<ModelUsage> {
        self.take_task_usage(task_id).for_turn()
    }

    fn name(&self) -> String {
        format!("claude ({})", self.config.model)
    }

    fn respond(&self, request: ModelRequest) -> BoxFuture<'_, Result<ModelReply, ModelError>> {
        Box::pin(self.ask(request))
    }
}
