//! `airlock lessons [accept|dismiss]`: what people's corrections taught each workflow,
//! and the review that decides which lessons its agents are given.

use airlock_engine::Engine;
use airlock_engine::store::{LessonRecord, LessonStatus};
use anyhow::Result;

use crate::args::LessonsAction;
use crate::exit::Exit;
use crate::print_json;
use crate::render;

pub async fn run(
    engine: &Engine,
    me: &str,
    action: Option<&LessonsAction>,
    json: bool,
) -> Result<Exit> {
    match action {
        None | Some(LessonsAction::List { .. }) => {
            let (workflow, status) = match action {
                Some(LessonsAction::List { workflow, status }) => {
                    (workflow.as_deref(), status.as_deref())
                }
                _ => (None, None),
            };
            let lessons = engine.lessons(workflow, status).await?;
            if json {
                print_json(&lessons)?;
            } else if lessons.is_empty() {
                say!(
                    "no lessons: rejections with a reason, edited approvals and failed outcome checks propose them"
                );
            } else {
                for lesson in &lessons {
                    say!("{}", line(lesson));
                }
            }
            Ok(Exit::Ok)
        }
        Some(LessonsAction::Accept { id, text }) => {
            engine.review_lesson(id, true, text.as_deref(), me).await?;
            if json {
                print_json(&serde_json::json!({ "lesson": id, "status": "accepted" }))?;
            } else {
                say!("lesson {id} accepted: the workflow's agents get it from their next request");
            }
            Ok(Exit::Ok)
        }
        Some(LessonsAction::Dismiss { id }) => {
            engine.review_lesson(id, false, None, me).await?;
            if json {
                print_json(&serde_json::json!({ "lesson": id, "status": "dismissed" }))?;
            } else {
                say!("lesson {id} dismissed");
            }
            Ok(Exit::Ok)
        }
    }
}

fn line(l: &LessonRecord) -> String {
    let status = match &l.status {
        LessonStatus::Proposed => "proposed".to_owned(),
        LessonStatus::Accepted { by, .. } => format!("accepted by {by}"),
        LessonStatus::Dismissed { by, .. } => format!("dismissed by {by}"),
    };
    format!(
        "{}  {}  {} ({}, {})\n    {}",
        l.id,
        l.workflow,
        status,
        l.source.as_str().replace('_', " "),
        render::time(l.created_at),
        l.text
    )
}
