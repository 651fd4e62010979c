//! Applying a plan, verified request by request with kube-rs's tower-test pattern: a scripted
//! fake API server that asserts method, path and JSON body of each expected request in order,
//! and fails on any extra one.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_core::{Digest, Reference};
use ferry_deploy::cluster::{Namespaces, Workload};
use ferry_deploy::controller::{self, ApplyOptions, Context, Plan};
use ferry_deploy::policy::{Action, ContainerView, Decision, Kind, Reason, WorkloadView};
use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

struct Verifier(Handle);

impl Verifier {
    /// Expect one request; answer with `reply`; return its JSON body.
    async fn expect(&mut self, method: &str, path: &str, reply: Value) -> Value {
        let (req, send) = tokio::time::timeout(Duration::from_secs(5), self.0.next_request())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {method} {path}"))
            .unwrap_or_else(|| panic!("no request, expected {method} {path}"));
        assert_eq!(req.method().as_str(), method, "method of {}", req.uri());
        assert_eq!(req.uri().path(), path);
        let body = req.into_body().collect_bytes().await.unwrap();
        send.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                .unwrap(),
        );
        if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap()
        }
    }

    async fn no_more(mut self) {
        let extra = tokio::time::timeout(Duration::from_millis(200), self.0.next_request()).await;
        if let Ok(Some((req, _))) = extra {
            panic!("unexpected request {} {}", req.method(), req.uri());
        }
    }
}

fn context() -> (Context, Verifier) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(svc, "default");
    let ctx = Context {
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
    };
    (ctx, Verifier(handle))
}

const OLD: &str = "ghcr.io/acme/sensor:latest@sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn sensor_plan(annotations: &[(&str, &str)]) -> (Plan, String) {
    let new = Digest::sha256_of(b"new");
    let target = format!("ghcr.io/acme/sensor:latest@{new}");
    let view = WorkloadView {
        kind: Kind::Deployment,
        namespace: "iot".into(),
        name: "sensor".into(),
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        labels: BTreeMap::new(),
        containers: vec![ContainerView {
            name: "app".into(),
            image: OLD.into(),
            init: false,
        }],
        running: BTreeMap::new(),
        healthy: None,
    };
    let decision = Decision {
        current_digest: Some(Digest::parse(OLD.rsplit_once('@').unwrap().1).unwrap()),
        target: Some(Reference::parse(&target).unwrap()),
        ..Decision::row(
            &view,
            "app",
            &OLD.into(),
            Action::Update,
            Reason::TagMoved {
                tag: "latest".into(),
                digest: new.clone(),
            },
        )
    };
    let w = Workload {
        view,
        selector: BTreeMap::new(),
        generation: Some(1),
        uid: Some("u1".into()),
        resource_version: Some("7".into()),
        pull_secrets: vec![],
        service_account: "default".into(),
    };
    (
        Plan {
            workloads: vec![w],
            decisions: vec![decision],
            registry_requests: 0,
            credentials: Default::default(),
        },
        target,
    )
}

fn deployment(status: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "sensor", "namespace": "iot", "generation": 2},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "sensor"}}, "template": {"spec": {"containers": [{"name": "app", "image": "x"}]}}},
           "status": status})
}

fn event_reply() -> Value {
    json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e", "namespace": "iot"}, "eventTime": "2026-01-01T00:00:00.000000Z"})
}

#[tokio::test]
async fn an_update_is_one_minimal_patch_and_one_event() {
    let (ctx, mut v) = context();
    let (plan, target) = sensor_plan(&[
        ("ferry.dev/policy", "digest"),
        ("ferry.dev/previous-image", "sidecar=busybox:1"),
    ]);
    let task = tokio::spawn(async move {
        controller::apply(&ctx, &plan, &ApplyOptions::default())
            .await
            .unwrap()
    });
    let mut patch = v
        .expect(
            "PATCH",
            "/apis/apps/v1/namespaces/iot/deployments/sensor",
            deployment(json!({})),
        )
        .await;
    let rolled = patch["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("ferry.dev/rolled-at")
        .unwrap();
    let rolled_digest = target.rsplit_once('@').unwrap().1;
    assert!(
        rolled
            .as_str()
            .unwrap()
            .starts_with(&format!("app={rolled_digest}@")),
        "{rolled}"
    );
    assert_eq!(
        patch,
        json!({"metadata": {"annotations": {"ferry.dev/previous-image": format!("app={OLD},sidecar=busybox:1")}},
               "spec": {"template": {"spec": {"containers": [{"name": "app", "image": target}]}}}})
    );
    let ev = v
        .expect(
            "POST",
            "/apis/events.k8s.io/v1/namespaces/iot/events",
            event_reply(),
        )
        .await;
    assert_eq!(ev["reason"], "Redeployed");
    assert_eq!(ev["type"], "Normal");
    assert_eq!(ev["regarding"]["name"], "sensor");
    assert!(ev["note"].as_str().unwrap().contains(&target));
    let applied = task.await.unwrap();
    assert_eq!(applied.updated, ["iot/Deployment/sensor"]);
    v.no_more().await;
}

#[tokio::test]
async fn a_rollout_that_never_becomes_available_is_rolled_back_and_quarantined() {
    let (ctx, mut v) = context();
    let (plan, target) = sensor_plan(&[("ferry.dev/policy", "digest")]);
    let options = ApplyOptions {
        wait: true,
        rollout_timeout: Some(Duration::from_millis(300)),
        poll: Some(Duration::from_millis(100)),
        ..Default::default()
    };
    let task = tokio::spawn(async move { controller::apply(&ctx, &plan, &options).await.unwrap() });
    v.expect(
        "PATCH",
        "/apis/apps/v1/namespaces/iot/deployments/sensor",
        deployment(json!({})),
    )
    .await;
    v.expect(
        "POST",
        "/apis/events.k8s.io/v1/namespaces/iot/events",
        event_reply(),
    )
    .await;
    // The new pods never become available.
    let stuck = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 1});
    loop {
        let (req, send) = v.0.next_request().await.expect("request");
        let path = req.uri().path().to_string();
        if req.method() == "GET" {
            assert_eq!(path, "/apis/apps/v1/namespaces/iot/deployments/sensor");
            send.send_response(
                Response::builder()
                    .body(Body::from(
                        serde_json::to_vec(&deployment(stuck.clone())).unwrap(),
                    ))
                    .unwrap(),
            );
            continue;
        }
        assert_eq!(req.method(), "PATCH", "after polling comes the rollback");
        assert_eq!(path, "/apis/apps/v1/namespaces/iot/deployments/sensor");
        let body: Value =
            serde_json::from_slice(&req.into_body().collect_bytes().await.unwrap()).unwrap();
        let digest = target.rsplit_once('@').unwrap().1;
        assert_eq!(
            body,
            json!({"metadata": {"annotations": {"ferry.dev/quarantined": format!("app={digest}")}},
                   "spec": {"template": {"spec": {"containers": [{"name": "app", "image": OLD}]}}}})
        );
        send.send_response(
            Response::builder()
                .body(Body::from(
                    serde_json::to_vec(&deployment(json!({}))).unwrap(),
                ))
                .unwrap(),
        );
        break;
    }
    let ev = v
        .expect(
            "POST",
            "/apis/events.k8s.io/v1/namespaces/iot/events",
            event_reply(),
        )
        .await;
    assert_eq!(ev["reason"], "RolledBack");
    assert_eq!(ev["type"], "Warning");
    let applied = task.await.unwrap();
    assert_eq!(applied.rolled_back.len(), 1);
    assert!(
        applied.rolled_back[0].1.contains("did not complete"),
        "{:?}",
        applied.rolled_back
    );
    v.no_more().await;
}

#[tokio::test]
async fn progress_deadline_exceeded_rolls_back_at_once() {
    let (ctx, mut v) = context();
    let (plan, _) = sensor_plan(&[("ferry.dev/policy", "digest")]);
    let options = ApplyOptions {
        wait: true,
        rollout_timeout: Some(Duration::from_secs(60)),
        poll: Some(Duration::from_millis(50)),
        ..Default::default()
    };
    let task = tokio::spawn(async move { controller::apply(&ctx, &plan, &options).await.unwrap() });
    v.expect(
        "PATCH",
        "/apis/apps/v1/namespaces/iot/deployments/sensor",
        deployment(json!({})),
    )
    .await;
    v.expect(
        "POST",
        "/apis/events.k8s.io/v1/namespaces/iot/events",
        event_reply(),
    )
    .await;
    let failed = json!({"observedGeneration": 2, "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]});
    v.expect(
        "GET",
        "/apis/apps/v1/namespaces/iot/deployments/sensor",
        deployment(failed),
    )
    .await;
    let rollback = v
        .expect(
            "PATCH",
            "/apis/apps/v1/namespaces/iot/deployments/sensor",
            deployment(json!({})),
        )
        .await;
    assert_eq!(
        rollback["spec"]["template"]["spec"]["containers"][0]["image"],
        OLD
    );
    v.expect(
        "POST",
        "/apis/events.k8s.io/v1/namespaces/iot/events",
        event_reply(),
    )
    .await;
    let applied = task.await.unwrap();
    assert!(
        applied.rolled_back[0]
            .1
            .contains("ProgressDeadlineExceeded")
    );
    v.no_more().await;
}

#[tokio::test]
async fn a_healthy_rollout_is_kept() {
    let (ctx, mut v) = context();
    let (plan, _) = sensor_plan(&[("ferry.dev/policy", "digest")]);
    let options = ApplyOptions {
        wait: true,
        rollout_timeout: Some(Duration::from_secs(60)),
        poll: Some(Duration::from_millis(50)),
        ..Default::default()
    };
    let task = tokio::spawn(async move { controller::apply(&ctx, &plan, &options).await.unwrap() });
    v.expect(
        "PATCH",
        "/apis/apps/v1/namespaces/iot/deployments/sensor",
        deployment(json!({})),
    )
    .await;
    v.expect(
        "POST",
        "/apis/events.k8s.io/v1/namespaces/iot/events",
        event_reply(),
    )
    .await;
    let ok = json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2});
    v.expect(
        "GET",
        "/apis/apps/v1/namespaces/iot/deployments/sensor",
        deployment(ok),
    )
    .await;
    let applied = task.await.unwrap();
    assert!(applied.rolled_back.is_empty());
    v.no_more().await;
}
