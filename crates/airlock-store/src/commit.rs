//! Task commits: everything one transition writes (events, the task's projection, steps,
//! ledger rows, approvals) made durable atomically, guarded by the sequence number the
//! engine last saw and by its lease. Concurrent commits are grouped into one transaction
//! by a single writer, so many tasks share one fsync.

mod batch;
mod direct;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

pub(crate) use batch::Batch;
use batch::ROWS_PER_STATEMENT;
pub use direct::DirectError;
pub(crate) use direct::Statements;
use direct::{Direct, Row};

use crate::Millis;
use crate::error::{SqlContext, StoreError};
use crate::open::Store;
use crate::records::{
    ApprovalStatus, CallAllowance, CallRefusal, HeldCall, NewEvent, TaskProjection, ToolCallOutcome,
};
use crate::writer::{Writer, WriterGuard};

/// Most commits one transaction takes; bounds the latency of the first in line.
const MAX_GROUP: usize = 256;

#[derive(Clone, Debug)]
pub struct NewTask {
    pub workflow_id: i64,
    pub workflow_name: String,
    pub requester: String,
    pub inputs: Value,
}

#[derive(Clone, Debug)]
pub enum StepWrite {
    /// A step begins, or a new attempt of it begins.
    Start {
        step_no: i64,
        state_name: String,
        kind: String,
        attempt: i64,
    },
    End {
        step_no: i64,
        outcome: String,
        error: Option<String>,
    },
}

/// A proposed call as the ledger identifies it: the same whether it is made or refused.
#[derive(Clone, Debug)]
pub struct ProposedCall {
    pub id: String,
    pub step_no: i64,
    pub attempt: i64,
    pub call_index: i64,
    pub tool: String,
    pub args: Value,
    pub args_hash: String,
    pub idempotency_key: String,
    pub idempotent: bool,
}

#[derive(Clone, Debug)]
pub enum ToolCallWrite {
    /// Written before the call is made.
    Intent {
        call: ProposedCall,
        /// What let the call through the policy.
        allowed: CallAllowance,
    },
    /// Written after the call returned (or when a person resolved an in-doubt call).
    Outcome {
        id: String,
        outcome: ToolCallOutcome,
        result: Option<Value>,
        error: Option<String>,
        resolved_by: Option<String>,
    },
    /// A proposed call that was refused instead of made: one whole row, its outcome
    /// `refused` from the start (there is no intent to be in doubt about).
    Refused {
        call: ProposedCall,
        refusal: CallRefusal,
        /// Why, in words (the row's `error`).
        reason: String,
    },
}

#[derive(Clone, Debug)]
pub enum ApprovalWrite {
    Request {
        id: String,
        step_no: i64,
        state_name: String,
        prompt: String,
        approvers: Vec<String>,
        /// When it was asked for: the instant `expires_at` counts from, which can be a
        /// moment before the commit that records it.
        requested_at: Millis,
        expires_at: Option<Millis>,
        tool_call_id: Option<String>,
        args_hash: Option<String>,
        policy_version: Option<String>,
        held_call: Option<Box<HeldCall>>,
    },
    /// Only a pending approval can be decided; deciding twice is a conflict.
    Decide { id: String, status: ApprovalStatus },
}

/// One transition of one task.
#[derive(Clone, Debug)]
pub struct TaskCommit {
    pub task_id: String,
    pub at: Millis,
    /// The `last_seq` the engine saw; 0 for a new task.
    pub expected_seq: i64,
    /// When set, the commit only lands while this engine holds the task's lease.
    pub lease_owner: Option<String>,
    pub create: Option<NewTask>,
    pub events: Vec<NewEvent>,
    /// The task's position. Its `state` is not written: outputs are, one row each, below.
    pub projection: TaskProjection,
    /// The outputs this transition set, by state name.
    pub outputs: Vec<(String, Value)>,
    pub steps: Vec<StepWrite>,
    pub tool_calls: Vec<ToolCallWrite>,
    pub approvals: Vec<ApprovalWrite>,
    /// Give up the lease in the same transaction (the task now waits for a person or ended).
    pub release_lease: bool,
}

/// A commit either landed, or was refused without writing anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed {
        last_seq: i64,
    },
    /// Someone else appended first: the engine's view is stale.
    StaleSequence {
        expected: i64,
        found: i64,
    },
    LeaseLost {
        holder: Option<String>,
    },
    TaskMissing,
    TaskExists,
    ApprovalAlreadyDecided {
        id: String,
    },
}

pub(crate) struct Pending {
    commit: TaskCommit,
    /// Made by the committing task, so that the writer, which every commit waits for,
    /// does not have to.
    text: CommitText,
    reply: oneshot::Sender<Result<CommitOutcome, StoreError>>,
}

/// A commit's text: its events' bodies as stored (each serialised once: the same text
/// goes to `task_events` and, for an audited event, into the audit entry and its hash),
/// and its audit entries, not yet chained.
#[derive(Default)]
struct CommitText {
    bodies: Vec<String>,
    audit: Vec<crate::audit::NewEntry>,
}

impl CommitText {
    fn of(commit: &TaskCommit) -> CommitText {
        let bodies: Vec<String> = commit.events.iter().map(|e| e.body.to_string()).collect();
        let mut audit = Vec::new();
        crate::audit::entries_of(commit, &bodies, &mut audit);
        CommitText { bodies, audit }
    }
}

impl Store {
    /// Makes one transition durable. Returns once it is on disk (or refused).
    ///
    /// Waiting for the disk blocks the calling thread (its other tasks move to another
    /// worker), so on a multi-threaded runtime this must not be called from inside a
    /// `LocalSet`, where tokio cannot move them and panics.
    ///
    /// A commit made while no other is in flight and nobody uses the connection is
    /// written by the caller itself: there is nothing to group it with, and going through
    /// the writer task would add two thread hand-offs (to the writer and back) to a single
    /// task's every step. Any other commit queues for the writer, which groups them.
    pub async fn commit(&self, commit: TaskCommit) -> Result<CommitOutcome, StoreError> {
        let text = CommitText::of(&commit);
        let (_in_flight, alone) = self.inner.writer.enter_commit();
        if alone && let Some(mut conn) = self.inner.writer.try_lock() {
            let result = write_group(&mut conn, &[&commit], vec![text]).await;
            return result.map(|mut o| o.remove(0)).map_err(|e| {
                tracing::error!(error = %e, "commit failed");
                StoreError::Corrupt {
                    what: "committing a transition",
                    detail: e.to_string(),
                }
            });
        }
        let (reply, rx) = oneshot::channel();
        self.inner
            .commits
            .send(Pending {
                commit,
                text,
                reply,
            })
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }
}

impl Store {
    /// Pages the store's writer has written since it was opened (every write, commits
    /// and the rest): divided by the commits made meanwhile, the pages a commit costs on
    /// disk. For benchmarks and diagnostics.
    pub async fn pages_written(&self) -> Result<i64, StoreError> {
        let mut guard = self.inner.writer.lock().await;
        let (conn, statements, _) = guard.parts();
        let mut handle = conn
            .lock_handle()
            .await
            .ctx("lending the writer's handle")?;
        Ok(statements.on(&mut handle).pages_written())
    }
}

pub(crate) async fn run_writer(writer: Arc<Writer>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(p) => group.push(p),
                Err(_) => break,
            }
        }
        let mut conn = writer.lock().await;
        let texts: Vec<CommitText> = group
            .iter_mut()
            .map(|p| std::mem::take(&mut p.text))
            .collect();
        let commits: Vec<&TaskCommit> = group.iter().map(|p| &p.commit).collect();
        match write_group(&mut conn, &commits, texts).await {
            Ok(outcomes) => {
                for (pending, outcome) in group.into_iter().zip(outcomes) {
                    let _ = pending.reply.send(Ok(outcome));
                }
            }
            // The database is locked by another process: so it is for each commit alone.
            Err(e) if group.len() > 1 && !e.is_busy() => {
                // One bad commit must not sink the others: write each on its own.
                tracing::warn!(error = %e, commits = group.len(), "group commit failed; writing one by one");
                for pending in group {
                    let text = CommitText::of(&pending.commit);
                    let result = write_group(&mut conn, &[&pending.commit], vec![text])
                        .await
                        .map(|mut o| o.remove(0));
                    let _ = pending.reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "commit failed");
                for pending in group {
                    let _ = pending.reply.send(Err(StoreError::Corrupt {
                        what: "committing a transition",
                        detail: e.to_string(),
                    }));
                }
            }
        }
    }
}

/// Writes the commits in one transaction (one fsync), on the writer's handle directly
/// (see [`direct`]): `BEGIN IMMEDIATE` and the checks of every commit (one `SELECT` per
/// table for the whole group, and the audit chain's head), read under the write lock;
/// then every row of every commit that passed, a few multi-row statements per table for
/// the whole group, and `COMMIT`. A refused commit writes nothing because it is left out
/// of the second batch; a savepoint is not needed (and would make SQLite journal every
/// page the commit touches).
async fn write_group(
    conn: &mut WriterGuard<'_>,
    commits: &[&TaskCommit],
    texts: Vec<CommitText>,
) -> Result<Vec<CommitOutcome>, StoreError> {
    let (conn, statements, unfinished) = conn.parts();
    // The one hand-off to sqlx's thread; after it, nothing in this write awaits, so it
    // cannot be abandoned half-way.
    let mut handle = conn
        .lock_handle()
        .await
        .ctx("lending the writer's handle")?;
    // Only a panic can leave this unfinished: the next holder of the lock then rolls back.
    unfinished.write_starts();
    off_the_runtime(|| {
        let mut db = statements.on(&mut handle);
        let result = write_group_in_tx(&mut db, commits, texts);
        if result.is_err() {
            // A failed batch stops at the failing statement, before its `COMMIT`: roll
            // back what it left open (an error here only means nothing was open).
            let _ = db.execute("ROLLBACK");
        }
        // Left marked if the rollback did not close it: the next holder tries again.
        if !db.in_transaction() {
            unfinished.write_done();
        }
        result
    })
}

/// Runs `f`, which waits for the disk, without holding up the other tasks of a
/// multi-threaded runtime (their worker is handed to another thread meanwhile, itself a
/// thread hand-off, but one the commit does not wait for). On a current-thread runtime
/// there is no other worker to hand them to. (Tokio refuses this inside a `LocalSet` on a
/// multi-threaded runtime: see [`Store::commit`].)
fn off_the_runtime<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn write_group_in_tx(
    db: &mut Direct<'_>,
    commits: &[&TaskCommit],
    texts: Vec<CommitText>,
) -> Result<Vec<CommitOutcome>, StoreError> {
    let audited = commits.iter().any(|c| {
        c.events
            .iter()
            .any(|e| !crate::audit::UNAUDITED_KINDS.contains(&e.kind.as_str()))
    });
    let mut seen = read_guards(db, commits, audited)?;
    let (outcomes, changes): (Vec<CommitOutcome>, Vec<RowChange>) =
        commits.iter().map(|c| seen.check(c)).unzip();

    let mut bodies = Vec::with_capacity(texts.len());
    let mut audit = Vec::new();
    // A task appears at most once per layer, so no statement touches a row twice; a
    // second commit of the same task in this group goes in the next layer.
    let mut layers: Vec<Vec<usize>> = Vec::new();
    let mut per_task: HashMap<&str, usize> = HashMap::new();
    for (i, ((commit, outcome), text)) in commits.iter().zip(&outcomes).zip(texts).enumerate() {
        bodies.push(text.bodies);
        if !matches!(outcome, CommitOutcome::Committed { .. }) {
            continue;
        }
        audit.extend(text.audit);
        let n = per_task.entry(commit.task_id.as_str()).or_insert(0);
        if layers.len() <= *n {
            layers.push(Vec::new());
        }
        layers[*n].push(i);
        *n += 1;
    }
    let mut batch = Batch::new();
    for layer in &layers {
        let rows: Vec<(&TaskCommit, RowChange, Vec<String>)> = layer
            .iter()
            .map(|&i| (commits[i], changes[i], std::mem::take(&mut bodies[i])))
            .collect();
        write_layer(&mut batch, rows)?;
    }
    // Chained onto the head read under this transaction's write lock, so it lands (or
    // rolls back) with the events, and a retry one by one re-reads the head.
    crate::audit::push_entries(&mut batch, seen.audit_head.take(), audit);
    batch.statement("COMMIT");
    db.run(&batch, |_| Ok::<(), DirectError>(()))
        .map_err(|source| StoreError::Sqlite {
            what: "writing a group of commits",
            source,
        })?;
    Ok(outcomes)
}

/// What the checks of a group read, updated as each commit of the group is accepted (a
/// later commit of the same task must follow the earlier one).
struct Seen {
    /// Task id to its row as the checks need it; absent: no such task.
    tasks: HashMap<String, SeenTask>,
    /// Pending approval id to its task.
    pending: HashMap<String, String>,
    audit_head: Option<(i64, String)>,
}

/// A task's row as a group's checks see it.
struct SeenTask {
    last_seq: i64,
    lease_owner: Option<String>,
    /// The columns of the `tasks` indexes a commit may change (`tasks_by_status`,
    /// `tasks_by_lease`): a commit that leaves them as they are does not set them, so
    /// SQLite does not rewrite those indexes' entries (it would, even to the same values).
    status: String,
    wake_at: Option<i64>,
}

/// How a commit that passed its checks changes its task's row.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RowChange {
    Create,
    /// Status, wake time and lease as they were: only the position moves.
    Moves,
    /// Any column may change, indexed ones included.
    Any,
}

/// `BEGIN IMMEDIATE` and everything the checks need, in one batch.
fn read_guards(
    db: &mut Direct<'_>,
    commits: &[&TaskCommit],
    audited: bool,
) -> Result<Seen, StoreError> {
    let mut ids: Vec<&str> = commits.iter().map(|c| c.task_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let decided: Vec<&str> = commits
        .iter()
        .flat_map(|c| &c.approvals)
        .filter_map(|a| match a {
            ApprovalWrite::Decide { id, .. } => Some(id.as_str()),
            ApprovalWrite::Request { .. } => None,
        })
        .collect();
    // IMMEDIATE takes the write lock up front (waiting on busy_timeout if another
    // process holds it); a deferred transaction that reads first cannot wait and fails.
    let mut batch = Batch::new();
    batch.statement("BEGIN IMMEDIATE");
    batch.padded_list(
        "SELECT 'task', id, last_seq, lease_owner, status, wake_at FROM tasks WHERE id IN (",
        ")",
        ids.iter().copied(),
    );
    if !decided.is_empty() {
        batch.padded_list(
            "SELECT 'approval', id, NULL, task_id, NULL, NULL FROM approvals WHERE status = 'pending' AND id IN (",
            ")",
            decided.iter().copied(),
        );
    }
    if audited {
        batch.statement(
            "SELECT 'audit', hash, seq, NULL, NULL, NULL FROM audit_log ORDER BY seq DESC LIMIT 1",
        );
    }
    let mut seen = Seen {
        tasks: HashMap::with_capacity(ids.len()),
        pending: HashMap::new(),
        audit_head: None,
    };
    db.run(&batch, |row| seen.note(row))?;
    Ok(seen)
}

impl Seen {
    /// Notes one row of the checks' batch.
    fn note(&mut self, row: &Row) -> Result<(), StoreError> {
        let text = |i| {
            row.text(i).map_err(|e| StoreError::Corrupt {
                what: "a commit check",
                detail: e.to_string(),
            })
        };
        let tag = text(0)?.unwrap_or_default();
        let value = text(1)?.unwrap_or_default();
        let (number, other) = (row.int(2), text(3)?);
        let seen = self;
        match (tag.as_str(), number, other) {
            ("task", Some(last_seq), lease_owner) => {
                let status = text(4)?.unwrap_or_default();
                let wake_at = row.int(5);
                let task = SeenTask {
                    last_seq,
                    lease_owner,
                    status,
                    wake_at,
                };
                seen.tasks.insert(value, task);
            }
            ("approval", _, Some(task_id)) => {
                seen.pending.insert(value, task_id);
            }
            ("audit", Some(seq), _) => seen.audit_head = Some((seq, value)),
            (tag, ..) => {
                return Err(StoreError::Corrupt {
                    what: "a commit check",
                    detail: format!("unexpected row tagged {tag:?}"),
                });
            }
        }
        Ok(())
    }
}

impl Seen {
    /// Whether `c` may land on what was read (and the commits before it in the group),
    /// and how it changes its task's row; when it may, what it changes is noted for the
    /// commits after it.
    fn check(&mut self, c: &TaskCommit) -> (CommitOutcome, RowChange) {
        let outcome = self.check_guards(c);
        let change = match (&outcome, c.create.is_some()) {
            (_, true) => RowChange::Create,
            (CommitOutcome::Committed { .. }, false) => self.row_change(c),
            _ => RowChange::Any,
        };
        if let CommitOutcome::Committed { last_seq } = outcome {
            let holder = match self.tasks.get(&c.task_id) {
                _ if c.release_lease => None,
                Some(task) => task.lease_owner.clone(),
                None => c.lease_owner.clone(),
            };
            self.tasks.insert(
                c.task_id.clone(),
                SeenTask {
                    last_seq,
                    lease_owner: holder,
                    status: c.projection.status.as_str().to_owned(),
                    wake_at: c.projection.wake_at,
                },
            );
            for approval in &c.approvals {
                match approval {
                    ApprovalWrite::Decide { id, .. } => {
                        self.pending.remove(id);
                    }
                    ApprovalWrite::Request { id, .. } => {
                        self.pending.insert(id.clone(), c.task_id.clone());
                    }
                }
            }
        }
        (outcome, change)
    }

    /// How a commit that passed its checks, of a task that exists, changes its row.
    fn row_change(&self, c: &TaskCommit) -> RowChange {
        match self.tasks.get(&c.task_id) {
            Some(task)
                if !c.release_lease
                    && !c.projection.status.is_terminal()
                    && task.status == c.projection.status.as_str()
                    && task.wake_at == c.projection.wake_at =>
            {
                RowChange::Moves
            }
            _ => RowChange::Any,
        }
    }

    fn check_guards(&self, c: &TaskCommit) -> CommitOutcome {
        for approval in &c.approvals {
            if let ApprovalWrite::Decide { id, .. } = approval
                && self.pending.get(id) != Some(&c.task_id)
            {
                return CommitOutcome::ApprovalAlreadyDecided { id: id.clone() };
            }
        }
        match (&c.create, self.tasks.get(&c.task_id)) {
            (Some(_), Some(_)) => return CommitOutcome::TaskExists,
            (Some(_), None) => {}
            (None, None) => return CommitOutcome::TaskMissing,
            (None, Some(task)) if task.last_seq != c.expected_seq => {
                return CommitOutcome::StaleSequence {
                    expected: c.expected_seq,
                    found: task.last_seq,
                };
            }
            (None, Some(task)) => {
                if c.lease_owner.is_some() && task.lease_owner != c.lease_owner {
                    return CommitOutcome::LeaseLost {
                        holder: task.lease_owner.clone(),
                    };
                }
            }
        }
        CommitOutcome::Committed {
            last_seq: c.expected_seq + c.events.len() as i64,
        }
    }
}

/// A step row as a commit leaves it: its writes folded in order into one upsert (the step
/// started in this commit) or one update of its end.
enum NetStep<'a> {
    Upsert {
        state_name: &'a str,
        kind: &'a str,
        attempts: i64,
        end: Option<(&'a str, Option<&'a str>)>,
    },
    End {
        outcome: &'a str,
        error: Option<&'a str>,
    },
}

fn fold_steps(steps: &[StepWrite]) -> Vec<(i64, NetStep<'_>)> {
    let mut net: Vec<(i64, NetStep<'_>)> = Vec::with_capacity(steps.len());
    for step in steps {
        match step {
            StepWrite::Start {
                step_no,
                state_name,
                kind,
                attempt,
            } => {
                let slot = net.iter_mut().find(|(n, _)| n == step_no);
                match slot {
                    // A second start of a row keeps what the first wrote (or what the
                    // row held): only the attempt changes and the end is cleared.
                    Some((_, NetStep::Upsert { attempts, end, .. })) => {
                        *attempts = *attempt;
                        *end = None;
                    }
                    Some((_, slot @ NetStep::End { .. })) => {
                        *slot = NetStep::Upsert {
                            state_name,
                            kind,
                            attempts: *attempt,
                            end: None,
                        };
                    }
                    None => net.push((
                        *step_no,
                        NetStep::Upsert {
                            state_name,
                            kind,
                            attempts: *attempt,
                            end: None,
                        },
                    )),
                }
            }
            StepWrite::End {
                step_no,
                outcome,
                error,
            } => {
                let new_end = (outcome.as_str(), error.as_deref());
                match net.iter_mut().find(|(n, _)| n == step_no) {
                    Some((_, NetStep::Upsert { end, .. })) => *end = Some(new_end),
                    Some((_, slot @ NetStep::End { .. })) => {
                        *slot = NetStep::End {
                            outcome: new_end.0,
                            error: new_end.1,
                        };
                    }
                    None => net.push((
                        *step_no,
                        NetStep::End {
                            outcome: new_end.0,
                            error: new_end.1,
                        },
                    )),
                }
            }
        }
    }
    net
}

/// A call's outcome columns as written.
#[derive(Clone, Copy)]
struct OutcomeCols<'a> {
    outcome: ToolCallOutcome,
    result: Option<&'a Value>,
    error: Option<&'a str>,
    resolved_by: Option<&'a str>,
}

/// A ledger row as a commit leaves it: the intent inserted (with its outcome when the
/// same commit has it), or the outcome set on an existing row.
enum NetCall<'a> {
    Insert {
        intent: IntentCols<'a>,
        outcome: Option<OutcomeCols<'a>>,
    },
    Update(OutcomeCols<'a>),
}

/// An intent's columns as written.
#[derive(Clone, Copy)]
struct IntentCols<'a> {
    step_no: i64,
    attempt: i64,
    call_index: i64,
    tool: &'a str,
    args: &'a Value,
    args_hash: &'a str,
    idempotency_key: &'a str,
    idempotent: bool,
    decision: Decided<'a>,
}

impl<'a> IntentCols<'a> {
    fn of(call: &'a ProposedCall, decision: Decided<'a>) -> IntentCols<'a> {
        IntentCols {
            step_no: call.step_no,
            attempt: call.attempt,
            call_index: call.call_index,
            tool: &call.tool,
            args: &call.args,
            args_hash: &call.args_hash,
            idempotency_key: &call.idempotency_key,
            idempotent: call.idempotent,
            decision,
        }
    }
}

/// What decided a ledgered call: it was let through, or refused.
#[derive(Clone, Copy)]
enum Decided<'a> {
    Allowed(&'a CallAllowance),
    Refused(&'a CallRefusal),
}

fn fold_calls<'a>(calls: &'a [ToolCallWrite]) -> Vec<(&'a str, NetCall<'a>)> {
    /// A row inserted replaces whatever an earlier write of the same id left.
    fn put<'a>(net: &mut Vec<(&'a str, NetCall<'a>)>, id: &'a str, insert: NetCall<'a>) {
        match net.iter_mut().find(|(i, _)| *i == id) {
            Some((_, slot)) => *slot = insert,
            None => net.push((id, insert)),
        }
    }
    let mut net: Vec<(&'a str, NetCall<'a>)> = Vec::with_capacity(calls.len());
    for call in calls {
        match call {
            ToolCallWrite::Intent { call, allowed } => {
                let insert = NetCall::Insert {
                    intent: IntentCols::of(call, Decided::Allowed(allowed)),
                    outcome: None,
                };
                put(&mut net, &call.id, insert);
            }
            ToolCallWrite::Refused {
                call,
                refusal,
                reason,
            } => {
                let insert = NetCall::Insert {
                    intent: IntentCols::of(call, Decided::Refused(refusal)),
                    outcome: Some(OutcomeCols {
                        outcome: ToolCallOutcome::Refused,
                        result: None,
                        error: Some(reason),
                        resolved_by: None,
                    }),
                };
                put(&mut net, &call.id, insert);
            }
            ToolCallWrite::Outcome {
                id,
                outcome,
                result,
                error,
                resolved_by,
            } => {
                let new = OutcomeCols {
                    outcome: *outcome,
                    result: result.as_ref(),
                    error: error.as_deref(),
                    resolved_by: resolved_by.as_deref(),
                };
                // `resolved_by` is kept when a later outcome names no one.
                let merge = |old: Option<OutcomeCols<'a>>| OutcomeCols {
                    resolved_by: new.resolved_by.or(old.and_then(|o| o.resolved_by)),
                    ..new
                };
                match net.iter_mut().find(|(i, _)| i == id) {
                    Some((_, NetCall::Insert { outcome, .. })) => *outcome = Some(merge(*outcome)),
                    Some((_, NetCall::Update(old))) => *old = merge(Some(*old)),
                    None => net.push((id, NetCall::Update(merge(None)))),
                }
            }
        }
    }
    net
}

/// Appends the rows of commits of distinct tasks to the batch: a few statements per
/// table, each covering every commit of the layer. `bodies` are the commits' events'
/// bodies as stored.
///
/// Inserts read their rows from a padded `VALUES` list (see [`Batch::padded_values`]),
/// `INSERT … SELECT * FROM (VALUES …) AS v WHERE column1 IS NOT NULL`; updates join
/// one, `WITH v (…) AS (VALUES …) UPDATE … FROM v WHERE <key> = v.<key>`, where a NULL
/// row matches nothing. Both are understood by SQLite (3.33 on) and Postgres alike.
fn write_layer(
    batch: &mut Batch,
    layer: Vec<(&TaskCommit, RowChange, Vec<String>)>,
) -> Result<(), StoreError> {
    let updated = |kind: RowChange| -> Vec<&TaskCommit> {
        layer
            .iter()
            .filter(|(_, change, _)| *change == kind)
            .map(|(c, _, _)| *c)
            .collect()
    };
    update_tasks(batch, &updated(RowChange::Any), RowChange::Any);
    update_tasks(batch, &updated(RowChange::Moves), RowChange::Moves);
    let mut layer: Vec<(&TaskCommit, Vec<String>)> = layer
        .into_iter()
        .map(|(c, _, bodies)| (c, bodies))
        .collect();
    let creates: Vec<(&TaskCommit, &NewTask)> = layer
        .iter()
        .filter_map(|(c, _)| c.create.as_ref().map(|n| (*c, n)))
        .collect();
    for chunk in creates.chunks(ROWS_PER_STATEMENT) {
        batch.padded_values(
            "INSERT INTO tasks (id, workflow_id, workflow_name, requester, inputs, status,
                current_state, step_no, attempt, phase, state, error, wake_at, recovery_failures,
                last_seq, lease_owner, lease_expires_at, created_at, updated_at)
             SELECT * FROM (",
            19,
            ") AS v WHERE column1 IS NOT NULL",
            chunk,
            |b, (c, new)| {
                let p = &c.projection;
                b.bind(c.task_id.as_str());
                b.bind(new.workflow_id);
                b.bind(new.workflow_name.as_str());
                b.bind(new.requester.as_str());
                b.bind(new.inputs.to_string());
                b.bind(p.status.as_str());
                b.bind(p.current_state.as_deref());
                b.bind(p.step_no);
                b.bind(p.attempt);
                b.bind(p.phase.to_string());
                // Outputs have their own rows (`task_outputs`).
                b.bind("{}");
                b.bind(p.error.as_deref());
                b.bind(p.wake_at);
                b.bind(p.recovery_failures);
                b.bind(c.expected_seq + c.events.len() as i64);
                b.bind(if c.release_lease {
                    None
                } else {
                    c.lease_owner.as_deref()
                });
                // The lease's expiry is set by the lease claim, not by a commit.
                b.bind(None::<i64>);
                b.bind(c.at);
                b.bind(c.at);
            },
        );
    }

    let mut events: Vec<(&TaskCommit, i64, &str, String)> = Vec::new();
    for (c, bodies) in &mut layer {
        let c: &TaskCommit = c;
        for (i, (event, body)) in c.events.iter().zip(std::mem::take(bodies)).enumerate() {
            events.push((c, c.expected_seq + 1 + i as i64, event.kind.as_str(), body));
        }
    }
    for chunk in chunks_owned(events) {
        batch.padded_values(
            "INSERT INTO task_events (task_id, seq, at, kind, body) SELECT * FROM (",
            5,
            ") AS v WHERE column1 IS NOT NULL",
            chunk,
            |b, (c, seq, kind, body)| {
                b.bind(c.task_id.as_str());
                b.bind(seq);
                b.bind(c.at);
                b.bind(kind);
                b.bind(body);
            },
        );
    }

    // A commit names each output once (the engine's drafts keep a set); should one name a
    // state twice, the last value wins, as it did when they were written one by one.
    let mut outputs: Vec<(&TaskCommit, &str, &Value)> = Vec::new();
    for (c, _) in &layer {
        let c: &TaskCommit = c;
        for (i, (name, value)) in c.outputs.iter().enumerate() {
            if !c.outputs[i + 1..].iter().any(|(later, _)| later == name) {
                outputs.push((c, name, value));
            }
        }
    }
    for chunk in outputs.chunks(ROWS_PER_STATEMENT) {
        batch.padded_values(
            "INSERT INTO task_outputs (task_id, state_name, output) SELECT * FROM (",
            3,
            ") AS v WHERE column1 IS NOT NULL
             ON CONFLICT (task_id, state_name) DO UPDATE SET output = excluded.output",
            chunk,
            |b, (c, name, value)| {
                b.bind(c.task_id.as_str());
                b.bind(*name);
                b.bind(value.to_string());
            },
        );
    }

    let mut step_upserts = Vec::new();
    let mut step_ends = Vec::new();
    for (c, _) in &layer {
        let c: &TaskCommit = c;
        for (step_no, net) in fold_steps(&c.steps) {
            match net {
                NetStep::Upsert {
                    state_name,
                    kind,
                    attempts,
                    end,
                } => step_upserts.push((c, step_no, state_name, kind, attempts, end)),
                NetStep::End { outcome, error } => step_ends.push((c, step_no, outcome, error)),
            }
        }
    }
    for chunk in step_upserts.chunks(ROWS_PER_STATEMENT) {
        batch.padded_values(
            "INSERT INTO steps (task_id, step_no, state_name, kind, attempts, started_at,
                ended_at, outcome, error)
             SELECT * FROM (",
            9,
            ") AS v WHERE column1 IS NOT NULL
             ON CONFLICT (task_id, step_no) DO UPDATE SET attempts = excluded.attempts,
                ended_at = excluded.ended_at, outcome = excluded.outcome, error = excluded.error",
            chunk,
            |b, (c, step_no, state_name, kind, attempts, end)| {
                b.bind(c.task_id.as_str());
                b.bind(*step_no);
                b.bind(*state_name);
                b.bind(*kind);
                b.bind(*attempts);
                b.bind(c.at);
                b.bind(end.map(|_| c.at));
                b.bind(end.map(|(outcome, _)| outcome));
                b.bind(end.and_then(|(_, error)| error));
            },
        );
    }
    for chunk in step_ends.chunks(ROWS_PER_STATEMENT) {
        batch.padded_values(
            "WITH v (task_id, step_no, ended_at, outcome, error) AS (",
            5,
            ") UPDATE steps SET ended_at = v.ended_at, outcome = v.outcome, error = v.error
             FROM v WHERE steps.task_id = v.task_id AND steps.step_no = v.step_no",
            chunk,
            |b, (c, step_no, outcome, error)| {
                b.bind(c.task_id.as_str());
                b.bind(*step_no);
                b.bind(c.at);
                b.bind(*outcome);
                b.bind(*error);
            },
        );
    }

    let mut call_inserts = Vec::new();
    let mut call_outcomes = Vec::new();
    for (c, _) in &layer {
        let c: &TaskCommit = c;
        for (id, net) in fold_calls(&c.tool_calls) {
            match net {
                NetCall::Insert { intent, outcome } => call_inserts.push((c, id, intent, outcome)),
                NetCall::Update(outcome) => call_outcomes.push((c, id, outcome)),
            }
        }
    }
    for chunk in call_inserts.chunks(ROWS_PER_STATEMENT) {
        batch.padded_values(
            "INSERT INTO tool_calls (id, task_id, step_no, attempt, call_index, tool, args,
                args_hash, idempotency_key, idempotent, intent_at, outcome, result, error,
                outcome_at, resolved_by, allowed_by, allow_rule, allow_ref, approved_by,
                refused_by, refusal_rule, refusal_ref, rejected_by)
             SELECT * FROM (",
            24,
            ") AS v WHERE column1 IS NOT NULL",
            chunk,
            |b, (c, id, i, outcome)| {
                b.bind(*id);
                b.bind(c.task_id.as_str());
                b.bind(i.step_no);
                b.bind(i.attempt);
                b.bind(i.call_index);
                b.bind(i.tool);
                b.bind(i.args.to_string());
                b.bind(i.args_hash);
                b.bind(i.idempotency_key);
                b.bind(i.idempotent);
                b.bind(c.at);
                b.bind(outcome.map(|o| o.outcome.as_str()));
                b.bind(outcome.and_then(|o| o.result).map(Value::to_string));
                b.bind(outcome.and_then(|o| o.error));
                b.bind(outcome.map(|_| c.at));
                b.bind(outcome.and_then(|o| o.resolved_by));
                let (allowed, refused) = match i.decision {
                    Decided::Allowed(a) => (Some(a), None),
                    Decided::Refused(r) => (None, Some(r)),
                };
                b.bind(allowed.map(|a| a.kind().as_str()));
                b.bind(allowed.and_then(CallAllowance::rule));
                b.bind(allowed.and_then(CallAllowance::reference));
                b.bind(allowed.and_then(CallAllowance::approver));
                b.bind(refused.map(|r| r.kind().as_str()));
                b.bind(refused.and_then(CallRefusal::rule));
                b.bind(refused.and_then(CallRefusal::approval));
                b.bind(refused.and_then(CallRefusal::person));
            },
        );
    }
    for chunk in call_outcomes.chunks(ROWS_PER_STATEMENT) {
        batch.padded_values(
            "WITH v (id, outcome, result, error, outcome_at, resolved_by) AS (",
            6,
            ") UPDATE tool_calls SET outcome = v.outcome, result = v.result, error = v.error,
                outcome_at = v.outcome_at, resolved_by = COALESCE(v.resolved_by, tool_calls.resolved_by)
             FROM v WHERE tool_calls.id = v.id",
            chunk,
            |b, (c, id, o)| {
                b.bind(*id);
                b.bind(o.outcome.as_str());
                b.bind(o.result.map(Value::to_string));
                b.bind(o.error);
                b.bind(c.at);
                b.bind(o.resolved_by);
            },
        );
    }

    // Approvals are few (a held call, a decision): one statement each.
    for (c, _) in &layer {
        for approval in &c.approvals {
            write_approval(batch, &c.task_id, approval)?;
        }
    }
    Ok(())
}

/// Updates the rows of tasks that existed before their commit, guarded by the sequence
/// the checks saw and the lease. A commit that keeps its task's status, wake time and
/// lease (`RowChange::Moves`, most steps) does not set those columns, so SQLite does not
/// rewrite their indexes' entries (see [`SeenTask`]); any other sets every column.
fn update_tasks(batch: &mut Batch, commits: &[&TaskCommit], change: RowChange) {
    // The columns both kinds set come first, in the same order, so one binder serves.
    const MOVES: &str = "id, expected_seq, lease_owner, current_state, step_no, attempt,
        phase, error, recovery_failures, last_seq, updated_at";
    const SET_MOVES: &str = "current_state = v.current_state, step_no = v.step_no,
        attempt = v.attempt, phase = v.phase, error = v.error,
        recovery_failures = v.recovery_failures, last_seq = v.last_seq,
        updated_at = v.updated_at";
    let (head, columns, set) = match change {
        RowChange::Create => return,
        RowChange::Moves => (format!("WITH v ({MOVES}) AS ("), 11, SET_MOVES.to_owned()),
        RowChange::Any => (
            format!("WITH v ({MOVES}, status, wake_at, release_lease, terminal) AS ("),
            15,
            format!(
                // An ended task's time stays when it ended: an answer recorded on it later
                // (an in-doubt call settled) must not stretch its duration.
                "{}, status = v.status, wake_at = v.wake_at,
                lease_owner = CASE WHEN v.release_lease THEN NULL ELSE tasks.lease_owner END,
                lease_expires_at = CASE WHEN v.release_lease THEN NULL ELSE tasks.lease_expires_at END,
                cancel_requested = CASE WHEN v.terminal THEN NULL ELSE tasks.cancel_requested END",
                SET_MOVES.replace(
                    "updated_at = v.updated_at",
                    "updated_at = CASE WHEN tasks.status IN ('succeeded', 'failed', 'cancelled')
                        THEN tasks.updated_at ELSE v.updated_at END"
                )
            ),
        ),
    };
    // The checks ran under this transaction's write lock, so every row matches; the guard
    // stays in the statement anyway, and its count is checked before COMMIT.
    let tail = format!(
        ") UPDATE tasks SET {set}
         FROM v
         WHERE tasks.id = v.id AND tasks.last_seq = v.expected_seq
            AND (v.lease_owner IS NULL OR tasks.lease_owner = v.lease_owner)"
    );
    for chunk in commits.chunks(ROWS_PER_STATEMENT) {
        batch.padded_values(&head, columns, &tail, chunk, |b, c| {
            let p = &c.projection;
            b.bind(c.task_id.as_str());
            b.bind(c.expected_seq);
            b.bind(c.lease_owner.as_deref());
            b.bind(p.current_state.as_deref());
            b.bind(p.step_no);
            b.bind(p.attempt);
            b.bind(p.phase.to_string());
            b.bind(p.error.as_deref());
            b.bind(p.recovery_failures);
            b.bind(c.expected_seq + c.events.len() as i64);
            b.bind(c.at);
            if change == RowChange::Any {
                b.bind(p.status.as_str());
                b.bind(p.wake_at);
                b.bind(c.release_lease);
                b.bind(p.status.is_terminal());
            }
        });
        batch.expect_changes(
            chunk.len(),
            "a checked task commit no longer matched its task",
        );
    }
}

/// `items` in owned chunks of [`ROWS_PER_STATEMENT`].
fn chunks_owned<T>(items: Vec<T>) -> Vec<Vec<T>> {
    let mut chunks = Vec::with_capacity(items.len().div_ceil(ROWS_PER_STATEMENT));
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        chunks.push(items.by_ref().take(ROWS_PER_STATEMENT).collect());
    }
    chunks
}

fn write_approval(
    batch: &mut Batch,
    task_id: &str,
    approval: &ApprovalWrite,
) -> Result<(), StoreError> {
    match approval {
        ApprovalWrite::Request {
            id,
            step_no,
            state_name,
            prompt,
            approvers,
            requested_at,
            expires_at,
            tool_call_id,
            args_hash,
            policy_version,
            held_call,
        } => {
            let approvers = serde_json::to_string(approvers).map_err(|e| StoreError::Corrupt {
                what: "approval approvers",
                detail: e.to_string(),
            })?;
            let held_call = held_call
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| StoreError::Corrupt {
                    what: "held call",
                    detail: e.to_string(),
                })?;
            batch.statement(
                "INSERT INTO approvals (id, task_id, step_no, state_name, tool_call_id, args_hash,
                    policy_version, prompt, approvers, status, requested_at, expires_at, held_call)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
            );
            batch.bind(id.as_str());
            batch.bind(task_id);
            batch.bind(*step_no);
            batch.bind(state_name.as_str());
            batch.bind(tool_call_id.as_deref());
            batch.bind(args_hash.as_deref());
            batch.bind(policy_version.as_deref());
            batch.bind(prompt.as_str());
            batch.bind(approvers);
            batch.bind(*requested_at);
            batch.bind(*expires_at);
            batch.bind(held_call);
        }
        ApprovalWrite::Decide { id, status } => {
            let (by, decided_at, reason, edited) = match status {
                ApprovalStatus::Pending => {
                    return Err(StoreError::Corrupt {
                        what: "approval decision",
                        detail: "a decision cannot be `pending`".into(),
                    });
                }
                ApprovalStatus::Approved {
                    by,
                    at,
                    reason,
                    edited_args,
                } => (
                    Some(by.as_str()),
                    *at,
                    reason.as_deref(),
                    edited_args.as_ref().map(Value::to_string),
                ),
                ApprovalStatus::Rejected { by, at, reason }
                | ApprovalStatus::Withdrawn { by, at, reason } => {
                    (Some(by.as_str()), *at, reason.as_deref(), None)
                }
                ApprovalStatus::Expired { at } => (None, *at, None, None),
            };
            batch.statement(
                "UPDATE approvals SET status = ?, decided_at = ?, decided_by = ?, reason = ?,
                    edited_args = ?
                 WHERE id = ? AND task_id = ? AND status = 'pending'",
            );
            batch.bind(status.as_str());
            batch.bind(decided_at);
            batch.bind(by);
            batch.bind(reason);
            batch.bind(edited);
            batch.bind(id.as_str());
            batch.bind(task_id);
            // Checked pending above under the same write lock, so this cannot miss; if it
            // does, the group fails rather than keep half a commit.
            batch.expect_changes(1, "a decided approval was checked pending");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
