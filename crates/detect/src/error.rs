//! The error type of `ferry-detect`.

use std::path::PathBuf;

/// Everything that can go wrong while detecting what to rebuild.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Dockerfile could not be parsed.
    #[error("{file}:{line}: {problem}")]
    Dockerfile {
        /// Repository-relative path.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        problem: crate::dockerfile::Problem,
    },
    /// An ignore file holds a malformed pattern.
    #[error("{file}:{line}: invalid pattern {pattern:?}: {reason}")]
    Ignore {
        /// Repository-relative path.
        file: String,
        /// 1-based line.
        line: usize,
        /// The pattern.
        pattern: String,
        /// What is wrong.
        reason: crate::ignore::GlobError,
    },
    /// `ferry.toml` is malformed or inconsistent.
    #[error("{file}: {message}")]
    Config {
        /// Repository-relative path.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// No git repository at `path` (absolute) or any directory above it.
    #[error("no git repository at {} or any parent directory", path.display())]
    NotARepository {
        /// The directory searched from, made absolute.
        path: PathBuf,
    },
    /// A git operation failed.
    #[error("git ({path}): {message}")]
    Git {
        /// The repository path.
        path: PathBuf,
        /// libgit2's or git's message.
        message: String,
    },
    /// In-repo images depend on each other in a cycle.
    #[error("dependency cycle between images: {}", cycle.join(" -> "))]
    Cycle {
        /// The image names around the cycle (first repeated at the end).
        cycle: Vec<String>,
    },
    /// An image name that does not exist.
    #[error("no image named {name:?} (known: {known})")]
    UnknownImage {
        /// The name asked for.
        name: String,
        /// Known names, comma-separated.
        known: String,
    },
    /// A revision that does not exist.
    #[error("revision {rev:?} not found in the repository")]
    UnknownRevision {
        /// The revision as given.
        rev: String,
    },
    /// A revision that names a commit whose objects are not in this clone.
    #[error(
        "revision {rev:?} names a commit that is not in this clone (shallow clone or pruned history)"
    )]
    MissingRevision {
        /// The revision as given.
        rev: String,
    },
    /// A path that cannot name a file of the repository (outside it, or its root).
    #[error("path {path:?}: {message}")]
    Path {
        /// The path as given.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A CI event payload could not be read.
    #[error("event file {file}: {message}")]
    Event {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    /// Whether this is bad input (a file ferry cannot read correctly, an unknown name) rather
    /// than an operational failure.
    pub fn is_bad_input(&self) -> bool {
        !matches!(
            self,
            Error::Git { .. } | Error::NotARepository { .. } | Error::Io { .. }
        )
    }
}

impl ferry_core::exit::Classify for Error {
    /// Exit 1 for bad input (unparseable files, unknown names, cycles), 3 for git and IO trouble.
    fn exit_code(&self) -> u8 {
        if self.is_bad_input() {
            ferry_core::exit::NEGATIVE
        } else {
            ferry_core::exit::OPERATIONAL
        }
    }
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
