//! Updates that go through git (applying): commit and push once per repository and branch,
//! fenced by the Lease; then wait for Argo CD to sync and the rollout to become healthy, and push
//! a revert of ferry's own commit when it does not. Where each change goes was decided by the
//! policy core and placed in a file by [`super::place`].

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry_core::Reference;

use super::apply::Pass;
use super::failure::StepFailure;
use super::place::{change_of, helm_change};
use super::review;
use super::rollout::{self, Watched};
use super::{GitOps, Plan};
use crate::cluster::Workload;
use crate::forge::Evidence;
use crate::gitops::{self, GitTarget, HelmChange, ImageChange, WriteBackConfig};
use crate::policy::review::Forge;
use crate::policy::{Action, Decision, GitEdit, GitRoute};

/// One commit to make: where, and the changes it carries.
#[derive(Clone)]
struct Batch {
    /// Repository and the branch the commit goes to.
    target: GitTarget,
    /// The Application's branch, when `target.branch` is a separate write branch.
    base: Option<String>,
    /// The changes (each with its workload's path).
    changes: Vec<ImageChange>,
    /// The same changes as Helm values edits (empty for manifests).
    helm: Vec<HelmChange>,
    /// Workload → container → the target, typed, for the sync check.
    targets: BTreeMap<String, BTreeMap<String, Reference>>,
    /// The forge of the branch's pull/merge request, when it has one.
    review: Option<Forge>,
    /// What each change's decision saw, for the request's body.
    evidence: Vec<Evidence>,
}

/// A pushed commit and the changes it carries.
struct Pushed {
    batch: Batch,
    commit: String,
}

/// Commit and push the git updates of `plan` (one commit per repository and branch, fenced),
/// then — with `wait` — gate each commit on Argo CD's sync and the rollouts' health.
pub(super) async fn apply_git(pass: &mut Pass<'_>, g: &GitOps, plan: &Plan) {
    type Key = (GitTarget, Option<String>, bool, Option<Forge>);
    let mut groups: BTreeMap<Key, Vec<&Decision>> = BTreeMap::new();
    for d in plan.decisions.iter().filter(|d| d.action == Action::Update) {
        let Some(route) = d.git() else { continue };
        let t = GitTarget {
            repo: route.repo.clone(),
            branch: route.branch.clone(),
            path: String::new(),
        };
        let helm = matches!(route.edit, GitEdit::HelmValues { .. });
        groups
            .entry((t, route.base.clone(), helm, route.review))
            .or_default()
            .push(d);
    }
    let mut pushed = Vec::new();
    for ((target, base, _, forge), ds) in groups {
        if pass.options.fence.check().is_err() {
            return pass.applied.lose_leadership();
        }
        let Some(p) = commit(pass, g, plan, batch(target, base, forge, &ds)).await else {
            continue;
        };
        if let (Some(f), Some(base)) = (p.batch.review, &p.batch.base) {
            let to = (&p.batch.target, base.as_str(), f);
            let evidence = p.batch.evidence.clone();
            let evidence = review::with_commits(pass.ctx, &g.config, &ds, evidence).await;
            review::request(pass, &g.forges, &plan.workloads, to, &evidence).await;
        }
        pushed.push(p);
    }
    if pass.options.wait {
        for p in pushed {
            if pass.applied.leadership_lost {
                return;
            }
            // A write branch waits for a person to merge it: Argo CD syncs nothing meanwhile.
            if p.batch.base.is_some() {
                continue;
            }
            health_gate(pass, g, plan, p).await;
        }
    }
}

/// One commit for the whole repository and branch; each workload keeps its own path.
fn batch(
    target: GitTarget,
    base: Option<String>,
    review: Option<Forge>,
    ds: &[&Decision],
) -> Batch {
    let mut changes = Vec::new();
    let mut helm = Vec::new();
    let mut targets: BTreeMap<String, BTreeMap<String, Reference>> = BTreeMap::new();
    for d in ds {
        if let Some(t) = &d.target {
            targets
                .entry(d.workload_id())
                .or_default()
                .insert(d.container.clone(), t.clone());
        }
        let route = d.git();
        let c = ImageChange {
            path: route.map(|r| r.path.clone()),
            ..change_of(d)
        };
        if let Some(GitRoute {
            path,
            edit: GitEdit::HelmValues { key, .. },
            ..
        }) = route
        {
            helm.push(helm_change(&c, path, key));
        }
        changes.push(c);
    }
    Batch {
        target,
        base,
        changes,
        helm,
        targets,
        review,
        evidence: ds.iter().map(|d| review::evidence(d)).collect(),
    }
}

/// Prepare the write branch (when there is one) and commit `b` to it (blocking).
fn write_batch(
    config: &WriteBackConfig,
    b: &Batch,
    fence: &crate::lease::Fence,
) -> crate::Result<gitops::WriteBack> {
    let target = match &b.base {
        None => b.target.clone(),
        Some(base) => {
            let from = GitTarget {
                branch: base.clone(),
                ..b.target.clone()
            };
            gitops::prepare_write_branch(config, &from, &b.target.branch)?.target
        }
    };
    if b.helm.is_empty() {
        gitops::write_back_fenced(config, &target, &b.changes, fence)
    } else {
        gitops::write_back_helm_fenced(config, &target, &b.helm, fence)
    }
}

fn workload_of<'p>(plan: &'p Plan, c: &ImageChange) -> Option<&'p Workload> {
    plan.workloads.iter().find(|w| w.view.id() == c.workload)
}

/// One fenced commit and push; Events on every workload it carries.
async fn commit(pass: &mut Pass<'_>, g: &GitOps, plan: &Plan, b: Batch) -> Option<Pushed> {
    let (config, work, fence) = (g.config.clone(), b.clone(), pass.options.fence.clone());
    let outcome = tokio::task::spawn_blocking(move || write_batch(&config, &work, &fence))
        .await
        .map_err(crate::Error::Join)
        .and_then(|r| r)
        .map_err(Arc::new);
    let wb = match outcome {
        Ok(wb) => wb,
        Err(e) => {
            if pass.options.fence.is_lost() {
                pass.applied.lose_leadership();
                return None;
            }
            for c in &b.changes {
                let w = workload_of(plan, c);
                pass.fail(w, &c.workload, StepFailure::GitWrite(e.clone()))
                    .await;
            }
            return None;
        }
    };
    let commit = wb.commit?;
    let review = match &b.base {
        Some(base) => format!("; merge {} into {base} to deploy it", b.target.branch),
        None => String::new(),
    };
    for c in &b.changes {
        if let Some(w) = workload_of(plan, c) {
            let note = format!(
                "{}: {} → {} in {} ({}) commit {}{review}",
                c.container,
                c.old_image,
                c.new_image,
                b.target.repo,
                b.target.branch,
                ferry_core::short_hash(&commit)
            );
            pass.events.publish(w, false, "CommittedToGit", &note).await;
        }
        pass.applied
            .committed
            .push(format!("{} {}", c.workload, commit));
    }
    Some(Pushed { batch: b, commit })
}

/// After a push: wait (bounded by the rollout timeout) for each workload's pod template to carry
/// the new image and for its rollout to become healthy. A failed rollout reverts ferry's commit
/// (a new commit, never a force-push): the revert in git is the quarantine (see
/// [`gitops::reverted`]). Not synced in time: an Event, no revert.
async fn health_gate(pass: &mut Pass<'_>, g: &GitOps, plan: &Plan, p: Pushed) {
    let options = pass.options;
    let (timeout, poll, fence) = (options.timeout(), options.poll(), &options.fence);
    let mut failed: Vec<(&Workload, rollout::WatchFailure)> = Vec::new();
    for (id, images) in &p.batch.targets {
        let Some(w) = plan.workloads.iter().find(|w| w.view.id() == *id) else {
            continue;
        };
        // A chart spells the image as its templates say: only the digest is certain.
        let by_digest = !p.batch.helm.is_empty();
        match rollout::synced(&pass.ctx.client, w, images, by_digest, timeout, poll, fence).await {
            Watched::Done => {}
            Watched::LeadershipLost => return pass.applied.lose_leadership(),
            Watched::Failed(why) => {
                let note = format!(
                    "commit {}: {why}; not reverted",
                    ferry_core::short_hash(&p.commit)
                );
                pass.events.publish(w, true, "NotSynced", &note).await;
                pass.applied.unsynced.push((w.view.id(), note));
                continue;
            }
        }
        match rollout::rollout(&pass.ctx.client, w, timeout, poll, fence).await {
            Watched::Done => {}
            Watched::LeadershipLost => return pass.applied.lose_leadership(),
            Watched::Failed(why) => failed.push((w, why)),
        }
    }
    if failed.is_empty() {
        return;
    }
    let reason = failed
        .iter()
        .map(|(w, why)| format!("{}: {why}", w.view.id()))
        .collect::<Vec<_>>()
        .join("; ");
    if fence.check().is_err() {
        return pass.applied.lose_leadership();
    }
    let failed_ids: Vec<String> = failed.iter().map(|(w, _)| w.view.id()).collect();
    let res = undo(
        g,
        &p,
        &failed_ids,
        format!("The rollout failed: {reason}"),
        fence,
    )
    .await
    .map_err(Arc::new);
    report_undo(pass, &res, failed, &p.commit).await;
}

/// Events and records for the workloads whose rollout failed after a push, once their revert
/// (`res`) was pushed or failed.
async fn report_undo(
    pass: &mut Pass<'_>,
    res: &Result<String, Arc<crate::Error>>,
    failed: Vec<(&Workload, rollout::WatchFailure)>,
    commit: &str,
) {
    let commit = ferry_core::short_hash(commit);
    for (w, why) in failed {
        match res {
            Ok(revert) => {
                let revert = ferry_core::short_hash(revert);
                let note =
                    format!("{why}; pushed {revert} reverting {commit}; its digest is quarantined");
                pass.events.publish(w, true, "RolledBack", &note).await;
                pass.applied
                    .rolled_back
                    .push((w.view.id(), why.to_string()));
            }
            Err(e) => {
                let failure = StepFailure::Revert {
                    why,
                    commit: commit.to_string(),
                    error: e.clone(),
                };
                pass.fail(Some(w), &w.view.id(), failure).await;
            }
        }
    }
}

/// Undo `p` for the `failed` workloads: a revert of the whole commit when they are all it
/// carries; otherwise a new commit restoring only their previous images (the healthy
/// workloads of the same commit keep theirs). Either way a new commit, never a force-push.
async fn undo(
    g: &GitOps,
    p: &Pushed,
    failed: &[String],
    why: String,
    fence: &crate::lease::Fence,
) -> crate::Result<String> {
    let (config, target, commit, fence) = (
        g.config.clone(),
        p.batch.target.clone(),
        p.commit.clone(),
        fence.clone(),
    );
    let all = p.batch.changes.iter().all(|c| failed.contains(&c.workload));
    let inverse: Vec<ImageChange> = p
        .batch
        .changes
        .iter()
        .filter(|c| failed.contains(&c.workload))
        .map(|c| ImageChange {
            old_image: c.new_image.clone(),
            new_image: c.old_image.clone(),
            ..c.clone()
        })
        .collect();
    let helm: Vec<HelmChange> = p
        .batch
        .helm
        .iter()
        .filter(|c| failed.contains(&c.workload))
        .map(|c| HelmChange {
            old_image: c.new_image.clone(),
            new_image: c.old_image.clone(),
            ..c.clone()
        })
        .collect();
    let nothing = gitops::git_error(&target, gitops::GitProblem::NothingToRestore);
    let work = move || -> crate::Result<String> {
        if all {
            return gitops::revert(&config, &target, &commit, &why, &fence);
        }
        let config = WriteBackConfig {
            subject: format!(
                "ferry: restore {{count}} image(s) of {} after a failed rollout",
                ferry_core::short_hash(&commit)
            ),
            ..config
        };
        let wb = match helm.is_empty() {
            true => gitops::write_back_fenced(&config, &target, &inverse, &fence),
            false => gitops::write_back_helm_fenced(&config, &target, &helm, &fence),
        }?;
        wb.commit.ok_or(nothing)
    };
    tokio::task::spawn_blocking(work)
        .await
        .map_err(crate::Error::Join)
        .and_then(|r| r)
}
