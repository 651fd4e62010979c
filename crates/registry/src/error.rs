//! The error type of `ferry-registry`.

use std::time::Duration;

use ferry_core::{Digest, Platform};

use crate::ratelimit::RateLimit;

/// Everything that can go wrong while talking to a registry.
///
/// Variants carry the URL, reference or digest involved so that a message names it. Use
/// [`Error::is_negative`] to tell "the registry answered no" (exit 1) from operational failures
/// (exit 3).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A reference, digest or platform did not parse.
    #[error(transparent)]
    Core(#[from] ferry_core::Error),

    /// The registry says the manifest, tag, blob or repository does not exist.
    #[error("{what} not found: {reference} ({detail})")]
    NotFound {
        /// What was looked up: `manifest`, `blob`, `repository`.
        what: &'static str,
        /// The reference or digest looked up.
        reference: String,
        /// The registry's own words (error code and message) when it sent any.
        detail: String,
    },

    /// The image exists but has no manifest for the requested platform.
    #[error("{reference} has no manifest for platform {platform} (it has: {available})")]
    PlatformNotFound {
        /// The reference looked up.
        reference: String,
        /// The platform asked for.
        platform: Platform,
        /// The platforms it does have, comma-separated.
        available: String,
    },

    /// The registry refused our credentials, or demanded credentials we do not have.
    #[error("authentication failed for {url}: {detail}")]
    Unauthorized {
        /// The URL that was refused.
        url: String,
        /// What the registry or the token server said.
        detail: String,
    },

    /// The registry refused access with 403.
    #[error("access denied to {url}: {detail}")]
    Denied {
        /// The URL that was refused.
        url: String,
        /// What the registry said.
        detail: String,
    },

    /// Still rate limited (429) after waiting as long as the retry budget allows.
    #[error("rate limited by {url}{}{}", retry_after.map(|d| format!(" (Retry-After {}s)", d.as_secs())).unwrap_or_default(), rate_limit.as_ref().map(|r| format!(" [{r}]")).unwrap_or_default())]
    RateLimited {
        /// The URL that answered 429.
        url: String,
        /// What `Retry-After` asked for, if it was sent.
        retry_after: Option<Duration>,
        /// The rate-limit headers of the last answer.
        rate_limit: Option<RateLimit>,
    },

    /// Any other unexpected HTTP status (after retries for 5xx and 408).
    #[error("{method} {url} answered HTTP {status}: {detail}")]
    Status {
        /// Request method.
        method: String,
        /// Request URL.
        url: String,
        /// HTTP status code.
        status: u16,
        /// The registry's error code and message, or the start of the body.
        detail: String,
    },

    /// The connection failed (after retries).
    #[error("request to {url} failed: {source}")]
    Transport {
        /// Request URL.
        url: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },

    /// The request (including reading its body) took longer than the configured timeout.
    #[error("request to {url} timed out after {after:?}")]
    Timeout {
        /// Request URL.
        url: String,
        /// The timeout that expired.
        after: Duration,
    },

    /// The content did not hash to the digest it was asked for or announced with.
    #[error("digest mismatch for {url}: expected {expected}, content hashes to {actual}")]
    DigestMismatch {
        /// Request URL.
        url: String,
        /// The digest requested or announced in `Docker-Content-Digest`.
        expected: Digest,
        /// The digest of the bytes received.
        actual: Digest,
    },

    /// The body was larger than allowed.
    #[error("response from {url} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Request URL.
        url: String,
        /// The cap in bytes.
        limit: usize,
    },

    /// The manifest or another JSON document from the registry could not be understood.
    #[error("invalid {what} from {url}: {reason}")]
    Invalid {
        /// What was being decoded (`manifest`, `tag list`, `token`, `image config`…).
        what: &'static str,
        /// Where it came from.
        url: String,
        /// Why it is invalid.
        reason: String,
    },

    /// A `WWW-Authenticate` header could not be parsed or used.
    #[error("cannot use authentication challenge {header:?}: {reason}")]
    Challenge {
        /// The header value.
        header: String,
        /// Why it is unusable.
        reason: String,
    },

    /// Docker's config.json or a credential helper failed.
    #[error("credentials for {registry}: {reason}")]
    Credentials {
        /// The registry whose credentials were looked up.
        registry: String,
        /// What went wrong.
        reason: String,
    },

    /// The client configuration is unusable (bad mirror URL, unreadable CA file…).
    #[error("invalid registry configuration: {0}")]
    Config(String),
}

impl Error {
    /// Whether this error is a negative answer (not found, platform missing, invalid input)
    /// rather than an operational failure.
    pub fn is_negative(&self) -> bool {
        matches!(
            self,
            Error::NotFound { .. } | Error::PlatformNotFound { .. } | Error::Core(_)
        )
    }

    /// Whether retrying later may help (network trouble, timeouts, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::Timeout { .. } | Error::RateLimited { .. } => true,
            Error::Status { status, .. } => *status >= 500 || *status == 408,
            _ => false,
        }
    }
}

impl ferry_core::exit::Classify for Error {
    /// Exit 1 for negative answers ([`Error::is_negative`]), 3 for everything else.
    fn exit_code(&self) -> u8 {
        if self.is_negative() {
            ferry_core::exit::NEGATIVE
        } else {
            ferry_core::exit::OPERATIONAL
        }
    }
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
