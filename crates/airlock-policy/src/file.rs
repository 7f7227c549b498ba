//! A policy that follows its file: edits that validate take effect, others are refused.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use airlock_workflow::Diagnostics;

use crate::policy::Policy;
use crate::report::unreadable;

/// How often [`PolicyFile::current`] looks at the file at most.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// A file modified this recently may be modified again within the file system's
/// timestamp granularity without its stamp changing, so its content is re-read.
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// A policy loaded from a file, reloaded when the file changes. A changed file that
/// fails validation is rejected (logged, and kept in [`PolicyFile::last_error`]); the
/// previous policy stays in force.
#[derive(Debug)]
pub struct PolicyFile {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    policy: Arc<Policy>,
    last_check: Instant,
    /// The modification time and length seen when the file was last read.
    stamp: Option<(SystemTime, u64)>,
    /// The version of the text last refused, so a bad file is reported once.
    rejected: Option<String>,
    last_error: Option<Diagnostics>,
}

impl PolicyFile {
    /// Loads the file; it must exist and validate.
    pub fn open(path: &Path) -> Result<PolicyFile, Diagnostics> {
        let stamp = stamp_of(path);
        let policy = Policy::load(path)?;
        tracing::info!(path = %path.display(), version = policy.version(), "policy loaded");
        Ok(PolicyFile {
            path: path.to_path_buf(),
            state: Mutex::new(State {
                policy: Arc::new(policy),
                last_check: Instant::now(),
                stamp,
                rejected: None,
                last_error: None,
            }),
        })
    }

    /// The policy in force. Looks at the file at most every 250 ms, and reads it only
    /// when its modification time or length changed (or it changed very recently).
    pub fn current(&self) -> Arc<Policy> {
        let mut state = self.lock();
        if state.last_check.elapsed() >= CHECK_EVERY {
            state.last_check = Instant::now();
            let stamp = stamp_of(&self.path);
            let settled = stamp.is_some_and(|(modified, _)| {
                SystemTime::now()
                    .duration_since(modified)
                    .is_ok_and(|age| age >= RACY_WINDOW)
            });
            let unchanged = stamp.is_some() && stamp == state.stamp && settled;
            if !unchanged {
                // The outcome is logged and kept in `last_error`; callers of `current`
                // only want the policy in force.
                let _ = self.reload(&mut state, false);
            }
        }
        Arc::clone(&state.policy)
    }

    /// Reads the file now. `Ok(true)` when a new version took effect, `Ok(false)` when
    /// the file holds the version in force; the diagnostics when it was refused (the
    /// previous version stays in force).
    pub fn reload_now(&self) -> Result<bool, Diagnostics> {
        let mut state = self.lock();
        state.last_check = Instant::now();
        self.reload(&mut state, true)
    }

    /// Why the file's current content was refused, if it was.
    pub fn last_error(&self) -> Option<Diagnostics> {
        self.lock().last_error.clone()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is replaced whole under the lock, so a panic elsewhere cannot have
        // left it half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `forced`: report a refused file again even if it was already refused.
    fn reload(&self, state: &mut State, forced: bool) -> Result<bool, Diagnostics> {
        let stamp = stamp_of(&self.path);
        let source = match std::fs::read_to_string(&self.path) {
            Ok(source) => source,
            Err(error) => {
                let diagnostics = unreadable(&self.path, &error);
                if state.last_error.as_ref() != Some(&diagnostics) {
                    tracing::error!(
                        path = %self.path.display(),
                        version = state.policy.version(),
                        "{diagnostics}; the policy in force stays"
                    );
                }
                state.stamp = None;
                state.rejected = None;
                state.last_error = Some(diagnostics.clone());
                return Err(diagnostics);
            }
        };
        state.stamp = stamp;
        let version = crate::policy::version_of(&source);
        if version == state.policy.version() && source == state.policy.source() {
            state.rejected = None;
            state.last_error = None;
            return Ok(false);
        }
        if !forced
            && state.rejected.as_deref() == Some(version.as_str())
            && let Some(error) = &state.last_error
        {
            return Err(error.clone());
        }
        match Policy::parse(&self.path, &source) {
            Ok(policy) => {
                tracing::info!(
                    path = %self.path.display(),
                    previous = state.policy.version(),
                    version = policy.version(),
                    "policy reloaded"
                );
                state.policy = Arc::new(policy);
                state.rejected = None;
                state.last_error = None;
                Ok(true)
            }
            Err(diagnostics) => {
                tracing::error!(
                    path = %self.path.display(),
                    version = state.policy.version(),
                    "the changed policy file was rejected; the policy in force stays:\n{diagnostics}"
                );
                state.rejected = Some(version);
                state.last_error = Some(diagnostics.clone());
                Err(diagnostics)
            }
        }
    }
}

fn stamp_of(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
