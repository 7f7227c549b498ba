//! Exit codes, so scripts can tell outcomes apart. The numbers are a contract: a new
//! outcome gets a new number, an existing one never changes. Under `--json`, a failure's
//! `{"error": {...}}` object names its code with [`Exit::name`] as well.

use airlock_engine::store::TaskStatus;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Done, or the task succeeded.
    Ok = 0,
    /// Something went wrong in Airlock or its store.
    Error = 1,
    // 2 is clap's usage error.
    /// A workflow or its inputs are invalid.
    Invalid = 3,
    /// The task failed or was cancelled.
    TaskFailed = 4,
    /// The task waits for a person (approval, in-doubt call, quarantine).
    NeedsPerson = 5,
    /// No such task (or a task id prefix that matches several), approval, call, grant,
    /// tool, memory entry or lesson; or no database at a path given with `--db` or
    /// `AIRLOCK_DB`. A workflow that cannot be found is [`Exit::Invalid`]: what was asked
    /// to run is not valid.
    NotFound = 6,
    /// `airlock audit verify` found an audit entry changed, deleted or replaced.
    AuditBroken = 7,
    /// Refused: by a rule (not an approver, four eyes, an edit the policy or the tool's
    /// schema does not allow, a policy explained as `deny`), or because what it acts on
    /// no longer allows it (an approval already decided, or answered after it expired; a
    /// task that has ended or does not wait for this). Trying again will not help.
    Refused = 8,
    /// The task is being run by another engine (the desktop app, another `airlock`) right
    /// now: try again once it lets go.
    Busy = 9,
}

impl Exit {
    /// The stable name of the code, for machine-readable errors.
    pub fn name(self) -> &'static str {
        match self {
            Exit::Ok => "ok",
            Exit::Error => "error",
            Exit::Invalid => "invalid",
            Exit::TaskFailed => "task_failed",
            Exit::NeedsPerson => "needs_person",
            Exit::NotFound => "not_found",
            Exit::AuditBroken => "audit_broken",
            Exit::Refused => "refused",
            Exit::Busy => "busy",
        }
    }

    pub fn for_status(status: TaskStatus) -> Exit {
        match status {
            TaskStatus::Succeeded => Exit::Ok,
            TaskStatus::Failed | TaskStatus::Cancelled => Exit::TaskFailed,
            TaskStatus::WaitingApproval | TaskStatus::InDoubt | TaskStatus::Quarantined => {
                Exit::NeedsPerson
            }
            TaskStatus::Running => Exit::Ok,
        }
    }
}
