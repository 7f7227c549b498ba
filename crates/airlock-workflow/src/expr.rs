//! CEL expressions: compiling, evaluating against a [`Scope`], and finding what they refer to.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

use cel::common::ast::{EntryExpr, Expr as Node, IdedExpr, LiteralValue};
use cel::objects::{Key, Map};
use cel::{Context, Env, Program, Value as CelValue};
use serde_json::Value;

/// The only root variables an expression may use.
pub const ROOTS: [&str; 3] = ["inputs", "state", "task"];

/// One environment for every expression: the standard library plus string functions.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    // The strings extension only adds functions; if it ever failed to register we
    // still want the standard library, so the error is deliberately dropped.
    let _ = env.add_extension(cel::extensions::strings);
    Arc::new(env)
});

/// What an expression can see: the bound inputs, completed states' outputs, and the task.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    /// The bound inputs, an object.
    pub inputs: &'a Value,
    /// The output of each completed state, keyed by state name.
    pub state: &'a Value,
    /// The task: `id`, `requester`, `workflow`.
    pub task: &'a Value,
}

/// A failed evaluation: which expression, and what went wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{expression}`: {message}")]
pub struct EvalError {
    expression: String,
    message: String,
}

impl EvalError {
    pub(crate) fn new(expression: &str, message: impl Into<String>) -> Self {
        Self {
            expression: expression.to_owned(),
            message: message.into(),
        }
    }

    /// The expression (or template) that failed.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// What went wrong, without the expression.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A compiled CEL expression. Cheap to clone; shareable across threads.
#[derive(Clone)]
pub struct Expr {
    source: Arc<str>,
    program: Arc<Program>,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expr").field(&self.source).finish()
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// A CEL syntax error: the parser's message and where in the expression (0-based char index).
#[derive(Clone, Debug)]
pub(crate) struct SyntaxError {
    pub(crate) message: String,
    pub(crate) char_index: Option<usize>,
}

/// A variable reference found in an expression: `inputs.amount` is root `inputs`,
/// field `amount`; `char_index` is where the root starts in the expression, if known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reference {
    pub(crate) root: String,
    pub(crate) field: Option<String>,
    pub(crate) char_index: Option<usize>,
}

impl Expr {
    /// Compiles `source`; the error carries the CEL parser's message.
    pub fn compile(source: &str) -> Result<Expr, EvalError> {
        Self::compile_located(source).map_err(|e| EvalError::new(source, e.message))
    }

    pub(crate) fn compile_located(source: &str) -> Result<Expr, SyntaxError> {
        if source.trim().is_empty() {
            return Err(SyntaxError {
                message: "the expression is empty".into(),
                char_index: None,
            });
        }
        match ENV.compile(source) {
            Ok(program) => Ok(Expr {
                source: source.into(),
                program: Arc::new(program),
            }),
            Err(errors) => {
                let first = errors.errors.first();
                let message = first.map_or_else(|| errors.to_string(), |e| e.msg.clone());
                let char_index = first.and_then(|e| {
                    // CEL reports 1-based line and column inside the expression.
                    let (line, column) = e.pos;
                    let line_start: usize = source
                        .split('\n')
                        .take(usize::try_from(line - 1).ok()?)
                        .map(|l| l.chars().count() + 1)
                        .sum();
                    Some(line_start + usize::try_from(column - 1).ok()?)
                });
                Err(SyntaxError {
                    message,
                    char_index,
                })
            }
        }
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates to JSON. Integers come back as JSON integers, doubles as JSON floats.
    pub fn eval(&self, scope: &Scope) -> Result<Value, EvalError> {
        let mut context = Context::with_env(Arc::clone(&ENV));
        context.add_variable_from_value("inputs", json_to_cel(scope.inputs));
        context.add_variable_from_value("state", json_to_cel(scope.state));
        context.add_variable_from_value("task", json_to_cel(scope.task));
        let value = self
            .program
            .execute(&context)
            .map_err(|e| EvalError::new(&self.source, describe_execution_error(&e)))?;
        cel_to_json(&value).map_err(|m| EvalError::new(&self.source, m))
    }

    /// Evaluates and insists on a boolean.
    pub fn eval_bool(&self, scope: &Scope) -> Result<bool, EvalError> {
        match self.eval(scope)? {
            Value::Bool(b) => Ok(b),
            other => Err(EvalError::new(
                &self.source,
                format!(
                    "expected true or false, but got {} {other}",
                    json_kind_article(&other)
                ),
            )),
        }
    }

    /// Every reference to a free variable, with its first field when written as
    /// `root.field` or `root['field']`. Variables bound by macros (`x` in
    /// `list.exists(x, ...)`) are not free and are skipped.
    pub(crate) fn references(&self) -> Vec<Reference> {
        let mut found = Vec::new();
        let info = self.program.source_info();
        let mut walker = Walker {
            bound: Vec::new(),
            found: &mut found,
            offset: &|id| {
                info.offset_for(id)
                    .and_then(|(start, _)| usize::try_from(start).ok())
            },
        };
        walker.walk(self.program.expression());
        found
    }
}

struct Walker<'a> {
    bound: Vec<String>,
    found: &'a mut Vec<Reference>,
    offset: &'a dyn Fn(u64) -> Option<usize>,
}

impl Walker<'_> {
    fn free_ident<'e>(&self, node: &'e IdedExpr) -> Option<&'e str> {
        match &node.expr {
            Node::Ident(name) if !name.starts_with('@') && !self.bound.contains(name) => Some(name),
            _ => None,
        }
    }

    fn record(&mut self, root_node: &IdedExpr, root: &str, field: Option<String>) {
        self.found.push(Reference {
            root: root.to_owned(),
            field,
            char_index: (self.offset)(root_node.id),
        });
    }

    fn walk(&mut self, node: &IdedExpr) {
        match &node.expr {
            Node::Unspecified | Node::Literal(_) => {}
            Node::Ident(_) => {
                if let Some(root) = self.free_ident(node) {
                    self.record(node, root, None);
                }
            }
            Node::Select(select) => {
                if let Some(root) = self.free_ident(&select.operand) {
                    self.record(&select.operand, root, Some(select.field.clone()));
                } else {
                    self.walk(&select.operand);
                }
            }
            Node::Call(call) => {
                if call.func_name == "_[_]"
                    && let [target, key] = call.args.as_slice()
                    && let Some(root) = self.free_ident(target)
                    && let Node::Literal(LiteralValue::String(field)) = &key.expr
                {
                    self.record(target, root, Some(field.inner().to_owned()));
                    return;
                }
                if let Some(target) = &call.target {
                    self.walk(target);
                }
                for arg in &call.args {
                    self.walk(arg);
                }
            }
            Node::Comprehension(comp) => {
                self.walk(&comp.iter_range);
                self.walk(&comp.accu_init);
                let pushed = 1 + usize::from(comp.iter_var2.is_some());
                self.bound.push(comp.iter_var.clone());
                if let Some(second) = &comp.iter_var2 {
                    self.bound.push(second.clone());
                }
                self.walk(&comp.loop_cond);
                self.walk(&comp.loop_step);
                self.walk(&comp.result);
                self.bound.truncate(self.bound.len() - pushed);
            }
            Node::List(list) => {
                for element in &list.elements {
                    self.walk(element);
                }
            }
            Node::Map(map) => self.walk_entries(map.entries.iter().map(|e| &e.expr)),
            Node::Struct(st) => self.walk_entries(st.entries.iter().map(|e| &e.expr)),
        }
    }

    fn walk_entries<'e>(&mut self, entries: impl Iterator<Item = &'e EntryExpr>) {
        for entry in entries {
            match entry {
                EntryExpr::StructField(field) => self.walk(&field.value),
                EntryExpr::MapEntry(entry) => {
                    self.walk(&entry.key);
                    self.walk(&entry.value);
                }
            }
        }
    }
}

fn describe_execution_error(error: &cel::ExecutionError) -> String {
    use cel::ExecutionError as E;
    match error {
        E::NoSuchKey(key) => format!("there is no field `{key}` (it is missing or was not set)"),
        E::UndeclaredReference(name) => format!("`{name}` is not defined"),
        E::NoSuchOverload(overload) => format!("no such overload: {overload}"),
        other => other.to_string(),
    }
}

/// JSON to CEL: integers that fit become `int` (or `uint` above `i64::MAX`), every
/// other number `double`, so `inputs.amount > 50` works for both 60 and 60.5.
pub(crate) fn json_to_cel(value: &Value) -> CelValue {
    match value {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                CelValue::Int(i)
            } else if let Some(u) = n.as_u64() {
                CelValue::UInt(u)
            } else {
                CelValue::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => CelValue::String(Arc::new(s.clone())),
        Value::Array(items) => CelValue::List(Arc::new(items.iter().map(json_to_cel).collect())),
        Value::Object(fields) => {
            let map: HashMap<Key, CelValue> = fields
                .iter()
                .map(|(k, v)| (Key::from(k.as_str()), json_to_cel(v)))
                .collect();
            CelValue::Map(Map::from(map))
        }
    }
}

/// CEL to JSON. Map keys are sorted, so equal values always serialize the same way
/// (CEL maps are unordered, and hashes of arguments must be stable).
pub(crate) fn cel_to_json(value: &CelValue) -> Result<Value, String> {
    Ok(match value {
        CelValue::Null => Value::Null,
        CelValue::Bool(b) => Value::Bool(*b),
        CelValue::Int(i) => Value::from(*i),
        CelValue::UInt(u) => Value::from(*u),
        CelValue::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(|| format!("the result {f} is not a finite number"))?,
        CelValue::String(s) => Value::String(s.to_string()),
        CelValue::List(items) => Value::Array(
            items
                .iter()
                .map(cel_to_json)
                .collect::<Result<Vec<_>, _>>()?,
        ),
        CelValue::Map(map) => {
            let mut entries = map
                .map
                .iter()
                .map(|(k, v)| Ok((key_to_string(k), cel_to_json(v)?)))
                .collect::<Result<Vec<_>, String>>()?;
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().collect())
        }
        CelValue::Timestamp(t) => Value::String(t.to_rfc3339()),
        CelValue::Duration(d) => Value::String(format!("{}ms", d.num_milliseconds())),
        other => {
            return Err(format!(
                "the result is a {} value, which cannot be turned into JSON",
                other.type_of()
            ));
        }
    })
}

fn key_to_string(key: &Key) -> String {
    match key {
        Key::Int(i) => i.to_string(),
        Key::Uint(u) => u.to_string(),
        Key::Bool(b) => b.to_string(),
        Key::String(s) => s.to_string(),
    }
}

/// "a string", "a number", ... for messages about a JSON value.
pub(crate) fn json_kind_article(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "the boolean",
        Value::Number(_) => "the number",
        Value::String(_) => "the string",
        Value::Array(_) => "the array",
        Value::Object(_) => "the object",
    }
}
