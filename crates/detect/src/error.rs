//! The error type of `ferry-detect`.

use std::path::PathBuf;

use crate::ignore::PatternError;

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
    #[error("{file}: {problem}")]
    Config {
        /// Repository-relative path.
        file: String,
        /// What is wrong.
        problem: ConfigProblem,
    },
    /// No git repository at `path` (absolute) or any directory above it.
    #[error("no git repository at {} or any parent directory", path.display())]
    NotARepository {
        /// The directory searched from, made absolute.
        path: PathBuf,
    },
    /// A git operation failed.
    #[error("git ({path}): {problem}")]
    Git {
        /// The repository path.
        path: PathBuf,
        /// What failed: libgit2's error, or the `git` command's.
        problem: GitProblem,
    },
    /// In-repo images depend on each other in a cycle.
    #[error("dependency cycle between images: {}", cycle.join(" -> "))]
    Cycle {
        /// The image names around the cycle (first repeated at the end).
        cycle: Vec<String>,
    },
    /// An image name that does not exist.
    #[error("no image named {name:?} (known: {})", known.join(", "))]
    UnknownImage {
        /// The name asked for.
        name: String,
        /// The names of the images there are.
        known: Vec<String>,
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
    #[error("path {path:?}: {problem}")]
    Path {
        /// The path as given.
        path: String,
        /// What is wrong.
        problem: PathProblem,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A CI event payload could not be read.
    #[error("event file {file}: {problem}")]
    Event {
        /// The file.
        file: String,
        /// What is wrong.
        problem: EventProblem,
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

/// What is wrong with `ferry.toml`.
#[derive(Debug)]
pub enum ConfigProblem {
    /// The file is not UTF-8.
    NotUtf8,
    /// The file is not valid TOML, or not `ferry.toml`'s shape (boxed: the parser's error is
    /// large).
    Toml(Box<toml::de::Error>),
    /// A top-level `exclude` pattern is malformed.
    Exclude(PatternError),
    /// An `[images."name"]` entry is wrong.
    Image {
        /// The image name (the table's key).
        name: String,
        /// What is wrong with it.
        problem: ImageProblem,
    },
    /// An image's `extra_inputs` pattern is malformed (found when loading the image).
    ExtraInputs {
        /// The image name.
        image: String,
        /// The malformed pattern.
        error: PatternError,
    },
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigProblem::NotUtf8 => f.write_str("not UTF-8"),
            ConfigProblem::Toml(e) => f.write_str(e.to_string().trim()),
            ConfigProblem::Exclude(e) => write!(f, "exclude: {e}"),
            ConfigProblem::Image { name, problem } => write!(f, "[images.{name:?}]: {problem}"),
            ConfigProblem::ExtraInputs { image, error } => {
                write!(f, "[images.{image:?}] extra_inputs: {error}")
            }
        }
    }
}

/// What is wrong with one `[images."name"]` entry of `ferry.toml`.
#[derive(Debug)]
pub enum ImageProblem {
    /// A new image (no Dockerfile discovered under its name) without `dockerfile`.
    DockerfileRequired,
    /// `dockerfile` or `context` leaves the repository.
    OutsideRepository,
    /// `repository` is not an image reference.
    Repository(Box<ferry_core::Error>),
    /// An entry of `platforms` is not a platform.
    Platform(Box<ferry_core::Error>),
    /// An `extra_inputs` pattern is malformed.
    ExtraInputs(PatternError),
    /// The Dockerfile it names is not in the repository.
    NoDockerfile {
        /// The Dockerfile path (repository-relative).
        dockerfile: String,
    },
}

impl std::fmt::Display for ImageProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageProblem::DockerfileRequired => f.write_str(
                "no Dockerfile was discovered under this name, so `dockerfile` is required",
            ),
            ImageProblem::OutsideRepository => f.write_str("paths must stay inside the repository"),
            ImageProblem::Repository(e) => write!(f, "repository: {e}"),
            ImageProblem::Platform(e) => write!(f, "platforms: {e}"),
            ImageProblem::ExtraInputs(e) => write!(f, "extra_inputs: {e}"),
            ImageProblem::NoDockerfile { dockerfile } => {
                write!(f, "dockerfile {dockerfile:?} does not exist")
            }
        }
    }
}

/// What failed in a git operation.
#[derive(Debug)]
pub enum GitProblem {
    /// libgit2 failed (said with its message only, without class and code).
    Libgit2(git2::Error),
    /// A blob missing from a partial clone, and the `git` command could not be run to fetch it.
    CannotRunGit {
        /// The blob.
        blob: git2::Oid,
        /// Why `git` could not be run.
        error: std::io::Error,
    },
    /// A blob missing from a partial clone that `git cat-file` could not fetch.
    BlobNotFetched {
        /// The blob.
        blob: git2::Oid,
        /// What `git` wrote on its standard error (trimmed).
        stderr: String,
    },
    /// No identity to commit as (neither given nor configured).
    NoAuthor(git2::Error),
}

impl std::fmt::Display for GitProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GitProblem::Libgit2(e) => f.write_str(e.message()),
            GitProblem::CannotRunGit { blob, error } => write!(
                f,
                "blob {blob} is not in the clone and `git` could not be run to fetch it: {error}"
            ),
            GitProblem::BlobNotFetched { blob, stderr } => write!(
                f,
                "blob {blob} is missing (partial clone?) and could not be fetched: {stderr}"
            ),
            GitProblem::NoAuthor(e) => write!(
                f,
                "no commit author: {} (set user.name and user.email, or pass an author)",
                e.message()
            ),
        }
    }
}

/// Why a path given on a command line cannot name a file of the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    /// It is absolute, or climbs out of the repository with `..`.
    OutsideRepository,
    /// It names the repository's root directory.
    RepositoryRoot,
}

impl std::fmt::Display for PathProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PathProblem::OutsideRepository => "outside the repository",
            PathProblem::RepositoryRoot => "names the repository root, not a file",
        })
    }
}

/// What is wrong with a CI event payload.
#[derive(Debug)]
pub enum EventProblem {
    /// The payload is not JSON.
    NotJson(serde_json::Error),
    /// A `pull_request` event without `base.sha`.
    PullRequestWithoutBase,
    /// A `merge_group` event without `base_sha` and `head_sha`.
    MergeGroupWithoutShas,
}

impl std::fmt::Display for EventProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventProblem::NotJson(e) => write!(f, "not JSON: {e}"),
            EventProblem::PullRequestWithoutBase => f.write_str("pull_request without base.sha"),
            EventProblem::MergeGroupWithoutShas => {
                f.write_str("merge_group without base_sha and head_sha")
            }
        }
    }
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ignore::IgnoreRules;

    fn pattern_error() -> PatternError {
        match IgnoreRules::from_patterns(&["a\\"]) {
            Err(e) => e,
            Ok(_) => panic!("a trailing backslash is malformed"),
        }
    }

    #[test]
    fn each_config_problem_reads_as_before_the_types() {
        let toml_error = toml::from_str::<toml::Value>("a = ").unwrap_err();
        let toml_text = toml_error.to_string().trim().to_string();
        assert!(toml_text.starts_with("TOML parse error"), "{toml_text}");
        let bad_ref = ferry_core::Reference::parse("not a reference").unwrap_err();
        let bad_platform = ferry_core::Platform::parse("").unwrap_err();
        let image = |problem| ConfigProblem::Image {
            name: "app".into(),
            problem,
        };
        let cases = [
            (ConfigProblem::NotUtf8, "not UTF-8".to_string()),
            (ConfigProblem::Toml(Box::new(toml_error)), toml_text),
            (
                ConfigProblem::Exclude(pattern_error()),
                "exclude: invalid pattern \"a\\\\\": trailing backslash".into(),
            ),
            (
                image(ImageProblem::DockerfileRequired),
                "[images.\"app\"]: no Dockerfile was discovered under this name, so `dockerfile` \
                 is required"
                    .into(),
            ),
            (
                image(ImageProblem::OutsideRepository),
                "[images.\"app\"]: paths must stay inside the repository".into(),
            ),
            (
                image(ImageProblem::Repository(Box::new(bad_ref.clone()))),
                format!("[images.\"app\"]: repository: {bad_ref}"),
            ),
            (
                image(ImageProblem::Platform(Box::new(bad_platform.clone()))),
                format!("[images.\"app\"]: platforms: {bad_platform}"),
            ),
            (
                image(ImageProblem::ExtraInputs(pattern_error())),
                "[images.\"app\"]: extra_inputs: invalid pattern \"a\\\\\": trailing backslash"
                    .into(),
            ),
            (
                image(ImageProblem::NoDockerfile {
                    dockerfile: "app/Dockerfile".into(),
                }),
                "[images.\"app\"]: dockerfile \"app/Dockerfile\" does not exist".into(),
            ),
            (
                ConfigProblem::ExtraInputs {
                    image: "app".into(),
                    error: pattern_error(),
                },
                "[images.\"app\"] extra_inputs: invalid pattern \"a\\\\\": trailing backslash"
                    .into(),
            ),
        ];
        for (problem, text) in cases {
            assert_eq!(problem.to_string(), text);
        }
        let e = Error::Config {
            file: "ferry.toml".into(),
            problem: ConfigProblem::NotUtf8,
        };
        assert_eq!(e.to_string(), "ferry.toml: not UTF-8");
    }

    #[test]
    fn each_git_problem_reads_as_before_the_types() {
        let blob = git2::Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap();
        let cases = [
            (GitProblem::Libgit2(git2::Error::from_str("boom")), "boom"),
            (
                GitProblem::CannotRunGit {
                    blob,
                    error: std::io::Error::other("no such file"),
                },
                "blob 0123456789abcdef0123456789abcdef01234567 is not in the clone and `git` could \
                 not be run to fetch it: no such file",
            ),
            (
                GitProblem::BlobNotFetched {
                    blob,
                    stderr: "fatal: no promisor".into(),
                },
                "blob 0123456789abcdef0123456789abcdef01234567 is missing (partial clone?) and \
                 could not be fetched: fatal: no promisor",
            ),
            (
                GitProblem::NoAuthor(git2::Error::from_str(
                    "config value 'user.name' was not found",
                )),
                "no commit author: config value 'user.name' was not found (set user.name and \
                 user.email, or pass an author)",
            ),
        ];
        for (problem, text) in cases {
            assert_eq!(problem.to_string(), text);
        }
        let e = Error::Git {
            path: "/repo".into(),
            problem: GitProblem::Libgit2(git2::Error::from_str("boom")),
        };
        assert_eq!(e.to_string(), "git (/repo): boom");
    }

    #[test]
    fn each_path_problem_reads_as_before_the_types() {
        let cases = [
            (PathProblem::OutsideRepository, "outside the repository"),
            (
                PathProblem::RepositoryRoot,
                "names the repository root, not a file",
            ),
        ];
        for (problem, text) in cases {
            assert_eq!(problem.to_string(), text);
        }
        let e = Error::Path {
            path: "../x".into(),
            problem: PathProblem::OutsideRepository,
        };
        assert_eq!(e.to_string(), "path \"../x\": outside the repository");
    }

    #[test]
    fn each_event_problem_reads_as_before_the_types() {
        let json = serde_json::from_slice::<serde_json::Value>(b"{").unwrap_err();
        let json_text = format!("not JSON: {json}");
        let cases = [
            (EventProblem::NotJson(json), json_text),
            (
                EventProblem::PullRequestWithoutBase,
                "pull_request without base.sha".into(),
            ),
            (
                EventProblem::MergeGroupWithoutShas,
                "merge_group without base_sha and head_sha".into(),
            ),
        ];
        for (problem, text) in cases {
            assert_eq!(problem.to_string(), text);
        }
        let e = Error::Event {
            file: "event.json".into(),
            problem: EventProblem::PullRequestWithoutBase,
        };
        assert_eq!(
            e.to_string(),
            "event file event.json: pull_request without base.sha"
        );
    }

    #[test]
    fn an_io_error_reads_as_its_source() {
        let e = Error::Io {
            path: "/tmp/x".into(),
            source: std::io::Error::other("disk full"),
        };
        assert_eq!(e.to_string(), "/tmp/x: disk full");
        assert!(std::error::Error::source(&e).is_some());
    }
}
