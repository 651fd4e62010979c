//! A fake Kubernetes API server for the deploy benchmarks: `fake-kube REFS_FILE WORKLOADS
//! [PATCH_LOG]` serves WORKLOADS Deployments (namespace `bench`, opted in with
//! `ferry.dev/policy: digest`, rollouts always complete and available) whose images cycle
//! through the pinned references in REFS_FILE (one `name:tag@digest` per line, or
//! `IMAGE POLICY` for another `ferry.dev/policy` such as `semver:*`), plus
//! amd64/arm64 Nodes and empty lists for the other kinds. Watches hang (no events).
//!
//! A PATCH of a Deployment is applied (container images and annotations, generation + 1) and,
//! with PATCH_LOG, appended to it as one line `UNIX_SECONDS.NANOS NAMESPACE/NAME IMAGE…` at the
//! moment it arrives. Prints its URL, serves until stdin closes.
// A test tool run by benchmarks and the demo: it prints, exits and unwraps like a binary.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::exit,
    clippy::disallowed_methods
)]

use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {"resourceVersion": "1"}, "items": items})
}

/// A Deployment whose rollout of `generation` is complete and available.
fn deployment(i: usize, line: &str) -> Value {
    let name = format!("w{i:04}");
    let (image, policy) = line.split_once(' ').unwrap_or((line, "digest"));
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "bench", "uid": format!("u{i}"), "generation": 1,
                     "annotations": {"ferry.dev/policy": policy.trim()}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": image}]}}},
        "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                   "readyReplicas": 1, "availableReplicas": 1}})
}

/// The Deployments, changed by PATCHes, and where PATCHes are logged.
struct Cluster {
    deployments: Mutex<Vec<Value>>,
    patch_log: Option<Mutex<std::fs::File>>,
}

impl Cluster {
    fn list(&self) -> ResponseTemplate {
        let items = self.deployments.lock().unwrap().clone();
        ResponseTemplate::new(200).set_body_json(list("Deployment", items))
    }

    /// GET or PATCH `/apis/apps/v1/namespaces/bench/deployments/NAME`.
    fn one(&self, req: &Request) -> ResponseTemplate {
        let arrived = SystemTime::now();
        let name = req.url.path().rsplit('/').next().unwrap_or_default();
        let mut deployments = self.deployments.lock().unwrap();
        let Some(d) = deployments
            .iter_mut()
            .find(|d| d["metadata"]["name"] == name)
        else {
            return ResponseTemplate::new(404).set_body_json(json!({
                "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                "code": 404, "message": format!("deployments.apps \"{name}\" not found")}));
        };
        if req.method.as_str() == "PATCH" {
            let Ok(patch) = serde_json::from_slice::<Value>(&req.body) else {
                return ResponseTemplate::new(400);
            };
            apply_patch(d, &patch);
            self.log_patch(arrived, d);
        }
        ResponseTemplate::new(200).set_body_json(d.clone())
    }

    fn log_patch(&self, arrived: SystemTime, d: &Value) {
        let Some(log) = &self.patch_log else { return };
        let t = arrived.duration_since(UNIX_EPOCH).unwrap_or_default();
        let images: Vec<&str> = d["spec"]["template"]["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["image"].as_str())
            .collect();
        let line = format!(
            "{}.{:09} bench/{} {}\n",
            t.as_secs(),
            t.subsec_nanos(),
            d["metadata"]["name"].as_str().unwrap_or_default(),
            images.join(" ")
        );
        let mut f = log.lock().unwrap();
        f.write_all(line.as_bytes()).expect("write the PATCH log");
        f.flush().expect("flush the PATCH log");
    }
}

/// Apply ferry's strategic-merge patch (container images by name, annotations); the new
/// generation rolls out at once.
fn apply_patch(d: &mut Value, patch: &Value) {
    if let Some(ann) = patch["metadata"]["annotations"].as_object() {
        for (k, v) in ann {
            d["metadata"]["annotations"][k] = v.clone();
        }
    }
    let wanted = patch["spec"]["template"]["spec"]["containers"].as_array();
    if let Some(containers) = d["spec"]["template"]["spec"]["containers"].as_array_mut() {
        for c in containers {
            if let Some(p) = wanted
                .into_iter()
                .flatten()
                .find(|p| p["name"] == c["name"])
            {
                c["image"] = p["image"].clone();
            }
        }
    }
    let generation = d["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
    d["metadata"]["generation"] = json!(generation);
    d["status"]["observedGeneration"] = json!(generation);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        fail("usage: fake-kube REFS_FILE WORKLOADS [PATCH_LOG]");
    }
    let refs: Vec<String> = std::fs::read_to_string(&args[1])
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", args[1])))
        .lines()
        .map(str::to_string)
        .collect();
    if refs.is_empty() {
        fail(&format!("{} lists no references", args[1]));
    }
    let n: usize = args[2]
        .parse()
        .unwrap_or_else(|e| fail(&format!("WORKLOADS {:?}: {e}", args[2])));
    let patch_log = args.get(3).map(|p| {
        Mutex::new(
            std::fs::File::create(p).unwrap_or_else(|e| fail(&format!("cannot create {p}: {e}"))),
        )
    });
    let cluster = Arc::new(Cluster {
        deployments: Mutex::new(
            (0..n)
                .map(|i| deployment(i, &refs[i % refs.len()]))
                .collect(),
        ),
        patch_log,
    });
    let s = MockServer::start().await;
    // Watches never send an event: only the interval or a webhook starts a pass.
    Mock::given(method("GET"))
        .and(query_param("watch", "true"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3600)))
        .with_priority(1)
        .mount(&s)
        .await;
    let c = cluster.clone();
    Mock::given(method("GET"))
        .and(path("/apis/apps/v1/deployments"))
        .respond_with(move |_: &Request| c.list())
        .mount(&s)
        .await;
    let c = cluster.clone();
    Mock::given(path_regex(
        "^/apis/apps/v1/namespaces/bench/deployments/[^/]+$",
    ))
    .respond_with(move |req: &Request| c.one(req))
    .mount(&s)
    .await;
    mount_static(&s).await;
    println!("{}", s.uri());
    let stdin = std::io::stdin();
    for _ in stdin.lock().lines() {}
}

fn fail(message: &str) -> ! {
    eprintln!("fake-kube: {message}");
    std::process::exit(2)
}

/// The kinds and objects that never change: empty lists, two Nodes, no Pods.
async fn mount_static(s: &MockServer) {
    let get = |p: &str, body: Value| {
        Mock::given(method("GET"))
            .and(path(p.to_string()))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
    };
    get("/apis/apps/v1/statefulsets", list("StatefulSet", vec![]))
        .mount(s)
        .await;
    get("/apis/apps/v1/daemonsets", list("DaemonSet", vec![]))
        .mount(s)
        .await;
    get("/apis/batch/v1/cronjobs", list("CronJob", vec![]))
        .mount(s)
        .await;
    let node = |name: &str, arch: &str| json!({"metadata": {"name": name, "labels": {"kubernetes.io/os": "linux", "kubernetes.io/arch": arch}}});
    get(
        "/api/v1/nodes",
        list("Node", vec![node("a", "amd64"), node("b", "arm64")]),
    )
    .mount(s)
    .await;
    get("/api/v1/namespaces/bench/pods", list("Pod", vec![]))
        .mount(s)
        .await;
}
