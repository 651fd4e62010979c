//! The error type of `ferry-policy`.

/// What makes an annotation unusable for a caller that asks for a `Result` (a decision never
/// fails: it carries a [`crate::Reason`] instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A ferry annotation on a workload is malformed.
    #[error("{namespace}/{kind}/{name}: annotation {annotation}: {message}")]
    Annotation {
        /// Namespace.
        namespace: String,
        /// Workload kind.
        kind: String,
        /// Workload name.
        name: String,
        /// The annotation key.
        annotation: String,
        /// What is wrong.
        message: String,
    },
    /// A regular expression in a tag annotation (`ferry.dev/policy`, `ferry.dev/tag-ignore`) is
    /// unusable: it does not compile, is too large, or (`numerical:`) lacks exactly one group.
    #[error("annotation {annotation}: regex {pattern:?}: {message}")]
    TagPattern {
        /// The annotation key.
        annotation: String,
        /// The pattern as written.
        pattern: String,
        /// What is wrong.
        message: String,
    },
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl ferry_core::exit::Classify for Error {
    fn exit_code(&self) -> u8 {
        ferry_core::exit::NEGATIVE
    }
}
