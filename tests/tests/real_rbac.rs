//! The shipped manifests and RBAC against a real API server (`scripts/testenv.sh`): `deploy/`
//! applies cleanly with server-side dry-run, a missing permission is named in ferry's error and
//! Event while the rest is still updated, and Argo CD `Application`s (a CRD of our own) are read
//! with the shipped RBAC to keep ferry's hands off Argo CD-managed workloads.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod real;

use std::time::Duration;

use ferry_tests::{GitDaemon, GitRepo, Registry, git_in};
use real::{Cluster, assert_all_as, ferry, identity, push, repo_root, show, wait_until};
use serde_json::{Value, json};

const FERRY_SA: &str = "system:serviceaccount:ferry:ferry-deploy";

fn deployment(ns: &str, kind: &str, name: &str, image: &str, labels: &str) -> String {
    let service = if kind == "StatefulSet" {
        format!("  serviceName: {name}\n")
    } else {
        String::new()
    };
    format!(
        "apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels: {{{labels}}}\n  annotations:\n    ferry.dev/policy: digest\nspec:\n  replicas: 1\n{service}  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: app\n        image: {image}\n"
    )
}

#[test]
fn the_shipped_manifests_apply_with_server_side_dry_run() {
    let cluster = Cluster::connect();
    for dir in ["deploy/base", "deploy/webhooks"] {
        let path = repo_root().join(dir);
        let o = cluster.kubectl(&["apply", "--dry-run=server", "-k", path.to_str().unwrap()]);
        assert!(
            o.status.success(),
            "{dir}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("(server dry run)"), "{dir}: {out}");
    }
}

/// The shipped ClusterRole without `patch` on statefulsets, bound to ServiceAccount
/// `ferry/limited-PID` (a fresh one per test run).
fn limited_service_account(cluster: &Cluster) -> String {
    cluster.apply_deploy_base();
    let name = format!("ferry-limited-{}", std::process::id());
    let mut role: Value = serde_json::from_str(&cluster.kubectl_ok(&[
        "get",
        "clusterrole",
        "ferry-deploy",
        "-o",
        "json",
    ]))
    .unwrap();
    let mut rules = Vec::new();
    for rule in role["rules"].as_array().unwrap() {
        let resources: Vec<&str> = rule["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        if !resources.contains(&"statefulsets") {
            rules.push(rule.clone());
            continue;
        }
        let mut others = rule.clone();
        others["resources"] = json!(
            resources
                .iter()
                .filter(|r| **r != "statefulsets")
                .collect::<Vec<_>>()
        );
        rules.push(others);
        let mut sts = rule.clone();
        sts["resources"] = json!(["statefulsets"]);
        sts["verbs"] = json!(
            rule["verbs"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|v| *v != "patch")
                .collect::<Vec<_>>()
        );
        rules.push(sts);
    }
    role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name}, "rules": rules,
    });
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "ferry"}],
    });
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": name, "namespace": "ferry"}});
    cluster.apply(
        &json!({"apiVersion": "v1", "kind": "List", "items": [role, binding, sa]}).to_string(),
    );
    name
}

#[test]
fn a_missing_permission_is_named_and_the_other_workloads_are_still_updated() {
    let cluster = Cluster::connect();
    let tmp = tempfile::tempdir().unwrap();
    let sa = limited_service_account(&cluster);
    let kc = cluster.sa_kubeconfig("ferry", &sa, tmp.path());
    let reg = Registry::start();
    let ns = cluster.namespace("rbac");
    let old = push(&reg, "store", "latest", "one");
    let pinned = format!("{}/store:latest@{}", reg.addr, old.digest);
    cluster.apply(&format!(
        "{}---\n{}",
        deployment(&ns, "Deployment", "web", &pinned, ""),
        deployment(&ns, "StatefulSet", "db", &pinned, "")
    ));
    // RBAC bindings take effect through an informer: wait until the API server knows them.
    wait_until(
        "the limited role is in force",
        Duration::from_secs(30),
        || {
            let user = format!("system:serviceaccount:ferry:{sa}");
            let can = |verb: &str| {
                cluster
                    .kubectl(&[
                        "auth",
                        "can-i",
                        verb,
                        "statefulsets.apps",
                        "-n",
                        &ns,
                        "--as",
                        &user,
                    ])
                    .status
                    .success()
            };
            can("list") && !can("patch")
        },
    );
    let new = push(&reg, "store", "latest", "two");
    let target = format!("{}/store:latest@{}", reg.addr, new.digest);
    let id = identity("rbac");
    let o = ferry(&kc, &reg.addr, &id, &["-n", &ns, "--json", "once"]);
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    let failures = out["applied"]["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{out}");
    let message = failures[0]["message"].as_str().unwrap();
    assert_eq!(failures[0]["stage"], "patch");
    assert!(
        message.contains("cannot patch resource \"statefulsets\""),
        "the error does not name the verb and resource: {message}"
    );
    // The Deployment was updated; the StatefulSet is where it was and says why in an Event.
    assert_eq!(
        cluster.template_image(&ns, "deployment", "web", "app"),
        target
    );
    assert_eq!(
        cluster.template_image(&ns, "statefulset", "db", "app"),
        pinned
    );
    let events = cluster.events(&ns, "db");
    assert!(
        events.iter().any(|(reason, msg)| reason == "RedeployFailed"
            && msg.contains("patch")
            && msg.contains("statefulsets")),
        "events: {events:?}"
    );
    // The API server refused exactly that one request, to that ServiceAccount.
    let mine = assert_all_as(&cluster, &id, &format!("system:serviceaccount:ferry:{sa}"));
    let refused: Vec<&Value> = mine
        .iter()
        .filter(|e| e["responseStatus"]["code"] == 403)
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["verb"], "patch");
    assert_eq!(refused[0]["objectRef"]["resource"], "statefulsets");
}

/// The Argo CD `Application` CRD (a minimal schema of our own: what ferry reads).
fn install_application_crd(cluster: &Cluster) {
    cluster.apply(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: applications.argoproj.io
spec:
  group: argoproj.io
  scope: Namespaced
  names: {kind: Application, listKind: ApplicationList, plural: applications, singular: application, shortNames: [app]}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"#,
    );
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        "crd/applications.argoproj.io",
    ]);
}

#[test]
fn argocd_managed_workloads_are_committed_to_git_never_patched_live() {
    let cluster = Cluster::connect();
    let tmp = tempfile::tempdir().unwrap();
    let kc = cluster.ferry_kubeconfig(tmp.path());
    install_application_crd(&cluster);
    let reg = Registry::start();
    let ns = cluster.namespace("argo-apps");
    let argocd = cluster.namespace("argocd");
    let old = push(&reg, "shop", "latest", "one");
    let pinned = format!("{}/shop:latest@{}", reg.addr, old.digest);

    // The config repository Argo CD would sync from, on a git daemon.
    let daemon = GitDaemon::start();
    let url = daemon.create("config.git");
    let repo = GitRepo::new();
    let manifest = deployment(
        &ns,
        "Deployment",
        "shop",
        &pinned,
        "app.kubernetes.io/instance: shop",
    );
    repo.write("apps/shop/deployment.yaml", &manifest);
    repo.commit("initial");
    repo.git(&["push", "-q", &url, "main"]);
    cluster.apply(&format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: shop\n  namespace: {argocd}\nspec:\n  project: default\n  source:\n    repoURL: {url}\n    path: apps/shop\n    targetRevision: main\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: {ns}\n"
    ));
    cluster.apply(&manifest);
    // A Helm release: the same instance label, no Application of that name.
    cluster.apply(&deployment(
        &ns,
        "Deployment",
        "helm-app",
        &pinned,
        "app.kubernetes.io/instance: helm-app",
    ));
    let shop_rv = cluster.get(&ns, "deployment", "shop")["metadata"]["resourceVersion"].clone();

    let new = push(&reg, "shop", "latest", "two");
    let target = format!("{}/shop:latest@{}", reg.addr, new.digest);
    let common = [
        "-n",
        ns.as_str(),
        "--argocd-namespace",
        argocd.as_str(),
        "--json",
    ];
    let id = identity("argo-live");
    let o = ferry(&kc, &reg.addr, &id, &[&common[..], &["once"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    let shop = out["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "shop")
        .unwrap();
    assert_eq!(shop["action"], "skip", "{out}");
    assert!(
        shop["reason"].as_str().unwrap().contains("Argo CD"),
        "{shop}"
    );
    assert_eq!(
        cluster.get(&ns, "deployment", "shop")["metadata"]["resourceVersion"],
        shop_rv
    );
    assert_eq!(
        cluster.template_image(&ns, "deployment", "helm-app", "app"),
        target
    );
    let mine = assert_all_as(&cluster, &id, FERRY_SA);
    assert!(
        mine.iter()
            .any(|e| e["objectRef"]["resource"] == "applications"
                && e["verb"] == "list"
                && e["responseStatus"]["code"] == 200),
        "ferry did not read the Applications with the shipped RBAC"
    );
    assert!(
        !mine
            .iter()
            .any(|e| e["verb"] == "patch" && e["objectRef"]["name"] == "shop"),
        "ferry patched an Argo CD-managed workload"
    );

    // With --git-write-back the update becomes a commit in the Application's repository, and
    // still no live patch.
    let cache = tmp.path().join("git-cache");
    let id = identity("argo-git");
    let o = ferry(
        &kc,
        &reg.addr,
        &id,
        &[
            &common[..],
            &[
                "--git-write-back",
                "--git-cache",
                cache.to_str().unwrap(),
                "once",
            ],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let check = tempfile::tempdir().unwrap();
    git_in(check.path(), &["clone", "-q", &url, "c"]);
    let committed =
        std::fs::read_to_string(check.path().join("c/apps/shop/deployment.yaml")).unwrap();
    assert!(committed.contains(&target), "{committed}");
    assert_eq!(
        cluster.get(&ns, "deployment", "shop")["metadata"]["resourceVersion"],
        shop_rv
    );
    let mine = assert_all_as(&cluster, &id, FERRY_SA);
    assert!(
        !mine
            .iter()
            .any(|e| e["verb"] == "patch" && e["objectRef"]["name"] == "shop")
    );
}
