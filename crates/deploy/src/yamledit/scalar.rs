//! One scalar on one line: the style it is written in (plain, single- or double-quoted), what
//! it reads as, and the text that writes a new value in that same style — or, when the new
//! value cannot be written so, in double quotes.

use super::resolve::{plain_char, plain_ok};
use super::{Line, children};
use std::fmt::Write as _;
use std::ops::Range;

/// How a scalar is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Plain,
    Single,
    Double,
}

/// Why the value of a `key:` line cannot be replaced in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScalarError {
    /// Lines below it: a mapping, a list or a plain scalar over several lines.
    NotAScalar,
    /// A quoted value whose closing quote is on another line.
    Multiline,
    /// Flow style, an anchor, an alias, a tag or a block scalar (the value as written).
    NotPlain(String),
    /// A double-quoted escape that is not in YAML's list.
    Escape(String),
    /// Something other than a comment after the closing quote.
    AfterQuote,
    /// A `key:` line whose colon ferry cannot place.
    NoColon,
}

impl std::fmt::Display for ScalarError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAScalar => f.write_str("is not a scalar (it has lines below it)"),
            Self::Multiline => f.write_str("is a quoted value spanning several lines"),
            Self::NotPlain(v) => write!(
                f,
                "`{v}` uses flow style, an anchor, an alias, a tag or a block scalar; ferry edits plain block-style values only"
            ),
            Self::Escape(e) => write!(f, "is a double-quoted value with the unknown escape `{e}`"),
            Self::AfterQuote => f.write_str("has text after its closing quote"),
            Self::NoColon => f.write_str("has no `key:` form ferry can read"),
        }
    }
}

/// `new` written in `style` when it can be (plain: when YAML 1.1 and 1.2 both read it back as
/// that string; single-quoted: when it is printable on one line), else double-quoted.
pub(crate) fn render(new: &str, style: Style) -> String {
    match style {
        Style::Plain if plain_ok(new) => new.to_string(),
        Style::Single if new.chars().all(plain_char) => format!("'{}'", new.replace('\'', "''")),
        _ => double_quoted(new),
    }
}

/// `new` double-quoted, escaped so that any string survives.
fn double_quoted(new: &str) -> String {
    let mut out = String::with_capacity(new.len() + 2);
    out.push('"');
    for c in new.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if plain_char(c) => out.push(c),
            c if u32::from(c) <= 0xFF => {
                let _ = write!(out, "\\x{:02X}", u32::from(c));
            }
            c if u32::from(c) <= 0xFFFF => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08X}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

/// The quoted scalar at the start of `s` (which starts with its quote): what it reads as and
/// its length in bytes, quotes included.
fn read_quoted(s: &str) -> Result<(String, usize), ScalarError> {
    let quote = s.chars().next().ok_or(ScalarError::Multiline)?;
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' if quote == '\'' => {
                if chars.next_if(|(_, n)| *n == '\'').is_none() {
                    return Ok((out, i + 1));
                }
                out.push('\'');
            }
            '"' if quote == '"' => return Ok((out, i + 1)),
            '\\' if quote == '"' => {
                let (_, e) = chars.next().ok_or(ScalarError::Multiline)?;
                let hex = match e {
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    _ => 0,
                };
                if hex == 0 {
                    out.push(unescape(e).ok_or_else(|| ScalarError::Escape(format!("\\{e}")))?);
                    continue;
                }
                let digits: String = (0..hex)
                    .filter_map(|_| chars.next().map(|(_, d)| d))
                    .collect();
                let c = u32::from_str_radix(&digits, 16)
                    .ok()
                    .filter(|_| digits.len() == hex)
                    .and_then(char::from_u32)
                    .ok_or_else(|| ScalarError::Escape(format!("\\{e}{digits}")))?;
                out.push(c);
            }
            c => out.push(c),
        }
    }
    Err(ScalarError::Multiline)
}

/// The character a one-character double-quoted escape (`\n`, `\"`, …) stands for.
fn unescape(e: char) -> Option<char> {
    Some(match e {
        '0' => '\0',
        'a' => '\u{7}',
        'b' => '\u{8}',
        't' | '\t' => '\t',
        'n' => '\n',
        'v' => '\u{B}',
        'f' => '\u{C}',
        'r' => '\r',
        'e' => '\u{1B}',
        ' ' | '"' | '/' | '\\' => e,
        'N' => '\u{85}',
        '_' => '\u{A0}',
        'L' => '\u{2028}',
        'P' => '\u{2029}',
        _ => return None,
    })
}

/// Byte offset just after the `:` of a `key:` line.
pub(crate) fn colon_end(text: &str, l: &Line) -> Option<usize> {
    let body = &text[l.range.start + l.key_col..l.range.end];
    let at = match body.as_bytes().first() {
        Some(q @ (b'"' | b'\'')) => body[1..].find(*q as char).map(|i| i + 2)?,
        _ => body.find(": ").unwrap_or(body.len().checked_sub(1)?),
    };
    (body.as_bytes().get(at) == Some(&b':')).then_some(l.range.start + l.key_col + at + 1)
}

/// The edit that makes the value of the `key:` line `lines[j]` read `new`, written in the style
/// of the value it replaces (see [`render`]); a `key:` without a value gets one, plain when it
/// can be. `None` when the value already reads `new`.
pub(crate) fn edit_value(
    text: &str,
    lines: &[Line],
    j: usize,
    new: &str,
) -> Result<Option<(Range<usize>, String)>, ScalarError> {
    let l = &lines[j];
    if lines[children(lines, j, l.key_col)]
        .iter()
        .any(|c| !c.blank)
    {
        return Err(ScalarError::NotAScalar);
    }
    let Some(r) = l.value.clone() else {
        // `tag:` (null): the value goes right after the colon.
        let at = colon_end(text, l).ok_or(ScalarError::NoColon)?;
        return Ok(Some((at..at, format!(" {}", render(new, Style::Plain)))));
    };
    // A quoted value's range starts after its opening quote; a plain one's after a space.
    let quote = r
        .start
        .checked_sub(1)
        .filter(|i| matches!(text.as_bytes()[*i], b'"' | b'\''));
    let Some(start) = quote else {
        let written = &text[r.clone()];
        if written.starts_with(['"', '\'']) {
            // `split_key` found no closing quote on this line.
            return Err(ScalarError::Multiline);
        }
        if written.starts_with(['{', '[', '&', '*', '!', '|', '>']) {
            return Err(ScalarError::NotPlain(written.to_string()));
        }
        return Ok((written != new).then(|| (r, render(new, Style::Plain))));
    };
    let (old, len) = read_quoted(&text[start..l.range.end])?;
    let rest = &text[start + len..l.range.end];
    let after = rest.trim_start_matches([' ', '\t']);
    // A comment needs a space before its `#`.
    let comment = after.starts_with('#') && after.len() < rest.len();
    if !after.is_empty() && !comment {
        return Err(ScalarError::AfterQuote);
    }
    let style = if text.as_bytes()[start] == b'\'' {
        Style::Single
    } else {
        Style::Double
    };
    Ok((old != new).then(|| (start..start + len, render(new, style))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_keeps_the_style_when_it_can() {
        let d = "sha256:abc";
        assert_eq!(render(d, Style::Plain), d);
        assert_eq!(render(d, Style::Single), "'sha256:abc'");
        assert_eq!(render(d, Style::Double), "\"sha256:abc\"");
        assert_eq!(render("1.10", Style::Plain), "\"1.10\"");
        assert_eq!(render("on", Style::Plain), "\"on\"");
        assert_eq!(render("it's", Style::Single), "'it''s'");
        assert_eq!(render("a\tb", Style::Single), "\"a\\tb\"");
        assert_eq!(render("a\"b\\c\n", Style::Plain), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(
            render("\u{7f}\u{2028}\u{1F600}", Style::Double),
            "\"\\x7F\\u2028\u{1F600}\""
        );
    }

    #[test]
    fn read_quoted_reads_escapes_and_finds_the_end() {
        assert_eq!(read_quoted("'a''b' # c"), Ok(("a'b".to_string(), 6)));
        assert_eq!(read_quoted("''"), Ok((String::new(), 2)));
        assert_eq!(
            read_quoted(r#""a\"b\\c\x41\u00e9\U0001F600\n" x"#),
            Ok(("a\"b\\cAé\u{1F600}\n".to_string(), 31))
        );
        assert_eq!(read_quoted("'open"), Err(ScalarError::Multiline));
        assert_eq!(read_quoted("\"a\\"), Err(ScalarError::Multiline));
        assert_eq!(
            read_quoted("\"\\q\""),
            Err(ScalarError::Escape("\\q".into()))
        );
        assert_eq!(
            read_quoted("\"\\x4\""),
            Err(ScalarError::Escape("\\x4\"".into()))
        );
    }

    #[test]
    fn every_rendering_reads_back_as_the_value() {
        for v in [
            "it's",
            "a\"b",
            "x\\y",
            "tab\there",
            "",
            " lead",
            "trail ",
            "é",
            "\u{0}",
        ] {
            for style in [Style::Plain, Style::Single, Style::Double] {
                let w = render(v, style);
                if w.starts_with(['\'', '"']) {
                    assert_eq!(read_quoted(&w), Ok((v.to_string(), w.len())), "{w}");
                } else {
                    assert_eq!(w, v);
                }
            }
        }
    }
}
