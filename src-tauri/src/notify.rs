//! Desktop notifications for what waits for a person (approvals, and calls in doubt):
//! bursts are coalesced into one notification, and a machine without a notification daemon
//! is told about once in the log, never in the app.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

/// How long after an approval arrives the app waits for more before notifying.
pub const BURST_WINDOW: Duration = Duration::from_secs(2);

/// A task that has started waiting for a person: for an approval, or to say whether a
/// call in doubt happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalNote {
    pub workflow: String,
    pub task_id: String,
    pub prompt: String,
    /// The tool call a policy rule held, when it is one (not a workflow checkpoint).
    pub held: Option<HeldNote>,
    /// The call in doubt, when the task waits on one rather than on an approval.
    pub in_doubt: Option<InDoubtNote>,
}

/// What an in-doubt call's notification names: the tool and why it is in doubt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InDoubtNote {
    pub tool: String,
    pub reason: Option<String>,
}

/// What a held call's notification names: the tool and the rule that held it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldNote {
    pub tool: String,
    pub rule: Option<String>,
}

impl ApprovalNote {
    /// The body of a notification for this approval alone.
    fn body(&self) -> String {
        let task: String = self.task_id.chars().take(8).collect();
        if let Some(doubt) = &self.in_doubt {
            let why = doubt
                .reason
                .as_deref()
                .map_or_else(String::new, |reason| format!(" ({reason})"));
            return format!(
                "{} in task {task} ({}) may or may not have taken effect{why}. Open Airlock to say whether it happened.",
                doubt.tool, self.workflow
            );
        }
        let Some(held) = &self.held else {
            return self.prompt.clone();
        };
        let why = held.rule.as_deref().map_or_else(
            || "its policy requires approval".to_owned(),
            |rule| format!("rule “{rule}”"),
        );
        format!(
            "{} waits for approval in task {task} ({}): {why}.",
            held.tool, self.workflow
        )
    }
}

/// The text of one desktop notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub summary: String,
    pub body: String,
}

/// One approval is named with its prompt (a held call with its tool, task and rule), one
/// call in doubt with its tool, task and why; several become a count with their workflows.
pub fn compose(batch: &[ApprovalNote]) -> Option<Notice> {
    match batch {
        [] => None,
        [one] => Some(Notice {
            summary: if one.in_doubt.is_some() {
                format!("Did this happen? {}", one.workflow)
            } else {
                format!("Approval needed: {}", one.workflow)
            },
            body: one.body(),
        }),
        many => {
            let mut workflows: Vec<&str> = many.iter().map(|n| n.workflow.as_str()).collect();
            workflows.sort_unstable();
            workflows.dedup();
            let doubts = many.iter().filter(|n| n.in_doubt.is_some()).count();
            let approvals = many.len() - doubts;
            let count = |n: usize, one: &str, several: &str| {
                format!("{n} {}", if n == 1 { one } else { several })
            };
            let summary = match (approvals, doubts) {
                (_, 0) => format!("{approvals} approvals waiting"),
                (0, _) => format!("{doubts} calls in doubt"),
                _ => format!(
                    "{} and {} wait for you",
                    count(approvals, "approval", "approvals"),
                    count(doubts, "call in doubt", "calls in doubt")
                ),
            };
            Some(Notice {
                summary,
                body: format!("From {}. Open Airlock to decide.", workflows.join(", ")),
            })
        }
    }
}

/// Collects notes into bursts: after the first note of a burst, waits `window` for more,
/// then shows one notice for all of them. Returns when every sender is gone.
pub async fn coalesce(
    mut notes: mpsc::UnboundedReceiver<ApprovalNote>,
    window: Duration,
    mut show: impl FnMut(Notice),
) {
    while let Some(first) = notes.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + window;
        loop {
            tokio::select! {
                next = notes.recv() => match next {
                    Some(note) => batch.push(note),
                    None => break,
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        if let Some(notice) = compose(&batch) {
            show(notice);
        }
    }
}

/// Shows notices through the desktop's notification service (D-Bus on Linux). The first
/// failure is logged as a warning, later ones only at debug level.
pub fn desktop_sink() -> impl FnMut(Notice) + Send + 'static {
    let warned = Arc::new(AtomicBool::new(false));
    move |notice: Notice| {
        let warned = warned.clone();
        // `show` talks to D-Bus synchronously; keep it off the async workers.
        tokio::task::spawn_blocking(move || {
            let shown = notify_rust::Notification::new()
                .appname("Airlock")
                .summary(&notice.summary)
                .body(&notice.body)
                .show();
            match shown {
                Ok(_) => tracing::debug!(summary = %notice.summary, "notification shown"),
                Err(error) if !warned.swap(true, Ordering::Relaxed) => tracing::warn!(
                    %error,
                    "desktop notifications are unavailable (no notification service?); \
                     approvals still appear in the app"
                ),
                Err(error) => tracing::debug!(%error, "notification not shown"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(workflow: &str, prompt: &str) -> ApprovalNote {
        ApprovalNote {
            workflow: workflow.into(),
            task_id: "3f1c2a9e-0000-4000-8000-000000000001".into(),
            prompt: prompt.into(),
            held: None,
            in_doubt: None,
        }
    }

    fn doubt(workflow: &str) -> ApprovalNote {
        ApprovalNote {
            in_doubt: Some(InDoubtNote {
                tool: "support.issue_refund".into(),
                reason: Some("no answer from the tool: no answer within 30s".into()),
            }),
            ..note(workflow, "")
        }
    }

    #[test]
    fn a_call_in_doubt_names_its_tool_task_and_why() {
        assert_eq!(
            compose(&[doubt("support-refund")]),
            Some(Notice {
                summary: "Did this happen? support-refund".into(),
                body: "support.issue_refund in task 3f1c2a9e (support-refund) may or may not have \
                       taken effect (no answer from the tool: no answer within 30s). Open Airlock \
                       to say whether it happened."
                    .into(),
            })
        );
        let mixed = compose(&[
            note("hr-onboarding", "a"),
            doubt("support-refund"),
            note("support-refund", "b"),
        ])
        .expect("a notice");
        assert_eq!(
            mixed.summary,
            "2 approvals and 1 call in doubt wait for you"
        );
        let doubts = compose(&[doubt("a"), doubt("b")]).expect("a notice");
        assert_eq!(doubts.summary, "2 calls in doubt");
    }

    #[test]
    fn one_approval_names_its_workflow_and_prompt() {
        let notice = compose(&[note("support-refund", "Refund 6000 cents?")]);
        assert_eq!(
            notice,
            Some(Notice {
                summary: "Approval needed: support-refund".into(),
                body: "Refund 6000 cents?".into(),
            })
        );
    }

    #[test]
    fn a_held_call_names_its_tool_task_and_rule() {
        let held = ApprovalNote {
            held: Some(HeldNote {
                tool: "support.issue_refund".into(),
                rule: Some("refunds above 200.00 need a finance lead".into()),
            }),
            ..note("support-refund", "`support.issue_refund` wants to run")
        };
        assert_eq!(
            compose(&[held]),
            Some(Notice {
                summary: "Approval needed: support-refund".into(),
                body: "support.issue_refund waits for approval in task 3f1c2a9e (support-refund): \
                       rule “refunds above 200.00 need a finance lead”."
                    .into(),
            })
        );
    }

    #[test]
    fn several_approvals_become_a_count() {
        let notice = compose(&[
            note("support-refund", "a"),
            note("hr-onboarding", "b"),
            note("support-refund", "c"),
        ])
        .expect("a notice");
        assert_eq!(notice.summary, "3 approvals waiting");
        assert_eq!(
            notice.body,
            "From hr-onboarding, support-refund. Open Airlock to decide."
        );
        assert_eq!(compose(&[]), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_within_the_window_is_one_notice_and_a_later_one_is_another() {
        let (send, receive) = mpsc::unbounded_channel();
        let shown = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = {
            let shown = shown.clone();
            move |notice: Notice| shown.lock().expect("lock").push(notice.summary)
        };
        let coalescer = tokio::spawn(coalesce(receive, BURST_WINDOW, sink));

        for i in 0..5 {
            send.send(note("support-refund", &format!("p{i}")))
                .expect("send");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        tokio::time::sleep(BURST_WINDOW).await;
        send.send(note("hr-onboarding", "later")).expect("send");
        drop(send);
        coalescer
            .await
            .expect("the coalescer ends when the senders are gone");

        assert_eq!(
            *shown.lock().expect("lock"),
            vec![
                "5 approvals waiting".to_owned(),
                "Approval needed: hr-onboarding".to_owned()
            ]
        );
    }
}
