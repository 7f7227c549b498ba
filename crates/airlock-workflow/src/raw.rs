//! The TOML shapes as serde reads them, with spans; also the source of the JSON Schema.
//!
//! States are one flat table with every field optional, rather than a tagged enum:
//! serde's internally tagged enums buffer their content and would lose the spans,
//! and a flat shape lets validation say *which kinds* allow a misplaced field.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_spanned::Spanned;

/// An Airlock workflow: a named state machine with typed inputs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Airlock workflow")]
#[schemars(rename = "Workflow")]
pub(crate) struct RawWorkflow {
    /// The workflow's name: lower-case letters, digits, `_` and `-`, starting with a letter or digit.
    #[schemars(with = "String", regex(pattern = r"^[a-z0-9][a-z0-9_-]*$"))]
    pub name: Spanned<String>,
    /// What the workflow does, for people.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub description: Option<Spanned<String>>,
    /// The name of the first state.
    #[schemars(with = "String")]
    pub start: Spanned<String>,
    /// The inputs a task of this workflow takes, by name.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawInput>")]
    pub inputs: IndexMap<Spanned<String>, Spanned<RawInput>>,
    /// The states, by name. Names are identifiers, so expressions can say `state.<name>`.
    #[schemars(with = "BTreeMap<String, RawState>")]
    pub states: IndexMap<Spanned<String>, Spanned<RawState>>,
    /// Checked, in order, when a task reaches a `succeeded` end, before its outcome is
    /// recorded: each may read with one read-only tool and asserts expressions over the
    /// result and the task's state. One that fails makes the task's outcome `failed`.
    #[serde(default)]
    #[schemars(with = "Vec<RawPostcondition>")]
    pub postconditions: Vec<Spanned<RawPostcondition>>,
}

/// A post-condition: what must hold once the workflow has done its work.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Postcondition")]
pub(crate) struct RawPostcondition {
    /// Its name, unique among the workflow's post-conditions (letters, digits and `_`).
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// What it makes sure of, for people.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub description: Option<Spanned<String>>,
    /// A read-only tool to read the final record with, as `<server>.<tool>`; its result
    /// is `result` in `expect` and `message`. Without one, only the task's state is checked.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub tool: Option<Spanned<String>>,
    /// The tool's arguments, as in a `tool` state: string leaves are CEL expressions over
    /// `inputs`, `state` and `task`.
    #[serde(default)]
    #[schemars(with = "Option<BTreeMap<String, RawArg>>")]
    pub args: Option<Spanned<IndexMap<String, Spanned<RawArg>>>>,
    /// CEL expressions over `inputs`, `state`, `task` and `result` that must all be true.
    #[schemars(with = "Vec<String>", length(min = 1))]
    pub expect: Spanned<Vec<Spanned<String>>>,
    /// Says what went wrong when an expectation is false; a template with `{{ CEL }}` holes.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub message: Option<Spanned<String>>,
}

/// One input of the workflow.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Input")]
pub(crate) struct RawInput {
    /// The input's type.
    #[serde(rename = "type")]
    #[schemars(with = "crate::model::InputType")]
    pub ty: Spanned<String>,
    /// What the input means, for people.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub description: Option<Spanned<String>>,
    /// The value used when none is given; makes the input optional.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub default: Option<Spanned<serde_json::Value>>,
    /// Whether a value must be given; defaults to true unless there is a `default`.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub required: Option<Spanned<bool>>,
}

/// The kinds of state.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "StateKind")]
#[allow(dead_code)] // only describes `kind` in the JSON Schema
pub(crate) enum KindName {
    /// One deterministic tool call.
    Tool,
    /// Claude works toward a goal with a set of tools and returns output matching a schema.
    Agent,
    /// Branch on expressions over the task's state.
    Choice,
    /// An explicit human checkpoint.
    Approval,
    /// An outcome assertion.
    Check,
    /// Reads long-lived memory about a subject into the task's state.
    Recall,
    /// Writes one entry to long-lived memory (an effect, recorded like any other).
    Remember,
    /// The end of the task: success, failure or cancellation.
    End,
}

/// One state. Which fields are allowed depends on `kind`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "State")]
pub(crate) struct RawState {
    /// What kind of state this is.
    #[schemars(with = "KindName")]
    pub kind: Spanned<String>,
    /// What the state is for, for people. Any kind.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub description: Option<Spanned<String>>,

    /// `tool`: the tool to call, as `<server>.<tool>`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub tool: Option<Spanned<String>>,
    /// `tool`: the arguments. String leaves are CEL expressions (quote literal text:
    /// `"'text'"`); numbers and booleans are literal; tables and arrays nest.
    #[serde(default)]
    #[schemars(with = "Option<BTreeMap<String, RawArg>>")]
    pub args: Option<Spanned<IndexMap<String, Spanned<RawArg>>>>,
    /// `tool`: overrides whether the tool is safe to repeat.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub idempotent: Option<Spanned<bool>>,

    /// `tool`, `agent`, `approval`, `check`: the state to go to next.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub next: Option<Spanned<String>>,
    /// `tool`, `agent`, `check`: how long one attempt may take, e.g. "10s".
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
    /// `tool`, `agent`, `check`: how to retry a failed attempt.
    #[serde(default)]
    #[schemars(with = "Option<RawRetry>")]
    pub retry: Option<Spanned<RawRetry>>,
    /// `tool`, `agent`, `check`: the state to go to when the step errors.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub on_error: Option<Spanned<String>>,

    /// `choice`: the state to go to when no branch matches.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub default: Option<Spanned<String>>,
    /// `choice`: tried in order; the first whose `when` is true wins.
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawBranch>>")]
    pub branches: Option<Spanned<Vec<Spanned<RawBranch>>>>,

    /// `approval`: what the approver is asked; a template with `{{ CEL }}` holes.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub prompt: Option<Spanned<String>>,
    /// `approval`: the roles that may decide.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub approvers: Option<Spanned<Vec<Spanned<String>>>>,
    /// `approval`: how long the request stays open, e.g. "24h".
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub expires_after: Option<Spanned<String>>,
    /// `approval`: the state to go to when rejected.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub on_reject: Option<Spanned<String>>,
    /// `approval`: the state to go to when the request expires; defaults to `on_reject`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub on_expire: Option<Spanned<String>>,

    /// `agent`: what Claude should achieve; a template with `{{ CEL }}` holes.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub goal: Option<Spanned<String>>,
    /// `agent`: the tools Claude may use, as globs over `<server>.<tool>`, e.g. "support.*".
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub tools: Option<Spanned<Vec<Spanned<String>>>>,
    /// `agent`: a JSON Schema the final output must match.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    pub output_schema: Option<Spanned<serde_json::Value>>,
    /// `agent`: the most model turns allowed; default 8.
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub max_turns: Option<Spanned<i64>>,
    /// `agent`: the most model tokens (input + output) the state may use.
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub max_tokens: Option<Spanned<i64>>,
    /// `agent`: below this self-reported `confidence` (0 to 1, a field of the output) the
    /// task goes to `on_low_confidence` instead of `next`.
    #[serde(default)]
    #[schemars(with = "Option<f64>", range(min = 0.0, max = 1.0))]
    pub min_confidence: Option<Spanned<f64>>,
    /// `agent`: where a low-confidence answer goes (an exception review, say).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub on_low_confidence: Option<Spanned<String>>,

    /// `check`: a CEL expression that must be true.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub assert: Option<Spanned<String>>,
    /// `check`: explains the outcome; a template with `{{ CEL }}` holes.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub message: Option<Spanned<String>>,
    /// `check`: the state to go to when the assertion is false.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub on_fail: Option<Spanned<String>>,

    /// `recall`, `remember`: who or what the memory is about (a customer, an employee);
    /// a CEL expression giving a string, e.g. `"inputs.employee_id"`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub subject: Option<Spanned<String>>,
    /// `remember`: what sort of entry this is, e.g. "document" or "preference".
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub category: Option<Spanned<String>>,
    /// `recall`: only entries of these categories (default: all).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub categories: Option<Spanned<Vec<Spanned<String>>>>,
    /// `remember`: the entry's key within its subject and category (a CEL expression giving
    /// a string); remembering the same key again replaces the entry.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub key: Option<Spanned<String>>,
    /// `remember`: the entry's value, a CEL expression (any JSON).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub value: Option<Spanned<String>>,
    /// `remember`: the searchable text of the entry, a template (default: key and value).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub text: Option<Spanned<String>>,
    /// `recall`: a full-text search (SQLite FTS5 syntax), a template.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub search: Option<Spanned<String>>,
    /// `recall`: the most entries to read, newest first; default 20.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub limit: Option<Spanned<i64>>,

    /// `end`: how the task ends.
    #[serde(default)]
    #[schemars(with = "Option<crate::model::EndStatus>")]
    pub status: Option<Spanned<String>>,
}

/// One branch of a `choice` state.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Branch")]
pub(crate) struct RawBranch {
    /// A CEL expression; the branch is taken when it is true.
    #[schemars(with = "String")]
    pub when: Spanned<String>,
    /// The state to go to.
    #[schemars(with = "String")]
    pub next: Spanned<String>,
}

/// Retry policy of a `tool`, `agent` or `check` state.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Retry")]
pub(crate) struct RawRetry {
    /// Attempts in all, at least 1; default 1 (no retry).
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub max_attempts: Option<Spanned<i64>>,
    /// The wait after the first failure; default "200ms".
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub initial_backoff: Option<Spanned<String>>,
    /// Each wait is the previous one times this, at least 1; default 2.0.
    #[serde(default)]
    #[schemars(with = "Option<f64>", range(min = 1.0))]
    pub multiplier: Option<Spanned<f64>>,
    /// The longest wait; default "30s".
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub max_backoff: Option<Spanned<String>>,
}

/// One value in `args`, read by hand so every leaf keeps its span.
#[derive(Debug)]
pub(crate) enum RawArg {
    /// A string: a CEL expression.
    Expr(String),
    /// A number, boolean or date.
    Literal(serde_json::Value),
    Table(IndexMap<String, Spanned<RawArg>>),
    Array(Vec<Spanned<RawArg>>),
}

/// The key toml uses to pass a date-time through serde.
const TOML_DATETIME_KEY: &str = "$__toml_private_datetime";

impl<'de> Deserialize<'de> for RawArg {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawArgVisitor)
    }
}

struct RawArgVisitor;

impl<'de> Visitor<'de> for RawArgVisitor {
    type Value = RawArg;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a CEL expression string, a number, a boolean, a table or an array")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawArg, E> {
        Ok(RawArg::Literal(v.into()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawArg, E> {
        Ok(RawArg::Literal(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawArg, E> {
        Ok(RawArg::Literal(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawArg, E> {
        serde_json::Number::from_f64(v)
            .map(|n| RawArg::Literal(serde_json::Value::Number(n)))
            .ok_or_else(|| E::custom("infinite and NaN numbers cannot be arguments"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawArg, E> {
        Ok(RawArg::Expr(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<RawArg, E> {
        Ok(RawArg::Expr(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawArg, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<RawArg>>()? {
            items.push(item);
        }
        Ok(RawArg::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawArg, A::Error> {
        let mut entries = IndexMap::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == TOML_DATETIME_KEY {
                // A TOML date-time: pass it on as its text.
                let text: String = map.next_value()?;
                return Ok(RawArg::Literal(text.into()));
            }
            let value = map.next_value::<Spanned<RawArg>>()?;
            entries.insert(key, value);
        }
        Ok(RawArg::Table(entries))
    }
}

impl JsonSchema for RawArg {
    fn schema_name() -> Cow<'static, str> {
        "Arg".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A tool argument: a string is a CEL expression (write literal text as \"'text'\"); numbers and booleans are used as they are; tables and arrays nest."
        })
    }
}
