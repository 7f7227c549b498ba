//! Time, injected. The engine never reads the system clock directly: expiry, backoff,
//! leases and timeouts all go through a [`Clock`], so tests can move time by days
//! in an instant and get the same answer every run.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use airlock_store::Millis;
use tokio::sync::watch;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now(&self) -> Millis;
    /// Resolves once `now() >= at`.
    fn sleep_until(&self, at: Millis) -> BoxFuture<'static, ()>;
}

/// Runs `fut`, giving up after `limit` of this clock's time.
pub async fn with_timeout<T>(
    clock: &dyn Clock,
    limit: Option<Duration>,
    fut: impl Future<Output = T>,
) -> Option<T> {
    let Some(limit) = limit else {
        return Some(fut.await);
    };
    let deadline = clock.now().saturating_add(millis(limit));
    tokio::select! {
        out = fut => Some(out),
        () = clock.sleep_until(deadline) => None,
    }
}

pub fn millis(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

/// The real wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(millis)
            .unwrap_or(0)
    }

    fn sleep_until(&self, at: Millis) -> BoxFuture<'static, ()> {
        let wait = at.saturating_sub(self.now()).max(0);
        Box::pin(tokio::time::sleep(Duration::from_millis(wait as u64)))
    }
}

/// A clock that only moves when told to; for tests and simulations.
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<AtomicI64>,
    tick: watch::Sender<Millis>,
}

impl ManualClock {
    pub fn new(start: Millis) -> ManualClock {
        let (tick, _) = watch::channel(start);
        ManualClock {
            now: Arc::new(AtomicI64::new(start)),
            tick,
        }
    }

    pub fn advance(&self, by: Duration) {
        let now = self.now.fetch_add(millis(by), Ordering::SeqCst) + millis(by);
        self.tick.send_replace(now);
    }

    pub fn set(&self, to: Millis) {
        self.now.store(to, Ordering::SeqCst);
        self.tick.send_replace(to);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.now.load(Ordering::SeqCst)
    }

    fn sleep_until(&self, at: Millis) -> BoxFuture<'static, ()> {
        let mut rx = self.tick.subscribe();
        Box::pin(async move {
            // A closed channel means the clock is gone: nothing will ever wake us.
            if rx.wait_for(|now| *now >= at).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}
