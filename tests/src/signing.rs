//! Harness for the signature tests: cosign and a registry with the Referrers API, both built
//! from pinned Go sources by `scripts/test-tools.sh` (cached under ~/.cache/ferry), and helpers
//! that sign with cosign, ask cosign's verdict, and rewrite signatures the way an attacker
//! would (tampered payload, signature moved to another digest).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

use bytes::Bytes;
use ferry_core::{Digest, Reference};
use ferry_registry::Client;
use serde_json::{Value, json};

use crate::Registry;

/// Paths of the built test tools.
pub struct Tools {
    pub cosign: PathBuf,
    pub referrers_registry: PathBuf,
    pub virtual_sigstore: PathBuf,
}

/// Build (when missing) and locate the tools, once per test process.
pub fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/test-tools.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .expect("bash scripts/test-tools.sh");
        assert!(
            out.status.success(),
            "scripts/test-tools.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let paths: HashMap<String, PathBuf> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), PathBuf::from(v)))
            .collect();
        Tools {
            cosign: paths["cosign"].clone(),
            referrers_registry: paths["referrers-registry"].clone(),
            virtual_sigstore: paths["virtual-sigstore"].clone(),
        }
    })
}

/// go-containerregistry's registry with the Referrers API, on 127.0.0.1, killed on drop.
pub struct ReferrersRegistry {
    child: Child,
    pub addr: String,
}

impl ReferrersRegistry {
    pub fn start() -> ReferrersRegistry {
        let mut child = Command::new(&tools().referrers_registry)
            .stderr(Stdio::piped())
            .spawn()
            .expect("referrers-registry");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let (Some(addr), Some(t)) = (line.strip_prefix("listening on "), tx.take()) {
                    let _ = t.send(addr.trim().to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("referrers-registry reports its address");
        ReferrersRegistry { child, addr }
    }
}

impl Drop for ReferrersRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Either registry under test.
pub enum AnyRegistry {
    /// CNCF distribution 2.8 (Debian): no Referrers API, so cosign falls back to tags.
    Distribution(Registry),
    /// go-containerregistry's, with the Referrers API.
    Referrers(ReferrersRegistry),
}

impl AnyRegistry {
    pub fn addr(&self) -> &str {
        match self {
            AnyRegistry::Distribution(r) => &r.addr,
            AnyRegistry::Referrers(r) => &r.addr,
        }
    }

    pub fn has_referrers_api(&self) -> bool {
        matches!(self, AnyRegistry::Referrers(_))
    }

    pub fn name(&self) -> &'static str {
        match self {
            AnyRegistry::Distribution(_) => "distribution",
            AnyRegistry::Referrers(_) => "referrers-registry",
        }
    }
}

/// How cosign stores a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// cosign 3's default: a Sigstore bundle as an OCI referrer (tag schema without the API).
    Bundle,
    /// `--new-bundle-format=false`: simple signing in the `sha256-<hex>.sig` tag.
    LegacyTag,
    /// `--new-bundle-format=false --registry-referrers-mode=oci-1-1`: simple signing as a
    /// referrer.
    LegacyReferrers,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Bundle, Mode::LegacyTag, Mode::LegacyReferrers];

    fn sign_flags(self) -> &'static [&'static str] {
        match self {
            Mode::Bundle => &[],
            Mode::LegacyTag => &["--new-bundle-format=false"],
            Mode::LegacyReferrers => &[
                "--new-bundle-format=false",
                "--registry-referrers-mode=oci-1-1",
            ],
        }
    }

    fn verify_flags(self) -> &'static [&'static str] {
        match self {
            Mode::LegacyReferrers => &["--experimental-oci11"],
            _ => &[],
        }
    }
}

/// Run cosign with the test password and the experimental switch (needed by oci-1-1 mode).
pub fn cosign(dir: &Path, args: &[&str]) -> Output {
    Command::new(&tools().cosign)
        .current_dir(dir)
        .env("COSIGN_PASSWORD", "ferry-test")
        .env("COSIGN_EXPERIMENTAL", "1")
        .args(args)
        .output()
        .expect("cosign")
}

/// `cosign generate-key-pair --output-key-prefix NAME` in `dir`: (NAME.key, NAME.pub).
pub fn key_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let o = cosign(dir, &["generate-key-pair", "--output-key-prefix", name]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    )
}

/// Sign `image` (with a digest) with `key`, offline (no transparency log).
pub fn sign(dir: &Path, key: &Path, image: &str, mode: Mode) {
    let key = key.to_str().unwrap();
    let mut args = vec![
        "sign",
        "--key",
        key,
        "--use-signing-config=false",
        "--tlog-upload=false",
        "--allow-http-registry",
        "--yes",
    ];
    args.extend(mode.sign_flags());
    args.push(image);
    let o = cosign(dir, &args);
    assert!(
        o.status.success(),
        "cosign sign {mode:?} {image}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// cosign's verdict: does `cosign verify --key PUB --insecure-ignore-tlog` accept `image`?
pub fn cosign_verifies(dir: &Path, public: &Path, image: &str, mode: Mode) -> bool {
    let mut args = vec![
        "verify",
        "--key",
        public.to_str().unwrap(),
        "--insecure-ignore-tlog",
        "--allow-http-registry",
    ];
    args.extend(mode.verify_flags());
    args.push(image);
    cosign(dir, &args).status.success()
}

/// Where a digest's signature manifest lives, for rewriting it.
async fn signature_manifest(
    c: &Client,
    reg: &AnyRegistry,
    repo: &Reference,
    digest: &Digest,
    mode: Mode,
) -> (Digest, Value) {
    let hex = format!("sha256-{}", digest.hex());
    let top = if mode == Mode::LegacyTag {
        repo.with_tag(&format!("{hex}.sig")).unwrap()
    } else if reg.has_referrers_api() {
        let url = format!(
            "http://{}/v2/{}/referrers/{digest}",
            reg.addr(),
            repo.repository()
        );
        let body = reqwest::get(url).await.unwrap().bytes().await.unwrap();
        let index: Value = serde_json::from_slice(&body).unwrap();
        let d = index["manifests"][0]["digest"].as_str().unwrap();
        repo.with_digest(d.parse().unwrap())
    } else {
        let index = c.manifest(&repo.with_tag(&hex).unwrap()).await.unwrap();
        let v: Value = serde_json::from_slice(&index.body).unwrap();
        let d = v["manifests"][0]["digest"].as_str().unwrap();
        repo.with_digest(d.parse().unwrap())
    };
    let m = c.manifest(&top).await.unwrap();
    (m.digest, serde_json::from_slice(&m.body).unwrap())
}

/// A change to a signature layer's bytes.
pub type Mutation = fn(&[u8]) -> Vec<u8>;

/// Rewrite `from`'s signature: optionally change its first layer's bytes (`mutate`), and
/// attach it to `to` instead (same digest: in place). The old one is removed where it was in
/// place, so only the rewritten signature is left for `to`.
pub async fn rewrite_signature(
    c: &Client,
    reg: &AnyRegistry,
    repo: &Reference,
    from: &Digest,
    to: &Digest,
    mode: Mode,
    mutate: Option<Mutation>,
) {
    let (old, mut m) = signature_manifest(c, reg, repo, from, mode).await;
    if let Some(f) = mutate {
        let layer: Digest = m["layers"][0]["digest"].as_str().unwrap().parse().unwrap();
        let body = c.blob(repo, &layer, 1 << 20).await.unwrap();
        let changed = f(&body);
        let d = c
            .push_blob(repo, Bytes::from(changed.clone()))
            .await
            .unwrap();
        m["layers"][0]["digest"] = json!(d.to_string());
        m["layers"][0]["size"] = json!(changed.len());
    }
    if m.get("subject").is_some() {
        let target = c.resolve(&repo.with_digest(to.clone())).await.unwrap();
        m["subject"] = json!({"mediaType": target.media_type, "digest": to.to_string(),
                              "size": target.size.unwrap()});
    }
    let body = Bytes::from(serde_json::to_vec(&m).unwrap());
    let media = "application/vnd.oci.image.manifest.v1+json";
    let hex = format!("sha256-{}", to.hex());
    if mode == Mode::LegacyTag {
        let dst = repo.with_tag(&format!("{hex}.sig")).unwrap();
        c.put_manifest(&dst, media, body).await.unwrap();
        return;
    }
    let new = Digest::sha256_of(&body);
    c.put_manifest(&repo.with_digest(new.clone()), media, body.clone())
        .await
        .unwrap();
    if reg.has_referrers_api() {
        if from == to {
            let url = format!(
                "http://{}/v2/{}/manifests/{old}",
                reg.addr(),
                repo.repository()
            );
            let r = reqwest::Client::new().delete(url).send().await.unwrap();
            assert!(r.status().is_success(), "delete {old}: {}", r.status());
        }
        return;
    }
    // The referrers tag schema: the index under `sha256-<hex>` lists only the new one.
    let mut desc = json!({"mediaType": media, "digest": new.to_string(), "size": body.len()});
    if let Some(t) = m.get("artifactType") {
        desc["artifactType"] = t.clone();
    }
    if let Some(a) = m.get("annotations") {
        desc["annotations"] = a.clone();
    }
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": [desc]});
    c.put_manifest(
        &repo.with_tag(&hex).unwrap(),
        "application/vnd.oci.image.index.v1+json",
        Bytes::from(serde_json::to_vec(&index).unwrap()),
    )
    .await
    .unwrap();
}

/// Tamper with a signed payload or bundle without touching its signature: the signed
/// statement or payload gains a field, and still names the same digest.
pub fn tamper(body: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut v: Value = serde_json::from_slice(body).unwrap();
    if let Some(env) = v.get_mut("dsseEnvelope") {
        let payload = b64.decode(env["payload"].as_str().unwrap()).unwrap();
        let mut st: Value = serde_json::from_slice(&payload).unwrap();
        st["predicate"] = json!({"tampered": true});
        env["payload"] = json!(b64.encode(serde_json::to_vec(&st).unwrap()));
    } else {
        v["optional"] = json!({"tampered": "true"});
    }
    serde_json::to_vec(&v).unwrap()
}

/// One keyless signature for `virtual-sigstore` to make and push (see its main.go).
#[derive(Debug, Clone, Default)]
pub struct KeylessJob {
    /// `host/repo@digest`: what the bundle is attached to.
    pub image: String,
    /// The digest the statement names (default: the image's).
    pub signs: Option<String>,
    pub identity: String,
    pub issuer: String,
    /// `trusted` (in the trusted root) or `untrusted` (another CA with the same names).
    pub ca: &'static str,
    /// `""`, `payload`, `no-tlog`, `tlog-time`.
    pub tamper: &'static str,
}

/// Run one private Sigstore instance: write its trusted root to `trusted_root` and push each
/// job's bundle as a referrer; the referrer manifests' digests, in job order.
pub fn keyless_sign(trusted_root: &Path, jobs: &[KeylessJob]) -> Vec<Digest> {
    use std::io::Write as _;
    let mut child = Command::new(&tools().virtual_sigstore)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("virtual-sigstore");
    let jobs: Vec<Value> = jobs
        .iter()
        .map(|j| {
            json!({"image": j.image, "signs": j.signs.clone().unwrap_or_default(),
                   "identity": j.identity, "issuer": j.issuer, "ca": j.ca, "tamper": j.tamper})
        })
        .collect();
    let req = json!({"trusted_root": trusted_root, "plain_http": true, "signatures": jobs});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(&req).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "virtual-sigstore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

/// cosign's keyless verdict: `cosign verify --trusted-root F` with identity/issuer `flags`
/// (`--certificate-identity[-regexp] X --certificate-oidc-issuer[-regexp] Y`); its stderr too.
pub fn cosign_verifies_keyless(
    dir: &Path,
    trusted_root: &Path,
    flags: &[&str],
    image: &str,
) -> (bool, String) {
    let mut args = vec![
        "verify",
        "--trusted-root",
        trusted_root.to_str().unwrap(),
        "--allow-http-registry",
    ];
    args.extend(flags);
    args.push(image);
    let o = cosign(dir, &args);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
