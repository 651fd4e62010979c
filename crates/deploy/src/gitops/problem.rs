//! What went wrong in a git step ([`crate::Error::Git`], [`crate::Error::ProvenanceFetch`]):
//! the step and libgit2's own error, never a message assembled by hand.

use std::fmt;
use std::path::PathBuf;

use git2::Oid;

use crate::policy::Image;

/// Why a git step of a write-back (or of the provenance gate's fetch) failed.
#[derive(Debug)]
pub enum GitProblem {
    /// libgit2 failed (opening the clone, reading a tree, committing, walking history).
    Git(git2::Error),
    /// Connecting to the remote failed (transport, authentication).
    Unreachable(git2::Error),
    /// The remote's branches cannot be listed.
    ListBranches(git2::Error),
    /// Listing the remote's refs failed (provenance gate).
    ListRefs(git2::Error),
    /// Fetching the branch failed.
    Fetch(git2::Error),
    /// The remote names no default branch (`HEAD` cannot be resolved); libgit2's error when it
    /// gave one.
    NoDefaultBranch(Option<git2::Error>),
    /// The target revision is a commit or a tag: ferry writes only to branches.
    FixedRevision {
        /// The revision (`targetRevision`).
        revision: String,
    },
    /// The branch does not exist in the repository.
    NoSuchBranch {
        /// The branch.
        branch: String,
    },
    /// A revision is not a commit on the branch.
    NotOnBranch {
        /// The revision asked for.
        revision: String,
        /// The branch.
        branch: String,
    },
    /// The write branch's name is not a valid git branch name.
    BadBranchName {
        /// The name.
        name: String,
    },
    /// The write branch has commits the base lacks and the base has commits it lacks.
    Diverged {
        /// The base branch.
        base: String,
    },
    /// The clone cache directory cannot be created.
    CacheDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A commit id does not parse.
    BadCommitId {
        /// The id given.
        commit: String,
        /// libgit2's error.
        source: git2::Error,
    },
    /// A revert commit cannot be made.
    Unrevertable(Unrevertable),
    /// The remote refused the push and the branch had not moved.
    PushRejected(PushRefused),
    /// The remote refused the push of a revert and the branch had not moved.
    RevertPushRejected(PushRefused),
    /// Every attempt lost a race with another writer.
    KeptMoving {
        /// Attempts made.
        attempts: u32,
        /// Whether a revert was being pushed.
        reverting: bool,
    },
    /// Undoing ferry's change found nothing to undo (the files changed since).
    NothingToRestore,
}

impl fmt::Display for GitProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GitProblem::Git(e) => f.write_str(e.message()),
            GitProblem::Unreachable(e) => write!(f, "cannot reach the remote: {}", e.message()),
            GitProblem::ListBranches(e) => {
                write!(f, "cannot list the remote's branches: {}", e.message())
            }
            GitProblem::ListRefs(e) => write!(f, "listing refs: {}", e.message()),
            GitProblem::Fetch(e) => write!(f, "fetch failed: {}", e.message()),
            GitProblem::NoDefaultBranch(None) => f.write_str("the remote names no default branch"),
            GitProblem::NoDefaultBranch(Some(e)) => {
                write!(f, "the remote names no default branch: {}", e.message())
            }
            GitProblem::FixedRevision { revision } => write!(
                f,
                "targetRevision {revision:?} is a fixed commit or tag; ferry only writes to branches"
            ),
            GitProblem::NoSuchBranch { branch } => {
                write!(f, "branch {branch:?} does not exist in the repository")
            }
            GitProblem::NotOnBranch { revision, branch } => {
                write!(f, "revision {revision} is not on {branch}")
            }
            GitProblem::BadBranchName { name } => {
                write!(f, "{name:?} is not a valid branch name")
            }
            GitProblem::Diverged { base } => write!(
                f,
                "it has diverged from {base} (commits on both sides) and cannot be fast-forwarded; ferry never force-pushes: merge {base} into it or delete it"
            ),
            GitProblem::CacheDir { dir, source } => {
                write!(f, "cannot create {}: {source}", dir.display())
            }
            GitProblem::BadCommitId { commit, source } => {
                write!(f, "{commit}: {}", source.message())
            }
            GitProblem::Unrevertable(u) => write!(f, "{u}"),
            GitProblem::PushRejected(r) => write!(f, "push rejected: {r}"),
            GitProblem::RevertPushRejected(r) => write!(f, "push of the revert rejected: {r}"),
            GitProblem::KeptMoving {
                attempts,
                reverting,
            } => write!(
                f,
                "the branch kept moving; gave up {}after {attempts} attempts",
                if *reverting { "reverting " } else { "" }
            ),
            GitProblem::NothingToRestore => {
                f.write_str("nothing to restore: the files changed since")
            }
        }
    }
}

/// Why a push did not move the remote branch.
#[derive(Debug)]
pub enum PushRefused {
    /// git could not push (no remote, transport, authentication).
    Git(git2::Error),
    /// The remote refused the update; its status text.
    Rejected(String),
}

impl fmt::Display for PushRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushRefused::Git(e) => f.write_str(e.message()),
            PushRefused::Rejected(status) => f.write_str(status),
        }
    }
}

/// Why a revert commit cannot be made.
#[derive(Debug)]
pub enum Unrevertable {
    /// The commit to revert is not on the branch.
    NotFound {
        /// The commit.
        commit: Oid,
        /// libgit2's error.
        source: git2::Error,
    },
    /// The files it changed were changed since.
    Conflict {
        /// The commit.
        commit: Oid,
    },
    /// git failed.
    Git(git2::Error),
}

impl fmt::Display for Unrevertable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unrevertable::NotFound { commit, source } => write!(
                f,
                "commit {commit} not found on the branch: {}",
                source.message()
            ),
            Unrevertable::Conflict { commit } => write!(
                f,
                "cannot revert {}: the files it changed were changed since",
                ferry_core::short_hash(&commit.to_string())
            ),
            Unrevertable::Git(e) => f.write_str(e.message()),
        }
    }
}

/// A change a write-back could not place in the files ([`super::WriteBack::problems`]); the
/// others in the same commit still go in.
#[derive(Debug, Clone)]
pub enum Unplaced {
    /// The new image is not a reference.
    NotAReference {
        /// `namespace/Kind/name`.
        workload: String,
        /// The image.
        image: Image,
    },
    /// A Helm change's image lacks a tag or a digest.
    NotPinned {
        /// `namespace/Kind/name`.
        workload: String,
        /// The image.
        image: Image,
    },
    /// No manifest under the path defines the workload.
    NoManifest {
        /// `namespace/Kind/name`.
        workload: String,
        /// Its kind.
        kind: String,
        /// Its name.
        name: String,
        /// The path searched.
        under: String,
    },
    /// The values file is not in the repository.
    NoValuesFile {
        /// `namespace/Kind/name`.
        workload: String,
        /// The file.
        file: String,
    },
    /// The file cannot be edited safely at the spot (a YAML layout ferry does not edit, a
    /// missing key…).
    Edit {
        /// What is named first: the file, or the workload for a values file (whose error
        /// names the file).
        at: String,
        /// Why.
        error: std::sync::Arc<crate::Error>,
    },
}

impl fmt::Display for Unplaced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unplaced::NotAReference { workload, image } => {
                write!(f, "{workload}: {image} is not a reference")
            }
            Unplaced::NotPinned { workload, image } => write!(
                f,
                "{workload}: {image} is not a reference with a tag and a digest"
            ),
            Unplaced::NoManifest {
                workload,
                kind,
                name,
                under,
            } => write!(
                f,
                "{workload}: no manifest for {kind} {name} under {under:?}"
            ),
            Unplaced::NoValuesFile { workload, file } => {
                write!(f, "{workload}: values file {file} is not in the repository")
            }
            Unplaced::Edit { at, error } => write!(f, "{at}: {error}"),
        }
    }
}

impl serde::Serialize for Unplaced {
    /// As its text: `problems` in the JSON stays a list of strings.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_problem_reads_as_before_the_types() {
        let e = || git2::Error::from_str("boom");
        let cases = [
            (GitProblem::Git(e()), "boom"),
            (
                GitProblem::Unreachable(e()),
                "cannot reach the remote: boom",
            ),
            (GitProblem::Fetch(e()), "fetch failed: boom"),
            (
                GitProblem::NoDefaultBranch(None),
                "the remote names no default branch",
            ),
            (
                GitProblem::KeptMoving {
                    attempts: 3,
                    reverting: true,
                },
                "the branch kept moving; gave up reverting after 3 attempts",
            ),
            (
                GitProblem::KeptMoving {
                    attempts: 5,
                    reverting: false,
                },
                "the branch kept moving; gave up after 5 attempts",
            ),
            (
                GitProblem::PushRejected(PushRefused::Rejected("non-fast-forward".into())),
                "push rejected: non-fast-forward",
            ),
            (
                GitProblem::NotOnBranch {
                    revision: "abc".into(),
                    branch: "main".into(),
                },
                "revision abc is not on main",
            ),
        ];
        for (problem, text) in cases {
            assert_eq!(problem.to_string(), text);
        }
    }
}
