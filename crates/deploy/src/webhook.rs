//! Registry webhooks: push events that make a pass start at once instead of at the next tick.
//!
//! A [`Receiver`] answers five endpoints (HTTP/1.1, served by hyper):
//!
//! | Endpoint | Payload | Authentication |
//! |---|---|---|
//! | `POST /webhooks/distribution` | CNCF distribution notifications envelope `{"events":[…]}` | `Authorization: Bearer <secret>` |
//! | `POST /webhooks/dockerhub?token=<secret>` | Docker Hub (`push_data.tag`, `repository.repo_name`) | the `token` query parameter |
//! | `POST /webhooks/github` | `package` / `registry_package` events (ghcr.io) | `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>` |
//! | `POST /webhooks/harbor` | Harbor `PUSH_ARTIFACT` | `Authorization: Bearer <secret>` |
//! | `POST /webhooks/generic` | `{"image": "repo:tag"}` | `Authorization: Bearer <secret>` |
//!
//! Answers: a wrong or missing secret → 401; a body over [`MAX_BODY_BYTES`] → 413; a payload
//! that does not parse → 400; an authenticated event that is not a tagged push (a pull, a blob,
//! a delete, a ping, a manifest pushed by digest only) → 200 and ignored (distribution retries an
//! endpoint until it answers 2xx); a push → 202 and one [`ImageHint`] per pushed tag on the
//! channel given to [`Receiver::new`]. When that channel is full, or the receiver was switched
//! off with [`Receiver::set_active`] (a replica without the lease), a push is answered 503 with
//! `Retry-After` (distribution retries; the next periodic pass covers the others). A client that
//! sends its headers or body too slowly is cut off ([`WebhookConfig::header_timeout`],
//! [`WebhookConfig::body_timeout`]; a slow body gets 408).
//!
//! Secrets are compared in constant time (SHA-256 of both sides compared with `subtle`, so even
//! the length does not leak); the GitHub signature is checked with `hmac`'s constant-time verify.
//!
//! A hint is never trusted for a digest: the controller resolves the tag from the registry as in
//! every pass. [`ImageHint::matches`] compares a hint with a workload's image by registry and
//! repository only (a push of `v1.3` concerns a workload on `v1.2` under a semver policy).
//! [`Debouncer`] turns the stream of hints into batches, one per window (default
//! [`DEFAULT_DEBOUNCE`]), so a burst of pushes starts one pass. [`WebhookCounters`] counts
//! requests as `ferry_webhooks_total{source,result}`.
//!
//! ```no_run
//! # async fn run(listener: tokio::net::TcpListener) -> ferry_deploy::Result<()> {
//! use ferry_deploy::webhook::{Debouncer, Receiver, Secret, WebhookConfig, DEFAULT_DEBOUNCE};
//! let (tx, rx) = tokio::sync::mpsc::channel(1024);
//! let receiver = Receiver::new(WebhookConfig::new(Secret::new("s3cret")?), tx);
//! let counters = receiver.counters(); // render into /metrics
//! tokio::spawn(receiver.serve(listener, std::future::pending()));
//! let mut debouncer = Debouncer::new(rx, DEFAULT_DEBOUNCE);
//! while let Some(batch) = debouncer.next_batch().await {
//!     // start a pass limited to the workloads whose images `batch` matches
//! #   let _ = (&batch, &counters);
//! }
//! # Ok(()) }
//! ```

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use ferry_core::Reference;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};

use crate::error::{Error, Result};

/// The largest body accepted (1 MiB); a larger one is answered 413.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// How long hints are collected into one batch after the first one arrives.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_secs(1);
/// The media type of distribution's notification envelope.
pub const DISTRIBUTION_MEDIA_TYPE: &str = "application/vnd.docker.distribution.events.v1+json";

/// Bytes of an oversized body read and thrown away before answering 413, so that the client
/// reads the answer instead of a connection reset.
const DRAIN_LIMIT: usize = 8 * MAX_BODY_BYTES;

/// Which endpoint (and payload format) a hint came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// CNCF distribution notifications (`/webhooks/distribution`).
    Distribution,
    /// Docker Hub (`/webhooks/dockerhub`).
    DockerHub,
    /// GitHub `package` / `registry_package` events (`/webhooks/github`).
    GitHub,
    /// Harbor `PUSH_ARTIFACT` (`/webhooks/harbor`).
    Harbor,
    /// `{"image": "repo:tag"}` from scripts and CI (`/webhooks/generic`).
    Generic,
}

impl Source {
    /// Every source, in label order.
    pub const ALL: [Source; 5] = [
        Source::Distribution,
        Source::DockerHub,
        Source::GitHub,
        Source::Harbor,
        Source::Generic,
    ];

    /// The label value and path segment: `distribution`, `dockerhub`, `github`, `harbor`,
    /// `generic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Distribution => "distribution",
            Source::DockerHub => "dockerhub",
            Source::GitHub => "github",
            Source::Harbor => "harbor",
            Source::Generic => "generic",
        }
    }

    fn from_path(path: &str) -> Option<Source> {
        let name = path.strip_prefix("/webhooks/")?;
        Source::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// "Something was pushed to this repository": a reason to look, never a digest to trust.
///
/// `registry` and `repository` are normalized like [`Reference`] (`docker.io`, `library/`
/// added to official images, `index.docker.io` and `registry-1.docker.io` → `docker.io`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ImageHint {
    /// Registry domain (with port), e.g. `ghcr.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// Repository path, e.g. `library/nginx`.
    pub repository: String,
    /// The pushed tag, when the event names one (a generic event may name only a repository).
    pub tag: Option<String>,
    /// Where the event came from.
    pub source: Source,
}

impl ImageHint {
    /// Normalize `registry`, `repository` and `tag` into a hint; an error names what is invalid.
    pub fn new(
        source: Source,
        registry: &str,
        repository: &str,
        tag: Option<&str>,
    ) -> Result<ImageHint, String> {
        let registry = normalize_registry(registry);
        if registry.is_empty() {
            return Err(format!("no registry host for repository {repository:?}"));
        }
        let suffix = tag.map(|t| format!(":{t}")).unwrap_or_default();
        let parsed = Reference::parse(&format!("{registry}/{repository}{suffix}"))
            .map_err(|e| e.to_string())?;
        let (registry, reference) = if parsed.registry() == registry {
            (registry, parsed)
        } else {
            // A host that distribution's grammar does not see as a domain (no dot, no port,
            // not localhost): keep it as given; no workload image can name it, so it matches
            // nothing, but the event is still well-formed.
            let r = Reference::parse(&format!("example.invalid/{repository}{suffix}"))
                .map_err(|e| e.to_string())?;
            (registry, r)
        };
        Ok(ImageHint {
            registry,
            repository: reference.repository().to_string(),
            tag: reference.tag().map(str::to_string),
            source,
        })
    }

    /// Whether `image` (a workload's container image) lives in the repository this hint names.
    /// Tags are not compared: a policy may follow other tags than the one a workload runs.
    pub fn matches(&self, image: &Reference) -> bool {
        image.registry() == self.registry && image.repository() == self.repository
    }
}

impl fmt::Display for ImageHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        write!(f, " (from {})", self.source)
    }
}

fn normalize_registry(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    let host = host
        .strip_prefix("https://")
        .or_else(|| host.strip_prefix("http://"))
        .unwrap_or(&host);
    let host = host.split('/').next().unwrap_or_default();
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            ferry_core::reference::DEFAULT_REGISTRY.to_string()
        }
        h => h.to_string(),
    }
}

/// The shared webhook secret. Its `Debug` prints `<redacted>`.
#[derive(Clone)]
pub struct Secret {
    value: Arc<[u8]>,
    digest: [u8; 32],
}

impl Secret {
    /// A secret from the contents of a secret file: surrounding whitespace (the trailing
    /// newline of `echo s3cret > file`) is removed; an empty secret is refused.
    pub fn new(value: impl AsRef<str>) -> Result<Secret> {
        let v = value.as_ref().trim();
        if v.is_empty() {
            return Err(Error::Config(
                "the webhook secret is empty: write a secret into --webhook-secret-file".into(),
            ));
        }
        Ok(Secret {
            value: Arc::from(v.as_bytes()),
            digest: Sha256::digest(v.as_bytes()).into(),
        })
    }

    /// Whether `candidate` is the secret, in time independent of where they differ and of
    /// their lengths (both sides are hashed first).
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let d: [u8; 32] = Sha256::digest(candidate).into();
        bool::from(self.digest.ct_eq(&d))
    }

    /// Whether `header` is GitHub's `X-Hub-Signature-256` of `body` under this secret:
    /// `sha256=` followed by the hex HMAC-SHA256, verified in constant time.
    pub fn verify_github_signature(&self, body: &[u8], header: &str) -> bool {
        let Some(hex) = header.trim().strip_prefix("sha256=") else {
            return false;
        };
        let Some(expected) = decode_hex(hex) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.value) else {
            return false;
        };
        mac.update(body);
        mac.verify_slice(&expected).is_ok()
    }

    /// The `X-Hub-Signature-256` value GitHub would send for `body` (for tests and tools).
    pub fn github_signature(&self, body: &[u8]) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.value).expect("HMAC accepts keys of any length");
        mac.update(body);
        let bytes = mac.finalize().into_bytes();
        let mut s = String::from("sha256=");
        for b in bytes {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// Limits and the secret of a [`Receiver`].
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The shared secret of all endpoints.
    pub secret: Secret,
    /// Largest accepted body ([`MAX_BODY_BYTES`]).
    pub max_body_bytes: usize,
    /// Time a client has to send a request's headers, and that an idle kept-alive connection
    /// stays open (10 s).
    pub header_timeout: Duration,
    /// Time a client has to send a request's body (10 s); then 408.
    pub body_timeout: Duration,
    /// Connections served at once; further clients wait to be accepted (256).
    pub max_connections: usize,
}

impl WebhookConfig {
    /// The defaults with `secret`.
    pub fn new(secret: Secret) -> WebhookConfig {
        WebhookConfig {
            secret,
            max_body_bytes: MAX_BODY_BYTES,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_connections: 256,
        }
    }
}

/// What became of one webhook request (the `result` label of `ferry_webhooks_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A push: hints were sent (202).
    Accepted,
    /// Authenticated, but not a tagged push (200).
    Ignored,
    /// Wrong or missing secret or signature (401).
    Unauthorized,
    /// Body over the limit (413).
    TooLarge,
    /// The payload did not parse (400).
    Malformed,
    /// The body did not arrive in time (408).
    Timeout,
    /// The hint channel was full or closed, or the receiver is inactive (503).
    Busy,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Outcome; 7] = [
        Outcome::Accepted,
        Outcome::Ignored,
        Outcome::Unauthorized,
        Outcome::TooLarge,
        Outcome::Malformed,
        Outcome::Timeout,
        Outcome::Busy,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Ignored => "ignored",
            Outcome::Unauthorized => "unauthorized",
            Outcome::TooLarge => "too_large",
            Outcome::Malformed => "malformed",
            Outcome::Timeout => "timeout",
            Outcome::Busy => "busy",
        }
    }

    /// The HTTP status answered.
    pub fn status(self) -> StatusCode {
        match self {
            Outcome::Accepted => StatusCode::ACCEPTED,
            Outcome::Ignored => StatusCode::OK,
            Outcome::Unauthorized => StatusCode::UNAUTHORIZED,
            Outcome::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Outcome::Malformed => StatusCode::BAD_REQUEST,
            Outcome::Timeout => StatusCode::REQUEST_TIMEOUT,
            Outcome::Busy => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn index(self) -> usize {
        Outcome::ALL.iter().position(|o| *o == self).unwrap_or(0)
    }
}

/// Counters of webhook requests by source and outcome (cheap to clone; clones share counts).
#[derive(Debug, Clone, Default)]
pub struct WebhookCounters {
    counts: Arc<[[AtomicU64; Outcome::ALL.len()]; Source::ALL.len()]>,
}

impl WebhookCounters {
    /// Count one request.
    pub fn record(&self, source: Source, outcome: Outcome) {
        self.counts[source_index(source)][outcome.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests counted for `source` with `outcome`.
    pub fn get(&self, source: Source, outcome: Outcome) -> u64 {
        self.counts[source_index(source)][outcome.index()].load(Ordering::Relaxed)
    }

    /// Append `ferry_webhooks_total{source,result}` in Prometheus text format to `out`
    /// (every combination, zeros included, so rates start from a known value).
    pub fn render_prometheus(&self, out: &mut String) {
        out.push_str(
            "# HELP ferry_webhooks_total Webhook requests received, by source and result.\n",
        );
        out.push_str("# TYPE ferry_webhooks_total counter\n");
        for s in Source::ALL {
            for o in Outcome::ALL {
                out.push_str(&format!(
                    "ferry_webhooks_total{{source=\"{}\",result=\"{}\"}} {}\n",
                    s.as_str(),
                    o.as_str(),
                    self.get(s, o)
                ));
            }
        }
    }
}

fn source_index(s: Source) -> usize {
    Source::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

/// Parse one webhook body into hints (empty: an event to acknowledge and ignore).
///
/// `github_event` is GitHub's `X-GitHub-Event` header (`package`, `registry_package`, `ping`…);
/// without it the payload's shape decides. Pure: no IO, never panics; an error says what is
/// wrong with the payload.
pub fn parse_payload(
    source: Source,
    body: &[u8],
    github_event: Option<&str>,
) -> Result<Vec<ImageHint>, String> {
    match source {
        Source::Distribution => payloads::distribution(body),
        Source::DockerHub => payloads::dockerhub(body),
        Source::GitHub => payloads::github(body, github_event),
        Source::Harbor => payloads::harbor(body),
        Source::Generic => payloads::generic(body),
    }
}

mod payloads {
    //! The documented payload shapes, reduced to the fields ferry reads.

    use super::{Deserialize, ImageHint, Reference, Source};

    fn json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, String> {
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON payload: {e}"))
    }

    fn non_empty(s: Option<&str>) -> Option<&str> {
        s.map(str::trim).filter(|s| !s.is_empty())
    }

    #[derive(Deserialize)]
    struct Envelope {
        events: Vec<DistEvent>,
    }
    #[derive(Deserialize)]
    struct DistEvent {
        action: String,
        #[serde(default)]
        target: DistTarget,
        #[serde(default)]
        request: DistRequest,
    }
    #[derive(Deserialize, Default)]
    struct DistTarget {
        repository: Option<String>,
        tag: Option<String>,
    }
    #[derive(Deserialize, Default)]
    struct DistRequest {
        host: Option<String>,
    }

    /// Pushes with a tag; blob pushes and pushes by digest carry no tag and are ignored.
    pub(super) fn distribution(body: &[u8]) -> Result<Vec<ImageHint>, String> {
        let env: Envelope = json(body)?;
        let mut hints = Vec::new();
        for (i, e) in env.events.iter().enumerate() {
            let Some(tag) = non_empty(e.target.tag.as_deref()) else {
                continue;
            };
            if e.action != "push" {
                continue;
            }
            let repo = non_empty(e.target.repository.as_deref())
                .ok_or_else(|| format!("events[{i}]: push without target.repository"))?;
            let host = non_empty(e.request.host.as_deref())
                .ok_or_else(|| format!("events[{i}]: push without request.host"))?;
            let hint = ImageHint::new(Source::Distribution, host, repo, Some(tag))
                .map_err(|e| format!("events[{i}]: {e}"))?;
            hints.push(hint);
        }
        Ok(hints)
    }

    #[derive(Deserialize)]
    struct HubPayload {
        push_data: HubPushData,
        repository: HubRepository,
    }
    #[derive(Deserialize)]
    struct HubPushData {
        tag: Option<String>,
    }
    #[derive(Deserialize)]
    struct HubRepository {
        repo_name: String,
    }

    /// Docker Hub sends only pushes: `push_data.tag` of `repository.repo_name`.
    pub(super) fn dockerhub(body: &[u8]) -> Result<Vec<ImageHint>, String> {
        let p: HubPayload = json(body)?;
        let Some(tag) = non_empty(p.push_data.tag.as_deref()) else {
            return Ok(Vec::new());
        };
        let hint = ImageHint::new(
            Source::DockerHub,
            ferry_core::reference::DEFAULT_REGISTRY,
            p.repository.repo_name.trim(),
            Some(tag),
        )?;
        Ok(vec![hint])
    }

    #[derive(Deserialize)]
    struct GitHubPayload {
        action: Option<String>,
        package: Option<GitHubPackage>,
        registry_package: Option<GitHubPackage>,
    }
    #[derive(Deserialize)]
    struct GitHubPackage {
        name: String,
        package_type: Option<String>,
        owner: Option<GitHubOwner>,
        package_version: Option<GitHubVersion>,
    }
    #[derive(Deserialize)]
    struct GitHubOwner {
        login: String,
    }
    #[derive(Deserialize)]
    struct GitHubVersion {
        package_url: Option<String>,
        container_metadata: Option<GitHubContainer>,
    }
    #[derive(Deserialize)]
    struct GitHubContainer {
        tag: Option<GitHubTag>,
    }
    #[derive(Deserialize)]
    struct GitHubTag {
        name: Option<String>,
    }

    /// `package` / `registry_package` with action `published` or `updated` of a container
    /// package version that carries a tag; `ping` and other events are ignored.
    pub(super) fn github(body: &[u8], event: Option<&str>) -> Result<Vec<ImageHint>, String> {
        if matches!(event, Some(e) if e != "package" && e != "registry_package") {
            // Still require JSON: a body that is not JSON is no GitHub event at all.
            json::<serde_json::Value>(body)?;
            return Ok(Vec::new());
        }
        let p: GitHubPayload = json(body)?;
        let Some(pkg) = p.registry_package.or(p.package) else {
            return match event {
                Some(_) => Err("no package or registry_package object".into()),
                None => Ok(Vec::new()),
            };
        };
        let action = p.action.unwrap_or_default();
        let container = pkg
            .package_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("container"));
        if !container || !matches!(action.as_str(), "published" | "updated") {
            return Ok(Vec::new());
        }
        let version = pkg.package_version.as_ref();
        let tag = version
            .and_then(|v| v.container_metadata.as_ref())
            .and_then(|c| c.tag.as_ref())
            .and_then(|t| non_empty(t.name.as_deref()));
        let Some(tag) = tag else {
            return Ok(Vec::new());
        };
        let from_url = version
            .and_then(|v| non_empty(v.package_url.as_deref()))
            .and_then(|u| Reference::parse(u).ok());
        let hint = match from_url {
            Some(r) => ImageHint::new(Source::GitHub, r.registry(), r.repository(), Some(tag))?,
            None => {
                let owner = pkg
                    .owner
                    .as_ref()
                    .ok_or("package without owner.login or package_url")?;
                let repo = format!("{}/{}", owner.login, pkg.name).to_ascii_lowercase();
                ImageHint::new(Source::GitHub, "ghcr.io", &repo, Some(tag))?
            }
        };
        Ok(vec![hint])
    }

    #[derive(Deserialize)]
    struct HarborPayload {
        #[serde(rename = "type")]
        kind: String,
        event_data: Option<HarborData>,
    }
    #[derive(Deserialize)]
    struct HarborData {
        #[serde(default)]
        resources: Vec<HarborResource>,
        repository: Option<HarborRepository>,
    }
    #[derive(Deserialize)]
    struct HarborResource {
        tag: Option<String>,
        resource_url: Option<String>,
    }
    #[derive(Deserialize)]
    struct HarborRepository {
        repo_full_name: String,
    }

    /// `PUSH_ARTIFACT`: one hint per tagged resource; the registry host is the first part of
    /// its `resource_url`. Other event types are ignored.
    pub(super) fn harbor(body: &[u8]) -> Result<Vec<ImageHint>, String> {
        let p: HarborPayload = json(body)?;
        if p.kind != "PUSH_ARTIFACT" {
            return Ok(Vec::new());
        }
        let data = p.event_data.ok_or("PUSH_ARTIFACT without event_data")?;
        let repo = data
            .repository
            .ok_or("PUSH_ARTIFACT without event_data.repository")?
            .repo_full_name;
        let mut hints = Vec::new();
        for (i, r) in data.resources.iter().enumerate() {
            let Some(tag) = non_empty(r.tag.as_deref()) else {
                continue;
            };
            let url = non_empty(r.resource_url.as_deref())
                .ok_or_else(|| format!("resources[{i}]: no resource_url"))?;
            let host = url.split('/').next().unwrap_or_default();
            hints.push(
                ImageHint::new(Source::Harbor, host, repo.trim(), Some(tag))
                    .map_err(|e| format!("resources[{i}]: {e}"))?,
            );
        }
        Ok(hints)
    }

    #[derive(Deserialize)]
    struct GenericPayload {
        image: String,
    }

    /// `{"image": "registry/repo:tag"}`; without a tag the hint names the whole repository.
    pub(super) fn generic(body: &[u8]) -> Result<Vec<ImageHint>, String> {
        let p: GenericPayload = json(body)?;
        let r = Reference::parse(p.image.trim()).map_err(|e| e.to_string())?;
        Ok(vec![ImageHint::new(
            Source::Generic,
            r.registry(),
            r.repository(),
            r.tag(),
        )?])
    }
}

/// The HTTP side: authenticates, limits, parses, and sends hints to a channel.
#[derive(Debug, Clone)]
pub struct Receiver {
    config: Arc<WebhookConfig>,
    hints: mpsc::Sender<ImageHint>,
    counters: WebhookCounters,
    active: Arc<std::sync::atomic::AtomicBool>,
}

type Reply = Response<Full<Bytes>>;

impl Receiver {
    /// A receiver that sends each accepted push to `hints`.
    pub fn new(config: WebhookConfig, hints: mpsc::Sender<ImageHint>) -> Receiver {
        Receiver {
            config: Arc::new(config),
            hints,
            counters: WebhookCounters::default(),
            active: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }

    /// Whether pushes are taken (default: yes). A replica that does not hold the lease can set
    /// `false`: authenticated pushes are then answered 503 with `Retry-After` (distribution
    /// retries and may reach the leader through the Service), everything else as usual. Clones
    /// share this switch.
    pub fn set_active(&self, active: bool) {
        self.active.store(active, Ordering::Relaxed);
    }

    /// The request counters (shared with this receiver).
    pub fn counters(&self) -> WebhookCounters {
        self.counters.clone()
    }

    /// Answer one request. Unknown paths → 404, other methods than POST → 405; both are not
    /// counted (they are no webhook deliveries).
    pub async fn handle<B>(&self, req: Request<B>) -> Reply
    where
        B: Body<Data = Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let Some(source) = Source::from_path(req.uri().path()) else {
            return reply(StatusCode::NOT_FOUND, "not found\n");
        };
        if req.method() != Method::POST {
            let mut r = reply(StatusCode::METHOD_NOT_ALLOWED, "POST only\n");
            r.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
            return r;
        }
        let (outcome, detail) = self.process(source, req).await;
        self.counters.record(source, outcome);
        match outcome {
            Outcome::Accepted | Outcome::Ignored => {
                tracing::debug!(%source, result = outcome.as_str(), "webhook: {detail}");
            }
            _ => tracing::warn!(%source, result = outcome.as_str(), "webhook refused: {detail}"),
        }
        let mut r = reply(outcome.status(), &format!("{detail}\n"));
        match outcome {
            Outcome::Unauthorized => {
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer realm=\"ferry\""),
                );
            }
            Outcome::Busy => {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            }
            Outcome::TooLarge | Outcome::Timeout => {
                r.headers_mut().insert(
                    header::CONNECTION,
                    header::HeaderValue::from_static("close"),
                );
            }
            _ => {}
        }
        r
    }

    async fn process<B>(&self, source: Source, req: Request<B>) -> (Outcome, String)
    where
        B: Body<Data = Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let (parts, body) = req.into_parts();
        if !self.authorized_before_body(source, &parts.uri, &parts.headers) {
            return (Outcome::Unauthorized, "missing or wrong secret".into());
        }
        let body = match self.read_body(&parts.headers, body).await {
            Ok(b) => b,
            Err(o) => return (o, body_error(o, self.config.max_body_bytes)),
        };
        if source == Source::GitHub {
            let sig = header_str(&parts.headers, "x-hub-signature-256").unwrap_or_default();
            if !self.config.secret.verify_github_signature(&body, sig) {
                return (
                    Outcome::Unauthorized,
                    "X-Hub-Signature-256 does not match".into(),
                );
            }
        }
        let event = header_str(&parts.headers, "x-github-event");
        let hints = match parse_payload(source, &body, event) {
            Ok(h) => h,
            Err(e) => return (Outcome::Malformed, e),
        };
        if hints.is_empty() {
            return (Outcome::Ignored, "acknowledged, not a tagged push".into());
        }
        if !self.active.load(Ordering::Relaxed) {
            return (
                Outcome::Busy,
                "this replica does not lead, retry later".into(),
            );
        }
        let n = hints.len();
        for h in hints {
            if let Err(e) = self.hints.try_send(h) {
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "busy, retry later",
                    mpsc::error::TrySendError::Closed(_) => "not accepting hints (shutting down)",
                };
                return (Outcome::Busy, why.into());
            }
        }
        (Outcome::Accepted, format!("accepted {n} push event(s)"))
    }

    /// Bearer and query-token sources are checked before any body is read; GitHub needs the
    /// body, so here only the presence of its signature header is required.
    fn authorized_before_body(&self, source: Source, uri: &http::Uri, headers: &HeaderMap) -> bool {
        let secret = &self.config.secret;
        match source {
            Source::Distribution | Source::Harbor | Source::Generic => {
                header_str(headers, "authorization")
                    .and_then(bearer_token)
                    .is_some_and(|t| secret.matches(t.as_bytes()))
            }
            Source::DockerHub => uri.query().is_some_and(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .any(|(k, v)| k == "token" && secret.matches(v.as_bytes()))
            }),
            Source::GitHub => header_str(headers, "x-hub-signature-256").is_some(),
        }
    }

    async fn read_body<B>(&self, headers: &HeaderMap, body: B) -> Result<Bytes, Outcome>
    where
        B: Body<Data = Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let max = self.config.max_body_bytes;
        let declared = header_str(headers, "content-length").and_then(|v| v.parse::<u64>().ok());
        let timeout = self.config.body_timeout;
        if declared.is_some_and(|n| n > max as u64) {
            if declared.is_some_and(|n| n <= DRAIN_LIMIT as u64) {
                drain(body, timeout).await;
            }
            return Err(Outcome::TooLarge);
        }
        let mut body = std::pin::pin!(body);
        let mut buf = Vec::new();
        let mut seen = 0usize;
        let read = async {
            while let Some(frame) = body.frame().await {
                let Ok(data) = frame.map_err(|_| Outcome::Malformed)?.into_data() else {
                    continue;
                };
                seen += data.len();
                if seen > DRAIN_LIMIT {
                    break;
                }
                // Past the limit the rest is read and dropped, so the client sees the 413.
                if seen <= max {
                    buf.extend_from_slice(&data);
                }
            }
            Ok(())
        };
        let result = tokio::time::timeout(timeout, read).await;
        if seen > max {
            return Err(Outcome::TooLarge);
        }
        match result {
            Ok(Ok(())) => Ok(Bytes::from(buf)),
            Ok(Err(o)) => Err(o),
            Err(_) => Err(Outcome::Timeout),
        }
    }

    /// Serve the endpoints on `listener` until `shutdown` resolves; connections still open then
    /// are closed.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let limit = Arc::new(Semaphore::new(self.config.max_connections.max(1)));
        let mut connections = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                _ = &mut shutdown => break,
                p = limit.clone().acquire_owned() => p,
            };
            let Ok(permit) = permit else { break };
            let accepted = tokio::select! {
                _ = &mut shutdown => break,
                a = listener.accept() => a,
            };
            while connections.try_join_next().is_some() {}
            let stream = match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("webhook listener: accept failed: {e}");
                    continue;
                }
            };
            let this = self.clone();
            connections.spawn(async move {
                let _permit = permit;
                this.serve_connection(stream).await;
            });
        }
        connections.shutdown().await;
    }

    async fn serve_connection(self, stream: tokio::net::TcpStream) {
        let header_timeout = self.config.header_timeout;
        let service = hyper::service::service_fn(move |req| {
            let this = self.clone();
            async move { Ok::<_, Infallible>(this.handle(req).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        if let Err(e) = conn.await {
            tracing::debug!("webhook connection: {e}");
        }
    }
}

fn reply(status: StatusCode, text: &str) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(text.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn body_error(o: Outcome, max: usize) -> String {
    match o {
        Outcome::TooLarge => format!("body larger than {max} bytes"),
        Outcome::Timeout => "body not received in time".into(),
        _ => "body could not be read".into(),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The token of `Bearer <token>` (scheme case-insensitive, as RFC 7235 says).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Read and discard up to [`DRAIN_LIMIT`] bytes for at most `timeout`.
async fn drain<B: Body<Data = Bytes>>(body: B, timeout: Duration) {
    let mut body = std::pin::pin!(body);
    let mut seen = 0usize;
    let _ = tokio::time::timeout(timeout, async {
        while let Some(Ok(f)) = body.frame().await {
            seen += f.data_ref().map_or(0, |d| d.len());
            if seen > DRAIN_LIMIT {
                break;
            }
        }
    })
    .await;
}

/// Collects hints into batches: the first hint opens a window of `window`; everything that
/// arrives before it closes is returned together, deduplicated and sorted.
///
/// [`Debouncer::next_batch`] is cancel-safe: hints collected by a cancelled call (for example
/// in a `select!` with the interval tick) are kept for the next call.
#[derive(Debug)]
pub struct Debouncer {
    rx: mpsc::Receiver<ImageHint>,
    window: Duration,
    pending: BTreeSet<ImageHint>,
    deadline: Option<tokio::time::Instant>,
}

impl Debouncer {
    /// A debouncer reading `rx` with batches at most `window` after their first hint.
    pub fn new(rx: mpsc::Receiver<ImageHint>, window: Duration) -> Debouncer {
        Debouncer {
            rx,
            window,
            pending: BTreeSet::new(),
            deadline: None,
        }
    }

    /// The next batch; `None` once every sender is gone and nothing is pending.
    pub async fn next_batch(&mut self) -> Option<Vec<ImageHint>> {
        loop {
            let Some(deadline) = self.deadline else {
                let first = self.rx.recv().await?;
                self.pending.insert(first);
                self.deadline = Some(tokio::time::Instant::now() + self.window);
                continue;
            };
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Some(self.take()),
                h = self.rx.recv() => match h {
                    Some(h) => { self.pending.insert(h); }
                    None => return Some(self.take()),
                },
            }
        }
    }

    fn take(&mut self) -> Vec<ImageHint> {
        self.deadline = None;
        std::mem::take(&mut self.pending).into_iter().collect()
    }
}

#[cfg(test)]
mod tests;
