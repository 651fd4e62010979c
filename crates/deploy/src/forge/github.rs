//! GitHub's REST API for pull requests (`/repos/{owner}/{repo}/pulls`).

use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Filter, ForgeApi, ForgeProblem, Http, NewRequest, Opened, Request, State};
use crate::error::Result;
use crate::policy::review::Forge;

/// The public API.
pub const DEFAULT_API: &str = "https://api.github.com";

/// Pull requests on GitHub (or GitHub Enterprise at `--git-api-url`).
pub struct GitHub {
    http: Http,
}

impl GitHub {
    /// A client over `http`.
    pub fn new(http: Http) -> Self {
        GitHub { http }
    }

    fn pulls(&self, repo: &str, rest: &str, query: &[(&str, &str)]) -> url::Url {
        self.http.url(&format!("repos/{repo}/pulls{rest}"), query)
    }
}

/// A pull request from GitHub's JSON.
fn request(v: &Value) -> Request {
    let state = match (v["state"].as_str(), v["merged_at"].is_string()) {
        (Some("open"), _) => State::Open,
        (_, true) => State::Merged,
        _ => State::Closed,
    };
    Request {
        number: v["number"].as_u64().unwrap_or(0),
        url: v["html_url"].as_str().unwrap_or_default().to_string(),
        state,
        head: v["head"]["ref"].as_str().unwrap_or_default().to_string(),
        body: v["body"].as_str().unwrap_or_default().to_string(),
    }
}

impl ForgeApi for GitHub {
    fn forge(&self) -> Forge {
        Forge::GitHub
    }

    fn list<'a>(
        &'a self,
        repo: &'a str,
        head: Option<&'a str>,
        filter: Filter,
    ) -> BoxFuture<'a, Result<Vec<Request>>> {
        async move {
            let owner = repo.split('/').next().unwrap_or_default();
            let head = head.map(|h| format!("{owner}:{h}"));
            let state = match filter {
                Filter::Open => "open",
                Filter::Finished => "closed",
            };
            let mut q = vec![("state", state), ("per_page", "100")];
            if let Some(h) = &head {
                q.push(("head", h));
            }
            let items = self.http.pages(self.pulls(repo, "", &q)).await?;
            Ok(items.iter().map(request).collect())
        }
        .boxed()
    }

    fn open<'a>(&'a self, repo: &'a str, new: &'a NewRequest) -> BoxFuture<'a, Result<Opened>> {
        async move {
            let body =
                json!({"title": new.title, "head": new.head, "base": new.base, "body": new.body});
            let url = self.pulls(repo, "", &[]);
            let a = self
                .http
                .send(Method::POST, url.clone(), Some(&body))
                .await?;
            let msg = super::api_message(&a.json);
            match a.status {
                s if s.is_success() => Ok(Opened::New(request(&a.json))),
                StatusCode::UNPROCESSABLE_ENTITY if msg.contains("already exists") => {
                    Ok(Opened::Exists)
                }
                s => {
                    let refused = ForgeProblem::Refused { message: msg };
                    Err(self
                        .http
                        .error(&Method::POST, &url, Some(s.as_u16()), refused))
                }
            }
        }
        .boxed()
    }

    fn update<'a>(
        &'a self,
        repo: &'a str,
        number: u64,
        title: &'a str,
        body: &'a str,
    ) -> BoxFuture<'a, Result<Request>> {
        async move {
            let url = self.pulls(repo, &format!("/{number}"), &[]);
            let v = json!({"title": title, "body": body});
            Ok(request(&self.http.ok(Method::PATCH, url, Some(&v)).await?))
        }
        .boxed()
    }

    fn close<'a>(&'a self, repo: &'a str, number: u64) -> BoxFuture<'a, Result<()>> {
        async move {
            let url = self.pulls(repo, &format!("/{number}"), &[]);
            let v = json!({"state": "closed"});
            self.http.ok(Method::PATCH, url, Some(&v)).await.map(|_| ())
        }
        .boxed()
    }
}
