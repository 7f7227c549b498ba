//! The static half of the checked path: arguments against the tool's input schema before
//! the intent is recorded, results against its output schema after, and the tool's
//! definition against the one pinned when it was first used. (Policy and approvals are
//! the other half.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::engine::Inner;
use crate::ledger::args_hash;
use crate::tool_host::ToolInfo;

/// Compiled schemas and accepted pins, cached per engine.
#[derive(Default)]
pub(crate) struct Checks {
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
    /// tool name -> the definition hash a person (or first use) accepted.
    accepted: Mutex<HashMap<String, String>>,
}

impl Checks {
    pub fn forget_pin(&self, tool: &str) {
        if let Ok(mut a) = self.accepted.lock() {
            a.remove(tool);
        }
    }

    /// `Err` names every place the value breaks the schema.
    pub fn validate(&self, schema: &Value, value: &Value) -> Result<(), String> {
        let key = args_hash(schema);
        let cached = self
            .validators
            .lock()
            .ok()
            .and_then(|v| v.get(&key).cloned());
        let validator = match cached {
            Some(v) => v,
            None => {
                let compiled = jsonschema::validator_for(schema)
                    .map_err(|e| format!("the tool's schema is not a valid JSON Schema: {e}"))?;
                let compiled = Arc::new(compiled);
                if let Ok(mut v) = self.validators.lock() {
                    v.insert(key, compiled.clone());
                }
                compiled
            }
        };
        let problems: Vec<String> = validator
            .iter_errors(value)
            .take(5)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("at {at}: {e}")
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// Whether the tool's current definition is the one pinned for it. The first time a tool
/// is seen its definition is pinned; a later, different definition holds the tool until a
/// person accepts the change.
pub(crate) async fn check_pin(inner: &Inner, info: &ToolInfo) -> Result<(), String> {
    let hash = info.definition_hash();
    let known = inner
        .checks
        .accepted
        .lock()
        .ok()
        .and_then(|a| a.get(&info.name).cloned());
    if known.as_deref() == Some(hash.as_str()) {
        return Ok(());
    }
    let definition = serde_json::to_value(info).unwrap_or(Value::Null);
    let pin = inner
        .store
        .pin_tool_if_new(
            &info.name,
            &hash,
            &definition,
            "first use",
            inner.clock.now(),
        )
        .await
        .map_err(|e| format!("cannot check the tool's pinned definition: {e}"))?;
    if pin.hash == hash {
        if let Ok(mut a) = inner.checks.accepted.lock() {
            a.insert(info.name.clone(), hash);
        }
        return Ok(());
    }
    if let Err(e) = inner
        .store
        .note_tool_change(&info.name, &hash, &definition, inner.clock.now())
        .await
    {
        tracing::warn!(tool = %info.name, error = %e, "could not record a tool change");
    }
    Err(format!(
        "`{}` is held: its server now describes it differently from the definition pinned on first use (pinned {}, now {}); a person must review the change (`airlock tools review`)",
        info.name,
        &pin.hash[..12.min(pin.hash.len())],
        &hash[..12]
    ))
}
