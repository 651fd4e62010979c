//! The error type of `ferry-deploy`.

/// What can go wrong while planning or applying redeploys.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A ferry annotation on a workload is malformed (a tag pattern, an approval mode).
    #[error(transparent)]
    Policy(#[from] ferry_policy::Error),
    /// The Kubernetes API failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The registry failed in a way that stops the whole pass.
    #[error(transparent)]
    Registry(#[from] ferry_registry::Error),
    /// Configuration (kubeconfig, flags) is unusable.
    #[error("configuration: {0}")]
    Config(ConfigProblem),
    /// A git write-back (clone, fetch, commit, push, revert, write branch) failed.
    #[error("git write-back to {repo} ({branch}): {problem}")]
    Git {
        /// Remote URL.
        repo: String,
        /// Branch.
        branch: String,
        /// What went wrong.
        problem: crate::gitops::GitProblem,
    },
    /// The provenance gate could not fetch the source repository's branch to see whether a
    /// revision is on it.
    #[error("fetching branch {branch} of {repo}: {problem}")]
    ProvenanceFetch {
        /// The source repository's URL.
        repo: String,
        /// The branch the revision must be on.
        branch: String,
        /// What went wrong.
        problem: crate::gitops::GitProblem,
    },
    /// A YAML file cannot be edited safely at the spot ferry must change (flow style, no
    /// scalar value, the workload has no such container…).
    #[error("{0}")]
    Edit(crate::yamledit::EditProblem),
    /// A blocking task (git work off the runtime) panicked or was cancelled.
    #[error("background task: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// This replica does not (or no longer) hold the Lease: the write was not made.
    #[error("leadership lost: this replica no longer holds the Lease; not writing")]
    LeadershipLost,
    /// A registry's rate limit is nearly spent: it is not asked until its window ends.
    #[error(
        "not polled: {registry} reported ratelimit-remaining {remaining}, below the floor of {floor}; waiting {}s for its window",
        wait.as_secs()
    )]
    RateGated {
        /// The registry held back.
        registry: String,
        /// Requests it said remain.
        remaining: u64,
        /// The floor (`--ratelimit-floor`).
        floor: u64,
        /// Time left in its window.
        wait: std::time::Duration,
    },
    /// Inspecting an update candidate's image failed (every candidate on that digest skips).
    #[error("inspecting the new image: {0}")]
    InspectNew(ferry_registry::Error),
    /// A forge API (GitHub, GitLab) refused or failed a pull/merge request call.
    #[error("{forge} API {method} {url}: {problem}")]
    Forge {
        /// `github` or `gitlab`.
        forge: ferry_policy::review::Forge,
        /// HTTP method.
        method: &'static str,
        /// The request URL.
        url: String,
        /// HTTP status, when there was an answer.
        status: Option<u16>,
        /// What went wrong (the API's message, the transport error, a malformed answer).
        problem: crate::forge::ForgeProblem,
    },
    /// The GitHub App private key or installation cannot be used.
    #[error("GitHub App: {problem}")]
    GitHubApp {
        /// What is wrong (never the key itself).
        problem: crate::forge::AppProblem,
    },
    /// A change cannot be placed in the files (see [`crate::gitops::WriteBack::problems`]).
    #[error("{0}")]
    Unplaced(Box<crate::gitops::Unplaced>),
    /// ferry cannot tell whether a request for an update was closed without merging.
    #[error("{0}")]
    Review(ReviewUnknown),
    /// No signature of a digest verified under a signature policy: each candidate and why it
    /// failed (or none found).
    #[error("{}", unsigned(.0))]
    Unsigned(Box<ferry_registry::signature::SignatureReport>),
    /// A Helm values file cannot be edited at the requested key.
    #[error("{file}: key {key}: {problem}")]
    HelmValues {
        /// The values file (path in the repository).
        file: String,
        /// The dotted key path (`image.tag`, `sensor.image.repository`).
        key: String,
        /// What is wrong.
        problem: crate::helm::HelmProblem,
    },
}

/// What is wrong with a setting ([`Error::Config`]).
#[derive(Debug)]
pub enum ConfigProblem {
    /// The webhook secret file holds only whitespace.
    EmptyWebhookSecret,
    /// The git commit author is not `Name <email>`.
    Author(ferry_core::Error),
    /// `--notify-format` is neither `slack` nor `json`.
    NotifyFormat {
        /// The value given.
        given: String,
    },
    /// The notification HTTP client cannot be built.
    NotifyClient(reqwest::Error),
    /// The forge API client cannot be built.
    ForgeClient(reqwest::Error),
    /// `--git-pull-request-branch` does not parse.
    BranchTemplate(ferry_policy::review::BadBranch),
    /// A signature policy the controller was not given.
    UnknownSignaturePolicy {
        /// Its name.
        name: String,
    },
}

/// [`Error::Unsigned`]'s text: each rejected candidate, or that none was found.
fn unsigned(report: &ferry_registry::signature::SignatureReport) -> String {
    match report.rejected() {
        r if r.is_empty() => "no signature found".to_string(),
        r => r.to_string(),
    }
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigProblem::EmptyWebhookSecret => f.write_str(
                "the webhook secret is empty: write a secret into --webhook-secret-file",
            ),
            ConfigProblem::Author(e) => write!(f, "{e}"),
            ConfigProblem::NotifyFormat { given } => {
                write!(f, "--notify-format {given:?}: expected slack or json")
            }
            ConfigProblem::NotifyClient(e) => write!(f, "notification HTTP client: {e}"),
            ConfigProblem::ForgeClient(e) => write!(f, "forge API HTTP client: {e}"),
            ConfigProblem::BranchTemplate(e) => write!(f, "--git-pull-request-branch: {e}"),
            ConfigProblem::UnknownSignaturePolicy { name } => {
                write!(f, "signature policy {name} is not configured")
            }
        }
    }
}

/// Why the closed pull/merge requests of a branch cannot be read ([`Error::Review`]).
#[derive(Debug)]
pub enum ReviewUnknown {
    /// The forge API failed.
    Reading {
        /// The forge.
        forge: ferry_policy::review::Forge,
        /// The request branch.
        branch: String,
        /// Its error.
        error: Box<Error>,
    },
    /// No usable forge client for the repository.
    NoForge(NoForge),
}

/// Why ferry has no forge API to ask about a repository.
#[derive(Debug, Clone)]
pub enum NoForge {
    /// No API client is configured for the forge.
    NoClient(ferry_policy::review::Forge),
    /// The repository URL names no project on the forge.
    NoProject {
        /// The forge.
        forge: ferry_policy::review::Forge,
        /// The repository URL.
        repo: String,
    },
}

impl std::fmt::Display for NoForge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoForge::NoClient(forge) => write!(f, "no {forge} API client"),
            NoForge::NoProject { forge, repo } => {
                write!(f, "cannot tell the {forge} project from {repo}")
            }
        }
    }
}

impl std::fmt::Display for ReviewUnknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReviewUnknown::Reading {
                forge,
                branch,
                error,
            } => write!(f, "reading closed {forge} requests of {branch}: {error}"),
            ReviewUnknown::NoForge(e) => write!(f, "{e}"),
        }
    }
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl ferry_core::exit::Classify for Error {
    fn exit_code(&self) -> u8 {
        match self {
            Error::Policy(_)
            | Error::HelmValues { .. }
            | Error::Edit(_)
            | Error::Unplaced(_)
            | Error::Unsigned(_) => ferry_core::exit::NEGATIVE,
            Error::Kube(_)
            | Error::Registry(_)
            | Error::Config(_)
            | Error::Git { .. }
            | Error::Forge { .. }
            | Error::Review(_)
            | Error::GitHubApp { .. }
            | Error::ProvenanceFetch { .. }
            | Error::Join(_)
            | Error::LeadershipLost
            | Error::RateGated { .. }
            | Error::InspectNew(_) => ferry_core::exit::OPERATIONAL,
        }
    }
}
