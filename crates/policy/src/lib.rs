//! `ferry-policy`: the pure decision core of `ferry-deploy`. Given a workload as plain data
//! ([`WorkloadView`]), the registry's answers ([`Answers`]) and the Argo CD Application's spec
//! (as JSON data), it says whether ferry would move each container, to what, where the change
//! goes and why — with no IO: no Kubernetes, git, tokio or HTTP client in its dependencies.
//! Another tool can ask "would ferry move this workload, and why" with it.
//!
//! The pipeline, in types:
//!
//! 1. [`WorkloadPolicy::parse`] reads a workload's annotations once (policy, containers,
//!    platforms, quarantine, baselines, soak gates, git routing).
//! 2. [`queries`] says what the registry must still answer for it ([`Query`]: tag lists,
//!    resolves, inspections, created times), keyed by typed references; the caller fills
//!    [`Answers`] and asks again until nothing is missing.
//! 3. [`decide_with`] returns one [`Decision`] per container: [`Action::Update`] with a typed
//!    target [`ferry_core::Reference`] and a [`Route`] (live patch or git), or a skip / none with a
//!    [`Reason`]. Text is rendered only at the edge (`Display`, the `plan` JSON).
//!
//! Modules: [`keys`] (every annotation, one place), [`tags`] (tag strategies), [`approval`]
//! (manual approvals), [`helm`] (where a Helm application's values file lives).
//!
//! ```
//! use std::collections::BTreeMap;
//! use ferry_policy::{Action, Answers, ContainerView, Gate, Kind, WorkloadPolicy, WorkloadView};
//!
//! let w = WorkloadView {
//!     kind: Kind::Deployment,
//!     namespace: "shop".into(),
//!     name: "web".into(),
//!     annotations: BTreeMap::from([("ferry.dev/policy".into(), "digest".into())]),
//!     labels: BTreeMap::new(),
//!     containers: vec![ContainerView { name: "app".into(), image: "nginx:1".into(), init: false }],
//!     running: BTreeMap::new(),
//!     healthy: None,
//! };
//! let p = WorkloadPolicy::parse(&w).unwrap();
//! let d = ferry_policy::decide_with(&w, &p, &Answers::default(), &[], &Gate::new(0, &[]));
//! assert_eq!(d[0].action, Action::Skip); // the tag was not resolved yet: nothing was asked
//! ```
//!
//! The rule above all others: a workload without `ferry.dev/policy`, with `off`, or a container
//! that `ferry.dev/containers` does not name, is never changed — whatever the registry says.

use std::collections::{BTreeMap, BTreeSet};

use ferry_core::{Digest, Platform};

use crate::tags::{TagPattern, TagStrategy};

pub mod annotate;
pub mod approval;
mod decide;
mod error;
pub mod helm;
mod image;
pub mod keys;
mod promote;
pub mod provenance;
mod reason;
pub mod retag;
pub mod review;
pub mod route;
pub mod signed;
pub mod tags;
#[cfg(test)]
mod tests;

pub use error::{AnnotationProblem, Error, PatternProblem, Result};
pub use keys::*;

pub use decide::{
    Action, Answers, Decision, Gate, GitEdit, GitRoute, LookupError, Query, Records, Route,
    TagFacts, decide, decide_gated, decide_with, queries,
};
pub use image::Image;
pub use promote::BetaProblem;
pub use reason::{Failure, NotWritten, Reason};
pub use route::{Application, GitSettings, NoRoute, Placement, Refusal, Unavailable};
pub use signed::{SignatureVerdict, SignedGate};

/// Where a workload's manifests (or its Helm values file) live in git.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct GitTarget {
    /// Clone URL.
    pub repo: String,
    /// Branch to commit to.
    pub branch: String,
    /// Directory or file inside the repository (no leading `/`; `""` or `.` for the root).
    pub path: String,
}

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

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A redeploy policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// Never change the workload.
    Off,
    /// Follow the digest of the current tag.
    Digest,
    /// Move to the best listed tag under a tag strategy (`semver:`, `newest-build:`,
    /// `numerical:`, `alphabetical:`), never down; see [`crate::tags`].
    Tags(TagStrategy),
}

impl Policy {
    /// The tag strategy, for tag-choosing policies.
    pub fn strategy(&self) -> Option<&TagStrategy> {
        match self {
            Policy::Tags(s) => Some(s),
            Policy::Off | Policy::Digest => None,
        }
    }
}

/// Why `ferry.dev/policy` does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadPolicy {
    /// Not one of the known forms.
    Unknown {
        /// The value as written (trimmed).
        value: String,
    },
    /// A tag strategy whose pattern or range is unusable.
    Strategy(Error),
}

impl std::fmt::Display for BadPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadPolicy::Unknown { value } => write!(
                f,
                "{value:?}: expected digest, semver:RANGE, newest-build:REGEX, numerical:REGEX, alphabetical:REGEX or off"
            ),
            BadPolicy::Strategy(Error::TagPattern {
                pattern, problem, ..
            }) => write!(f, "{pattern:?}: {problem}"),
            BadPolicy::Strategy(e) => write!(f, "{e}"),
        }
    }
}

/// Parse `ferry.dev/policy`; no annotation means [`Policy::Off`].
pub fn parse_policy(value: Option<&str>) -> Result<Policy, BadPolicy> {
    let Some(v) = value.map(str::trim) else {
        return Ok(Policy::Off);
    };
    match v {
        "" | "off" => return Ok(Policy::Off),
        "digest" => return Ok(Policy::Digest),
        _ => {}
    }
    match TagStrategy::parse(v) {
        Ok(Some(s)) => Ok(Policy::Tags(s)),
        Ok(None) => Err(BadPolicy::Unknown {
            value: v.to_string(),
        }),
        Err(e) => Err(BadPolicy::Strategy(e)),
    }
}

/// One container of a pod template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerView {
    /// Container name.
    pub name: String,
    /// Image as written in the template, parsed once when the workload was read.
    pub image: Image,
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

    /// The Argo CD Application named by its tracking annotation
    /// (`app:group/kind:namespace/name`), else by its instance label.
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

    /// Whether only Argo CD's instance label (which Helm sets too) hints at Argo CD, without the
    /// tracking annotation: then [`argocd`] needs the Applications' names to tell.
    pub fn argocd_label_only(&self) -> bool {
        self.labels.contains_key(ARGOCD_INSTANCE_LABEL)
            && !self.annotations.contains_key(ARGOCD_TRACKING_ANNOTATION)
    }

    /// Its `ferry.dev/policy` as written, when it opts in (present and not `off`): what the
    /// status page shows.
    pub fn opted_in(&self) -> Option<&str> {
        self.annotation(POLICY).filter(|p| p.trim() != "off")
    }

    /// The digests quarantined per container (`ferry.dev/quarantined`).
    pub fn quarantined(&self) -> BTreeMap<String, Vec<String>> {
        parse_pairs(self.annotation(QUARANTINED))
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
    Known(BTreeSet<String>),
    /// They could not be read (RBAC, API error), and why.
    Unreadable(AppsUnreadable),
}

/// The Argo CD Applications could not be listed ([`ArgoApps::Unreadable`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppsUnreadable {
    /// The Argo CD namespace.
    pub namespace: String,
    /// The API's error.
    pub error: Failure,
}

impl std::fmt::Display for AppsUnreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "listing applications.argoproj.io in {}: {}",
            self.namespace, self.error
        )
    }
}

/// Only the instance label hints at Argo CD and the Applications are not known
/// ([`ArgoCd::Unknown`], [`Reason::ArgoCdUnknown`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelOnly {
    /// The `app.kubernetes.io/instance` label's value.
    pub instance: String,
    /// Why the Applications are not known: `None`, nobody read them.
    pub unreadable: Option<AppsUnreadable>,
}

impl std::fmt::Display for LabelOnly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "label {ARGOCD_INSTANCE_LABEL}={} may be Argo CD's or Helm's, and Argo CD Applications ",
            self.instance
        )?;
        match &self.unreadable {
            Some(why) => write!(f, "cannot be read ({why})")?,
            None => f.write_str("were not read")?,
        }
        f.write_str(": not patched on a guess")
    }
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
    Unknown(LabelOnly),
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
    let unknown = |unreadable: Option<&AppsUnreadable>| {
        ArgoCd::Unknown(LabelOnly {
            instance: instance.clone(),
            unreadable: unreadable.cloned(),
        })
    };
    match apps {
        ArgoApps::Known(names) if names.contains(instance) => ArgoCd::Managed(instance.clone()),
        ArgoApps::Known(_) => ArgoCd::NotManaged,
        ArgoApps::Unreadable(why) => unknown(Some(why)),
        ArgoApps::NotRead => unknown(None),
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

/// The digests each container ran before: those of `ferry.dev/previous-image`, the recorded
/// baselines and the `ferry.dev/rolled-at` stamps.
fn ran_before(w: &WorkloadView) -> BTreeMap<String, Vec<String>> {
    let mut out = parse_pairs(w.annotation(BASELINE));
    for (c, images) in parse_pairs(w.annotation(PREVIOUS_IMAGE)) {
        let digests = images
            .iter()
            .filter_map(|i| i.rsplit_once('@').map(|(_, d)| d.to_string()));
        out.entry(c).or_default().extend(digests);
    }
    for (c, (d, _)) in parse_stamps(w.annotation(ROLLED_AT)) {
        out.entry(c).or_default().push(d);
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

/// The containers ferry may change, or why none.
pub fn managed_containers(w: &WorkloadView) -> Result<Vec<&ContainerView>, PolicyError> {
    let Some(list) = w
        .annotation(CONTAINERS)
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return Ok(w.containers.iter().filter(|c| !c.init).collect());
    };
    let names: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let unknown: Vec<String> = names
        .iter()
        .filter(|n| !w.containers.iter().any(|c| c.name == **n))
        .map(|n| n.to_string())
        .collect();
    if !unknown.is_empty() {
        return Err(PolicyError::Containers { unknown });
    }
    Ok(w.containers
        .iter()
        .filter(|c| names.contains(&c.name.as_str()))
        .collect())
}

/// Why a workload's annotations cannot be acted on at all (one row, no container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    /// `ferry.dev/policy` is malformed.
    Policy(BadPolicy),
    /// `ferry.dev/containers` names containers that do not exist.
    Containers {
        /// The names that match no container.
        unknown: Vec<String>,
    },
    /// `ferry.dev/platforms` is malformed.
    Platforms(ferry_core::Error),
    /// `ferry.dev/tag-ignore` is not a usable regex.
    TagIgnore(Error),
    /// `ferry.dev/retag` or `ferry.dev/running-tag` is malformed.
    Retag(retag::BadRetag),
    /// `ferry.dev/git-pull-request` is malformed.
    PullRequest(review::BadPullRequest),
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyError::Policy(x0) => write!(f, "{POLICY}: {x0}"),
            PolicyError::Containers { unknown } => write!(
                f,
                "{CONTAINERS} names unknown container(s): {}",
                unknown.join(", ")
            ),
            PolicyError::Platforms(x0) => write!(f, "{PLATFORMS}: {x0}"),
            PolicyError::TagIgnore(x0) => write!(f, "{x0}"),
            PolicyError::Retag(e) => write!(f, "{e}"),
            PolicyError::PullRequest(e) => write!(f, "{e}"),
        }
    }
}

/// A workload's annotations, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadPolicy {
    /// The policy (for [`Policy::Off`] nothing else is read).
    pub policy: Policy,
    /// Names of the containers ferry may change.
    pub managed: BTreeSet<String>,
    /// Platforms a new image must provide (`None`: the cluster's node platforms).
    pub platforms: Option<Vec<Platform>>,
    /// Quarantined digests per container.
    pub quarantined: BTreeMap<String, Vec<String>>,
    /// Recorded baseline digests per container.
    pub baselines: BTreeMap<String, Vec<String>>,
    /// `ferry.dev/min-age` in seconds, or why it does not parse (reported per container).
    pub min_age: Option<Result<u64, ferry_core::Error>>,
    /// `ferry.dev/age-source: created`.
    pub age_from_created: bool,
    /// First-seen stamps per container (digest, time).
    pub first_seen: BTreeMap<String, (String, u64)>,
    /// `ferry.dev/promote-from`.
    pub promote_from: Option<String>,
    /// The repository the workload asks its updates to go to (`ferry.dev/git-repo`, with
    /// `git-branch`, default `main`, and `git-path`, default the root).
    pub git: Option<GitTarget>,
    /// `ferry.dev/helm-image`: the dotted key of the image in a Helm values file.
    pub helm_image: Option<String>,
    /// `ferry.dev/tag-ignore`: tags never chosen by a tag strategy.
    pub tag_ignore: Option<TagPattern>,
    /// `ferry.dev/git-write-branch`: the branch ferry's commits go to.
    pub write_branch: Option<String>,
    /// `ferry.dev/retag`: what a move to a tag with the running digest does.
    pub retag: retag::Retag,
    /// `ferry.dev/running-tag`: tags recorded by re-tags, per container.
    pub running_tags: BTreeMap<String, String>,
    /// `ferry.dev/git-pull-request` (`None`: `--git-pull-request` decides).
    pub pull_request: Option<review::PullRequestMode>,
    /// `ferry.dev/source-repo`: where the images' source revisions live.
    pub source_repo: Option<String>,
    /// `ferry.dev/signed-by`: the signature policy an update must satisfy.
    pub signed_by: Option<String>,
    /// `ferry.dev/require-revision-on` (with `ferry.dev/source-repo`).
    pub provenance: Option<provenance::Provenance>,
    /// Digests each container ran before (previous image, baselines, rollouts): moving back
    /// to one is a rollback, never held by the signature gate.
    pub ran_before: BTreeMap<String, Vec<String>>,
}

impl WorkloadPolicy {
    /// Parse `w`'s annotations.
    pub fn parse(w: &WorkloadView) -> Result<Self, PolicyError> {
        let policy = parse_policy(w.annotation(POLICY)).map_err(PolicyError::Policy)?;
        let managed = if policy == Policy::Off {
            BTreeSet::new()
        } else {
            managed_containers(w)?
                .into_iter()
                .map(|c| c.name.clone())
                .collect()
        };
        let platforms = match w.annotation(PLATFORMS) {
            Some(p) if policy != Policy::Off => {
                Some(Platform::parse_list(p).map_err(PolicyError::Platforms)?)
            }
            _ => None,
        };
        let tag_ignore = match &policy {
            Policy::Tags(_) => {
                tags::parse_ignore(w.annotation(TAG_IGNORE)).map_err(PolicyError::TagIgnore)?
            }
            Policy::Off | Policy::Digest => None,
        };
        Ok(WorkloadPolicy {
            policy,
            managed,
            platforms,
            quarantined: parse_pairs(w.annotation(QUARANTINED)),
            baselines: parse_pairs(w.annotation(BASELINE)),
            min_age: w.annotation(MIN_AGE).map(ferry_core::duration::parse_secs),
            age_from_created: w.annotation(AGE_SOURCE) == Some("created"),
            first_seen: parse_stamps(w.annotation(FIRST_SEEN)),
            promote_from: w.annotation(PROMOTE_FROM).map(str::to_string),
            git: w.annotation(GIT_REPO).map(|repo| GitTarget {
                repo: repo.to_string(),
                branch: w.annotation(GIT_BRANCH).unwrap_or("main").to_string(),
                path: w.annotation(GIT_PATH).unwrap_or("").to_string(),
            }),
            helm_image: w.annotation(HELM_IMAGE).map(str::to_string),
            tag_ignore,
            write_branch: write_branch(w),
            retag: retag::parse_retag(w.annotation(RETAG)).map_err(PolicyError::Retag)?,
            running_tags: retag::parse_running_tags(w.annotation(RUNNING_TAG))
                .map_err(PolicyError::Retag)?,
            pull_request: review::parse_mode(w.annotation(GIT_PULL_REQUEST))
                .map_err(PolicyError::PullRequest)?,
            source_repo: w
                .annotation(SOURCE_REPO)
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_string),
            signed_by: w.annotation(SIGNED_BY).map(str::to_string),
            ran_before: ran_before(w),
            provenance: w
                .annotation(REQUIRE_REVISION_ON)
                .map(|branch| provenance::Provenance {
                    branch: branch.trim().to_string(),
                    repo: w.annotation(SOURCE_REPO).map(|r| r.trim().to_string()),
                }),
        })
    }

    /// Whether `container` ran `digest` before (a move to it is a rollback).
    pub fn ran_before(&self, container: &str, digest: &Digest) -> bool {
        let d = digest.to_string();
        self.ran_before
            .get(container)
            .is_some_and(|v| v.contains(&d))
    }

    /// Whether `digest` is quarantined for `container`.
    pub fn is_quarantined(&self, container: &str, digest: &Digest) -> bool {
        let d = digest.to_string();
        self.quarantined
            .get(container)
            .is_some_and(|q| q.contains(&d))
    }

    /// The recorded baseline of `container`.
    pub fn baseline(&self, container: &str) -> Option<Digest> {
        self.baselines
            .get(container)
            .and_then(|v| v.last())
            .and_then(|s| Digest::parse(s).ok())
    }
}

/// `ferry.dev/git-write-branch`, when set and not blank.
fn write_branch(w: &WorkloadView) -> Option<String> {
    w.annotation(GIT_WRITE_BRANCH)
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(str::to_string)
}

/// Whether ferry has anything to ask the registry for `w` (it opted in with a valid policy and
/// names containers whose images parse).
pub fn opted_in(w: &WorkloadView) -> bool {
    WorkloadPolicy::parse(w).is_ok_and(|p| p.opts_in(w))
}

impl WorkloadPolicy {
    /// Whether `w`, under this (its parsed) policy, has anything to ask the registry: a policy
    /// other than off and a managed container whose image parses.
    pub fn opts_in(&self, w: &WorkloadView) -> bool {
        self.policy != Policy::Off
            && w.containers
                .iter()
                .any(|c| self.managed.contains(&c.name) && c.image.parsed().is_some())
    }
}
