//! The error type of `ferry-core`.

/// Everything that can go wrong while parsing ferry's shared value types.
///
/// Each variant carries the offending input so that a message can name it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The image reference does not follow the distribution reference grammar.
    #[error("invalid reference {input:?}: {reason}")]
    InvalidReference {
        /// The text that was parsed.
        input: String,
        /// What is wrong with it, in the words distribution/reference uses.
        reason: crate::reference::ReferenceProblem,
    },
    /// The digest is not `algorithm:hex` with a supported algorithm and exact lowercase hex.
    #[error("invalid digest {input:?}: {reason}")]
    InvalidDigest {
        /// The text that was parsed.
        input: String,
        /// What is wrong with it.
        reason: crate::digest::DigestProblem,
    },
    /// A git identity is not `Name <email>`.
    #[error("{input:?}: expected \"Name <email>\"")]
    InvalidIdentity {
        /// The text that was parsed.
        input: String,
    },
    /// A duration is not a whole number with an optional unit (`72h`, `3d`, `90`).
    #[error("{input:?}: {problem}")]
    InvalidDuration {
        /// The text that was parsed (trimmed).
        input: String,
        /// What is wrong with it.
        problem: crate::duration::DurationProblem,
    },
    /// The platform is not `os/arch[/variant]`.
    #[error("invalid platform {input:?}: {reason}")]
    InvalidPlatform {
        /// The text that was parsed.
        input: String,
        /// What is wrong with it.
        reason: crate::platform::PlatformProblem,
    },
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use crate::{Digest, Platform, Reference};

    fn msg<T: std::fmt::Debug>(r: crate::Result<T>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn typed_problems_read_as_the_messages_people_see() {
        let hex64 = "a".repeat(64);
        let cases = [
            (msg(Reference::parse(&hex64)), format!("invalid reference {hex64:?}: a 64-character hexadecimal string is an image id, not a repository name")),
            (msg(Reference::parse("Acme/App:1")), r#"invalid reference "Acme/App:1": repository name (App) must be lowercase"#.to_string()),
            (msg(Reference::parse("")), r#"invalid reference "": repository name must have at least one component"#.to_string()),
            (msg(Reference::parse("a b")), r#"invalid reference "a b": invalid reference format"#.to_string()),
            (msg(Reference::parse(&format!("{}:1", "a".repeat(300)))), format!("invalid reference {:?}: repository name must not be more than 255 characters", format!("{}:1", "a".repeat(300)))),
            (msg(Reference::parse(&format!("a@sha256:{}", "1".repeat(40)))), format!("invalid reference \"a@sha256:{}\": digest: sha256 needs 64 hex characters, got 40", "1".repeat(40))),
            (msg(Digest::parse("abc")), r#"invalid digest "abc": expected algorithm:hex"#.to_string()),
            (msg(Digest::parse(":abc")), r#"invalid digest ":abc": empty algorithm"#.to_string()),
            (msg(Digest::parse("md5:abc")), r#"invalid digest "md5:abc": unsupported algorithm (sha256, sha384, sha512 are)"#.to_string()),
            (msg(Digest::parse(&format!("sha256:{}", "A".repeat(64)))), format!("invalid digest \"sha256:{}\": hex part must be lowercase 0-9a-f", "A".repeat(64))),
            (msg(Platform::parse("linux")), r#"invalid platform "linux": expected os/arch or os/arch/variant"#.to_string()),
            (msg(Platform::parse("linux//")), r#"invalid platform "linux//": empty component"#.to_string()),
            (msg(Platform::parse("linux/a b")), r#"invalid platform "linux/a b": components may only hold letters, digits, '_', '-', '.'"#.to_string()),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }
}
