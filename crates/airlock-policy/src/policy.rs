//! The policy: rules over tool calls, and their evaluation.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use airlock_workflow::{Bindings, Diagnostics, Expr};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::decision::{Effect, PolicyDecision};
use crate::glob::GlobSet;
use crate::report::unreadable;
use crate::risk::Risk;

/// The root variables a `when` condition may use, in bit order (see [`Compiled::roots`]).
pub(crate) const ROOTS: [&str; 6] = ["args", "inputs", "state", "task", "call", "principal"];

/// The fields of `call` and `principal` in conditions.
pub(crate) const CALL_FIELDS: [&str; 3] = ["tool", "server", "risk"];
pub(crate) const PRINCIPAL_FIELDS: [&str; 2] = ["name", "roles"];

/// The reason given when no rule matched.
const DEFAULT_DENY: &str = "no policy rule allows this call";

/// What the engine knows about a proposed call.
#[derive(Clone, Copy, Debug)]
pub struct CallFacts<'a> {
    /// The identity the task acts for.
    pub principal: &'a str,
    /// Its roles.
    pub roles: &'a [String],
    /// The workflow (task type).
    pub workflow: &'a str,
    /// `<server>.<tool>`.
    pub tool: &'a str,
    pub risk: Risk,
    pub args: &'a Value,
    pub inputs: &'a Value,
    pub state: &'a Value,
    pub task: &'a Value,
}

impl CallFacts<'_> {
    /// The server part of the tool name: what comes before the first `.` (empty if none).
    pub fn server(&self) -> &str {
        server_of(self.tool)
    }
}

fn server_of(tool: &str) -> &str {
    tool.split_once('.').map_or("", |(server, _)| server)
}

/// One validated rule. Empty selector lists mean "any" (a file cannot give an empty list).
#[derive(Clone, Debug, Serialize)]
pub struct Rule {
    pub name: String,
    pub description: Option<String>,
    /// The line of the policy file the rule starts on (0 for built-in rules).
    pub line: u32,
    pub workflows: Vec<String>,
    pub roles: Vec<String>,
    pub servers: Vec<String>,
    pub tools: Vec<String>,
    pub risk: Vec<Risk>,
    pub when: Option<String>,
    /// What the rule does when it matches.
    pub effect: Effect,
    #[serde(skip)]
    pub(crate) compiled: Compiled,
}

/// A rule's selectors and condition, ready for matching.
#[derive(Clone, Debug, Default)]
pub(crate) struct Compiled {
    /// `None`: the selector was not given, or holds `*`; it matches everything. (Not so
    /// for `roles`, where `*` still asks for some role.)
    pub(crate) workflows: Option<GlobSet>,
    pub(crate) roles: Option<GlobSet>,
    pub(crate) servers: Option<GlobSet>,
    pub(crate) tools: Option<GlobSet>,
    /// One bit per accepted [`Risk`].
    pub(crate) risk_mask: u8,
    pub(crate) when: Option<Expr>,
    /// The variable paths the condition reads, each once, in the order written.
    pub(crate) paths: Vec<Vec<String>>,
    /// One bit per root in [`ROOTS`] that the condition reads.
    pub(crate) roots: u8,
    /// One bit per root the condition reads as a whole (`size(state)`, `state[x]`);
    /// of the other roots it reads only the top-level fields named in `paths`.
    pub(crate) whole_roots: u8,
}

impl Compiled {
    /// The cheap part of matching: risk, tool, server, workflow and role globs.
    fn selects(&self, call: &CallFacts, server: &str, risk_bit: u8) -> bool {
        self.risk_mask & risk_bit != 0
            && self.tools.as_ref().is_none_or(|g| g.matches(call.tool))
            && self.servers.as_ref().is_none_or(|g| g.matches(server))
            && self.workflows.as_ref().is_none_or(|g| g.matches(call.workflow))
            // A principal with no roles matches no `roles` selector, not even `*`.
            && self.roles.as_ref().is_none_or(|g| g.matches_any(call.roles))
    }
}

pub(crate) fn selector(patterns: &[String]) -> Option<GlobSet> {
    if patterns.is_empty() {
        return None;
    }
    let set = GlobSet::new(patterns.iter().map(String::as_str));
    (!set.is_any()).then_some(set)
}

impl Rule {
    pub(crate) fn allow_everything(name: &str) -> Rule {
        Rule {
            name: name.to_owned(),
            description: None,
            line: 0,
            workflows: Vec::new(),
            roles: Vec::new(),
            servers: Vec::new(),
            tools: Vec::new(),
            risk: Vec::new(),
            when: None,
            effect: Effect::Allow,
            compiled: Compiled {
                risk_mask: 0b111,
                ..Compiled::default()
            },
        }
    }

    fn approvals(&self) -> u32 {
        match &self.effect {
            Effect::RequireApproval(demand) => demand.approvals,
            _ => 0,
        }
    }

    /// What this rule looked at for `call`: its selectors' facts, the values of the
    /// paths its condition reads (a path that does not resolve is left out), and the
    /// condition's error, if it failed.
    fn seen(&self, call: &CallFacts, error: Option<&str>) -> Value {
        let mut seen = Map::new();
        if !self.workflows.is_empty() {
            seen.insert("workflow".into(), call.workflow.into());
        }
        if !self.roles.is_empty() {
            seen.insert("principal.roles".into(), call.roles.into());
        }
        if !self.servers.is_empty() {
            seen.insert("call.server".into(), call.server().into());
        }
        if !self.tools.is_empty() {
            seen.insert("call.tool".into(), call.tool.into());
        }
        if !self.risk.is_empty() {
            seen.insert("call.risk".into(), call.risk.as_str().into());
        }
        for path in &self.compiled.paths {
            if let Some(value) = lookup(call, path) {
                seen.insert(path.join("."), value);
            }
        }
        if let Some(error) = error {
            seen.insert("error".into(), error.into());
        }
        Value::Object(seen)
    }
}

/// The value at `path` (`["args", "customer", "tier"]`) among the call's variables.
fn lookup(call: &CallFacts, path: &[String]) -> Option<Value> {
    let (root, rest) = path.split_first()?;
    let base: Cow<Value> = match root.as_str() {
        "args" => Cow::Borrowed(call.args),
        "inputs" => Cow::Borrowed(call.inputs),
        "state" => Cow::Borrowed(call.state),
        "task" => Cow::Borrowed(call.task),
        "call" => Cow::Owned(call_value(call)),
        "principal" => Cow::Owned(principal_value(call)),
        _ => return None,
    };
    let mut at = base.as_ref();
    for segment in rest {
        at = at.get(segment.as_str())?;
    }
    Some(at.clone())
}

fn call_value(call: &CallFacts) -> Value {
    json!({"tool": call.tool, "server": call.server(), "risk": call.risk.as_str()})
}

fn principal_value(call: &CallFacts) -> Value {
    json!({"name": call.principal, "roles": call.roles})
}

/// Which rules could match a call, by the call's server: most rules name their tools'
/// servers literally (`crm.*`, `support.issue_refund`, `servers = ["hr"]`), so a call
/// need only be checked against those of its own server and the few that are not bound
/// to one server (`*.delete_*`).
#[derive(Clone, Debug, Default)]
struct RuleIndex {
    by_server: HashMap<String, Vec<usize>>,
    /// Rules that may match a call on any server, in file order.
    anywhere: Vec<usize>,
}

impl RuleIndex {
    fn new(rules: &[Rule]) -> RuleIndex {
        let mut index = RuleIndex::default();
        for (i, rule) in rules.iter().enumerate() {
            match servers_of(rule) {
                Some(servers) => {
                    for server in servers {
                        let list = index.by_server.entry(server).or_default();
                        if list.last() != Some(&i) {
                            list.push(i);
                        }
                    }
                }
                None => index.anywhere.push(i),
            }
        }
        index
    }

    /// The rules that could match a call on `server`, in file order.
    fn candidates(&self, server: &str) -> impl Iterator<Item = usize> + '_ {
        let bound: &[usize] = self.by_server.get(server).map_or(&[], Vec::as_slice);
        Merge {
            a: bound,
            b: &self.anywhere,
        }
    }
}

/// The servers a rule can only ever match calls on, when it is bound to some: every
/// tool glob starts with a literal `<server>.`, or every `servers` entry is literal.
fn servers_of(rule: &Rule) -> Option<Vec<String>> {
    let literal_server = |glob: &String| {
        let (server, _) = glob.split_once('.')?;
        (!server.contains('*')).then(|| server.to_owned())
    };
    if !rule.tools.is_empty()
        && let Some(servers) = rule.tools.iter().map(literal_server).collect()
    {
        return Some(servers);
    }
    if !rule.servers.is_empty() && rule.servers.iter().all(|s| !s.contains('*')) {
        return Some(rule.servers.clone());
    }
    None
}

/// Two ascending lists of rule indexes merged into one, without repeats.
struct Merge<'a> {
    a: &'a [usize],
    b: &'a [usize],
}

impl Iterator for Merge<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        let next = match (self.a.first(), self.b.first()) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => return None,
        };
        if self.a.first() == Some(&next) {
            self.a = &self.a[1..];
        }
        if self.b.first() == Some(&next) {
            self.b = &self.b[1..];
        }
        Some(next)
    }
}

/// A validated policy. Cheap enough to clone; share it in an `Arc`.
#[derive(Clone, Debug)]
pub struct Policy {
    source: String,
    version: String,
    label: Option<String>,
    rules: Vec<Rule>,
    index: RuleIndex,
    /// Why a call that no rule matched is denied.
    default_reason: String,
}

impl Policy {
    pub(crate) fn from_parts(source: &str, label: Option<String>, rules: Vec<Rule>) -> Policy {
        Policy {
            source: source.to_owned(),
            version: version_of(source),
            label,
            index: RuleIndex::new(&rules),
            rules,
            default_reason: DEFAULT_DENY.to_owned(),
        }
    }

    /// Parses and validates a policy file; `path` is only used in messages.
    pub fn parse(path: &Path, source: &str) -> Result<Policy, Diagnostics> {
        crate::validate::parse_policy(path, source)
    }

    /// Reads and validates a policy file; an IO error is an `unreadable-file` diagnostic.
    pub fn load(path: &Path) -> Result<Policy, Diagnostics> {
        let source = std::fs::read_to_string(path).map_err(|e| unreadable(path, &e))?;
        Self::parse(path, &source)
    }

    /// Allows every call, by one built-in rule named `allow all`; `label` is the version.
    /// For embedding and tests that have no policy file.
    pub fn allow_all(label: &str) -> Policy {
        let rules = vec![Rule::allow_everything("allow all")];
        Policy {
            source: String::new(),
            version: label.to_owned(),
            label: Some(label.to_owned()),
            index: RuleIndex::new(&rules),
            rules,
            default_reason: DEFAULT_DENY.to_owned(),
        }
    }

    /// Denies every call with `reason` (a workspace without a policy file). Its version is `none`.
    pub fn deny_all(reason: &str) -> Policy {
        Policy {
            source: String::new(),
            version: "none".to_owned(),
            label: None,
            rules: Vec::new(),
            index: RuleIndex::default(),
            default_reason: reason.to_owned(),
        }
    }

    /// The first 12 hex digits of the SHA-256 of the file's text: a changed file is a new
    /// version, whatever its `version` label says.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The file's `version` label, if it has one.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// The file's text (empty for [`Policy::allow_all`] and [`Policy::deny_all`]).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Decides one call. Deny beats require_approval beats allow; no match is deny.
    pub fn evaluate(&self, call: &CallFacts<'_>) -> PolicyDecision {
        let server = call.server();
        let risk_bit = call.risk.bit();
        // Selectors first: they are cheap, and most rules fail them.
        let mut candidates: Vec<usize> = Vec::new();
        let mut reads = Reads::default();
        for i in self.index.candidates(server) {
            let rule = &self.rules[i];
            if rule.compiled.selects(call, server, risk_bit) {
                candidates.push(i);
                reads.add(&rule.compiled);
            }
        }
        // The JSON is converted to CEL once for all the conditions, and only what some
        // candidate reads (`state` can be large).
        let bindings = reads.conditions.then(|| reads.bind(call));

        let mut matched: Vec<usize> = Vec::with_capacity(candidates.len());
        let mut errors: Vec<(usize, String)> = Vec::new();
        for i in candidates {
            let rule = &self.rules[i];
            let hit = match (&rule.compiled.when, &bindings) {
                (Some(when), Some(bindings)) => match when.eval_bool_in(bindings) {
                    Ok(hit) => hit,
                    Err(error) => {
                        // Fail closed: a condition that cannot be evaluated applies a
                        // restriction, and never grants.
                        errors.push((i, error.message().to_owned()));
                        !matches!(rule.effect, Effect::Allow)
                    }
                },
                _ => true,
            };
            if hit {
                matched.push(i);
            }
        }

        let error_of = |i: usize| {
            errors
                .iter()
                .find(|(e, _)| *e == i)
                .map(|(_, m)| m.as_str())
        };
        let effect_of = |i: &usize| &self.rules[*i].effect;
        let first_deny = matched
            .iter()
            .find(|i| matches!(effect_of(i), Effect::Deny { .. }));
        let approval = matched
            .iter()
            .any(|i| matches!(effect_of(i), Effect::RequireApproval(_)));
        let (effect, decider) = match (first_deny, approval, matched.first()) {
            // Strictest wins; among equals, the first in file order decides.
            (Some(&deny), _, _) => (effect_of(&deny).clone(), deny),
            (None, true, _) => self.combine_approvals(&matched),
            (None, false, Some(&allow)) => (effect_of(&allow).clone(), allow),
            (None, false, None) => return self.default_deny(call, &errors),
        };
        let rule = &self.rules[decider];
        PolicyDecision {
            effect,
            rule: Some(rule.name.clone()),
            seen: rule.seen(call, error_of(decider)),
            matched: matched
                .iter()
                .map(|&i| self.rules[i].name.clone())
                .collect(),
            policy_version: self.version.clone(),
        }
    }

    /// No rule matched: deny, showing the call's facts and any allow rule whose
    /// condition could not be evaluated (and so did not allow the call).
    fn default_deny(&self, call: &CallFacts, errors: &[(usize, String)]) -> PolicyDecision {
        let mut seen = Map::new();
        seen.insert("workflow".into(), call.workflow.into());
        seen.insert("principal.roles".into(), call.roles.into());
        seen.insert("call.tool".into(), call.tool.into());
        seen.insert("call.risk".into(), call.risk.as_str().into());
        if !errors.is_empty() {
            let failed: Map<String, Value> = errors
                .iter()
                .map(|(i, m)| (self.rules[*i].name.clone(), Value::from(m.as_str())))
                .collect();
            seen.insert("errors".into(), Value::Object(failed));
        }
        PolicyDecision {
            effect: Effect::Deny {
                reason: self.default_reason.clone(),
            },
            rule: None,
            seen: Value::Object(seen),
            matched: Vec::new(),
            policy_version: self.version.clone(),
        }
    }

    /// Several require_approval rules matched: the rule asking for the most approvals
    /// (the first, on a tie) decides, and gives the approver roles and the escalation;
    /// the demand then takes the shortest expiry of all of them, and four eyes if any
    /// asks for it.
    fn combine_approvals(&self, matched: &[usize]) -> (Effect, usize) {
        let approving: Vec<usize> = matched
            .iter()
            .copied()
            .filter(|&i| matches!(self.rules[i].effect, Effect::RequireApproval(_)))
            .collect();
        let decider = approving
            .iter()
            .copied()
            .min_by_key(|&i| std::cmp::Reverse(self.rules[i].approvals()))
            .unwrap_or_default();
        let Effect::RequireApproval(mut demand) = self.rules[decider].effect.clone() else {
            return (self.rules[decider].effect.clone(), decider);
        };
        for &i in &approving {
            if let Effect::RequireApproval(other) = &self.rules[i].effect {
                demand.expires_after_ms = match (demand.expires_after_ms, other.expires_after_ms) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                demand.four_eyes |= other.four_eyes;
            }
        }
        (Effect::RequireApproval(demand), decider)
    }

    /// Whether some call of this tool could ever be allowed (directly or by approval)
    /// for these roles and this workflow: false when an unconditional deny rule matches
    /// it, or no allow/require_approval rule could. The engine need not offer a tool to a
    /// model when this is false.
    pub fn could_allow(&self, roles: &[String], workflow: &str, tool: &str, risk: Risk) -> bool {
        let empty = Value::Null;
        let call = CallFacts {
            principal: "",
            roles,
            workflow,
            tool,
            risk,
            args: &empty,
            inputs: &empty,
            state: &empty,
            task: &empty,
        };
        let server = call.server();
        let mut some_grant = false;
        for rule in &self.rules {
            if !rule.compiled.selects(&call, server, risk.bit()) {
                continue;
            }
            match rule.effect {
                Effect::Deny { .. } if rule.compiled.when.is_none() => return false,
                Effect::Deny { .. } => {}
                _ => some_grant = true,
            }
        }
        some_grant
    }
}

/// What the candidate rules' conditions read, gathered before anything is converted.
#[derive(Default)]
struct Reads<'r> {
    conditions: bool,
    roots: u8,
    whole: u8,
    /// (root bit, top-level field) for the roots not read whole.
    fields: Vec<(u8, &'r str)>,
}

impl<'r> Reads<'r> {
    fn add(&mut self, compiled: &'r Compiled) {
        let Some(_) = &compiled.when else {
            return;
        };
        self.conditions = true;
        self.roots |= compiled.roots;
        self.whole |= compiled.whole_roots;
        for path in &compiled.paths {
            if let [root, field, ..] = path.as_slice() {
                let bit = root_bit(root);
                if !self.fields.contains(&(bit, field.as_str())) {
                    self.fields.push((bit, field));
                }
            }
        }
    }

    fn bind(&self, call: &CallFacts) -> Bindings {
        let mut bindings = Bindings::new();
        for (i, root) in ROOTS.iter().enumerate() {
            let bit = 1u8 << i;
            if self.roots & bit == 0 {
                continue;
            }
            let owned;
            let value: &Value = match *root {
                "args" => call.args,
                "inputs" => call.inputs,
                "state" => call.state,
                "task" => call.task,
                "call" => {
                    owned = call_value(call);
                    &owned
                }
                _ => {
                    owned = principal_value(call);
                    &owned
                }
            };
            match value.as_object() {
                // Only the fields some condition names: the rest cannot be observed.
                Some(object) if self.whole & bit == 0 => bindings.set_fields(
                    root,
                    self.fields
                        .iter()
                        .filter(|(b, _)| *b == bit)
                        .filter_map(|(_, field)| object.get_key_value(*field))
                        .map(|(k, v)| (k.as_str(), v)),
                ),
                _ => bindings.set(root, value),
            }
        }
        bindings
    }
}

/// The bit of a root variable in [`Compiled::roots`].
pub(crate) fn root_bit(root: &str) -> u8 {
    ROOTS.iter().position(|r| *r == root).map_or(0, |i| 1 << i)
}

pub(crate) fn version_of(source: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hex = hex::encode(Sha256::digest(source.as_bytes()));
    hex.truncate(12);
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index only skips rules that could not match: decisions with it equal those of
    /// checking every rule, over globs of every shape and tool names of every shape.
    #[test]
    fn the_server_index_changes_no_decision() {
        let shapes = [
            r#"tools = ["crm.get_customer"]"#,
            r#"tools = ["crm.*"]"#,
            r#"tools = ["crm.*", "hr.get_*"]"#,
            r#"tools = ["*.delete_*"]"#,
            r#"tools = ["cr*.get_customer"]"#,
            r#"tools = ["echo"]"#,
            r#"tools = ["a.b.c"]"#,
            r#"tools = ["crm.x", "*.y"]"#,
            r#"servers = ["hr"]"#,
            r#"servers = ["h*"]"#,
            r#"servers = ["hr"]
tools = ["*.get_*"]"#,
            r#"risk = ["high"]"#,
        ];
        let mut source = String::new();
        for (i, shape) in shapes.iter().enumerate() {
            let effect = ["allow", "deny"][i % 2];
            source.push_str(&format!(
                "[[rules]]\nname = \"r{i}\"\n{shape}\neffect = \"{effect}\"\n\n"
            ));
        }
        let indexed = Policy::parse(Path::new("p.toml"), &source).expect("valid");
        let mut unindexed = indexed.clone();
        unindexed.index = RuleIndex {
            by_server: HashMap::new(),
            anywhere: (0..indexed.rules.len()).collect(),
        };
        assert!(indexed.index.anywhere.len() < indexed.rules.len());
        let tools = [
            "crm.get_customer",
            "crm.delete_customer",
            "crm.x",
            "crm.y",
            "hr.get_employee",
            "hr.delete_employee",
            "hrx.get_employee",
            "echo",
            "a.b.c",
            "a.b",
            "crx.get_customer",
            "",
            ".",
            "mail.send",
        ];
        let null = Value::Null;
        for tool in tools {
            for risk in Risk::ALL {
                let call = CallFacts {
                    principal: "p",
                    roles: &[],
                    workflow: "w",
                    tool,
                    risk,
                    args: &null,
                    inputs: &null,
                    state: &null,
                    task: &null,
                };
                assert_eq!(
                    indexed.evaluate(&call),
                    unindexed.evaluate(&call),
                    "{tool} {risk}"
                );
            }
        }
        let rules = indexed.rules.len();
        let decided: usize = tools
            .iter()
            .map(|t| indexed.index.candidates(server_of(t)).count())
            .sum();
        assert!(decided < rules * tools.len(), "the index skips some rules");
    }

    #[test]
    fn merge_keeps_file_order_without_repeats() {
        let merged: Vec<usize> = Merge {
            a: &[1, 4, 6],
            b: &[0, 4, 5, 9],
        }
        .collect();
        assert_eq!(merged, [0, 1, 4, 5, 6, 9]);
    }
}
