//! Where Airlock keeps its data on this machine: the SQLite database and the workspace
//! folder of workflow and policy files. Resolved once at start-up from the environment.

use std::path::{Path, PathBuf};

/// Environment variable naming the SQLite database file (overrides the default location).
pub const DB_ENV: &str = "AIRLOCK_DB";
/// Environment variable naming the workspace folder (workflows, policies, server configs).
pub const WORKSPACE_ENV: &str = "AIRLOCK_WORKSPACE";
/// File name of the database inside the data dir when `AIRLOCK_DB` is not set.
pub const DATABASE_FILE: &str = "airlock.sqlite";

/// The resolved places the app reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locations {
    /// The OS user data dir joined with `airlock` (e.g. `~/.local/share/airlock`).
    pub data_dir: PathBuf,
    pub database_path: PathBuf,
    pub workspace_path: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    #[error(
        "this system reports no user data directory (on Linux: neither $XDG_DATA_HOME nor $HOME is set), \
         so Airlock cannot choose where to keep its database; set {DB_ENV} to a file path"
    )]
    NoDataDir,
}

impl Locations {
    /// Resolves from the process environment and the OS conventions of the `dirs` crate.
    pub fn from_env() -> Result<Self, LocationError> {
        Self::resolve(
            |name| std::env::var_os(name).map(PathBuf::from),
            dirs::data_dir(),
        )
    }

    /// The rule itself, with the environment and the OS data dir passed in:
    /// `AIRLOCK_DB` wins, else `<data dir>/airlock/airlock.sqlite`; the workspace is
    /// `AIRLOCK_WORKSPACE` or none. Empty variables count as unset.
    pub fn resolve(
        var: impl Fn(&str) -> Option<PathBuf>,
        os_data_dir: Option<PathBuf>,
    ) -> Result<Self, LocationError> {
        let var = |name: &str| var(name).filter(|value| !value.as_os_str().is_empty());
        let database_override = var(DB_ENV);
        let data_dir = match (os_data_dir, &database_override) {
            (Some(base), _) => base.join("airlock"),
            // No OS data dir: the database's own folder is the only place we know about.
            (None, Some(db)) => db.parent().map(Path::to_path_buf).unwrap_or_default(),
            (None, None) => return Err(LocationError::NoDataDir),
        };
        let database_path = database_override.unwrap_or_else(|| data_dir.join(DATABASE_FILE));
        Ok(Self {
            data_dir,
            database_path,
            workspace_path: var(WORKSPACE_ENV),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<PathBuf> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| PathBuf::from(value))
        }
    }

    struct Case {
        name: &'static str,
        vars: &'static [(&'static str, &'static str)],
        os_data_dir: Option<&'static str>,
        expected: Result<Locations, LocationError>,
    }

    fn found(
        data_dir: &str,
        database_path: &str,
        workspace_path: Option<&str>,
    ) -> Result<Locations, LocationError> {
        Ok(Locations {
            data_dir: data_dir.into(),
            database_path: database_path.into(),
            workspace_path: workspace_path.map(PathBuf::from),
        })
    }

    #[test]
    fn resolution_rules() {
        let home = Some("/home/ada/.local/share");
        let cases = [
            Case {
                name: "defaults to the user data dir",
                vars: &[],
                os_data_dir: home,
                expected: found(
                    "/home/ada/.local/share/airlock",
                    "/home/ada/.local/share/airlock/airlock.sqlite",
                    None,
                ),
            },
            Case {
                name: "AIRLOCK_DB and AIRLOCK_WORKSPACE override",
                vars: &[
                    ("AIRLOCK_DB", "/tmp/x.sqlite"),
                    ("AIRLOCK_WORKSPACE", "/srv/ws"),
                ],
                os_data_dir: home,
                expected: found(
                    "/home/ada/.local/share/airlock",
                    "/tmp/x.sqlite",
                    Some("/srv/ws"),
                ),
            },
            Case {
                name: "empty variables count as unset",
                vars: &[("AIRLOCK_DB", ""), ("AIRLOCK_WORKSPACE", "")],
                os_data_dir: home,
                expected: found(
                    "/home/ada/.local/share/airlock",
                    "/home/ada/.local/share/airlock/airlock.sqlite",
                    None,
                ),
            },
            Case {
                name: "no OS data dir but AIRLOCK_DB set",
                vars: &[("AIRLOCK_DB", "/var/lib/airlock/db.sqlite")],
                os_data_dir: None,
                expected: found("/var/lib/airlock", "/var/lib/airlock/db.sqlite", None),
            },
            Case {
                name: "no OS data dir and no AIRLOCK_DB",
                vars: &[],
                os_data_dir: None,
                expected: Err(LocationError::NoDataDir),
            },
        ];
        for case in cases {
            let got = Locations::resolve(env(case.vars), case.os_data_dir.map(PathBuf::from));
            assert_eq!(got, case.expected, "case: {}", case.name);
        }
    }
}
