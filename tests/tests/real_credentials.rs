//! Registry credentials on a real control plane (`scripts/testenv.sh`, issue 21): a private
//! registry reached only through a ServiceAccount's pull secret, and a `run` replica whose
//! mounted credentials rotate while it runs.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod real;

use std::collections::HashMap;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use ferry_registry::{Client, ClientConfig, Credential, StaticCredentials};
use ferry_tests::{Flavor, Pushed, Registry, RegistryOptions, free_port, push_image};
use real::{Cluster, ferry, ferry_cmd, identity, show, wait_until};
use serde_json::Value;

/// Push a two-platform image to the password-protected `reg` as `name:tag`.
fn push_private(reg: &Registry, pass: &str, name: &str, tag: &str, salt: &str) -> Pushed {
    let mut m = HashMap::new();
    m.insert(
        reg.addr.clone(),
        Credential::Basic {
            username: "ferry".into(),
            password: pass.into(),
        },
    );
    let client = Client::new(ClientConfig {
        plain_http: vec![reg.addr.clone()],
        credentials: Arc::new(StaticCredentials(m)),
        ..Default::default()
    })
    .unwrap();
    let reference = reg.reference(&format!("{name}:{tag}"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(push_image(
        &client,
        &reference,
        &["linux/amd64", "linux/arm64"],
        Flavor::Oci,
        false,
        false,
        salt,
    ))
}

fn docker_config(registry: &str, pass: &str) -> String {
    format!(r#"{{"auths":{{"{registry}":{{"username":"ferry","password":"{pass}"}}}}}}"#)
}

fn deployment(ns: &str, name: &str, image: &str, service_account: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\n  annotations:\n    ferry.dev/policy: digest\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      serviceAccountName: {service_account}\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: app\n        image: {image}\n"
    )
}

fn private_registry() -> Registry {
    Registry::start_with(RegistryOptions {
        basic_auth: Some(("ferry".into(), "first-pass".into())),
        ..Default::default()
    })
}

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
    let metrics = format!("127.0.0.1:{}", free_port());
    let lease = format!("sa-creds-{}", std::process::id());
    let run = [
        "-n",
        &ns,
        "run",
        "--metrics-addr",
        &metrics,
        "--lease-namespace",
        "ferry",
        "--lease-name",
        &lease,
        "--interval",
        "1h",
    ];
    let child = ferry_cmd(&kc, &reg.addr, &identity("sa-creds-run"), &run)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _replica = Replica(child);
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

/// Write `content` as the kubelet updates a mounted Secret (`..data` symlink swap).
fn mount_secret(dir: &Path, version: u32, content: &str) {
    let data = format!("..v{version}");
    std::fs::create_dir(dir.join(&data)).unwrap();
    std::fs::write(dir.join(&data).join("config.json"), content).unwrap();
    symlink(&data, dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    if !dir.join("config.json").exists() {
        symlink("..data/config.json", dir.join("config.json")).unwrap();
    }
}

/// A `run` replica, killed when dropped.
struct Replica(std::process::Child);

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_run_replica_keeps_working_after_its_mounted_credentials_rotate() {
    let cluster = Cluster::connect();
    let tmp = tempfile::tempdir().unwrap();
    let kc = cluster.ferry_kubeconfig(tmp.path());
    let mut reg = private_registry();
    let old = push_private(&reg, "first-pass", "relay", "latest", "old");
    let ns = cluster.namespace("rotate");
    let pinned = format!("{}/relay:latest@{}", reg.addr, old.digest);
    cluster.apply(&deployment(&ns, "relay", &pinned, "default"));
    // ferry's own credentials, mounted as the `ferry-registry-credentials` Secret would be.
    let mount = tmp.path().join("registry-credentials");
    std::fs::create_dir(&mount).unwrap();
    mount_secret(&mount, 1, &docker_config(&reg.addr, "first-pass"));
    let metrics = format!("127.0.0.1:{}", free_port());
    let lease = format!("rotate-{}", std::process::id());
    let args = [
        "-n",
        &ns,
        "run",
        "--metrics-addr",
        &metrics,
        "--lease-namespace",
        "ferry",
        "--lease-name",
        &lease,
        "--interval",
        "1s",
    ];
    let child = ferry_cmd(&kc, &reg.addr, &identity("rotate"), &args)
        .env("DOCKER_CONFIG", &mount)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _replica = Replica(child);
    let image = || cluster.template_image(&ns, "deployment", "relay", "app");
    let new = push_private(&reg, "first-pass", "relay", "latest", "new");
    let target = format!("{}/relay:latest@{}", reg.addr, new.digest);
    wait_until("the first update", Duration::from_secs(60), || {
        image() == target
    });

    // The password is rotated at the registry; passes fail until the mount catches up.
    reg.restart_with_basic_auth("ferry", "second-pass");
    let newer = push_private(&reg, "second-pass", "relay", "latest", "newer");
    let target = format!("{}/relay:latest@{}", reg.addr, newer.digest);
    std::thread::sleep(Duration::from_secs(3));
    assert_ne!(image(), target, "updated with a refused credential?");
    mount_secret(&mount, 2, &docker_config(&reg.addr, "second-pass"));
    wait_until(
        "an update after the rotation, same process",
        Duration::from_secs(60),
        || image() == target,
    );
    // The status JSON says where the registry's credential came from (never the secret).
    let out = std::process::Command::new("curl")
        .args(["-fsS", &format!("http://{metrics}/status.json")])
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let creds = &status["workloads"][0]["credentials"][0];
    assert_eq!(creds["registry"], reg.addr.as_str(), "{status}");
    let source = creds["source"].as_str().unwrap();
    assert!(
        source.contains("registry-credentials") && source.contains("config.json"),
        "{source}"
    );
    assert!(!status.to_string().contains("second-pass"));
}
