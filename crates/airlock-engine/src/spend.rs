//! What a task's model turns used, per model, read from its history (every `model_turn`
//! event keeps the tokens its request used). Pricing is the providers' business; this
//! only adds up.

use std::collections::BTreeMap;

use airlock_store::EventRecord;
use serde::Serialize;

use crate::event::TaskEvent;
use crate::model::ModelUsage;

/// One model's share of a task.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ModelSpend {
    pub model: String,
    pub turns: u64,
    /// Turns whose tokens were counted (a model that does not count them reports none).
    pub counted_turns: u64,
    pub usage: ModelUsage,
}

/// The tokens of every model turn in `events`, per model, in model-name order.
pub fn model_spend(events: &[EventRecord]) -> Vec<ModelSpend> {
    let mut by_model: BTreeMap<String, ModelSpend> = BTreeMap::new();
    for event in events.iter().filter(|e| e.kind == "model_turn") {
        let Ok(TaskEvent::ModelTurn { model, usage, .. }) =
            serde_json::from_value::<TaskEvent>(event.body.clone())
        else {
            continue;
        };
        let spend = by_model.entry(model.clone()).or_insert_with(|| ModelSpend {
            model,
            ..ModelSpend::default()
        });
        spend.turns += 1;
        if let Some(u) = usage {
            spend.counted_turns += 1;
            spend.usage.input_tokens += u.input_tokens;
            spend.usage.output_tokens += u.output_tokens;
            spend.usage.cache_creation_input_tokens += u.cache_creation_input_tokens;
            spend.usage.cache_read_input_tokens += u.cache_read_input_tokens;
        }
    }
    by_model.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn turn(seq: i64, model: &str, usage: Option<ModelUsage>) -> EventRecord {
        let event = TaskEvent::ModelTurn {
            step_no: 1,
            attempt: 1,
            turn: seq,
            model: model.into(),
            reply: json!({"final": {}}),
            usage,
        };
        EventRecord {
            task_id: "t".into(),
            seq,
            at: 0,
            kind: event.kind().into(),
            body: serde_json::to_value(&event).unwrap_or_default(),
        }
    }

    #[test]
    fn turns_add_up_per_model_and_uncounted_turns_are_told_apart() {
        let used = |i, o| ModelUsage {
            input_tokens: i,
            output_tokens: o,
            ..ModelUsage::default()
        };
        let events = [
            turn(1, "claude (claude-sonnet-4-5)", Some(used(100, 10))),
            turn(2, "scripted (offline demo model)", None),
            turn(3, "claude (claude-sonnet-4-5)", Some(used(50, 5))),
        ];
        let spend = model_spend(&events);
        assert_eq!(spend.len(), 2);
        assert_eq!(spend[0].model, "claude (claude-sonnet-4-5)");
        assert_eq!((spend[0].turns, spend[0].counted_turns), (2, 2));
        assert_eq!(spend[0].usage, used(150, 15));
        assert_eq!((spend[1].turns, spend[1].counted_turns), (1, 0));
    }
}
