//! The feedback loop: people's corrections become proposed lessons for the workflow
//! (a rejection's reason, an approver's edit, a failed outcome check); a person accepts,
//! rewords or dismisses each; accepted lessons go into the workflow's agent context.

use airlock_store::{ApprovalRecord, LessonRecord, LessonSource};
use serde_json::Value;

use crate::engine::{Engine, Inner};
use crate::error::EngineError;

impl Inner {
    /// Proposes a lesson; the same source never proposes twice. A failure to record it
    /// is logged, never allowed to undo the decision it comes from.
    pub(crate) async fn propose_lesson(
        &self,
        workflow: &str,
        source: LessonSource,
        source_ref: &str,
        task_id: Option<&str>,
        text: &str,
    ) {
        let id = format!("{}:{source_ref}", source.as_str());
        if let Err(error) = self
            .store
            .propose_lesson(
                &id,
                workflow,
                source,
                source_ref,
                task_id,
                text,
                self.clock.now(),
            )
            .await
        {
            tracing::warn!(%error, lesson = %id, "could not propose a lesson");
        }
    }

    /// The accepted lessons of `workflow`, as the agent context carries them.
    pub(crate) async fn accepted_lessons(
        &self,
        workflow: &str,
    ) -> Result<Vec<String>, EngineError> {
        Ok(self
            .store
            .lessons(Some(workflow), Some("accepted"))
            .await?
            .into_iter()
            .map(|l| l.text)
            .collect())
    }
}

/// What a decided approval teaches, if anything: a rejection with a reason, or an edit.
pub(crate) fn lesson_from_decision(
    approval: &ApprovalRecord,
    rejected: bool,
    reason: Option<&str>,
    edited_args: Option<&Value>,
    by: &str,
) -> Option<(LessonSource, String)> {
    let why = reason.map(str::trim).filter(|r| !r.is_empty());
    match (&approval.held_call, rejected, edited_args) {
        (Some(held), true, _) => why.map(|why| {
            (
                LessonSource::Rejection,
                format!(
                    "{by} rejected a call to `{}` with {}: {why}",
                    held.tool, held.args
                ),
            )
        }),
        (Some(held), false, Some(edited)) => Some((
            LessonSource::Edit,
            format!(
                "{by} approved a call to `{}` only after changing its arguments from {} to {edited}{}",
                held.tool,
                held.args,
                why.map(|w| format!(": {w}")).unwrap_or_default()
            ),
        )),
        (None, true, _) => why.map(|why| {
            (
                LessonSource::Rejection,
                format!(
                    "{by} rejected the checkpoint `{}`: {why}",
                    approval.state_name
                ),
            )
        }),
        _ => None,
    }
}

impl Engine {
    /// Lessons, newest first; one workflow's, or one status's (`proposed`, `accepted`,
    /// `dismissed`), when asked.
    pub async fn lessons(
        &self,
        workflow: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<LessonRecord>, EngineError> {
        Ok(self.inner.store.lessons(workflow, status).await?)
    }

    /// A person accepts a proposed lesson (with their own wording, if given) or dismisses
    /// it. Audited.
    pub async fn review_lesson(
        &self,
        id: &str,
        accept: bool,
        text: Option<&str>,
        by: &str,
    ) -> Result<(), EngineError> {
        if !self
            .inner
            .store
            .review_lesson(id, accept, text, by, self.inner.clock.now())
            .await?
        {
            return Err(EngineError::NoLesson(id.to_owned()));
        }
        self.inner
            .audit(
                if accept {
                    "lesson_accepted"
                } else {
                    "lesson_dismissed"
                },
                by,
                None,
                serde_json::json!({ "lesson_id": id, "by": by, "text": text }),
            )
            .await
    }
}
