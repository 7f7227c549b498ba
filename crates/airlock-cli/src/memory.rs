//! `airlock memory [list|correct|forget]`: long-lived memory, for the people who look
//! after it. Each action is one engine call.

use airlock_engine::Engine;
use airlock_engine::store::{MemoryQuery, MemoryRecord};
use anyhow::Result;
use serde_json::Value;

use crate::args::MemoryAction;
use crate::exit::Exit;
use crate::print_json;
use crate::render;
use crate::workflow_source::Invalid;

pub async fn run(
    engine: &Engine,
    me: &str,
    action: Option<&MemoryAction>,
    json: bool,
) -> Result<Exit> {
    let list_all = MemoryAction::List {
        subject: None,
        categories: Vec::new(),
        search: None,
        history: false,
        limit: 50,
    };
    match action.unwrap_or(&list_all) {
        MemoryAction::List {
            subject,
            categories,
            search,
            history,
            limit,
        } => {
            let entries = engine
                .memory(&MemoryQuery {
                    subject: subject.clone(),
                    categories: categories.clone(),
                    search: search.clone(),
                    limit: *limit,
                    with_history: *history,
                })
                .await?;
            if json {
                print_json(&entries)?;
            } else if entries.is_empty() {
                say!("no memory entries: `remember` states in workflows write them");
            } else {
                for entry in &entries {
                    say!("{}", line(entry));
                }
            }
            Ok(Exit::Ok)
        }
        MemoryAction::Correct { id, value, text } => {
            let value: Value = serde_json::from_str(value)
                .map_err(|e| Invalid(format!("--value is not valid JSON: {e}")))?;
            let entry = engine.correct_memory(id, value, text.clone(), me).await?;
            if json {
                print_json(&entry)?;
            } else {
                say!("corrected; the entry is now:\n{}", line(&entry));
            }
            Ok(Exit::Ok)
        }
        MemoryAction::Forget { id } => {
            engine.forget_memory(id, me).await?;
            if json {
                print_json(&serde_json::json!({ "forgotten": id, "by": me }))?;
            } else {
                say!("{id} forgotten: its content is removed and the removal is recorded");
            }
            Ok(Exit::Ok)
        }
    }
}

fn line(m: &MemoryRecord) -> String {
    let source = match (&m.source_task, &m.source_person) {
        (_, Some(person)) => format!("by {person}"),
        (Some(task), None) => format!("task {}", render::short(task)),
        (None, None) => "unknown source".into(),
    };
    let state = if let Some(by) = &m.deleted_by {
        format!("  [forgotten by {by}]")
    } else if let Some(next) = &m.superseded_by {
        format!("  [replaced by {}]", render::short(next))
    } else {
        String::new()
    };
    format!(
        "{}  {}  {}/{} = {}  ({source}, {}){state}",
        m.id,
        m.subject,
        m.category,
        m.key,
        m.value
            .as_ref()
            .map_or_else(|| "—".to_owned(), Value::to_string),
        render::time(m.created_at)
    )
}
