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
pub struct SyntaxError {
    pub message: String,
    pub char_index: Option<usize>,
}

/// A variable reference found in an expression: `inputs.amount` is root `inputs`,
/// field `amount`; `char_index` is where the root starts in the expression, if known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reference {
    pub(crate) root: String,
    pub(crate) field: Option<String>,
    pub(crate) char_index: Option<usize>,
}

/// A variable path an expression reads: `args.customer.tier` (or `args['customer'].tier`)
/// is `["args", "customer", "tier"]`. The path stops where an index is not a string
/// literal (`args.items[0]` is `["args", "items"]`). `char_index` is where the root
/// starts in the expression (0-based chars), if known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariablePath {
    pub segments: Vec<String>,
    pub char_index: Option<usize>,
}

impl VariablePath {
    /// The root variable, e.g. `args`.
    pub fn root(&self) -> &str {
        self.segments.first().map_or("", String::as_str)
    }

    /// The path as written with dots, e.g. `args.customer.tier`.
    pub fn dotted(&self) -> String {
        self.segments.join(".")
    }
}

/// Named root variables converted to CEL values once, so that many expressions can be
/// evaluated against the same values without converting the JSON again for each one.
pub struct Bindings {
    context: Context<'static, 'static>,
}

impl Default for Bindings {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Bindings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Bindings")
    }
}

impl Bindings {
    /// No variables yet.
    pub fn new() -> Self {
        Self {
            context: Context::with_env(Arc::clone(&ENV)),
        }
    }

    /// Binds (or rebinds) the root variable `name` to a copy of `value`.
    pub fn set(&mut self, name: &str, value: &Value) {
        self.context
            .add_variable_from_value(name.to_owned(), json_to_cel(value));
    }

    /// Binds the root variable `name` to an object holding only `fields`: when the
    /// expressions to evaluate read only some fields of a large value, only those are
    /// converted.
    pub fn set_fields<'v>(
        &mut self,
        name: &str,
        fields: impl IntoIterator<Item = (&'v str, &'v Value)>,
    ) {
        let map: HashMap<Key, CelValue> = fields
            .into_iter()
            .map(|(k, v)| (Key::from(k), json_to_cel(v)))
            .collect();
        self.context
            .add_variable_from_value(name.to_owned(), CelValue::Map(Map::from(map)));
    }
}

impl Expr {
    /// Compiles `source`; the error carries the CEL parser's message.
    pub fn compile(source: &str) -> Result<Expr, EvalError> {
        Self::compile_located(source).map_err(|e| EvalError::new(source, e.message))
    }

    /// Compiles `source`, saying where in it a syntax error is, so a caller can point at
    /// the column in its own file.
    pub fn compile_located(source: &str) -> Result<Expr, SyntaxError> {
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

    /// Evaluates against prepared [`Bindings`]; a root that was not bound is an error.
    pub fn eval_in(&self, bindings: &Bindings) -> Result<Value, EvalError> {
        let value = self
            .program
            .execute(&bindings.context)
            .map_err(|e| EvalError::new(&self.source, describe_execution_error(&e)))?;
        cel_to_json(&value).map_err(|m| EvalError::new(&self.source, m))
    }

    /// Evaluates against prepared [`Bindings`] and insists on a boolean. A boolean result
    /// is never converted to JSON, so this is the cheap path for conditions.
    pub fn eval_bool_in(&self, bindings: &Bindings) -> Result<bool, EvalError> {
        let value = self
            .program
            .execute(&bindings.context)
            .map_err(|e| EvalError::new(&self.source, describe_execution_error(&e)))?;
        match value {
            CelValue::Bool(b) => Ok(b),
            other => {
                let json = cel_to_json(&other).map_err(|m| EvalError::new(&self.source, m))?;
                Err(EvalError::new(
                    &self.source,
                    format!(
                        "expected true or false, but got {} {json}",
                        json_kind_article(&json)
                    ),
                ))
            }
        }
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
        self.variable_paths()
            .into_iter()
            .map(|path| {
                let mut segments = path.segments.into_iter();
                Reference {
                    root: segments.next().unwrap_or_default(),
                    field: segments.next(),
                    char_index: path.char_index,
                }
            })
            .collect()
    }

    /// Every free variable path the expression reads, in the order written (a path
    /// read twice is listed twice). Variables bound by macros are skipped.
    pub fn variable_paths(&self) -> Vec<VariablePath> {
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
    found: &'a mut Vec<VariablePath>,
    offset: &'a dyn Fn(u64) -> Option<usize>,
}

impl Walker<'_> {
    fn free_ident<'e>(&self, node: &'e IdedExpr) -> Option<&'e str> {
        match &node.expr {
            Node::Ident(name) if !name.starts_with('@') && !self.bound.contains(name) => Some(name),
            _ => None,
        }
    }

    fn record(&mut self, root_node: &IdedExpr, segments: Vec<String>) {
        self.found.push(VariablePath {
            segments,
            char_index: (self.offset)(root_node.id),
        });
    }

    /// `root.a['b'].c` read from the outside in: the root's node and `[root, a, b, c]`,
    /// when the chain is only fields and string-literal indexes down to a free variable.
    fn chain<'e>(&self, node: &'e IdedExpr) -> Option<(&'e IdedExpr, Vec<String>)> {
        let mut fields = Vec::new();
        let mut at = node;
        loop {
            match &at.expr {
                Node::Select(select) => {
                    fields.push(select.field.clone());
                    at = &select.operand;
                }
                Node::Call(call) if call.func_name == "_[_]" => match call.args.as_slice() {
                    [target, key] => match &key.expr {
                        Node::Literal(LiteralValue::String(field)) => {
                            fields.push(field.inner().to_owned());
                            at = target;
                        }
                        _ => return None,
                    },
                    _ => return None,
                },
                _ => {
                    let root = self.free_ident(at)?;
                    fields.push(root.to_owned());
                    fields.reverse();
                    return Some((at, fields));
                }
            }
        }
    }

    fn walk(&mut self, node: &IdedExpr) {
        // A field chain on a free variable is one reference; anything else is walked
        // part by part below.
        if matches!(&node.expr, Node::Select(_) | Node::Call(_))
            && let Some((root_node, segments)) = self.chain(node)
            && segments.len() > 1
        {
            self.record(root_node, segments);
            return;
        }
        match &node.expr {
            Node::Unspecified | Node::Literal(_) => {}
            Node::Ident(_) => {
                if let Some(root) = self.free_ident(node) {
                    self.record(node, vec![root.to_owned()]);
                }
            }
            Node::Select(select) => self.walk(&select.operand),
            Node::Call(call) => {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn variable_paths_follow_field_chains() {
        let expr = Expr::compile(
            "args.customer.tier == 'gold' && args['amount'] > 5 && call.risk == 'high' \
             && args.items[0].sku == 'x' && args.items.exists(i, i.qty > 1) && has(args.note)",
        )
        .expect("compiles");
        let paths: Vec<String> = expr.variable_paths().iter().map(|p| p.dotted()).collect();
        assert_eq!(
            paths,
            [
                "args.customer.tier",
                "args.amount",
                "call.risk",
                "args.items",
                "args.items",
                "args.note"
            ]
        );
        let first = &expr.variable_paths()[0];
        assert_eq!((first.root(), first.char_index), ("args", Some(0)));
    }

    #[test]
    fn bindings_are_prepared_once_for_many_expressions() {
        let mut bindings = Bindings::new();
        bindings.set("args", &json!({"amount": 75}));
        bindings.set("call", &json!({"risk": "high"}));
        let over = Expr::compile("args.amount > 50").expect("compiles");
        let high = Expr::compile("call.risk == 'high'").expect("compiles");
        let sum = Expr::compile("args.amount + 1").expect("compiles");
        assert_eq!(over.eval_bool_in(&bindings), Ok(true));
        assert_eq!(high.eval_bool_in(&bindings), Ok(true));
        assert_eq!(sum.eval_in(&bindings), Ok(json!(76)));

        let missing = Expr::compile("args.limit > 1").expect("compiles");
        let error = missing.eval_bool_in(&bindings).expect_err("no such field");
        assert_eq!(
            error.message(),
            "there is no field `limit` (it is missing or was not set)"
        );
        let state = json!({"a": {"b": 1}, "big": [1, 2, 3]});
        let mut partial = Bindings::new();
        partial.set_fields(
            "state",
            state
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| *k == "a")
                .map(|(k, v)| (k.as_str(), v)),
        );
        let read = Expr::compile("state.a.b == 1 && !has(state.big)").expect("compiles");
        assert_eq!(read.eval_bool_in(&partial), Ok(true));

        let unbound = Expr::compile("state.x == 1").expect("compiles");
        assert_eq!(
            unbound
                .eval_bool_in(&bindings)
                .map_err(|e| e.message().to_owned()),
            Err("`state` is not defined".to_owned())
        );
        assert_eq!(
            sum.eval_bool_in(&bindings)
                .map_err(|e| e.message().to_owned()),
            Err("expected true or false, but got the number 76".to_owned())
        );
    }

    #[test]
    fn compile_located_says_where_the_error_is() {
        let error = Expr::compile_located("args.amount >").expect_err("incomplete");
        assert!(error.char_index.is_some(), "{error:?}");
    }
}
