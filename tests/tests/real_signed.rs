//! The signature gate on a real control plane (`scripts/testenv.sh`): with
//! `--signature-policy release=FILE`, a workload annotated `ferry.dev/signed-by: release` moves
//! to a digest cosign signed with the policy's key, and stays put — with a Warning Event naming
//! the reason — when the new digest is unsigned. The provenance gate
//! (`ferry.dev/require-revision-on`) refuses an image built from an unmerged branch of a real git
//! server. ferry runs as the `deploy/base` ServiceAccount.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod real;

use std::time::Duration;

use ferry_core::Digest;
use ferry_tests::signing::{Mode, key_pair, sign};
use ferry_tests::{GitDaemon, GitRepo, Registry, plain_client};
use real::{Cluster, ferry, identity, push, show, wait_until};

fn deployment(ns: &str, name: &str, image: &str) -> String {
    deployment_with(ns, name, image, "    ferry.dev/signed-by: release\n")
}

fn deployment_with(ns: &str, name: &str, image: &str, annotations: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\n  annotations:\n    ferry.dev/policy: digest\n{annotations}spec:\n  replicas: 1\n  progressDeadlineSeconds: 15\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: app\n        image: {image}\n"
    )
}

/// The message of the `RedeploySkipped` Event on `name`, waited for.
fn skip_event(cluster: &Cluster, ns: &str, name: &str) -> String {
    let mut events = Vec::new();
    wait_until("the skip's Event", Duration::from_secs(20), || {
        events = cluster.events(ns, name);
        events.iter().any(|(r, _)| r == "RedeploySkipped")
    });
    let (_, message) = events
        .into_iter()
        .find(|(r, _)| r == "RedeploySkipped")
        .unwrap();
    message
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
    let message = skip_event(&cluster, &ns, "unsigned");
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

/// Record `revision` as `name:tag`'s source revision (an index annotation, as
/// docker/metadata-action writes it); the tag's new digest.
fn with_revision(reg: &Registry, name: &str, tag: &str, revision: &str) -> Digest {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = plain_client(&reg.addr);
    let r = reg.reference(&format!("{name}:{tag}"));
    rt.block_on(async {
        let m = c.manifest(&r).await.unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(&m.body).unwrap();
        v["annotations"] = serde_json::json!({"org.opencontainers.image.revision": revision});
        let body = bytes::Bytes::from(serde_json::to_vec(&v).unwrap());
        c.put_manifest(&r, &m.media_type, body).await.unwrap()
    })
}

#[test]
fn an_image_built_from_an_unmerged_branch_is_refused_by_the_provenance_gate() {
    let cluster = Cluster::connect();
    let tmp = tempfile::tempdir().unwrap();
    let kc = cluster.ferry_kubeconfig(tmp.path());
    let daemon = GitDaemon::start();
    let url = daemon.create("sensor.git");
    let src = GitRepo::new();
    src.write("main.py", "print(1)\n");
    let merged = src.commit("on main");
    src.git(&["push", "-q", &url, "main"]);
    src.git(&["checkout", "-q", "-b", "feature"]);
    src.write("main.py", "print(2)\n");
    let unmerged = src.commit("on a branch nobody merged");
    src.git(&["push", "-q", &url, "feature"]);

    let reg = Registry::start();
    let ns = cluster.namespace("provenance");
    let gate =
        format!("    ferry.dev/require-revision-on: main\n    ferry.dev/source-repo: {url}\n");
    let mut pinned = Vec::new();
    for name in ["merged", "unmerged"] {
        let old = push(&reg, name, "latest", &format!("{name}-old"));
        let image = format!("{}/{name}:latest@{}", reg.addr, old.digest);
        cluster.apply(&deployment_with(&ns, name, &image, &gate));
        pinned.push(image);
    }
    push(&reg, "merged", "latest", "merged-new");
    let merged_digest = with_revision(&reg, "merged", "latest", &merged);
    push(&reg, "unmerged", "latest", "unmerged-new");
    let unmerged_digest = with_revision(&reg, "unmerged", "latest", &unmerged);

    let id = identity("provenance");
    let o = ferry(&kc, &reg.addr, &id, &["-n", &ns, "once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(
        cluster.template_image(&ns, "deployment", "merged", "app"),
        format!("{}/merged:latest@{merged_digest}", reg.addr)
    );
    assert_eq!(
        cluster.template_image(&ns, "deployment", "unmerged", "app"),
        pinned[1]
    );
    let message = skip_event(&cluster, &ns, "unmerged");
    assert!(
        message.contains(&format!(
            "built from {unmerged}, which is not on main of {url}"
        )),
        "{message} (digest {unmerged_digest})"
    );
}

/// The keyless gate: a policy naming an identity, an issuer (regexp) and a trusted root. The
/// workload whose new digest carries a bundle from the trusted CA for that identity moves; the
/// one whose bundle comes from another CA with the same names stays, with a skip Event.
#[test]
fn a_keyless_signed_update_is_applied_and_one_from_an_untrusted_ca_is_skipped() {
    use ferry_tests::signing::{KeylessJob, keyless_sign};
    const ID: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
    const ISSUER: &str = "https://token.actions.githubusercontent.com";
    let cluster = Cluster::connect();
    let tmp = tempfile::tempdir().unwrap();
    let kc = cluster.ferry_kubeconfig(tmp.path());
    let policy = tmp.path().join("release.yaml");
    std::fs::write(
        &policy,
        format!("keyless:\n  - subject: {ID}\n    issuer_regexp: '^https://token\\.actions\\.githubusercontent\\.com$'\ntrusted_root: trusted_root.json\n"),
    )
    .unwrap();
    let reg = Registry::start();
    let ns = cluster.namespace("keyless");
    let mut pinned = Vec::new();
    let mut jobs = Vec::new();
    for (name, ca) in [("trusted", "trusted"), ("untrusted", "untrusted")] {
        let old = push(&reg, name, "latest", &format!("{name}-old"));
        let image = format!("{}/{name}:latest@{}", reg.addr, old.digest);
        cluster.apply(&deployment(&ns, name, &image));
        pinned.push(image);
        let new = push(&reg, name, "latest", &format!("{name}-new"));
        jobs.push((
            format!("{}/{name}:latest@{}", reg.addr, new.digest),
            KeylessJob {
                image: format!("{}/{name}@{}", reg.addr, new.digest),
                identity: ID.into(),
                issuer: ISSUER.into(),
                ca,
                ..Default::default()
            },
        ));
    }
    let only_jobs: Vec<KeylessJob> = jobs.iter().map(|(_, j)| j.clone()).collect();
    keyless_sign(&tmp.path().join("trusted_root.json"), &only_jobs);

    let id = identity("keyless");
    let policy_arg = format!("release={}", policy.display());
    let o = ferry(
        &kc,
        &reg.addr,
        &id,
        &["-n", &ns, "--signature-policy", &policy_arg, "once"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(
        cluster.template_image(&ns, "deployment", "trusted", "app"),
        jobs[0].0
    );
    assert_eq!(
        cluster.template_image(&ns, "deployment", "untrusted", "app"),
        pinned[1]
    );
    let message = skip_event(&cluster, &ns, "untrusted");
    assert!(
        message.contains("no valid signature under signature policy release"),
        "{message}"
    );
}
