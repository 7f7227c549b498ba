//! Built-in tools for tests, demos and benchmarks, with real side effects: each effect is
//! a row in their own SQLite file (separate from the engine's store), so duplicates are
//! countable. `builtin.record` is deliberately not idempotent; `builtin.upsert` is.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::clock::BoxFuture;
use crate::tool_host::{ToolAnnotations, ToolError, ToolHost, ToolInfo, ToolRequest};

#[derive(Clone)]
pub struct BuiltinTools {
    effects: SqlitePool,
    /// Built once: the engine describes a tool on every call.
    catalogue: std::sync::Arc<Vec<ToolInfo>>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot open the built-in tools' effects database {path}: {source}")]
pub struct BuiltinToolsError {
    path: String,
    #[source]
    source: sqlx::Error,
}

fn tool(
    name: &str,
    description: &str,
    schema: Value,
    read_only: bool,
    idempotent: bool,
) -> ToolInfo {
    ToolInfo {
        name: format!("builtin.{name}"),
        description: description.into(),
        input_schema: schema,
        output_schema: None,
        annotations: ToolAnnotations {
            read_only,
            destructive: false,
            idempotent,
            open_world: false,
        },
    }
}

impl BuiltinTools {
    pub async fn open(path: &Path) -> Result<BuiltinTools, BuiltinToolsError> {
        let fail = |source| BuiltinToolsError {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        let effects = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .map_err(fail)?;
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS effects (
                id INTEGER PRIMARY KEY,
                tool TEXT NOT NULL,
                idempotency_key TEXT NOT NULL,
                task_id TEXT NOT NULL,
                label TEXT,
                payload TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS effects_by_key ON effects (idempotency_key);
             CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, idempotency_key TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS failures (idempotency_key TEXT PRIMARY KEY, count BIGINT NOT NULL);",
        )
        .execute(&effects)
        .await
        .map_err(fail)?;
        Ok(BuiltinTools {
            effects,
            catalogue: std::sync::Arc::new(BuiltinTools::catalogue()),
        })
    }

    pub fn catalogue() -> Vec<ToolInfo> {
        vec![
            tool(
                "echo",
                "Returns its arguments unchanged.",
                json!({"type": "object"}),
                true,
                true,
            ),
            tool(
                "record",
                "Appends one effect row (not idempotent: every call adds a row). Optional `delay_ms` / `linger_ms` pause before / after the effect.",
                json!({"type": "object", "properties": {
                    "label": {"type": "string"},
                    "delay_ms": {"type": "integer", "minimum": 0},
                    "linger_ms": {"type": "integer", "minimum": 0}
                }}),
                false,
                false,
            ),
            tool(
                "upsert",
                "Sets `key` to `value` (idempotent).",
                json!({"type": "object", "properties": {"key": {"type": "string"}, "value": {}}, "required": ["key"]}),
                false,
                true,
            ),
            tool(
                "sleep",
                "Waits `ms` milliseconds, then returns.",
                json!({"type": "object", "properties": {"ms": {"type": "integer", "minimum": 0}}}),
                true,
                true,
            ),
            tool(
                "fail",
                "Fails the first `times` calls with the same idempotency key, then succeeds.",
                json!({"type": "object", "properties": {"times": {"type": "integer", "minimum": 0}}}),
                false,
                true,
            ),
        ]
    }

    /// `delay_ms` waits before the effect and `linger_ms` after it, like a slow service:
    /// an interruption in either window leaves the engine unsure whether it happened.
    async fn record(&self, r: &ToolRequest<'_>) -> Result<Value, ToolError> {
        let label = r
            .args
            .get("label")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let pause =
            |key: &str| Duration::from_millis(r.args.get(key).and_then(Value::as_u64).unwrap_or(0));
        tokio::time::sleep(pause("delay_ms")).await;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO effects (tool, idempotency_key, task_id, label, payload) VALUES ('record', ?, ?, ?, ?) RETURNING id",
        )
        .bind(r.idempotency_key)
        .bind(r.task_id)
        .bind(&label)
        .bind(r.args.to_string())
        .fetch_one(&self.effects)
        .await
        .map_err(|e| ToolError::Failed(format!("recording the effect: {e}")))?;
        tokio::time::sleep(pause("linger_ms")).await;
        Ok(json!({ "effect_id": id, "label": label }))
    }

    async fn upsert(&self, r: &ToolRequest<'_>) -> Result<Value, ToolError> {
        let key = r
            .args
            .get("key")
            .and_then(Value::as_str)
            .ok_or_else(|| ToolError::Failed("`key` must be a string".into()))?;
        let value = r.args.get("value").cloned().unwrap_or(Value::Null);
        sqlx::query(
            "INSERT INTO kv (key, value, idempotency_key) VALUES (?, ?, ?)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, idempotency_key = excluded.idempotency_key",
        )
        .bind(key)
        .bind(value.to_string())
        .bind(r.idempotency_key)
        .execute(&self.effects)
        .await
        .map_err(|e| ToolError::Failed(format!("writing `{key}`: {e}")))?;
        Ok(json!({ "key": key, "value": value }))
    }

    async fn fail(&self, r: &ToolRequest<'_>) -> Result<Value, ToolError> {
        let times = r.args.get("times").and_then(Value::as_i64).unwrap_or(1);
        let count: i64 = sqlx::query_scalar(
            "INSERT INTO failures (idempotency_key, count) VALUES (?, 1)
             ON CONFLICT (idempotency_key) DO UPDATE SET count = failures.count + 1 RETURNING count",
        )
        .bind(r.idempotency_key)
        .fetch_one(&self.effects)
        .await
        .map_err(|e| ToolError::Failed(format!("counting attempts: {e}")))?;
        if count <= times {
            Err(ToolError::Failed(format!(
                "deliberate failure {count} of {times}"
            )))
        } else {
            Ok(json!({ "attempts": count }))
        }
    }
}

impl ToolHost for BuiltinTools {
    fn tools(&self) -> Vec<ToolInfo> {
        self.catalogue.to_vec()
    }

    fn describe(&self, tool: &str) -> Option<ToolInfo> {
        self.catalogue.iter().find(|t| t.name == tool).cloned()
    }

    fn call<'a>(&'a self, r: ToolRequest<'a>) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            match r.tool {
                "builtin.echo" => Ok(r.args.clone()),
                "builtin.record" => self.record(&r).await,
                "builtin.upsert" => self.upsert(&r).await,
                "builtin.fail" => self.fail(&r).await,
                "builtin.sleep" => {
                    let ms = r.args.get("ms").and_then(Value::as_u64).unwrap_or(0);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Ok(json!({ "slept_ms": ms }))
                }
                other => Err(ToolError::Unknown(other.to_owned())),
            }
        })
    }
}
