//! What people do with long-lived memory: read it, correct an entry (a new entry that
//! supersedes the old, recorded with who and both values), forget one (a tombstone).
//! Workflows read and write memory through `recall` and `remember` states (runner.rs).

use airlock_store::{MemoryQuery, MemoryRecord};
use serde_json::Value;

use crate::engine::Engine;
use crate::error::EngineError;
use crate::ledger::new_id;

impl Engine {
    /// Memory entries matching `query`, newest first.
    pub async fn memory(&self, query: &MemoryQuery) -> Result<Vec<MemoryRecord>, EngineError> {
        Ok(self.inner.store.recall(query).await?)
    }

    /// A person corrects a live entry; the correction is a new entry (and audited).
    pub async fn correct_memory(
        &self,
        id: &str,
        value: Value,
        text: Option<String>,
        by: &str,
    ) -> Result<MemoryRecord, EngineError> {
        let current = self
            .inner
            .store
            .memory_entry(id)
            .await?
            .filter(MemoryRecord::is_live)
            .ok_or_else(|| EngineError::NoMemory(id.to_owned()))?;
        let text = text.unwrap_or_else(|| format!("{} {}: {value}", current.category, current.key));
        self.inner
            .store
            .correct_memory(id, &new_id(), &value, &text, by, self.inner.clock.now())
            .await?
            .ok_or_else(|| EngineError::NoMemory(id.to_owned()))
    }

    /// A person removes a live entry: its content is dropped, a tombstone stays (audited).
    pub async fn forget_memory(&self, id: &str, by: &str) -> Result<(), EngineError> {
        if self
            .inner
            .store
            .forget_memory(id, by, self.inner.clock.now())
            .await?
        {
            Ok(())
        } else {
            Err(EngineError::NoMemory(id.to_owned()))
        }
    }
}
