//! Artifact Registry built in (issue 21): access tokens from a fake GKE metadata server (which
//! insists on `Metadata-Flavor: Google`), reached through `GCE_METADATA_HOST`, or from a fake
//! OAuth token endpoint reached through a credentials file's `token_uri` (a service-account key
//! in `GOOGLE_APPLICATION_CREDENTIALS`, whose JWT assertion the fake verifies with the public
//! key, or gcloud's user credentials), used as `oauth2accesstoken` at a fake Artifact
//! Registry's token server (`--mirror` for its host).
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use ferry_core::Reference;
use ferry_registry::{Client, ClientConfig, CloudCredentials};
use ferry_tests::bin;
use ferry_tests::cloud::{EMAIL, Key, Rejected, check_assertion, new_key, write_key_file};
use ferry_tests::tls::TlsFront;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const HOST: &str = "europe-west1-docker.pkg.dev";
const DIGEST: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

#[derive(Default)]
struct State {
    /// Access tokens the metadata server or the token endpoint gave, newest last.
    issued: Vec<String>,
    /// Requests the metadata server answered.
    metadata_asked: usize,
    /// The token endpoint's own URL (the assertion's `aud`).
    token_uri: String,
    /// Keys whose assertions the token endpoint accepts: (`kid`, public key DER).
    keys: Vec<(String, Vec<u8>)>,
    /// gcloud user credentials the token endpoint accepts: (client id, secret, refresh token).
    user: Option<(String, String, String)>,
    /// Token requests the endpoint refused, and why.
    rejected: Vec<Rejected>,
    /// The account is disabled: every grant is refused.
    disabled: bool,
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
        s.metadata_asked += 1;
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

/// The same login serves every binary (the shared registry options): `ferry-bump set --pin`
/// resolves an Artifact Registry tag with the metadata server's token and pins it.
#[tokio::test]
async fn ferry_bump_pins_an_artifact_registry_tag_through_the_metadata_server() {
    let (metadata, registry, state) = fakes(3599).await;
    let repo = tempfile::tempdir().unwrap();
    let dockerfile = repo.path().join("Dockerfile");
    std::fs::write(&dockerfile, format!("FROM {HOST}/acme/app:0\nRUN true\n")).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let o = Command::new(bin("ferry-bump"))
        .current_dir(repo.path())
        .args(["--mirror", &format!("{HOST}={}", registry.uri())])
        .args(["set", &format!("{HOST}/acme/app:1"), "--pin"])
        .env("DOCKER_CONFIG", empty.path())
        .env("GCE_METADATA_HOST", metadata.address().to_string())
        .env("FERRY_LOG", "trace")
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap();
    let all = format!(
        "exit {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert_eq!(
        std::fs::read_to_string(&dockerfile).unwrap(),
        format!("FROM {HOST}/acme/app:1@{DIGEST}\nRUN true\n"),
        "{all}"
    );
    let s = state.lock().unwrap();
    assert_eq!(
        (s.issued.len(), s.registry_tokens, s.unflavoured),
        (1, 1, 0)
    );
    assert!(
        !all.contains("ya29.access-1"),
        "the access token was printed:\n{all}"
    );
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

// ---- Credentials files: service-account keys and gcloud user credentials ----

fn check_grant(s: &State, req: &Request) -> Result<(), Rejected> {
    let form_type = req
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    if form_type != Some("application/x-www-form-urlencoded") {
        return Err(Rejected::Form("content-type"));
    }
    let form: std::collections::HashMap<String, String> = url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect();
    let field = |k: &str| form.get(k).map(String::as_str);
    match field("grant_type") {
        Some(ferry_tests::cloud::JWT_BEARER) => check_assertion(
            &s.keys,
            &s.token_uri,
            field("assertion").unwrap_or_default(),
        )?,
        Some("refresh_token") => {
            let Some((id, secret, refresh)) = &s.user else {
                return Err(Rejected::Form("no user credentials here"));
            };
            if field("client_id") != Some(id)
                || field("client_secret") != Some(secret)
                || field("refresh_token") != Some(refresh)
            {
                return Err(Rejected::Form("client_id, client_secret, refresh_token"));
            }
        }
        _ => return Err(Rejected::Form("grant_type")),
    }
    if s.disabled {
        return Err(Rejected::Disabled);
    }
    Ok(())
}

/// Google's OAuth token endpoint.
struct OAuth(Arc<Mutex<State>>);

impl Respond for OAuth {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        if let Err(why) = check_grant(&s, req) {
            let described = format!("{why:?}");
            s.rejected.push(why);
            return ResponseTemplate::new(400)
                .set_body_json(json!({"error": "invalid_grant", "error_description": described}));
        }
        let token = format!("ya29.key-{}", s.issued.len() + 1);
        s.issued.push(token.clone());
        ResponseTemplate::new(200).set_body_json(
            json!({"access_token": token, "expires_in": s.lifetime_secs, "token_type": "Bearer"}),
        )
    }
}

/// The fake registry and metadata server, plus a token endpoint accepting `key`.
async fn key_fakes(
    lifetime_secs: u64,
    key: &Key,
) -> (MockServer, MockServer, MockServer, Arc<Mutex<State>>) {
    let (metadata, registry, state) = fakes(lifetime_secs).await;
    let oauth = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/token"))
        .respond_with(OAuth(state.clone()))
        .mount(&oauth)
        .await;
    {
        let mut s = state.lock().unwrap();
        s.token_uri = format!("{}/token", oauth.uri());
        s.keys.push((key.id.clone(), key.public.clone()));
    }
    (oauth, metadata, registry, state)
}

/// `ferry-registry [FLAGS] auth --json` with `env` set, the metadata server available too,
/// gcloud's directory empty unless `env` says otherwise.
fn auth_with(
    metadata: &MockServer,
    registry: &MockServer,
    env: &[(&str, &str)],
    flags: &[&str],
) -> Output {
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin("ferry-registry"));
    cmd.args(["--mirror", &format!("{HOST}={}", registry.uri())])
        .args(flags)
        .args(["auth", "--json", &format!("{HOST}/acme/app:1")])
        .env("DOCKER_CONFIG", empty.path())
        .env("CLOUDSDK_CONFIG", empty.path())
        .env("GCE_METADATA_HOST", metadata.address().to_string())
        .env("FERRY_LOG", "trace")
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env_remove("GITHUB_ACTIONS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn shown(o: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A piece of the private key's base64 body (what a leak of the key would contain).
fn key_piece(key: &Key) -> &str {
    &key.pem[100..160]
}

#[tokio::test]
async fn a_service_account_key_file_signs_a_jwt_that_the_token_endpoint_verifies() {
    let key = new_key("k1");
    let (_oauth, metadata, registry, state) = key_fakes(3599, &key).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sa.json");
    write_key_file(&file, &key, &state.lock().unwrap().token_uri.clone());
    let o = auth_with(
        &metadata,
        &registry,
        &[("GOOGLE_APPLICATION_CREDENTIALS", file.to_str().unwrap())],
        &[],
    );
    let all = shown(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["source"]["kind"], "cloud", "{v}");
    assert_eq!(v["source"]["provider"], "gcp");
    let how = v["source"]["how"].as_str().unwrap();
    assert!(
        how.contains(EMAIL) && how.contains(file.to_str().unwrap()),
        "{how}"
    );
    assert_eq!(v["token_obtained"], true);
    let expires = humantime::parse_rfc3339(v["credential_expires_at"].as_str().unwrap()).unwrap();
    let left = expires
        .duration_since(std::time::SystemTime::now())
        .unwrap()
        .as_secs();
    assert!((3500..=3599).contains(&left), "expires in {left}s");
    let s = state.lock().unwrap();
    assert_eq!(s.rejected, vec![]);
    assert_eq!(s.issued, vec!["ya29.key-1".to_string()]);
    // Application Default Credentials: the key file wins over the metadata server.
    assert_eq!(s.metadata_asked, 0);
    for secret in ["ya29.key-1", key_piece(&key)] {
        assert!(!all.contains(secret), "secret {secret} printed:\n{all}");
    }
    assert!(o.stderr.len() > 200, "trace logging was not on");
}

#[tokio::test]
async fn gclouds_user_credentials_file_is_used_when_no_key_file_is_named() {
    let key = new_key("unused");
    let (_oauth, metadata, registry, state) = key_fakes(3599, &key).await;
    let gcloud = tempfile::tempdir().unwrap();
    let token_uri = state.lock().unwrap().token_uri.clone();
    state.lock().unwrap().user = Some((
        "764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com".into(),
        "d-FL95Q19q7MQmFpd7hHD0Ty".into(),
        "1//refresh-token-of-a-person".into(),
    ));
    let adc = json!({
        "client_id": "764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com",
        "client_secret": "d-FL95Q19q7MQmFpd7hHD0Ty",
        "refresh_token": "1//refresh-token-of-a-person",
        "type": "authorized_user",
        "token_uri": token_uri,
    });
    let file = gcloud.path().join("application_default_credentials.json");
    std::fs::write(&file, adc.to_string()).unwrap();
    let o = auth_with(
        &metadata,
        &registry,
        &[("CLOUDSDK_CONFIG", gcloud.path().to_str().unwrap())],
        &[],
    );
    let all = shown(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["source"]["how"]
            .as_str()
            .unwrap()
            .contains("application_default_credentials.json"),
        "{v}"
    );
    let s = state.lock().unwrap();
    assert_eq!(
        (s.issued.len(), s.metadata_asked),
        (1, 0),
        "{:?}",
        s.rejected
    );
    for secret in [
        "ya29.key-1",
        "d-FL95Q19q7MQmFpd7hHD0Ty",
        "1//refresh-token-of-a-person",
    ] {
        assert!(!all.contains(secret), "secret {secret} printed:\n{all}");
    }
}

#[tokio::test]
async fn key_file_tokens_refresh_before_expiry_and_a_rotated_key_is_read_again() {
    let key = new_key("k1");
    let (_oauth, _metadata, registry, state) = key_fakes(4, &key).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sa.json");
    let token_uri = state.lock().unwrap().token_uri.clone();
    write_key_file(&file, &key, &token_uri);
    let gcp = ferry_registry::gcp::Gcp::with_identity(
        ferry_registry::gcp::GcpIdentity::KeyFile(file.clone()),
        &Default::default(),
    )
    .unwrap();
    let client = Client::new(ClientConfig {
        mirrors: vec![(HOST.into(), registry.uri())],
        cloud: Some(Arc::new(CloudCredentials::new(vec![Arc::new(gcp)]))),
        ..Default::default()
    })
    .unwrap();
    let r: Reference = format!("{HOST}/acme/app:1").parse().unwrap();
    let counts = || {
        let s = state.lock().unwrap();
        (s.issued.len(), s.registry_tokens, s.rejected.len())
    };
    for _ in 0..3 {
        assert_eq!(client.resolve(&r).await.unwrap().digest.to_string(), DIGEST);
    }
    assert_eq!(counts(), (1, 1, 0));
    // Past three quarters of the 4 s: a new assertion, a new access token, a new registry token.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    client.resolve(&r).await.unwrap();
    assert_eq!(counts(), (2, 2, 0));

    // The key is rotated: Google stops accepting the old one, the Secret holds the new one.
    let rotated = new_key("k2");
    state.lock().unwrap().keys = vec![(rotated.id.clone(), rotated.public.clone())];
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let e = client.resolve(&r).await.unwrap_err().to_string();
    assert!(
        e.contains("gcp cloud credentials")
            && e.contains(file.to_str().unwrap())
            && e.contains("400")
            && e.contains("invalid_grant"),
        "{e}"
    );
    assert_eq!(
        state.lock().unwrap().rejected,
        vec![Rejected::Header("unknown kid")]
    );
    write_key_file(&file, &rotated, &token_uri);
    client.resolve(&r).await.unwrap();
    assert_eq!(counts(), (3, 3, 1));

    // A disabled account: the refusal is an error naming the file; nothing is sent stale.
    state.lock().unwrap().disabled = true;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let e = client.resolve(&r).await.unwrap_err().to_string();
    assert!(
        e.contains(file.to_str().unwrap()) && e.contains("Disabled"),
        "{e}"
    );
    assert_eq!(counts(), (3, 3, 2));
}

#[tokio::test]
async fn bad_credentials_files_are_errors_naming_the_file() {
    let key = new_key("k1");
    let (_oauth, metadata, registry, state) = key_fakes(3599, &key).await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    write_key_file(&good, &key, &state.lock().unwrap().token_uri.clone());
    let good: Value = serde_json::from_str(&std::fs::read_to_string(&good).unwrap()).unwrap();
    let mut broken_key = good.clone();
    broken_key["private_key"] = key
        .pem
        .replace("BEGIN PRIVATE KEY", "BEGIN CERTIFICATE")
        .into();
    let mut no_email = good.clone();
    no_email.as_object_mut().unwrap().remove("client_email");
    let cases: Vec<(&str, String, &str)> = vec![
        ("missing.json", String::new(), "No such file"),
        (
            "truncated.json",
            good.to_string()[..300].to_string(),
            "not a JSON credentials file",
        ),
        (
            "external.json",
            json!({"type": "external_account"}).to_string(),
            "\"external_account\" is not supported",
        ),
        (
            "broken-key.json",
            broken_key.to_string(),
            "\"private_key\" is not a PEM private key",
        ),
        (
            "no-email.json",
            no_email.to_string(),
            "needs a string \"client_email\"",
        ),
    ];
    for (name, content, want) in cases {
        let file = dir.path().join(name);
        if !content.is_empty() {
            std::fs::write(&file, &content).unwrap();
        }
        let o = auth_with(
            &metadata,
            &registry,
            &[("GOOGLE_APPLICATION_CREDENTIALS", file.to_str().unwrap())],
            &[],
        );
        let all = shown(&o);
        assert_eq!(o.status.code(), Some(3), "{name}: {all}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!("credentials file {}", file.display())) && err.contains(want),
            "{name}: {all}"
        );
        assert!(
            !all.contains(key_piece(&key)),
            "{name}: key printed:\n{all}"
        );
    }
    let s = state.lock().unwrap();
    assert_eq!(
        (s.issued.len(), s.metadata_asked),
        (0, 0),
        "no fallback to the metadata server"
    );
}

/// Behind a TLS-intercepting proxy or with a private CA, `--ca-file` is what vouches for the
/// key file's HTTPS token endpoint, as for the registry: trusted with it, refused without it
/// with an error naming the endpoint and the unknown issuer.
#[tokio::test]
async fn a_key_files_https_token_endpoint_is_trusted_through_the_ca_file_only() {
    let key = new_key("k1");
    let (oauth, metadata, registry, state) = key_fakes(3599, &key).await;
    let front = TlsFront::start(*oauth.address());
    let token_uri = format!("{}/token", front.uri());
    state.lock().unwrap().token_uri = token_uri.clone();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sa.json");
    write_key_file(&file, &key, &token_uri);
    let env = [("GOOGLE_APPLICATION_CREDENTIALS", file.to_str().unwrap())];
    let ca = front.ca_file();

    let o = auth_with(
        &metadata,
        &registry,
        &env,
        &["--ca-file", ca.to_str().unwrap()],
    );
    let all = shown(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["source"]["provider"], "gcp", "{v}");
    assert_eq!(v["token_obtained"], true, "{v}");
    assert_eq!(state.lock().unwrap().issued, vec!["ya29.key-1".to_string()]);

    let o = auth_with(&metadata, &registry, &env, &[]);
    let all = shown(&o);
    assert_eq!(o.status.code(), Some(3), "{all}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("gcp cloud credentials") && err.contains(&token_uri),
        "{err}"
    );
    assert!(
        err.contains("UnknownIssuer") && err.contains("--ca-file"),
        "{err}"
    );
    let s = state.lock().unwrap();
    assert_eq!(s.issued.len(), 1, "no token was given without the CA");
    assert_eq!(s.metadata_asked, 0);
}
