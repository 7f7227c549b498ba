//! `policy.toml`: its TOML shape, and its validation into a [`Policy`].

use std::fmt;
use std::ops::Range;
use std::path::Path;

use airlock_workflow::{DiagnosticCode as Code, Diagnostics, Expr, parse_duration};
use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_spanned::Spanned;

use crate::decision::{ApprovalDemand, Effect};
use crate::glob::GlobSet;
use crate::policy::{
    CALL_FIELDS, Compiled, PRINCIPAL_FIELDS, Policy, ROOTS, Rule, root_bit, selector,
};
use crate::report::{join_words, with_hint};
use crate::risk::Risk;
use airlock_workflow::{Reporter, did_you_mean};

type List = Option<Spanned<Vec<Spanned<String>>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    version: Option<Label>,
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    name: Option<Spanned<String>>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    workflows: List,
    #[serde(default)]
    roles: List,
    #[serde(default)]
    servers: List,
    #[serde(default)]
    tools: List,
    #[serde(default)]
    risk: List,
    #[serde(default)]
    when: Option<Spanned<String>>,
    #[serde(default)]
    effect: Option<Spanned<String>>,
    #[serde(default)]
    approvers: List,
    #[serde(default)]
    approvals: Option<Spanned<i64>>,
    #[serde(default)]
    expires_after: Option<Spanned<String>>,
    #[serde(default)]
    escalate_after: Option<Spanned<String>>,
    #[serde(default)]
    escalate_to: List,
    #[serde(default)]
    four_eyes: Option<Spanned<bool>>,
    #[serde(default)]
    reason: Option<Spanned<String>>,
}

/// The `version` label: a string, or an unquoted TOML date (`version = 2026-11-27`),
/// which people write as often as the quoted one.
struct Label(String);

/// The key toml uses to pass a date-time through serde.
const TOML_DATETIME_KEY: &str = "$__toml_private_datetime";

impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LabelVisitor;
        impl<'de> Visitor<'de> for LabelVisitor {
            type Value = Label;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a date")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Label, E> {
                Ok(Label(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Label, A::Error> {
                match map.next_key::<String>()? {
                    Some(key) if key == TOML_DATETIME_KEY => Ok(Label(map.next_value()?)),
                    _ => Err(de::Error::invalid_type(de::Unexpected::Map, &self)),
                }
            }
        }
        deserializer.deserialize_any(LabelVisitor)
    }
}

/// The fields only a require_approval rule may have.
const APPROVAL_FIELDS: [&str; 6] = [
    "approvers",
    "approvals",
    "expires_after",
    "escalate_after",
    "escalate_to",
    "four_eyes",
];

const EFFECTS: [&str; 3] = ["allow", "require_approval", "deny"];

pub(crate) fn parse_policy(file: &Path, source: &str) -> Result<Policy, Diagnostics> {
    let mut r = Reporter::new(file, source);
    let Some(raw) = r.read_toml::<RawPolicy>("key") else {
        return Err(r.finish_in_file_order());
    };
    let mut rules: Vec<Rule> = Vec::new();
    // Names seen so far, with the line of their rule, for duplicate messages.
    let mut names: Vec<(String, u32)> = Vec::new();
    for (index, raw_rule) in raw.rules.iter().enumerate() {
        let start = raw_rule.span().start;
        let line = r.position(start).0;
        let mut checker = RuleChecker {
            r: &mut r,
            label: format!("rule {}", index + 1),
            start,
        };
        let name = checker.name(raw_rule.get_ref(), &names);
        if let Some(name) = &name {
            names.push((name.clone(), line));
        }
        if let Some(mut rule) = checker.rule(raw_rule.get_ref(), name) {
            rule.line = line;
            rules.push(rule);
        }
    }
    if r.has_errors() {
        return Err(r.finish_in_file_order());
    }
    Ok(Policy::from_parts(source, raw.version.map(|l| l.0), rules))
}

/// A compiled `when`, with what it reads.
struct Condition {
    expr: Option<Expr>,
    paths: Vec<Vec<String>>,
    roots: u8,
    whole: u8,
}

impl Condition {
    fn none() -> Condition {
        Condition {
            expr: None,
            paths: Vec::new(),
            roots: 0,
            whole: 0,
        }
    }
}

struct RuleChecker<'r, 'a> {
    r: &'r mut Reporter<'a>,
    /// How messages name the rule: "rule `x`", or "rule 3" while it has no name.
    label: String,
    /// Where the rule's table starts, for problems with no field to point at.
    start: usize,
}

impl RuleChecker<'_, '_> {
    fn name(&mut self, raw: &RawRule, earlier: &[(String, u32)]) -> Option<String> {
        let Some(name) = &raw.name else {
            self.r.error(
                Code::MissingField,
                self.start,
                format!(
                    "{} has no `name`; every rule needs a unique name, which its decisions cite",
                    self.label
                ),
            );
            return None;
        };
        let text = name.get_ref();
        if text.trim().is_empty() {
            self.r.error_at(
                Code::BadValue,
                &name.span(),
                format!(
                    "the name of {} is empty; give it a name that says what it does",
                    self.label
                ),
            );
            return None;
        }
        self.label = format!("rule `{text}`");
        if let Some((_, line)) = earlier.iter().find(|(n, _)| n == text) {
            self.r.error_at(
                Code::DuplicateName,
                &name.span(),
                format!(
                    "the rule name `{text}` is already used by the rule on line {line}; each rule needs its own name"
                ),
            );
        }
        Some(text.clone())
    }

    fn rule(&mut self, raw: &RawRule, name: Option<String>) -> Option<Rule> {
        let workflows = self.globs(&raw.workflows, "workflows", "workflow");
        let roles = self.globs(&raw.roles, "roles", "role");
        let servers = self.globs(&raw.servers, "servers", "server");
        let tools = self.globs(&raw.tools, "tools", "tool");
        let risk = self.risk(&raw.risk);
        let condition = raw.when.as_ref().and_then(|text| self.condition(text));
        let when_failed = raw.when.is_some() && condition.is_none();
        let effect = self.effect(raw);

        let (effect, name) = (effect?, name?);
        if when_failed {
            return None;
        }
        let Condition {
            expr: when,
            paths,
            roots,
            whole,
        } = condition.unwrap_or_else(Condition::none);
        let risk_mask = if risk.is_empty() {
            0b111
        } else {
            risk.iter().fold(0, |mask, r| mask | r.bit())
        };
        let compiled = Compiled {
            workflows: selector(&workflows),
            // Not `selector`: `["*"]` still needs the principal to have some role.
            roles: (!roles.is_empty()).then(|| GlobSet::new(roles.iter().map(String::as_str))),
            servers: selector(&servers),
            tools: selector(&tools),
            risk_mask,
            when: when.clone(),
            paths,
            roots,
            whole_roots: whole,
        };
        Some(Rule {
            name,
            description: raw.description.clone(),
            line: 0,
            workflows,
            roles,
            servers,
            tools,
            risk,
            when: when.map(|w| w.source().to_owned()),
            effect,
            compiled,
        })
    }

    /// A selector's globs: the list, when given, must hold at least one non-empty pattern.
    fn globs(&mut self, list: &List, field: &str, what: &str) -> Vec<String> {
        let Some(list) = list else {
            return Vec::new();
        };
        if list.get_ref().is_empty() {
            self.r.error_at(
                Code::BadValue,
                &list.span(),
                format!(
                    "`{field}` of {} is empty, so the rule could never match; leave it out to match any {what}",
                    self.label
                ),
            );
        }
        list.get_ref()
            .iter()
            .filter_map(|g| {
                if g.get_ref().trim().is_empty() {
                    self.r.error_at(
                        Code::BadValue,
                        &g.span(),
                        format!(
                            "`{field}` of {} holds an empty pattern; write a name or a glob such as \"*\"",
                            self.label
                        ),
                    );
                    return None;
                }
                Some(g.get_ref().clone())
            })
            .collect()
    }

    fn risk(&mut self, list: &List) -> Vec<Risk> {
        let Some(list) = list else {
            return Vec::new();
        };
        if list.get_ref().is_empty() {
            self.r.error_at(
                Code::BadValue,
                &list.span(),
                format!(
                    "`risk` of {} is empty, so the rule could never match; leave it out to match any risk",
                    self.label
                ),
            );
        }
        let mut levels = Vec::new();
        for level in list.get_ref() {
            match Risk::from_name(level.get_ref()) {
                Some(risk) if !levels.contains(&risk) => levels.push(risk),
                Some(_) => {}
                None => {
                    let names = Risk::ALL.map(Risk::as_str);
                    let mut text = format!(
                        "{} lists the unknown risk level `{}`; use low, medium or high",
                        self.label,
                        level.get_ref()
                    );
                    if let Some(close) = did_you_mean(level.get_ref(), names) {
                        text.push_str(&format!(" (did you mean `{close}`?)"));
                    }
                    self.r.error_at(Code::BadValue, &level.span(), text);
                }
            }
        }
        levels.sort();
        levels
    }

    /// Compiles `when` and checks that it only reads the variables a condition has.
    fn condition(&mut self, text: &Spanned<String>) -> Option<Condition> {
        let what = format!("`when` of {}", self.label);
        let expr = match Expr::compile_located(text.get_ref()) {
            Ok(expr) => expr,
            Err(e) => {
                let at = inside_string(self.r.source(), text, e.char_index);
                self.r.error(
                    Code::BadExpression,
                    at,
                    format!("{what} is not a valid expression: {}", e.message),
                );
                return None;
            }
        };
        let mut paths: Vec<Vec<String>> = Vec::new();
        let mut roots = 0u8;
        let mut whole = 0u8;
        let mut ok = true;
        for path in expr.variable_paths() {
            let at = inside_string(self.r.source(), text, path.char_index);
            let field = path.segments.get(1).map(String::as_str);
            let problem = match (path.root(), field) {
                (root, _) if !ROOTS.contains(&root) => Some(with_hint(
                    format!(
                        "{what} uses `{root}`, which is not defined; conditions can use {}",
                        join_words(&ROOTS.map(|r| format!("`{r}`")))
                    ),
                    did_you_mean(root, ROOTS),
                )),
                ("call", Some(f)) if !CALL_FIELDS.contains(&f) => Some(with_hint(
                    format!(
                        "{what} uses `call.{f}`, but a call only has `tool`, `server` and `risk`"
                    ),
                    did_you_mean(f, CALL_FIELDS),
                )),
                ("principal", Some(f)) if !PRINCIPAL_FIELDS.contains(&f) => Some(with_hint(
                    format!(
                        "{what} uses `principal.{f}`, but a principal only has `name` and `roles`"
                    ),
                    did_you_mean(f, PRINCIPAL_FIELDS),
                )),
                _ => None,
            };
            if let Some(message) = problem {
                self.r.error(Code::UnknownVariable, at, message);
                ok = false;
                continue;
            }
            roots |= root_bit(path.root());
            if path.segments.len() == 1 {
                whole |= root_bit(path.root());
            }
            if !paths.contains(&path.segments) {
                paths.push(path.segments);
            }
        }
        ok.then_some(Condition {
            expr: Some(expr),
            paths,
            roots,
            whole,
        })
    }

    fn effect(&mut self, raw: &RawRule) -> Option<Effect> {
        let Some(effect) = &raw.effect else {
            self.r.error(
                Code::MissingField,
                self.start,
                format!(
                    "{} has no `effect`; write allow, require_approval or deny",
                    self.label
                ),
            );
            return None;
        };
        let kind = effect.get_ref().as_str();
        if !EFFECTS.contains(&kind) {
            let mut text = format!(
                "{} has the unknown effect `{kind}`; use allow, require_approval or deny",
                self.label
            );
            if let Some(close) = did_you_mean(kind, EFFECTS) {
                text.push_str(&format!(" (did you mean `{close}`?)"));
            }
            self.r.error_at(Code::BadValue, &effect.span(), text);
            return None;
        }
        if kind != "require_approval" {
            for (field, span) in approval_fields(raw) {
                self.r.error_at(
                    Code::MisplacedField,
                    &span,
                    format!(
                        "`{field}` is only for require_approval rules, but {} has effect `{kind}`",
                        self.label
                    ),
                );
            }
        }
        if kind != "deny"
            && let Some(reason) = &raw.reason
        {
            self.r.error_at(
                Code::MisplacedField,
                &reason.span(),
                format!(
                    "`reason` is only for deny rules, but {} has effect `{kind}`; use `description` to say what a rule is for",
                    self.label
                ),
            );
        }
        match kind {
            "allow" => Some(Effect::Allow),
            "deny" => Some(Effect::Deny {
                reason: raw.reason.as_ref().map_or_else(
                    || format!("the policy rule `{}` denies this call", self.rule_name()),
                    |r| r.get_ref().clone(),
                ),
            }),
            _ => self.demand(raw, effect).map(Effect::RequireApproval),
        }
    }

    fn rule_name(&self) -> &str {
        self.label
            .strip_prefix("rule `")
            .and_then(|n| n.strip_suffix('`'))
            .unwrap_or(&self.label)
    }

    fn demand(&mut self, raw: &RawRule, effect: &Spanned<String>) -> Option<ApprovalDemand> {
        let approvers = match &raw.approvers {
            None => {
                self.r.error_at(
                    Code::MissingField,
                    &effect.span(),
                    format!(
                        "{} requires approval but has no `approvers`; list the roles that may decide",
                        self.label
                    ),
                );
                None
            }
            Some(list) => self.role_names(list, "approvers"),
        };
        let approvals = match &raw.approvals {
            None => Some(1),
            Some(n) => match u32::try_from(*n.get_ref()) {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    self.r.error_at(
                        Code::BadValue,
                        &n.span(),
                        format!(
                            "`approvals` of {} is {}, but it must be at least 1",
                            self.label,
                            n.get_ref()
                        ),
                    );
                    None
                }
            },
        };
        let expires = self.duration(&raw.expires_after, "expires_after");
        let escalate = self.duration(&raw.escalate_after, "escalate_after");
        let escalate_to = match &raw.escalate_to {
            Some(list) => self.role_names(list, "escalate_to"),
            None => Some(Vec::new()),
        };
        match (&raw.escalate_after, &raw.escalate_to) {
            (Some(after), None) => self.r.error_at(
                Code::MissingField,
                &after.span(),
                format!(
                    "{} sets `escalate_after` but not `escalate_to`, the roles that may decide after that delay",
                    self.label
                ),
            ),
            (None, Some(to)) => self.r.error_at(
                Code::MissingField,
                &to.span(),
                format!(
                    "{} sets `escalate_to` but not `escalate_after`, the delay after which those roles may decide",
                    self.label
                ),
            ),
            _ => {}
        }
        if let (Some(Some(after)), Some(Some(expiry)), Some(span)) = (
            escalate,
            expires,
            raw.escalate_after.as_ref().map(Spanned::span),
        ) && after >= expiry
        {
            self.r.error_at(
                Code::BadValue,
                &span,
                format!(
                    "{} escalates after {}, but its approval expires after {}, so it would never escalate",
                    self.label,
                    fmt_ms(after),
                    fmt_ms(expiry)
                ),
            );
        }
        Some(ApprovalDemand {
            approvers: approvers?,
            approvals: approvals?,
            expires_after_ms: expires?,
            escalate_after_ms: escalate?,
            escalate_to: escalate_to?,
            four_eyes: raw.four_eyes.as_ref().is_some_and(|f| *f.get_ref()),
        })
    }

    /// `None` on error; `Some(None)` when the field is absent.
    fn duration(&mut self, text: &Option<Spanned<String>>, field: &str) -> Option<Option<u64>> {
        let Some(text) = text else {
            return Some(None);
        };
        match parse_duration(text.get_ref()) {
            Ok(d) if d.is_zero() => {
                self.r.error_at(
                    Code::BadDuration,
                    &text.span(),
                    format!("`{field}` of {} must be longer than zero", self.label),
                );
                None
            }
            Ok(d) => Some(Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))),
            Err(message) => {
                self.r.error_at(
                    Code::BadDuration,
                    &text.span(),
                    format!("`{field}` of {}: {message}", self.label),
                );
                None
            }
        }
    }

    /// Role names (not globs): non-empty, without `*`, at least one.
    fn role_names(
        &mut self,
        list: &Spanned<Vec<Spanned<String>>>,
        field: &str,
    ) -> Option<Vec<String>> {
        let mut failed = false;
        if list.get_ref().is_empty() {
            self.r.error_at(
                Code::BadValue,
                &list.span(),
                format!(
                    "`{field}` of {} is empty; name at least one role",
                    self.label
                ),
            );
            failed = true;
        }
        let mut names: Vec<String> = Vec::new();
        for role in list.get_ref() {
            let name = role.get_ref();
            if name.trim().is_empty() {
                self.r.error_at(
                    Code::BadValue,
                    &role.span(),
                    format!("`{field}` of {} holds an empty role name", self.label),
                );
                failed = true;
            } else if name.contains('*') {
                self.r.error_at(
                    Code::BadValue,
                    &role.span(),
                    format!(
                        "`{field}` of {} holds `{name}`, but approvers are role names, not patterns",
                        self.label
                    ),
                );
                failed = true;
            } else if !names.contains(name) {
                names.push(name.clone());
            }
        }
        (!failed).then_some(names)
    }
}

fn approval_fields(raw: &RawRule) -> Vec<(&'static str, Range<usize>)> {
    fn span<T>(field: &Option<Spanned<T>>) -> Option<Range<usize>> {
        field.as_ref().map(Spanned::span)
    }
    let spans = [
        span(&raw.approvers),
        span(&raw.approvals),
        span(&raw.expires_after),
        span(&raw.escalate_after),
        span(&raw.escalate_to),
        span(&raw.four_eyes),
    ];
    APPROVAL_FIELDS
        .into_iter()
        .zip(spans)
        .filter_map(|(name, span)| span.map(|s| (name, s)))
        .collect()
}

fn fmt_ms(ms: u64) -> String {
    airlock_workflow::format_duration(std::time::Duration::from_millis(ms))
}

/// The byte offset in the file of char `char_index` of a string value, when the string
/// is written on one line without escapes; otherwise the string's start.
fn inside_string(source: &str, text: &Spanned<String>, char_index: Option<usize>) -> usize {
    let span = text.span();
    let Some(index) = char_index else {
        return span.start;
    };
    let raw = source.get(span.clone()).unwrap_or("");
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
