//! Where Airlock keeps its data on this machine: the SQLite database, the workspace
//! folder of workflow and policy files, and the files that override the workspace's own
//! (servers, policy, identities, the built-in tools' effects). Resolved once at start-up
//! from the same environment variables the `airlock` CLI reads, so both mean the same.

use std::path::{Path, PathBuf};

/// Environment variable naming the SQLite database file (overrides the default location).
pub const DB_ENV: &str = "AIRLOCK_DB";
/// Environment variable naming the workspace folder (workflows, policies, server configs).
pub const WORKSPACE_ENV: &str = "AIRLOCK_WORKSPACE";
/// Environment variable naming the MCP servers file (the CLI's `--servers`).
pub const SERVERS_ENV: &str = "AIRLOCK_SERVERS";
/// Environment variable naming the built-in tools' effects file (the CLI's `--effects-db`).
pub const EFFECTS_DB_ENV: &str = "AIRLOCK_EFFECTS_DB";
/// Environment variable naming the policy file (the CLI's `--policy`).
pub const POLICY_ENV: &str = "AIRLOCK_POLICY";
/// Environment variable naming the identities file (the CLI's `--identities`).
pub const IDENTITIES_ENV: &str = "AIRLOCK_IDENTITIES";
/// File name of the database inside the data dir when `AIRLOCK_DB` is not set.
pub const DATABASE_FILE: &str = "airlock.sqlite";

/// The resolved places the app reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locations {
    /// The OS user data dir joined with `airlock` (e.g. `~/.local/share/airlock`).
    pub data_dir: PathBuf,
    pub database_path: PathBuf,
    pub workspace_path: Option<PathBuf>,
    /// Files given explicitly instead of the workspace's (or the data dir's) own.
    pub files: ConfigFiles,
}

/// Files named by environment variables; `None` leaves the choice to
/// `airlock_workspace::Setup` (the workspace's file, else the one beside the database).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigFiles {
    /// `AIRLOCK_SERVERS`: the MCP servers file.
    pub servers: Option<PathBuf>,
    /// `AIRLOCK_EFFECTS_DB`: where the built-in tools record their effects.
    pub effects_db: Option<PathBuf>,
    /// `AIRLOCK_POLICY`: the policy file.
    pub policy: Option<PathBuf>,
    /// `AIRLOCK_IDENTITIES`: people and their roles.
    pub identities: Option<PathBuf>,
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
    /// `AIRLOCK_WORKSPACE` or none; `AIRLOCK_SERVERS`, `AIRLOCK_EFFECTS_DB`,
    /// `AIRLOCK_POLICY` and `AIRLOCK_IDENTITIES` name their files or leave them to the
    /// defaults. Empty variables count as unset.
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
            files: ConfigFiles {
                servers: var(SERVERS_ENV),
                effects_db: var(EFFECTS_DB_ENV),
                policy: var(POLICY_ENV),
                identities: var(IDENTITIES_ENV),
            },
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
            files: ConfigFiles::default(),
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
                name: "the CLI's file variables name their files",
                vars: &[
                    ("AIRLOCK_SERVERS", "/etc/airlock/servers.json"),
                    ("AIRLOCK_EFFECTS_DB", "/tmp/effects.sqlite"),
                    ("AIRLOCK_POLICY", "/etc/airlock/policy.toml"),
                    ("AIRLOCK_IDENTITIES", ""),
                ],
                os_data_dir: home,
                expected: found(
                    "/home/ada/.local/share/airlock",
                    "/home/ada/.local/share/airlock/airlock.sqlite",
                    None,
                )
                .map(|found| Locations {
                    files: ConfigFiles {
                        servers: Some("/etc/airlock/servers.json".into()),
                        effects_db: Some("/tmp/effects.sqlite".into()),
                        policy: Some("/etc/airlock/policy.toml".into()),
                        identities: None,
                    },
                    ..found
                }),
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
