//! Helpers shared by the wiremock test files: references and clients aimed at a fake registry.
#![allow(dead_code)]
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use ferry_core::{Digest, Reference};
use ferry_registry::{Client, ClientConfig, RetryPolicy};
use std::time::Duration;
use wiremock::MockServer;

pub const INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":10,"platform":{"architecture":"amd64","os":"linux"}}]}"#;
pub const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";

pub fn host(server: &MockServer) -> String {
    server.address().to_string()
}

pub fn reference(server: &MockServer, rest: &str) -> Reference {
    Reference::parse(&format!("{}/{rest}", host(server))).unwrap()
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_total_wait: Duration::from_secs(10),
    }
}

pub fn client_for(server: &MockServer) -> Client {
    Client::new(ClientConfig {
        plain_http: vec![host(server)],
        retry: fast_retry(),
        ..Default::default()
    })
    .unwrap()
}

pub fn client_with(server: &MockServer, f: impl FnOnce(&mut ClientConfig)) -> Client {
    let mut c = ClientConfig {
        plain_http: vec![host(server)],
        retry: fast_retry(),
        ..Default::default()
    };
    f(&mut c);
    Client::new(c).unwrap()
}

/// wiremock splits a comma-separated header into its values.
pub fn all_manifest_types() -> Vec<&'static str> {
    vec![
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
}

pub fn index_digest() -> Digest {
    Digest::sha256_of(INDEX.as_bytes())
}
