//! `airlock`: the command line over the engine. Parses arguments, calls one engine
//! function per command, prints the result; no workflow logic lives here.

mod args;
#[macro_use]
mod output;
mod evaluation;
mod exit;
mod governance;
mod history;
mod lessons;
mod memory;
mod render;
mod workflow_source;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use airlock_claude::{API_KEY_ENV, ApiKey, ClaudeConfig, OpenAiConfig, pricing};
use airlock_engine::spend::model_spend;
use airlock_engine::store::{
    AuditFilter, CommitOutcome, StoreError, TaskFilter, TaskRecord, TaskStatus, ToolCallOutcome,
};
use airlock_engine::workflow::{Diagnostic, Diagnostics, load, load_dir, workflow_json_schema};
use airlock_engine::{Answer, Answered, Engine, EngineError, os_user};
use airlock_mcp::import::import_report;
use airlock_mcp::{McpTools, merge_into};
use airlock_workspace::{ModelChoice, Setup, SetupError, secrets};
use anyhow::{Result, anyhow};
use clap::Parser;
use serde::Serialize;
use serde_json::json;

use crate::args::{
    AuditAction, Cli, Command, GrantsAction, PolicyAction, SecretsAction, ServersAction,
    ToolsAction,
};
use crate::exit::Exit;
use crate::workflow_source::{Diagnosed, Invalid, find_workflow, parse_inputs};

#[tokio::main]
async fn main() -> ExitCode {
    // A usage error is clap's to print (exit 2), before anything else is said.
    let cli = Cli::parse();
    output::set_json(cli.json);
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AIRLOCK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr);
    // Under --json, stderr is JSON lines too, logs included.
    if cli.json {
        logs.json().init();
    } else {
        logs.init();
    }
    match run(cli).await {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(e) => {
            let exit = classify(&e);
            output::error(exit, &format!("{e:#}"), diagnostics_of(&e));
            ExitCode::from(exit as u8)
        }
    }
}

/// The problems at places in files that a failure is about, if it is about any.
fn diagnostics_of(e: &anyhow::Error) -> &[Diagnostic] {
    if let Some(d) = e.downcast_ref::<Diagnosed>() {
        return &d.diagnostics.0;
    }
    match e.downcast_ref::<EngineError>() {
        Some(EngineError::WorkflowTools { diagnostics, .. }) => &diagnostics.0,
        _ => &[],
    }
}

fn classify(e: &anyhow::Error) -> Exit {
    if e.downcast_ref::<Invalid>().is_some() || e.downcast_ref::<Diagnosed>().is_some() {
        return Exit::Invalid;
    }
    if e.downcast_ref::<NoDatabase>().is_some() {
        return Exit::NotFound;
    }
    if let Some(e) = e.downcast_ref::<StoreError>() {
        return classify_store(e);
    }
    match e.downcast_ref::<EngineError>() {
        Some(e) => classify_engine(e),
        None => Exit::Error,
    }
}

/// Every variant is named, so a new one has to be placed: 1 is for what went wrong in
/// Airlock, not for what the person asked or the state of what they act on.
fn classify_engine(e: &EngineError) -> Exit {
    match e {
        EngineError::Store(e) => classify_store(e),
        EngineError::Inputs { .. }
        | EngineError::WorkflowTools { .. }
        | EngineError::BadGrant(_) => Exit::Invalid,
        EngineError::NoTask(_)
        | EngineError::NoApproval(_)
        | EngineError::NoToolCall(_)
        | EngineError::AmbiguousTask { .. }
        | EngineError::Ambiguous { .. }
        | EngineError::NoGrant(_)
        | EngineError::NoTool(_)
        | EngineError::NoMemory(_)
        | EngineError::NoLesson(_) => Exit::NotFound,
        // By a rule, or by the state of what is acted on: asking again will not help.
        EngineError::NotAllowed { .. }
        | EngineError::Expired { .. }
        | EngineError::AlreadyVoted { .. }
        | EngineError::EditRefused { .. }
        | EngineError::AlreadyDecided(_)
        | EngineError::WrongStatus { .. } => Exit::Refused,
        // Another engine holds the task, or moved it first: asking again later may work.
        EngineError::Busy { .. }
        | EngineError::Refused {
            outcome: CommitOutcome::LeaseLost { .. } | CommitOutcome::StaleSequence { .. },
            ..
        } => Exit::Busy,
        EngineError::Refused {
            outcome: CommitOutcome::ApprovalAlreadyDecided { .. },
            ..
        } => Exit::Refused,
        EngineError::Refused { .. } | EngineError::BadStoredWorkflow { .. } => Exit::Error,
    }
}

fn classify_store(e: &StoreError) -> Exit {
    match e {
        StoreError::BadSearch { .. } => Exit::Invalid,
        _ => Exit::Error,
    }
}

/// Where things are, from the flags and environment.
fn setup(cli: &Cli, start_servers: bool) -> Result<Setup> {
    // A mistyped folder would otherwise be a workspace with nothing in it.
    if let Some(dir) = cli.workspace.as_ref().filter(|d| !d.is_dir()) {
        return Err(Invalid(format!(
            "the workspace {} is not a folder{}",
            dir.display(),
            if dir.exists() {
                ""
            } else {
                " (it does not exist)"
            }
        ))
        .into());
    }
    Ok(Setup {
        db: cli.db.clone(),
        effects_db: cli.effects_db.clone(),
        workspace: cli.workspace.clone(),
        servers: cli.servers.clone(),
        policy: cli.policy.clone(),
        identities: cli.identities.clone(),
        start_servers,
        only_reads: false,
        model: model_choice(&cli.model)?,
    })
}

/// The Claude API key: `ANTHROPIC_API_KEY`, else the keychain's `anthropic-api-key`.
fn claude_key() -> Result<Option<ApiKey>> {
    if let Some(key) = std::env::var(API_KEY_ENV).ok().filter(|v| !v.is_empty()) {
        return Ok(Some(ApiKey::new(key)));
    }
    match secrets::get(secrets::CLAUDE_KEY_ENTRY) {
        Ok(key) => Ok(key.map(ApiKey::new)),
        Err(error) => {
            tracing::warn!(%error, "the keychain cannot be read; no Claude API key from it");
            Ok(None)
        }
    }
}

/// `--model`, with the environment variables each provider reads.
fn model_choice(name: &str) -> Result<ModelChoice> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let claude = || -> Result<ModelChoice> {
        let mut config = ClaudeConfig::default();
        if let Some(model) = var("AIRLOCK_CLAUDE_MODEL") {
            config.model = model;
        }
        if let Some(url) = var("ANTHROPIC_BASE_URL") {
            config.base_url = url;
        }
        let key = claude_key()?.ok_or_else(|| {
            Invalid(format!(
                "no Claude API key: set {API_KEY_ENV}, or store it with `airlock secrets set {}`",
                secrets::CLAUDE_KEY_ENTRY
            ))
        })?;
        Ok(ModelChoice::Claude(config, key))
    };
    Ok(match name {
        "auto" if claude_key()?.is_some() => claude()?,
        "auto" | "scripted" => ModelChoice::Scripted,
        "claude" => claude()?,
        "openai" => {
            let mut config = OpenAiConfig::default();
            if let Some(url) = var("AIRLOCK_OPENAI_URL") {
                config.base_url = url;
            }
            if let Some(model) = var("AIRLOCK_OPENAI_MODEL") {
                config.model = model;
            }
            ModelChoice::OpenAiCompatible(config, var("AIRLOCK_OPENAI_API_KEY").map(ApiKey::new))
        }
        "none" => ModelChoice::None,
        other => {
            return Err(Invalid(format!(
                "unknown model `{other}`: use auto, scripted, claude, openai or none"
            ))
            .into());
        }
    })
}

/// Opens the engine. Tools are the built-in ones plus, when the setup starts servers, the
/// MCP servers of the servers file (started now; commands that only read skip that).
async fn open_engine(setup: Setup) -> Result<(Engine, Option<Arc<McpTools>>)> {
    let opened = setup.open().await.map_err(|e| match &e {
        SetupError::Policy(d) | SetupError::Identities(d) => anyhow::Error::new(Diagnosed {
            message: e.to_string(),
            diagnostics: d.clone(),
        }),
        SetupError::Servers(_) | SetupError::Models(_) | SetupError::Model(_) => {
            anyhow::Error::new(Invalid(e.to_string()))
        }
        _ => anyhow::Error::new(e),
    })?;
    if let Some(why) = &opened.ungoverned {
        output::notice(
            "warning",
            &format!("{why}\n  (showing what is stored; nothing can be decided until it is fixed)"),
        );
    }
    Ok((opened.engine, opened.mcp))
}

fn print_json(value: &impl Serialize) -> Result<()> {
    say!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

async fn run(cli: Cli) -> Result<Exit> {
    // Commands that need no database.
    match &cli.command {
        Command::Validate { paths } => return validate(paths, cli.json),
        Command::Schema => {
            print_json(&workflow_json_schema())?;
            return Ok(Exit::Ok);
        }
        _ => {}
    }
    if let Command::Servers {
        action: Some(ServersAction::Import { from }),
    } = &cli.command
    {
        return import(&cli, from);
    }
    match &cli.command {
        Command::Policy {
            action: action @ (PolicyAction::Check { .. } | PolicyAction::Show),
        } => return governance::policy_files(&setup(&cli, false)?, action, cli.json),
        Command::Identities => return governance::identities(&setup(&cli, false)?, cli.json),
        Command::Secrets { action } => return secret(action, cli.json),
        _ => {}
    }
    let with_servers = !matches!(
        cli.command,
        Command::Tasks { .. }
            | Command::Metrics { .. }
            | Command::History(_)
            | Command::Rate { .. }
            | Command::Review { .. }
            | Command::Show { .. }
            | Command::Approvals
            | Command::InDoubt
            | Command::Audit { .. }
            | Command::Grants { .. }
            | Command::Memory { .. }
            | Command::Lessons { .. }
    );
    // Commands that only read (and `cancel`, which evaluates no policy and needs no
    // role) still work when the policy or identities file is broken: that is when
    // people most need to see what is stored, or to stop a task.
    let only_reads = matches!(
        cli.command,
        Command::Tasks { .. }
            | Command::Metrics { .. }
            | Command::History(_)
            | Command::Review { .. }
            | Command::Show { .. }
            | Command::Approvals
            | Command::InDoubt
            | Command::Audit { .. }
            | Command::Cancel { .. }
    );
    let setup = Setup {
        only_reads,
        ..setup(&cli, with_servers)?
    };
    // A mistyped --db (or AIRLOCK_DB) would otherwise be a new, empty database: "no tasks".
    // The default location is created on first use, by any command.
    if let Some(db) = cli.db.as_ref().filter(|db| !db.exists())
        && acts_on_records(&cli.command)
    {
        return Err(NoDatabase(db.clone()).into());
    }
    let (engine, mcp) = open_engine(setup).await?;
    let result = dispatch(&cli, &engine, mcp.as_deref()).await;
    if let Err(e) = engine.close().await {
        tracing::warn!(error = %e, "could not release this engine's leases");
    }
    result
}

/// No database at a path given with --db or AIRLOCK_DB (exit code 6).
#[derive(Debug, thiserror::Error)]
#[error(
    "no database at {}: run a workflow with `airlock run <workflow>` to create one, or check --db / AIRLOCK_DB",
    .0.display()
)]
struct NoDatabase(PathBuf);

/// Commands that read or act on records already in the database: on a database that is
/// not there they would only say "nothing". Those that create records (`run`, `grants
/// add`) or are about files and servers (`tools`, `servers`, `policy explain`) create it.
/// So does `resume`: a `run` killed before its database was made leaves nothing to carry
/// on, and `resume` after any crash must say so rather than fail.
fn acts_on_records(command: &Command) -> bool {
    match command {
        Command::Tasks { .. }
        | Command::Show { .. }
        | Command::Cancel { .. }
        | Command::Approvals
        | Command::Approve { .. }
        | Command::Reject { .. }
        | Command::InDoubt
        | Command::Resolve { .. }
        | Command::Release { .. }
        | Command::Lessons { .. }
        | Command::Memory { .. }
        | Command::Audit { .. }
        | Command::History(_)
        | Command::Metrics { .. }
        | Command::Rate { .. }
        | Command::Review { .. } => true,
        Command::Grants { action } => !matches!(action, Some(GrantsAction::Add { .. })),
        Command::Run { .. }
        | Command::Resume
        | Command::Validate { .. }
        | Command::Schema
        | Command::Servers { .. }
        | Command::Tools { .. }
        | Command::Policy { .. }
        | Command::Identities
        | Command::Secrets { .. } => false,
    }
}

async fn dispatch(cli: &Cli, engine: &Engine, mcp: Option<&McpTools>) -> Result<Exit> {
    let me = cli.identity.clone().unwrap_or_else(os_user);
    // Every decision and change is recorded under this name: an empty one would say
    // "approved by " in the history and the audit log.
    if me.trim().is_empty() {
        return Err(Invalid("--as needs a name: who is doing this is recorded".into()).into());
    }
    let store = engine.store();
    match &cli.command {
        Command::Run {
            workflow,
            inputs,
            detach,
        } => {
            let (wf, origin) = find_workflow(workflow, cli.workspace.as_deref(), store).await?;
            let inputs = parse_inputs(&wf, inputs)?;
            let id = engine
                .start_task(&wf, inputs, &me, origin.as_deref())
                .await?;
            if *detach {
                if cli.json {
                    print_json(&json!({ "task": id }))?;
                } else {
                    say!("task {id} created (run it with `airlock resume`)");
                }
                return Ok(Exit::Ok);
            }
            carry_on(cli, engine, &id).await
        }
        Command::Resume => {
            let unfinished = async || -> Result<Vec<TaskRecord>> {
                Ok(store
                    .list_tasks(&TaskFilter::default())
                    .await?
                    .into_iter()
                    .filter(|t| !t.projection.status.is_terminal())
                    .collect())
            };
            let before = unfinished().await?;
            engine.run_until_idle().await?;
            let waiting = unfinished().await?;
            // Tasks that were unfinished and now are not: what this resume carried to an end.
            let ended = before
                .iter()
                .filter(|b| !waiting.iter().any(|w| w.id == b.id))
                .count();
            if cli.json {
                print_json(&waiting)?;
            } else if waiting.is_empty() && ended == 0 {
                say!("nothing to run");
            } else if waiting.is_empty() {
                say!("{ended} task(s) carried on to their end; nothing left to run");
            } else {
                if ended > 0 {
                    say!("{ended} task(s) carried on to their end");
                }
                say!("{} task(s) not finished:", waiting.len());
                for t in &waiting {
                    say!("  {}", render::task_line(t));
                }
            }
            // Scripts learn from the code alone that someone has to act.
            let person = waiting
                .iter()
                .any(|t| Exit::for_status(t.projection.status) == Exit::NeedsPerson);
            Ok(if person { Exit::NeedsPerson } else { Exit::Ok })
        }
        Command::Tasks {
            status,
            workflow,
            limit,
        } => {
            let status = match status {
                Some(s) => Some(TaskStatus::parse(s).ok_or_else(|| {
                    Invalid(format!(
                        "unknown status `{s}`; use one of: {}",
                        TaskStatus::ALL.map(TaskStatus::as_str).join(", ")
                    ))
                })?),
                None => None,
            };
            let filter = TaskFilter {
                status,
                workflow: workflow.clone(),
                limit: Some(*limit),
            };
            let tasks = store.list_tasks(&filter).await?;
            if cli.json {
                print_json(&tasks)?;
            } else if tasks.is_empty() {
                say!("no tasks yet: start one with `airlock run <workflow.toml>`");
            } else {
                for t in &tasks {
                    say!("{}", render::task_line(t));
                }
            }
            Ok(Exit::Ok)
        }
        Command::Show { task } => {
            let t = engine.find_task(task).await?;
            let events = store.events(&t.id).await?;
            let steps = store.steps(&t.id).await?;
            let calls = store.tool_calls(&t.id).await?;
            let approvals = store.task_approvals(&t.id).await?;
            let spend: Vec<_> = model_spend(&events)
                .into_iter()
                .map(|s| {
                    let cost = pricing::cost_usd(&s.model, &s.usage);
                    (s, cost)
                })
                .collect();
            if cli.json {
                let model_usage: Vec<_> = spend
                    .iter()
                    .map(|(s, cost)| {
                        json!({
                            "model": s.model, "turns": s.turns, "usage": s.usage, "cost_usd": cost,
                        })
                    })
                    .collect();
                print_json(&json!({
                    "task": t, "events": events, "steps": steps,
                    "tool_calls": calls, "approvals": approvals, "model_usage": model_usage,
                }))?;
            } else {
                say!(
                    "{}",
                    render::task_detail(&t, &events, &steps, &calls, &approvals)
                );
                for (s, cost) in &spend {
                    say!("{}", render::spend_line(s, *cost));
                }
            }
            Ok(Exit::Ok)
        }
        Command::Cancel { task, reason } => {
            let t = engine.find_task(task).await?;
            let outcome = engine.cancel(&t.id, &me, reason.clone()).await?;
            if cli.json {
                print_json(&json!({ "task": t.id, "outcome": outcome }))?;
            } else {
                say!(
                    "task {}: {}",
                    t.id,
                    match outcome {
                        airlock_engine::CancelOutcome::Cancelled => "cancelled",
                        airlock_engine::CancelOutcome::Requested =>
                            "cancellation requested; it stops at its next safe point",
                    }
                );
            }
            Ok(Exit::Ok)
        }
        Command::Approvals => {
            let pending = store.pending_approvals().await?;
            if cli.json {
                print_json(&pending)?;
            } else if pending.is_empty() {
                say!("no approvals waiting");
            } else {
                for a in &pending {
                    say!("{}", render::approval_line(a));
                }
            }
            Ok(Exit::Ok)
        }
        Command::Approve {
            approval,
            reason,
            edit,
        } => {
            let answer = match edit {
                Some(args) => Answer::ApproveEdited {
                    args: governance::edited_args(args)?,
                    reason: reason.clone(),
                },
                None => Answer::Approve {
                    reason: reason.clone(),
                },
            };
            let approval = &engine.find_approval_id(approval).await?;
            match late_or(engine, engine.answer_approval(approval, answer, &me).await).await? {
                Answered::Decided(t) => carry_on(cli, engine, &t.id).await,
                Answered::Voted {
                    task,
                    votes,
                    needed,
                } => {
                    if cli.json {
                        print_json(&json!({
                            "approval": approval, "votes": votes, "needed": needed, "task": task,
                        }))?;
                    } else {
                        say!(
                            "your approval is counted ({votes} of {needed}); it needs {} more distinct approver(s)",
                            needed - votes
                        );
                    }
                    Ok(Exit::NeedsPerson)
                }
            }
        }
        Command::Reject { approval, reason } => {
            // The reason is what the requester and the workflow's error path are told,
            // and what a lesson is proposed from.
            if reason.trim().is_empty() {
                return Err(
                    Invalid("--reason needs words: say why the call is rejected".into()).into(),
                );
            }
            let approval = &engine.find_approval_id(approval).await?;
            let decided = engine
                .decide_approval(approval, false, &me, Some(reason.clone()))
                .await;
            let t = late_or(engine, decided).await?;
            carry_on(cli, engine, &t.id).await
        }
        Command::InDoubt => {
            let calls = store
                .all_tool_calls(Some(ToolCallOutcome::InDoubt), 1000)
                .await?;
            if cli.json {
                print_json(&calls)?;
            } else if calls.is_empty() {
                say!("no calls in doubt");
            } else {
                for c in &calls {
                    // A task cancelled while its call was under way does not wait for the
                    // answer; it is only recorded.
                    let ended = match store.task(&c.task_id).await? {
                        Some(t) if t.projection.status.is_terminal() => format!(
                            "  (task {}: an answer is only recorded)",
                            t.projection.status.as_str()
                        ),
                        _ => String::new(),
                    };
                    // The call's id first: it is what `resolve` takes.
                    say!(
                        "{}  task {}{ended}",
                        render::call_line(c),
                        render::short(&c.task_id)
                    );
                }
            }
            Ok(Exit::Ok)
        }
        Command::Resolve {
            call,
            happened,
            not_happened,
        } => {
            let happened = *happened && !*not_happened;
            let call = &engine.find_tool_call_id(call).await?;
            let t = engine.resolve_in_doubt(call, happened, &me).await?;
            if !t.projection.status.is_terminal() {
                return carry_on(cli, engine, &t.id).await;
            }
            // The task had ended (cancelled while the call was under way): the answer is
            // recorded and nothing runs.
            if cli.json {
                print_json(&t)?;
            } else {
                let did = if happened {
                    "happened"
                } else {
                    "did not happen"
                };
                say!(
                    "recorded that call {call} {did}; task {} stays {}",
                    render::short(&t.id),
                    t.projection.status.as_str()
                );
            }
            Ok(Exit::Ok)
        }
        Command::Release { task } => {
            let t = engine.find_task(task).await?;
            engine.release_quarantined(&t.id, &me).await?;
            carry_on(cli, engine, &t.id).await
        }
        Command::Servers { .. } => {
            let statuses = mcp.map(McpTools::servers).unwrap_or_default();
            if cli.json {
                let rows: Vec<_> = statuses.iter().map(render::server_json).collect();
                print_json(&rows)?;
            } else if statuses.is_empty() {
                say!(
                    "no MCP servers configured: add them to a servers.json (the mcpServers shape of \
                     Claude Desktop), or import yours with `airlock servers import <config.json>`"
                );
            } else {
                for status in &statuses {
                    say!("{}", render::server_line(status));
                }
            }
            Ok(Exit::Ok)
        }
        Command::Tools {
            action: Some(ToolsAction::Accept { tool }),
        } => {
            if engine.accept_tool_change(tool, &me).await? {
                say!("`{tool}`: the new definition is pinned; the tool is usable again");
                Ok(Exit::Ok)
            } else {
                Err(Invalid(format!(
                    "`{tool}` has no changed definition waiting for review"
                ))
                .into())
            }
        }
        Command::Tools { action } => {
            let only_changed = matches!(action, Some(ToolsAction::Review));
            let pins = store.tool_pins().await?;
            let tools = engine.tools().tools();
            if cli.json {
                print_json(&json!({ "tools": tools, "pins": pins }))?;
            } else {
                let lines = render::tool_lines(&tools, &pins, only_changed);
                if lines.is_empty() {
                    say!(
                        "{}",
                        if only_changed {
                            "no tool changes waiting for review"
                        } else {
                            "no tools"
                        }
                    );
                }
                for line in lines {
                    say!("{line}");
                }
            }
            Ok(Exit::Ok)
        }
        Command::Policy { action } => governance::explain(engine, &me, action, cli.json).await,
        Command::Memory { action } => memory::run(engine, &me, action.as_ref(), cli.json).await,
        Command::Lessons { action } => lessons::run(engine, &me, action.as_ref(), cli.json).await,
        Command::Grants { action } => {
            governance::grants(engine, &me, action.as_ref(), cli.json).await
        }
        Command::Identities | Command::Secrets { .. } => Ok(Exit::Error),
        Command::Audit {
            action: AuditAction::Verify { expect },
        } => {
            let report = store.verify_audit_against(expect.as_ref()).await?;
            if cli.json {
                print_json(&render::audit_report_json(&report))?;
            } else {
                say!("{}", render::audit_report(&report));
            }
            Ok(if report.is_intact() {
                Exit::Ok
            } else {
                Exit::AuditBroken
            })
        }
        Command::Audit {
            action: AuditAction::List { task, limit, after },
        } => {
            let task_id = match task {
                Some(t) => Some(engine.find_task(t).await?.id),
                None => None,
            };
            // Without `--after`, the newest entries; shown oldest first either way.
            let mut entries = store
                .audit_entries(&AuditFilter {
                    task_id,
                    after_seq: *after,
                    limit: Some(*limit),
                    newest_first: after.is_none(),
                })
                .await?;
            entries.sort_by_key(|e| e.seq);
            if cli.json {
                print_json(&entries)?;
            } else if entries.is_empty() {
                say!("no audit entries");
            } else {
                for e in &entries {
                    say!("{}", render::audit_line(e));
                }
            }
            Ok(Exit::Ok)
        }
        Command::History(args) => history::run(engine, args, cli.json).await,
        Command::Metrics { period, by } => evaluation::metrics(engine, period, *by, cli.json).await,
        Command::Rate {
            task,
            rating,
            comment,
        } => evaluation::rate(engine, &me, task, *rating, comment.as_deref(), cli.json).await,
        Command::Review { period, out } => evaluation::review(engine, period, out, cli.json).await,
        Command::Validate { .. } | Command::Schema => {
            Err(anyhow!("handled before opening the store"))
        }
    }
}

/// Runs a task until it ends or waits for a person, then reports where it stands.
/// An answer that came after its approval expired is refused, but the expiry it
/// recorded moves the task on its expiry path: carry the task on as an answer would
/// have, then report the refusal.
async fn late_or<T>(engine: &Engine, answered: Result<T, EngineError>) -> Result<T> {
    if let Err(EngineError::Expired { task, .. }) = &answered
        // Carrying it on is a courtesy: whatever stops it (another engine holds the task
        // and moves it itself) must not replace the answer's own refusal.
        && let Err(e) = engine.run_task(task).await
    {
        tracing::warn!(task = %task, error = %e, "could not carry on the task of an expired approval");
    }
    Ok(answered?)
}

async fn carry_on(cli: &Cli, engine: &Engine, task_id: &str) -> Result<Exit> {
    let t = engine.run_task(task_id).await?;
    let store = engine.store();
    if cli.json {
        print_json(&t)?;
    } else {
        say!("{}", render::task_summary(&t));
        // A step that gave up and took its workflow's error path leaves the task without
        // an error of its own: say what went wrong on the way.
        if t.projection.status == TaskStatus::Failed && t.projection.error.is_none() {
            let events = store.events(&t.id).await?;
            if let Some(gave_up) = events.iter().rev().find(|e| e.kind == "step_gave_up") {
                let field = |k: &str| gave_up.body[k].as_str().unwrap_or("?").to_owned();
                say!("  after `{}` gave up: {}", field("state"), field("error"));
            }
        }
        let approvals = store.task_approvals(&t.id).await?;
        let calls = store.tool_calls(&t.id).await?;
        let next = render::next_steps(&t, &approvals, &calls);
        if !next.is_empty() {
            say!("{next}");
        }
    }
    Ok(Exit::for_status(t.projection.status))
}

/// `airlock secrets set|check|delete`: the value goes from standard input to the keychain
/// and is never printed.
fn secret(action: &SecretsAction, json: bool) -> Result<Exit> {
    let report = |name: &str, state: &str, message: String| -> Result<Exit> {
        if json {
            print_json(&json!({ "name": name, "state": state }))?;
        } else {
            say!("{message}");
        }
        Ok(Exit::Ok)
    };
    match action {
        SecretsAction::Set { name } => {
            let mut value = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut value)?;
            let value = value.trim_end_matches(['\r', '\n']);
            secrets::set(name, value).map_err(|e| Invalid(e.to_string()))?;
            report(
                name,
                "stored",
                format!("`{name}` is stored in the keychain"),
            )
        }
        SecretsAction::Check { name } => match secrets::get(name)? {
            Some(_) => report(
                name,
                "stored",
                format!("`{name}` is stored in the keychain"),
            ),
            None => {
                report(name, "missing", format!("`{name}` is not in the keychain"))?;
                Ok(Exit::NotFound)
            }
        },
        SecretsAction::Delete { name } => {
            if secrets::delete(name)? {
                report(
                    name,
                    "deleted",
                    format!("`{name}` is removed from the keychain"),
                )
            } else {
                report(name, "missing", format!("`{name}` was not in the keychain"))?;
                Ok(Exit::NotFound)
            }
        }
    }
}

/// `airlock servers import <file>`: adds a Claude config's servers to Airlock's file.
fn import(cli: &Cli, from: &Path) -> Result<Exit> {
    // The servers file the other commands use; with none yet, the workspace's (where
    // they will look first), else the one beside the database.
    let setup = setup(cli, false)?;
    let target = setup
        .servers_file()
        .unwrap_or_else(|| match &cli.workspace {
            Some(workspace) => workspace.join("servers.json"),
            None => setup.data_dir().join("servers.json"),
        });
    let found = import_report(from).map_err(|e| Invalid(e.to_string()))?;
    let report = merge_into(&target, found.servers).map_err(|e| Invalid(e.to_string()))?;
    if cli.json {
        print_json(&json!({
            "file": target, "added": report.added, "kept": report.skipped_duplicates,
            "skipped": found.skipped.iter().map(|(n, why)| json!({"name": n, "why": why})).collect::<Vec<_>>(),
        }))?;
    } else {
        say!("{}:", target.display());
        for name in &report.added {
            say!("  added {name}");
        }
        for name in &report.skipped_duplicates {
            say!("  kept {name} (already there)");
        }
        for (name, why) in &found.skipped {
            say!("  skipped {name}: {why}");
        }
    }
    Ok(Exit::Ok)
}

fn validate(paths: &[PathBuf], json: bool) -> Result<Exit> {
    let mut ok = Vec::new();
    let mut problems = Diagnostics(Vec::new());
    for path in paths {
        if path.is_dir() {
            let (workflows, diagnostics) = load_dir(path);
            ok.extend(workflows.into_iter().map(|w| (w.name, w.states.len())));
            problems.0.extend(diagnostics.0);
        } else {
            match load(path) {
                Ok(w) => ok.push((w.name, w.states.len())),
                Err(airlock_engine::workflow::LoadError::Invalid(d)) => problems.0.extend(d.0),
                Err(e) => return Err(Invalid(e.to_string()).into()),
            }
        }
    }
    if json {
        let diagnostics: Vec<_> = problems.iter().map(output::diagnostic_json).collect();
        let valid: Vec<_> = ok
            .iter()
            .map(|(n, s)| json!({ "workflow": n, "states": s }))
            .collect();
        print_json(&json!({ "valid": valid, "errors": diagnostics }))?;
    } else {
        for (name, states) in &ok {
            say!("ok: workflow `{name}` ({states} states)");
        }
        if !problems.0.is_empty() {
            eprint!("{problems}");
            if !problems.to_string().ends_with('\n') {
                eprintln!();
            }
            eprintln!("{} error(s)", problems.0.len());
        }
    }
    Ok(if problems.0.is_empty() {
        Exit::Ok
    } else {
        Exit::Invalid
    })
}
