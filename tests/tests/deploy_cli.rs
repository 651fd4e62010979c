//! `ferry-deploy plan` / `once` end to end: a fake Kubernetes API server (wiremock on
//! 127.0.0.1 serving lists of the four workload kinds, Nodes and Pods, accepting patches and
//! Events) and a real registry on 127.0.0.1. No Kubernetes API server can run here; the fake
//! serves exactly the documents the real one would for these objects.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::process::Command;

use ferry_tests::{Flavor, Registry, bin, plain_client, push_image};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod common;

use common::{kubeconfig, list, plan_json, run, workload as deployment};

/// Push a two-platform `acme/sensor:latest` whose bytes depend on `salt`.
async fn push_sensor(reg: &Registry, salt: &str) -> ferry_tests::Pushed {
    let c = plain_client(&reg.addr);
    let r = reg.reference("acme/sensor:latest");
    push_image(
        &c,
        &r,
        &["linux/amd64", "linux/arm64"],
        Flavor::Oci,
        false,
        false,
        salt,
    )
    .await
}

/// The fake API with one opted-in Deployment `sensor` (digest policy) running `image`.
async fn sensor_api(image: &str) -> MockServer {
    let sensor = deployment(
        "sensor",
        json!({"ferry.dev/policy": "digest"}),
        json!({}),
        json!([{"name": "app", "image": image}]),
    );
    fake_api(vec![sensor], vec![]).await
}

/// The fake API of these tests: an arm64 and an amd64 Node (a mixed cluster).
async fn fake_api(deployments: Vec<Value>, cronjobs: Vec<Value>) -> MockServer {
    common::fake_api_with(deployments, cronjobs, &["arm64", "amd64"]).await
}

#[tokio::test]
async fn plan_and_once_touch_only_what_opted_in() {
    let reg = Registry::start();
    let c = plain_client(&reg.addr);
    let r = |n: &str| reg.reference(n).to_string();
    let new = push_image(
        &c,
        &reg.reference("acme/sensor:latest"),
        &["linux/amd64", "linux/arm64"],
        Flavor::Oci,
        false,
        true,
        "new",
    )
    .await;
    let amd = push_image(
        &c,
        &reg.reference("acme/amd-only:latest"),
        &["linux/amd64"],
        Flavor::Oci,
        false,
        false,
        "amd",
    )
    .await;
    let old = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    let sensor_old = format!("{}@{old}", r("acme/sensor:latest"));
    let deployments = vec![
        deployment(
            "sensor",
            json!({"ferry.dev/policy": "digest"}),
            json!({}),
            json!([{"name": "app", "image": sensor_old}]),
        ),
        deployment(
            "influxdb",
            json!({}),
            json!({}),
            json!([{"name": "db", "image": sensor_old}]),
        ),
        deployment(
            "gateway",
            json!({"ferry.dev/policy": "digest", "ferry.dev/containers": "app"}),
            json!({}),
            json!([{"name": "app", "image": sensor_old}, {"name": "proxy", "image": sensor_old}]),
        ),
        deployment(
            "argo",
            json!({"ferry.dev/policy": "digest"}),
            json!({"app.kubernetes.io/instance": "sensors"}),
            json!([{"name": "app", "image": sensor_old}]),
        ),
        deployment(
            "amd",
            json!({"ferry.dev/policy": "digest"}),
            json!({}),
            json!([{"name": "app", "image": format!("{}@{old}", r("acme/amd-only:latest"))}]),
        ),
        // Helm sets the same label as Argo CD; no Application of that name exists.
        deployment(
            "helm",
            json!({"ferry.dev/policy": "digest"}),
            json!({"app.kubernetes.io/instance": "grafana", "app.kubernetes.io/managed-by": "Helm"}),
            json!([{"name": "app", "image": sensor_old}]),
        ),
        // Asks for git; this controller runs without --git-write-back.
        deployment(
            "gitonly",
            json!({"ferry.dev/policy": "digest", "ferry.dev/git-repo": "git://127.0.0.1:1/cfg.git"}),
            json!({}),
            json!([{"name": "app", "image": sensor_old}]),
        ),
    ];
    let cron = json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "etl", "namespace": "iot", "uid": "uid-etl", "generation": 1, "annotations": {"ferry.dev/policy": "digest"}},
        "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "etl", "image": sensor_old}]}}}}}
    });
    let api = fake_api(deployments, vec![cron]).await;
    Mock::given(method("GET"))
        .and(path(
            "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationList", "metadata": {},
            "items": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                       "metadata": {"name": "sensors", "namespace": "argocd"}, "spec": {}}]
        })))
        .mount(&api)
        .await;
    for name in ["sensor", "gateway", "helm"] {
        Mock::given(method("PATCH"))
            .and(path(format!(
                "/apis/apps/v1/namespaces/iot/deployments/{name}"
            )))
            .respond_with(ResponseTemplate::new(200).set_body_json(deployment(
                name,
                json!({}),
                json!({}),
                json!([{"name": "app", "image": "x"}]),
            )))
            .expect(1)
            .mount(&api)
            .await;
    }
    Mock::given(method("PATCH"))
        .and(path("/apis/batch/v1/namespaces/iot/cronjobs/etl"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "etl", "namespace": "iot"}, "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}})))
        .expect(1)
        .mount(&api)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&api, dir.path());

    // plan: no writes of any kind.
    let v = plan_json(&kc, &reg.addr);
    let row = |name: &str, container: &str| -> Value {
        v.as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name && d["container"] == container)
            .cloned()
            .unwrap_or_else(|| panic!("{name}/{container} in {v}"))
    };
    let target = format!("{}@{}", r("acme/sensor:latest"), new.digest);
    assert_eq!(row("sensor", "app")["action"], "update");
    assert_eq!(row("sensor", "app")["target"], target.as_str());
    assert_eq!(row("sensor", "app")["current_digest"], old);
    assert_eq!(row("sensor", "app")["namespace"], "iot");
    assert_eq!(row("sensor", "app")["kind"], "Deployment");
    assert_eq!(row("sensor", "app")["image"], sensor_old.as_str());
    assert_eq!(row("influxdb", "db")["action"], "none");
    assert!(
        row("influxdb", "db")["reason"]
            .as_str()
            .unwrap()
            .contains("not opted in")
    );
    assert_eq!(row("gateway", "app")["action"], "update");
    assert_eq!(row("gateway", "proxy")["action"], "none");
    assert_eq!(row("argo", "app")["action"], "skip");
    assert!(
        row("argo", "app")["reason"]
            .as_str()
            .unwrap()
            .contains("Argo CD")
    );
    assert_eq!(
        row("helm", "app")["action"],
        "update",
        "Helm's instance label alone is not Argo CD: {}",
        row("helm", "app")
    );
    assert_eq!(row("gitonly", "app")["action"], "skip");
    assert!(
        row("gitonly", "app")["reason"]
            .as_str()
            .unwrap()
            .contains("--git-write-back"),
        "{}",
        row("gitonly", "app")
    );
    assert_eq!(row("amd", "app")["action"], "skip");
    assert!(
        row("amd", "app")["reason"]
            .as_str()
            .unwrap()
            .contains("linux/arm64"),
        "{}",
        row("amd", "app")
    );
    assert_eq!(row("etl", "etl")["kind"], "CronJob");
    assert_eq!(row("etl", "etl")["action"], "update");
    let _ = amd;
    let writes: Vec<_> = api
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() != "GET")
        .collect();
    assert!(writes.is_empty(), "plan wrote: {writes:?}");

    // once: exactly the opted-in containers, one minimal patch per workload.
    let o = run(&kc, &reg.addr, &["once"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let reqs = api.received_requests().await.unwrap();
    let patch = |p: &str| -> Value {
        let req = reqs
            .iter()
            .find(|r| r.method.as_str() == "PATCH" && r.url.path() == p)
            .unwrap_or_else(|| panic!("no PATCH {p}"));
        assert_eq!(
            req.headers.get("content-type").unwrap(),
            "application/strategic-merge-patch+json"
        );
        assert_eq!(
            req.url
                .query_pairs()
                .find(|(k, _)| k == "fieldManager")
                .map(|(_, v)| v.to_string())
                .as_deref(),
            Some("ferry")
        );
        serde_json::from_slice(&req.body).unwrap()
    };
    let mut sensor = patch("/apis/apps/v1/namespaces/iot/deployments/sensor");
    // When ferry rolled it (for soak gates): `app=<digest>@<unix time>`.
    let rolled = sensor["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("ferry.dev/rolled-at")
        .unwrap();
    assert!(
        rolled
            .as_str()
            .unwrap()
            .starts_with(&format!("app={}@", new.digest)),
        "{rolled}"
    );
    assert_eq!(
        sensor,
        json!({"metadata": {"annotations": {"ferry.dev/previous-image": format!("app={sensor_old}")}},
               "spec": {"template": {"spec": {"containers": [{"name": "app", "image": target}]}}}})
    );
    assert_eq!(
        patch("/apis/apps/v1/namespaces/iot/deployments/gateway")["spec"]["template"]["spec"]["containers"],
        json!([{"name": "app", "image": target}]),
        "the proxy sidecar is not named and not touched"
    );
    assert_eq!(
        patch("/apis/batch/v1/namespaces/iot/cronjobs/etl")["spec"]["jobTemplate"]["spec"]["template"]
            ["spec"]["containers"],
        json!([{"name": "etl", "image": target}])
    );
    for untouched in ["influxdb", "argo", "amd", "gitonly"] {
        assert!(
            !reqs
                .iter()
                .any(|r| r.method.as_str() == "PATCH" && r.url.path().ends_with(untouched)),
            "{untouched} was patched"
        );
    }
    let events: Vec<Value> = reqs
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "Redeployed" && e["regarding"]["name"] == "sensor"),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e["reason"] == "RedeploySkipped"
            && e["regarding"]["name"] == "argo"
            && e["type"] == "Warning"),
        "{events:?}"
    );
    for refused in ["amd", "gitonly"] {
        assert_eq!(
            events
                .iter()
                .filter(|e| e["reason"] == "RedeploySkipped" && e["regarding"]["name"] == refused)
                .count(),
            1,
            "one Event for the refusal of {refused}: {events:?}"
        );
    }
}

fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

#[tokio::test]
async fn run_serves_probes_and_metrics_holds_the_lease_and_stops_on_sigterm() {
    let reg = Registry::start();
    let pushed = push_sensor(&reg, "run").await;
    let at_target = format!("{}@{}", reg.reference("acme/sensor:latest"), pushed.digest);
    let api = sensor_api(&at_target).await;
    let lease_path = "/apis/coordination.k8s.io/v1/namespaces/ferry/leases/ferry-deploy";
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "ferry-deploy", "namespace": "ferry", "resourceVersion": "5"},
        "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15, "renewTime": "2099-01-01T00:00:00.000000Z"}});
    Mock::given(method("GET"))
        .and(path(lease_path))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"})))
        .up_to_n_times(1)
        .mount(&api)
        .await;
    Mock::given(method("POST"))
        .and(path("/apis/coordination.k8s.io/v1/namespaces/ferry/leases"))
        .respond_with(ResponseTemplate::new(201).set_body_json(lease.clone()))
        .expect(1)
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path(lease_path))
        .respond_with(ResponseTemplate::new(200).set_body_json(lease.clone()))
        .mount(&api)
        .await;
    Mock::given(method("PUT"))
        .and(path(lease_path))
        .respond_with(ResponseTemplate::new(200).set_body_json(lease))
        .mount(&api)
        .await;
    // Watches: one change to a Deployment shortly after the watch starts, then the long poll a
    // real API server does (it hangs until the test ends).
    let changed = json!({"type": "MODIFIED", "object": deployment("sensor", json!({"ferry.dev/policy": "digest"}), json!({}), json!([{"name": "app", "image": at_target}]))});
    Mock::given(method("GET"))
        .and(path("/apis/apps/v1/deployments"))
        .and(wiremock::matchers::query_param("watch", "true"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(format!("{changed}\n"))
                .set_delay(std::time::Duration::from_millis(500)),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::query_param("watch", "true"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("")
                .set_delay(std::time::Duration::from_secs(600)),
        )
        .with_priority(2)
        .mount(&api)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&api, dir.path());
    let metrics_addr = format!("127.0.0.1:{}", ferry_tests::free_port());
    let mut child = Command::new(bin("ferry-deploy"))
        .arg("--kubeconfig")
        .arg(&kc)
        .args([
            "--plain-http",
            &reg.addr,
            "run",
            "--interval",
            "1h",
            "--metrics-addr",
            &metrics_addr,
            "--lease-namespace",
            "ferry",
        ])
        .env("POD_NAME", "pod-a")
        .env("DOCKER_CONFIG", "/nonexistent-ferry-test")
        .spawn()
        .unwrap();
    let mut ready = false;
    for _ in 0..100 {
        if let Some((200, _)) = http_get(&metrics_addr, "/readyz") {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "/readyz never became ready");
    assert_eq!(http_get(&metrics_addr, "/healthz").unwrap().0, 200);
    assert_eq!(http_get(&metrics_addr, "/nope").unwrap().0, 404);
    // The interval is an hour: a second pass can only come from the watched change.
    let mut body = String::new();
    let mut passes = 0u64;
    for _ in 0..100 {
        let (code, b) = http_get(&metrics_addr, "/metrics").unwrap();
        assert_eq!(code, 200);
        passes = b
            .lines()
            .find_map(|l| l.strip_prefix("ferry_passes_total "))
            .unwrap()
            .parse()
            .unwrap();
        body = b;
        if passes >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(passes >= 2, "a watched change triggers a pass: {body}");
    assert!(body.contains("ferry_leader 1\n"), "{body}");
    assert!(
        body.contains("ferry_updates_total 0\n"),
        "already at the target: {body}"
    );
    let reqs = api.received_requests().await.unwrap();
    assert!(
        !reqs.iter().any(|r| r.method.as_str() == "PATCH"),
        "nothing to change, nothing patched"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut exited = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            exited = Some(s);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let exited = exited.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("ferry-deploy run did not stop on SIGTERM")
    });
    assert_eq!(exited.code(), Some(0));
}

#[tokio::test]
async fn pull_secrets_of_the_workload_reach_a_private_registry() {
    use ferry_tests::RegistryOptions;
    let reg = Registry::start_with(RegistryOptions {
        basic_auth: Some(("puller".into(), "pw".into())),
        ..Default::default()
    });
    let creds = std::collections::HashMap::from([(
        reg.addr.clone(),
        ferry_registry::Credential::Basic {
            username: "puller".into(),
            password: "pw".into(),
        },
    )]);
    let c = ferry_registry::Client::new(ferry_registry::ClientConfig {
        plain_http: vec![reg.addr.clone()],
        credentials: std::sync::Arc::new(ferry_registry::StaticCredentials(creds)),
        ..Default::default()
    })
    .unwrap();
    let pushed = push_image(
        &c,
        &reg.reference("private/sensor:latest"),
        &["linux/amd64", "linux/arm64"],
        Flavor::Oci,
        false,
        false,
        "p",
    )
    .await;
    let old = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    let image = format!("{}@{old}", reg.reference("private/sensor:latest"));
    let mut with_secret = deployment(
        "private",
        json!({"ferry.dev/policy": "digest"}),
        json!({}),
        json!([{"name": "app", "image": image}]),
    );
    with_secret["spec"]["template"]["spec"]["imagePullSecrets"] = json!([{"name": "regcred"}]);
    let without = deployment(
        "nosecret",
        json!({"ferry.dev/policy": "digest"}),
        json!({}),
        json!([{"name": "app", "image": format!("{}@{old}", reg.reference("private/other:latest"))}]),
    );
    let api = fake_api(vec![with_secret, without], vec![]).await;
    // base64 of {"auths":{"ADDR":{"auth":"cHVsbGVyOnB3"}}} — cHVsbGVyOnB3 is base64("puller:pw").
    let cfg = format!(
        r#"{{"auths":{{"{}":{{"auth":"cHVsbGVyOnB3"}}}}}}"#,
        reg.addr
    );
    let encoded = {
        use std::io::Write;
        let mut child = Command::new("base64")
            .arg("-w0")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(cfg.as_bytes())
            .unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
    };
    Mock::given(method("GET"))
        .and(path("/api/v1/namespaces/iot/secrets/regcred"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "regcred", "namespace": "iot"}, "data": {".dockerconfigjson": encoded}})))
        .expect(1)
        .mount(&api)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&api, dir.path());
    let v = plan_json(&kc, &reg.addr);
    let private = v
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "private")
        .unwrap();
    assert_eq!(private["action"], "update", "{private}");
    assert!(
        private["target"]
            .as_str()
            .unwrap()
            .ends_with(&pushed.digest.to_string())
    );
    // Credentials are per workload: another workload's pull secret never opens the registry
    // for this one (its pods could not pull with it either), so the registry refuses it.
    let nosecret = v
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "nosecret")
        .unwrap();
    assert_eq!(nosecret["action"], "skip");
    let why = nosecret["reason"].as_str().unwrap().to_lowercase();
    assert!(
        !why.contains("not found") && (why.contains("authentication failed")),
        "{nosecret}"
    );

    // With no pull secret at all, the private registry refuses: skipped, with the reason.
    let lonely = deployment(
        "lonely",
        json!({"ferry.dev/policy": "digest"}),
        json!({}),
        json!([{"name": "app", "image": image}]),
    );
    let api = fake_api(vec![lonely], vec![]).await;
    let kc = kubeconfig(&api, dir.path());
    let o = run(&kc, &reg.addr, &["plan", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["action"], "skip");
    assert!(
        v[0]["reason"].as_str().unwrap().contains("authentication"),
        "{}",
        v[0]
    );
}

#[tokio::test]
async fn argocd_workloads_are_updated_through_git() {
    use ferry_tests::{GitDaemon, GitRepo, git_in};
    let reg = Registry::start();
    let c = plain_client(&reg.addr);
    let pushed = push_image(
        &c,
        &reg.reference("acme/sensor:latest"),
        &["linux/amd64", "linux/arm64"],
        Flavor::Oci,
        false,
        false,
        "git",
    )
    .await;
    let old = format!(
        "{}@sha256:3333333333333333333333333333333333333333333333333333333333333333",
        reg.reference("acme/sensor:latest")
    );
    let target = format!("{}@{}", reg.reference("acme/sensor:latest"), pushed.digest);
    // The config repository Argo CD syncs from.
    let daemon = GitDaemon::start();
    let url = daemon.create("cluster-config.git");
    let r = GitRepo::new();
    let manifest = format!(
        "# sensors\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: sensor\n  namespace: iot\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: {old}  # managed by ferry\n"
    );
    r.write("clusters/home/iot/sensor.yaml", &manifest);
    r.commit("initial");
    r.git(&["push", "-q", &url, "main"]);
    let argo = deployment(
        "sensor",
        json!({"ferry.dev/policy": "digest", "argocd.argoproj.io/tracking-id": "iot-apps:apps/Deployment:iot/sensor"}),
        json!({}),
        json!([{"name": "app", "image": old}]),
    );
    let api = fake_api(vec![argo], vec![]).await;
    Mock::given(method("GET"))
        .and(path("/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/iot-apps"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "iot-apps", "namespace": "argocd"},
            "spec": {"source": {"repoURL": url, "path": "clusters/home/iot", "targetRevision": "main"}, "destination": {"namespace": "iot"}}})))
        .mount(&api)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&api, dir.path());
    let cache = dir.path().join("git-cache");
    let args = |cmd: &'static str| {
        vec![
            cmd,
            "--git-write-back",
            "--git-cache",
            cache.to_str().unwrap(),
            "--git-author",
            "ferry-bot <bot@example.invalid>",
        ]
    };

    // Without write-back: skipped because Argo CD would revert a patch.
    let o = run(&kc, &reg.addr, &["plan", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["action"], "skip");
    assert!(v[0]["reason"].as_str().unwrap().contains("Argo CD"));

    let mut plan = args("plan");
    plan.push("--json");
    let o = run(&kc, &reg.addr, &plan);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["action"], "update", "{v}");
    assert_eq!(v[0]["via"], "git");
    assert_eq!(v[0]["repo"], url.as_str());
    assert_eq!(v[0]["branch"], "main");
    assert_eq!(v[0]["file"], "clusters/home/iot/sensor.yaml");
    assert_eq!(v[0]["target"], target.as_str());

    let o = run(&kc, &reg.addr, &args("once"));
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let reqs = api.received_requests().await.unwrap();
    assert!(
        !reqs.iter().any(|r| r.method.as_str() == "PATCH"),
        "an Argo CD workload is never patched live"
    );
    assert!(reqs.iter().any(|r| r.method.as_str() == "POST"
        && String::from_utf8_lossy(&r.body).contains("CommittedToGit")));
    let clone = tempfile::tempdir().unwrap();
    git_in(clone.path(), &["clone", "-q", &url, "c"]);
    let got =
        std::fs::read_to_string(clone.path().join("c/clusters/home/iot/sensor.yaml")).unwrap();
    assert_eq!(
        got,
        manifest.replace(&old, &target),
        "only the image value changes, and a plain value stays plain"
    );
    assert_eq!(
        git_in(&clone.path().join("c"), &["log", "-1", "--format=%an"]),
        "ferry-bot"
    );

    // Argo CD has not synced yet: a second pass sees the change in git and does nothing.
    let o = run(&kc, &reg.addr, &plan);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["action"], "none", "{v}");
    assert!(v[0]["reason"].as_str().unwrap().contains("already written"));

    // A human reverts ferry's commit: the digest is quarantined.
    git_in(
        &clone.path().join("c"),
        &["config", "user.email", "ops@example.invalid"],
    );
    git_in(&clone.path().join("c"), &["config", "user.name", "ops"]);
    git_in(&clone.path().join("c"), &["revert", "--no-edit", "HEAD"]);
    git_in(&clone.path().join("c"), &["push", "-q", "origin", "main"]);
    let o = run(&kc, &reg.addr, &plan);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["action"], "skip", "{v}");
    assert!(
        v[0]["reason"]
            .as_str()
            .unwrap()
            .contains("reverted in git by ops"),
        "{v}"
    );
}

#[tokio::test]
async fn beta_to_production_promotion_waits_for_the_soak() {
    let reg = Registry::start();
    let c = plain_client(&reg.addr);
    let beta_img = push_image(
        &c,
        &reg.reference("acme/svc:latest"),
        &["linux/amd64", "linux/arm64"],
        Flavor::Oci,
        false,
        false,
        "beta",
    )
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let pinned = format!("{}@{}", reg.reference("acme/svc:latest"), beta_img.digest);
    let prod_old = format!(
        "{}@sha256:4444444444444444444444444444444444444444444444444444444444444444",
        reg.reference("acme/svc:latest")
    );
    let mut beta = deployment(
        "svc-beta",
        json!({"ferry.dev/policy": "digest", "ferry.dev/rolled-at": format!("app={}@{}", beta_img.digest, now - 3 * 86_400)}),
        json!({}),
        json!([{"name": "app", "image": pinned}]),
    );
    beta["metadata"]["namespace"] = json!("iot");
    beta["status"] = json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1});
    let prod = deployment(
        "svc",
        json!({"ferry.dev/policy": "digest", "ferry.dev/min-age": "72h", "ferry.dev/promote-from": "iot/Deployment/svc-beta"}),
        json!({}),
        json!([{"name": "app", "image": prod_old}]),
    );
    let slow = deployment(
        "svc-slow",
        json!({"ferry.dev/policy": "digest", "ferry.dev/min-age": "30d", "ferry.dev/promote-from": "iot/Deployment/svc-beta"}),
        json!({}),
        json!([{"name": "app", "image": prod_old}]),
    );
    let fresh = deployment(
        "edge",
        json!({"ferry.dev/policy": "digest", "ferry.dev/min-age": "2h"}),
        json!({}),
        json!([{"name": "app", "image": prod_old}]),
    );
    // Unpinned images: the digest the pods run (imageID) is the baseline.
    let plain = reg.reference("acme/svc:latest").to_string();
    let behind = deployment(
        "behind",
        json!({"ferry.dev/policy": "digest"}),
        json!({}),
        json!([{"name": "app", "image": plain}]),
    );
    let current = deployment(
        "current",
        json!({"ferry.dev/policy": "digest"}),
        json!({}),
        json!([{"name": "app", "image": plain}]),
    );
    let api = fake_api(vec![beta, prod, slow, fresh, behind, current], vec![]).await;
    let pod = |name: &str, app: &str, digest: &str| {
        json!({"metadata": {"name": name, "namespace": "iot", "labels": {"app": app}},
        "status": {"containerStatuses": [{"name": "app", "image": plain, "imageID": format!("{}@{digest}", reg.reference("acme/svc").name()), "ready": true, "restartCount": 0}]}})
    };
    Mock::given(method("GET"))
        .and(path("/api/v1/namespaces/iot/pods"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(
            "Pod",
            vec![
                pod(
                    "behind-1",
                    "behind",
                    "sha256:5555555555555555555555555555555555555555555555555555555555555555",
                ),
                pod("current-1", "current", &beta_img.digest.to_string()),
                pod("current-2", "current", &beta_img.digest.to_string()),
            ],
        )))
        .with_priority(1)
        .mount(&api)
        .await;
    for name in ["edge", "svc", "behind"] {
        Mock::given(method("PATCH"))
            .and(path(format!(
                "/apis/apps/v1/namespaces/iot/deployments/{name}"
            )))
            .respond_with(ResponseTemplate::new(200).set_body_json(deployment(
                name,
                json!({}),
                json!({}),
                json!([{"name": "app", "image": "x"}]),
            )))
            .expect(1)
            .mount(&api)
            .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&api, dir.path());
    let v = plan_json(&kc, &reg.addr);
    let row = |name: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(row("svc")["action"], "update", "{}", row("svc"));
    assert_eq!(
        row("svc")["target"],
        pinned.as_str(),
        "production gets exactly what beta ran"
    );
    assert_eq!(row("svc-slow")["action"], "skip");
    let left = row("svc-slow")["soak_remaining_seconds"].as_u64().unwrap();
    assert!(
        (26 * 86_400..=27 * 86_400).contains(&left),
        "{}",
        row("svc-slow")
    );
    assert!(
        row("svc-slow")["reason"]
            .as_str()
            .unwrap()
            .contains("soaking")
    );
    assert_eq!(row("behind")["action"], "update", "{}", row("behind"));
    assert_eq!(
        row("behind")["current_digest"],
        "sha256:5555555555555555555555555555555555555555555555555555555555555555"
    );
    assert_eq!(row("current")["action"], "none", "{}", row("current"));
    assert!(
        row("current")["reason"].as_str().unwrap().contains("runs"),
        "{}",
        row("current")
    );
    assert_eq!(row("edge")["action"], "skip");
    assert!(
        row("edge")["reason"]
            .as_str()
            .unwrap()
            .contains("first seen now")
    );
    // once records the first sighting on `edge` (metadata only, no rollout).
    let o = run(&kc, &reg.addr, &["once", "--json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let reqs = api.received_requests().await.unwrap();
    let edge = reqs
        .iter()
        .find(|r| r.method.as_str() == "PATCH" && r.url.path().ends_with("/edge"))
        .unwrap();
    let body: Value = serde_json::from_slice(&edge.body).unwrap();
    assert!(
        body["metadata"]["annotations"]["ferry.dev/first-seen"]
            .as_str()
            .unwrap()
            .starts_with(&format!("app={}@", beta_img.digest)),
        "{body}"
    );
    assert!(
        body.get("spec").is_none(),
        "no image change while soaking: {body}"
    );
}

#[tokio::test]
async fn a_helm_label_is_not_guessed_at_when_applications_are_forbidden() {
    let reg = Registry::start();
    let c = plain_client(&reg.addr);
    let pushed = push_image(
        &c,
        &reg.reference("acme/sensor:latest"),
        &["linux/amd64", "linux/arm64"],
        Flavor::Oci,
        false,
        true,
        "new",
    )
    .await;
    let old = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    let image = format!("{}@{old}", reg.reference("acme/sensor:latest"));
    let helm = deployment(
        "grafana",
        json!({"ferry.dev/policy": "digest"}),
        json!({"app.kubernetes.io/instance": "grafana"}),
        json!([{"name": "app", "image": image}]),
    );
    let api = fake_api(vec![helm], vec![]).await;
    Mock::given(method("GET"))
        .and(path("/apis/argoproj.io/v1alpha1/namespaces/argocd/applications"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
            "message": "applications.argoproj.io is forbidden: User \"system:serviceaccount:ferry:ferry-deploy\" cannot list resource \"applications\""
        })))
        .mount(&api)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&api, dir.path());
    let o = run(&kc, &reg.addr, &["once"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("skip") && out.contains("cannot be read"),
        "{out}"
    );
    assert!(out.contains("forbidden"), "the reason says why: {out}");
    let reqs = api.received_requests().await.unwrap();
    assert!(
        !reqs.iter().any(|r| r.method.as_str() == "PATCH"),
        "never patched on a guess"
    );
    let _ = pushed;
}

/// Wait (bounded) until `f` gives a value.
async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_push_rolls_the_workload_through_the_webhook_within_seconds() {
    const SECRET: &str = "registry-to-ferry";
    let webhook_addr = format!("127.0.0.1:{}", ferry_tests::free_port());
    let reg = Registry::start_with(ferry_tests::RegistryOptions {
        notify: Some((
            format!("http://{webhook_addr}/webhooks/distribution"),
            Some(format!("Bearer {SECRET}")),
        )),
        ..Default::default()
    });
    let first = push_sensor(&reg, "first").await;
    let running = format!("{}@{}", reg.reference("acme/sensor:latest"), first.digest);
    let api = sensor_api(&running).await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::query_param("watch", "true"))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(600)))
        .with_priority(1)
        .mount(&api)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/apis/apps/v1/namespaces/iot/deployments/sensor"))
        .respond_with(ResponseTemplate::new(200).set_body_json(deployment(
            "sensor",
            json!({}),
            json!({}),
            json!([{"name": "app", "image": "x"}]),
        )))
        .mount(&api)
        .await;
    // The rollout completes: the health gate keeps the update.
    let mut healthy = deployment("sensor", json!({}), json!({}), json!([]));
    healthy["status"] = json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1});
    Mock::given(method("GET"))
        .and(path("/apis/apps/v1/namespaces/iot/deployments/sensor"))
        .respond_with(ResponseTemplate::new(200).set_body_json(healthy))
        .mount(&api)
        .await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/notify"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&api, dir.path());
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let metrics_addr = format!("127.0.0.1:{}", ferry_tests::free_port());
    let notify = format!("{}/notify", receiver.uri());
    let mut child = Command::new(bin("ferry-deploy"))
        .arg("--kubeconfig")
        .arg(&kc)
        .args(["--plain-http", &reg.addr, "--notify", &notify, "run"])
        .args(["--interval", "1h", "--no-leader-election"])
        .args([
            "--metrics-addr",
            &metrics_addr,
            "--webhook-addr",
            &webhook_addr,
        ])
        .arg("--webhook-secret-file")
        .arg(&secret_file)
        .env("DOCKER_CONFIG", "/nonexistent-ferry-test")
        .spawn()
        .unwrap();
    eventually("the first pass", async || {
        matches!(http_get(&metrics_addr, "/readyz"), Some((200, _))).then_some(())
    })
    .await;
    // The interval is an hour: only the registry's notification can start the next pass.
    let second = push_sensor(&reg, "second").await;
    let patch: Value = eventually("the webhook-triggered patch", async || {
        let reqs = api.received_requests().await?;
        let req = reqs.iter().find(|r| r.method.as_str() == "PATCH")?;
        serde_json::from_slice(&req.body).ok()
    })
    .await;
    let image = patch["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(image.ends_with(&second.digest.to_string()), "{image}");
    let metrics = http_get(&metrics_addr, "/metrics").unwrap().1;
    assert!(
        metrics.contains("ferry_webhooks_total{source=\"distribution\",result=\"accepted\"}"),
        "{metrics}"
    );
    let note: Value = eventually("the update notification", async || {
        let reqs = receiver.received_requests().await?;
        serde_json::from_slice(&reqs.first()?.body).ok()
    })
    .await;
    assert_eq!(note["event"], "update");
    assert_eq!(note["name"], "sensor");
    assert_eq!(note["to"].as_str(), Some(image.as_str()));
    // The status page: JSON, and the HTML as a real browser renders it.
    let status: Value = serde_json::from_str(&http_get(&metrics_addr, "/status.json").unwrap().1)
        .expect("status.json");
    assert_eq!(status["workloads"][0]["name"], "sensor");
    assert_eq!(status["recent"][0]["event"], "update");
    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{metrics_addr}/");
    let dom = tokio::task::spawn_blocking(move || {
        ferry_tests::chromium(profile.path(), &["--dump-dom".to_string()], &url)
    })
    .await
    .unwrap();
    assert!(dom.contains("iot/Deployment/sensor"), "{dom}");
    assert!(
        dom.contains(&second.digest.to_string()),
        "the update is listed: {dom}"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
}

#[test]
fn webhooks_without_a_secret_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, "apiVersion: v1\nkind: Config\nclusters:\n- name: f\n  cluster:\n    server: http://127.0.0.1:1\ncontexts:\n- name: f\n  context:\n    cluster: f\n    user: f\ncurrent-context: f\nusers:\n- name: f\n  user: {}\n").unwrap();
    let o = Command::new(bin("ferry-deploy"))
        .arg("--kubeconfig")
        .arg(&kc)
        .args([
            "run",
            "--webhook-addr",
            "127.0.0.1:0",
            "--no-leader-election",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("webhook secret is missing"), "{err}");
}

#[test]
fn a_refused_kubernetes_api_is_named_with_its_address_and_cause() {
    let dir = tempfile::tempdir().unwrap();
    let port = ferry_tests::free_port();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, format!("apiVersion: v1\nkind: Config\nclusters:\n- name: f\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: f\n  context:\n    cluster: f\n    user: f\ncurrent-context: f\nusers:\n- name: f\n  user: {{}}\n")).unwrap();
    let o = Command::new(bin("ferry-deploy"))
        .arg("--kubeconfig")
        .arg(&kc)
        .arg("plan")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    let server = format!("127.0.0.1:{port}");
    assert_eq!(err.matches(&server).count(), 1, "the address, once: {err}");
    assert!(
        err.to_lowercase().contains("connection refused"),
        "the cause: {err}"
    );
    assert!(
        !err.contains("\u{1b}["),
        "no colour codes when not a terminal: {err}"
    );
}
