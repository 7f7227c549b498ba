//! Shared fixtures: a realistic policy and a call builder.

use std::path::Path;

use airlock_policy::{CallFacts, Policy, PolicyDecision, Risk};
use serde_json::{Value, json};

/// The policy most evaluation tests decide against. Rules overlap on purpose.
pub const POLICY: &str = r#"version = "2026-11-27"

[[rules]]
name = "reads are free"
tools = ["*"]
risk = ["low"]
effect = "allow"

[[rules]]
name = "support agents use support tools"
roles = ["support-*"]
tools = ["support.*"]
effect = "allow"

[[rules]]
name = "refunds over 50 need a controller"
workflows = ["support-*"]
servers = ["support"]
tools = ["support.issue_refund"]
when = "args.amount > 50"
effect = "require_approval"
approvers = ["controller"]
expires_after = "4h"
escalate_after = "1h"
escalate_to = ["finance-lead"]
four_eyes = true

[[rules]]
name = "refunds over 500 need two"
tools = ["support.issue_refund"]
when = "args.amount > 500"
effect = "require_approval"
approvers = ["finance-lead", "controller"]
approvals = 2
expires_after = "2h"

[[rules]]
name = "never delete customers"
tools = ["*.delete_*"]
effect = "deny"
reason = "deleting customer records is not allowed from automations"

[[rules]]
name = "no high-risk calls in hr workflows"
workflows = ["hr-*"]
risk = ["high"]
effect = "deny"

[[rules]]
name = "vip accounts stay manual"
tools = ["crm.*"]
when = "args.customer.tier == 'vip'"
effect = "deny"
reason = "VIP accounts are handled by people"

[[rules]]
name = "operators may use crm"
roles = ["operator"]
tools = ["crm.*"]
effect = "allow"

[[rules]]
name = "anyone with a role may echo"
roles = ["*"]
tools = ["builtin.echo"]
effect = "allow"

[[rules]]
name = "small discounts"
tools = ["erp.discount"]
when = "args.percent <= 10 && principal.name != 'mallory'"
effect = "allow"
"#;

pub fn policy() -> Policy {
    Policy::parse(Path::new("policy.toml"), POLICY).expect("the fixture policy is valid")
}

/// A proposed call; tests change the fields they care about.
pub struct Call {
    pub principal: &'static str,
    pub roles: Vec<String>,
    pub workflow: &'static str,
    pub tool: &'static str,
    pub risk: Risk,
    pub args: Value,
    pub inputs: Value,
    pub state: Value,
    pub task: Value,
}

impl Call {
    pub fn new(tool: &'static str, risk: Risk, args: Value) -> Call {
        Call {
            principal: "ana",
            roles: vec!["support-agent".into()],
            workflow: "support-refund",
            tool,
            risk,
            args,
            inputs: json!({"order": "A-1"}),
            state: json!({}),
            task: json!({"id": "t-1", "requester": "ana", "workflow": "support-refund"}),
        }
    }

    pub fn roles(mut self, roles: &[&str]) -> Call {
        self.roles = roles.iter().map(|r| (*r).to_owned()).collect();
        self
    }

    pub fn workflow(mut self, workflow: &'static str) -> Call {
        self.workflow = workflow;
        self
    }

    pub fn tool(mut self, tool: &'static str) -> Call {
        self.tool = tool;
        self
    }

    pub fn principal(mut self, principal: &'static str) -> Call {
        self.principal = principal;
        self
    }

    pub fn facts(&self) -> CallFacts<'_> {
        CallFacts {
            principal: self.principal,
            roles: &self.roles,
            workflow: self.workflow,
            tool: self.tool,
            risk: self.risk,
            args: &self.args,
            inputs: &self.inputs,
            state: &self.state,
            task: &self.task,
        }
    }

    pub fn decide(&self, policy: &Policy) -> PolicyDecision {
        policy.evaluate(&self.facts())
    }
}
