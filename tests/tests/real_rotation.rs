//! Rotated credentials on a real control plane (`scripts/testenv.sh`, issue 21): `run` replicas
//! that keep updating a workload while their mounted Docker config is swapped as the kubelet
//! swaps a Secret, and while their credential helper's answer rotates.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod real;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use real::credentials::{
    deployment, docker_config, private_registry, push_private, run_replica, status,
};
use real::{Cluster, wait_until};
use serde_json::Value;

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
    let env = [("DOCKER_CONFIG", mount.to_str().unwrap().to_string())];
    let (_replica, metrics) = run_replica(&kc, &reg.addr, &ns, "rotate", &[], &env);
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

#[test]
fn a_run_replica_keeps_working_when_its_credential_helpers_answer_rotates() {
    let cluster = Cluster::connect();
    let tmp = tempfile::tempdir().unwrap();
    let kc = cluster.ferry_kubeconfig(tmp.path());
    let mut reg = private_registry();
    let old = push_private(&reg, "first-pass", "helped", "latest", "old");
    let ns = cluster.namespace("helper");
    let pinned = format!("{}/helped:latest@{}", reg.addr, old.digest);
    cluster.apply(&deployment(&ns, "helped", &pinned, "default"));
    // docker-credential-ferrytest answers the password in `answer` and logs every call.
    let bin_dir = tmp.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    let answer = tmp.path().join("answer");
    let calls = tmp.path().join("calls");
    std::fs::write(&answer, "first-pass").unwrap();
    let helper = bin_dir.join("docker-credential-ferrytest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\necho \"$server\" >> {calls}\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"ferry\",\"Secret\":\"%s\"}}' \"$server\" \"$(cat {answer})\"\n",
            calls = calls.display(),
            answer = answer.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = tmp.path().join("docker");
    std::fs::create_dir(&config).unwrap();
    std::fs::write(
        config.join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"ferrytest"}}}}"#, reg.addr),
    )
    .unwrap();
    let asked = || {
        std::fs::read_to_string(&calls)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (_replica, metrics) = run_replica(
        &kc,
        &reg.addr,
        &ns,
        "helper",
        &["--credential-ttl", "2s"],
        &[
            ("DOCKER_CONFIG", config.display().to_string()),
            ("PATH", path),
        ],
    );
    let image = || cluster.template_image(&ns, "deployment", "helped", "app");
    let new = push_private(&reg, "first-pass", "helped", "latest", "new");
    let target = format!("{}/helped:latest@{}", reg.addr, new.digest);
    wait_until("the first update", Duration::from_secs(60), || {
        image() == target
    });

    // The password rotates at the registry; the helper still answers the old one for a while.
    reg.restart_with_basic_auth("ferry", "second-pass");
    let newer = push_private(&reg, "second-pass", "helped", "latest", "newer");
    let target = format!("{}/helped:latest@{}", reg.addr, newer.digest);
    std::thread::sleep(Duration::from_secs(3));
    assert_ne!(image(), target, "updated with a refused credential?");
    let asked_before = asked();
    std::fs::write(tmp.path().join("answer.new"), "second-pass").unwrap();
    std::fs::rename(tmp.path().join("answer.new"), &answer).unwrap();
    wait_until(
        "an update after the helper's answer rotated, same process",
        Duration::from_secs(60),
        || image() == target,
    );
    assert!(asked() > asked_before, "the helper was not asked again");
    let status = status(&metrics);
    let source = status["workloads"][0]["credentials"][0]["source"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(source.contains("docker-credential-ferrytest"), "{status}");
    assert!(!status.to_string().contains("second-pass"));
}
