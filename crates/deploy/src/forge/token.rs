//! Where forge and git tokens come from: a fixed token (`--git-token-file`) or a GitHub App
//! installation token exchanged from the app's private key ([`GitHubApp`]).
//!
//! The exchange follows GitHub's documentation: a JWT signed RS256 (`iat` = now − 60 s,
//! `exp` = now + 9 min, `iss` = the app id) authenticates `GET /repos/{owner}/{repo}/installation`
//! (when no installation id is given) and `POST /app/installations/{id}/access_tokens`, whose
//! `{"token", "expires_at"}` is cached until 5 minutes before it expires.

use std::collections::HashMap;
use std::time::Duration;

use ferry_core::sync::Lock;
use ferry_registry::jwt::Rs256Key;
use futures::future::BoxFuture;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use url::Url;

use super::{AppProblem, ForgeProblem};
use crate::error::{Error, Result};
use crate::policy::review::Forge;

/// A source of tokens for the forge API and git pushes over https.
pub trait TokenSource: Send + Sync {
    /// A token valid now for `repo` (`owner/name`, when known), or `None` for anonymous calls.
    fn token<'a>(&'a self, repo: Option<&'a str>) -> BoxFuture<'a, Result<Option<String>>>;
    /// `token` was refused (401): forget it. `true` when asking again may give a new one.
    fn refused(&self, token: &str) -> bool;
}

/// A fixed token (`--git-token-file`), or none.
#[derive(Clone, Default)]
pub struct Fixed(pub Option<String>);

impl std::fmt::Debug for Fixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = self.0.as_ref().map(|_| "<redacted>");
        f.debug_tuple("Fixed").field(&shown).finish()
    }
}

impl TokenSource for Fixed {
    fn token<'a>(&'a self, _repo: Option<&'a str>) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
    fn refused(&self, _token: &str) -> bool {
        false
    }
}

/// A GitHub App: its id, private key and (optionally) installation. `Debug` hides the key.
#[derive(Clone)]
pub struct GitHubAppSettings {
    /// `--github-app-id`.
    pub app_id: u64,
    /// The PEM private key (`--github-app-key-file`): PKCS#1 or PKCS#8.
    pub key_pem: String,
    /// `--github-app-installation-id`; `None`: looked up per repository.
    pub installation: Option<u64>,
    /// The API base (`--git-api-url`, default `https://api.github.com`).
    pub api_url: Url,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Refresh a cached token this long before it expires (GitHub's last 5 minutes).
    pub refresh_before: Duration,
}

impl std::fmt::Debug for GitHubAppSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubAppSettings")
            .field("app_id", &self.app_id)
            .field("key_pem", &"<redacted>")
            .field("installation", &self.installation)
            .field("api_url", &self.api_url.as_str())
            .finish()
    }
}

/// A cached installation token.
struct Cached {
    token: String,
    expires_at: u64,
}

/// Installation tokens of a GitHub App, cached per installation.
pub struct GitHubApp {
    app_id: u64,
    key: Rs256Key,
    installation: Option<u64>,
    base: Url,
    client: reqwest::Client,
    refresh_before: Duration,
    installations: Lock<HashMap<String, u64>>,
    tokens: Lock<HashMap<u64, Cached>>,
    exchanges: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for GitHubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubApp")
            .field("app_id", &self.app_id)
            .field("key", &"<redacted>")
            .field("installation", &self.installation)
            .field("base", &self.base.as_str())
            .finish()
    }
}

/// Parse a PEM RSA private key (PKCS#1 `BEGIN RSA PRIVATE KEY` or PKCS#8 `BEGIN PRIVATE KEY`).
pub fn parse_key(pem: &str) -> Result<Rs256Key> {
    Rs256Key::from_pem(pem).map_err(|e| Error::GitHubApp {
        problem: AppProblem::Key(e),
    })
}

/// The app JWT at `now` (Unix seconds): RS256, `iat` now − 60 s, `exp` now + 9 min, `iss` app id.
pub fn app_jwt(key: &Rs256Key, app_id: u64, now: u64) -> Result<String> {
    let claims =
        json!({ "iat": now.saturating_sub(60), "exp": now + 540, "iss": app_id.to_string() });
    key.sign(None, &claims).map_err(|_| Error::GitHubApp {
        problem: AppProblem::Sign,
    })
}

impl GitHubApp {
    /// An app from `settings` (the key is parsed here: a bad key fails at start-up).
    pub fn new(settings: GitHubAppSettings) -> Result<GitHubApp> {
        let key = parse_key(&settings.key_pem)?;
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("ferry-deploy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(crate::error::ConfigProblem::ForgeClient(e)))?;
        Ok(GitHubApp {
            app_id: settings.app_id,
            key,
            installation: settings.installation,
            base: settings.api_url,
            client,
            refresh_before: settings.refresh_before,
            installations: Lock::default(),
            tokens: Lock::default(),
            exchanges: Default::default(),
        })
    }

    /// How many token exchanges this app has made.
    pub fn exchanges(&self) -> u64 {
        self.exchanges.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn url(&self, path: &str) -> Url {
        let mut u = self.base.clone();
        let joined = format!("{}/{}", u.path().trim_end_matches('/'), path);
        u.set_path(&joined);
        u
    }

    /// One JWT-authenticated call; a non-2xx answer is an error naming the status.
    async fn call(&self, method: Method, path: &str) -> Result<Value> {
        let url = self.url(path);
        let err = |status: Option<u16>, problem: ForgeProblem| Error::Forge {
            forge: Forge::GitHub,
            method: if method == Method::POST {
                "POST"
            } else {
                "GET"
            },
            url: url.to_string(),
            status,
            problem,
        };
        let jwt = app_jwt(&self.key, self.app_id, ferry_core::duration::unix_now())?;
        let resp = self
            .client
            .request(method.clone(), url.clone())
            .bearer_auth(jwt)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .await
            .map_err(|e| err(None, ForgeProblem::Transport(e)))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status != StatusCode::OK && status != StatusCode::CREATED {
            let message = super::api_message(&json);
            return Err(err(
                Some(status.as_u16()),
                ForgeProblem::Refused { message },
            ));
        }
        Ok(json)
    }

    async fn installation_for(&self, repo: Option<&str>) -> Result<u64> {
        if let Some(id) = self.installation {
            return Ok(id);
        }
        let repo = repo.ok_or(Error::GitHubApp {
            problem: AppProblem::NoInstallation,
        })?;
        if let Some(id) = self.installations.lock().get(repo) {
            return Ok(*id);
        }
        let json = self
            .call(Method::GET, &format!("repos/{repo}/installation"))
            .await?;
        let id = json["id"].as_u64().ok_or_else(|| Error::Forge {
            forge: Forge::GitHub,
            method: "GET",
            url: self.url(&format!("repos/{repo}/installation")).to_string(),
            status: Some(200),
            problem: ForgeProblem::Missing {
                what: "an installation id",
            },
        })?;
        self.installations.lock().insert(repo.to_string(), id);
        Ok(id)
    }

    async fn fresh(&self, repo: Option<&str>) -> Result<String> {
        let id = self.installation_for(repo).await?;
        let now = ferry_core::duration::unix_now();
        if let Some(c) = self.tokens.lock().get(&id)
            && c.expires_at > now + self.refresh_before.as_secs()
        {
            return Ok(c.token.clone());
        }
        let path = format!("app/installations/{id}/access_tokens");
        let json = self.call(Method::POST, &path).await?;
        self.exchanges
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let token = json["token"].as_str().map(String::from);
        let expires_at = json["expires_at"]
            .as_str()
            .and_then(|s| humantime::parse_rfc3339(s).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        let (Some(token), Some(expires_at)) = (token, expires_at) else {
            return Err(Error::Forge {
                forge: Forge::GitHub,
                method: "POST",
                url: self.url(&path).to_string(),
                status: Some(201),
                problem: ForgeProblem::Missing {
                    what: "token or expires_at",
                },
            });
        };
        let cached = Cached {
            token: token.clone(),
            expires_at,
        };
        self.tokens.lock().insert(id, cached);
        Ok(token)
    }
}

impl TokenSource for GitHubApp {
    fn token<'a>(&'a self, repo: Option<&'a str>) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(async move { self.fresh(repo).await.map(Some) })
    }
    fn refused(&self, token: &str) -> bool {
        let mut tokens = self.tokens.lock();
        let before = tokens.len();
        tokens.retain(|_, c| c.token != token);
        tokens.len() < before
    }
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
