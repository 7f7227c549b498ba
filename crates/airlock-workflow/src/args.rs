//! Tool arguments: a tree whose string leaves are CEL expressions and other leaves literals.

use serde_json::{Map, Value};

use crate::expr::{EvalError, Expr, Scope};

/// An argument tree in file order. Evaluating it yields a JSON object.
#[derive(Clone, Debug)]
pub struct Args {
    root: Vec<(String, ArgNode)>,
}

/// One node of an argument tree.
#[derive(Clone, Debug)]
pub enum ArgNode {
    /// A string in the file: evaluated as CEL.
    Expr(Expr),
    /// A number, boolean or date: used as is.
    Literal(Value),
    Table(Vec<(String, ArgNode)>),
    Array(Vec<ArgNode>),
}

impl Args {
    pub(crate) fn new(root: Vec<(String, ArgNode)>) -> Self {
        Self { root }
    }

    /// No arguments at all.
    pub fn empty() -> Self {
        Self { root: Vec::new() }
    }

    /// The top-level entries, in file order.
    pub fn entries(&self) -> &[(String, ArgNode)] {
        &self.root
    }

    /// Every expression in the tree, depth first.
    pub fn expressions(&self) -> Vec<&Expr> {
        fn visit<'a>(node: &'a ArgNode, out: &mut Vec<&'a Expr>) {
            match node {
                ArgNode::Expr(e) => out.push(e),
                ArgNode::Literal(_) => {}
                ArgNode::Table(entries) => entries.iter().for_each(|(_, n)| visit(n, out)),
                ArgNode::Array(items) => items.iter().for_each(|n| visit(n, out)),
            }
        }
        let mut out = Vec::new();
        self.root.iter().for_each(|(_, n)| visit(n, &mut out));
        out
    }

    /// Evaluates every expression leaf; the result is an object in file order.
    pub fn eval(&self, scope: &Scope) -> Result<Value, EvalError> {
        eval_table(&self.root, scope)
    }
}

fn eval_table(entries: &[(String, ArgNode)], scope: &Scope) -> Result<Value, EvalError> {
    let mut out = Map::new();
    for (key, node) in entries {
        out.insert(key.clone(), eval_node(node, scope)?);
    }
    Ok(Value::Object(out))
}

fn eval_node(node: &ArgNode, scope: &Scope) -> Result<Value, EvalError> {
    match node {
        ArgNode::Expr(expr) => expr.eval(scope),
        ArgNode::Literal(value) => Ok(value.clone()),
        ArgNode::Table(entries) => eval_table(entries, scope),
        ArgNode::Array(items) => items
            .iter()
            .map(|n| eval_node(n, scope))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
    }
}
