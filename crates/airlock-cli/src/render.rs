//! Human-readable output. Every command also has a `--json` form printed by `main`.

use airlock_engine::store::ToolPin;
use airlock_engine::store::{
    ApprovalRecord, ApprovalStatus, AuditEntry, AuditFault, AuditProblem, AuditReport, EventRecord,
    StepRecord, TaskRecord, TaskStatus, ToolCallRecord,
};
use airlock_engine::{Clock, Risk, ToolInfo};
use airlock_mcp::{ServerState, ServerStatus};
use serde_json::Value;

pub fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// `YYYY-MM-DD HH:MM:SS.mmm` in UTC.
pub fn time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

fn status_word(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Running => "running",
        TaskStatus::WaitingApproval => "waiting for approval",
        TaskStatus::InDoubt => "in doubt (a person must say whether a call happened)",
        TaskStatus::Quarantined => "quarantined",
        TaskStatus::Succeeded => "succeeded",
        TaskStatus::Failed => "failed",
        TaskStatus::Cancelled => "cancelled",
    }
}

pub fn task_line(t: &TaskRecord) -> String {
    format!(
        "{}  {:<16} {:<18} {:<14} {}",
        short(&t.id),
        t.projection.status.as_str(),
        t.workflow_name,
        t.projection.current_state.as_deref().unwrap_or("-"),
        t.requester
    )
}

pub fn task_summary(t: &TaskRecord) -> String {
    let mut out = format!(
        "task {} ({}) {}",
        t.id,
        t.workflow_name,
        status_word(t.projection.status)
    );
    if let Some(state) = &t.projection.current_state {
        out.push_str(&format!(" at `{state}`"));
    }
    if let Some(error) = &t.projection.error {
        out.push_str(&format!("\n  error: {error}"));
    }
    out
}

pub fn approval_line(a: &ApprovalRecord) -> String {
    let status = match &a.status {
        // Recorded as expired when an engine next runs or someone answers it; until
        // then it must not look like it can still be approved.
        ApprovalStatus::Pending
            if a.expires_at
                .is_some_and(|at| at <= airlock_engine::SystemClock.now()) =>
        {
            "expired (no longer decidable)".to_owned()
        }
        ApprovalStatus::Pending => "pending".to_owned(),
        ApprovalStatus::Approved { by, .. } => format!("approved by {by}"),
        ApprovalStatus::Rejected { by, reason, .. } => {
            format!("rejected by {by}: {}", reason.as_deref().unwrap_or(""))
        }
        ApprovalStatus::Expired { .. } => "expired".to_owned(),
        ApprovalStatus::Withdrawn { by, .. } => format!("withdrawn: {by} cancelled the task"),
    };
    let expiry = a
        .expires_at
        .map(|at| format!(", expires {}", time(at)))
        .unwrap_or_default();
    let mut line = format!(
        "{}  task {}  `{}`  {}  approvers: {}{}\n    {}",
        a.id,
        short(&a.task_id),
        a.state_name,
        status,
        if a.approvers.is_empty() {
            "anyone".to_owned()
        } else {
            a.approvers.join(", ")
        },
        expiry,
        a.prompt
    );
    if let Some(held) = &a.held_call {
        line.push_str(&format!(
            "\n    call: {} {}  (risk {}, asked by {}{})",
            held.tool,
            held.args,
            held.risk,
            held.requester,
            if held.approvals > 1 {
                format!(", needs {} approvers", held.approvals)
            } else {
                String::new()
            }
        ));
        if let Some(seen) = held.seen.as_object().filter(|s| !s.is_empty()) {
            let seen: Vec<String> = seen.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            line.push_str(&format!("\n    because: {}", seen.join(", ")));
        }
    }
    line
}

pub fn call_line(c: &ToolCallRecord) -> String {
    let outcome = c.outcome.map_or("intent only", |o| o.as_str());
    let detail = c
        .error
        .clone()
        .or_else(|| c.result.as_ref().map(Value::to_string))
        .unwrap_or_default();
    format!(
        "{}  step {} attempt {}  {}  {}  {}  {}",
        c.id,
        c.step_no,
        c.attempt,
        c.tool,
        c.args,
        outcome,
        truncate(&detail, 100)
    )
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

fn event_detail(e: &EventRecord) -> String {
    let b = &e.body;
    let get = |k: &str| {
        b.get(k)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
    };
    let get = |k: &str| get(k).unwrap_or_default();
    match e.kind.as_str() {
        "created" => format!(
            "{} for {} with {}",
            get("workflow"),
            get("requester"),
            get("inputs")
        ),
        "step_started" => format!(
            "{} ({}, attempt {})",
            get("state"),
            get("state_kind"),
            get("attempt")
        ),
        "tool_called" => format!("{} key {}", get("tool"), get("idempotency_key")),
        "tool_returned" => {
            if b.get("ok").and_then(Value::as_bool) == Some(true) {
                "ok".into()
            } else {
                get("error")
            }
        }
        "step_succeeded" => format!("{} -> {}", get("state"), get("next")),
        "step_failed" => format!(
            "{} attempt {}: {} (retry at {})",
            get("state"),
            get("attempt"),
            get("error"),
            b.get("retry_at")
                .and_then(Value::as_i64)
                .map(time)
                .unwrap_or_default()
        ),
        "step_gave_up" => format!("{}: {} -> {}", get("state"), get("error"), get("next")),
        "approval_requested" => format!("{} {}", get("approval_id"), get("prompt")),
        // An expiry is nobody's decision: no "by".
        "approval_decided" => match b.get("by").and_then(Value::as_str) {
            Some(by) => format!("{} by {by} -> {}", get("decision"), get("next")),
            None => format!("{} -> {}", get("decision"), get("next")),
        },
        "call_in_doubt" => format!("{} {}: {}", get("call_id"), get("tool"), get("reason")),
        "in_doubt_resolved" => format!("happened={} by {}", get("happened"), get("by")),
        "in_doubt_settled" => format!(
            "happened={} by {} (the task had ended)",
            get("happened"),
            get("by")
        ),
        "ended" => format!("{} at {}", get("status"), get("state")),
        "model_turn" => {
            let reply = &b["reply"];
            let what = match reply["type"].as_str() {
                Some("final") => format!(
                    "final answer {}",
                    truncate(&reply["output"].to_string(), 80)
                ),
                _ => {
                    let tools: Vec<&str> = reply["calls"]
                        .as_array()
                        .map(|c| c.iter().filter_map(|c| c["tool"].as_str()).collect())
                        .unwrap_or_default();
                    format!("proposes {}", tools.join(", "))
                }
            };
            let usage = match b.get("usage") {
                Some(u) if u.is_object() => format!(
                    " ({} in, {} out tokens)",
                    u["input_tokens"], u["output_tokens"]
                ),
                _ => String::new(),
            };
            format!("{} turn {}: {what}{usage}", get("model"), get("turn"))
        }
        "tool_refused" => format!("{}: {}", get("tool"), get("reason")),
        "cancelled" => format!("by {} {}", get("by"), get("reason")),
        _ => {
            let mut body = b.clone();
            if let Some(map) = body.as_object_mut() {
                map.remove("kind");
            }
            truncate(&body.to_string(), 120)
        }
    }
}

pub fn task_detail(
    t: &TaskRecord,
    events: &[EventRecord],
    steps: &[StepRecord],
    calls: &[ToolCallRecord],
    approvals: &[ApprovalRecord],
) -> String {
    let mut out = task_summary(t);
    out.push_str(&format!(
        "\n  requested by {} · inputs {} · state {}\n\nHistory:\n",
        t.requester, t.inputs, t.projection.state
    ));
    for e in events {
        out.push_str(&format!(
            "  {:>4}  {}  {:<18} {}\n",
            e.seq,
            time(e.at),
            e.kind,
            event_detail(e)
        ));
    }
    if !steps.is_empty() {
        out.push_str("\nSteps:\n");
        for s in steps {
            out.push_str(&format!(
                "  {:>3}  {:<16} {:<9} attempts {}  {}{}\n",
                s.step_no,
                s.state_name,
                s.kind,
                s.attempts,
                s.outcome.as_deref().unwrap_or("in progress"),
                s.error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ));
        }
    }
    if !calls.is_empty() {
        out.push_str("\nTool calls:\n");
        for c in calls {
            out.push_str(&format!("  {}\n", call_line(c)));
        }
    }
    if !approvals.is_empty() {
        out.push_str("\nApprovals:\n");
        for a in approvals {
            out.push_str(&format!("  {}\n", approval_line(a)));
        }
    }
    out
}

/// What a person can do next about a task that waits for them.
pub fn next_steps(
    t: &TaskRecord,
    approvals: &[ApprovalRecord],
    calls: &[ToolCallRecord],
) -> String {
    match t.projection.status {
        TaskStatus::WaitingApproval => approvals
            .iter()
            .filter(|a| a.status == ApprovalStatus::Pending)
            .map(|a| {
                format!(
                    "  {}\n  approve: airlock approve {}\n  reject:  airlock reject {} --reason \"...\"",
                    a.prompt, a.id, a.id
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        TaskStatus::InDoubt => calls
            .iter()
            .filter(|c| c.outcome == Some(airlock_engine::store::ToolCallOutcome::InDoubt))
            .map(|c| {
                format!(
                    "  call {} to {} with {} may or may not have happened.\n  if it did:     airlock resolve {} --happened\n  if it did not: airlock resolve {} --not-happened",
                    c.id, c.tool, c.args, c.id, c.id
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        TaskStatus::Quarantined => format!("  after fixing the cause: airlock release {}", t.id),
        _ => String::new(),
    }
}

pub fn server_line(status: &ServerStatus) -> String {
    match &status.state {
        ServerState::Starting => format!("{:<12} starting", status.name),
        ServerState::Ready { tools } => {
            format!(
                "{:<12} ready, {} tools: {}",
                status.name,
                tools.len(),
                tools.join(", ")
            )
        }
        ServerState::Failed { error, .. } => format!("{:<12} failed: {error}", status.name),
    }
}

pub fn server_json(status: &ServerStatus) -> Value {
    match &status.state {
        ServerState::Starting => serde_json::json!({"name": status.name, "state": "starting"}),
        ServerState::Ready { tools } => {
            serde_json::json!({"name": status.name, "state": "ready", "tools": tools})
        }
        ServerState::Failed { error, .. } => {
            serde_json::json!({"name": status.name, "state": "failed", "error": error})
        }
    }
}

/// One line per tool: name, risk, hints, and whether its definition is pinned or changed.
pub fn tool_lines(tools: &[ToolInfo], pins: &[ToolPin], only_changed: bool) -> Vec<String> {
    let mut lines = Vec::new();
    for tool in tools {
        let pin = pins.iter().find(|p| p.tool == tool.name);
        let changed = pin.is_some_and(|p| p.hash != tool.definition_hash());
        if only_changed && !changed {
            continue;
        }
        let a = tool.annotations;
        let hints: Vec<&str> = [
            (a.read_only, "read-only"),
            (a.destructive && !a.read_only, "destructive"),
            (a.idempotent, "idempotent"),
            (a.open_world, "open-world"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        let pinned = match pin {
            None => "not used yet".to_owned(),
            Some(_) if changed => {
                "CHANGED since pinned: held until accepted (`airlock tools accept`)".to_owned()
            }
            Some(p) => format!("pinned by {}", p.pinned_by),
        };
        let risk = match tool.risk() {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        };
        lines.push(format!(
            "{:<36} risk {:<6} {:<34} {}",
            tool.name,
            risk,
            hints.join(", "),
            pinned
        ));
        if let Some(p) = pin.filter(|_| changed && only_changed) {
            lines.push(format!("    pinned:  {}", p.definition));
            lines.push(format!(
                "    now:     {}",
                serde_json::to_value(tool).unwrap_or_default()
            ));
        }
    }
    lines
}

pub fn audit_line(e: &AuditEntry) -> String {
    let mut body = e.body.clone();
    if let Some(map) = body.as_object_mut() {
        map.remove("kind");
    }
    format!(
        "{:>6}  {}  {:<20} {:<12} {:<8}  {}",
        e.seq,
        time(e.at),
        e.kind,
        // An engine's id is as long as a task's; people's names are shown whole.
        if e.actor.len() == 32 && e.actor.bytes().all(|b| b.is_ascii_hexdigit()) {
            short(&e.actor)
        } else {
            &e.actor
        },
        e.task_id.as_deref().map_or("-", short),
        truncate(&body.to_string(), 120)
    )
}

/// One problem of the chain, naming the entry: "entry 17 (approval_decided, task 3f2a1b2c,
/// 2026-11-27 14:03:11.000 UTC) was changed: its hash does not match its contents".
pub fn audit_problem(p: &AuditProblem) -> String {
    let mut about = Vec::new();
    if let Some(kind) = &p.kind {
        about.push(kind.clone());
    }
    if let Some(task) = &p.task_id {
        about.push(format!("task {}", short(task)));
    }
    if let Some(at) = p.at {
        about.push(format!("{} UTC", time(at)));
    }
    let entry = if about.is_empty() {
        format!("entry {}", p.seq)
    } else {
        format!("entry {} ({})", p.seq, about.join(", "))
    };
    match &p.fault {
        AuditFault::Changed => {
            format!("{entry} was changed: its hash does not match its contents")
        }
        AuditFault::Missing { last } if p.seq == 1 => {
            let first = if *last == 1 {
                "entry 1 is missing".to_owned()
            } else {
                format!("entries 1 to {last} are missing")
            };
            format!("{first}: the chain starts at {}", last + 1)
        }
        AuditFault::Missing { last } => {
            let gone = if *last == p.seq {
                format!("entry {} is missing", p.seq)
            } else {
                format!("entries {} to {last} are missing", p.seq)
            };
            format!("{gone}: the chain jumps from {} to {}", p.seq - 1, last + 1)
        }
        AuditFault::Unlinked { after: 0 } => format!(
            "{entry} does not start the chain: its prev_hash is not the first entry's (64 zeros)"
        ),
        AuditFault::Unlinked { after } if *after == p.seq - 1 => format!(
            "{entry} does not follow entry {after}: its prev_hash is not {after}'s hash \
             (one of the two was changed and given a new hash)"
        ),
        AuditFault::Unlinked { after } => {
            format!("{entry} does not follow entry {after}: its prev_hash is not {after}'s hash")
        }
        AuditFault::Unreadable { detail } => format!("{entry} cannot be read: {detail}"),
        AuditFault::CutShort { anchor } => format!(
            "entries from {} on are gone: the log ends at {}, but it held entry {anchor} \
             (entries were cut off its end)",
            p.seq,
            p.seq - 1
        ),
        AuditFault::NotAnchor { expected } => format!(
            "{entry} is not the entry that was kept (hash {expected}): the log was rewritten \
             up to here and re-chained"
        ),
    }
}

pub fn audit_report(r: &AuditReport) -> String {
    let head = r
        .anchor()
        .map_or_else(|| "(none)".to_owned(), |a| a.to_string());
    if r.is_intact() {
        let mut out = format!("audit log intact: {} entries, head {head}", r.entries);
        if r.head.is_some() {
            out.push_str(&format!(
                "\n  keep the head outside this database; `airlock audit verify --expect {head}` \
                 later also catches entries cut off the end"
            ));
        }
        return out;
    }
    let mut out = format!(
        "audit log NOT intact: {} problem(s) in {} entries (head {head})",
        r.problems.len(),
        r.entries
    );
    for p in &r.problems {
        out.push_str(&format!("\n  {}", audit_problem(p)));
    }
    out
}

pub fn audit_report_json(r: &AuditReport) -> Value {
    let problems: Vec<Value> = r
        .problems
        .iter()
        .map(|p| {
            let mut v = serde_json::to_value(p).unwrap_or_default();
            if let Some(map) = v.as_object_mut() {
                map.insert("message".into(), Value::String(audit_problem(p)));
            }
            v
        })
        .collect();
    serde_json::json!({
        "intact": r.is_intact(), "entries": r.entries, "head": r.head, "head_seq": r.head_seq,
        "anchor": r.anchor().map(|a| a.to_string()), "problems": problems,
    })
}

/// `airlock policy show`.
pub fn policy_summary(path: &std::path::Path, policy: &airlock_engine::policy::Policy) -> String {
    use airlock_engine::policy::Effect;
    let mut out = format!(
        "{}  version {}{}  ({} rules; a call no rule matches is denied)",
        path.display(),
        policy.version(),
        policy
            .label()
            .map(|l| format!(" ({l})"))
            .unwrap_or_default(),
        policy.rules().len()
    );
    for rule in policy.rules() {
        let effect = match &rule.effect {
            Effect::Allow => "allow".to_owned(),
            Effect::RequireApproval(demand) => format!("require approval: {}", demand.describe()),
            Effect::Deny { reason } => format!("deny: {reason}"),
        };
        let mut scope = Vec::new();
        for (what, globs) in [
            ("workflows", &rule.workflows),
            ("roles", &rule.roles),
            ("servers", &rule.servers),
            ("tools", &rule.tools),
        ] {
            if !globs.is_empty() {
                scope.push(format!("{what} {}", globs.join(", ")));
            }
        }
        if !rule.risk.is_empty() {
            let risk: Vec<&str> = rule.risk.iter().map(|r| r.as_str()).collect();
            scope.push(format!("risk {}", risk.join(", ")));
        }
        if let Some(when) = &rule.when {
            scope.push(format!("when {when}"));
        }
        out.push_str(&format!(
            "\n  line {:>3}  {}\n            {}\n            -> {}",
            rule.line,
            rule.name,
            if scope.is_empty() {
                "every call".to_owned()
            } else {
                scope.join("; ")
            },
            effect
        ));
    }
    out
}

/// One grant: its scope, how much of it is used, and whether it still matches.
pub fn grant_line(g: &airlock_engine::store::GrantRecord, now: i64) -> String {
    let state = if let Some(by) = &g.revoked_by {
        format!("revoked by {by}")
    } else if g.max_uses.is_some_and(|max| g.uses >= max) {
        "used up".to_owned()
    } else if g.expires_at.is_some_and(|at| now >= at) {
        "expired".to_owned()
    } else {
        "in force".to_owned()
    };
    let mut scope = vec![format!("`{}`", g.tool)];
    if let Some(w) = &g.workflow {
        scope.push(format!("workflow {w}"));
    }
    if let Some(t) = &g.task_id {
        scope.push(format!("task {}", short(t)));
    }
    if let Some(c) = &g.condition {
        scope.push(format!("while {c}"));
    }
    format!(
        "{}  {}  {}  used {}{}{}  by {}",
        g.id,
        state,
        scope.join(", "),
        g.uses,
        g.max_uses.map(|m| format!(" of {m}")).unwrap_or_default(),
        g.expires_at
            .map(|at| format!(", until {}", time(at)))
            .unwrap_or_default(),
        g.created_by
    )
}

/// `airlock identities`.
pub fn identities(path: &std::path::Path, people: &airlock_engine::policy::Identities) -> String {
    let mut out = format!("{}", path.display());
    for (name, roles) in people.list() {
        out.push_str(&format!("\n  {name}: {}", roles.join(", ")));
    }
    let defaults = people.default_roles();
    out.push_str(&format!(
        "\n  anyone else: {}",
        if defaults.is_empty() {
            "no roles".to_owned()
        } else {
            defaults.join(", ")
        }
    ));
    out
}

/// What one model cost a task: turns, tokens and dollars (when its price is known).
pub fn spend_line(s: &airlock_engine::spend::ModelSpend, cost_usd: Option<f64>) -> String {
    let u = &s.usage;
    let cache = if u.cache_creation_input_tokens + u.cache_read_input_tokens > 0 {
        format!(
            ", cache {} written / {} read",
            u.cache_creation_input_tokens, u.cache_read_input_tokens
        )
    } else {
        String::new()
    };
    if s.counted_turns == 0 {
        return format!("model {}: {} turn(s), tokens not counted", s.model, s.turns);
    }
    let cost = match cost_usd {
        Some(c) => format!("${c:.4}"),
        None => "cost unknown (no price for this model)".to_owned(),
    };
    format!(
        "model {}: {} turn(s), {} in / {} out tokens{cache}, {cost}",
        s.model, s.turns, u.input_tokens, u.output_tokens
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_utc_dates() {
        assert_eq!(super::time(0), "1970-01-01 00:00:00.000");
        assert_eq!(super::time(1_795_777_200_123), "2026-11-27 11:00:00.123");
        assert_eq!(super::time(951_782_400_000), "2000-02-29 00:00:00.000");
    }

    #[test]
    fn audit_problems_name_their_entry() {
        use airlock_engine::store::{AuditFault, AuditProblem};
        let missing = |seq, last| AuditProblem {
            seq,
            kind: None,
            task_id: None,
            at: None,
            fault: AuditFault::Missing { last },
        };
        let at = |seq, fault| AuditProblem {
            seq,
            kind: Some("approval_decided".into()),
            task_id: Some("3f2a1b2c9d".into()),
            at: Some(1_795_777_200_123),
            fault,
        };
        let said = |p| super::audit_problem(&p);
        assert_eq!(
            said(at(17, AuditFault::Changed)),
            "entry 17 (approval_decided, task 3f2a1b2c, 2026-11-27 11:00:00.123 UTC) was \
             changed: its hash does not match its contents"
        );
        assert_eq!(
            said(missing(18, 18)),
            "entry 18 is missing: the chain jumps from 17 to 19"
        );
        assert_eq!(
            said(missing(18, 20)),
            "entries 18 to 20 are missing: the chain jumps from 17 to 21"
        );
        assert_eq!(
            said(missing(1, 1)),
            "entry 1 is missing: the chain starts at 2"
        );
        assert!(
            said(at(19, AuditFault::Unlinked { after: 17 }))
                .ends_with("does not follow entry 17: its prev_hash is not 17's hash")
        );
        assert!(
            said(at(2, AuditFault::Unlinked { after: 0 })).contains("does not start the chain")
        );
    }
}
