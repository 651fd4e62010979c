//! Amazon ECR built in (issue 21), against a local fake of ECR's API that verifies each
//! request's SigV4 signature with the SDK's own signer, and a fake ECR registry that accepts
//! only the newest unexpired token. The fakes are reached the way a user redirects them:
//! `AWS_ENDPOINT_URL_ECR` (the SDK's endpoint setting) and `--mirror` for the registry host.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ferry_core::Reference;
use ferry_registry::{Client, ClientConfig, CloudCredentials, Error};
use ferry_tests::bin;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const HOST: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const KEY_ID: &str = "AKIDFERRYTEST";
const SECRET_KEY: &str = "ferry-test-secret-access-key";
const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// What the fakes share: tokens issued (password, expiry) and signature checks.
#[derive(Default)]
struct Ecr {
    issued: Vec<(String, SystemTime)>,
    bad_signatures: usize,
    lifetime: Duration,
    revoked: bool,
}

/// `X-Amz-Date` (`20261205T201500Z`) as a time.
fn amz_date(s: &str) -> Option<SystemTime> {
    let t = format!(
        "{}-{}-{}T{}:{}:{}Z",
        s.get(0..4)?,
        s.get(4..6)?,
        s.get(6..8)?,
        s.get(9..11)?,
        s.get(11..13)?,
        s.get(13..15)?
    );
    humantime::parse_rfc3339(&t).ok()
}

/// Whether `req` carries a valid SigV4 signature by `KEY_ID`/`SECRET_KEY` for service `ecr`
/// in eu-west-1: the signature is computed again from the request and compared.
fn signature_ok(req: &Request) -> bool {
    let header = |n: &str| req.headers.get(n).and_then(|v| v.to_str().ok());
    let Some(auth) = header("authorization") else {
        return false;
    };
    let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return false;
    };
    let field = |name: &str| {
        rest.split(", ")
            .find_map(|p| p.strip_prefix(name).map(str::to_string))
    };
    let (Some(cred), Some(signed), Some(sig)) = (
        field("Credential="),
        field("SignedHeaders="),
        field("Signature="),
    ) else {
        return false;
    };
    let scope: Vec<&str> = cred.split('/').collect();
    if scope.len() != 5 || scope[0] != KEY_ID || scope[2] != "eu-west-1" || scope[3] != "ecr" {
        return false;
    }
    let Some(time) = header("x-amz-date").and_then(amz_date) else {
        return false;
    };
    let names: Vec<&str> = signed.split(';').collect();
    let headers: Vec<(&str, &str)> = names
        .iter()
        .filter_map(|n| header(n).map(|v| (*n, v)))
        .collect();
    let identity =
        aws_credential_types::Credentials::new(KEY_ID, SECRET_KEY, None, None, "test").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("eu-west-1")
        .name("ecr")
        .time(time)
        .settings(aws_sigv4::http_request::SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = aws_sigv4::http_request::SignableRequest::new(
        req.method.as_str(),
        req.url.as_str(),
        headers.into_iter(),
        aws_sigv4::http_request::SignableBody::Bytes(&req.body),
    )
    .unwrap();
    let (_, expected) = aws_sigv4::http_request::sign(signable, &params)
        .unwrap()
        .into_parts();
    expected == sig
}

struct EcrApi(Arc<Mutex<Ecr>>);

impl Respond for EcrApi {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let target = req
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok());
        if target != Some("AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken") {
            return ResponseTemplate::new(400).set_body_json(
                json!({"__type": "UnknownOperationException", "message": "unexpected target"}),
            );
        }
        if !signature_ok(req) {
            s.bad_signatures += 1;
            return ResponseTemplate::new(403)
                .insert_header("content-type", "application/x-amz-json-1.1")
                .set_body_json(json!({"__type": "InvalidSignatureException",
                    "message": "The request signature we calculated does not match the signature you provided."}));
        }
        let password = format!("ecr-token-{}", s.issued.len() + 1);
        let expires = SystemTime::now() + s.lifetime;
        s.issued.push((password.clone(), expires));
        s.revoked = false;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}"));
        let at = expires.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        ResponseTemplate::new(200)
            .insert_header("content-type", "application/x-amz-json-1.1")
            .set_body_json(json!({"authorizationData": [{"authorizationToken": token,
                "expiresAt": at, "proxyEndpoint": format!("https://{HOST}")}]}))
    }
}

/// The registry: the manifest for `Basic AWS:<newest token>` while it is unexpired.
struct EcrRegistry(Arc<Mutex<Ecr>>);

impl Respond for EcrRegistry {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let s = self.0.lock().unwrap();
        let sent = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let ok = s.issued.last().is_some_and(|(pw, exp)| {
            let want = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{pw}"));
            !s.revoked && sent == format!("Basic {want}") && SystemTime::now() < *exp
        });
        if ok {
            ResponseTemplate::new(200)
                .insert_header("docker-content-digest", DIGEST)
                .insert_header("content-type", "application/vnd.oci.image.index.v1+json")
        } else {
            ResponseTemplate::new(401)
                .insert_header("www-authenticate", r#"Basic realm="https://fake-ecr/""#)
        }
    }
}

async fn fakes(lifetime: Duration) -> (MockServer, MockServer, Arc<Mutex<Ecr>>) {
    let state = Arc::new(Mutex::new(Ecr {
        lifetime,
        ..Default::default()
    }));
    let api = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(EcrApi(state.clone()))
        .mount(&api)
        .await;
    let registry = MockServer::start().await;
    Mock::given(wiremock::matchers::path("/v2/acme/app/manifests/1"))
        .respond_with(EcrRegistry(state.clone()))
        .mount(&registry)
        .await;
    (api, registry, state)
}

/// `ferry-registry auth --json` for the ECR host, mirrored to the fake registry, with AWS
/// credentials and the ECR endpoint in the environment, at `FERRY_LOG=trace`.
fn auth(api: &MockServer, registry: &MockServer, secret_key: &str, extra: &[&str]) -> Output {
    let empty = tempfile::tempdir().unwrap();
    Command::new(bin("ferry-registry"))
        .args(["--mirror", &format!("{HOST}={}", registry.uri())])
        .args(extra)
        .args(["auth", "--json", &format!("{HOST}/acme/app:1")])
        .env("DOCKER_CONFIG", empty.path())
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", secret_key)
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ENDPOINT_URL_ECR", api.uri())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", empty.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", empty.path().join("none"))
        .env("FERRY_LOG", "trace")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test]
async fn ferry_registry_auth_logs_in_to_ecr_with_a_signed_request_and_names_the_source() {
    let (api, registry, state) = fakes(Duration::from_secs(3600)).await;
    let o = auth(&api, &registry, SECRET_KEY, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["source"]["kind"], "cloud", "{v}");
    assert_eq!(v["source"]["provider"], "aws");
    assert!(v["source"]["how"].as_str().unwrap().contains("eu-west-1"));
    assert_eq!(v["scheme"], "basic");
    let expires = humantime::parse_rfc3339(v["credential_expires_at"].as_str().unwrap()).unwrap();
    let left = expires.duration_since(SystemTime::now()).unwrap().as_secs();
    assert!((3500..=3600).contains(&left), "expires in {left}s");
    {
        let s = state.lock().unwrap();
        assert_eq!((s.issued.len(), s.bad_signatures), (1, 0));
    }
    let all = text(&o);
    let token_b64 = base64::engine::general_purpose::STANDARD.encode("AWS:ecr-token-1");
    for secret in ["ecr-token-1", token_b64.as_str(), SECRET_KEY] {
        assert!(!all.contains(secret), "secret {secret} printed:\n{all}");
    }
    assert!(o.stderr.len() > 200, "trace logging was not on");

    // `--cloud-auth none`: anonymous, refused by the registry.
    let o = auth(&api, &registry, SECRET_KEY, &["--cloud-auth", "none"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["anonymous"], true, "{v}");
    assert_eq!(state.lock().unwrap().issued.len(), 1, "no token asked for");
}

#[tokio::test]
async fn a_badly_signed_token_request_is_refused_and_the_error_names_aws() {
    let (api, registry, state) = fakes(Duration::from_secs(3600)).await;
    let o = auth(&api, &registry, "not-the-secret", &[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("aws cloud credentials") && err.contains("GetAuthorizationToken"),
        "{}",
        text(&o)
    );
    assert!(state.lock().unwrap().bad_signatures >= 1);
    assert!(!text(&o).contains("not-the-secret"));
}

#[tokio::test]
async fn ecr_tokens_are_refreshed_before_they_expire_and_after_a_refusal() {
    let (api, registry, state) = fakes(Duration::from_secs(4)).await;
    let endpoint = api.uri();
    // The SDK configured as the binary does, here from explicit values.
    let loader: ferry_registry::ecr::SdkConfigLoader = Arc::new(move || {
        let endpoint = endpoint.clone();
        Box::pin(async move {
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("eu-west-1"))
                .credentials_provider(aws_credential_types::Credentials::new(
                    KEY_ID, SECRET_KEY, None, None, "test",
                ))
                .endpoint_url(endpoint)
                .load()
                .await
        })
    });
    let cloud = CloudCredentials::new(vec![Arc::new(ferry_registry::ecr::Ecr::new(loader))]);
    let client = Client::new(ClientConfig {
        mirrors: vec![(HOST.into(), registry.uri())],
        cloud: Some(Arc::new(cloud)),
        ..Default::default()
    })
    .unwrap();
    let r: Reference = format!("{HOST}/acme/app:1").parse().unwrap();
    let issued = || state.lock().unwrap().issued.len();
    for _ in 0..3 {
        assert_eq!(client.resolve(&r).await.unwrap().digest.to_string(), DIGEST);
    }
    assert_eq!(issued(), 1, "one token while it is fresh");
    // Three quarters of its 4 s lifetime later a new token is fetched before the old expires.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    client.resolve(&r).await.unwrap();
    assert_eq!(issued(), 2);
    // A token revoked early: the registry refuses it, a new one is fetched at once.
    state.lock().unwrap().revoked = true;
    client.resolve(&r).await.unwrap();
    assert_eq!(issued(), 3);
    assert_eq!(state.lock().unwrap().bad_signatures, 0);
    // Tokens that are refused again and again: one new token per request, then the error
    // names the source.
    {
        let mut s = state.lock().unwrap();
        s.lifetime = Duration::ZERO;
        s.revoked = true;
    }
    let e = client.resolve(&r).await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    assert!(e.to_string().contains("aws cloud credentials"), "{e}");
    assert_eq!(issued(), 4);
}

#[tokio::test]
async fn without_aws_credentials_public_images_stay_anonymous() {
    let (api, _registry, state) = fakes(Duration::from_secs(3600)).await;
    let public = MockServer::start().await;
    Mock::given(wiremock::matchers::path("/v2/acme/app/manifests/1"))
        .respond_with(ResponseTemplate::new(200).insert_header("docker-content-digest", DIGEST))
        .mount(&public)
        .await;
    let endpoint = api.uri();
    let loader: ferry_registry::ecr::SdkConfigLoader = Arc::new(move || {
        let endpoint = endpoint.clone();
        Box::pin(async move {
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("eu-west-1"))
                .no_credentials()
                .endpoint_url(endpoint)
                .load()
                .await
        })
    });
    let cloud = CloudCredentials::new(vec![Arc::new(ferry_registry::ecr::Ecr::new(loader))]);
    let client = Client::new(ClientConfig {
        mirrors: vec![(HOST.into(), public.uri())],
        cloud: Some(Arc::new(cloud)),
        ..Default::default()
    })
    .unwrap();
    let r: Reference = format!("{HOST}/acme/app:1").parse().unwrap();
    assert_eq!(client.resolve(&r).await.unwrap().digest.to_string(), DIGEST);
    assert!(client.credential_source(HOST).await.unwrap().is_none());
    assert_eq!(
        state.lock().unwrap().issued.len(),
        0,
        "no token request without credentials"
    );
}
