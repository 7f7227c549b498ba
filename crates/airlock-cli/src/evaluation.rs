//! `airlock metrics`, `airlock rate` and `airlock review`: how the automations are doing.
//! Each calls one engine function; this file parses dates, prices model tokens (the
//! engine cannot know prices) and writes the figures for people: as text, or as the
//! review's Markdown, HTML and CSV files.

use std::fmt::Write as _;
use std::path::Path;

use airlock_claude::pricing;
use airlock_engine::evaluation::{BucketMetrics, LessonActivity, SuggestionKind, WorkflowMetrics};
use airlock_engine::history::csv_field;
use airlock_engine::store::{
    Bucket, LessonRecord, LessonSource, LessonStatus, MetricsFilter, Millis, Spread,
};
use airlock_engine::{Engine, MetricsReport, PricedFigures, Rating, Review};
use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::args::{BucketArg, Period};
use crate::exit::Exit;
use crate::print_json;
use crate::workflow_source::Invalid;

const DAY_MS: i64 = 86_400_000;
/// Failure modes, overrides and exceptions a review lists at most.
const REVIEW_LIMIT: i64 = 50;

/// `airlock metrics`.
pub async fn metrics(
    engine: &Engine,
    period: &Period,
    by: Option<BucketArg>,
    json: bool,
) -> Result<Exit> {
    let mut filter = filter(engine, period)?;
    filter.bucket = by.map(|b| match b {
        BucketArg::Day => Bucket::Day,
        BucketArg::Week => Bucket::Week,
    });
    let report = engine.metrics(&filter, Some(&pricing::cost_usd)).await?;
    if json {
        print_json(&report)?;
    } else {
        say!("{}", metrics_text(&report));
    }
    Ok(Exit::Ok)
}

/// `airlock rate`.
pub async fn rate(
    engine: &Engine,
    me: &str,
    task: &str,
    rating: i64,
    comment: Option<&str>,
    json: bool,
) -> Result<Exit> {
    let rating = Rating::new(rating).map_err(|e| Invalid(e.to_string()))?;
    let record = engine.rate_task(task, rating, comment, me).await?;
    if json {
        print_json(&record)?;
    } else {
        say!(
            "task {}: rated {} of 5 by {}{}",
            record.task_id,
            record.rating,
            record.rated_by,
            record
                .comment
                .as_deref()
                .map(|c| format!(" (\"{c}\")"))
                .unwrap_or_default()
        );
    }
    Ok(Exit::Ok)
}

/// `airlock review`: writes `review.md`, `review.html` and `metrics.csv` into `out`.
pub async fn review(engine: &Engine, period: &Period, out: &Path, json: bool) -> Result<Exit> {
    if period.since.is_none() {
        return Err(Invalid("a review needs the start of its period: --since DATE".into()).into());
    }
    let mut filter = filter(engine, period)?;
    filter.bucket = Some(Bucket::Day);
    let review = engine
        .review(&filter, Some(&pricing::cost_usd), REVIEW_LIMIT)
        .await?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let doc = review_document(&review);
    let files = [
        ("review.md", doc.markdown()),
        (
            "review.html",
            doc.html(&review_chart(&review.metrics.buckets)),
        ),
        ("metrics.csv", metrics_csv(&review.metrics, &review.lessons)),
    ];
    let mut written = Vec::new();
    for (name, text) in files {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    if json {
        print_json(&json!({ "files": written, "review": review }))?;
    } else {
        for path in &written {
            say!("wrote {}", path.display());
        }
        say!(
            "{} task(s), {} exception(s), {} override(s), {} lesson(s) proposed, {} suggested policy change(s)",
            review.metrics.total.figures.tasks,
            review.metrics.total.figures.exceptions.tasks,
            review.metrics.total.figures.approvals.edited,
            review.lessons.proposed.len(),
            review.suggestions.len()
        );
    }
    Ok(Exit::Ok)
}

fn filter(engine: &Engine, period: &Period) -> Result<MetricsFilter> {
    let now = engine.clock().now();
    Ok(MetricsFilter {
        workflow: period.workflow.clone(),
        since: period
            .since
            .as_deref()
            .map(|d| parse_date(d, now, false))
            .transpose()?,
        until: period
            .until
            .as_deref()
            .map(|d| parse_date(d, now, true))
            .transpose()?,
        ..MetricsFilter::default()
    })
}

/// `YYYY-MM-DD` (UTC midnight; the end of that day for `--until`, which includes it) or
/// `<n>d` / `<n>w` (that long before `now`).
pub(crate) fn parse_date(text: &str, now: Millis, until: bool) -> Result<Millis, Invalid> {
    let bad = || {
        Invalid(format!(
            "`{text}` is not a date: use YYYY-MM-DD (UTC), or a time ago such as 7d or 4w"
        ))
    };
    let t = text.trim();
    if let Some(n) = t.strip_suffix('d').and_then(|n| n.parse::<i64>().ok()) {
        return Ok(now - n * DAY_MS);
    }
    if let Some(n) = t.strip_suffix('w').and_then(|n| n.parse::<i64>().ok()) {
        return Ok(now - n * 7 * DAY_MS);
    }
    let mut parts = t.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (Some(Some(y)), Some(Some(m)), Some(Some(d))) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let days = days_from_civil(y, m, d);
    // Rejects 2026-02-30 and the like: the day must come back as written.
    if !(1..=12).contains(&m) || civil_from_days(days) != (y, m, d) {
        return Err(bad());
    }
    Ok((days + i64::from(until)) * DAY_MS)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// `YYYY-MM-DD` (UTC).
fn date(ms: Millis) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM UTC`.
fn date_time(ms: Millis) -> String {
    let minutes = ms.rem_euclid(DAY_MS) / 60_000;
    format!("{} {:02}:{:02} UTC", date(ms), minutes / 60, minutes % 60)
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "–".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

/// A duration for people: `850 ms`, `12.3 s`, `4 min 10 s`, `2 h 5 min`, `3 d 4 h`.
fn duration(ms: i64) -> String {
    let s = ms / 1000;
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{} min {} s", s / 60, s % 60)
    } else if ms < DAY_MS {
        format!("{} h {} min", s / 3600, (s / 60) % 60)
    } else {
        format!("{} d {} h", s / 86_400, (s / 3600) % 24)
    }
}

fn spread(s: &Spread) -> String {
    match (s.p50_ms, s.p90_ms) {
        (Some(p50), Some(p90)) => format!(
            "median {}, p90 {} (of {})",
            duration(p50),
            duration(p90),
            s.count
        ),
        _ => "–".to_owned(),
    }
}

fn tokens(n: i64) -> String {
    if n < 10_000 {
        n.to_string()
    } else if n < 10_000_000 {
        format!("{}k", n / 1000)
    } else {
        format!("{:.1}M", n as f64 / 1e6)
    }
}

fn usd(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("${v:.2}"))
}

/// The period a filter covers, in words.
fn period_words(f: &MetricsFilter) -> String {
    let range = match (f.since, f.until) {
        (None, None) => "all tasks".to_owned(),
        (Some(s), None) => format!("tasks created since {}", date_time(s)),
        (None, Some(u)) => format!("tasks created before {}", date_time(u)),
        (Some(s), Some(u)) => format!(
            "tasks created from {} to before {}",
            date_time(s),
            date_time(u)
        ),
    };
    match &f.workflow {
        Some(w) => format!("{range} of workflow `{w}`"),
        None => range,
    }
}

/// The full figures of one set of tasks, a line each.
fn figures_lines(p: &PricedFigures) -> Vec<(&'static str, String)> {
    let f = &p.figures;
    let ended = f.succeeded + f.failed + f.cancelled;
    let e = &f.exceptions;
    let a = &f.approvals;
    let mut lines = vec![
        (
            "completion",
            format!(
                "{} ({} of {} ended tasks succeeded; {} failed, {} cancelled, {} not ended)",
                percent(f.completion_rate),
                f.succeeded,
                ended,
                f.failed,
                f.cancelled,
                f.open
            ),
        ),
        (
            "exceptions",
            format!(
                "{} ({} task(s): {} failed, {} with a call in doubt, {} quarantined, {} failed an outcome check)",
                percent(e.rate),
                e.tasks,
                e.failed,
                e.in_doubt,
                e.quarantined,
                e.check_failed
            ),
        ),
        (
            "tool calls",
            format!(
                "{}, duplicate actions: {}",
                f.tool_calls, f.duplicate_actions
            ),
        ),
        (
            "approvals",
            format!(
                "{} requested: {} approved ({}), {} rejected ({}), {} expired, {} pending",
                a.requested,
                a.approved,
                percent(a.approval_rate),
                a.rejected,
                percent(a.rejection_rate),
                a.expired,
                a.pending
            ),
        ),
        (
            "overrides",
            format!(
                "{} approved with changed arguments ({} of approvals)",
                a.edited,
                percent(a.override_rate)
            ),
        ),
        ("time to decision", spread(&a.time_to_decision)),
        (
            "outcome checks",
            format!(
                "{} ({} of {} passed)",
                percent(f.checks.pass_rate),
                f.checks.passed,
                f.checks.runs
            ),
        ),
        (
            "corrections",
            format!(
                "{} ({} edit(s), {} in-doubt resolution(s), {} rejection(s))",
                f.corrections.total,
                f.corrections.edits,
                f.corrections.in_doubt_resolutions,
                f.corrections.rejections
            ),
        ),
        (
            "satisfaction",
            match f.satisfaction.mean {
                Some(mean) => format!(
                    "{mean:.1} of 5 from {} rating(s) ({} low)",
                    f.satisfaction.ratings, f.satisfaction.low
                ),
                None => "no ratings".to_owned(),
            },
        ),
    ];
    for (t, c) in f.tokens.iter().zip(
        p.cost
            .by_model
            .iter()
            .map(|m| m.usd)
            .chain(std::iter::repeat(None)),
    ) {
        lines.push((
            "model",
            format!(
                "{}: {} turn(s), {} in, {} out, {} cache write, {} cache read tokens, {}",
                t.model,
                t.turns,
                tokens(t.input_tokens),
                tokens(t.output_tokens),
                tokens(t.cache_creation_input_tokens),
                tokens(t.cache_read_input_tokens),
                if c.is_some() {
                    usd(c)
                } else {
                    "price unknown".to_owned()
                }
            ),
        ));
    }
    lines.push(("cost", cost_words(p)));
    lines.push(("wall time", spread(&f.wall_time)));
    lines
}

fn cost_words(p: &PricedFigures) -> String {
    let mut s = usd(p.cost.usd);
    if !p.cost.unpriced_models.is_empty() {
        let _ = write!(
            s,
            " (without {}: price unknown)",
            p.cost.unpriced_models.join(", ")
        );
    }
    s
}

/// One line of a workflow's or a bucket's figures.
fn figures_row(label: &str, p: &PricedFigures) -> String {
    let f = &p.figures;
    format!(
        "{label:<20} tasks {:>5}  completion {:>6}  exceptions {:>6}  duplicates {}  approvals {:>6}  overrides {:>6}  checks {:>6}  satisfaction {}  cost {}  wall p50 {}",
        f.tasks,
        percent(f.completion_rate),
        percent(f.exceptions.rate),
        f.duplicate_actions,
        percent(f.approvals.approval_rate),
        percent(f.approvals.override_rate),
        percent(f.checks.pass_rate),
        f.satisfaction
            .mean
            .map_or_else(|| "–".to_owned(), |m| format!("{m:.1}")),
        usd(p.cost.usd),
        f.wall_time.p50_ms.map_or_else(|| "–".to_owned(), duration),
    )
}

fn metrics_text(r: &MetricsReport) -> String {
    let mut out = format!(
        "{}: {} task(s)\n",
        period_words(&r.filter),
        r.total.figures.tasks
    );
    for (name, value) in figures_lines(&r.total) {
        let _ = writeln!(out, "  {name:<17} {value}");
    }
    if r.workflows.len() > 1 {
        out.push_str("\nper workflow:\n");
        for w in &r.workflows {
            let _ = writeln!(out, "  {}", figures_row(&w.workflow, &w.figures));
        }
    }
    if !r.buckets.is_empty() {
        let unit = match r.filter.bucket {
            Some(Bucket::Week) => "per week (from Monday)",
            _ => "per day",
        };
        let _ = writeln!(out, "\n{unit}:");
        for b in &r.buckets {
            let _ = writeln!(out, "  {}", figures_row(&date(b.start), &b.figures));
        }
    }
    out.trim_end().to_owned()
}

const CSV_COLUMNS: &[&str] = &[
    "scope",
    "key",
    "tasks",
    "succeeded",
    "failed",
    "cancelled",
    "open",
    "completion_rate",
    "exceptions",
    "exception_rate",
    "tool_calls",
    "duplicate_actions",
    "approvals_requested",
    "approved",
    "rejected",
    "expired",
    "pending",
    "overrides",
    "approval_rate",
    "rejection_rate",
    "override_rate",
    "decision_p50_ms",
    "decision_p90_ms",
    "checks",
    "checks_passed",
    "check_pass_rate",
    "corrections",
    "ratings",
    "satisfaction_mean",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "wall_p50_ms",
    "wall_p90_ms",
    "lessons_proposed",
    "lessons_accepted",
    "lessons_dismissed",
];

/// Lessons proposed, accepted and dismissed, as counted on one CSV row.
#[derive(Clone, Copy, Default)]
struct LessonCounts([usize; 3]);

impl LessonCounts {
    /// The lessons of `l` that `belongs` says are this row's: a proposal by its lesson
    /// and time of proposal, a review by its lesson and time of review.
    fn of(l: &LessonActivity, belongs: impl Fn(&LessonRecord, Millis) -> bool) -> LessonCounts {
        let reviewed_at = |lesson: &LessonRecord| match &lesson.status {
            LessonStatus::Accepted { at, .. } | LessonStatus::Dismissed { at, .. } => *at,
            LessonStatus::Proposed => lesson.created_at,
        };
        LessonCounts([
            l.proposed
                .iter()
                .filter(|x| belongs(x, x.created_at))
                .count(),
            l.accepted
                .iter()
                .filter(|x| belongs(x, reviewed_at(x)))
                .count(),
            l.dismissed
                .iter()
                .filter(|x| belongs(x, reviewed_at(x)))
                .count(),
        ])
    }
}

fn csv_row(scope: &str, key: &str, p: &PricedFigures, lessons: LessonCounts) -> String {
    let f = &p.figures;
    let a = &f.approvals;
    let rate = |r: Option<f64>| r.map_or_else(String::new, |r| format!("{r:.4}"));
    let opt = |v: Option<i64>| v.map_or_else(String::new, |v| v.to_string());
    let sum = |get: fn(&airlock_engine::store::ModelTokens) -> i64| {
        f.tokens.iter().map(get).sum::<i64>().to_string()
    };
    let fields = [
        csv_field(scope).into_owned(),
        csv_field(key).into_owned(),
        f.tasks.to_string(),
        f.succeeded.to_string(),
        f.failed.to_string(),
        f.cancelled.to_string(),
        f.open.to_string(),
        rate(f.completion_rate),
        f.exceptions.tasks.to_string(),
        rate(f.exceptions.rate),
        f.tool_calls.to_string(),
        f.duplicate_actions.to_string(),
        a.requested.to_string(),
        a.approved.to_string(),
        a.rejected.to_string(),
        a.expired.to_string(),
        a.pending.to_string(),
        a.edited.to_string(),
        rate(a.approval_rate),
        rate(a.rejection_rate),
        rate(a.override_rate),
        opt(a.time_to_decision.p50_ms),
        opt(a.time_to_decision.p90_ms),
        f.checks.runs.to_string(),
        f.checks.passed.to_string(),
        rate(f.checks.pass_rate),
        f.corrections.total.to_string(),
        f.satisfaction.ratings.to_string(),
        f.satisfaction
            .mean
            .map_or_else(String::new, |m| format!("{m:.2}")),
        sum(|t| t.input_tokens),
        sum(|t| t.output_tokens),
        p.cost.usd.map_or_else(String::new, |c| format!("{c:.4}")),
        opt(f.wall_time.p50_ms),
        opt(f.wall_time.p90_ms),
        lessons.0[0].to_string(),
        lessons.0[1].to_string(),
        lessons.0[2].to_string(),
    ];
    fields.join(",")
}

/// The figures as CSV: one row for all tasks, one per workflow, one per bucket; the lesson
/// columns count the period's lessons by their workflow and the day (or week) of what
/// happened to them.
fn metrics_csv(r: &MetricsReport, lessons: &LessonActivity) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push('\n');
    let all = LessonCounts::of(lessons, |_, _| true);
    out.push_str(&csv_row("total", "", &r.total, all));
    out.push('\n');
    for WorkflowMetrics { workflow, figures } in &r.workflows {
        let counts = LessonCounts::of(lessons, |l, _| &l.workflow == workflow);
        out.push_str(&csv_row("workflow", workflow, figures, counts));
        out.push('\n');
    }
    let (scope, length) = match r.filter.bucket {
        Some(Bucket::Week) => ("week", Bucket::Week.millis()),
        _ => ("day", Bucket::Day.millis()),
    };
    for BucketMetrics { start, figures } in &r.buckets {
        let counts = LessonCounts::of(lessons, |_, at| (*start..start + length).contains(&at));
        out.push_str(&csv_row(scope, &date(*start), figures, counts));
        out.push('\n');
    }
    out
}

/// A piece of running text.
enum Span {
    Text(String),
    Code(String),
    Strong(String),
}

fn t(s: impl Into<String>) -> Span {
    Span::Text(s.into())
}

fn code(s: impl Into<String>) -> Span {
    Span::Code(s.into())
}

/// The review as a small document, written out as Markdown or HTML.
enum Block {
    Heading(u8, String),
    Para(Vec<Span>),
    List(Vec<Vec<Span>>),
    Table {
        head: Vec<String>,
        rows: Vec<Vec<String>>,
    },
}

struct Document {
    title: String,
    blocks: Vec<Block>,
}

fn md_code(s: &str) -> String {
    // A fence one backtick longer than any run inside, so the text cannot close it.
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{}{pad}{fence}", s.replace('\n', " "))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

impl Document {
    fn spans_md(spans: &[Span]) -> String {
        spans
            .iter()
            .map(|s| match s {
                Span::Text(t) => t.replace('\n', " "),
                Span::Code(c) => md_code(c),
                Span::Strong(t) => format!("**{}**", t.replace('\n', " ")),
            })
            .collect()
    }

    fn spans_html(spans: &[Span]) -> String {
        spans
            .iter()
            .map(|s| match s {
                Span::Text(t) => html_escape(t),
                Span::Code(c) => format!("<code>{}</code>", html_escape(c)),
                Span::Strong(t) => format!("<strong>{}</strong>", html_escape(t)),
            })
            .collect()
    }

    fn markdown(&self) -> String {
        let mut out = format!("# {}\n", self.title);
        let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        for block in &self.blocks {
            out.push('\n');
            match block {
                Block::Heading(level, text) => {
                    let _ = writeln!(out, "{} {text}", "#".repeat(usize::from(*level)));
                }
                Block::Para(spans) => {
                    let _ = writeln!(out, "{}", Self::spans_md(spans));
                }
                Block::List(items) => {
                    for item in items {
                        let _ = writeln!(out, "- {}", Self::spans_md(item));
                    }
                }
                Block::Table { head, rows } => {
                    let line = |cells: &[String]| {
                        format!(
                            "| {} |",
                            cells
                                .iter()
                                .map(|c| cell(c))
                                .collect::<Vec<_>>()
                                .join(" | ")
                        )
                    };
                    let _ = writeln!(out, "{}", line(head));
                    let _ = writeln!(
                        out,
                        "|{}",
                        head.iter().map(|_| " --- |").collect::<String>()
                    );
                    for row in rows {
                        let _ = writeln!(out, "{}", line(row));
                    }
                }
            }
        }
        out
    }

    /// A self-contained page: inline style, inline SVG, nothing fetched from elsewhere.
    fn html(&self, chart: &str) -> String {
        let mut body = format!("<h1>{}</h1>\n", html_escape(&self.title));
        for block in &self.blocks {
            match block {
                Block::Heading(level, text) => {
                    let _ = writeln!(body, "<h{level}>{}</h{level}>", html_escape(text));
                    if text == "Figures" && !chart.is_empty() {
                        body.push_str(chart);
                    }
                }
                Block::Para(spans) => {
                    let _ = writeln!(body, "<p>{}</p>", Self::spans_html(spans));
                }
                Block::List(items) => {
                    body.push_str("<ul>\n");
                    for item in items {
                        let _ = writeln!(body, "<li>{}</li>", Self::spans_html(item));
                    }
                    body.push_str("</ul>\n");
                }
                Block::Table { head, rows } => {
                    body.push_str("<table>\n<thead><tr>");
                    for h in head {
                        let _ = write!(body, "<th>{}</th>", html_escape(h));
                    }
                    body.push_str("</tr></thead>\n<tbody>\n");
                    for row in rows {
                        body.push_str("<tr>");
                        for c in row {
                            let _ = write!(body, "<td>{}</td>", html_escape(c));
                        }
                        body.push_str("</tr>\n");
                    }
                    body.push_str("</tbody>\n</table>\n");
                }
            }
        }
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
            html_escape(&self.title)
        )
    }
}

const STYLE: &str = "body { font: 15px/1.5 system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #1d2228; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #d8dde3; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #d8dde3; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f2f4f7; }
code { background: #f2f4f7; padding: 0 0.2rem; border-radius: 3px; }
svg { display: block; margin: 0.5rem 0 1rem; }
";

/// Tasks per day as bars, the exceptions among them darker: inline SVG, no script.
fn review_chart(days: &[BucketMetrics]) -> String {
    if days.len() < 2 {
        return String::new();
    }
    let max = days
        .iter()
        .map(|d| d.figures.figures.tasks)
        .max()
        .unwrap_or(1)
        .max(1);
    let (bar, gap, height) = (18_i64, 6_i64, 120_i64);
    let width = i64::try_from(days.len()).unwrap_or(0) * (bar + gap) + gap;
    let mut svg = format!(
        "<svg width=\"{width}\" height=\"{}\" role=\"img\" aria-label=\"tasks per day, exceptions darker\">\n",
        height + 20
    );
    for (i, d) in days.iter().enumerate() {
        let f = &d.figures.figures;
        let x = gap + i64::try_from(i).unwrap_or(0) * (bar + gap);
        let h = f.tasks * height / max;
        let he = f.exceptions.tasks * height / max;
        let _ = writeln!(
            svg,
            "<rect x=\"{x}\" y=\"{}\" width=\"{bar}\" height=\"{h}\" fill=\"#9bb7d4\"><title>{}: {} task(s), {} exception(s)</title></rect>\
             <rect x=\"{x}\" y=\"{}\" width=\"{bar}\" height=\"{he}\" fill=\"#c0392b\"/>",
            height - h,
            date(d.start),
            f.tasks,
            f.exceptions.tasks,
            height - he
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{gap}\" y=\"{}\" font-size=\"11\">{} – {}</text>\n</svg>",
        height + 15,
        days.first().map_or_else(String::new, |d| date(d.start)),
        days.last().map_or_else(String::new, |d| date(d.start))
    );
    svg
}

/// What an approver changed, key by key: `amount: 20000 → 9000`.
fn changes(before: Option<&Value>, after: &Value) -> String {
    let (Some(Value::Object(b)), Value::Object(a)) = (before, after) else {
        return format!("now {after}");
    };
    let mut out = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            Some(old) if old == v => {}
            Some(old) => out.push(format!("{k}: {old} → {v}")),
            None => out.push(format!("{k}: added {v}")),
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        out.push(format!("{k}: removed"));
    }
    if out.is_empty() {
        "nothing".to_owned()
    } else {
        out.join(", ")
    }
}

const SHORT_COLUMNS: [&str; 11] = [
    "tasks",
    "completion",
    "exceptions",
    "duplicates",
    "approved",
    "overrides",
    "checks passed",
    "corrections",
    "satisfaction",
    "cost",
    "wall time (median)",
];

/// One set of figures in a table row: `label` then [`SHORT_COLUMNS`].
fn short_cells(label: &str, p: &PricedFigures) -> Vec<String> {
    let f = &p.figures;
    vec![
        label.to_owned(),
        f.tasks.to_string(),
        percent(f.completion_rate),
        format!("{} ({})", f.exceptions.tasks, percent(f.exceptions.rate)),
        f.duplicate_actions.to_string(),
        format!(
            "{} of {} ({})",
            f.approvals.approved,
            f.approvals.requested,
            percent(f.approvals.approval_rate)
        ),
        format!(
            "{} ({})",
            f.approvals.edited,
            percent(f.approvals.override_rate)
        ),
        percent(f.checks.pass_rate),
        f.corrections.total.to_string(),
        f.satisfaction
            .mean
            .map_or_else(|| "–".to_owned(), |m| format!("{m:.1}")),
        usd(p.cost.usd),
        f.wall_time.p50_ms.map_or_else(|| "–".to_owned(), duration),
    ]
}

fn review_document(r: &Review) -> Document {
    let f = &r.metrics.filter;
    let title = match (f.since, f.until) {
        (Some(s), Some(u)) => format!("Airlock review, {} to {}", date(s), date(u - 1)),
        (Some(s), None) => format!("Airlock review, since {}", date(s)),
        _ => "Airlock review".to_owned(),
    };
    let mut blocks = vec![Block::Para(vec![t(format!(
        "{} — {} task(s). Generated {}. Figures count the tasks created in the period (times in UTC); \
         the suggestions at the end are for a person to apply: Airlock changes no policy by itself.",
        period_words(f),
        r.metrics.total.figures.tasks,
        date_time(r.generated_at)
    ))])];

    blocks.push(Block::Heading(2, "Figures".into()));
    blocks.push(Block::List(
        figures_lines(&r.metrics.total)
            .into_iter()
            .map(|(name, value)| vec![Span::Strong(name.to_owned()), t(format!(": {value}"))])
            .collect(),
    ));
    let head = |first: &str| {
        let mut head = vec![first.to_owned()];
        head.extend(SHORT_COLUMNS.iter().map(|c| (*c).to_owned()));
        head
    };
    if r.metrics.workflows.len() > 1 {
        blocks.push(Block::Heading(3, "Per workflow".into()));
        blocks.push(Block::Table {
            head: head("workflow"),
            rows: r
                .metrics
                .workflows
                .iter()
                .map(|w| short_cells(&w.workflow, &w.figures))
                .collect(),
        });
    }
    if r.metrics.buckets.len() > 1 {
        blocks.push(Block::Heading(3, "Per day".into()));
        blocks.push(Block::Table {
            head: head("day"),
            rows: r
                .metrics
                .buckets
                .iter()
                .map(|b| short_cells(&date(b.start), &b.figures))
                .collect(),
        });
    }

    blocks.push(Block::Heading(2, "Failure modes".into()));
    if r.failure_modes.is_empty() {
        blocks.push(Block::Para(vec![t(
            "None: no call failed, no step gave up and every outcome check passed.",
        )]));
    } else {
        blocks.push(Block::Para(vec![t(
            "The most common errors, most frequent first.",
        )]));
        blocks.push(Block::List(
            r.failure_modes
                .iter()
                .map(|m| {
                    let what = match m.kind.as_str() {
                        "tool_call" => "calls of",
                        "check" => "outcome check",
                        _ => "step",
                    };
                    vec![
                        t(format!("{what} ")),
                        code(m.place.clone()),
                        t(": "),
                        code(if m.error.is_empty() {
                            "(no message)".to_owned()
                        } else {
                            m.error.clone()
                        }),
                        t(format!(
                            " — {} time(s) in {} task(s), last {} (e.g. task {})",
                            m.count,
                            m.tasks,
                            date_time(m.last_at),
                            short(&m.example_task)
                        )),
                    ]
                })
                .collect(),
        ));
    }

    blocks.push(Block::Heading(2, "Overrides".into()));
    if r.overrides.is_empty() {
        blocks.push(Block::Para(vec![t(
            "None: no approval changed a call's arguments.",
        )]));
    } else {
        blocks.push(Block::List(
            r.overrides
                .iter()
                .map(|o| {
                    let mut item = vec![t(format!(
                        "{} {} approved ",
                        date_time(o.at),
                        o.by.as_deref().unwrap_or("someone")
                    ))];
                    if let Some(tool) = &o.tool {
                        item.push(code(tool.clone()));
                        item.push(t(" "));
                    }
                    item.push(t(format!("in task {} ({})", short(&o.task_id), o.workflow)));
                    if let Some(rule) = &o.rule {
                        item.push(t(format!(", held by rule \"{rule}\"")));
                    }
                    item.push(t(", with changed arguments: "));
                    item.push(code(changes(o.proposed_args.as_ref(), &o.edited_args)));
                    if let Some(reason) = &o.reason {
                        item.push(t(format!(". Reason: \"{reason}\"")));
                    }
                    item.push(t("."));
                    item
                })
                .collect(),
        ));
    }

    blocks.push(Block::Heading(2, "Exceptions".into()));
    if r.exceptions.is_empty() {
        blocks.push(Block::Para(vec![t(
            "None: no task failed, had a call in doubt, was quarantined or failed an outcome check.",
        )]));
    } else {
        blocks.push(Block::List(
            r.exceptions
                .iter()
                .map(|e| {
                    let mut item = vec![
                        t("task "),
                        code(short(&e.task_id).to_owned()),
                        t(format!(
                            " ({}, {}, created {}): {}",
                            e.workflow,
                            e.status,
                            date_time(e.created_at),
                            e.reasons
                                .iter()
                                .map(|r| r.replace('_', " "))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                    ];
                    if let Some(error) = &e.error {
                        item.push(t(" — "));
                        item.push(code(error.clone()));
                    }
                    item
                })
                .collect(),
        ));
    }

    lessons_section(&mut blocks, &r.lessons);

    blocks.push(Block::Heading(2, "Suggested policy changes".into()));
    if r.suggestions.is_empty() {
        blocks.push(Block::Para(vec![t(format!(
            "None: no rule's held calls were approved unchanged {} times in a row, and no rule's approvals were often edited.",
            airlock_engine::evaluation::RELAX_AFTER
        ))]));
    } else {
        blocks.push(Block::Para(vec![t(
            "For a person to consider and, if they agree, apply by editing the policy file.",
        )]));
        blocks.push(Block::List(
            r.suggestions
                .iter()
                .map(|s| {
                    vec![
                        Span::Strong(
                            match s.kind {
                                SuggestionKind::Relax => "Relax",
                                SuggestionKind::Tighten => "Tighten",
                            }
                            .to_owned(),
                        ),
                        t(format!(": {}", s.text)),
                    ]
                })
                .collect(),
        ));
    }
    Document { title, blocks }
}

/// Where a lesson came from, in words.
fn lesson_origin(lesson: &LessonRecord) -> String {
    let what = match lesson.source {
        LessonSource::Rejection => "a rejection with a reason",
        LessonSource::Edit => "an approver's edit",
        LessonSource::FailedCheck => "a failed outcome check",
        LessonSource::LowRating => "a low rating",
        LessonSource::Policy => "a policy exception",
    };
    match &lesson.task_id {
        Some(task) => format!("{what} in task {} ({})", short(task), lesson.workflow),
        None => format!("{what} ({})", lesson.workflow),
    }
}

/// The lessons proposed, accepted and dismissed in the period, each with its origin.
fn lessons_section(blocks: &mut Vec<Block>, l: &LessonActivity) {
    blocks.push(Block::Heading(2, "Lessons".into()));
    if l.proposed.is_empty() && l.accepted.is_empty() && l.dismissed.is_empty() {
        blocks.push(Block::Para(vec![t(
            "None: no lesson was proposed, accepted or dismissed in this period.",
        )]));
        return;
    }
    blocks.push(Block::Para(vec![t(format!(
        "{} proposed, {} accepted and {} dismissed in the period (by when that happened, \
         whichever tasks they came from). Accepted lessons go into their workflow's agent \
         requests; proposed ones wait for a person: `airlock lessons list --status proposed`.",
        l.proposed.len(),
        l.accepted.len(),
        l.dismissed.len()
    ))]));
    let quoted = |lesson: &LessonRecord| t(format!(": “{}”", lesson.text));
    if !l.proposed.is_empty() {
        blocks.push(Block::Heading(3, "Proposed".into()));
        blocks.push(Block::List(
            l.proposed
                .iter()
                .map(|lesson| {
                    let now = match &lesson.status {
                        LessonStatus::Proposed => "waiting for review".to_owned(),
                        LessonStatus::Accepted { by, .. } => format!("since accepted by {by}"),
                        LessonStatus::Dismissed { by, .. } => format!("since dismissed by {by}"),
                    };
                    vec![
                        t(format!(
                            "{} from {} ({now}) ",
                            date_time(lesson.created_at),
                            lesson_origin(lesson)
                        )),
                        code(lesson.id.clone()),
                        quoted(lesson),
                    ]
                })
                .collect(),
        ));
    }
    for (title, list, verb) in [
        ("Accepted", &l.accepted, "accepted"),
        ("Dismissed", &l.dismissed, "dismissed"),
    ] {
        if list.is_empty() {
            continue;
        }
        blocks.push(Block::Heading(3, title.into()));
        blocks.push(Block::List(
            list.iter()
                .map(|lesson| {
                    let (by, at) = match &lesson.status {
                        LessonStatus::Accepted { by, at } | LessonStatus::Dismissed { by, at } => {
                            (by.as_str(), *at)
                        }
                        LessonStatus::Proposed => ("someone", lesson.created_at),
                    };
                    vec![
                        t(format!(
                            "{} {verb} by {by}, from {} ",
                            date_time(at),
                            lesson_origin(lesson)
                        )),
                        code(lesson.id.clone()),
                        quoted(lesson),
                    ]
                })
                .collect(),
        ));
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_days_and_until_includes_its_day() {
        let now = 1_795_777_200_000;
        assert_eq!(
            parse_date("2026-11-23", now, false).ok(),
            Some(1_795_392_000_000)
        );
        assert_eq!(
            parse_date("2026-11-23", now, true).ok(),
            Some(1_795_392_000_000 + DAY_MS)
        );
        assert_eq!(parse_date("7d", now, false).ok(), Some(now - 7 * DAY_MS));
        assert_eq!(parse_date("2w", now, false).ok(), Some(now - 14 * DAY_MS));
        assert_eq!(parse_date("1970-01-01", now, false).ok(), Some(0));
        assert_eq!(
            parse_date("2000-02-29", now, false).ok(),
            Some(951_782_400_000)
        );
        for bad in ["2026-02-30", "2026-13-01", "yesterday", "2026-11", ""] {
            assert!(parse_date(bad, now, false).is_err(), "{bad}");
        }
        assert_eq!(date(1_795_392_000_000), "2026-11-23");
        assert_eq!(date_time(1_795_777_200_000), "2026-11-27 11:00 UTC");
    }

    #[test]
    fn durations_and_changes_read_naturally() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_345), "12.3 s");
        assert_eq!(duration(250_000), "4 min 10 s");
        assert_eq!(duration(7_500_000), "2 h 5 min");
        assert_eq!(duration(3 * DAY_MS + 4 * 3_600_000), "3 d 4 h");
        let before = json!({"amount": 20000, "payee": "Ada", "note": "x"});
        let after = json!({"amount": 9000, "payee": "Ada", "memo": "y"});
        assert_eq!(
            changes(Some(&before), &after),
            "amount: 20000 → 9000, memo: added \"y\", note: removed"
        );
    }

    #[test]
    fn markdown_code_and_tables_cannot_be_broken_by_their_text() {
        assert_eq!(md_code("a`b"), "``a`b``");
        assert_eq!(md_code("`x"), "`` `x ``");
        let doc = Document {
            title: "T".into(),
            blocks: vec![Block::Table {
                head: vec!["a|b".into()],
                rows: vec![vec!["1|2".into()]],
            }],
        };
        assert!(doc.markdown().contains("| 1\\|2 |"), "{}", doc.markdown());
        assert!(doc.html("").contains("<td>1|2</td>"));
        assert_eq!(
            html_escape("<a href='x'>&"),
            "&lt;a href=&#39;x&#39;&gt;&amp;"
        );
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}
