//! Binding task inputs to a workflow's declared inputs: types, defaults, required ones.

use std::fmt;

use serde_json::{Map, Value};

use crate::expr::json_kind_article;
use crate::model::{InputType, Workflow};

/// One problem with the inputs given to a task.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum InputError {
    #[error("there is no input `{name}`; this workflow takes {known}")]
    Unknown { name: String, known: String },
    #[error("input `{name}` is required, but no value was given")]
    Missing { name: String },
    #[error("input `{name}` should be {expected}, but got {got}")]
    Mismatch {
        name: String,
        expected: String,
        got: String,
    },
    #[error("`{raw}` is not {expected}: {reason}")]
    Unparsable {
        raw: String,
        expected: String,
        reason: String,
    },
}

/// Every problem with the inputs given to a task; displayed one per line.
#[derive(Clone, Debug, PartialEq)]
pub struct InputErrors(pub Vec<InputError>);

impl fmt::Display for InputErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InputErrors {}

impl Workflow {
    /// Checks `given` against the declared inputs and fills in defaults. Reports every
    /// problem at once. `number` inputs come back as doubles, so expressions can do
    /// arithmetic with them without mixing int and double.
    pub fn bind_inputs(
        &self,
        given: Map<String, Value>,
    ) -> Result<Map<String, Value>, InputErrors> {
        let mut errors = Vec::new();
        for name in given.keys() {
            if self.input(name).is_none() {
                let known = if self.inputs.is_empty() {
                    "no inputs".to_owned()
                } else {
                    let names: Vec<String> = self
                        .inputs
                        .iter()
                        .map(|i| format!("`{}`", i.name))
                        .collect();
                    names.join(", ")
                };
                errors.push(InputError::Unknown {
                    name: name.clone(),
                    known,
                });
            }
        }
        let mut bound = Map::new();
        let mut given = given;
        for spec in &self.inputs {
            match given.remove(&spec.name) {
                Some(value) => match conform(spec.ty, value) {
                    Ok(value) => {
                        bound.insert(spec.name.clone(), value);
                    }
                    Err(got) => errors.push(InputError::Mismatch {
                        name: spec.name.clone(),
                        expected: type_phrase(spec.ty).to_owned(),
                        got,
                    }),
                },
                None => {
                    if let Some(default) = &spec.default {
                        bound.insert(spec.name.clone(), default.clone());
                    } else if spec.required {
                        errors.push(InputError::Missing {
                            name: spec.name.clone(),
                        });
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(bound)
        } else {
            Err(InputErrors(errors))
        }
    }
}

/// "a string", "a number", ... for messages.
pub(crate) fn type_phrase(ty: InputType) -> &'static str {
    match ty {
        InputType::String => "a string",
        InputType::Number => "a number",
        InputType::Integer => "an integer",
        InputType::Boolean => "a boolean",
        InputType::Object => "an object",
        InputType::Array => "an array",
    }
}

/// Checks one value against a type, normalizing numbers: a `number` becomes a double;
/// an `integer` accepts only whole numbers (`3.0` becomes `3`). The error describes
/// the value that was given.
pub(crate) fn conform(ty: InputType, value: Value) -> Result<Value, String> {
    let ok = match (ty, &value) {
        (InputType::String, Value::String(_))
        | (InputType::Boolean, Value::Bool(_))
        | (InputType::Object, Value::Object(_))
        | (InputType::Array, Value::Array(_)) => true,
        (InputType::Number, Value::Number(n)) => {
            return n
                .as_f64()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| describe(&value));
        }
        (InputType::Integer, Value::Number(n)) => {
            if n.is_i64() || n.is_u64() {
                true
            } else {
                return match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Value::from(f as i64)),
                    _ => Err(describe(&value)),
                };
            }
        }
        _ => false,
    };
    if ok { Ok(value) } else { Err(describe(&value)) }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
        other => format!("{} {other}", json_kind_article(other)),
    }
}

/// Reads a command-line value such as `--input amount=12.5`: strings are taken as
/// they are; objects and arrays are JSON.
pub fn parse_cli_value(ty: InputType, raw: &str) -> Result<Value, InputError> {
    let unparsable = |reason: String| InputError::Unparsable {
        raw: raw.to_owned(),
        expected: type_phrase(ty).to_owned(),
        reason,
    };
    let trimmed = raw.trim();
    match ty {
        InputType::String => Ok(Value::String(raw.to_owned())),
        InputType::Boolean => match trimmed {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(unparsable("write `true` or `false`".into())),
        },
        InputType::Integer => trimmed
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| unparsable("write a whole number such as `42`".into())),
        InputType::Number => trimmed
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| unparsable("write a number such as `12.5`".into())),
        InputType::Object | InputType::Array => {
            let value: Value = serde_json::from_str(trimmed)
                .map_err(|e| unparsable(format!("it is not valid JSON ({e})")))?;
            conform(ty, value).map_err(|got| unparsable(format!("the JSON is {got}")))
        }
    }
}
