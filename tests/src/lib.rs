//! Test harness shared by ferry's cross-crate and binary tests.
//!
//! * [`Registry`] starts a real CNCF distribution registry (Debian's `docker-registry`) on
//!   `127.0.0.1` with a random port, optionally with htpasswd basic auth, and stops it on drop.
//! * [`push_image`] pushes multi-arch (or single-arch) images through the registry API.
//! * [`bin`] builds (when stale) and finds a ferry binary.
//! * [`cloud`]: the checks fakes of cloud token services share (SigV4, Google JWT assertions).
//! * [`tls`]: an HTTPS front, with a throw-away CA, before a plain-HTTP fake.
//! * [`signing`]: cosign and a registry with the Referrers API (built by
//!   `scripts/test-tools.sh`), and helpers to sign, ask cosign, and tamper with signatures.
#![allow(missing_docs)]
// Test harness: a failed unwrap is a failed test; it reads the environment and prints progress.
#![allow(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    clippy::print_stderr,
    clippy::print_stdout
)]

pub mod cloud;
pub mod signing;
pub mod tls;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use ferry_core::{Digest, Reference};
use ferry_registry::Client;
use serde_json::json;

/// A running `docker-registry`, killed on drop.
pub struct Registry {
    child: Child,
    pub addr: String,
    pub dir: tempfile::TempDir,
    /// `METHOD URI` of every request answered so far, from the registry's log.
    answered: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// How to start a registry.
#[derive(Default, Clone)]
pub struct RegistryOptions {
    /// Require basic auth with this user and password (htpasswd, bcrypt).
    pub basic_auth: Option<(String, String)>,
    /// Serve HTTPS with a certificate for 127.0.0.1 signed by a throw-away CA
    /// (`Registry::ca_file`).
    pub tls: bool,
    /// Send notifications (`notifications.endpoints`) to this URL, with this `Authorization`
    /// header value when given.
    pub notify: Option<(String, Option<String>)>,
    /// More YAML lines for that endpoint, indented for it (six spaces), e.g. `ignore:` rules.
    pub notify_extra: String,
}

impl Registry {
    /// Start a registry without auth.
    pub fn start() -> Registry {
        Self::start_with(RegistryOptions::default())
    }

    /// Start a registry with options. Panics with a clear message when `docker-registry` is
    /// not installed (scripts/test.sh installs it).
    pub fn start_with(opts: RegistryOptions) -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut auth = String::new();
        if let Some((user, pass)) = &opts.basic_auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .expect("htpasswd (apache2-utils) must be installed: run scripts/test.sh");
            assert!(out.status.success(), "htpasswd failed");
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, out.stdout).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: ferry-test\n    path: {}\n",
                file.display()
            );
        }
        let mut tls = String::new();
        if opts.tls {
            make_certificates(dir.path());
            tls = format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.path().join("server.pem").display(),
                dir.path().join("server.key").display()
            );
        }
        let mut notify = String::new();
        if let Some((url, authorization)) = &opts.notify {
            notify = format!(
                "notifications:\n  endpoints:\n    - name: ferry\n      url: {url}\n      timeout: 2s\n      threshold: 3\n      backoff: 1s\n"
            );
            if let Some(a) = authorization {
                notify.push_str(&format!(
                    "      headers:\n        Authorization: [\"{a}\"]\n"
                ));
            }
            notify.push_str(&opts.notify_extra);
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n{tls}{auth}{notify}",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let answered = std::sync::Arc::<std::sync::Mutex<Vec<String>>>::default();
        let (child, addr) = spawn_registry(&config_path, answered.clone());
        Registry {
            child,
            addr,
            dir,
            answered,
        }
    }

    /// `127.0.0.1:PORT/name`.
    pub fn reference(&self, name: &str) -> Reference {
        Reference::parse(&format!("{}/{name}", self.addr)).unwrap()
    }

    /// The CA certificate that signed a TLS registry's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Stop the registry and start it again on the same address and data with only `user` and
    /// `pass` accepted (a rotated password). Panics when it was started without basic auth.
    pub fn restart_with_basic_auth(&mut self, user: &str, pass: &str) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let out = Command::new("htpasswd")
            .args(["-Bbn", user, pass])
            .output()
            .expect("htpasswd (apache2-utils) must be installed: run scripts/test.sh");
        assert!(out.status.success(), "htpasswd failed");
        let htpasswd = self.dir.path().join("htpasswd");
        assert!(
            htpasswd.exists(),
            "the registry was started without basic auth"
        );
        std::fs::write(&htpasswd, out.stdout).unwrap();
        let config_path = self.dir.path().join("config.yml");
        let config = std::fs::read_to_string(&config_path)
            .unwrap()
            .replace("addr: 127.0.0.1:0\n", &format!("addr: {}\n", self.addr));
        std::fs::write(&config_path, config).unwrap();
        let (child, addr) = spawn_registry(&config_path, self.answered.clone());
        self.child = child;
        assert_eq!(addr, self.addr, "restarted on another address");
    }

    /// The data directory (to corrupt things on purpose).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `METHOD URI` of every request the registry has answered, in the order it logged them,
    /// once its log has been quiet for 300 ms (it logs a request after answering it).
    pub fn answered(&self) -> Vec<String> {
        let mut seen = usize::MAX;
        loop {
            let now = self.answered.lock().unwrap().len();
            if now == seen {
                return self.answered.lock().unwrap().clone();
            }
            seen = now;
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// `METHOD URI` from a distribution log line that ends a request ("response completed", with
/// or without an error).
fn answered_request(line: &str) -> Option<String> {
    if !line.contains("msg=\"response completed") {
        return None;
    }
    let field = |k: &str| {
        let at = line.find(k)? + k.len();
        line[at..]
            .split(' ')
            .next()
            .map(|v| v.trim_matches('"').to_string())
    };
    Some(format!(
        "{} {}",
        field(" http.request.method=")?,
        field(" http.request.uri=")?
    ))
}

/// Start `docker-registry serve CONFIG` and wait for the address it reports.
/// Start `docker-registry serve CONFIG`; every request it answers is appended to `answered`.
fn spawn_registry(
    config_path: &Path,
    answered: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) -> (Child, String) {
    let mut child = Command::new("docker-registry")
        .arg("serve")
        .arg(config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker-registry must be installed (apt-get install docker-registry): run scripts/test.sh");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(r) = answered_request(&line) {
                answered.lock().unwrap().push(r);
            }
            if let Some(pos) = line.find("listening on ") {
                let rest = &line[pos + "listening on ".len()..];
                let addr = rest
                    .split(['"', ' ', ','])
                    .next()
                    .unwrap_or_default()
                    .to_string();
                if let Some(t) = tx.take() {
                    let _ = t.send(addr);
                }
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(a) => (child, a),
        Err(_) => {
            let _ = child.kill();
            panic!("docker-registry did not report its address within 20s");
        }
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it, written into `dir`.
pub(crate) fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl must be installed");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=ferry test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client for the given plain-HTTP registry address.
pub fn plain_client(addr: &str) -> Client {
    Client::new(ferry_registry::ClientConfig {
        plain_http: vec![addr.to_string()],
        ..Default::default()
    })
    .unwrap()
}

/// What [`push_image`] pushed.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// Digest of the top-level manifest (index, or the image manifest for single-arch).
    pub digest: Digest,
    /// `(platform, manifest digest)` per platform.
    pub children: Vec<(String, Digest)>,
    /// Attestation manifest digests.
    pub attestations: Vec<Digest>,
}

/// The media-type family of a pushed image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Oci,
    Docker,
}

/// Push an image with one manifest per platform (`linux/amd64`, `linux/arm64/v8`…) under
/// `reference`'s tag. Several platforms → an index (with a buildx-style attestation when
/// `attest`); one platform and `single` → just the image manifest. `salt` makes content unique.
pub async fn push_image(
    client: &Client,
    reference: &Reference,
    platforms: &[&str],
    flavor: Flavor,
    single: bool,
    attest: bool,
    salt: &str,
) -> Pushed {
    push_image_created(
        client,
        reference,
        platforms,
        flavor,
        single,
        attest,
        salt,
        "2026-01-02T03:04:05Z",
    )
    .await
}

/// [`push_image`] with the images' `created` time chosen (RFC 3339).
#[allow(clippy::too_many_arguments)]
pub async fn push_image_created(
    client: &Client,
    reference: &Reference,
    platforms: &[&str],
    flavor: Flavor,
    single: bool,
    attest: bool,
    salt: &str,
    created: &str,
) -> Pushed {
    let (manifest_type, index_type, config_type, layer_type) = match flavor {
        Flavor::Oci => (
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
        ),
        Flavor::Docker => (
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        ),
    };
    let mut children = Vec::new();
    let mut descriptors = Vec::new();
    let mut attestations = Vec::new();
    for p in platforms {
        let parts: Vec<&str> = p.split('/').collect();
        let layer = Bytes::from(format!("layer of {p} {salt}"));
        let layer_d = client.push_blob(reference, layer.clone()).await.unwrap();
        let mut cfg = json!({"architecture": parts[1], "os": parts[0],
            "created": created,
            "rootfs": {"type": "layers", "diff_ids": [layer_d.to_string()]}});
        if let Some(v) = parts.get(2) {
            cfg["variant"] = json!(v);
        }
        let cfg = Bytes::from(serde_json::to_vec(&cfg).unwrap());
        let cfg_d = client.push_blob(reference, cfg.clone()).await.unwrap();
        let manifest = json!({
            "schemaVersion": 2, "mediaType": manifest_type,
            "config": {"mediaType": config_type, "digest": cfg_d.to_string(), "size": cfg.len()},
            "layers": [{"mediaType": layer_type, "digest": layer_d.to_string(), "size": layer.len()}],
        });
        let body = Bytes::from(serde_json::to_vec(&manifest).unwrap());
        if single {
            let d = client
                .put_manifest(reference, manifest_type, body)
                .await
                .unwrap();
            return Pushed {
                digest: d.clone(),
                children: vec![(p.to_string(), d)],
                attestations: vec![],
            };
        }
        let by_digest = reference
            .without_digest()
            .with_digest(Digest::sha256_of(&body));
        let by_digest = Reference::parse(&format!(
            "{}@{}",
            by_digest.name(),
            by_digest.digest().unwrap()
        ))
        .unwrap();
        let d = client
            .put_manifest(&by_digest, manifest_type, body.clone())
            .await
            .unwrap();
        let mut platform = json!({"architecture": parts[1], "os": parts[0]});
        if let Some(v) = parts.get(2) {
            platform["variant"] = json!(v);
        }
        descriptors.push(json!({"mediaType": manifest_type, "digest": d.to_string(), "size": body.len(), "platform": platform}));
        children.push((p.to_string(), d.clone()));
        if attest && flavor == Flavor::Oci {
            let att_cfg = Bytes::from(format!("{{\"attestation\":\"{p}{salt}\"}}"));
            let att_cfg_d = client.push_blob(reference, att_cfg.clone()).await.unwrap();
            let att = json!({"schemaVersion": 2, "mediaType": manifest_type,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": att_cfg_d.to_string(), "size": att_cfg.len()},
                "layers": []});
            let att_body = Bytes::from(serde_json::to_vec(&att).unwrap());
            let att_ref = Reference::parse(&format!(
                "{}@{}",
                reference.name(),
                Digest::sha256_of(&att_body)
            ))
            .unwrap();
            let ad = client
                .put_manifest(&att_ref, manifest_type, att_body.clone())
                .await
                .unwrap();
            descriptors.push(json!({"mediaType": manifest_type, "digest": ad.to_string(), "size": att_body.len(),
                "platform": {"architecture": "unknown", "os": "unknown"},
                "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": d.to_string()}}));
            attestations.push(ad);
        }
    }
    let index = json!({"schemaVersion": 2, "mediaType": index_type, "manifests": descriptors});
    let body = Bytes::from(serde_json::to_vec(&index).unwrap());
    let digest = client
        .put_manifest(reference, index_type, body)
        .await
        .unwrap();
    Pushed {
        digest,
        children,
        attestations,
    }
}

/// Path of the ferry binary `name` (`target/<profile>/NAME`, beside this test executable),
/// built first: the first call of a test process (under nextest: of a whole test run) runs
/// `cargo build --workspace --bins` with the test's own profile and target directory, so a
/// test never runs a binary older than the sources, even after a plain `cargo test`.
/// (Cargo's `CARGO_BIN_EXE_<name>` exists only for tests inside the binary's own package;
/// these tests span all four binaries.) After `scripts/test.sh`'s build the call is a no-op.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/test-xxxx → target/<profile>/NAME
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    if let Err(e) = BUILT.get_or_init(|| build_bins_once(&dir)) {
        panic!("cannot build the ferry binaries for the tests: {e}");
    }
    let p = dir.join(name);
    assert!(p.exists(), "{} was not built", p.display());
    p
}

/// `cargo build --workspace --bins` for the profile whose output directory is `dir`, once per
/// nextest run (a lock file and a marker with the run id), else once per test process.
fn build_bins_once(dir: &Path) -> Result<(), String> {
    let run_id = std::env::var("NEXTEST_RUN_ID").ok();
    let lock_path = dir.join(".ferry-tests-build.lock");
    let lock =
        std::fs::File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
    let marker = dir.join(".ferry-tests-built-run");
    if let Some(id) = &run_id
        && std::fs::read_to_string(&marker).is_ok_and(|m| m == *id)
    {
        return Ok(());
    }
    let profile = match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => return Err(format!("{}: no profile directory", dir.display())),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package sits in the workspace");
    let out = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--workspace", "--bins", "--profile", profile])
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    if let Some(id) = run_id {
        std::fs::write(&marker, id).map_err(|e| format!("{}: {e}", marker.display()))?;
    }
    Ok(())
}

/// A git repository in a temp dir, driven through the `git` command.
pub struct GitRepo {
    pub dir: tempfile::TempDir,
}

impl Default for GitRepo {
    fn default() -> Self {
        Self::new()
    }
}

impl GitRepo {
    /// `git init -b main` with a test identity.
    pub fn new() -> GitRepo {
        let dir = tempfile::tempdir().unwrap();
        let r = GitRepo { dir };
        r.git(&["init", "-q", "-b", "main"]);
        r.git(&["config", "user.email", "ferry@test.invalid"]);
        r.git(&["config", "user.name", "ferry test"]);
        r.git(&["config", "commit.gpgsign", "false"]);
        r
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write a file (creating directories).
    pub fn write(&self, rel: &str, content: &str) {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    /// Delete a file.
    pub fn remove(&self, rel: &str) {
        std::fs::remove_file(self.dir.path().join(rel)).unwrap();
    }

    /// Run git in the repository; panics with stderr on failure; returns trimmed stdout.
    pub fn git(&self, args: &[&str]) -> String {
        git_in(self.dir.path(), args)
    }

    /// `git add -A && git commit`; returns the new commit id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }
}

/// Run git in `dir`; panics with stderr on failure; returns trimmed stdout.
pub fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("git must be installed");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A real `git daemon` on 127.0.0.1 serving bare repositories (push enabled), killed on drop.
pub struct GitDaemon {
    child: Child,
    pub port: u16,
    pub root: tempfile::TempDir,
}

impl GitDaemon {
    pub fn start() -> GitDaemon {
        let root = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut child = Command::new("git")
            .args([
                "daemon",
                "--listen=127.0.0.1",
                "--reuseaddr",
                "--export-all",
                "--enable=receive-pack",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", root.path().display()))
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return GitDaemon { child, port, root };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("git daemon did not start on port {port}");
    }

    /// Create an empty bare repository `name` (partial clones allowed) and return its URL.
    pub fn create(&self, name: &str) -> String {
        let p = self.root.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        git_in(&p, &["init", "-q", "--bare", "-b", "main"]);
        git_in(&p, &["config", "uploadpack.allowFilter", "true"]);
        git_in(&p, &["config", "uploadpack.allowAnySHA1InWant", "true"]);
        self.url(name)
    }

    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Run headless Chromium with `args` and the URL; stdout. Fails clearly when it is missing.
pub fn chromium(profile: &Path, args: &[String], url: &str) -> String {
    // FERRY_CHROMIUM names another binary (e.g. google-chrome on CI images without Debian's).
    let bin = std::env::var("FERRY_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let mut child = Command::new(&bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{bin} could not be started ({e}): this test needs Debian's chromium \
                 (apt-get install -y chromium) or FERRY_CHROMIUM naming a Chromium binary"
            )
        });
    // A generous bound so a wedged browser fails the test instead of hanging it.
    for _ in 0..1200 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("chromium did not finish within 120 s");
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "chromium failed: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}
