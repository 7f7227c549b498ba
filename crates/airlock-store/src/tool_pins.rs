//! Pinned tool definitions: what a tool looked like when it was first used (or last
//! accepted by a person), and any different definition its server reports since.

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::Millis;
use crate::error::{SqlContext, StoreError};
use crate::open::Store;
use crate::records::parse_json;

#[derive(Clone, Debug, Serialize)]
pub struct ToolPin {
    pub tool: String,
    pub hash: String,
    pub definition: Value,
    pub pinned_at: Millis,
    pub pinned_by: String,
    /// The definition the server reports now, when it differs from the pinned one.
    pub changed: Option<PinnedChange>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PinnedChange {
    pub hash: String,
    pub definition: Value,
    pub at: Millis,
}

fn pin_from_row(row: &SqliteRow) -> Result<ToolPin, StoreError> {
    let changed_hash: Option<String> = row.try_get("changed_hash").ctx("changed_hash")?;
    let changed = match changed_hash {
        Some(hash) => Some(PinnedChange {
            hash,
            definition: parse_json(
                "changed_definition",
                &row.try_get::<Option<String>, _>("changed_definition")
                    .ctx("changed_definition")?
                    .unwrap_or_default(),
            )?,
            at: row
                .try_get::<Option<i64>, _>("changed_at")
                .ctx("changed_at")?
                .unwrap_or(0),
        }),
        None => None,
    };
    Ok(ToolPin {
        tool: row.try_get("tool").ctx("tool")?,
        hash: row.try_get("hash").ctx("hash")?,
        definition: parse_json(
            "definition",
            &row.try_get::<String, _>("definition").ctx("definition")?,
        )?,
        pinned_at: row.try_get("pinned_at").ctx("pinned_at")?,
        pinned_by: row.try_get("pinned_by").ctx("pinned_by")?,
        changed,
    })
}

impl Store {
    pub async fn tool_pin(&self, tool: &str) -> Result<Option<ToolPin>, StoreError> {
        let row = sqlx::query("SELECT * FROM tool_pins WHERE tool = ?")
            .bind(tool)
            .fetch_optional(&self.inner.reads)
            .await
            .ctx("reading a tool pin")?;
        row.as_ref().map(pin_from_row).transpose()
    }

    pub async fn tool_pins(&self) -> Result<Vec<ToolPin>, StoreError> {
        let rows = sqlx::query("SELECT * FROM tool_pins ORDER BY tool")
            .fetch_all(&self.inner.reads)
            .await
            .ctx("listing tool pins")?;
        rows.iter().map(pin_from_row).collect()
    }

    /// Pins `tool` at `hash` unless it is pinned already; returns the pin in force.
    pub async fn pin_tool_if_new(
        &self,
        tool: &str,
        hash: &str,
        definition: &Value,
        by: &str,
        now: Millis,
    ) -> Result<ToolPin, StoreError> {
        let mut w = self.inner.writer.lock().await;
        sqlx::query(
            "INSERT INTO tool_pins (tool, hash, definition, pinned_at, pinned_by) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (tool) DO NOTHING",
        )
        .bind(tool)
        .bind(hash)
        .bind(definition.to_string())
        .bind(now)
        .bind(by)
        .execute(&mut *w)
        .await
        .ctx("pinning a tool")?;
        let row = sqlx::query("SELECT * FROM tool_pins WHERE tool = ?")
            .bind(tool)
            .fetch_one(&mut *w)
            .await
            .ctx("reading a tool pin")?;
        pin_from_row(&row)
    }

    /// Notes that the server now reports a different definition (the pin stays in force).
    pub async fn note_tool_change(
        &self,
        tool: &str,
        hash: &str,
        definition: &Value,
        now: Millis,
    ) -> Result<(), StoreError> {
        let mut w = self.inner.writer.lock().await;
        sqlx::query(
            "UPDATE tool_pins SET changed_hash = ?, changed_definition = ?, changed_at = ?
             WHERE tool = ? AND hash <> ? AND (changed_hash IS NULL OR changed_hash <> ?)",
        )
        .bind(hash)
        .bind(definition.to_string())
        .bind(now)
        .bind(tool)
        .bind(hash)
        .bind(hash)
        .execute(&mut *w)
        .await
        .ctx("noting a tool change")?;
        Ok(())
    }

    /// A person accepts the changed definition: it becomes the pin. False when there was
    /// no change waiting (or it was a different one than `hash`).
    pub async fn accept_tool_change(
        &self,
        tool: &str,
        hash: &str,
        by: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut w = self.inner.writer.lock().await;
        let done = sqlx::query(
            "UPDATE tool_pins SET hash = changed_hash, definition = changed_definition, pinned_at = ?,
                pinned_by = ?, changed_hash = NULL, changed_definition = NULL, changed_at = NULL
             WHERE tool = ? AND changed_hash = ?",
        )
        .bind(now)
        .bind(by)
        .bind(tool)
        .bind(hash)
        .execute(&mut *w)
        .await
        .ctx("accepting a tool change")?;
        Ok(done.rows_affected() > 0)
    }
}
