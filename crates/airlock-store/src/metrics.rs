//! Ratings people leave on finished tasks, and the metrics: figures about a set of tasks
//! computed with SQL aggregates over the tasks, ledger, approvals, steps, events and
//! ratings, plus the lists a review report shows (failure modes, overrides, exceptions,
//! how each policy rule's held calls were decided).
//!
//! What the figures mean:
//!
//! - A task belongs to the period it was **created** in (`since` inclusive, `until`
//!   exclusive), and everything about it (its calls, approvals, checks, rating) counts in
//!   that period, so every rate of a period is about one set of tasks. Day and week
//!   buckets are UTC; weeks start on Monday.
//! - **Completion rate**: succeeded ÷ ended (succeeded, failed or cancelled). Tasks still
//!   running or waiting are counted as `open`, in neither part.
//! - **Exception**: a task that failed, had a call in doubt (now or resolved by a person),
//!   was ever quarantined, or has an outcome check that did not pass (a `check` state whose
//!   latest output is not `{"passed": true}`, including one whose expression could not be
//!   evaluated). Exception rate: exceptions ÷ tasks.
//! - **Outcome checks**: each `check` state a task ran counts once, with its latest result
//!   (a check that failed, sent the task to fix things and then passed, passed); so do a
//!   task's post-conditions, judged together in one `check` step of its end state (whose
//!   output is `{"passed": ...}` too, and whose failure also fails the task). Pass rate:
//!   passed ÷ checks.
//! - **Duplicate action**: a call of a tool that is not safe to repeat (the ledger's
//!   `idempotent` is false) with the same task, tool and canonical arguments hash as an
//!   earlier call of that task that took effect (`succeeded` or `happened`), made within
//!   the window after it. A retry after a failure or a `not_happened` is not one; repeats
//!   of read-only or idempotent tools are not either (they cannot happen twice).
//! - **Approvals**: approval rate, rejection rate = approved, rejected ÷ decided (approved,
//!   rejected, expired); override rate = approved with edited arguments ÷ approved; time
//!   to decision over approvals people decided (expiries are not decisions).
//! - **Human corrections**: edited approvals + in-doubt calls a person resolved +
//!   rejections.
//! - **Satisfaction**: the newest rating of each rated task (a re-rating replaces the
//!   earlier one in the figures; the table keeps both).
//! - **Tokens**: summed per model name from `model_turn` events; pricing is the caller's.
//!
//! - **Tool calls** are the calls the engine made or may have made: a proposal refused
//!   before its intent (a ledger row with outcome `refused`, migration 0012) is not one,
//!   is never a failure, and is never part of a duplicate action.
//!
//! Two figures read per-task tallies that triggers keep as rows are inserted (migration
//! 0010): the tool calls (`task_tallies.tool_calls`) and the model tokens
//! (`task_model_usage`, from each turn's `usage`); and duplicate actions are looked for
//! only in the tasks whose tally counts a repeated call (`task_tallies.repeats`).
//! - **Percentiles** (wall time = ended − created of ended tasks; time to decision) are
//!   nearest-rank: the p-th percentile of n values is the ⌈p·n/100⌉-th smallest. SQLite
//!   has no percentile aggregate and ranking with window functions was most of the
//!   metrics' time, so SQL gathers each group's durations (`group_concat`) and the rank is
//!   picked here.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::Millis;
use crate::error::{SqlContext, StoreError};
use crate::open::Store;
use crate::records::{TaskStatus, parse_status};

/// The default window of the duplicate-action figure: a day.
pub const DEFAULT_DUPLICATE_WINDOW: Millis = 24 * 60 * 60 * 1000;

const DAY_MS: i64 = 86_400_000;

/// Chart buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Day,
    Week,
}

impl Bucket {
    /// The SQL giving the start (ms, UTC) of the bucket of `created_at`. Day 0 of the
    /// epoch was a Thursday, so Monday-based weeks are offset by three days.
    fn sql(self) -> &'static str {
        match self {
            Bucket::Day => "(created_at / 86400000) * 86400000",
            Bucket::Week => "((created_at / 86400000 + 3) / 7 * 7 - 3) * 86400000",
        }
    }

    /// The length of one bucket.
    pub fn millis(self) -> Millis {
        match self {
            Bucket::Day => DAY_MS,
            Bucket::Week => 7 * DAY_MS,
        }
    }
}

/// Which tasks the figures are about.
#[derive(Clone, Debug, Serialize)]
pub struct MetricsFilter {
    pub workflow: Option<String>,
    /// Tasks created at or after this time.
    pub since: Option<Millis>,
    /// Tasks created before this time.
    pub until: Option<Millis>,
    /// Also give the figures of each day or week.
    pub bucket: Option<Bucket>,
    /// How close a repeat must follow the call it repeats to count as a duplicate.
    pub duplicate_window: Millis,
}

impl Default for MetricsFilter {
    fn default() -> MetricsFilter {
        MetricsFilter {
            workflow: None,
            since: None,
            until: None,
            bucket: None,
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
        }
    }
}

/// The figures of one set of tasks. Rates are `None` when nothing was there to divide by.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Figures {
    pub tasks: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
    /// Not ended: running or waiting for a person.
    pub open: i64,
    pub completion_rate: Option<f64>,
    pub exceptions: Exceptions,
    pub tool_calls: i64,
    pub duplicate_actions: i64,
    pub approvals: ApprovalFigures,
    pub checks: CheckFigures,
    pub corrections: Corrections,
    pub satisfaction: Satisfaction,
    /// Per model name, in name order.
    pub tokens: Vec<ModelTokens>,
    /// Ended tasks: ended − created.
    pub wall_time: Spread,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Exceptions {
    /// Distinct tasks with at least one of the reasons below.
    pub tasks: i64,
    pub rate: Option<f64>,
    pub failed: i64,
    pub in_doubt: i64,
    pub quarantined: i64,
    pub check_failed: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ApprovalFigures {
    pub requested: i64,
    pub pending: i64,
    pub approved: i64,
    pub rejected: i64,
    pub expired: i64,
    /// Approved with edited arguments (overrides).
    pub edited: i64,
    pub approval_rate: Option<f64>,
    pub rejection_rate: Option<f64>,
    pub override_rate: Option<f64>,
    /// Decided by a person: decided − requested.
    pub time_to_decision: Spread,
}

/// Outcome checks: each `check` state of each task once, with its latest result.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CheckFigures {
    pub runs: i64,
    pub passed: i64,
    pub failed: i64,
    pub pass_rate: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Corrections {
    pub edits: i64,
    pub in_doubt_resolutions: i64,
    pub rejections: i64,
    pub total: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Satisfaction {
    /// Rated tasks.
    pub ratings: i64,
    pub mean: Option<f64>,
    /// Rated 1 or 2.
    pub low: i64,
    #[serde(skip)]
    sum: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ModelTokens {
    pub model: String,
    pub turns: i64,
    /// Turns whose tokens were counted (a model that does not count them reports none).
    pub counted_turns: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_creation_input_tokens: i64,
    pub cache_read_input_tokens: i64,
}

/// How long something took: how many, the median and the 90th percentile (nearest rank).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Spread {
    pub count: i64,
    pub p50_ms: Option<i64>,
    pub p90_ms: Option<i64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct WorkflowFigures {
    pub workflow: String,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Clone, Debug, Serialize)]
pub struct BucketFigures {
    /// The bucket's first millisecond (UTC midnight; a Monday for weeks).
    pub start: Millis,
    #[serde(flatten)]
    pub figures: Figures,
}

/// The figures of a filter: all its tasks, each workflow's, and each bucket's.
#[derive(Clone, Debug, Serialize)]
pub struct Metrics {
    pub filter: MetricsFilter,
    pub total: Figures,
    pub workflows: Vec<WorkflowFigures>,
    /// Empty unless the filter asks for buckets; buckets without tasks are left out.
    pub buckets: Vec<BucketFigures>,
}

/// One rating of a task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RatingRecord {
    pub id: i64,
    pub task_id: String,
    pub rating: u8,
    pub comment: Option<String>,
    pub rated_by: String,
    pub rated_at: Millis,
}

/// A recurring error, for the review's failure modes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailureMode {
    /// `tool_call` (a call failed), `step` (a step gave up) or `check` (an outcome check
    /// did not pass; `error` is its message).
    pub kind: String,
    /// The tool or the state.
    pub place: String,
    pub error: String,
    pub count: i64,
    pub tasks: i64,
    pub last_at: Millis,
    pub example_task: String,
}

/// An approval granted with arguments a person changed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OverrideRecord {
    pub approval_id: String,
    pub task_id: String,
    pub workflow: String,
    pub state_name: String,
    pub tool: Option<String>,
    /// The policy rule that held the call.
    pub rule: Option<String>,
    pub proposed_args: Option<Value>,
    pub edited_args: Value,
    pub by: Option<String>,
    pub at: Millis,
    pub reason: Option<String>,
}

/// A task counted as an exception, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExceptionRecord {
    pub task_id: String,
    pub workflow: String,
    pub status: TaskStatus,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub error: Option<String>,
    /// Some of `failed`, `in_doubt`, `quarantined`, `check_failed`.
    pub reasons: Vec<String>,
}

/// How people decided one held call of a policy rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeldCallDecision {
    pub rule: String,
    pub tool: Option<String>,
    pub workflow: String,
    pub approval_id: String,
    /// `approved`, `rejected` or `expired`.
    pub status: String,
    /// Approved with edited arguments.
    pub edited: bool,
    pub decided_at: Millis,
}

/// A value bound into a query built from fixed fragments.
enum Arg {
    Text(String),
    Int(i64),
}

/// The filtered tasks as the CTE `ft` (id, workflow `w`, bucket start `b`, status, times),
/// and the values its placeholders take.
fn scope(filter: &MetricsFilter) -> (String, Vec<Arg>) {
    let bucket = filter.bucket.map_or("0", Bucket::sql);
    let mut sql = format!(
        "ft AS (SELECT id, workflow_name AS w, {bucket} AS b, status, error, created_at, updated_at
                FROM tasks WHERE 1 = 1"
    );
    let mut args = Vec::new();
    if let Some(w) = &filter.workflow {
        sql.push_str(" AND workflow_name = ?");
        args.push(Arg::Text(w.clone()));
    }
    if let Some(since) = filter.since {
        sql.push_str(" AND created_at >= ?");
        args.push(Arg::Int(since));
    }
    if let Some(until) = filter.until {
        sql.push_str(" AND created_at < ?");
        args.push(Arg::Int(until));
    }
    sql.push(')');
    (sql, args)
}

/// Each check state run in each task, with its latest result (its row in
/// `task_outputs`): the CTE `checks` (`task_id`, `passed`). A check whose expression could
/// not be evaluated has `{"error": ...}` there, and one that failed the task has no row:
/// neither passed.
const CHECKS: &str = "
checks AS (SELECT s.task_id,
             COALESCE(json_extract(o.output, '$.passed') = 1, 0) AS passed
           FROM (SELECT DISTINCT task_id, state_name FROM steps
                 WHERE kind = 'check' AND outcome IS NOT NULL @IN_FT(task_id)) s
           LEFT JOIN task_outputs o ON o.task_id = s.task_id AND o.state_name = s.state_name)";

/// The exceptions among `ft`'s tasks with the facts that make them one, as the CTE
/// `flags` (`w`, `b`, `id`, `status`, `created_at`, `updated_at`, `error`, `doubted`,
/// `quarantined`, `check_failed`), after [`CHECKS`]. Exceptions are few: they are
/// gathered from small sets (tasks by status through its index, calls in doubt and
/// quarantines through their partial indexes — the `WHERE` terms repeat the indexes'
/// conditions — and failed checks) instead of testing every task, and only then joined
/// to `ft` (once: a second use would make SQLite copy every task of `ft` into a temporary
/// table and index it).
const EXCEPTION_FLAGS: &str = "
exceptional AS (SELECT id AS task_id FROM tasks WHERE status IN ('failed', 'in_doubt', 'quarantined')
    UNION SELECT task_id FROM tool_calls WHERE outcome IN ('in_doubt', 'happened', 'not_happened')
    UNION SELECT task_id FROM task_events WHERE kind = 'quarantined'
    UNION SELECT task_id FROM checks WHERE NOT passed),
flags AS (SELECT ft.w, ft.b, ft.id, ft.status, ft.created_at, ft.updated_at, ft.error,
            ft.status = 'in_doubt' OR ft.id IN (SELECT task_id FROM tool_calls
                WHERE outcome IN ('in_doubt', 'happened', 'not_happened')) AS doubted,
            ft.status = 'quarantined' OR ft.id IN (SELECT task_id FROM task_events
                WHERE kind = 'quarantined') AS quarantined,
            ft.id IN (SELECT task_id FROM checks WHERE NOT passed) AS check_failed
          FROM exceptional x JOIN ft ON ft.id = x.task_id)";

/// `@IN_FT(col)` in a query: `AND col IN (SELECT id FROM ft)` when the filter narrows the
/// tasks, else nothing (every row belongs to some task of `ft` then, and a later join with
/// `ft` is enough; the lookup per row would only cost time).
fn narrow(body: &str, narrowed: bool) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(at) = rest.find("@IN_FT(") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "@IN_FT(".len()..];
        let Some(close) = after.find(')') else {
            out.push_str(&rest[at..]);
            return out;
        };
        if narrowed {
            out.push_str(&format!("AND {} IN (SELECT id FROM ft)", &after[..close]));
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

fn int(row: &SqliteRow, i: usize) -> Result<i64, StoreError> {
    Ok(row
        .try_get::<Option<i64>, _>(i)
        .ctx("reading a metric")?
        .unwrap_or(0))
}

fn text(row: &SqliteRow, i: usize) -> Result<String, StoreError> {
    Ok(row
        .try_get::<Option<String>, _>(i)
        .ctx("reading a metric")?
        .unwrap_or_default())
}

/// A row's workflow and bucket (its first two columns).
fn group_key(row: &SqliteRow) -> Result<(String, Millis), StoreError> {
    Ok((text(row, 0)?, int(row, 1)?))
}

fn group<'g>(
    groups: &'g mut BTreeMap<(String, Millis), Figures>,
    row: &SqliteRow,
) -> Result<&'g mut Figures, StoreError> {
    Ok(groups.entry(group_key(row)?).or_default())
}

/// The integers of a `group_concat` column (none when it is NULL).
fn values(what: &'static str, row: &SqliteRow, i: usize) -> Result<Vec<i64>, StoreError> {
    text(row, i)?
        .split(',')
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<i64>().map_err(|e| StoreError::Corrupt {
                what,
                detail: format!("{v:?}: {e}"),
            })
        })
        .collect()
}

fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl Figures {
    /// Adds the counts of `other` (never its spreads or rates: those are computed apart).
    fn add(&mut self, o: &Figures) {
        self.tasks += o.tasks;
        self.succeeded += o.succeeded;
        self.failed += o.failed;
        self.cancelled += o.cancelled;
        self.open += o.open;
        let e = &mut self.exceptions;
        e.tasks += o.exceptions.tasks;
        e.failed += o.exceptions.failed;
        e.in_doubt += o.exceptions.in_doubt;
        e.quarantined += o.exceptions.quarantined;
        e.check_failed += o.exceptions.check_failed;
        self.tool_calls += o.tool_calls;
        self.duplicate_actions += o.duplicate_actions;
        let a = &mut self.approvals;
        a.requested += o.approvals.requested;
        a.pending += o.approvals.pending;
        a.approved += o.approvals.approved;
        a.rejected += o.approvals.rejected;
        a.expired += o.approvals.expired;
        a.edited += o.approvals.edited;
        self.checks.runs += o.checks.runs;
        self.checks.passed += o.checks.passed;
        self.corrections.in_doubt_resolutions += o.corrections.in_doubt_resolutions;
        self.satisfaction.ratings += o.satisfaction.ratings;
        self.satisfaction.sum += o.satisfaction.sum;
        self.satisfaction.low += o.satisfaction.low;
        for t in &o.tokens {
            self.add_tokens(t);
        }
    }

    fn add_tokens(&mut self, t: &ModelTokens) {
        let i = match self.tokens.binary_search_by(|m| m.model.cmp(&t.model)) {
            Ok(i) => i,
            Err(i) => {
                self.tokens.insert(
                    i,
                    ModelTokens {
                        model: t.model.clone(),
                        ..ModelTokens::default()
                    },
                );
                i
            }
        };
        let m = &mut self.tokens[i];
        m.turns += t.turns;
        m.counted_turns += t.counted_turns;
        m.input_tokens += t.input_tokens;
        m.output_tokens += t.output_tokens;
        m.cache_creation_input_tokens += t.cache_creation_input_tokens;
        m.cache_read_input_tokens += t.cache_read_input_tokens;
    }

    /// The figures derived from the counts.
    fn finish(&mut self) {
        let ended = self.succeeded + self.failed + self.cancelled;
        self.completion_rate = ratio(self.succeeded, ended);
        self.exceptions.rate = ratio(self.exceptions.tasks, self.tasks);
        let a = &mut self.approvals;
        let decided = a.approved + a.rejected + a.expired;
        a.approval_rate = ratio(a.approved, decided);
        a.rejection_rate = ratio(a.rejected, decided);
        a.override_rate = ratio(a.edited, a.approved);
        self.checks.failed = self.checks.runs - self.checks.passed;
        self.checks.pass_rate = ratio(self.checks.passed, self.checks.runs);
        let c = &mut self.corrections;
        c.edits = a.edited;
        c.rejections = a.rejected;
        c.total = c.edits + c.rejections + c.in_doubt_resolutions;
        let s = &mut self.satisfaction;
        s.mean = ratio(s.sum, s.ratings);
    }
}

/// Durations per workflow and bucket.
type Durations = BTreeMap<(String, Millis), Vec<i64>>;

/// The count, median and 90th percentile (nearest rank) of `values`, which it sorts.
fn spread(values: &mut [i64]) -> Spread {
    values.sort_unstable();
    let n = values.len();
    // The ⌈p·n/100⌉-th smallest, 1-based.
    let rank = |p: usize| values.get((p * n).div_ceil(100).max(1) - 1).copied();
    Spread {
        count: i64::try_from(n).unwrap_or(i64::MAX),
        p50_ms: rank(50),
        p90_ms: rank(90),
    }
}

impl Store {
    async fn metric_rows(
        &self,
        what: &'static str,
        filter: &MetricsFilter,
        body: &str,
        extra: Vec<Arg>,
    ) -> Result<Vec<SqliteRow>, StoreError> {
        let (ft, mut args) = scope(filter);
        args.extend(extra);
        let narrowed =
            filter.workflow.is_some() || filter.since.is_some() || filter.until.is_some();
        let mut body = narrow(body, narrowed);
        if filter.bucket.is_none() {
            // The bucket is a constant then: grouping by the workflow alone lets SQLite
            // read tasks in workflow order instead of sorting them.
            body = body
                .replace("GROUP BY ft.w, ft.b", "GROUP BY ft.w")
                .replace("GROUP BY w, b", "GROUP BY w");
        }
        // The body is either more CTEs then a SELECT, or the SELECT alone.
        let sep = if body.trim_start().starts_with("SELECT") {
            "\n"
        } else {
            ",\n"
        };
        let sql = format!("WITH {ft}{sep}{body}");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for arg in args {
            query = match arg {
                Arg::Text(s) => query.bind(s),
                Arg::Int(i) => query.bind(i),
            };
        }
        query.fetch_all(&self.inner.reads).await.ctx(what)
    }

    /// The figures of `filter`'s tasks: in total, per workflow, and per bucket if asked.
    ///
    /// Counts are taken per workflow and bucket and added up here; percentiles are picked
    /// from each grouping's durations.
    pub async fn metrics(&self, filter: &MetricsFilter) -> Result<Metrics, StoreError> {
        // The tool calls come from each task's tally (kept as calls are recorded), in the
        // same pass over the tasks.
        let tasks = self.metric_rows(
            "counting tasks",
            filter,
            "SELECT ft.w, ft.b, COUNT(*),
               SUM(CASE WHEN ft.status = 'succeeded' THEN 1 ELSE 0 END),
               SUM(CASE WHEN ft.status = 'failed' THEN 1 ELSE 0 END),
               SUM(CASE WHEN ft.status = 'cancelled' THEN 1 ELSE 0 END),
               group_concat(CASE WHEN ft.status IN ('succeeded', 'failed', 'cancelled')
                            THEN ft.updated_at - ft.created_at END),
               SUM(t.tool_calls)
             FROM ft LEFT JOIN task_tallies t ON t.task_id = ft.id GROUP BY ft.w, ft.b",
            Vec::new(),
        );
        let exceptions_sql = format!(
            "{CHECKS}, {EXCEPTION_FLAGS}
             SELECT w, b, COUNT(*),
               SUM(CASE WHEN doubted THEN 1 ELSE 0 END),
               SUM(CASE WHEN quarantined THEN 1 ELSE 0 END),
               SUM(CASE WHEN check_failed THEN 1 ELSE 0 END)
             FROM flags GROUP BY w, b"
        );
        let exceptions =
            self.metric_rows("counting exceptions", filter, &exceptions_sql, Vec::new());
        let checks_sql = format!(
            "{CHECKS}
             SELECT ft.w, ft.b, COUNT(*), SUM(c.passed) FROM ft JOIN checks c ON c.task_id = ft.id
             GROUP BY ft.w, ft.b"
        );
        let checks = self.metric_rows("counting outcome checks", filter, &checks_sql, Vec::new());
        // Resolutions are rare: read through the partial index, not the whole ledger.
        let resolutions = self.metric_rows(
            "counting in-doubt resolutions",
            filter,
            "r AS (SELECT task_id, COUNT(*) AS n FROM tool_calls
                   WHERE outcome IN ('in_doubt', 'happened', 'not_happened')
                     AND resolved_by IS NOT NULL
                   GROUP BY task_id)
             SELECT ft.w, ft.b, SUM(r.n) FROM ft JOIN r ON r.task_id = ft.id GROUP BY ft.w, ft.b",
            Vec::new(),
        );
        // Candidates first: only the tasks whose tally says some call repeats an earlier
        // one (a partial index), and their groups of two or more calls; the ordered
        // comparison runs on those few rows only. CROSS JOIN keeps SQLite from walking
        // the ledger's index first (it cannot know how few tallies count a repeat).
        let duplicates = self.metric_rows(
            "counting duplicate actions",
            filter,
            "candidates AS (
                SELECT c.task_id, c.tool, c.args_hash
                FROM task_tallies t CROSS JOIN tool_calls c ON c.task_id = t.task_id
                WHERE t.repeats > 0 AND NOT c.idempotent @IN_FT(t.task_id)
                  AND (c.outcome IS NULL OR c.outcome <> 'refused')
                GROUP BY c.task_id, c.tool, c.args_hash HAVING COUNT(*) > 1),
             repeats AS (
                SELECT c.task_id, c.intent_at - MAX(CASE WHEN c.outcome IN ('succeeded', 'happened')
                                                         THEN c.intent_at END)
                    OVER (PARTITION BY c.task_id, c.tool, c.args_hash
                          ORDER BY c.step_no, c.attempt, c.call_index
                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS after_effect
                FROM candidates x JOIN tool_calls c ON c.task_id = x.task_id AND c.tool = x.tool
                    AND c.args_hash = x.args_hash AND NOT c.idempotent
                    AND (c.outcome IS NULL OR c.outcome <> 'refused'))
             SELECT ft.w, ft.b, COUNT(*) FROM repeats r JOIN ft ON ft.id = r.task_id
             WHERE r.after_effect <= ? GROUP BY ft.w, ft.b",
            vec![Arg::Int(filter.duplicate_window)],
        );
        let approvals = self.metric_rows(
            "counting approvals",
            filter,
            // A withdrawn approval (its task was cancelled while it waited) asked nobody
            // anything that was answered: it is none of these figures.
            "a AS (SELECT ft.w, ft.b, a.status, a.edited_args, a.requested_at, a.decided_at
                   FROM ft JOIN approvals a ON a.task_id = ft.id WHERE a.status <> 'withdrawn')
             SELECT w, b, COUNT(*),
               SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END),
               SUM(CASE WHEN status = 'approved' THEN 1 ELSE 0 END),
               SUM(CASE WHEN status = 'rejected' THEN 1 ELSE 0 END),
               SUM(CASE WHEN status = 'expired' THEN 1 ELSE 0 END),
               SUM(CASE WHEN status = 'approved' AND edited_args IS NOT NULL THEN 1 ELSE 0 END),
               group_concat(CASE WHEN status IN ('approved', 'rejected')
                            THEN decided_at - requested_at END)
             FROM a GROUP BY w, b",
            Vec::new(),
        );
        // Ratings are people's and few: each looks its task up (not every task its ratings).
        let ratings = self.metric_rows(
            "reading ratings",
            filter,
            "latest AS (
                SELECT r.task_id, r.rating FROM task_ratings r
                WHERE NOT EXISTS (
                    SELECT 1 FROM task_ratings n WHERE n.task_id = r.task_id
                      AND (n.rated_at > r.rated_at OR (n.rated_at = r.rated_at AND n.id > r.id))))
             SELECT ft.w, ft.b, COUNT(*), SUM(l.rating),
               SUM(CASE WHEN l.rating <= 2 THEN 1 ELSE 0 END)
             FROM latest l CROSS JOIN ft ON ft.id = l.task_id GROUP BY ft.w, ft.b",
            Vec::new(),
        );
        // The usage rows carry their task's workflow and creation time: grouped by those
        // directly, and only checked against `ft` when the filter narrows the tasks.
        let bucket = filter.bucket.map_or("0", Bucket::sql);
        let tokens_sql = format!(
            "SELECT u.workflow AS w, {bucket} AS b, u.model, SUM(u.turns), SUM(u.counted_turns),
               SUM(u.input_tokens), SUM(u.output_tokens), SUM(u.cache_creation_input_tokens),
               SUM(u.cache_read_input_tokens)
             FROM task_model_usage u WHERE 1 = 1 @IN_FT(u.task_id) GROUP BY w, b, u.model"
        );
        let tokens = self.metric_rows("adding up model tokens", filter, &tokens_sql, Vec::new());
        // Two chains of about equal cost, one per core (a query is one thread's work);
        // running all eight at once only made them compete for the cores.
        let chain_a = async {
            Ok::<_, StoreError>((
                tasks.await?,
                exceptions.await?,
                approvals.await?,
                ratings.await?,
            ))
        };
        let chain_b = async {
            Ok::<_, StoreError>((
                tokens.await?,
                duplicates.await?,
                checks.await?,
                resolutions.await?,
            ))
        };
        let ((tasks, exceptions, approvals, ratings), (tokens, duplicates, checks, resolutions)) =
            tokio::try_join!(chain_a, chain_b)?;

        let mut groups: BTreeMap<(String, Millis), Figures> = BTreeMap::new();
        // Durations per group; each grouping's percentiles are picked from them below.
        let mut wall = Durations::new();
        let mut decision = Durations::new();
        for row in &tasks {
            let f = group(&mut groups, row)?;
            f.tasks = int(row, 2)?;
            f.succeeded = int(row, 3)?;
            f.failed = int(row, 4)?;
            f.cancelled = int(row, 5)?;
            f.open = f.tasks - f.succeeded - f.failed - f.cancelled;
            f.exceptions.failed = f.failed;
            f.tool_calls = int(row, 7)?;
            wall.insert(group_key(row)?, values("wall time", row, 6)?);
        }
        for row in &exceptions {
            let e = &mut group(&mut groups, row)?.exceptions;
            e.tasks = int(row, 2)?;
            e.in_doubt = int(row, 3)?;
            e.quarantined = int(row, 4)?;
            e.check_failed = int(row, 5)?;
        }
        for row in &checks {
            let f = group(&mut groups, row)?;
            f.checks.runs = int(row, 2)?;
            f.checks.passed = int(row, 3)?;
        }
        for row in &resolutions {
            group(&mut groups, row)?.corrections.in_doubt_resolutions = int(row, 2)?;
        }
        for row in &duplicates {
            group(&mut groups, row)?.duplicate_actions = int(row, 2)?;
        }
        for row in &approvals {
            let a = &mut group(&mut groups, row)?.approvals;
            a.requested = int(row, 2)?;
            a.pending = int(row, 3)?;
            a.approved = int(row, 4)?;
            a.rejected = int(row, 5)?;
            a.expired = int(row, 6)?;
            a.edited = int(row, 7)?;
            decision.insert(group_key(row)?, values("time to decision", row, 8)?);
        }
        for row in &ratings {
            let s = &mut group(&mut groups, row)?.satisfaction;
            s.ratings = int(row, 2)?;
            s.sum = int(row, 3)?;
            s.low = int(row, 4)?;
        }
        for row in &tokens {
            let t = ModelTokens {
                model: text(row, 2)?,
                turns: int(row, 3)?,
                counted_turns: int(row, 4)?,
                input_tokens: int(row, 5)?,
                output_tokens: int(row, 6)?,
                cache_creation_input_tokens: int(row, 7)?,
                cache_read_input_tokens: int(row, 8)?,
            };
            group(&mut groups, row)?.add_tokens(&t);
        }

        let mut total = Figures::default();
        let mut workflows: BTreeMap<String, Figures> = BTreeMap::new();
        let mut buckets: BTreeMap<Millis, Figures> = BTreeMap::new();
        for ((w, b), f) in &groups {
            total.add(f);
            workflows.entry(w.clone()).or_default().add(f);
            if filter.bucket.is_some() {
                buckets.entry(*b).or_default().add(f);
            }
        }
        // Percentiles do not add up: each grouping gets its own from the raw durations.
        for (durations, wall_time) in [(wall, true), (decision, false)] {
            let set = |f: &mut Figures, values: &mut Vec<i64>| {
                let spread = spread(values);
                if wall_time {
                    f.wall_time = spread;
                } else {
                    f.approvals.time_to_decision = spread;
                }
            };
            let mut all = Vec::new();
            let mut per_workflow: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
            let mut per_bucket: BTreeMap<Millis, Vec<i64>> = BTreeMap::new();
            for ((w, b), values) in &durations {
                all.extend_from_slice(values);
                per_workflow.entry(w).or_default().extend_from_slice(values);
                per_bucket.entry(*b).or_default().extend_from_slice(values);
            }
            set(&mut total, &mut all);
            for (w, mut values) in per_workflow {
                if let Some(f) = workflows.get_mut(w) {
                    set(f, &mut values);
                }
            }
            for (b, mut values) in per_bucket {
                if let Some(f) = buckets.get_mut(&b) {
                    set(f, &mut values);
                }
            }
        }
        total.finish();
        let workflows = workflows
            .into_iter()
            .map(|(workflow, mut figures)| {
                figures.finish();
                WorkflowFigures { workflow, figures }
            })
            .collect();
        let buckets = buckets
            .into_iter()
            .map(|(start, mut figures)| {
                figures.finish();
                BucketFigures { start, figures }
            })
            .collect();
        Ok(Metrics {
            filter: filter.clone(),
            total,
            workflows,
            buckets,
        })
    }

    /// Records a rating of a task that has ended. `None` when there is no such task or it
    /// has not ended (nothing is written then).
    pub async fn add_rating(
        &self,
        task_id: &str,
        rating: u8,
        comment: Option<&str>,
        by: &str,
        at: Millis,
    ) -> Result<Option<RatingRecord>, StoreError> {
        let mut w = self.inner.writer.lock().await;
        // Guarded in the statement too: a task that has ended never changes again, so
        // the check and the insert cannot disagree.
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO task_ratings (task_id, rating, comment, rated_by, rated_at)
             SELECT id, ?, ?, ?, ? FROM tasks
             WHERE id = ? AND status IN ('succeeded', 'failed', 'cancelled')
             RETURNING id",
        )
        .bind(i64::from(rating))
        .bind(comment)
        .bind(by)
        .bind(at)
        .bind(task_id)
        .fetch_optional(&mut *w)
        .await
        .ctx("recording a rating")?;
        Ok(id.map(|id| RatingRecord {
            id,
            task_id: task_id.to_owned(),
            rating,
            comment: comment.map(str::to_owned),
            rated_by: by.to_owned(),
            rated_at: at,
        }))
    }

    /// A task's ratings, oldest first (the last one is the one that counts).
    pub async fn ratings(&self, task_id: &str) -> Result<Vec<RatingRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, task_id, rating, comment, rated_by, rated_at FROM task_ratings
             WHERE task_id = ? ORDER BY rated_at, id",
        )
        .bind(task_id)
        .fetch_all(&self.inner.reads)
        .await
        .ctx("reading ratings")?;
        rows.iter()
            .map(|row| {
                let rating: i64 = row.try_get("rating").ctx("rating")?;
                Ok(RatingRecord {
                    id: row.try_get("id").ctx("rating id")?,
                    task_id: row.try_get("task_id").ctx("rating task")?,
                    rating: u8::try_from(rating).map_err(|_| StoreError::Corrupt {
                        what: "rating",
                        detail: format!("{rating} is not 1 to 5"),
                    })?,
                    comment: row.try_get("comment").ctx("rating comment")?,
                    rated_by: row.try_get("rated_by").ctx("rating by")?,
                    rated_at: row.try_get("rated_at").ctx("rating at")?,
                })
            })
            .collect()
    }

    /// The most common errors of `filter`'s tasks: failed calls (by tool and error), steps
    /// that gave up (by state and error) and outcome checks that did not pass (by state
    /// and message), most frequent first.
    pub async fn failure_modes(
        &self,
        filter: &MetricsFilter,
        limit: i64,
    ) -> Result<Vec<FailureMode>, StoreError> {
        let rows = self
            .metric_rows(
                "reading failure modes",
                filter,
                "f AS (
                    SELECT 'tool_call' AS kind, c.tool AS place, COALESCE(c.error, '') AS error,
                           c.task_id, COALESCE(c.outcome_at, c.intent_at) AS at
                    FROM tool_calls c WHERE c.outcome = 'failed' AND c.task_id IN (SELECT id FROM ft)
                    UNION ALL
                    SELECT 'step', s.state_name, COALESCE(s.error, ''), s.task_id,
                           COALESCE(s.ended_at, s.started_at)
                    FROM ft JOIN steps s ON s.task_id = ft.id WHERE s.outcome = 'failed'
                    UNION ALL
                    SELECT 'check', s.state_name,
                           COALESCE(json_extract(e.body, '$.output.message'), ''), s.task_id, e.at
                    FROM steps s JOIN task_events e ON e.task_id = s.task_id
                        AND e.kind IN ('step_succeeded', 'postconditions_checked')
                        AND json_extract(e.body, '$.step_no') = s.step_no
                    WHERE s.kind = 'check' AND s.task_id IN (SELECT id FROM ft)
                      AND json_extract(e.body, '$.output.passed') = 0)
                 SELECT kind, place, error, COUNT(*) AS n, COUNT(DISTINCT task_id), MAX(at) AS last_at,
                        MAX(task_id)
                 FROM f GROUP BY kind, place, error ORDER BY n DESC, last_at DESC, kind, place LIMIT ?",
                vec![Arg::Int(limit)],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(FailureMode {
                    kind: text(row, 0)?,
                    place: text(row, 1)?,
                    error: text(row, 2)?,
                    count: int(row, 3)?,
                    tasks: int(row, 4)?,
                    last_at: int(row, 5)?,
                    example_task: text(row, 6)?,
                })
            })
            .collect()
    }

    /// Approvals of `filter`'s tasks granted with edited arguments, newest first.
    pub async fn overrides(
        &self,
        filter: &MetricsFilter,
        limit: i64,
    ) -> Result<Vec<OverrideRecord>, StoreError> {
        let rows = self
            .metric_rows(
                "reading overrides",
                filter,
                "SELECT a.id, a.task_id, ft.w, a.state_name, a.held_call, a.edited_args,
                        a.decided_by, a.decided_at, a.reason
                 FROM ft JOIN approvals a ON a.task_id = ft.id
                 WHERE a.status = 'approved' AND a.edited_args IS NOT NULL
                 ORDER BY a.decided_at DESC, a.id LIMIT ?",
                vec![Arg::Int(limit)],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let json = |i: usize, what: &'static str| -> Result<Option<Value>, StoreError> {
                    row.try_get::<Option<String>, _>(i)
                        .ctx(what)?
                        .map(|s| crate::records::parse_json(what, &s))
                        .transpose()
                };
                let held = json(4, "held call")?;
                let field = |name: &str| held.as_ref().and_then(|h| h.get(name)).cloned();
                Ok(OverrideRecord {
                    approval_id: text(row, 0)?,
                    task_id: text(row, 1)?,
                    workflow: text(row, 2)?,
                    state_name: text(row, 3)?,
                    tool: field("tool").and_then(|v| v.as_str().map(str::to_owned)),
                    rule: field("rule").and_then(|v| v.as_str().map(str::to_owned)),
                    proposed_args: field("args"),
                    edited_args: json(5, "edited arguments")?.unwrap_or(Value::Null),
                    by: row.try_get(6).ctx("override by")?,
                    at: int(row, 7)?,
                    reason: row.try_get(8).ctx("override reason")?,
                })
            })
            .collect()
    }

    /// `filter`'s tasks that count as exceptions, newest first, with their reasons.
    pub async fn exceptions(
        &self,
        filter: &MetricsFilter,
        limit: i64,
    ) -> Result<Vec<ExceptionRecord>, StoreError> {
        let rows = self
            .metric_rows(
                "reading exceptions",
                filter,
                &format!(
                    "{CHECKS}, {EXCEPTION_FLAGS}
                     SELECT id, w, status, created_at, updated_at, error,
                       status = 'failed', doubted, quarantined, check_failed
                     FROM flags ORDER BY created_at DESC, id LIMIT ?"
                ),
                vec![Arg::Int(limit)],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let reasons = ["failed", "in_doubt", "quarantined", "check_failed"]
                    .iter()
                    .enumerate()
                    .filter_map(|(i, name)| match int(row, 6 + i) {
                        Ok(0) => None,
                        Ok(_) => Some(Ok((*name).to_owned())),
                        Err(e) => Some(Err(e)),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(ExceptionRecord {
                    task_id: text(row, 0)?,
                    workflow: text(row, 1)?,
                    status: parse_status(&text(row, 2)?)?,
                    created_at: int(row, 3)?,
                    updated_at: int(row, 4)?,
                    error: row.try_get(5).ctx("exception error")?,
                    reasons,
                })
            })
            .collect()
    }

    /// Every decided approval of a call a policy rule held (of one workflow's tasks, if
    /// given), decided before `until`, in order of decision per rule. Not limited to a
    /// period's tasks: a run of decisions may begin before the period.
    pub async fn held_call_decisions(
        &self,
        workflow: Option<&str>,
        until: Option<Millis>,
    ) -> Result<Vec<HeldCallDecision>, StoreError> {
        let rows = sqlx::query(
            "SELECT json_extract(a.held_call, '$.rule') AS rule,
                    json_extract(a.held_call, '$.tool') AS tool,
                    t.workflow_name, a.id, a.status, a.edited_args IS NOT NULL, a.decided_at
             FROM approvals a JOIN tasks t ON t.id = a.task_id
             WHERE a.held_call IS NOT NULL AND a.status NOT IN ('pending', 'withdrawn')
               AND json_extract(a.held_call, '$.rule') IS NOT NULL
               AND (? IS NULL OR t.workflow_name = ?)
               AND (? IS NULL OR a.decided_at < ?)
             ORDER BY rule, a.decided_at, a.id",
        )
        .bind(workflow)
        .bind(workflow)
        .bind(until)
        .bind(until)
        .fetch_all(&self.inner.reads)
        .await
        .ctx("reading decisions of held calls")?;
        rows.iter()
            .map(|row| {
                Ok(HeldCallDecision {
                    rule: text(row, 0)?,
                    tool: row.try_get(1).ctx("held call tool")?,
                    workflow: text(row, 2)?,
                    approval_id: text(row, 3)?,
                    status: text(row, 4)?,
                    edited: int(row, 5)? != 0,
                    decided_at: int(row, 6)?,
                })
            })
            .collect()
    }
}
