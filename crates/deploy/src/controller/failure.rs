//! A failed per-workload step, typed: what failed carries its stage, and
//! [`super::apply::Pass::fail`] turns it into the Event, the log line, the metric and the report
//! entry in one place.

use std::fmt;
use std::sync::Arc;

use super::apply::Stage;
use super::rollout::WatchFailure;
use crate::error::NoForge;

/// A step of a pass that failed for a workload, and why.
#[derive(Debug)]
pub enum StepFailure {
    /// Patching the workload failed.
    Patch(crate::Error),
    /// A rollout failed and putting the previous images back failed too.
    Rollback {
        /// Why the rollout failed.
        why: WatchFailure,
        /// `container=image` pairs it tried to restore.
        restored: Vec<String>,
        /// Why the restoring patch failed.
        error: crate::Error,
    },
    /// Committing and pushing the change failed (shared by every workload of the commit).
    GitWrite(Arc<crate::Error>),
    /// Opening or updating the pull/merge request of the branch failed.
    Request {
        /// The request's branch.
        branch: String,
        /// Why.
        error: RequestFailed,
    },
    /// A rollout failed after a push and reverting ferry's commit failed.
    Revert {
        /// Why the rollout failed.
        why: WatchFailure,
        /// ferry's commit (short).
        commit: String,
        /// Why the revert failed (shared by every workload of the commit).
        error: Arc<crate::Error>,
    },
}

/// Why a request could not be opened or updated ([`StepFailure::Request`]).
#[derive(Debug, Clone)]
pub enum RequestFailed {
    /// The forge API failed (shared by every workload of the request).
    Api(Arc<crate::Error>),
    /// No usable forge client for the repository.
    NoForge(NoForge),
}

impl fmt::Display for RequestFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestFailed::Api(e) => write!(f, "{e}"),
            RequestFailed::NoForge(e) => write!(f, "{e}"),
        }
    }
}

impl StepFailure {
    /// Where in the pass it failed (the `stage` label, the Event reason).
    pub fn stage(&self) -> Stage {
        match self {
            StepFailure::Patch(_) => Stage::Patch,
            StepFailure::Rollback { .. } => Stage::Rollback,
            StepFailure::GitWrite(_) | StepFailure::Request { .. } => Stage::GitWrite,
            StepFailure::Revert { .. } => Stage::GitRevert,
        }
    }
}

impl fmt::Display for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepFailure::Patch(e) => write!(f, "patch failed: {e}"),
            StepFailure::Rollback {
                why,
                restored,
                error,
            } => write!(
                f,
                "{why}; rolling back to {} failed: {error}",
                restored.join(", ")
            ),
            StepFailure::GitWrite(e) => write!(f, "{e}"),
            StepFailure::Request { branch, error } => {
                write!(f, "pull request for {branch}: {error}")
            }
            StepFailure::Revert { why, commit, error } => {
                write!(f, "{why}; reverting {commit} failed: {error}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::review::Forge;

    #[test]
    fn each_failure_names_its_stage_and_reads_as_before() {
        let cases = [
            (
                StepFailure::Patch(crate::Error::LeadershipLost),
                Stage::Patch,
                "patch failed: leadership lost: this replica no longer holds the Lease; not writing",
            ),
            (
                StepFailure::Rollback {
                    why: WatchFailure::ProgressDeadline,
                    restored: vec!["app=acme/web:1".into()],
                    error: crate::Error::LeadershipLost,
                },
                Stage::Rollback,
                "rollout failed: ProgressDeadlineExceeded; rolling back to app=acme/web:1 failed: leadership lost: this replica no longer holds the Lease; not writing",
            ),
            (
                StepFailure::Request {
                    branch: "ferry/shop-web".into(),
                    error: RequestFailed::NoForge(NoForge::NoClient(Forge::GitHub)),
                },
                Stage::GitWrite,
                "pull request for ferry/shop-web: no github API client",
            ),
        ];
        for (failure, stage, text) in cases {
            assert_eq!(failure.stage(), stage);
            assert_eq!(failure.to_string(), text);
        }
    }
}
