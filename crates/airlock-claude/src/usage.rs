//! Token accounting. Each provider keeps running totals, overall and per task; the engine
//! takes a task's usage after every turn (`Model::take_usage`) and records it on the turn.

use std::collections::HashMap;
use std::ops::AddAssign;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Tokens spent, as the API reported them. `requests` counts answered requests (retried
/// failures spend nothing and are not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Tokens written to the prompt cache (Anthropic bills them above input).
    pub cache_creation_input_tokens: u64,
    /// Tokens read from the prompt cache (billed well below input).
    pub cache_read_input_tokens: u64,
}

impl Usage {
    /// As the engine records it on a model turn; nothing when no request was answered.
    pub fn for_turn(&self) -> Option<airlock_engine::ModelUsage> {
        (self.requests > 0).then_some(airlock_engine::ModelUsage {
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cache_creation_input_tokens: self.cache_creation_input_tokens,
            cache_read_input_tokens: self.cache_read_input_tokens,
        })
    }
}

impl AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        self.requests += o.requests;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cache_creation_input_tokens += o.cache_creation_input_tokens;
        self.cache_read_input_tokens += o.cache_read_input_tokens;
    }
}

/// Prices in US dollars per million tokens (see [`crate::pricing`] for the list prices).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pricing {
    pub input: f64,
    pub output: f64,
    pub cache_write: f64,
    pub cache_read: f64,
}

impl Usage {
    pub fn cost_usd(&self, p: &Pricing) -> f64 {
        (self.input_tokens as f64 * p.input
            + self.output_tokens as f64 * p.output
            + self.cache_creation_input_tokens as f64 * p.cache_write
            + self.cache_read_input_tokens as f64 * p.cache_read)
            / 1_000_000.0
    }
}

#[derive(Debug, Default)]
pub(crate) struct UsageBook {
    inner: Mutex<(Usage, HashMap<String, Usage>)>,
}

impl UsageBook {
    pub(crate) fn record(&self, task_id: &str, usage: Usage) {
        let mut book = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        book.0 += usage;
        *book.1.entry(task_id.to_string()).or_default() += usage;
    }

    pub(crate) fn total(&self) -> Usage {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    pub(crate) fn task(&self, task_id: &str) -> Usage {
        let book = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        book.1.get(task_id).copied().unwrap_or_default()
    }

    pub(crate) fn take_task(&self, task_id: &str) -> Usage {
        let mut book = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        book.1.remove(task_id).unwrap_or_default()
    }
}
