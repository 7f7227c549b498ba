//! Workflow definitions: parsing, validation and expressions.
