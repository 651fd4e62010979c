//! The decision step: per container, a flow of small checks (goal tag → registry facts →
//! promotion → baseline → quarantine → platforms → soak → route) that either reaches an update
//! or stops with a typed reason — or with the [`Query`] whose answer it is missing, which is how
//! [`queries`] learns what to ask without a second copy of the rules.

use std::collections::{HashMap, HashSet};

use ferry_core::{Digest, Platform, Reference};

use crate::approval::{self, Approval};
use crate::helm::SetsImage;
use crate::retag::{self, Retag};
use crate::route::{self, Application, GitSettings};

use crate::tags::{NoCandidate, TagStrategy};
use crate::{
    ArgoApps, ArgoCd, ContainerView, Image, Kind, NotWritten, POLICY, Policy, Reason,
    WorkloadPolicy, WorkloadView, argocd,
};

/// What the registry said about one `name:tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFacts {
    /// The digest the tag points at (the index digest for multi-arch images).
    pub digest: Digest,
    /// Its platforms, when known.
    pub platforms: Option<Vec<Platform>>,
}

/// Something the registry must answer before a workload can be decided.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Query {
    /// List the tags of this repository (`name`, no tag, no digest).
    Tags(Reference),
    /// Resolve this `name:tag` to its digest.
    Resolve(Reference),
    /// Read the platforms of this `name@digest`.
    Inspect(Reference),
    /// Read the created time of this `name@digest`.
    Created(Reference),
    /// Read the created times of this repository's listed tags (`newest-build`): the caller
    /// picks which, within its budget ([`crate::tags::to_inspect`]), once per pass.
    TagTimes(Reference),
    /// Read this Argo CD Application (by name): a git update of an Argo CD workload goes where
    /// its spec says. Asked only for an update that would go through it.
    Application(String),
    /// Verify the signatures of a `name@digest` under a signature policy.
    Signature(crate::signed::SignatureQuery),
    /// Read an image's source revision, or check it is on a branch ([`crate::provenance`]).
    Provenance(crate::provenance::ProvenanceQuery),
}

/// Why the registry could not answer a query: the shell's own error, kept with its type (the
/// core has no registry dependency to name it) and shared by every workload it concerns.
pub type LookupError = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// Registry answers gathered for one pass, keyed by the references of the [`Query`]s.
#[derive(Debug, Clone, Default)]
pub struct Answers {
    /// `name:tag` → facts or why they could not be read.
    pub resolved: HashMap<Reference, Result<TagFacts, LookupError>>,
    /// repository → tags or why they could not be listed.
    pub tags: HashMap<Reference, Result<Vec<String>, LookupError>>,
    /// `name@digest` → platforms of inspected candidates.
    pub platforms: HashMap<Reference, Vec<Platform>>,
    /// `name@digest` → newest `created` time (Unix seconds), for `age-source: created`.
    pub created: HashMap<Reference, Option<u64>>,
    /// `name:tag` → its image's created time (Unix seconds), for `newest-build`.
    pub tag_created: HashMap<Reference, u64>,
    /// Repositories whose tags' created times were read in this pass ([`Query::TagTimes`]).
    pub tag_times_read: HashSet<Reference>,
    /// Argo CD Application name → its spec (or why it could not be read).
    pub applications: HashMap<String, Application>,
    /// (`name@digest`, signature policy) → the verdict on its signatures.
    pub signatures: HashMap<(Reference, String), crate::SignatureVerdict>,
    /// Source revisions of images and whether they are on a branch.
    pub provenance: crate::provenance::ProvenanceAnswers,
}

/// What to do with one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Write `target` into the pod template (or into git).
    Update,
    /// Something prevents it (reason says what).
    Skip,
    /// Nothing to do.
    None,
}

/// Where an update lands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Route {
    /// A patch of the workload in the cluster.
    #[default]
    Live,
    /// A commit to git (Argo CD or `ferry.dev/git-*` workloads).
    Git(GitRoute),
}

/// A git destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRoute {
    /// Repository URL.
    pub repo: String,
    /// Branch.
    pub branch: String,
    /// Directory or file of the workload's manifests in the repository.
    pub path: String,
    /// The file the edit goes to, once placed.
    pub file: Option<String>,
    /// What the edit changes: manifests under `path`, or a Helm values file.
    pub edit: GitEdit,
    /// When `branch` is a separate write branch (`ferry.dev/git-write-branch`, or a request's
    /// branch): the Application's branch it is created from and fast-forwarded to.
    pub base: Option<String>,
    /// Open (or update) a pull/merge request from `branch` into `base` on this forge.
    pub review: Option<crate::review::Forge>,
}

/// What a git update edits.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GitEdit {
    /// The image in manifests or kustomization files under the route's `path`.
    #[default]
    Manifests,
    /// `<key>.repository`, `<key>.tag` (and `<key>.digest`) in the Helm values file `path`.
    HelmValues {
        /// Dotted key of the image mapping (`ferry.dev/helm-image`, default `image`).
        key: String,
        /// Values files Helm applies after this one, in the same repository and revision (they
        /// override it, so none may set the key).
        overrides: Vec<String>,
    },
}

/// What a pass records on the workload besides an update.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Records {
    /// A baseline digest for an image without one.
    pub baseline: Option<Digest>,
    /// When a soak candidate was first seen (digest, Unix time).
    pub first_seen: Option<(Digest, u64)>,
    /// A re-tag recorded instead of a template change: the tag for `ferry.dev/running-tag`.
    pub running_tag: Option<String>,
}

/// The decision for one container (a row of `ferry-deploy plan`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Namespace.
    pub namespace: String,
    /// Kind.
    pub kind: Kind,
    /// Workload name.
    pub name: String,
    /// Container name (empty when the decision concerns the whole workload).
    pub container: String,
    /// The image as written now (and as parsed when the workload was read).
    pub image: Image,
    /// The digest it runs now (template pin, else pods, else recorded baseline).
    pub current_digest: Option<Digest>,
    /// The new image (`name:tag@digest`), when there is one.
    pub target: Option<Reference>,
    /// update, skip or none.
    pub action: Action,
    /// Why.
    pub reason: Reason,
    /// Seconds the candidate still has to soak.
    pub soak_remaining_seconds: Option<u64>,
    /// Where an update lands.
    pub route: Route,
    /// What to record on the workload.
    pub records: Records,
    /// What the decision saw, for a reviewer (a pull request's body).
    pub evidence: crate::review::Evidence,
}

impl Records {
    /// The first-seen record as written in `ferry.dev/first-seen` (`digest@unixtime`).
    pub fn first_seen_stamp(&self) -> Option<String> {
        self.first_seen.as_ref().map(|(d, t)| format!("{d}@{t}"))
    }
}

impl Decision {
    /// A row for `container` of `w`.
    pub fn row(
        w: &WorkloadView,
        container: &str,
        image: &Image,
        action: Action,
        reason: Reason,
    ) -> Self {
        Decision {
            namespace: w.namespace.clone(),
            kind: w.kind,
            name: w.name.clone(),
            container: container.to_string(),
            image: image.clone(),
            current_digest: None,
            target: None,
            action,
            reason,
            soak_remaining_seconds: None,
            route: Route::Live,
            records: Records::default(),
            evidence: Default::default(),
        }
    }

    /// `namespace/Kind/name` of its workload.
    pub fn workload_id(&self) -> String {
        format!("{}/{}/{}", self.namespace, self.kind, self.name)
    }

    /// The target as written into a manifest (`acme/sensor:1@sha256:…`).
    pub fn target_image(&self) -> Option<String> {
        self.target.as_ref().map(Reference::familiar)
    }

    /// The target's digest.
    pub fn target_digest(&self) -> Option<&Digest> {
        self.target.as_ref().and_then(Reference::digest)
    }

    /// An update patched into the cluster.
    pub fn is_live_update(&self) -> bool {
        self.action == Action::Update && self.route == Route::Live
    }

    /// Its git destination, when routed to git.
    pub fn git(&self) -> Option<&GitRoute> {
        match &self.route {
            Route::Git(g) => Some(g),
            Route::Live => None,
        }
    }
}

/// The clock and the rest of the pass, for the gates that look beyond one workload.
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
    /// `--git-write-branch`: where git updates go unless the workload names its own.
    pub write_branch: Option<&'a str>,
    /// `--git-pull-request` and `--git-pull-request-branch` (`None`: off, default template).
    pub pull_requests: Option<&'a crate::review::PullRequests>,
    /// The YAML reader for inline `helm.values` in Applications.
    pub sets_image: SetsImage,
    /// The signature policies and the one every workload is held to.
    pub signed: crate::SignedGate<'a>,
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
            write_branch: None,
            pull_requests: None,
            sets_image: crate::helm::may_set_image,
            signed: crate::SignedGate::default(),
        }
    }
}

/// Decide every container of `w` with the wall clock and no other workloads.
pub fn decide(w: &WorkloadView, answers: &Answers, node_platforms: &[Platform]) -> Vec<Decision> {
    let now = ferry_core::duration::unix_now();
    decide_gated(w, answers, node_platforms, &Gate::new(now, &[]))
}

/// Parse `w`'s annotations and decide every container. `node_platforms` is what the cluster's
/// schedulable nodes run.
pub fn decide_gated(
    w: &WorkloadView,
    answers: &Answers,
    node_platforms: &[Platform],
    gate: &Gate<'_>,
) -> Vec<Decision> {
    match WorkloadPolicy::parse(w) {
        Ok(p) => decide_with(w, &p, answers, node_platforms, gate),
        Err(e) => vec![Decision::row(
            w,
            "",
            &Image::default(),
            Action::Skip,
            Reason::Policy(e),
        )],
    }
}

/// Decide every container of `w` under its parsed policy `p`.
pub fn decide_with(
    w: &WorkloadView,
    p: &WorkloadPolicy,
    answers: &Answers,
    node_platforms: &[Platform],
    gate: &Gate<'_>,
) -> Vec<Decision> {
    flows(w, p, answers, node_platforms, gate)
        .into_iter()
        .map(|(mut d, stop)| {
            match stop.map(|s| *s) {
                None => {}
                Some(Stop::Done(action, reason) | Stop::Needs(_, action, reason)) => {
                    d.action = action;
                    d.reason = reason;
                }
            }
            d
        })
        .collect()
}

/// What the registry must still answer to decide `w` (empty when nothing is missing, or the
/// workload did not opt in). Ask, add the answers, and call again until it is empty.
pub fn queries(
    w: &WorkloadView,
    p: &WorkloadPolicy,
    answers: &Answers,
    node_platforms: &[Platform],
    gate: &Gate<'_>,
) -> Vec<Query> {
    flows(w, p, answers, node_platforms, gate)
        .into_iter()
        .filter_map(|(_, stop)| match stop.map(|s| *s) {
            Some(Stop::Needs(q, _, _)) => Some(q),
            _ => None,
        })
        .collect()
}

/// Where a container's flow stopped before an update.
pub(crate) enum Stop {
    /// A decision.
    Done(Action, Reason),
    /// An answer is missing (and the decision, should it stay missing).
    Needs(Query, Action, Reason),
}

/// Boxed: a stop is the rare, final path of a flow.
pub(crate) type Flow<T> = Result<T, Box<Stop>>;

pub(crate) fn skip(r: Reason) -> Box<Stop> {
    Box::new(Stop::Done(Action::Skip, r))
}

fn none(r: Reason) -> Box<Stop> {
    Box::new(Stop::Done(Action::None, r))
}

pub(crate) fn needs(q: Query, r: Reason) -> Box<Stop> {
    Box::new(Stop::Needs(q, Action::Skip, r))
}

/// Every container's row and where its flow stopped (`None`: an update).
fn flows(
    w: &WorkloadView,
    p: &WorkloadPolicy,
    answers: &Answers,
    node_platforms: &[Platform],
    gate: &Gate<'_>,
) -> Vec<(Decision, Option<Box<Stop>>)> {
    if p.policy == Policy::Off {
        let why = if w.annotations.contains_key(POLICY) {
            Reason::PolicyOff
        } else {
            Reason::NotOptedIn
        };
        return w
            .containers
            .iter()
            .map(|c| {
                (
                    Decision::row(w, &c.name, &c.image, Action::None, why.clone()),
                    None,
                )
            })
            .collect();
    }
    let ctx = Ctx {
        w,
        p,
        answers,
        required: p.platforms.as_deref().unwrap_or(node_platforms),
        gate,
    };
    w.containers
        .iter()
        .map(|c| {
            let mut d = Decision::row(w, &c.name, &c.image, Action::None, Reason::NotNamed);
            if !p.managed.contains(&c.name) {
                return (d, Some(none(Reason::NotNamed)));
            }
            let stop = ctx.container(c, &mut d).err();
            (d, stop)
        })
        .collect()
}

/// Everything one workload's containers are decided with.
pub(crate) struct Ctx<'a> {
    w: &'a WorkloadView,
    pub(crate) p: &'a WorkloadPolicy,
    pub(crate) answers: &'a Answers,
    required: &'a [Platform],
    pub(crate) gate: &'a Gate<'a>,
}

/// Where a container would go.
pub(crate) struct Candidate<'f> {
    /// `name:tag@digest`.
    target: Reference,
    /// `name@digest`, the key of its platforms and created time.
    pub(crate) by_digest: Reference,
    pub(crate) digest: Digest,
    facts: &'f TagFacts,
    /// The same tag as now (a digest moved) rather than another tag.
    same_tag: bool,
    /// Since when the `promote-from` workload has run it, if ferry rolled it there.
    beta_since: Option<u64>,
}

impl<'a> Ctx<'a> {
    fn container(&self, c: &ContainerView, d: &mut Decision) -> Flow<()> {
        let r = c
            .image
            .reference()
            .map_err(|e| skip(Reason::BadImage(e.clone())))?;
        let current = r
            .digest()
            .cloned()
            .or_else(|| self.w.running.get(&c.name).cloned())
            .or_else(|| self.p.baseline(&c.name));
        d.current_digest = current.clone();
        let cand = self.candidate(&c.name, r)?;
        self.baseline(current.as_ref(), &cand, d)?;
        let same_digest = current.as_ref() == Some(&cand.digest);
        if same_digest && cand.same_tag {
            return Err(none(match r.digest() {
                // Runs the target bytes already; pinning would restart it for nothing.
                None => Reason::RunsAlready(cand.digest),
                Some(_) => Reason::AtTarget,
            }));
        }
        d.target = Some(cand.target.clone());
        let retag = same_digest.then(|| cand.target.tag().unwrap_or_default().to_string());
        if let Some(tag) = &retag
            && self.p.retag == Retag::Record
        {
            d.records.running_tag = Some(tag.clone());
            let (tag, digest) = (tag.clone(), cand.digest);
            return Err(none(Reason::RetagRecorded { tag, digest }));
        }
        if self.p.is_quarantined(&c.name, &cand.digest) {
            return Err(skip(Reason::Quarantined(cand.digest)));
        }
        d.evidence.source_repo = self.p.source_repo.clone();
        if let Some(from) = &self.p.promote_from {
            d.evidence.beta = Some(format!("{from} runs {}, healthy", cand.digest));
        }
        self.platforms(&cand, d)?;
        d.evidence.signed_by = self.signed(c, &cand)?;
        self.provenance(c, &cand)?;
        self.soak(c, &cand, d)?;
        self.approved(&cand)?;
        let (route, for_argocd) = self.route()?;
        d.route = route;
        d.action = Action::Update;
        d.reason = match (retag, cand.same_tag) {
            (Some(tag), _) => Reason::RetagRestart {
                tag,
                digest: cand.digest,
            },
            _ if for_argocd => Reason::WrittenForArgoCd,
            (None, true) => Reason::TagMoved {
                tag: cand.target.tag().unwrap_or_default().to_string(),
                digest: cand.digest,
            },
            (None, false) => self.newer_tag(&cand),
        };
        Ok(())
    }

    /// The tag to follow, its facts, and the digest to move to.
    fn candidate(&self, container: &str, r: &Reference) -> Flow<Candidate<'a>> {
        let (tag, current_tag) = self.goal_tag(container, r)?;
        let key = r.with_tag(&tag).map_err(|e| skip(Reason::BadImage(e)))?;
        let facts = match self.answers.resolved.get(&key) {
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                return Err(skip(Reason::Registry(crate::Failure::from_arc(e.clone()))));
            }
            None => {
                let why = Reason::NotResolved(key.clone());
                return Err(needs(Query::Resolve(key), why));
            }
        };
        let (digest, beta_since) = match &self.p.promote_from {
            None => (facts.digest.clone(), None),
            Some(from) => crate::promote::beta_offer(self.gate, from, r)
                .map_err(|e| skip(Reason::PromoteFrom(e)))?,
        };
        Ok(Candidate {
            target: key.with_digest(digest.clone()),
            by_digest: r.repository_only().with_digest(digest.clone()),
            same_tag: current_tag == tag,
            digest,
            facts,
            beta_since,
        })
    }

    /// The same tag (digest policy) or the best listed tag under the tag strategy (never down;
    /// already on the best tag: the same tag, whose digest may have moved).
    /// Returns the goal tag and the tag counted as current (a recorded re-tag, see
    /// [`retag::current_tag`]).
    fn goal_tag(&self, container: &str, r: &Reference) -> Flow<(String, String)> {
        let strategy = match &self.p.policy {
            Policy::Off => return Err(none(Reason::PolicyOff)),
            Policy::Digest => {
                let tag = r.tag_or_default().unwrap_or("latest").to_string();
                return Ok((tag.clone(), tag));
            }
            Policy::Tags(s) => s,
        };
        let template = r.tag().unwrap_or("");
        let repo = r.repository_only();
        let tags = match self.answers.tags.get(&repo) {
            Some(Ok(t)) => t,
            Some(Err(e)) => {
                return Err(skip(Reason::TagsFailed(crate::Failure::from_arc(
                    e.clone(),
                ))));
            }
            None => return Err(needs(Query::Tags(repo), Reason::TagsNotListed)),
        };
        let created = |t: &str| {
            let key = repo.with_tag(t).ok()?;
            self.answers.tag_created.get(&key).copied()
        };
        let ignore = self.p.tag_ignore.as_ref();
        if strategy.needs_created() && !self.answers.tag_times_read.contains(&repo) {
            let unknown = tags
                .iter()
                .any(|t| strategy.admits(t, ignore) && created(t).is_none());
            if unknown || created(template).is_none() {
                return Err(needs(Query::TagTimes(repo), Reason::TagTimesNotRead));
            }
        }
        let recorded = self.p.running_tags.get(container).map(String::as_str);
        let running = retag::current_tag(strategy, template, recorded, tags, ignore, created);
        let goal = match strategy.choose(running, tags, ignore, created) {
            Ok(c) => c.tag,
            Err(NoCandidate::UpToDate { current, .. }) => current,
            Err(e) => return Err(no_candidate(strategy, running, e)),
        };
        Ok((goal, running.to_string()))
    }

    /// The reason of a move to another tag.
    fn newer_tag(&self, cand: &Candidate<'_>) -> Reason {
        let tag = cand.target.tag().unwrap_or_default().to_string();
        match &self.p.policy {
            Policy::Tags(s) if !matches!(s, TagStrategy::Semver(_)) => Reason::NewerTagBy {
                tag,
                strategy: s.kind(),
            },
            _ => Reason::NewerTag(tag),
        }
    }

    /// Without a current digest a `digest` policy records a baseline and waits; a tag strategy
    /// moving to another tag needs none.
    fn baseline(
        &self,
        current: Option<&Digest>,
        cand: &Candidate<'_>,
        d: &mut Decision,
    ) -> Flow<()> {
        let tag_elsewhere = matches!(self.p.policy, Policy::Tags(_)) && !cand.same_tag;
        if current.is_some() || tag_elsewhere {
            return Ok(());
        }
        d.records.baseline = Some(cand.digest.clone());
        Err(none(Reason::BaselineRecorded(cand.digest.clone())))
    }

    /// The new image provides every required platform.
    fn platforms(&self, cand: &Candidate<'_>, d: &mut Decision) -> Flow<()> {
        let have = self
            .answers
            .platforms
            .get(&cand.by_digest)
            .cloned()
            .or_else(|| {
                (cand.facts.digest == cand.digest)
                    .then(|| cand.facts.platforms.clone())
                    .flatten()
            });
        let Some(have) = have else {
            if self.required.is_empty() {
                return Ok(());
            }
            return Err(needs(
                Query::Inspect(cand.by_digest.clone()),
                Reason::NotInspected,
            ));
        };
        let missing: Vec<String> = self
            .required
            .iter()
            .filter(|p| !have.iter().any(|h| h.matches(p)))
            .map(ToString::to_string)
            .collect();
        d.evidence.platforms = Some(have);
        if missing.is_empty() {
            return Ok(());
        }
        Err(skip(Reason::LacksPlatforms(cand.digest.clone(), missing)))
    }

    /// `ferry.dev/min-age`: old enough since first seen, since created, or since the beta
    /// workload rolled it.
    fn soak(&self, c: &ContainerView, cand: &Candidate<'_>, d: &mut Decision) -> Flow<()> {
        let Some(min) = &self.p.min_age else {
            return Ok(());
        };
        let min = min.clone().map_err(|e| skip(Reason::BadMinAge(e)))?;
        let digest = &cand.digest;
        let born = if self.p.age_from_created {
            match self.answers.created.get(&cand.by_digest) {
                Some(Some(t)) => Some(*t),
                Some(None) => return Err(skip(Reason::NoCreatedTime(digest.clone()))),
                None => {
                    let q = Query::Created(cand.by_digest.clone());
                    return Err(needs(q, Reason::CreatedNotRead));
                }
            }
        } else {
            let seen = self.p.first_seen.get(&c.name);
            let seen = seen
                .filter(|(dg, _)| *dg == digest.to_string())
                .map(|(_, t)| *t);
            cand.beta_since.or(seen)
        };
        let now = self.gate.now;
        let left = match born {
            None => {
                d.records.first_seen = Some((digest.clone(), now));
                d.soak_remaining_seconds = Some(min);
                return Err(skip(Reason::SoakStarted { min }));
            }
            Some(b) => min.saturating_sub(now.saturating_sub(b)),
        };
        if left > 0 {
            d.soak_remaining_seconds = Some(left);
            return Err(skip(Reason::Soaking { left, min }));
        }
        d.evidence.soaked = born.map(|b| now.saturating_sub(b));
        Ok(())
    }

    /// `ferry.dev/approve: manual` holds every update until `ferry.dev/approved` names its
    /// digest (RBAC decides who may annotate).
    fn approved(&self, cand: &Candidate<'_>) -> Flow<()> {
        let w = self.w;
        let kind = w.kind.as_str();
        match approval::approval(&w.annotations, kind, &w.namespace, &w.name, &cand.digest) {
            Ok(Approval::Awaiting { command }) => Err(skip(Reason::AwaitingApproval {
                digest: cand.digest.clone(),
                command,
            })),
            Ok(_) => Ok(()),
            Err(e) => Err(skip(Reason::BadApproval(e))),
        }
    }

    /// Where the update lands (and whether it goes to git for Argo CD): a workload that asks
    /// for git goes to its repository (skipped when write-back is off); an Argo CD workload to
    /// what its Application names (skipped without write-back: a live patch would be reverted);
    /// anything else is patched live.
    fn route(&self) -> Flow<(Route, bool)> {
        let git = GitSettings {
            write_branch: self.gate.write_branch,
            sets_image: self.gate.sets_image,
            pull_requests: self.gate.pull_requests,
            workload: (&self.w.namespace, &self.w.name),
        };
        let no_route = |why: route::NoRoute| skip(Reason::GitWriteBack(NotWritten::Route(why)));
        if let Some(target) = &self.p.git {
            if self.gate.git_write_back {
                let r = route::annotated(self.p, target, &git).map_err(no_route)?;
                return Ok((Route::Git(r), false));
            }
            return Err(skip(Reason::GitWithoutWriteBack(target.repo.clone())));
        }
        let app = match argocd(self.w, self.gate.argocd) {
            ArgoCd::NotManaged => return Ok((Route::Live, false)),
            ArgoCd::Managed(_) if !self.gate.git_write_back => {
                return Err(skip(Reason::ArgoCdManaged));
            }
            ArgoCd::Managed(app) => app,
            ArgoCd::Unknown(why) => return Err(skip(Reason::ArgoCdUnknown(why))),
        };
        let Some(answer) = self.answers.applications.get(&app) else {
            return Err(needs(Query::Application(app), Reason::ArgoCdManaged));
        };
        let r = route::through_application(self.p, &app, answer, &git).map_err(no_route)?;
        Ok((Route::Git(r), true))
    }
}

/// Why a tag strategy chose nothing: the semver reasons as `plan` always wrote them; for the
/// other strategies the typed [`NoCandidate`]. A best tag below the running one is not a skip.
fn no_candidate(strategy: &TagStrategy, running: &str, e: NoCandidate) -> Box<Stop> {
    match (strategy, e) {
        (TagStrategy::Semver(_), NoCandidate::NotNewer { best, current }) => {
            none(Reason::NeverDowngrade {
                best,
                running: current,
            })
        }
        (_, e @ NoCandidate::NotNewer { .. }) => none(Reason::NoTag(e)),
        (TagStrategy::Semver(req), NoCandidate::NoMatch { .. }) => {
            skip(Reason::NoTagInRange(req.to_string()))
        }
        (TagStrategy::Semver(_), NoCandidate::CurrentUnranked { .. }) => {
            skip(Reason::NotSemver(running.to_string()))
        }
        (_, e) => skip(Reason::NoTag(e)),
    }
}
