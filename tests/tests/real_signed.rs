//! The signature gate on a real control plane (`scripts/testenv.sh`): with
//! `--signature-policy release=FILE`, a workload annotated `ferry.dev/signed-by: release` moves
//! to a digest cosign signed with the policy's key, and stays put — with a Warning Event naming
//! the reason — when the new digest is unsigned. ferry runs as the `deploy/base` ServiceAccount.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod real;

use std::time::Duration;

use ferry_tests::Registry;
use ferry_tests::signing::{Mode, key_pair, sign};
use real::{Cluster, ferry, identity, push, show, wait_until};

fn deployment(ns: &str, name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\n  annotations:\n    ferry.dev/policy: digest\n    ferry.dev/signed-by: release\nspec:\n  replicas: 1\n  progressDeadlineSeconds: 15\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: app\n        image: {image}\n"
    )
}

#[test]
fn a_signed_update_is_applied_and_an_unsigned_one_is_skipped_with_an_event() {
    let cluster = Cluster::connect();
    let tmp = tempfile::tempdir().unwrap();
    let kc = cluster.ferry_kubeconfig(tmp.path());
    let (key, public) = key_pair(tmp.path(), "release");
    let policy = tmp.path().join("release.yaml");
    std::fs::write(&policy, "keys:\n  - release.pub\n").unwrap();
    assert!(public.exists());
    let reg = Registry::start();
    let ns = cluster.namespace("signed");
    let mut pinned = Vec::new();
    for name in ["signed", "unsigned"] {
        let old = push(&reg, name, "latest", &format!("{name}-old"));
        let image = format!("{}/{name}:latest@{}", reg.addr, old.digest);
        cluster.apply(&deployment(&ns, name, &image));
        pinned.push(image);
    }
    let signed = push(&reg, "signed", "latest", "signed-new");
    let unsigned = push(&reg, "unsigned", "latest", "unsigned-new");
    let signed_target = format!("{}/signed:latest@{}", reg.addr, signed.digest);
    sign(
        tmp.path(),
        &key,
        &format!("{}/signed@{}", reg.addr, signed.digest),
        Mode::Bundle,
    );
    // The unsigned one carries a signature by another key: still not signed by `release`.
    let (stranger, _) = key_pair(tmp.path(), "stranger");
    sign(
        tmp.path(),
        &stranger,
        &format!("{}/unsigned@{}", reg.addr, unsigned.digest),
        Mode::LegacyTag,
    );

    let id = identity("signed");
    let policy_arg = format!("release={}", policy.display());
    let o = ferry(
        &kc,
        &reg.addr,
        &id,
        &["-n", &ns, "--signature-policy", &policy_arg, "once"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(
        cluster.template_image(&ns, "deployment", "signed", "app"),
        signed_target
    );
    assert_eq!(
        cluster.template_image(&ns, "deployment", "unsigned", "app"),
        pinned[1]
    );
    let mut events = Vec::new();
    wait_until("the skip's Event", Duration::from_secs(20), || {
        events = cluster.events(&ns, "unsigned");
        events.iter().any(|(r, _)| r == "RedeploySkipped")
    });
    let (_, message) = events.iter().find(|(r, _)| r == "RedeploySkipped").unwrap();
    assert!(
        message.contains(&unsigned.digest.to_string())
            && message.contains("no valid signature under signature policy release")
            && message.contains("does not verify"),
        "{message}"
    );
    // Without the policy configured, the annotation alone holds the workload (never moves
    // unchecked) and says how to configure it.
    let id2 = identity("signed-unconfigured");
    let o = ferry(&kc, &reg.addr, &id2, &["-n", &ns, "--json", "plan"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("--signature-policy release=FILE"), "{text}");
}
