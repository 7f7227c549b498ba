//! Validation: turns the raw TOML shapes into a [`Workflow`], or into every problem found.

use std::collections::VecDeque;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_spanned::Spanned;
use sha2::{Digest, Sha256};

use crate::args::{ArgNode, Args};
use crate::diagnostic::{DiagnosticCode as Code, Diagnostics, Reporter, did_you_mean};
use crate::duration::parse_duration;
use crate::expr::{Expr, ROOTS};
use crate::inputs::{conform, type_phrase};
use crate::model::{
    AgentState, ApprovalState, Branch, CheckState, ChoiceState, EndState, EndStatus, InputSpec,
    InputType, Postcondition, PostconditionCall, RecallState, RememberState, RetryPolicy, State,
    StateKind, ToolState, Workflow,
};
use crate::raw::{RawArg, RawInput, RawPostcondition, RawRetry, RawState, RawWorkflow};
use crate::template::Template;

/// The kinds of state, as written in `kind`.
pub(crate) const KINDS: [&str; 8] = [
    "tool", "agent", "choice", "approval", "check", "recall", "remember", "end",
];

/// Which kinds allow each kind-specific field. `kind` and `description` are allowed everywhere.
pub(crate) const FIELD_KINDS: &[(&str, &[&str])] = &[
    ("tool", &["tool"]),
    ("args", &["tool"]),
    ("idempotent", &["tool"]),
    (
        "next",
        &["tool", "agent", "approval", "check", "recall", "remember"],
    ),
    ("timeout", &["tool", "agent", "check"]),
    ("retry", &["tool", "agent", "check"]),
    ("on_error", &["tool", "agent", "check"]),
    ("default", &["choice"]),
    ("branches", &["choice"]),
    ("prompt", &["approval"]),
    ("approvers", &["approval"]),
    ("expires_after", &["approval"]),
    ("on_reject", &["approval"]),
    ("on_expire", &["approval"]),
    ("goal", &["agent"]),
    ("tools", &["agent"]),
    ("output_schema", &["agent"]),
    ("max_turns", &["agent"]),
    ("max_tokens", &["agent"]),
    ("min_confidence", &["agent"]),
    ("on_low_confidence", &["agent"]),
    ("assert", &["check"]),
    ("message", &["check"]),
    ("on_fail", &["check"]),
    ("subject", &["recall", "remember"]),
    ("categories", &["recall"]),
    ("search", &["recall"]),
    ("limit", &["recall"]),
    ("category", &["remember"]),
    ("key", &["remember"]),
    ("value", &["remember"]),
    ("text", &["remember"]),
    ("status", &["end"]),
];

/// The fields each kind must have.
pub(crate) const REQUIRED_FIELDS: &[(&str, &[&str])] = &[
    ("tool", &["tool", "next"]),
    ("agent", &["goal", "next"]),
    ("choice", &["branches", "default"]),
    ("approval", &["prompt", "approvers", "next", "on_reject"]),
    ("check", &["assert", "next", "on_fail"]),
    ("recall", &["subject", "next"]),
    ("remember", &["subject", "category", "key", "value", "next"]),
    ("end", &["status"]),
];

/// The fields of `task` in expressions.
const TASK_FIELDS: [&str; 3] = ["id", "requester", "workflow"];

const DEFAULT_MAX_TURNS: u32 = 8;
const DEFAULT_RECALL_LIMIT: u32 = 20;

/// Parses and validates one workflow file.
pub(crate) fn parse_workflow(file: &Path, source: &str) -> Result<Workflow, Diagnostics> {
    let mut reporter = Reporter::new(file, source);
    let raw = match read_raw(source) {
        Ok(raw) => raw,
        Err(error) => {
            let (syntax, error) = &error;
            reporter.toml_error(*syntax, error, "key, state and input");
            return Err(reporter.finish());
        }
    };
    let checker = Checker {
        inputs: raw.inputs.keys().map(|k| k.get_ref().clone()).collect(),
        states: raw.states.keys().map(|k| k.get_ref().clone()).collect(),
        r: reporter,
        broken_transition: false,
        result_root: false,
    };
    checker.workflow(raw, source)
}

/// The span of the top-level `name`, for messages about the workflow as a whole.
pub(crate) fn name_span(source: &str) -> Option<Range<usize>> {
    #[derive(Deserialize)]
    struct NameOnly {
        name: Spanned<String>,
    }
    toml::from_str::<NameOnly>(source)
        .ok()
        .map(|n| n.name.span())
}

fn read_raw(source: &str) -> Result<RawWorkflow, (bool, toml::de::Error)> {
    let deserializer = toml::de::Deserializer::parse(source).map_err(|e| (true, e))?;
    RawWorkflow::deserialize(deserializer).map_err(|e| (false, e))
}

struct Checker<'a> {
    r: Reporter<'a>,
    inputs: Vec<String>,
    states: Vec<String>,
    /// A transition is missing or names no state; reachability checks would only echo it.
    broken_transition: bool,
    /// Expressions may also use `result` (a post-condition's tool result).
    result_root: bool,
}

impl Checker<'_> {
    fn workflow(mut self, raw: RawWorkflow, source: &str) -> Result<Workflow, Diagnostics> {
        let name = raw.name.get_ref();
        if !is_workflow_name(name) {
            self.r.error_at(
                Code::InvalidName,
                &raw.name.span(),
                format!(
                    "`{name}` is not a valid workflow name; use lower-case letters, digits, `_` and `-`, starting with a letter or digit"
                ),
            );
        }
        let inputs: Vec<InputSpec> = raw
            .inputs
            .iter()
            .filter_map(|(name, input)| self.input(name, input.get_ref()))
            .collect();
        let mut states = Vec::new();
        for (name, state) in &raw.states {
            if let Some(state) = self.state(name, state.get_ref()) {
                states.push(state);
            }
        }
        self.target(&raw.start, "`start`");
        self.graph(&raw);
        let postconditions = self.postconditions(&raw, &states);

        let diagnostics = self.r.finish();
        if !diagnostics.is_empty() {
            return Err(diagnostics);
        }
        Ok(Workflow {
            name: raw.name.into_inner(),
            description: raw.description.map(Spanned::into_inner),
            start: raw.start.into_inner(),
            inputs,
            states,
            postconditions,
            source: source.to_owned(),
            hash: hex::encode(Sha256::digest(source.as_bytes())),
        })
    }

    fn input(&mut self, name: &Spanned<String>, raw: &RawInput) -> Option<InputSpec> {
        if !is_identifier(name.get_ref()) {
            self.r.error_at(
                Code::InvalidName,
                &name.span(),
                format!(
                    "`{}` is not a valid input name; use letters, digits and `_`, not starting with a digit, so expressions can say `inputs.<name>`",
                    name.get_ref()
                ),
            );
        }
        let ty_name = raw.ty.get_ref();
        let Some(ty) = InputType::from_name(ty_name) else {
            let mut text = format!(
                "input `{}` has the unknown type `{ty_name}`; use one of string, number, integer, boolean, object, array",
                name.get_ref()
            );
            if let Some(close) = did_you_mean(ty_name, InputType::ALL.iter().map(|t| t.as_str())) {
                text.push_str(&format!(" (did you mean `{close}`?)"));
            }
            self.r.error_at(Code::InputType, &raw.ty.span(), text);
            return None;
        };
        let default = match &raw.default {
            Some(default) => match conform(ty, default.get_ref().clone()) {
                Ok(value) => Some(value),
                Err(got) => {
                    self.r.error_at(
                        Code::InputType,
                        &default.span(),
                        format!(
                            "the default of input `{}` should be {}, but it is {got}",
                            name.get_ref(),
                            type_phrase(ty)
                        ),
                    );
                    None
                }
            },
            None => None,
        };
        let required = raw.default.is_none() && raw.required.as_ref().is_none_or(|r| *r.get_ref());
        Some(InputSpec {
            name: name.get_ref().clone(),
            ty,
            required,
            default,
            description: raw.description.as_ref().map(|d| d.get_ref().clone()),
        })
    }

    fn state(&mut self, name: &Spanned<String>, raw: &RawState) -> Option<State> {
        let state_name = name.get_ref().as_str();
        if !is_identifier(state_name) {
            self.r.error_at(
                Code::InvalidName,
                &name.span(),
                format!(
                    "`{state_name}` is not a valid state name; use letters, digits and `_`, not starting with a digit, so expressions can say `state.<name>`"
                ),
            );
        }
        let kind = raw.kind.get_ref().as_str();
        if !KINDS.contains(&kind) {
            let mut text = format!(
                "state `{state_name}` has the unknown kind `{kind}`; use one of tool, agent, choice, approval, check, end"
            );
            if let Some(close) = did_you_mean(kind, KINDS) {
                text.push_str(&format!(" (did you mean `{close}`?)"));
            }
            self.r.error_at(Code::BadValue, &raw.kind.span(), text);
            return None;
        }
        let present = present_fields(raw);
        for (field, span) in &present {
            let allowed = allowed_kinds(field);
            if !allowed.contains(&kind) {
                self.r.error_at(
                    Code::MisplacedField,
                    span,
                    format!(
                        "`{field}` is not allowed on {} state (`{state_name}`); it belongs on {} states",
                        article_kind(kind),
                        join_words(allowed)
                    ),
                );
            }
        }
        let mut complete = true;
        for field in required_fields(kind) {
            if !present.iter().any(|(f, _)| f == field) {
                complete = false;
                if field_is_transition(field) {
                    self.broken_transition = true;
                }
                self.r.error_at(
                    Code::MissingField,
                    &name.span(),
                    format!(
                        "state `{state_name}` is {} state, so it needs `{field}`",
                        article_kind(kind)
                    ),
                );
            }
        }

        let on_error = self.opt_target(&raw.on_error, "on_error", state_name);
        let timeout = raw
            .timeout
            .as_ref()
            .and_then(|t| self.duration(t, "timeout", state_name));
        let retry = raw
            .retry
            .as_ref()
            .map_or_else(RetryPolicy::default, |r| self.retry(r, state_name));
        let description = raw.description.as_ref().map(|d| d.get_ref().clone());

        let next = self.opt_target(&raw.next, "next", state_name);
        let kind = match kind {
            "tool" => {
                let tool = raw.tool.as_ref().map(|t| {
                    if !is_tool_name(t.get_ref(), false) {
                        self.r.error_at(
                            Code::BadValue,
                            &t.span(),
                            format!(
                                "`tool` of state `{state_name}` is `{}`, but a tool is named `<server>.<tool>`, e.g. \"builtin.echo\"",
                                t.get_ref()
                            ),
                        );
                    }
                    t.get_ref().clone()
                });
                let args = raw.args.as_ref().map_or_else(Args::empty, |a| {
                    Args::new(self.arg_table(a.get_ref(), "args", &format!("state `{state_name}`")))
                });
                StateKind::Tool(ToolState {
                    tool: tool?,
                    args,
                    idempotent: raw.idempotent.as_ref().map(|i| *i.get_ref()),
                    next: next?,
                })
            }
            "agent" => {
                let goal = raw
                    .goal
                    .as_ref()
                    .and_then(|g| self.template(g, &format!("`goal` of state `{state_name}`")));
                let tools = raw.tools.as_ref().map_or_else(Vec::new, |tools| {
                    tools
                        .get_ref()
                        .iter()
                        .map(|t| {
                            if !is_tool_name(t.get_ref(), true) {
                                self.r.error_at(
                                    Code::BadValue,
                                    &t.span(),
                                    format!(
                                        "`{}` in `tools` of state `{state_name}` is not a tool pattern; write `<server>.<tool>`, where `*` matches anything, e.g. \"support.*\"",
                                        t.get_ref()
                                    ),
                                );
                            }
                            t.get_ref().clone()
                        })
                        .collect()
                });
                let output_schema = raw.output_schema.as_ref().and_then(|s| {
                    if s.get_ref().is_object() {
                        Some(s.get_ref().clone())
                    } else {
                        self.r.error_at(
                            Code::BadValue,
                            &s.span(),
                            format!("`output_schema` of state `{state_name}` must be a table holding a JSON Schema"),
                        );
                        None
                    }
                });
                let max_turns = match &raw.max_turns {
                    None => DEFAULT_MAX_TURNS,
                    Some(m) => self
                        .positive(m, "max_turns", state_name)
                        .unwrap_or(DEFAULT_MAX_TURNS),
                };
                let max_tokens = raw
                    .max_tokens
                    .as_ref()
                    .and_then(|m| self.positive(m, "max_tokens", state_name))
                    .map(u64::from);
                let low = self.opt_target(&raw.on_low_confidence, "on_low_confidence", state_name);
                let min_confidence = match (&raw.min_confidence, low) {
                    (None, None) => None,
                    (Some(c), low) => {
                        let value = *c.get_ref();
                        if !(0.0..=1.0).contains(&value) {
                            self.r.error_at(
                                Code::BadValue,
                                &c.span(),
                                format!("`min_confidence` of state `{state_name}` is {value}, but it must be between 0 and 1"),
                            );
                            None
                        } else if let Some(low) = low {
                            Some((value, low))
                        } else {
                            if raw.on_low_confidence.is_none() {
                                self.r.error_at(
                                    Code::MissingField,
                                    &c.span(),
                                    format!("state `{state_name}` sets `min_confidence` but not `on_low_confidence`, the state a low-confidence answer goes to"),
                                );
                            }
                            None
                        }
                    }
                    (None, Some(_)) => {
                        if let Some(t) = &raw.on_low_confidence {
                            self.r.error_at(
                                Code::MissingField,
                                &t.span(),
                                format!("state `{state_name}` sets `on_low_confidence` but not `min_confidence`, the threshold below which it applies"),
                            );
                        }
                        None
                    }
                };
                StateKind::Agent(AgentState {
                    goal: goal?,
                    tools,
                    output_schema,
                    max_turns,
                    max_tokens,
                    min_confidence,
                    next: next?,
                })
            }
            "choice" => {
                let default = self.opt_target(&raw.default, "default", state_name);
                let mut branches = Vec::new();
                if let Some(list) = &raw.branches {
                    if list.get_ref().is_empty() {
                        self.r.error_at(
                            Code::BadValue,
                            &list.span(),
                            format!("choice state `{state_name}` needs at least one branch"),
                        );
                    }
                    for (i, branch) in list.get_ref().iter().enumerate() {
                        let branch = branch.get_ref();
                        let what = format!("`when` of branch {} of state `{state_name}`", i + 1);
                        let when = self.expr(&branch.when, &what);
                        let next = self.target(
                            &branch.next,
                            &format!("`next` of branch {} of state `{state_name}`", i + 1),
                        );
                        if let (Some(when), Some(next)) = (when, next) {
                            branches.push(Branch { when, next });
                        }
                    }
                }
                StateKind::Choice(ChoiceState {
                    branches,
                    default: default?,
                })
            }
            "approval" => {
                let prompt = raw
                    .prompt
                    .as_ref()
                    .and_then(|p| self.template(p, &format!("`prompt` of state `{state_name}`")));
                let approvers = raw.approvers.as_ref().map_or_else(Vec::new, |list| {
                    if list.get_ref().is_empty() {
                        self.r.error_at(
                            Code::BadValue,
                            &list.span(),
                            format!("`approvers` of state `{state_name}` is empty; name at least one role that may approve"),
                        );
                    }
                    list.get_ref()
                        .iter()
                        .map(|a| {
                            if a.get_ref().trim().is_empty() {
                                self.r.error_at(
                                    Code::BadValue,
                                    &a.span(),
                                    format!("`approvers` of state `{state_name}` holds an empty role name"),
                                );
                            }
                            a.get_ref().clone()
                        })
                        .collect()
                });
                let expires_after = raw
                    .expires_after
                    .as_ref()
                    .and_then(|d| self.duration(d, "expires_after", state_name));
                let on_reject = self.opt_target(&raw.on_reject, "on_reject", state_name);
                let on_expire = self.opt_target(&raw.on_expire, "on_expire", state_name);
                let on_reject = on_reject?;
                StateKind::Approval(ApprovalState {
                    prompt: prompt?,
                    approvers,
                    expires_after,
                    next: next?,
                    on_expire: on_expire.unwrap_or_else(|| on_reject.clone()),
                    on_reject,
                })
            }
            "check" => {
                let assert = raw
                    .assert
                    .as_ref()
                    .and_then(|a| self.expr(a, &format!("`assert` of state `{state_name}`")));
                let message = raw
                    .message
                    .as_ref()
                    .and_then(|m| self.template(m, &format!("`message` of state `{state_name}`")));
                let on_fail = self.opt_target(&raw.on_fail, "on_fail", state_name);
                StateKind::Check(CheckState {
                    assert: assert?,
                    message,
                    next: next?,
                    on_fail: on_fail?,
                })
            }
            "recall" => {
                let subject = raw
                    .subject
                    .as_ref()
                    .and_then(|e| self.expr(e, &format!("`subject` of state `{state_name}`")));
                let search = raw
                    .search
                    .as_ref()
                    .and_then(|t| self.template(t, &format!("`search` of state `{state_name}`")));
                let categories = raw.categories.as_ref().map_or_else(Vec::new, |list| {
                    list.get_ref()
                        .iter()
                        .map(|c| {
                            if c.get_ref().trim().is_empty() {
                                self.r.error_at(
                                    Code::BadValue,
                                    &c.span(),
                                    format!(
                                        "`categories` of state `{state_name}` holds an empty name"
                                    ),
                                );
                            }
                            c.get_ref().clone()
                        })
                        .collect()
                });
                let limit = match &raw.limit {
                    Some(l) if !(1..=1000).contains(l.get_ref()) => {
                        self.r.error_at(
                            Code::BadValue,
                            &l.span(),
                            format!(
                                "`limit` of state `{state_name}` is {}; use 1 to 1000",
                                l.get_ref()
                            ),
                        );
                        None
                    }
                    Some(l) => u32::try_from(*l.get_ref()).ok(),
                    None => Some(DEFAULT_RECALL_LIMIT),
                };
                StateKind::Recall(RecallState {
                    subject: subject?,
                    categories,
                    search,
                    limit: limit?,
                    next: next?,
                })
            }
            "remember" => {
                let what = |field: &str| format!("`{field}` of state `{state_name}`");
                let subject = raw
                    .subject
                    .as_ref()
                    .and_then(|e| self.expr(e, &what("subject")));
                let key = raw.key.as_ref().and_then(|e| self.expr(e, &what("key")));
                let value = raw
                    .value
                    .as_ref()
                    .and_then(|e| self.expr(e, &what("value")));
                let text = raw
                    .text
                    .as_ref()
                    .and_then(|t| self.template(t, &what("text")));
                let category = raw.category.as_ref().and_then(|c| {
                    if c.get_ref().trim().is_empty() {
                        self.r.error_at(
                            Code::BadValue,
                            &c.span(),
                            format!("`category` of state `{state_name}` is empty"),
                        );
                        None
                    } else {
                        Some(c.get_ref().clone())
                    }
                });
                StateKind::Remember(RememberState {
                    subject: subject?,
                    category: category?,
                    key: key?,
                    value: value?,
                    text,
                    next: next?,
                })
            }
            _ => {
                let status = raw.status.as_ref().and_then(|s| {
                    let status = EndStatus::from_name(s.get_ref());
                    if status.is_none() {
                        self.r.error_at(
                            Code::BadValue,
                            &s.span(),
                            format!(
                                "`status` of end state `{state_name}` is `{}`; use succeeded, failed or cancelled",
                                s.get_ref()
                            ),
                        );
                    }
                    status
                });
                StateKind::End(EndState { status: status? })
            }
        };
        if !complete {
            return None;
        }
        Some(State {
            name: state_name.to_owned(),
            description,
            kind,
            retry,
            timeout,
            on_error,
        })
    }

    /// Checks that a transition names an existing state.
    fn target(&mut self, target: &Spanned<String>, what: &str) -> Option<String> {
        let name = target.get_ref();
        if self.states.iter().any(|s| s == name) {
            return Some(name.clone());
        }
        self.broken_transition = true;
        let mut text = format!("{what} goes to `{name}`, but there is no state with that name");
        if let Some(close) = did_you_mean(name, self.states.iter().map(String::as_str)) {
            text.push_str(&format!("; did you mean `{close}`?"));
        }
        self.r.error_at(Code::UnknownState, &target.span(), text);
        None
    }

    fn opt_target(
        &mut self,
        target: &Option<Spanned<String>>,
        field: &str,
        state: &str,
    ) -> Option<String> {
        target
            .as_ref()
            .and_then(|t| self.target(t, &format!("`{field}` of state `{state}`")))
    }

    fn duration(&mut self, value: &Spanned<String>, field: &str, state: &str) -> Option<Duration> {
        match parse_duration(value.get_ref()) {
            Ok(d) if d.is_zero() => {
                self.r.error_at(
                    Code::BadDuration,
                    &value.span(),
                    format!("`{field}` of state `{state}` must be longer than zero"),
                );
                None
            }
            Ok(d) => Some(d),
            Err(reason) => {
                self.r.error_at(
                    Code::BadDuration,
                    &value.span(),
                    format!("`{field}` of state `{state}`: {reason}"),
                );
                None
            }
        }
    }

    fn positive(&mut self, value: &Spanned<i64>, field: &str, state: &str) -> Option<u32> {
        match u32::try_from(*value.get_ref()) {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                self.r.error_at(
                    Code::BadValue,
                    &value.span(),
                    format!(
                        "`{field}` of state `{state}` is {}, but it must be a whole number of at least 1",
                        value.get_ref()
                    ),
                );
                None
            }
        }
    }

    fn retry(&mut self, raw: &Spanned<RawRetry>, state: &str) -> RetryPolicy {
        let defaults = RetryPolicy::default();
        let r = raw.get_ref();
        let max_attempts = r
            .max_attempts
            .as_ref()
            .and_then(|m| self.positive(m, "retry.max_attempts", state))
            .unwrap_or(defaults.max_attempts);
        let initial_backoff = r
            .initial_backoff
            .as_ref()
            .and_then(|d| self.duration(d, "retry.initial_backoff", state))
            .unwrap_or(defaults.initial_backoff);
        let max_backoff = r
            .max_backoff
            .as_ref()
            .and_then(|d| self.duration(d, "retry.max_backoff", state))
            .unwrap_or(defaults.max_backoff);
        let multiplier = match &r.multiplier {
            Some(m) if !(m.get_ref().is_finite() && *m.get_ref() >= 1.0) => {
                self.r.error_at(
                    Code::BadValue,
                    &m.span(),
                    format!(
                        "`retry.multiplier` of state `{state}` is {}, but it must be at least 1.0 so waits never shrink",
                        m.get_ref()
                    ),
                );
                defaults.multiplier
            }
            Some(m) => *m.get_ref(),
            None => defaults.multiplier,
        };
        if initial_backoff > max_backoff {
            self.r.error_at(
                Code::BadValue,
                &raw.span(),
                format!(
                    "`retry` of state `{state}` starts waiting longer (`initial_backoff`) than it may ever wait (`max_backoff`)"
                ),
            );
        }
        RetryPolicy {
            max_attempts,
            initial_backoff,
            multiplier,
            max_backoff,
        }
    }

    fn arg_table(
        &mut self,
        table: &IndexMap<String, Spanned<RawArg>>,
        path: &str,
        owner: &str,
    ) -> Vec<(String, ArgNode)> {
        table
            .iter()
            .filter_map(|(key, value)| {
                let node = self.arg(value, &format!("{path}.{key}"), owner)?;
                Some((key.clone(), node))
            })
            .collect()
    }

    /// `owner` says whose arguments these are, e.g. "state `refund`".
    fn arg(&mut self, value: &Spanned<RawArg>, path: &str, owner: &str) -> Option<ArgNode> {
        Some(match value.get_ref() {
            RawArg::Expr(text) => {
                let spanned = Spanned::new(value.span(), text.clone());
                ArgNode::Expr(self.expr(&spanned, &format!("`{path}` of {owner}"))?)
            }
            RawArg::Literal(v) => ArgNode::Literal(v.clone()),
            RawArg::Table(entries) => ArgNode::Table(self.arg_table(entries, path, owner)),
            RawArg::Array(items) => ArgNode::Array(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| self.arg(item, &format!("{path}[{i}]"), owner))
                    .collect(),
            ),
        })
    }

    fn expr(&mut self, text: &Spanned<String>, what: &str) -> Option<Expr> {
        match Expr::compile_located(text.get_ref()) {
            Ok(expr) => {
                self.references(&expr, text, 0, what);
                Some(expr)
            }
            Err(e) => {
                let at = self.inside_string(text, e.char_index);
                self.r.error(
                    Code::BadExpression,
                    at,
                    format!("{what} is not a valid expression: {}", e.message),
                );
                None
            }
        }
    }

    fn template(&mut self, text: &Spanned<String>, what: &str) -> Option<Template> {
        match Template::parse_located(text.get_ref()) {
            Ok(template) => {
                let holes: Vec<(usize, Expr)> =
                    template.holes().map(|(at, e)| (at, e.clone())).collect();
                for (at, expr) in holes {
                    self.references(&expr, text, at, what);
                }
                Some(template)
            }
            Err(e) => {
                let at = self.inside_string(text, e.char_index);
                self.r.error(
                    Code::BadExpression,
                    at,
                    format!("{what} is not a valid template: {}", e.message),
                );
                None
            }
        }
    }

    /// Reports references to variables, inputs, states or task fields that do not exist.
    fn references(&mut self, expr: &Expr, text: &Spanned<String>, base: usize, what: &str) {
        for reference in expr.references() {
            let at = self.inside_string(text, reference.char_index.map(|i| base + i));
            let field = reference.field.as_deref();
            let problem = match (reference.root.as_str(), field) {
                ("inputs", Some(f)) if !self.inputs.iter().any(|i| i == f) => Some(with_hint(
                    format!("{what} uses `inputs.{f}`, but there is no input named `{f}`"),
                    did_you_mean(f, self.inputs.iter().map(String::as_str)),
                )),
                ("state", Some(f)) if !self.states.iter().any(|s| s == f) => Some(with_hint(
                    format!("{what} uses `state.{f}`, but there is no state named `{f}`"),
                    did_you_mean(f, self.states.iter().map(String::as_str)),
                )),
                ("task", Some(f)) if !TASK_FIELDS.contains(&f) => Some(with_hint(
                    format!(
                        "{what} uses `task.{f}`, but a task only has `id`, `requester` and `workflow`"
                    ),
                    did_you_mean(f, TASK_FIELDS),
                )),
                ("result", _) if self.result_root => None,
                (root, _) if !ROOTS.contains(&root) => Some(with_hint(
                    format!(
                        "{what} uses `{root}`, which is not defined; expressions can use `inputs`, `state`{}",
                        if self.result_root {
                            ", `task` and `result`"
                        } else {
                            " and `task`"
                        }
                    ),
                    if self.result_root {
                        did_you_mean(root, ROOTS.iter().copied().chain(["result"]))
                    } else {
                        did_you_mean(root, ROOTS)
                    },
                )),
                _ => None,
            };
            if let Some(message) = problem {
                self.r.error(Code::UnknownVariable, at, message);
            }
        }
    }

    /// The byte offset in the file of char `char_index` of a string value, when the
    /// string is written on one line without escapes; otherwise the string's start.
    fn inside_string(&self, text: &Spanned<String>, char_index: Option<usize>) -> usize {
        let span = text.span();
        let Some(index) = char_index else {
            return span.start;
        };
        let raw = self.r.source().get(span.clone()).unwrap_or("");
        let quoted_once = (raw.starts_with('"') && !raw.starts_with("\"\"\""))
            || (raw.starts_with('\'') && !raw.starts_with("'''"));
        if !quoted_once || raw.len() < 2 || &raw[1..raw.len() - 1] != text.get_ref().as_str() {
            return span.start;
        }
        let inner = text.get_ref();
        let byte = inner
            .char_indices()
            .nth(index)
            .map_or(inner.len(), |(b, _)| b);
        span.start + 1 + byte
    }

    /// The post-conditions: names, tool names, arguments, expectations and messages. Whether
    /// a tool exists and only reads is known when the workflow meets its tools
    /// ([`Workflow::check_tools`]).
    fn postconditions(&mut self, raw: &RawWorkflow, states: &[State]) -> Vec<Postcondition> {
        if raw.postconditions.is_empty() {
            return Vec::new();
        }
        let succeeds = states
            .iter()
            .any(|s| matches!(&s.kind, StateKind::End(e) if e.status == EndStatus::Succeeded));
        if !succeeds && !self.r.has_errors() {
            self.r.error_at(
                Code::BadValue,
                &raw.postconditions[0].get_ref().name.span(),
                "post-conditions are checked when a task reaches an end with `status = \"succeeded\"`, but this workflow has no such end state",
            );
        }
        let mut seen: Vec<&str> = Vec::new();
        let mut out = Vec::new();
        for pc in &raw.postconditions {
            let pc = pc.get_ref();
            let name = pc.name.get_ref().as_str();
            if !is_identifier(name) {
                self.r.error_at(
                    Code::InvalidName,
                    &pc.name.span(),
                    format!(
                        "`{name}` is not a valid post-condition name; use letters, digits and `_`, not starting with a digit"
                    ),
                );
            } else if seen.contains(&name) {
                self.r.error_at(
                    Code::DuplicateName,
                    &pc.name.span(),
                    format!("there are two post-conditions named `{name}`; give each its own name"),
                );
            }
            seen.push(name);
            if let Some(p) = self.postcondition(pc) {
                out.push(p);
            }
        }
        out
    }

    fn postcondition(&mut self, pc: &RawPostcondition) -> Option<Postcondition> {
        let name = pc.name.get_ref().clone();
        let what = format!("post-condition `{name}`");
        let call = match &pc.tool {
            Some(tool) => {
                if !is_tool_name(tool.get_ref(), false) {
                    self.r.error_at(
                        Code::BadValue,
                        &tool.span(),
                        format!(
                            "`tool` of {what} is `{}`, but a tool is named `<server>.<tool>`, e.g. \"support.get_order\"",
                            tool.get_ref()
                        ),
                    );
                }
                let args = pc.args.as_ref().map_or_else(Args::empty, |a| {
                    Args::new(self.arg_table(a.get_ref(), "args", &what))
                });
                Some(PostconditionCall {
                    tool: tool.get_ref().clone(),
                    args,
                })
            }
            None => {
                if let Some(args) = &pc.args {
                    self.r.error_at(
                        Code::MisplacedField,
                        &args.span(),
                        format!("{what} has `args` but no `tool` to give them to"),
                    );
                }
                None
            }
        };
        if pc.expect.get_ref().is_empty() {
            self.r.error_at(
                Code::BadValue,
                &pc.expect.span(),
                format!(
                    "`expect` of {what} is empty; list at least one expression that must be true"
                ),
            );
        }
        // `result` is the tool's answer: only there when there is a tool.
        self.result_root = call.is_some();
        let mut expect = Vec::new();
        let mut complete = true;
        for (i, e) in pc.expect.get_ref().iter().enumerate() {
            match self.expr(e, &format!("`expect[{i}]` of {what}")) {
                Some(e) => expect.push(e),
                None => complete = false,
            }
        }
        let message = pc
            .message
            .as_ref()
            .and_then(|m| self.template(m, &format!("`message` of {what}")));
        self.result_root = false;
        let complete = complete && (pc.message.is_none() || message.is_some());
        (complete && !expect.is_empty()).then(|| Postcondition {
            name,
            description: pc.description.as_ref().map(|d| d.get_ref().clone()),
            span: pc
                .tool
                .as_ref()
                .map_or_else(|| pc.name.span(), |t| t.span()),
            call,
            expect,
            message,
        })
    }

    /// Reachability: from `start` to every state, and from every state to an end.
    fn graph(&mut self, raw: &RawWorkflow) {
        let names: Vec<&str> = self.states.iter().map(String::as_str).collect();
        let index = |name: &str| names.iter().position(|n| *n == name);
        let edges: Vec<Vec<usize>> = raw
            .states
            .values()
            .map(|s| raw_targets(s.get_ref()).filter_map(index).collect())
            .collect();
        let ends: Vec<usize> = raw
            .states
            .values()
            .enumerate()
            .filter(|(_, s)| s.get_ref().kind.get_ref() == "end")
            .map(|(i, _)| i)
            .collect();
        let keys: Vec<Range<usize>> = raw.states.keys().map(Spanned::span).collect();
        if ends.is_empty() {
            let at = keys.first().map_or(0, |k| k.start);
            self.r.error(
                Code::NoEndState,
                at,
                "the workflow has no `end` state, so no task could ever finish; add one, e.g. [states.done] with kind = \"end\" and status = \"succeeded\"",
            );
            return;
        }
        if self.broken_transition {
            return;
        }
        let Some(start) = index(raw.start.get_ref()) else {
            return;
        };
        let reachable = flood(&[start], |i| edges[i].clone(), names.len());
        let reverse: Vec<Vec<usize>> = (0..names.len())
            .map(|to| {
                (0..names.len())
                    .filter(|&from| edges[from].contains(&to))
                    .collect()
            })
            .collect();
        let can_end = flood(&ends, |i| reverse[i].clone(), names.len());
        for (i, name) in names.iter().enumerate() {
            if !reachable[i] {
                self.r.error_at(
                    Code::UnreachableState,
                    &keys[i],
                    format!(
                        "state `{name}` can never run: no path leads to it from the start state `{}`",
                        raw.start.get_ref()
                    ),
                );
            } else if !can_end[i] {
                self.r.error_at(
                    Code::NoWayToEnd,
                    &keys[i],
                    format!(
                        "from state `{name}` no `end` state can be reached, so a task there could never finish"
                    ),
                );
            }
        }
    }
}

fn flood(from: &[usize], next: impl Fn(usize) -> Vec<usize>, len: usize) -> Vec<bool> {
    let mut seen = vec![false; len];
    let mut queue: VecDeque<usize> = from.iter().copied().collect();
    for &i in from {
        seen[i] = true;
    }
    while let Some(i) = queue.pop_front() {
        for j in next(i) {
            if !seen[j] {
                seen[j] = true;
                queue.push_back(j);
            }
        }
    }
    seen
}

/// Every transition written in a raw state, whatever its kind.
fn raw_targets(s: &RawState) -> impl Iterator<Item = &str> {
    let singles = [
        &s.next,
        &s.default,
        &s.on_error,
        &s.on_reject,
        &s.on_expire,
        &s.on_fail,
        &s.on_low_confidence,
    ];
    let branches = s.branches.iter().flat_map(|b| b.get_ref().iter());
    singles
        .into_iter()
        .filter_map(|t| t.as_ref().map(|t| t.get_ref().as_str()))
        .chain(branches.map(|b| b.get_ref().next.get_ref().as_str()))
}

/// The kind-specific fields a raw state has, with their spans.
fn present_fields(s: &RawState) -> Vec<(&'static str, Range<usize>)> {
    fn span<T>(field: &Option<Spanned<T>>) -> Option<Range<usize>> {
        field.as_ref().map(Spanned::span)
    }
    let all = [
        ("tool", span(&s.tool)),
        ("args", span(&s.args)),
        ("idempotent", span(&s.idempotent)),
        ("next", span(&s.next)),
        ("timeout", span(&s.timeout)),
        ("retry", span(&s.retry)),
        ("on_error", span(&s.on_error)),
        ("default", span(&s.default)),
        ("branches", span(&s.branches)),
        ("prompt", span(&s.prompt)),
        ("approvers", span(&s.approvers)),
        ("expires_after", span(&s.expires_after)),
        ("on_reject", span(&s.on_reject)),
        ("on_expire", span(&s.on_expire)),
        ("goal", span(&s.goal)),
        ("tools", span(&s.tools)),
        ("output_schema", span(&s.output_schema)),
        ("max_turns", span(&s.max_turns)),
        ("max_tokens", span(&s.max_tokens)),
        ("min_confidence", span(&s.min_confidence)),
        ("on_low_confidence", span(&s.on_low_confidence)),
        ("assert", span(&s.assert)),
        ("message", span(&s.message)),
        ("on_fail", span(&s.on_fail)),
        ("subject", span(&s.subject)),
        ("categories", span(&s.categories)),
        ("search", span(&s.search)),
        ("limit", span(&s.limit)),
        ("category", span(&s.category)),
        ("key", span(&s.key)),
        ("value", span(&s.value)),
        ("text", span(&s.text)),
        ("status", span(&s.status)),
    ];
    all.into_iter()
        .filter_map(|(name, span)| span.map(|s| (name, s)))
        .collect()
}

pub(crate) fn allowed_kinds(field: &str) -> &'static [&'static str] {
    FIELD_KINDS
        .iter()
        .find(|(f, _)| *f == field)
        .map_or(&[], |(_, kinds)| kinds)
}

pub(crate) fn required_fields(kind: &str) -> &'static [&'static str] {
    REQUIRED_FIELDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(&[], |(_, fields)| fields)
}

fn field_is_transition(field: &str) -> bool {
    matches!(
        field,
        "next" | "default" | "on_reject" | "on_fail" | "branches"
    )
}

fn article_kind(kind: &str) -> String {
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind}")
}

fn join_words(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn with_hint(mut message: String, hint: Option<&str>) -> String {
    if let Some(close) = hint {
        message.push_str(&format!("; did you mean `{close}`?"));
    }
    message
}

/// `[A-Za-z_][A-Za-z0-9_]*`: usable as `state.<name>` and `inputs.<name>` in CEL.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `[a-z0-9][a-z0-9_-]*`.
fn is_workflow_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// `<server>.<tool>`: both parts non-empty, no spaces; `*` only in patterns.
fn is_tool_name(name: &str, pattern: bool) -> bool {
    let Some((server, tool)) = name.split_once('.') else {
        return false;
    };
    let ok = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c) || (pattern && c == '*'))
    };
    ok(server) && ok(tool)
}
