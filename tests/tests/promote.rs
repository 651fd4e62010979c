//! `ferry-registry tag` and `promote` against a real registry on 127.0.0.1: indexes and single
//! images, same and cross repository (blobs mounted, not pulled), soak-time refusals with images
//! built at chosen `created` times, platforms that would be lost.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::process::{Command, Output};

use ferry_tests::{Flavor, Registry, bin, plain_client, push_image, push_image_created};
use serde_json::Value;

fn run(reg: &Registry, args: &[&str]) -> Output {
    Command::new(bin("ferry-registry"))
        .args(args)
        .args(["--plain-http", &reg.addr, "--json"])
        .env("DOCKER_CONFIG", "/nonexistent-ferry-test")
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn rfc3339_ago(secs: u64) -> String {
    let t = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
    humantime_like(t)
}

/// RFC 3339 in UTC without a time crate: through `date`.
fn humantime_like(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let o = Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn tag_copies_indexes_and_single_images_within_and_across_repositories() {
    let reg = Registry::start();
    let c = plain_client(&reg.addr);
    let beta = reg.reference("acme/etl:beta");
    let pushed = push_image(
        &c,
        &beta,
        &["linux/amd64", "linux/arm64"],
        Flavor::Oci,
        false,
        true,
        "t",
    )
    .await;

    let o = run(
        &reg,
        &[
            "tag",
            &beta.to_string(),
            &reg.reference("acme/etl:v1").to_string(),
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(json(&o)["digest"], pushed.digest.to_string());
    assert_eq!(
        c.resolve(&reg.reference("acme/etl:v1"))
            .await
            .unwrap()
            .digest,
        pushed.digest
    );

    let prod = reg.reference("prod/etl:stable");
    let o = run(&reg, &["tag", &beta.to_string(), &prod.to_string()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json(&o);
    assert_eq!(
        v["digest"],
        pushed.digest.to_string(),
        "same bytes, same digest"
    );
    assert_eq!(v["copied_blobs"], 0, "blobs are mounted, not pulled: {v}");
    assert!(v["mounted_blobs"].as_u64().unwrap() >= 4, "{v}");
    let i = c.inspect(&prod).await.unwrap();
    assert_eq!(i.platforms.len(), 2);
    assert_eq!(i.attestations.len(), 2);
    for p in &i.platforms {
        let child = ferry_core::Reference::parse(&format!("{}@{}", prod.name(), p.digest)).unwrap();
        c.inspect(&child).await.unwrap();
    }

    let single = reg.reference("acme/pi:edge");
    let one = push_image(
        &c,
        &single,
        &["linux/arm/v7"],
        Flavor::Docker,
        true,
        false,
        "s",
    )
    .await;
    let o = run(
        &reg,
        &[
            "tag",
            &single.to_string(),
            &reg.reference("prod/pi:edge").to_string(),
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        c.inspect(&reg.reference("prod/pi:edge"))
            .await
            .unwrap()
            .digest,
        one.digest
    );
}

#[tokio::test]
async fn promote_waits_for_the_soak_and_never_loses_a_platform() {
    let reg = Registry::start();
    let c = plain_client(&reg.addr);
    let beta = reg.reference("acme/etl:beta");
    let prod = reg.reference("acme/etl:prod");
    // Built an hour ago: too young for 72h.
    let young = push_image_created(
        &c,
        &beta,
        &["linux/amd64", "linux/arm64"],
        Flavor::Oci,
        false,
        false,
        "y",
        &rfc3339_ago(3600),
    )
    .await;
    let o = run(
        &reg,
        &[
            "promote",
            &beta.to_string(),
            &prod.to_string(),
            "--min-age",
            "72h",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "refused");
    let v = json(&o);
    assert_eq!(v["action"], "refused");
    assert!(
        v["reason"].as_str().unwrap().contains("more (min-age 3d"),
        "{v}"
    );
    assert!(c.resolve(&prod).await.is_err(), "nothing was written");
    // A first-seen time the caller recorded overrides created.
    let since = rfc3339_ago(80 * 3600);
    let o = run(
        &reg,
        &[
            "promote",
            &beta.to_string(),
            &prod.to_string(),
            "--min-age",
            "72h",
            "--since",
            &since,
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(json(&o)["action"], "promoted");
    assert_eq!(c.resolve(&prod).await.unwrap().digest, young.digest);
    // Again: already there, nothing done, exit 0.
    let o = run(
        &reg,
        &[
            "promote",
            &beta.to_string(),
            &prod.to_string(),
            "--min-age",
            "72h",
            "--since",
            &since,
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(json(&o)["action"], "unchanged");
    // An old enough image that dropped arm64 must not replace one that has it.
    push_image_created(
        &c,
        &beta,
        &["linux/amd64"],
        Flavor::Oci,
        false,
        false,
        "amd-only",
        &rfc3339_ago(10 * 86_400),
    )
    .await;
    let o = run(
        &reg,
        &[
            "promote",
            &beta.to_string(),
            &prod.to_string(),
            "--min-age",
            "72h",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(json(&o)["reason"].as_str().unwrap().contains("linux/arm64"));
    assert_eq!(c.resolve(&prod).await.unwrap().digest, young.digest);
    // Old enough and complete: promoted on its created time.
    let old = push_image_created(
        &c,
        &beta,
        &["linux/amd64", "linux/arm64"],
        Flavor::Oci,
        false,
        false,
        "old",
        &rfc3339_ago(4 * 86_400),
    )
    .await;
    let o = run(
        &reg,
        &[
            "promote",
            &beta.to_string(),
            &reg.reference("prod/etl:prod").to_string(),
            "--min-age",
            "72h",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(json(&o)["action"], "promoted");
    assert!(json(&o)["age_seconds"].as_u64().unwrap() >= 4 * 86_400 - 60);
    assert_eq!(
        c.resolve(&reg.reference("prod/etl:prod"))
            .await
            .unwrap()
            .digest,
        old.digest
    );
}
