//! The command line's shape (clap).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "airlock",
    version,
    about = "Run Claude automations as durable, governed workflows"
)]
pub struct Cli {
    /// The database file [default: <user data dir>/airlock/airlock.sqlite]. One named here
    /// must exist for commands that read or act on what is stored; `run` creates it
    #[arg(long, global = true, env = "AIRLOCK_DB")]
    pub db: Option<PathBuf>,
    /// Where the built-in tools keep their effects [default: beside the database]
    #[arg(long, global = true, env = "AIRLOCK_EFFECTS_DB")]
    pub effects_db: Option<PathBuf>,
    /// A folder of workflow files to find workflows by name in
    #[arg(long, global = true, env = "AIRLOCK_WORKSPACE")]
    pub workspace: Option<PathBuf>,
    /// MCP servers, in the `mcpServers` shape of Claude Desktop and Claude Code
    /// [default: servers.json in the workspace, else beside the database]
    #[arg(long, global = true, env = "AIRLOCK_SERVERS")]
    pub servers: Option<PathBuf>,
    /// The model for agent states: `auto` (Claude when ANTHROPIC_API_KEY is set, else the
    /// workspace's scripted offline model), `scripted`, `claude`, `openai` (a local
    /// OpenAI-compatible server at AIRLOCK_OPENAI_URL), or `none`
    #[arg(long, global = true, env = "AIRLOCK_MODEL", default_value = "auto")]
    pub model: String,
    /// The policy file [default: policy.toml in the workspace, else beside the database;
    /// with none, every tool call is denied]
    #[arg(long, global = true, env = "AIRLOCK_POLICY")]
    pub policy: Option<PathBuf>,
    /// The identities file (people and their roles) [default: identities.toml in the
    /// workspace, else beside the database]
    #[arg(long, global = true, env = "AIRLOCK_IDENTITIES")]
    pub identities: Option<PathBuf>,
    /// The identity acting [default: the OS user]
    #[arg(long = "as", global = true, env = "AIRLOCK_USER")]
    pub identity: Option<String>,
    /// Machine-readable output
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start a task of a workflow (a .toml file, or a name in the workspace) and run it
    /// until it ends or waits for a person
    Run {
        workflow: String,
        /// An input, as name=value (repeatable)
        #[arg(short, long = "input", value_name = "NAME=VALUE")]
        inputs: Vec<String>,
        /// Create the task and return without running it
        #[arg(long)]
        detach: bool,
    },
    /// Carry on every unfinished task (after a crash or a restart) until none can move
    Resume,
    /// List tasks, newest first
    Tasks {
        /// running, waiting_approval, in_doubt, quarantined, succeeded, failed, cancelled
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        workflow: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Show one task: its position, event history, steps, tool calls and approvals
    Show { task: String },
    /// Cancel a task
    Cancel {
        task: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// List approvals waiting for a decision
    Approvals,
    /// Approve a pending approval, then carry the task on
    Approve {
        approval: String,
        #[arg(long)]
        reason: Option<String>,
        /// Approve the held tool call with these arguments instead (a JSON object); it is
        /// checked against the tool's schema and the policy again, and recorded as an
        /// override
        #[arg(long, value_name = "JSON")]
        edit: Option<String>,
    },
    /// Reject a pending approval (the task takes its rejection path)
    Reject {
        approval: String,
        #[arg(long)]
        reason: String,
    },
    /// List tool calls whose effect is in doubt
    InDoubt,
    /// Say whether an in-doubt call happened, then carry the task on
    Resolve {
        call: String,
        /// The call did take effect: the step counts as done
        #[arg(
            long,
            conflicts_with = "not_happened",
            required_unless_present = "not_happened"
        )]
        happened: bool,
        /// The call did not take effect: make it again
        #[arg(long)]
        not_happened: bool,
    },
    /// Let a quarantined task run again
    Release { task: String },
    /// Check workflow files (or folders of them) without running anything
    Validate {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print the JSON Schema of the workflow format
    Schema,
    /// Show the configured MCP servers and their state, or import servers
    Servers {
        #[command(subcommand)]
        action: Option<ServersAction>,
    },
    /// List every tool with its risk, hints and pin; accept a changed tool
    Tools {
        #[command(subcommand)]
        action: Option<ToolsAction>,
    },
    /// The policy: check a policy file, show the one in force, or explain what it decides
    /// for a call without making it
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// Grants: scoped, revocable permissions in place of approving calls one at a time
    Grants {
        #[command(subcommand)]
        action: Option<GrantsAction>,
    },
    /// The identities and their roles
    Identities,
    /// Lessons from people's corrections: list them, accept (maybe reworded) or dismiss;
    /// accepted ones are given to the workflow's agents
    Lessons {
        #[command(subcommand)]
        action: Option<LessonsAction>,
    },
    /// Long-lived memory (what `remember` states wrote): list and search it, correct or
    /// forget an entry
    Memory {
        #[command(subcommand)]
        action: Option<MemoryAction>,
    },
    /// Secrets in the OS keychain (service `airlock`): servers files refer to them as
    /// `${keychain:NAME}`; `anthropic-api-key` is Claude's API key
    Secrets {
        #[command(subcommand)]
        action: SecretsAction,
    },
    /// The audit log: list its entries, or verify that none was changed or deleted
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Every tool call across tasks, newest first, filtered; `--csv` writes all that match
    History(HistoryArgs),
    /// Figures of the tasks created in a period: completion, exceptions, duplicate
    /// actions, approvals and overrides, outcome checks, corrections, satisfaction, model
    /// tokens and cost, wall time; per workflow, and per day or week with --by
    Metrics {
        #[command(flatten)]
        period: Period,
        /// Also give the figures of each day or week (UTC)
        #[arg(long, value_enum)]
        by: Option<BucketArg>,
    },
    /// Rate a finished task from 1 (bad) to 5 (good); rating it again replaces the rating
    /// in the figures (earlier ones are kept)
    Rate {
        task: String,
        /// 1 to 5
        rating: i64,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Write a period's review into a folder: review.md, review.html and metrics.csv
    /// (figures, failure modes, overrides, exceptions, suggested policy changes)
    Review {
        #[command(flatten)]
        period: Period,
        /// The folder to write into (created if needed)
        #[arg(long)]
        out: PathBuf,
    },
}

/// Which tasks figures are about: those created in a period, of one workflow or all.
#[derive(clap::Args, Debug)]
pub struct Period {
    #[arg(long)]
    pub workflow: Option<String>,
    /// From this day (YYYY-MM-DD, UTC), or this long ago (e.g. 7d, 4w)
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Up to and including this day (YYYY-MM-DD, UTC), or up to this long ago
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// Calls to this server's tools
    #[arg(long)]
    pub server: Option<String>,
    /// Calls to this tool (its full name, server.tool)
    #[arg(long)]
    pub tool: Option<String>,
    /// pending, succeeded, failed, in_doubt, happened or not_happened
    #[arg(long)]
    pub outcome: Option<String>,
    /// What let the call through: policy (a rule), grant, or approval
    #[arg(long, value_name = "DECISION")]
    pub allowed_by: Option<String>,
    /// What refused the call: policy (a rule denied it), person (rejected), expiry (its
    /// approval expired), cancel (its task was cancelled while it waited for approval), or
    /// check (the static checks)
    #[arg(long, value_name = "REFUSAL")]
    pub refused_by: Option<String>,
    /// Calls of this task (an id or the start of one)
    #[arg(long)]
    pub task: Option<String>,
    #[arg(long)]
    pub workflow: Option<String>,
    /// From this day (YYYY-MM-DD, UTC), or this long ago (e.g. 7d, 4w)
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Up to and including this day (YYYY-MM-DD, UTC), or up to this long ago
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Calls this person approved
    #[arg(long, value_name = "PERSON")]
    pub approved_by: Option<String>,
    /// Calls this person rejected
    #[arg(long, value_name = "PERSON")]
    pub rejected_by: Option<String>,
    /// Words in the tool's name, the arguments or the error (any case)
    #[arg(long, value_name = "WORDS")]
    pub search: Option<String>,
    /// The newest this many calls
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Write every matching call as CSV (RFC 4180) to this file, or `-` for stdout
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum BucketArg {
    Day,
    Week,
}

#[derive(Subcommand, Debug)]
pub enum ServersAction {
    /// Add the servers of a Claude Desktop or Claude Code config file to Airlock's
    /// servers file (existing names are kept as they are)
    Import { from: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum ToolsAction {
    /// Show tools whose server now describes them differently from their pin
    Review,
    /// Accept a tool's changed definition: it becomes the pin and the tool is usable again
    Accept { tool: String },
}

#[derive(Subcommand, Debug)]
pub enum LessonsAction {
    /// Lessons, newest first (the default action)
    List {
        #[arg(long)]
        workflow: Option<String>,
        /// proposed, accepted or dismissed
        #[arg(long)]
        status: Option<String>,
    },
    /// Accept a proposed lesson, optionally in your own words
    Accept {
        id: String,
        #[arg(long)]
        text: Option<String>,
    },
    /// Dismiss a proposed lesson
    Dismiss { id: String },
}

#[derive(Subcommand, Debug)]
pub enum MemoryAction {
    /// Entries, newest first (the default action)
    List {
        /// Only entries about this subject (an employee id, a customer id...)
        #[arg(long)]
        subject: Option<String>,
        /// Only entries of this category (repeatable)
        #[arg(long = "category")]
        categories: Vec<String>,
        /// Full-text search (SQLite FTS5 syntax)
        #[arg(long)]
        search: Option<String>,
        /// Replaced, corrected and forgotten entries too
        #[arg(long)]
        history: bool,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Correct an entry: a new entry with this value replaces it (recorded with who)
    Correct {
        id: String,
        /// The corrected value, as JSON
        #[arg(long, value_name = "JSON")]
        value: String,
        /// The corrected searchable text
        #[arg(long)]
        text: Option<String>,
    },
    /// Forget an entry: its content is removed; a tombstone records who and when
    Forget { id: String },
}

#[derive(Subcommand, Debug)]
pub enum SecretsAction {
    /// Store a secret; its value is read from standard input (never from the command line)
    Set { name: String },
    /// Whether a secret is stored (its value is never shown)
    Check { name: String },
    /// Remove a secret
    Delete { name: String },
}

#[derive(Subcommand, Debug)]
pub enum PolicyAction {
    /// Validate a policy file (default: the one in force); problems at file:line:column
    Check { path: Option<PathBuf> },
    /// The policy in force: its file, version and rules
    Show,
    /// What the policy decides for a proposed call, and why, without running it
    Explain {
        /// The tool, as `<server>.<tool>`
        tool: String,
        /// The workflow the call would be made in
        #[arg(long)]
        workflow: String,
        /// The call's arguments, a JSON object
        #[arg(long, value_name = "JSON", default_value = "{}")]
        args: String,
        /// The task's inputs, a JSON object
        #[arg(long, value_name = "JSON", default_value = "{}")]
        inputs: String,
        /// Who the call would act for [default: the acting identity]
        #[arg(long = "for", value_name = "IDENTITY")]
        requester: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum GrantsAction {
    /// Give a grant: calls it covers run without approval until it is used up, expires or
    /// is revoked (it never overrides a deny)
    Add {
        /// A glob over `<server>.<tool>`
        tool: String,
        /// Only tasks of this workflow
        #[arg(long)]
        workflow: Option<String>,
        /// Only this task
        #[arg(long)]
        task: Option<String>,
        /// A CEL condition over the call, e.g. 'args.amount_cents < 10000'
        #[arg(long = "when", value_name = "CEL")]
        condition: Option<String>,
        /// At most this many calls
        #[arg(long)]
        uses: Option<i64>,
        /// For this long, e.g. 1h or 30m
        #[arg(long = "for", value_name = "DURATION")]
        valid_for: Option<String>,
        /// The approval this grant comes from
        #[arg(long = "from-approval", value_name = "APPROVAL")]
        from_approval: Option<String>,
        #[arg(long)]
        note: Option<String>,
    },
    /// Revoke a grant: it stops matching at once
    Revoke { grant: String },
}

#[derive(Subcommand, Debug)]
pub enum AuditAction {
    /// Check the hash chain from the first entry to the last; names every entry that was
    /// changed, deleted or replaced (exit code 7 when one was)
    Verify {
        /// A head an earlier `verify` printed (SEQ:HASH), kept outside the database: the
        /// log must still hold that entry unchanged, so entries cut off its end, or a log
        /// rewritten and re-chained, are caught too
        #[arg(long, value_name = "SEQ:HASH")]
        expect: Option<airlock_engine::store::AuditAnchor>,
    },
    /// List entries: the newest ones (oldest of them first), or those after `--after`
    List {
        /// Only this task's entries (an id or the start of one)
        #[arg(long)]
        task: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Entries after this sequence number, oldest first (to page forward)
        #[arg(long, value_name = "SEQ")]
        after: Option<i64>,
    },
}
