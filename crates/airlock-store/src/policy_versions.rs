//! Every policy version an engine decided under, with its text, so a decision's
//! `policy_version` can always be read back as the rules that made it.

use serde::Serialize;
use sqlx::Row;

use crate::Millis;
use crate::error::{SqlContext, StoreError};
use crate::open::Store;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyVersionRecord {
    pub version: String,
    pub path: Option<String>,
    pub source: String,
    pub loaded_at: Millis,
}

impl Store {
    /// Records a policy version; false when it was known already.
    pub async fn record_policy_version(
        &self,
        version: &str,
        path: Option<&str>,
        source: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut w = self.inner.writer.lock().await;
        let done = sqlx::query(
            "INSERT INTO policy_versions (version, path, source, loaded_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (version) DO NOTHING",
        )
        .bind(version)
        .bind(path)
        .bind(source)
        .bind(now)
        .execute(&mut *w)
        .await
        .ctx("recording a policy version")?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn policy_versions(&self) -> Result<Vec<PolicyVersionRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM policy_versions ORDER BY loaded_at DESC, version")
            .fetch_all(&self.inner.reads)
            .await
            .ctx("listing policy versions")?;
        rows.iter()
            .map(|row| {
                Ok(PolicyVersionRecord {
                    version: row.try_get("version").ctx("policy version")?,
                    path: row.try_get("path").ctx("policy path")?,
                    source: row.try_get("source").ctx("policy source")?,
                    loaded_at: row.try_get("loaded_at").ctx("policy loaded_at")?,
                })
            })
            .collect()
    }
}
