//! One pass of the redeploy controller: read the cluster, ask the registry (one HEAD per unique
//! reference), decide, and — unless planning — patch, record Events, and optionally watch the
//! rollout and roll a failed one back.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ferry_core::duration::unix_now;
use ferry_core::{Platform, Reference};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::api::Api;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::cluster::{self, Namespaces, Workload};
use crate::error::Result;
use crate::gitops::{self, GitTarget};
use crate::policy::{
    self, Action, Answers, BASELINE, Decision, Kind, PREVIOUS_IMAGE, QUARANTINED, TagFacts,
};

/// What a pass works with (the kube-rs controller `Context` shape).
#[derive(Clone)]
pub struct Context {
    /// The Kubernetes API.
    pub client: Client,
    /// The registry (its credentials are combined with the workloads' pull secrets per pass).
    pub registry: ferry_registry::Client,
    /// Where to look.
    pub namespaces: Namespaces,
    /// Concurrent registry queries.
    pub registry_concurrency: usize,
    /// Stop asking a registry whose `ratelimit-remaining` fell below this, until its window ends.
    pub rate_gate: RateGate,
    /// Git write-back (Argo CD Applications, `ferry.dev/git-*` annotations); `None`: off, and
    /// Argo CD-managed workloads are skipped.
    pub gitops: Option<GitOps>,
}

/// Git write-back settings.
#[derive(Debug, Clone)]
pub struct GitOps {
    /// How to clone, commit and push.
    pub config: gitops::WriteBackConfig,
    /// Where Argo CD's Applications live.
    pub argocd_namespace: String,
}

/// Where `w`'s manifests live: its `ferry.dev/git-*` annotations, else its Argo CD
/// Application's `spec.source` (`repoURL`, `path`, `targetRevision`).
async fn git_target(
    client: &Client,
    argocd_ns: &str,
    w: &Workload,
) -> std::result::Result<Option<GitTarget>, String> {
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
    let gvk = kube::api::GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application");
    let ar = kube::api::ApiResource::from_gvk(&gvk);
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), argocd_ns, &ar);
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
    let source = spec
        .and_then(|s| s.get("source"))
        .or_else(|| spec.and_then(|s| s.get("sources")).and_then(|s| s.get(0)));
    let Some(source) = source else {
        return Err(format!("Application {app} has no spec.source"));
    };
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
    Ok(Some(GitTarget {
        repo,
        branch: field("targetRevision"),
        path: field("path"),
    }))
}

/// What a registry last said: requests remaining, when, and its window.
type Observed = (u64, std::time::Instant, Duration);

/// Remembers registries whose rate limit is nearly spent, across passes.
#[derive(Debug, Clone, Default)]
pub struct RateGate {
    floor: Option<u64>,
    seen: std::sync::Arc<std::sync::Mutex<BTreeMap<String, Observed>>>,
}

impl RateGate {
    /// A gate that closes a registry when fewer than `floor` requests remain (`None`: never).
    pub fn new(floor: Option<u64>) -> Self {
        RateGate {
            floor,
            seen: Default::default(),
        }
    }

    /// `Err(reason)` while `registry` is below the floor and its window has not passed.
    pub fn check(&self, registry: &str) -> std::result::Result<(), String> {
        let Some(floor) = self.floor else {
            return Ok(());
        };
        let mut seen = self.seen.lock().expect("rate gate lock");
        if let Some((remaining, at, window)) = seen.get(registry).copied() {
            if at.elapsed() >= window {
                seen.remove(registry);
            } else if remaining < floor {
                return Err(format!(
                    "not polled: {registry} reported ratelimit-remaining {remaining}, below the floor of {floor}; waiting {}s for its window",
                    (window.saturating_sub(at.elapsed())).as_secs()
                ));
            }
        }
        Ok(())
    }

    /// Record what a registry said.
    pub fn observe(&self, registry: &str, rate: Option<&ferry_registry::RateLimit>) {
        let Some(r) = rate else { return };
        let Some(remaining) = r.remaining else { return };
        let window = Duration::from_secs(r.window_seconds.unwrap_or(3600));
        self.seen.lock().expect("rate gate lock").insert(
            registry.to_string(),
            (remaining, std::time::Instant::now(), window),
        );
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("namespaces", &self.namespaces)
            .finish()
    }
}

/// The result of planning.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Every workload read.
    pub workloads: Vec<Workload>,
    /// One decision per container of every workload.
    pub decisions: Vec<Decision>,
    /// Registry requests made (HEADs, tag lists, inspections).
    pub registry_requests: usize,
}

/// Read the cluster and the registry and decide, writing nothing.
pub async fn plan(ctx: &Context) -> Result<Plan> {
    let mut workloads = cluster::list_workloads(&ctx.client, &ctx.namespaces).await?;
    // Pods, nodes and pull secrets are only read for workloads that opted in.
    let mut opted: Vec<Workload> = workloads
        .iter()
        .filter(|w| policy::opted_in(&w.view))
        .cloned()
        .collect();
    cluster::fill_running(&ctx.client, &mut opted).await?;
    for o in &opted {
        if let Some(w) = workloads.iter_mut().find(|w| w.view.id() == o.view.id()) {
            w.view.running = o.view.running.clone();
        }
    }
    let platforms = if opted.is_empty() {
        Vec::new()
    } else {
        cluster::node_platforms(&ctx.client).await?
    };
    // Pull secrets of opted-in workloads join ferry's own credentials for this pass.
    let secrets: BTreeSet<(String, String)> = opted
        .iter()
        .flat_map(|w| {
            w.pull_secrets
                .iter()
                .map(|s| (w.view.namespace.clone(), s.clone()))
        })
        .collect();
    let pass_ctx;
    let ctx = if secrets.is_empty() {
        ctx
    } else {
        let mut stores: Vec<std::sync::Arc<dyn ferry_registry::CredentialStore>> =
            cluster::pull_secret_credentials(&ctx.client, &secrets)
                .await
                .into_iter()
                .map(|c| {
                    std::sync::Arc::new(c) as std::sync::Arc<dyn ferry_registry::CredentialStore>
                })
                .collect();
        let mut config = ctx.registry.config().clone();
        stores.push(config.credentials.clone());
        config.credentials = std::sync::Arc::new(ferry_registry::ChainCredentials(stores));
        pass_ctx = Context {
            registry: ferry_registry::Client::new(config)?,
            ..ctx.clone()
        };
        &pass_ctx
    };
    let (answers, requests) = gather(ctx, &workloads, &platforms).await;
    let views: Vec<policy::WorkloadView> = workloads.iter().map(|w| w.view.clone()).collect();
    let gate = policy::Gate {
        now: unix_now(),
        workloads: &views,
    };
    let mut decisions: Vec<Decision> = workloads
        .iter()
        .flat_map(|w| policy::decide_gated(&w.view, &answers, &platforms, &gate))
        .collect();
    if let Some(g) = &ctx.gitops {
        route_through_git(ctx, g, &workloads, &mut decisions).await;
    }
    Ok(Plan {
        workloads,
        decisions,
        registry_requests: requests,
    })
}

fn belongs(d: &Decision, w: &Workload) -> bool {
    d.namespace == w.view.namespace && d.kind == w.view.kind.as_str() && d.name == w.view.name
}

fn change_of(d: &Decision) -> gitops::ImageChange {
    gitops::ImageChange {
        workload: format!("{}/{}/{}", d.namespace, d.kind, d.name),
        kind: d.kind.to_string(),
        name: d.name.clone(),
        container: d.container.clone(),
        old_image: d.image.clone(),
        new_image: d.target.clone().unwrap_or_default(),
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

/// Turn updates of workloads with a git target into git updates (`via: git`, repo, branch,
/// file), or skips with the reason (no manifest found, a human reverted that digest…).
async fn route_through_git(
    ctx: &Context,
    g: &GitOps,
    workloads: &[Workload],
    decisions: &mut [Decision],
) {
    let mut by_target: BTreeMap<GitTarget, Vec<usize>> = BTreeMap::new();
    for w in workloads {
        let wants = decisions.iter().any(|d| {
            belongs(d, w)
                && (d.argocd_blocked
                    || (d.action == Action::Update
                        && w.view.annotation(policy::GIT_REPO).is_some()))
        });
        if !wants {
            continue;
        }
        let target = git_target(&ctx.client, &g.argocd_namespace, w).await;
        for (i, d) in decisions
            .iter_mut()
            .enumerate()
            .filter(|(_, d)| belongs(d, w))
        {
            if !(d.argocd_blocked || d.action == Action::Update) {
                continue;
            }
            match &target {
                Ok(Some(t)) => by_target.entry(t.clone()).or_default().push(i),
                Ok(None) => {}
                Err(e) => {
                    d.action = Action::Skip;
                    d.reason = format!("git write-back: {e}");
                }
            }
        }
    }
    for (target, idx) in by_target {
        let changes: Vec<gitops::ImageChange> =
            idx.iter().map(|i| change_of(&decisions[*i])).collect();
        let config = g.config.clone();
        let t = target.clone();
        let placed = tokio::task::spawn_blocking(move || -> std::result::Result<Vec<Placement>, String> {
            let t = gitops::resolve_branch(&config, &t).map_err(|e| e.to_string())?;
            let (repo, tip) = gitops::fetch(&config, &t).map_err(|e| e.to_string())?;
            let tree = repo.find_commit(tip).and_then(|c| c.tree()).map_err(|e| e.message().to_string())?;
            Ok(changes
                .iter()
                .map(|c| {
                    if let Some((_, d)) = c.new_image.rsplit_once('@')
                        && let Some((commit, author)) = gitops::reverted(&repo, tip, d)
                    {
                        return Placement::Refused(format!(
                            "{d} was reverted in git by {author} ({}); quarantined until the tag moves",
                            &commit[..12.min(commit.len())]
                        ));
                    }
                    let (files, problems) = gitops::plan_edits(&repo, &tree, &t, std::slice::from_ref(c));
                    match (files.keys().next(), problems.first()) {
                        (Some(f), _) => Placement::File(f.clone()),
                        (None, Some(p)) => Placement::Refused(p.clone()),
                        (None, None) => Placement::AlreadyWritten,
                    }
                })
                .collect())
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        for (n, i) in idx.iter().enumerate() {
            let d = &mut decisions[*i];
            d.via = Some("git");
            d.repo = Some(target.repo.clone());
            d.branch = Some(target.branch.clone());
            d.git_path = Some(target.path.clone());
            match &placed {
                Ok(results) => match &results[n] {
                    Placement::File(file) => {
                        d.action = Action::Update;
                        d.file = Some(file.clone());
                        if d.argocd_blocked {
                            d.reason =
                                "managed by Argo CD: written to git for Argo CD to sync".into();
                        }
                    }
                    Placement::AlreadyWritten => {
                        d.action = Action::None;
                        d.reason = "already written in git; waiting for Argo CD to sync".into();
                    }
                    Placement::Refused(e) => {
                        d.action = Action::Skip;
                        d.reason = format!("git write-back: {e}");
                    }
                },
                Err(e) => {
                    d.action = Action::Skip;
                    d.reason = format!("git write-back: {e}");
                }
            }
        }
    }
}

/// Platforms of an inspected image, or why they could not be read.
type Inspected = std::result::Result<Vec<Platform>, String>;

/// Ask the registry everything the workloads need: tag lists, one HEAD per unique `name:tag`,
/// then an inspection of each update candidate's new digest (platforms).
async fn gather(ctx: &Context, workloads: &[Workload], platforms: &[Platform]) -> (Answers, usize) {
    let mut answers = Answers::default();
    let mut requests = 0;
    let mut resolve: BTreeSet<String> = BTreeSet::new();
    let mut tags: BTreeSet<String> = BTreeSet::new();
    for w in workloads {
        let n = policy::needs(&w.view);
        resolve.extend(n.resolve);
        tags.extend(n.tags);
    }
    let conc = ctx.registry_concurrency.max(1);
    let listed: Vec<(String, std::result::Result<Vec<String>, String>)> =
        futures::stream::iter(tags.into_iter().map(|name| {
            let reg = ctx.registry.clone();
            async move {
                let r = Reference::parse(&name).map_err(|e| e.to_string());
                let res = match r {
                    Ok(r) => reg
                        .tags(&r, &ferry_registry::TagsOptions::default())
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                (name, res)
            }
        }))
        .buffer_unordered(conc)
        .collect()
        .await;
    requests += listed.len();
    answers.tags.extend(listed);
    for w in workloads {
        resolve.extend(policy::semver_candidates(&w.view, &answers));
    }
    // (key, answer, whether the registry was actually asked)
    let resolved: Vec<(String, std::result::Result<TagFacts, String>, bool)> =
        futures::stream::iter(resolve.into_iter().map(|key| {
            let reg = ctx.registry.clone();
            let gate = ctx.rate_gate.clone();
            async move {
                let r = match Reference::parse(&key) {
                    Ok(r) => r,
                    Err(e) => return (key, Err(e.to_string()), false),
                };
                if let Err(why) = gate.check(r.registry()) {
                    return (key, Err(why), false);
                }
                let res = match reg.resolve(&r).await {
                    Ok(x) => {
                        gate.observe(r.registry(), x.rate_limit.as_ref());
                        Ok(TagFacts {
                            digest: x.digest,
                            platforms: None,
                        })
                    }
                    Err(e) => {
                        if let ferry_registry::Error::RateLimited { rate_limit, .. } = &e {
                            // A 429 means nothing is left, whatever the headers said.
                            let spent = ferry_registry::RateLimit {
                                remaining: Some(0),
                                ..rate_limit.clone().unwrap_or(ferry_registry::RateLimit {
                                    limit: None,
                                    remaining: None,
                                    window_seconds: None,
                                    source: None,
                                })
                            };
                            gate.observe(r.registry(), Some(&spent));
                        }
                        Err(e.to_string())
                    }
                };
                (key, res, true)
            }
        }))
        .buffer_unordered(conc)
        .collect()
        .await;
    requests += resolved.iter().filter(|(_, _, asked)| *asked).count();
    answers
        .resolved
        .extend(resolved.into_iter().map(|(k, r, _)| (k, r)));
    // Update candidates: inspect the new digests' platforms (a GET each, only when moving), and
    // read created times where a soak gate counts from them. Repeat while a pass finds more
    // (a created time can only be asked for once the platforms passed).
    let views: Vec<policy::WorkloadView> = workloads.iter().map(|w| w.view.clone()).collect();
    let gate = policy::Gate {
        now: unix_now(),
        workloads: &views,
    };
    for _ in 0..2 {
        let mut inspect: BTreeSet<String> = BTreeSet::new();
        let mut created: BTreeSet<String> = BTreeSet::new();
        for w in workloads {
            for d in policy::decide_gated(&w.view, &answers, platforms, &gate) {
                if let Some(k) = d.inspect.filter(|k| !answers.platforms.contains_key(k)) {
                    inspect.insert(k);
                }
                if let Some(k) = d
                    .created_needed
                    .filter(|k| !answers.created.contains_key(k))
                {
                    created.insert(k);
                }
            }
        }
        if inspect.is_empty() && created.is_empty() {
            break;
        }
        let inspected: Vec<(String, Inspected)> =
            futures::stream::iter(inspect.into_iter().map(|target| {
                let reg = ctx.registry.clone();
                async move {
                    let res = match Reference::parse(&target) {
                        Ok(r) => reg
                            .inspect(&r)
                            .await
                            .map(|i| i.platforms.into_iter().map(|p| p.platform).collect())
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    (target, res)
                }
            }))
            .buffer_unordered(conc)
            .collect()
            .await;
        requests += inspected.len();
        for (target, res) in inspected {
            match res {
                Ok(p) => {
                    answers.platforms.insert(target, p);
                }
                Err(e) => {
                    // Make every candidate on that digest a skip with the reason.
                    let digest = target
                        .rsplit_once('@')
                        .map(|(_, d)| d.to_string())
                        .unwrap_or_default();
                    for slot in answers.resolved.values_mut() {
                        if slot.as_ref().is_ok_and(|f| f.digest.to_string() == digest) {
                            *slot = Err(format!("inspecting the new image: {e}"));
                        }
                    }
                    answers.platforms.insert(target, Vec::new());
                }
            }
        }
        let times: Vec<(String, Option<u64>)> =
            futures::stream::iter(created.into_iter().map(|key| {
                let reg = ctx.registry.clone();
                async move {
                    let t = match Reference::parse(&key) {
                        Ok(r) => reg.created(&r).await.unwrap_or_else(|e| {
                            tracing::warn!(image = %key, error = %e, "cannot read created time");
                            None
                        }),
                        Err(_) => None,
                    };
                    (key, t)
                }
            }))
            .buffer_unordered(conc)
            .collect()
            .await;
        requests += times.len();
        answers.created.extend(times);
    }
    (answers, requests)
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
    /// Write-backs that failed, with the reason.
    pub failed: Vec<(String, String)>,
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
}

fn reporter() -> Reporter {
    Reporter {
        controller: "ferry".into(),
        instance: None,
    }
}

fn object_ref(w: &Workload) -> ObjectReference {
    let (api_version, kind) = match w.view.kind {
        Kind::CronJob => ("batch/v1", "CronJob"),
        k => ("apps/v1", k.as_str()),
    };
    ObjectReference {
        api_version: Some(api_version.into()),
        kind: Some(kind.into()),
        name: Some(w.view.name.clone()),
        namespace: Some(w.view.namespace.clone()),
        uid: w.uid.clone(),
        resource_version: w.resource_version.clone(),
        ..Default::default()
    }
}

async fn event(recorder: &Recorder, w: &Workload, warning: bool, reason: &str, note: String) {
    let ev = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: "Redeploy".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&ev, &object_ref(w)).await {
        tracing::warn!(workload = %w.view.id(), error = %e, "cannot record Event");
    }
}

/// Patch every update (one patch per workload), record baselines, publish Events, and with
/// `wait` watch each rollout, rolling a failed one back and quarantining its digest.
pub async fn apply(ctx: &Context, plan: &Plan, options: &ApplyOptions) -> Result<Applied> {
    let recorder = Recorder::new(ctx.client.clone(), reporter());
    let mut applied = Applied::default();
    // Git write-back first: one commit per repository (and branch) per pass.
    if let Some(g) = &ctx.gitops {
        let mut groups: BTreeMap<GitTarget, Vec<&Decision>> = BTreeMap::new();
        for d in plan
            .decisions
            .iter()
            .filter(|d| d.action == Action::Update && d.via == Some("git"))
        {
            let t = GitTarget {
                repo: d.repo.clone().unwrap_or_default(),
                branch: d.branch.clone().unwrap_or_default(),
                path: String::new(),
            };
            groups.entry(t).or_default().push(d);
        }
        for (t, ds) in groups {
            // Each workload keeps its own path; one commit for the whole repository and branch.
            let changes: Vec<gitops::ImageChange> = ds
                .iter()
                .map(|d| gitops::ImageChange {
                    path: Some(d.git_path.clone().unwrap_or_default()),
                    ..change_of(d)
                })
                .collect();
            {
                let target = t.clone();
                let config = g.config.clone();
                let tc = target.clone();
                let ch = changes.clone();
                let res =
                    tokio::task::spawn_blocking(move || gitops::write_back(&config, &tc, &ch))
                        .await;
                let outcome = match res {
                    Ok(r) => r.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                for c in &changes {
                    let Some(w) = plan.workloads.iter().find(|w| w.view.id() == c.workload) else {
                        continue;
                    };
                    match &outcome {
                        Ok(wb) => {
                            if let Some(commit) = &wb.commit {
                                event(
                                    &recorder,
                                    w,
                                    false,
                                    "CommittedToGit",
                                    format!(
                                        "{}: {} → {} in {} ({}) commit {}",
                                        c.container,
                                        c.old_image,
                                        c.new_image,
                                        target.repo,
                                        target.branch,
                                        &commit[..12.min(commit.len())]
                                    ),
                                )
                                .await;
                                applied.committed.push(format!("{} {}", c.workload, commit));
                            }
                        }
                        Err(e) => {
                            event(&recorder, w, true, "GitWriteBackFailed", e.clone()).await;
                            applied.failed.push((c.workload.clone(), e.clone()));
                        }
                    }
                }
            }
        }
    }
    for w in &plan.workloads {
        let mine: Vec<&Decision> = plan
            .decisions
            .iter()
            .filter(|d| {
                d.namespace == w.view.namespace
                    && d.kind == w.view.kind.as_str()
                    && d.name == w.view.name
            })
            .collect();
        for d in mine
            .iter()
            .filter(|d| d.action != Action::None || d.record_baseline.is_some())
        {
            tracing::info!(
                workload = %w.view.id(),
                container = %d.container,
                action = ?d.action,
                image = %d.image,
                target = d.target.as_deref().unwrap_or(""),
                reason = %d.reason,
                "decision"
            );
        }
        let updates: Vec<&&Decision> = mine
            .iter()
            .filter(|d| d.action == Action::Update && d.via.is_none())
            .collect();
        let baselines: Vec<&&Decision> = mine
            .iter()
            .filter(|d| d.record_baseline.is_some())
            .collect();
        let first_seen: Vec<&&Decision> = mine
            .iter()
            .filter(|d| d.record_first_seen.is_some())
            .collect();
        for d in mine
            .iter()
            .filter(|d| d.action == Action::Skip && d.target.is_some())
        {
            event(
                &recorder,
                w,
                true,
                "RedeploySkipped",
                format!("{}: {}", d.container, d.reason),
            )
            .await;
        }
        if updates.is_empty() && baselines.is_empty() && first_seen.is_empty() {
            continue;
        }
        let mut annotations = BTreeMap::new();
        let mut images = BTreeMap::new();
        if !updates.is_empty() {
            let mut prev =
                policy::parse_pairs(w.view.annotations.get(PREVIOUS_IMAGE).map(String::as_str));
            for d in &updates {
                prev.insert(d.container.clone(), vec![d.image.clone()]);
                images.insert(d.container.clone(), d.target.clone().unwrap_or_default());
            }
            annotations.insert(PREVIOUS_IMAGE.to_string(), policy::format_pairs(&prev));
        }
        if !baselines.is_empty() {
            let mut base =
                policy::parse_pairs(w.view.annotations.get(BASELINE).map(String::as_str));
            for d in &baselines {
                if let Some(b) = &d.record_baseline {
                    base.insert(d.container.clone(), vec![b.to_string()]);
                }
            }
            annotations.insert(BASELINE.to_string(), policy::format_pairs(&base));
        }
        if !first_seen.is_empty() {
            let mut seen = policy::parse_pairs(
                w.view
                    .annotations
                    .get(policy::FIRST_SEEN)
                    .map(String::as_str),
            );
            for d in &first_seen {
                if let Some(v) = &d.record_first_seen {
                    seen.insert(d.container.clone(), vec![v.clone()]);
                }
            }
            annotations.insert(policy::FIRST_SEEN.to_string(), policy::format_pairs(&seen));
        }
        if !updates.is_empty() {
            let now = unix_now();
            let mut rolled = policy::parse_pairs(
                w.view
                    .annotations
                    .get(policy::ROLLED_AT)
                    .map(String::as_str),
            );
            for d in &updates {
                if let Some((_, digest)) = d.target.as_deref().and_then(|t| t.rsplit_once('@')) {
                    rolled.insert(d.container.clone(), vec![format!("{digest}@{now}")]);
                }
            }
            annotations.insert(policy::ROLLED_AT.to_string(), policy::format_pairs(&rolled));
        }
        let patch = cluster::image_patch(w.view.kind, &w.view, &images, &annotations);
        cluster::patch_workload(
            &ctx.client,
            w.view.kind,
            &w.view.namespace,
            &w.view.name,
            &patch,
        )
        .await?;
        if updates.is_empty() {
            applied.baselines.push(w.view.id());
            continue;
        }
        let summary: Vec<String> = updates
            .iter()
            .map(|d| {
                format!(
                    "{}: {} → {}",
                    d.container,
                    d.image,
                    d.target.as_deref().unwrap_or("")
                )
            })
            .collect();
        event(&recorder, w, false, "Redeployed", summary.join("; ")).await;
        applied.updated.push(w.view.id());
        if options.wait
            && let Err(why) = wait_rollout(ctx, w, options).await
        {
            // Roll back: previous images, and quarantine the digests that failed.
            let mut back = BTreeMap::new();
            let mut quarantine =
                policy::parse_pairs(w.view.annotations.get(QUARANTINED).map(String::as_str));
            for d in &updates {
                back.insert(d.container.clone(), d.image.clone());
                if let Some(t) = d
                    .target
                    .as_deref()
                    .and_then(|t| Reference::parse(t).ok())
                    .and_then(|r| r.digest().cloned())
                {
                    quarantine
                        .entry(d.container.clone())
                        .or_default()
                        .push(t.to_string());
                }
            }
            let ann =
                BTreeMap::from([(QUARANTINED.to_string(), policy::format_pairs(&quarantine))]);
            let patch = cluster::image_patch(w.view.kind, &w.view, &back, &ann);
            cluster::patch_workload(
                &ctx.client,
                w.view.kind,
                &w.view.namespace,
                &w.view.name,
                &patch,
            )
            .await?;
            event(
                &recorder,
                w,
                true,
                "RolledBack",
                format!(
                    "{why}; restored {}",
                    back.iter()
                        .map(|(c, i)| format!("{c}={i}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .await;
            applied.rolled_back.push((w.view.id(), why));
        }
    }
    Ok(applied)
}

/// Wait until the rollout of `w` completes; `Err(reason)` when it fails or times out.
async fn wait_rollout(
    ctx: &Context,
    w: &Workload,
    options: &ApplyOptions,
) -> std::result::Result<(), String> {
    let timeout = options.rollout_timeout.unwrap_or(Duration::from_secs(600));
    let poll = options.poll.unwrap_or(Duration::from_secs(2));
    let start = tokio::time::Instant::now();
    let ns = &w.view.namespace;
    let name = &w.view.name;
    loop {
        let state = match w.view.kind {
            Kind::Deployment => {
                let d = Api::<Deployment>::namespaced(ctx.client.clone(), ns)
                    .get(name)
                    .await
                    .map_err(|e| e.to_string())?;
                let generation = d.metadata.generation.unwrap_or(0);
                let st = d.status.unwrap_or_default();
                let want = d.spec.and_then(|s| s.replicas).unwrap_or(1);
                if st.conditions.iter().flatten().any(|c| {
                    c.type_ == "Progressing"
                        && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
                }) {
                    return Err("rollout failed: ProgressDeadlineExceeded".into());
                }
                st.observed_generation.unwrap_or(0) >= generation
                    && st.updated_replicas.unwrap_or(0) >= want
                    && st.available_replicas.unwrap_or(0) >= want
                    && st.replicas.unwrap_or(0) <= want
            }
            Kind::StatefulSet => {
                let s = Api::<StatefulSet>::namespaced(ctx.client.clone(), ns)
                    .get(name)
                    .await
                    .map_err(|e| e.to_string())?;
                let generation = s.metadata.generation.unwrap_or(0);
                let st = s.status.unwrap_or_default();
                let want = s.spec.and_then(|s| s.replicas).unwrap_or(1);
                st.observed_generation.unwrap_or(0) >= generation
                    && st.updated_replicas.unwrap_or(0) >= want
                    && st.available_replicas.unwrap_or(0) >= want
            }
            Kind::DaemonSet => {
                let d = Api::<DaemonSet>::namespaced(ctx.client.clone(), ns)
                    .get(name)
                    .await
                    .map_err(|e| e.to_string())?;
                let generation = d.metadata.generation.unwrap_or(0);
                let st = d.status.unwrap_or_default();
                st.observed_generation.unwrap_or(0) >= generation
                    && st.updated_number_scheduled.unwrap_or(0) >= st.desired_number_scheduled
                    && st.number_available.unwrap_or(0) >= st.desired_number_scheduled
            }
            // A CronJob's next Job uses the new template; there is no rollout to watch.
            Kind::CronJob => true,
        };
        if state {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(format!("rollout did not complete within {timeout:?}"));
        }
        tokio::time::sleep(poll).await;
    }
}

/// Watch the four workload kinds and wake `notify` whenever one of them is added, changed or
/// deleted (after the initial listing), so the controller reacts to a new opt-in or a changed
/// image without waiting for the next interval. Errors are retried with kube-runtime's backoff.
pub fn spawn_watchers(
    client: &Client,
    namespaces: &Namespaces,
    notify: std::sync::Arc<tokio::sync::Notify>,
) -> Vec<tokio::task::JoinHandle<()>> {
    use kube::runtime::{WatchStreamExt, watcher};
    fn watch<K>(
        api: Api<K>,
        notify: std::sync::Arc<tokio::sync::Notify>,
    ) -> tokio::task::JoinHandle<()>
    where
        K: kube::Resource
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        tokio::spawn(async move {
            let mut stream =
                std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => notify.notify_one(),
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "watch interrupted; retrying"),
                }
            }
        })
    }
    let mut handles = Vec::new();
    let scopes: Vec<Option<String>> = match namespaces {
        Namespaces::All => vec![None],
        Namespaces::Only(list) => list.iter().cloned().map(Some).collect(),
    };
    for ns in scopes {
        macro_rules! api {
            ($k:ty) => {
                match &ns {
                    None => Api::<$k>::all(client.clone()),
                    Some(n) => Api::<$k>::namespaced(client.clone(), n),
                }
            };
        }
        handles.push(watch(api!(Deployment), notify.clone()));
        handles.push(watch(api!(StatefulSet), notify.clone()));
        handles.push(watch(api!(DaemonSet), notify.clone()));
        handles.push(watch(
            api!(k8s_openapi::api::batch::v1::CronJob),
            notify.clone(),
        ));
    }
    handles
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(remaining: u64, window: u64) -> ferry_registry::RateLimit {
        ferry_registry::RateLimit {
            limit: Some(100),
            remaining: Some(remaining),
            window_seconds: Some(window),
            source: None,
        }
    }

    #[test]
    fn the_rate_gate_closes_below_the_floor_until_the_window_passes() {
        let gate = RateGate::new(Some(10));
        assert!(gate.check("docker.io").is_ok());
        gate.observe("docker.io", Some(&rate(50, 3600)));
        assert!(gate.check("docker.io").is_ok());
        gate.observe("docker.io", Some(&rate(9, 3600)));
        let why = gate.check("docker.io").unwrap_err();
        assert!(why.contains("below the floor of 10"), "{why}");
        assert!(
            gate.check("ghcr.io").is_ok(),
            "other registries are not affected"
        );
        gate.observe("quay.io", Some(&rate(0, 0)));
        assert!(
            gate.check("quay.io").is_ok(),
            "a window of 0 s has already passed"
        );
        let open = RateGate::new(None);
        open.observe("docker.io", Some(&rate(0, 3600)));
        assert!(open.check("docker.io").is_ok());
    }
}

/// Options of [`run`].
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Time between passes (jittered by ±10 %).
    pub interval: Duration,
    /// Give up on a rollout after this long (then roll back).
    pub rollout_timeout: Duration,
    /// Leader election; `None` acts without a Lease (one replica only).
    pub lease: Option<crate::lease::LeaseLock>,
}

/// `interval` ± 10 %, from the clock's nanoseconds (no random generator needed).
fn jittered(interval: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    interval.mul_f64(0.9 + f64::from(nanos % 1000) / 1000.0 * 0.2)
}

/// The controller loop: while this replica holds the lease, a pass (plan, apply with the
/// health gate) every `interval`, or two seconds after a watched workload changed; the lease is
/// renewed while waiting. Returns when `stop` becomes true; a running pass — a rollback
/// included — always finishes first.
pub async fn run(
    ctx: &Context,
    options: &RunOptions,
    metrics: &crate::metrics::Metrics,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let stopping = || *stop.borrow();
    // Workload changes (a new opt-in, an edited image) wake the loop before the interval ends.
    let changed = std::sync::Arc::new(tokio::sync::Notify::new());
    let watchers = spawn_watchers(&ctx.client, &ctx.namespaces, changed.clone());
    let apply_options = ApplyOptions {
        wait: true,
        rollout_timeout: Some(options.rollout_timeout),
        poll: None,
    };
    while !stopping() {
        let leader = match &options.lease {
            None => true,
            Some(l) => l.try_acquire(&ctx.client).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "leader election failed");
                false
            }),
        };
        metrics.set_leader(leader);
        let wait = if leader {
            match plan(ctx).await {
                Ok(p) => match apply(ctx, &p, &apply_options).await {
                    Ok(applied) => {
                        let count =
                            |a: Action| p.decisions.iter().filter(|d| d.action == a).count() as u64;
                        metrics.pass(
                            count(Action::Update),
                            count(Action::Skip),
                            applied.rolled_back.len() as u64,
                            p.registry_requests as u64,
                        );
                    }
                    Err(e) => {
                        metrics.pass_error();
                        tracing::warn!(error = %e, "pass failed while applying");
                    }
                },
                Err(e) => {
                    metrics.pass_error();
                    tracing::warn!(error = %e, "pass failed while planning");
                }
            }
            jittered(options.interval)
        } else {
            Duration::from_secs(5)
        };
        // Sleep in slices, renewing the lease, until the next pass, a change, or a shutdown.
        let until = tokio::time::Instant::now() + wait;
        while !stopping() && tokio::time::Instant::now() < until {
            let slice = (until - tokio::time::Instant::now()).min(Duration::from_secs(5));
            let mut rx = stop.clone();
            let mut woken = false;
            tokio::select! {
                _ = tokio::time::sleep(slice) => {}
                _ = rx.changed() => {}
                _ = changed.notified(), if leader => woken = true,
            }
            if woken {
                // A short pause gathers a burst of events into one pass.
                tokio::time::sleep(Duration::from_secs(2)).await;
                break;
            }
            if let (Some(l), true) = (&options.lease, leader)
                && !stopping()
                && !l.try_acquire(&ctx.client).await.unwrap_or(false)
            {
                metrics.set_leader(false);
                break;
            }
        }
    }
    for w in watchers {
        w.abort();
    }
}
