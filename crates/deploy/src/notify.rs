//! Notifications (`--notify URL`, `--notify-format slack|json`): one message per update,
//! rollback, quarantine and failure, sent off the pass.
//!
//! [`Notifier::send`] never waits: it puts the [`Notification`] into one bounded queue per URL
//! and returns; a full queue drops the message and counts it (`dropped`). One task per URL
//! delivers its queue in order, each request bounded by [`NotifierConfig::timeout`], with up to
//! [`NotifierConfig::attempts`] tries and doubling backoff on connection errors, timeouts, 429 and
//! 5xx (other 4xx answers are final). A dead or hanging receiver therefore delays nothing but its
//! own queue, and never a pass.
//!
//! Bodies ([`Format`]):
//! * `json` (default): `{"event","namespace","kind","name","container","from","to","reason","time"}`
//!   with `event` one of `update`, `rollback`, `quarantine`, `failure` and `time` RFC 3339 UTC.
//! * `slack`: an incoming-webhook body `{"text": "…"}`.
//!
//! ```no_run
//! # async fn run() -> ferry_deploy::Result<()> {
//! use ferry_deploy::notify::{Event, Format, Notification, Notifier, NotifierConfig};
//! let config = NotifierConfig::new(vec!["https://hooks.slack.com/services/T/B/X".parse().unwrap()], Format::Slack);
//! let notifier = Notifier::new(config)?;
//! notifier.send(Notification {
//!     event: Event::Update,
//!     namespace: "shop".into(), kind: "Deployment".into(), name: "web".into(),
//!     container: "app".into(),
//!     from: "ghcr.io/o/web:v1@sha256:…".into(), to: "ghcr.io/o/web:v2@sha256:…".into(),
//!     reason: "semver ^1: v2 is the newest".into(),
//!     time: std::time::SystemTime::now(),
//! });
//! notifier.close().await; // at shutdown: deliver what is queued
//! # Ok(()) }
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use url::Url;

use crate::error::{ConfigProblem, Error, Result};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// A container was moved to a new image.
    Update,
    /// A rollout was rolled back.
    Rollback,
    /// A digest was quarantined after a failed rollout.
    Quarantine,
    /// An update could not be applied.
    Failure,
}

impl Event {
    /// `update`, `rollback`, `quarantine`, `failure`.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Update => "update",
            Event::Rollback => "rollback",
            Event::Quarantine => "quarantine",
            Event::Failure => "failure",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Event::Update => "updated",
            Event::Rollback => "rolled back",
            Event::Quarantine => "quarantined an image of",
            Event::Failure => "failed to update",
        }
    }
}

/// One message. `from`/`to` are image references (either may be empty, e.g. for a failure
/// before a target was known).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// What happened.
    pub event: Event,
    /// Workload namespace.
    pub namespace: String,
    /// Workload kind (`Deployment`, …).
    pub kind: String,
    /// Workload name.
    pub name: String,
    /// Container name.
    pub container: String,
    /// Image before.
    pub from: String,
    /// Image after (or the target that failed or was quarantined).
    pub to: String,
    /// Why, in the words of the decision.
    pub reason: String,
    /// When; serialized as RFC 3339 UTC (`2026-11-29T12:00:00Z`).
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_seconds(*t))
}

impl Notification {
    /// The one-line text of the Slack body.
    pub fn text(&self) -> String {
        let mut t = format!(
            "ferry {} {}/{} in {}",
            self.event.verb(),
            self.kind.to_ascii_lowercase(),
            self.name,
            self.namespace
        );
        if !self.container.is_empty() {
            t.push_str(&format!(", container {}", self.container));
        }
        match (self.from.is_empty(), self.to.is_empty()) {
            (false, false) => t.push_str(&format!(": {} → {}", self.from, self.to)),
            (true, false) => t.push_str(&format!(": {}", self.to)),
            (false, true) => t.push_str(&format!(": {}", self.from)),
            (true, true) => {}
        }
        if !self.reason.is_empty() {
            t.push_str(&format!(" ({})", self.reason));
        }
        t
    }

    /// The request body in `format`.
    pub fn body(&self, format: Format) -> String {
        match format {
            Format::Json => serde_json::to_string(self).unwrap_or_default(),
            Format::Slack => serde_json::json!({ "text": slack_escape(&self.text()) }).to_string(),
        }
    }
}

/// Slack's mrkdwn gives `&`, `<` and `>` meaning; they must be sent as entities.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The body format of every URL of a notifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The JSON object with the nine fields.
    #[default]
    Json,
    /// `{"text": …}` for Slack incoming webhooks (and Mattermost, Rocket.Chat…).
    Slack,
}

impl FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Format> {
        match s {
            "json" => Ok(Format::Json),
            "slack" => Ok(Format::Slack),
            other => Err(Error::Config(ConfigProblem::NotifyFormat {
                given: other.to_string(),
            })),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Json => "json",
            Format::Slack => "slack",
        })
    }
}

/// Where and how to send.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// Receivers (`--notify`, repeatable). A URL may hold a token (Slack's does): it is never
    /// logged in full, only its host.
    pub urls: Vec<Url>,
    /// Body format.
    pub format: Format,
    /// Messages queued per URL before new ones are dropped (100).
    pub queue: usize,
    /// Bound of one request, body included (5 s).
    pub timeout: Duration,
    /// Tries per message and URL (3).
    pub attempts: u32,
    /// Wait before the second try, doubled before each further one (1 s).
    pub backoff: Duration,
}

impl NotifierConfig {
    /// The defaults for `urls` in `format`.
    pub fn new(urls: Vec<Url>, format: Format) -> NotifierConfig {
        NotifierConfig {
            urls,
            format,
            queue: 100,
            timeout: Duration::from_secs(5),
            attempts: 3,
            backoff: Duration::from_secs(1),
        }
    }
}

/// Delivery counts (cheap to clone; clones share counts).
#[derive(Debug, Clone, Default)]
pub struct NotifyCounters {
    inner: Arc<[AtomicU64; 3]>,
}

const SENT: usize = 0;
const FAILED: usize = 1;
const DROPPED: usize = 2;

impl NotifyCounters {
    /// Messages delivered (2xx), counted per URL.
    pub fn sent(&self) -> u64 {
        self.inner[SENT].load(Ordering::Relaxed)
    }
    /// Messages given up after their last try, per URL.
    pub fn failed(&self) -> u64 {
        self.inner[FAILED].load(Ordering::Relaxed)
    }
    /// Messages dropped because a URL's queue was full.
    pub fn dropped(&self) -> u64 {
        self.inner[DROPPED].load(Ordering::Relaxed)
    }
    fn add(&self, which: usize) {
        self.inner[which].fetch_add(1, Ordering::Relaxed);
    }

    /// Append `ferry_notifications_total{result="sent|failed|dropped"}` to `out`.
    pub fn render_prometheus(&self, out: &mut String) {
        out.push_str(
            "# HELP ferry_notifications_total Notifications by result (per receiver URL).\n",
        );
        out.push_str("# TYPE ferry_notifications_total counter\n");
        for (label, v) in [
            ("sent", self.sent()),
            ("failed", self.failed()),
            ("dropped", self.dropped()),
        ] {
            out.push_str(&format!(
                "ferry_notifications_total{{result=\"{label}\"}} {v}\n"
            ));
        }
    }
}

/// Sends notifications in the background; see the module docs.
#[derive(Debug)]
pub struct Notifier {
    queues: Vec<(String, mpsc::Sender<Notification>)>,
    workers: Vec<JoinHandle<()>>,
    counters: NotifyCounters,
}

impl Notifier {
    /// Start one delivery task per URL. Must be called inside a tokio runtime. With no URLs the
    /// notifier accepts and discards everything.
    pub fn new(config: NotifierConfig) -> Result<Notifier> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("ferry-deploy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(ConfigProblem::NotifyClient(e)))?;
        let counters = NotifyCounters::default();
        let mut queues = Vec::new();
        let mut workers = Vec::new();
        for url in &config.urls {
            let (tx, rx) = mpsc::channel(config.queue.max(1));
            let worker = Worker {
                http: http.clone(),
                url: url.clone(),
                config: config.clone(),
                counters: counters.clone(),
            };
            workers.push(tokio::spawn(worker.run(rx)));
            queues.push((redacted(url), tx));
        }
        Ok(Notifier {
            queues,
            workers,
            counters,
        })
    }

    /// Queue `n` for every URL and return at once; a full queue drops it (counted, logged).
    pub fn send(&self, n: Notification) {
        for (url, tx) in &self.queues {
            if let Err(e) = tx.try_send(n.clone()) {
                self.counters.add(DROPPED);
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "queue full",
                    mpsc::error::TrySendError::Closed(_) => "sender stopped",
                };
                tracing::warn!("notification to {url} dropped ({why}): {}", n.text());
            }
        }
    }

    /// The delivery counters.
    pub fn counters(&self) -> NotifyCounters {
        self.counters.clone()
    }

    /// Stop accepting, deliver what is queued (with its retries), then return. Bound it with a
    /// timeout at shutdown if receivers may hang.
    pub async fn close(self) {
        drop(self.queues);
        for w in self.workers {
            let _ = w.await;
        }
    }
}

/// `https://hooks.slack.com/…` → `https://hooks.slack.com` (the path holds the token).
fn redacted(url: &Url) -> String {
    format!("{}://{}", url.scheme(), url.host_str().unwrap_or("?"))
}

/// Why the last try to deliver a notification failed (logged, never returned to a caller).
#[derive(Debug)]
enum Undelivered {
    /// The endpoint answered with a non-success status.
    Status(reqwest::StatusCode),
    /// No answer within the timeout.
    Timeout(Duration),
    /// The request failed (connection, TLS…).
    Request(reqwest::Error),
}

impl fmt::Display for Undelivered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Undelivered::Status(s) => write!(f, "HTTP {s}"),
            Undelivered::Timeout(t) => write!(f, "no answer within {t:?}"),
            Undelivered::Request(e) => write!(f, "request failed: {e}"),
        }
    }
}

struct Worker {
    http: reqwest::Client,
    url: Url,
    config: NotifierConfig,
    counters: NotifyCounters,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Notification>) {
        while let Some(n) = rx.recv().await {
            match self.deliver(&n).await {
                Ok(()) => self.counters.add(SENT),
                Err(e) => {
                    self.counters.add(FAILED);
                    tracing::warn!(
                        "notification to {} failed after {} tries: {e}: {}",
                        redacted(&self.url),
                        self.config.attempts.max(1),
                        n.text()
                    );
                }
            }
        }
    }

    /// One message, with retries; the failure of the last try.
    async fn deliver(&self, n: &Notification) -> std::result::Result<(), Undelivered> {
        let body = n.body(self.config.format);
        let mut wait = self.config.backoff;
        let attempts = self.config.attempts.max(1);
        let mut attempt = 1;
        loop {
            let sent = self
                .http
                .post(self.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            let (failure, retry) = match sent {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => {
                    let s = r.status();
                    let retry = s.is_server_error() || s == reqwest::StatusCode::TOO_MANY_REQUESTS;
                    (Undelivered::Status(s), retry)
                }
                Err(e) if e.is_timeout() => (Undelivered::Timeout(self.config.timeout), true),
                Err(e) => (Undelivered::Request(e.without_url()), true),
            };
            if !retry || attempt >= attempts {
                return Err(failure);
            }
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests;
