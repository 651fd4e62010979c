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
use crate::gitops::{self, GitTarget, HelmChange, ImageChange, WriteBackConfig};
use crate::helm;
use crate::policy::{self, Action, Decision, GitEdit, GitRoute, Reason, Route};

/// Where a workload's git updates go, before they are placed in a file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Destination {
    /// Repository, the Application's branch, and the manifests' path or the values file.
    target: GitTarget,
    /// What is edited.
    edit: GitEdit,
    /// A separate branch the commits go to (`ferry.dev/git-write-branch`, `--git-write-branch`).
    write_branch: Option<String>,
    /// Helm: values files listed after the edited one, in the same repository and revision
    /// (they override it, so none may set the image key).
    overrides: Vec<String>,
}

impl Destination {
    fn new(target: GitTarget, edit: GitEdit) -> Self {
        Destination {
            target,
            edit,
            write_branch: None,
            overrides: Vec::new(),
        }
    }
}

/// Where `w`'s updates go: [`git_target`] plus its write branch (the annotation wins over the
/// flag; the Application's own branch means none).
async fn destination(
    ctx: &Context,
    g: &GitOps,
    w: &Workload,
) -> Result<Option<Destination>, String> {
    let Some(mut dest) = git_target(&ctx.client, &ctx.argocd_namespace, w).await? else {
        return Ok(None);
    };
    dest.write_branch = policy::write_branch(&w.view)
        .or_else(|| g.write_branch.clone())
        .filter(|b| *b != dest.target.branch);
    Ok(Some(dest))
}

/// Where `w`'s manifests live: its `ferry.dev/git-*` annotations, else its Argo CD
/// Application: a Helm chart's values file ([`helm::values_file`], key from
/// `ferry.dev/helm-image`), else `spec.source` (`repoURL`, `path`, `targetRevision`).
async fn git_target(
    client: &Client,
    argocd_ns: &str,
    w: &Workload,
) -> Result<Option<Destination>, String> {
    let v = &w.view;
    if let Some(repo) = v.annotation(policy::GIT_REPO) {
        let target = GitTarget {
            repo: repo.to_string(),
            branch: v
                .annotation(policy::GIT_BRANCH)
                .unwrap_or("main")
                .to_string(),
            path: v.annotation(policy::GIT_PATH).unwrap_or("").to_string(),
        };
        return Ok(Some(Destination::new(target, GitEdit::Manifests)));
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
    let spec = obj.data.get("spec");
    let values = spec.map(|s| helm::values_file(s, v.annotation(helm::HELM_IMAGE)));
    match values {
        Some(Ok(Some(f))) => {
            let overrides = f
                .later_targets
                .iter()
                .filter(|t| t.repo == f.target.repo && t.branch == f.target.branch)
                .map(|t| t.path.clone())
                .collect();
            let edit = GitEdit::HelmValues { key: f.key };
            Ok(Some(Destination {
                overrides,
                ..Destination::new(f.target, edit)
            }))
        }
        Some(Err(refusal)) => Err(format!("Application {app}: {refusal}")),
        Some(Ok(None)) | None => {
            source_target(&app, spec).map(|t| Some(Destination::new(t, GitEdit::Manifests)))
        }
    }
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
    let mut by_dest: BTreeMap<Destination, Vec<usize>> = BTreeMap::new();
    for w in workloads {
        if !decisions.iter().any(|d| belongs(d, w) && wants_git(d, w)) {
            continue;
        }
        let dest = destination(ctx, g, w).await;
        for (i, d) in decisions.iter_mut().enumerate() {
            if !(belongs(d, w) && wants_git(d, w)) {
                continue;
            }
            match &dest {
                Ok(Some(t)) => by_dest.entry(t.clone()).or_default().push(i),
                Ok(None) => {}
                Err(e) => skip(d, e),
            }
        }
    }
    for (dest, idx) in by_dest {
        let changes: Vec<ImageChange> = idx.iter().map(|i| change_of(&decisions[*i])).collect();
        let placed = place(g.config.clone(), dest.clone(), changes).await;
        for (n, i) in idx.iter().enumerate() {
            let d = &mut decisions[*i];
            let mut route = GitRoute {
                repo: dest.target.repo.clone(),
                branch: dest
                    .write_branch
                    .clone()
                    .unwrap_or(dest.target.branch.clone()),
                path: dest.target.path.clone(),
                file: None,
                edit: dest.edit.clone(),
                base: dest
                    .write_branch
                    .as_ref()
                    .map(|_| dest.target.branch.clone()),
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

/// A change written to a Helm values file `file` at `key`.
fn helm_change(c: &ImageChange, file: &str, key: &str) -> HelmChange {
    HelmChange {
        workload: c.workload.clone(),
        container: c.container.clone(),
        file: file.to_string(),
        key: key.to_string(),
        old_image: c.old_image.clone(),
        new_image: c.new_image.clone(),
    }
}

/// Find the file each change edits on the branch tip (blocking git work off the runtime): the
/// write branch when it exists (it may hold ferry's unmerged commits), else the base branch.
async fn place(
    config: WriteBackConfig,
    dest: Destination,
    changes: Vec<ImageChange>,
) -> Result<Vec<Placement>, String> {
    let work = move || -> Result<Vec<Placement>, String> {
        let t = gitops::resolve_branch(&config, &dest.target).map_err(|e| e.to_string())?;
        // A revert on the base branch quarantines too (the write branch may lag behind it).
        let (base_repo, base_tip) = gitops::fetch(&config, &t).map_err(|e| e.to_string())?;
        let on_write_branch = dest.write_branch.as_ref().and_then(|b| {
            let wt = GitTarget {
                branch: b.clone(),
                ..t.clone()
            };
            gitops::fetch(&config, &wt).ok()
        });
        let (repo, tip) = on_write_branch.unwrap_or((base_repo, base_tip));
        let tree = repo
            .find_commit(tip)
            .and_then(|c| c.tree())
            .map_err(|e| e.message().to_string())?;
        Ok(changes
            .iter()
            .map(|c| {
                if let Some((_, d)) = c.new_image.rsplit_once('@')
                    && let Some((commit, author)) = gitops::reverted(&repo, tip, d)
                        .or_else(|| gitops::reverted(&repo, base_tip, d))
                {
                    return Placement::Refused(format!(
                        "{d} was reverted in git by {author} ({}); quarantined until the tag moves",
                        ferry_core::short_hash(&commit)
                    ));
                }
                let (files, problems) = match &dest.edit {
                    GitEdit::Manifests => {
                        gitops::plan_edits(&repo, &tree, &t, std::slice::from_ref(c))
                    }
                    GitEdit::HelmValues { key } => {
                        if let Some(why) = overridden(&repo, &tree, &t.path, &dest.overrides, key) {
                            return Placement::Refused(why);
                        }
                        let h = helm_change(c, &t.path, key);
                        gitops::plan_helm_edits(&repo, &tree, std::slice::from_ref(&h))
                    }
                };
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
}

/// Why an edit of the values file `file` at `key` would change nothing: a values file Helm
/// applies after it sets the same image.
fn overridden(
    repo: &git2::Repository,
    tree: &git2::Tree<'_>,
    file: &str,
    later: &[String],
    key: &str,
) -> Option<String> {
    later.iter().find_map(|path| {
        let entry = tree.get_path(std::path::Path::new(path)).ok()?;
        let blob = repo.find_blob(entry.id()).ok()?;
        let text = std::str::from_utf8(blob.content()).ok()?;
        crate::yamledit::helm_sets_image(text, key).then(|| {
            format!("{path}, applied after {file} in helm.valueFiles, sets {key} and would override the edit (ferry edits only the first values file)")
        })
    })
}

/// A pushed commit and the changes it carries.
struct Pushed {
    batch: Batch,
    commit: String,
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
    let mut groups: BTreeMap<(GitTarget, Option<String>, bool), Vec<&Decision>> = BTreeMap::new();
    for d in plan.decisions.iter().filter(|d| d.action == Action::Update) {
        let Some(route) = d.git() else { continue };
        let t = GitTarget {
            repo: route.repo.clone(),
            branch: route.branch.clone(),
            path: String::new(),
        };
        let helm = matches!(route.edit, GitEdit::HelmValues { .. });
        groups
            .entry((t, route.base.clone(), helm))
            .or_default()
            .push(d);
    }
    let mut pushed = Vec::new();
    for ((target, base, _), ds) in groups {
        if options.fence.check().is_err() {
            return applied.lose_leadership();
        }
        if let Some(p) = commit(g, plan, batch(target, base, &ds), options, events, applied).await {
            pushed.push(p);
        }
    }
    if options.wait {
        for p in pushed {
            if applied.leadership_lost {
                return;
            }
            // A write branch waits for a person to merge it: Argo CD syncs nothing meanwhile.
            if p.batch.base.is_some() {
                continue;
            }
            health_gate(ctx, g, plan, p, options, events, applied).await;
        }
    }
}

/// One commit for the whole repository and branch; each workload keeps its own path.
fn batch(target: GitTarget, base: Option<String>, ds: &[&Decision]) -> Batch {
    let mut changes = Vec::new();
    let mut helm = Vec::new();
    for d in ds {
        let route = d.git();
        let c = ImageChange {
            path: route.map(|r| r.path.clone()),
            ..change_of(d)
        };
        if let Some(GitRoute {
            path,
            edit: GitEdit::HelmValues { key },
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
async fn commit(
    g: &GitOps,
    plan: &Plan,
    b: Batch,
    options: &ApplyOptions,
    events: &Events,
    applied: &mut Applied,
) -> Option<Pushed> {
    let (config, work, fence) = (g.config.clone(), b.clone(), options.fence.clone());
    let outcome = tokio::task::spawn_blocking(move || write_batch(&config, &work, &fence))
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
            for c in &b.changes {
                if let Some(w) = workload_of(plan, c) {
                    events.publish(w, true, "GitWriteBackFailed", &e).await;
                }
                applied.fail(&c.workload, Stage::GitWrite, e.clone());
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
            events.publish(w, false, "CommittedToGit", &note).await;
        }
        applied.committed.push(format!("{} {}", c.workload, commit));
    }
    Some(Pushed { batch: b, commit })
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
    for c in &p.batch.changes {
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
        // A chart spells the image as its templates say: only the digest is certain.
        let by_digest = !p.batch.helm.is_empty();
        match rollout::synced(&ctx.client, w, images, by_digest, timeout, poll, fence).await {
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
    report_undo(&res, failed, &p.commit, events, applied).await;
}

/// Events and records for the workloads whose rollout failed after a push, once their revert
/// (`res`) was pushed or failed.
async fn report_undo(
    res: &crate::Result<String>,
    failed: Vec<(&Workload, String)>,
    commit: &str,
    events: &Events,
    applied: &mut Applied,
) {
    let commit = ferry_core::short_hash(commit);
    for (w, why) in failed {
        match res {
            Ok(revert) => {
                let revert = ferry_core::short_hash(revert);
                let note =
                    format!("{why}; pushed {revert} reverting {commit}; its digest is quarantined");
                events.publish(w, true, "RolledBack", &note).await;
                applied.rolled_back.push((w.view.id(), why));
            }
            Err(e) => {
                let note = format!("{why}; reverting {commit} failed: {e}");
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
    let git_error = {
        let t = target.clone();
        move |message: String| crate::Error::Git {
            repo: t.repo.clone(),
            branch: t.branch.clone(),
            message,
        }
    };
    let nothing = git_error.clone();
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
        wb.commit
            .ok_or_else(|| nothing("nothing to restore: the files changed since".into()))
    };
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| git_error(e.to_string()))
        .and_then(|r| r)
}
