//! The `#[tauri::command]` adapters the UI invokes.
//!
//! Each command is an adapter and nothing more: take the IPC arguments, call the engine
//! (or [`crate::locations`]), and map the result into [`crate::wire`] types, with errors as
//! [`CommandError`]. No SQL, prompts, HTTP or retries live here. A new command is also
//! added to `generate_handler!` in [`crate::run_app`], to the command list in `build.rs`,
//! and to the window's capability in `capabilities/main.json`.

use airlock_engine::policy::Policy;
use airlock_engine::store::{
    ApprovalRecord, Bucket, Figures, MemoryQuery, MetricsFilter, TaskFilter, TaskRecord,
    TaskStatus as StoreTaskStatus, ToolCallOutcome,
};
use airlock_engine::{Answered, Engine, EngineError, Rating, os_user};
use serde_json::{Map, Value};
use tauri::State;

pub mod history;

use crate::state::{Airlock, Desktop};
use crate::wire::{
    AnswerReply, AnswerRequest, AppInfo, ApprovalRow, BucketFigureSet, CancelReply, CommandError,
    ErrorCode, FigureSet, GrantRequest, GrantRow, InDoubtCall, Inbox, LessonRow, MemoryEntry,
    MemoryFilter, MetricsBucket, MetricsView, Person, PolicyView, RatingView, RuleView, ServerList,
    ServerRow, StartedTask, TaskDetail, TaskRow, TaskStatus, WorkflowFigureSet, WorkflowList,
    WorkflowProblem, sentence,
};

/// The most tasks one `list_tasks` returns (newest first).
const TASK_PAGE: i64 = 500;
/// The most in-doubt calls the inbox lists.
const IN_DOUBT_PAGE: i64 = 200;

/// Which build is running and where its database and workspace are.
#[tauri::command]
#[tracing::instrument(skip_all)]
pub fn app_info(desktop: State<'_, Desktop>) -> Result<AppInfo, CommandError> {
    let locations = desktop.locations.as_ref().map_err(CommandError::from)?;
    let info = AppInfo::new(env!("CARGO_PKG_VERSION"), locations);
    tracing::debug!(database = %info.database_path, "answered app_info");
    Ok(info)
}

/// The workspace's workflows as they are on disk now, with the files' validation errors.
#[tauri::command]
#[tracing::instrument(skip_all)]
pub async fn list_workflows(desktop: State<'_, Desktop>) -> Result<WorkflowList, CommandError> {
    let airlock = desktop.airlock().await?;
    let (workflows, problems) = airlock.setup.workflows();
    Ok(WorkflowList::new(
        airlock.workspace().map(|p| p.as_path()),
        &workflows,
        &problems,
    ))
}

/// Starts a task of a workspace workflow as the OS user; the engine runs it in the background.
#[tauri::command]
#[tracing::instrument(skip(desktop, inputs))]
pub async fn start_task(
    desktop: State<'_, Desktop>,
    workflow: String,
    inputs: Map<String, Value>,
) -> Result<StartedTask, CommandError> {
    let airlock = desktop.airlock().await?;
    let (workflows, _) = airlock.setup.workflow_files();
    let Some((file, found)) = workflows.iter().find(|(_, w)| w.name == workflow) else {
        let place = airlock.workspace().map_or_else(
            || "no workspace is open (set AIRLOCK_WORKSPACE)".to_owned(),
            |w| format!("the workspace {} has none by that name", w.display()),
        );
        return Err(CommandError::new(
            ErrorCode::NotFound,
            format!("There is no workflow `{workflow}`: {place}."),
        ));
    };
    let origin = file.display().to_string();
    let task_id = airlock
        .opened
        .engine
        .start_task(found, inputs, &os_user(), Some(&origin))
        .await?;
    Ok(StartedTask { task_id })
}

/// Tasks, newest first, optionally only those with one status.
#[tauri::command]
#[tracing::instrument(skip(desktop))]
pub async fn list_tasks(
    desktop: State<'_, Desktop>,
    status: Option<TaskStatus>,
) -> Result<Vec<TaskRow>, CommandError> {
    let airlock = desktop.airlock().await?;
    let filter = TaskFilter {
        status: status.map(Into::into),
        workflow: None,
        limit: Some(TASK_PAGE),
    };
    let tasks = airlock.opened.engine.store().list_tasks(&filter).await?;
    Ok(tasks.iter().map(TaskRow::from).collect())
}

/// One task with its history, tool calls and approvals.
#[tauri::command]
#[tracing::instrument(skip(desktop))]
pub async fn task_detail(
    desktop: State<'_, Desktop>,
    id: String,
) -> Result<TaskDetail, CommandError> {
    let airlock = desktop.airlock().await?;
    let engine = &airlock.opened.engine;
    let task = engine.find_task(&id).await?;
    let store = engine.store();
    let events = store.events(&task.id).await?;
    let calls = store.tool_calls(&task.id).await?;
    let policy = engine.governance().policy.current();
    let mut approvals = Vec::new();
    for approval in store.task_approvals(&task.id).await? {
        approvals.push(approval_row(engine, &approval, &task, &policy).await?);
    }
    let ratings = store.ratings(&task.id).await?;
    Ok(TaskDetail::new(&task, &events, &calls, approvals, &ratings))
}

/// Rates an ended task as the OS user, as `airlock rate` does: 1 (poor) to 5 (excellent),
/// with an optional comment (a low rating that says why proposes a lesson).
#[tauri::command]
#[tracing::instrument(skip(desktop, comment))]
pub async fn rate_task(
    desktop: State<'_, Desktop>,
    id: String,
    rating: i64,
    comment: Option<String>,
) -> Result<RatingView, CommandError> {
    let rating = Rating::new(rating).map_err(|error| {
        CommandError::new(ErrorCode::InvalidInput, sentence(&error.to_string()))
    })?;
    let airlock = desktop.airlock().await?;
    let comment = comment
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    match airlock
        .opened
        .engine
        .rate_task(&id, rating, comment.as_deref(), &os_user())
        .await
    {
        Ok(record) => Ok(RatingView::from(&record)),
        Err(EngineError::WrongStatus { .. }) => Err(CommandError::new(
            ErrorCode::Conflict,
            "This task has not ended yet; it can be rated once it has.",
        )),
        Err(error) => Err(error.into()),
    }
}

/// One approval as the UI shows it, with the votes of a call that needs several.
async fn approval_row(
    engine: &Engine,
    approval: &ApprovalRecord,
    task: &TaskRecord,
    policy: &Policy,
) -> Result<ApprovalRow, CommandError> {
    let votes = match &approval.held_call {
        Some(held) if held.approvals > 1 => engine.store().approval_votes(&approval.id).await?,
        _ => Vec::new(),
    };
    Ok(ApprovalRow::new(approval, task, &votes, policy))
}

/// The identity this app acts as: the OS user, as in `airlock --as` by default.
fn acting_as(airlock: &Airlock) -> Person {
    Person::new(&os_user(), &airlock.opened.engine.governance().identities)
}

/// Approvals waiting for a decision, with their tasks' workflow and requester; calls in
/// doubt whose tasks wait for a person or were cancelled meanwhile; and who this app
/// decides as.
#[tauri::command]
#[tracing::instrument(skip_all)]
pub async fn list_approvals(desktop: State<'_, Desktop>) -> Result<Inbox, CommandError> {
    let airlock = desktop.airlock().await?;
    let engine = &airlock.opened.engine;
    let store = engine.store();
    let policy = engine.governance().policy.current();
    let mut approvals = Vec::new();
    for approval in store.pending_approvals().await? {
        // A task is never deleted, so a pending approval always has one.
        if let Some(task) = store.task(&approval.task_id).await? {
            approvals.push(approval_row(engine, &approval, &task, &policy).await?);
        }
    }
    let mut in_doubt = Vec::new();
    let calls = store
        .all_tool_calls(Some(ToolCallOutcome::InDoubt), IN_DOUBT_PAGE)
        .await?;
    // Oldest first, like the approvals.
    for call in calls.iter().rev() {
        // A task that waits on the call, or one cancelled while the call was under way
        // (the answer is then recorded for its history); not a task that has moved on.
        if let Some(task) = store.task(&call.task_id).await?
            && (task.projection.status == StoreTaskStatus::InDoubt
                || task.projection.status.is_terminal())
        {
            in_doubt.push(InDoubtCall::new(call, &task));
        }
    }
    tracing::debug!(
        pending = approvals.len(),
        in_doubt = in_doubt.len(),
        "answered list_approvals"
    );
    Ok(Inbox {
        acting_as: acting_as(&airlock),
        approvals,
        in_doubt,
    })
}

/// A person's answer to "did this call happen?", as the OS user: when it did, the task
/// moves on as if the call had returned; when it did not, the call is made again as a new
/// attempt (with the same idempotency key). Answers the task as it is after.
#[tauri::command]
#[tracing::instrument(skip(desktop))]
pub async fn resolve_in_doubt(
    desktop: State<'_, Desktop>,
    call_id: String,
    happened: bool,
) -> Result<TaskRow, CommandError> {
    let airlock = desktop.airlock().await?;
    match airlock
        .opened
        .engine
        .resolve_in_doubt(&call_id, happened, &os_user())
        .await
    {
        Ok(task) => Ok(TaskRow::from(&task)),
        Err(EngineError::WrongStatus { .. }) => Err(CommandError::new(
            ErrorCode::Conflict,
            "This call is no longer in doubt: someone has already said whether it happened.",
        )),
        Err(error) => Err(error.into()),
    }
}

/// Cancels a task as the OS user, with an optional reason: at once when it waits (for a
/// person, or for its next attempt), else at its next safe point.
#[tauri::command]
#[tracing::instrument(skip(desktop, reason))]
pub async fn cancel_task(
    desktop: State<'_, Desktop>,
    id: String,
    reason: Option<String>,
) -> Result<CancelReply, CommandError> {
    let airlock = desktop.airlock().await?;
    let engine = &airlock.opened.engine;
    let task = engine.find_task(&id).await?;
    if task.projection.status.is_terminal() {
        return Err(ended(&task));
    }
    let reason = reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    let outcome = match engine.cancel(&task.id, &os_user(), reason).await {
        Ok(outcome) => outcome,
        // It ended while we asked.
        Err(EngineError::WrongStatus { .. }) => {
            return Err(ended(&engine.find_task(&task.id).await?));
        }
        Err(error) => return Err(error.into()),
    };
    let task = engine.find_task(&task.id).await?;
    Ok(CancelReply {
        outcome: outcome.into(),
        task: TaskRow::from(&task),
    })
}

/// The refusal to cancel a task that has ended.
fn ended(task: &TaskRecord) -> CommandError {
    let how = match task.projection.status {
        StoreTaskStatus::Succeeded => "succeeded",
        StoreTaskStatus::Failed => "failed",
        StoreTaskStatus::Cancelled => "was cancelled",
        _ => "ended",
    };
    CommandError::new(
        ErrorCode::Conflict,
        format!("This task has already ended (it {how}); there is nothing to cancel."),
    )
}

/// Answers a pending approval as the OS user: approve, approve with changed arguments, or
/// reject. Answers the task as it is after, and the count when more approvers are needed.
#[tauri::command]
#[tracing::instrument(skip(desktop, answer))]
pub async fn answer_approval(
    desktop: State<'_, Desktop>,
    id: String,
    answer: AnswerRequest,
) -> Result<AnswerReply, CommandError> {
    let airlock = desktop.airlock().await?;
    answer_as_os_user(&airlock, &id, answer).await
}

/// The one way the app answers an approval, from the window or from a notification: as the
/// OS user, through the engine's policy and four-eyes checks.
pub async fn answer_as_os_user(
    airlock: &Airlock,
    id: &str,
    answer: AnswerRequest,
) -> Result<AnswerReply, CommandError> {
    let answered = airlock
        .opened
        .engine
        .answer_approval(id, answer.into(), &os_user())
        .await?;
    Ok(match answered {
        Answered::Decided(task) => AnswerReply::Decided {
            task: TaskRow::from(&task),
        },
        Answered::Voted {
            task,
            votes,
            needed,
        } => AnswerReply::Voted {
            task: TaskRow::from(&task),
            votes,
            needed,
        },
    })
}

/// Every grant, newest first, with whether it is still in force.
#[tauri::command]
#[tracing::instrument(skip_all)]
pub async fn list_grants(desktop: State<'_, Desktop>) -> Result<Vec<GrantRow>, CommandError> {
    let airlock = desktop.airlock().await?;
    let engine = &airlock.opened.engine;
    let now = engine.clock().now();
    let grants = engine.grants().await?;
    Ok(grants.iter().map(|g| GrantRow::new(g, now)).collect())
}

/// Gives a grant as the OS user (from an approval: only someone who may decide it may).
#[tauri::command]
#[tracing::instrument(skip(desktop, grant))]
pub async fn create_grant(
    desktop: State<'_, Desktop>,
    grant: GrantRequest,
) -> Result<GrantRow, CommandError> {
    let airlock = desktop.airlock().await?;
    let engine = &airlock.opened.engine;
    let made = engine.create_grant(grant.into(), &os_user()).await?;
    Ok(GrantRow::new(&made, engine.clock().now()))
}

/// Revokes a grant as the OS user; it stops matching at once.
#[tauri::command]
#[tracing::instrument(skip(desktop))]
pub async fn revoke_grant(
    desktop: State<'_, Desktop>,
    id: String,
) -> Result<GrantRow, CommandError> {
    let airlock = desktop.airlock().await?;
    let engine = &airlock.opened.engine;
    engine.revoke_grant(&id, &os_user()).await?;
    let grant = engine.store().grant(&id).await?.ok_or_else(|| {
        CommandError::new(ErrorCode::NotFound, format!("There is no grant `{id}`."))
    })?;
    Ok(GrantRow::new(&grant, engine.clock().now()))
}

/// The policy in force, its rules and the people it decides for; when the policy file
/// was changed and refused, why (the version in force stays).
#[tauri::command]
#[tracing::instrument(skip_all)]
pub async fn policy_info(desktop: State<'_, Desktop>) -> Result<PolicyView, CommandError> {
    let airlock = desktop.airlock().await?;
    let governance = airlock.opened.engine.governance();
    // `current` takes a valid edit into force first, so a refusal found below is one
    // the engine made too.
    let policy = governance.policy.current();
    let file = governance.policy.path().map(std::path::Path::to_path_buf);
    let problems = match &file {
        // A valid file not yet in force (changed in the last moment) is taken at the
        // engine's next look; only a refused one has problems to show.
        Some(path) => Policy::load(path)
            .err()
            .map(|diagnostics| WorkflowProblem::all(&diagnostics))
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let looked_for = if file.is_some() {
        Vec::new()
    } else {
        [
            airlock
                .setup
                .workspace
                .as_ref()
                .map(|w| w.join("policy.toml")),
            Some(airlock.setup.data_dir().join("policy.toml")),
        ]
        .into_iter()
        .flatten()
        .map(|p| p.display().to_string())
        .collect()
    };
    let identities = &governance.identities;
    Ok(PolicyView {
        file: file.map(|p| p.display().to_string()),
        looked_for,
        version: policy.version().to_owned(),
        label: policy.label().map(str::to_owned),
        rules: policy.rules().iter().map(RuleView::from).collect(),
        problems,
        identities_file: airlock
            .setup
            .identities_file()
            .map(|p| p.display().to_string()),
        people: identities
            .list()
            .iter()
            .map(|(name, _)| Person::new(name, identities))
            .collect(),
        default_roles: identities.default_roles().to_vec(),
        approver_roles_checked: governance.check_approvers,
        acting_as: acting_as(&airlock),
    })
}

/// The MCP servers of the servers file in force and where each one stands.
#[tauri::command]
#[tracing::instrument(skip_all)]
pub async fn list_servers(desktop: State<'_, Desktop>) -> Result<ServerList, CommandError> {
    let airlock = desktop.airlock().await?;
    let servers = airlock
        .opened
        .mcp
        .as_ref()
        .map(|mcp| mcp.servers().iter().map(ServerRow::from).collect())
        .unwrap_or_default();
    Ok(ServerList {
        servers_file: airlock
            .setup
            .servers_file()
            .map(|p| p.display().to_string()),
        servers,
    })
}

/// The most memory entries one `list_memory` returns (newest first).
const MEMORY_PAGE: i64 = 500;

/// Long-lived memory entries, newest first: only this subject, only those matching the
/// words (full-text), and with their history (replaced and forgotten entries) if asked.
#[tauri::command]
#[tracing::instrument(skip(desktop))]
pub async fn list_memory(
    desktop: State<'_, Desktop>,
    filter: MemoryFilter,
) -> Result<Vec<MemoryEntry>, CommandError> {
    let airlock = desktop.airlock().await?;
    let query = MemoryQuery {
        subject: filter
            .subject
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        categories: Vec::new(),
        search: filter.search.as_deref().and_then(fts_words),
        limit: MEMORY_PAGE,
        with_history: filter.with_history,
    };
    let entries = airlock.opened.engine.memory(&query).await?;
    Ok(entries.iter().map(MemoryEntry::from).collect())
}

/// A person's words as an FTS5 query: each word quoted (so `-`, `:` or `"` in them are
/// text, never query syntax) and all of them required, the last one as a prefix.
fn fts_words(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    let (last, rest) = words.split_last()?;
    let mut query = rest.join(" ");
    if !query.is_empty() {
        query.push(' ');
    }
    query.push_str(last);
    query.push('*');
    Some(query)
}

/// A person corrects a live memory entry, as the OS user: a new entry replaces it (the
/// old one stays in the history) and the correction is audited. Answers the new entry.
#[tauri::command]
#[tracing::instrument(skip(desktop, value, text))]
pub async fn correct_memory(
    desktop: State<'_, Desktop>,
    id: String,
    value: Value,
    text: Option<String>,
) -> Result<MemoryEntry, CommandError> {
    let airlock = desktop.airlock().await?;
    let text = text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    match airlock
        .opened
        .engine
        .correct_memory(&id, value, text, &os_user())
        .await
    {
        Ok(entry) => Ok(MemoryEntry::from(&entry)),
        Err(EngineError::NoMemory(_)) => Err(memory_gone()),
        Err(error) => Err(error.into()),
    }
}

/// A person forgets a live memory entry, as the OS user: its content is dropped and a
/// tombstone says who and when (audited).
#[tauri::command]
#[tracing::instrument(skip(desktop))]
pub async fn forget_memory(desktop: State<'_, Desktop>, id: String) -> Result<(), CommandError> {
    let airlock = desktop.airlock().await?;
    match airlock.opened.engine.forget_memory(&id, &os_user()).await {
        Ok(()) => Ok(()),
        Err(EngineError::NoMemory(_)) => Err(memory_gone()),
        Err(error) => Err(error.into()),
    }
}

fn memory_gone() -> CommandError {
    CommandError::new(
        ErrorCode::Conflict,
        "This entry is no longer the one in use: it was corrected, replaced or forgotten \
         meanwhile. Look at the list again.",
    )
}

/// Lessons proposed from people's corrections, for every workflow, newest first.
#[tauri::command]
#[tracing::instrument(skip_all)]
pub async fn list_lessons(desktop: State<'_, Desktop>) -> Result<Vec<LessonRow>, CommandError> {
    let airlock = desktop.airlock().await?;
    let lessons = airlock.opened.engine.lessons(None, None).await?;
    Ok(lessons.iter().map(LessonRow::from).collect())
}

/// A person accepts a proposed lesson (in their own words, if given) or dismisses it, as
/// the OS user. Answers the lesson as it is after.
#[tauri::command]
#[tracing::instrument(skip(desktop, text))]
pub async fn review_lesson(
    desktop: State<'_, Desktop>,
    id: String,
    accept: bool,
    text: Option<String>,
) -> Result<LessonRow, CommandError> {
    let airlock = desktop.airlock().await?;
    let engine = &airlock.opened.engine;
    let text = text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    match engine
        .review_lesson(&id, accept, text.as_deref(), &os_user())
        .await
    {
        Ok(()) => {}
        Err(EngineError::NoLesson(_)) => {
            return Err(CommandError::new(
                ErrorCode::Conflict,
                "This lesson is no longer waiting for a review: someone accepted or dismissed \
                 it meanwhile.",
            ));
        }
        Err(error) => return Err(error.into()),
    }
    let lessons = engine.lessons(None, None).await?;
    lessons
        .iter()
        .find(|l| l.id == id)
        .map(LessonRow::from)
        .ok_or_else(|| {
            CommandError::new(ErrorCode::NotFound, format!("There is no lesson `{id}`."))
        })
}

const DAY_MS: i64 = 86_400_000;
/// The most days or weeks one `metrics` covers.
const MAX_BUCKETS: u32 = 366;

/// The figures of the last `count` days or weeks (the current one included), of one
/// workflow or all: in total, per workflow, and per day or week, every bucket listed.
/// Model cost is left as tokens here (`airlock metrics` prices them).
#[tauri::command]
#[tracing::instrument(skip(desktop))]
pub async fn metrics(
    desktop: State<'_, Desktop>,
    workflow: Option<String>,
    bucket: MetricsBucket,
    count: u32,
) -> Result<MetricsView, CommandError> {
    if count == 0 || count > MAX_BUCKETS {
        return Err(CommandError::new(
            ErrorCode::InvalidInput,
            format!("Ask for 1 to {MAX_BUCKETS} days or weeks, not {count}."),
        ));
    }
    let airlock = desktop.airlock().await?;
    let engine = &airlock.opened.engine;
    let workflow = workflow
        .map(|w| w.trim().to_owned())
        .filter(|w| !w.is_empty());
    let (store_bucket, length) = match bucket {
        MetricsBucket::Day => (Bucket::Day, DAY_MS),
        MetricsBucket::Week => (Bucket::Week, 7 * DAY_MS),
    };
    let (since, until) = period(engine.clock().now(), bucket, count);
    let filter = MetricsFilter {
        workflow: workflow.clone(),
        since: Some(since),
        until: Some(until),
        bucket: Some(store_bucket),
        ..MetricsFilter::default()
    };
    let report = engine.metrics(&filter, None).await?;
    let mut found = report.buckets.iter().peekable();
    let mut buckets = Vec::new();
    let mut start = since;
    while start < until {
        let figures = match found.peek() {
            Some(b) if b.start == start => {
                FigureSet::from(&found.next().expect("peeked").figures.figures)
            }
            _ => FigureSet::from(&Figures::default()),
        };
        buckets.push(BucketFigureSet { start, figures });
        start += length;
    }
    Ok(MetricsView {
        workflow,
        since,
        until,
        bucket,
        total: FigureSet::from(&report.total.figures),
        workflows: report
            .workflows
            .iter()
            .map(|w| WorkflowFigureSet {
                workflow: w.workflow.clone(),
                figures: FigureSet::from(&w.figures.figures),
            })
            .collect(),
        buckets,
    })
}

/// The first and the end millisecond of the last `count` days or weeks up to `now`'s
/// (UTC; weeks start on Monday, as the store's buckets do).
pub fn period(now: i64, bucket: MetricsBucket, count: u32) -> (i64, i64) {
    let day = now.div_euclid(DAY_MS);
    let count = i64::from(count);
    match bucket {
        MetricsBucket::Day => ((day - count + 1) * DAY_MS, (day + 1) * DAY_MS),
        MetricsBucket::Week => {
            // Day 0 of the epoch was a Thursday: Monday-based weeks are offset by three days.
            let monday = (day + 3).div_euclid(7) * 7 - 3;
            ((monday - 7 * (count - 1)) * DAY_MS, (monday + 7) * DAY_MS)
        }
    }
}
