//! A fake Kubernetes API server for the deploy benchmark: `fake-kube REFS_FILE WORKLOADS`
//! serves WORKLOADS Deployments (namespace `bench`, opted in with `ferry.dev/policy: digest`)
//! whose images cycle through the pinned references in REFS_FILE (one `name:tag@digest` per
//! line), plus amd64/arm64 Nodes and empty lists for the other kinds. Prints its URL, serves
//! until stdin closes.
// A test tool run by benchmarks and the demo: it prints, exits and unwraps like a binary.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::exit,
    clippy::disallowed_methods
)]

use std::io::BufRead;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {"resourceVersion": "1"}, "items": items})
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let refs: Vec<String> = std::fs::read_to_string(&args[1])
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let n: usize = args[2].parse().unwrap();
    let items: Vec<Value> = (0..n)
        .map(|i| {
            let name = format!("w{i:04}");
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": "bench", "uid": format!("u{i}"), "generation": 1,
                             "annotations": {"ferry.dev/policy": "digest"}},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}},
                                      "spec": {"containers": [{"name": "app", "image": refs[i % refs.len()]}]}}}})
        })
        .collect();
    let s = MockServer::start().await;
    let get = |p: &str, body: Value| {
        Mock::given(method("GET"))
            .and(path(p.to_string()))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
    };
    get("/apis/apps/v1/deployments", list("Deployment", items))
        .mount(&s)
        .await;
    get("/apis/apps/v1/statefulsets", list("StatefulSet", vec![]))
        .mount(&s)
        .await;
    get("/apis/apps/v1/daemonsets", list("DaemonSet", vec![]))
        .mount(&s)
        .await;
    get("/apis/batch/v1/cronjobs", list("CronJob", vec![]))
        .mount(&s)
        .await;
    let node = |name: &str, arch: &str| json!({"metadata": {"name": name, "labels": {"kubernetes.io/os": "linux", "kubernetes.io/arch": arch}}});
    get(
        "/api/v1/nodes",
        list("Node", vec![node("a", "amd64"), node("b", "arm64")]),
    )
    .mount(&s)
    .await;
    get("/api/v1/namespaces/bench/pods", list("Pod", vec![]))
        .mount(&s)
        .await;
    println!("{}", s.uri());
    let stdin = std::io::stdin();
    for _ in stdin.lock().lines() {}
}
