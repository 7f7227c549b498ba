//! Tool globs: `support.*` matches `support.get_order`; `*` matches any run of characters.

/// Whether `name` (a `<server>.<tool>`) matches `pattern`, where `*` matches any run of
/// characters, dots included.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (0, 0);
    // Where the last `*` was, and how much of `name` it has swallowed so far.
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == '*' {
            backtrack = Some((p, n));
            p += 1;
        } else if p < pattern.len() && pattern[p] == name[n] {
            p += 1;
            n += 1;
        } else if let Some((star, swallowed)) = backtrack {
            p = star + 1;
            n = swallowed + 1;
            backtrack = Some((star, swallowed + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}
