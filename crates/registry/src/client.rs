//! The registry client, in layers:
//!
//! * `endpoint` — where a registry's requests go (mirrors, plain HTTP, Docker Hub's API host).
//! * `wire` — one request sent and read in full, replies mapped to errors, and the one retry loop
//!   every request goes through (registry calls and token requests alike).
//! * `auth` — challenges, bearer tokens and their cache, the probe lock.
//! * `creds` — which credential a handle uses for a registry, and its identity.
//! * `reads` — resolve, digest, manifest, inspect, verify, config, blob, tags, wait, created.
//! * `push` — blob and manifest uploads, cross-repository mounts, copies.

mod auth;
mod creds;
mod endpoint;
mod push;
mod reads;
mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_core::Digest;
use tokio::sync::Semaphore;
use url::Url;

use crate::config::ClientConfig;
use crate::credentials::CredentialStore;
use crate::error::{Error, Result};

pub use endpoint::DOCKER_HUB_API_HOST;

/// An OCI distribution client. Cheap to clone: clones share connections, tokens and caches.
///
/// ```no_run
/// # async fn demo() -> ferry_registry::Result<()> {
/// use ferry_registry::{Client, ClientConfig};
/// let client = Client::new(ClientConfig::default())?;
/// let r = "python:3.12-slim".parse()?;
/// let resolved = client.resolve(&r).await?;
/// println!("{}", resolved.digest);
/// # Ok(()) }
/// ```
///
/// One client can serve callers holding different credentials (a controller applying each
/// workload's pull secrets): see [`Client::with_credentials`].
#[derive(Clone, Debug)]
pub struct Client {
    /// Shared by every clone and every [`Client::with_credentials`] handle.
    inner: Arc<Inner>,
    /// Where this handle looks credentials up.
    creds: Arc<creds::CredentialChain>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    mirrors: HashMap<String, Url>,
    /// Random per client: credential identities are hashes salted with it.
    salt: [u8; 32],
    auth: Mutex<HashMap<String, auth::AuthScheme>>,
    probes: Mutex<HashMap<String, auth::AsyncLock>>,
    tokens: Mutex<HashMap<auth::TokenKey, auth::CachedToken>>,
    token_locks: Mutex<HashMap<auth::TokenKey, auth::AsyncLock>>,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Outcome of [`Client::wait`].
#[derive(Debug, Clone)]
pub enum WaitOutcome {
    /// The reference exists (with all requested platforms).
    Ready {
        /// Its digest.
        digest: Digest,
        /// How long it took.
        waited: Duration,
    },
    /// The timeout passed first.
    TimedOut {
        /// How long was waited.
        waited: Duration,
        /// Why the last check was negative.
        last: String,
    },
}

/// What [`Client::copy`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CopyOutcome {
    /// The digest copied (unchanged).
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Blobs mounted (or already in place).
    pub mounted_blobs: usize,
    /// Blobs copied through ferry because the registry would not mount them.
    pub copied_blobs: usize,
    /// Manifests written.
    pub manifests: usize,
}

/// Options for listing tags.
#[derive(Debug, Clone, Default)]
pub struct TagsOptions {
    /// Page size to ask for (`n=`); `None` lets the registry choose.
    pub page_size: Option<usize>,
}

impl Client {
    /// Build a client from its configuration.
    pub fn new(config: ClientConfig) -> Result<Self> {
        let http = http_client(&config)?;
        let mut mirrors = HashMap::new();
        for (reg, url) in &config.mirrors {
            let u =
                Url::parse(url).map_err(|e| Error::Config(format!("mirror {reg}={url}: {e}")))?;
            mirrors.insert(endpoint::normalize_registry(reg).to_string(), u);
        }
        let creds = Arc::new(creds::CredentialChain::new(
            config.credentials.clone(),
            None,
        ));
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                config,
                mirrors,
                salt: rand::random(),
                auth: Mutex::default(),
                probes: Mutex::default(),
                tokens: Mutex::default(),
                token_locks: Mutex::default(),
                hosts: Mutex::default(),
            }),
            creds,
        })
    }

    /// A handle on this client that looks credentials up in `extra` first, then wherever this
    /// client looks (its [`ClientConfig::credentials`], or the stores of the handle it was
    /// made from).
    ///
    /// The handle is cheap (two `Arc`s) and shares everything else with this client:
    /// connections, learned auth schemes and the probe lock, per-host concurrency limits, and
    /// the bearer-token cache. Tokens are cached per registry, scope **and credential identity**
    /// (a hash of the credential salted per client — never the secret itself): a token obtained
    /// with one credential is reused by every handle presenting the same credential, and never
    /// sent for a request made with another credential or anonymously.
    ///
    /// ```no_run
    /// # async fn demo(pull_secret: ferry_registry::DockerConfig) -> ferry_registry::Result<()> {
    /// use std::sync::Arc;
    /// use ferry_registry::{Client, ClientConfig};
    /// let client = Client::new(ClientConfig::default())?; // one per controller
    /// let workload = client.with_credentials(Arc::new(pull_secret)); // per workload
    /// let digest = workload.resolve(&"registry.example/team/app:1.4".parse()?).await?.digest;
    /// # Ok(()) }
    /// ```
    pub fn with_credentials(&self, extra: Arc<dyn CredentialStore>) -> Client {
        Client {
            inner: self.inner.clone(),
            creds: Arc::new(creds::CredentialChain::new(extra, Some(self.creds.clone()))),
        }
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }
}

/// The HTTP client: user agent, connect timeout, pool size and extra CA certificates.
fn http_client(config: &ClientConfig) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .user_agent(config.user_agent.clone())
        .connect_timeout(config.timeout)
        .pool_max_idle_per_host(config.max_concurrency_per_host.max(1));
    if let Some(ca) = &config.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| Error::Config(format!("cannot read CA file {}: {e}", ca.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| Error::Config(format!("CA file {}: {e}", ca.display())))?;
        if certs.is_empty() {
            return Err(Error::Config(format!(
                "CA file {} holds no PEM certificate",
                ca.display()
            )));
        }
        for c in certs {
            builder = builder.add_root_certificate(c);
        }
    }
    builder
        .build()
        .map_err(|e| Error::Config(format!("cannot build HTTP client: {e}")))
}
