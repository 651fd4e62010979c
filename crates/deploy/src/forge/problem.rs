//! What went wrong in a forge API call ([`crate::Error::Forge`]) or with a GitHub App
//! ([`crate::Error::GitHubApp`]).

use std::fmt;
use std::time::Duration;

use ferry_registry::jwt::RsaKeyProblem;

/// Why a pull/merge request call (or a GitHub App token call) failed.
#[derive(Debug)]
pub enum ForgeProblem {
    /// The request could not be sent, or its answer not read.
    Transport(reqwest::Error),
    /// The API answered with an error status; its own message (`message`, `errors[].message`).
    Refused {
        /// What the API said.
        message: String,
    },
    /// Rate limited for longer than ferry waits.
    RateLimited {
        /// The rate-limit headers, as sent.
        limits: String,
        /// When the limit clears.
        clears_in: Duration,
        /// How long ferry waits at most (`--forge-max-wait`).
        max_wait: Duration,
    },
    /// A page of a listing is not a JSON array.
    NotAnArray {
        /// What it is instead (`object`, `string`…).
        got: &'static str,
    },
    /// The answer lacks a field ferry needs.
    Missing {
        /// What is missing (`an installation id`, `token or expires_at`).
        what: &'static str,
    },
    /// The forge said a request for the branch exists, and none is listed.
    NotListed {
        /// The branch.
        head: String,
    },
    /// The forge's default API URL does not parse.
    BadUrl(url::ParseError),
}

impl fmt::Display for ForgeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForgeProblem::Transport(e) => write!(f, "{e}"),
            ForgeProblem::Refused { message } => f.write_str(message),
            ForgeProblem::RateLimited {
                limits,
                clears_in,
                max_wait,
            } => write!(
                f,
                "rate limited ({limits}); the limit clears in {}s, beyond the {}s ferry waits",
                clears_in.as_secs(),
                max_wait.as_secs()
            ),
            ForgeProblem::NotAnArray { got } => write!(f, "expected a JSON array, got {got}"),
            ForgeProblem::Missing { what } => write!(f, "the answer lacks {what}"),
            ForgeProblem::NotListed { head } => write!(
                f,
                "the forge says a request for {head} exists, and none is listed"
            ),
            ForgeProblem::BadUrl(e) => write!(f, "{e}"),
        }
    }
}

/// Why a GitHub App cannot be used.
#[derive(Debug)]
pub enum AppProblem {
    /// The private key is not a PEM RSA key the signer accepts.
    Key(RsaKeyProblem),
    /// Signing the app JWT failed.
    Sign,
    /// No installation id was configured and no repository names one.
    NoInstallation,
}

impl fmt::Display for AppProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppProblem::Key(RsaKeyProblem::Rejected(r)) => write!(f, "{r}"),
            AppProblem::Key(e) => write!(f, "{e}"),
            AppProblem::Sign => f.write_str("signing the app JWT failed"),
            AppProblem::NoInstallation => {
                f.write_str("no --github-app-installation-id and no repository to look it up by")
            }
        }
    }
}
