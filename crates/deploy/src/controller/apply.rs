//! Applying a plan: one patch per workload, fenced by the Lease; Events; with `wait`, watch the
//! rollout and roll a failed one back, quarantining its digest. A failure stays with its
//! workload: it is recorded (Event, [`Failure`]) and the pass goes on with the others.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_core::duration::unix_now;

use super::events::{Events, refusal_key};
use super::{Context, Plan, rollout, writeback};
use crate::cluster::{self, Workload};
use crate::error::Result;
use crate::lease::Fence;
use crate::policy::{self, Action, BASELINE, Decision, PREVIOUS_IMAGE, QUARANTINED};

/// Where in a pass something failed (the `stage` label of `ferry_failures_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Patching the workload.
    Patch,
    /// Rolling a failed rollout back.
    Rollback,
    /// Committing and pushing to git.
    GitWrite,
    /// Pushing the revert of a commit whose rollout failed.
    GitRevert,
}

impl Stage {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Patch => "patch",
            Stage::Rollback => "rollback",
            Stage::GitWrite => "git_write",
            Stage::GitRevert => "git_revert",
        }
    }
}

/// One failure of a pass.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    /// `namespace/Kind/name` (for a git failure: each workload of the commit).
    pub workload: String,
    /// Where it failed.
    pub stage: Stage,
    /// What went wrong.
    pub message: String,
}

/// What applying a plan did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Applied {
    /// `namespace/Kind/name` of every patched workload.
    pub updated: Vec<String>,
    /// Workloads rolled back after a failed rollout, with the reason.
    pub rolled_back: Vec<(String, String)>,
    /// Workloads whose baseline was recorded.
    pub baselines: Vec<String>,
    /// Git write-backs: `workload commit`.
    pub committed: Vec<String>,
    /// Everything that failed, as (workload, reason) — patches, rollbacks, git writes.
    pub failed: Vec<(String, String)>,
    /// The same failures with their stage.
    pub failures: Vec<Failure>,
    /// Git updates Argo CD did not sync within the rollout timeout (no revert).
    pub unsynced: Vec<(String, String)>,
    /// This replica lost the Lease during the pass and stopped writing.
    pub leadership_lost: bool,
}

impl Applied {
    /// Record a failure.
    pub(super) fn fail(&mut self, workload: &str, stage: Stage, message: String) {
        tracing::warn!(workload, stage = stage.as_str(), error = %message, "failed");
        self.failed.push((workload.to_string(), message.clone()));
        self.failures.push(Failure {
            workload: workload.to_string(),
            stage,
            message,
        });
    }

    /// Stop writing: the Lease is gone.
    pub(super) fn lose_leadership(&mut self) {
        if !self.leadership_lost {
            tracing::warn!("leadership lost: this pass stops writing");
        }
        self.leadership_lost = true;
    }
}

/// Options of [`apply`].
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Watch each rollout and roll back a failed one.
    pub wait: bool,
    /// Give up on a rollout after this long (then roll back).
    pub rollout_timeout: Option<Duration>,
    /// How often to look at a rollout.
    pub poll: Option<Duration>,
    /// Checked before every write; the default never refuses (no leader election).
    pub fence: Fence,
}

impl ApplyOptions {
    pub(super) fn timeout(&self) -> Duration {
        self.rollout_timeout.unwrap_or(Duration::from_secs(600))
    }

    pub(super) fn poll(&self) -> Duration {
        self.poll.unwrap_or(Duration::from_secs(2))
    }
}

/// Git updates first (one commit per repository and branch), then one patch per workload;
/// records baselines, publishes Events, and with `wait` watches each rollout, rolling a failed
/// one back and quarantining its digest. Failures are recorded in [`Applied`]; only a lost Lease
/// ends the pass early.
pub async fn apply(ctx: &Context, plan: &Plan, options: &ApplyOptions) -> Result<Applied> {
    let events = Events::new(&ctx.client);
    let mut applied = Applied::default();
    if let Some(g) = &ctx.gitops {
        writeback::apply_git(ctx, g, plan, options, &events, &mut applied).await;
    }
    for w in &plan.workloads {
        if applied.leadership_lost {
            break;
        }
        let mine: Vec<&Decision> = plan.decisions.iter().filter(|d| belongs(d, w)).collect();
        log_decisions(w, &mine);
        publish_refusals(ctx, &events, w, &mine).await;
        apply_workload(ctx, w, &mine, options, &events, &mut applied).await;
    }
    Ok(applied)
}

pub(super) fn belongs(d: &Decision, w: &Workload) -> bool {
    d.namespace == w.view.namespace && d.kind == w.view.kind && d.name == w.view.name
}

fn log_decisions(w: &Workload, mine: &[&Decision]) {
    for d in mine
        .iter()
        .filter(|d| d.action != Action::None || d.records.baseline.is_some())
    {
        tracing::info!(
            workload = %w.view.id(),
            container = %d.container,
            action = ?d.action,
            image = %d.image,
            target = d.target_image().unwrap_or_default(),
            reason = %d.reason,
            "decision"
        );
    }
}

/// Every refusal to move an opted-in workload is an Event, once per workload, reason and target
/// per hour. A soak is expected (Normal); everything else is a Warning.
async fn publish_refusals(ctx: &Context, events: &Events, w: &Workload, mine: &[&Decision]) {
    for d in mine.iter().filter(|d| d.action == Action::Skip) {
        let target = d.target_image().unwrap_or_default();
        let soak = d.soak_remaining_seconds.is_some();
        let reason = if soak { "Soaking" } else { "RedeploySkipped" };
        let text = d.reason.to_string();
        let key = refusal_key(&w.view.id(), &d.container, reason, &target, &text);
        if ctx.events.first_in_window(&key) {
            let who = if d.container.is_empty() {
                String::new()
            } else {
                format!("{}: ", d.container)
            };
            events
                .publish(w, !soak, reason, &format!("{who}{text}"))
                .await;
        }
    }
}

/// `key`'s `container=value` pairs with `entries` replacing each container's value; `None`
/// when there is nothing to write.
fn merged(
    w: &Workload,
    key: &str,
    entries: impl IntoIterator<Item = (String, String)>,
) -> Option<String> {
    let mut pairs = policy::parse_pairs(w.view.annotation(key));
    let mut any = false;
    for (container, value) in entries {
        pairs.insert(container, vec![value]);
        any = true;
    }
    any.then(|| policy::format_pairs(&pairs))
}

/// The annotations a pass records on `w`: previous images and rollout times of updates,
/// baselines, first-seen times.
fn bookkeeping(
    w: &Workload,
    mine: &[&Decision],
    updates: &[&Decision],
) -> BTreeMap<String, String> {
    let now = unix_now();
    let previous = updates
        .iter()
        .map(|d| (d.container.clone(), d.image.clone()));
    let rolled = updates.iter().filter_map(|d| {
        let digest = d.target_digest()?;
        Some((d.container.clone(), format!("{digest}@{now}")))
    });
    let baselines = mine.iter().filter_map(|d| {
        let b = d.records.baseline.as_ref()?;
        Some((d.container.clone(), b.to_string()))
    });
    let first_seen = mine
        .iter()
        .filter_map(|d| Some((d.container.clone(), d.records.first_seen_stamp()?)));
    [
        (PREVIOUS_IMAGE, merged(w, PREVIOUS_IMAGE, previous)),
        (policy::ROLLED_AT, merged(w, policy::ROLLED_AT, rolled)),
        (BASELINE, merged(w, BASELINE, baselines)),
        (
            policy::FIRST_SEEN,
            merged(w, policy::FIRST_SEEN, first_seen),
        ),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k.to_string(), v?)))
    .collect()
}

async fn apply_workload(
    ctx: &Context,
    w: &Workload,
    mine: &[&Decision],
    options: &ApplyOptions,
    events: &Events,
    applied: &mut Applied,
) {
    let updates: Vec<&Decision> = mine
        .iter()
        .copied()
        .filter(|d| d.is_live_update())
        .collect();
    let annotations = bookkeeping(w, mine, &updates);
    if updates.is_empty() && annotations.is_empty() {
        return;
    }
    let images: BTreeMap<String, String> = updates
        .iter()
        .filter_map(|d| Some((d.container.clone(), d.target_image()?)))
        .collect();
    let patch = cluster::image_patch(w.view.kind, &w.view, &images, &annotations);
    if options.fence.check().is_err() {
        return applied.lose_leadership();
    }
    let (kind, ns, name) = (w.view.kind, &w.view.namespace, &w.view.name);
    if let Err(e) = cluster::patch_workload(&ctx.client, kind, ns, name, &patch).await {
        let why = format!("patch failed: {e}");
        events.publish(w, true, "RedeployFailed", &why).await;
        return applied.fail(&w.view.id(), Stage::Patch, why);
    }
    if updates.is_empty() {
        applied.baselines.push(w.view.id());
        return;
    }
    let summary: Vec<String> = updates
        .iter()
        .map(|d| {
            format!(
                "{}: {} → {}",
                d.container,
                d.image,
                d.target_image().unwrap_or_default()
            )
        })
        .collect();
    events
        .publish(w, false, "Redeployed", &summary.join("; "))
        .await;
    applied.updated.push(w.view.id());
    if !options.wait {
        return;
    }
    let (timeout, poll) = (options.timeout(), options.poll());
    match rollout::rollout(&ctx.client, w, timeout, poll, &options.fence).await {
        rollout::Watched::Done => {}
        rollout::Watched::LeadershipLost => applied.lose_leadership(),
        rollout::Watched::Failed(why) => {
            roll_back(ctx, w, &updates, why, options, events, applied).await;
        }
    }
}

/// Restore the previous images and quarantine the digests that failed.
async fn roll_back(
    ctx: &Context,
    w: &Workload,
    updates: &[&Decision],
    why: String,
    options: &ApplyOptions,
    events: &Events,
    applied: &mut Applied,
) {
    let mut back = BTreeMap::new();
    let mut quarantine = policy::parse_pairs(w.view.annotation(QUARANTINED));
    for d in updates {
        back.insert(d.container.clone(), d.image.clone());
        if let Some(digest) = d.target_digest() {
            quarantine
                .entry(d.container.clone())
                .or_default()
                .push(digest.to_string());
        }
    }
    let ann = BTreeMap::from([(QUARANTINED.to_string(), policy::format_pairs(&quarantine))]);
    let patch = cluster::image_patch(w.view.kind, &w.view, &back, &ann);
    if options.fence.check().is_err() {
        return applied.lose_leadership();
    }
    let (kind, ns, name) = (w.view.kind, &w.view.namespace, &w.view.name);
    let restored: Vec<String> = back.iter().map(|(c, i)| format!("{c}={i}")).collect();
    match cluster::patch_workload(&ctx.client, kind, ns, name, &patch).await {
        Ok(()) => {
            let note = format!("{why}; restored {}", restored.join(", "));
            events.publish(w, true, "RolledBack", &note).await;
            applied.rolled_back.push((w.view.id(), why));
        }
        Err(e) => {
            let note = format!("{why}; rolling back to {} failed: {e}", restored.join(", "));
            events.publish(w, true, "RollbackFailed", &note).await;
            applied.fail(&w.view.id(), Stage::Rollback, note);
        }
    }
}
