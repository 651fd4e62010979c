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
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use ferry_core::Reference;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Body;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::error::{ConfigProblem, Error, Result};

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
    ) -> std::result::Result<ImageHint, BadPayload> {
        let registry = normalize_registry(registry);
        if registry.is_empty() {
            return Err(BadPayload::NoRegistry {
                repository: repository.to_string(),
            });
        }
        let suffix = tag.map(|t| format!(":{t}")).unwrap_or_default();
        let parsed = Reference::parse(&format!("{registry}/{repository}{suffix}"))?;
        let (registry, reference) = if parsed.registry() == registry {
            (registry, parsed)
        } else {
            // A host that distribution's grammar does not see as a domain (no dot, no port,
            // not localhost): keep it as given; no workload image can name it, so it matches
            // nothing, but the event is still well-formed.
            let r = Reference::parse(&format!("example.invalid/{repository}{suffix}"))?;
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
            return Err(Error::Config(ConfigProblem::EmptyWebhookSecret));
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
) -> std::result::Result<Vec<ImageHint>, BadPayload> {
    match source {
        Source::Distribution => payloads::distribution(body),
        Source::DockerHub => payloads::dockerhub(body),
        Source::GitHub => payloads::github(body, github_event),
        Source::Harbor => payloads::harbor(body),
        Source::Generic => payloads::generic(body),
    }
}

/// What is wrong with a webhook body (answered `400` with this text; not a pass error).
#[derive(Debug)]
pub enum BadPayload {
    /// The body is not JSON of the expected shape.
    Json(serde_json::Error),
    /// An image reference in the payload is invalid.
    Reference(ferry_core::Error),
    /// The payload names a repository but no registry host.
    NoRegistry {
        /// The repository as given.
        repository: String,
    },
    /// A distribution push event lacks this field (`target.repository`, `request.host`).
    PushWithout(&'static str),
    /// A GitHub `package` event carries neither `package` nor `registry_package`.
    NoPackage,
    /// A GitHub package names neither `owner.login` nor `package_url`.
    NoOwner,
    /// A Harbor `PUSH_ARTIFACT` lacks this field (`event_data`, `event_data.repository`).
    ArtifactWithout(&'static str),
    /// A Harbor resource has no `resource_url`.
    NoResourceUrl,
    /// Entry `index` of the list `list` (`events`, `resources`) is bad.
    Item {
        /// The list's field name.
        list: &'static str,
        /// The entry's index.
        index: usize,
        /// What is wrong with it.
        cause: Box<BadPayload>,
    },
}

impl BadPayload {
    fn at(list: &'static str, index: usize) -> impl FnOnce(BadPayload) -> BadPayload {
        move |cause| BadPayload::Item {
            list,
            index,
            cause: Box::new(cause),
        }
    }
}

impl From<ferry_core::Error> for BadPayload {
    fn from(e: ferry_core::Error) -> Self {
        BadPayload::Reference(e)
    }
}

impl fmt::Display for BadPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadPayload::Json(e) => write!(f, "invalid JSON payload: {e}"),
            BadPayload::Reference(e) => write!(f, "{e}"),
            BadPayload::NoRegistry { repository } => {
                write!(f, "no registry host for repository {repository:?}")
            }
            BadPayload::PushWithout(field) => write!(f, "push without {field}"),
            BadPayload::NoPackage => f.write_str("no package or registry_package object"),
            BadPayload::NoOwner => f.write_str("package without owner.login or package_url"),
            BadPayload::ArtifactWithout(field) => write!(f, "PUSH_ARTIFACT without {field}"),
            BadPayload::NoResourceUrl => f.write_str("no resource_url"),
            BadPayload::Item { list, index, cause } => write!(f, "{list}[{index}]: {cause}"),
        }
    }
}

mod payloads;
mod server;

pub use server::{Debouncer, Receiver};

#[cfg(test)]
mod tests;
