//! Votes of distinct approvers on an approval that needs more than one. The approval is
//! decided (in a task commit) once enough have voted; the votes say who they were.

use serde::Serialize;
use sqlx::Row;

use crate::Millis;
use crate::error::{SqlContext, StoreError};
use crate::open::Store;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApprovalVote {
    pub voter: String,
    pub roles: Vec<String>,
    pub at: Millis,
}

impl Store {
    /// Records `voter`'s approval; false when they had voted already. A vote on an
    /// approval that is no longer pending is not recorded either.
    pub async fn cast_vote(
        &self,
        approval_id: &str,
        voter: &str,
        roles: &[String],
        now: Millis,
    ) -> Result<bool, StoreError> {
        let roles = serde_json::to_string(roles).map_err(|e| StoreError::Corrupt {
            what: "voter roles",
            detail: e.to_string(),
        })?;
        let mut w = self.inner.writer.lock().await;
        let done = sqlx::query(
            "INSERT INTO approval_votes (approval_id, voter, roles, at)
             SELECT ?, ?, ?, ? WHERE EXISTS
                (SELECT 1 FROM approvals WHERE id = ? AND status = 'pending')
             ON CONFLICT (approval_id, voter) DO NOTHING",
        )
        .bind(approval_id)
        .bind(voter)
        .bind(roles)
        .bind(now)
        .bind(approval_id)
        .execute(&mut *w)
        .await
        .ctx("recording an approval vote")?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn approval_votes(&self, approval_id: &str) -> Result<Vec<ApprovalVote>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM approval_votes WHERE approval_id = ? ORDER BY at, voter")
                .bind(approval_id)
                .fetch_all(&self.inner.reads)
                .await
                .ctx("listing approval votes")?;
        rows.iter()
            .map(|row| {
                let roles: String = row.try_get("roles").ctx("vote roles")?;
                Ok(ApprovalVote {
                    voter: row.try_get("voter").ctx("voter")?,
                    roles: serde_json::from_str(&roles).map_err(|e| StoreError::Corrupt {
                        what: "voter roles",
                        detail: e.to_string(),
                    })?,
                    at: row.try_get("at").ctx("vote time")?,
                })
            })
            .collect()
    }
}
