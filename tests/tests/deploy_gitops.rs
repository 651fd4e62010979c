//! Git write-back through the controller (`ferry-deploy plan` / `once --git-write-back`) with a
//! real registry and a real git daemon on 127.0.0.1 and a fake Kubernetes API serving the Argo
//! CD Applications: Helm values files (a chart in git; a chart from a Helm repository with
//! values from a `$values` git source; a single-source Helm repository chart refused), and
//! commits to a separate write branch (annotation and flag) without waiting for a sync.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::{deployment, fake_api, kubeconfig, run};
use ferry_tests::{Flavor, GitDaemon, GitRepo, Registry, git_in, plain_client, push_image};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// `acme/sensor:build-9` and `:build-10` (single-platform); returns their digests.
async fn push_builds(reg: &Registry) -> (String, String) {
    let c = plain_client(&reg.addr);
    let mut out = Vec::new();
    for tag in ["build-9", "build-10"] {
        let r = reg.reference(&format!("acme/sensor:{tag}"));
        let p = push_image(&c, &r, &["linux/amd64"], Flavor::Oci, true, false, tag).await;
        out.push(p.digest.to_string());
    }
    (out[0].clone(), out[1].clone())
}

async fn serve_application(api: &MockServer, name: &str, spec: Value) {
    Mock::given(method("GET"))
        .and(path(format!(
            "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/{name}"
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd"}, "spec": spec})))
        .mount(api)
        .await;
}

fn tracked(app: &str, name: &str, extra: Value) -> Value {
    let mut a = json!({
        "ferry.dev/policy": r"numerical:^build-(\d+)$",
        "argocd.argoproj.io/tracking-id": format!("{app}:apps/Deployment:iot/{name}"),
    });
    for (k, v) in extra.as_object().unwrap() {
        a[k] = v.clone();
    }
    a
}

fn row<'v>(v: &'v Value, name: &str) -> &'v Value {
    v.as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no row for {name}: {v}"))
}

fn ok(o: &std::process::Output) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[tokio::test]
async fn helm_values_files_are_written_through_the_controller() {
    let reg = Registry::start();
    let (d9, d10) = push_builds(&reg).await;
    let repo = reg.reference("acme/sensor").name();
    let current = format!("{repo}:build-9@{d9}");
    let daemon = GitDaemon::start();
    let url = daemon.create("config.git");
    let r = GitRepo::new();
    let chart_values = format!(
        "# Default values for sensor.\nreplicaCount: 1\nimage:\n  repository: {repo}  # built by CI\n  tag: build-9\n  pullPolicy: IfNotPresent\n"
    );
    let env_values = format!(
        "gateway:\n  replicas: 2\nsensor:\n  image:\n    repository: {repo}\n    tag: \"build-9\"   # pinned by ferry\n    digest: {d9}\n"
    );
    r.write(
        "charts/sensor/Chart.yaml",
        "apiVersion: v2\nname: sensor\nversion: 0.1.0\n",
    );
    r.write("charts/sensor/values.yaml", &chart_values);
    r.write("envs/prod/gateway.yaml", &env_values);
    r.write(
        "charts/sensor/relay.yaml",
        "image:\n  tag: build-7  # pinned by hand\n",
    );
    r.commit("initial");
    r.git(&["push", "-q", &url, "main"]);

    let api = fake_api(vec![
        deployment("sensor", tracked("sensor", "sensor", json!({})), &current),
        deployment(
            "gateway",
            tracked(
                "gateway",
                "gateway",
                json!({"ferry.dev/helm-image": "sensor.image"}),
            ),
            &current,
        ),
        deployment("hub", tracked("hub", "hub", json!({})), &current),
        deployment("relay", tracked("relay", "relay", json!({})), &current),
    ])
    .await;
    // A chart in git.
    serve_application(
        &api,
        "sensor",
        json!({"source": {"repoURL": url, "path": "charts/sensor",
        "targetRevision": "main", "helm": {"valueFiles": ["values.yaml"]}}}),
    )
    .await;
    // A chart from a Helm repository, values from a git `ref` source.
    serve_application(
        &api,
        "gateway",
        json!({"sources": [
        {"repoURL": "https://charts.example.invalid", "chart": "gateway", "targetRevision": "1.4.0",
         "helm": {"valueFiles": ["$values/envs/prod/gateway.yaml"]}},
        {"repoURL": url, "targetRevision": "main", "ref": "values"}]}),
    )
    .await;
    // A later values file sets the image: an edit of the first would change nothing.
    serve_application(
        &api,
        "relay",
        json!({"source": {"repoURL": url, "path": "charts/sensor",
        "targetRevision": "main", "helm": {"valueFiles": ["values.yaml", "relay.yaml"]}}}),
    )
    .await;
    // A chart from a Helm repository and nothing in git.
    serve_application(
        &api,
        "hub",
        json!({"source": {"repoURL": "https://charts.example.invalid",
        "chart": "hub", "targetRevision": "2.0.0"}}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&api, dir.path());
    let cache = dir.path().join("git-cache");
    let git = ["--git-write-back", "--git-cache", cache.to_str().unwrap()];

    let o = run(&kc, &reg.addr, &[&["plan", "--json"][..], &git].concat());
    ok(&o);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let target = format!("{repo}:build-10@{d10}");
    for (name, file) in [
        ("sensor", "charts/sensor/values.yaml"),
        ("gateway", "envs/prod/gateway.yaml"),
    ] {
        let r = row(&v, name);
        assert_eq!(r["action"], "update", "{r}");
        assert_eq!(r["via"], "git");
        assert_eq!(r["repo"], url.as_str());
        assert_eq!(r["file"], file, "{r}");
        assert_eq!(r["target"], target.as_str());
    }
    let hub = row(&v, "hub");
    assert_eq!(hub["action"], "skip");
    assert!(
        hub["reason"]
            .as_str()
            .unwrap()
            .contains("comes from the Helm repository https://charts.example.invalid"),
        "{hub}"
    );
    let relay = row(&v, "relay");
    assert_eq!(relay["action"], "skip");
    assert!(
        relay["reason"]
            .as_str()
            .unwrap()
            .contains("charts/sensor/relay.yaml, applied after charts/sensor/values.yaml in helm.valueFiles, sets image"),
        "{relay}"
    );

    ok(&run(&kc, &reg.addr, &[&["once"][..], &git].concat()));
    let clone = tempfile::tempdir().unwrap();
    git_in(clone.path(), &["clone", "-q", &url, "c"]);
    let c = clone.path().join("c");
    let read = |f: &str| std::fs::read_to_string(c.join(f)).unwrap();
    // No digest key: the tag carries it. Only that scalar changes; comments stay.
    assert_eq!(
        read("charts/sensor/values.yaml"),
        chart_values.replace("tag: build-9", &format!("tag: build-10@{d10}"))
    );
    // A digest key: the tag keeps the tag (quoting kept), the digest moves.
    assert_eq!(
        read("envs/prod/gateway.yaml"),
        env_values
            .replace("\"build-9\"", "\"build-10\"")
            .replace(&d9, &d10)
    );
    assert_eq!(
        git_in(&c, &["rev-list", "--count", "HEAD"]),
        "2",
        "one commit for both"
    );
    let reqs = api.received_requests().await.unwrap();
    assert!(!reqs.iter().any(|r| r.method.as_str() == "PATCH"));

    // Not synced yet: the next pass sees both written.
    let o = run(&kc, &reg.addr, &[&["plan", "--json"][..], &git].concat());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    for name in ["sensor", "gateway"] {
        assert_eq!(row(&v, name)["action"], "none", "{v}");
    }
}

#[tokio::test]
async fn commits_go_to_the_write_branch_and_are_not_waited_for() {
    let reg = Registry::start();
    let (d9, d10) = push_builds(&reg).await;
    let repo = reg.reference("acme/sensor").name();
    let current = format!("{repo}:build-9@{d9}");
    let daemon = GitDaemon::start();
    let url = daemon.create("config.git");
    let r = GitRepo::new();
    let manifest = |name: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: iot\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: {current}\n"
        )
    };
    r.write("apps/a.yaml", &manifest("a"));
    r.write("apps/b.yaml", &manifest("b"));
    let base = r.commit("initial");
    r.git(&["push", "-q", &url, "main"]);
    let api = fake_api(vec![
        deployment(
            "a",
            tracked(
                "apps",
                "a",
                json!({"ferry.dev/git-write-branch": "ferry/a"}),
            ),
            &current,
        ),
        deployment("b", tracked("apps", "b", json!({})), &current),
    ])
    .await;
    serve_application(
        &api,
        "apps",
        json!({"source": {"repoURL": url, "path": "apps", "targetRevision": "main"}}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&api, dir.path());
    let cache = dir.path().join("git-cache");
    let git = [
        "--git-write-back",
        "--git-cache",
        cache.to_str().unwrap(),
        "--git-write-branch",
        "ferry/all",
    ];

    let o = run(&kc, &reg.addr, &[&["plan", "--json"][..], &git].concat());
    ok(&o);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    // The annotation wins over the flag.
    for (name, branch) in [("a", "ferry/a"), ("b", "ferry/all")] {
        let r = row(&v, name);
        assert_eq!(r["action"], "update", "{r}");
        assert_eq!(r["branch"], branch);
        assert_eq!(r["base_branch"], "main");
    }
    let o = run(&kc, &reg.addr, &[&["plan"][..], &git].concat());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(&format!("via git: {url} (ferry/a, from main) apps/a.yaml")),
        "{text}"
    );

    // --wait: a write branch is merged by a person, so nothing waits for Argo CD (the fake API
    // never syncs; waiting would time out and fail).
    let once = [&["once", "--wait", "--rollout-timeout", "2s"][..], &git].concat();
    ok(&run(&kc, &reg.addr, &once));
    let clone = tempfile::tempdir().unwrap();
    git_in(clone.path(), &["clone", "-q", &url, "c"]);
    let c = clone.path().join("c");
    let target = format!("{repo}:build-10@{d10}");
    let show = |rev: &str, f: &str| git_in(&c, &["show", &format!("origin/{rev}:{f}")]);
    assert_eq!(
        git_in(&c, &["rev-parse", "origin/main"]),
        base,
        "main is untouched"
    );
    assert!(show("ferry/a", "apps/a.yaml").contains(&target));
    assert!(!show("ferry/a", "apps/b.yaml").contains(&target));
    assert!(show("ferry/all", "apps/b.yaml").contains(&target));
    assert!(!show("ferry/all", "apps/a.yaml").contains(&target));
    for b in ["ferry/a", "ferry/all"] {
        assert_eq!(
            git_in(&c, &["rev-parse", &format!("origin/{b}~1")]),
            base,
            "{b} starts at main's tip"
        );
    }
    let reqs = api.received_requests().await.unwrap();
    let events: Vec<String> = reqs
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| String::from_utf8_lossy(&r.body).to_string())
        .collect();
    assert!(
        events.iter().any(|e| e.contains("merge ferry/a into main")),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| e.contains("NotSynced")),
        "{events:?}"
    );

    // The write branch already holds the change: nothing more to do until it is merged.
    let o = run(&kc, &reg.addr, &[&["plan", "--json"][..], &git].concat());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(row(&v, "a")["action"], "none", "{v}");
    assert_eq!(row(&v, "b")["action"], "none", "{v}");

    // A person merges ferry/a into main, then reverts it there: the digest is quarantined,
    // although ferry/a (now behind main) still holds the change.
    git_in(&c, &["config", "user.email", "ops@example.invalid"]);
    git_in(&c, &["config", "user.name", "ops"]);
    git_in(&c, &["merge", "-q", "--ff-only", "origin/ferry/a"]);
    git_in(&c, &["revert", "--no-edit", "HEAD"]);
    git_in(&c, &["push", "-q", "origin", "main"]);
    let o = run(&kc, &reg.addr, &[&["plan", "--json"][..], &git].concat());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let a = row(&v, "a");
    assert_eq!(a["action"], "skip", "{v}");
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .contains("reverted in git by ops"),
        "{a}"
    );
}
