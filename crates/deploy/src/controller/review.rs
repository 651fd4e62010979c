//! Git updates people review (applying): before a commit to a request's branch, a digest whose
//! request ferry's reviewer closed without merging is quarantined for that workload and left
//! out (as a revert in git is); after the push, the branch's request is opened or updated with
//! the evidence, and ferry's other open requests for the same workloads are closed. The policy
//! decided the forge and the branch ([`crate::policy::GitRoute::review`]); nothing is re-read.

use std::sync::Arc;

use ferry_core::{Reference, Shared};

use super::apply::Pass;
use super::failure::{RequestFailed, StepFailure};
use crate::cluster::Workload;
use crate::error::ReviewUnknown;
use crate::forge::{
    self, Commits, Ensured, Evidence, ForgeApi, NewRequest, SignatureVerdict, Unlisted,
};
use crate::gitops::{self, WriteBackConfig};
use crate::policy::review::Forge;
use crate::policy::{Decision, Failure, GitTarget, Refusal};

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
        old_image: d.image.to_string(),
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
        signature: e
            .signed_by
            .as_ref()
            .map(|p| SignatureVerdict::Verified(format!("signature policy {p}"))),
        reason: d.reason.to_string(),
        commits: None,
    }
}

/// Commits listed per evidence entry at most (the rest is counted).
pub const COMMIT_CAP: usize = 30;

/// `evidence` (of `ds`, in the same order) with the commit lists of the workloads that name
/// their source repository (`ferry.dev/source-repo`): the revisions of the running and the new
/// image from the registry, the commits between them from the repository.
pub(super) async fn with_commits(
    ctx: &super::Context,
    config: &WriteBackConfig,
    ds: &[&Decision],
    mut evidence: Vec<Evidence>,
) -> Vec<Evidence> {
    for (d, e) in ds.iter().zip(evidence.iter_mut()) {
        let Some(repo) = d.evidence.source_repo.clone() else {
            continue;
        };
        e.commits = Some(match revisions(ctx, d).await {
            Ok((from, to)) => {
                let (config, url) = (config.clone(), repo.clone());
                let (f, t) = (from.clone(), to.clone());
                let listed = tokio::task::spawn_blocking(move || {
                    gitops::commits_between(&config, &url, &f, &t, COMMIT_CAP)
                })
                .await;
                match listed {
                    Ok(Ok((lines, more))) => Commits::Listed {
                        repo,
                        from,
                        to,
                        lines,
                        more,
                    },
                    Ok(Err(e)) => Commits::Unavailable(Unlisted::Git(Shared::new(e))),
                    Err(e) => {
                        Commits::Unavailable(Unlisted::Git(Shared::new(crate::Error::Join(e))))
                    }
                }
            }
            Err(why) => Commits::Unavailable(why),
        });
    }
    evidence
}

/// The source revisions of the running and the new image of `d`, or why not.
async fn revisions(ctx: &super::Context, d: &Decision) -> Result<(String, String), Unlisted> {
    let (Some(current), Some(target)) = (&d.current_digest, &d.target) else {
        return Err(Unlisted::UnknownDigest);
    };
    let running = d
        .image
        .reference()
        .map_err(|e| Unlisted::BadImage(e.clone()))?
        .repository_only()
        .with_digest(current.clone());
    let read = |r: Reference| async move {
        match ctx.registry.source_revision(&r).await {
            Ok(Some(rev)) => Ok(rev),
            Ok(None) => Err(Unlisted::NotRecorded(r)),
            Err(e) => Err(Unlisted::Registry(r, Shared::new(e))),
        }
    };
    Ok((read(running).await?, read(target.clone()).await?))
}

/// Why each of `ds` (the updates of one request branch `target` on forge `f`) must not be
/// written: its digest's request was closed without merging by a person (the quarantine, read
/// again every pass as a revert in git is), or the closed requests cannot be read (never moved
/// on a guess). `None`: go ahead.
pub(super) async fn refusals(
    forges: &forge::Forges,
    (target, f): (&GitTarget, Forge),
    ds: &[&Decision],
) -> Vec<Option<Refusal>> {
    let unknown = |why| Failure::from(crate::Error::Review(why));
    let refused = match forges.for_repo(f, &target.repo) {
        Ok((api, repo)) => forge::rejected(api, &repo, &target.branch)
            .await
            .map_err(|e| {
                unknown(ReviewUnknown::Reading {
                    forge: f,
                    branch: target.branch.clone(),
                    error: Box::new(e),
                })
            }),
        Err(no) => Err(unknown(ReviewUnknown::NoForge(no))),
    };
    ds.iter()
        .map(|d| {
            let digest = d.target_digest()?;
            let refused = match &refused {
                Ok(r) => r,
                Err(why) => return Some(Refusal::ReviewUnknown(why.clone())),
            };
            let (request, _) = refused.iter().find(|(_, m)| {
                m.entries.iter().any(|e| {
                    e.workload == d.workload_id()
                        && e.container == d.container
                        && e.digest == digest.to_string()
                })
            })?;
            Some(Refusal::RequestClosed {
                digest: digest.clone(),
                url: request.url.clone(),
            })
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
    let outcome = match forges.for_repo(f, &target.repo) {
        Ok((api, repo)) => open_or_update(api, &repo, target, base, changes)
            .await
            .map_err(|e| RequestFailed::Api(Arc::new(e))),
        Err(no) => Err(RequestFailed::NoForge(no)),
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
                let failure = StepFailure::Request {
                    branch: target.branch.clone(),
                    error: e.clone(),
                };
                pass.fail(of(id), id, failure).await;
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
