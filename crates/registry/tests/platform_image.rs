//! What a tag's image says about itself, read through the registry model (what
//! `ferry-detect --base published` needs): the annotations of an index or manifest, the first
//! platform manifest of an index with attestations left out, and the labels of its config.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use ferry_core::Digest;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod support;
use support::*;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const REVISION: &str = "org.opencontainers.image.revision";

async fn serve(server: &MockServer, at: &str, media_type: &str, body: &str) {
    Mock::given(method("GET"))
        .and(path(at))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", media_type)
                .set_body_string(body),
        )
        .mount(server)
        .await;
}

/// An image manifest (with `annotations`) whose config carries `labels`; returns its digest.
async fn image(server: &MockServer, annotations: &str, labels: &str) -> Digest {
    let config =
        format!(r#"{{"architecture":"arm64","os":"linux","config":{{"Labels":{labels}}}}}"#);
    let config_digest = Digest::sha256_of(config.as_bytes());
    serve(
        server,
        &format!("/v2/acme/app/blobs/{config_digest}"),
        "application/json",
        &config,
    )
    .await;
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[],"annotations":{annotations}}}"#,
        config.len()
    );
    let digest = Digest::sha256_of(manifest.as_bytes());
    serve(
        server,
        &format!("/v2/acme/app/manifests/{digest}"),
        OCI_MANIFEST,
        &manifest,
    )
    .await;
    digest
}

#[tokio::test]
async fn the_first_platform_image_skips_attestations_and_reads_annotations_and_labels() {
    let server = MockServer::start().await;
    let attestation = image(&server, "{}", "{}").await;
    let arm = image(
        &server,
        &format!(r#"{{"{REVISION}":"from-manifest"}}"#),
        &format!(r#"{{"{REVISION}":"from-label"}}"#),
    )
    .await;
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{INDEX_TYPE}","manifests":[
            {{"mediaType":"{OCI_MANIFEST}","digest":"{attestation}","size":1,"platform":{{"os":"unknown","architecture":"unknown"}},"annotations":{{"vnd.docker.reference.type":"attestation-manifest"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{arm}","size":1,"platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#
    );
    serve(&server, "/v2/acme/app/manifests/1", INDEX_TYPE, &index).await;
    let c = client_for(&server);
    let r = reference(&server, "acme/app:1");

    let top = c.manifest(&r).await.unwrap();
    assert_eq!(top.annotation(REVISION), None);
    assert_eq!(top.config_digest().unwrap(), None);
    let platforms: Vec<Digest> = top
        .platforms()
        .unwrap()
        .into_iter()
        .map(|p| p.digest)
        .collect();
    assert_eq!(platforms, vec![arm.clone()]);

    let first = c.first_platform_image(&r, top).await.unwrap().unwrap();
    assert_eq!(first.digest, arm);
    assert_eq!(first.annotation(REVISION), Some("from-manifest"));
    let config = first.config_digest().unwrap().unwrap();
    let cfg = c.image_config(&r, &config).await.unwrap();
    assert_eq!(cfg.label(REVISION), Some("from-label"));
    assert_eq!(cfg.label("other"), None);

    // An image manifest stands for itself.
    let single = reference(&server, &format!("acme/app@{arm}"));
    let m = c.manifest(&single).await.unwrap();
    let same = c.first_platform_image(&single, m).await.unwrap().unwrap();
    assert_eq!(same.digest, arm);
}

#[tokio::test]
async fn an_index_of_attestations_only_has_no_platform_image() {
    let server = MockServer::start().await;
    let attestation = image(&server, "{}", "null").await;
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{INDEX_TYPE}","annotations":{{"{REVISION}":"abc"}},"manifests":[
            {{"mediaType":"{OCI_MANIFEST}","digest":"{attestation}","size":1,"platform":{{"os":"unknown","architecture":"unknown"}}}}]}}"#
    );
    serve(&server, "/v2/acme/app/manifests/2", INDEX_TYPE, &index).await;
    let c = client_for(&server);
    let r = reference(&server, "acme/app:2");
    let top = c.manifest(&r).await.unwrap();
    assert_eq!(top.annotation(REVISION), Some("abc"));
    assert!(c.first_platform_image(&r, top).await.unwrap().is_none());
    // Labels: null is no labels.
    let m = c
        .manifest(&reference(&server, &format!("acme/app@{attestation}")))
        .await
        .unwrap();
    let cfg = c
        .image_config(&r, &m.config_digest().unwrap().unwrap())
        .await
        .unwrap();
    assert_eq!(cfg.label(REVISION), None);
}
