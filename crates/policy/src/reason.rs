//! Why a decision is what it is, as data; rendered to the same text `plan` always showed.

use std::fmt;

use ferry_core::Digest;
use ferry_core::duration::human;

use super::{
    CONTAINERS, GIT_REPO, MIN_AGE, PolicyError, REQUIRE_REVISION_ON, RETAG, RUNNING_TAG, SIGNED_BY,
    SOURCE_REPO,
};

/// A shell failure as a [`Reason`] carries it: the shell's typed error itself (shared, not
/// its text, its type erased: the core does not know the shell's errors), rendered only at the
/// edge. Two are equal when they are the same failure or read the same.
pub type Failure = ferry_core::Shared<dyn std::error::Error + Send + Sync>;

/// Why a git update cannot be written ([`Reason::GitWriteBack`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotWritten {
    /// The policy core found no route to git.
    Route(crate::route::NoRoute),
    /// The shell, looking at the branch tip, refused to place it (no manifest names the image,
    /// a later values file overrides the key, a revert quarantined the digest…).
    Placement(crate::route::Refusal),
}

impl fmt::Display for NotWritten {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotWritten::Route(why) => write!(f, "{why}"),
            NotWritten::Placement(why) => write!(f, "{why}"),
        }
    }
}

/// The reason of a [`super::Decision`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// No `ferry.dev/policy`.
    NotOptedIn,
    /// `ferry.dev/policy: off`.
    PolicyOff,
    /// The annotations cannot be acted on.
    Policy(PolicyError),
    /// The container is not named in `ferry.dev/containers`.
    NotNamed,
    /// The image as written does not parse.
    BadImage(ferry_core::Error),
    /// semver: the current tag is not a version.
    NotSemver(String),
    /// A tag strategy: listing tags failed.
    TagsFailed(crate::Failure),
    /// A tag strategy: tags were not listed (nothing asked).
    TagsNotListed,
    /// semver: the best tag in range is older than the running one.
    NeverDowngrade {
        /// Best tag in range.
        best: String,
        /// Running tag.
        running: String,
    },
    /// semver: no tag satisfies the range.
    NoTagInRange(String),
    /// The registry failed (or the rate gate held it back).
    Registry(crate::Failure),
    /// The tag was not resolved (nothing asked): its `name:tag`.
    NotResolved(ferry_core::Reference),
    /// `promote-from` cannot offer anything, and why.
    PromoteFrom(crate::promote::BetaProblem),
    /// No baseline digest; this one was recorded.
    BaselineRecorded(Digest),
    /// The pods run the target already (image without a digest).
    RunsAlready(Digest),
    /// The template already holds the target.
    AtTarget,
    /// The digest was rolled back before.
    Quarantined(Digest),
    /// The new image lacks required platforms.
    LacksPlatforms(Digest, Vec<String>),
    /// The new image's platforms were not inspected (nothing asked).
    NotInspected,
    /// `ferry.dev/min-age` does not parse.
    BadMinAge(ferry_core::Error),
    /// `age-source: created` but the image records none.
    NoCreatedTime(Digest),
    /// The created time was not read (nothing asked).
    CreatedNotRead,
    /// Soaking, first seen now.
    SoakStarted {
        /// Min-age in seconds.
        min: u64,
    },
    /// Soaking.
    Soaking {
        /// Seconds left.
        left: u64,
        /// Min-age in seconds.
        min: u64,
    },
    /// `ferry.dev/approve: manual` and the target digest is not approved yet; the text says
    /// how to approve it.
    AwaitingApproval {
        /// The digest awaiting approval.
        digest: Digest,
        /// The `kubectl annotate` that approves it.
        command: crate::approval::ApproveCommand,
    },
    /// `ferry.dev/approve` holds an unknown value: nothing moves until it is fixed.
    BadApproval(crate::Error),
    /// Argo CD manages the workload (git write-back can still do it).
    ArgoCdManaged,
    /// The instance label may be Argo CD's; the Applications could not be read.
    ArgoCdUnknown(crate::LabelOnly),
    /// The workload asks for git and write-back is off.
    GitWithoutWriteBack(String),
    /// Update: the followed tag moved.
    TagMoved {
        /// Tag.
        tag: String,
        /// Its new digest.
        digest: Digest,
    },
    /// Update: a newer tag in range.
    NewerTag(String),
    /// A re-tag: the chosen tag points at the running digest, so it was recorded in
    /// `ferry.dev/running-tag` without touching the pod template or git (action none).
    RetagRecorded {
        /// The new tag.
        tag: String,
        /// The digest it and the running image share.
        digest: Digest,
    },
    /// A re-tag written like any update because of `ferry.dev/retag: restart`.
    RetagRestart {
        /// The new tag.
        tag: String,
        /// The digest it and the running image share.
        digest: Digest,
    },
    /// Update: a newer tag under a non-semver tag strategy.
    NewerTagBy {
        /// Tag.
        tag: String,
        /// The strategy's name (`newest-build`, `numerical`, `alphabetical`).
        strategy: &'static str,
    },
    /// Update written to git for Argo CD.
    WrittenForArgoCd,
    /// Git already holds the target.
    AlreadyInGit,
    /// Git write-back refused or failed.
    GitWriteBack(NotWritten),
    /// A tag strategy chose no tag: none matches, the current tag cannot be ranked, created
    /// times are pending, or the best ranks below the current tag (then the action is none).
    NoTag(crate::tags::NoCandidate),
    /// `newest-build`: the created times of the tags were not read (nothing asked).
    TagTimesNotRead,
    /// The signature gate: no valid signature under the policy.
    NotSigned {
        /// The digest that would be deployed.
        digest: Digest,
        /// The policy name.
        policy: String,
        /// What was found and why it failed (the shell's value).
        why: Failure,
    },
    /// The signature gate names a policy the controller was not given.
    UnknownSignaturePolicy(String),
    /// The signatures could not be looked up.
    SignatureLookup(Failure),
    /// The signatures were not checked (nothing asked).
    SignatureNotChecked(String),
    /// The provenance gate without `ferry.dev/source-repo`.
    NoSourceRepo(String),
    /// The image records no source revision.
    NoRevision(Digest),
    /// The image's revision is not on the branch.
    NotOnBranch {
        /// The image's revision.
        revision: String,
        /// The branch it must be on.
        branch: String,
        /// The repository.
        repo: String,
    },
    /// The revision or the branch could not be read.
    ProvenanceLookup(Failure),
    /// The provenance was not checked (nothing asked).
    ProvenanceNotChecked,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NotOptedIn => f.write_str("not opted in (no ferry.dev/policy)"),
            Reason::PolicyOff => f.write_str("policy is off"),
            Reason::Policy(e) => write!(f, "{e}"),
            Reason::BadMinAge(e) => write!(f, "{MIN_AGE}: {e}"),
            Reason::NotNamed => write!(f, "container not named in {CONTAINERS}"),
            Reason::BadImage(e) => write!(f, "{e}"),
            Reason::BadApproval(e) => write!(f, "{e}"),
            Reason::PromoteFrom(e) => write!(f, "{e}"),
            Reason::AwaitingApproval { command, .. } => write!(f, "{command}"),
            Reason::NotSemver(tag) => write!(f, "tag {tag:?} is not a semantic version"),
            Reason::TagsFailed(e) => write!(f, "cannot list tags: {e}"),
            Reason::TagsNotListed => f.write_str("tags were not listed"),
            Reason::NeverDowngrade { best, running } => write!(
                f,
                "highest tag in range is {best}, older than the running {running}: never a downgrade"
            ),
            Reason::NoTagInRange(req) => write!(f, "no tag satisfies {req}"),
            Reason::Registry(e) => write!(f, "registry: {e}"),
            Reason::NotResolved(key) => write!(f, "{key} was not resolved"),
            Reason::BaselineRecorded(d) => write!(
                f,
                "no baseline digest (image has none and its pods report none): recorded {d} as the baseline"
            ),
            Reason::RunsAlready(d) => write!(f, "runs {d} already"),
            Reason::AtTarget => f.write_str("already at the target"),
            Reason::Quarantined(d) => write!(
                f,
                "{d} is quarantined after a failed rollout; waiting for the tag to move"
            ),
            Reason::LacksPlatforms(d, missing) => {
                write!(f, "{d} lacks platform(s) {}", missing.join(", "))
            }
            Reason::NotInspected => f.write_str("platforms of the new image were not inspected"),
            Reason::NoCreatedTime(d) => {
                write!(f, "{d} records no created time; cannot judge its age")
            }
            Reason::CreatedNotRead => f.write_str("the created time of the new image was not read"),
            Reason::SoakStarted { min } => write!(
                f,
                "soaking: first seen now, {} to go (min-age {})",
                human(*min),
                human(*min)
            ),
            Reason::Soaking { left, min } => {
                write!(
                    f,
                    "soaking: {} to go (min-age {})",
                    human(*left),
                    human(*min)
                )
            }
            Reason::ArgoCdManaged => f.write_str(
                "managed by Argo CD: a live patch would be reverted; configure git write-back",
            ),
            Reason::ArgoCdUnknown(why) => write!(f, "{why}"),
            Reason::GitWithoutWriteBack(repo) => write!(
                f,
                "{GIT_REPO}={repo} asks for updates through git, and git write-back is off: run with --git-write-back (never patched live)"
            ),
            Reason::TagMoved { tag, digest } => write!(f, "tag {tag} moved to {digest}"),
            Reason::NewerTag(tag) => write!(f, "newer tag {tag} in range"),
            Reason::RetagRecorded { .. } | Reason::RetagRestart { .. } => self.retag(f),
            Reason::NewerTagBy { tag, strategy } => write!(f, "newer tag {tag} ({strategy})"),
            Reason::WrittenForArgoCd => {
                f.write_str("managed by Argo CD: written to git for Argo CD to sync")
            }
            Reason::AlreadyInGit => {
                f.write_str("already written in git; waiting for Argo CD to sync")
            }
            Reason::GitWriteBack(e) => write!(f, "git write-back: {e}"),
            Reason::NoTag(e) => write!(f, "{e}"),
            Reason::TagTimesNotRead => {
                f.write_str("the created times of the matching tags were not read")
            }
            gate => gate.fmt_gate(f),
        }
    }
}

impl Reason {
    /// The text of a re-tag.
    fn retag(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::RetagRecorded { tag, digest } => write!(
                f,
                "re-tag: {tag} is the running {digest}; recorded in {RUNNING_TAG}, pod template and git unchanged (no restart)"
            ),
            Reason::RetagRestart { tag, digest } => write!(
                f,
                "re-tag: {tag} is the running {digest}; written anyway ({RETAG}: restart)"
            ),
            _ => Ok(()),
        }
    }
}

impl serde::Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Reason {
    /// The signature and provenance gates' reasons ([`crate::signed`], [`crate::provenance`]).
    fn fmt_gate(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NotSigned {
                digest,
                policy,
                why,
            } => write!(
                f,
                "{digest} has no valid signature under signature policy {policy}: {why}"
            ),
            Reason::UnknownSignaturePolicy(name) => write!(
                f,
                "{SIGNED_BY}={name} names no signature policy of the controller (--signature-policy {name}=FILE)"
            ),
            Reason::SignatureLookup(e) => write!(f, "cannot look the signatures up: {e}"),
            Reason::SignatureNotChecked(name) => {
                write!(f, "signatures under policy {name} were not checked")
            }
            Reason::NoSourceRepo(branch) => write!(
                f,
                "{REQUIRE_REVISION_ON}={branch} needs {SOURCE_REPO} (the repository the image is built from)"
            ),
            Reason::NoRevision(d) => write!(
                f,
                "{d} records no source revision (org.opencontainers.image.revision): provenance unknown"
            ),
            Reason::NotOnBranch {
                revision,
                branch,
                repo,
            } => write!(
                f,
                "built from {revision}, which is not on {branch} of {repo}"
            ),
            Reason::ProvenanceLookup(e) => write!(f, "cannot check the provenance: {e}"),
            Reason::ProvenanceNotChecked => f.write_str("the provenance was not checked"),
            // Every other variant is rendered by `fmt` itself; never empty text.
            other => write!(f, "{other:?}"),
        }
    }
}
