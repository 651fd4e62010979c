//! What the real-cluster credential tests share (`real_pull_secrets.rs`,
//! `real_rotation.rs`, `real_cloud_logins.rs`): a password-protected registry and pushes to
//! it, the Deployment and Docker config they use, and `run` replicas with their status JSON.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use ferry_registry::{Client, ClientConfig, Credential, StaticCredentials};
use ferry_tests::{Flavor, Pushed, Registry, RegistryOptions, free_port, push_image};
use serde_json::Value;

use super::{ferry_cmd, identity};

/// Push a two-platform image to the password-protected `reg` as `name:tag`.
pub fn push_private(reg: &Registry, pass: &str, name: &str, tag: &str, salt: &str) -> Pushed {
    push_as(reg, "ferry", pass, name, tag, salt)
}

/// [`push_private`] as `user`.
pub fn push_as(
    reg: &Registry,
    user: &str,
    pass: &str,
    name: &str,
    tag: &str,
    salt: &str,
) -> Pushed {
    let mut m = HashMap::new();
    m.insert(
        reg.addr.clone(),
        Credential::Basic {
            username: user.into(),
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

pub fn docker_config(registry: &str, pass: &str) -> String {
    format!(r#"{{"auths":{{"{registry}":{{"username":"ferry","password":"{pass}"}}}}}}"#)
}

pub fn deployment(ns: &str, name: &str, image: &str, service_account: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\n  annotations:\n    ferry.dev/policy: digest\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      serviceAccountName: {service_account}\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: app\n        image: {image}\n"
    )
}

pub fn private_registry() -> Registry {
    Registry::start_with(RegistryOptions {
        basic_auth: Some(("ferry".into(), "first-pass".into())),
        ..Default::default()
    })
}

/// A `run` replica, killed when dropped.
pub struct Replica(std::process::Child);

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `run` replica with 1 s passes over `ns`, started with `extra` arguments and `env`; its
/// status JSON at the returned address.
pub fn run_replica(
    kc: &Path,
    reg: &str,
    ns: &str,
    name: &str,
    extra: &[&str],
    env: &[(&str, String)],
) -> (Replica, String) {
    run_replica_every(kc, reg, ns, name, "1s", extra, env)
}

/// [`run_replica`] with passes every `interval`.
pub fn run_replica_every(
    kc: &Path,
    reg: &str,
    ns: &str,
    name: &str,
    interval: &str,
    extra: &[&str],
    env: &[(&str, String)],
) -> (Replica, String) {
    let metrics = format!("127.0.0.1:{}", free_port());
    let lease = format!("{name}-{}", std::process::id());
    let mut args = vec![
        "-n",
        ns,
        "run",
        "--metrics-addr",
        &metrics,
        "--lease-namespace",
        "ferry",
        "--lease-name",
        &lease,
        "--interval",
        interval,
    ];
    args.extend_from_slice(extra);
    let mut cmd = ferry_cmd(kc, reg, &identity(name), &args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (Replica(child), metrics)
}

pub fn status(metrics: &str) -> Value {
    let out = std::process::Command::new("curl")
        .args(["-fsS", &format!("http://{metrics}/status.json")])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}
