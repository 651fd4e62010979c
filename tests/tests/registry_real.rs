//! ferry-registry (the crate) against a real CNCF distribution registry on 127.0.0.1.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ferry_core::{Platform, Reference};
use ferry_registry::{
    Client, ClientConfig, Credential, Error, StaticCredentials, TagsOptions, WaitOutcome,
};
use ferry_tests::{Flavor, Registry, RegistryOptions, plain_client, push_image};

fn p(s: &str) -> Platform {
    Platform::parse(s).unwrap()
}

#[tokio::test]
async fn multi_arch_oci_index_digests_platforms_and_attestations() {
    let reg = Registry::start();
    let c = plain_client(&reg.addr);
    let r = reg.reference("acme/etl:1.0");
    let pushed = push_image(
        &c,
        &r,
        &["linux/amd64", "linux/arm64/v8"],
        Flavor::Oci,
        false,
        true,
        "a",
    )
    .await;

    let resolved = c.resolve(&r).await.unwrap();
    assert_eq!(resolved.digest, pushed.digest);
    assert_eq!(
        resolved.media_type,
        "application/vnd.oci.image.index.v1+json"
    );

    let i = c.inspect(&r).await.unwrap();
    assert_eq!(i.digest, pushed.digest);
    assert_eq!(
        i.platforms.len(),
        2,
        "attestations are not platforms: {:?}",
        i.platforms
    );
    assert_eq!(i.attestations.len(), 2);
    assert_eq!(
        i.attestations[0].refers_to.as_ref(),
        Some(&pushed.children[0].1)
    );
    assert_eq!(i.platforms[1].platform.to_string(), "linux/arm64/v8");

    let ok = c
        .verify(&r, &[p("linux/amd64"), p("linux/arm64")])
        .await
        .unwrap();
    assert!(ok.complete());
    let missing = c
        .verify(&r, &[p("linux/amd64"), p("linux/arm/v7")])
        .await
        .unwrap();
    assert_eq!(missing.missing, vec![p("linux/arm/v7")]);

    for spelling in ["linux/arm64", "linux/arm64/v8", "linux/aarch64"] {
        let d = c.digest(&r, Some(&p(spelling))).await.unwrap();
        assert_eq!(d.digest, pushed.children[1].1, "{spelling}");
    }
    let e = c.digest(&r, Some(&p("linux/s390x"))).await.unwrap_err();
    assert!(e.is_negative(), "{e}");
    assert!(
        e.to_string().contains("linux/amd64"),
        "lists what exists: {e}"
    );

    // By digest, with and without the tag.
    let by_digest = Reference::parse(&format!("{}@{}", r.name(), pushed.digest)).unwrap();
    assert_eq!(c.resolve(&by_digest).await.unwrap().digest, pushed.digest);
    let child = Reference::parse(&format!("{}:1.0@{}", r.name(), pushed.children[0].1)).unwrap();
    let ci = c.inspect(&child).await.unwrap();
    assert_eq!(ci.platforms.len(), 1);
    assert_eq!(ci.platforms[0].platform, p("linux/amd64"));
}

#[tokio::test]
async fn docker_manifest_list_resolves_to_the_list_not_a_child() {
    let reg = Registry::start();
    let c = plain_client(&reg.addr);
    let r = reg.reference("acme/svc:latest");
    let pushed = push_image(
        &c,
        &r,
        &["linux/amd64", "linux/arm64"],
        Flavor::Docker,
        false,
        false,
        "b",
    )
    .await;
    let resolved = c.resolve(&r).await.unwrap();
    assert_eq!(resolved.digest, pushed.digest);
    assert_eq!(
        resolved.media_type,
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let i = c.inspect(&r).await.unwrap();
    assert_eq!(i.platforms.len(), 2);
    assert!(i.attestations.is_empty());
}

#[tokio::test]
async fn single_arch_manifest_platform_comes_from_its_config() {
    let reg = Registry::start();
    let c = plain_client(&reg.addr);
    let r = reg.reference("acme/pi:edge");
    let pushed = push_image(&c, &r, &["linux/arm/v7"], Flavor::Docker, true, false, "c").await;
    let i = c.inspect(&r).await.unwrap();
    assert_eq!(i.digest, pushed.digest);
    assert_eq!(i.platforms.len(), 1);
    assert_eq!(i.platforms[0].platform.to_string(), "linux/arm/v7");
    assert!(c.verify(&r, &[p("linux/arm")]).await.unwrap().complete());
    assert!(!c.verify(&r, &[p("linux/arm64")]).await.unwrap().complete());
}

#[tokio::test]
async fn missing_tags_and_repositories_are_negative_answers() {
    let reg = Registry::start();
    let c = plain_client(&reg.addr);
    let r = reg.reference("acme/etl:1.0");
    push_image(&c, &r, &["linux/amd64"], Flavor::Oci, false, false, "d").await;
    let e = c
        .resolve(&reg.reference("acme/etl:nope"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    let e = c
        .manifest(&reg.reference("acme/etl:nope"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("MANIFEST_UNKNOWN"), "{e}");
    let e = c
        .tags(&reg.reference("nobody/here"), &TagsOptions::default())
        .await
        .unwrap_err();
    assert!(e.is_negative(), "{e}");
}

#[tokio::test]
async fn tags_follow_link_pagination() {
    let reg = Registry::start();
    let c = plain_client(&reg.addr);
    let base = reg.reference("acme/many");
    let pushed = push_image(
        &c,
        &base.with_tag("t0").unwrap(),
        &["linux/amd64"],
        Flavor::Oci,
        true,
        false,
        "e",
    )
    .await;
    let body = c
        .manifest(&base.with_tag("t0").unwrap())
        .await
        .unwrap()
        .body;
    for i in 1..7 {
        let d = c
            .put_manifest(
                &base.with_tag(&format!("t{i}")).unwrap(),
                "application/vnd.oci.image.manifest.v1+json",
                body.clone(),
            )
            .await
            .unwrap();
        assert_eq!(d, pushed.digest);
    }
    let mut tags = c
        .tags(&base, &TagsOptions { page_size: Some(2) })
        .await
        .unwrap();
    tags.sort();
    assert_eq!(tags, (0..7).map(|i| format!("t{i}")).collect::<Vec<_>>());
    assert_eq!(
        c.tags(&base, &TagsOptions::default()).await.unwrap().len(),
        7
    );
}

#[tokio::test]
async fn basic_auth_registry_with_and_without_credentials() {
    let reg = Registry::start_with(RegistryOptions {
        basic_auth: Some(("ferry".into(), "s3cret".into())),
        ..Default::default()
    });
    let with = |user: &str, pass: &str| {
        let mut m = HashMap::new();
        m.insert(
            reg.addr.clone(),
            Credential::Basic {
                username: user.into(),
                password: pass.into(),
            },
        );
        Client::new(ClientConfig {
            plain_http: vec![reg.addr.clone()],
            credentials: Arc::new(StaticCredentials(m)),
            ..Default::default()
        })
        .unwrap()
    };
    let good = with("ferry", "s3cret");
    let r = reg.reference("private/etl:1");
    let pushed = push_image(
        &good,
        &r,
        &["linux/amd64", "linux/arm64"],
        Flavor::Oci,
        false,
        false,
        "f",
    )
    .await;
    assert_eq!(good.resolve(&r).await.unwrap().digest, pushed.digest);

    let anon = plain_client(&reg.addr);
    let e = anon.resolve(&r).await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    assert!(!e.is_negative());

    let bad = with("ferry", "wrong");
    let e = bad.resolve(&r).await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    assert!(!e.to_string().contains("wrong"), "secret leaked: {e}");
}

#[tokio::test]
async fn wait_sees_an_image_pushed_later_and_times_out_otherwise() {
    let reg = Registry::start();
    let c = plain_client(&reg.addr);
    let r = reg.reference("acme/late:abc123");
    let waiter = {
        let c = c.clone();
        let r = r.clone();
        tokio::spawn(async move {
            c.wait(
                &r,
                &[p("linux/amd64"), p("linux/arm64")],
                Duration::from_secs(20),
                Duration::from_millis(100),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    // First only amd64: still waiting for arm64.
    push_image(&c, &r, &["linux/amd64"], Flavor::Oci, false, false, "g1").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let pushed = push_image(
        &c,
        &r,
        &["linux/amd64", "linux/arm64"],
        Flavor::Oci,
        false,
        false,
        "g2",
    )
    .await;
    match waiter.await.unwrap().unwrap() {
        WaitOutcome::Ready { digest, .. } => assert_eq!(digest, pushed.digest),
        other => panic!("{other:?}"),
    }
    let out = c
        .wait(
            &reg.reference("acme/never:x"),
            &[],
            Duration::from_millis(500),
            Duration::from_millis(100),
        )
        .await
        .unwrap();
    assert!(matches!(out, WaitOutcome::TimedOut { .. }), "{out:?}");
}

#[tokio::test]
async fn corrupted_manifest_in_storage_is_a_digest_mismatch() {
    let reg = Registry::start();
    let c = plain_client(&reg.addr);
    let r = reg.reference("acme/rot:1");
    let pushed = push_image(
        &c,
        &r,
        &["linux/amd64", "linux/arm64"],
        Flavor::Oci,
        false,
        false,
        "h",
    )
    .await;
    // Rewrite the stored bytes of the index blob (same length, different content).
    let hex = pushed.digest.hex();
    let blob = reg.data_dir().join(format!(
        "docker/registry/v2/blobs/sha256/{}/{}/data",
        &hex[..2],
        hex
    ));
    let mut bytes = std::fs::read(&blob).unwrap();
    let pos = bytes.iter().position(|b| *b == b'a').unwrap();
    bytes[pos] = b'b';
    std::fs::write(&blob, bytes).unwrap();
    let e = c.inspect(&r).await.unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e:?}");
    assert!(!e.is_negative(), "a lying registry is an operational error");
}
