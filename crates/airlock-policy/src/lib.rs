//! Who may do what: identities with roles, and the policy that decides each tool call.
//!
//! [`Identities`] reads `identities.toml` (people and their roles). [`Policy`] reads
//! `policy.toml`, a list of rules, each selecting calls by workflow, role, server, tool
//! and risk globs and an optional CEL condition, with an effect: `allow`,
//! `require_approval` or `deny`. [`Policy::evaluate`] decides one call:
//!
//! - **Default deny**: a call no rule matches is denied.
//! - **Strictest wins**: deny beats require_approval beats allow; among rules with the
//!   same effect, the first in the file decides (for approvals, see below).
//! - **Approvals combine** into the strictest demand: the rule asking for the most
//!   approvals decides (the first, on a tie) and gives the approver roles and the
//!   escalation; the demand takes the shortest expiry of all matching approval rules and
//!   four eyes if any of them asks for it.
//! - **Roles**: a `roles` selector matches when any of the principal's roles matches any
//!   of its globs, so a principal without roles matches no `roles` selector, not even
//!   `["*"]`; leave `roles` out to match everyone.
//! - **Fail closed**: a condition that cannot be evaluated (a missing field, a non-boolean
//!   result) counts as a match for deny and require_approval rules and as no match for
//!   allow rules; its message goes into the decision's `seen`.
//!
//! Files are validated whole: every problem is a [`airlock_workflow::Diagnostic`] at
//! file:line:column. [`PolicyFile`] follows a file as it is edited. This crate does no IO
//! except reading the files it is asked to load.

mod decision;
mod file;
mod glob;
mod identities;
mod policy;
mod report;
mod risk;
mod validate;

pub use decision::{ApprovalDemand, Effect, PolicyDecision};
pub use file::PolicyFile;
pub use identities::{Identities, Identity};
pub use policy::{CallFacts, Policy, Rule};
pub use risk::Risk;
