//! Located diagnostics for the policy and identities files: byte offsets to
//! line:column, and toml/serde errors turned into plain sentences.

use std::ops::Range;
use std::path::Path;

use airlock_workflow::{Diagnostic, DiagnosticCode as Code, Diagnostics};

/// Collects diagnostics for one file. Columns count characters, 1-based, like the
/// workflow crate's, so an editor jumps to the same place for every Airlock file.
pub(crate) struct Reporter<'a> {
    file: &'a Path,
    source: &'a str,
    line_starts: Vec<usize>,
    found: Vec<Diagnostic>,
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

    /// 1-based line and column of a byte offset.
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

    pub(crate) fn error(&mut self, code: Code, at: usize, message: impl Into<String>) {
        let (line, column) = self.position(at);
        self.found.push(Diagnostic {
            code,
            message: message.into(),
            file: self.file.to_path_buf(),
            line,
            column,
        });
    }

    pub(crate) fn error_at(&mut self, code: Code, span: &Range<usize>, message: impl Into<String>) {
        self.error(code, span.start, message);
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.found.is_empty()
    }

    /// The diagnostics in file order (checks run field by field, not line by line).
    pub(crate) fn finish(mut self) -> Diagnostics {
        self.found.sort_by_key(|d| (d.line, d.column));
        Diagnostics(self.found)
    }

    /// Reports a toml parse or serde error, with a code and a plainer sentence.
    pub(crate) fn toml_error(&mut self, syntax: bool, error: &toml::de::Error) {
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
                    Code::DuplicateName,
                    at,
                    format!("`{key}` is defined twice; each key may appear only once"),
                );
            } else {
                self.error(
                    Code::TomlSyntax,
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
            self.error(Code::UnknownField, at, text);
        } else if let Some(rest) = message.strip_prefix("missing field ") {
            self.error(
                Code::MissingField,
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
            self.error(Code::WrongType, at, text);
        } else {
            self.error(Code::BadValue, at, message);
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

/// Parses `source` as TOML into `T`, reporting the first problem if it fails.
pub(crate) fn read_toml<T: serde::de::DeserializeOwned>(
    reporter: &mut Reporter,
    source: &str,
) -> Option<T> {
    let deserializer = match toml::de::Deserializer::parse(source) {
        Ok(d) => d,
        Err(error) => {
            reporter.toml_error(true, &error);
            return None;
        }
    };
    match T::deserialize(deserializer) {
        Ok(value) => Some(value),
        Err(error) => {
            reporter.toml_error(false, &error);
            None
        }
    }
}

/// The diagnostic for a file that could not be read.
pub(crate) fn unreadable(path: &Path, error: &std::io::Error) -> Diagnostics {
    Diagnostics(vec![Diagnostic {
        code: Code::UnreadableFile,
        message: format!("cannot read this file: {error}"),
        file: path.to_path_buf(),
        line: 1,
        column: 1,
    }])
}

/// The closest candidate, when close enough to be a likely typo.
pub(crate) fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != word)
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

/// `hint` appended as "; did you mean `x`?" when there is one.
pub(crate) fn with_hint(mut message: String, hint: Option<&str>) -> String {
    if let Some(close) = hint {
        message.push_str(&format!("; did you mean `{close}`?"));
    }
    message
}

/// "a, b and c".
pub(crate) fn join_words<S: AsRef<str>>(words: &[S]) -> String {
    match words {
        [] => String::new(),
        [one] => one.as_ref().to_owned(),
        [init @ .., last] => {
            let init: Vec<&str> = init.iter().map(AsRef::as_ref).collect();
            format!("{} and {}", init.join(", "), last.as_ref())
        }
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
