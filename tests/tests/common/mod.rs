//! A fake Kubernetes API (wiremock on 127.0.0.1) serving Deployments (and CronJobs) in namespace
//! `iot`, Nodes of the given architectures, no Pods, and accepting Events; and `ferry-deploy` run
//! against it. Shared by the deploy CLI tests.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

use std::process::{Command, Output};

use ferry_tests::bin;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A Deployment `name` in `iot` with one container `app` running `image`.
pub fn deployment(name: &str, annotations: Value, image: &str) -> Value {
    workload(
        name,
        annotations,
        json!({}),
        json!([{"name": "app", "image": image}]),
    )
}

/// A Deployment `name` in `iot` with these annotations, labels and containers.
pub fn workload(name: &str, annotations: Value, labels: Value, containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "iot", "uid": format!("uid-{name}"), "resourceVersion": "1", "generation": 1,
                     "annotations": annotations, "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}}}
    })
}

pub fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {"resourceVersion": "1"}, "items": items})
}

/// The fake API with `deployments` and one amd64 Node.
pub async fn fake_api(deployments: Vec<Value>) -> MockServer {
    fake_api_with(deployments, vec![], &["amd64"]).await
}

/// The fake API with `deployments`, `cronjobs` and one Node per architecture in `archs`.
pub async fn fake_api_with(
    deployments: Vec<Value>,
    cronjobs: Vec<Value>,
    archs: &[&str],
) -> MockServer {
    let s = MockServer::start().await;
    let get = |p: &str, body: Value| {
        Mock::given(method("GET"))
            .and(path(p.to_string()))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
    };
    get("/apis/apps/v1/deployments", list("Deployment", deployments))
        .mount(&s)
        .await;
    get("/apis/batch/v1/cronjobs", list("CronJob", cronjobs))
        .mount(&s)
        .await;
    for (p, kind) in [
        ("/apis/apps/v1/statefulsets", "StatefulSet"),
        ("/apis/apps/v1/daemonsets", "DaemonSet"),
        ("/api/v1/namespaces/iot/pods", "Pod"),
    ] {
        get(p, list(kind, vec![])).mount(&s).await;
    }
    let nodes = archs
        .iter()
        .map(|arch| json!({"metadata": {"name": format!("node-{arch}"), "labels": {"kubernetes.io/os": "linux", "kubernetes.io/arch": arch}}}))
        .collect();
    get("/api/v1/nodes", list("Node", nodes)).mount(&s).await;
    Mock::given(method("POST"))
        .and(path("/apis/events.k8s.io/v1/namespaces/iot/events"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e", "namespace": "iot"}, "eventTime": "2026-01-01T00:00:00.000000Z"})))
        .mount(&s)
        .await;
    s
}

pub fn kubeconfig(server: &MockServer, dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("kubeconfig");
    std::fs::write(
        &p,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{}}\n", server.uri()),
    )
    .unwrap();
    p
}

pub fn run(kc: &std::path::Path, reg: &str, args: &[&str]) -> Output {
    Command::new(bin("ferry-deploy"))
        .arg("--kubeconfig")
        .arg(kc)
        .args(["--plain-http", reg])
        .args(args)
        .env("DOCKER_CONFIG", "/nonexistent-ferry-test")
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap()
}

/// `ferry-deploy plan --json`: must exit 0 (stderr shown otherwise); the decisions.
pub fn plan_json(kc: &std::path::Path, reg: &str) -> Value {
    let o = run(kc, reg, &["plan", "--json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}
