//! The HTTP side: the [`Receiver`] (hyper, limits, authentication, answers) and the
//! [`Debouncer`] that turns hints into batches.

use super::*;

/// The HTTP side: authenticates, limits, parses, and sends hints to a channel.
#[derive(Debug, Clone)]
pub struct Receiver {
    config: Arc<WebhookConfig>,
    hints: mpsc::Sender<ImageHint>,
    counters: WebhookCounters,
    active: Arc<std::sync::atomic::AtomicBool>,
}

use crate::server::Reply;

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
            Err(e) => return (Outcome::Malformed, e.to_string()),
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

    /// Serve the endpoints on `listener` until `shutdown` resolves (on [`crate::server::serve`]);
    /// connections still open then are closed.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let limits = crate::server::Limits {
            max_connections: self.config.max_connections,
            header_timeout: self.config.header_timeout,
        };
        crate::server::serve("webhook", listener, limits, shutdown, move |req| {
            let this = self.clone();
            async move { this.handle(req).await }
        })
        .await;
    }
}

fn reply(status: StatusCode, text: &str) -> Reply {
    crate::server::reply(status, "text/plain; charset=utf-8", text.to_string())
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
