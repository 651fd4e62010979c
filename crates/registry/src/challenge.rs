//! `WWW-Authenticate` challenges (RFC 7235), as registries send them.

use std::collections::BTreeMap;

/// One authentication challenge: a scheme and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lowercased: `bearer`, `basic`, …
    pub scheme: String,
    /// Parameters with lowercased names (`realm`, `service`, `scope`, `error`…).
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// A parameter by (lowercase) name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Parse a `WWW-Authenticate` value into its challenges.
///
/// Accepts several challenges in one value (`Basic realm="x", Bearer realm="y"`), quoted strings
/// with backslash escapes and bare tokens. Returns `None` when the value holds no challenge or is
/// malformed (an unterminated quote, a parameter without a value).
pub fn parse(header: &str) -> Option<Vec<Challenge>> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        p.skip(b" \t,");
        if p.done() {
            break;
        }
        let scheme = p.token()?;
        let mut ch = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: BTreeMap::new(),
        };
        loop {
            p.skip(b" \t,");
            if p.done() {
                break;
            }
            let save = p.i;
            let name = p.token()?;
            p.skip(b" \t");
            if p.peek() != Some(b'=') {
                // A token without '=' is the scheme of the next challenge.
                p.i = save;
                break;
            }
            p.i += 1;
            p.skip(b" \t");
            let value = if p.peek() == Some(b'"') {
                p.quoted()?
            } else {
                p.token()?
            };
            ch.params.insert(name.to_ascii_lowercase(), value);
        }
        out.push(ch);
    }
    if out.is_empty() { None } else { Some(out) }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip(&mut self, set: &[u8]) {
        while self.peek().is_some_and(|b| set.contains(&b)) {
            self.i += 1;
        }
    }
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&b))
        {
            self.i += 1;
        }
        if self.i == start {
            return None;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()
            .map(str::to_string)
    }
    fn quoted(&mut self) -> Option<String> {
        self.i += 1; // opening quote
        let mut out = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return String::from_utf8(out).ok();
                }
                b'\\' => {
                    self.i += 1;
                    out.push(self.peek()?);
                    self.i += 1;
                }
                b => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn docker_hub_bearer_challenge() {
        let c = parse(r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull""#).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/ubuntu:pull"));
    }

    #[test]
    fn several_challenges_tokens_and_escapes() {
        let c = parse(r#"Basic realm="Registry Realm", Bearer realm="http://a/t", error=insufficient_scope, x="q\"uote""#).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].param("realm"), Some("Registry Realm"));
        assert_eq!(c[1].param("error"), Some("insufficient_scope"));
        assert_eq!(c[1].param("x"), Some("q\"uote"));
        let c = parse("Basic").unwrap();
        assert_eq!(c[0].scheme, "basic");
        assert!(c[0].params.is_empty());
    }

    #[test]
    fn malformed_values_are_rejected() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("   "), None);
        assert_eq!(parse(r#"Bearer realm="unterminated"#), None);
        assert_eq!(parse("Bearer realm="), None);
        assert_eq!(parse("=x"), None);
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,200}") {
            let _ = parse(&s);
        }

        #[test]
        fn generated_challenges_round_trip(
            scheme in "[A-Za-z]{1,10}",
            params in proptest::collection::btree_map("[a-z]{1,8}", "[ -~]{0,30}", 0..5),
        ) {
            let rendered: Vec<String> = params.iter().map(|(k, v)| {
                format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
            }).collect();
            let header = format!("{scheme} {}", rendered.join(", "));
            let parsed = parse(&header).unwrap();
            prop_assert_eq!(parsed.len(), 1);
            prop_assert_eq!(&parsed[0].scheme, &scheme.to_ascii_lowercase());
            prop_assert_eq!(&parsed[0].params, &params);
        }

        #[test]
        fn challenges_with_huge_values_and_many_params_round_trip(
            params in proptest::collection::btree_map(
                "[a-z]{1,8}",
                prop_oneof!["[0-9]{1,400}", "[ -~]{0,400}", "https?://[a-z]{1,10}:[0-9]{1,30}/[ -~]{0,200}"],
                0..12,
            ),
        ) {
            let rendered: Vec<String> = params.iter().map(|(k, v)| {
                format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
            }).collect();
            let header = format!("Bearer {}", rendered.join(","));
            let parsed = parse(&header).unwrap();
            prop_assert_eq!(parsed.len(), 1);
            prop_assert_eq!(&parsed[0].params, &params);
        }
    }
}
