//! The real control plane of `scripts/testenv.sh` (kube-apiserver, kube-controller-manager,
//! kube-scheduler and etcd at the pinned release; podsim in place of kubelets), shared by the
//! real-cluster tests. `scripts/test.sh` starts it and exports `FERRY_TESTENV_DIR`; to run one
//! test by hand:
//!
//! ```sh
//! scripts/testenv.sh up /tmp/ferry-testenv
//! FERRY_TESTENV_DIR=/tmp/ferry-testenv cargo test -p ferry-tests --test real_cluster -- rollback
//! scripts/testenv.sh down /tmp/ferry-testenv
//! ```
//!
//! ferry always runs as the ServiceAccount `ferry/ferry-deploy` of `deploy/base` (applied with
//! `kubectl apply -k`), never as cluster admin; each test uses its own namespaces and its own
//! replica identity, so the audit log tells its requests apart.
// Test code: a failed unwrap is a failed test; the harness reads FERRY_TESTENV_DIR.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]
#![allow(dead_code)]

pub mod credentials;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferry_tests::{Flavor, Pushed, Registry, bin, plain_client, push_image};
use serde_json::Value;

/// The repository root (for `deploy/` and `scripts/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The running control plane.
pub struct Cluster {
    pub dir: PathBuf,
    kubectl: PathBuf,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Cluster {
    /// The control plane `scripts/testenv.sh up` started in `$FERRY_TESTENV_DIR`. A test that
    /// needs it fails (never skips) when it is not there.
    pub fn connect() -> Cluster {
        let dir = std::env::var_os("FERRY_TESTENV_DIR").map(PathBuf::from).expect(
            "FERRY_TESTENV_DIR is not set: the real-cluster tests need `scripts/testenv.sh up DIR` \
             (scripts/test.sh starts one) and FERRY_TESTENV_DIR=DIR",
        );
        let env = std::fs::read_to_string(dir.join("env"))
            .unwrap_or_else(|e| panic!("{}/env: {e}: is the testenv up?", dir.display()));
        let bin_dir = env
            .lines()
            .find_map(|l| l.strip_prefix("export FERRY_TESTENV_BIN="))
            .map(|v| v.trim_matches('\''))
            .expect("FERRY_TESTENV_BIN in DIR/env");
        Cluster {
            kubectl: Path::new(bin_dir).join("kubectl"),
            dir,
        }
    }

    /// `kubectl` as cluster admin.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_in(args, None)
    }

    fn kubectl_in(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(&self.kubectl);
        cmd.arg("--kubeconfig")
            .arg(self.dir.join("kubeconfig"))
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// `kubectl ARGS` as cluster admin; must succeed; its stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let o = self.kubectl(args);
        assert!(
            o.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// `kubectl apply -f -` of `yaml` as cluster admin.
    pub fn apply(&self, yaml: &str) {
        let o = self.kubectl_in(&["apply", "-f", "-"], Some(yaml));
        assert!(
            o.status.success(),
            "kubectl apply: {}\n{yaml}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// A new namespace of its own for one test.
    pub fn namespace(&self, prefix: &str) -> String {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let ns = format!("{prefix}-{}-{n}", std::process::id());
        self.kubectl_ok(&["create", "namespace", &ns]);
        // The ServiceAccount controller must have made `default` before pods can be created.
        wait_until(
            "the default ServiceAccount",
            Duration::from_secs(30),
            || {
                self.kubectl(&["-n", &ns, "get", "serviceaccount", "default"])
                    .status
                    .success()
            },
        );
        ns
    }

    /// `deploy/base` applied with `kubectl apply -k` (idempotent; tests run side by side).
    pub fn apply_deploy_base(&self) {
        let base = repo_root().join("deploy/base");
        let mut last = String::new();
        for _ in 0..5 {
            let o = self.kubectl(&["apply", "-k", base.to_str().unwrap()]);
            if o.status.success() {
                return;
            }
            last = String::from_utf8_lossy(&o.stderr).into_owned();
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("kubectl apply -k deploy/base: {last}");
    }

    /// A kubeconfig in `dir` authenticating as ServiceAccount `ns/sa` (a TokenRequest token).
    pub fn sa_kubeconfig(&self, ns: &str, sa: &str, dir: &Path) -> PathBuf {
        let o = Command::new("bash")
            .arg(repo_root().join("scripts/testenv.sh"))
            .args(["kubeconfig", self.dir.to_str().unwrap(), ns, sa])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "testenv.sh kubeconfig: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let path = dir.join(format!("kubeconfig-{ns}-{sa}"));
        std::fs::write(&path, o.stdout).unwrap();
        path
    }

    /// The kubeconfig of ferry's own ServiceAccount from `deploy/base`.
    pub fn ferry_kubeconfig(&self, dir: &Path) -> PathBuf {
        self.apply_deploy_base();
        self.sa_kubeconfig("ferry", "ferry-deploy", dir)
    }

    /// Every audit event (level Metadata, stage ResponseComplete) so far.
    pub fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("audit.log"))
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["stage"] == "ResponseComplete")
            .collect()
    }

    /// The audit events of requests made by the ferry replica `identity` (its User-Agent).
    pub fn audit_of(&self, identity: &str) -> Vec<Value> {
        let suffix = format!("({identity})");
        self.audit()
            .into_iter()
            .filter(|e| {
                e["userAgent"]
                    .as_str()
                    .is_some_and(|ua| ua.starts_with("ferry-deploy/") && ua.ends_with(&suffix))
            })
            .collect()
    }

    /// Pods running an image containing `needle` never become Ready from now on.
    pub fn never_ready(&self, needle: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("never-ready"))
            .unwrap();
        writeln!(f, "{needle}").unwrap();
    }

    /// `kubectl get KIND NAME -n NS -o json`.
    pub fn get(&self, ns: &str, kind: &str, name: &str) -> Value {
        serde_json::from_str(&self.kubectl_ok(&["-n", ns, "get", kind, name, "-o", "json"]))
            .unwrap()
    }

    /// The images of a workload's pod template (a CronJob's job template), by container.
    pub fn template_image(&self, ns: &str, kind: &str, name: &str, container: &str) -> String {
        let w = self.get(ns, kind, name);
        let spec = if kind == "cronjob" {
            &w["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        } else {
            &w["spec"]["template"]["spec"]
        };
        spec["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == container)
            .map(|c| c["image"].as_str().unwrap().to_string())
            .unwrap()
    }

    /// The Events (core v1 view) on `name` in `ns`: (reason, message).
    pub fn events(&self, ns: &str, name: &str) -> Vec<(String, String)> {
        let list: Value = serde_json::from_str(&self.kubectl_ok(&[
            "-n",
            ns,
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={name}"),
            "-o",
            "json",
        ]))
        .unwrap();
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["reason"].as_str().unwrap_or("").to_string(),
                    e["message"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

/// Poll `check` every 200 ms until it holds; panic naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Push a two-platform (linux/amd64, linux/arm64) OCI index to `reg` as `name:tag`.
pub fn push(reg: &Registry, name: &str, tag: &str, salt: &str) -> Pushed {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = plain_client(&reg.addr);
    let reference = reg.reference(&format!("{name}:{tag}"));
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

/// `ferry-deploy ARGS` with the kubeconfig `kc`, plain HTTP to the registry and the replica
/// identity `identity` (`$POD_NAME`: the Lease identity and the User-Agent's).
pub fn ferry(kc: &Path, reg: &str, identity: &str, args: &[&str]) -> Output {
    ferry_cmd(kc, reg, identity, args).output().unwrap()
}

/// The command [`ferry`] runs, to spawn it instead.
pub fn ferry_cmd(kc: &Path, reg: &str, identity: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin("ferry-deploy"));
    cmd.arg("--kubeconfig")
        .arg(kc)
        .args(["--plain-http", reg])
        .args(args)
        .env("POD_NAME", identity)
        .env("DOCKER_CONFIG", "/nonexistent-ferry-test")
        .env_remove("KUBECONFIG")
        .env_remove("GITHUB_ACTIONS");
    cmd
}

/// A unique replica identity for one test.
pub fn identity(test: &str) -> String {
    format!(
        "{test}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Assert that every request ferry replica `identity` made was made as `user`, and that it made
/// some; the requests.
pub fn assert_all_as(cluster: &Cluster, identity: &str, user: &str) -> Vec<Value> {
    let mine = cluster.audit_of(identity);
    assert!(
        !mine.is_empty(),
        "no request of ferry replica {identity} in the audit log"
    );
    for e in &mine {
        assert_eq!(
            e["user"]["username"], user,
            "a request of {identity} was made as another user: {e}"
        );
    }
    mine
}

/// Output for assertion messages.
pub fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
