//! identities.toml: roles by identity, defaults, and bad files.

use std::path::Path;

use airlock_policy::{Identities, Identity};

const IDENTITIES: &str = r#"# roles of people who may start tasks and decide approvals
[defaults]
roles = ["operator"]

[identities.alice]
roles = ["support-agent", "controller"]
display_name = "Alice Martin"

[identities."bob.smith"]
roles = []
"#;

fn parse(source: &str) -> Result<Identities, Vec<String>> {
    Identities::parse(Path::new("identities.toml"), source).map_err(|d| {
        d.iter()
            .map(|d| format!("{}:{} {}: {}", d.line, d.column, d.code, d.message))
            .collect()
    })
}

#[test]
fn listed_identities_have_their_roles_and_others_the_defaults() {
    let ids = parse(IDENTITIES).expect("valid");
    assert_eq!(ids.roles_of("alice"), ["support-agent", "controller"]);
    // Listed with no roles is no roles, not the defaults.
    assert!(ids.roles_of("bob.smith").is_empty());
    assert_eq!(ids.roles_of("carol"), ["operator"]);
    assert!(ids.is_known("alice") && ids.is_known("bob.smith"));
    assert!(!ids.is_known("carol") && !ids.is_known("Alice"));
    assert_eq!(
        ids.list(),
        [
            (
                "alice".to_owned(),
                vec!["support-agent".to_owned(), "controller".to_owned()]
            ),
            ("bob.smith".to_owned(), vec![]),
        ]
    );
    assert_eq!(
        ids.get("alice"),
        Some(&Identity {
            name: "alice".into(),
            roles: vec!["support-agent".into(), "controller".into()],
            display_name: Some("Alice Martin".into()),
        })
    );
    assert_eq!(ids.default_roles(), ["operator"]);
}

#[test]
fn without_defaults_unlisted_people_have_no_roles() {
    let ids = parse("[identities.alice]\nroles = [\"controller\"]\n").expect("valid");
    assert!(ids.roles_of("carol").is_empty());
    assert_eq!(ids.roles_of("alice"), ["controller"]);

    let empty = Identities::empty();
    assert!(empty.roles_of("alice").is_empty());
    assert!(!empty.is_known("alice"));
    assert!(empty.list().is_empty());
    assert_eq!(parse("").expect("an empty file is valid"), empty);
}

#[test]
fn bad_identities_are_reported_where_they_are() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "an identity twice",
            "[identities.alice]\nroles = [\"a\"]\n\n[identities.alice]\nroles = [\"b\"]\n",
            &["4:13 duplicate-name: `alice` is defined twice; each key may appear only once"],
        ),
        (
            "an unknown field in an identity",
            "[identities.alice]\nroles = [\"a\"]\ndisplayname = \"A\"\n",
            &[
                "3:1 unknown-field: unknown field `displayname`; did you mean `display_name`? The fields allowed here are `roles`, `display_name`.",
            ],
        ),
        (
            "an unknown top-level table",
            "[identity.alice]\nroles = [\"a\"]\n",
            &[
                "1:2 unknown-field: unknown field `identity`. The fields allowed here are `defaults`, `identities`.",
            ],
        ),
        (
            "roles as a string",
            "[identities.alice]\nroles = \"admin\"\n",
            &["2:9 wrong-type: wrong type: expected an array, but found string \"admin\""],
        ),
        (
            "a role that is not a string",
            "[defaults]\nroles = [\"a\", 2]\n",
            &["2:15 wrong-type: wrong type: expected a string, but found integer `2`"],
        ),
        (
            "an identity without roles",
            "[identities.alice]\ndisplay_name = \"Alice\"\n",
            &[
                "1:13 missing-field: identity `alice` has no `roles`; write `roles = []` for an identity with none",
            ],
        ),
        (
            "empty names",
            "[defaults]\nroles = [\"\"]\n\n[identities.\"\"]\nroles = []\n\n[identities.bob]\nroles = [\"ops\", \"  \", \"ops\", \"a*\"]\n",
            &[
                "2:10 bad-value: `roles` in [defaults] holds an empty role name",
                "4:13 bad-value: an identity name cannot be empty",
                "8:17 bad-value: `roles` of identity `bob` holds an empty role name",
                "8:23 duplicate-name: `roles` of identity `bob` lists the role `ops` twice",
                "8:30 bad-value: `roles` of identity `bob` holds `a*`, but a role name cannot contain `*`",
            ],
        ),
        (
            "not TOML",
            "[identities.alice\n",
            &["1:18 toml-syntax: this is not valid TOML: unclosed table, expected `]`"],
        ),
    ];
    let mut failures = Vec::new();
    for (what, source, expected) in cases {
        let got = parse(source)
            .map(|_| ())
            .err()
            .unwrap_or_else(|| vec!["valid".into()]);
        if got != *expected {
            failures.push(format!("{what}:\n  expected {expected:#?}\n  got {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn load_reads_the_file_or_says_it_cannot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("identities.toml");
    std::fs::write(&path, IDENTITIES).expect("write");
    let ids = Identities::load(&path).expect("valid");
    assert_eq!(ids.roles_of("alice"), ["support-agent", "controller"]);

    let missing = Identities::load(&dir.path().join("nope.toml")).expect_err("no file");
    assert_eq!(missing.0[0].code.as_str(), "unreadable-file");
}
