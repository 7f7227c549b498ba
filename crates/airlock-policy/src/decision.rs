//! What a policy decided about one call, and how to say it to a person.

use std::fmt::Write as _;
use std::time::Duration;

use airlock_workflow::format_duration;
use serde::{Deserialize, Serialize};

/// What happens to a call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// The call may go ahead.
    Allow,
    /// The call waits until people with the right roles approve it.
    RequireApproval(ApprovalDemand),
    /// The call is refused.
    Deny { reason: String },
}

impl Effect {
    /// 0 allow, 1 require approval, 2 deny: the stricter, the higher.
    pub fn strictness(&self) -> u8 {
        match self {
            Effect::Allow => 0,
            Effect::RequireApproval(_) => 1,
            Effect::Deny { .. } => 2,
        }
    }

    /// `allow`, `require_approval` or `deny`, as written in a policy file.
    pub fn name(&self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::RequireApproval(_) => "require_approval",
            Effect::Deny { .. } => "deny",
        }
    }
}

/// Who must approve a call, how many of them, and for how long the request stays open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalDemand {
    /// Roles that may decide.
    pub approvers: Vec<String>,
    /// Distinct people needed, at least 1.
    pub approvals: u32,
    /// After this long the request expires (fails closed).
    pub expires_after_ms: Option<u64>,
    /// After this long, people with an `escalate_to` role may decide too.
    pub escalate_after_ms: Option<u64>,
    pub escalate_to: Vec<String>,
    /// The requester may not approve their own call.
    pub four_eyes: bool,
}

impl ApprovalDemand {
    /// One line: "2 approvals from controller or finance-lead; expires after 4h; ...".
    pub fn describe(&self) -> String {
        let mut text = if self.approvals == 1 {
            format!("1 approval from {}", or_words(&self.approvers))
        } else {
            format!(
                "{} approvals from different people with role {}",
                self.approvals,
                or_words(&self.approvers)
            )
        };
        if let Some(ms) = self.expires_after_ms {
            let _ = write!(text, "; expires after {}", millis(ms));
        }
        if let Some(ms) = self.escalate_after_ms {
            let _ = write!(
                text,
                "; after {} {} may decide too",
                millis(ms),
                or_words(&self.escalate_to)
            );
        }
        if self.four_eyes {
            text.push_str("; four eyes: the requester may not approve it");
        }
        text
    }
}

/// A decision about one call: what happens, which rule said so, and what it looked at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyDecision {
    pub effect: Effect,
    /// The deciding rule; `None` when no rule matched (default deny) or there is no policy.
    pub rule: Option<String>,
    /// The values the deciding rule looked at, by path (`args.amount`, `call.risk`, ...);
    /// `error` holds the message of a condition that could not be evaluated.
    pub seen: serde_json::Value,
    /// Every rule that matched, in file order (the deciding one included).
    pub matched: Vec<String>,
    pub policy_version: String,
}

impl PolicyDecision {
    pub fn is_allowed(&self) -> bool {
        matches!(self.effect, Effect::Allow)
    }

    pub fn is_denied(&self) -> bool {
        matches!(self.effect, Effect::Deny { .. })
    }

    /// A few lines for people: the effect, the deciding rule, the values it saw, the
    /// other rules that matched, and the policy version.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        match &self.effect {
            Effect::Allow => out.push_str("effect: allow\n"),
            Effect::RequireApproval(demand) => {
                let _ = writeln!(out, "effect: require approval: {}", demand.describe());
            }
            Effect::Deny { reason } => {
                let _ = writeln!(out, "effect: deny: {reason}");
            }
        }
        match &self.rule {
            Some(rule) => {
                let _ = writeln!(out, "rule: {rule}");
            }
            None => out.push_str("rule: none matched, so the call is denied by default\n"),
        }
        match self.seen.as_object() {
            Some(seen) if !seen.is_empty() => {
                out.push_str("seen:\n");
                for (path, value) in seen {
                    if let (Some(errors), "errors") = (value.as_object(), path.as_str()) {
                        for (rule, message) in errors {
                            let message = message
                                .as_str()
                                .map_or_else(|| message.to_string(), str::to_owned);
                            let _ = writeln!(
                                out,
                                "  the condition of rule \"{rule}\" failed, so it does not allow the call: {message}"
                            );
                        }
                    } else if path == "error" {
                        let message = value
                            .as_str()
                            .map_or_else(|| value.to_string(), str::to_owned);
                        let _ = writeln!(
                            out,
                            "  the condition failed, so the rule applies (fail closed): {message}"
                        );
                    } else {
                        let _ = writeln!(out, "  {path} = {value}");
                    }
                }
            }
            _ => out.push_str("seen: nothing (the rule matches every call)\n"),
        }
        let others: Vec<&str> = self
            .matched
            .iter()
            .filter(|m| Some(*m) != self.rule.as_ref())
            .map(String::as_str)
            .collect();
        if others.is_empty() {
            out.push_str("also matched: no other rule\n");
        } else {
            let _ = writeln!(out, "also matched: {}", others.join("; "));
        }
        let _ = write!(out, "policy version: {}", self.policy_version);
        out
    }
}

fn or_words(words: &[String]) -> String {
    match words {
        [] => "nobody".to_owned(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

fn millis(ms: u64) -> String {
    format_duration(Duration::from_millis(ms))
}
