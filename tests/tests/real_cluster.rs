//! ferry-deploy against a real control plane (`scripts/testenv.sh`): real patches, real
//! Deployment/StatefulSet/DaemonSet/CronJob controllers rolling them, real rollbacks and Events,
//! ferry running as the `deploy/base` ServiceAccount. What is asserted is read back from the API
//! server or its audit log.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod real;

use std::time::Duration;

use ferry_tests::Registry;
use real::{Cluster, assert_all_as, ferry, identity, push, show, wait_until};
use serde_json::Value;

const FERRY_SA: &str = "system:serviceaccount:ferry:ferry-deploy";

/// The manifests of one opted-in workload of `kind` running `image` (replicas 2 where there
/// are replicas; a CronJob that does not fire during the test).
fn workload(kind: &str, name: &str, image: &str, opt_in: bool) -> String {
    let annotations = if opt_in {
        "  annotations:\n    ferry.dev/policy: digest\n"
    } else {
        ""
    };
    let pod = format!(
        "metadata:\n      labels: {{app: {name}}}\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: app\n        image: {image}\n"
    );
    match kind {
        "Deployment" => format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n{annotations}spec:\n  replicas: 2\n  progressDeadlineSeconds: 15\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    {pod}"
        ),
        "StatefulSet" => format!(
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: {name}\n{annotations}spec:\n  replicas: 2\n  serviceName: {name}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    {pod}"
        ),
        "DaemonSet" => format!(
            "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: {name}\n{annotations}spec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    {pod}"
        ),
        "CronJob" => format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: {name}\n{annotations}spec:\n  schedule: \"0 0 1 1 *\"\n  jobTemplate:\n    spec:\n      template:\n        metadata:\n          labels: {{app: {name}}}\n        spec:\n          restartPolicy: Never\n          containers:\n          - name: app\n            image: {image}\n"
        ),
        other => panic!("no manifest for {other}"),
    }
}

/// Apply `manifests` in `ns`.
fn apply_in(cluster: &Cluster, ns: &str, manifests: &[String]) {
    let yaml: Vec<String> = manifests
        .iter()
        .map(|m| m.replacen("metadata:\n", &format!("metadata:\n  namespace: {ns}\n"), 1))
        .collect();
    cluster.apply(&yaml.join("---\n"));
}

/// The rollout of a workload is complete and available, as the controllers report it.
fn rolled_out(cluster: &Cluster, ns: &str, kind: &str, name: &str) -> bool {
    let w = cluster.get(ns, kind, name);
    let (generation, st) = (&w["metadata"]["generation"], &w["status"]);
    if st["observedGeneration"] != *generation {
        return false;
    }
    match kind {
        "daemonset" => {
            let want = &st["desiredNumberScheduled"];
            want.as_i64().unwrap_or(0) > 0
                && st["updatedNumberScheduled"] == *want
                && st["numberAvailable"] == *want
        }
        _ => {
            let want = &w["spec"]["replicas"];
            st["updatedReplicas"] == *want
                && st["availableReplicas"] == *want
                && st["replicas"] == *want
        }
    }
}

/// The images the pods of `app` run (their spec), as the API server has them.
fn pod_images(cluster: &Cluster, ns: &str, app: &str) -> Vec<String> {
    let list: Value = serde_json::from_str(&cluster.kubectl_ok(&[
        "-n",
        ns,
        "get",
        "pods",
        "-l",
        &format!("app={app}"),
        "-o",
        "json",
    ]))
    .unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            p["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn once_wait_rolls_every_kind_through_the_real_controllers() {
    let cluster = Cluster::connect();
    let tmp = tempfile::tempdir().unwrap();
    let kc = cluster.ferry_kubeconfig(tmp.path());
    let reg = Registry::start();
    let old = push(&reg, "sensor", "latest", "old");
    let pinned = format!("{}/sensor:latest@{}", reg.addr, old.digest);
    let ns = cluster.namespace("kinds");
    let kinds = ["Deployment", "StatefulSet", "DaemonSet", "CronJob"];
    let mut manifests: Vec<String> = kinds
        .iter()
        .map(|k| workload(k, &k.to_lowercase(), &pinned, true))
        .collect();
    manifests.push(workload("Deployment", "bystander", &pinned, false));
    apply_in(&cluster, &ns, &manifests);
    for k in ["deployment", "statefulset", "daemonset"] {
        wait_until(&format!("{k} ready"), Duration::from_secs(60), || {
            rolled_out(&cluster, &ns, k, k)
        });
    }
    wait_until("bystander ready", Duration::from_secs(60), || {
        rolled_out(&cluster, &ns, "deployment", "bystander")
    });
    let bystander_rv =
        cluster.get(&ns, "deployment", "bystander")["metadata"]["resourceVersion"].clone();

    let new = push(&reg, "sensor", "latest", "new");
    let target = format!("{}/sensor:latest@{}", reg.addr, new.digest);
    let id = identity("kinds");
    let o = ferry(
        &kc,
        &reg.addr,
        &id,
        &["-n", &ns, "once", "--wait", "--rollout-timeout", "90s"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));

    for k in ["deployment", "statefulset", "daemonset"] {
        assert_eq!(cluster.template_image(&ns, k, k, "app"), target, "{k}");
        // ferry's health gate said healthy; the controllers agree, and every pod runs it.
        assert!(rolled_out(&cluster, &ns, k, k), "{k} not rolled out");
        let images = pod_images(&cluster, &ns, k);
        assert!(
            !images.is_empty() && images.iter().all(|i| *i == target),
            "{k} pods run {images:?}"
        );
    }
    assert_eq!(
        cluster.template_image(&ns, "cronjob", "cronjob", "app"),
        target
    );
    cluster.kubectl_ok(&[
        "-n",
        &ns,
        "create",
        "job",
        "manual",
        "--from=cronjob/cronjob",
    ]);
    let job = cluster.get(&ns, "job", "manual");
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["image"],
        target.as_str()
    );
    // The workload that did not opt in was not written at all.
    let bystander = cluster.get(&ns, "deployment", "bystander");
    assert_eq!(bystander["metadata"]["resourceVersion"], bystander_rv);
    assert_eq!(
        cluster.template_image(&ns, "deployment", "bystander", "app"),
        pinned
    );
    // Every request ferry made, it made as deploy/base's ServiceAccount; the four patches are
    // there, and no write touched the bystander.
    let mine = assert_all_as(&cluster, &id, FERRY_SA);
    // Everything ferry did, deploy/base allowed.
    let refused: Vec<&Value> = mine
        .iter()
        .filter(|e| e["responseStatus"]["code"].as_i64().unwrap_or(0) >= 400)
        .collect();
    assert!(refused.is_empty(), "refused under deploy/base: {refused:?}");
    let patched: Vec<String> = mine
        .iter()
        .filter(|e| e["verb"] == "patch" && e["objectRef"]["namespace"] == ns.as_str())
        .filter(|e| e["objectRef"]["resource"] != "events")
        .map(|e| {
            format!(
                "{}/{}",
                e["objectRef"]["resource"].as_str().unwrap(),
                e["objectRef"]["name"].as_str().unwrap()
            )
        })
        .collect();
    for k in [
        "deployments/deployment",
        "statefulsets/statefulset",
        "daemonsets/daemonset",
        "cronjobs/cronjob",
    ] {
        assert!(
            patched.iter().any(|p| p == k),
            "no patch of {k}: {patched:?}"
        );
    }
    assert!(
        !patched.iter().any(|p| p.ends_with("/bystander")),
        "{patched:?}"
    );
    // A second pass finds nothing to do and writes nothing.
    let id2 = identity("kinds-again");
    let o = ferry(&kc, &reg.addr, &id2, &["-n", &ns, "once", "--wait"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let writes: Vec<Value> = cluster
        .audit_of(&id2)
        .into_iter()
        .filter(|e| matches!(e["verb"].as_str(), Some("patch" | "update" | "create")))
        .collect();
    assert!(writes.is_empty(), "second pass wrote: {writes:?}");
}

#[test]
fn a_rollout_that_never_becomes_ready_is_rolled_back_and_quarantined() {
    let cluster = Cluster::connect();
    let tmp = tempfile::tempdir().unwrap();
    let kc = cluster.ferry_kubeconfig(tmp.path());
    let reg = Registry::start();
    let old = push(&reg, "meter", "latest", "good");
    let pinned = format!("{}/meter:latest@{}", reg.addr, old.digest);
    let ns = cluster.namespace("rollback");
    apply_in(
        &cluster,
        &ns,
        &[workload("Deployment", "meter", &pinned, true)],
    );
    wait_until("meter ready", Duration::from_secs(60), || {
        rolled_out(&cluster, &ns, "deployment", "meter")
    });

    let bad = push(&reg, "meter", "latest", "bad");
    cluster.never_ready(bad.digest.hex());
    let id = identity("rollback");
    let o = ferry(
        &kc,
        &reg.addr,
        &id,
        &[
            "-n",
            &ns,
            "--json",
            "once",
            "--wait",
            // Far beyond the 15 s progress deadline: the controller's verdict, not ferry's
            // timeout, must end this rollout, even on a loaded machine.
            "--rollout-timeout",
            "5m",
        ],
    );
    // Exit 1: something was rolled back (and nothing failed).
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    let rolled = out["applied"]["rolled_back"].as_array().unwrap();
    assert_eq!(rolled.len(), 1, "{out}");
    // What the real Deployment controller said: the progress deadline passed.
    assert!(
        rolled[0][1]
            .as_str()
            .unwrap()
            .contains("ProgressDeadlineExceeded"),
        "{out}"
    );

    // Read back: the template is at the good digest again, the real Deployment controller
    // reported the failure (ProgressDeadlineExceeded) and the bad digest is quarantined.
    let d = cluster.get(&ns, "deployment", "meter");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        pinned.as_str()
    );
    let quarantined = d["metadata"]["annotations"]["ferry.dev/quarantined"]
        .as_str()
        .unwrap_or_default();
    assert!(
        quarantined.contains(&bad.digest.to_string()),
        "quarantined: {quarantined:?}"
    );
    let events = cluster.events(&ns, "meter");
    assert!(
        events.iter().any(|(r, _)| r == "RolledBack"),
        "events: {events:?}"
    );
    wait_until("meter healthy again", Duration::from_secs(60), || {
        rolled_out(&cluster, &ns, "deployment", "meter")
    });
    assert_all_as(&cluster, &id, FERRY_SA);

    // The next pass skips the quarantined digest and writes nothing to the workload.
    let id2 = identity("rollback-next");
    let o = ferry(&kc, &reg.addr, &id2, &["-n", &ns, "--json", "plan"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    let d = &plan.as_array().unwrap()[0];
    assert_eq!(d["action"], "skip", "{plan}");
    assert!(
        d["reason"].as_str().unwrap().contains("quarantined"),
        "{plan}"
    );
}

#[test]
fn lists_are_read_in_pages_from_the_real_api_server() {
    let cluster = Cluster::connect();
    let tmp = tempfile::tempdir().unwrap();
    let kc = cluster.ferry_kubeconfig(tmp.path());
    let reg = Registry::start();
    let ns = cluster.namespace("pages");
    // 1,050 Deployments without replicas: three pages of 500.
    let items: Vec<Value> = (0..1050)
        .map(|i| {
            serde_json::json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": format!("w{i}"), "namespace": ns},
                "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "w"}},
                         "template": {"metadata": {"labels": {"app": "w"}},
                                      "spec": {"containers": [{"name": "app", "image": "example.invalid/w:1"}]}}}
            })
        })
        .collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    let file = tmp.path().join("many.json");
    std::fs::write(&file, list.to_string()).unwrap();
    cluster.kubectl_ok(&["create", "-f", file.to_str().unwrap()]);
    let id = identity("pages");
    let o = ferry(&kc, &reg.addr, &id, &["-n", &ns, "--json", "plan"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        plan.as_array().unwrap().len(),
        1050,
        "one row per container"
    );
    let lists: Vec<String> = assert_all_as(&cluster, &id, FERRY_SA)
        .iter()
        .filter(|e| e["verb"] == "list" && e["objectRef"]["resource"] == "deployments")
        .map(|e| e["requestURI"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(lists.len(), 3, "{lists:?}");
    assert!(lists.iter().all(|u| u.contains("limit=500")), "{lists:?}");
    assert!(!lists[0].contains("continue="), "{lists:?}");
    assert!(
        lists[1..].iter().all(|u| u.contains("continue=")),
        "{lists:?}"
    );
}
