//! Helpers shared by the test modules.

use std::path::Path;

use airlock_workflow::{Diagnostics, Workflow, parse};

pub fn parse_ok(source: &str) -> Workflow {
    match parse(Path::new("test.toml"), source) {
        Ok(workflow) => workflow,
        Err(diagnostics) => panic!("expected a valid workflow, got:\n{diagnostics}"),
    }
}

pub fn parse_err(source: &str) -> Diagnostics {
    match parse(Path::new("test.toml"), source) {
        Ok(workflow) => panic!("expected diagnostics, but `{}` parsed", workflow.name),
        Err(diagnostics) => diagnostics,
    }
}
