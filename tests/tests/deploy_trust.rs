//! ferry-deploy in a cluster it must not harm: one writer (the Lease renewed in the background,
//! every write fenced), failures that stay with their workload, and the git write-back health
//! gate with a revert commit on a real `git daemon`.
//!
//! No Kubernetes API server can run here, so the API is a stateful fake: a tower service behind
//! `kube::Client` (kube-rs's own test seam) that keeps a Lease with optimistic concurrency
//! (resourceVersion), serves Deployments whose status the test scripts, and records every write
//! with the replica that made it and when.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_core::{Digest, Reference};
use ferry_deploy::cluster::{Namespaces, Workload};
use ferry_deploy::controller::{self, ApplyOptions, Context, GitOps, Plan, Stage};
use ferry_deploy::gitops::WriteBackConfig;
use ferry_deploy::lease::{Leadership, LeaseLock};
use ferry_deploy::policy::{
    Action, ContainerView, Decision, GitEdit, GitRoute, Kind, Reason, Route, WorkloadView,
};
use ferry_tests::{GitDaemon, GitRepo, git_in};
use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use tokio::time::Instant;

/// One write the fake API received.
#[derive(Debug, Clone)]
struct Write {
    replica: String,
    method: String,
    path: String,
    body: Value,
    at: Instant,
}

#[derive(Default)]
struct State {
    lease: Option<Value>,
    lease_rv: u64,
    /// Replicas whose Lease updates are refused with 409 (another writer won).
    lease_conflicts: Vec<String>,
    /// Deployment name → status JSON served by GET.
    status: BTreeMap<String, Value>,
    /// Deployment name → container images in the served pod template.
    template: BTreeMap<String, BTreeMap<String, String>>,
    /// Deployment name → HTTP status for PATCH (default 200). A list: one per PATCH, last repeats.
    patch_codes: BTreeMap<String, Vec<u16>>,
    writes: Vec<Write>,
    renew_times: Vec<String>,
}

#[derive(Clone, Default)]
struct FakeApi(Arc<Mutex<State>>);

impl FakeApi {
    fn client(&self, replica: &str) -> kube::Client {
        let api = self.clone();
        let replica = replica.to_string();
        let svc = tower::service_fn(move |req: Request<Body>| {
            let (api, replica) = (api.clone(), replica.clone());
            async move {
                let (parts, body) = req.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let (code, reply) =
                    api.handle(&replica, parts.method.as_str(), parts.uri.path(), body);
                let resp = Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                    .unwrap();
                Ok::<_, Infallible>(resp)
            }
        });
        kube::Client::new(svc, "default")
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap()
    }

    fn handle(&self, replica: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
        let mut s = self.state();
        if method != "GET" {
            s.writes.push(Write {
                replica: replica.into(),
                method: method.into(),
                path: path.into(),
                body: body.clone(),
                at: Instant::now(),
            });
        }
        if path.starts_with("/apis/coordination.k8s.io/") {
            return lease(&mut s, replica, method, body);
        }
        if path.starts_with("/apis/events.k8s.io/") {
            return (
                201,
                json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e", "namespace": "iot"}, "eventTime": "2026-01-01T00:00:00.000000Z"}),
            );
        }
        if let Some(name) = path.strip_prefix("/apis/apps/v1/namespaces/iot/deployments/") {
            if method == "PATCH" {
                let codes = s.patch_codes.entry(name.into()).or_default();
                let code = if codes.len() > 1 {
                    codes.remove(0)
                } else {
                    codes.first().copied().unwrap_or(200)
                };
                if code != 200 {
                    return (code, status_reply(code));
                }
            }
            return (200, deployment(&s, name));
        }
        (404, status_reply(404))
    }

    fn writes(&self) -> Vec<Write> {
        self.state().writes.clone()
    }

    fn set_status(&self, name: &str, status: Value) {
        self.state().status.insert(name.into(), status);
    }
}

fn status_reply(code: u16) -> Value {
    let reason = match code {
        404 => "NotFound",
        409 => "Conflict",
        _ => "InternalError",
    };
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": format!("fake API answered {code}"), "reason": reason, "code": code})
}

/// A Lease with optimistic concurrency: a PUT must carry the current resourceVersion.
fn lease(s: &mut State, replica: &str, method: &str, mut body: Value) -> (u16, Value) {
    match method {
        "GET" => match &s.lease {
            Some(l) => (200, l.clone()),
            None => (404, status_reply(404)),
        },
        "POST" | "PUT" => {
            if s.lease_conflicts.iter().any(|r| r == replica) {
                return (409, status_reply(409));
            }
            let sent_rv = body["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let current = s.lease.as_ref().map(|_| s.lease_rv.to_string());
            let fresh = match (method, &current) {
                ("POST", None) => true,
                ("PUT", Some(rv)) => *rv == sent_rv,
                _ => false,
            };
            if !fresh {
                return (409, status_reply(409));
            }
            s.lease_rv += 1;
            body["metadata"]["resourceVersion"] = json!(s.lease_rv.to_string());
            if let Some(t) = body["spec"]["renewTime"].as_str() {
                s.renew_times.push(t.to_string());
            }
            s.lease = Some(body.clone());
            (if method == "POST" { 201 } else { 200 }, body)
        }
        _ => (405, status_reply(405)),
    }
}

fn deployment(s: &State, name: &str) -> Value {
    let images = s.template.get(name).cloned().unwrap_or_default();
    let containers: Vec<Value> = images
        .iter()
        .map(|(c, i)| json!({"name": c, "image": i}))
        .collect();
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": name, "namespace": "iot", "generation": 2},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                    "template": {"spec": {"containers": containers}}},
           "status": s.status.get(name).cloned().unwrap_or(json!({}))})
}

const READY: &str =
    r#"{"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}"#;
const STUCK: &str =
    r#"{"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1}"#;

fn ready() -> Value {
    serde_json::from_str(READY).unwrap()
}

fn stuck() -> Value {
    serde_json::from_str(STUCK).unwrap()
}

fn failed() -> Value {
    json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1,
           "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]})
}

fn old_image(name: &str) -> String {
    format!("ghcr.io/acme/{name}:1@{}", Digest::sha256_of(b"old"))
}

fn new_image(name: &str) -> String {
    format!("ghcr.io/acme/{name}:1@{}", Digest::sha256_of(b"new"))
}

/// A plan that updates container `app` of each named Deployment from the old to the new image.
fn plan(names: &[&str]) -> Plan {
    let mut workloads = Vec::new();
    let mut decisions = Vec::new();
    for name in names {
        workloads.push(Workload {
            view: WorkloadView {
                kind: Kind::Deployment,
                namespace: "iot".into(),
                name: name.to_string(),
                annotations: BTreeMap::from([("ferry.dev/policy".into(), "digest".into())]),
                labels: BTreeMap::new(),
                containers: vec![ContainerView {
                    name: "app".into(),
                    image: old_image(name).into(),
                    init: false,
                }],
                running: BTreeMap::new(),
                healthy: None,
            },
            selector: BTreeMap::new(),
            generation: Some(2),
            uid: Some(format!("uid-{name}")),
            resource_version: Some("1".into()),
            pull_secrets: vec![],
            service_account: "default".into(),
        });
        let view = &workloads.last().expect("pushed").view;
        decisions.push(Decision {
            current_digest: Some(Digest::sha256_of(b"old")),
            target: Some(Reference::parse(&new_image(name)).unwrap()),
            ..Decision::row(
                view,
                "app",
                &old_image(name).into(),
                Action::Update,
                Reason::TagMoved {
                    tag: "1".into(),
                    digest: Digest::sha256_of(b"new"),
                },
            )
        });
    }
    Plan {
        workloads,
        decisions,
        registry_requests: 0,
        credentials: Default::default(),
    }
}

fn context(client: kube::Client) -> Context {
    Context {
        client,
        registry: ferry_registry::Client::new(ferry_registry::ClientConfig::default()).unwrap(),
        namespaces: Namespaces::All,
        registry_concurrency: 1,
        rate_gate: Default::default(),
        gitops: None,
        argocd_namespace: "argocd".into(),
        events: Default::default(),
        tag_times: Default::default(),
        signatures: Default::default(),
        provenance: Default::default(),
    }
}

fn lock(identity: &str, duration: Duration) -> LeaseLock {
    LeaseLock {
        namespace: "ferry".into(),
        name: "ferry-deploy".into(),
        identity: identity.into(),
        duration,
    }
}

fn is_patch(w: &Write, name: &str) -> bool {
    w.method == "PATCH" && w.path.ends_with(&format!("/deployments/{name}"))
}

fn events(api: &FakeApi, reason: &str) -> Vec<Value> {
    api.writes()
        .into_iter()
        .filter(|w| w.method == "POST" && w.path.contains("/events") && w.body["reason"] == reason)
        .map(|w| w.body)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_that_outlasts_the_lease_keeps_one_writer() {
    let api = FakeApi::default();
    api.set_status("sensor", stuck());
    let duration = Duration::from_millis(1500);
    let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = lost.clone();
    let leader = Leadership::acquire(
        &lock("replica-a", duration),
        &api.client("replica-a"),
        Box::new(move || flag.store(true, std::sync::atomic::Ordering::SeqCst)),
    )
    .await
    .unwrap()
    .expect("the first replica takes the free Lease");
    // The standby keeps trying for the whole pass.
    let standby = {
        let client = api.client("replica-b");
        tokio::spawn(async move {
            let l = lock("replica-b", duration);
            let mut won = 0;
            for _ in 0..25 {
                if l.try_acquire(&client).await.unwrap_or(false) {
                    won += 1;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            won
        })
    };
    // The rollout becomes healthy only after 3 lease durations.
    let later = api.clone();
    tokio::spawn(async move {
        tokio::time::sleep(duration * 3).await;
        later.set_status("sensor", ready());
    });
    let ctx = context(api.client("replica-a"));
    let options = ApplyOptions {
        wait: true,
        rollout_timeout: Some(Duration::from_secs(30)),
        poll: Some(Duration::from_millis(100)),
        fence: leader.fence().clone(),
    };
    let applied = controller::apply(&ctx, &plan(&["sensor"]), &options)
        .await
        .unwrap();
    assert_eq!(applied.updated, ["iot/Deployment/sensor"]);
    assert!(
        applied.rolled_back.is_empty() && !applied.leadership_lost,
        "{applied:?}"
    );
    assert_eq!(
        standby.await.unwrap(),
        0,
        "the standby never took a fresh Lease"
    );
    assert!(!lost.load(std::sync::atomic::Ordering::SeqCst));
    let s = api.state();
    assert!(
        s.writes
            .iter()
            .all(|w| w.replica == "replica-a" || w.path.contains("/leases")),
        "only the leader wrote: {:?}",
        s.writes
            .iter()
            .map(|w| (&w.replica, &w.method, &w.path))
            .collect::<Vec<_>>()
    );
    let mut renewals = s.renew_times.clone();
    renewals.dedup();
    assert!(
        renewals.len() >= 6,
        "renewTime advanced during the pass (every third of 1.5 s over 4.5 s): {renewals:?}"
    );
    assert!(renewals.windows(2).all(|w| w[0] < w[1]), "{renewals:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_lost_mid_pass_stops_every_write() {
    let api = FakeApi::default();
    // The first workload's rollout fails; the second is waiting its turn.
    api.set_status("sensor", stuck());
    api.set_status("meter", ready());
    let duration = Duration::from_millis(1500);
    let leader = Leadership::acquire(
        &lock("replica-a", duration),
        &api.client("replica-a"),
        Box::new(|| {}),
    )
    .await
    .unwrap()
    .unwrap();
    // Mid-rollout another replica wins the Lease: this replica's renewals conflict from now on.
    let thief = api.clone();
    let stolen_at = Arc::new(Mutex::new(None));
    let mark = stolen_at.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        thief.state().lease_conflicts.push("replica-a".into());
        *mark.lock().unwrap() = Some(Instant::now());
    });
    let ctx = context(api.client("replica-a"));
    let options = ApplyOptions {
        wait: true,
        rollout_timeout: Some(Duration::from_secs(5)),
        poll: Some(Duration::from_millis(100)),
        fence: leader.fence().clone(),
    };
    let applied = controller::apply(&ctx, &plan(&["sensor", "meter"]), &options)
        .await
        .unwrap();
    assert!(applied.leadership_lost, "{applied:?}");
    assert!(!leader.held());
    assert!(
        applied.rolled_back.is_empty(),
        "no rollback without the Lease"
    );
    let stolen = stolen_at.lock().unwrap().expect("stolen");
    // The renewal that discovers the loss comes at most a renew period after the theft.
    let grace = duration / 3 + Duration::from_millis(300);
    let late: Vec<Write> = api
        .writes()
        .into_iter()
        .filter(|w| {
            !w.path.contains("/leases") && !w.path.contains("/events") && w.at > stolen + grace
        })
        .collect();
    assert!(late.is_empty(), "writes after the loss: {late:?}");
    assert!(
        !api.writes().iter().any(|w| is_patch(w, "meter")),
        "the next workload is not patched"
    );
}

#[tokio::test]
async fn a_failed_patch_stays_with_its_workload() {
    let api = FakeApi::default();
    api.state().patch_codes.insert("sensor".into(), vec![500]);
    api.set_status("meter", ready());
    api.set_status("gauge", ready());
    let ctx = context(api.client("solo"));
    let options = ApplyOptions {
        wait: true,
        poll: Some(Duration::from_millis(20)),
        ..Default::default()
    };
    let applied = controller::apply(&ctx, &plan(&["sensor", "meter", "gauge"]), &options)
        .await
        .unwrap();
    assert_eq!(
        applied.updated,
        ["iot/Deployment/meter", "iot/Deployment/gauge"],
        "{applied:?}"
    );
    assert_eq!(applied.failures.len(), 1, "{applied:?}");
    assert_eq!(applied.failures[0].stage, Stage::Patch);
    assert_eq!(applied.failures[0].workload, "iot/Deployment/sensor");
    assert!(api.writes().iter().any(|w| is_patch(w, "meter")));
    let failed = events(&api, "RedeployFailed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["regarding"]["name"], "sensor");
    assert!(
        failed[0]["note"].as_str().unwrap().contains("500"),
        "{failed:?}"
    );
}

#[tokio::test]
async fn a_failed_rollback_is_an_event_and_a_failure() {
    let api = FakeApi::default();
    // The update patch succeeds, the rollback patch fails.
    api.state()
        .patch_codes
        .insert("sensor".into(), vec![200, 500]);
    api.set_status("sensor", failed());
    let ctx = context(api.client("solo"));
    let options = ApplyOptions {
        wait: true,
        poll: Some(Duration::from_millis(20)),
        ..Default::default()
    };
    let applied = controller::apply(&ctx, &plan(&["sensor"]), &options)
        .await
        .unwrap();
    assert!(applied.rolled_back.is_empty(), "{applied:?}");
    assert_eq!(applied.failures.len(), 1, "{applied:?}");
    assert_eq!(applied.failures[0].stage, Stage::Rollback);
    let ev = events(&api, "RollbackFailed");
    assert_eq!(ev.len(), 1);
    assert!(
        ev[0]["note"]
            .as_str()
            .unwrap()
            .contains("ProgressDeadlineExceeded"),
        "{ev:?}"
    );
    assert_eq!(ev[0]["type"], "Warning");
}

const MANIFEST: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: sensor\n  namespace: iot\nspec:\n  template:\n    spec:\n      containers:\n        - name: app   # the app\n          image: IMAGE\n";

/// A config repository on a real git daemon holding `files`, the stateful fake API with each
/// Deployment's template at `synced` images, and a controller context with write-back on.
struct GitFixture {
    _daemon: GitDaemon,
    _cache: tempfile::TempDir,
    url: String,
    api: FakeApi,
    ctx: Context,
}

impl GitFixture {
    fn new(files: &[(String, String)], synced: &[(&str, String)]) -> GitFixture {
        let daemon = GitDaemon::start();
        let url = daemon.create("config.git");
        let repo = GitRepo::new();
        for (path, text) in files {
            repo.write(path, text);
        }
        repo.commit("initial");
        repo.git(&["push", "-q", &url, "main"]);
        let api = FakeApi::default();
        for (name, image) in synced {
            let images = BTreeMap::from([("app".to_string(), image.clone())]);
            api.state().template.insert(name.to_string(), images);
        }
        let cache = tempfile::tempdir().unwrap();
        let mut ctx = context(api.client("solo"));
        ctx.gitops = Some(GitOps {
            config: WriteBackConfig {
                cache_dir: cache.path().into(),
                ..Default::default()
            },
            write_branch: None,
            pull_requests: None,
            forges: Default::default(),
        });
        GitFixture {
            _daemon: daemon,
            _cache: cache,
            url,
            api,
            ctx,
        }
    }

    /// `apply` with the health gate, bounded by `timeout`.
    async fn apply(&self, plan: &Plan, timeout: Duration) -> controller::Applied {
        let options = ApplyOptions {
            wait: true,
            rollout_timeout: Some(timeout),
            poll: Some(Duration::from_millis(50)),
            ..Default::default()
        };
        controller::apply(&self.ctx, plan, &options).await.unwrap()
    }

    /// A fresh clone of the remote (kept alive by the returned directory).
    fn clone_remote(&self) -> (tempfile::TempDir, std::path::PathBuf) {
        let check = tempfile::tempdir().unwrap();
        git_in(check.path(), &["clone", "-q", &self.url, "c"]);
        let c = check.path().join("c");
        (check, c)
    }
}

fn git_plan(url: &str) -> Plan {
    git_plan_of(url, &["sensor"])
}

fn git_plan_of(url: &str, names: &[&str]) -> Plan {
    let mut p = plan(names);
    for (w, d) in p.workloads.iter_mut().zip(p.decisions.iter_mut()) {
        w.view
            .annotations
            .insert("ferry.dev/git-repo".into(), url.into());
        d.route = Route::Git(GitRoute {
            repo: url.into(),
            branch: "main".into(),
            path: "apps".into(),
            file: Some(format!("apps/{}.yaml", d.name)),
            edit: Default::default(),
            base: None,
            review: None,
        });
    }
    p
}

fn manifest(name: &str, image: &str) -> String {
    MANIFEST
        .replace("name: sensor", &format!("name: {name}"))
        .replace("IMAGE", image)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_failed_workload_of_a_shared_commit_is_restored() {
    let names = ["sensor", "meter"];
    let files: Vec<(String, String)> = names
        .iter()
        .map(|n| (format!("apps/{n}.yaml"), manifest(n, &old_image(n))))
        .collect();
    let synced: Vec<(&str, String)> = names.iter().map(|n| (*n, new_image(n))).collect();
    let f = GitFixture::new(&files, &synced);
    let (api, url) = (&f.api, &f.url);
    api.set_status("sensor", failed());
    api.set_status("meter", ready());
    let applied = f
        .apply(&git_plan_of(url, &names), Duration::from_secs(10))
        .await;
    assert_eq!(
        applied.committed.len(),
        2,
        "one commit, two workloads: {applied:?}"
    );
    assert_eq!(applied.rolled_back.len(), 1, "{applied:?}");
    let (_check, c) = f.clone_remote();
    let subject = git_in(&c, &["log", "--format=%s", "-1"]);
    assert!(
        subject.starts_with("ferry: restore 1 image(s) of "),
        "{subject}"
    );
    let sensor = std::fs::read_to_string(c.join("apps/sensor.yaml")).unwrap();
    assert!(sensor.contains(&old_image("sensor")), "{sensor}");
    let meter = std::fs::read_to_string(c.join("apps/meter.yaml")).unwrap();
    assert!(
        meter.contains(&new_image("meter")),
        "the healthy one keeps its image: {meter}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_update_whose_rollout_fails_is_reverted_in_git() {
    let original = MANIFEST.replace("IMAGE", &old_image("sensor"));
    // "Argo CD" syncs the new image into the template; the rollout then fails.
    let files = [("apps/sensor.yaml".to_string(), original.clone())];
    let f = GitFixture::new(&files, &[("sensor", new_image("sensor"))]);
    let api = &f.api;
    api.set_status("sensor", failed());
    let applied = f.apply(&git_plan(&f.url), Duration::from_secs(10)).await;
    assert_eq!(applied.committed.len(), 1, "{applied:?}");
    assert_eq!(applied.rolled_back.len(), 1, "{applied:?}");
    assert!(applied.failures.is_empty(), "{applied:?}");
    assert!(
        !api.writes().iter().any(|w| w.method == "PATCH"),
        "a git-managed workload is never patched live"
    );
    // The remote: ferry's commit, then a revert of it on top (no force-push: a descendant).
    let (_check, c) = f.clone_remote();
    let log = git_in(&c, &["log", "--format=%s", "-3"]);
    let subjects: Vec<&str> = log.lines().collect();
    assert!(
        subjects[0].starts_with("Revert \"ferry: update 1 image(s)\""),
        "{subjects:?}"
    );
    assert_eq!(subjects[1], "ferry: update 1 image(s)");
    assert_eq!(
        std::fs::read_to_string(c.join("apps/sensor.yaml")).unwrap(),
        original
    );
    let body = git_in(&c, &["log", "-1", "--format=%b"]);
    assert!(body.contains("ProgressDeadlineExceeded"), "{body}");
    let ev = events(api, "RolledBack");
    assert_eq!(ev.len(), 1, "{ev:?}");
    // Next pass: the digest is quarantined by the revert (ferry reverted its own commit).
    let clone = git2::Repository::open(&c).unwrap();
    let head = clone.head().unwrap().target().unwrap();
    let digest = Digest::sha256_of(b"new").to_string();
    assert!(ferry_deploy::gitops::reverted(&clone, head, &digest).is_some());
}

#[tokio::test]
async fn a_git_update_argo_cd_never_syncs_is_reported_not_reverted() {
    let files = [(
        "apps/sensor.yaml".to_string(),
        MANIFEST.replace("IMAGE", &old_image("sensor")),
    )];
    let f = GitFixture::new(&files, &[("sensor", old_image("sensor"))]);
    let api = &f.api;
    let applied = f.apply(&git_plan(&f.url), Duration::from_millis(400)).await;
    assert_eq!(applied.committed.len(), 1);
    assert_eq!(applied.unsynced.len(), 1, "{applied:?}");
    assert!(applied.rolled_back.is_empty());
    assert_eq!(events(api, "NotSynced").len(), 1);
    let (_check, c) = f.clone_remote();
    let log = git_in(&c, &["log", "--format=%s", "-1"]);
    assert_eq!(log, "ferry: update 1 image(s)", "no revert");
}

/// Helm values files through the health gate: the chart renders `repository@digest` (not the
/// `repository:tag@digest` ferry wrote), so the sync is recognised by the digest; one of two
/// workloads of the commit fails and only its values file is restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helm_values_update_is_gated_by_digest_and_only_the_failed_file_restored() {
    let values = |n: &str| {
        format!(
            "# {n}\nimage:\n  repository: ghcr.io/acme/{n}  # built by CI\n  tag: 1@{}\n  pullPolicy: IfNotPresent\n",
            Digest::sha256_of(b"old")
        )
    };
    let names = ["sensor", "meter"];
    let new = Digest::sha256_of(b"new");
    let files: Vec<(String, String)> = names
        .iter()
        .map(|n| (format!("charts/{n}/values.yaml"), values(n)))
        .collect();
    // The chart renders `repository@digest`: only the digest says Argo CD synced.
    let synced: Vec<(&str, String)> = names
        .iter()
        .map(|n| (*n, format!("ghcr.io/acme/{n}@{new}")))
        .collect();
    let f = GitFixture::new(&files, &synced);
    let url = &f.url;
    f.api.set_status("sensor", failed());
    f.api.set_status("meter", ready());
    let mut p = git_plan_of(url, &names);
    for d in &mut p.decisions {
        let file = format!("charts/{}/values.yaml", d.name);
        d.route = Route::Git(GitRoute {
            repo: url.clone(),
            branch: "main".into(),
            path: file.clone(),
            file: Some(file),
            edit: GitEdit::HelmValues {
                key: "image".into(),
                overrides: Vec::new(),
            },
            base: None,
            review: None,
        });
    }
    let applied = f.apply(&p, Duration::from_secs(10)).await;
    assert_eq!(applied.committed.len(), 2, "{applied:?}");
    assert!(applied.unsynced.is_empty(), "synced by digest: {applied:?}");
    assert_eq!(applied.rolled_back.len(), 1, "{applied:?}");
    let (_check, c) = f.clone_remote();
    let subject = git_in(&c, &["log", "--format=%s", "-1"]);
    assert!(
        subject.starts_with("ferry: restore 1 image(s) of "),
        "{subject}"
    );
    let read =
        |n: &str| std::fs::read_to_string(c.join(format!("charts/{n}/values.yaml"))).unwrap();
    assert_eq!(read("sensor"), values("sensor"), "restored byte for byte");
    assert_eq!(
        read("meter"),
        values("meter").replace(&Digest::sha256_of(b"old").to_string(), &new.to_string()),
        "the healthy one keeps its image"
    );
}
