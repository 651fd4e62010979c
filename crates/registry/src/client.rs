//! The registry client: endpoints, authentication, retries and the distribution API calls.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use ferry_core::{Digest, Platform, Reference};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use tokio::sync::{OwnedMutexGuard, Semaphore};
use url::Url;

use crate::challenge;
use crate::config::ClientConfig;
use crate::credentials::{Credential, is_docker_hub};
use crate::error::{Error, Result};
use crate::manifest::{
    self, ACCEPT_MANIFESTS, FetchedManifest, ImageConfigSummary, Inspection, ManifestContent,
    PlatformCheck, PlatformManifest, Resolved,
};
use crate::ratelimit::{RateLimit, parse_retry_after};

/// Docker Hub's API host.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

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
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    mirrors: HashMap<String, Url>,
    auth: Mutex<HashMap<String, AuthScheme>>,
    probes: Mutex<HashMap<String, AsyncLock>>,
    tokens: Mutex<HashMap<(String, String), CachedToken>>,
    token_locks: Mutex<HashMap<(String, String), AsyncLock>>,
    creds: Mutex<HashMap<String, Option<Credential>>>,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// A lock held across awaits (single-flight for probes and token fetches).
type AsyncLock = Arc<tokio::sync::Mutex<()>>;

#[derive(Debug, Clone)]
enum AuthScheme {
    Anonymous,
    Basic,
    Bearer { realm: Url, service: Option<String> },
}

#[derive(Clone)]
struct CachedToken {
    token: String,
    expires: Instant,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("token", &"<redacted>")
            .field("expires", &self.expires)
            .finish()
    }
}

/// Where requests for one registry go.
#[derive(Debug, Clone)]
struct Endpoint {
    /// `scheme://host[:port][/prefix]` without a trailing slash.
    base: String,
    /// The name credentials, auth state and concurrency are keyed by: the registry name, or the
    /// mirror's `host[:port]` when mirrored (credentials for Docker Hub are never sent to a mirror).
    key: String,
}

/// A response read in full (body capped).
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    url: String,
    method: Method,
}

struct Request<'a> {
    method: Method,
    url: Url,
    ep: &'a Endpoint,
    scope: String,
    accept: Option<&'static str>,
    content_type: Option<String>,
    body: Option<Bytes>,
    limit: usize,
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
        let http = builder
            .build()
            .map_err(|e| Error::Config(format!("cannot build HTTP client: {e}")))?;
        let mut mirrors = HashMap::new();
        for (reg, url) in &config.mirrors {
            let u =
                Url::parse(url).map_err(|e| Error::Config(format!("mirror {reg}={url}: {e}")))?;
            mirrors.insert(normalize_registry(reg).to_string(), u);
        }
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                config,
                mirrors,
                auth: Mutex::default(),
                probes: Mutex::default(),
                tokens: Mutex::default(),
                token_locks: Mutex::default(),
                creds: Mutex::default(),
                hosts: Mutex::default(),
            }),
        })
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    // ---------------------------------------------------------------- high-level queries

    /// The digest, media type and size the registry serves for `reference`: one HEAD request
    /// (Docker Hub does not count HEADs against pull limits), falling back to GET + hashing when
    /// the registry sends no usable `Docker-Content-Digest`.
    pub async fn resolve(&self, reference: &Reference) -> Result<Resolved> {
        let reply = self.fetch_manifest(reference, Method::HEAD).await?;
        match reply.status {
            s if s.is_success() => {}
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED => {
                return self.resolve_by_get(reference).await;
            }
            StatusCode::NOT_FOUND => return Err(not_found("manifest", reference, &reply)),
            _ => return Err(status_error(&reply)),
        }
        let header_digest = reply
            .headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v.trim()).ok());
        let Some(digest) = header_digest else {
            tracing::debug!(url = %reply.url, "no usable Docker-Content-Digest on HEAD; using GET");
            return self.resolve_by_get(reference).await;
        };
        if let Some(want) = reference.digest()
            && *want != digest
        {
            return Err(Error::DigestMismatch {
                url: reply.url,
                expected: want.clone(),
                actual: digest,
            });
        }
        Ok(Resolved {
            reference: reference.clone(),
            digest,
            media_type: content_type(&reply.headers).unwrap_or_default(),
            size: reply
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
            platform: None,
            rate_limit: RateLimit::from_headers(&reply.headers),
        })
    }

    async fn resolve_by_get(&self, reference: &Reference) -> Result<Resolved> {
        let m = self.manifest(reference).await?;
        Ok(Resolved {
            reference: reference.clone(),
            digest: m.digest,
            media_type: m.media_type,
            size: Some(m.body.len() as u64),
            platform: None,
            rate_limit: m.rate_limit,
        })
    }

    /// The digest for `reference`, or with `platform` the digest of that platform's manifest.
    pub async fn digest(
        &self,
        reference: &Reference,
        platform: Option<&Platform>,
    ) -> Result<Resolved> {
        let Some(platform) = platform else {
            return self.resolve(reference).await;
        };
        let inspection = self.inspect(reference).await?;
        let Some(p) = inspection.platform(platform) else {
            return Err(Error::PlatformNotFound {
                reference: reference.to_string(),
                platform: platform.clone(),
                available: available(&inspection.platforms),
            });
        };
        Ok(Resolved {
            reference: reference.clone(),
            digest: p.digest.clone(),
            media_type: p.media_type.clone(),
            size: Some(p.size),
            platform: Some(p.platform.clone()),
            rate_limit: inspection.rate_limit.clone(),
        })
    }

    /// GET the manifest for `reference`, capped, hashed and verified against the requested
    /// digest and the `Docker-Content-Digest` header.
    pub async fn manifest(&self, reference: &Reference) -> Result<FetchedManifest> {
        let reply = self.fetch_manifest(reference, Method::GET).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Err(not_found("manifest", reference, &reply));
        }
        if !reply.status.is_success() {
            return Err(status_error(&reply));
        }
        let header_digest = match reply.headers.get("docker-content-digest") {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(|s| Digest::parse(s.trim()).ok())
                    .ok_or_else(|| Error::Invalid {
                        what: "Docker-Content-Digest header",
                        url: reply.url.clone(),
                        reason: format!("{v:?} is not a digest"),
                    })?,
            ),
        };
        let digest = verify_body(&reply, reference.digest(), header_digest.as_ref())?;
        let (media_type, content) = manifest::decode(
            &reply.body,
            content_type(&reply.headers).as_deref(),
            &reply.url,
        )?;
        Ok(FetchedManifest {
            digest,
            media_type,
            body: reply.body.clone(),
            content,
            rate_limit: RateLimit::from_headers(&reply.headers),
        })
    }

    /// Platforms, child digests, attestations, media types and sizes of `reference`.
    pub async fn inspect(&self, reference: &Reference) -> Result<Inspection> {
        let m = self.manifest(reference).await?;
        let size = m.body.len() as u64;
        let (platforms, attestations) = match &m.content {
            ManifestContent::Index(index) => {
                manifest::index_entries(index, &reference.to_string())?
            }
            ManifestContent::Image(image) => {
                let config_digest =
                    manifest::descriptor_digest(image.config(), &reference.to_string())?;
                let cfg = self.image_config(reference, &config_digest).await?;
                let platform = Platform::new(&cfg.os, &cfg.architecture, cfg.variant.as_deref());
                (
                    vec![PlatformManifest {
                        platform,
                        digest: m.digest.clone(),
                        media_type: m.media_type.clone(),
                        size,
                    }],
                    Vec::new(),
                )
            }
        };
        Ok(Inspection {
            reference: reference.clone(),
            digest: m.digest,
            media_type: m.media_type,
            size,
            platforms,
            attestations,
            rate_limit: m.rate_limit,
        })
    }

    /// Which of `platforms` the image behind `reference` provides.
    pub async fn verify(
        &self,
        reference: &Reference,
        platforms: &[Platform],
    ) -> Result<PlatformCheck> {
        Ok(self.inspect(reference).await?.check_platforms(platforms))
    }

    /// Read and decode an image config blob (platform, `created`).
    pub async fn image_config(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<ImageConfigSummary> {
        let body = self
            .blob(reference, digest, self.inner.config.manifest_limit)
            .await?;
        serde_json::from_slice(&body).map_err(|e| Error::Invalid {
            what: "image config",
            url: format!("{}@{digest}", reference.name()),
            reason: e.to_string(),
        })
    }

    /// GET a blob of `reference`'s repository into memory (at most `limit` bytes), verified
    /// against `digest`.
    pub async fn blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        limit: usize,
    ) -> Result<Bytes> {
        let ep = self.endpoint(reference.registry())?;
        let url = self.url(
            &ep,
            &format!("/v2/{}/blobs/{digest}", reference.repository()),
        )?;
        let reply = self
            .execute(Request {
                method: Method::GET,
                url,
                ep: &ep,
                scope: pull_scope(reference.repository()),
                accept: None,
                content_type: None,
                body: None,
                limit: limit.min(self.inner.config.blob_limit),
            })
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Err(Error::NotFound {
                what: "blob",
                reference: format!("{}@{digest}", reference.name()),
                detail: registry_detail(&reply.body),
            });
        }
        if !reply.status.is_success() {
            return Err(status_error(&reply));
        }
        verify_body(&reply, Some(digest), None)?;
        Ok(reply.body)
    }

    /// Every tag of `reference`'s repository, following `Link` pagination.
    pub async fn tags(&self, reference: &Reference, options: &TagsOptions) -> Result<Vec<String>> {
        let ep = self.endpoint(reference.registry())?;
        let mut path = format!("/v2/{}/tags/list", reference.repository());
        if let Some(n) = options.page_size {
            path.push_str(&format!("?n={n}"));
        }
        let mut next = Some(self.url(&ep, &path)?);
        let mut seen = HashSet::new();
        let mut tags = Vec::new();
        while let Some(url) = next.take() {
            if !seen.insert(url.to_string()) {
                return Err(Error::Invalid {
                    what: "tag list",
                    url: url.to_string(),
                    reason: "pagination loops back to a page already read".into(),
                });
            }
            let reply = self
                .execute(Request {
                    method: Method::GET,
                    url: url.clone(),
                    ep: &ep,
                    scope: pull_scope(reference.repository()),
                    accept: Some("application/json"),
                    content_type: None,
                    body: None,
                    limit: self.inner.config.manifest_limit,
                })
                .await?;
            if reply.status == StatusCode::NOT_FOUND {
                return Err(Error::NotFound {
                    what: "repository",
                    reference: reference.name(),
                    detail: registry_detail(&reply.body),
                });
            }
            if !reply.status.is_success() {
                return Err(status_error(&reply));
            }
            #[derive(serde::Deserialize)]
            struct Page {
                #[serde(default)]
                tags: Option<Vec<serde_json::Value>>,
            }
            let page: Page = serde_json::from_slice(&reply.body).map_err(|e| Error::Invalid {
                what: "tag list",
                url: reply.url.clone(),
                reason: e.to_string(),
            })?;
            tags.extend(
                page.tags
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|v| v.as_str().map(str::to_string)),
            );
            if let Some(link) = reply
                .headers
                .get(header::LINK)
                .and_then(|v| v.to_str().ok())
                && let Some(target) = next_link(link)
            {
                next = Some(url.join(&target).map_err(|e| Error::Invalid {
                    what: "tag list",
                    url: reply.url.clone(),
                    reason: format!("bad Link target {target:?}: {e}"),
                })?);
            }
        }
        Ok(tags)
    }

    /// Poll until `reference` exists with all of `platforms`, or `timeout` passes.
    ///
    /// Not found and missing platforms keep waiting; transient failures are logged and keep
    /// waiting; other errors (authentication, invalid manifests) end the wait with that error.
    pub async fn wait(
        &self,
        reference: &Reference,
        platforms: &[Platform],
        timeout: Duration,
        interval: Duration,
    ) -> Result<WaitOutcome> {
        let start = Instant::now();
        loop {
            let last = match self.check_ready(reference, platforms).await {
                Ok(Ok(digest)) => {
                    return Ok(WaitOutcome::Ready {
                        digest,
                        waited: start.elapsed(),
                    });
                }
                Ok(Err(reason)) => reason,
                Err(e) if e.is_negative() || e.is_transient() => {
                    tracing::debug!(%reference, error = %e, "not ready yet");
                    e.to_string()
                }
                Err(e) => return Err(e),
            };
            let elapsed = start.elapsed();
            if elapsed >= timeout {
                return Ok(WaitOutcome::TimedOut {
                    waited: elapsed,
                    last,
                });
            }
            let sleep = jitter(interval, 0.1).min(timeout - elapsed);
            tokio::time::sleep(sleep).await;
        }
    }

    async fn check_ready(
        &self,
        reference: &Reference,
        platforms: &[Platform],
    ) -> Result<std::result::Result<Digest, String>> {
        if platforms.is_empty() {
            return Ok(Ok(self.resolve(reference).await?.digest));
        }
        let check = self.verify(reference, platforms).await?;
        if check.complete() {
            Ok(Ok(check.digest))
        } else {
            let missing: Vec<String> = check.missing.iter().map(ToString::to_string).collect();
            Ok(Err(format!(
                "{reference} lacks platform(s) {}",
                missing.join(", ")
            )))
        }
    }

    // ---------------------------------------------------------------- writes

    /// Upload a blob (monolithic) unless the repository already has it; returns its digest.
    pub async fn push_blob(&self, reference: &Reference, data: Bytes) -> Result<Digest> {
        let digest = Digest::sha256_of(&data);
        let ep = self.endpoint(reference.registry())?;
        let repo = reference.repository();
        let scope = push_scope(repo);
        let head = self
            .execute(Request {
                method: Method::HEAD,
                url: self.url(&ep, &format!("/v2/{repo}/blobs/{digest}"))?,
                ep: &ep,
                scope: scope.clone(),
                accept: None,
                content_type: None,
                body: None,
                limit: 0,
            })
            .await?;
        if head.status.is_success() {
            return Ok(digest);
        }
        let start_url = self.url(&ep, &format!("/v2/{repo}/blobs/uploads/"))?;
        let started = self
            .execute(Request {
                method: Method::POST,
                url: start_url.clone(),
                ep: &ep,
                scope: scope.clone(),
                accept: None,
                content_type: None,
                body: Some(Bytes::new()),
                limit: 64 * 1024,
            })
            .await?;
        if started.status != StatusCode::ACCEPTED {
            return Err(status_error(&started));
        }
        let location = started
            .headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Invalid {
                what: "upload session",
                url: started.url.clone(),
                reason: "202 without Location".into(),
            })?;
        let mut put_url = start_url.join(location).map_err(|e| Error::Invalid {
            what: "upload session",
            url: started.url.clone(),
            reason: format!("bad Location {location:?}: {e}"),
        })?;
        put_url
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let done = self
            .execute(Request {
                method: Method::PUT,
                url: put_url,
                ep: &ep,
                scope,
                accept: None,
                content_type: Some("application/octet-stream".into()),
                body: Some(data),
                limit: 64 * 1024,
            })
            .await?;
        if done.status != StatusCode::CREATED {
            return Err(status_error(&done));
        }
        Ok(digest)
    }

    /// PUT a manifest under `reference`'s tag (or digest); returns the manifest's digest.
    pub async fn put_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        body: Bytes,
    ) -> Result<Digest> {
        let digest = Digest::sha256_of(&body);
        let ep = self.endpoint(reference.registry())?;
        let selector = match (reference.tag(), reference.digest()) {
            (Some(t), _) => t.to_string(),
            (None, Some(d)) => d.to_string(),
            (None, None) => ferry_core::reference::DEFAULT_TAG.to_string(),
        };
        let url = self.manifest_url(&ep, reference.repository(), &selector)?;
        let reply = self
            .execute(Request {
                method: Method::PUT,
                url,
                ep: &ep,
                scope: push_scope(reference.repository()),
                accept: None,
                content_type: Some(media_type.to_string()),
                body: Some(body),
                limit: 64 * 1024,
            })
            .await?;
        if reply.status != StatusCode::CREATED && !reply.status.is_success() {
            return Err(status_error(&reply));
        }
        if let Some(h) = reply
            .headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v).ok())
            && h != digest
        {
            return Err(Error::DigestMismatch {
                url: reply.url,
                expected: digest,
                actual: h,
            });
        }
        Ok(digest)
    }

    /// Mount `digest` from repository `from` into `dst`'s repository (same registry) without
    /// transferring it. `Ok(false)` when the registry declined to mount (then the caller copies).
    pub async fn mount_blob(&self, from: &str, dst: &Reference, digest: &Digest) -> Result<bool> {
        let ep = self.endpoint(dst.registry())?;
        let repo = dst.repository();
        let mut url = self.url(&ep, &format!("/v2/{repo}/blobs/uploads/"))?;
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let reply = self
            .execute(Request {
                method: Method::POST,
                url,
                ep: &ep,
                scope: format!("{} repository:{from}:pull", push_scope(repo)),
                accept: None,
                content_type: None,
                body: Some(Bytes::new()),
                limit: 64 * 1024,
            })
            .await?;
        match reply.status {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => Ok(false),
            _ => Err(status_error(&reply)),
        }
    }

    /// Make `blob` available in `dst`'s repository: mount it from `src`'s repository, or copy it
    /// (GET then PUT) when the registry will not mount. Returns whether it was mounted.
    async fn transfer_blob(
        &self,
        src: &Reference,
        dst: &Reference,
        digest: &Digest,
    ) -> Result<bool> {
        if src.name() == dst.name() {
            return Ok(true);
        }
        if src.registry() == dst.registry()
            && self.mount_blob(src.repository(), dst, digest).await?
        {
            return Ok(true);
        }
        tracing::warn!(%digest, "blob could not be mounted; copying it");
        let data = self.blob(src, digest, self.inner.config.blob_limit).await?;
        self.push_blob(dst, data).await?;
        Ok(false)
    }

    /// Copy what `src` points at (a manifest, or an index with every child) to `dst` — another
    /// tag, or another repository of the same registry (blobs are mounted, never pulled when
    /// the registry allows mounting). The digest stays the same.
    pub async fn copy(&self, src: &Reference, dst: &Reference) -> Result<CopyOutcome> {
        let top = self.manifest(src).await?;
        let at = |d: &Digest| Reference::parse(&format!("{}@{d}", src.name()));
        let mut outcome = CopyOutcome {
            digest: top.digest.clone(),
            media_type: top.media_type.clone(),
            mounted_blobs: 0,
            copied_blobs: 0,
            manifests: 0,
        };
        let children: Vec<FetchedManifest> = match &top.content {
            ManifestContent::Index(index) => {
                let mut v = Vec::new();
                for d in index.manifests() {
                    let cd = manifest::descriptor_digest(d, &src.to_string())?;
                    v.push(self.manifest(&at(&cd)?).await?);
                }
                v
            }
            ManifestContent::Image(_) => vec![top.clone()],
        };
        for m in &children {
            if let ManifestContent::Image(img) = &m.content {
                let mut blobs = vec![manifest::descriptor_digest(img.config(), &src.to_string())?];
                for l in img.layers() {
                    blobs.push(manifest::descriptor_digest(l, &src.to_string())?);
                }
                for b in blobs {
                    if self.transfer_blob(src, dst, &b).await? {
                        outcome.mounted_blobs += 1;
                    } else {
                        outcome.copied_blobs += 1;
                    }
                }
            }
            if m.digest != top.digest {
                let by_digest = Reference::parse(&format!("{}@{}", dst.name(), m.digest))?;
                self.put_manifest(&by_digest, &m.media_type, m.body.clone())
                    .await?;
                outcome.manifests += 1;
            }
        }
        let written = self
            .put_manifest(dst, &top.media_type, top.body.clone())
            .await?;
        outcome.manifests += 1;
        if written != top.digest {
            return Err(Error::DigestMismatch {
                url: dst.to_string(),
                expected: top.digest,
                actual: written,
            });
        }
        Ok(outcome)
    }

    /// The newest `created` time among the platform images of `reference` (attestations
    /// ignored), as seconds since the Unix epoch; `None` when no config records one.
    pub async fn created(&self, reference: &Reference) -> Result<Option<u64>> {
        let top = self.manifest(reference).await?;
        let name = reference.name();
        let configs: Vec<(Reference, Digest)> = match &top.content {
            ManifestContent::Image(img) => vec![(
                reference.clone(),
                manifest::descriptor_digest(img.config(), &name)?,
            )],
            ManifestContent::Index(index) => {
                let (platforms, _) = manifest::index_entries(index, &name)?;
                let mut v = Vec::new();
                for p in platforms {
                    let child = Reference::parse(&format!("{name}@{}", p.digest))?;
                    let m = self.manifest(&child).await?;
                    if let ManifestContent::Image(img) = &m.content {
                        v.push((child, manifest::descriptor_digest(img.config(), &name)?));
                    }
                }
                v
            }
        };
        let mut newest: Option<u64> = None;
        for (r, d) in configs {
            let cfg = self.image_config(&r, &d).await?;
            if let Some(c) = cfg.created.as_deref() {
                let t = humantime::parse_rfc3339_weak(
                    c.trim_end_matches('Z').split('.').next().unwrap_or(c),
                )
                .or_else(|_| humantime::parse_rfc3339_weak(c))
                .map_err(|e| Error::Invalid {
                    what: "image config",
                    url: format!("{}@{d}", r.name()),
                    reason: format!("created {c:?}: {e}"),
                })?;
                let secs = t
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                newest = Some(newest.map_or(secs, |n: u64| n.max(secs)));
            }
        }
        Ok(newest)
    }

    /// HEAD or GET `reference`'s manifest with every manifest media type accepted (GET bodies
    /// capped at the manifest limit).
    async fn fetch_manifest(&self, reference: &Reference, method: Method) -> Result<Reply> {
        let ep = self.endpoint(reference.registry())?;
        let url = self.manifest_url(&ep, reference.repository(), &reference.manifest_selector())?;
        let limit = if method == Method::HEAD {
            0
        } else {
            self.inner.config.manifest_limit
        };
        self.execute(Request {
            method,
            url,
            ep: &ep,
            scope: pull_scope(reference.repository()),
            accept: Some(ACCEPT_MANIFESTS),
            content_type: None,
            body: None,
            limit,
        })
        .await
    }

    // ---------------------------------------------------------------- endpoints

    fn endpoint(&self, registry: &str) -> Result<Endpoint> {
        if registry.is_empty() {
            return Err(Error::Config(
                "reference has no registry domain that can be contacted".into(),
            ));
        }
        let registry = normalize_registry(registry);
        if let Some(m) = self.inner.mirrors.get(registry) {
            let host = m.host_str().unwrap_or_default();
            let key = match m.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            };
            return Ok(Endpoint {
                base: m.as_str().trim_end_matches('/').to_string(),
                key,
            });
        }
        let host = if is_docker_hub(registry) {
            DOCKER_HUB_API_HOST
        } else {
            registry
        };
        let scheme = if self.is_plain_http(registry) {
            "http"
        } else {
            "https"
        };
        Ok(Endpoint {
            base: format!("{scheme}://{host}"),
            key: registry.to_string(),
        })
    }

    fn is_plain_http(&self, registry: &str) -> bool {
        let host_only = registry.rsplit_once(':').map_or(registry, |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(']') || h.ends_with(']') {
                h
            } else {
                registry
            }
        });
        self.inner
            .config
            .plain_http
            .iter()
            .any(|p| p == registry || (!p.contains(':') || p.ends_with(']')) && p == host_only)
    }

    fn url(&self, ep: &Endpoint, path: &str) -> Result<Url> {
        Url::parse(&format!("{}{path}", ep.base))
            .map_err(|e| Error::Config(format!("cannot build URL from {}{path}: {e}", ep.base)))
    }

    fn manifest_url(&self, ep: &Endpoint, repository: &str, selector: &str) -> Result<Url> {
        self.url(ep, &format!("/v2/{repository}/manifests/{selector}"))
    }

    // ---------------------------------------------------------------- transport

    /// Send a request with authentication and retries; returns the last reply read in full.
    async fn execute(&self, req: Request<'_>) -> Result<Reply> {
        let retry = &self.inner.config.retry;
        let mut probe = self.probe_guard(&req.ep.key).await;
        let mut waited = Duration::ZERO;
        let mut attempt = 0u32;
        let mut auth_rounds = 0u32;
        loop {
            attempt += 1;
            let auth = self.auth_header(req.ep, &req.scope).await?;
            let sent_auth = auth.is_some();
            let outcome = self.send_once(&req, auth).await;
            let (delay, fail): (Duration, Result<Reply>) = match outcome {
                Ok(reply) if reply.status == StatusCode::UNAUTHORIZED => {
                    auth_rounds += 1;
                    if auth_rounds > 2 {
                        return Err(unauthorized(&reply));
                    }
                    self.handle_challenge(req.ep, &req.scope, &reply, sent_auth)
                        .await?;
                    attempt -= 1;
                    continue;
                }
                Ok(reply) => {
                    if probe.is_some() {
                        self.set_scheme_if_unknown(&req.ep.key, AuthScheme::Anonymous);
                        probe = None;
                    }
                    let s = reply.status;
                    if s == StatusCode::TOO_MANY_REQUESTS {
                        let ra = reply
                            .headers
                            .get(header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| parse_retry_after(v, SystemTime::now()));
                        let err = Error::RateLimited {
                            url: reply.url.clone(),
                            retry_after: ra,
                            rate_limit: RateLimit::from_headers(&reply.headers),
                        };
                        (ra.unwrap_or_else(|| backoff(retry, attempt)), Err(err))
                    } else if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT {
                        (backoff(retry, attempt), Ok(reply))
                    } else {
                        return Ok(reply);
                    }
                }
                Err(e) if e.is_transient() => (backoff(retry, attempt), Err(e)),
                Err(e) => return Err(e),
            };
            drop(probe.take());
            if attempt >= retry.max_attempts || waited + delay > retry.max_total_wait {
                return fail;
            }
            tracing::debug!(url = %req.url, attempt, ?delay, "retrying after transient failure");
            tokio::time::sleep(delay).await;
            waited += delay;
        }
    }

    async fn send_once(&self, req: &Request<'_>, auth: Option<HeaderValue>) -> Result<Reply> {
        let permit = self.host_semaphore(&req.ep.key).acquire_owned().await;
        let url_s = req.url.to_string();
        let mut rb = self.inner.http.request(req.method.clone(), req.url.clone());
        if let Some(a) = req.accept {
            rb = rb.header(header::ACCEPT, a);
        }
        if let Some(c) = &req.content_type {
            rb = rb.header(header::CONTENT_TYPE, c.as_str());
        }
        if let Some(a) = auth {
            rb = rb.header(header::AUTHORIZATION, a);
        }
        if let Some(b) = &req.body {
            rb = rb.body(b.clone());
        }
        let limit = req.limit;
        let method = req.method.clone();
        let started = Instant::now();
        let fut = async {
            let mut resp = rb.send().await.map_err(|source| Error::Transport {
                url: url_s.clone(),
                source,
            })?;
            let status = resp.status();
            let headers = resp.headers().clone();
            if method == Method::HEAD {
                return Ok((status, headers, Bytes::new()));
            }
            // Error bodies are read for their message, capped small.
            let cap = if status.is_success() {
                limit
            } else {
                limit.clamp(16 * 1024, 64 * 1024)
            };
            if let Some(len) = resp.content_length()
                && len as usize > cap
                && status.is_success()
            {
                return Err(Error::TooLarge {
                    url: url_s.clone(),
                    limit: cap,
                });
            }
            let mut buf = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|source| Error::Transport {
                url: url_s.clone(),
                source,
            })? {
                if buf.len() + chunk.len() > cap {
                    if status.is_success() {
                        return Err(Error::TooLarge {
                            url: url_s.clone(),
                            limit: cap,
                        });
                    }
                    buf.extend_from_slice(&chunk[..cap - buf.len()]);
                    break;
                }
                buf.extend_from_slice(&chunk);
            }
            Ok((status, headers, Bytes::from(buf)))
        };
        let result = tokio::time::timeout(self.inner.config.timeout, fut).await;
        drop(permit);
        let (status, headers, body) = match result {
            Ok(r) => r?,
            Err(_) => {
                return Err(Error::Timeout {
                    url: url_s,
                    after: self.inner.config.timeout,
                });
            }
        };
        tracing::debug!(method = %req.method, url = %url_s, status = status.as_u16(), elapsed = ?started.elapsed(), "registry request");
        Ok(Reply {
            status,
            headers,
            body,
            url: url_s,
            method: req.method.clone(),
        })
    }

    fn host_semaphore(&self, key: &str) -> Arc<Semaphore> {
        let mut hosts = self.inner.hosts.lock().expect("hosts lock");
        hosts
            .entry(key.to_string())
            .or_insert_with(|| {
                Arc::new(Semaphore::new(
                    self.inner.config.max_concurrency_per_host.max(1),
                ))
            })
            .clone()
    }

    // ---------------------------------------------------------------- authentication

    /// While a registry's auth scheme is unknown, let one request find it out before the
    /// others follow (so 500 parallel queries cause one 401 and one token request, not 500).
    async fn probe_guard(&self, key: &str) -> Option<OwnedMutexGuard<()>> {
        if self.scheme(key).is_some() {
            return None;
        }
        let lock = {
            let mut probes = self.inner.probes.lock().expect("probes lock");
            probes.entry(key.to_string()).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        if self.scheme(key).is_some() {
            None
        } else {
            Some(guard)
        }
    }

    fn scheme(&self, key: &str) -> Option<AuthScheme> {
        self.inner.auth.lock().expect("auth lock").get(key).cloned()
    }

    fn set_scheme_if_unknown(&self, key: &str, scheme: AuthScheme) {
        self.inner
            .auth
            .lock()
            .expect("auth lock")
            .entry(key.to_string())
            .or_insert(scheme);
    }

    async fn credentials(&self, key: &str) -> Result<Option<Credential>> {
        if let Some(c) = self.inner.creds.lock().expect("creds lock").get(key) {
            return Ok(c.clone());
        }
        let store = self.inner.config.credentials.clone();
        let k = key.to_string();
        let found = tokio::task::spawn_blocking(move || store.get(&k))
            .await
            .map_err(|e| Error::Credentials {
                registry: key.to_string(),
                reason: format!("credential lookup panicked: {e}"),
            })??;
        self.inner
            .creds
            .lock()
            .expect("creds lock")
            .insert(key.to_string(), found.clone());
        Ok(found)
    }

    async fn auth_header(&self, ep: &Endpoint, scope: &str) -> Result<Option<HeaderValue>> {
        match self.scheme(&ep.key) {
            None | Some(AuthScheme::Anonymous) => Ok(None),
            Some(AuthScheme::Basic) => match self.credentials(&ep.key).await? {
                Some(Credential::Basic { username, password }) => {
                    Ok(Some(basic_header(&username, &password)))
                }
                _ => Ok(None),
            },
            Some(AuthScheme::Bearer { realm, service }) => {
                let token = self.token(ep, &realm, service.as_deref(), scope).await?;
                let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                    Error::Invalid {
                        what: "token",
                        url: realm.to_string(),
                        reason: "token is not a valid header value".into(),
                    }
                })?;
                v.set_sensitive(true);
                Ok(Some(v))
            }
        }
    }

    async fn handle_challenge(
        &self,
        ep: &Endpoint,
        scope: &str,
        reply: &Reply,
        sent_auth: bool,
    ) -> Result<()> {
        let values: Vec<&str> = reply
            .headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let header_text = values.join(", ");
        let challenges = challenge::parse(&header_text).unwrap_or_default();
        let bearer = challenges.iter().find(|c| c.scheme == "bearer");
        let basic = challenges.iter().find(|c| c.scheme == "basic");
        let key = ep.key.clone();
        if let Some(b) = bearer {
            let realm = b.param("realm").ok_or_else(|| Error::Challenge {
                header: header_text.clone(),
                reason: "Bearer challenge without realm".into(),
            })?;
            let realm = Url::parse(realm)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| Error::Challenge {
                    header: header_text.clone(),
                    reason: format!("realm {realm:?} is not an http(s) URL"),
                })?;
            let had_token =
                sent_auth && matches!(self.scheme(&key), Some(AuthScheme::Bearer { .. }));
            self.inner.auth.lock().expect("auth lock").insert(
                key.clone(),
                AuthScheme::Bearer {
                    realm,
                    service: b.param("service").map(str::to_string),
                },
            );
            let removed = self
                .inner
                .tokens
                .lock()
                .expect("tokens lock")
                .remove(&(key, scope.to_string()));
            if had_token && removed.is_none() {
                // A token fetched just now was refused: more tries will not help.
                return Err(unauthorized(reply));
            }
            if had_token && b.param("error") == Some("insufficient_scope") {
                return Err(Error::Denied {
                    url: reply.url.clone(),
                    detail: format!(
                        "insufficient scope for {scope}: {}",
                        registry_detail(&reply.body)
                    ),
                });
            }
            return Ok(());
        }
        if basic.is_some() {
            if sent_auth && matches!(self.scheme(&key), Some(AuthScheme::Basic)) {
                return Err(Error::Unauthorized {
                    url: reply.url.clone(),
                    detail: format!("credentials for {key} were rejected"),
                });
            }
            match self.credentials(&key).await? {
                Some(Credential::Basic { .. }) => {
                    self.inner
                        .auth
                        .lock()
                        .expect("auth lock")
                        .insert(key, AuthScheme::Basic);
                    return Ok(());
                }
                _ => {
                    return Err(Error::Unauthorized {
                        url: reply.url.clone(),
                        detail: format!(
                            "registry requires basic authentication and no user/password is configured for {key}"
                        ),
                    });
                }
            }
        }
        Err(Error::Unauthorized {
            url: reply.url.clone(),
            detail: if header_text.is_empty() {
                format!(
                    "401 without WWW-Authenticate ({})",
                    registry_detail(&reply.body)
                )
            } else {
                format!("unusable challenge {header_text:?}")
            },
        })
    }

    async fn token(
        &self,
        ep: &Endpoint,
        realm: &Url,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String> {
        let cache_key = (ep.key.clone(), scope.to_string());
        if let Some(t) = self.cached_token(&cache_key) {
            return Ok(t);
        }
        let lock = {
            let mut locks = self.inner.token_locks.lock().expect("token locks");
            locks.entry(cache_key.clone()).or_default().clone()
        };
        let _guard = lock.lock().await;
        if let Some(t) = self.cached_token(&cache_key) {
            return Ok(t);
        }
        let creds = self.credentials(&ep.key).await?;
        let retry = &self.inner.config.retry;
        let mut attempt = 0;
        let reply = loop {
            attempt += 1;
            let rb = match &creds {
                Some(Credential::IdentityToken(refresh)) => {
                    let mut form = url::form_urlencoded::Serializer::new(String::new());
                    form.append_pair("grant_type", "refresh_token");
                    form.append_pair("refresh_token", refresh);
                    form.append_pair("client_id", "ferry");
                    if let Some(s) = service {
                        form.append_pair("service", s);
                    }
                    for sc in scope.split(' ') {
                        form.append_pair("scope", sc);
                    }
                    self.inner
                        .http
                        .post(realm.clone())
                        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(form.finish())
                }
                other => {
                    let mut url = realm.clone();
                    {
                        let mut q = url.query_pairs_mut();
                        if let Some(s) = service {
                            q.append_pair("service", s);
                        }
                        // Several scopes (a cross-repository mount) go as repeated parameters.
                        for sc in scope.split(' ') {
                            q.append_pair("scope", sc);
                        }
                    }
                    let rb = self.inner.http.get(url);
                    match other {
                        Some(Credential::Basic { username, password }) => {
                            rb.header(header::AUTHORIZATION, basic_header(username, password))
                        }
                        _ => rb,
                    }
                }
            };
            let res = tokio::time::timeout(self.inner.config.timeout, async {
                let resp = rb.send().await?;
                let status = resp.status();
                let body = resp.bytes().await?;
                Ok::<_, reqwest::Error>((status, body))
            })
            .await;
            let err = match res {
                Ok(Ok((status, body))) if status.is_server_error() => Error::Status {
                    method: "GET".into(),
                    url: realm.to_string(),
                    status: status.as_u16(),
                    detail: registry_detail(&body),
                },
                Ok(Ok(r)) => break r,
                Ok(Err(source)) => Error::Transport {
                    url: realm.to_string(),
                    source,
                },
                Err(_) => Error::Timeout {
                    url: realm.to_string(),
                    after: self.inner.config.timeout,
                },
            };
            if attempt >= retry.max_attempts {
                return Err(err);
            }
            tokio::time::sleep(backoff(retry, attempt)).await;
        };
        let (status, body) = reply;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Error::Unauthorized {
                url: realm.to_string(),
                detail: format!(
                    "token server refused {} for scope {scope}: {}",
                    if creds.is_some() {
                        "the configured credentials"
                    } else {
                        "anonymous access"
                    },
                    registry_detail(&body)
                ),
            });
        }
        if !status.is_success() {
            return Err(Error::Status {
                method: "GET".into(),
                url: realm.to_string(),
                status: status.as_u16(),
                detail: registry_detail(&body),
            });
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let ans: TokenAnswer = serde_json::from_slice(&body).map_err(|e| Error::Invalid {
            what: "token",
            url: realm.to_string(),
            reason: e.to_string(),
        })?;
        let token = ans
            .token
            .filter(|t| !t.is_empty())
            .or(ans.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| Error::Invalid {
                what: "token",
                url: realm.to_string(),
                reason: "neither token nor access_token in the answer".into(),
            })?;
        let lifetime = Duration::from_secs(ans.expires_in.unwrap_or(60).max(60));
        // Renew a little early so a token never expires in flight.
        let expires = Instant::now() + lifetime - Duration::from_secs(5);
        self.inner.tokens.lock().expect("tokens lock").insert(
            cache_key,
            CachedToken {
                token: token.clone(),
                expires,
            },
        );
        Ok(token)
    }

    fn cached_token(&self, key: &(String, String)) -> Option<String> {
        let tokens = self.inner.tokens.lock().expect("tokens lock");
        tokens
            .get(key)
            .filter(|t| t.expires > Instant::now())
            .map(|t| t.token.clone())
    }
}

fn normalize_registry(registry: &str) -> &str {
    if is_docker_hub(registry) {
        "docker.io"
    } else {
        registry
    }
}

fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

fn basic_header(user: &str, pass: &str) -> HeaderValue {
    let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let mut v = HeaderValue::from_str(&format!("Basic {enc}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    v.set_sensitive(true);
    v
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_string())
}

/// Hash a body and compare it with the requested digest and the announced header digest.
fn verify_body(
    reply: &Reply,
    requested: Option<&Digest>,
    header: Option<&Digest>,
) -> Result<Digest> {
    let alg = requested
        .or(header)
        .map_or(ferry_core::Algorithm::Sha256, Digest::algorithm);
    let actual = Digest::compute(alg, &reply.body);
    for expected in [requested, header].into_iter().flatten() {
        let got = if expected.algorithm() == alg {
            actual.clone()
        } else {
            Digest::compute(expected.algorithm(), &reply.body)
        };
        if got != *expected {
            return Err(Error::DigestMismatch {
                url: reply.url.clone(),
                expected: expected.clone(),
                actual: got,
            });
        }
    }
    Ok(actual)
}

/// The registry's error code and message (`{"errors":[{"code","message"}]}`), else the start of
/// the body.
fn registry_detail(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(body) {
        let parts: Vec<String> = e
            .errors
            .iter()
            .map(|i| format!("{}: {}", i.code, i.message))
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "no details".to_string()
    } else {
        text.chars().take(200).collect()
    }
}

fn not_found(what: &'static str, reference: &Reference, reply: &Reply) -> Error {
    Error::NotFound {
        what,
        reference: reference.to_string(),
        detail: if reply.body.is_empty() {
            "HTTP 404".into()
        } else {
            registry_detail(&reply.body)
        },
    }
}

fn unauthorized(reply: &Reply) -> Error {
    Error::Unauthorized {
        url: reply.url.clone(),
        detail: registry_detail(&reply.body),
    }
}

fn status_error(reply: &Reply) -> Error {
    match reply.status {
        StatusCode::UNAUTHORIZED => unauthorized(reply),
        StatusCode::FORBIDDEN => Error::Denied {
            url: reply.url.clone(),
            detail: registry_detail(&reply.body),
        },
        StatusCode::TOO_MANY_REQUESTS => Error::RateLimited {
            url: reply.url.clone(),
            retry_after: None,
            rate_limit: RateLimit::from_headers(&reply.headers),
        },
        s => Error::Status {
            method: reply.method.to_string(),
            url: reply.url.clone(),
            status: s.as_u16(),
            detail: registry_detail(&reply.body),
        },
    }
}

fn available(platforms: &[PlatformManifest]) -> String {
    if platforms.is_empty() {
        return "none".into();
    }
    platforms
        .iter()
        .map(|p| p.platform.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Link: <url>; rel="next"` → url.
fn next_link(header: &str) -> Option<String> {
    for part in header.split(',') {
        let part = part.trim();
        let (target, params) = part.split_once(';').unwrap_or((part, ""));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        if params.split(';').any(|p| {
            matches!(
                p.trim().replace(' ', "").as_str(),
                "rel=\"next\"" | "rel=next"
            )
        }) {
            return Some(target.to_string());
        }
    }
    None
}

/// Exponential backoff with full jitter, capped.
fn backoff(policy: &crate::config::RetryPolicy, attempt: u32) -> Duration {
    let exp = policy
        .base_delay
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let cap = exp.min(policy.max_delay);
    let ms = cap.as_millis() as u64;
    if ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::random_range(ms / 2..=ms))
}

fn jitter(d: Duration, frac: f64) -> Duration {
    let f = 1.0 + rand::random_range(-frac..=frac);
    d.mul_f64(f.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn link_header_forms() {
        assert_eq!(
            next_link(r#"</v2/foo/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/foo/tags/list?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<https://r/a>; rel="prev", <https://r/b>; rel=next"#).as_deref(),
            Some("https://r/b")
        );
        assert_eq!(next_link("garbage"), None);
        assert_eq!(next_link(r#"<x>; rel="prev""#), None);
    }

    #[test]
    fn endpoints_mirrors_and_plain_http() {
        let c = Client::new(ClientConfig {
            plain_http: vec!["127.0.0.1:5000".into(), "insecure.local".into()],
            mirrors: vec![("docker.io".into(), "http://127.0.0.1:9/prefix".into())],
            ..Default::default()
        })
        .unwrap();
        let e = c.endpoint("docker.io").unwrap();
        assert_eq!(e.base, "http://127.0.0.1:9/prefix");
        assert_eq!(e.key, "127.0.0.1:9");
        assert_eq!(
            c.endpoint("index.docker.io").unwrap().base,
            "http://127.0.0.1:9/prefix"
        );
        assert_eq!(
            c.endpoint("127.0.0.1:5000").unwrap().base,
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            c.endpoint("127.0.0.1:5001").unwrap().base,
            "https://127.0.0.1:5001"
        );
        assert_eq!(
            c.endpoint("insecure.local:8080").unwrap().base,
            "http://insecure.local:8080"
        );
        assert_eq!(c.endpoint("ghcr.io").unwrap().base, "https://ghcr.io");
        let plain = Client::new(ClientConfig::default()).unwrap();
        assert_eq!(
            plain.endpoint("docker.io").unwrap().base,
            "https://registry-1.docker.io"
        );
        assert_eq!(plain.endpoint("docker.io").unwrap().key, "docker.io");
        assert!(plain.endpoint("").is_err());
    }

    #[test]
    fn registry_detail_reads_error_bodies() {
        assert_eq!(
            registry_detail(
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#
            ),
            "MANIFEST_UNKNOWN: manifest unknown"
        );
        assert_eq!(registry_detail(b""), "no details");
        assert_eq!(registry_detail(b"oops"), "oops");
    }

    proptest! {
        #[test]
        fn backoff_stays_within_cap(attempt in 0u32..100) {
            let p = crate::config::RetryPolicy::default();
            prop_assert!(backoff(&p, attempt) <= p.max_delay);
        }

        #[test]
        fn next_link_never_panics(s in "\\PC{0,100}") {
            let _ = next_link(&s);
        }
    }
}
