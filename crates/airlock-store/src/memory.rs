//! Long-lived memory: entries about a subject (a customer, an employee) that outlive one
//! task, each with its source (task and step, or person) and time, searchable with FTS5.
//! Entries are never edited in place: remembering a key again, or a person's correction,
//! supersedes the entry with a new one; forgetting keeps a tombstone without the content.
//! Every change is audited in the same transaction.

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::sqlite::SqliteRow;
use sqlx::{Connection, Row, SqliteConnection};

use crate::Millis;
use crate::audit::{AuditEntryWrite, NewEntry, append_entries};
use crate::error::{SqlContext, StoreError};
use crate::open::Store;
use crate::records::parse_json;

/// An entry as a workflow step or a person writes it.
#[derive(Clone, Debug)]
pub struct NewMemory {
    /// Stable for one step (`<task>/<step>`), so writing it again after a crash does
    /// nothing twice.
    pub id: String,
    pub subject: String,
    pub category: String,
    pub key: String,
    pub value: Value,
    pub text: String,
    pub source_task: Option<String>,
    pub source_step: Option<i64>,
    pub source_person: Option<String>,
    pub at: Millis,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemoryRecord {
    pub id: String,
    pub subject: String,
    pub category: String,
    pub key: String,
    /// `None` once forgotten.
    pub value: Option<Value>,
    pub text: String,
    pub source_task: Option<String>,
    pub source_step: Option<i64>,
    pub source_person: Option<String>,
    pub created_at: Millis,
    /// The entry that replaced this one (a newer value or a correction).
    pub superseded_by: Option<String>,
    pub deleted_at: Option<Millis>,
    pub deleted_by: Option<String>,
}

impl MemoryRecord {
    /// Neither replaced nor forgotten.
    pub fn is_live(&self) -> bool {
        self.superseded_by.is_none() && self.deleted_at.is_none()
    }
}

/// What a `recall` reads.
#[derive(Clone, Debug, Default)]
pub struct MemoryQuery {
    pub subject: Option<String>,
    /// Only these categories; all when empty.
    pub categories: Vec<String>,
    /// FTS5 query syntax.
    pub search: Option<String>,
    pub limit: i64,
    /// Replaced and forgotten entries too (history), not only live ones.
    pub with_history: bool,
}

fn memory_from_row(row: &SqliteRow) -> Result<MemoryRecord, StoreError> {
    let value: Option<String> = row.try_get("value").ctx("memory value")?;
    Ok(MemoryRecord {
        id: row.try_get("id").ctx("memory id")?,
        subject: row.try_get("subject").ctx("memory subject")?,
        category: row.try_get("category").ctx("memory category")?,
        key: row.try_get("entry_key").ctx("memory key")?,
        value: value.map(|v| parse_json("memory value", &v)).transpose()?,
        text: row.try_get("text").ctx("memory text")?,
        source_task: row.try_get("source_task").ctx("memory source_task")?,
        source_step: row.try_get("source_step").ctx("memory source_step")?,
        source_person: row.try_get("source_person").ctx("memory source_person")?,
        created_at: row.try_get("created_at").ctx("memory created_at")?,
        superseded_by: row.try_get("superseded_by").ctx("memory superseded_by")?,
        deleted_at: row.try_get("deleted_at").ctx("memory deleted_at")?,
        deleted_by: row.try_get("deleted_by").ctx("memory deleted_by")?,
    })
}

async fn insert(conn: &mut SqliteConnection, m: &NewMemory) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO memory (id, subject, category, entry_key, value, text, source_task,
            source_step, source_person, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&m.id)
    .bind(&m.subject)
    .bind(&m.category)
    .bind(&m.key)
    .bind(m.value.to_string())
    .bind(&m.text)
    .bind(&m.source_task)
    .bind(m.source_step)
    .bind(&m.source_person)
    .bind(m.at)
    .execute(&mut *conn)
    .await
    .ctx("remembering")?;
    sqlx::query("INSERT INTO memory_text (id, text) VALUES (?, ?)")
        .bind(&m.id)
        .bind(&m.text)
        .execute(&mut *conn)
        .await
        .ctx("indexing a memory entry")?;
    Ok(())
}

async fn fetch(conn: &mut SqliteConnection, id: &str) -> Result<Option<MemoryRecord>, StoreError> {
    let row = sqlx::query("SELECT * FROM memory WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .ctx("reading a memory entry")?;
    row.as_ref().map(memory_from_row).transpose()
}

fn audit(kind: &str, actor: &str, m: &MemoryRecord, extra: Value) -> NewEntry {
    NewEntry::from(AuditEntryWrite {
        at: m.created_at,
        kind: kind.to_owned(),
        actor: actor.to_owned(),
        task_id: m.source_task.clone(),
        body: json!({
            "memory_id": m.id, "subject": m.subject, "category": m.category, "key": m.key,
            "value": m.value, "detail": extra,
        }),
    })
}

impl Store {
    /// Writes an entry; the live entry with the same subject, category and key (if any)
    /// is superseded by it. Writing the same id again returns the entry already there.
    pub async fn remember(&self, m: &NewMemory) -> Result<MemoryRecord, StoreError> {
        let mut w = self.inner.writer.lock().await;
        let mut tx = w
            .begin_with("BEGIN IMMEDIATE")
            .await
            .ctx("beginning a memory write")?;
        if let Some(existing) = fetch(&mut tx, &m.id).await? {
            return Ok(existing);
        }
        insert(&mut tx, m).await?;
        sqlx::query(
            "UPDATE memory SET superseded_by = ?
             WHERE subject = ? AND category = ? AND entry_key = ? AND id <> ?
                AND superseded_by IS NULL AND deleted_at IS NULL",
        )
        .bind(&m.id)
        .bind(&m.subject)
        .bind(&m.category)
        .bind(&m.key)
        .bind(&m.id)
        .execute(&mut *tx)
        .await
        .ctx("superseding a memory entry")?;
        let record = fetch(&mut tx, &m.id)
            .await?
            .ok_or_else(|| StoreError::Corrupt {
                what: "memory entry",
                detail: format!("{} vanished as it was written", m.id),
            })?;
        let actor = m.source_person.clone().unwrap_or_else(|| "engine".into());
        append_entries(
            &mut tx,
            &[audit("memory_written", &actor, &record, Value::Null)],
        )
        .await?;
        tx.commit().await.ctx("committing a memory write")?;
        Ok(record)
    }

    /// Entries matching `q`, newest first. A search that is not valid FTS5 syntax is an
    /// error that says so.
    pub async fn recall(&self, q: &MemoryQuery) -> Result<Vec<MemoryRecord>, StoreError> {
        let mut sql = String::from("SELECT * FROM memory WHERE 1 = 1");
        if !q.with_history {
            sql.push_str(" AND superseded_by IS NULL AND deleted_at IS NULL");
        }
        if q.subject.is_some() {
            sql.push_str(" AND subject = ?");
        }
        if !q.categories.is_empty() {
            sql.push_str(" AND category IN (");
            sql.push_str(&vec!["?"; q.categories.len()].join(", "));
            sql.push(')');
        }
        if q.search.is_some() {
            sql.push_str(" AND id IN (SELECT id FROM memory_text WHERE memory_text MATCH ?)");
        }
        sql.push_str(" ORDER BY created_at DESC, id LIMIT ?");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(subject) = &q.subject {
            query = query.bind(subject);
        }
        for c in &q.categories {
            query = query.bind(c);
        }
        if let Some(search) = &q.search {
            query = query.bind(search);
        }
        let rows = query
            .bind(q.limit.max(1))
            .fetch_all(&self.inner.reads)
            .await
            .map_err(|e| match (&q.search, e.as_database_error()) {
                // The statement is fixed; a plain SQL error (code 1) can only come from
                // the search text (FTS5 says "unterminated string", "syntax error", ...).
                (Some(search), Some(db)) if db.code().as_deref() == Some("1") => {
                    StoreError::BadSearch {
                        search: search.clone(),
                        detail: db.message().to_owned(),
                    }
                }
                _ => StoreError::Sql {
                    what: "recalling memory",
                    source: e,
                },
            })?;
        rows.iter().map(memory_from_row).collect()
    }

    pub async fn memory_entry(&self, id: &str) -> Result<Option<MemoryRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM memory WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.inner.reads)
            .await
            .ctx("reading a memory entry")?;
        row.as_ref().map(memory_from_row).transpose()
    }

    /// A person's correction of a live entry: a new entry with the new value and text
    /// supersedes it. `None` when there is no live entry `id`.
    pub async fn correct_memory(
        &self,
        id: &str,
        new_id: &str,
        value: &Value,
        text: &str,
        by: &str,
        now: Millis,
    ) -> Result<Option<MemoryRecord>, StoreError> {
        let mut w = self.inner.writer.lock().await;
        let mut tx = w
            .begin_with("BEGIN IMMEDIATE")
            .await
            .ctx("beginning a memory correction")?;
        let Some(old) = fetch(&mut tx, id).await?.filter(MemoryRecord::is_live) else {
            return Ok(None);
        };
        let new = NewMemory {
            id: new_id.to_owned(),
            subject: old.subject.clone(),
            category: old.category.clone(),
            key: old.key.clone(),
            value: value.clone(),
            text: text.to_owned(),
            source_task: None,
            source_step: None,
            source_person: Some(by.to_owned()),
            at: now,
        };
        insert(&mut tx, &new).await?;
        sqlx::query("UPDATE memory SET superseded_by = ? WHERE id = ?")
            .bind(new_id)
            .bind(id)
            .execute(&mut *tx)
            .await
            .ctx("superseding a corrected memory entry")?;
        let record = fetch(&mut tx, new_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt {
                what: "memory entry",
                detail: format!("{new_id} vanished as it was written"),
            })?;
        append_entries(
            &mut tx,
            &[audit(
                "memory_corrected",
                by,
                &record,
                json!({ "corrects": id, "old_value": old.value }),
            )],
        )
        .await?;
        tx.commit().await.ctx("committing a memory correction")?;
        Ok(Some(record))
    }

    /// Forgets an entry: its value and text are dropped (and its search row), a tombstone
    /// says who and when. So are those of the entries it superseded (what was remembered
    /// before a correction is the same fact, and forgetting it must not leave it in the
    /// entry's history). False when there is no live entry `id`.
    pub async fn forget_memory(&self, id: &str, by: &str, now: Millis) -> Result<bool, StoreError> {
        let mut w = self.inner.writer.lock().await;
        let mut tx = w
            .begin_with("BEGIN IMMEDIATE")
            .await
            .ctx("beginning to forget a memory entry")?;
        let Some(old) = fetch(&mut tx, id).await?.filter(MemoryRecord::is_live) else {
            return Ok(false);
        };
        // The entry and every entry before it in its chain of corrections.
        const CHAIN: &str = "WITH RECURSIVE chain(id) AS (
                SELECT ? UNION SELECT m.id FROM memory m JOIN chain c ON m.superseded_by = c.id)";
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{CHAIN} UPDATE memory SET value = NULL, text = '', deleted_at = ?, deleted_by = ?
             WHERE id IN (SELECT id FROM chain) AND deleted_at IS NULL"
        )))
        .bind(id)
        .bind(now)
        .bind(by)
        .execute(&mut *tx)
        .await
        .ctx("forgetting a memory entry")?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{CHAIN} DELETE FROM memory_text WHERE id IN (SELECT id FROM chain)"
        )))
        .bind(id)
        .execute(&mut *tx)
        .await
        .ctx("dropping a forgotten entry from search")?;
        let tombstone = MemoryRecord {
            value: None,
            created_at: now,
            ..old
        };
        append_entries(
            &mut tx,
            &[audit("memory_forgotten", by, &tombstone, Value::Null)],
        )
        .await?;
        tx.commit()
            .await
            .ctx("committing a forgotten memory entry")?;
        Ok(true)
    }
}
