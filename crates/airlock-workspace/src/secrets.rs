//! Secrets in the OS keychain (macOS Keychain, Windows Credential Manager, the Linux
//! kernel's persistent keyring), under the service `airlock`. Servers files refer to them
//! as `${keychain:NAME}`; the Claude API key may live here as `anthropic-api-key`. Values
//! are never logged, printed or written to the database.

use keyring::Entry;

/// The keychain service every Airlock secret is stored under.
pub const SERVICE: &str = "airlock";
/// The entry the Claude API key is read from when `ANTHROPIC_API_KEY` is not set.
pub const CLAUDE_KEY_ENTRY: &str = "anthropic-api-key";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the keychain entry `{name}` cannot be used: {message}")]
    Keychain { name: String, message: String },
    #[error("a secret must not be empty")]
    Empty,
}

fn entry(name: &str) -> Result<Entry, SecretError> {
    // On Linux, a process that has no session keyring of its own is given one the first
    // time an entry is made (when the persistent keyring is linked to it), but that first
    // entry still points at the shared user-session keyring it cannot write to. Making
    // one throwaway entry first means every real one points at the process's own.
    static PRIMED: std::sync::Once = std::sync::Once::new();
    PRIMED.call_once(|| {
        let _ = Entry::new(SERVICE, "airlock");
    });
    Entry::new(SERVICE, name).map_err(|e| SecretError::Keychain {
        name: name.to_owned(),
        message: e.to_string(),
    })
}

/// The secret stored as `name`, or `None` when there is none.
pub fn get(name: &str) -> Result<Option<String>, SecretError> {
    match entry(name)?.get_password() {
        Ok(value) => Ok(Some(value)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(SecretError::Keychain {
            name: name.to_owned(),
            message: e.to_string(),
        }),
    }
}

/// Stores `value` as `name`, replacing what was there.
pub fn set(name: &str, value: &str) -> Result<(), SecretError> {
    if value.is_empty() {
        return Err(SecretError::Empty);
    }
    entry(name)?
        .set_password(value)
        .map_err(|e| SecretError::Keychain {
            name: name.to_owned(),
            message: e.to_string(),
        })
}

/// Removes `name`; false when there was nothing to remove.
pub fn delete(name: &str) -> Result<bool, SecretError> {
    match entry(name)?.delete_credential() {
        Ok(()) => Ok(true),
        Err(keyring::Error::NoEntry) => Ok(false),
        Err(e) => Err(SecretError::Keychain {
            name: name.to_owned(),
            message: e.to_string(),
        }),
    }
}

/// What a servers file's reference resolves to: `keychain:NAME` from the keychain,
/// anything else from the environment. A keychain that cannot be reached counts as
/// unset (the connection error then names the entry), and is logged once per name.
pub fn lookup_reference(reference: &str) -> Option<String> {
    match reference.strip_prefix("keychain:") {
        Some(name) => match get(name) {
            Ok(value) => value,
            Err(error) => {
                tracing::warn!(%error, "reading a secret from the keychain");
                None
            }
        },
        None => std::env::var(reference).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real round trip through this machine's keychain (the kernel keyring on Linux).
    #[test]
    fn a_secret_goes_in_comes_back_and_goes_away() {
        let name = format!("airlock-test-{}", std::process::id());
        assert_eq!(get(&name).expect("readable"), None);
        set(&name, "s3cr3t").expect("stored");
        assert_eq!(get(&name).expect("readable").as_deref(), Some("s3cr3t"));
        assert_eq!(
            lookup_reference(&format!("keychain:{name}")).as_deref(),
            Some("s3cr3t")
        );
        assert!(matches!(set(&name, ""), Err(SecretError::Empty)));
        assert!(delete(&name).expect("deleted"));
        assert!(!delete(&name).expect("nothing left"));
        assert_eq!(lookup_reference(&format!("keychain:{name}")), None);
    }
}
