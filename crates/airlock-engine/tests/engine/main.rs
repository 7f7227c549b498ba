//! Engine integration tests: real SQLite files in a temp directory per test, the public
//! engine API, the built-in tools (wrapped where a test needs a call to hang).

// A test that meets an unexpected error should stop right there, with the error shown.
#![allow(clippy::unwrap_used)]

mod approval;
mod basics;
mod cancel;
mod checks;
mod in_doubt;
mod leases;
mod memory;
mod policy;
mod postconditions;
mod progress;
mod props;
mod quarantine;
mod retry;
mod support;
