//! Small text helpers every ferry crate and binary shares: short commit hashes and
//! `Name <email>` identities.

use std::fmt;
use std::str::FromStr;

/// The first 12 characters of a commit id (or of any revision text), the way ferry shows
/// commits in messages. Never splits a character, so non-ASCII input is safe.
///
/// ```
/// assert_eq!(ferry_core::short_hash("0123456789abcdef0123"), "0123456789ab");
/// assert_eq!(ferry_core::short_hash("main"), "main");
/// ```
pub fn short_hash(id: &str) -> &str {
    match id.char_indices().nth(12) {
        Some((end, _)) => &id[..end],
        None => id,
    }
}

/// A git identity written `Name <email>` (the form of `git commit --author`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The name, trimmed (may be empty: `<ci@example.com>` is accepted as git accepts it).
    pub name: String,
    /// The email address between `<` and `>`, trimmed.
    pub email: String,
}

/// Why a `Name <email>` text did not parse: [`crate::Error::InvalidIdentity`].
pub type IdentityError = crate::Error;

impl FromStr for Identity {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || crate::Error::InvalidIdentity {
            input: s.to_string(),
        };
        let (name, rest) = s.split_once('<').ok_or_else(err)?;
        let email = rest.trim_end().strip_suffix('>').ok_or_else(err)?.trim();
        if email.is_empty() || email.contains(['<', '>']) || name.contains('>') {
            return Err(err());
        }
        Ok(Identity {
            name: name.trim().to_string(),
            email: email.to_string(),
        })
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            write!(f, "<{}>", self.email)
        } else {
            write!(f, "{} <{}>", self.name, self.email)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn identities_parse_and_name_the_input_when_they_do_not() {
        let id: Identity = " ferry bot  < bot@example.com > ".parse().unwrap();
        assert_eq!(id.name, "ferry bot");
        assert_eq!(id.email, "bot@example.com");
        assert_eq!(id.to_string(), "ferry bot <bot@example.com>");
        for bad in ["ferry bot", "a <b", "a <>", "a <b> c", "a <b<c>", "a> <b>"] {
            let e = bad.parse::<Identity>().unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn short_hashes_are_twelve_characters_or_the_whole_text() {
        assert_eq!(short_hash("abcdef0123456789"), "abcdef012345");
        assert_eq!(short_hash(""), "");
        assert_eq!(short_hash("ééééééééééééé"), "éééééééééééé");
    }

    proptest! {
        #[test]
        fn short_hash_is_a_char_safe_prefix_of_at_most_twelve_chars(s in "\\PC{0,30}") {
            let h = short_hash(&s);
            prop_assert!(s.starts_with(h));
            prop_assert_eq!(h.chars().count(), s.chars().count().min(12));
        }

        #[test]
        fn a_displayed_identity_parses_back_to_itself(name in "[^<>]{0,20}", email in "[^<>\\s]{1,20}") {
            let id = Identity { name: name.trim().to_string(), email };
            prop_assert_eq!(id.to_string().parse::<Identity>().unwrap(), id);
        }

        #[test]
        fn identity_parsing_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<Identity>();
        }
    }
}
