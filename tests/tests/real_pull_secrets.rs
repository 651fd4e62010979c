//! ServiceAccount pull secrets on a real control plane (`scripts/testenv.sh`, issue 21): a
//! private registry reached only through a ServiceAccount's pull secret.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod real;

use std::time::Duration;

use real::credentials::{deployment, private_registry, push_private, run_replica_every};
use real::{Cluster, ferry, identity, show, wait_until};
use serde_json::Value;

#[test]
fn a_private_registry_reached_only_through_a_service_accounts_pull_secret() {
    let cluster = Cluster::connect();
    let tmp = tempfile::tempdir().unwrap();
    let kc = cluster.ferry_kubeconfig(tmp.path());
    let reg = private_registry();
    let old = push_private(&reg, "first-pass", "vault", "latest", "old");
    let ns = cluster.namespace("sa-creds");
    let pinned = format!("{}/vault:latest@{}", reg.addr, old.digest);
    // The pull secret is the ServiceAccount's; the pod template names none.
    cluster.kubectl_ok(&[
        "-n",
        &ns,
        "create",
        "secret",
        "docker-registry",
        "regcred",
        &format!("--docker-server={}", reg.addr),
        "--docker-username=ferry",
        "--docker-password=first-pass",
    ]);
    cluster.apply(&format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: puller\n  namespace: {ns}\nimagePullSecrets:\n- name: regcred\n---\n{}",
        deployment(&ns, "vault", &pinned, "puller")
    ));
    let new = push_private(&reg, "first-pass", "vault", "latest", "new");

    let o = ferry(&kc, &reg.addr, &identity("sa-creds"), &["-n", &ns, "once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    // A run replica's status names the ServiceAccount's secret as the registry's source.
    let (_replica, metrics) =
        run_replica_every(&kc, &reg.addr, &ns, "sa-creds-run", "1h", &[], &[]);
    let mut status = Value::Null;
    wait_until(
        "the status after the first pass",
        Duration::from_secs(60),
        || {
            let out = std::process::Command::new("curl")
                .args(["-fsS", &format!("http://{metrics}/status.json")])
                .output()
                .unwrap();
            status = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            status["last_pass"].is_string()
        },
    );
    let source = status["workloads"][0]["credentials"][0]["source"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        source.contains(&format!(
            "secret {ns}/regcred (imagePullSecrets of ServiceAccount {ns}/puller)"
        )),
        "{status}"
    );
    drop(_replica);
    assert_eq!(
        cluster.template_image(&ns, "deployment", "vault", "app"),
        format!("{}/vault:latest@{}", reg.addr, new.digest),
        "{}",
        show(&o)
    );

    // Without the secret the registry refuses anonymous access, and the reason says which
    // ServiceAccount's secret ferry looked for.
    cluster.kubectl_ok(&["-n", &ns, "delete", "secret", "regcred"]);
    push_private(&reg, "first-pass", "vault", "latest", "newer");
    let o = ferry(
        &kc,
        &reg.addr,
        &identity("sa-creds-gone"),
        &["-n", &ns, "--json", "plan"],
    );
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    let d = &plan.as_array().unwrap_or_else(|| panic!("{}", show(&o)))[0];
    assert_eq!(d["action"], "skip", "{plan}");
    let reason = d["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("ServiceAccount {ns}/puller")) && reason.contains("regcred"),
        "{reason}"
    );
    assert!(!reason.contains("first-pass"), "secret leaked: {reason}");
}
