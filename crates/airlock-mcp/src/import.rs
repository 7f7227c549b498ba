//! Importing servers from Claude's config files into the Airlock servers file.
//!
//! Three shapes are read: Claude Desktop's `claude_desktop_config.json` and Claude Code's
//! project `.mcp.json` (both a top-level `mcpServers`), and Claude Code's `~/.claude.json`
//! (a top-level `mcpServers` plus `projects.<path>.mcpServers`). Claude Code's `${NAME}`
//! references become Airlock's `${env:NAME}`; names are lowercased and characters outside
//! `[a-z0-9_-]` become `-`, since tool names are `<server>.<tool>`.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::config::{ConfigError, RawServer, ServerConfig, check_server, locate, syntax_error};

/// What [`import_report`] found.
#[derive(Debug, Default)]
pub struct Import {
    /// In file order: the top-level servers, then each project's.
    pub servers: Vec<(String, ServerConfig)>,
    /// Entries that could not be imported: (name as written, why).
    pub skipped: Vec<(String, String)>,
}

/// What [`merge_into`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MergeReport {
    pub added: Vec<String>,
    /// Names already in the file (or earlier in the same import): left as they were.
    pub skipped_duplicates: Vec<String>,
}

/// Reads a Claude config file and returns the servers that can be imported. Entries that
/// cannot (an `sse` server, no command or url) are left out; see [`import_report`] for why.
pub fn import_servers(from: &Path) -> Result<Vec<(String, ServerConfig)>, ConfigError> {
    Ok(import_report(from)?.servers)
}

/// Like [`import_servers`], also saying which entries were left out and why.
pub fn import_report(from: &Path) -> Result<Import, ConfigError> {
    let text = std::fs::read_to_string(from).map_err(|source| ConfigError::Read {
        path: from.to_owned(),
        source,
    })?;
    let root: Value = serde_json::from_str(&text).map_err(|e| syntax_error(from, &e))?;
    let mut import = Import::default();
    if let Some(servers) = root.get("mcpServers") {
        import_block(from, &text, servers, &mut import)?;
    }
    if let Some(projects) = root.get("projects").and_then(Value::as_object) {
        for project in projects.values() {
            if let Some(servers) = project.get("mcpServers") {
                import_block(from, &text, servers, &mut import)?;
            }
        }
    }
    Ok(import)
}

fn import_block(
    path: &Path,
    text: &str,
    servers: &Value,
    import: &mut Import,
) -> Result<(), ConfigError> {
    let Some(servers) = servers.as_object() else {
        return Err(ConfigError::Syntax {
            path: path.to_owned(),
            at: locate(text, &[]),
            message: "`mcpServers` is not an object".into(),
        });
    };
    for (written_name, entry) in servers {
        let name = normalize_name(written_name);
        let Some(entry) = entry.as_object() else {
            import
                .skipped
                .push((written_name.clone(), "the entry is not an object".into()));
            continue;
        };
        let raw = raw_from_claude(entry);
        match check_server(&name, raw, |message, _| ConfigError::Invalid {
            path: path.to_owned(),
            at: locate(text, &[written_name]),
            server: name.clone(),
            message,
        }) {
            Ok(config) => import.servers.push((name, config)),
            Err(ConfigError::Invalid { message, .. }) => {
                import.skipped.push((written_name.clone(), message));
            }
            Err(other) => return Err(other),
        }
    }
    Ok(())
}

/// Keeps the keys Airlock knows; Claude-specific extras (`disabled`, `alwaysAllow`, ...) are
/// dropped.
fn raw_from_claude(entry: &Map<String, Value>) -> RawServer {
    let string = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_owned);
    let map = |key: &str| {
        entry.get(key).and_then(Value::as_object).map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), claude_refs_to_airlock(&v))
                })
                .collect::<IndexMap<_, _>>()
        })
    };
    RawServer {
        kind: string("type"),
        command: string("command"),
        args: entry.get("args").and_then(Value::as_array).map(|args| {
            args.iter()
                .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_owned))
                .collect()
        }),
        env: map("env"),
        url: string("url"),
        headers: map("headers"),
        airlock: None,
    }
}

/// `${NAME}` (Claude Code's form) → `${env:NAME}`; other text is kept.
fn claude_refs_to_airlock(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end)
                if !after[..end].is_empty()
                    && after[..end]
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                out.push_str("${env:");
                out.push_str(&after[..end]);
                out.push('}');
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn normalize_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Adds `servers` to the Airlock servers file at `existing_file` (created if missing),
/// keeping every entry already there and everything else in the file. A name already present
/// is skipped, not overwritten. The file is replaced atomically.
pub fn merge_into(
    existing_file: &Path,
    servers: Vec<(String, ServerConfig)>,
) -> Result<MergeReport, ConfigError> {
    let mut root = match std::fs::read_to_string(existing_file) {
        Ok(text) => {
            // Refuse to touch a file that does not check: the user should fix it first.
            crate::config::parse_servers(existing_file, &text)?;
            serde_json::from_str::<Value>(&text).map_err(|e| syntax_error(existing_file, &e))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Object(Map::new()),
        Err(source) => {
            return Err(ConfigError::Read {
                path: existing_file.to_owned(),
                source,
            });
        }
    };
    let Some(root_object) = root.as_object_mut() else {
        return Err(ConfigError::Syntax {
            path: existing_file.to_owned(),
            at: crate::config::Location { line: 1, column: 1 },
            message: "the file is not a JSON object".into(),
        });
    };
    let entries = root_object
        .entry("mcpServers")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(entries) = entries.as_object_mut() else {
        return Err(ConfigError::Syntax {
            path: existing_file.to_owned(),
            at: crate::config::Location { line: 1, column: 1 },
            message: "`mcpServers` is not an object".into(),
        });
    };
    let mut report = MergeReport::default();
    for (name, config) in servers {
        if entries.contains_key(&name) {
            report.skipped_duplicates.push(name);
        } else {
            entries.insert(name.clone(), config.to_json());
            report.added.push(name);
        }
    }
    let mut text = serde_json::to_string_pretty(&root).unwrap_or_default();
    text.push('\n');
    write_atomically(existing_file, &text)?;
    Ok(report)
}

fn write_atomically(path: &Path, text: &str) -> Result<(), ConfigError> {
    let write_err = |source| ConfigError::Write {
        path: path.to_owned(),
        source,
    };
    let mut tmp: PathBuf = path.to_owned();
    tmp.as_mut_os_string().push(".tmp");
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    std::fs::write(&tmp, text).map_err(write_err)?;
    std::fs::rename(&tmp, path).map_err(write_err)
}
