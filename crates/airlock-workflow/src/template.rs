//! Templates: text with `{{ CEL }}` holes, rendered against a [`Scope`].

use std::fmt;

use serde_json::Value;

use crate::expr::{Bindings, EvalError, Expr, Scope, SyntaxError};

#[derive(Clone, Debug)]
enum Piece {
    Text(String),
    /// The expression and the char index where it starts in the template.
    Hole(Expr, usize),
}

/// A parsed template. Cheap to clone; shareable across threads.
#[derive(Clone)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Template").field(&self.source).finish()
    }
}

/// Where a template went wrong: a message and the char index inside the template text.
#[derive(Clone, Debug)]
pub(crate) struct TemplateError {
    pub(crate) message: String,
    pub(crate) char_index: Option<usize>,
}

impl Template {
    /// Parses `source`; every `{{ ... }}` hole must hold a valid expression.
    pub fn parse(source: &str) -> Result<Template, EvalError> {
        Self::parse_located(source).map_err(|e| EvalError::new(source, e.message))
    }

    pub(crate) fn parse_located(source: &str) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut rest = source;
        let mut consumed = 0usize; // bytes of `source` already handled
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let after_open = &rest[open + 2..];
            let hole_start = consumed + open;
            let Some(close) = after_open.find("}}") else {
                return Err(TemplateError {
                    message: "`{{` is never closed with `}}`".into(),
                    char_index: Some(source[..hole_start].chars().count()),
                });
            };
            let inner = &after_open[..close];
            let inner_start = hole_start + 2;
            let leading = inner.len() - inner.trim_start().len();
            let expr = Expr::compile_located(inner.trim()).map_err(|e: SyntaxError| {
                let base = source[..inner_start + leading].chars().count();
                TemplateError {
                    message: format!("in `{{{{ {} }}}}`: {}", inner.trim(), e.message),
                    char_index: Some(e.char_index.map_or(base, |i| base + i)),
                }
            })?;
            let at = source[..inner_start + leading].chars().count();
            pieces.push(Piece::Hole(expr, at));
            let advance = open + 2 + close + 2;
            consumed += advance;
            rest = &rest[advance..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Template {
            source: source.to_owned(),
            pieces,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The expressions in the holes, in order.
    pub fn expressions(&self) -> impl Iterator<Item = &Expr> {
        self.holes().map(|(_, e)| e)
    }

    /// The expressions with the char index where each starts in the template.
    pub(crate) fn holes(&self) -> impl Iterator<Item = (usize, &Expr)> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Hole(e, at) => Some((*at, e)),
            Piece::Text(_) => None,
        })
    }

    /// Renders: strings are inserted as they are, whole doubles without `.0`, and
    /// anything else as compact JSON.
    pub fn render(&self, scope: &Scope) -> Result<String, EvalError> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Hole(expr, _) => out.push_str(&display_value(&expr.eval(scope)?)),
            }
        }
        Ok(out)
    }

    /// Renders against prepared [`Bindings`] (which may bind more roots than a [`Scope`]).
    pub fn render_in(&self, bindings: &Bindings) -> Result<String, EvalError> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Hole(expr, _) => out.push_str(&display_value(&expr.eval_in(bindings)?)),
            }
        }
        Ok(out)
    }
}

fn display_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}
