//! Keyless interop: on bundles made by a private Sigstore instance (tests/tools/virtual-sigstore:
//! a Fulcio-style CA with SCTs, a CT log key, sigstore-go's virtual Rekor log) and stored the
//! way cosign 3 stores them (a bundle referrer; the referrers tag schema on distribution),
//! `ferry-registry verify-signature --certificate-identity… --certificate-oidc-issuer…
//! --trusted-root` must give `cosign verify`'s verdict with the same flags — offline, with the
//! SCT and the transparency log checked on both sides.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::path::Path;

use ferry_core::Reference;
use ferry_tests::signing::{
    AnyRegistry, KeylessJob, ReferrersRegistry, cosign_verifies_keyless, key_pair, keyless_sign,
};
use ferry_tests::{Flavor, Registry, bin, plain_client, push_image};
use serde_json::Value;

const ID: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

/// ferry's verdict with the identity `flags`, and its JSON.
fn ferry_verifies(reg: &AnyRegistry, root: &Path, flags: &[&str], image: &str) -> (bool, Value) {
    let o = std::process::Command::new(bin("ferry-registry"))
        .args(["--plain-http", reg.addr(), "--json", "verify-signature"])
        .args(flags)
        .arg("--trusted-root")
        .arg(root)
        .arg(image)
        .output()
        .unwrap();
    let code = o.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "{image}: exit {code:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (code == Some(0), serde_json::from_slice(&o.stdout).unwrap())
}

fn reasons(json: &Value) -> String {
    json["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["reason"].as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Both verdicts on `image` equal `expected`; ferry's reasons contain `why` when it refuses.
fn agree(
    dir: &Path,
    reg: &AnyRegistry,
    root: &Path,
    flags: &[&str],
    image: &str,
    expected: bool,
    why: &str,
) {
    let (theirs, cosign_err) = cosign_verifies_keyless(dir, root, flags, image);
    let (ours, json) = ferry_verifies(reg, root, flags, image);
    let label = format!("{} {flags:?} {image}", reg.name());
    assert_eq!(
        ours, theirs,
        "{label}: ferry {ours}, cosign {theirs} ({cosign_err}): {json:#}"
    );
    assert_eq!(ours, expected, "{label}: {json:#} / cosign: {cosign_err}");
    if !expected {
        assert!(
            reasons(&json).contains(why),
            "{label}: wanted {why:?}: {json:#}"
        );
    }
}

async fn keyless_table(reg: AnyRegistry) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = d.join("trusted_root.json");
    let c = plain_client(reg.addr());
    let repo: Reference = format!("{}/acme/keyless", reg.addr()).parse().unwrap();
    let mut images = Vec::new();
    for name in [
        "valid",
        "untrusted",
        "payload",
        "other",
        "victim",
        "no-tlog",
        "tlog",
    ] {
        let r = repo.with_tag(name).unwrap();
        let p = push_image(&c, &r, &["linux/amd64"], Flavor::Oci, true, false, name).await;
        images.push(format!("{}@{}", repo.name(), p.digest));
    }
    let [valid, untrusted, payload, other, victim, no_tlog, tlog] = &images[..] else {
        unreachable!()
    };
    let job = |image: &str, ca, tamper| KeylessJob {
        image: image.to_string(),
        signs: None,
        identity: ID.into(),
        issuer: ISSUER.into(),
        ca,
        tamper,
    };
    let other_digest = other.rsplit_once('@').unwrap().1.to_string();
    keyless_sign(
        &root,
        &[
            job(valid, "trusted", ""),
            job(untrusted, "untrusted", ""),
            job(payload, "trusted", "payload"),
            KeylessJob {
                signs: Some(other_digest.clone()),
                ..job(victim, "trusted", "")
            },
            job(no_tlog, "trusted", "no-tlog"),
            job(tlog, "trusted", "tlog-time"),
        ],
    );
    let exact = [
        "--certificate-identity",
        ID,
        "--certificate-oidc-issuer",
        ISSUER,
    ];
    agree(d, &reg, &root, &exact, valid, true, "");
    let (_, json) = ferry_verifies(&reg, &root, &exact, valid);
    assert_eq!(json["candidates"][0]["signer"]["identity"], ID, "{json:#}");
    assert_eq!(
        json["candidates"][0]["signer"]["issuer"], ISSUER,
        "{json:#}"
    );
    // Through the tag too.
    let tag = repo.with_tag("valid").unwrap().to_string();
    assert!(ferry_verifies(&reg, &root, &exact, &tag).0);

    let other_id = "https://github.com/acme/other/.github/workflows/release.yml@refs/heads/main";
    let flags = [
        "--certificate-identity",
        other_id,
        "--certificate-oidc-issuer",
        ISSUER,
    ];
    agree(d, &reg, &root, &flags, valid, false, "no given identity");
    let flags = [
        "--certificate-identity-regexp",
        "^https://github\\.com/acme/app/",
        "--certificate-oidc-issuer",
        ISSUER,
    ];
    agree(d, &reg, &root, &flags, valid, true, "");
    let flags = [
        "--certificate-identity-regexp",
        "^https://github\\.com/acme/other/",
        "--certificate-oidc-issuer-regexp",
        "githubusercontent",
    ];
    agree(d, &reg, &root, &flags, valid, false, "no given identity");
    let flags = [
        "--certificate-identity",
        ID,
        "--certificate-oidc-issuer",
        "https://accounts.google.com",
    ];
    agree(d, &reg, &root, &flags, valid, false, "no given identity");

    agree(d, &reg, &root, &exact, untrusted, false, "certificate");
    agree(
        d,
        &reg,
        &root,
        &exact,
        payload,
        false,
        "keyless verification failed",
    );
    agree(
        d,
        &reg,
        &root,
        &exact,
        victim,
        false,
        "keyless verification failed",
    );
    agree(
        d,
        &reg,
        &root,
        &exact,
        no_tlog,
        false,
        "keyless verification failed",
    );
    agree(
        d,
        &reg,
        &root,
        &exact,
        tlog,
        false,
        "keyless verification failed",
    );
    // The bundle signed for `other` is no signature of `other` either: it hangs on `victim`.
    agree(d, &reg, &root, &exact, other, false, "");

    // With a key instead, the keyless bundle is reported as such.
    let o = std::process::Command::new(bin("ferry-registry"))
        .args(["--plain-http", reg.addr(), "--json", "verify-signature"])
        .arg("--key")
        .arg(key_pair(d, "stranger").1)
        .arg(valid)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(reasons(&json).contains("keyless signature"), "{json:#}");

    promote_requires_the_identity(&reg, d, &root, valid, untrusted).await;
}

/// `promote --require-signature --signature-policy` with a keyless policy: the keyless-signed
/// image moves, the one from the untrusted CA is refused and nothing is written.
async fn promote_requires_the_identity(
    reg: &AnyRegistry,
    d: &Path,
    root: &Path,
    valid: &str,
    untrusted: &str,
) {
    let policy = d.join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "keyless:\n  - issuer: {ISSUER}\n    subject_regexp: '^https://github\\.com/acme/app/'\ntrusted_root: {}\n",
            root.file_name().unwrap().to_str().unwrap()
        ),
    )
    .unwrap();
    let c = plain_client(reg.addr());
    for (src, dst, code) in [(valid, "prod:ok", 0), (untrusted, "prod:no", 1)] {
        let dst = format!("{}/acme/{dst}", reg.addr());
        let o = std::process::Command::new(bin("ferry-registry"))
            .args(["--plain-http", reg.addr(), "--json", "promote", src, &dst])
            .args(["--require-signature", "--signature-policy"])
            .arg(&policy)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(code),
            "{src}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            c.resolve(&dst.parse().unwrap()).await.is_ok(),
            code == 0,
            "{dst}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ferry_and_cosign_agree_on_keyless_signatures_on_the_referrers_registry() {
    keyless_table(AnyRegistry::Referrers(ReferrersRegistry::start())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ferry_and_cosign_agree_on_keyless_signatures_on_distribution() {
    keyless_table(AnyRegistry::Distribution(Registry::start())).await;
}

#[test]
fn a_bad_trusted_root_or_regexp_is_a_clear_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("broken-root.json");
    std::fs::write(&root, "{\"mediaType\": 3}").unwrap();
    let run = |flags: &[&str]| {
        std::process::Command::new(bin("ferry-registry"))
            .arg("verify-signature")
            .args(flags)
            .arg("127.0.0.1:1/acme/app:1")
            .output()
            .unwrap()
    };
    let o = run(&[
        "--certificate-identity",
        ID,
        "--certificate-oidc-issuer",
        ISSUER,
        "--trusted-root",
        root.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("broken-root.json"), "{err}");
    let o = run(&[
        "--certificate-identity-regexp",
        "(",
        "--certificate-oidc-issuer",
        ISSUER,
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--certificate-identity-regexp"), "{err}");
    let o = run(&["--certificate-identity", ID]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--certificate-oidc-issuer"), "{err}");
}
