//! Git updates people review (applying): before a commit to a request's branch, a digest whose
//! request ferry's reviewer closed without merging is quarantined for that workload and left
//! out (as a revert in git is); after the push, the branch's request is opened or updated with
//! the evidence, and ferry's other open requests for the same workloads are closed. The policy
//! decided the forge and the branch ([`crate::policy::GitRoute::review`]); nothing is re-read.

use super::apply::{Pass, Stage};
use crate::cluster::Workload;
use crate::forge::{self, Ensured, Evidence, ForgeApi, NewRequest};
use crate::policy::review::Forge;
use crate::policy::{Decision, GitTarget};

/// What happened to a request (the `applied.pull_requests` of `once --json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RequestNote {
    /// `namespace/Kind/name`.
    pub workload: String,
    /// `github` or `gitlab`.
    pub forge: Forge,
    /// The request's web page.
    pub url: String,
    /// `opened`, `updated` or `closed` (superseded).
    pub action: &'static str,
}

/// The evidence of one decision for the request body.
pub(super) fn evidence(d: &Decision) -> Evidence {
    let e = &d.evidence;
    Evidence {
        workload: d.workload_id(),
        container: d.container.clone(),
        old_image: d.image.clone(),
        old_digest: d.current_digest.as_ref().map(ToString::to_string),
        new_image: d.target_image().unwrap_or_default(),
        new_digest: d
            .target_digest()
            .map(ToString::to_string)
            .unwrap_or_default(),
        platforms: e
            .platforms
            .as_ref()
            .map(|ps| ps.iter().map(ToString::to_string).collect()),
        soak_age: e.soaked,
        beta: e.beta.clone(),
        signature: None,
        reason: d.reason.to_string(),
    }
}

/// Why each of `ds` (the updates of one request branch `target` on forge `f`) must not be
/// written: its digest's request was closed without merging by a person (the quarantine, read
/// again every pass as a revert in git is), or the closed requests cannot be read (never moved
/// on a guess). `None`: go ahead.
pub(super) async fn refusals(
    forges: &forge::Forges,
    (target, f): (&GitTarget, Forge),
    ds: &[&Decision],
) -> Vec<Option<String>> {
    let refused = match (forges.get(f), forge::repo_path(&target.repo)) {
        (Some(api), Some(repo)) => forge::rejected(api, &repo, &target.branch)
            .await
            .map_err(|e| format!("reading closed {f} requests of {}: {e}", target.branch)),
        (None, _) => Err(format!("no {f} API client")),
        (_, None) => Err(format!("cannot tell the {f} project from {}", target.repo)),
    };
    ds.iter()
        .map(|d| {
            let digest = d.target_digest()?.to_string();
            let refused = match &refused {
                Ok(r) => r,
                Err(why) => return Some(why.clone()),
            };
            let (request, _) = refused.iter().find(|(_, m)| {
                m.entries.iter().any(|e| {
                    e.workload == d.workload_id()
                        && e.container == d.container
                        && e.digest == digest
                })
            })?;
            Some(format!(
                "{digest} is quarantined: its request {} was closed without merging",
                request.url
            ))
        })
        .collect()
}

/// After a push to a request's branch: open or update its request with the evidence of
/// `changes`, close ferry's superseded requests, and publish an Event linking it.
pub(super) async fn request(
    pass: &mut Pass<'_>,
    forges: &forge::Forges,
    workloads: &[Workload],
    (target, base, f): (&GitTarget, &str, Forge),
    changes: &[Evidence],
) {
    let ids: Vec<String> = changes.iter().map(|e| e.workload.clone()).collect();
    let of = |id: &str| workloads.iter().find(|w| w.view.id() == id);
    let outcome = match (forges.get(f), forge::repo_path(&target.repo)) {
        (Some(api), Some(repo)) => open_or_update(api, &repo, target, base, changes)
            .await
            .map_err(|e| e.to_string()),
        (None, _) => Err(format!("no {f} API client")),
        (_, None) => Err(format!("cannot tell the {f} project from {}", target.repo)),
    };
    match outcome {
        Ok((r, done, closed)) => {
            let action = match done {
                Ensured::Opened => "opened",
                Ensured::Updated => "updated",
            };
            for id in &ids {
                if let Some(w) = of(id) {
                    let note = format!("pull request {action}: {}", r.url);
                    pass.events.publish(w, false, "PullRequest", &note).await;
                }
                let note = |url: &str, action| RequestNote {
                    workload: id.clone(),
                    forge: f,
                    url: url.to_string(),
                    action,
                };
                pass.applied.pull_requests.push(note(&r.url, action));
                for c in &closed {
                    pass.applied.pull_requests.push(note(&c.url, "closed"));
                }
            }
        }
        Err(e) => {
            for id in &ids {
                let why = format!("pull request for {}: {e}", target.branch);
                pass.fail(of(id), id, Stage::GitWrite, why).await;
            }
        }
    }
}

type Outcome = (forge::Request, Ensured, Vec<forge::Request>);

async fn open_or_update(
    api: &dyn ForgeApi,
    repo: &str,
    target: &GitTarget,
    base: &str,
    changes: &[Evidence],
) -> crate::Result<Outcome> {
    let new = NewRequest {
        head: target.branch.clone(),
        base: base.to_string(),
        title: forge::body::title(changes),
        body: forge::body::body(changes),
    };
    let (r, done) = forge::ensure(api, repo, &new).await?;
    let ids: Vec<String> = changes.iter().map(|e| e.workload.clone()).collect();
    let closed = forge::supersede(api, repo, &target.branch, &ids).await?;
    Ok((r, done, closed))
}
