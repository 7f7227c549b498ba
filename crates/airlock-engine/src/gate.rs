//! The policy half of the checked path. After a proposed call has passed the static checks
//! (schema, pin) and before its intent is recorded, the gate says what happens to it: the
//! policy in force decides for the task's requester, a grant may stand in for an approval,
//! and a call that needs people is held as an approval. A call that people approved is
//! checked against the policy once more when it is about to run, so a permission revoked
//! in between blocks it. A refusal says what refused the call (`CallRefusal`); the runner
//! records it as a ledger row whose outcome is `refused`, in the commit with the refusal.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use airlock_policy::{CallFacts, Effect, Identities, Policy, PolicyDecision};
use airlock_store::{
    ApprovalStatus, ApprovalWrite, CallAllowance, CallRefusal, GrantRecord, HeldCall, Millis,
};
use airlock_workflow::glob_matches;
use serde_json::Value;

use crate::engine::Inner;
use crate::error::EngineError;
use crate::event::TaskEvent;
use crate::ledger::{args_hash, new_id};
use crate::tool_host::ToolInfo;

/// Where the engine gets the policy in force. A file-backed source reloads when the file
/// changes; the engine asks for it at every decision.
pub trait PolicySource: Send + Sync {
    fn current(&self) -> Arc<Policy>;
    /// The file it comes from, for the record.
    fn path(&self) -> Option<&Path> {
        None
    }
}

impl PolicySource for Arc<Policy> {
    fn current(&self) -> Arc<Policy> {
        self.clone()
    }
}

impl PolicySource for airlock_policy::PolicyFile {
    fn current(&self) -> Arc<Policy> {
        airlock_policy::PolicyFile::current(self)
    }
    fn path(&self) -> Option<&Path> {
        Some(airlock_policy::PolicyFile::path(self))
    }
}

/// The engine's policy and the identities it decides for.
#[derive(Clone)]
pub struct Governance {
    pub policy: Arc<dyn PolicySource>,
    pub identities: Arc<Identities>,
    /// Whether deciding an approval needs one of its approver roles. Off only when no
    /// identities are configured at all (embedding, tests): then anyone may decide,
    /// though four eyes still holds.
    pub check_approvers: bool,
}

impl Governance {
    /// No restrictions: every call is allowed and anyone may decide an approval. For
    /// embedding and tests; a workspace always brings a policy (or denies every call).
    pub fn unrestricted() -> Governance {
        Governance {
            policy: Arc::new(Arc::new(Policy::allow_all("unrestricted (no policy)"))),
            identities: Arc::new(Identities::empty()),
            check_approvers: false,
        }
    }
}

impl std::fmt::Debug for Governance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governance")
            .field("policy", &self.policy.current().version())
            .finish_non_exhaustive()
    }
}

/// What the gate decided for one proposed call.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Make the call, with these arguments (an approver may have edited them); what let
    /// it through goes on its ledger row.
    Proceed { args: Value, allowed: CallAllowance },
    /// Do not make it, for this reason (told to the model, or the step's error); what
    /// refused it goes on the ledger row that records the refusal.
    Refuse {
        reason: String,
        refusal: CallRefusal,
    },
    /// Held for people: the approval request is in `writes`.
    Hold,
}

/// The verdict and what to record with it.
pub(crate) struct GateResult {
    pub verdict: Verdict,
    pub events: Vec<TaskEvent>,
    pub approval: Option<ApprovalWrite>,
}

/// The task and step a proposed call belongs to.
pub(crate) struct CallSite<'a> {
    pub task_id: &'a str,
    pub requester: &'a str,
    pub workflow: &'a str,
    pub state_name: &'a str,
    pub step_no: i64,
    pub inputs: &'a Value,
    pub state: &'a Value,
    pub task: &'a Value,
}

/// Grant conditions compiled once (a grant is a one-rule policy: its tool glob and its
/// condition, `allow`).
#[derive(Default)]
pub(crate) struct GrantRules {
    compiled: Mutex<HashMap<String, Arc<Policy>>>,
}

impl GrantRules {
    fn rule(&self, grant: &GrantRecord) -> Result<Arc<Policy>, String> {
        if let Some(p) = self
            .compiled
            .lock()
            .ok()
            .and_then(|c| c.get(&grant.id).cloned())
        {
            return Ok(p);
        }
        let policy = Arc::new(grant_policy(&grant.tool, grant.condition.as_deref())?);
        if let Ok(mut c) = self.compiled.lock() {
            c.insert(grant.id.clone(), policy.clone());
        }
        Ok(policy)
    }
}

/// A grant's scope as a policy of one `allow` rule; `Err` says what is wrong with it.
pub(crate) fn grant_policy(tool: &str, condition: Option<&str>) -> Result<Policy, String> {
    let mut source = format!(
        "[[rules]]\nname = \"grant\"\ntools = [{}]\neffect = \"allow\"\n",
        toml_string(tool)
    );
    if let Some(condition) = condition {
        source.push_str(&format!("when = {}\n", toml_string(condition)));
    }
    Policy::parse(Path::new("grant"), &source).map_err(|d| {
        d.iter()
            .map(|d| d.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    })
}

fn toml_string(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

impl Inner {
    /// The policy's decision for a call, recording each policy version the first time
    /// this engine decides under it.
    pub(crate) async fn evaluate_policy(
        &self,
        site: &CallSite<'_>,
        tool: &ToolInfo,
        args: &Value,
    ) -> Result<PolicyDecision, EngineError> {
        let policy = self.governance.policy.current();
        self.note_policy_version(&policy).await?;
        let roles = self.governance.identities.roles_of(site.requester);
        let risk = tool.risk();
        let facts = CallFacts {
            principal: site.requester,
            roles: &roles,
            workflow: site.workflow,
            tool: &tool.name,
            risk,
            args,
            inputs: site.inputs,
            state: site.state,
            task: site.task,
        };
        Ok(policy.evaluate(&facts))
    }

    async fn note_policy_version(&self, policy: &Policy) -> Result<(), EngineError> {
        let known = self
            .policy_versions_seen
            .lock()
            .is_ok_and(|seen| seen.contains(policy.version()));
        if known {
            return Ok(());
        }
        let path = self
            .governance
            .policy
            .path()
            .map(|p| p.display().to_string());
        let new = self
            .store
            .record_policy_version(
                policy.version(),
                path.as_deref(),
                policy.source(),
                self.clock.now(),
            )
            .await?;
        if new {
            self.audit(
                "policy_loaded",
                &self.id,
                None,
                serde_json::json!({
                    "version": policy.version(), "label": policy.label(), "path": path,
                    "rules": policy.rules().len(),
                }),
            )
            .await?;
        }
        if let Ok(mut seen) = self.policy_versions_seen.lock() {
            seen.insert(policy.version().to_owned());
        }
        Ok(())
    }

    /// Decides one proposed call (see the module docs). `step_is_new`: the call is the
    /// first thing proposed in a step number the task never used before, so no call of
    /// it can have been held yet. Held calls are written only by the gate, in the commits
    /// of the runner holding the task's lease, at the task's current step number, and
    /// step numbers only grow; so the lookup of earlier decisions, a read on every
    /// step's path, is skipped.
    pub(crate) async fn gate(
        &self,
        site: &CallSite<'_>,
        tool: &ToolInfo,
        args: &Value,
        call_index: i64,
        step_is_new: bool,
    ) -> Result<GateResult, EngineError> {
        let hash = args_hash(args);
        let held_before = if step_is_new {
            None
        } else {
            self.store
                .task_approvals(site.task_id)
                .await?
                .into_iter()
                .rfind(|a| {
                    a.step_no == site.step_no
                        && a.held_call.as_ref().is_some_and(|h| {
                            h.call_index == call_index && args_hash(&h.args) == hash
                        })
                })
        };
        if let Some(approval) = held_before {
            return self
                .after_approval(site, tool, args, call_index, approval)
                .await;
        }

        let decision = self.evaluate_policy(site, tool, args).await?;
        let recorded = |via: Option<String>, reason: Option<String>| TaskEvent::PolicyDecided {
            step_no: site.step_no,
            call_index,
            tool: tool.name.clone(),
            args_hash: hash.clone(),
            effect: effect_name(&decision.effect).to_owned(),
            rule: decision.rule.clone(),
            seen: decision.seen.clone(),
            policy_version: decision.policy_version.clone(),
            via,
            reason,
        };
        match &decision.effect {
            Effect::Allow => Ok(GateResult {
                verdict: Verdict::Proceed {
                    args: args.clone(),
                    allowed: CallAllowance::Policy {
                        rule: decision.rule.clone(),
                    },
                },
                events: vec![recorded(None, None)],
                approval: None,
            }),
            Effect::Deny { reason } => {
                let reason = refusal(&decision, reason);
                Ok(GateResult {
                    events: vec![recorded(None, Some(reason.clone()))],
                    verdict: Verdict::Refuse {
                        reason,
                        refusal: CallRefusal::Policy {
                            rule: decision.rule.clone(),
                            approval_id: None,
                        },
                    },
                    approval: None,
                })
            }
            Effect::RequireApproval(demand) => {
                let now = self.clock.now();
                let escalate_at = demand
                    .escalate_after_ms
                    .map(|ms| now.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX)));
                let held = HeldCall {
                    call_index,
                    tool: tool.name.clone(),
                    args: args.clone(),
                    risk: tool.risk().to_string(),
                    rule: decision.rule.clone(),
                    seen: decision.seen.clone(),
                    requester: site.requester.to_owned(),
                    approvals: demand.approvals.max(1),
                    escalate_at,
                    escalate_to: demand.escalate_to.clone(),
                    four_eyes: demand.four_eyes,
                };
                if let Some(grant) = self
                    .matching_grant(site, tool, args, now, &demand.approvers, &held)
                    .await?
                {
                    return Ok(GateResult {
                        verdict: Verdict::Proceed {
                            args: args.clone(),
                            allowed: CallAllowance::Grant {
                                grant_id: grant.id.clone(),
                                rule: decision.rule.clone(),
                            },
                        },
                        events: vec![recorded(Some(format!("grant {}", grant.id)), None)],
                        approval: None,
                    });
                }
                let approval_id = new_id();
                let expires_at = demand
                    .expires_after_ms
                    .map(|ms| now.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX)));
                let prompt = format!(
                    "`{}` wants to run for task {} ({}): {}",
                    tool.name,
                    site.task_id,
                    site.workflow,
                    decision
                        .rule
                        .as_deref()
                        .map_or_else(|| "approval required".into(), |r| format!("rule “{r}”"))
                );
                Ok(GateResult {
                    verdict: Verdict::Hold,
                    events: vec![
                        recorded(None, None),
                        TaskEvent::CallHeld {
                            approval_id: approval_id.clone(),
                            step_no: site.step_no,
                            call_index,
                            tool: tool.name.clone(),
                            args_hash: hash.clone(),
                            rule: decision.rule.clone(),
                            approvers: demand.approvers.clone(),
                            expires_at,
                        },
                    ],
                    approval: Some(ApprovalWrite::Request {
                        id: approval_id,
                        step_no: site.step_no,
                        state_name: site.state_name.to_owned(),
                        prompt,
                        approvers: demand.approvers.clone(),
                        requested_at: now,
                        expires_at,
                        tool_call_id: None,
                        args_hash: Some(hash.clone()),
                        policy_version: Some(decision.policy_version.clone()),
                        held_call: Some(Box::new(held)),
                    }),
                })
            }
        }
    }

    /// A call people have decided: approved calls are checked against the policy once
    /// more (a permission revoked since blocks it); rejected and expired ones are refused.
    async fn after_approval(
        &self,
        site: &CallSite<'_>,
        tool: &ToolInfo,
        args: &Value,
        call_index: i64,
        approval: airlock_store::ApprovalRecord,
    ) -> Result<GateResult, EngineError> {
        let refuse = |reason: String, refusal: CallRefusal| GateResult {
            verdict: Verdict::Refuse { reason, refusal },
            events: Vec::new(),
            approval: None,
        };
        let held_rule = approval.held_call.as_ref().and_then(|h| h.rule.clone());
        match &approval.status {
            ApprovalStatus::Rejected { by, reason, .. } => Ok(refuse(
                match reason {
                    Some(reason) => format!("refused: {by} rejected this call: {reason}"),
                    None => format!("refused: {by} rejected this call"),
                },
                CallRefusal::Person {
                    approval_id: approval.id.clone(),
                    rejected_by: by.clone(),
                    rule: held_rule,
                },
            )),
            ApprovalStatus::Expired { .. } => Ok(refuse(
                "refused: the approval expired before anyone decided, so the call was not made"
                    .into(),
                CallRefusal::Expiry {
                    approval_id: approval.id.clone(),
                    rule: held_rule,
                },
            )),
            // Its task was cancelled, so this is not reached; refused as the cancel was.
            ApprovalStatus::Withdrawn { by, reason, .. } => {
                let (why, refusal) =
                    crate::refusals::withdrawn(&approval.id, by, reason.as_deref(), held_rule);
                Ok(refuse(why, refusal))
            }
            ApprovalStatus::Pending => {
                // Only reached when the task was moved on without the decision (it should
                // not be): hold it again on the same approval rather than ask twice.
                Ok(GateResult {
                    verdict: Verdict::Hold,
                    events: vec![TaskEvent::CallHeld {
                        approval_id: approval.id.clone(),
                        step_no: site.step_no,
                        call_index,
                        tool: tool.name.clone(),
                        args_hash: args_hash(args),
                        rule: approval.held_call.as_ref().and_then(|h| h.rule.clone()),
                        approvers: approval.approvers.clone(),
                        expires_at: approval.expires_at,
                    }],
                    approval: None,
                })
            }
            ApprovalStatus::Approved {
                by, edited_args, ..
            } => {
                let args = edited_args.clone().unwrap_or_else(|| args.clone());
                let decision = self.evaluate_policy(site, tool, &args).await?;
                let event = |reason: Option<String>| TaskEvent::PolicyDecided {
                    step_no: site.step_no,
                    call_index,
                    tool: tool.name.clone(),
                    args_hash: args_hash(&args),
                    effect: effect_name(&decision.effect).to_owned(),
                    rule: decision.rule.clone(),
                    seen: decision.seen.clone(),
                    policy_version: decision.policy_version.clone(),
                    via: Some(format!("approval {} by {by}", approval.id)),
                    reason,
                };
                match &decision.effect {
                    Effect::Deny { reason } => {
                        let reason = format!(
                            "blocked: {by} approved this call, but the policy in force now denies it ({})",
                            refusal(&decision, reason).trim_start_matches("refused: ")
                        );
                        Ok(GateResult {
                            events: vec![event(Some(reason.clone()))],
                            verdict: Verdict::Refuse {
                                reason,
                                refusal: CallRefusal::Policy {
                                    rule: decision.rule.clone(),
                                    approval_id: Some(approval.id.clone()),
                                },
                            },
                            approval: None,
                        })
                    }
                    _ => Ok(GateResult {
                        events: vec![event(None)],
                        verdict: Verdict::Proceed {
                            args,
                            allowed: CallAllowance::Approval {
                                approval_id: approval.id.clone(),
                                approver: by.clone(),
                                rule: decision.rule.clone(),
                            },
                        },
                        approval: None,
                    }),
                }
            }
        }
    }

    /// A live grant whose scope covers this call, given by someone who may decide the
    /// approval the call would otherwise wait for; its use is taken atomically.
    ///
    /// A grant is an approval given in advance, so it counts only where its giver's
    /// approval would: their roles now (a role taken away since stops their grants),
    /// four eyes (not for their own calls), and one approver (a rule asking for several
    /// distinct approvers is not met by one person's grant).
    async fn matching_grant(
        &self,
        site: &CallSite<'_>,
        tool: &ToolInfo,
        args: &Value,
        now: Millis,
        approvers: &[String],
        held: &HeldCall,
    ) -> Result<Option<GrantRecord>, EngineError> {
        if held.approvals > 1 {
            return Ok(None);
        }
        for grant in self.store.live_grants(now).await? {
            let in_scope = glob_matches(&grant.tool, &tool.name)
                && grant.workflow.as_deref().is_none_or(|w| w == site.workflow)
                && grant.task_id.as_deref().is_none_or(|t| t == site.task_id);
            if !in_scope {
                continue;
            }
            if let Err(why) = may_decide(
                &self.governance,
                &grant.created_by,
                approvers,
                Some(held),
                now,
            ) {
                tracing::info!(grant = %grant.id, %why, "a grant in scope does not cover this call");
                continue;
            }
            let rule = match self.grant_rules.rule(&grant) {
                Ok(rule) => rule,
                Err(problem) => {
                    tracing::warn!(grant = %grant.id, %problem, "a grant's condition cannot be used; it matches nothing");
                    continue;
                }
            };
            let roles = Vec::new();
            let facts = CallFacts {
                principal: site.requester,
                roles: &roles,
                workflow: site.workflow,
                tool: &tool.name,
                risk: tool.risk(),
                args,
                inputs: site.inputs,
                state: site.state,
                task: site.task,
            };
            if !matches!(rule.evaluate(&facts).effect, Effect::Allow) {
                continue;
            }
            if self.store.use_grant(&grant.id, now).await? {
                return Ok(Some(grant));
            }
        }
        Ok(None)
    }
}

pub(crate) fn effect_name(effect: &Effect) -> &'static str {
    match effect {
        Effect::Allow => "allow",
        Effect::RequireApproval(_) => "require_approval",
        Effect::Deny { .. } => "deny",
    }
}

/// The sentence a refused call carries: the rule and its reason, or default deny.
fn refusal(decision: &PolicyDecision, reason: &str) -> String {
    match &decision.rule {
        Some(rule) => format!("refused by policy rule “{rule}”: {reason}"),
        None => format!("refused: {reason}"),
    }
}

/// Whether `who` may decide an approval that names `approvers` (roles or identities),
/// escalation included. An empty list means anyone.
pub(crate) fn may_decide(
    governance: &Governance,
    who: &str,
    approvers: &[String],
    held: Option<&HeldCall>,
    now: Millis,
) -> Result<(), String> {
    let mut allowed: Vec<String> = approvers.to_vec();
    if let Some(held) = held
        && held.escalate_at.is_some_and(|at| now >= at)
    {
        allowed.extend(held.escalate_to.iter().cloned());
    }
    if let Some(held) = held
        && held.four_eyes
        && held.requester == who
    {
        return Err(format!(
            "{who} asked for this call, and its rule needs four eyes: someone else must approve it"
        ));
    }
    if !governance.check_approvers || allowed.is_empty() || allowed.iter().any(|a| a == who) {
        return Ok(());
    }
    let roles = governance.identities.roles_of(who);
    if roles.iter().any(|r| allowed.contains(r)) {
        return Ok(());
    }
    Err(format!(
        "{who} may not decide this approval: it needs one of the roles {} ({who} has {})",
        allowed.join(", "),
        if roles.is_empty() {
            "none".to_owned()
        } else {
            roles.join(", ")
        }
    ))
}
