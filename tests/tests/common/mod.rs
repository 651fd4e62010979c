//! A fake Kubernetes API (wiremock on 127.0.0.1) serving Deployments in namespace `iot`, one
//! amd64 Node, no Pods, and accepting Events; and `ferry-deploy` run against it.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

use std::process::{Command, Output};

use ferry_tests::bin;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub fn deployment(name: &str, annotations: Value, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "iot", "uid": format!("uid-{name}"), "resourceVersion": "1", "generation": 1,
                     "annotations": annotations},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": image}]}}}
    })
}

pub fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {"resourceVersion": "1"}, "items": items})
}

pub async fn fake_api(deployments: Vec<Value>) -> MockServer {
    let s = MockServer::start().await;
    let get = |p: &str, body: Value| {
        Mock::given(method("GET"))
            .and(path(p.to_string()))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
    };
    get("/apis/apps/v1/deployments", list("Deployment", deployments))
        .mount(&s)
        .await;
    for (p, kind) in [
        ("/apis/apps/v1/statefulsets", "StatefulSet"),
        ("/apis/apps/v1/daemonsets", "DaemonSet"),
        ("/apis/batch/v1/cronjobs", "CronJob"),
        ("/api/v1/namespaces/iot/pods", "Pod"),
    ] {
        get(p, list(kind, vec![])).mount(&s).await;
    }
    let node = json!({"metadata": {"name": "nuc-1", "labels": {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}}});
    get("/api/v1/nodes", list("Node", vec![node]))
        .mount(&s)
        .await;
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
