//! The API key: held in memory only, never printed, never serialised.

use std::fmt;

use airlock_engine::ModelError;

/// The environment variable [`ApiKey::from_env`] reads.
pub const API_KEY_ENV: &str = "ANTHROPIC_API_KEY";

/// A secret. `Debug` prints `ApiKey(<redacted>)`; there is no `Display` and no `Serialize`,
/// so the key cannot reach a log line, an error message or the database by accident.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }

    /// Reads `ANTHROPIC_API_KEY`. An unset or blank variable is an error naming the
    /// variable (never its value).
    pub fn from_env() -> Result<ApiKey, ModelError> {
        ApiKey::from_env_var(API_KEY_ENV)
    }

    pub fn from_env_var(name: &str) -> Result<ApiKey, ModelError> {
        match std::env::var(name) {
            Ok(key) if !key.trim().is_empty() => Ok(ApiKey(key.trim().to_string())),
            _ => Err(ModelError(format!(
                "no API key: set {name} in the environment"
            ))),
        }
    }

    /// The key as a header value, marked sensitive so the HTTP stack redacts it too.
    pub(crate) fn header(&self, prefix: &str) -> Result<reqwest::header::HeaderValue, ModelError> {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("{prefix}{}", self.0))
            .map_err(|_| {
                ModelError("the API key contains characters not allowed in an HTTP header".into())
            })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}
