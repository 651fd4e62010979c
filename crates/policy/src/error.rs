//! The error type of `ferry-policy`.

/// What makes an annotation unusable for a caller that asks for a `Result` (a decision never
/// fails: it carries a [`crate::Reason`] instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A ferry annotation on a workload is malformed.
    #[error("{namespace}/{kind}/{name}: annotation {annotation}: {problem}")]
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
        problem: AnnotationProblem,
    },
    /// A regular expression in a tag annotation (`ferry.dev/policy`, `ferry.dev/tag-ignore`) is
    /// unusable: it does not compile, is too large, or (`numerical:`) lacks exactly one group.
    #[error("annotation {annotation}: regex {pattern:?}: {problem}")]
    TagPattern {
        /// The annotation key.
        annotation: String,
        /// The pattern as written.
        pattern: String,
        /// What is wrong.
        problem: PatternProblem,
    },
}

/// What is wrong with an annotation's value ([`Error::Annotation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnnotationProblem {
    /// `ferry.dev/approve` holds something other than `manual`.
    NotAMode {
        /// The value given.
        value: String,
    },
}

impl std::fmt::Display for AnnotationProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnnotationProblem::NotAMode { value } => {
                write!(f, "{value:?} is not a mode: the only value is \"manual\"")
            }
        }
    }
}

/// What is wrong with a tag pattern ([`Error::TagPattern`]).
#[derive(Debug, Clone, PartialEq)]
pub enum PatternProblem {
    /// The regex is empty.
    Empty,
    /// The regex is longer than ferry accepts.
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The most accepted.
        max: usize,
    },
    /// The regex does not compile, or is too large.
    Regex(regex::Error),
    /// The semver range does not parse.
    Semver(ferry_core::Shared<semver::Error>),
    /// `numerical:` needs exactly one capture group.
    Groups {
        /// The groups the regex has.
        found: usize,
    },
}

// `regex::Error` is `PartialEq` only; its equality is total all the same.
impl Eq for PatternProblem {}

impl std::fmt::Display for PatternProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PatternProblem::Empty => f.write_str("empty regex"),
            PatternProblem::TooLong { len, max } => {
                write!(f, "{len} bytes long; at most {max} are accepted")
            }
            // regex's messages span lines (the pattern, a caret): one line here.
            PatternProblem::Regex(e) => {
                let text = e.to_string();
                let lines: Vec<&str> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                f.write_str(&lines.join(" "))
            }
            PatternProblem::Semver(e) => write!(f, "invalid semver range: {e}"),
            PatternProblem::Groups { found } => write!(
                f,
                "numerical needs exactly one capture group (the number, as in ^build-(\\d+)$); this regex has {found}"
            ),
        }
    }
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl ferry_core::exit::Classify for Error {
    fn exit_code(&self) -> u8 {
        ferry_core::exit::NEGATIVE
    }
}
