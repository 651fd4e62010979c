//! cosign interop: ferry's `verify-signature` must accept exactly what `cosign verify --key …
//! --insecure-ignore-tlog` accepts, on the same images, for every way cosign 3 stores a
//! signature (Sigstore bundle referrer, legacy `.sig` tag, legacy referrer), on a registry with
//! the Referrers API and on Debian's distribution (which has none: tag-schema fallback).
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::path::Path;

use ferry_core::{Digest, Reference};
use ferry_tests::signing::{
    AnyRegistry, Mode, ReferrersRegistry, cosign_verifies, key_pair, rewrite_signature, sign,
    tamper,
};
use ferry_tests::{Flavor, Registry, bin, plain_client, push_image};
use serde_json::Value;

/// ferry's verdict and its JSON.
fn ferry_verifies(reg: &AnyRegistry, public: &Path, image: &str) -> (bool, Value) {
    let o = std::process::Command::new(bin("ferry-registry"))
        .args([
            "--plain-http",
            reg.addr(),
            "--json",
            "verify-signature",
            "--key",
        ])
        .arg(public)
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

/// ferry and cosign agree on `image`, and both say `expected`.
fn agree(
    dir: &Path,
    reg: &AnyRegistry,
    mode: Mode,
    public: &Path,
    image: &str,
    expected: bool,
    case: &str,
) -> Value {
    let theirs = cosign_verifies(dir, public, image, mode);
    let (ours, json) = ferry_verifies(reg, public, image);
    let label = format!("{} {mode:?} {case}", reg.name());
    assert_eq!(
        ours, theirs,
        "{label}: ferry {ours}, cosign {theirs}: {json:#}"
    );
    assert_eq!(ours, expected, "{label}: {json:#}");
    json
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

async fn interop_table(reg: AnyRegistry) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public) = key_pair(d, "signer");
    let (_, stranger) = key_pair(d, "stranger");
    let c = plain_client(reg.addr());
    for mode in Mode::ALL {
        let repo: Reference = format!("{}/acme/{:?}", reg.addr(), mode)
            .to_lowercase()
            .parse()
            .unwrap();
        let push = |tag: &str, salt: String| {
            let r = repo.with_tag(tag).unwrap();
            let c = c.clone();
            async move {
                push_image(
                    &c,
                    &r,
                    &["linux/amd64", "linux/arm64"],
                    Flavor::Oci,
                    false,
                    false,
                    &salt,
                )
                .await
            }
        };
        let at = |digest: &Digest| format!("{}@{digest}", repo.name());

        // Valid: the index digest signed with the key.
        let signed = push("signed", format!("{mode:?}-signed")).await;
        sign(d, &key, &at(&signed.digest), mode);
        let json = agree(d, &reg, mode, &public, &at(&signed.digest), true, "valid");
        assert_eq!(json["candidates"][0]["valid"], true, "{json:#}");
        // Through the tag too (ferry resolves it to the same digest).
        let (ok, _) = ferry_verifies(&reg, &public, &repo.with_tag("signed").unwrap().to_string());
        assert!(ok);

        // Wrong key.
        let json = agree(
            d,
            &reg,
            mode,
            &stranger,
            &at(&signed.digest),
            false,
            "wrong key",
        );
        assert!(reasons(&json).contains("does not verify"), "{json:#}");

        // Only the arm64 child is signed: the index is not.
        let child_signed = push("child", format!("{mode:?}-child")).await;
        let arm64 = &child_signed
            .children
            .iter()
            .find(|(p, _)| p.contains("arm64"))
            .unwrap()
            .1;
        sign(d, &key, &at(arm64), mode);
        agree(
            d,
            &reg,
            mode,
            &public,
            &at(&child_signed.digest),
            false,
            "unsigned index, signed child",
        );
        agree(
            d,
            &reg,
            mode,
            &public,
            &at(arm64),
            true,
            "the signed child itself",
        );

        // A valid signature of another digest, attached to this one.
        let other = push("other", format!("{mode:?}-other")).await;
        let victim = push("victim", format!("{mode:?}-victim")).await;
        sign(d, &key, &at(&other.digest), mode);
        rewrite_signature(&c, &reg, &repo, &other.digest, &victim.digest, mode, None).await;
        let json = agree(
            d,
            &reg,
            mode,
            &public,
            &at(&victim.digest),
            false,
            "signature of another digest",
        );
        assert!(
            reasons(&json).contains(&other.digest.to_string()),
            "{json:#}"
        );

        // The signed payload changed after signing.
        let tampered = push("tampered", format!("{mode:?}-tampered")).await;
        sign(d, &key, &at(&tampered.digest), mode);
        agree(
            d,
            &reg,
            mode,
            &public,
            &at(&tampered.digest),
            true,
            "before tampering",
        );
        rewrite_signature(
            &c,
            &reg,
            &repo,
            &tampered.digest,
            &tampered.digest,
            mode,
            Some(tamper),
        )
        .await;
        let json = agree(
            d,
            &reg,
            mode,
            &public,
            &at(&tampered.digest),
            false,
            "tampered payload",
        );
        assert!(reasons(&json).contains("does not verify"), "{json:#}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ferry_and_cosign_agree_on_the_referrers_registry() {
    interop_table(AnyRegistry::Referrers(ReferrersRegistry::start())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ferry_and_cosign_agree_on_distribution_without_a_referrers_api() {
    interop_table(AnyRegistry::Distribution(Registry::start())).await;
}

#[test]
fn a_bad_key_names_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pub");
    std::fs::write(&bad, "not a key").unwrap();
    let o = std::process::Command::new(bin("ferry-registry"))
        .args(["verify-signature", "--key"])
        .arg(&bad)
        .arg("127.0.0.1:1/acme/app:1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.pub") && err.contains("PUBLIC KEY"),
        "{err}"
    );
}

fn ferry_registry(reg: &AnyRegistry, args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin("ferry-registry"))
        .args(["--plain-http", reg.addr()])
        .args(args)
        .output()
        .unwrap()
}

/// `promote` and `tag` to another repository carry the signatures: `cosign verify` passes on
/// the destination; `--require-signature` refuses an unsigned source and writes nothing.
async fn carried(reg: AnyRegistry) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public) = key_pair(d, "signer");
    let pubs = public.to_str().unwrap();
    let c = plain_client(reg.addr());
    for mode in Mode::ALL {
        let m = format!("{mode:?}").to_lowercase();
        let staging: Reference = format!("{}/acme/staging-{m}:1", reg.addr())
            .parse()
            .unwrap();
        let pushed = push_image(
            &c,
            &staging,
            &["linux/amd64", "linux/arm64"],
            Flavor::Oci,
            false,
            false,
            &m,
        )
        .await;
        sign(
            d,
            &key,
            &format!("{}@{}", staging.name(), pushed.digest),
            mode,
        );
        for (cmd, repo) in [("promote", "prod"), ("tag", "mirror")] {
            let dst = format!("{}/acme/{repo}-{m}:1", reg.addr());
            let at_dst = format!("{}/acme/{repo}-{m}@{}", reg.addr(), pushed.digest);
            let label = format!("{} {mode:?} {cmd}", reg.name());
            assert!(
                !cosign_verifies(d, &public, &at_dst, mode),
                "{label}: nothing there yet"
            );
            let staging_s = staging.to_string();
            let mut args = vec![cmd, staging_s.as_str(), dst.as_str()];
            if cmd == "promote" {
                args.extend(["--require-signature", "--key", pubs]);
            }
            let o = ferry_registry(&reg, &args);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{label}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(
                cosign_verifies(d, &public, &at_dst, mode),
                "{label}: cosign verify on the destination"
            );
            assert!(ferry_verifies(&reg, &public, &at_dst).0, "{label}");
        }
        // An unsigned source is refused and nothing is written.
        let unsigned: Reference = format!("{}/acme/staging-{m}:2", reg.addr())
            .parse()
            .unwrap();
        push_image(
            &c,
            &unsigned,
            &["linux/amd64"],
            Flavor::Oci,
            false,
            false,
            &format!("{m}-2"),
        )
        .await;
        let dst = format!("{}/acme/prod-{m}:2", reg.addr());
        let o = ferry_registry(
            &reg,
            &[
                "--json",
                "promote",
                &unsigned.to_string(),
                &dst,
                "--require-signature",
                "--key",
                pubs,
            ],
        );
        assert_eq!(
            o.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let json: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(json["action"], "refused");
        assert!(
            json["reason"]
                .as_str()
                .unwrap()
                .contains("carries no signature"),
            "{json:#}"
        );
        assert!(
            c.resolve(&dst.parse().unwrap()).await.is_err(),
            "refused, yet {dst} exists"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn promote_and_tag_carry_signatures_on_the_referrers_registry() {
    carried(AnyRegistry::Referrers(ReferrersRegistry::start())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn promote_and_tag_carry_signatures_on_distribution() {
    carried(AnyRegistry::Distribution(Registry::start())).await;
}

/// A destination whose `.sig` tag already holds another key's signature keeps it when `tag`
/// copies the source's signatures along (cosign verifies with both keys), and copying again adds
/// no duplicate layer.
#[tokio::test(flavor = "multi_thread")]
async fn copying_a_sig_tag_merges_with_the_destinations_signatures() {
    let reg = AnyRegistry::Distribution(Registry::start());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key_a, pub_a) = key_pair(d, "a");
    let (key_b, pub_b) = key_pair(d, "b");
    let c = plain_client(reg.addr());
    let staging: Reference = format!("{}/acme/merge-staging:1", reg.addr())
        .parse()
        .unwrap();
    let pushed = push_image(
        &c,
        &staging,
        &["linux/amd64"],
        Flavor::Oci,
        true,
        false,
        "m",
    )
    .await;
    let prod = format!("{}/acme/merge-prod:1", reg.addr());
    let at = |repo: &str| format!("{}/acme/{repo}@{}", reg.addr(), pushed.digest);
    // The image reaches prod unsigned; prod's own pipeline signs it there with key B.
    let o = ferry_registry(&reg, &["tag", &staging.to_string(), &prod]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    sign(d, &key_b, &at("merge-prod"), Mode::LegacyTag);
    // Staging signs with key A; copying again brings A along without dropping B.
    sign(d, &key_a, &at("merge-staging"), Mode::LegacyTag);
    let sig_tag: Reference = format!(
        "{}/acme/merge-prod:sha256-{}.sig",
        reg.addr(),
        pushed.digest.hex()
    )
    .parse()
    .unwrap();
    let layers = |body: &[u8]| {
        let v: Value = serde_json::from_slice(body).unwrap();
        v["layers"].as_array().unwrap().len()
    };
    for round in 0..2 {
        let o = ferry_registry(&reg, &["tag", &staging.to_string(), &prod]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        for (key, name) in [(&pub_a, "a"), (&pub_b, "b")] {
            assert!(
                cosign_verifies(d, key, &at("merge-prod"), Mode::LegacyTag),
                "round {round}: cosign verify with key {name} on the destination"
            );
            assert!(
                ferry_verifies(&reg, key, &at("merge-prod")).0,
                "round {round}: {name}"
            );
        }
        let m = c.manifest(&sig_tag).await.unwrap();
        assert_eq!(layers(&m.body), 2, "round {round}: one layer per signature");
    }
}
