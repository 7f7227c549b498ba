//! Integration tests of the workflow format: parsing, diagnostics, expressions, schema.

mod support;

mod diagnostics;
mod eval;
mod examples;
mod parse;
mod postconditions;
mod schema;
