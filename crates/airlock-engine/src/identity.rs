//! Who this engine is, and whether another engine's process is still alive. On the same
//! host a dead engine is recognised at once (its pid is gone or belongs to a newer
//! process), so a restart resumes its tasks without waiting for their leases to expire.

use airlock_store::EngineRegistration;

pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The process start time as the kernel reports it (field 22 of `/proc/<pid>/stat`);
/// empty where there is no procfs.
pub fn process_started(pid: u32) -> String {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return String::new();
    };
    // The command name (field 2) may contain spaces; fields after it are plain.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19))
        .unwrap_or_default()
        .to_owned()
}

/// Whether the engine's process is known to be gone. `false` means alive or unknown.
pub fn known_dead(engine: &EngineRegistration, this_host: &str) -> bool {
    if engine.host != this_host || engine.pid_started.is_empty() {
        return false;
    }
    let Ok(pid) = u32::try_from(engine.pid) else {
        return false;
    };
    process_started(pid) != engine.pid_started
}

/// The OS user, the default identity a task is requested by.
pub fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "local-user".into())
}
