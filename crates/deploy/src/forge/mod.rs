//! Pull requests (GitHub) and merge requests (GitLab) for git updates people review.
//!
//! [`ForgeApi`] is the seam: [`github::GitHub`] and [`gitlab::GitLab`] implement it over one
//! [`Http`] client (reqwest with rustls), which alone handles retries on rate limits
//! (`Retry-After`, `x-ratelimit-remaining: 0` with `x-ratelimit-reset`, `RateLimit-Reset`) and
//! follows `Link: <…>; rel="next"` pages. [`ensure`] opens a request or updates the one for the
//! branch (also when opening answers that one exists: GitHub's 422, GitLab's 409);
//! [`supersede`] closes ferry's other open requests for the same workloads; [`rejected`] reads
//! the digests of ferry's requests that were closed without merging (a quarantine).
//!
//! Every request body ferry writes carries a hidden block naming the workloads, containers and
//! digests it proposes ([`body::Marker`]), which is how ferry recognises its own requests.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use crate::error::{ConfigProblem, Error, Result};
use crate::policy::review::Forge;

pub mod body;
pub mod github;
pub mod gitlab;
mod problem;
pub mod token;

pub use body::{Commits, Evidence, Marker, SignatureVerdict, Unlisted};
pub use problem::{AppProblem, ForgeProblem};
pub use token::{Fixed, GitHubApp, GitHubAppSettings, TokenSource};

/// The state of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Open.
    Open,
    /// Merged.
    Merged,
    /// Closed without merging.
    Closed,
}

/// A pull/merge request as the forge reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// GitHub's number / GitLab's `iid`.
    pub number: u64,
    /// Its web page.
    pub url: String,
    /// Open, merged or closed.
    pub state: State,
    /// The source branch.
    pub head: String,
    /// The description.
    pub body: String,
}

/// A request to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    /// Source branch.
    pub head: String,
    /// Target branch.
    pub base: String,
    /// Title.
    pub title: String,
    /// Description.
    pub body: String,
}

/// Which requests to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Open ones.
    Open,
    /// Closed or merged ones.
    Finished,
}

/// What opening found.
#[derive(Debug)]
pub enum Opened {
    /// A new request.
    New(Request),
    /// The forge says one exists for the branch (GitHub 422, GitLab 409).
    Exists,
}

/// The forge API seam (one implementation per forge; tests substitute fakes of the HTTP API).
pub trait ForgeApi: Send + Sync {
    /// Which forge.
    fn forge(&self) -> Forge;
    /// Requests of `repo` from `head` (every branch when `None`), all pages.
    fn list<'a>(
        &'a self,
        repo: &'a str,
        head: Option<&'a str>,
        filter: Filter,
    ) -> BoxFuture<'a, Result<Vec<Request>>>;
    /// Open a request.
    fn open<'a>(&'a self, repo: &'a str, new: &'a NewRequest) -> BoxFuture<'a, Result<Opened>>;
    /// Replace a request's title and body.
    fn update<'a>(
        &'a self,
        repo: &'a str,
        number: u64,
        title: &'a str,
        body: &'a str,
    ) -> BoxFuture<'a, Result<Request>>;
    /// Close a request without merging.
    fn close<'a>(&'a self, repo: &'a str, number: u64) -> BoxFuture<'a, Result<()>>;
}

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ensured {
    /// Opened a new request.
    Opened,
    /// Updated the open request of the branch.
    Updated,
}

/// Open the request for `new.head`, or update the open one (title and body).
pub async fn ensure(
    api: &dyn ForgeApi,
    repo: &str,
    new: &NewRequest,
) -> Result<(Request, Ensured)> {
    let existing = match find_open(api, repo, &new.head).await? {
        Some(r) => r,
        None => match api.open(repo, new).await? {
            Opened::New(r) => return Ok((r, Ensured::Opened)),
            // Opened meanwhile (or a listing that lagged): find it and update it.
            Opened::Exists => {
                find_open(api, repo, &new.head)
                    .await?
                    .ok_or_else(|| Error::Forge {
                        forge: api.forge(),
                        method: "GET",
                        url: repo.to_string(),
                        status: None,
                        problem: ForgeProblem::NotListed {
                            head: new.head.clone(),
                        },
                    })?
            }
        },
    };
    let r = api
        .update(repo, existing.number, &new.title, &new.body)
        .await?;
    Ok((r, Ensured::Updated))
}

async fn find_open(api: &dyn ForgeApi, repo: &str, head: &str) -> Result<Option<Request>> {
    let found = api.list(repo, Some(head), Filter::Open).await?;
    Ok(found.into_iter().find(|r| r.state == State::Open))
}

/// Close ferry's open requests for any of `workloads` from another branch than `keep` (a newer
/// request supersedes them). Returns the closed ones.
pub async fn supersede(
    api: &dyn ForgeApi,
    repo: &str,
    keep: &str,
    workloads: &[String],
) -> Result<Vec<Request>> {
    let mut closed = Vec::new();
    for r in api.list(repo, None, Filter::Open).await? {
        let mine = Marker::parse(&r.body)
            .is_some_and(|m| m.entries.iter().any(|e| workloads.contains(&e.workload)));
        if mine && r.head != keep && r.state == State::Open {
            api.close(repo, r.number).await?;
            closed.push(r);
        }
    }
    Ok(closed)
}

/// ferry's requests from `head` that were closed without merging, with what they proposed.
pub async fn rejected(
    api: &dyn ForgeApi,
    repo: &str,
    head: &str,
) -> Result<Vec<(Request, Marker)>> {
    Ok(api
        .list(repo, Some(head), Filter::Finished)
        .await?
        .into_iter()
        .filter(|r| r.state == State::Closed)
        .filter_map(|r| Some((Marker::parse(&r.body)?, r)))
        .map(|(m, r)| (r, m))
        .collect())
}

/// The repository's path on the forge from its clone URL (`https://host/group/sub/name.git` →
/// `group/sub/name`; `git@host:group/name.git` too).
pub fn repo_path(clone_url: &str) -> Option<String> {
    let path = match Url::parse(clone_url) {
        Ok(u) if u.has_host() => u.path().to_string(),
        _ => clone_url.split_once(':')?.1.to_string(),
    };
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    (path.contains('/') && !path.split('/').any(str::is_empty)).then(|| path.to_string())
}

/// Settings of the forge clients.
#[derive(Clone)]
pub struct ForgeSettings {
    /// `--git-api-url` (default: `https://api.github.com`, `https://gitlab.com/api/v4`).
    pub api_url: Option<Url>,
    /// The token (`--git-token-file`).
    pub token: Option<String>,
    /// GitHub's token source instead of `token` (a GitHub App's installation tokens).
    pub github_tokens: Option<Arc<dyn TokenSource>>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The longest ferry waits for a rate limit to clear before giving up on a call.
    pub max_wait: Duration,
}

impl std::fmt::Debug for ForgeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForgeSettings")
            .field("api_url", &self.api_url.as_ref().map(Url::as_str))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("github_tokens", &self.github_tokens.is_some())
            .field("timeout", &self.timeout)
            .field("max_wait", &self.max_wait)
            .finish()
    }
}

impl Default for ForgeSettings {
    fn default() -> Self {
        ForgeSettings {
            api_url: None,
            token: None,
            github_tokens: None,
            timeout: Duration::from_secs(30),
            max_wait: Duration::from_secs(60),
        }
    }
}

/// The forge clients of a process, one per forge.
#[derive(Clone, Default)]
pub struct Forges {
    github: Option<Arc<dyn ForgeApi>>,
    gitlab: Option<Arc<dyn ForgeApi>>,
}

impl std::fmt::Debug for Forges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forges")
            .field("github", &self.github.is_some())
            .field("gitlab", &self.gitlab.is_some())
            .finish()
    }
}

impl Forges {
    /// GitHub and GitLab clients with `settings` (the API URL, when given, serves both).
    pub fn new(settings: &ForgeSettings) -> Result<Forges> {
        let http = |forge, default: &str| -> Result<Http> {
            let base = match &settings.api_url {
                Some(u) => u.clone(),
                None => Url::parse(default).map_err(|e| Error::Forge {
                    forge,
                    method: "-",
                    url: default.to_string(),
                    status: None,
                    problem: ForgeProblem::BadUrl(e),
                })?,
            };
            Http::new(forge, base, settings)
        };
        Ok(Forges {
            github: Some(Arc::new(github::GitHub::new(http(
                Forge::GitHub,
                github::DEFAULT_API,
            )?))),
            gitlab: Some(Arc::new(gitlab::GitLab::new(http(
                Forge::GitLab,
                gitlab::DEFAULT_API,
            )?))),
        })
    }

    /// Substitute clients (tests).
    pub fn with(github: Option<Arc<dyn ForgeApi>>, gitlab: Option<Arc<dyn ForgeApi>>) -> Self {
        Forges { github, gitlab }
    }

    /// The client of `forge`.
    pub fn get(&self, forge: Forge) -> Option<&dyn ForgeApi> {
        match forge {
            Forge::GitHub => self.github.as_deref(),
            Forge::GitLab => self.gitlab.as_deref(),
        }
    }

    /// The client of `forge` and the project path of `clone_url` on it, or why there is none.
    pub fn for_repo(
        &self,
        forge: Forge,
        clone_url: &str,
    ) -> std::result::Result<(&dyn ForgeApi, String), crate::error::NoForge> {
        use crate::error::NoForge;
        let api = self.get(forge).ok_or(NoForge::NoClient(forge))?;
        let repo = repo_path(clone_url).ok_or_else(|| NoForge::NoProject {
            forge,
            repo: clone_url.to_string(),
        })?;
        Ok((api, repo))
    }
}

/// An HTTP answer: status, `Link` next page, JSON body.
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// The `rel="next"` page, if any.
    pub next: Option<Url>,
    /// The body (`Null` when empty or not JSON).
    pub json: Value,
}

/// The one HTTP client of a forge: auth headers, timeouts, rate-limit waits, `Link` pages.
#[derive(Clone)]
pub struct Http {
    forge: Forge,
    base: Url,
    client: reqwest::Client,
    tokens: Arc<dyn TokenSource>,
    max_wait: Duration,
}

impl Http {
    /// A client for the API at `base`.
    pub fn new(forge: Forge, base: Url, settings: &ForgeSettings) -> Result<Http> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("ferry-deploy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(ConfigProblem::ForgeClient(e)))?;
        Ok(Http {
            forge,
            base,
            client,
            tokens: match (forge, &settings.github_tokens) {
                (Forge::GitHub, Some(t)) => t.clone(),
                _ => Arc::new(Fixed(settings.token.clone())),
            },
            max_wait: settings.max_wait,
        })
    }

    /// `base` joined with `path` (segments already escaped) and `query`.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut u = self.base.clone();
        let joined = format!("{}/{}", u.path().trim_end_matches('/'), path);
        u.set_path(&joined);
        if !query.is_empty() {
            u.query_pairs_mut().extend_pairs(query);
        }
        u
    }

    fn error(
        &self,
        method: &Method,
        url: &Url,
        status: Option<u16>,
        problem: ForgeProblem,
    ) -> Error {
        Error::Forge {
            forge: self.forge,
            method: method_name(method),
            url: url.to_string(),
            status,
            problem,
        }
    }

    /// The `owner/name` of a GitHub `…/repos/{owner}/{name}/…` URL (for installation tokens).
    fn repo_of(url: &Url) -> Option<String> {
        let segs: Vec<&str> = url.path_segments()?.collect();
        let at = segs.iter().rposition(|s| *s == "repos")?;
        Some(format!("{}/{}", segs.get(at + 1)?, segs.get(at + 2)?))
    }

    /// Send one call; waits out rate limits (bounded by `max_wait` in all) and retries; on a
    /// 401 with a token that can be renewed (a GitHub App's), asks for a new one once.
    pub async fn send(&self, method: Method, url: Url, body: Option<&Value>) -> Result<Answer> {
        let repo = Self::repo_of(&url);
        let mut renewed = false;
        loop {
            let token = self.tokens.token(repo.as_deref()).await?;
            let a = self
                .send_with(&method, &url, body, token.as_deref())
                .await?;
            if a.status == StatusCode::UNAUTHORIZED
                && !renewed
                && let Some(t) = &token
                && self.tokens.refused(t)
            {
                tracing::warn!(forge = %self.forge, %url, "token refused (401); getting a new one");
                renewed = true;
                continue;
            }
            return Ok(a);
        }
    }

    async fn send_with(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Result<Answer> {
        let (method, url) = (method.clone(), url.clone());
        let mut waited = Duration::ZERO;
        loop {
            let mut rb = self.client.request(method.clone(), url.clone());
            rb = match (self.forge, token) {
                (Forge::GitHub, Some(t)) => rb
                    .bearer_auth(t)
                    .header("Accept", "application/vnd.github+json")
                    .header("X-GitHub-Api-Version", "2022-11-28"),
                (Forge::GitLab, Some(t)) => rb.header("PRIVATE-TOKEN", t),
                (_, None) => rb,
            };
            if let Some(b) = body {
                rb = rb
                    .header("Content-Type", "application/json")
                    .body(b.to_string());
            }
            let resp = rb
                .send()
                .await
                .map_err(|e| self.error(&method, &url, None, ForgeProblem::Transport(e)))?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let text = resp.text().await.map_err(|e| {
                let problem = ForgeProblem::Transport(e);
                self.error(&method, &url, Some(status.as_u16()), problem)
            })?;
            if let Some(wait) = rate_limited(status, &headers, ferry_core::duration::unix_now()) {
                if waited + wait > self.max_wait {
                    let why = ForgeProblem::RateLimited {
                        limits: limit_headers(&headers),
                        clears_in: wait,
                        max_wait: self.max_wait,
                    };
                    return Err(self.error(&method, &url, Some(status.as_u16()), why));
                }
                tracing::warn!(forge = %self.forge, %url, wait_s = wait.as_secs(), headers = %limit_headers(&headers), "rate limited; waiting");
                tokio::time::sleep(wait).await;
                waited += wait;
                continue;
            }
            let json = serde_json::from_str(&text).unwrap_or(Value::Null);
            return Ok(Answer {
                status,
                next: next_link(&headers),
                json,
            });
        }
    }

    /// Send and require a 2xx answer.
    pub async fn ok(&self, method: Method, url: Url, body: Option<&Value>) -> Result<Value> {
        let a = self.send(method.clone(), url.clone(), body).await?;
        if !a.status.is_success() {
            let msg = ForgeProblem::Refused {
                message: api_message(&a.json),
            };
            return Err(self.error(&method, &url, Some(a.status.as_u16()), msg));
        }
        Ok(a.json)
    }

    /// GET every page of a JSON array, following `Link: rel="next"` (at most 50 pages).
    pub async fn pages(&self, first: Url) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut next = Some(first);
        for _ in 0..50 {
            let Some(url) = next.take() else { break };
            let a = self.send(Method::GET, url.clone(), None).await?;
            if !a.status.is_success() {
                let msg = ForgeProblem::Refused {
                    message: api_message(&a.json),
                };
                return Err(self.error(&Method::GET, &url, Some(a.status.as_u16()), msg));
            }
            match a.json {
                Value::Array(items) => out.extend(items),
                other => {
                    let msg = ForgeProblem::NotAnArray {
                        got: kind_of(&other),
                    };
                    return Err(self.error(&Method::GET, &url, Some(a.status.as_u16()), msg));
                }
            }
            next = a.next;
        }
        Ok(out)
    }
}

fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        _ => "request",
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Object(_) => "an object",
        _ => "a scalar",
    }
}

/// The API's error message (`message`, GitHub's `errors[].message`, GitLab's message list).
pub fn api_message(v: &Value) -> String {
    let mut parts = Vec::new();
    match &v["message"] {
        Value::String(s) => parts.push(s.clone()),
        Value::Array(a) => parts.extend(a.iter().filter_map(Value::as_str).map(String::from)),
        _ => {}
    }
    if let Some(errors) = v["errors"].as_array() {
        parts.extend(
            errors
                .iter()
                .filter_map(|e| e["message"].as_str())
                .map(String::from),
        );
    }
    if let Some(e) = v["error"].as_str() {
        parts.push(e.to_string());
    }
    if parts.is_empty() {
        "no message".into()
    } else {
        parts.join("; ")
    }
}

/// How long to wait before retrying, when the answer is a rate limit: 429, or 403 with
/// `x-ratelimit-remaining: 0` or `retry-after` (GitHub's primary and secondary limits).
/// `Retry-After` seconds first, else the reset time (`x-ratelimit-reset` / `RateLimit-Reset`,
/// Unix seconds), else 60 s for GitHub's secondary limit.
pub fn rate_limited(
    status: StatusCode,
    h: &reqwest::header::HeaderMap,
    now: u64,
) -> Option<Duration> {
    let num = |k: &str| h.get(k)?.to_str().ok()?.trim().parse::<u64>().ok();
    let exhausted =
        num("x-ratelimit-remaining") == Some(0) || num("ratelimit-remaining") == Some(0);
    let retry_after = num("retry-after");
    let limited = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN && (exhausted || retry_after.is_some()));
    if !limited {
        return None;
    }
    if let Some(s) = retry_after {
        return Some(Duration::from_secs(s.max(1)));
    }
    let reset = num("x-ratelimit-reset").or_else(|| num("ratelimit-reset"));
    Some(Duration::from_secs(match reset {
        Some(t) => t.saturating_sub(now).max(1),
        None => 60,
    }))
}

fn limit_headers(h: &reqwest::header::HeaderMap) -> String {
    let keys = [
        "retry-after",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
    ];
    let seen: Vec<String> = keys
        .iter()
        .filter_map(|k| Some(format!("{k}: {}", h.get(*k)?.to_str().ok()?)))
        .collect();
    if seen.is_empty() {
        "no rate-limit headers".into()
    } else {
        seen.join(", ")
    }
}

/// The `rel="next"` URL of a `Link` header.
pub fn next_link(h: &reqwest::header::HeaderMap) -> Option<Url> {
    let link = h.get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"" || p.trim() == "rel=next");
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| Url::parse(url).ok()).flatten()
    })
}

#[cfg(test)]
mod tests;
