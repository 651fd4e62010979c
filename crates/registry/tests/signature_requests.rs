//! How many requests finding and checking a digest's signatures costs, against a fake
//! registry that counts them: one round of lookups (Referrers API and cosign's `.sig` tag, sent
//! together), then each signature manifest and its payload once — and the tag-schema fallback
//! only when the Referrers API answers 404, which the client remembers for later digests.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use ferry_core::Digest;
use ferry_registry::signature::PublicKey;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::EncodePublicKey as _;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod support;
use support::*;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A cosign 3 bundle signing `digest` with a fixed P-256 key, and that key.
fn signed_bundle(digest: &Digest) -> (Vec<u8>, PublicKey) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let sk = p256::ecdsa::SigningKey::from_slice(&[11; 32]).unwrap();
    let pem = sk
        .verifying_key()
        .to_public_key_pem(p256::pkcs8::LineEnding::LF)
        .unwrap();
    let statement = format!(
        r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"digest":{{"sha256":"{}"}}}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{{}}}}"#,
        digest.hex()
    );
    let ty = "application/vnd.in-toto+json";
    let pae = format!("DSSEv1 {} {ty} {} {statement}", ty.len(), statement.len());
    let sig: p256::ecdsa::DerSignature = sk.sign(pae.as_bytes());
    let bundle = format!(
        r#"{{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsseEnvelope":{{"payload":"{}","payloadType":"{ty}","signatures":[{{"sig":"{}"}}]}}}}"#,
        b64.encode(&statement),
        b64.encode(sig.as_bytes())
    );
    (
        bundle.into_bytes(),
        PublicKey::from_pem("k.pub", &pem).unwrap(),
    )
}

async fn serve(server: &MockServer, p: String, ty: &str, body: Vec<u8>, status: u16, times: u64) {
    Mock::given(method("GET"))
        .and(path(p))
        .respond_with(
            ResponseTemplate::new(status)
                .insert_header("content-type", ty)
                .set_body_bytes(body),
        )
        .expect(times)
        .mount(server)
        .await;
}

/// The referrer manifest holding `bundle`, and the referrers index listing it.
fn referrer(digest: &Digest, bundle: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let layer = Digest::sha256_of(bundle);
    let empty = Digest::sha256_of(b"{}");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{empty}","size":2}},"layers":[{{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","digest":"{layer}","size":{}}}],"subject":{{"mediaType":"{OCI_INDEX}","digest":"{digest}","size":10}}}}"#,
        bundle.len()
    );
    let md = Digest::sha256_of(manifest.as_bytes());
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{md}","size":{},"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"}}]}}"#,
        manifest.len()
    );
    (manifest.into_bytes(), index.into_bytes())
}

#[tokio::test]
async fn referrers_api_one_lookup_round_then_one_manifest_and_one_payload() {
    let server = MockServer::start().await;
    let digest = Digest::sha256_of(b"the image index");
    let (bundle, key) = signed_bundle(&digest);
    let (manifest, index) = referrer(&digest, &bundle);
    let md = Digest::sha256_of(&manifest);
    serve(
        &server,
        format!("/v2/acme/app/referrers/{digest}"),
        OCI_INDEX,
        index,
        200,
        1,
    )
    .await;
    let sig_tag = format!("/v2/acme/app/manifests/sha256-{}.sig", digest.hex());
    serve(&server, sig_tag, "application/json", b"{}".to_vec(), 404, 1).await;
    serve(
        &server,
        format!("/v2/acme/app/manifests/{md}"),
        OCI_MANIFEST,
        manifest,
        200,
        1,
    )
    .await;
    let layer = Digest::sha256_of(&bundle);
    serve(
        &server,
        format!("/v2/acme/app/blobs/{layer}"),
        "application/octet-stream",
        bundle,
        200,
        1,
    )
    .await;
    // The tag schema is not asked when the API answered.
    let schema = format!("/v2/acme/app/manifests/sha256-{}", digest.hex());
    serve(&server, schema, OCI_INDEX, Vec::new(), 404, 0).await;

    let c = client_for(&server);
    let r = reference(&server, &format!("acme/app@{digest}"));
    let report = c.verify_signatures(&r, &vec![key].into()).await.unwrap();
    assert!(report.valid(), "{report:?}");
    assert_eq!(report.candidates.len(), 1);
    // `expect` counts are checked when the server drops: 4 requests, each once.
    drop(server);
}

/// Serve `digest`'s bundle the way a registry without the Referrers API does (the tag
/// schema), expecting the API probe `probes` times and every other request once; its key.
async fn serve_without_api(server: &MockServer, digest: &Digest, probes: u64) -> PublicKey {
    let (bundle, key) = signed_bundle(digest);
    let (manifest, index) = referrer(digest, &bundle);
    let md = Digest::sha256_of(&manifest);
    serve(
        server,
        format!("/v2/acme/app/referrers/{digest}"),
        "text/plain",
        b"404 page not found".to_vec(),
        404,
        probes,
    )
    .await;
    let schema = format!("/v2/acme/app/manifests/sha256-{}", digest.hex());
    serve(server, schema, OCI_INDEX, index, 200, 1).await;
    let sig_tag = format!("/v2/acme/app/manifests/sha256-{}.sig", digest.hex());
    serve(server, sig_tag, "application/json", b"{}".to_vec(), 404, 1).await;
    serve(
        server,
        format!("/v2/acme/app/manifests/{md}"),
        OCI_MANIFEST,
        manifest,
        200,
        1,
    )
    .await;
    let layer = Digest::sha256_of(&bundle);
    serve(
        server,
        format!("/v2/acme/app/blobs/{layer}"),
        "application/octet-stream",
        bundle,
        200,
        1,
    )
    .await;
    key
}

#[tokio::test]
async fn without_a_referrers_api_the_probe_is_sent_for_the_first_digest_only() {
    let server = MockServer::start().await;
    let first = Digest::sha256_of(b"another index");
    let second = Digest::sha256_of(b"a later index");
    let key = serve_without_api(&server, &first, 1).await;
    serve_without_api(&server, &second, 0).await;

    let c = client_for(&server);
    let r = reference(&server, &format!("acme/app@{first}"));
    let report = c
        .verify_signatures(&r, &vec![key.clone()].into())
        .await
        .unwrap();
    assert!(report.valid(), "{report:?}");
    assert_eq!(report.referrers, ferry_registry::ReferrersSource::TagSchema);
    assert_eq!(
        report.requests, 5,
        "probe, tag schema, .sig, manifest, blob"
    );
    // The same client, a later digest: the registry is known to have no Referrers API.
    let r = reference(&server, &format!("acme/app@{second}"));
    let report = c.verify_signatures(&r, &vec![key].into()).await.unwrap();
    assert!(report.valid(), "{report:?}");
    assert_eq!(report.referrers, ferry_registry::ReferrersSource::TagSchema);
    assert_eq!(
        report.requests, 4,
        "tag schema and .sig together, manifest, blob"
    );
    // `expect` counts are checked when the server drops.
    drop(server);
}

#[tokio::test]
async fn concurrent_checks_on_a_registry_without_the_api_send_one_probe_between_them() {
    let server = MockServer::start().await;
    let digests: Vec<Digest> = (0..6)
        .map(|i| Digest::sha256_of(format!("index {i}").as_bytes()))
        .collect();
    // One probe in all (whichever check runs first; the others wait for its answer): the
    // probe mock below matches every digest's path and expects one request.
    let mut key = None;
    for d in &digests {
        let (bundle, k) = signed_bundle(d);
        key = Some(k);
        let (manifest, index) = referrer(d, &bundle);
        let md = Digest::sha256_of(&manifest);
        let schema = format!("/v2/acme/app/manifests/sha256-{}", d.hex());
        serve(&server, schema, OCI_INDEX, index, 200, 1).await;
        let sig_tag = format!("/v2/acme/app/manifests/sha256-{}.sig", d.hex());
        serve(&server, sig_tag, "application/json", b"{}".to_vec(), 404, 1).await;
        let m = format!("/v2/acme/app/manifests/{md}");
        serve(&server, m, OCI_MANIFEST, manifest, 200, 1).await;
        let layer = Digest::sha256_of(&bundle);
        let b = format!("/v2/acme/app/blobs/{layer}");
        serve(&server, b, "application/octet-stream", bundle, 200, 1).await;
    }
    Mock::given(method("GET"))
        .and(wiremock::matchers::path_regex("^/v2/acme/app/referrers/"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_delay(std::time::Duration::from_millis(200))
                .set_body_string("404 page not found"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = client_for(&server);
    // `signed_bundle` signs with one fixed key: it verifies every digest's bundle.
    let keys: ferry_registry::signature::Trust = vec![key.unwrap()].into();
    let checks = digests.iter().map(|d| {
        let r = reference(&server, &format!("acme/app@{d}"));
        let (c, keys) = (c.clone(), &keys);
        async move { c.verify_signatures(&r, keys).await.unwrap() }
    });
    let reports = futures::future::join_all(checks).await;
    assert!(reports.iter().all(|r| r.valid()), "{reports:?}");
    let requests: Vec<usize> = reports.iter().map(|r| r.requests).collect();
    assert_eq!(requests.iter().sum::<usize>(), 6 * 4 + 1, "{requests:?}");
    // `expect` counts (one probe in all, every other request once) are checked on drop.
    drop(server);
}
