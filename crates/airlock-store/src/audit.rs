//! The audit log: an append-only table whose rows are chained by hash, so a changed,
//! deleted or reordered row is detected by [`Store::verify_audit`].
//!
//! Every task commit appends one entry per event (except the pure bookkeeping kinds in
//! [`UNAUDITED_KINDS`]) in the same transaction as the events; other facts (a policy
//! version loaded, a grant, a vote) are appended with [`Store::append_audit`]. Both go
//! through this process's one writer connection, and read the chain's head inside a
//! `BEGIN IMMEDIATE` transaction, so two processes writing one file still build one chain.
//!
//! # The hash of an entry
//!
//! ```text
//! hash = lowercase_hex(sha256(F(prev_hash) F(seq) F(at) F(kind) F(actor) F(task_id) F(body)))
//! F(x) = decimal byte length of x, ":", the UTF-8 bytes of x, "\n"
//! ```
//!
//! `seq` and `at` (milliseconds since the Unix epoch) are written in decimal, `task_id` is
//! the empty string when there is none, and `body` is the column's text exactly as stored
//! (compact JSON; never re-serialised). The first entry's `prev_hash` is [`GENESIS`] (64
//! zeros); every other entry's is the `hash` of the entry with the previous `seq`. Sequence
//! numbers start at 1 and have no gaps.
//!
//! The length prefix is there because `actor` comes from people (`--as`): with plain
//! newline separators, an actor containing a newline could move text into `task_id` or
//! `body` and keep the hash. In Python:
//!
//! ```text
//! h = hashlib.sha256()
//! for f in (prev_hash, str(seq), str(at), kind, actor, task_id or "", body):
//!     b = f.encode(); h.update(str(len(b)).encode() + b":" + b + b"\n")
//! h.hexdigest()
//! ```
//!
//! What the chain cannot show by itself: entries removed from the *end* (the last rows
//! deleted leave a shorter valid chain). Keep the head that `verify_audit` reports
//! somewhere else to detect that.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::sqlite::SqliteRow;
use sqlx::{Connection, Row, SqliteConnection};

use crate::Millis;
use crate::commit::{Batch, TaskCommit};
use crate::error::{SqlContext, StoreError};
use crate::open::Store;

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Task event kinds that are bookkeeping, not decisions: not audited. Every other kind is,
/// so a new kind is audited unless it is added here.
pub const UNAUDITED_KINDS: &[&str] = &[
    "step_started",
    "step_succeeded",
    "step_failed",
    "tool_progress",
    "model_turn",
    "recovery_started",
    "recovery_failed",
];

/// Rows per `INSERT` (8 values each), well under SQLite's limit on bound values.
const INSERT_CHUNK: usize = 512;
/// Rows `verify_audit` reads at a time.
const VERIFY_PAGE: i64 = 1000;

/// An entry that is not part of a task commit.
#[derive(Clone, Debug)]
pub struct AuditEntryWrite {
    pub at: Millis,
    pub kind: String,
    pub actor: String,
    pub task_id: Option<String>,
    pub body: Value,
}

#[derive(Clone, Debug, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: Millis,
    pub kind: String,
    pub actor: String,
    pub task_id: Option<String>,
    pub body: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// Which entries to list.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub task_id: Option<String>,
    /// Only entries after this sequence number (to page forward).
    pub after_seq: Option<i64>,
    pub limit: Option<i64>,
    /// The newest entries first (the default is oldest first).
    pub newest_first: bool,
}

/// What [`Store::verify_audit`] found.
#[derive(Clone, Debug, Serialize)]
pub struct AuditReport {
    /// Rows read.
    pub entries: u64,
    /// The `hash` of the last row (by `seq`), to keep elsewhere and compare later.
    pub head: Option<String>,
    /// The last row's `seq`.
    pub head_seq: Option<i64>,
    pub problems: Vec<AuditProblem>,
}

impl AuditReport {
    /// The head as an anchor to keep outside the database.
    pub fn anchor(&self) -> Option<AuditAnchor> {
        Some(AuditAnchor {
            seq: self.head_seq?,
            hash: self.head.clone()?,
        })
    }
}

/// An entry an earlier verification saw, kept outside the database (`seq:hash`). The chain
/// alone cannot show that entries were cut off its end, nor that it was rebuilt from some
/// point on with fresh hashes; a log that still holds this entry, unchanged, was neither
/// cut short before it nor rewritten up to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditAnchor {
    pub seq: i64,
    pub hash: String,
}

impl std::fmt::Display for AuditAnchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for AuditAnchor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let shape = || {
            format!(
                "`{s}` is not an audit head: expected SEQ:HASH, as `airlock audit verify` prints it"
            )
        };
        let (seq, hash) = s.trim().split_once(':').ok_or_else(shape)?;
        let seq: i64 = seq.parse().map_err(|_| shape())?;
        let hex = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        if seq < 1 || !hex {
            return Err(shape());
        }
        Ok(AuditAnchor {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

impl AuditReport {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One thing wrong with the chain, naming the entry it is about.
#[derive(Clone, Debug, Serialize)]
pub struct AuditProblem {
    pub seq: i64,
    /// What the entry says about itself (absent for a missing entry).
    pub kind: Option<String>,
    pub task_id: Option<String>,
    pub at: Option<Millis>,
    pub fault: AuditFault,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum AuditFault {
    /// The stored hash is not the hash of the row's contents: the row (or its hash) was
    /// changed after it was written.
    Changed,
    /// Entries `seq..=last` are gone: the chain jumps from `seq - 1` to `last + 1`.
    Missing { last: i64 },
    /// The row's `prev_hash` is not the hash of the entry before it (`after`; 0 means the
    /// chain's start): an entry before it was replaced, or this one was put here.
    Unlinked { after: i64 },
    /// The row cannot be read as an entry (a column holds the wrong type).
    Unreadable { detail: String },
    /// The log ends before the anchor's entry (`anchor`): entries were cut off its end
    /// (the problem's `seq` is the first one gone).
    CutShort { anchor: i64 },
    /// The entry at the anchor's `seq` is not the one the anchor names: the log was
    /// rewritten up to here and re-chained.
    NotAnchor { expected: String },
}

/// The hash of one entry (see the module documentation for the formula).
pub fn entry_hash(
    prev_hash: &str,
    seq: i64,
    at: Millis,
    kind: &str,
    actor: &str,
    task_id: Option<&str>,
    body: &str,
) -> String {
    let mut h = Sha256::new();
    for field in [
        prev_hash,
        &seq.to_string(),
        &at.to_string(),
        kind,
        actor,
        task_id.unwrap_or(""),
        body,
    ] {
        h.update(field.len().to_string().as_bytes());
        h.update(b":");
        h.update(field.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// An entry on its way in, before it has a place in the chain.
#[derive(Clone)]
pub(crate) struct NewEntry {
    at: Millis,
    kind: String,
    actor: String,
    task_id: Option<String>,
    /// As it will be stored and hashed.
    body: String,
}

/// The audit entries of a commit that landed: one per audited event, with its stored body.
impl From<AuditEntryWrite> for NewEntry {
    fn from(entry: AuditEntryWrite) -> NewEntry {
        NewEntry {
            at: entry.at,
            kind: entry.kind,
            actor: entry.actor,
            task_id: entry.task_id,
            body: entry.body.to_string(),
        }
    }
}

pub(crate) fn entries_of(commit: &TaskCommit, bodies: &[String], out: &mut Vec<NewEntry>) {
    for (event, body) in commit.events.iter().zip(bodies) {
        if UNAUDITED_KINDS.contains(&event.kind.as_str()) {
            continue;
        }
        // The person who acted when the event names one (`by`; `requester` for a new
        // task), else the engine that held the lease.
        let named = ["by", "requester"]
            .iter()
            .find_map(|k| event.body.get(*k).and_then(Value::as_str));
        let actor = named.or(commit.lease_owner.as_deref()).unwrap_or("engine");
        out.push(NewEntry {
            at: commit.at,
            kind: event.kind.clone(),
            actor: actor.to_owned(),
            task_id: Some(commit.task_id.clone()),
            // The text `task_events.body` gets (serialised once, by the commit).
            body: body.clone(),
        });
    }
}

/// Appends entries after the chain's head. Must run inside a transaction that holds the
/// write lock (`BEGIN IMMEDIATE`), so the head cannot move between reading and inserting.
pub(crate) async fn append_entries(
    conn: &mut SqliteConnection,
    entries: &[NewEntry],
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let head: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await
            .ctx("reading the audit log's head")?;
    let mut batch = Batch::new();
    push_entries(&mut batch, head, entries.to_vec());
    batch
        .into_query(false)
        .map_err(|e| StoreError::Corrupt {
            what: "encoding audit entries",
            detail: e.to_string(),
        })?
        .execute(&mut *conn)
        .await
        .ctx("appending to the audit log")?;
    Ok(())
}

/// Chains `entries` after `head` (the last entry's `seq` and `hash`, read under the
/// transaction's write lock; none for an empty log) and adds their inserts to the batch.
pub(crate) fn push_entries(batch: &mut Batch, head: Option<(i64, String)>, entries: Vec<NewEntry>) {
    let (mut seq, mut prev) = head.unwrap_or_else(|| (0, GENESIS.to_owned()));
    let mut entries = entries.into_iter().peekable();
    while entries.peek().is_some() {
        let chunk: Vec<NewEntry> = entries.by_ref().take(INSERT_CHUNK).collect();
        batch.padded_values(
            "INSERT INTO audit_log (seq, at, kind, actor, task_id, body, prev_hash, hash)
             SELECT * FROM (",
            8,
            ") AS v WHERE column1 IS NOT NULL",
            chunk,
            |b, e| {
                seq += 1;
                let hash = entry_hash(
                    &prev,
                    seq,
                    e.at,
                    &e.kind,
                    &e.actor,
                    e.task_id.as_deref(),
                    &e.body,
                );
                b.bind(seq);
                b.bind(e.at);
                b.bind(e.kind);
                b.bind(e.actor);
                b.bind(e.task_id);
                b.bind(e.body);
                b.bind(std::mem::replace(&mut prev, hash.clone()));
                b.bind(hash);
            },
        );
    }
}

fn entry_from_row(row: &SqliteRow) -> Result<AuditEntry, StoreError> {
    let body: String = row.try_get("body").ctx("audit body")?;
    Ok(AuditEntry {
        seq: row.try_get("seq").ctx("audit seq")?,
        at: row.try_get("at").ctx("audit at")?,
        kind: row.try_get("kind").ctx("audit kind")?,
        actor: row.try_get("actor").ctx("audit actor")?,
        task_id: row.try_get("task_id").ctx("audit task_id")?,
        // A body that is not JSON (tampered) is still shown, as a string.
        body: serde_json::from_str(&body).unwrap_or(Value::String(body)),
        prev_hash: row.try_get("prev_hash").ctx("audit prev_hash")?,
        hash: row.try_get("hash").ctx("audit hash")?,
    })
}

/// A row as verification reads it: the stored text, never re-serialised.
struct RawEntry {
    seq: i64,
    at: Millis,
    kind: String,
    actor: String,
    task_id: Option<String>,
    body: String,
    prev_hash: String,
    hash: String,
}

fn raw_from_row(row: &SqliteRow) -> Result<RawEntry, sqlx::Error> {
    Ok(RawEntry {
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        kind: row.try_get("kind")?,
        actor: row.try_get("actor")?,
        task_id: row.try_get("task_id")?,
        body: row.try_get("body")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// The last entry checked, as the next one must link to it.
struct Previous {
    seq: i64,
    stored_hash: String,
    /// The hash its contents give, when that differs from the stored one.
    true_hash: Option<String>,
}

impl Store {
    /// Appends one entry that is not part of a task commit, in its own transaction on this
    /// process's writer connection (so it is ordered with task commits, not beside them).
    pub async fn append_audit(&self, entry: AuditEntryWrite) -> Result<(), StoreError> {
        let new = NewEntry::from(entry);
        let mut w = self.inner.writer.lock().await;
        let mut tx = w
            .begin_with("BEGIN IMMEDIATE")
            .await
            .ctx("beginning an audit entry")?;
        append_entries(&mut tx, std::slice::from_ref(&new)).await?;
        tx.commit().await.ctx("committing an audit entry")
    }

    pub async fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let sql = if filter.newest_first {
            "SELECT * FROM audit_log WHERE (? IS NULL OR task_id = ?) AND seq > ?
             ORDER BY seq DESC LIMIT ?"
        } else {
            "SELECT * FROM audit_log WHERE (? IS NULL OR task_id = ?) AND seq > ?
             ORDER BY seq LIMIT ?"
        };
        let rows = sqlx::query(sql)
            .bind(&filter.task_id)
            .bind(&filter.task_id)
            .bind(filter.after_seq.unwrap_or(0))
            .bind(filter.limit.unwrap_or(i64::MAX))
            .fetch_all(&self.inner.reads)
            .await
            .ctx("listing audit entries")?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Walks the whole chain in order of `seq`, a page at a time, and reports every entry
    /// whose contents do not match its hash, every gap, and every broken link.
    pub async fn verify_audit(&self) -> Result<AuditReport, StoreError> {
        self.verify_audit_against(None).await
    }

    /// [`Store::verify_audit`], and that the log still holds `anchor`'s entry unchanged.
    pub async fn verify_audit_against(
        &self,
        anchor: Option<&AuditAnchor>,
    ) -> Result<AuditReport, StoreError> {
        let mut report = AuditReport {
            entries: 0,
            head: None,
            head_seq: None,
            problems: Vec::new(),
        };
        let mut prev = Previous {
            seq: 0,
            stored_hash: GENESIS.to_owned(),
            true_hash: None,
        };
        // Keyset pages on the primary key: no read transaction held over the whole walk,
        // and appends made meanwhile simply extend it.
        let mut after = i64::MIN;
        loop {
            let rows = sqlx::query("SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?")
                .bind(after)
                .bind(VERIFY_PAGE)
                .fetch_all(&self.inner.reads)
                .await
                .ctx("reading the audit log")?;
            let Some(last) = rows.last() else { break };
            // `seq` is the rowid (migration 0014), so always an integer; rows written
            // before with one that was not are in `audit_log_unkeyed` (below).
            let next = last.try_get::<i64, _>("seq").ok();
            for row in &rows {
                report.entries += 1;
                match raw_from_row(row) {
                    Ok(entry) => {
                        check(&entry, &mut prev, &mut report);
                        if let Some(a) =
                            anchor.filter(|a| a.seq == entry.seq && a.hash != entry.hash)
                        {
                            report.problems.push(AuditProblem {
                                seq: entry.seq,
                                kind: Some(entry.kind.clone()),
                                task_id: entry.task_id.clone(),
                                at: Some(entry.at),
                                fault: AuditFault::NotAnchor {
                                    expected: a.hash.clone(),
                                },
                            });
                        }
                    }
                    Err(e) => report.problems.push(AuditProblem {
                        seq: row.try_get("seq").unwrap_or(prev.seq + 1),
                        kind: row.try_get("kind").ok(),
                        task_id: row.try_get("task_id").ok().flatten(),
                        at: row.try_get("at").ok(),
                        fault: AuditFault::Unreadable {
                            detail: e.to_string(),
                        },
                    }),
                }
            }
            match next {
                Some(seq) if rows.len() as i64 == VERIFY_PAGE => after = seq,
                _ => break,
            }
        }
        if let Some(a) = anchor.filter(|a| a.seq > prev.seq) {
            report.problems.push(AuditProblem {
                seq: prev.seq + 1,
                kind: None,
                task_id: None,
                at: None,
                fault: AuditFault::CutShort { anchor: a.seq },
            });
        }
        // Absent from a file migrated by the first form of 0014 (main only, 2026-11-28).
        let set_aside: bool = sqlx::query_scalar(
            "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'audit_log_unkeyed'",
        )
        .fetch_one(&self.inner.reads)
        .await
        .ctx("looking for audit entries set aside")?;
        let unkeyed = if set_aside {
            sqlx::query("SELECT CAST(seq AS TEXT) AS seq, kind, task_id, at FROM audit_log_unkeyed")
                .fetch_all(&self.inner.reads)
                .await
                .ctx("reading the audit entries set aside")?
        } else {
            Vec::new()
        };
        for row in &unkeyed {
            report.entries += 1;
            let seq: Option<String> = row.try_get("seq").ok().flatten();
            report.problems.push(AuditProblem {
                seq: prev.seq + 1,
                kind: row.try_get("kind").ok(),
                task_id: row.try_get("task_id").ok().flatten(),
                at: row.try_get("at").ok(),
                fault: AuditFault::Unreadable {
                    detail: format!(
                        "its seq is {} (not an integer), so it was set aside when the log was re-keyed",
                        seq.map_or("NULL".to_owned(), |s| format!("{s:?}"))
                    ),
                },
            });
        }
        Ok(report)
    }
}

fn check(e: &RawEntry, prev: &mut Previous, report: &mut AuditReport) {
    let problem = |fault| AuditProblem {
        seq: e.seq,
        kind: Some(e.kind.clone()),
        task_id: e.task_id.clone(),
        at: Some(e.at),
        fault,
    };
    if e.seq != prev.seq + 1 {
        report.problems.push(AuditProblem {
            seq: prev.seq + 1,
            kind: None,
            task_id: None,
            at: None,
            fault: AuditFault::Missing { last: e.seq - 1 },
        });
    }
    // When the entry before was itself reported changed only in its hash column, this
    // one still links to what that hash should be: one problem, not two.
    let linked = e.prev_hash == prev.stored_hash
        || (e.seq == prev.seq + 1 && prev.true_hash.as_deref() == Some(e.prev_hash.as_str()));
    if !linked {
        report
            .problems
            .push(problem(AuditFault::Unlinked { after: prev.seq }));
    }
    let true_hash = entry_hash(
        &e.prev_hash,
        e.seq,
        e.at,
        &e.kind,
        &e.actor,
        e.task_id.as_deref(),
        &e.body,
    );
    let changed = true_hash != e.hash;
    if changed {
        report.problems.push(problem(AuditFault::Changed));
    }
    report.head = Some(e.hash.clone());
    report.head_seq = Some(e.seq);
    *prev = Previous {
        seq: e.seq,
        stored_hash: e.hash.clone(),
        true_hash: changed.then_some(true_hash),
    };
}
