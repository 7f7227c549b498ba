//! The published JSON Schema matches the serde shapes; `AIRLOCK_UPDATE_SCHEMA=1` rewrites it.

use std::path::PathBuf;

use airlock_workflow::workflow_json_schema;

fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schema/workflow.schema.json")
}

#[test]
fn published_schema_has_not_drifted() {
    let fresh = serde_json::to_string_pretty(&workflow_json_schema()).expect("serializes") + "\n";
    let path = schema_path();
    if std::env::var_os("AIRLOCK_UPDATE_SCHEMA").is_some_and(|v| v == "1") {
        std::fs::write(&path, &fresh).expect("schema file is writable");
        return;
    }
    let published = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        published == fresh,
        "{} is out of date; run `AIRLOCK_UPDATE_SCHEMA=1 cargo test -p airlock-workflow` and commit it",
        path.display()
    );
}

#[test]
fn schema_describes_fields_and_per_kind_rules() {
    let schema = workflow_json_schema();
    let state = &schema["$defs"]["State"];
    assert_eq!(state["additionalProperties"], false);
    assert!(
        state["properties"]["retry"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("how to retry")),
        "{state}"
    );
    let kinds = &schema["$defs"]["StateKind"];
    assert!(kinds.to_string().contains("approval"), "{kinds}");
    let rules = state["allOf"].as_array().expect("per-kind rules");
    let choice = rules
        .iter()
        .find(|r| r["if"]["properties"]["kind"]["const"] == "choice")
        .expect("a rule for choice");
    assert_eq!(choice["then"]["properties"]["retry"], false);
    assert_eq!(
        choice["then"]["required"],
        serde_json::json!(["branches", "default"])
    );
    assert!(schema["required"].to_string().contains("start"));
}
