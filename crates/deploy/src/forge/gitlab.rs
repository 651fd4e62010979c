//! GitLab's REST API for merge requests (`/projects/:id/merge_requests`, `:id` the URL-encoded
//! project path).

use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Filter, ForgeApi, ForgeProblem, Http, NewRequest, Opened, Request, State};
use crate::error::Result;
use crate::policy::review::Forge;

/// The public API.
pub const DEFAULT_API: &str = "https://gitlab.com/api/v4";

/// Merge requests on GitLab (or a self-hosted GitLab at `--git-api-url`).
pub struct GitLab {
    http: Http,
}

impl GitLab {
    /// A client over `http`.
    pub fn new(http: Http) -> Self {
        GitLab { http }
    }

    fn mrs(&self, repo: &str, rest: &str, query: &[(&str, &str)]) -> url::Url {
        let id = repo.replace('/', "%2F");
        self.http
            .url(&format!("projects/{id}/merge_requests{rest}"), query)
    }
}

/// A merge request from GitLab's JSON.
fn request(v: &Value) -> Request {
    let state = match v["state"].as_str() {
        Some("opened") => State::Open,
        Some("merged") => State::Merged,
        _ => State::Closed,
    };
    Request {
        number: v["iid"].as_u64().unwrap_or(0),
        url: v["web_url"].as_str().unwrap_or_default().to_string(),
        state,
        head: v["source_branch"].as_str().unwrap_or_default().to_string(),
        body: v["description"].as_str().unwrap_or_default().to_string(),
    }
}

impl ForgeApi for GitLab {
    fn forge(&self) -> Forge {
        Forge::GitLab
    }

    fn list<'a>(
        &'a self,
        repo: &'a str,
        head: Option<&'a str>,
        filter: Filter,
    ) -> BoxFuture<'a, Result<Vec<Request>>> {
        async move {
            let state = match filter {
                Filter::Open => "opened",
                Filter::Finished => "closed",
            };
            let mut q = vec![("state", state), ("per_page", "100")];
            if let Some(h) = head {
                q.push(("source_branch", h));
            }
            let items = self.http.pages(self.mrs(repo, "", &q)).await?;
            Ok(items.iter().map(request).collect())
        }
        .boxed()
    }

    fn open<'a>(&'a self, repo: &'a str, new: &'a NewRequest) -> BoxFuture<'a, Result<Opened>> {
        async move {
            let body = json!({
                "source_branch": new.head,
                "target_branch": new.base,
                "title": new.title,
                "description": new.body,
                "remove_source_branch": true,
            });
            let url = self.mrs(repo, "", &[]);
            let a = self
                .http
                .send(Method::POST, url.clone(), Some(&body))
                .await?;
            let msg = super::api_message(&a.json);
            match a.status {
                s if s.is_success() => Ok(Opened::New(request(&a.json))),
                StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY
                    if msg.contains("already exists") =>
                {
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
            let url = self.mrs(repo, &format!("/{number}"), &[]);
            let v = json!({"title": title, "description": body});
            Ok(request(&self.http.ok(Method::PUT, url, Some(&v)).await?))
        }
        .boxed()
    }

    fn close<'a>(&'a self, repo: &'a str, number: u64) -> BoxFuture<'a, Result<()>> {
        async move {
            let url = self.mrs(repo, &format!("/{number}"), &[]);
            let v = json!({"state_event": "close"});
            self.http.ok(Method::PUT, url, Some(&v)).await.map(|_| ())
        }
        .boxed()
    }
}
