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
        reason: String,
    },
    /// The digest is not `algorithm:hex` with a supported algorithm and exact lowercase hex.
    #[error("invalid digest {input:?}: {reason}")]
    InvalidDigest {
        /// The text that was parsed.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A git identity is not `Name <email>`.
    #[error("{input:?}: expected \"Name <email>\"")]
    InvalidIdentity {
        /// The text that was parsed.
        input: String,
    },
    /// The platform is not `os/arch[/variant]`.
    #[error("invalid platform {input:?}: {reason}")]
    InvalidPlatform {
        /// The text that was parsed.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
