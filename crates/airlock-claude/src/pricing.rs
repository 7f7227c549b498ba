//! What model calls cost: Anthropic's list prices per million tokens (as published when
//! this table was last updated), by model family, so
//! a task's recorded usage (every `model_turn` keeps its tokens) can be priced after the
//! fact. A model this table does not know is priced as unknown, never as free; local
//! models (OpenAI-compatible servers) and the scripted demo model cost nothing.

use airlock_engine::ModelUsage;

use crate::usage::Pricing;

const fn price(input: f64, output: f64) -> Pricing {
    // Anthropic prices cache writes (5-minute entries) at 1.25x and cache reads at 0.1x
    // the input price.
    Pricing {
        input,
        output,
        cache_write: input * 1.25,
        cache_read: input / 10.0,
    }
}

/// Model id prefixes, most specific first.
const PRICES: &[(&str, Pricing)] = &[
    ("claude-opus-4-5", price(5.0, 25.0)),
    ("claude-opus-4", price(15.0, 75.0)),
    ("claude-sonnet-4", price(3.0, 15.0)),
    ("claude-3-7-sonnet", price(3.0, 15.0)),
    ("claude-3-5-sonnet", price(3.0, 15.0)),
    ("claude-haiku-4", price(1.0, 5.0)),
    ("claude-3-5-haiku", price(0.8, 4.0)),
    ("claude-3-haiku", price(0.25, 1.25)),
];

/// The price of a model as it is named in a `model_turn` (`claude (claude-sonnet-4-5)`,
/// `openai-compatible (...)`, `scripted (...)`); `None` when it is not known.
pub fn price_of(model_name: &str) -> Option<Pricing> {
    if model_name.starts_with("openai-compatible") || model_name.starts_with("scripted") {
        return Some(price(0.0, 0.0));
    }
    let id = model_name
        .strip_prefix("claude (")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or(model_name);
    PRICES
        .iter()
        .find(|(prefix, _)| id.starts_with(prefix))
        .map(|(_, price)| *price)
}

/// The cost in US dollars of `usage` on `model_name`, when its price is known.
pub fn cost_usd(model_name: &str, usage: &ModelUsage) -> Option<f64> {
    let p = price_of(model_name)?;
    let per = |tokens: u64, dollars: f64| tokens as f64 * dollars / 1_000_000.0;
    Some(
        per(usage.input_tokens, p.input)
            + per(usage.output_tokens, p.output)
            + per(usage.cache_creation_input_tokens, p.cache_write)
            + per(usage.cache_read_input_tokens, p.cache_read),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_turns_are_priced_by_family_and_unknown_models_are_not_free() {
        let usage = ModelUsage {
            input_tokens: 1_000_000,
            output_tokens: 100_000,
            cache_creation_input_tokens: 200_000,
            cache_read_input_tokens: 1_000_000,
        };
        // 3.00 + 1.50 + 0.75 + 0.30
        let cost = cost_usd("claude (claude-sonnet-4-5)", &usage).unwrap_or_default();
        assert!((cost - 5.55).abs() < 1e-9, "{cost}");
        let haiku = cost_usd("claude (claude-haiku-4-5-20251001)", &usage).unwrap_or_default();
        assert!((haiku - 1.85).abs() < 1e-9, "{haiku}");
        assert_eq!(cost_usd("claude (claude-next-9)", &usage), None);
        assert_eq!(
            cost_usd("openai-compatible (llama3.1 at http://x)", &usage),
            Some(0.0)
        );
        assert_eq!(cost_usd("scripted (offline demo model)", &usage), Some(0.0));
    }
}
