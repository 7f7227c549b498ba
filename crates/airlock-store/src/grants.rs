//! Grants: scoped, revocable permissions a person gives instead of approving calls one at
//! a time ("this tool, for this workflow, for the next hour, up to 10 calls"). The store
//! keeps them and counts their uses; whether one applies to a call is the engine's call.

use serde::Serialize;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::Millis;
use crate::error::{SqlContext, StoreError};
use crate::open::Store;

/// A grant as written by the person who gives it.
#[derive(Clone, Debug, Default)]
pub struct NewGrant {
    pub id: String,
    /// A glob over `<server>.<tool>`.
    pub tool: String,
    /// Only tasks of this workflow; any when `None`.
    pub workflow: Option<String>,
    /// Only this task; any when `None`.
    pub task_id: Option<String>,
    /// A CEL condition over the call (`args`, ...) that must hold, e.g. `args.amount < 100`.
    pub condition: Option<String>,
    pub max_uses: Option<i64>,
    pub expires_at: Option<Millis>,
    pub created_by: String,
    pub created_at: Millis,
    /// The approval it was made from, if any.
    pub from_approval: Option<String>,
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GrantRecord {
    pub id: String,
    pub tool: String,
    pub workflow: Option<String>,
    pub task_id: Option<String>,
    pub condition: Option<String>,
    pub max_uses: Option<i64>,
    pub uses: i64,
    pub expires_at: Option<Millis>,
    pub created_by: String,
    pub created_at: Millis,
    pub from_approval: Option<String>,
    pub note: Option<String>,
    pub revoked_at: Option<Millis>,
    pub revoked_by: Option<String>,
}

impl GrantRecord {
    /// Whether it may still match a call at `now`: not revoked, not used up, not expired.
    pub fn is_live(&self, now: Millis) -> bool {
        self.revoked_at.is_none()
            && self.max_uses.is_none_or(|max| self.uses < max)
            && self.expires_at.is_none_or(|at| now < at)
    }
}

fn grant_from_row(row: &SqliteRow) -> Result<GrantRecord, StoreError> {
    Ok(GrantRecord {
        id: row.try_get("id").ctx("grant id")?,
        tool: row.try_get("tool").ctx("grant tool")?,
        workflow: row.try_get("workflow").ctx("grant workflow")?,
        task_id: row.try_get("task_id").ctx("grant task")?,
        condition: row.try_get("condition").ctx("grant condition")?,
        max_uses: row.try_get("max_uses").ctx("grant max_uses")?,
        uses: row.try_get("uses").ctx("grant uses")?,
        expires_at: row.try_get("expires_at").ctx("grant expires_at")?,
        created_by: row.try_get("created_by").ctx("grant created_by")?,
        created_at: row.try_get("created_at").ctx("grant created_at")?,
        from_approval: row.try_get("from_approval").ctx("grant from_approval")?,
        note: row.try_get("note").ctx("grant note")?,
        revoked_at: row.try_get("revoked_at").ctx("grant revoked_at")?,
        revoked_by: row.try_get("revoked_by").ctx("grant revoked_by")?,
    })
}

impl Store {
    pub async fn create_grant(&self, grant: &NewGrant) -> Result<GrantRecord, StoreError> {
        let mut w = self.inner.writer.lock().await;
        sqlx::query(
            "INSERT INTO grants (id, tool, workflow, task_id, condition, max_uses, expires_at,
                created_by, created_at, from_approval, note)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&grant.id)
        .bind(&grant.tool)
        .bind(&grant.workflow)
        .bind(&grant.task_id)
        .bind(&grant.condition)
        .bind(grant.max_uses)
        .bind(grant.expires_at)
        .bind(&grant.created_by)
        .bind(grant.created_at)
        .bind(&grant.from_approval)
        .bind(&grant.note)
        .execute(&mut *w)
        .await
        .ctx("recording a grant")?;
        let row = sqlx::query("SELECT * FROM grants WHERE id = ?")
            .bind(&grant.id)
            .fetch_one(&mut *w)
            .await
            .ctx("reading a grant")?;
        grant_from_row(&row)
    }

    pub async fn grant(&self, id: &str) -> Result<Option<GrantRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM grants WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.inner.reads)
            .await
            .ctx("reading a grant")?;
        row.as_ref().map(grant_from_row).transpose()
    }

    /// Every grant, newest first (revoked and used-up ones too: they are history).
    pub async fn grants(&self) -> Result<Vec<GrantRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM grants ORDER BY created_at DESC, id")
            .fetch_all(&self.inner.reads)
            .await
            .ctx("listing grants")?;
        rows.iter().map(grant_from_row).collect()
    }

    /// Grants that may still match a call at `now`.
    pub async fn live_grants(&self, now: Millis) -> Result<Vec<GrantRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM grants WHERE revoked_at IS NULL
                AND (max_uses IS NULL OR uses < max_uses)
                AND (expires_at IS NULL OR expires_at > ?)
             ORDER BY created_at, id",
        )
        .bind(now)
        .fetch_all(&self.inner.reads)
        .await
        .ctx("listing live grants")?;
        rows.iter().map(grant_from_row).collect()
    }

    /// Takes one use of a grant, atomically: false when it was revoked, used up or
    /// expired in the meantime (so two tasks can never both take the last use).
    pub async fn use_grant(&self, id: &str, now: Millis) -> Result<bool, StoreError> {
        let mut w = self.inner.writer.lock().await;
        let done = sqlx::query(
            "UPDATE grants SET uses = uses + 1
             WHERE id = ? AND revoked_at IS NULL
                AND (max_uses IS NULL OR uses < max_uses)
                AND (expires_at IS NULL OR expires_at > ?)",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *w)
        .await
        .ctx("using a grant")?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes a grant; false when there is none by that id or it was revoked already.
    pub async fn revoke_grant(&self, id: &str, by: &str, now: Millis) -> Result<bool, StoreError> {
        let mut w = self.inner.writer.lock().await;
        let done = sqlx::query(
            "UPDATE grants SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(by)
        .bind(id)
        .execute(&mut *w)
        .await
        .ctx("revoking a grant")?;
        Ok(done.rows_affected() == 1)
    }
}
