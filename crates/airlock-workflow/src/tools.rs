//! Checks that need the tools a workflow will meet: whether each post-condition's tool
//! exists and only reads. This crate knows no tools; the caller (the engine, which has
//! them) says what each one is.

use std::collections::BTreeMap;
use std::path::Path;

use crate::diagnostic::{DiagnosticCode, Diagnostics, Reporter, did_you_mean};
use crate::model::Workflow;

/// What a tool may do, as far as these checks care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolAccess {
    /// Declared read-only: calling it changes nothing anywhere.
    ReadOnly,
    /// May change something.
    Writes,
}

impl Workflow {
    /// The problems of the post-conditions' tools among `tools` (name → access): a tool
    /// that is not there, or one that may change something. Located in `file`, which is
    /// where this workflow's text came from (only used in messages).
    pub fn check_tools(
        &self,
        file: &Path,
        tools: impl IntoIterator<Item = (String, ToolAccess)>,
    ) -> Diagnostics {
        let tools: BTreeMap<String, ToolAccess> = tools.into_iter().collect();
        let mut r = Reporter::new(file, &self.source);
        for pc in &self.postconditions {
            let Some(call) = &pc.call else { continue };
            match tools.get(&call.tool) {
                None => {
                    let mut text = format!(
                        "post-condition `{}` reads with `{}`, but no server offers a tool of that name",
                        pc.name, call.tool
                    );
                    if let Some(close) = did_you_mean(&call.tool, tools.keys().map(String::as_str)) {
                        text.push_str(&format!(" (did you mean `{close}`?)"));
                    }
                    r.error_at(DiagnosticCode::UnknownTool, &pc.span, text);
                }
                Some(ToolAccess::Writes) => r.error_at(
                    DiagnosticCode::NotReadOnly,
                    &pc.span,
                    format!(
                        "post-condition `{}` uses `{}`, which is not declared read-only; a post-condition may only read, so checking an outcome can never change it",
                        pc.name, call.tool
                    ),
                ),
                Some(ToolAccess::ReadOnly) => {}
            }
        }
        r.finish()
    }
}
