//! The wire layer, the bottom of the client: one request sent and read in full (body capped, one
//! timeout covering the body), replies mapped to errors, and the one retry loop every request
//! goes through — registry calls and token requests alike. It knows nothing of authentication:
//! the layer above hands the loop an [`Attempt`] that adds it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use tokio::sync::Semaphore;
use url::Url;

use crate::config::{CaCertificates, ClientConfig, RetryPolicy};
use crate::detail::{Refusal, RegistryWords};
use crate::error::{ConfigProblem, Error, Result};
use crate::ratelimit::{RateLimit, parse_retry_after};
use ferry_core::sync::Lock;

/// Error bodies are read only for their message: at least this much…
const ERROR_BODY_MIN: usize = 16 * 1024;
/// …and at most this much.
const ERROR_BODY_MAX: usize = 64 * 1024;

/// One HTTP request, before authentication.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) method: Method,
    pub(super) url: Url,
    pub(super) accept: Option<&'static str>,
    pub(super) content_type: Option<String>,
    pub(super) body: Option<Bytes>,
    /// Largest successful body accepted (error bodies are capped separately).
    pub(super) limit: usize,
}

impl Request {
    pub(super) fn new(method: Method, url: Url) -> Self {
        Request {
            method,
            url,
            accept: None,
            content_type: None,
            body: None,
            limit: 0,
        }
    }

    pub(super) fn accept(mut self, accept: &'static str) -> Self {
        self.accept = Some(accept);
        self
    }

    pub(super) fn body(mut self, content_type: Option<String>, body: Bytes) -> Self {
        self.content_type = content_type;
        self.body = Some(body);
        self
    }

    pub(super) fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
}

/// A response read in full (body capped).
#[derive(Debug)]
pub(super) struct Reply {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: Bytes,
    pub(super) url: String,
    pub(super) method: Method,
}

/// What one attempt came to, as the retry loop sees it.
enum Verdict {
    /// Hand this to the caller as it is.
    Final(Result<Reply>),
    /// Worth another attempt after `after` (a backoff when `None`); `fail` is what the caller
    /// gets when no attempt or no wait budget is left.
    Retry {
        after: Option<Duration>,
        fail: Result<Reply>,
    },
}

/// Sort the outcome of one send: 429 (honouring `Retry-After`), 5xx, 408 and transient errors
/// are worth another attempt; everything else is final.
fn classify(outcome: Result<Reply>) -> Verdict {
    match outcome {
        Ok(reply) if reply.status == StatusCode::TOO_MANY_REQUESTS => {
            let after = reply
                .headers
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            let fail = Err(Error::RateLimited {
                url: reply.url.clone(),
                retry_after: after,
                rate_limit: RateLimit::from_headers(&reply.headers),
            });
            Verdict::Retry { after, fail }
        }
        Ok(reply)
            if reply.status.is_server_error() || reply.status == StatusCode::REQUEST_TIMEOUT =>
        {
            Verdict::Retry {
                after: None,
                fail: Ok(reply),
            }
        }
        Err(e) if e.is_transient() => Verdict::Retry {
            after: None,
            fail: Err(e),
        },
        other => Verdict::Final(other),
    }
}

/// One attempt of a request, as the layer above the wire makes it: the auth layer sends with
/// the registry's current authorization and answers challenges; a token request sends with a
/// fixed one ([`Fixed`]). The wire layer knows nothing of either.
pub(super) trait Attempt {
    /// Send `req` once through `wire`. `Err` ends the request as it is (never retried: an
    /// authentication failure); `Ok` is the send's outcome, for the retry loop to judge.
    async fn once(&mut self, wire: &Wire, req: &Request) -> Result<Result<Reply>>;
}

/// Attempts sent to `host` with the same authorization each time (basic credentials or none):
/// how token servers are asked.
pub(super) struct Fixed {
    pub(super) host: String,
    pub(super) auth: Option<HeaderValue>,
}

impl Attempt for Fixed {
    async fn once(&mut self, wire: &Wire, req: &Request) -> Result<Result<Reply>> {
        Ok(wire.send_once(&self.host, req, self.auth.clone()).await)
    }
}

/// The bottom layer: the HTTP client, one timeout per request, per-host concurrency and the
/// retry policy. It calls nothing above it.
#[derive(Debug)]
pub(super) struct Wire {
    http: reqwest::Client,
    timeout: Duration,
    retry: RetryPolicy,
    per_host: usize,
    hosts: Lock<HashMap<String, Arc<Semaphore>>>,
}

impl Wire {
    pub(super) fn new(config: &ClientConfig) -> Result<Self> {
        Ok(Wire {
            http: http_client(config)?,
            timeout: config.timeout,
            retry: config.retry.clone(),
            per_host: config.max_concurrency_per_host.max(1),
            hosts: Lock::default(),
        })
    }

    /// The one retry loop, for registry and token requests alike: attempt until the verdict is
    /// final, the attempts are spent, or the next wait would pass the total wait budget (then
    /// the last failure is returned).
    pub(super) async fn retrying(
        &self,
        attempt: &mut impl Attempt,
        req: &Request,
    ) -> Result<Reply> {
        let policy = &self.retry;
        let mut waited = Duration::ZERO;
        let mut n = 0u32;
        loop {
            n = n.saturating_add(1);
            let verdict = match attempt.once(self, req).await {
                Ok(outcome) => classify(outcome),
                Err(e) => Verdict::Final(Err(e)),
            };
            let (after, fail) = match verdict {
                Verdict::Final(result) => return result,
                Verdict::Retry { after, fail } => (after, fail),
            };
            let delay = after.unwrap_or_else(|| backoff(policy, n));
            let Some(delay) = next_wait(policy, n, waited, delay) else {
                return fail;
            };
            tracing::debug!(url = %req.url, attempt = n, ?delay, "retrying after transient failure");
            tokio::time::sleep(delay).await;
            waited = waited.saturating_add(delay);
        }
    }

    /// Send once and read the reply in full, holding one of the host's concurrency permits.
    pub(super) async fn send_once(
        &self,
        host: &str,
        req: &Request,
        auth: Option<HeaderValue>,
    ) -> Result<Reply> {
        let permit = self.host_semaphore(host).acquire_owned().await;
        let url = req.url.to_string();
        let started = Instant::now();
        let timeout = self.timeout;
        let fut = async {
            let resp = self
                .request_builder(req, auth)
                .send()
                .await
                .map_err(|source| Error::Transport {
                    url: url.clone(),
                    source,
                })?;
            read_capped(resp, &req.method, req.limit, &url).await
        };
        let result = tokio::time::timeout(timeout, fut).await;
        drop(permit);
        let Ok(result) = result else {
            return Err(Error::Timeout {
                url,
                after: timeout,
            });
        };
        let (status, headers, body) = result?;
        tracing::debug!(method = %req.method, %url, status = status.as_u16(), elapsed = ?started.elapsed(), "registry request");
        Ok(Reply {
            status,
            headers,
            body,
            url,
            method: req.method.clone(),
        })
    }

    fn request_builder(&self, req: &Request, auth: Option<HeaderValue>) -> reqwest::RequestBuilder {
        let mut rb = self.http.request(req.method.clone(), req.url.clone());
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
        rb
    }

    /// Hand the per-host semaphore map to `f` (tests poison it).
    #[cfg(test)]
    pub(super) fn poison_hosts(&self, f: impl FnOnce(&Lock<HashMap<String, Arc<Semaphore>>>)) {
        f(&self.hosts);
    }

    fn host_semaphore(&self, host: &str) -> Arc<Semaphore> {
        self.hosts
            .lock()
            .entry(host.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
            .clone()
    }
}

/// The HTTP client: user agent, connect timeout, pool size and extra CA certificates.
fn http_client(config: &ClientConfig) -> Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .user_agent(config.user_agent.clone())
        .connect_timeout(config.timeout)
        .pool_max_idle_per_host(config.max_concurrency_per_host.max(1));
    let builder = CaCertificates::from_option(config.ca_file.as_deref())?.trusted_by(builder);
    builder
        .build()
        .map_err(|e| Error::Config(ConfigProblem::Http(e)))
}

/// Read status, headers and body (none for HEAD). A successful body over `limit` is an error;
/// an error body is cut short, since only its message is wanted.
async fn read_capped(
    mut resp: reqwest::Response,
    method: &Method,
    limit: usize,
    url: &str,
) -> Result<(StatusCode, HeaderMap, Bytes)> {
    let status = resp.status();
    let headers = resp.headers().clone();
    if *method == Method::HEAD {
        return Ok((status, headers, Bytes::new()));
    }
    let cap = if status.is_success() {
        limit
    } else {
        limit.clamp(ERROR_BODY_MIN, ERROR_BODY_MAX)
    };
    let too_large = || Error::TooLarge {
        url: url.to_string(),
        limit: cap,
    };
    if status.is_success()
        && resp
            .content_length()
            .is_some_and(|len| usize::try_from(len).map_or(true, |len| len > cap))
    {
        return Err(too_large());
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|source| Error::Transport {
        url: url.to_string(),
        source,
    })? {
        let room = cap.saturating_sub(buf.len());
        if chunk.len() > room {
            if status.is_success() {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk[..room]);
            break;
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((status, headers, Bytes::from(buf)))
}

/// The wait before the attempt after `attempt`, or `None` when the attempts are spent or the
/// wait would take the total past the budget. Never overflows, whatever a server asked for.
pub(super) fn next_wait(
    policy: &RetryPolicy,
    attempt: u32,
    waited: Duration,
    delay: Duration,
) -> Option<Duration> {
    if attempt >= policy.max_attempts {
        return None;
    }
    match waited.checked_add(delay) {
        Some(total) if total <= policy.max_total_wait => Some(delay),
        _ => None,
    }
}

/// Exponential backoff with full jitter, capped.
pub(super) fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exp = policy
        .base_delay
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let cap = exp.min(policy.max_delay);
    let ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::random_range(ms / 2..=ms))
}

/// `d` scaled by a random factor in `1 ± frac`; `d` itself when the product does not fit.
pub(super) fn jitter(d: Duration, frac: f64) -> Duration {
    let f = 1.0 + rand::random_range(-frac..=frac);
    Duration::try_from_secs_f64(d.as_secs_f64() * f.max(0.0)).unwrap_or(d)
}

/// The media type of a reply, without parameters.
pub(super) fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_string())
}

/// The registry's error code and message (`{"errors":[{"code","message"}]}`), else the start of
/// the body.
pub(super) fn registry_detail(body: &[u8]) -> RegistryWords {
    RegistryWords::of(body)
}

pub(super) fn unauthorized(reply: &Reply) -> Error {
    Error::Unauthorized {
        url: reply.url.clone(),
        detail: Refusal::Registry(registry_detail(&reply.body)),
    }
}

/// The error for an unexpected status.
pub(super) fn status_error(reply: &Reply) -> Error {
    match reply.status {
        StatusCode::UNAUTHORIZED => unauthorized(reply),
        StatusCode::FORBIDDEN => Error::Denied {
            url: reply.url.clone(),
            detail: Refusal::Registry(registry_detail(&reply.body)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
            (0u64..120).prop_map(Duration::from_secs),
            Just(Duration::MAX),
        ]
    }

    proptest! {
        #[test]
        fn backoff_stays_within_cap(attempt in 0u32..100) {
            let p = RetryPolicy::default();
            prop_assert!(backoff(&p, attempt) <= p.max_delay);
        }

        #[test]
        fn backoff_stays_within_cap_for_any_policy(
            attempt in any::<u32>(),
            base in duration(),
            max in duration(),
        ) {
            let p = RetryPolicy { base_delay: base, max_delay: max, ..RetryPolicy::default() };
            prop_assert!(backoff(&p, attempt) <= max);
        }

        #[test]
        fn next_wait_never_takes_the_total_past_the_budget_and_never_panics(
            attempt in 0u32..8,
            waited in duration(),
            delay in duration(),
            budget in duration(),
        ) {
            let p = RetryPolicy { max_attempts: 4, max_total_wait: budget, ..RetryPolicy::default() };
            match next_wait(&p, attempt, waited, delay) {
                Some(d) => {
                    prop_assert_eq!(d, delay);
                    prop_assert!(attempt < p.max_attempts);
                    prop_assert!(waited.checked_add(d).is_some_and(|t| t <= budget));
                }
                None => prop_assert!(
                    attempt >= p.max_attempts || waited.checked_add(delay).is_none_or(|t| t > budget)
                ),
            }
        }

        #[test]
        fn jitter_stays_near_the_interval_for_any_interval(d in duration()) {
            let j = jitter(d, 0.1);
            // Within ±10 % (plus float rounding), or `d` itself when the product does not fit.
            prop_assert!(j == d || (j.as_secs_f64() >= d.as_secs_f64() * 0.89 && j.as_secs_f64() <= d.as_secs_f64() * 1.11));
        }
    }
}
