//! Artifact Registry built in (issue 21): access tokens from a fake GKE metadata server (which
//! insists on `Metadata-Flavor: Google`), reached through `GCE_METADATA_HOST`, used as
//! `oauth2accesstoken` at a fake Artifact Registry's token server (`--mirror` for its host).
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use ferry_core::Reference;
use ferry_registry::{Client, ClientConfig, CloudCredentials};
use ferry_tests::bin;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const HOST: &str = "europe-west1-docker.pkg.dev";
const DIGEST: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

#[derive(Default)]
struct State {
    /// Access tokens the metadata server gave, newest last.
    issued: Vec<String>,
    /// Requests without `Metadata-Flavor: Google`.
    unflavoured: usize,
    /// Registry tokens handed out.
    registry_tokens: usize,
    lifetime_secs: u64,
}

struct Metadata(Arc<Mutex<State>>);

impl Respond for Metadata {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        if req
            .headers
            .get("metadata-flavor")
            .and_then(|v| v.to_str().ok())
            != Some("Google")
        {
            s.unflavoured += 1;
            return ResponseTemplate::new(403)
                .set_body_string("Missing Metadata-Flavor:Google header.");
        }
        let token = format!("ya29.access-{}", s.issued.len() + 1);
        s.issued.push(token.clone());
        ResponseTemplate::new(200).set_body_json(
            json!({"access_token": token, "expires_in": s.lifetime_secs, "token_type": "Bearer"}),
        )
    }
}

/// The registry's token server: a registry token for `oauth2accesstoken:<newest token>`.
struct TokenServer(Arc<Mutex<State>>);

impl Respond for TokenServer {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let sent = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let Some(newest) = s.issued.last().cloned() else {
            return ResponseTemplate::new(401);
        };
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("oauth2accesstoken:{newest}"))
        );
        if sent != Some(want.as_str()) {
            return ResponseTemplate::new(401)
                .set_body_string("{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}");
        }
        s.registry_tokens += 1;
        ResponseTemplate::new(200)
            .set_body_json(json!({"token": format!("reg-{newest}"), "expires_in": 3600}))
    }
}

/// The manifest for a registry token made from the newest access token only.
struct Manifests(Arc<Mutex<State>>, String);

impl Respond for Manifests {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let s = self.0.lock().unwrap();
        let sent = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let ok = s
            .issued
            .last()
            .is_some_and(|newest| sent == Some(format!("Bearer reg-{newest}").as_str()));
        if ok {
            ResponseTemplate::new(200).insert_header("docker-content-digest", DIGEST)
        } else {
            ResponseTemplate::new(401).insert_header(
                "www-authenticate",
                format!(r#"Bearer realm="{}/v2/token",service="{HOST}""#, self.1).as_str(),
            )
        }
    }
}

async fn fakes(lifetime_secs: u64) -> (MockServer, MockServer, Arc<Mutex<State>>) {
    let state = Arc::new(Mutex::new(State {
        lifetime_secs,
        ..Default::default()
    }));
    let metadata = MockServer::start().await;
    Mock::given(wiremock::matchers::path(
        "/computeMetadata/v1/instance/service-accounts/default/token",
    ))
    .respond_with(Metadata(state.clone()))
    .mount(&metadata)
    .await;
    let registry = MockServer::start().await;
    Mock::given(wiremock::matchers::path("/v2/token"))
        .respond_with(TokenServer(state.clone()))
        .mount(&registry)
        .await;
    Mock::given(wiremock::matchers::path("/v2/acme/app/manifests/1"))
        .respond_with(Manifests(state.clone(), registry.uri()))
        .mount(&registry)
        .await;
    (metadata, registry, state)
}

fn auth(metadata: &MockServer, registry: &MockServer) -> Output {
    let empty = tempfile::tempdir().unwrap();
    Command::new(bin("ferry-registry"))
        .args(["--mirror", &format!("{HOST}={}", registry.uri())])
        .args(["auth", "--json", &format!("{HOST}/acme/app:1")])
        .env("DOCKER_CONFIG", empty.path())
        .env("GCE_METADATA_HOST", metadata.address().to_string())
        .env("FERRY_LOG", "trace")
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap()
}

#[tokio::test]
async fn ferry_registry_auth_uses_the_metadata_servers_token_and_names_gcp() {
    let (metadata, registry, state) = fakes(3599).await;
    let o = auth(&metadata, &registry);
    let all = format!(
        "exit {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0), "{all}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["source"]["kind"], "cloud", "{v}");
    assert_eq!(v["source"]["provider"], "gcp");
    assert_eq!(v["scheme"], "bearer");
    assert_eq!(v["token_obtained"], true);
    assert!(v["credential_expires_at"].is_string(), "{v}");
    let s = state.lock().unwrap();
    assert_eq!((s.issued.len(), s.unflavoured), (1, 0));
    let b64 = base64::engine::general_purpose::STANDARD.encode("oauth2accesstoken:ya29.access-1");
    for secret in ["ya29.access-1", b64.as_str()] {
        assert!(!all.contains(secret), "secret {secret} printed:\n{all}");
    }
    assert!(o.stderr.len() > 200, "trace logging was not on");
}

#[tokio::test]
async fn a_refreshed_access_token_gets_a_new_registry_token_never_the_old_one() {
    let (metadata, registry, state) = fakes(4).await;
    let gcp = ferry_registry::gcp::Gcp::new(metadata.address().to_string()).unwrap();
    let client = Client::new(ClientConfig {
        mirrors: vec![(HOST.into(), registry.uri())],
        cloud: Some(Arc::new(CloudCredentials::new(vec![Arc::new(gcp)]))),
        ..Default::default()
    })
    .unwrap();
    let r: Reference = format!("{HOST}/acme/app:1").parse().unwrap();
    let counts = || {
        let s = state.lock().unwrap();
        (s.issued.len(), s.registry_tokens)
    };
    for _ in 0..3 {
        assert_eq!(client.resolve(&r).await.unwrap().digest.to_string(), DIGEST);
    }
    assert_eq!(counts(), (1, 1));
    // Past three quarters of the access token's 4 s: a new access token, and with it a new
    // registry token (the old one, valid for an hour, belongs to the old credential).
    tokio::time::sleep(Duration::from_millis(3200)).await;
    client.resolve(&r).await.unwrap();
    assert_eq!(counts(), (2, 2));
    client.resolve(&r).await.unwrap();
    assert_eq!(counts(), (2, 2));
}

#[tokio::test]
async fn a_metadata_server_that_refuses_is_an_error_naming_gcp() {
    let (_metadata, registry, _state) = fakes(3599).await;
    let refusing = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(403).set_body_string("Forbidden: no service account"))
        .mount(&refusing)
        .await;
    let gcp = ferry_registry::gcp::Gcp::new(refusing.address().to_string()).unwrap();
    let client = Client::new(ClientConfig {
        mirrors: vec![(HOST.into(), registry.uri())],
        cloud: Some(Arc::new(CloudCredentials::new(vec![Arc::new(gcp)]))),
        ..Default::default()
    })
    .unwrap();
    let r: Reference = format!("{HOST}/acme/app:1").parse().unwrap();
    let e = client.resolve(&r).await.unwrap_err().to_string();
    assert!(
        e.contains("gcp cloud credentials")
            && e.contains("403")
            && e.contains("no service account"),
        "{e}"
    );
}

#[tokio::test]
async fn without_a_metadata_server_public_images_stay_anonymous() {
    let public = MockServer::start().await;
    Mock::given(wiremock::matchers::path("/v2/acme/app/manifests/1"))
        .respond_with(ResponseTemplate::new(200).insert_header("docker-content-digest", DIGEST))
        .mount(&public)
        .await;
    // Nothing listens there: not on GCP.
    let nowhere = format!("127.0.0.1:{}", ferry_tests::free_port());
    let gcp = ferry_registry::gcp::Gcp::new(nowhere).unwrap();
    let client = Client::new(ClientConfig {
        mirrors: vec![(HOST.into(), public.uri())],
        cloud: Some(Arc::new(CloudCredentials::new(vec![Arc::new(gcp)]))),
        ..Default::default()
    })
    .unwrap();
    let r: Reference = format!("{HOST}/acme/app:1").parse().unwrap();
    assert_eq!(client.resolve(&r).await.unwrap().digest.to_string(), DIGEST);
    let check = client.check_auth(&r).await.unwrap();
    assert!(check.source.is_none() && check.accepted);
}
