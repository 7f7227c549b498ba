//! Globs compiled once at load time. Same language as [`airlock_workflow::glob_matches`]
//! (`*` matches any run of characters, dots included; nothing else is special), but
//! matching allocates nothing, since the engine matches every rule on every call.

/// A compiled glob.
#[derive(Clone, Debug)]
pub(crate) enum Glob {
    /// `*`, `**`, ...: matches everything.
    Any,
    /// No `*`: the name must equal it.
    Exact(String),
    /// `prefix*middle*...*suffix`.
    Wild {
        prefix: String,
        middle: Vec<String>,
        suffix: String,
        /// The fewest bytes a matching name can have.
        min_len: usize,
    },
}

impl Glob {
    pub(crate) fn new(pattern: &str) -> Glob {
        if !pattern.contains('*') {
            return Glob::Exact(pattern.to_owned());
        }
        let parts: Vec<&str> = pattern.split('*').collect();
        if parts.iter().all(|p| p.is_empty()) {
            return Glob::Any;
        }
        // `split` on a pattern with a `*` yields at least two parts.
        let prefix = parts.first().copied().unwrap_or_default().to_owned();
        let suffix = parts.last().copied().unwrap_or_default().to_owned();
        let middle: Vec<String> = parts[1..parts.len() - 1]
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| (*p).to_owned())
            .collect();
        let min_len = prefix.len() + suffix.len() + middle.iter().map(String::len).sum::<usize>();
        Glob::Wild {
            prefix,
            middle,
            suffix,
            min_len,
        }
    }

    pub(crate) fn matches(&self, name: &str) -> bool {
        match self {
            Glob::Any => true,
            Glob::Exact(exact) => same(exact.as_bytes(), name.as_bytes()),
            Glob::Wild {
                prefix,
                middle,
                suffix,
                min_len,
            } => {
                let bytes = name.as_bytes();
                if bytes.len() < *min_len
                    || !same(prefix.as_bytes(), &bytes[..prefix.len()])
                    || !same(suffix.as_bytes(), &bytes[bytes.len() - suffix.len()..])
                {
                    return false;
                }
                // Leftmost-first placement of each middle part is enough: any match
                // can be shifted left without breaking the parts after it.
                let mut rest = &name.as_bytes()[prefix.len()..name.len() - suffix.len()];
                for part in middle {
                    match find(rest, part.as_bytes()) {
                        Some(at) => rest = &rest[at + part.len()..],
                        None => return false,
                    }
                }
                true
            }
        }
    }
}

/// Byte equality by hand: names and patterns are short and usually differ early, where
/// a call into libc's vectorised `memcmp` costs more than the comparison (measured: it
/// was most of the time of a 1,000-rule decision).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Where `needle` first occurs in `haystack`. Byte search is exact for UTF-8: a
/// valid needle can only match at character boundaries.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| same(w, needle))
}

/// Several globs: matches a name that any of them matches.
#[derive(Clone, Debug, Default)]
pub(crate) struct GlobSet {
    globs: Vec<Glob>,
}

impl GlobSet {
    pub(crate) fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> GlobSet {
        GlobSet {
            globs: patterns.into_iter().map(Glob::new).collect(),
        }
    }

    pub(crate) fn matches(&self, name: &str) -> bool {
        self.globs.iter().any(|g| g.matches(name))
    }

    pub(crate) fn matches_any(&self, names: &[String]) -> bool {
        names.iter().any(|n| self.matches(n))
    }

    /// Whether it matches every name (one of its globs is `*`).
    pub(crate) fn is_any(&self) -> bool {
        self.globs.iter().any(|g| matches!(g, Glob::Any))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_workflow::glob_matches;

    /// The compiled glob agrees with the workflow crate's reference matcher on every
    /// pattern and name built from a small alphabet (including a multi-byte letter).
    #[test]
    fn agrees_with_glob_matches() {
        let alphabet = ['a', 'b', '.', 'é'];
        let names = words(&alphabet, 4);
        let mut patterns = words(&['a', '.', '*', 'é'], 4);
        patterns.push("**a**".into());
        patterns.push("a*b*a".into());
        let mut checked = 0;
        for pattern in &patterns {
            let glob = Glob::new(pattern);
            for name in &names {
                assert_eq!(
                    glob.matches(name),
                    glob_matches(pattern, name),
                    "pattern {pattern:?} name {name:?}"
                );
                checked += 1;
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    fn words(alphabet: &[char], max: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..max {
            let next: Vec<String> = last
                .iter()
                .flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}")))
                .collect();
            all.extend(next.iter().cloned());
            last = next;
        }
        all
    }

    #[test]
    fn examples() {
        assert!(Glob::new("support.*").matches("support.get_order"));
        assert!(!Glob::new("support.*").matches("supportx.get_order"));
        assert!(Glob::new("*.delete_*").matches("crm.delete_customer"));
        assert!(!Glob::new("*.delete_*").matches("crm.undelete"));
        assert!(Glob::new("*").matches(""));
        assert!(Glob::new("a*a").matches("aa"));
        assert!(!Glob::new("a*a").matches("a"));
    }
}
