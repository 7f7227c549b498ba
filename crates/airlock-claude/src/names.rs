//! Tool names on the wire. The engine names tools `<server>.<tool>`; Anthropic and OpenAI
//! both require `^[a-zA-Z0-9_-]{1,64}$`. Each `.` becomes `__`, any other character outside
//! the set becomes `_`, and a name still longer than 64 keeps its first 55 characters and
//! gains `_` and 8 hex digits of its SHA-256. The mapping is a function, so a name in an
//! earlier turn maps the same way; it is reversed through the table of the request's own
//! tools, and two tools that would share a wire name are refused rather than confused.

use std::collections::BTreeMap;

use airlock_engine::{ModelError, ToolInfo};
use sha2::{Digest, Sha256};

/// The tool both providers add; its input is the state's answer.
pub const FINAL_ANSWER_TOOL: &str = "final_answer";

const MAX: usize = 64;

pub(crate) fn wire_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '.' => out.push_str("__"),
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => out.push(c),
            _ => out.push('_'),
        }
    }
    if out.is_empty() {
        out.push('_');
    }
    if out.len() > MAX {
        let digest = hex::encode(Sha256::digest(name.as_bytes()));
        out.truncate(MAX - 9);
        out.push('_');
        out.push_str(&digest[..8]);
    }
    out
}

/// The request's tools by wire name.
#[derive(Debug, Default)]
pub(crate) struct ToolNames {
    by_wire: BTreeMap<String, String>,
}

impl ToolNames {
    pub(crate) fn new(tools: &[ToolInfo]) -> Result<ToolNames, ModelError> {
        let mut by_wire = BTreeMap::new();
        for tool in tools {
            let wire = wire_name(&tool.name);
            if wire == FINAL_ANSWER_TOOL {
                return Err(ModelError(format!(
                    "the tool `{}` cannot be offered: its name is taken by the answer tool `{FINAL_ANSWER_TOOL}`",
                    tool.name
                )));
            }
            if let Some(other) = by_wire.insert(wire.clone(), tool.name.clone())
                && other != tool.name
            {
                return Err(ModelError(format!(
                    "the tools `{other}` and `{}` would both be called `{wire}` on the wire",
                    tool.name
                )));
            }
        }
        Ok(ToolNames { by_wire })
    }

    /// The engine's name for a wire name the model used. A name that was not offered is
    /// passed through as it came: the engine refuses it, and says so to the model.
    pub(crate) fn engine_name(&self, wire: &str) -> String {
        self.by_wire
            .get(wire)
            .cloned()
            .unwrap_or_else(|| wire.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tool(name: &str) -> ToolInfo {
        ToolInfo {
            name: name.into(),
            description: String::new(),
            input_schema: serde_json::json!({"type": "object"}),
            output_schema: None,
            annotations: Default::default(),
        }
    }

    fn valid(s: &str) -> bool {
        (1..=64).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }

    #[test]
    fn names_are_valid_on_the_wire_and_reversible() {
        let long = format!("server.{}", "x".repeat(100));
        let names = [
            "builtin.echo",
            "crm.find-customer",
            "a b/c.d",
            "é.ü",
            long.as_str(),
        ];
        let tools: Vec<_> = names.iter().map(|n| tool(n)).collect();
        let table = ToolNames::new(&tools).unwrap();
        for name in names {
            let wire = wire_name(name);
            assert!(valid(&wire), "{wire}");
            assert_eq!(table.engine_name(&wire), name);
        }
        assert_eq!(wire_name("builtin.echo"), "builtin__echo");
        assert_eq!(table.engine_name("never_offered"), "never_offered");
    }

    #[test]
    fn colliding_names_are_refused() {
        let err = ToolNames::new(&[tool("a.b"), tool("a__b")]).unwrap_err();
        assert!(err.0.contains("`a.b` and `a__b`"), "{err}");
        let err = ToolNames::new(&[tool("final_answer")]).unwrap_err();
        assert!(err.0.contains("taken by the answer tool"), "{err}");
        // The same tool twice is not a collision.
        ToolNames::new(&[tool("a.b"), tool("a.b")]).unwrap();
    }
}
