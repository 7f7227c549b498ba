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
        }
    }

    /// Every code, for documentation and exhaustive tests.
    pub const ALL: [DiagnosticCode; 17] = [
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
/// collects diagnostics for one file.
pub(crate) struct Reporter<'a> {
    file: &'a Path,
    source: &'a str,
    line_starts: Vec<usize>,
    pub(crate) found: Vec<Diagnostic>,
}

impl<'a> Reporter<'a> {
    pub(crate) fn new(file: &'a Path, source: &'a str) -> Self {
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

    pub(crate) fn source(&self) -> &'a str {
        self.source
    }

    pub(crate) fn position(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.source.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let column = self
            .source
            .get(start..offset)
            .map_or(offset - start, |text| text.chars().count());
        (to_u32(line), to_u32(column + 1))
    }

    pub(crate) fn error(&mut self, code: DiagnosticCode, at: usize, message: impl Into<String>) {
        let (line, column) = self.position(at);
        self.found.push(Diagnostic {
            code,
            message: message.into(),
            file: self.file.to_path_buf(),
            line,
            column,
        });
    }

    pub(crate) fn error_at(
        &mut self,
        code: DiagnosticCode,
        span: &Range<usize>,
        message: impl Into<String>,
    ) {
        self.error(code, span.start, message);
    }

    pub(crate) fn finish(self) -> Diagnostics {
        Diagnostics(self.found)
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
