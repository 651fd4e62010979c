//! The registry client, in layers:
//!
//! * `endpoint` — where a registry's requests go (mirrors, plain HTTP, Docker Hub's API host).
//! * `wire` — one request sent and read in full, replies mapped to errors, and the one retry loop
//!   every request goes through (registry calls and token requests alike). It calls nothing
//!   above it: the loop is handed an `Attempt` that says how each try is sent.
//! * `auth` — wraps the wire: challenges, bearer tokens and their cache, the probe lock;
//!   `execute` runs a registry request through the wire's loop with an authorizing `Attempt`.
//! * `creds` — which credential a handle uses for a registry, and its identity.
//! * `check` — which credential a registry gets and whether it accepts it (`check_auth`).
//! * `reads` — resolve, digest, manifest, inspect, verify, config, blob, tags, wait, created.
//! * `push` — blob and manifest uploads, cross-repository mounts, copies.

mod auth;
pub(crate) mod check;
mod creds;
mod endpoint;
mod push;
mod reads;
mod referrers;
mod wire;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ferry_core::{Digest, Platform, Reference};
use url::Url;

use crate::config::ClientConfig;
use crate::credentials::CredentialStore;
use crate::error::{ConfigProblem, Error, Result};
use ferry_core::sync::Lock;

pub use endpoint::DOCKER_HUB_API_HOST;
pub use referrers::{Referrer, ReferrersSource, referrers_tag};

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
    /// The bottom layer: HTTP, timeouts, per-host limits, the retry loop.
    wire: wire::Wire,
    config: ClientConfig,
    mirrors: HashMap<String, Url>,
    /// Random per client: credential identities are hashes salted with it.
    salt: [u8; 32],
    auth: Lock<HashMap<String, auth::AuthScheme>>,
    probes: Lock<HashMap<String, auth::AsyncLock>>,
    tokens: Lock<HashMap<auth::TokenKey, auth::CachedToken>>,
    token_locks: Lock<HashMap<auth::TokenKey, auth::AsyncLock>>,
    /// What each registry's Referrers API answered, and when (see `client/referrers.rs`).
    referrers_api: Lock<HashMap<String, referrers::ApiSeen>>,
    /// One Referrers API probe at a time per registry until its answer is known.
    referrers_probes: Lock<HashMap<String, auth::AsyncLock>>,
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
        last: NotReady,
    },
}

/// Why the last check of [`Client::wait`] was negative (shown after "timed out … waiting").
#[derive(Debug, Clone)]
pub enum NotReady {
    /// The image is there but lacks some of the platforms waited for.
    MissingPlatforms {
        /// The reference waited for.
        reference: Reference,
        /// The platforms it lacks.
        missing: Vec<Platform>,
    },
    /// The check failed with a negative answer (not found…) or a transient failure.
    Failed(Arc<Error>),
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReady::MissingPlatforms { reference, missing } => {
                let missing: Vec<String> = missing.iter().map(ToString::to_string).collect();
                write!(f, "{reference} lacks platform(s) {}", missing.join(", "))
            }
            NotReady::Failed(e) => write!(f, "{e}"),
        }
    }
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
        let wire = wire::Wire::new(&config)?;
        let mut mirrors = HashMap::new();
        for (reg, url) in &config.mirrors {
            let u = Url::parse(url).map_err(|source| {
                Error::Config(ConfigProblem::Mirror {
                    registry: reg.clone(),
                    url: url.clone(),
                    source,
                })
            })?;
            mirrors.insert(endpoint::normalize_registry(reg).to_string(), u);
        }
        let creds = Arc::new(creds::CredentialChain::new(
            config.credentials.clone(),
            None,
        ));
        Ok(Client {
            inner: Arc::new(Inner {
                wire,
                config,
                mirrors,
                salt: rand::random(),
                auth: Lock::default(),
                probes: Lock::default(),
                tokens: Lock::default(),
                token_locks: Lock::default(),
                referrers_api: Lock::default(),
                referrers_probes: Lock::default(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::{Credential, StaticCredentials};
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    /// Hold a guard of `lock` while panicking, as a panicking task would.
    fn poison<T>(lock: &Lock<T>) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = lock.lock();
            panic!("a task panicked while holding a registry lock");
        }));
        assert!(lock.is_poisoned());
    }

    #[tokio::test]
    async fn requests_still_work_after_a_panic_poisoned_every_lock() {
        let server = MockServer::start().await;
        let digest = Digest::sha256_of(b"x");
        Mock::given(method("HEAD"))
            .and(path("/v2/acme/app/manifests/1"))
            .and(header("authorization", "Bearer tok"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("docker-content-digest", digest.to_string().as_str()),
            )
            .mount(&server)
            .await;
        Mock::given(method("HEAD"))
            .and(path("/v2/acme/app/manifests/1"))
            .respond_with(ResponseTemplate::new(401).insert_header(
                "www-authenticate",
                format!(r#"Bearer realm="{}/token",service="s""#, server.uri()).as_str(),
            ))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/token"))
            .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"token":"tok"}"#))
            .expect(1)
            .mount(&server)
            .await;
        let host = server.address().to_string();
        let creds = StaticCredentials(
            [(
                host.clone(),
                Credential::Basic {
                    username: "u".into(),
                    password: "p".into(),
                },
            )]
            .into_iter()
            .collect(),
        );
        let client = Client::new(ClientConfig {
            plain_http: vec![host.clone()],
            credentials: Arc::new(creds),
            ..Default::default()
        })
        .unwrap();
        let r: ferry_core::Reference = format!("{host}/acme/app:1").parse().unwrap();
        // A request before the panic fills every map; one after it must still be served.
        assert_eq!(client.resolve(&r).await.unwrap().digest, digest);
        let inner = &client.inner;
        poison(&inner.auth);
        poison(&inner.probes);
        poison(&inner.tokens);
        poison(&inner.token_locks);
        inner.wire.poison_hosts(poison);
        assert_eq!(client.resolve(&r).await.unwrap().digest, digest);
        // And a fresh registry key, so the probe, scheme and credential maps get new entries.
        let other = client.with_credentials(Arc::new(crate::credentials::Anonymous));
        assert_eq!(other.resolve(&r).await.unwrap().digest, digest);
    }
}
