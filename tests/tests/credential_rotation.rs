//! Credentials that change while a client lives (issue 21): a mounted Secret swapped by its
//! `..data` symlink, a credential helper whose answer changes, against a real registry whose
//! password is rotated (CNCF distribution with htpasswd, restarted with the new password).
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferry_registry::{Client, ClientConfig, DockerConfigFile, Error};
use ferry_tests::{Flavor, Registry, RegistryOptions, push_image};

fn config_json(registry: &str, user: &str, pass: &str) -> String {
    format!(r#"{{"auths":{{"{registry}":{{"username":"{user}","password":"{pass}"}}}}}}"#)
}

/// Write `content` as the kubelet updates a mounted Secret: a new timestamped directory, then
/// a new `..data` symlink renamed over the old one (`config.json -> ..data/config.json`).
fn mount_secret(dir: &Path, version: u32, content: &str) {
    let data = format!("..2026_12_05_{version}");
    std::fs::create_dir(dir.join(&data)).unwrap();
    std::fs::write(dir.join(&data).join("config.json"), content).unwrap();
    symlink(&data, dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    if !dir.join("config.json").exists() {
        symlink("..data/config.json", dir.join("config.json")).unwrap();
    }
    if version > 1 {
        std::fs::remove_dir_all(dir.join(format!("..2026_12_05_{}", version - 1))).unwrap();
    }
}

fn client(reg: &Registry, store: DockerConfigFile) -> Client {
    Client::new(ClientConfig {
        plain_http: vec![reg.addr.clone()],
        credentials: Arc::new(store),
        ..Default::default()
    })
    .unwrap()
}

fn private_registry() -> Registry {
    Registry::start_with(RegistryOptions {
        basic_auth: Some(("ferry".into(), "first-pass".into())),
        ..Default::default()
    })
}

#[tokio::test]
async fn a_mounted_secret_rotated_by_its_data_symlink_is_used_by_the_same_client() {
    let mut reg = private_registry();
    let mount = tempfile::tempdir().unwrap();
    mount_secret(
        mount.path(),
        1,
        &config_json(&reg.addr, "ferry", "first-pass"),
    );
    let c = client(&reg, DockerConfigFile::in_dir(mount.path()).unwrap());
    let r = reg.reference("private/app:1");
    let pushed = push_image(&c, &r, &["linux/amd64"], Flavor::Oci, false, false, "m").await;
    assert_eq!(c.resolve(&r).await.unwrap().digest, pushed.digest);

    // The password is rotated at the registry; the mounted Secret has not caught up yet.
    reg.restart_with_basic_auth("ferry", "second-pass");
    let e = c.resolve(&r).await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("config.json") && text.contains(&reg.addr),
        "the error names the file and key used: {text}"
    );
    assert!(!text.contains("first-pass"), "secret leaked: {text}");

    // The kubelet swaps the mount: the next request uses the new password, no restart.
    mount_secret(
        mount.path(),
        2,
        &config_json(&reg.addr, "ferry", "second-pass"),
    );
    assert_eq!(c.resolve(&r).await.unwrap().digest, pushed.digest);
}

/// A `docker-credential-rot` helper answering with the password in `dir/answer`, counting its
/// runs in `dir/runs`.
fn write_helper(dir: &Path) {
    let script = format!(
        "#!/bin/sh\nread server\necho run >> {d}/runs\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"ferry\",\"Secret\":\"%s\"}}' \"$server\" \"$(cat {d}/answer)\"\n",
        d = dir.display()
    );
    let p = dir.join("docker-credential-rot");
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn runs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("runs"))
        .unwrap_or_default()
        .lines()
        .count()
}

#[tokio::test]
async fn a_helper_answer_is_kept_for_its_ttl_and_asked_again_at_once_after_a_refusal() {
    let mut reg = private_registry();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_helper(d);
    std::fs::write(d.join("answer"), "first-pass").unwrap();
    std::fs::write(d.join("config.json"), r#"{"credsStore":"rot"}"#).unwrap();
    let ttl = Duration::from_secs(2);
    let store = DockerConfigFile::new(d, ttl).unwrap().with_helper_dir(d);
    let c = client(&reg, store);
    let r = reg.reference("private/app:1");
    let pushed = push_image(&c, &r, &["linux/amd64"], Flavor::Oci, false, false, "h").await;
    for _ in 0..3 {
        assert_eq!(c.resolve(&r).await.unwrap().digest, pushed.digest);
    }
    assert_eq!(runs(d), 1, "one helper run within the TTL");

    // Rotated at the registry and in the helper: the kept answer is refused, the helper is
    // asked again at once and the same request succeeds.
    reg.restart_with_basic_auth("ferry", "second-pass");
    std::fs::write(d.join("answer"), "second-pass").unwrap();
    assert_eq!(c.resolve(&r).await.unwrap().digest, pushed.digest);
    assert_eq!(runs(d), 2);

    // After the TTL the helper is asked again even without a refusal.
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    c.resolve(&r).await.unwrap();
    assert_eq!(runs(d), 3);

    // A helper that keeps a wrong answer is asked again once per request, then the error
    // stands and names the helper (never the secret).
    reg.restart_with_basic_auth("ferry", "third-pass");
    let e = c.resolve(&r).await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    assert_eq!(runs(d), 4, "asked again once");
    let text = e.to_string();
    assert!(text.contains("docker-credential-rot"), "{text}");
    assert!(!text.contains("second-pass"), "secret leaked: {text}");
}
