//! The JSON Schema of the workflow format, generated from the serde shapes in [`crate::raw`].

use serde_json::{Map, Value, json};

use crate::raw::RawWorkflow;
use crate::validate::{FIELD_KINDS, KINDS, REQUIRED_FIELDS, allowed_kinds};

/// The JSON Schema (draft 2020-12) of a workflow file, for editors and the docs.
///
/// The state shape is one table whose fields depend on `kind`; the per-kind rules
/// (required fields, fields that are not allowed) come from the same tables that
/// validation uses, added as `if`/`then` clauses.
pub fn workflow_json_schema() -> Value {
    let mut schema = schemars::schema_for!(RawWorkflow).to_value();
    let rules: Vec<Value> = KINDS
        .iter()
        .map(|kind| {
            let required = REQUIRED_FIELDS
                .iter()
                .find(|(k, _)| k == kind)
                .map_or(&[][..], |(_, fields)| *fields);
            let forbidden: Map<String, Value> = FIELD_KINDS
                .iter()
                .filter(|(field, _)| !allowed_kinds(field).contains(kind))
                .map(|(field, _)| ((*field).to_owned(), Value::Bool(false)))
                .collect();
            json!({
                "if": { "properties": { "kind": { "const": kind } }, "required": ["kind"] },
                "then": { "required": required, "properties": forbidden }
            })
        })
        .collect();
    if let Some(state) = schema
        .pointer_mut("/$defs/State")
        .and_then(Value::as_object_mut)
    {
        state.insert("allOf".to_owned(), Value::Array(rules));
    }
    schema
}
