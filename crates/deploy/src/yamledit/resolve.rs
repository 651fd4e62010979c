//! What a plain scalar reads as: the implicit types of YAML 1.1 (as go-yaml v2/v3 — and so
//! kustomize, Helm and Argo CD — and PyYAML resolve them) and of YAML 1.2's core schema. A value
//! is written plain only when both read it back as a string ([`plain_ok`]).

use regex::Regex;
use std::sync::LazyLock;

/// A non-string type a plain scalar can resolve to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Implicit {
    Null,
    Bool,
    Int,
    Float,
    Timestamp,
    /// `<<` (merge key) or `=` (the 1.1 value key): not a plain string either.
    Special,
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("static regex")
}

/// YAML 1.1 ints and floats in PyYAML's spelling of the 1.1 type repository (underscores,
/// `0b`, `0`-octal, `0x`, sexagesimal `190:20:30` and `190:20:30.15`). The repository's literal
/// float pattern `[0-9.]*` would make `1.2.3` a float; no 1.1 implementation reads it so, and
/// neither does go-yaml, so it is not followed.
static INT_11: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"^[-+]?(?:0b[01_]+|0[0-7_]+|0|[1-9][0-9_]*|0x[0-9a-fA-F_]+",
        r"|[1-9][0-9_]*(?::[0-5]?[0-9])+)$"
    ))
});
static FLOAT_11: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?",
        r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*",
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ))
});
/// go-yaml's numbers: for a scalar starting with a digit or sign, underscores are dropped and
/// Go's `ParseInt(s, 0, 64)` (`0x`, `0o`, `0b`, `0`-octal) or, failing that, its float pattern
/// decides (an all-digit overflow or `089` falls through to a float); `.5`-style scalars go to
/// `ParseFloat`.
static INT_GO: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^[-+]?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$")
});
static FLOAT_GO: LazyLock<Regex> =
    LazyLock::new(|| re(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$"));
/// Dates and times: the 1.1 timestamp forms and go-yaml's `2006-1-2[T 15:4:5[.9][Z07:00]]`.
static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}",
        r"(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]*)?",
        r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::?[0-9]{2})?))?)?$"
    ))
});
/// YAML 1.2 core schema numbers.
static INT_12: LazyLock<Regex> = LazyLock::new(|| re(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"));
static FLOAT_12: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?",
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ))
});

/// What YAML 1.1 (go-yaml v2/v3 and the 1.1 type repository, whichever is stricter) reads the
/// plain scalar `s` as: `None` for a string.
pub(crate) fn yaml11(s: &str) -> Option<Implicit> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Implicit::Null),
        "y" | "Y" | "yes" | "Yes" | "YES" | "n" | "N" | "no" | "No" | "NO" | "true" | "True"
        | "TRUE" | "false" | "False" | "FALSE" | "on" | "On" | "ON" | "off" | "Off" | "OFF" => {
            return Some(Implicit::Bool);
        }
        "<<" | "=" => return Some(Implicit::Special),
        _ => {}
    }
    if TIMESTAMP.is_match(s) {
        return Some(Implicit::Timestamp);
    }
    if INT_11.is_match(s) {
        return Some(Implicit::Int);
    }
    if FLOAT_11.is_match(s) {
        return Some(Implicit::Float);
    }
    // go-yaml only tries numbers for scalars that start with a sign, a digit or a dot.
    if s.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '.')) {
        let bare = if s.starts_with('.') {
            s.to_string()
        } else {
            s.replace('_', "")
        };
        if INT_GO.is_match(&bare) {
            return Some(Implicit::Int);
        }
        if FLOAT_GO.is_match(&bare) {
            return Some(Implicit::Float);
        }
    }
    None
}

/// What the YAML 1.2 core schema reads the plain scalar `s` as: `None` for a string.
pub(crate) fn yaml12(s: &str) -> Option<Implicit> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => Some(Implicit::Null),
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => Some(Implicit::Bool),
        // yaml-rust2 reads `0x-1` and `0o+7` as ints (Rust's `from_str_radix` takes a sign):
        // not the core schema, but a 1.2 reader ferry's tests use.
        _ if INT_12.is_match(s) || radix_int(s) => Some(Implicit::Int),
        _ if FLOAT_12.is_match(s) => Some(Implicit::Float),
        _ => None,
    }
}

fn radix_int(s: &str) -> bool {
    let (digits, radix) = if let Some(d) = s.strip_prefix("0x") {
        (d, 16)
    } else if let Some(d) = s.strip_prefix("0o") {
        (d, 8)
    } else {
        return false;
    };
    i64::from_str_radix(digits, radix).is_ok()
}

/// Whether a character may stand in a plain scalar on one line: printable, not a tab or a line
/// break (YAML 1.1 also breaks lines at U+0085, U+2028 and U+2029), not a byte-order mark.
pub(crate) fn plain_char(c: char) -> bool {
    (' '..='~').contains(&c)
        || (c >= '\u{A0}'
            && !matches!(
                c,
                '\u{2028}' | '\u{2029}' | '\u{FEFF}' | '\u{FFFE}' | '\u{FFFF}'
            ))
}

/// Whether `s`, written plain as a block mapping value (`key: s`), reads back as the string `s`
/// under YAML 1.1 and 1.2: no leading indicator, no leading or trailing space, no `: ` or ` #`
/// inside, no trailing `:`, and neither version resolves it to another type.
pub(crate) fn plain_ok(s: &str) -> bool {
    const INDICATORS: &[char] = &[
        '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@',
        '`', ' ',
    ];
    !s.is_empty()
        && !s.starts_with(INDICATORS)
        && !s.ends_with([' ', ':'])
        && s.chars().all(plain_char)
        && !s.contains(": ")
        && !s.contains(" #")
        && yaml11(s).is_none()
        && yaml12(s).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Implicit::*;

    #[test]
    fn yaml11_reads_the_implicit_types() {
        let cases: &[(&str, Option<Implicit>)] = &[
            ("y", Some(Bool)),
            ("Yes", Some(Bool)),
            ("NO", Some(Bool)),
            ("on", Some(Bool)),
            ("Off", Some(Bool)),
            ("TRUE", Some(Bool)),
            ("yEs", None),
            ("oN", None),
            ("~", Some(Null)),
            ("", Some(Null)),
            ("Null", Some(Null)),
            ("nULL", None),
            ("0x1F", Some(Int)),
            ("0x_1F", Some(Int)),
            ("0X1F", Some(Int)),
            ("0o17", Some(Int)),
            ("017", Some(Int)),
            ("089", Some(Float)),
            ("0b1010", Some(Int)),
            ("-0b1_0", Some(Int)),
            ("1_000", Some(Int)),
            ("+12", Some(Int)),
            ("190:20:30", Some(Int)),
            ("99999999999999999999999", Some(Int)),
            ("1.5", Some(Float)),
            ("1.", Some(Float)),
            (".5", Some(Float)),
            ("1_000.5", Some(Float)),
            ("1e5", Some(Float)),
            ("6.8523015e+5", Some(Float)),
            ("190:20:30.15", Some(Float)),
            (".inf", Some(Float)),
            ("-.Inf", Some(Float)),
            (".NaN", Some(Float)),
            ("2001-12-14", Some(Timestamp)),
            ("2001-12-14t21:59:43.10-05:00", Some(Timestamp)),
            ("2001-12-14 21:59:43.10 -5", Some(Timestamp)),
            ("2001-1-2", Some(Timestamp)),
            ("<<", Some(Special)),
            ("=", Some(Special)),
            // Strings.
            ("1.2.3", None),
            ("v1.0", None),
            ("1.0-rc1", None),
            ("2001-12-14-abc", None),
            ("sha256:abc", None),
            ("1:2", Some(Int)),
            ("1:60", None),
            ("a1:2", None),
            ("0x", None),
            ("0xG", None),
            ("_1", None),
            (".", None),
            ("inf", None),
            ("nan", None),
            ("yes!", None),
            ("latest", None),
        ];
        for (s, want) in cases {
            assert_eq!(yaml11(s), *want, "{s:?}");
        }
    }

    #[test]
    fn yaml12_reads_the_core_schema() {
        let cases: &[(&str, Option<Implicit>)] = &[
            ("true", Some(Bool)),
            ("yes", None),
            ("on", None),
            ("~", Some(Null)),
            ("0x1F", Some(Int)),
            ("0o17", Some(Int)),
            ("0x-1", Some(Int)),
            ("017", Some(Int)),
            ("1_000", None),
            ("0b101", None),
            ("1e5", Some(Float)),
            ("-.inf", Some(Float)),
            ("190:20:30", None),
            ("2001-12-14", None),
            ("0xZ", None),
        ];
        for (s, want) in cases {
            assert_eq!(yaml12(s), *want, "{s:?}");
        }
    }

    #[test]
    fn plain_only_when_both_versions_read_a_string() {
        for s in [
            "sha256:abc",
            "ghcr.io/acme/app:1.0@sha256:ab",
            "repo:tag@sha256:ab",
            "a b",
            "1.2.3",
            "v1",
            "x#y",
            "a:b:c",
            "a,b",
            "a[0]",
            "ünïcode",
            "a@b",
            "~a",
        ] {
            assert!(plain_ok(s), "{s:?} may be plain");
        }
        for s in [
            "",
            "on",
            "yes",
            "y",
            "0x1F",
            "1_000",
            "~",
            "null",
            "1.10",
            "2",
            "2001-12-14",
            "190:20:30",
            "- a",
            "-a",
            "?a",
            ":a",
            ",a",
            "[a",
            "]a",
            "{a",
            "}a",
            "#a",
            "&a",
            "*a",
            "!a",
            "|a",
            ">a",
            "'a",
            "\"a",
            "%a",
            "@a",
            "`a",
            " a",
            "a ",
            "a #b",
            "a: b",
            "a:",
            "a\tb",
            "a\nb",
            "a\u{85}b",
            "a\u{2028}b",
            "\u{FEFF}a",
            "a\u{7f}",
            "<<",
            "=",
            ".inf",
            "true",
            "False",
        ] {
            assert!(!plain_ok(s), "{s:?} must be quoted");
        }
    }
}
