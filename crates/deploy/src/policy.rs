//! Pure redeploy decisions: no IO. Given a workload's annotations and containers, what the
//! registry said and what platforms the cluster runs, decide per container: update (to what),
//! skip (why), or nothing to do.
//!
//! The rule above all others: a workload without `ferry.dev/policy`, with `off`, or a container
//! that `ferry.dev/containers` does not name, is never changed — whatever the registry says.

use std::collections::BTreeMap;

use ferry_core::{Digest, Platform, Reference};
use semver::{Version, VersionReq};

/// Opt-in and policy: `digest`, `semver:RANGE` or `off` (the default).
pub const POLICY: &str = "ferry.dev/policy";
/// Comma-separated container names ferry may change (default: all regular containers).
pub const CONTAINERS: &str = "ferry.dev/containers";
/// Platforms a new image must provide (default: the cluster's node platforms).
pub const PLATFORMS: &str = "ferry.dev/platforms";
/// Where ferry records the images it replaced (`container=image,…`).
pub const PREVIOUS_IMAGE: &str = "ferry.dev/previous-image";
/// Digests rolled back after a failed rollout (`container=digest,…`): never tried again.
pub const QUARANTINED: &str = "ferry.dev/quarantined";
/// Digests recorded as the running baseline for containers whose image has no digest.
pub const BASELINE: &str = "ferry.dev/baseline";
/// Soak gate: a new digest is rolled only once it is this old (`72h`).
pub const MIN_AGE: &str = "ferry.dev/min-age";
/// Where the age comes from: `first-seen` (default, recorded by ferry) or `created`.
pub const AGE_SOURCE: &str = "ferry.dev/age-source";
/// When ferry first saw a digest as a candidate (`container=digest@unixtime,…`).
pub const FIRST_SEEN: &str = "ferry.dev/first-seen";
/// Roll only what this beta workload (`namespace/Kind/name`) has run, healthy, for `min-age`.
pub const PROMOTE_FROM: &str = "ferry.dev/promote-from";
/// When ferry rolled a digest out on this workload (`container=digest@unixtime,…`).
pub const ROLLED_AT: &str = "ferry.dev/rolled-at";
/// Explicit git write-back: repository URL.
pub const GIT_REPO: &str = "ferry.dev/git-repo";
/// Explicit git write-back: branch (default `main`).
pub const GIT_BRANCH: &str = "ferry.dev/git-branch";
/// Explicit git write-back: directory or file in the repository (default the root).
pub const GIT_PATH: &str = "ferry.dev/git-path";
/// Argo CD's tracking label.
pub const ARGOCD_INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// Argo CD's tracking annotation.
pub const ARGOCD_TRACKING_ANNOTATION: &str = "argocd.argoproj.io/tracking-id";

/// A workload kind ferry manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Kind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 DaemonSet.
    DaemonSet,
    /// batch/v1 CronJob (its job template).
    CronJob,
}

impl Kind {
    /// The Kubernetes kind name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
            Kind::CronJob => "CronJob",
        }
    }
}

/// A redeploy policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// Never change the workload.
    Off,
    /// Follow the digest of the current tag.
    Digest,
    /// Move to the highest tag satisfying the range (never down).
    Semver(VersionReq),
}

/// Parse `ferry.dev/policy`; no annotation means [`Policy::Off`].
pub fn parse_policy(value: Option<&str>) -> Result<Policy, String> {
    let Some(v) = value.map(str::trim) else {
        return Ok(Policy::Off);
    };
    match v {
        "" | "off" => Ok(Policy::Off),
        "digest" => Ok(Policy::Digest),
        _ => match v.strip_prefix("semver:") {
            Some(range) => VersionReq::parse(range.trim())
                .map(Policy::Semver)
                .map_err(|e| format!("{v:?}: invalid semver range: {e}")),
            None => Err(format!("{v:?}: expected digest, semver:RANGE or off")),
        },
    }
}

/// One container of a pod template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerView {
    /// Container name.
    pub name: String,
    /// Image as written in the template.
    pub image: String,
    /// Whether it is an init container.
    pub init: bool,
}

/// What ferry needs to know about a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadView {
    /// Kind.
    pub kind: Kind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Workload annotations.
    pub annotations: BTreeMap<String, String>,
    /// Workload labels.
    pub labels: BTreeMap<String, String>,
    /// Pod template containers (init containers flagged).
    pub containers: Vec<ContainerView>,
    /// Digest the workload's pods run per container (from `status.containerStatuses[].imageID`),
    /// when all pods agree.
    pub running: BTreeMap<String, Digest>,
    /// Whether its rollout is complete and available (`None`: unknown, e.g. a CronJob).
    pub healthy: Option<bool>,
}

impl WorkloadView {
    /// `namespace/Kind/name`.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.namespace, self.kind.as_str(), self.name)
    }

    /// The Argo CD Application that manages it (tracking label, or the tracking-id annotation
    /// `app:group/kind:namespace/name`).
    pub fn argocd_application(&self) -> Option<String> {
        if let Some(id) = self.annotations.get(ARGOCD_TRACKING_ANNOTATION)
            && let Some((app, _)) = id.split_once(':')
        {
            return Some(app.rsplit('_').next().unwrap_or(app).to_string());
        }
        self.labels.get(ARGOCD_INSTANCE_LABEL).cloned()
    }

    /// An annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }
}

/// The Argo CD Applications a pass could see, to tell Argo CD's tracking label from Helm's
/// (both set `app.kubernetes.io/instance`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ArgoApps {
    /// Nobody looked (planning without the cluster): a label-only workload is not guessed at.
    #[default]
    NotRead,
    /// The names of the Applications in the Argo CD namespace (empty: Argo CD not installed).
    Known(std::collections::BTreeSet<String>),
    /// They could not be read (RBAC, API error), and why.
    Unreadable(String),
}

/// Whether Argo CD manages a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgoCd {
    /// It does not (no tracking annotation; no Application of its instance label's name).
    NotManaged,
    /// This Application manages it: a live patch would be reverted.
    Managed(String),
    /// Only the instance label says so and the Applications could not be read: never patched
    /// on a guess.
    Unknown(String),
}

/// Argo CD management of `w`: the tracking annotation proves it; the instance label only when an
/// Application of that name exists (Helm sets the same label on everything it installs).
pub fn argocd(w: &WorkloadView, apps: &ArgoApps) -> ArgoCd {
    if w.annotations.contains_key(ARGOCD_TRACKING_ANNOTATION) {
        return ArgoCd::Managed(w.argocd_application().unwrap_or_default());
    }
    let Some(instance) = w.labels.get(ARGOCD_INSTANCE_LABEL) else {
        return ArgoCd::NotManaged;
    };
    match apps {
        ArgoApps::Known(names) if names.contains(instance) => ArgoCd::Managed(instance.clone()),
        ArgoApps::Known(_) => ArgoCd::NotManaged,
        ArgoApps::Unreadable(why) => ArgoCd::Unknown(format!(
            "label {ARGOCD_INSTANCE_LABEL}={instance} may be Argo CD's or Helm's, and Argo CD Applications cannot be read ({why}): not patched on a guess"
        )),
        ArgoApps::NotRead => ArgoCd::Unknown(format!(
            "label {ARGOCD_INSTANCE_LABEL}={instance} may be Argo CD's or Helm's, and Argo CD Applications were not read: not patched on a guess"
        )),
    }
}

/// `container=value,container=value` annotations.
pub fn parse_pairs(value: Option<&str>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for item in value.unwrap_or_default().split(',') {
        if let Some((k, v)) = item.split_once('=') {
            out.entry(k.trim().to_string())
                .or_default()
                .push(v.trim().to_string());
        }
    }
    out
}

/// Format `container=value` pairs (sorted, deduplicated).
pub fn format_pairs(pairs: &BTreeMap<String, Vec<String>>) -> String {
    let mut items = Vec::new();
    for (k, vs) in pairs {
        let mut vs = vs.clone();
        vs.sort();
        vs.dedup();
        for v in vs {
            items.push(format!("{k}={v}"));
        }
    }
    items.join(",")
}

/// The containers ferry may change, or why none.
pub fn managed_containers(w: &WorkloadView) -> Result<Vec<&ContainerView>, String> {
    match w
        .annotation(CONTAINERS)
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => Ok(w.containers.iter().filter(|c| !c.init).collect()),
        Some(list) => {
            let names: Vec<&str> = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            let unknown: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| !w.containers.iter().any(|c| c.name == *n))
                .collect();
            if !unknown.is_empty() {
                return Err(format!(
                    "{CONTAINERS} names unknown container(s): {}",
                    unknown.join(", ")
                ));
            }
            Ok(w.containers
                .iter()
                .filter(|c| names.contains(&c.name.as_str()))
                .collect())
        }
    }
}

/// What the registry said about one `name:tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFacts {
    /// The digest the tag points at (the index digest for multi-arch images).
    pub digest: Digest,
    /// Its platforms, when inspected (only for update candidates).
    pub platforms: Option<Vec<Platform>>,
}

/// Registry answers gathered for one cycle. Keys are canonical `name:tag` strings (resolves)
/// and canonical names (tag lists).
#[derive(Debug, Clone, Default)]
pub struct Answers {
    /// `name:tag` → facts or error message.
    pub resolved: BTreeMap<String, Result<TagFacts, String>>,
    /// `name` → tags or error message.
    pub tags: BTreeMap<String, Result<Vec<String>, String>>,
    /// `name@digest` → platforms of inspected candidates.
    pub platforms: BTreeMap<String, Vec<Platform>>,
    /// `name@digest` → newest `created` time (Unix seconds), for `age-source: created`.
    pub created: BTreeMap<String, Option<u64>>,
}

/// What to do with one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Write `target` into the pod template.
    Update,
    /// Something prevents it (reason says what).
    Skip,
    /// Nothing to do.
    None,
}

/// The decision for one container (a row of `ferry-deploy plan`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    /// Namespace.
    pub namespace: String,
    /// Kind.
    pub kind: &'static str,
    /// Workload name.
    pub name: String,
    /// Container name (empty when the decision concerns the whole workload).
    pub container: String,
    /// The image as written now.
    pub image: String,
    /// The digest it runs now (template pin, else pods, else recorded baseline).
    pub current_digest: Option<String>,
    /// The full new image reference, when there is one.
    pub target: Option<String>,
    /// update, skip or none.
    pub action: Action,
    /// Why.
    pub reason: String,
    /// For `none` decisions that record a baseline: the digest to record.
    #[serde(skip)]
    pub record_baseline: Option<Digest>,
    /// An update candidate whose new image's platforms must be inspected first (`name@digest`).
    #[serde(skip)]
    pub inspect: Option<String>,
    /// Refused only because Argo CD manages the workload (git write-back can still do it).
    #[serde(skip)]
    pub argocd_blocked: bool,
    /// A candidate whose `created` time must be read first (`name@digest`).
    #[serde(skip)]
    pub created_needed: Option<String>,
    /// Record `digest@unixtime` as first seen for this container.
    #[serde(skip)]
    pub record_first_seen: Option<String>,
    /// Seconds the candidate still has to soak.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soak_remaining_seconds: Option<u64>,
    /// `git` when the update is written to git instead of patched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<&'static str>,
    /// Git repository of a write-back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// Branch of a write-back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// File a write-back edits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Directory or file of the workload's manifests in that repository (from its Application
    /// or annotations), so applying does not look it up again.
    #[serde(skip)]
    pub git_path: Option<String>,
}

/// What has to be asked of the registry for a workload (before deciding).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Canonical `name:tag` references to resolve (HEAD).
    pub resolve: Vec<String>,
    /// Canonical repository names whose tags to list.
    pub tags: Vec<String>,
}

/// Parse a tag as a version, allowing a leading `v`.
pub fn tag_version(tag: &str) -> Option<Version> {
    Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok()
}

/// The highest tag satisfying `req` (pre-releases only where `req` admits them).
pub fn best_tag<'t>(req: &VersionReq, tags: &'t [String]) -> Option<(&'t str, Version)> {
    tags.iter()
        .filter_map(|t| tag_version(t).map(|v| (t.as_str(), v)))
        .filter(|(_, v)| req.matches(v))
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.len().cmp(&a.0.len())))
}

/// Whether ferry has anything to ask the registry for `w` (it opted in with a valid policy and
/// names containers ferry can read).
pub fn opted_in(w: &WorkloadView) -> bool {
    let n = needs(w);
    !n.resolve.is_empty() || !n.tags.is_empty()
}

/// What `w` needs from the registry (empty for workloads ferry leaves alone).
pub fn needs(w: &WorkloadView) -> Needs {
    let mut n = Needs::default();
    let Ok(policy) = parse_policy(w.annotation(POLICY)) else {
        return n;
    };
    let Ok(containers) = managed_containers(w) else {
        return n;
    };
    for c in containers {
        let Ok(r) = Reference::parse(&c.image) else {
            continue;
        };
        match &policy {
            Policy::Off => {}
            Policy::Digest => n.resolve.push(tag_ref(&r)),
            Policy::Semver(_) => n.tags.push(r.name()),
        }
    }
    n
}

/// `name:tag` (tag or `latest`), canonical.
pub fn tag_ref(r: &Reference) -> String {
    format!(
        "{}:{}",
        r.name(),
        r.tag().unwrap_or(ferry_core::reference::DEFAULT_TAG)
    )
}

/// For semver workloads: the `name:tag` of the candidate each container would move to, so its
/// digest can be resolved.
pub fn semver_candidates(w: &WorkloadView, answers: &Answers) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(Policy::Semver(req)) = parse_policy(w.annotation(POLICY)) else {
        return out;
    };
    let Ok(containers) = managed_containers(w) else {
        return out;
    };
    for c in containers {
        let Ok(r) = Reference::parse(&c.image) else {
            continue;
        };
        if let Some(Ok(tags)) = answers.tags.get(&r.name())
            && let Some((t, _)) = best_tag(&req, tags)
        {
            out.push(format!("{}:{t}", r.name()));
        }
    }
    out
}

/// The clock and the other workloads, for the soak gates (`min-age`, `promote-from`).
#[derive(Debug, Clone, Copy)]
pub struct Gate<'a> {
    /// Now, in Unix seconds (injected: tests and restarts see the same rules).
    pub now: u64,
    /// Every workload of the pass (to find a `promote-from` beta workload).
    pub workloads: &'a [WorkloadView],
    /// The Argo CD Applications the pass could see.
    pub argocd: &'a ArgoApps,
    /// Whether git write-back is configured (`--git-write-back`); without it a workload that
    /// asks for git (`ferry.dev/git-repo`) is skipped, never patched live.
    pub git_write_back: bool,
}

static NOT_READ: ArgoApps = ArgoApps::NotRead;

impl<'a> Gate<'a> {
    /// A gate at `now` over `workloads`, Applications not read, write-back off.
    pub fn new(now: u64, workloads: &'a [WorkloadView]) -> Self {
        Gate {
            now,
            workloads,
            argocd: &NOT_READ,
            git_write_back: false,
        }
    }
}

/// `container=digest@unixtime` pairs → container → (digest, time).
pub fn parse_stamps(value: Option<&str>) -> BTreeMap<String, (String, u64)> {
    parse_pairs(value)
        .into_iter()
        .filter_map(|(c, vs)| {
            let v = vs.last()?;
            let (d, t) = v.rsplit_once('@')?;
            Some((c, (d.to_string(), t.parse().ok()?)))
        })
        .collect()
}

/// Decide every container of `w` with the wall clock and no other workloads.
pub fn decide(w: &WorkloadView, answers: &Answers, node_platforms: &[Platform]) -> Vec<Decision> {
    let now = ferry_core::duration::unix_now();
    decide_gated(w, answers, node_platforms, &Gate::new(now, &[]))
}

/// What a `promote-from` beta workload offers for a repository: its digest and since when it
/// has run it (`None`: ferry did not roll it; the caller's first-seen record counts).
fn beta_offer(
    gate: &Gate<'_>,
    from: &str,
    repo: &Reference,
) -> Result<(Digest, Option<u64>), String> {
    let beta = gate
        .workloads
        .iter()
        .find(|b| {
            b.id() == from
                || format!(
                    "{}/{}/{}",
                    b.namespace,
                    b.kind.as_str().to_lowercase(),
                    b.name
                ) == from.to_lowercase()
        })
        .ok_or_else(|| format!("promote-from workload {from} not found"))?;
    let c = beta
        .containers
        .iter()
        .find(|c| Reference::parse(&c.image).is_ok_and(|r| r.same_repository(repo)))
        .ok_or_else(|| format!("{from} runs no {} image", repo.name()))?;
    let digest = Reference::parse(&c.image)
        .ok()
        .and_then(|r| r.digest().cloned())
        .or_else(|| beta.running.get(&c.name).cloned())
        .ok_or_else(|| format!("{from} runs {} without a known digest", c.image))?;
    if beta.healthy != Some(true) {
        return Err(format!(
            "{from} is not healthy (rollout not complete and available)"
        ));
    }
    let quarantined = parse_pairs(beta.annotation(QUARANTINED));
    if quarantined
        .get(&c.name)
        .is_some_and(|q| q.iter().any(|x| *x == digest.to_string()))
    {
        return Err(format!("{digest} was rolled back in {from}: not soaked"));
    }
    let since = parse_stamps(beta.annotation(ROLLED_AT))
        .get(&c.name)
        .filter(|(d, _)| *d == digest.to_string())
        .map(|(_, t)| *t);
    Ok((digest, since))
}

/// Why an update may not be patched into the cluster.
enum LiveRefusal {
    /// Argo CD manages the workload (git write-back can still do it).
    ArgoCd,
    /// It might be Argo CD's; the Applications could not be read.
    ArgoUnknown(String),
    /// The workload asks for git (`ferry.dev/git-repo`) and write-back is off.
    GitWithoutWriteBack,
}

impl LiveRefusal {
    fn reason(&self, w: &WorkloadView) -> String {
        match self {
            LiveRefusal::ArgoCd => {
                "managed by Argo CD: a live patch would be reverted; configure git write-back"
                    .into()
            }
            LiveRefusal::ArgoUnknown(why) => why.clone(),
            LiveRefusal::GitWithoutWriteBack => format!(
                "{GIT_REPO}={} asks for updates through git, and git write-back is off: run with --git-write-back (never patched live)",
                w.annotation(GIT_REPO).unwrap_or("")
            ),
        }
    }
}

/// Whether an update must not be patched live. Updates that git write-back routes
/// (`ferry.dev/git-repo` with write-back on) are not refused here.
fn live_patch_refusal(w: &WorkloadView, gate: &Gate<'_>) -> Option<LiveRefusal> {
    if w.annotations.contains_key(GIT_REPO) {
        return (!gate.git_write_back).then_some(LiveRefusal::GitWithoutWriteBack);
    }
    match argocd(w, gate.argocd) {
        ArgoCd::NotManaged => None,
        ArgoCd::Managed(_) => Some(LiveRefusal::ArgoCd),
        ArgoCd::Unknown(why) => Some(LiveRefusal::ArgoUnknown(why)),
    }
}

/// Decide every container of `w`. `node_platforms` is what the cluster's schedulable nodes run.
pub fn decide_gated(
    w: &WorkloadView,
    answers: &Answers,
    node_platforms: &[Platform],
    gate: &Gate<'_>,
) -> Vec<Decision> {
    let row = |container: &str, image: &str, action: Action, reason: String| Decision {
        namespace: w.namespace.clone(),
        kind: w.kind.as_str(),
        name: w.name.clone(),
        container: container.to_string(),
        image: image.to_string(),
        current_digest: None,
        target: None,
        action,
        reason,
        record_baseline: None,
        inspect: None,
        argocd_blocked: false,
        created_needed: None,
        record_first_seen: None,
        soak_remaining_seconds: None,
        via: None,
        repo: None,
        branch: None,
        file: None,
        git_path: None,
    };
    let policy = match parse_policy(w.annotation(POLICY)) {
        Ok(p) => p,
        Err(e) => return vec![row("", "", Action::Skip, format!("{POLICY}: {e}"))],
    };
    if policy == Policy::Off {
        return w
            .containers
            .iter()
            .map(|c| {
                let why = if w.annotations.contains_key(POLICY) {
                    "policy is off"
                } else {
                    "not opted in (no ferry.dev/policy)"
                };
                row(&c.name, &c.image, Action::None, why.into())
            })
            .collect();
    }
    let managed = match managed_containers(w) {
        Ok(m) => m,
        Err(e) => return vec![row("", "", Action::Skip, e)],
    };
    let required: Vec<Platform> = match w.annotation(PLATFORMS) {
        Some(p) => match Platform::parse_list(p) {
            Ok(list) => list,
            Err(e) => return vec![row("", "", Action::Skip, format!("{PLATFORMS}: {e}"))],
        },
        None => node_platforms.to_vec(),
    };
    let quarantined = parse_pairs(w.annotation(QUARANTINED));
    let baselines = parse_pairs(w.annotation(BASELINE));
    let mut out = Vec::new();
    for c in &w.containers {
        if !managed.iter().any(|m| m.name == c.name) {
            out.push(row(
                &c.name,
                &c.image,
                Action::None,
                format!("container not named in {CONTAINERS}"),
            ));
            continue;
        }
        let mut d = row(&c.name, &c.image, Action::None, String::new());
        let r = match Reference::parse(&c.image) {
            Ok(r) => r,
            Err(e) => {
                d.action = Action::Skip;
                d.reason = e.to_string();
                out.push(d);
                continue;
            }
        };
        let current = r
            .digest()
            .cloned()
            .or_else(|| w.running.get(&c.name).cloned())
            .or_else(|| {
                baselines
                    .get(&c.name)
                    .and_then(|v| v.last())
                    .and_then(|s| Digest::parse(s).ok())
            });
        d.current_digest = current.as_ref().map(ToString::to_string);
        // Where to go: same tag (digest policy) or the best tag in range (semver).
        let (tag, key) = match &policy {
            Policy::Off => unreachable!("handled above"),
            Policy::Digest => (
                r.tag_or_default().unwrap_or("latest").to_string(),
                tag_ref(&r),
            ),
            Policy::Semver(req) => {
                let Some(cur) = r.tag().and_then(tag_version) else {
                    d.action = Action::Skip;
                    d.reason = format!("tag {:?} is not a semantic version", r.tag().unwrap_or(""));
                    out.push(d);
                    continue;
                };
                let tags = match answers.tags.get(&r.name()) {
                    Some(Ok(t)) => t,
                    Some(Err(e)) => {
                        d.action = Action::Skip;
                        d.reason = format!("cannot list tags: {e}");
                        out.push(d);
                        continue;
                    }
                    None => {
                        d.action = Action::Skip;
                        d.reason = "tags were not listed".into();
                        out.push(d);
                        continue;
                    }
                };
                match best_tag(req, tags) {
                    Some((t, v)) if v > cur => (t.to_string(), format!("{}:{t}", r.name())),
                    Some((t, v)) if v == cur => (t.to_string(), format!("{}:{t}", r.name())),
                    Some((t, _)) => {
                        d.reason = format!(
                            "highest tag in range is {t}, older than the running {}: never a downgrade",
                            r.tag().unwrap_or("")
                        );
                        out.push(d);
                        continue;
                    }
                    None => {
                        d.action = Action::Skip;
                        d.reason = format!("no tag satisfies {req}");
                        out.push(d);
                        continue;
                    }
                }
            }
        };
        let facts = match answers.resolved.get(&key) {
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                d.action = Action::Skip;
                d.reason = format!("registry: {e}");
                out.push(d);
                continue;
            }
            None => {
                d.action = Action::Skip;
                d.reason = format!("{key} was not resolved");
                out.push(d);
                continue;
            }
        };
        // What to move to: the tag's digest, or what the beta workload has been running.
        let mut goal = facts.digest.clone();
        let mut beta_since: Option<u64> = None;
        if let Some(from) = w.annotation(PROMOTE_FROM) {
            match beta_offer(gate, from, &r) {
                Ok((d, since)) => {
                    goal = d;
                    beta_since = since;
                }
                Err(e) => {
                    d.action = Action::Skip;
                    d.reason = e;
                    out.push(d);
                    continue;
                }
            }
        }
        let goal_key = format!("{}@{goal}", r.name());
        let goal_platforms = answers.platforms.get(&goal_key).cloned().or_else(|| {
            (goal == facts.digest)
                .then(|| facts.platforms.clone())
                .flatten()
        });
        let facts = &TagFacts {
            digest: goal.clone(),
            platforms: goal_platforms,
        };
        let same_tag = r.tag_or_default() == Some(tag.as_str());
        let target = format!("{}:{tag}@{}", r.familiar_name(), facts.digest);
        // semver moves to another tag: no baseline is needed to know it is newer. The
        // baseline rule is for `digest` policies, which follow one tag's digest.
        let current = match current {
            None if !same_tag && matches!(policy, Policy::Semver(_)) => None,
            None => {
                d.reason = format!(
                    "no baseline digest (image has none and its pods report none): recorded {} as the baseline",
                    facts.digest
                );
                d.record_baseline = Some(facts.digest.clone());
                out.push(d);
                continue;
            }
            Some(cur) => Some(cur),
        };
        if current.as_ref() == Some(&facts.digest) && same_tag {
            if r.digest().is_none() {
                // Runs the target bytes already; pinning would restart it for nothing.
                d.reason = format!("runs {} already", facts.digest);
            } else {
                d.reason = "already at the target".into();
            }
            out.push(d);
            continue;
        }
        d.target = Some(target);
        if quarantined
            .get(&c.name)
            .is_some_and(|q| q.iter().any(|x| *x == facts.digest.to_string()))
        {
            d.action = Action::Skip;
            d.reason = format!(
                "{} is quarantined after a failed rollout; waiting for the tag to move",
                facts.digest
            );
            out.push(d);
            continue;
        }
        match &facts.platforms {
            Some(have) => {
                let missing: Vec<String> = required
                    .iter()
                    .filter(|p| !have.iter().any(|h| h.matches(p)))
                    .map(ToString::to_string)
                    .collect();
                if !missing.is_empty() {
                    d.action = Action::Skip;
                    d.reason = format!("{} lacks platform(s) {}", facts.digest, missing.join(", "));
                    out.push(d);
                    continue;
                }
            }
            None if !required.is_empty() => {
                d.action = Action::Skip;
                d.inspect = Some(format!("{}@{}", r.name(), facts.digest));
                d.reason = "platforms of the new image were not inspected".into();
                out.push(d);
                continue;
            }
            None => {}
        }
        if let Some(min) = w.annotation(MIN_AGE) {
            let min = match ferry_core::duration::parse_secs(min) {
                Ok(m) => m,
                Err(e) => {
                    d.action = Action::Skip;
                    d.reason = format!("{MIN_AGE}: {e}");
                    out.push(d);
                    continue;
                }
            };
            let first_seen = parse_stamps(w.annotation(FIRST_SEEN))
                .get(&c.name)
                .filter(|(dg, _)| *dg == facts.digest.to_string())
                .map(|(_, t)| *t);
            let born = if w.annotation(AGE_SOURCE) == Some("created") {
                match answers.created.get(&goal_key) {
                    Some(Some(t)) => Some(*t),
                    Some(None) => {
                        d.action = Action::Skip;
                        d.reason = format!(
                            "{} records no created time; cannot judge its age",
                            facts.digest
                        );
                        out.push(d);
                        continue;
                    }
                    None => {
                        d.action = Action::Skip;
                        d.created_needed = Some(goal_key.clone());
                        d.reason = "the created time of the new image was not read".into();
                        out.push(d);
                        continue;
                    }
                }
            } else {
                beta_since.or(first_seen)
            };
            match born {
                None => {
                    d.action = Action::Skip;
                    d.record_first_seen = Some(format!("{}@{}", facts.digest, gate.now));
                    d.soak_remaining_seconds = Some(min);
                    d.reason = format!(
                        "soaking: first seen now, {} to go (min-age {})",
                        ferry_core::duration::human(min),
                        ferry_core::duration::human(min)
                    );
                    out.push(d);
                    continue;
                }
                Some(b) if gate.now.saturating_sub(b) < min => {
                    let left = min - gate.now.saturating_sub(b);
                    d.action = Action::Skip;
                    d.soak_remaining_seconds = Some(left);
                    d.reason = format!(
                        "soaking: {} to go (min-age {})",
                        ferry_core::duration::human(left),
                        ferry_core::duration::human(min)
                    );
                    out.push(d);
                    continue;
                }
                Some(_) => {}
            }
        }
        if let Some(why) = live_patch_refusal(w, gate) {
            d.action = Action::Skip;
            d.argocd_blocked = matches!(why, LiveRefusal::ArgoCd);
            d.reason = why.reason(w);
            out.push(d);
            continue;
        }
        d.action = Action::Update;
        d.reason = if same_tag {
            format!("tag {tag} moved to {}", facts.digest)
        } else {
            format!("newer tag {tag} in range")
        };
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn digest(s: &str) -> Digest {
        Digest::sha256_of(s.as_bytes())
    }

    fn workload(annotations: &[(&str, &str)], containers: &[(&str, &str, bool)]) -> WorkloadView {
        WorkloadView {
            kind: Kind::Deployment,
            namespace: "iot".into(),
            name: "sensor".into(),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            labels: BTreeMap::new(),
            containers: containers
                .iter()
                .map(|(n, i, init)| ContainerView {
                    name: n.to_string(),
                    image: i.to_string(),
                    init: *init,
                })
                .collect(),
            running: BTreeMap::new(),
            healthy: None,
        }
    }

    fn plats() -> Vec<Platform> {
        Platform::parse_list("linux/amd64,linux/arm64").unwrap()
    }

    fn answers(key: &str, d: &Digest, platforms: Option<&str>) -> Answers {
        let mut a = Answers::default();
        a.resolved.insert(
            key.into(),
            Ok(TagFacts {
                digest: d.clone(),
                platforms: platforms.map(|p| Platform::parse_list(p).unwrap()),
            }),
        );
        a
    }

    #[test]
    fn policies_parse() {
        assert_eq!(parse_policy(None).unwrap(), Policy::Off);
        assert_eq!(parse_policy(Some("off")).unwrap(), Policy::Off);
        assert_eq!(parse_policy(Some("digest")).unwrap(), Policy::Digest);
        assert!(matches!(
            parse_policy(Some("semver:^1.2")).unwrap(),
            Policy::Semver(_)
        ));
        assert!(parse_policy(Some("semver:not a range")).is_err());
        assert!(parse_policy(Some("always")).is_err());
    }

    #[test]
    fn digest_policy_pins_the_new_index_digest() {
        let old = digest("old");
        let new = digest("new");
        let w = workload(
            &[(POLICY, "digest")],
            &[("app", &format!("acme/sensor:latest@{old}"), false)],
        );
        let a = answers(
            "docker.io/acme/sensor:latest",
            &new,
            Some("linux/amd64,linux/arm64/v8"),
        );
        let d = decide(&w, &a, &plats());
        assert_eq!(d[0].action, Action::Update, "{}", d[0].reason);
        assert_eq!(
            d[0].target.as_deref(),
            Some(format!("acme/sensor:latest@{new}").as_str())
        );
        assert_eq!(
            d[0].current_digest.as_deref(),
            Some(old.to_string().as_str())
        );
        // Second pass: the template now holds the target.
        let w2 = workload(
            &[(POLICY, "digest")],
            &[("app", &format!("acme/sensor:latest@{new}"), false)],
        );
        let d = decide(&w2, &a, &plats());
        assert_eq!(d[0].action, Action::None);
    }

    #[test]
    fn missing_platforms_quarantine_and_argocd_skip() {
        let old = digest("old");
        let new = digest("new");
        let img = format!("acme/sensor:latest@{old}");
        let w = workload(&[(POLICY, "digest")], &[("app", &img, false)]);
        let a = answers("docker.io/acme/sensor:latest", &new, Some("linux/amd64"));
        let d = decide(&w, &a, &plats());
        assert_eq!(d[0].action, Action::Skip);
        assert!(d[0].reason.contains("linux/arm64"), "{}", d[0].reason);
        let a = answers(
            "docker.io/acme/sensor:latest",
            &new,
            Some("linux/amd64,linux/arm64"),
        );
        let q = format!("app={new}");
        let w = workload(
            &[(POLICY, "digest"), (QUARANTINED, &q)],
            &[("app", &img, false)],
        );
        assert!(decide(&w, &a, &plats())[0].reason.contains("quarantined"));
        let mut w = workload(&[(POLICY, "digest")], &[("app", &img, false)]);
        w.labels
            .insert(ARGOCD_INSTANCE_LABEL.into(), "sensors".into());
        let d = decide(&w, &a, &plats());
        assert_eq!(d[0].action, Action::Skip);
        assert!(d[0].reason.contains("Argo CD"));
        assert!(
            d[0].target.is_some(),
            "the plan still shows where it would go"
        );
    }

    #[test]
    fn baseline_from_pods_or_recorded() {
        let new = digest("new");
        let a = answers(
            "docker.io/acme/sensor:latest",
            &new,
            Some("linux/amd64,linux/arm64"),
        );
        let mut w = workload(&[(POLICY, "digest")], &[("app", "acme/sensor", false)]);
        let d = decide(&w, &a, &plats());
        assert_eq!(d[0].action, Action::None);
        assert_eq!(d[0].record_baseline.as_ref(), Some(&new));
        w.running.insert("app".into(), new.clone());
        assert_eq!(
            decide(&w, &a, &plats())[0].action,
            Action::None,
            "pods run the target already"
        );
        w.running.insert("app".into(), digest("older"));
        let d = decide(&w, &a, &plats());
        assert_eq!(d[0].action, Action::Update);
        assert_eq!(
            d[0].target.as_deref(),
            Some(format!("acme/sensor:latest@{new}").as_str())
        );
    }

    #[test]
    fn containers_annotation_limits_and_init_containers_need_naming() {
        let old = digest("old");
        let new = digest("new");
        let img = format!("acme/sensor:1@{old}");
        let w = workload(
            &[(POLICY, "digest")],
            &[("app", &img, false), ("migrate", &img, true)],
        );
        let a = answers(
            "docker.io/acme/sensor:1",
            &new,
            Some("linux/amd64,linux/arm64"),
        );
        let d = decide(&w, &a, &plats());
        assert_eq!(d[0].action, Action::Update);
        assert_eq!(d[1].action, Action::None, "init containers only when named");
        let w = workload(
            &[(POLICY, "digest"), (CONTAINERS, "migrate")],
            &[("app", &img, false), ("migrate", &img, true)],
        );
        let d = decide(&w, &a, &plats());
        assert_eq!(d[0].action, Action::None);
        assert_eq!(d[1].action, Action::Update);
        let w = workload(
            &[(POLICY, "digest"), (CONTAINERS, "nope")],
            &[("app", &img, false)],
        );
        assert!(
            decide(&w, &a, &plats())[0]
                .reason
                .contains("unknown container")
        );
    }

    #[test]
    fn semver_moves_from_a_tag_without_a_digest_or_baseline() {
        let d3 = digest("1.4.3");
        let w = workload(
            &[(POLICY, "semver:~1.4")],
            &[("meter", "acme/meter:1.4.0", false)],
        );
        let mut a = answers(
            "docker.io/acme/meter:1.4.3",
            &d3,
            Some("linux/amd64,linux/arm64"),
        );
        a.tags.insert(
            "docker.io/acme/meter".into(),
            Ok(vec!["1.4.0".into(), "1.4.3".into(), "1.5.0".into()]),
        );
        let d = decide(&w, &a, &plats());
        assert_eq!(d[0].action, Action::Update, "{}", d[0].reason);
        assert_eq!(
            d[0].target.as_deref(),
            Some(format!("acme/meter:1.4.3@{d3}").as_str())
        );
        assert_eq!(d[0].current_digest, None);
        // The same tag without a digest still records a baseline (digest semantics).
        let w = workload(
            &[(POLICY, "semver:~1.4")],
            &[("meter", "acme/meter:1.4.3", false)],
        );
        let d = decide(&w, &a, &plats());
        assert_eq!(d[0].action, Action::None);
        assert_eq!(d[0].record_baseline.as_ref(), Some(&d3));
        // A digest policy without a baseline never moves on a guess.
        let w = workload(
            &[(POLICY, "digest")],
            &[("meter", "acme/meter:1.4.0", false)],
        );
        let a = answers(
            "docker.io/acme/meter:1.4.0",
            &d3,
            Some("linux/amd64,linux/arm64"),
        );
        assert_eq!(decide(&w, &a, &plats())[0].action, Action::None);
    }

    #[test]
    fn no_tag_in_range_is_a_refusal() {
        let w = workload(
            &[(POLICY, "semver:^3")],
            &[("api", "acme/api:2.0.0", false)],
        );
        let mut a = Answers::default();
        a.tags.insert(
            "docker.io/acme/api".into(),
            Ok(vec!["2.0.0".into(), "2.1.0".into()]),
        );
        let d = decide(&w, &a, &plats());
        assert_eq!(d[0].action, Action::Skip);
        assert!(d[0].reason.contains("no tag satisfies"), "{}", d[0].reason);
    }

    fn labelled(instance: &str, extra: &[(&str, &str)]) -> WorkloadView {
        let old = digest("old");
        let mut annotations = vec![(POLICY, "digest")];
        annotations.extend_from_slice(extra);
        let mut w = workload(
            &annotations,
            &[("app", &format!("acme/sensor:latest@{old}"), false)],
        );
        w.labels
            .insert(ARGOCD_INSTANCE_LABEL.into(), instance.into());
        w
    }

    #[test]
    fn argo_cd_is_the_tracking_annotation_or_a_real_application() {
        let known = ArgoApps::Known(["sensors".to_string()].into());
        let helm = labelled("grafana", &[]);
        assert_eq!(
            argocd(&helm, &known),
            ArgoCd::NotManaged,
            "Helm's label alone"
        );
        let argo = labelled("sensors", &[]);
        assert_eq!(argocd(&argo, &known), ArgoCd::Managed("sensors".into()));
        let forbidden = ArgoApps::Unreadable("403 Forbidden".into());
        assert!(
            matches!(argocd(&helm, &forbidden), ArgoCd::Unknown(why) if why.contains("403 Forbidden"))
        );
        let tracked = labelled(
            "x",
            &[(
                ARGOCD_TRACKING_ANNOTATION,
                "sensors:apps/Deployment:iot/sensor",
            )],
        );
        assert_eq!(
            argocd(&tracked, &ArgoApps::Known(Default::default())),
            ArgoCd::Managed("sensors".into())
        );
        // Decisions: Helm updates, Argo CD and unreadable skip (never patched on a guess).
        let new = digest("new");
        let a = answers(
            "docker.io/acme/sensor:latest",
            &new,
            Some("linux/amd64,linux/arm64"),
        );
        let decide_with = |w: &WorkloadView, apps: &ArgoApps| {
            let gate = Gate {
                argocd: apps,
                ..Gate::new(1, &[])
            };
            decide_gated(w, &a, &plats(), &gate).remove(0)
        };
        assert_eq!(decide_with(&helm, &known).action, Action::Update);
        let d = decide_with(&argo, &known);
        assert!(d.action == Action::Skip && d.argocd_blocked, "{d:?}");
        let d = decide_with(&helm, &forbidden);
        assert!(d.action == Action::Skip && !d.argocd_blocked, "{d:?}");
        assert!(d.reason.contains("cannot be read"), "{}", d.reason);
    }

    #[test]
    fn git_annotations_are_never_patched_live() {
        let old = digest("old");
        let new = digest("new");
        let w = workload(
            &[
                (POLICY, "digest"),
                (GIT_REPO, "https://git.example.invalid/cfg.git"),
            ],
            &[("app", &format!("acme/sensor:latest@{old}"), false)],
        );
        let a = answers(
            "docker.io/acme/sensor:latest",
            &new,
            Some("linux/amd64,linux/arm64"),
        );
        let d = decide(&w, &a, &plats()).remove(0);
        assert_eq!(d.action, Action::Skip);
        assert!(d.reason.contains("--git-write-back"), "{}", d.reason);
        let gate = Gate {
            git_write_back: true,
            ..Gate::new(1, &[])
        };
        let d = decide_gated(&w, &a, &plats(), &gate).remove(0);
        assert_eq!(d.action, Action::Update, "write-back routes it to git");
    }

    #[test]
    fn semver_moves_up_only_within_range() {
        let d1 = digest("1.4.0");
        let cur = format!("acme/api:v1.2.0@{}", digest("1.2.0"));
        let w = workload(&[(POLICY, "semver:^1.2")], &[("api", &cur, false)]);
        let mut a = answers(
            "docker.io/acme/api:v1.4.0",
            &d1,
            Some("linux/amd64,linux/arm64"),
        );
        a.tags.insert(
            "docker.io/acme/api".into(),
            Ok([
                "v1.2.0",
                "v1.3.0",
                "v1.4.0",
                "v2.0.0",
                "1.5.0-rc.1",
                "latest",
                "sha-abc",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()),
        );
        assert_eq!(semver_candidates(&w, &a), ["docker.io/acme/api:v1.4.0"]);
        let d = decide(&w, &a, &plats());
        assert_eq!(d[0].action, Action::Update, "{}", d[0].reason);
        assert_eq!(
            d[0].target.as_deref(),
            Some(format!("acme/api:v1.4.0@{d1}").as_str())
        );
        // Running something newer than the range's best: never a downgrade.
        let w = workload(
            &[(POLICY, "semver:^1.2")],
            &[("api", "acme/api:1.9.0", false)],
        );
        let d = decide(&w, &a, &plats());
        assert_eq!(d[0].action, Action::None);
        assert!(d[0].reason.contains("never a downgrade"));
        // Pre-releases only when the range names one.
        let req = VersionReq::parse(">=1.5.0-rc.0, <1.6.0").unwrap();
        let tags: Vec<String> = ["1.4.0", "1.5.0-rc.1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(best_tag(&req, &tags).unwrap().0, "1.5.0-rc.1");
        assert_eq!(
            best_tag(&VersionReq::parse("^1").unwrap(), &tags)
                .unwrap()
                .0,
            "1.4.0"
        );
    }

    fn gated(w: &WorkloadView, a: &Answers, now: u64, others: &[WorkloadView]) -> Vec<Decision> {
        decide_gated(w, a, &plats(), &Gate::new(now, others))
    }

    #[test]
    fn min_age_counts_from_first_seen_and_survives_restarts() {
        let old = digest("old");
        let new = digest("new");
        let img = format!("acme/etl:latest@{old}");
        let a = answers(
            "docker.io/acme/etl:latest",
            &new,
            Some("linux/amd64,linux/arm64"),
        );
        let w = workload(
            &[(POLICY, "digest"), (MIN_AGE, "72h")],
            &[("etl", &img, false)],
        );
        let d = gated(&w, &a, 1_000, &[]);
        assert_eq!(d[0].action, Action::Skip);
        assert_eq!(
            d[0].record_first_seen.as_deref(),
            Some(format!("{new}@1000").as_str())
        );
        assert_eq!(d[0].soak_remaining_seconds, Some(72 * 3600));
        // Later passes (a restarted controller reads the same annotation): the soak continues.
        let stamp = format!("etl={new}@1000");
        let w = workload(
            &[(POLICY, "digest"), (MIN_AGE, "72h"), (FIRST_SEEN, &stamp)],
            &[("etl", &img, false)],
        );
        let d = gated(&w, &a, 1_000 + 71 * 3600, &[]);
        assert_eq!(d[0].action, Action::Skip);
        assert!(
            d[0].record_first_seen.is_none(),
            "never re-recorded: a restart cannot shorten the soak"
        );
        assert_eq!(d[0].soak_remaining_seconds, Some(3600));
        assert!(d[0].reason.contains("1h to go"), "{}", d[0].reason);
        let d = gated(&w, &a, 1_000 + 72 * 3600, &[]);
        assert_eq!(d[0].action, Action::Update);
        // The tag moved again: the new digest starts its own soak.
        let newer = digest("newer");
        let a2 = answers(
            "docker.io/acme/etl:latest",
            &newer,
            Some("linux/amd64,linux/arm64"),
        );
        let d = gated(&w, &a2, 1_000 + 100 * 3600, &[]);
        assert_eq!(d[0].action, Action::Skip);
        assert!(
            d[0].record_first_seen
                .as_deref()
                .unwrap()
                .starts_with(&newer.to_string())
        );
    }

    #[test]
    fn created_age_source_asks_for_the_created_time() {
        let new = digest("new");
        let img = format!("acme/etl:latest@{}", digest("old"));
        let mut a = answers(
            "docker.io/acme/etl:latest",
            &new,
            Some("linux/amd64,linux/arm64"),
        );
        let w = workload(
            &[(POLICY, "digest"), (MIN_AGE, "1d"), (AGE_SOURCE, "created")],
            &[("etl", &img, false)],
        );
        let d = gated(&w, &a, 100_000, &[]);
        assert_eq!(
            d[0].created_needed.as_deref(),
            Some(format!("docker.io/acme/etl@{new}").as_str())
        );
        a.created
            .insert(format!("docker.io/acme/etl@{new}"), Some(100_000 - 3600));
        assert!(gated(&w, &a, 100_000, &[])[0].reason.contains("23h to go"));
        a.created
            .insert(format!("docker.io/acme/etl@{new}"), Some(0));
        assert_eq!(gated(&w, &a, 100_000, &[])[0].action, Action::Update);
    }

    #[test]
    fn promote_from_rolls_what_beta_ran_healthy_long_enough() {
        let beta_digest = digest("beta");
        let tag_digest = digest("tag-moved-on");
        let prod_img = format!("acme/svc:latest@{}", digest("prod"));
        let mut beta = workload(
            &[(POLICY, "digest")],
            &[("svc", &format!("acme/svc:latest@{beta_digest}"), false)],
        );
        beta.namespace = "beta".into();
        beta.name = "svc".into();
        beta.healthy = Some(true);
        let rolled = format!("svc={beta_digest}@5000");
        beta.annotations.insert(ROLLED_AT.into(), rolled);
        let mut a = answers(
            "docker.io/acme/svc:latest",
            &tag_digest,
            Some("linux/amd64,linux/arm64"),
        );
        a.platforms
            .insert(format!("docker.io/acme/svc@{beta_digest}"), plats());
        let prod = workload(
            &[
                (POLICY, "digest"),
                (MIN_AGE, "2h"),
                (PROMOTE_FROM, "beta/Deployment/svc"),
            ],
            &[("svc", &prod_img, false)],
        );
        let d = gated(&prod, &a, 5_000 + 3600, std::slice::from_ref(&beta));
        assert_eq!(d[0].action, Action::Skip);
        assert!(d[0].reason.contains("1h to go"), "{}", d[0].reason);
        let d = gated(&prod, &a, 5_000 + 7200, std::slice::from_ref(&beta));
        assert_eq!(d[0].action, Action::Update, "{}", d[0].reason);
        assert_eq!(
            d[0].target.as_deref(),
            Some(format!("acme/svc:latest@{beta_digest}").as_str()),
            "beta's digest, not the tag's"
        );
        // Unhealthy beta, or a digest rolled back in beta: not soaked.
        let mut sick = beta.clone();
        sick.healthy = Some(false);
        assert!(
            gated(&prod, &a, 1_000_000, std::slice::from_ref(&sick))[0]
                .reason
                .contains("not healthy")
        );
        let mut rolled_back = beta.clone();
        rolled_back
            .annotations
            .insert(QUARANTINED.into(), format!("svc={beta_digest}"));
        assert!(
            gated(&prod, &a, 1_000_000, std::slice::from_ref(&rolled_back))[0]
                .reason
                .contains("not soaked")
        );
        assert!(
            gated(&prod, &a, 1_000_000, &[])[0]
                .reason
                .contains("not found")
        );
        // Beta not rolled by ferry: prod's own first-seen record starts the clock.
        let mut manual = beta.clone();
        manual.annotations.remove(ROLLED_AT);
        let d = gated(&prod, &a, 9_000, std::slice::from_ref(&manual));
        assert_eq!(
            d[0].record_first_seen.as_deref(),
            Some(format!("{beta_digest}@9000").as_str())
        );
    }

    fn any_answers() -> impl Strategy<Value = Answers> {
        let facts = prop_oneof![
            "[a-z]{1,5}".prop_map(|s| Ok(TagFacts {
                digest: Digest::sha256_of(s.as_bytes()),
                platforms: Some(Platform::parse_list("linux/amd64,linux/arm64").unwrap())
            })),
            "[a-z]{1,5}".prop_map(|s| Ok(TagFacts {
                digest: Digest::sha256_of(s.as_bytes()),
                platforms: None
            })),
            "[a-z ]{1,10}".prop_map(Err),
        ];
        (
            proptest::collection::btree_map(
                "docker\\.io/acme/(a|b|c):(1|latest|v1\\.[0-9]\\.0)",
                facts,
                0..6,
            ),
            proptest::collection::btree_map(
                "docker\\.io/acme/(a|b|c)",
                proptest::collection::vec("v?1\\.[0-9]\\.[0-9]|latest", 0..5).prop_map(Ok),
                0..3,
            ),
        )
            .prop_map(|(resolved, tags)| Answers {
                resolved,
                tags,
                ..Default::default()
            })
    }

    proptest! {
        #[test]
        fn without_opt_in_nothing_is_ever_changed(
            policy in proptest::option::of("off|OFF|"),
            images in proptest::collection::vec("acme/(a|b|c):(1|latest|v1\\.2\\.0)", 1..4),
            answers in any_answers(),
        ) {
            let mut ann = vec![];
            if let Some(p) = &policy { ann.push((POLICY, p.as_str())); }
            let cs: Vec<(String, String, bool)> = images.iter().enumerate().map(|(i, im)| (format!("c{i}"), im.clone(), i % 2 == 1)).collect();
            let cs_ref: Vec<(&str, &str, bool)> = cs.iter().map(|(n, i, b)| (n.as_str(), i.as_str(), *b)).collect();
            let w = workload(&ann, &cs_ref);
            for d in decide(&w, &answers, &plats()) {
                prop_assert_ne!(d.action, Action::Update, "{:?}", d);
            }
            prop_assert!(needs(&w).resolve.is_empty() || policy.as_deref() == Some("OFF"));
        }

        #[test]
        fn annotation_parsers_never_panic(v in "\\PC{0,60}") {
            let _ = parse_policy(Some(&v));
            let _ = parse_pairs(Some(&v));
            let _ = parse_stamps(Some(&v));
            let _ = ferry_core::duration::parse_secs(&v);
            let _ = Platform::parse_list(&v);
        }

        #[test]
        fn any_annotations_give_decisions_never_a_panic(
            policy in "(digest|off|semver:[\\^~>=<0-9., *a-z]{0,8}|[a-z:]{0,8})",
            containers in "[a-z, ]{0,10}",
            platforms in "[a-z/0-9, ]{0,20}",
            min_age in "[0-9]{0,4}[smhdwy]?",
            answers in any_answers(),
        ) {
            let w = workload(
                &[(POLICY, policy.as_str()), (CONTAINERS, containers.as_str()), (PLATFORMS, platforms.as_str()), (MIN_AGE, min_age.as_str())],
                &[("a", "acme/a:1", false), ("b", "acme/b:latest", true)],
            );
            let _ = decide_gated(&w, &answers, &plats(), &Gate::new(1_000_000, &[]));
        }

        #[test]
        fn a_soak_gate_never_rolls_before_min_age(
            min_hours in 1u64..200,
            seen in 0u64..2_000_000,
            elapsed in 0u64..2_000_000,
            recorded in proptest::bool::ANY,
        ) {
            let new = digest("new");
            let img = format!("acme/etl:latest@{}", digest("old"));
            let a = answers("docker.io/acme/etl:latest", &new, Some("linux/amd64,linux/arm64"));
            let stamp = format!("etl={new}@{seen}");
            let min = format!("{min_hours}h");
            let mut ann = vec![(POLICY, "digest"), (MIN_AGE, min.as_str())];
            if recorded {
                ann.push((FIRST_SEEN, stamp.as_str()));
            }
            let w = workload(&ann, &[("etl", img.as_str(), false)]);
            let now = seen + elapsed;
            let d = &decide_gated(&w, &a, &plats(), &Gate::new(now, &[]))[0];
            let soaked = recorded && elapsed >= min_hours * 3600;
            prop_assert_eq!(d.action == Action::Update, soaked, "{:?}", d);
            if !recorded {
                // First sight is recorded, never an earlier time.
                prop_assert_eq!(d.record_first_seen.clone(), Some(format!("{new}@{now}")));
            }
        }

        #[test]
        fn containers_not_named_are_never_changed(
            images in proptest::collection::vec("acme/(a|b|c):(1|latest|v1\\.2\\.0)", 2..5),
            named in 0usize..4,
            policy in "digest|semver:\\^1",
            answers in any_answers(),
        ) {
            let cs: Vec<(String, String, bool)> = images.iter().enumerate().map(|(i, im)| (format!("c{i}"), im.clone(), false)).collect();
            let cs_ref: Vec<(&str, &str, bool)> = cs.iter().map(|(n, i, b)| (n.as_str(), i.as_str(), *b)).collect();
            let chosen = format!("c{}", named % cs.len());
            let w = workload(&[(POLICY, policy.as_str()), (CONTAINERS, chosen.as_str())], &cs_ref);
            for d in decide(&w, &answers, &plats()) {
                if d.container != chosen {
                    prop_assert_ne!(d.action, Action::Update, "{:?}", d);
                }
            }
        }

        #[test]
        fn an_update_always_pins_a_digest_and_changes_something(
            image in "acme/(a|b|c):(1|latest)(@sha256:[0-9a-f]{64})?",
            answers in any_answers(),
        ) {
            let w = workload(&[(POLICY, "digest")], &[("app", image.as_str(), false)]);
            for d in decide(&w, &answers, &plats()) {
                if d.action == Action::Update {
                    let t = Reference::parse(d.target.as_deref().unwrap()).unwrap();
                    prop_assert!(t.digest().is_some());
                    prop_assert_ne!(d.target.as_deref(), Some(image.as_str()));
                }
            }
        }
    }
}
