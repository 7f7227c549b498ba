//! Policy evaluation: overlaps, strictest-wins, globs, conditions, roles, default deny,
//! fail-closed conditions, and the explanation.

use airlock_policy::{ApprovalDemand, Effect, Policy, Risk};
use serde_json::{Value, json};

use crate::support::{Call, policy};

/// `effect`, deciding rule, every matched rule.
type Expected = (&'static str, Option<&'static str>, &'static [&'static str]);

#[test]
fn decisions_follow_the_rules() {
    use Risk::{High, Low, Medium};
    let refund = |amount: Value| Call::new("support.issue_refund", High, json!({"amount": amount}));
    let crm = |args: Value| Call::new("crm.update_customer", Medium, args).roles(&["operator"]);
    let cases: Vec<(&str, Call, Expected)> = vec![
        (
            "a low-risk read is allowed for anyone",
            Call::new("support.get_order", Low, json!({})).roles(&[]),
            ("allow", Some("reads are free"), &["reads are free"]),
        ),
        (
            "a small refund is allowed by the role rule alone",
            refund(json!(30)),
            (
                "allow",
                Some("support agents use support tools"),
                &["support agents use support tools"],
            ),
        ),
        (
            "over 50, approval beats allow",
            refund(json!(75)),
            (
                "require_approval",
                Some("refunds over 50 need a controller"),
                &[
                    "support agents use support tools",
                    "refunds over 50 need a controller",
                ],
            ),
        ),
        (
            "a fractional amount compares with an integer bound",
            refund(json!(50.5)),
            (
                "require_approval",
                Some("refunds over 50 need a controller"),
                &[
                    "support agents use support tools",
                    "refunds over 50 need a controller",
                ],
            ),
        ),
        (
            "over 500, the rule with more approvals decides",
            refund(json!(700)),
            (
                "require_approval",
                Some("refunds over 500 need two"),
                &[
                    "support agents use support tools",
                    "refunds over 50 need a controller",
                    "refunds over 500 need two",
                ],
            ),
        ),
        (
            "outside support-* workflows the controller rule does not apply",
            refund(json!(75)).workflow("billing-fix"),
            (
                "allow",
                Some("support agents use support tools"),
                &["support agents use support tools"],
            ),
        ),
        (
            "a role glob needs its dash: `support` is not `support-*`",
            refund(json!(30)).roles(&["support"]),
            ("deny", None, &[]),
        ),
        (
            "any matching role will do",
            refund(json!(30)).roles(&["intern", "support-lead"]),
            (
                "allow",
                Some("support agents use support tools"),
                &["support agents use support tools"],
            ),
        ),
        (
            "deny beats allow; the first deny in the file decides",
            // The vip rule matches too: without `args.customer` its condition fails closed.
            Call::new("crm.delete_customer", Medium, json!({})).roles(&["operator"]),
            (
                "deny",
                Some("never delete customers"),
                &[
                    "never delete customers",
                    "vip accounts stay manual",
                    "operators may use crm",
                ],
            ),
        ),
        (
            "deny beats allow rules that come before it",
            Call::new("support.delete_ticket", Low, json!({})),
            (
                "deny",
                Some("never delete customers"),
                &[
                    "reads are free",
                    "support agents use support tools",
                    "never delete customers",
                ],
            ),
        ),
        (
            "`*.delete_*` does not match `undelete`",
            crm(json!({"customer": {"tier": "gold"}})).tool("crm.undelete"),
            (
                "allow",
                Some("operators may use crm"),
                &["operators may use crm"],
            ),
        ),
        (
            "a condition over nested arguments denies",
            crm(json!({"customer": {"tier": "vip"}})),
            (
                "deny",
                Some("vip accounts stay manual"),
                &["vip accounts stay manual", "operators may use crm"],
            ),
        ),
        (
            "the same condition false: the allow rule decides",
            crm(json!({"customer": {"tier": "gold"}})),
            (
                "allow",
                Some("operators may use crm"),
                &["operators may use crm"],
            ),
        ),
        (
            "a deny condition that cannot be evaluated fails closed",
            crm(json!({})),
            (
                "deny",
                Some("vip accounts stay manual"),
                &["vip accounts stay manual", "operators may use crm"],
            ),
        ),
        (
            "no rule for a principal without roles: default deny",
            crm(json!({"customer": {"tier": "gold"}})).roles(&[]),
            ("deny", None, &[]),
        ),
        (
            "`roles = [\"*\"]` matches any role",
            Call::new("builtin.echo", Medium, json!({})).roles(&["intern"]),
            (
                "allow",
                Some("anyone with a role may echo"),
                &["anyone with a role may echo"],
            ),
        ),
        (
            "`roles = [\"*\"]` does not match a principal with no roles",
            Call::new("builtin.echo", Medium, json!({})).roles(&[]),
            ("deny", None, &[]),
        ),
        (
            "a risk selector: high risk in an hr workflow is denied",
            Call::new("hr.update_salary", High, json!({})).workflow("hr-onboarding"),
            (
                "deny",
                Some("no high-risk calls in hr workflows"),
                &["no high-risk calls in hr workflows"],
            ),
        ),
        (
            "the same risk selector: medium risk is not",
            Call::new("hr.update_salary", Medium, json!({})).workflow("hr-onboarding"),
            ("deny", None, &[]),
        ),
        (
            "an allow condition true",
            Call::new("erp.discount", Medium, json!({"percent": 5})),
            ("allow", Some("small discounts"), &["small discounts"]),
        ),
        (
            "an allow condition over the principal false",
            Call::new("erp.discount", Medium, json!({"percent": 5})).principal("mallory"),
            ("deny", None, &[]),
        ),
        (
            "an allow condition false",
            Call::new("erp.discount", Medium, json!({"percent": 20})),
            ("deny", None, &[]),
        ),
        (
            "an allow condition that cannot be evaluated does not allow",
            Call::new("erp.discount", Medium, json!({"pct": 5})),
            ("deny", None, &[]),
        ),
        (
            "an allow condition with a non-boolean result does not allow",
            Call::new("erp.discount", Medium, json!({"percent": "5"})),
            ("deny", None, &[]),
        ),
        (
            "an unknown tool: default deny",
            Call::new("mail.send", Medium, json!({})),
            ("deny", None, &[]),
        ),
    ];
    let policy = policy();
    for (what, call, (effect, rule, matched)) in cases {
        let decision = call.decide(&policy);
        assert_eq!(decision.effect.name(), effect, "{what}: {decision:#?}");
        assert_eq!(decision.rule.as_deref(), rule, "{what}: {decision:#?}");
        assert_eq!(decision.matched, matched, "{what}");
        assert_eq!(decision.policy_version, policy.version(), "{what}");
    }
}

#[test]
fn an_approval_rule_gives_its_demand() {
    let decision =
        Call::new("support.issue_refund", Risk::High, json!({"amount": 75})).decide(&policy());
    assert_eq!(
        decision.effect,
        Effect::RequireApproval(ApprovalDemand {
            approvers: vec!["controller".into()],
            approvals: 1,
            expires_after_ms: Some(4 * 3_600_000),
            escalate_after_ms: Some(3_600_000),
            escalate_to: vec!["finance-lead".into()],
            four_eyes: true,
        })
    );
    assert_eq!(
        decision.seen,
        json!({
            "workflow": "support-refund",
            "call.server": "support",
            "call.tool": "support.issue_refund",
            "args.amount": 75,
        })
    );
}

#[test]
fn overlapping_approval_rules_combine_into_the_strictest_demand() {
    // The rule with the most approvals decides and gives its approvers (and its lack of
    // escalation); the shorter expiry and four eyes come from whichever rule has them.
    let decision =
        Call::new("support.issue_refund", Risk::High, json!({"amount": 700})).decide(&policy());
    assert_eq!(
        decision.effect,
        Effect::RequireApproval(ApprovalDemand {
            approvers: vec!["finance-lead".into(), "controller".into()],
            approvals: 2,
            expires_after_ms: Some(2 * 3_600_000),
            escalate_after_ms: None,
            escalate_to: vec![],
            four_eyes: true,
        })
    );

    // On a tie in approvals the first rule in the file decides; the shortest expiry wins.
    let tie = Policy::parse(
        std::path::Path::new("tie.toml"),
        r#"
[[rules]]
name = "first"
tools = ["a.*"]
effect = "require_approval"
approvers = ["x"]

[[rules]]
name = "second"
tools = ["a.b"]
effect = "require_approval"
approvers = ["y"]
expires_after = "30m"
"#,
    )
    .expect("valid");
    let decision = Call::new("a.b", Risk::Low, json!({})).decide(&tie);
    assert_eq!(decision.rule.as_deref(), Some("first"));
    assert_eq!(
        decision.effect,
        Effect::RequireApproval(ApprovalDemand {
            approvers: vec!["x".into()],
            approvals: 1,
            expires_after_ms: Some(1_800_000),
            escalate_after_ms: None,
            escalate_to: vec![],
            four_eyes: false,
        })
    );
}

#[test]
fn a_failing_condition_is_recorded_in_seen() {
    let policy = policy();
    let deny = Call::new("crm.update_customer", Risk::Medium, json!({"id": 7}))
        .roles(&["operator"])
        .decide(&policy);
    assert_eq!(
        deny.seen,
        json!({
            "call.tool": "crm.update_customer",
            "error": "there is no field `customer` (it is missing or was not set)",
        })
    );

    // A refund without an amount waits for the strictest approval rule.
    let approval = Call::new("support.issue_refund", Risk::High, json!({})).decide(&policy);
    assert_eq!(approval.rule.as_deref(), Some("refunds over 500 need two"));
    assert_eq!(
        approval.seen["error"],
        json!("there is no field `amount` (it is missing or was not set)")
    );

    // An allow rule that failed leaves its error on the default deny.
    let denied = Call::new("erp.discount", Risk::Medium, json!({"percent": "5"})).decide(&policy);
    assert_eq!(
        denied.seen,
        json!({
            "workflow": "support-refund",
            "principal.roles": ["support-agent"],
            "call.tool": "erp.discount",
            "call.risk": "medium",
            "errors": {
                "small discounts": "no such overload: found no matching overload for '_<=_' applied to '(string, int)'"
            },
        })
    );
}

#[test]
fn default_deny_and_the_fixed_policies() {
    let call = Call::new("mail.send", Risk::Medium, json!({}));
    let decision = call.decide(&policy());
    assert_eq!(
        decision.effect,
        Effect::Deny {
            reason: "no policy rule allows this call".into()
        }
    );

    let none = Policy::deny_all("this workspace has no policy.toml");
    let decision = call.decide(&none);
    assert_eq!(
        (
            decision.effect,
            decision.rule,
            decision.policy_version.as_str()
        ),
        (
            Effect::Deny {
                reason: "this workspace has no policy.toml".into()
            },
            None,
            "none"
        )
    );
    assert!(none.rules().is_empty());
    assert_eq!(none.source(), "");

    let open = Policy::allow_all("unrestricted");
    let decision = call.decide(&open);
    assert_eq!(decision.effect, Effect::Allow);
    assert_eq!(decision.rule.as_deref(), Some("allow all"));
    assert_eq!(decision.seen, json!({}));
    assert_eq!(open.version(), "unrestricted");
}

#[test]
fn a_deny_rule_without_a_reason_names_itself() {
    let policy = Policy::parse(
        std::path::Path::new("p.toml"),
        "[[rules]]\nname = \"no mail\"\ntools = [\"mail.*\"]\neffect = \"deny\"\n",
    )
    .expect("valid");
    let decision = Call::new("mail.send", Risk::Low, json!({})).decide(&policy);
    assert_eq!(
        decision.effect,
        Effect::Deny {
            reason: "the policy rule `no mail` denies this call".into()
        }
    );
}

#[test]
fn conditions_see_every_variable() {
    let policy = Policy::parse(
        std::path::Path::new("p.toml"),
        r#"
[[rules]]
name = "everything"
when = """
args.n == 1 && inputs.order == 'A-1' && state.lookup.found && task.id == 't-1'
&& call.tool == 'x.y' && call.server == 'x' && call.risk == 'medium'
&& principal.name == 'ana' && 'support-agent' in principal.roles
"""
effect = "allow"
"#,
    )
    .expect("valid");
    let mut call = Call::new("x.y", Risk::Medium, json!({"n": 1}));
    call.state = json!({"lookup": {"found": true}});
    let decision = call.decide(&policy);
    assert_eq!(decision.effect, Effect::Allow, "{decision:#?}");
    assert_eq!(
        decision.seen,
        json!({
            "args.n": 1,
            "inputs.order": "A-1",
            "state.lookup.found": true,
            "task.id": "t-1",
            "call.tool": "x.y",
            "call.server": "x",
            "call.risk": "medium",
            "principal.name": "ana",
            "principal.roles": ["support-agent"],
        })
    );
    call.state = json!({"lookup": {"found": false}});
    assert!(call.decide(&policy).is_denied());
}

#[test]
fn explain_says_what_decided_and_why() {
    let policy = policy();
    let version = policy.version().to_owned();
    let approval =
        Call::new("support.issue_refund", Risk::High, json!({"amount": 75})).decide(&policy);
    assert_eq!(
        approval.explain(),
        format!(
            "effect: require approval: 1 approval from controller; expires after 4h; after 1h finance-lead may decide too; four eyes: the requester may not approve it
rule: refunds over 50 need a controller
seen:
  workflow = \"support-refund\"
  call.server = \"support\"
  call.tool = \"support.issue_refund\"
  args.amount = 75
also matched: support agents use support tools
policy version: {version}"
        )
    );

    let two = Call::new("support.issue_refund", Risk::High, json!({"amount": 700})).decide(&policy);
    assert!(
        two.explain().starts_with(
            "effect: require approval: 2 approvals from different people with role finance-lead or controller; expires after 2h; four eyes"
        ),
        "{}",
        two.explain()
    );

    let fail_closed = Call::new("crm.update_customer", Risk::Medium, json!({}))
        .roles(&["operator"])
        .decide(&policy);
    assert_eq!(
        fail_closed.explain(),
        format!(
            "effect: deny: VIP accounts are handled by people
rule: vip accounts stay manual
seen:
  call.tool = \"crm.update_customer\"
  the condition failed, so the rule applies (fail closed): there is no field `customer` (it is missing or was not set)
also matched: operators may use crm
policy version: {version}"
        )
    );

    let default = Call::new("erp.discount", Risk::Medium, json!({})).decide(&policy);
    assert_eq!(
        default.explain(),
        format!(
            "effect: deny: no policy rule allows this call
rule: none matched, so the call is denied by default
seen:
  workflow = \"support-refund\"
  principal.roles = [\"support-agent\"]
  call.tool = \"erp.discount\"
  call.risk = \"medium\"
  the condition of rule \"small discounts\" failed, so it does not allow the call: there is no field `percent` (it is missing or was not set)
also matched: no other rule
policy version: {version}"
        )
    );

    let open = Call::new("a.b", Risk::Low, json!({})).decide(&Policy::allow_all("test"));
    assert_eq!(
        open.explain(),
        "effect: allow
rule: allow all
seen: nothing (the rule matches every call)
also matched: no other rule
policy version: test"
    );
}

#[test]
fn decisions_serialize_with_a_tagged_effect() {
    let decision =
        Call::new("support.issue_refund", Risk::High, json!({"amount": 75})).decide(&policy());
    let json = serde_json::to_value(&decision).expect("serializes");
    assert_eq!(
        json["effect"],
        json!({
            "effect": "require_approval",
            "approvers": ["controller"],
            "approvals": 1,
            "expires_after_ms": 14_400_000,
            "escalate_after_ms": 3_600_000,
            "escalate_to": ["finance-lead"],
            "four_eyes": true,
        })
    );
    assert_eq!(json["rule"], json!("refunds over 50 need a controller"));
    let back: airlock_policy::PolicyDecision = serde_json::from_value(json).expect("deserializes");
    assert_eq!(back, decision);
    assert_eq!(
        serde_json::to_value(Effect::Deny {
            reason: "no".into()
        })
        .expect("serializes"),
        json!({"effect": "deny", "reason": "no"})
    );
    assert_eq!(
        serde_json::to_value(Risk::Medium).expect("serializes"),
        json!("medium")
    );
    assert_eq!(Risk::High.to_string(), "high");
    assert!(Risk::Low < Risk::Medium && Risk::Medium < Risk::High);
}

#[test]
fn version_is_a_hash_of_the_text_and_the_label_is_kept() {
    use sha2::{Digest, Sha256};
    let policy = policy();
    let full = hex::encode(Sha256::digest(crate::support::POLICY.as_bytes()));
    assert_eq!(policy.version(), &full[..12]);
    assert_eq!(policy.label(), Some("2026-11-27"));
    assert_eq!(policy.source(), crate::support::POLICY);

    // One more space is a new version; an unquoted date is a label too.
    let edited = Policy::parse(
        std::path::Path::new("policy.toml"),
        &crate::support::POLICY.replacen("version = \"2026-11-27\"", "version = 2026-11-28 ", 1),
    )
    .expect("valid");
    assert_ne!(edited.version(), policy.version());
    assert_eq!(edited.label(), Some("2026-11-28"));
}

#[test]
fn rules_are_listed_in_file_order_with_their_lines() {
    let policy = policy();
    let listed: Vec<(&str, u32, &str)> = policy
        .rules()
        .iter()
        .map(|r| (r.name.as_str(), r.line, r.effect.name()))
        .collect();
    assert_eq!(
        listed[..3],
        [
            ("reads are free", 3, "allow"),
            ("support agents use support tools", 9, "allow"),
            ("refunds over 50 need a controller", 15, "require_approval"),
        ]
    );
    assert_eq!(listed.len(), 10);
    let refund = &policy.rules()[2];
    assert_eq!(refund.when.as_deref(), Some("args.amount > 50"));
    assert_eq!(refund.workflows, ["support-*"]);
    assert_eq!(policy.rules()[5].risk, [Risk::High]);
}

#[test]
fn tools_that_can_never_be_allowed_are_known_without_arguments() {
    let policy = policy();
    let support = ["support-agent".to_owned()];
    let operator = ["operator".to_owned()];
    // Allowed by a role rule; denied unconditionally; no rule at all.
    assert!(policy.could_allow(
        &support,
        "support-refund",
        "support.issue_refund",
        Risk::High
    ));
    assert!(!policy.could_allow(
        &operator,
        "support-refund",
        "crm.delete_customer",
        Risk::Medium
    ));
    assert!(!policy.could_allow(&support, "support-refund", "mail.send", Risk::Medium));
    // A conditional deny does not rule the tool out.
    assert!(policy.could_allow(
        &operator,
        "support-refund",
        "crm.update_customer",
        Risk::Medium
    ));
}

#[test]
fn policies_are_shareable_across_threads() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Policy>();
    let policy = std::sync::Arc::new(policy());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let policy = std::sync::Arc::clone(&policy);
            std::thread::spawn(move || {
                Call::new(
                    "support.issue_refund",
                    Risk::High,
                    json!({"amount": 40 + i * 10}),
                )
                .decide(&policy)
                .effect
                .name()
            })
        })
        .collect();
    let effects: Vec<&str> = handles
        .into_iter()
        .map(|h| h.join().expect("no panic"))
        .collect();
    assert_eq!(
        effects,
        ["allow", "allow", "require_approval", "require_approval"]
    );
}

#[test]
fn conditions_see_all_of_a_variable_they_read_whole() {
    // Conditions that name fields and conditions that read `state` whole, evaluated in
    // one decision: each must see what it reads.
    let policy = Policy::parse(
        std::path::Path::new("p.toml"),
        r#"
[[rules]]
name = "found"
tools = ["x.a"]
when = "state.lookup.found"
effect = "allow"

[[rules]]
name = "other state"
tools = ["x.a", "x.b"]
when = "has(state.other)"
effect = "deny"

[[rules]]
name = "many states"
tools = ["x.b"]
when = "size(state) > 2"
effect = "deny"

[[rules]]
name = "a failed state"
tools = ["x.c"]
when = "state.exists(k, k == 'failed')"
effect = "deny"

[[rules]]
name = "c"
tools = ["x.c"]
effect = "allow"
"#,
    )
    .expect("valid");
    let cases: &[(&str, Value, Option<&str>)] = &[
        ("x.a", json!({"lookup": {"found": true}}), Some("found")),
        (
            "x.a",
            json!({"lookup": {"found": true}, "other": 1}),
            Some("other state"),
        ),
        ("x.a", json!({"lookup": {"found": false}}), None),
        (
            "x.b",
            json!({"lookup": {}, "a": 1, "b": 2}),
            Some("many states"),
        ),
        (
            "x.b",
            json!({"lookup": {}, "other": 1}),
            Some("other state"),
        ),
        ("x.b", json!({"lookup": {}}), None),
        (
            "x.c",
            json!({"lookup": {}, "failed": {}}),
            Some("a failed state"),
        ),
        ("x.c", json!({"lookup": {}}), Some("c")),
    ];
    for (tool, state, rule) in cases {
        let mut call = Call::new(tool, Risk::Low, json!({}));
        call.state = state.clone();
        let decision = call.decide(&policy);
        assert_eq!(
            decision.rule.as_deref(),
            *rule,
            "{tool} with {state}: {decision:#?}"
        );
    }
}
