//! `identities.toml`: the people who may start tasks and decide approvals, and their roles.

use std::path::Path;

use airlock_workflow::{DiagnosticCode as Code, Diagnostics};
use indexmap::IndexMap;
use serde::Deserialize;
use serde_spanned::Spanned;

use crate::report::unreadable;
use airlock_workflow::Reporter;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentities {
    #[serde(default)]
    defaults: Option<RawDefaults>,
    #[serde(default)]
    identities: IndexMap<Spanned<String>, RawIdentity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    #[serde(default)]
    roles: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    #[serde(default)]
    roles: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    display_name: Option<Spanned<String>>,
}

/// One listed identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub roles: Vec<String>,
    pub display_name: Option<String>,
}

/// Who has which roles. An identity that is not listed has the default roles.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identities {
    default_roles: Vec<String>,
    listed: IndexMap<String, Identity>,
}

impl Identities {
    /// Parses and validates an identities file; `path` is only used in messages.
    pub fn parse(path: &Path, source: &str) -> Result<Identities, Diagnostics> {
        let mut r = Reporter::new(path, source);
        let Some(raw) = r.read_toml::<RawIdentities>("key") else {
            return Err(r.finish_in_file_order());
        };
        let default_roles = match raw.defaults.and_then(|d| d.roles) {
            Some(list) => roles(&mut r, &list, "`roles` in [defaults]"),
            None => Vec::new(),
        };
        let mut listed = IndexMap::new();
        for (name, identity) in &raw.identities {
            let key = name.get_ref();
            if key.trim().is_empty() {
                r.error_at(
                    Code::BadValue,
                    &name.span(),
                    "an identity name cannot be empty",
                );
                continue;
            }
            let Some(list) = &identity.roles else {
                r.error_at(
                    Code::MissingField,
                    &name.span(),
                    format!(
                        "identity `{key}` has no `roles`; write `roles = []` for an identity with none"
                    ),
                );
                continue;
            };
            let roles = roles(&mut r, list, &format!("`roles` of identity `{key}`"));
            let display_name = identity.display_name.as_ref().map(|d| d.get_ref().clone());
            listed.insert(
                key.clone(),
                Identity {
                    name: key.clone(),
                    roles,
                    display_name,
                },
            );
        }
        if r.has_errors() {
            return Err(r.finish_in_file_order());
        }
        Ok(Identities {
            default_roles,
            listed,
        })
    }

    /// Reads and validates an identities file; an IO error is an `unreadable-file` diagnostic.
    pub fn load(path: &Path) -> Result<Identities, Diagnostics> {
        let source = std::fs::read_to_string(path).map_err(|e| unreadable(path, &e))?;
        Self::parse(path, &source)
    }

    /// Nobody is listed and nobody has roles.
    pub fn empty() -> Identities {
        Identities::default()
    }

    /// The roles of `identity`: its listed roles, else the default roles.
    pub fn roles_of(&self, identity: &str) -> Vec<String> {
        self.listed
            .get(identity)
            .map_or_else(|| self.default_roles.clone(), |i| i.roles.clone())
    }

    /// Whether `identity` is listed in the file.
    pub fn is_known(&self, identity: &str) -> bool {
        self.listed.contains_key(identity)
    }

    /// The listed identities and their roles, in file order.
    pub fn list(&self) -> Vec<(String, Vec<String>)> {
        self.listed
            .values()
            .map(|i| (i.name.clone(), i.roles.clone()))
            .collect()
    }

    /// A listed identity, with its display name.
    pub fn get(&self, identity: &str) -> Option<&Identity> {
        self.listed.get(identity)
    }

    /// The roles of an identity that is not listed.
    pub fn default_roles(&self) -> &[String] {
        &self.default_roles
    }
}

/// Checks a list of role names: each non-empty, without `*` (policy globs use it, so a
/// role named with one could not be told apart from a pattern), and listed once.
fn roles(r: &mut Reporter, list: &Spanned<Vec<Spanned<String>>>, what: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for role in list.get_ref() {
        let name = role.get_ref();
        if name.trim().is_empty() {
            r.error_at(
                Code::BadValue,
                &role.span(),
                format!("{what} holds an empty role name"),
            );
        } else if name.contains('*') {
            r.error_at(
                Code::BadValue,
                &role.span(),
                format!("{what} holds `{name}`, but a role name cannot contain `*`"),
            );
        } else if out.contains(name) {
            r.error_at(
                Code::DuplicateName,
                &role.span(),
                format!("{what} lists the role `{name}` twice"),
            );
        } else {
            out.push(name.clone());
        }
    }
    out
}
