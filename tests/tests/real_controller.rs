//! `ferry-deploy run` replicas on a real control plane (`scripts/testenv.sh`): leader election on
//! the real coordination API (proved from the audit log by User-Agent), hand-over after the
//! leader dies, and a registry webhook reaching a replica that patches through the real API.
// Test code: a failed unwrap is a failed test; the measured timings are printed.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod real;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use ferry_tests::{Registry, RegistryOptions, free_port};
use k8s_openapi::jiff::Timestamp;
use real::{Cluster, assert_all_as, ferry, ferry_cmd, identity, push, show, wait_until};
use serde_json::Value;

const FERRY_SA: &str = "system:serviceaccount:ferry:ferry-deploy";

/// A replica of `ferry-deploy run`, killed when dropped; and its metrics address.
struct Replica(Child, String);

impl Replica {
    /// `/readyz` answers 200: the first pass is done (or the replica is a standby).
    fn ready(&self) -> bool {
        std::process::Command::new("curl")
            .args([
                "-fsS",
                "-o",
                "/dev/null",
                &format!("http://{}/readyz", self.1),
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn deployment(ns: &str, name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\n  annotations:\n    ferry.dev/policy: digest\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: app\n        image: {image}\n"
    )
}

fn start_run(kc: &std::path::Path, reg: &str, id: &str, args: &[&str]) -> Replica {
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut all = vec!["run", "--metrics-addr", &metrics];
    all.extend_from_slice(args);
    let child = ferry_cmd(kc, reg, id, &all)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Replica(child, metrics)
}

/// The arguments of a `run` replica in `ns` electing its leader on Lease `ferry/lease` of
/// `duration`, a pass every 2 s.
fn run_args(ns: &str, lease: &str, duration: &str) -> Vec<String> {
    [
        "-n",
        ns,
        "--lease-namespace",
        "ferry",
        "--lease-name",
        lease,
        "--lease-duration",
        duration,
        "--interval",
        "2s",
    ]
    .map(String::from)
    .to_vec()
}

fn lease(cluster: &Cluster, name: &str) -> Option<Value> {
    let o = cluster.kubectl(&["-n", "ferry", "get", "lease", name, "-o", "json"]);
    o.status
        .success()
        .then(|| serde_json::from_slice(&o.stdout).unwrap())
}

fn holder(cluster: &Cluster, name: &str) -> Option<String> {
    lease(cluster, name).and_then(|l| l["spec"]["holderIdentity"].as_str().map(String::from))
}

fn micro_time(v: &Value) -> Timestamp {
    v.as_str().unwrap().parse().unwrap()
}

fn writes(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| {
            matches!(
                e["verb"].as_str(),
                Some("create" | "update" | "patch" | "delete")
            )
        })
        .collect()
}

#[test]
fn only_the_lease_holder_writes_and_a_dead_leader_is_replaced_within_the_lease() {
    let cluster = Cluster::connect();
    let tmp = tempfile::tempdir().unwrap();
    let kc = cluster.ferry_kubeconfig(tmp.path());
    let reg = Registry::start();
    let ns = cluster.namespace("lease");
    let old = push(&reg, "gw", "latest", "one");
    cluster.apply(&deployment(
        &ns,
        "gw",
        &format!("{}/gw:latest@{}", reg.addr, old.digest),
    ));

    let lease_name = format!("ferry-test-{}", std::process::id());
    let duration = 6;
    let mut args = run_args(&ns, &lease_name, "6s");
    args.extend(["--rollout-timeout".into(), "60s".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (a, b) = (identity("leader"), identity("standby"));
    let leader = start_run(&kc, &reg.addr, &a, &args);
    wait_until(
        "the first replica holds the Lease",
        Duration::from_secs(30),
        || holder(&cluster, &lease_name).as_deref() == Some(a.as_str()),
    );
    let standby = start_run(&kc, &reg.addr, &b, &args);

    let new = push(&reg, "gw", "latest", "two");
    let target = format!("{}/gw:latest@{}", reg.addr, new.digest);
    wait_until("the leader patched gw", Duration::from_secs(60), || {
        cluster.template_image(&ns, "deployment", "gw", "app") == target
    });
    // Let the standby try for the Lease a few times while the leader holds it.
    std::thread::sleep(Duration::from_secs(3));
    let by_leader = assert_all_as(&cluster, &a, FERRY_SA);
    assert!(
        writes(&by_leader)
            .iter()
            .any(|e| e["verb"] == "patch" && e["objectRef"]["name"] == "gw"),
        "the leader's patch is not in the audit log"
    );
    let by_standby = assert_all_as(&cluster, &b, FERRY_SA);
    assert!(
        by_standby
            .iter()
            .any(|e| e["objectRef"]["resource"] == "leases" && e["verb"] == "get"),
        "the standby never looked at the Lease"
    );
    assert_eq!(
        writes(&by_standby),
        Vec::<&Value>::new(),
        "the standby wrote while the leader's Lease was fresh"
    );

    // The leader dies without releasing anything; the standby takes over once the Lease expired
    // (not before) and within one standby retry (a fifth of the duration) after that.
    drop(leader);
    std::thread::sleep(Duration::from_millis(300));
    let last = lease(&cluster, &lease_name).unwrap();
    assert_eq!(last["spec"]["holderIdentity"], a.as_str());
    let last_renew = micro_time(&last["spec"]["renewTime"]);
    let killed = Instant::now();
    wait_until(
        "the standby takes the Lease",
        Duration::from_secs(30),
        || holder(&cluster, &lease_name).as_deref() == Some(b.as_str()),
    );
    let handed = killed.elapsed();
    let taken = lease(&cluster, &lease_name).unwrap();
    let acquired = micro_time(&taken["spec"]["acquireTime"]);
    let gap = acquired.duration_since(last_renew).as_secs_f64();
    assert!(
        gap >= f64::from(duration),
        "taken {gap:.2}s after the last renewal: before the {duration}s Lease expired"
    );
    assert!(
        gap <= f64::from(duration) * 1.5,
        "taken {gap:.2}s after the last renewal of a {duration}s Lease (retry is duration/5)"
    );
    assert_eq!(taken["spec"]["leaseTransitions"], 1, "{taken}");
    eprintln!("hand-over: {gap:.2}s after the leader's last renewal, {handed:?} after the kill");

    // The new leader writes: the next image reaches the workload through it.
    let newer = push(&reg, "gw", "latest", "three");
    let target = format!("{}/gw:latest@{}", reg.addr, newer.digest);
    wait_until("the new leader patched gw", Duration::from_secs(60), || {
        cluster.template_image(&ns, "deployment", "gw", "app") == target
    });
    let by_standby = cluster.audit_of(&b);
    assert!(
        writes(&by_standby)
            .iter()
            .any(|e| e["verb"] == "patch" && e["objectRef"]["name"] == "gw"),
        "the patch after the hand-over is not the new leader's"
    );
    drop(standby);
}

#[test]
fn a_registry_webhook_reaches_a_run_replica_which_patches_through_the_real_api() {
    let cluster = Cluster::connect();
    let tmp = tempfile::tempdir().unwrap();
    let kc = cluster.ferry_kubeconfig(tmp.path());
    let secret = "registry-to-ferry-real";
    let secret_file = tmp.path().join("webhook-secret");
    std::fs::write(&secret_file, secret).unwrap();
    let hook = format!("127.0.0.1:{}", free_port());
    let reg = Registry::start_with(RegistryOptions {
        notify: Some((
            format!("http://{hook}/webhooks/distribution"),
            Some(format!("Bearer {secret}")),
        )),
        ..Default::default()
    });
    let ns = cluster.namespace("webhook");
    let old = push(&reg, "pump", "latest", "one");
    cluster.apply(&deployment(
        &ns,
        "pump",
        &format!("{}/pump:latest@{}", reg.addr, old.digest),
    ));
    let id = identity("webhook");
    // A long interval: only the webhook can start the pass that picks up the push.
    let replica = start_run(
        &kc,
        &reg.addr,
        &id,
        &[
            "-n",
            &ns,
            "--no-leader-election",
            "--interval",
            "1h",
            "--webhook-addr",
            &hook,
            "--webhook-secret-file",
            secret_file.to_str().unwrap(),
        ],
    );
    // The first pass has run before the push.
    wait_until("the first pass", Duration::from_secs(30), || {
        replica.ready()
    });
    std::thread::sleep(Duration::from_secs(1));
    let new = push(&reg, "pump", "latest", "two");
    let pushed = Instant::now();
    let target = format!("{}/pump:latest@{}", reg.addr, new.digest);
    wait_until("the webhook-driven patch", Duration::from_secs(30), || {
        cluster.template_image(&ns, "deployment", "pump", "app") == target
    });
    eprintln!(
        "push → patch visible on the API server: {:?}",
        pushed.elapsed()
    );
    let mine = assert_all_as(&cluster, &id, FERRY_SA);
    assert!(
        mine.iter()
            .any(|e| e["verb"] == "patch" && e["objectRef"]["name"] == "pump"),
        "no patch of pump by this replica"
    );
}

#[test]
fn a_leader_stopped_gracefully_releases_the_lease_to_the_standby() {
    let cluster = Cluster::connect();
    let tmp = tempfile::tempdir().unwrap();
    let kc = cluster.ferry_kubeconfig(tmp.path());
    let reg = Registry::start();
    let ns = cluster.namespace("release");
    let lease_name = format!("ferry-release-{}", std::process::id());
    // A long Lease: without a release the standby would wait 30 s after the last renewal.
    let args = run_args(&ns, &lease_name, "30s");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (a, b) = (identity("graceful"), identity("heir"));
    let mut leader = start_run(&kc, &reg.addr, &a, &args);
    wait_until(
        "the first replica holds the Lease",
        Duration::from_secs(30),
        || holder(&cluster, &lease_name).as_deref() == Some(a.as_str()),
    );
    let _standby = start_run(&kc, &reg.addr, &b, &args);
    std::thread::sleep(Duration::from_secs(2));
    let pid = leader.0.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let exit = leader.0.wait().unwrap();
    assert!(exit.success(), "SIGTERM: {exit:?}");
    let released = lease(&cluster, &lease_name).unwrap();
    let release_time = micro_time(&released["spec"]["renewTime"]);
    wait_until(
        "the standby takes the released Lease",
        Duration::from_secs(30),
        || holder(&cluster, &lease_name).as_deref() == Some(b.as_str()),
    );
    let taken = lease(&cluster, &lease_name).unwrap();
    let gap = micro_time(&taken["spec"]["acquireTime"])
        .duration_since(release_time)
        .as_secs_f64();
    // Taken at the standby's next try (every 6 s for a 30 s Lease), not after the 30 s expiry.
    assert!(
        gap < 30.0,
        "taken {gap:.2}s after the release: the Lease was not released"
    );
    eprintln!("graceful hand-over: {gap:.2}s after the release");
    let releases: Vec<Value> = cluster
        .audit_of(&a)
        .into_iter()
        .filter(|e| e["verb"] == "update" && e["objectRef"]["resource"] == "leases")
        .collect();
    assert!(!releases.is_empty(), "no Lease update by the leader");
}

fn semver_deployment(ns: &str, name: &str, image: &str, extra: &str) -> String {
    deployment(ns, name, image).replace(
        "    ferry.dev/policy: digest\n",
        &format!("    ferry.dev/policy: semver:^1\n{extra}"),
    )
}

/// `name`'s ReplicaSets (name → uid) and the Deployment's pod template. (Not its generation:
/// the API server bumps a Deployment's generation on annotation changes too.)
fn replica_sets(cluster: &Cluster, ns: &str, name: &str) -> (Vec<(String, String)>, Value) {
    let rs: Value = serde_json::from_str(&cluster.kubectl_ok(&[
        "-n",
        ns,
        "get",
        "rs",
        "-l",
        &format!("app={name}"),
        "-o",
        "json",
    ]))
    .unwrap();
    let mut sets: Vec<(String, String)> = rs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let m = &r["metadata"];
            (m["name"].to_string(), m["uid"].to_string())
        })
        .collect();
    sets.sort();
    let template = cluster.get(ns, "deployment", name)["spec"]["template"].clone();
    (sets, template)
}

#[test]
fn a_retag_to_the_running_digest_leaves_template_and_replica_sets_and_the_next_pass_stays() {
    let cluster = Cluster::connect();
    let tmp = tempfile::tempdir().unwrap();
    let kc = cluster.ferry_kubeconfig(tmp.path());
    let reg = Registry::start();
    let ns = cluster.namespace("retag");
    // One build, tagged twice (a monorepo re-tag): 1.1.0 is the bytes 1.0.0 already runs.
    let one = push(&reg, "mono", "1.0.0", "one");
    let again = push(&reg, "mono", "1.1.0", "one");
    assert_eq!(one.digest, again.digest);
    let pinned = format!("{}/mono:1.0.0@{}", reg.addr, one.digest);
    let restart = "    ferry.dev/retag: restart\n";
    cluster.apply(&semver_deployment(&ns, "quiet", &pinned, ""));
    cluster.apply(&semver_deployment(&ns, "loud", &pinned, restart));
    for name in ["quiet", "loud"] {
        wait_until("its ReplicaSet", Duration::from_secs(30), || {
            !replica_sets(&cluster, &ns, name).0.is_empty()
        });
    }
    let before = replica_sets(&cluster, &ns, "quiet");

    let id = identity("retag");
    let o = ferry(&kc, &reg.addr, &id, &["-n", &ns, "--json", "once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        out["applied"]["retagged"],
        serde_json::json!([format!("{ns}/Deployment/quiet app=1.1.0")]),
        "{out}"
    );
    let quiet = cluster.get(&ns, "deployment", "quiet");
    assert_eq!(
        quiet["metadata"]["annotations"]["ferry.dev/running-tag"], "app=1.1.0",
        "{quiet}"
    );
    assert_eq!(
        cluster.template_image(&ns, "deployment", "quiet", "app"),
        pinned
    );
    // No new ReplicaSet, the same pod template: the pods were not restarted.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(replica_sets(&cluster, &ns, "quiet"), before);
    let events = cluster.events(&ns, "quiet");
    assert!(
        events
            .iter()
            .any(|(r, m)| r == "Retagged" && m.contains("no restart")),
        "{events:?}"
    );
    // `ferry.dev/retag: restart` writes the template as before: a new ReplicaSet.
    let moved = format!("{}/mono:1.1.0@{}", reg.addr, one.digest);
    assert_eq!(
        cluster.template_image(&ns, "deployment", "loud", "app"),
        moved
    );
    wait_until(
        "a second ReplicaSet for loud",
        Duration::from_secs(30),
        || replica_sets(&cluster, &ns, "loud").0.len() == 2,
    );

    // The next pass counts the recorded tag as current: nothing moves, nothing is written.
    let id2 = identity("retag-again");
    let o = ferry(&kc, &reg.addr, &id2, &["-n", &ns, "--json", "once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    for d in out["decisions"].as_array().unwrap() {
        assert_eq!(d["action"], "none", "{d}");
    }
    assert_eq!(out["applied"]["retagged"], serde_json::json!([]), "{out}");
    let writes: Vec<Value> = cluster
        .audit_of(&id2)
        .into_iter()
        .filter(|e| e["verb"] == "patch")
        .collect();
    assert!(writes.is_empty(), "second pass patched: {writes:?}");
    assert_eq!(replica_sets(&cluster, &ns, "quiet"), before);
}
