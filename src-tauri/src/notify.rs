//! What desktop notifications say about what waits for a person (approvals, and calls in
//! doubt), and which actions they offer: bursts are coalesced into one notification with
//! one action, the inbox. [`crate::notifier`] shows them and hears the actions.

use std::time::Duration;

use tokio::sync::mpsc;

/// How long after an approval arrives the app waits for more before notifying.
pub const BURST_WINDOW: Duration = Duration::from_secs(2);

/// A task that has started waiting for a person: for an approval, or to say whether a
/// call in doubt happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalNote {
    /// The approval's id, or the call's when the task waits on a call in doubt.
    pub id: String,
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

/// The text of one desktop notification, and what it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub summary: String,
    pub body: String,
    pub subject: Subject,
}

/// What a notification is about, which decides the actions it offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// One approval: Approve, Reject… and, on a click, the app on it.
    Approval {
        approval_id: String,
        task_id: String,
    },
    /// One call in doubt: a click opens the app on it.
    InDoubt { call_id: String, task_id: String },
    /// What became of an answer given from a notification (refused, or counted while more
    /// approvers are needed): a click opens the app on the approval.
    Answered {
        approval_id: String,
        task_id: String,
    },
    /// A burst: one action, the inbox.
    Burst,
}

impl Subject {
    /// The task the notification is about, if it is about one.
    pub fn task_id(&self) -> Option<&str> {
        match self {
            Subject::Approval { task_id, .. }
            | Subject::InDoubt { task_id, .. }
            | Subject::Answered { task_id, .. } => Some(task_id),
            Subject::Burst => None,
        }
    }
}

/// The action key the notification spec gives a click on the notification itself.
pub const DEFAULT_ACTION: &str = "default";
const APPROVE_ACTION: &str = "approve";
const REJECT_ACTION: &str = "reject";

/// What a person chose on a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chosen {
    /// Open the app's inbox, on this approval or call in doubt when there is one.
    Open {
        approval_id: Option<String>,
        call_id: Option<String>,
    },
    /// Approve, as the person using the app, exactly as its Approve button does.
    Approve {
        approval_id: String,
        task_id: String,
    },
    /// Open the app on this approval with its reject reason asked for: nothing is rejected
    /// without a reason.
    Reject { approval_id: String },
}

impl Notice {
    /// The actions this notice offers, as (key, label); `default` is the click on the
    /// notification (some daemons list it, e.g. in dunst's context menu).
    pub fn actions(&self) -> &'static [(&'static str, &'static str)] {
        match self.subject {
            Subject::Approval { .. } => &[
                (DEFAULT_ACTION, "Open in Airlock"),
                (APPROVE_ACTION, "Approve"),
                (REJECT_ACTION, "Reject…"),
            ],
            Subject::InDoubt { .. } | Subject::Answered { .. } => {
                &[(DEFAULT_ACTION, "Open in Airlock")]
            }
            Subject::Burst => &[(DEFAULT_ACTION, "Open inbox")],
        }
    }

    /// What choosing the action `key` on this notice asks for; `None` for a key it does not
    /// offer.
    pub fn chosen(&self, key: &str) -> Option<Chosen> {
        let open = |approval_id: Option<&String>, call_id: Option<&String>| Chosen::Open {
            approval_id: approval_id.cloned(),
            call_id: call_id.cloned(),
        };
        match (&self.subject, key) {
            (
                Subject::Approval { approval_id, .. } | Subject::Answered { approval_id, .. },
                DEFAULT_ACTION,
            ) => Some(open(Some(approval_id), None)),
            (
                Subject::Approval {
                    approval_id,
                    task_id,
                },
                APPROVE_ACTION,
            ) => Some(Chosen::Approve {
                approval_id: approval_id.clone(),
                task_id: task_id.clone(),
            }),
            (Subject::Approval { approval_id, .. }, REJECT_ACTION) => Some(Chosen::Reject {
                approval_id: approval_id.clone(),
            }),
            (Subject::InDoubt { call_id, .. }, DEFAULT_ACTION) => Some(open(None, Some(call_id))),
            (Subject::Burst, DEFAULT_ACTION) => Some(open(None, None)),
            _ => None,
        }
    }

    /// The notice that an approval given from a notification was refused, and why.
    pub fn refused(workflow: &str, approval_id: &str, task_id: &str, why: &str) -> Notice {
        Notice {
            summary: format!("Not approved: {workflow}"),
            body: format!("{why} Open Airlock to see where it stands."),
            subject: Subject::Answered {
                approval_id: approval_id.to_owned(),
                task_id: task_id.to_owned(),
            },
        }
    }

    /// The notice that an approval given from a notification was counted, and the call
    /// still needs other approvers.
    pub fn counted(
        workflow: &str,
        approval_id: &str,
        task_id: &str,
        votes: u32,
        needed: u32,
    ) -> Notice {
        Notice {
            summary: format!("Approval counted: {workflow}"),
            body: format!(
                "{votes} of {needed} approvals given; it waits for {} more from someone else.",
                needed.saturating_sub(votes)
            ),
            subject: Subject::Answered {
                approval_id: approval_id.to_owned(),
                task_id: task_id.to_owned(),
            },
        }
    }
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
            subject: if one.in_doubt.is_some() {
                Subject::InDoubt {
                    call_id: one.id.clone(),
                    task_id: one.task_id.clone(),
                }
            } else {
                Subject::Approval {
                    approval_id: one.id.clone(),
                    task_id: one.task_id.clone(),
                }
            },
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
                subject: Subject::Burst,
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const TASK: &str = "3f1c2a9e-0000-4000-8000-000000000001";

    fn note(workflow: &str, prompt: &str) -> ApprovalNote {
        ApprovalNote {
            id: "a1".into(),
            workflow: workflow.into(),
            task_id: TASK.into(),
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
            id: "c1".into(),
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
                subject: Subject::InDoubt {
                    call_id: "c1".into(),
                    task_id: TASK.into()
                },
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
                subject: Subject::Approval {
                    approval_id: "a1".into(),
                    task_id: TASK.into()
                },
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
                subject: Subject::Approval {
                    approval_id: "a1".into(),
                    task_id: TASK.into()
                },
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
        assert_eq!(notice.subject, Subject::Burst);
        assert_eq!(compose(&[]), None);
    }

    #[test]
    fn an_approval_offers_approve_and_reject_a_burst_only_the_inbox() {
        let one = compose(&[note("support-refund", "Refund?")]).expect("a notice");
        let keys: Vec<_> = one
            .actions()
            .iter()
            .map(|(key, label)| (*key, *label))
            .collect();
        assert_eq!(
            keys,
            [
                ("default", "Open in Airlock"),
                ("approve", "Approve"),
                ("reject", "Reject…")
            ]
        );
        assert_eq!(
            one.chosen("approve"),
            Some(Chosen::Approve {
                approval_id: "a1".into(),
                task_id: TASK.into()
            })
        );
        assert_eq!(
            one.chosen("reject"),
            Some(Chosen::Reject {
                approval_id: "a1".into()
            })
        );
        assert_eq!(
            one.chosen("default"),
            Some(Chosen::Open {
                approval_id: Some("a1".into()),
                call_id: None
            })
        );
        assert_eq!(one.chosen("__closed"), None);

        let burst = compose(&[note("a", "x"), note("b", "y")]).expect("a notice");
        assert_eq!(burst.actions(), &[("default", "Open inbox")]);
        assert_eq!(
            burst.chosen("default"),
            Some(Chosen::Open {
                approval_id: None,
                call_id: None
            })
        );
        assert_eq!(burst.chosen("approve"), None, "a burst approves nothing");

        let doubt = compose(&[doubt("support-refund")]).expect("a notice");
        assert_eq!(doubt.actions(), &[("default", "Open in Airlock")]);
        assert_eq!(
            doubt.chosen("default"),
            Some(Chosen::Open {
                approval_id: None,
                call_id: Some("c1".into())
            })
        );

        let refused = Notice::refused(
            "support-refund",
            "a1",
            TASK,
            "You asked for this task; someone else must decide it.",
        );
        assert_eq!(refused.summary, "Not approved: support-refund");
        assert_eq!(refused.chosen("approve"), None);
        assert_eq!(refused.subject.task_id(), Some(TASK));
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
