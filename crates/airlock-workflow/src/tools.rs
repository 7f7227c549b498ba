//! Checks that need the tools a workflow will meet: whether each post-condition's tool
//! exists and only reads, and whether each `tool` state's tool exists on a server that
//! is there. This crate knows no tools; the caller (the engine, which has them) says what
//! each one is.

use std::collections::BTreeMap;
use std::path::Path;

use crate::diagnostic::{DiagnosticCode, Diagnostics, Reporter, did_you_mean};
use crate::model::{StateKind, Workflow};

/// What a tool may do, as far as these checks care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolAccess {
    /// Declared read-only: calling it changes nothing anywhere.
    ReadOnly,
    /// May change something.
    Writes,
}

impl Workflow {
    /// The problems of the tools among `tools` (name → access): a post-condition's tool
    /// that is not there or may change something, and a `tool` state's tool that its
    /// server does not offer. A state's tool on a server that is not among `tools` at
    /// all (not started, or down) is not judged: it may be there when the step runs. Located in `file`, which is
    /// where this workflow's text came from (only used in messages).
    pub fn check_tools(
        &self,
        file: &Path,
        tools: impl IntoIterator<Item = (String, ToolAccess)>,
    ) -> Diagnostics {
        let tools: BTreeMap<String, ToolAccess> = tools.into_iter().collect();
        let mut r = Reporter::new(file, &self.source);
        let servers: std::collections::BTreeSet<&str> =
            tools.keys().map(|t| server_of(t)).collect();
        for state in &self.states {
            let StateKind::Tool(t) = &state.kind else {
                continue;
            };
            if tools.contains_key(&t.tool) || !servers.contains(server_of(&t.tool)) {
                continue;
            }
            let mut text = format!(
                "state `{}` calls `{}`, but server `{}` offers no tool of that name",
                state.name,
                t.tool,
                server_of(&t.tool)
            );
            if let Some(close) = did_you_mean(&t.tool, tools.keys().map(String::as_str)) {
                text.push_str(&format!(" (did you mean `{close}`?)"));
            }
            r.error(
                DiagnosticCode::UnknownTool,
                tool_offset(&self.source, &state.name, &t.tool),
                text,
            );
        }
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

/// The server part of `<server>.<tool>`.
fn server_of(tool: &str) -> &str {
    tool.split_once('.').map_or(tool, |(server, _)| server)
}

/// Where state `state`'s tool name is written in `source` (the model keeps no position
/// for it): the quoted name after the state's table header, else the header, else the
/// start of the file.
fn tool_offset(source: &str, state: &str, tool: &str) -> usize {
    let header = [format!("[states.{state}]"), format!("[states.\"{state}\"]")]
        .iter()
        .find_map(|h| source.find(h.as_str()));
    let Some(header) = header else {
        return 0;
    };
    [format!("\"{tool}\""), format!("'{tool}'")]
        .iter()
        .filter_map(|quoted| source[header..].find(quoted.as_str()))
        .min()
        .map_or(header, |at| header + at)
}
