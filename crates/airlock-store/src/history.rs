//! The history of every tool call across tasks: the ledger with each call's task,
//! workflow and what let it through the policy — or what refused it: a refused proposal
//! has a ledger row too (outcome `refused`, migration 0012) — filtered, newest first, in
//! keyset pages.
//!
//! Order is `(intent_at, id)` descending, walked through the `tool_calls_by_time` index
//! (migration 0011), so a page costs the rows it returns plus the rows its filters skip,
//! never a sort of the ledger. A page continues strictly after the last row seen
//! (`older_than`), so rows that arrive meanwhile never shift it; `skip` reaches a row by
//! its position below such a bound (a scrollbar dragged halfway).

use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, Row};

use crate::Millis;
use crate::error::{SqlContext, StoreError};
use crate::open::Store;
use crate::query::tool_call_from_row;
use crate::records::{AllowedBy, RefusedBy, ToolCallOutcome, ToolCallRecord};

/// Most rows one page returns.
pub const MAX_HISTORY_PAGE: u32 = 1_000;

/// Which calls. Every field narrows; the default is every call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    /// Calls to this server's tools (the part of `server.tool` before the dot).
    pub server: Option<String>,
    /// Calls to this tool, by its full name (`server.tool`).
    pub tool: Option<String>,
    pub outcome: Option<OutcomeFilter>,
    /// Calls let through this way.
    pub allowed_by: Option<AllowedBy>,
    /// Calls refused this way (their outcome is `refused`).
    pub refused_by: Option<RefusedBy>,
    /// Calls of tasks whose id starts with this.
    pub task: Option<String>,
    pub workflow: Option<String>,
    /// Calls whose intent was recorded at or after this time.
    pub since: Option<Millis>,
    /// Calls whose intent was recorded before this time.
    pub until: Option<Millis>,
    /// Calls approved by this person (the one who completed the approval).
    pub approved_by: Option<String>,
    /// Calls this person rejected (or stopped by cancelling their task while they waited).
    pub rejected_by: Option<String>,
    /// Words in the tool's name, the arguments or the error, ignoring ASCII case.
    pub text: Option<String>,
}

/// A call's outcome, or that it has none yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutcomeFilter {
    /// Only the intent is recorded: the call is under way (or its engine stopped).
    Pending,
    Is(ToolCallOutcome),
}

impl OutcomeFilter {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeFilter::Pending => "pending",
            OutcomeFilter::Is(o) => o.as_str(),
        }
    }

    pub fn from_name(s: &str) -> Option<OutcomeFilter> {
        match s {
            "pending" => Some(OutcomeFilter::Pending),
            _ => ToolCallOutcome::from_name(s).map(OutcomeFilter::Is),
        }
    }
}

/// A row's place in the history's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryKey {
    pub intent_at: Millis,
    pub id: String,
}

/// Bounds on the history's order, both exclusive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryRange {
    /// Only rows after this one in the order (older): the next page after it.
    pub older_than: Option<HistoryKey>,
    /// Only rows before this one in the order (newer): what arrived since it was read.
    pub newer_than: Option<HistoryKey>,
}

/// One call with the task it belongs to.
#[derive(Clone, Debug)]
pub struct HistoryRow {
    pub call: ToolCallRecord,
    pub workflow: String,
}

impl HistoryRow {
    pub fn key(&self) -> HistoryKey {
        HistoryKey {
            intent_at: self.call.intent_at,
            id: self.call.id.clone(),
        }
    }

    /// The server part of the tool's name (`erp` of `erp.refund`).
    pub fn server(&self) -> &str {
        server_of(&self.call.tool)
    }
}

/// The server part of a tool's name: everything before the first dot.
pub fn server_of(tool: &str) -> &str {
    tool.split_once('.').map_or(tool, |(server, _)| server)
}

/// The values a filter can take that are worth offering as choices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryChoices {
    pub tools: Vec<String>,
    pub workflows: Vec<String>,
    pub approvers: Vec<String>,
    /// People who rejected calls.
    pub rejecters: Vec<String>,
}

/// A `WHERE` clause and its values, in order.
struct Clause {
    sql: String,
    args: SqliteArguments,
    /// Whether every condition is on the order's own columns (`intent_at`, `id`), which
    /// `tool_calls_by_time` holds: then a position is found in the index alone.
    only_order: bool,
}

impl Clause {
    fn new(filter: &HistoryFilter, range: &HistoryRange) -> Result<Clause, StoreError> {
        let mut c = Clause {
            sql: String::from(" WHERE 1 = 1"),
            args: SqliteArguments::default(),
            only_order: *filter == HistoryFilter::default(),
        };
        if let Some(server) = &filter.server {
            // `server.` up to (not including) `server/`: '/' follows '.' in every
            // collation SQLite has, so this is a range of the names, not a LIKE.
            c.push(" AND c.tool >= ? AND c.tool < ?", |a| {
                a.add(format!("{server}."))?;
                a.add(format!("{server}/"))
            })?;
        }
        if let Some(tool) = &filter.tool {
            c.push(" AND c.tool = ?", |a| a.add(tool.as_str()))?;
        }
        match filter.outcome {
            Some(OutcomeFilter::Pending) => c.sql.push_str(" AND c.outcome IS NULL"),
            // Every refused row names what refused it (a CHECK, migration 0012); saying so
            // lets SQLite read `tool_calls_refused` (0013), the refused rows alone.
            Some(OutcomeFilter::Is(ToolCallOutcome::Refused)) => c
                .sql
                .push_str(" AND c.outcome = 'refused' AND c.refused_by IS NOT NULL"),
            Some(OutcomeFilter::Is(o)) => {
                c.push(" AND c.outcome = ?", |a| a.add(o.as_str()))?;
            }
            None => {}
        }
        if let Some(by) = filter.allowed_by {
            c.push(" AND c.allowed_by = ?", |a| a.add(by.as_str()))?;
        }
        if let Some(by) = filter.refused_by {
            c.push(" AND c.refused_by = ?", |a| a.add(by.as_str()))?;
        }
        if let Some(task) = &filter.task {
            // A prefix as a range, so `tool_calls_by_task` finds it.
            c.push(" AND c.task_id >= ? AND c.task_id < ?", |a| {
                a.add(task.as_str())?;
                a.add(format!("{task}\u{10FFFF}"))
            })?;
        }
        if let Some(workflow) = &filter.workflow {
            // A membership test, not a condition on the joined task: with a join, SQLite
            // starts from the workflow's tasks and sorts all their calls (380 ms for a third
            // of 100,000); this way it walks the time index and stops after one page.
            c.push(
                " AND c.task_id IN (SELECT id FROM tasks WHERE workflow_name = ?)",
                |a| a.add(workflow.as_str()),
            )?;
        }
        if let Some(since) = filter.since {
            c.push(" AND c.intent_at >= ?", |a| a.add(since))?;
        }
        if let Some(until) = filter.until {
            c.push(" AND c.intent_at < ?", |a| a.add(until))?;
        }
        if let Some(person) = &filter.approved_by {
            c.push(" AND c.approved_by = ?", |a| a.add(person.as_str()))?;
        }
        if let Some(person) = &filter.rejected_by {
            // `refused_by` first: the refused rows' own index, not the whole ledger.
            c.push(" AND c.refused_by = 'person' AND c.rejected_by = ?", |a| {
                a.add(person.as_str())
            })?;
        }
        if let Some(text) = filter
            .text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let pattern = format!("%{}%", escape_like(text));
            c.push(
                " AND (c.tool LIKE ?1 ESCAPE '\\' OR c.args LIKE ?1 ESCAPE '\\' \
                 OR c.error LIKE ?1 ESCAPE '\\')",
                |a| a.add(pattern.clone()),
            )?;
        }
        if let Some(k) = &range.older_than {
            c.push(" AND (c.intent_at, c.id) < (?, ?)", |a| {
                a.add(k.intent_at)?;
                a.add(k.id.as_str())
            })?;
        }
        if let Some(k) = &range.newer_than {
            c.push(" AND (c.intent_at, c.id) > (?, ?)", |a| {
                a.add(k.intent_at)?;
                a.add(k.id.as_str())
            })?;
        }
        Ok(c)
    }

    /// Appends `sql`; `?1` in it is rewritten to the next positional parameter, once
    /// (the text search uses one value three times).
    fn push(
        &mut self,
        sql: &str,
        bind: impl FnOnce(&mut SqliteArguments) -> Result<(), sqlx::error::BoxDynError>,
    ) -> Result<(), StoreError> {
        let before = self.args.len();
        bind(&mut self.args).map_err(|e| StoreError::Corrupt {
            what: "a history filter's value",
            detail: e.to_string(),
        })?;
        if sql.contains("?1") {
            // Numbered parameters: `?N` names the N-th value, counting from 1.
            self.sql
                .push_str(&sql.replace("?1", &format!("?{}", before + 1)));
        } else {
            let mut n = before;
            for part in sql.split('?').enumerate() {
                if part.0 > 0 {
                    n += 1;
                    self.sql.push_str(&format!("?{n}"));
                }
                self.sql.push_str(part.1);
            }
        }
        Ok(())
    }
}

/// `s` with LIKE's wildcards and the escape character escaped by `\`.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

fn history_row(row: &SqliteRow) -> Result<HistoryRow, StoreError> {
    Ok(HistoryRow {
        call: tool_call_from_row(row)?,
        workflow: row.try_get("workflow_name").ctx("workflow_name")?,
    })
}

impl Store {
    /// Up to `limit` calls (at most [`MAX_HISTORY_PAGE`]) matching `filter` inside
    /// `range`, newest first, after skipping the first `skip` of them.
    pub async fn call_history(
        &self,
        filter: &HistoryFilter,
        range: &HistoryRange,
        skip: u64,
        limit: u32,
    ) -> Result<Vec<HistoryRow>, StoreError> {
        let mut clause = Clause::new(filter, range)?;
        let limit = i64::from(limit.clamp(1, MAX_HISTORY_PAGE));
        let skip = i64::try_from(skip).unwrap_or(i64::MAX);
        let n = clause.args.len();
        let sql = if clause.only_order && skip > 0 {
            // Skipping in the index alone (its entries hold the whole key), then reading
            // one page from there: 50,000 rows down costs a walk of 50,000 index entries,
            // not 50,000 rows and their tasks.
            format!(
                "SELECT c.*, t.workflow_name FROM tool_calls c JOIN tasks t ON t.id = c.task_id
                 WHERE (c.intent_at, c.id) <= (SELECT c.intent_at, c.id FROM tool_calls c{}
                     ORDER BY c.intent_at DESC, c.id DESC LIMIT 1 OFFSET ?{}){}
                 ORDER BY c.intent_at DESC, c.id DESC LIMIT ?{}",
                clause.sql,
                n + 2,
                clause.sql.trim_start_matches(" WHERE 1 = 1"),
                n + 1
            )
        } else {
            format!(
                "SELECT c.*, t.workflow_name FROM tool_calls c JOIN tasks t ON t.id = c.task_id{}
                 ORDER BY c.intent_at DESC, c.id DESC LIMIT ?{} OFFSET ?{}",
                clause.sql,
                n + 1,
                n + 2
            )
        };
        clause
            .args
            .add(limit)
            .and_then(|()| clause.args.add(skip))
            .map_err(|e| StoreError::Corrupt {
                what: "a history page's bounds",
                detail: e.to_string(),
            })?;
        let rows = sqlx::query_with(sqlx::AssertSqlSafe(sql), clause.args)
            .fetch_all(&self.inner.reads)
            .await
            .ctx("reading the call history")?;
        rows.iter().map(history_row).collect()
    }

    /// How many calls match `filter` inside `range`.
    pub async fn count_call_history(
        &self,
        filter: &HistoryFilter,
        range: &HistoryRange,
    ) -> Result<u64, StoreError> {
        let clause = Clause::new(filter, range)?;
        let sql = format!("SELECT count(*) FROM tool_calls c{}", clause.sql);
        let n: i64 = sqlx::query_scalar_with(sqlx::AssertSqlSafe(sql), clause.args)
            .fetch_one(&self.inner.reads)
            .await
            .ctx("counting the call history")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The tools called, the workflows with tasks and the people who approved or rejected
    /// calls, each sorted, for a filter's choices.
    pub async fn history_choices(&self) -> Result<HistoryChoices, StoreError> {
        let reads = &self.inner.reads;
        let (tools, workflows, approvers, rejecters) = tokio::try_join!(
            // Kept by a trigger on the ledger (migration 0015): the ledger itself has no
            // index on `tool` to read them from.
            sqlx::query_scalar("SELECT tool FROM ledger_tools ORDER BY tool").fetch_all(reads),
            sqlx::query_scalar("SELECT DISTINCT name FROM workflows ORDER BY name")
                .fetch_all(reads),
            sqlx::query_scalar(
                "SELECT DISTINCT decided_by FROM approvals
                 WHERE status = 'approved' AND held_call IS NOT NULL AND decided_by IS NOT NULL
                 ORDER BY decided_by"
            )
            .fetch_all(reads),
            sqlx::query_scalar(
                "SELECT DISTINCT rejected_by FROM tool_calls
                 WHERE refused_by = 'person' AND rejected_by IS NOT NULL ORDER BY rejected_by"
            )
            .fetch_all(reads),
        )
        .ctx("reading the history's filter choices")?;
        Ok(HistoryChoices {
            tools,
            workflows,
            approvers,
            rejecters,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like(r"50%_off\"), r"50\%\_off\\");
    }

    #[test]
    fn servers_are_the_part_before_the_first_dot() {
        assert_eq!(server_of("erp.refund"), "erp");
        assert_eq!(server_of("erp.refunds.create"), "erp");
        assert_eq!(server_of("bare"), "bare");
    }

    #[test]
    fn placeholders_are_numbered_in_order() {
        let filter = HistoryFilter {
            server: Some("erp".into()),
            text: Some("x".into()),
            until: Some(5),
            ..HistoryFilter::default()
        };
        let c = Clause::new(&filter, &HistoryRange::default()).expect("a clause");
        assert_eq!(
            c.sql,
            " WHERE 1 = 1 AND c.tool >= ?1 AND c.tool < ?2 AND c.intent_at < ?3 \
             AND (c.tool LIKE ?4 ESCAPE '\\' OR c.args LIKE ?4 ESCAPE '\\' OR c.error LIKE ?4 ESCAPE '\\')"
        );
        assert_eq!(c.args.len(), 4);
    }
}
