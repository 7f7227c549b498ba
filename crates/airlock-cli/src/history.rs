//! `airlock history`: every tool call across tasks, filtered; a table, `--json`, or every
//! matching call as CSV (the engine's writer, the same as the desktop's export).

use std::fs::File;
use std::io::{BufWriter, Write};

use airlock_engine::Engine;
use airlock_engine::history::export_history_csv;
use airlock_engine::store::{
    AllowedBy, CallAllowance, CallRefusal, HistoryFilter, HistoryRange, HistoryRow, OutcomeFilter,
    RefusedBy, ToolCallRecord,
};
use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::args::HistoryArgs;
use crate::evaluation::parse_date;
use crate::exit::Exit;
use crate::print_json;
use crate::render;
use crate::workflow_source::Invalid;

pub async fn run(engine: &Engine, args: &HistoryArgs, json: bool) -> Result<Exit> {
    let filter = filter(engine, args)?;
    let store = engine.store();
    if let Some(path) = &args.csv {
        if path.as_os_str() == "-" {
            export_history_csv(store, &filter, &mut BufWriter::new(std::io::stdout())).await?;
        } else {
            let file =
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = BufWriter::new(file);
            let rows = export_history_csv(store, &filter, &mut out).await?;
            out.flush()?;
            eprintln!("{rows} call(s) written to {}", path.display());
        }
        return Ok(Exit::Ok);
    }
    let range = HistoryRange::default();
    let (rows, total) = tokio::try_join!(
        store.call_history(&filter, &range, 0, args.limit.clamp(1, 1_000)),
        store.count_call_history(&filter, &range),
    )?;
    if json {
        print_json(&json!({
            "total": total,
            "calls": rows.iter().map(row_json).collect::<Vec<_>>(),
        }))?;
    } else if rows.is_empty() {
        say!(
            "{}",
            if filter == HistoryFilter::default() {
                "no tool calls yet: `airlock run <workflow>` starts a task, and its calls appear here"
            } else {
                "no tool calls match these filters"
            }
        );
    } else {
        say!(
            "{:<23}  {:<8}  {:<12}  {:<24}  {:<12}  ALLOWED BY",
            "TIME (UTC)",
            "TASK",
            "WORKFLOW",
            "TOOL",
            "OUTCOME"
        );
        for row in &rows {
            say!("{}", line(row));
        }
        if total > rows.len() as u64 {
            say!(
                "{} of {total} call(s), newest first (--limit for more, --csv FILE for all)",
                rows.len()
            );
        }
    }
    Ok(Exit::Ok)
}

fn filter(engine: &Engine, a: &HistoryArgs) -> Result<HistoryFilter> {
    let now = engine.clock().now();
    let outcome = a
        .outcome
        .as_deref()
        .map(|o| {
            OutcomeFilter::from_name(o).ok_or_else(|| {
                Invalid(format!(
                    "`{o}` is not an outcome: use pending, succeeded, failed, in_doubt, happened, not_happened or refused"
                ))
            })
        })
        .transpose()?;
    let allowed_by = a
        .allowed_by
        .as_deref()
        .map(|o| {
            AllowedBy::parse(o).ok_or_else(|| {
                Invalid(format!(
                    "`{o}` is not a decision: use policy, grant or approval"
                ))
            })
        })
        .transpose()?;
    let refused_by = a
        .refused_by
        .as_deref()
        .map(|o| {
            RefusedBy::parse(o).ok_or_else(|| {
                Invalid(format!(
                    "`{o}` is not a refusal: use policy, person, expiry or check"
                ))
            })
        })
        .transpose()?;
    Ok(HistoryFilter {
        server: a.server.clone(),
        tool: a.tool.clone(),
        outcome,
        allowed_by,
        refused_by,
        task: a.task.clone(),
        workflow: a.workflow.clone(),
        since: a
            .since
            .as_deref()
            .map(|d| parse_date(d, now, false))
            .transpose()?,
        until: a
            .until
            .as_deref()
            .map(|d| parse_date(d, now, true))
            .transpose()?,
        approved_by: a.approved_by.clone(),
        rejected_by: a.rejected_by.clone(),
        text: a.search.clone(),
    })
}

/// What decided the call, in a few words: what let it through, or what refused it.
fn decision_words(c: &ToolCallRecord) -> String {
    match &c.refusal {
        Some(refusal) => refusal_words(refusal),
        None => allowed_words(c.allowed.as_ref()),
    }
}

fn refusal_words(r: &CallRefusal) -> String {
    let rule = |rule: &Option<String>| match rule {
        Some(rule) => format!(" (rule “{rule}”)"),
        None => String::new(),
    };
    match r {
        CallRefusal::Policy {
            rule: Some(rule), ..
        } => format!("denied by rule “{rule}”"),
        CallRefusal::Policy { rule: None, .. } => "denied: no rule allows it".into(),
        CallRefusal::Person {
            rejected_by,
            rule: r,
            ..
        } => format!("rejected by {rejected_by}{}", rule(r)),
        CallRefusal::Expiry { rule: r, .. } => format!("approval expired{}", rule(r)),
        CallRefusal::Cancel {
            cancelled_by,
            rule: r,
            ..
        } => format!("withdrawn: {cancelled_by} cancelled the task{}", rule(r)),
        CallRefusal::Check => "refused by the checks".into(),
    }
}

fn allowed_words(a: Option<&CallAllowance>) -> String {
    match a {
        None => "not recorded".into(),
        Some(CallAllowance::Policy { rule }) => match rule {
            Some(rule) => format!("rule “{rule}”"),
            None => "policy".into(),
        },
        Some(CallAllowance::Grant { grant_id, .. }) => format!("grant {}", render::short(grant_id)),
        Some(CallAllowance::Approval { approver, .. }) => format!("approved by {approver}"),
    }
}

fn line(row: &HistoryRow) -> String {
    let c = &row.call;
    format!(
        "{:<23}  {:<8}  {:<12}  {:<24}  {:<12}  {}",
        render::time(c.intent_at),
        render::short(&c.task_id),
        row.workflow,
        c.tool,
        c.outcome.map_or("pending", |o| o.as_str()),
        decision_words(c)
    )
}

fn row_json(row: &HistoryRow) -> Value {
    let c = &row.call;
    json!({
        "id": c.id,
        "task_id": c.task_id,
        "workflow": row.workflow,
        "server": row.server(),
        "tool": c.tool,
        "step_no": c.step_no,
        "attempt": c.attempt,
        "args": c.args,
        "outcome": c.outcome.map_or("pending", |o| o.as_str()),
        "result": c.result,
        "error": c.error,
        "resolved_by": c.resolved_by,
        "intent_at": c.intent_at,
        "outcome_at": c.outcome_at,
        "allowed": c.allowed,
        "refusal": c.refusal,
    })
}
