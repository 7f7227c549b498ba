//! An OpenAI-compatible chat-completions provider (`POST {base_url}/v1/chat/completions`)
//! for local models: Ollama, the llama.cpp server, LM Studio. Tools go as `functions`;
//! replies' `tool_calls` become proposals; results go back as `tool` messages. The same
//! system prompt, `final_answer` tool and retry rules as [`Claude`](crate::Claude).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use airlock_engine::clock::BoxFuture;
use airlock_engine::{
    Clock, Model, ModelError, ModelReply, ModelRequest, ModelUsage, ProposedCall, Turn,
};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Value, json};

use crate::key::ApiKey;
use crate::names::{FINAL_ANSWER_TOOL, ToolNames, wire_name};
use crate::prompt::{
    AnswerShape, answer_from_text, first_message, result_text, short, system_prompt,
};
use crate::transport::{RetryPolicy, Transport};
use crate::usage::{Usage, UsageBook};

#[derive(Clone, Debug, PartialEq)]
pub struct OpenAiConfig {
    /// Without the `/v1/chat/completions` path; Ollama's by default.
    pub base_url: String,
    pub model: String,
    pub max_tokens: u32,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
}

impl Default for OpenAiConfig {
    fn default() -> OpenAiConfig {
        OpenAiConfig {
            base_url: "http://127.0.0.1:11434".into(),
            model: "llama3.1".into(),
            max_tokens: 4096,
            // Local models on a laptop are slow.
            request_timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        }
    }
}

pub struct OpenAiCompatible {
    config: OpenAiConfig,
    /// Sent as `Authorization: Bearer`, when the server wants one (local servers rarely do).
    key: Option<ApiKey>,
    transport: Transport,
    usage: UsageBook,
}

impl fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("config", &self.config)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl OpenAiCompatible {
    pub fn new(
        config: OpenAiConfig,
        key: Option<ApiKey>,
        clock: Arc<dyn Clock>,
    ) -> Result<OpenAiCompatible, ModelError> {
        let transport = Transport {
            client: Transport::client(config.connect_timeout)?,
            clock,
            retry: config.retry,
            timeout: config.request_timeout,
            api: "the chat-completions API",
        };
        Ok(OpenAiCompatible {
            config,
            key,
            transport,
            usage: UsageBook::default(),
        })
    }

    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    pub fn usage(&self) -> Usage {
        self.usage.total()
    }

    pub fn task_usage(&self, task_id: &str) -> Usage {
        self.usage.task(task_id)
    }

    pub fn take_task_usage(&self, task_id: &str) -> Usage {
        self.usage.take_task(task_id)
    }

    fn body(&self, request: &ModelRequest, shape: &AnswerShape) -> Result<Value, ModelError> {
        let mut tools = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for tool in &request.tools {
            let name = wire_name(&tool.name);
            if seen.insert(name.clone()) {
                tools.push(function(&name, &tool.description, &tool.input_schema));
            }
        }
        tools.push(function(
            FINAL_ANSWER_TOOL,
            shape.description(),
            &shape.input_schema,
        ));

        let mut messages = vec![
            json!({"role": "system", "content": system_prompt(&request.workflow, &request.state, request.output_schema.as_ref())}),
            json!({"role": "user", "content": first_message(&request.goal, &request.context)}),
        ];
        let mut finals = 0;
        for turn in &request.turns {
            match turn {
                Turn::Model {
                    reply: ModelReply::ToolCalls { calls },
                } => {
                    let calls: Vec<Value> = calls
                        .iter()
                        .map(|c| {
                            // Arguments that were not JSON came through as a string: send
                            // them back as they were written.
                            let arguments = match &c.args {
                                Value::String(raw) => raw.clone(),
                                other => other.to_string(),
                            };
                            json!({
                                "id": c.id,
                                "type": "function",
                                "function": {"name": wire_name(&c.tool), "arguments": arguments},
                            })
                        })
                        .collect();
                    messages
                        .push(json!({"role": "assistant", "content": null, "tool_calls": calls}));
                }
                Turn::Model {
                    reply: ModelReply::Final { output },
                } => {
                    finals += 1;
                    let call = json!({
                        "id": format!("final_answer_{finals}"),
                        "type": "function",
                        "function": {"name": FINAL_ANSWER_TOOL, "arguments": shape.input(output).to_string()},
                    });
                    messages
                        .push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
                }
                Turn::Repair { problem } => {
                    messages.push(json!({
                        "role": "tool",
                        "tool_call_id": format!("final_answer_{finals}"),
                        "content": format!("error: this answer was not accepted: {problem}. Call final_answer again with a corrected answer."),
                    }));
                }
                Turn::ToolResult {
                    call, ok, content, ..
                } => {
                    // The dialect has no error flag on a tool message; say it in words.
                    let text = if *ok {
                        result_text(content)
                    } else {
                        format!("error: {}", result_text(content))
                    };
                    messages.push(json!({"role": "tool", "tool_call_id": call, "content": text}));
                }
            }
        }
        Ok(json!({
            "model": self.config.model,
            "max_tokens": self.config.max_tokens,
            "messages": messages,
            "tools": tools,
        }))
    }

    fn headers(&self) -> Result<HeaderMap, ModelError> {
        let mut h = HeaderMap::new();
        if let Some(key) = &self.key {
            h.insert(AUTHORIZATION, key.header("Bearer ")?);
        }
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(ACCEPT, HeaderValue::from_static("application/json"));
        Ok(h)
    }

    async fn ask(&self, request: ModelRequest) -> Result<ModelReply, ModelError> {
        let names = ToolNames::new(&request.tools)?;
        let shape = AnswerShape::new(request.output_schema.as_ref());
        let body = self.body(&request, &shape)?;
        let url = format!(
            "{}/v1/chat/completions",
            self.config.base_url.trim_end_matches('/')
        );
        let reply = self.transport.post(&url, &self.headers()?, &body).await?;
        let usage = usage(&reply);
        self.usage.record(&request.task_id, usage);
        let turn = request
            .turns
            .iter()
            .filter(|t| matches!(t, Turn::Model { .. }))
            .count();
        tracing::debug!(
            task_id = %request.task_id,
            state = %request.state,
            model = %self.config.model,
            input_tokens = usage.input_tokens,
            output_tokens = usage.output_tokens,
            "openai-compatible model replied"
        );
        self.reply(&reply, &names, &shape, request.output_schema.as_ref(), turn)
    }

    fn reply(
        &self,
        reply: &Value,
        names: &ToolNames,
        shape: &AnswerShape,
        output_schema: Option<&Value>,
        turn: usize,
    ) -> Result<ModelReply, ModelError> {
        let choice = &reply["choices"][0];
        let message = &choice["message"];
        if !message.is_object() {
            return Err(ModelError(format!(
                "the chat-completions API answered without a message: {}",
                short(&reply.to_string())
            )));
        }
        let finish = choice["finish_reason"].as_str();
        match finish {
            Some("length") => {
                return Err(ModelError(format!(
                    "the reply was cut off at max_tokens ({}): raise max_tokens for model {} or ask for less",
                    self.config.max_tokens, self.config.model
                )));
            }
            Some("content_filter") => {
                return Err(ModelError(
                    "the reply was withheld by a content filter".into(),
                ));
            }
            _ => {}
        }
        let mut calls = Vec::new();
        let mut answer = None;
        for (i, call) in message["tool_calls"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let Some(name) = call["function"]["name"].as_str() else {
                return Err(ModelError(format!(
                    "a tool call without a function name: {}",
                    short(&call.to_string())
                )));
            };
            // Some local servers leave the id out; the engine needs one to pair results.
            let id = call["id"]
                .as_str()
                .filter(|id| !id.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| format!("call_{turn}_{i}"));
            // `arguments` is a JSON string by the spec; some servers send an object. Text
            // that is not JSON goes on as a string, which the engine's schema check refuses
            // with a reason the model then sees.
            let args = match &call["function"]["arguments"] {
                Value::String(raw) if raw.trim().is_empty() => json!({}),
                Value::String(raw) => {
                    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.clone()))
                }
                Value::Null => json!({}),
                other => other.clone(),
            };
            if name == FINAL_ANSWER_TOOL {
                answer = Some(args);
            } else {
                calls.push(ProposedCall {
                    id,
                    tool: names.engine_name(name),
                    args,
                });
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
            (None, true) => Ok(ModelReply::Final {
                output: answer_from_text(
                    message["content"].as_str().unwrap_or_default(),
                    output_schema,
                )?,
            }),
        }
    }
}

fn function(name: &str, description: &str, parameters: &Value) -> Value {
    json!({
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    })
}

/// `prompt_tokens` counts cached tokens too; here they are apart, as Anthropic reports them.
fn usage(reply: &Value) -> Usage {
    let u = &reply["usage"];
    let prompt = u["prompt_tokens"].as_u64().unwrap_or(0);
    let cached = u["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap_or(0);
    Usage {
        requests: 1,
        input_tokens: prompt.saturating_sub(cached),
        output_tokens: u["completion_tokens"].as_u64().unwrap_or(0),
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: cached,
    }
}

impl Model for OpenAiCompatible {
    fn take_usage(&self, task_id: &str) -> Option<ModelUsage> {
        self.take_task_usage(task_id).for_turn()
    }

    fn name(&self) -> String {
        format!(
            "openai-compatible ({} at {})",
            self.config.model,
            self.config.base_url.trim_end_matches('/')
        )
    }

    fn respond(&self, request: ModelRequest) -> BoxFuture<'_, Result<ModelReply, ModelError>> {
        Box::pin(self.ask(request))
    }
}
