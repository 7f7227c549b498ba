//! Exit codes, so scripts can tell outcomes apart.

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
    /// No such task, approval, call or workflow.
    NotFound = 6,
    /// `airlock audit verify` found an audit entry changed, deleted or replaced.
    AuditBroken = 7,
    /// Refused by a rule: not an approver, four eyes, an edit the policy or the tool's
    /// schema does not allow, an approval answered after it expired, or a policy
    /// explained as `deny`.
    Refused = 8,
}

impl Exit {
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
