//! Word processing of Dockerfile arguments, as BuildKit's shell lexer does it: quotes, the escape
//! character, and variable expansion (`$V`, `${V}`, `${V:-x}`, `${V-x}`, `${V:+x}`, `${V+x}`,
//! `${V:?x}`, `${V?x}`, `${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}`, `${V/p/r}`, `${V//p/r}`).

/// Where variable values come from: `None` means unset.
pub trait Lookup {
    /// The value of `name`, if set.
    fn get(&self, name: &str) -> Option<&str>;
}

impl Lookup for std::collections::BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        std::collections::BTreeMap::get(self, name).map(String::as_str)
    }
}

impl Lookup for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        std::collections::HashMap::get(self, name).map(String::as_str)
    }
}

/// Why a word cannot be expanded (BuildKit's shell lexer refuses the same words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// A quote opened in `text` and never closed.
    UnterminatedQuote {
        /// `'` or `"`.
        quote: char,
        /// The text it opened in.
        text: String,
    },
    /// The word ended inside a quoted part.
    EndInQuote {
        /// `'` or `"`.
        quote: char,
    },
    /// `${` not followed by a variable name.
    NoName,
    /// `${name` without its closing `}`.
    Unclosed {
        /// The variable.
        name: String,
    },
    /// `${name?message}` or `${name:?message}` on an unset (or empty) variable.
    Required {
        /// The variable.
        name: String,
        /// The message written after `?` (empty when none).
        message: String,
    },
    /// A modifier BuildKit does not know (`${name:#…}`, `${name@…}`).
    UnsupportedModifier {
        /// The variable.
        name: String,
        /// The modifier character.
        modifier: char,
    },
}

impl std::fmt::Display for ExpandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpandError::UnterminatedQuote { quote, text } => {
                write!(f, "unterminated {quote} quote in {text:?}")
            }
            ExpandError::EndInQuote { quote } => {
                write!(
                    f,
                    "unexpected end of word while looking for matching {quote}"
                )
            }
            ExpandError::NoName => {
                f.write_str("bad substitution: expected a variable name after ${")
            }
            ExpandError::Unclosed { name } => write!(f, "missing '}}' in ${{{name}..."),
            ExpandError::Required { name, message } if message.is_empty() => {
                write!(f, "{name}: is not allowed to be unset")
            }
            ExpandError::Required { name, message } => write!(f, "{name}: {message}"),
            ExpandError::UnsupportedModifier { name, modifier } => {
                write!(f, "unsupported modifier {modifier:?} in ${{{name}...}}")
            }
        }
    }
}

/// Expand one word: remove quotes, apply escapes, substitute variables.
pub fn expand_word(word: &str, escape: char, vars: &dyn Lookup) -> Result<String, ExpandError> {
    let chars: Vec<char> = word.chars().collect();
    let mut p = Processor {
        c: &chars,
        i: 0,
        escape,
        vars,
    };
    p.word(None)
}

/// Split on unquoted blanks (for `ARG a=1 b="x y"` and `ENV`), keeping quotes for
/// [`expand_word`].
pub fn split_words(text: &str, escape: char) -> Result<Vec<String>, ExpandError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == escape && q == '"' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                in_word = true;
                cur.push(c);
                if c == escape {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == '"' || c == '\'' {
                    quote = Some(c);
                }
            }
        }
    }
    if let Some(q) = quote {
        return Err(ExpandError::UnterminatedQuote {
            quote: q,
            text: text.to_string(),
        });
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

struct Processor<'a> {
    c: &'a [char],
    i: usize,
    escape: char,
    vars: &'a dyn Lookup,
}

impl Processor<'_> {
    fn peek(&self) -> Option<char> {
        self.c.get(self.i).copied()
    }

    /// Read until `stop` (not consumed) or the end.
    fn word(&mut self, stop: Option<char>) -> Result<String, ExpandError> {
        let mut out = String::new();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                break;
            }
            self.i += 1;
            if ch == self.escape {
                match self.peek() {
                    Some(n) => {
                        out.push(n);
                        self.i += 1;
                    }
                    None => out.push(ch),
                }
            } else if ch == '\'' {
                loop {
                    match self.peek() {
                        None => {
                            return Err(ExpandError::EndInQuote { quote: '\'' });
                        }
                        Some('\'') => {
                            self.i += 1;
                            break;
                        }
                        Some(c) => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
            } else if ch == '"' {
                loop {
                    match self.peek() {
                        None => {
                            return Err(ExpandError::EndInQuote { quote: '"' });
                        }
                        Some('"') => {
                            self.i += 1;
                            break;
                        }
                        Some(c) if c == self.escape => {
                            self.i += 1;
                            match self.peek() {
                                Some(n @ ('"' | '$')) => {
                                    out.push(n);
                                    self.i += 1;
                                }
                                Some(n) if n == self.escape => {
                                    out.push(n);
                                    self.i += 1;
                                }
                                _ => out.push(c),
                            }
                        }
                        Some('$') => {
                            self.i += 1;
                            out.push_str(&self.dollar()?);
                        }
                        Some(c) => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
            } else if ch == '$' {
                out.push_str(&self.dollar()?);
            } else {
                out.push(ch);
            }
        }
        Ok(out)
    }

    /// After a `$`.
    fn dollar(&mut self) -> Result<String, ExpandError> {
        match self.peek() {
            Some('{') => {
                self.i += 1;
                self.braced()
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let name = self.name();
                Ok(self.vars.get(&name).unwrap_or_default().to_string())
            }
            Some(c) if c.is_ascii_digit() => {
                // Positional parameters are always empty.
                self.i += 1;
                Ok(String::new())
            }
            _ => Ok("$".to_string()),
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.i += 1;
            } else {
                break;
            }
        }
        name
    }

    fn braced(&mut self) -> Result<String, ExpandError> {
        let name = self.name();
        if name.is_empty() {
            return Err(ExpandError::NoName);
        }
        let value = self.vars.get(&name).map(str::to_string);
        let op = match self.peek() {
            None => return Err(ExpandError::Unclosed { name }),
            Some('}') => {
                self.i += 1;
                return Ok(value.unwrap_or_default());
            }
            Some(c) => c,
        };
        self.i += 1;
        let colon = op == ':';
        let op = if colon {
            let o = self
                .peek()
                .ok_or_else(|| ExpandError::Unclosed { name: name.clone() })?;
            self.i += 1;
            o
        } else {
            op
        };
        let set = if colon {
            value.as_deref().is_some_and(|v| !v.is_empty())
        } else {
            value.is_some()
        };
        let result = self.modifier(&name, value, op, colon, set)?;
        if self.peek() != Some('}') {
            return Err(ExpandError::Unclosed { name });
        }
        self.i += 1;
        Ok(result)
    }

    /// The rest of `${name<op>…` up to (not including) the closing `}`: `-`, `+`, `?` (after
    /// `:` when `colon`; `set` says whether the variable counts as set), `#`, `##`, `%`, `%%`,
    /// `/`, `//`.
    fn modifier(
        &mut self,
        name: &str,
        value: Option<String>,
        op: char,
        colon: bool,
        set: bool,
    ) -> Result<String, ExpandError> {
        Ok(match op {
            '-' => {
                let w = self.word(Some('}'))?;
                if set { value.unwrap_or_default() } else { w }
            }
            '+' => {
                let w = self.word(Some('}'))?;
                if set { w } else { String::new() }
            }
            '?' => {
                let w = self.word(Some('}'))?;
                if !set {
                    return Err(ExpandError::Required {
                        name: name.to_string(),
                        message: w,
                    });
                }
                value.unwrap_or_default()
            }
            '#' | '%' if !colon => {
                let longest = self.peek() == Some(op);
                if longest {
                    self.i += 1;
                }
                let pat = self.word(Some('}'))?;
                let v = value.unwrap_or_default();
                trim_match(&v, &pat, op == '#', longest)
            }
            '/' if !colon => self.replace(&value.unwrap_or_default())?,
            other => {
                return Err(ExpandError::UnsupportedModifier {
                    name: name.to_string(),
                    modifier: other,
                });
            }
        })
    }

    /// `${name/pat/repl}` or `${name//pat/repl}` after the first `/`.
    fn replace(&mut self, value: &str) -> Result<String, ExpandError> {
        let all = self.peek() == Some('/');
        if all {
            self.i += 1;
        }
        let pat = self.word(Some('/'))?;
        let repl = if self.peek() == Some('/') {
            self.i += 1;
            self.word(Some('}'))?
        } else {
            String::new()
        };
        Ok(replace_match(value, &pat, &repl, all))
    }
}

fn trim_match(v: &str, pat: &str, prefix: bool, longest: bool) -> String {
    let idx: Vec<usize> = v.char_indices().map(|(i, _)| i).chain([v.len()]).collect();
    let candidates: Box<dyn Iterator<Item = usize>> = if prefix == longest {
        // prefix+longest or suffix+shortest: scan from the far end.
        Box::new(idx.iter().rev().copied())
    } else {
        Box::new(idx.iter().copied())
    };
    for cut in candidates {
        if prefix {
            if shell_glob(pat, &v[..cut]) {
                return v[cut..].to_string();
            }
        } else if shell_glob(pat, &v[cut..]) {
            return v[..cut].to_string();
        }
    }
    v.to_string()
}

fn replace_match(v: &str, pat: &str, repl: &str, all: bool) -> String {
    if pat.is_empty() {
        return v.to_string();
    }
    let mut out = String::new();
    let mut start = 0;
    let bounds: Vec<usize> = v.char_indices().map(|(i, _)| i).chain([v.len()]).collect();
    let mut bi = 0;
    while bi < bounds.len() {
        let s = bounds[bi];
        if s < start {
            bi += 1;
            continue;
        }
        // Longest match starting at s.
        let end = bounds
            .iter()
            .rev()
            .copied()
            .filter(|e| *e > s)
            .find(|e| shell_glob(pat, &v[s..*e]));
        if let Some(e) = end {
            out.push_str(&v[start..s]);
            out.push_str(repl);
            start = e;
            if !all {
                break;
            }
        }
        bi += 1;
    }
    out.push_str(&v[start..]);
    out
}

/// Shell pattern matching (`*`, `?`, `[...]`), where `*` may match `/`. Iterative with
/// single-star backtracking, so no pattern can make it exponential.
fn shell_glob(pat: &str, s: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let s: Vec<char> = s.chars().collect();
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                '[' => {
                    if let Some((hit, len)) = shell_class(&p[pi..], s[si]) {
                        if hit {
                            pi += len;
                            si += 1;
                            continue;
                        }
                    } else if s[si] == '[' {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                }
                c if c == s[si] => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, ss)) => {
                star = Some((sp, ss + 1));
                pi = sp + 1;
                si = ss + 1;
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// A `[...]` class at the start of `p`: (matches `c`, length), or `None` when unterminated.
fn shell_class(p: &[char], c: char) -> Option<(bool, usize)> {
    let close = p.iter().skip(2).position(|x| *x == ']')? + 2;
    let mut class = &p[1..close];
    let neg = matches!(class.first(), Some('!' | '^'));
    if neg {
        class = &class[1..];
    }
    let mut hit = false;
    let mut k = 0;
    while k < class.len() {
        if k + 2 < class.len() && class[k + 1] == '-' {
            hit |= class[k] <= c && c <= class[k + 2];
            k += 3;
        } else {
            hit |= class[k] == c;
            k += 1;
        }
    }
    Some((hit != neg, close + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn vars() -> BTreeMap<String, String> {
        [
            ("PY", "3.12"),
            ("BASE", "python"),
            ("EMPTY", ""),
            ("PATHV", "a/b/c.tar.gz"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn x(w: &str) -> String {
        expand_word(w, '\\', &vars()).unwrap()
    }

    #[test]
    fn variables_and_defaults() {
        assert_eq!(x("${BASE}:${PY}-slim"), "python:3.12-slim");
        assert_eq!(x("$BASE:$PY"), "python:3.12");
        assert_eq!(x("${NOPE:-dflt}"), "dflt");
        assert_eq!(x("${EMPTY:-dflt}"), "dflt");
        assert_eq!(x("${EMPTY-dflt}"), "");
        assert_eq!(x("${PY:+set}"), "set");
        assert_eq!(x("${NOPE+set}"), "");
        assert_eq!(x("${EMPTY+set}"), "set");
        assert_eq!(x("${NOPE:-${BASE}}"), "python");
        assert_eq!(
            expand_word("${NOPE:?need it}", '\\', &vars()).unwrap_err(),
            ExpandError::Required {
                name: "NOPE".into(),
                message: "need it".into()
            }
        );
        let unset = expand_word("${NOPE?}", '\\', &vars()).unwrap_err();
        assert_eq!(unset.to_string(), "NOPE: is not allowed to be unset");
        assert_eq!(
            expand_word("${A", '\\', &vars()).unwrap_err(),
            ExpandError::Unclosed { name: "A".into() }
        );
        assert_eq!(
            split_words("a 'b", '\\').unwrap_err(),
            ExpandError::UnterminatedQuote {
                quote: '\'',
                text: "a 'b".into()
            }
        );
        assert_eq!(x("$1x"), "x");
        assert_eq!(x("a$"), "a$");
    }

    #[test]
    fn pattern_forms() {
        assert_eq!(x("${PATHV#*/}"), "b/c.tar.gz");
        assert_eq!(x("${PATHV##*/}"), "c.tar.gz");
        assert_eq!(x("${PATHV%.*}"), "a/b/c.tar");
        assert_eq!(x("${PATHV%%.*}"), "a/b/c");
        assert_eq!(x("${PATHV/\\//-}"), "a-b/c.tar.gz");
        assert_eq!(x("${PATHV//\\//-}"), "a-b-c.tar.gz");
        assert_eq!(x("${PY/./}"), "312");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(x("'$BASE'"), "$BASE");
        assert_eq!(x("\"$BASE x\""), "python x");
        assert_eq!(x("\\$BASE"), "$BASE");
        assert_eq!(x("a\\ b"), "a b");
        assert_eq!(expand_word("`$BASE", '`', &vars()).unwrap(), "$BASE");
        assert!(expand_word("\"open", '\\', &vars()).is_err());
        assert!(expand_word("${BASE", '\\', &vars()).is_err());
        assert!(expand_word("${}", '\\', &vars()).is_err());
    }

    #[test]
    fn word_splitting() {
        assert_eq!(
            split_words("A=1 B=\"x y\"  C", '\\').unwrap(),
            ["A=1", "B=\"x y\"", "C"]
        );
        assert_eq!(split_words("A=a\\ b", '\\').unwrap(), ["A=a\\ b"]);
        assert!(split_words("A=\"x", '\\').is_err());
    }

    proptest! {
        #[test]
        fn expansion_never_panics(w in "\\PC{0,60}") {
            let _ = expand_word(&w, '\\', &vars());
            let _ = expand_word(&w, '`', &vars());
            let _ = split_words(&w, '\\');
        }

        #[test]
        fn plain_words_are_unchanged(w in "[A-Za-z0-9_./:@-]{0,40}") {
            prop_assert_eq!(x(&w), w);
        }
    }
}
