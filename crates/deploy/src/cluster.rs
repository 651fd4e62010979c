//! Reading workloads, nodes and pods from the Kubernetes API, and the minimal patches ferry
//! writes. The IO seam is `kube::Client`: tests build it on a tower-test mock or point it at a
//! fake HTTP API server.

use std::collections::{BTreeMap, BTreeSet};

use ferry_core::{Digest, Platform};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Node, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, Resource};
use serde_json::{Value, json};

use crate::error::Result;
use crate::policy::{ContainerView, Image, Kind, WorkloadView};

/// The field manager ferry patches with.
pub const FIELD_MANAGER: &str = "ferry";

/// Which namespaces to look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Namespaces {
    /// Every namespace the credentials can list.
    #[default]
    All,
    /// These namespaces.
    Only(Vec<String>),
}

/// A workload as read, with what is needed to write it back.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The view the policy works on.
    pub view: WorkloadView,
    /// `spec.selector.matchLabels` (to find its pods).
    pub selector: BTreeMap<String, String>,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// `metadata.uid`, for Events.
    pub uid: Option<String>,
    /// `metadata.resourceVersion`.
    pub resource_version: Option<String>,
    /// `imagePullSecrets` of the pod template.
    pub pull_secrets: Vec<String>,
    /// The pods' ServiceAccount: `serviceAccountName` (or the deprecated `serviceAccount`),
    /// else `default`. Its `imagePullSecrets` are the pods' when the template names none.
    pub service_account: String,
}

fn view_of(kind: Kind, meta: &ObjectMeta, pod: Option<&PodSpec>) -> WorkloadView {
    let mut containers = Vec::new();
    if let Some(spec) = pod {
        for c in spec.init_containers.iter().flatten() {
            containers.push(ContainerView {
                name: c.name.clone(),
                image: Image::new(c.image.clone().unwrap_or_default()),
                init: true,
            });
        }
        for c in &spec.containers {
            containers.push(ContainerView {
                name: c.name.clone(),
                image: Image::new(c.image.clone().unwrap_or_default()),
                init: false,
            });
        }
    }
    WorkloadView {
        kind,
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        annotations: meta.annotations.clone().unwrap_or_default(),
        labels: meta.labels.clone().unwrap_or_default(),
        containers,
        running: BTreeMap::new(),
        healthy: None,
    }
}

/// Complete and available: every wanted replica updated and available, status current.
fn healthy(
    generation: Option<i64>,
    observed: Option<i64>,
    want: i32,
    updated: Option<i32>,
    available: Option<i32>,
) -> Option<bool> {
    Some(
        observed.unwrap_or(0) >= generation.unwrap_or(0)
            && updated.unwrap_or(0) >= want
            && available.unwrap_or(0) >= want,
    )
}

fn workload(
    kind: Kind,
    meta: &ObjectMeta,
    template: Option<&PodTemplateSpec>,
    selector: Option<&LabelSelector>,
) -> Workload {
    Workload {
        view: view_of(kind, meta, template.and_then(|t| t.spec.as_ref())),
        selector: selector
            .and_then(|s| s.match_labels.clone())
            .unwrap_or_default(),
        generation: meta.generation,
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        pull_secrets: template
            .and_then(|t| t.spec.as_ref())
            .and_then(|s| s.image_pull_secrets.as_ref())
            .map(|v| {
                v.iter()
                    .map(|r| r.name.clone())
                    .filter(|n| !n.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        service_account: template
            .and_then(|t| t.spec.as_ref())
            .and_then(|s| {
                s.service_account_name
                    .clone()
                    .or_else(|| s.service_account.clone())
            })
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".to_string()),
    }
}

/// How many objects one list request asks for (client-go's pager uses 500 too).
pub const LIST_PAGE: u32 = 500;

/// Every object `api` lists, a page of [`LIST_PAGE`] at a time (`limit` + `continue`, as
/// client-go's pager does), so neither the API server nor ferry holds a whole large list in one
/// response. When a continue token has expired (410 Gone: the pages would no longer be one
/// consistent snapshot) the list starts over as one unpaginated request, as client-go does.
pub async fn list_all<K>(api: &Api<K>) -> kube::Result<Vec<K>>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    list_map(api, Some).await
}

/// [`list_all`], keeping `keep(object)` of each object as its page arrives (and dropping the
/// objects themselves), so that a large list is never held whole in its full form.
pub async fn list_map<K, T>(
    api: &Api<K>,
    mut keep: impl FnMut(K) -> Option<T>,
) -> kube::Result<Vec<T>>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(LIST_PAGE);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = match api.list(&lp).await {
            Ok(page) => page,
            Err(kube::Error::Api(e)) if e.code == 410 && token.is_some() => {
                let all = api.list(&ListParams::default()).await?;
                return Ok(all.items.into_iter().filter_map(keep).collect());
            }
            Err(e) => return Err(e),
        };
        out.extend(page.items.into_iter().filter_map(&mut keep));
        match page.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(next) => token = Some(next),
            None => return Ok(out),
        }
    }
}

/// Every `K` in `ns`, each kept as `keep` makes it.
async fn list_kind<K, T>(
    client: &Client,
    ns: &Namespaces,
    keep: impl FnMut(K) -> Option<T>,
) -> Result<Vec<T>>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    match ns {
        Namespaces::All => Ok(list_map(&Api::<K>::all(client.clone()), keep).await?),
        Namespaces::Only(list) => {
            let mut keep = keep;
            let mut out = Vec::new();
            for n in list {
                let api = Api::<K>::namespaced(client.clone(), n);
                out.extend(list_map(&api, &mut keep).await?);
            }
            Ok(out)
        }
    }
}

/// Every Deployment, StatefulSet, DaemonSet and CronJob in `ns`, converted page by page.
pub async fn list_workloads(client: &Client, ns: &Namespaces) -> Result<Vec<Workload>> {
    let mut out = list_kind(client, ns, |d: Deployment| Some(deployment(&d))).await?;
    out.extend(list_kind(client, ns, |s: StatefulSet| Some(stateful_set(&s))).await?);
    out.extend(list_kind(client, ns, |d: DaemonSet| Some(daemon_set(&d))).await?);
    out.extend(list_kind(client, ns, |c: CronJob| Some(cron_job(&c))).await?);
    out.sort_by_key(|a| a.view.id());
    Ok(out)
}

/// The rollout counts a workload reports: (observed generation, wanted, updated, available).
type Counts = (Option<i64>, i32, Option<i32>, Option<i32>);

/// A workload with a pod template and a selector, and its health from `counts`.
fn rolled(
    kind: Kind,
    meta: &ObjectMeta,
    template: Option<&PodTemplateSpec>,
    selector: Option<&LabelSelector>,
    counts: Option<Counts>,
) -> Workload {
    let mut w = workload(kind, meta, template, selector);
    if let Some((observed, want, updated, available)) = counts {
        w.view.healthy = healthy(meta.generation, observed, want, updated, available);
    }
    w
}

fn deployment(d: &Deployment) -> Workload {
    let spec = d.spec.as_ref();
    let want = spec.and_then(|s| s.replicas).unwrap_or(1);
    let counts = d.status.as_ref().map(|st| {
        let (o, u, a) = (
            st.observed_generation,
            st.updated_replicas,
            st.available_replicas,
        );
        (o, want, u, a)
    });
    let (template, selector) = (spec.map(|s| &s.template), spec.map(|s| &s.selector));
    rolled(Kind::Deployment, &d.metadata, template, selector, counts)
}

fn stateful_set(d: &StatefulSet) -> Workload {
    let spec = d.spec.as_ref();
    let want = spec.and_then(|s| s.replicas).unwrap_or(1);
    let counts = d.status.as_ref().map(|st| {
        let (o, u, a) = (
            st.observed_generation,
            st.updated_replicas,
            st.available_replicas,
        );
        (o, want, u, a)
    });
    let (template, selector) = (spec.map(|s| &s.template), spec.map(|s| &s.selector));
    rolled(Kind::StatefulSet, &d.metadata, template, selector, counts)
}

fn daemon_set(d: &DaemonSet) -> Workload {
    let spec = d.spec.as_ref();
    let counts = d.status.as_ref().map(|st| {
        let want = st.desired_number_scheduled;
        (
            st.observed_generation,
            want,
            st.updated_number_scheduled,
            st.number_available,
        )
    });
    let (template, selector) = (spec.map(|s| &s.template), spec.map(|s| &s.selector));
    rolled(Kind::DaemonSet, &d.metadata, template, selector, counts)
}

fn cron_job(c: &CronJob) -> Workload {
    let template = c
        .spec
        .as_ref()
        .and_then(|s| s.job_template.spec.as_ref())
        .map(|j| &j.template);
    workload(Kind::CronJob, &c.metadata, template, None)
}

/// The platforms of the schedulable nodes (`kubernetes.io/os` / `kubernetes.io/arch` labels,
/// else `status.nodeInfo`).
pub async fn node_platforms(client: &Client) -> Result<Vec<Platform>> {
    let nodes = list_all(&Api::<Node>::all(client.clone())).await?;
    let mut set: BTreeSet<(String, String)> = BTreeSet::new();
    for n in nodes {
        if n.spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false)
        {
            continue;
        }
        let labels = n.metadata.labels.clone().unwrap_or_default();
        let info = n.status.as_ref().and_then(|s| s.node_info.as_ref());
        let os = labels
            .get("kubernetes.io/os")
            .cloned()
            .or_else(|| info.map(|i| i.operating_system.clone()));
        let arch = labels
            .get("kubernetes.io/arch")
            .cloned()
            .or_else(|| info.map(|i| i.architecture.clone()));
        if let (Some(os), Some(arch)) = (os, arch) {
            set.insert((os, arch));
        }
    }
    Ok(set
        .into_iter()
        .map(|(os, arch)| Platform::new(&os, &arch, None))
        .collect())
}

/// Fill `running` for workloads with unpinned managed images: the digest each container's pods
/// report (`imageID`), when all of them agree. One pod list per namespace.
pub async fn fill_running(client: &Client, workloads: &mut [&mut Workload]) -> Result<()> {
    // The namespaces to list pods in, each with its workloads that have a selector (grouped
    // once, not searched again per namespace).
    let mut by_ns: BTreeMap<String, (bool, Vec<&mut Workload>)> = BTreeMap::new();
    for w in workloads.iter_mut().filter(|w| !w.selector.is_empty()) {
        let unpinned = w
            .view
            .containers
            .iter()
            .any(|c| !c.image.as_str().contains('@'));
        let entry = by_ns.entry(w.view.namespace.clone()).or_default();
        entry.0 |= unpinned;
        entry.1.push(w);
    }
    for (ns, (_, members)) in by_ns.into_iter().filter(|(_, (needed, _))| *needed) {
        let pods = list_all(&Api::<Pod>::namespaced(client.clone(), &ns)).await?;
        for w in members {
            let mine: Vec<&Pod> = pods
                .iter()
                .filter(|p| {
                    let labels = p.metadata.labels.as_ref();
                    w.selector
                        .iter()
                        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
                })
                .collect();
            let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for p in &mine {
                let status = p.status.as_ref();
                let all = status
                    .and_then(|s| s.container_statuses.clone())
                    .into_iter()
                    .flatten()
                    .chain(
                        status
                            .and_then(|s| s.init_container_statuses.clone())
                            .into_iter()
                            .flatten(),
                    );
                for cs in all {
                    if let Some((_, d)) = cs.image_id.rsplit_once('@') {
                        seen.entry(cs.name.clone())
                            .or_default()
                            .insert(d.to_string());
                    }
                }
            }
            for (name, digests) in seen {
                if digests.len() == 1
                    && let Some(d) = digests.iter().next().and_then(|d| Digest::parse(d).ok())
                {
                    w.view.running.insert(name, d);
                }
            }
        }
    }
    Ok(())
}

/// The `imagePullSecrets` names of ServiceAccount `namespace/name`: `Ok(None)` when it does
/// not exist.
pub async fn service_account_pull_secrets(
    client: &Client,
    namespace: &str,
    name: &str,
) -> kube::Result<Option<Vec<String>>> {
    let api: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), namespace);
    Ok(api.get_opt(name).await?.map(|sa| {
        sa.image_pull_secrets
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.name)
            .filter(|n| !n.is_empty())
            .collect()
    }))
}

/// A pull secret that could not be used: no credentials, but errors say where ferry looked.
#[derive(Debug)]
pub struct UnusableSecret(pub String);

impl ferry_registry::CredentialStore for UnusableSecret {
    fn get(&self, _registry: &str) -> ferry_registry::Result<Option<ferry_registry::Credential>> {
        Ok(None)
    }

    fn searched(&self) -> Option<String> {
        Some(self.0.clone())
    }
}

/// Registry credentials from the `kubernetes.io/dockerconfigjson` pull secrets `names` in
/// `namespace`, named by ServiceAccount `via` when given (so sources and errors say so). A
/// secret that is missing or unreadable is logged and left out — public images must keep
/// working — and is named in the errors of registries that then refuse anonymous access.
pub async fn pull_secret_credentials(
    client: &Client,
    namespace: &str,
    names: &[String],
    via: Option<&str>,
) -> Vec<std::sync::Arc<dyn ferry_registry::CredentialStore>> {
    let ns = namespace;
    let named_by = via.map_or(String::new(), |sa| {
        format!(" (imagePullSecrets of ServiceAccount {ns}/{sa})")
    });
    let mut out: Vec<std::sync::Arc<dyn ferry_registry::CredentialStore>> = Vec::new();
    for name in names {
        let origin = format!("secret {ns}/{name}{named_by}");
        let problem = match read_pull_secret(client, ns, name).await {
            Ok(bytes) => match ferry_registry::DockerConfig::from_json(&bytes) {
                Ok(c) => {
                    out.push(std::sync::Arc::new(c.with_origin(origin)));
                    continue;
                }
                Err(e) => SecretProblem::NotADockerConfig(e),
            },
            Err(problem) => problem,
        };
        tracing::warn!(namespace = %ns, secret = %name, via, %problem, "imagePullSecret not used");
        out.push(std::sync::Arc::new(UnusableSecret(format!(
            "{origin}: {problem}"
        ))));
    }
    out
}

/// Why a pull secret gives no credentials (logged, and named where ferry looked).
#[derive(Debug)]
enum SecretProblem {
    NotFound,
    Unreadable(kube::Error),
    NoDockerConfigJson,
    NotADockerConfig(ferry_registry::Error),
}

impl std::fmt::Display for SecretProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretProblem::NotFound => f.write_str("not found"),
            SecretProblem::Unreadable(e) => write!(f, "cannot be read: {e}"),
            SecretProblem::NoDockerConfigJson => f.write_str("has no .dockerconfigjson"),
            SecretProblem::NotADockerConfig(e) => write!(f, "not a docker config: {e}"),
        }
    }
}

/// The `.dockerconfigjson` of Secret `ns/name`, or why there is none.
async fn read_pull_secret(
    client: &Client,
    ns: &str,
    name: &str,
) -> std::result::Result<Vec<u8>, SecretProblem> {
    let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), ns);
    match api.get_opt(name).await {
        Ok(Some(secret)) => secret
            .data
            .and_then(|mut d| d.remove(".dockerconfigjson"))
            .map(|b| b.0)
            .ok_or(SecretProblem::NoDockerConfigJson),
        Ok(None) => Err(SecretProblem::NotFound),
        Err(e) => Err(SecretProblem::Unreadable(e)),
    }
}

/// The strategic-merge patch that sets `images` (container → image) in the pod template and the
/// given workload annotations. Nothing else is sent.
pub fn image_patch(
    kind: Kind,
    view: &WorkloadView,
    images: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Value {
    let mut containers = Vec::new();
    let mut init = Vec::new();
    for c in &view.containers {
        if let Some(img) = images.get(&c.name) {
            let entry = json!({"name": c.name, "image": img});
            if c.init {
                init.push(entry)
            } else {
                containers.push(entry)
            }
        }
    }
    let mut pod_spec = serde_json::Map::new();
    if !containers.is_empty() {
        pod_spec.insert("containers".into(), Value::Array(containers));
    }
    if !init.is_empty() {
        pod_spec.insert("initContainers".into(), Value::Array(init));
    }
    let template = json!({"spec": Value::Object(pod_spec)});
    let spec = match kind {
        Kind::CronJob => json!({"jobTemplate": {"spec": {"template": template}}}),
        _ => json!({"template": template}),
    };
    let mut patch = serde_json::Map::new();
    if !annotations.is_empty() {
        patch.insert("metadata".into(), json!({"annotations": annotations}));
    }
    if !images.is_empty() {
        patch.insert("spec".into(), spec);
    }
    Value::Object(patch)
}

/// Apply a strategic-merge patch to a workload with field manager `ferry`.
pub async fn patch_workload(
    client: &Client,
    kind: Kind,
    namespace: &str,
    name: &str,
    patch: &Value,
) -> Result<()> {
    let pp = PatchParams::apply(FIELD_MANAGER);
    let pp = PatchParams { force: false, ..pp };
    let p = Patch::Strategic(patch);
    match kind {
        Kind::Deployment => {
            Api::<Deployment>::namespaced(client.clone(), namespace)
                .patch(name, &pp, &p)
                .await?;
        }
        Kind::StatefulSet => {
            Api::<StatefulSet>::namespaced(client.clone(), namespace)
                .patch(name, &pp, &p)
                .await?;
        }
        Kind::DaemonSet => {
            Api::<DaemonSet>::namespaced(client.clone(), namespace)
                .patch(name, &pp, &p)
                .await?;
        }
        Kind::CronJob => {
            Api::<CronJob>::namespaced(client.clone(), namespace)
                .patch(name, &pp, &p)
                .await?;
        }
    }
    Ok(())
}
