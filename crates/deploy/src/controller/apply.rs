//! Applying a plan: one patch per workload, fenced by the Lease; Events; with `wait`, watch the
//! rollout and roll a failed one back, quarantining its digest. A failure stays with its
//! workload: it is recorded (Event, [`Failure`]) and the pass goes on with the others.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_core::duration::unix_now;

use super::events::{Events, refusal_key};
use super::failure::StepFailure;
use super::rollout::WatchFailure;
use super::{Context, Plan, rollout, writeback};
use crate::cluster::{self, Workload};
use crate::error::Result;
use crate::lease::Fence;
use crate::policy::{self, Action, Decision};

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
    /// The Event reason of a failure at this stage.
    pub fn event_reason(self) -> &'static str {
        match self {
            Stage::Patch => "RedeployFailed",
            Stage::Rollback | Stage::GitRevert => "RollbackFailed",
            Stage::GitWrite => "GitWriteBackFailed",
        }
    }

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

/// What applying a plan did. Each failure is recorded once ([`Applied::failures`]); the JSON
/// also carries it as `failed` (`[workload, message]` pairs, as before), derived when written.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// `namespace/Kind/name` of every patched workload.
    pub updated: Vec<String>,
    /// Workloads rolled back after a failed rollout, with the reason.
    pub rolled_back: Vec<(String, String)>,
    /// Workloads whose baseline was recorded.
    pub baselines: Vec<String>,
    /// Re-tags recorded without a template change: `workload container=tag`.
    pub retagged: Vec<String>,
    /// Git write-backs: `workload commit`.
    pub committed: Vec<String>,
    /// Everything that failed — patches, rollbacks, git writes, reverts — with its stage.
    pub failures: Vec<Failure>,
    /// Git updates Argo CD did not sync within the rollout timeout (no revert).
    pub unsynced: Vec<(String, String)>,
    /// This replica lost the Lease during the pass and stopped writing.
    pub leadership_lost: bool,
    /// Pull/merge requests opened, updated, closed as superseded, or whose closing quarantined
    /// a digest.
    pub pull_requests: Vec<super::review::RequestNote>,
}

impl serde::Serialize for Applied {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let failed: Vec<(&str, &str)> = self
            .failures
            .iter()
            .map(|f| (f.workload.as_str(), f.message.as_str()))
            .collect();
        let mut m = s.serialize_struct("Applied", 10)?;
        m.serialize_field("updated", &self.updated)?;
        m.serialize_field("rolled_back", &self.rolled_back)?;
        m.serialize_field("baselines", &self.baselines)?;
        m.serialize_field("retagged", &self.retagged)?;
        m.serialize_field("committed", &self.committed)?;
        m.serialize_field("failed", &failed)?;
        m.serialize_field("failures", &self.failures)?;
        m.serialize_field("unsynced", &self.unsynced)?;
        m.serialize_field("leadership_lost", &self.leadership_lost)?;
        m.serialize_field("pull_requests", &self.pull_requests)?;
        m.end()
    }
}

/// One pass of [`apply`]: what it works with and what it did so far (the kube-rs `Context` of a
/// reconcile, plus its outcome), instead of threading each through every step.
pub(super) struct Pass<'a> {
    pub ctx: &'a Context,
    pub options: &'a ApplyOptions,
    pub events: Events,
    pub applied: Applied,
}

impl Pass<'_> {
    /// The one place a failed step becomes its Warning Event (on `w`, when the workload is
    /// known), its log line and its report entry (from which `ferry_failures_total` and the
    /// JSON's `failed`/`failures` are derived).
    pub(super) async fn fail(&mut self, w: Option<&Workload>, id: &str, failure: StepFailure) {
        let (stage, note) = (failure.stage(), failure.to_string());
        tracing::warn!(workload = id, stage = stage.as_str(), error = %note, "failed");
        if let Some(w) = w {
            self.events
                .publish(w, true, stage.event_reason(), &note)
                .await;
        }
        self.applied.failures.push(Failure {
            workload: id.to_string(),
            stage,
            message: note,
        });
    }
}

impl Applied {
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
    let mut pass = Pass {
        ctx,
        options,
        events: Events::new(&ctx.client),
        applied: Applied::default(),
    };
    if let Some(g) = &ctx.gitops {
        writeback::apply_git(&mut pass, g, plan).await;
    }
    for w in &plan.workloads {
        if pass.applied.leadership_lost {
            break;
        }
        let mine: Vec<&Decision> = plan.decisions.iter().filter(|d| belongs(d, w)).collect();
        log_decisions(w, &mine);
        publish_refusals(ctx, &pass.events, w, &mine).await;
        apply_workload(&mut pass, w, &mine).await;
    }
    Ok(pass.applied)
}

pub(super) fn belongs(d: &Decision, w: &Workload) -> bool {
    d.namespace == w.view.namespace && d.kind == w.view.kind && d.name == w.view.name
}

fn log_decisions(w: &Workload, mine: &[&Decision]) {
    for d in mine.iter().filter(|d| {
        d.action != Action::None || d.records.baseline.is_some() || d.records.running_tag.is_some()
    }) {
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

async fn apply_workload(pass: &mut Pass<'_>, w: &Workload, mine: &[&Decision]) {
    let updates: Vec<&Decision> = mine
        .iter()
        .copied()
        .filter(|d| d.is_live_update())
        .collect();
    let annotations = policy::annotate::after_pass(&w.view, mine, unix_now());
    if updates.is_empty() && annotations.is_empty() {
        return;
    }
    let images: BTreeMap<String, String> = updates
        .iter()
        .filter_map(|d| Some((d.container.clone(), d.target_image()?)))
        .collect();
    let patch = cluster::image_patch(w.view.kind, &w.view, &images, &annotations);
    if pass.options.fence.check().is_err() {
        return pass.applied.lose_leadership();
    }
    let (kind, ns, name) = (w.view.kind, &w.view.namespace, &w.view.name);
    if let Err(e) = cluster::patch_workload(&pass.ctx.client, kind, ns, name, &patch).await {
        return pass
            .fail(Some(w), &w.view.id(), StepFailure::Patch(e))
            .await;
    }
    if updates.is_empty() {
        note_records(pass, w, mine).await;
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
    let note = summary.join("; ");
    pass.events.publish(w, false, "Redeployed", &note).await;
    pass.applied.updated.push(w.view.id());
    if !pass.options.wait {
        return;
    }
    let (timeout, poll) = (pass.options.timeout(), pass.options.poll());
    match rollout::rollout(&pass.ctx.client, w, timeout, poll, &pass.options.fence).await {
        rollout::Watched::Done => {}
        rollout::Watched::LeadershipLost => pass.applied.lose_leadership(),
        rollout::Watched::Failed(why) => {
            roll_back(pass, w, &updates, why).await;
        }
    }
}

/// A records-only patch: baselines and first-seen times (reported as `baselines`, as before)
/// and re-tags (each with a Normal Event).
async fn note_records(pass: &mut Pass<'_>, w: &Workload, mine: &[&Decision]) {
    let (b, f) = (
        |d: &&Decision| d.records.baseline.is_some(),
        |d: &&Decision| d.records.first_seen.is_some(),
    );
    if mine.iter().any(|d| b(d) || f(d)) {
        pass.applied.baselines.push(w.view.id());
    }
    for d in mine {
        if let Some(tag) = &d.records.running_tag {
            let note = format!("{}: {}", d.container, d.reason);
            pass.events.publish(w, false, "Retagged", &note).await;
            let id = w.view.id();
            pass.applied
                .retagged
                .push(format!("{id} {}={tag}", d.container));
        }
    }
}

/// Restore the previous images and quarantine the digests that failed.
async fn roll_back(pass: &mut Pass<'_>, w: &Workload, updates: &[&Decision], why: WatchFailure) {
    let undo = policy::annotate::after_failed_rollout(&w.view, updates);
    let back = &undo.images;
    let patch = cluster::image_patch(w.view.kind, &w.view, back, &undo.annotations);
    if pass.options.fence.check().is_err() {
        return pass.applied.lose_leadership();
    }
    let (kind, ns, name) = (w.view.kind, &w.view.namespace, &w.view.name);
    let restored: Vec<String> = back.iter().map(|(c, i)| format!("{c}={i}")).collect();
    match cluster::patch_workload(&pass.ctx.client, kind, ns, name, &patch).await {
        Ok(()) => {
            let note = format!("{why}; restored {}", restored.join(", "));
            pass.events.publish(w, true, "RolledBack", &note).await;
            pass.applied
                .rolled_back
                .push((w.view.id(), why.to_string()));
        }
        Err(error) => {
            let failure = StepFailure::Rollback {
                why,
                restored,
                error,
            };
            pass.fail(Some(w), &w.view.id(), failure).await;
        }
    }
}
