//! Shows [`Notice`]s through the desktop's notification service (D-Bus on Linux) and hears
//! which action a person chose on them.
//!
//! Each notification with actions is followed by one async task until it closes: a click,
//! an action, the daemon's timeout, or [`Notifier::withdraw`] when what it asks about no
//! longer waits (decided in the window, say).
//! At most [`LIVE_LIMIT`] are followed at once; a newer one closes the oldest. Nothing
//! blocks a thread while it waits. Actions are offered only when the daemon says it
//! supports them. Without a notification service the app keeps working and says so once
//! in the log.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use notify_rust::NotificationResponse;
use tokio::sync::{mpsc, oneshot};

use crate::notify::{Chosen, DEFAULT_ACTION, Notice, Subject};

/// The most notifications followed for actions at once.
pub const LIVE_LIMIT: usize = 8;

/// The app's notification service: cheap to clone, shared by the burst coalescer, the feed
/// (which withdraws notices whose task moved on) and the action follower (which tells of
/// refused answers).
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    warned: AtomicBool,
    /// Whether the daemon offers actions, once it has answered.
    actions: Mutex<Option<bool>>,
    live: Mutex<VecDeque<Live>>,
    next: AtomicU64,
    chosen: mpsc::UnboundedSender<Chosen>,
}

/// A notification being followed: what it is about, and how to close it.
struct Live {
    key: u64,
    subject: Subject,
    close: oneshot::Sender<()>,
}

impl Notifier {
    /// A notifier that sends what people choose on its notifications to `chosen`.
    pub fn new(chosen: mpsc::UnboundedSender<Chosen>) -> Self {
        Self {
            inner: Arc::new(Inner {
                warned: AtomicBool::new(false),
                actions: Mutex::new(None),
                live: Mutex::new(VecDeque::new()),
                next: AtomicU64::new(0),
                chosen,
            }),
        }
    }

    /// Shows `notice` in the background (and follows its actions); never blocks the caller.
    pub fn show(&self, notice: Notice) {
        let this = self.clone();
        tauri::async_runtime::spawn(async move { this.show_and_follow(notice).await });
    }

    /// What the followed notifications about `task_id` are about.
    pub fn followed(&self, task_id: &str) -> Vec<Subject> {
        lock(&self.inner.live)
            .iter()
            .filter(|l| l.subject.task_id() == Some(task_id))
            .map(|l| l.subject.clone())
            .collect()
    }

    /// Closes the followed notifications `stale` says no longer ask for anything.
    pub fn withdraw(&self, stale: impl Fn(&Subject) -> bool) {
        let mut live = lock(&self.inner.live);
        let (gone, kept): (VecDeque<Live>, VecDeque<Live>) =
            live.drain(..).partition(|l| stale(&l.subject));
        *live = kept;
        for l in gone {
            tracing::debug!(subject = ?l.subject, "notification withdrawn");
            let _ = l.close.send(());
        }
    }

    /// How many notifications are followed now.
    pub fn live(&self) -> usize {
        lock(&self.inner.live).len()
    }

    async fn show_and_follow(&self, notice: Notice) {
        let with_actions = self.daemon_has_actions().await;
        let mut notification = notify_rust::Notification::new();
        notification
            .appname("Airlock")
            .summary(&notice.summary)
            .body(&notice.body);
        if with_actions {
            for (key, label) in notice.actions() {
                notification.action(key, label);
            }
        }
        let handle = match notification.show_async().await {
            Ok(handle) => handle,
            Err(error) => {
                self.unavailable(&error);
                return;
            }
        };
        tracing::debug!(summary = %notice.summary, with_actions, "notification shown");
        if !with_actions {
            return;
        }
        let (close, closed) = oneshot::channel();
        let key = self.follow(&notice.subject, close);
        let wait = async {
            let mut chosen = None;
            handle
                .wait_for_action_async(|response| {
                    chosen = match response {
                        NotificationResponse::Default => Some(DEFAULT_ACTION.to_owned()),
                        NotificationResponse::Action(key) => Some(key.clone()),
                        _ => None,
                    };
                })
                .await;
            chosen
        };
        let chosen = tokio::select! {
            chosen = wait => chosen,
            _ = closed => None,
        };
        // Done with: withdrawn, or acted on (which not every daemon closes by itself, dunst's
        // context menu for one). Closing a closed notification is harmless.
        handle.close_async().await;
        lock(&self.inner.live).retain(|l| l.key != key);
        if let Some(chosen) = chosen.and_then(|key| notice.chosen(&key)) {
            tracing::info!(?chosen, "notification action chosen");
            let _ = self.inner.chosen.send(chosen);
        }
    }

    /// Records a followed notification, closing the oldest when there are too many.
    fn follow(&self, subject: &Subject, close: oneshot::Sender<()>) -> u64 {
        let key = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let mut live = lock(&self.inner.live);
        while live.len() >= LIVE_LIMIT {
            if let Some(oldest) = live.pop_front() {
                let _ = oldest.close.send(());
            }
        }
        live.push_back(Live {
            key,
            subject: subject.clone(),
            close,
        });
        key
    }

    /// Asks the daemon once whether it shows actions (a daemon that cannot be asked is
    /// asked again next time: it may have started since).
    async fn daemon_has_actions(&self) -> bool {
        if let Some(known) = *lock(&self.inner.actions) {
            return known;
        }
        let asked = tokio::task::spawn_blocking(notify_rust::get_capabilities).await;
        match asked {
            Ok(Ok(capabilities)) => {
                let known = capabilities.iter().any(|c| c == "actions");
                tracing::debug!(?capabilities, "notification daemon capabilities");
                *lock(&self.inner.actions) = Some(known);
                known
            }
            Ok(Err(_)) | Err(_) => false,
        }
    }

    /// The first failure is logged as a warning, later ones only at debug level.
    fn unavailable(&self, error: &notify_rust::error::Error) {
        if self.inner.warned.swap(true, Ordering::Relaxed) {
            tracing::debug!(%error, "notification not shown");
        } else {
            tracing::warn!(
                %error,
                "desktop notifications are unavailable (no notification service?); \
                 approvals still appear in the app"
            );
        }
    }
}

/// A poisoned lock only means another task panicked mid-update of a list of closers;
/// carrying on with it is safe.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(n: usize) -> Subject {
        Subject::Approval {
            approval_id: format!("a{n}"),
            task_id: format!("t{}", n % 2),
        }
    }

    #[test]
    fn at_most_the_limit_are_followed_and_a_newer_one_closes_the_oldest() {
        let (chosen, _choices) = mpsc::unbounded_channel();
        let notifier = Notifier::new(chosen);
        let mut closed = Vec::new();
        for n in 0..=LIVE_LIMIT {
            let (close, was_closed) = oneshot::channel();
            notifier.follow(&approval(n), close);
            closed.push(was_closed);
        }
        assert_eq!(notifier.live(), LIVE_LIMIT);
        let mut closed = closed.into_iter();
        let mut oldest = closed.next().expect("the first");
        assert_eq!(oldest.try_recv(), Ok(()), "the oldest is closed");
        for mut other in closed {
            assert!(other.try_recv().is_err(), "the others stay open");
        }
    }

    #[test]
    fn withdrawing_closes_only_what_no_longer_waits() {
        let (chosen, _choices) = mpsc::unbounded_channel();
        let notifier = Notifier::new(chosen);
        let mut receivers = Vec::new();
        for n in 0..4 {
            let (close, was_closed) = oneshot::channel();
            notifier.follow(&approval(n), close);
            receivers.push(was_closed);
        }
        assert_eq!(notifier.followed("t0"), vec![approval(0), approval(2)]);
        notifier.withdraw(|subject| subject == &approval(2));
        let results: Vec<bool> = receivers.iter_mut().map(|r| r.try_recv().is_ok()).collect();
        assert_eq!(results, [false, false, true, false]);
        assert_eq!(notifier.followed("t0"), vec![approval(0)]);
        assert_eq!(notifier.live(), 3);
    }
}
