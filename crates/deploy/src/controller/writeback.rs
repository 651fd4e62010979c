//! Updates that go through git: find where each workload's manifests live (its
//! `ferry.dev/git-*` annotations, else its Argo CD Application), place each change in a file
//! (planning), then commit and push once per repository and branch (applying), wait for Argo CD
//! to sync and the rollout to become healthy, and push a revert of ferry's own commit when it
//! does not.

use std::collections::BTreeMap;

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};

use super::apply::{ApplyOptions, Stage, belongs};
use super::events::Events;
use super::rollout::{self, Watched};
use super::{Applied, Context, GitOps, Plan};
use crate::cluster::Workload;
use crate::gitops::{self, GitTarget, ImageChange, WriteBackConfig};
use crate::policy::{self, Action, Decision, GitRoute, Reason, Route};

/// Where `w`'s manifests live: its `ferry.dev/git-*` annotations, else its Argo CD
/// Application's `spec.source` (`repoURL`, `path`, `targetRevision`).
async fn git_target(
    client: &Client,
    argocd_ns: &str,
    w: &Workload,
) -> Result<Option<GitTarget>, String> {
    let v = &w.view;
    if let Some(repo) = v.annotation(policy::GIT_REPO) {
        return Ok(Some(GitTarget {
            repo: repo.to_string(),
            branch: v
                .annotation(policy::GIT_BRANCH)
                .unwrap_or("main")
                .to_string(),
            path: v.annotation(policy::GIT_PATH).unwrap_or("").to_string(),
        }));
    }
    let Some(app) = v.argocd_application() else {
        return Ok(None);
    };
    let gvk = GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application");
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), argocd_ns, &ApiResource::from_gvk(&gvk));
    let obj = match api.get_opt(&app).await {
        Ok(Some(o)) => o,
        Ok(None) => return Err(format!("Argo CD Application {argocd_ns}/{app} not found")),
        Err(e) => {
            return Err(format!(
                "cannot read Argo CD Application {argocd_ns}/{app}: {e}"
            ));
        }
    };
    source_target(&app, obj.data.get("spec")).map(Some)
}

/// The git source of an Application's spec.
fn source_target(app: &str, spec: Option<&serde_json::Value>) -> Result<GitTarget, String> {
    let source = spec
        .and_then(|s| s.get("source"))
        .or_else(|| spec.and_then(|s| s.get("sources")).and_then(|s| s.get(0)))
        .ok_or_else(|| format!("Application {app} has no spec.source"))?;
    let field = |k: &str| {
        source
            .get(k)
            .and_then(|x| x.as_str())
            .unwrap_or("")
            .to_string()
    };
    let repo = field("repoURL");
    if repo.is_empty() {
        return Err(format!("Application {app} has no spec.source.repoURL"));
    }
    if source.get("chart").is_some() {
        return Err(format!(
            "Application {app} deploys a Helm chart from a chart repository; write-back needs a git source"
        ));
    }
    Ok(GitTarget {
        repo,
        branch: field("targetRevision"),
        path: field("path"),
    })
}

fn change_of(d: &Decision) -> ImageChange {
    ImageChange {
        workload: d.workload_id(),
        kind: d.kind.to_string(),
        name: d.name.clone(),
        container: d.container.clone(),
        old_image: d.image.clone(),
        new_image: d.target_image().unwrap_or_default(),
        path: None,
    }
}

/// Where one change lands in git.
enum Placement {
    /// This file gets the edit.
    File(String),
    /// The repository already holds the target (Argo CD has not synced yet).
    AlreadyWritten,
    /// It cannot be written, and why.
    Refused(String),
}

/// Whether a decision goes to git: an update of a workload that asks for git, or one refused
/// only because Argo CD manages it.
fn wants_git(d: &Decision, w: &Workload) -> bool {
    d.reason == Reason::ArgoCdManaged
        || (d.action == Action::Update && w.view.annotation(policy::GIT_REPO).is_some())
}

/// Turn updates of workloads with a git target into git updates (`via: git`, repo, branch,
/// file), or skips with the reason (no manifest found, a revert quarantined that digest…).
pub(super) async fn route_through_git(
    ctx: &Context,
    g: &GitOps,
    workloads: &[Workload],
    decisions: &mut [Decision],
) {
    let mut by_target: BTreeMap<GitTarget, Vec<usize>> = BTreeMap::new();
    for w in workloads {
        if !decisions.iter().any(|d| belongs(d, w) && wants_git(d, w)) {
            continue;
        }
        let target = git_target(&ctx.client, &ctx.argocd_namespace, w).await;
        for (i, d) in decisions.iter_mut().enumerate() {
            if !(belongs(d, w) && wants_git(d, w)) {
                continue;
            }
            match &target {
                Ok(Some(t)) => by_target.entry(t.clone()).or_default().push(i),
                Ok(None) => {}
                Err(e) => skip(d, e),
            }
        }
    }
    for (target, idx) in by_target {
        let changes: Vec<ImageChange> = idx.iter().map(|i| change_of(&decisions[*i])).collect();
        let placed = place(g.config.clone(), target.clone(), changes).await;
        for (n, i) in idx.iter().enumerate() {
            let d = &mut decisions[*i];
            let mut route = GitRoute {
                repo: target.repo.clone(),
                branch: target.branch.clone(),
                path: target.path.clone(),
                file: None,
            };
            match placed.as_ref().map(|p| &p[n]) {
                Ok(Placement::File(file)) => {
                    d.action = Action::Update;
                    route.file = Some(file.clone());
                    if d.reason == Reason::ArgoCdManaged {
                        d.reason = Reason::WrittenForArgoCd;
                    }
                }
                Ok(Placement::AlreadyWritten) => {
                    d.action = Action::None;
                    d.reason = Reason::AlreadyInGit;
                }
                Ok(Placement::Refused(e)) | Err(e) => skip(d, e),
            }
            d.route = Route::Git(route);
        }
    }
}

fn skip(d: &mut Decision, why: &str) {
    d.action = Action::Skip;
    d.reason = Reason::GitWriteBack(why.to_string());
}

/// Find the file each change edits on the branch tip (blocking git work off the runtime).
async fn place(
    config: WriteBackConfig,
    target: GitTarget,
    changes: Vec<ImageChange>,
) -> Result<Vec<Placement>, String> {
    let work = move || -> Result<Vec<Placement>, String> {
        let t = gitops::resolve_branch(&config, &target).map_err(|e| e.to_string())?;
        let (repo, tip) = gitops::fetch(&config, &t).map_err(|e| e.to_string())?;
        let tree = repo
            .find_commit(tip)
            .and_then(|c| c.tree())
            .map_err(|e| e.message().to_string())?;
        Ok(changes
            .iter()
            .map(|c| {
                if let Some((_, d)) = c.new_image.rsplit_once('@')
                    && let Some((commit, author)) = gitops::reverted(&repo, tip, d)
                {
                    return Placement::Refused(format!(
                        "{d} was reverted in git by {author} ({}); quarantined until the tag moves",
                        ferry_core::short_hash(&commit)
                    ));
                }
                let (files, problems) =
                    gitops::plan_edits(&repo, &tree, &t, std::slice::from_ref(c));
                match (files.keys().next(), problems.first()) {
                    (Some(f), _) => Placement::File(f.clone()),
                    (None, Some(p)) => Placement::Refused(p.clone()),
                    (None, None) => Placement::AlreadyWritten,
                }
            })
            .collect())
    };
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
}

/// A pushed commit and the changes it carries.
struct Pushed {
    target: GitTarget,
    commit: String,
    changes: Vec<ImageChange>,
}

/// Commit and push the git updates of `plan` (one commit per repository and branch, fenced),
/// then — with `wait` — gate each commit on Argo CD's sync and the rollouts' health.
pub(super) async fn apply_git(
    ctx: &Context,
    g: &GitOps,
    plan: &Plan,
    options: &ApplyOptions,
    events: &Events,
    applied: &mut Applied,
) {
    let mut groups: BTreeMap<GitTarget, Vec<&Decision>> = BTreeMap::new();
    for d in plan.decisions.iter().filter(|d| d.action == Action::Update) {
        let Some(route) = d.git() else { continue };
        let t = GitTarget {
            repo: route.repo.clone(),
            branch: route.branch.clone(),
            path: String::new(),
        };
        groups.entry(t).or_default().push(d);
    }
    let mut pushed = Vec::new();
    for (target, ds) in groups {
        if options.fence.check().is_err() {
            return applied.lose_leadership();
        }
        // Each workload keeps its own path; one commit for the whole repository and branch.
        let changes: Vec<ImageChange> = ds
            .iter()
            .map(|d| ImageChange {
                path: d.git().map(|r| r.path.clone()),
                ..change_of(d)
            })
            .collect();
        if let Some(p) = commit(g, plan, target, changes, options, events, applied).await {
            pushed.push(p);
        }
    }
    if options.wait {
        for p in pushed {
            if applied.leadership_lost {
                return;
            }
            health_gate(ctx, g, plan, p, options, events, applied).await;
        }
    }
}

fn workload_of<'p>(plan: &'p Plan, c: &ImageChange) -> Option<&'p Workload> {
    plan.workloads.iter().find(|w| w.view.id() == c.workload)
}

/// One fenced commit and push; Events on every workload it carries.
async fn commit(
    g: &GitOps,
    plan: &Plan,
    target: GitTarget,
    changes: Vec<ImageChange>,
    options: &ApplyOptions,
    events: &Events,
    applied: &mut Applied,
) -> Option<Pushed> {
    let (config, t, ch, fence) = (
        g.config.clone(),
        target.clone(),
        changes.clone(),
        options.fence.clone(),
    );
    let outcome =
        tokio::task::spawn_blocking(move || gitops::write_back_fenced(&config, &t, &ch, &fence))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
    let wb = match outcome {
        Ok(wb) => wb,
        Err(e) => {
            if options.fence.is_lost() {
                applied.lose_leadership();
                return None;
            }
            for c in &changes {
                if let Some(w) = workload_of(plan, c) {
                    events.publish(w, true, "GitWriteBackFailed", &e).await;
                }
                applied.fail(&c.workload, Stage::GitWrite, e.clone());
            }
            return None;
        }
    };
    let commit = wb.commit?;
    for c in &changes {
        if let Some(w) = workload_of(plan, c) {
            let note = format!(
                "{}: {} → {} in {} ({}) commit {}",
                c.container,
                c.old_image,
                c.new_image,
                target.repo,
                target.branch,
                ferry_core::short_hash(&commit)
            );
            events.publish(w, false, "CommittedToGit", &note).await;
        }
        applied.committed.push(format!("{} {}", c.workload, commit));
    }
    Some(Pushed {
        target,
        commit,
        changes,
    })
}

/// After a push: wait (bounded by the rollout timeout) for each workload's pod template to carry
/// the new image and for its rollout to become healthy. A failed rollout reverts ferry's commit
/// (a new commit, never a force-push): the revert in git is the quarantine (see
/// [`gitops::reverted`]). Not synced in time: an Event, no revert.
async fn health_gate(
    ctx: &Context,
    g: &GitOps,
    plan: &Plan,
    p: Pushed,
    options: &ApplyOptions,
    events: &Events,
    applied: &mut Applied,
) {
    let (timeout, poll, fence) = (options.timeout(), options.poll(), &options.fence);
    let mut by_workload: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();
    for c in &p.changes {
        by_workload
            .entry(c.workload.as_str())
            .or_default()
            .insert(c.container.clone(), c.new_image.clone());
    }
    let mut failed: Vec<(&Workload, String)> = Vec::new();
    for (id, images) in &by_workload {
        let Some(w) = plan.workloads.iter().find(|w| w.view.id() == *id) else {
            continue;
        };
        match rollout::synced(&ctx.client, w, images, timeout, poll, fence).await {
            Watched::Done => {}
            Watched::LeadershipLost => return applied.lose_leadership(),
            Watched::Failed(why) => {
                let note = format!(
                    "commit {}: {why}; not reverted",
                    ferry_core::short_hash(&p.commit)
                );
                events.publish(w, true, "NotSynced", &note).await;
                applied.unsynced.push((w.view.id(), note));
                continue;
            }
        }
        match rollout::rollout(&ctx.client, w, timeout, poll, fence).await {
            Watched::Done => {}
            Watched::LeadershipLost => return applied.lose_leadership(),
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
        return applied.lose_leadership();
    }
    let failed_ids: Vec<String> = failed.iter().map(|(w, _)| w.view.id()).collect();
    let res = undo(
        g,
        &p,
        &failed_ids,
        format!("The rollout failed: {reason}"),
        fence,
    )
    .await;
    for (w, why) in failed {
        match &res {
            Ok(revert) => {
                let note = format!(
                    "{why}; pushed {} reverting {}; its digest is quarantined",
                    ferry_core::short_hash(revert),
                    ferry_core::short_hash(&p.commit)
                );
                events.publish(w, true, "RolledBack", &note).await;
                applied.rolled_back.push((w.view.id(), why));
            }
            Err(e) => {
                let note = format!(
                    "{why}; reverting {} failed: {e}",
                    ferry_core::short_hash(&p.commit)
                );
                events.publish(w, true, "RollbackFailed", &note).await;
                applied.fail(&w.view.id(), Stage::GitRevert, note);
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
) -> Result<String, String> {
    let (config, target, commit, fence) = (
        g.config.clone(),
        p.target.clone(),
        p.commit.clone(),
        fence.clone(),
    );
    let all = p.changes.iter().all(|c| failed.contains(&c.workload));
    let inverse: Vec<ImageChange> = p
        .changes
        .iter()
        .filter(|c| failed.contains(&c.workload))
        .map(|c| ImageChange {
            old_image: c.new_image.clone(),
            new_image: c.old_image.clone(),
            ..c.clone()
        })
        .collect();
    let work = move || -> Result<String, String> {
        if all {
            return gitops::revert(&config, &target, &commit, &why, &fence)
                .map_err(|e| e.to_string());
        }
        let config = WriteBackConfig {
            subject: format!(
                "ferry: restore {{count}} image(s) of {} after a failed rollout",
                ferry_core::short_hash(&commit)
            ),
            ..config
        };
        let wb = gitops::write_back_fenced(&config, &target, &inverse, &fence)
            .map_err(|e| e.to_string())?;
        wb.commit
            .ok_or_else(|| "nothing to restore: the files changed since".to_string())
    };
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
}
