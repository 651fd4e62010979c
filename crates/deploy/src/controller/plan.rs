//! Planning a pass: read the cluster, gather registry answers (per set of pull secrets, on the
//! controller's one registry client), decide, route git updates. Writes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use ferry_core::duration::unix_now;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};

use super::gather::gather;
use super::{Context, place};
use crate::cluster::{self, Workload};
use crate::error::Result;
use crate::policy::{
    self, Action, Application, AppsUnreadable, ArgoApps, Decision, Failure, Gate, PolicyError,
    Query, Reason, Unavailable, WorkloadPolicy, WorkloadView,
};
use crate::status::RegistryCredential;
use crate::webhook::ImageHint;

/// The result of planning.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Every workload read.
    pub workloads: Vec<Workload>,
    /// One decision per container of every workload.
    pub decisions: Vec<Decision>,
    /// Registry requests made (HEADs, tag lists, inspections).
    pub registry_requests: usize,
    /// Per opted-in workload (by id): where the credential of each registry its images come
    /// from was found.
    pub credentials: BTreeMap<String, Vec<RegistryCredential>>,
}

/// The pull secrets a workload's pods get: the pod template's `imagePullSecrets`, else its
/// ServiceAccount's (`service_account` set). Default (none) for workloads that did not opt in
/// (their secrets are never read) and for ServiceAccounts that name none.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
struct PullSecrets {
    namespace: String,
    service_account: Option<String>,
    names: Vec<String>,
}

/// Which workloads a pass decides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every workload.
    #[default]
    All,
    /// Only workloads with a container image in one of these repositories (a webhook said
    /// they were pushed; the registry is still asked for the digest as in every pass).
    Images(Vec<ImageHint>),
}

impl Scope {
    /// Whether `w` is in scope.
    pub fn includes(&self, w: &Workload) -> bool {
        let Scope::Images(hints) = self else {
            return true;
        };
        w.view
            .containers
            .iter()
            .filter_map(|c| c.image.parsed())
            .any(|r| hints.iter().any(|h| h.matches(r)))
    }
}

/// Read the cluster and the registry and decide, writing nothing.
pub async fn plan(ctx: &Context) -> Result<Plan> {
    plan_scoped(ctx, &Scope::All).await
}

/// [`plan`] for the workloads in `scope` only (the others are read, for promote-from gates,
/// but neither decided nor asked about).
pub async fn plan_scoped(ctx: &Context, scope: &Scope) -> Result<Plan> {
    let mut workloads = cluster::list_workloads(&ctx.client, &ctx.namespaces).await?;
    if !workloads.iter().any(|w| scope.includes(w)) {
        return Ok(Plan {
            workloads: Vec::new(),
            decisions: Vec::new(),
            registry_requests: 0,
            credentials: BTreeMap::new(),
        });
    }
    // Annotations are parsed once per workload and pass.
    let policies: BTreeMap<String, std::result::Result<WorkloadPolicy, PolicyError>> = workloads
        .iter()
        .map(|w| (w.view.id(), WorkloadPolicy::parse(&w.view)))
        .collect();
    let opted: BTreeSet<String> = workloads
        .iter()
        .filter(|w| matches!(policies.get(&w.view.id()), Some(Ok(p)) if p.opts_in(&w.view)))
        .map(|w| w.view.id())
        .collect();
    let platforms = read_running(ctx, &mut workloads, &opted).await?;
    let views: Vec<WorkloadView> = workloads.iter().map(|w| w.view.clone()).collect();
    workloads.retain(|w| scope.includes(w));
    let argocd = argo_applications(ctx, &workloads, &opted).await;
    let gate = Gate {
        now: unix_now(),
        workloads: &views,
        argocd: &argocd,
        git_write_back: ctx.gitops.is_some(),
        write_branch: ctx.gitops.as_ref().and_then(|g| g.write_branch.as_deref()),
        pull_requests: ctx.gitops.as_ref().and_then(|g| g.pull_requests.as_ref()),
        sets_image: crate::helm::SETS_IMAGE,
        signed: ctx.signatures.gate(),
    };
    let (mut decisions, requests, credentials) =
        decide_all(ctx, &workloads, &policies, &opted, &platforms, &gate).await;
    if let Some(g) = &ctx.gitops {
        place::place(g, &mut decisions).await;
    }
    Ok(Plan {
        workloads,
        decisions,
        registry_requests: requests,
        credentials,
    })
}

/// What the pods of opted-in workloads run, and the platforms of the cluster's nodes (pods,
/// nodes and pull secrets are only read for workloads that opted in).
async fn read_running(
    ctx: &Context,
    workloads: &mut [Workload],
    opted: &BTreeSet<String>,
) -> Result<Vec<ferry_core::Platform>> {
    let mut running: Vec<&mut Workload> = workloads
        .iter_mut()
        .filter(|w| opted.contains(&w.view.id()))
        .collect();
    cluster::fill_running(&ctx.client, &mut running).await?;
    if opted.is_empty() {
        return Ok(Vec::new());
    }
    cluster::node_platforms(&ctx.client).await
}

/// With each workload's parsed annotations, gather registry answers per set of pull secrets and
/// decide; one skip row for a workload whose annotations do not parse. (decisions, requests,
/// credential sources of opted-in workloads)
async fn decide_all(
    ctx: &Context,
    workloads: &[Workload],
    policies: &BTreeMap<String, std::result::Result<WorkloadPolicy, PolicyError>>,
    opted: &BTreeSet<String>,
    platforms: &[ferry_core::Platform],
    gate: &Gate<'_>,
) -> (
    Vec<Decision>,
    usize,
    BTreeMap<String, Vec<RegistryCredential>>,
) {
    let mut groups: BTreeMap<PullSecrets, Vec<(&Workload, &WorkloadPolicy)>> = BTreeMap::new();
    let mut by_workload: BTreeMap<String, Vec<Decision>> = BTreeMap::new();
    let mut accounts = HashMap::new();
    for w in workloads {
        match policies.get(&w.view.id()) {
            Some(Ok(p)) => {
                let key = if opted.contains(&w.view.id()) {
                    pull_secrets(ctx, w, &mut accounts).await
                } else {
                    PullSecrets::default()
                };
                groups.entry(key).or_default().push((w, p));
            }
            Some(Err(e)) => {
                let row = Decision::row(
                    &w.view,
                    "",
                    &Default::default(),
                    Action::Skip,
                    Reason::Policy(e.clone()),
                );
                by_workload.insert(w.view.id(), vec![row]);
            }
            None => {}
        }
    }
    let mut requests = 0;
    let mut applications = HashMap::new();
    let mut credentials = BTreeMap::new();
    for (secrets, members) in groups {
        let registry = registry_for(ctx, &secrets).await;
        let opted_members = members.iter().filter(|(w, _)| opted.contains(&w.view.id()));
        credentials.extend(credential_sources(&registry, opted_members).await);
        let got = gather(&registry, ctx, &members, platforms, gate).await;
        requests += got.requests;
        let mut answers = got.answers;
        for (w, p) in &members {
            for q in policy::queries(&w.view, p, &answers, platforms, gate) {
                if let Query::Application(app) = q {
                    let spec = application(ctx, &app, &mut applications).await;
                    answers.applications.insert(app, spec);
                }
            }
        }
        for (w, p) in members {
            let d = policy::decide_with(&w.view, p, &answers, platforms, gate);
            by_workload.insert(w.view.id(), d);
        }
    }
    let decisions = workloads
        .iter()
        .flat_map(|w| by_workload.remove(&w.view.id()).unwrap_or_default())
        .collect();
    (decisions, requests, credentials)
}

/// Where `registry` finds the credential of each registry the workloads' images come from
/// (asked once per registry), by workload id.
async fn credential_sources<'a>(
    registry: &ferry_registry::Client,
    members: impl Iterator<Item = &'a (&'a Workload, &'a WorkloadPolicy)>,
) -> BTreeMap<String, Vec<RegistryCredential>> {
    let mut said: BTreeMap<String, String> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (w, _) in members {
        let mut mine = Vec::new();
        let hosts: BTreeSet<String> = w
            .view
            .containers
            .iter()
            .filter_map(|c| c.image.parsed())
            .map(|r| r.registry().to_string())
            .collect();
        for host in hosts {
            if !said.contains_key(&host) {
                let source = match registry.credential_source(&host).await {
                    Ok(Some(s)) => s.to_string(),
                    Ok(None) => "anonymous".to_string(),
                    Err(e) => format!("cannot look it up: {e}"),
                };
                said.insert(host.clone(), source);
            }
            let source = said.get(&host).cloned().unwrap_or_default();
            mine.push(RegistryCredential {
                registry: host,
                source,
            });
        }
        out.insert(w.view.id(), mine);
    }
    out
}

/// The Argo CD Application `app` (read once per pass): its spec, or why it cannot be used.
async fn application(
    ctx: &Context,
    app: &str,
    read: &mut HashMap<String, Application>,
) -> Application {
    if let Some(a) = read.get(app) {
        return a.clone();
    }
    let ns = &ctx.argocd_namespace;
    let gvk = GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application");
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), ns, &ApiResource::from_gvk(&gvk));
    let unavailable = |error| {
        Application::Unavailable(Unavailable {
            namespace: ns.clone(),
            name: app.to_string(),
            error,
        })
    };
    let answer = match api.get_opt(app).await {
        Ok(Some(o)) => Application::Spec(o.data.get("spec").cloned().unwrap_or_default()),
        Ok(None) => unavailable(None),
        Err(e) => unavailable(Some(Failure::from(e))),
    };
    read.insert(app.to_string(), answer.clone());
    answer
}

/// What `w`'s pods pull with: its template's `imagePullSecrets`, else those of its
/// ServiceAccount (read once per pass and namespace; one that cannot be read is logged and
/// counts as naming none, as a pod's admission would not add any either).
async fn pull_secrets(
    ctx: &Context,
    w: &Workload,
    accounts: &mut HashMap<(String, String), Vec<String>>,
) -> PullSecrets {
    let namespace = w.view.namespace.clone();
    if !w.pull_secrets.is_empty() {
        let mut names = w.pull_secrets.clone();
        names.sort();
        names.dedup();
        return PullSecrets {
            namespace,
            service_account: None,
            names,
        };
    }
    let key = (namespace.clone(), w.service_account.clone());
    if !accounts.contains_key(&key) {
        let names = match cluster::service_account_pull_secrets(&ctx.client, &key.0, &key.1).await {
            Ok(names) => names.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(namespace = %key.0, service_account = %key.1, error = %e, "cannot read ServiceAccount; using no pull secrets");
                Vec::new()
            }
        };
        accounts.insert(key.clone(), names);
    }
    let names = accounts.get(&key).cloned().unwrap_or_default();
    if names.is_empty() {
        return PullSecrets::default();
    }
    PullSecrets {
        namespace,
        service_account: Some(key.1),
        names,
    }
}

/// The controller's registry client with `secrets` applied to its requests (ferry's own
/// credentials stay behind them).
async fn registry_for(ctx: &Context, secrets: &PullSecrets) -> ferry_registry::Client {
    if secrets.names.is_empty() {
        return ctx.registry.clone();
    }
    let stores = cluster::pull_secret_credentials(
        &ctx.client,
        &secrets.namespace,
        &secrets.names,
        secrets.service_account.as_deref(),
    )
    .await;
    ctx.registry
        .with_credentials(Arc::new(ferry_registry::ChainCredentials(stores)))
}

/// The Argo CD Applications, read only when an opted-in workload carries the instance label
/// without the tracking annotation (the label alone may be Helm's). Argo CD not installed (the
/// resource is unknown: 404) means none; any other error is kept as the reason.
async fn argo_applications(
    ctx: &Context,
    workloads: &[Workload],
    opted: &BTreeSet<String>,
) -> ArgoApps {
    let label_only = workloads
        .iter()
        .any(|w| opted.contains(&w.view.id()) && w.view.argocd_label_only());
    if !label_only {
        return ArgoApps::NotRead;
    }
    let gvk = GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application");
    let ar = ApiResource::from_gvk(&gvk);
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &ctx.argocd_namespace, &ar);
    match crate::cluster::list_all(&api).await {
        Ok(list) => ArgoApps::Known(list.into_iter().filter_map(|a| a.metadata.name).collect()),
        Err(kube::Error::Api(e)) if e.code == 404 => ArgoApps::Known(BTreeSet::new()),
        Err(e) => ArgoApps::Unreadable(AppsUnreadable {
            namespace: ctx.argocd_namespace.clone(),
            error: Failure::from(e),
        }),
    }
}
