//! `.dockerignore` with moby/patternmatcher's semantics.
//!
//! * Reading (`ignorefile.ReadAll`): UTF-8 BOM stripped; a line starting with `#` (column 1) is a
//!   comment; lines are trimmed; empty lines skipped; `!` marks an exception (blanks after it
//!   trimmed); each pattern is path-cleaned (`./a`, `a/`, `a/../a` → `a`) and one leading `/`
//!   removed.
//! * Patterns are Go `filepath.Match` globs (`*`, `?` never cross `/`; `[...]` classes with `^`;
//!   `\` escapes) plus `**`, anchored at the context root. `**` is compiled exactly as
//!   patternmatcher does: `(.*/)?` (any number of directories) inside a pattern, anything at its
//!   end, and a leading `**` before literal text is a suffix test (`**.md` matches `a/b/c.md`).
//! * A file is excluded when the last pattern that matches it — or one of its parent
//!   directories — is not an exception.

use regex_lite::Regex;

/// One compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    exclusion: bool,
    matcher: Matcher,
    /// 1-based line in the ignore file; 0 when not read from a file.
    line: usize,
}

/// patternmatcher's four match types: the pattern is compiled to a regular expression only
/// when it needs one; a leading `**` followed by literal text is a plain suffix test (so `**.md`
/// matches `a/b/c.md`), a trailing `**` after literal text a plain prefix test.
#[derive(Debug, Clone)]
enum Matcher {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Regex(Regex),
}

impl Pattern {
    /// The cleaned pattern (without `!`).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether this is an exception (`!pattern`).
    pub fn is_exception(&self) -> bool {
        self.exclusion
    }

    /// The 1-based line of the ignore file it was read from; 0 when it was not read from a
    /// file ([`IgnoreRules::from_patterns`]).
    pub fn line(&self) -> usize {
        self.line
    }

    /// Whether the pattern matches `path` itself (no parent logic).
    pub fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact(s) => s == path,
            Matcher::Prefix(p) => path.starts_with(p.as_str()),
            // `**/foo` also matches `foo` itself.
            Matcher::Suffix(s) => {
                path.ends_with(s.as_str()) || s.strip_prefix('/').is_some_and(|rest| rest == path)
            }
            Matcher::Regex(r) => r.is_match(path),
        }
    }
}

/// A malformed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// 1-based line in the ignore file (0 when not read from a file).
    pub line: usize,
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong.
    pub reason: GlobError,
}

/// Why a pattern is malformed (the checks of Go's `filepath.Match` and patternmatcher).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobError {
    /// `!` with nothing after it.
    EmptyException,
    /// A `\` as the last character.
    TrailingBackslash,
    /// A `\` as the last character inside `[...]`.
    TrailingBackslashInClass,
    /// A `[` without its `]`.
    UnterminatedClass,
    /// `[z-a]`: the range ends before it starts.
    RangeOutOfOrder {
        /// The first character of the range.
        lo: char,
        /// The last character of the range.
        hi: char,
    },
    /// `-` or `]` where a class character was expected.
    ClassCharExpected,
    /// The pattern is valid but its regular expression is too large to compile.
    Regex(regex_lite::Error),
}

impl std::fmt::Display for GlobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GlobError::EmptyException => f.write_str("an exception needs a pattern after '!'"),
            GlobError::TrailingBackslash => f.write_str("trailing backslash"),
            GlobError::TrailingBackslashInClass => {
                f.write_str("trailing backslash in character class")
            }
            GlobError::UnterminatedClass => f.write_str("unterminated character class '['"),
            GlobError::RangeOutOfOrder { lo, hi } => {
                write!(f, "character range {lo}-{hi} is out of order")
            }
            GlobError::ClassCharExpected => {
                f.write_str("'-' or ']' where a class character was expected")
            }
            GlobError::Regex(e) => write!(f, "cannot compile: {e}"),
        }
    }
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: ", self.line)?;
        }
        write!(f, "invalid pattern {:?}: {}", self.pattern, self.reason)
    }
}

/// An ordered list of patterns: a parsed `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    patterns: Vec<Pattern>,
}

impl IgnoreRules {
    /// No patterns: nothing is excluded.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parse the content of a `.dockerignore` file.
    pub fn parse(content: &str) -> Result<Self, PatternError> {
        let content = content.strip_prefix('\u{feff}').unwrap_or(content);
        let mut patterns = Vec::new();
        for (i, raw) in content.split('\n').enumerate() {
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if raw.starts_with('#') {
                continue;
            }
            let mut p = raw.trim();
            if p.is_empty() {
                continue;
            }
            let exclusion = p.starts_with('!');
            if exclusion {
                p = p[1..].trim();
            }
            let mut cleaned = String::new();
            if !p.is_empty() {
                cleaned = clean_path(p);
                if cleaned.len() > 1 && cleaned.starts_with('/') {
                    cleaned.remove(0);
                }
            }
            let mut pat = compile(&cleaned, exclusion).map_err(|reason| PatternError {
                line: i + 1,
                pattern: raw.trim().to_string(),
                reason,
            })?;
            pat.line = i + 1;
            patterns.push(pat);
        }
        Ok(IgnoreRules { patterns })
    }

    /// Build from patterns given one by one (`!` prefix for exceptions), as `ferry.toml` globs.
    pub fn from_patterns<S: AsRef<str>>(list: &[S]) -> Result<Self, PatternError> {
        let mut patterns = Vec::new();
        for p in list {
            let raw = p.as_ref().trim();
            let exclusion = raw.starts_with('!');
            let body = if exclusion { raw[1..].trim() } else { raw };
            let mut cleaned = if body.is_empty() {
                String::new()
            } else {
                clean_path(body)
            };
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            patterns.push(compile(&cleaned, exclusion).map_err(|reason| PatternError {
                line: 0,
                pattern: raw.to_string(),
                reason,
            })?);
        }
        Ok(IgnoreRules { patterns })
    }

    /// The patterns in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (relative to the context root, `/`-separated, no leading `./`) is
    /// excluded: patternmatcher's `MatchesOrParentMatches`.
    pub fn is_excluded(&self, path: &str) -> bool {
        self.deciding(path).is_some_and(|(_, p)| !p.exclusion)
    }

    /// The pattern that decides whether `path` is excluded, with its index: the last one that
    /// matched it (or one of its parent directories) while patternmatcher evaluated the list.
    /// An exclusion means excluded, an exception re-included; `None` when nothing matched.
    pub fn deciding(&self, path: &str) -> Option<(usize, &Pattern)> {
        let parent = match path.rfind('/') {
            Some(i) => &path[..i],
            None => ".",
        };
        let mut decided = None;
        for (i, p) in self.patterns.iter().enumerate() {
            let matched = decided.is_some_and(|(_, d): (usize, &Pattern)| !d.exclusion);
            // An exception only matters once something matched, an exclusion only before.
            if p.exclusion != matched {
                continue;
            }
            let mut hit = p.matches(path);
            if !hit && parent != "." {
                hit = parent
                    .match_indices('/')
                    .any(|(i, _)| p.matches(&parent[..i]))
                    || p.matches(parent);
            }
            if hit {
                decided = Some((i, p));
            }
        }
        decided
    }
}

/// Go's `filepath.Clean` for `/`-separated paths.
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MatchType {
    Exact,
    Prefix,
    Suffix,
    Regex,
}

/// patternmatcher's `(*Pattern).compile`, step for step (with `/` as the separator).
fn compile(cleaned: &str, exclusion: bool) -> Result<Pattern, GlobError> {
    if cleaned.is_empty() {
        return Err(GlobError::EmptyException);
    }
    validate_go_glob(cleaned)?;
    let chars: Vec<char> = cleaned.chars().collect();
    let mut re = String::from("^");
    let mut kind = MatchType::Exact;
    let mut i = 0;
    let mut step = 0;
    while i < chars.len() {
        let ch = chars[i];
        match ch {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i = double_star(&chars, i, step == 0, &mut kind, &mut re);
            }
            '*' => {
                re.push_str("[^/]*");
                kind = MatchType::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                kind = MatchType::Regex;
            }
            // patternmatcher escapes only these: its `shouldEscape` bitmap loses `|`, `{` and
            // `}` (a byte shifted by 15), so they keep their regex meaning there. Go's regexp
            // reads a `{` or `}` that forms no repetition as a literal; this regex engine
            // refuses them, so escape exactly those.
            '.' | '+' | '(' | ')' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '{' if !is_repetition(&chars[i..]) => re.push_str("\\{"),
            '}' if !closes_repetition(&chars, i) => re.push_str("\\}"),
            '\\' => {
                if let Some(next) = chars.get(i + 1) {
                    re.push('\\');
                    re.push(*next);
                    i += 1;
                    kind = MatchType::Regex;
                } else {
                    re.push_str("\\\\");
                }
            }
            '[' | ']' => {
                re.push(ch);
                kind = MatchType::Regex;
            }
            other => re.push(other),
        }
        i += 1;
        step += 1;
    }
    re.push('$');
    let matcher = match kind {
        MatchType::Exact => Matcher::Exact(cleaned.to_string()),
        // Strip the trailing / leading `**` (the pattern's raw text, as patternmatcher does).
        MatchType::Prefix => Matcher::Prefix(cleaned[..cleaned.len() - 2].to_string()),
        MatchType::Suffix => Matcher::Suffix(cleaned[2..].to_string()),
        MatchType::Regex => Matcher::Regex(Regex::new(&re).map_err(GlobError::Regex)?),
    };
    Ok(Pattern {
        text: cleaned.to_string(),
        exclusion,
        matcher,
        line: 0,
    })
}

/// patternmatcher's `**` at `chars[i]`: returns the index of its last character (a following
/// `/` is eaten). At the end it accepts everything (a prefix test when all before was literal);
/// elsewhere it is `(.*/)?`; first in the pattern it makes a suffix test unless a later glob
/// turns the pattern into a regex.
fn double_star(
    chars: &[char],
    mut i: usize,
    first: bool,
    kind: &mut MatchType,
    re: &mut String,
) -> usize {
    i += 1;
    if chars.get(i + 1) == Some(&'/') {
        i += 1;
    }
    if i + 1 >= chars.len() {
        if *kind == MatchType::Exact {
            *kind = MatchType::Prefix;
        } else {
            re.push_str(".*");
            *kind = MatchType::Regex;
        }
    } else {
        re.push_str("(.*/)?");
        *kind = MatchType::Regex;
    }
    if first {
        *kind = MatchType::Suffix;
    }
    i
}

/// Whether `s` starts with a regex repetition `{n}`, `{n,}` or `{n,m}`.
fn is_repetition(s: &[char]) -> bool {
    let Some(end) = s.iter().position(|c| *c == '}') else {
        return false;
    };
    let inner: String = s[1..end].iter().collect();
    let mut parts = inner.splitn(2, ',');
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    match (parts.next(), parts.next()) {
        (Some(n), None) => digits(n),
        (Some(n), Some(m)) => digits(n) && (m.is_empty() || digits(m)),
        _ => false,
    }
}

/// Whether the `}` at `chars[i]` ends a repetition opened before it.
fn closes_repetition(chars: &[char], i: usize) -> bool {
    chars[..i]
        .iter()
        .rposition(|c| *c == '{')
        .is_some_and(|open| !chars[open..i].contains(&'}') && is_repetition(&chars[open..=i]))
}

/// The syntax checks of Go's `filepath.Match` (which patternmatcher runs on every pattern).
fn validate_go_glob(p: &str) -> Result<(), GlobError> {
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if i + 1 >= chars.len() {
                    return Err(GlobError::TrailingBackslash);
                }
                i += 2;
            }
            '[' => {
                i += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut n = 0;
                loop {
                    match chars.get(i) {
                        None => return Err(GlobError::UnterminatedClass),
                        Some(']') if n > 0 => {
                            i += 1;
                            break;
                        }
                        _ => {}
                    }
                    let lo = class_char(&chars, &mut i)?;
                    if chars.get(i) == Some(&'-') {
                        i += 1;
                        let hi = class_char(&chars, &mut i)?;
                        if hi < lo {
                            return Err(GlobError::RangeOutOfOrder { lo, hi });
                        }
                    }
                    n += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

fn class_char(chars: &[char], i: &mut usize) -> Result<char, GlobError> {
    match chars.get(*i) {
        None => Err(GlobError::UnterminatedClass),
        Some('-') | Some(']') => Err(GlobError::ClassCharExpected),
        Some('\\') => {
            let c = *chars
                .get(*i + 1)
                .ok_or(GlobError::TrailingBackslashInClass)?;
            *i += 2;
            Ok(c)
        }
        Some(c) => {
            *i += 1;
            Ok(*c)
        }
    }
}

/// Go's `filepath.Match` on `/`-separated paths: `*` and `?` never match `/`.
pub fn glob_match(pattern: &str, name: &str) -> Result<bool, GlobError> {
    validate_go_glob(pattern)?;
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    Ok(glob_rec(&p, &n))
}

fn glob_rec(p: &[char], n: &[char]) -> bool {
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' if n[ni] != '/' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' if n[ni] != '/' => {
                    if let Some((ok, len)) = class_match(&p[pi..], n[ni])
                        && ok
                    {
                        pi += len;
                        ni += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() && p[pi + 1] == n[ni] => {
                    pi += 2;
                    ni += 1;
                    continue;
                }
                c if c != '?' && c != '[' && c != '\\' && c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        // Backtrack: let the last '*' eat one more character, but never a '/'.
        match star {
            Some((sp, sn)) if n[sn] != '/' => {
                star = Some((sp, sn + 1));
                pi = sp + 1;
                ni = sn + 1;
            }
            _ => return false,
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Match a class at the start of `p` against `c`: (matched, length of the class).
fn class_match(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = p.get(i) == Some(&'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let ch = *p.get(i)?;
        if ch == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let lo = if ch == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            ch
        };
        i += 1;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            i += 1;
            let h = *p.get(i)?;
            hi = if h == '\\' {
                i += 1;
                *p.get(i)?
            } else {
                h
            };
            i += 1;
        }
        if lo <= c && c <= hi {
            matched = true;
        }
    }
    Some((matched != negate, i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rules(s: &str) -> IgnoreRules {
        IgnoreRules::parse(s).unwrap()
    }

    #[test]
    fn reader_rules() {
        let r = rules(
            "\u{feff}# comment\n  *.md  \n\n !README.md\n./docs/\n/abs\n a/../b \n#x\n  #not-a-comment\n",
        );
        let texts: Vec<(&str, bool)> = r
            .patterns()
            .iter()
            .map(|p| (p.text(), p.is_exception()))
            .collect();
        assert_eq!(
            texts,
            [
                ("*.md", false),
                ("README.md", true),
                ("docs", false),
                ("abs", false),
                ("b", false),
                ("#not-a-comment", false)
            ]
        );
    }

    #[test]
    fn anchored_at_root_unlike_gitignore() {
        let r = rules("*.md\n");
        assert!(r.is_excluded("README.md"));
        assert!(!r.is_excluded("docs/guide.md"));
        let r = rules("**/*.md\n");
        assert!(r.is_excluded("docs/guide.md"));
        assert!(r.is_excluded("README.md"));
    }

    #[test]
    fn parent_directory_match_excludes_children_and_last_match_wins() {
        let r = rules("node_modules\nbuild\n!build/keep.txt\n");
        assert!(r.is_excluded("node_modules/a/b.js"));
        assert!(r.is_excluded("build/x.o"));
        assert!(!r.is_excluded("build/keep.txt"));
        assert!(!r.is_excluded("src/build.rs"));
        let r = rules("*\n!src\n!src/**\nsrc/secret\n");
        assert!(r.is_excluded("Makefile"));
        assert!(!r.is_excluded("src/main.rs"));
        assert!(r.is_excluded("src/secret"));
        assert!(r.is_excluded("src/secret/key"));
    }

    #[test]
    fn double_star_forms() {
        let r = rules("a/**/b\n");
        assert!(r.is_excluded("a/b"));
        assert!(r.is_excluded("a/x/y/b"));
        assert!(!r.is_excluded("a/xb"));
        let r = rules("foo/**\n");
        assert!(r.is_excluded("foo/x"));
        assert!(r.is_excluded("foo/x/y"));
        let r = rules("**\n!keep\n");
        assert!(r.is_excluded("any/thing"));
        assert!(!r.is_excluded("keep"));
    }

    #[test]
    fn globs_do_not_cross_slashes() {
        let r = rules("a/*.txt\n?.log\n[a-c]x\n[^d]y\n");
        assert!(r.is_excluded("a/b.txt"));
        assert!(!r.is_excluded("a/b/c.txt"));
        assert!(r.is_excluded("1.log"));
        assert!(!r.is_excluded("12.log"));
        assert!(r.is_excluded("bx"));
        assert!(!r.is_excluded("dx"));
        assert!(r.is_excluded("ey"));
        assert!(!r.is_excluded("dy"));
    }

    #[test]
    fn malformed_patterns_name_line_and_pattern() {
        for (content, line) in [
            ("ok\n[abc\n", 2),
            ("!\n", 1),
            ("a\\", 1),
            ("[]a]\n", 1),
            ("[z-a]\n", 1),
        ] {
            let e = IgnoreRules::parse(content).unwrap_err();
            assert_eq!(e.line, line, "{content:?}: {e}");
            assert!(e.to_string().contains("invalid pattern"), "{e}");
        }
    }

    #[test]
    fn clean_matches_go() {
        for (i, o) in [
            ("./a", "a"),
            ("a/", "a"),
            ("a/../a", "a"),
            ("a//b", "a/b"),
            ("..", ".."),
            ("../a/..", ".."),
            ("/../a", "/a"),
            ("", "."),
            (".", "."),
        ] {
            assert_eq!(clean_path(i), o, "{i}");
        }
    }

    #[test]
    fn go_glob_match() {
        let m = |p, n| glob_match(p, n).unwrap();
        assert!(m("*.py", "main.py"));
        assert!(!m("*.py", "a/main.py"));
        assert!(m("src/*", "src/a"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "a/c"));
        assert!(m("[a-c]*", "beta"));
        assert!(!m("[^a-c]*", "beta"));
        assert!(m("\\*", "*"));
        assert!(m("*", ""));
        assert!(glob_match("[", "x").is_err());
    }

    /// moby/patternmatcher's own `TestMatches` table (patternmatcher_test.go, every case), plus
    /// `**` inside a segment and the regex characters its escape bitmap misses, each answer
    /// worked out from its `compile`/`match` source: the reference this module must agree with.
    #[test]
    fn agrees_with_patternmatcher_reference_cases() {
        let cases: &[(&str, &str, bool)] = &[
            ("**", "file", true),
            ("**", "file/", true),
            ("**/", "file", true),
            ("**/", "file/", true),
            ("**", "/", true),
            ("**/", "/", true),
            ("**", "dir/file", true),
            ("**/", "dir/file", true),
            ("**", "dir/file/", true),
            ("**/", "dir/file/", true),
            ("**/**", "dir/file", true),
            ("**/**", "dir/file/", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/file/", true),
            ("dir/**", "dir/dir2/file", true),
            ("dir/**", "dir/dir2/file/", true),
            ("**/dir", "dir", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/*", "dir/dir2/file/", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file/", true),
            ("**file", "file", true),
            ("**file", "dir/file", true),
            ("**/file", "dir/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file", "dir/dir/file", true),
            ("**/file*", "dir/dir/file", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/file.txt", true),
            ("a**/*.txt", "a/dir/file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt", "a/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc.def", "abc.def", true),
            ("abc.def", "abcZdef", false),
            ("abc?def", "abcZdef", true),
            ("abc?def", "abcdef", false),
            ("a\\\\", "a\\", true),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "dir/foo/bar", true),
            ("**/foo/bar", "dir/dir2/foo/bar", true),
            ("abc/**", "abc", false),
            ("abc/**", "abc/def", true),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", ".foo", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a(b)c/def", "a(b)c/xyz", false),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            ("a\\*b", "a*b", true),
            // `**` inside a segment: a leading `**` before literal text is a suffix test.
            ("**.md", "c.md", true),
            ("**.md", "build/c.md", true),
            ("**.md", "a/b/c.md", true),
            ("**.md", "a/b/c.mdx", false),
            ("./**.md", "build/c.md", true),
            ("**md", "a/readme.md", true),
            ("**foo", "a/barfoo", true),
            // Not leading: `**` is `(.*/)?`, so `docs/**.txt` needs a `/` before `.txt`.
            ("docs/**.txt", "docs/a.txt", false),
            ("docs/**.txt", "docs/.txt", true),
            ("docs/**.txt", "docs/x/.txt", true),
            ("docs/**x", "docs/a/b/x", true),
            ("docs/**x", "docs/ax", false),
            // Leading `**` then a glob: a regex, `**` = any directories.
            ("**.m?", "a/b.md", false),
            ("**/*.md", "a/b/c.md", true),
            // Trailing `**` after literal text: a prefix test (crosses `/`, needs no `/`).
            ("foo**", "foobar/baz", true),
            ("foo**", "fo", false),
            ("*o**", "foobar/baz", true),
            // `|` keeps its regex meaning in patternmatcher (missing from its escape bitmap).
            ("*a|b", "xa", true),
            ("*a|b", "b/zz", true),
            ("*a|b", "zz", false),
            ("a{2}", "aa", false),
            // A `{n}` after a glob is a regex repetition there; any other brace is literal.
            ("a?{2}", "abc", true),
            ("a?{2}", "ab", false),
            ("x*{y}", "xa{y}", true),
            ("x*}", "xa}", true),
        ];
        for (pattern, path, want) in cases {
            let r = IgnoreRules::from_patterns(&[*pattern]).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                r.is_excluded(path),
                *want,
                "pattern {pattern:?} path {path:?}"
            );
        }
        let multi: &[(&[&str], &str, bool)] = &[
            (&["**", "!util/docker/web"], "util/docker/web/foo", false),
            (
                &["**", "!util/docker/web", "util/docker/web/foo"],
                "util/docker/web/foo",
                true,
            ),
            (
                &["**", "!dist/*.whl"],
                "dist/proxy.py-2.4.0rc3-py3-none-any.whl",
                false,
            ),
        ];
        for (patterns, path, want) in multi {
            let r = IgnoreRules::from_patterns(patterns).unwrap();
            assert_eq!(r.is_excluded(path), *want, "{patterns:?} {path:?}");
        }
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,200}") {
            let _ = IgnoreRules::parse(&s);
        }

        #[test]
        fn matching_never_panics(pats in proptest::collection::vec("[a-z*?/!\\[\\]^.-]{1,8}", 0..5), path in "[a-z/.]{0,20}") {
            if let Ok(r) = IgnoreRules::from_patterns(&pats) {
                let _ = r.is_excluded(&path);
            }
            for p in &pats { let _ = glob_match(p, &path); }
        }

        #[test]
        fn excluding_a_directory_excludes_everything_below(dir in "[a-z]{1,5}(/[a-z]{1,5}){0,2}", rest in "[a-z]{1,5}(/[a-z]{1,5}){0,2}") {
            let r = IgnoreRules::from_patterns(std::slice::from_ref(&dir)).unwrap();
            let inside = format!("{dir}/{rest}");
            prop_assert!(r.is_excluded(&inside));
            prop_assert!(r.is_excluded(&dir));
        }

        #[test]
        fn an_exception_after_the_exclusion_wins(name in "[a-z]{1,6}\\.[a-z]{1,3}") {
            let r = IgnoreRules::from_patterns(&["*".to_string(), format!("!{name}")]).unwrap();
            prop_assert!(!r.is_excluded(&name));
            let r = IgnoreRules::from_patterns(&[format!("!{name}"), "*".to_string()]).unwrap();
            prop_assert!(r.is_excluded(&name));
        }

        #[test]
        fn literal_patterns_match_exactly_like_go(p in "[a-z]{1,4}(/[a-z]{1,4}){0,2}", n in "[a-z]{1,4}(/[a-z]{1,4}){0,2}") {
            prop_assert_eq!(glob_match(&p, &n).unwrap(), p == n);
        }
    }
}
