//! Diagnostics: located, coded, plain-language errors about a workflow file.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A stable code for each kind of problem; the UI and docs key on [`DiagnosticCode::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DiagnosticCode {
    /// The file is not valid TOML.
    TomlSyntax,
    /// A key defined twice in one file, or a workflow name used by two files.
    DuplicateName,
    /// A field that the format does not know.
    UnknownField,
    /// A required field is absent.
    MissingField,
    /// A field holds a value of the wrong TOML type.
    WrongType,
    /// A transition names a state that does not exist.
    UnknownState,
    /// A state that cannot be reached from `start`.
    UnreachableState,
    /// A state from which no `end` state can be reached.
    NoWayToEnd,
    /// The workflow has no `end` state at all.
    NoEndState,
    /// A CEL expression or template that does not parse.
    BadExpression,
    /// An expression refers to a variable, input or state that does not exist.
    UnknownVariable,
    /// An unknown input type, or a default that does not match its type.
    InputType,
    /// A duration that cannot be read.
    BadDuration,
    /// A value outside what the field accepts.
    BadValue,
    /// A workflow, state or input name that is not allowed.
    InvalidName,
    /// A field that exists, but not on this kind of state.
    MisplacedField,
    /// A file or folder that could not be read (only from [`crate::load_dir`]).
    UnreadableFile,
    /// A tool no server offers (found when the workflow meets its tools).
    UnknownTool,
    /// A tool that may change something, where only a read-only one is allowed.
    NotReadOnly,
}

impl DiagnosticCode {
    /// The kebab-case code, e.g. `unknown-state`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TomlSyntax => "toml-syntax",
            Self::DuplicateName => "duplicate-name",
            Self::UnknownField => "unknown-field",
            Self::MissingField => "missing-field",
            Self::WrongType => "wrong-type",
            Self::UnknownState => "unknown-state",
            Self::UnreachableState => "unreachable-state",
            Self::NoWayToEnd => "no-way-to-end",
            Self::NoEndState => "no-end-state",
            Self::BadExpression => "bad-expression",
            Self::UnknownVariable => "unknown-variable",
            Self::InputType => "input-type",
            Self::BadDuration => "bad-duration",
            Self::BadValue => "bad-value",
            Self::InvalidName => "invalid-name",
            Self::MisplacedField => "misplaced-field",
            Self::UnreadableFile => "unreadable-file",
            Self::UnknownTool => "unknown-tool",
            Self::NotReadOnly => "not-read-only",
        }
    }

    /// Every code, for documentation and exhaustive tests.
    pub const ALL: [DiagnosticCode; 19] = [
        Self::TomlSyntax,
        Self::DuplicateName,
        Self::UnknownField,
        Self::MissingField,
        Self::WrongType,
        Self::UnknownState,
        Self::UnreachableState,
        Self::NoWayToEnd,
        Self::NoEndState,
        Self::BadExpression,
        Self::UnknownVariable,
        Self::InputType,
        Self::BadDuration,
        Self::BadValue,
        Self::InvalidName,
        Self::MisplacedField,
        Self::UnreadableFile,
        Self::UnknownTool,
        Self::NotReadOnly,
    ];
}

impl fmt::Display for DiagnosticCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem in one file, at a 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: DiagnosticCode,
    pub message: String,
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error[{}]: {}",
            self.file.display(),
            self.line,
            self.column,
            self.code,
            self.message
        )
    }
}

/// All the problems found, in the order they were found; displayed one per line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Turns byte offsets into 1-based line/column pairs (columns count characters) and
/// collects diagnostics for one file. Every Airlock file format (workflows, policy,
/// identities) reports through it, so an editor jumps to the same place for each and
/// toml's errors read the same everywhere.
pub struct Reporter<'a> {
    file: &'a Path,
    source: &'a str,
    line_starts: Vec<usize>,
    pub(crate) found: Vec<Diagnostic>,
}

impl<'a> Reporter<'a> {
    pub fn new(file: &'a Path, source: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            file,
            source,
            line_starts,
            found: Vec::new(),
        }
    }

    pub fn source(&self) -> &'a str {
        self.source
    }

    pub fn position(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.source.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let column = self
            .source
            .get(start..offset)
            .map_or(offset - start, |text| text.chars().count());
        (to_u32(line), to_u32(column + 1))
    }

    pub fn error(&mut self, code: DiagnosticCode, at: usize, message: impl Into<String>) {
        let (line, column) = self.position(at);
        self.found.push(Diagnostic {
            code,
            message: message.into(),
            file: self.file.to_path_buf(),
            line,
            column,
        });
    }

    pub fn error_at(
        &mut self,
        code: DiagnosticCode,
        span: &Range<usize>,
        message: impl Into<String>,
    ) {
        self.error(code, span.start, message);
    }

    pub fn has_errors(&self) -> bool {
        !self.found.is_empty()
    }

    /// The diagnostics in the order they were found.
    pub fn finish(self) -> Diagnostics {
        Diagnostics(self.found)
    }

    /// The diagnostics in file order, for checkers that run field by field.
    pub fn finish_in_file_order(mut self) -> Diagnostics {
        self.found.sort_by_key(|d| (d.line, d.column));
        Diagnostics(self.found)
    }

    /// Reports a toml parse error (`syntax`) or a serde error with a code and a plainer
    /// sentence. `unique` names what may appear only once in this format ("key").
    pub fn toml_error(&mut self, syntax: bool, error: &toml::de::Error, unique: &str) {
        let at = error.span().map_or(0, |s| s.start);
        let message = error.message().trim().replace('\n', "; ");
        if syntax {
            if message.starts_with("duplicate key") {
                let key = error
                    .span()
                    .and_then(|s| self.source.get(s))
                    .unwrap_or("this key")
                    .to_owned();
                self.error(
                    DiagnosticCode::DuplicateName,
                    at,
                    format!("`{key}` is defined twice; each {unique} may appear only once"),
                );
            } else {
                self.error(
                    DiagnosticCode::TomlSyntax,
                    at,
                    format!("this is not valid TOML: {message}"),
                );
            }
            return;
        }
        if let Some(rest) = message.strip_prefix("unknown field ") {
            let (field, allowed) = rest.split_once(", expected ").unwrap_or((rest, ""));
            // serde writes "`a` or `b`" for two fields and "one of `a`, `b`, `c`" for more.
            let allowed: Vec<&str> = allowed
                .trim_start_matches("one of ")
                .split(", ")
                .flat_map(|s| s.split(" or "))
                .map(|s| s.trim_matches('`'))
                .filter(|s| !s.is_empty())
                .collect();
            let name = field.trim_matches('`');
            let mut text = format!("unknown field `{name}`");
            match did_you_mean(name, allowed.iter().copied()) {
                Some(close) => text.push_str(&format!("; did you mean `{close}`?")),
                None => text.push('.'),
            }
            if !allowed.is_empty() {
                let list: Vec<String> = allowed.iter().map(|n| format!("`{n}`")).collect();
                text.push_str(&format!(
                    " The fields allowed here are {}.",
                    list.join(", ")
                ));
            }
            self.error(DiagnosticCode::UnknownField, at, text);
        } else if let Some(rest) = message.strip_prefix("missing field ") {
            self.error(
                DiagnosticCode::MissingField,
                at,
                format!("this table needs the field {rest}, but it is missing"),
            );
        } else if let Some(rest) = message
            .strip_prefix("invalid type: ")
            .or_else(|| message.strip_prefix("invalid value: "))
            .or_else(|| message.strip_prefix("invalid length "))
        {
            let text = match rest.split_once(", expected ") {
                Some((found, expected)) => format!(
                    "wrong type: expected {}, but found {}",
                    toml_words(expected),
                    toml_words(found)
                ),
                None => format!("wrong type: {rest}"),
            };
            self.error(DiagnosticCode::WrongType, at, text);
        } else {
            self.error(DiagnosticCode::BadValue, at, message);
        }
    }

    /// Parses `source` as TOML into `T`, reporting the first problem if it fails.
    pub fn read_toml<T: serde::de::DeserializeOwned>(&mut self, unique: &str) -> Option<T> {
        let deserializer = match toml::de::Deserializer::parse(self.source) {
            Ok(d) => d,
            Err(error) => {
                self.toml_error(true, &error, unique);
                return None;
            }
        };
        match T::deserialize(deserializer) {
            Ok(value) => Some(value),
            Err(error) => {
                self.toml_error(false, &error, unique);
                None
            }
        }
    }
}

/// serde's names for types, in TOML's words.
fn toml_words(text: &str) -> String {
    match text {
        "a sequence" => "an array".to_owned(),
        "map" => "a table".to_owned(),
        "i64" | "u32" | "u64" => "an integer".to_owned(),
        "a boolean" | "bool" => "true or false".to_owned(),
        other => other.to_owned(),
    }
}

/// The closest candidate, when close enough to be a likely typo.
pub fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).max(1);
    let mut seen = std::collections::HashSet::new();
    candidates
        .into_iter()
        .filter(|c| *c != word && seen.insert(*c))
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
