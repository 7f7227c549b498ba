//! Lessons: proposed from people's corrections (a rejection's reason, an edit, a failed
//! outcome check, a low rating), reviewed by a person, and — once accepted — given to that
//! workflow's agent states as context. Proposing the same source twice does nothing.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::Millis;
use crate::error::{SqlContext, StoreError};
use crate::open::Store;

/// Where a lesson comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LessonSource {
    Rejection,
    Edit,
    FailedCheck,
    LowRating,
    Policy,
}

impl LessonSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LessonSource::Rejection => "rejection",
            LessonSource::Edit => "edit",
            LessonSource::FailedCheck => "failed_check",
            LessonSource::LowRating => "low_rating",
            LessonSource::Policy => "policy",
        }
    }

    fn parse(s: &str) -> Option<LessonSource> {
        [
            LessonSource::Rejection,
            LessonSource::Edit,
            LessonSource::FailedCheck,
            LessonSource::LowRating,
            LessonSource::Policy,
        ]
        .into_iter()
        .find(|l| l.as_str() == s)
    }
}

/// Where a lesson is in its review. A reviewed one always says who and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LessonStatus {
    Proposed,
    Accepted { by: String, at: Millis },
    Dismissed { by: String, at: Millis },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LessonRecord {
    pub id: String,
    pub workflow: String,
    pub source: LessonSource,
    /// The approval, task or rating it comes from.
    pub source_ref: String,
    pub task_id: Option<String>,
    pub text: String,
    pub created_at: Millis,
    #[serde(flatten)]
    pub status: LessonStatus,
}

fn lesson_from_row(row: &SqliteRow) -> Result<LessonRecord, StoreError> {
    let source: String = row.try_get("source").ctx("lesson source")?;
    let status: String = row.try_get("status").ctx("lesson status")?;
    let by: Option<String> = row.try_get("reviewed_by").ctx("lesson reviewed_by")?;
    let at: Option<Millis> = row.try_get("reviewed_at").ctx("lesson reviewed_at")?;
    let corrupt = |what: &str| StoreError::Corrupt {
        what: "lesson",
        detail: what.to_owned(),
    };
    let status = match (status.as_str(), by, at) {
        ("proposed", _, None) => LessonStatus::Proposed,
        ("accepted", Some(by), Some(at)) => LessonStatus::Accepted { by, at },
        ("dismissed", Some(by), Some(at)) => LessonStatus::Dismissed { by, at },
        _ => return Err(corrupt(&format!("status {status} without its reviewer"))),
    };
    Ok(LessonRecord {
        id: row.try_get("id").ctx("lesson id")?,
        workflow: row.try_get("workflow").ctx("lesson workflow")?,
        source: LessonSource::parse(&source)
            .ok_or_else(|| corrupt(&format!("unknown source {source}")))?,
        source_ref: row.try_get("source_ref").ctx("lesson source_ref")?,
        task_id: row.try_get("task_id").ctx("lesson task")?,
        text: row.try_get("text").ctx("lesson text")?,
        created_at: row.try_get("created_at").ctx("lesson created_at")?,
        status,
    })
}

impl Store {
    /// Proposes a lesson; `id` is derived from its source by the caller, so proposing the
    /// same source again returns false and changes nothing.
    #[allow(clippy::too_many_arguments)]
    pub async fn propose_lesson(
        &self,
        id: &str,
        workflow: &str,
        source: LessonSource,
        source_ref: &str,
        task_id: Option<&str>,
        text: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut w = self.inner.writer.lock().await;
        let done = sqlx::query(
            "INSERT INTO lessons (id, workflow, source, source_ref, task_id, text, status, created_at)
             VALUES (?, ?, ?, ?, ?, ?, 'proposed', ?) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(workflow)
        .bind(source.as_str())
        .bind(source_ref)
        .bind(task_id)
        .bind(text)
        .bind(now)
        .execute(&mut *w)
        .await
        .ctx("proposing a lesson")?;
        Ok(done.rows_affected() == 1)
    }

    /// The lessons proposed or reviewed (accepted or dismissed) in a period (`since`
    /// inclusive, `until` exclusive; either end open when `None`), of one workflow if
    /// given, in order of their latest change.
    pub async fn lessons_in_period(
        &self,
        workflow: Option<&str>,
        since: Option<Millis>,
        until: Option<Millis>,
    ) -> Result<Vec<LessonRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM lessons
             WHERE (? IS NULL OR workflow = ?)
               AND ((created_at >= COALESCE(?, created_at) AND created_at < COALESCE(?, created_at + 1))
                 OR (reviewed_at >= COALESCE(?, reviewed_at) AND reviewed_at < COALESCE(?, reviewed_at + 1)))
             ORDER BY COALESCE(reviewed_at, created_at), id",
        )
        .bind(workflow)
        .bind(workflow)
        .bind(since)
        .bind(until)
        .bind(since)
        .bind(until)
        .fetch_all(&self.inner.reads)
        .await
        .ctx("listing a period's lessons")?;
        rows.iter().map(lesson_from_row).collect()
    }

    /// Lessons, newest first; only one workflow's, or only those in one status, if asked.
    pub async fn lessons(
        &self,
        workflow: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<LessonRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM lessons WHERE (? IS NULL OR workflow = ?) AND (? IS NULL OR status = ?)
             ORDER BY created_at DESC, id",
        )
        .bind(workflow)
        .bind(workflow)
        .bind(status)
        .bind(status)
        .fetch_all(&self.inner.reads)
        .await
        .ctx("listing lessons")?;
        rows.iter().map(lesson_from_row).collect()
    }

    /// Accepts (with `text` replacing the proposed wording, if given) or dismisses a
    /// proposed lesson; false when there is no proposed lesson `id`.
    pub async fn review_lesson(
        &self,
        id: &str,
        accept: bool,
        text: Option<&str>,
        by: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut w = self.inner.writer.lock().await;
        let done = sqlx::query(
            "UPDATE lessons SET status = ?, text = COALESCE(?, text), reviewed_by = ?, reviewed_at = ?
             WHERE id = ? AND status = 'proposed'",
        )
        .bind(if accept { "accepted" } else { "dismissed" })
        .bind(text)
        .bind(by)
        .bind(now)
        .bind(id)
        .execute(&mut *w)
        .await
        .ctx("reviewing a lesson")?;
        Ok(done.rows_affected() == 1)
    }
}
