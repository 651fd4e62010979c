//! Plain-data configuration of a [`Client`](crate::Client).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::credentials::{Anonymous, CredentialStore};
use crate::error::{ConfigProblem, Error, Result};

/// Largest manifest body accepted: what registries themselves enforce.
pub const MANIFEST_LIMIT: usize = 4 * 1024 * 1024;

/// How a [`Client`](crate::Client) talks to registries. Plain data with a useful `Default`.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Registries reached over plain HTTP: `HOST` (any port) or `HOST:PORT`.
    pub plain_http: Vec<String>,
    /// Registry → base URL to use instead (`docker.io` → `http://127.0.0.1:5000`).
    pub mirrors: Vec<(String, String)>,
    /// Extra PEM CA certificates to trust.
    pub ca_file: Option<PathBuf>,
    /// Timeout of one request, including reading its whole body.
    pub timeout: Duration,
    /// Retry behaviour for transient failures.
    pub retry: RetryPolicy,
    /// Requests in flight to one host at a time.
    pub max_concurrency_per_host: usize,
    /// Largest manifest accepted, in bytes.
    pub manifest_limit: usize,
    /// Largest blob read into memory (image configs), in bytes.
    pub blob_limit: usize,
    /// Sent as `User-Agent`.
    pub user_agent: String,
    /// Where credentials come from.
    pub credentials: Arc<dyn CredentialStore>,
    /// Built-in cloud registry logins ([`crate::CloudCredentials`]), asked after every other
    /// store and every handle's own, by the registry's name (also when `--mirror` sends its
    /// requests elsewhere: the mirror is that registry's address).
    pub cloud: Option<Arc<dyn CredentialStore>>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            plain_http: Vec::new(),
            mirrors: Vec::new(),
            ca_file: None,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            max_concurrency_per_host: 32,
            manifest_limit: MANIFEST_LIMIT,
            blob_limit: 64 * 1024 * 1024,
            user_agent: concat!("ferry/", env!("CARGO_PKG_VERSION")).to_string(),
            credentials: Arc::new(Anonymous),
            cloud: None,
        }
    }
}

impl ClientConfig {
    /// Parse a `REGISTRY=URL` mirror option.
    pub fn parse_mirror(spec: &str) -> Result<(String, String)> {
        let spec_owned = || spec.to_string();
        let (reg, url) = spec
            .split_once('=')
            .ok_or_else(|| Error::Config(ConfigProblem::MirrorSyntax { spec: spec_owned() }))?;
        let parsed = url::Url::parse(url).map_err(|source| {
            Error::Config(ConfigProblem::MirrorUrl {
                spec: spec_owned(),
                source,
            })
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(Error::Config(ConfigProblem::MirrorScheme {
                spec: spec_owned(),
            }));
        }
        if reg.is_empty() {
            return Err(Error::Config(ConfigProblem::MirrorRegistry {
                spec: spec_owned(),
            }));
        }
        Ok((reg.to_string(), url.trim_end_matches('/').to_string()))
    }
}

/// The CA certificates every HTTPS client of ferry trusts besides the system's (`--ca-file`):
/// the registry client and the cloud token clients alike, so a TLS-intercepting proxy or a
/// private CA is trusted for registry and token requests, or for none.
#[derive(Clone, Default)]
pub struct CaCertificates {
    /// The file they were read from.
    path: Option<PathBuf>,
    certs: Vec<reqwest::Certificate>,
    /// The file's PEM text, for clients that take PEM (the AWS SDK's).
    pem: Vec<u8>,
}

impl fmt::Debug for CaCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaCertificates")
            .field("path", &self.path)
            .field("certificates", &self.certs.len())
            .finish()
    }
}

impl CaCertificates {
    /// The PEM certificates of `path`; a file that cannot be read, does not parse or holds no
    /// certificate is an error naming it.
    pub fn read(path: &Path) -> Result<Self> {
        let owned = || path.to_path_buf();
        let pem = std::fs::read(path).map_err(|source| {
            Error::Config(ConfigProblem::CaRead {
                path: owned(),
                source,
            })
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
            Error::Config(ConfigProblem::CaParse {
                path: owned(),
                source,
            })
        })?;
        if certs.is_empty() {
            return Err(Error::Config(ConfigProblem::CaEmpty { path: owned() }));
        }
        Ok(CaCertificates {
            path: Some(owned()),
            certs,
            pem,
        })
    }

    /// Those of `path` when given, else none.
    pub fn from_option(path: Option<&Path>) -> Result<Self> {
        path.map_or_else(|| Ok(Self::default()), Self::read)
    }

    /// The PEM text of the certificates, `None` when there are none.
    pub(crate) fn pem(&self) -> Option<&[u8]> {
        (!self.certs.is_empty()).then_some(self.pem.as_slice())
    }

    /// `builder` trusting these certificates too.
    pub(crate) fn trusted_by(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        self.certs
            .iter()
            .cloned()
            .fold(builder, reqwest::ClientBuilder::add_root_certificate)
    }
}

/// Retries of transient failures (connection errors, timeouts, 5xx, 408, 429).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    /// First backoff delay; doubled each attempt, with full jitter.
    pub base_delay: Duration,
    /// Cap of one backoff delay.
    pub max_delay: Duration,
    /// Cap of the time spent waiting between attempts of one request, `Retry-After` included.
    /// A `Retry-After` longer than what is left fails at once with the headers reported.
    pub max_total_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_total_wait: Duration::from_secs(60),
        }
    }
}
