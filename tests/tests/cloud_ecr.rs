//! Amazon ECR built in (issue 21), against a local fake of ECR's API that verifies each
//! request's SigV4 signature with the SDK's own signer, and a fake ECR registry that accepts
//! only the newest unexpired token. AWS credentials are static keys, or IRSA's web identity:
//! a fake STS checks `AssumeRoleWithWebIdentity`'s form fields and answers short-lived
//! credentials in STS's XML, and the fake ECR API then accepts only signatures made with
//! exactly those (unexpired) credentials and their session token. The fakes are reached the
//! way a user redirects them: `AWS_ENDPOINT_URL_ECR`, `AWS_ENDPOINT_URL_STS` (the SDK's
//! endpoint settings) and `--mirror` for the registry host.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ferry_core::Reference;
use ferry_registry::{Client, ClientConfig, CloudCredentials, Error};
use ferry_tests::bin;
use ferry_tests::cloud::{signature_ok, signing_key_id};
use ferry_tests::tls::TlsFront;
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
    /// The tag is not pushed yet: the registry answers 404 MANIFEST_UNKNOWN.
    unpublished: bool,
    /// Credentials STS handed out, oldest first; when any, only these sign ECR requests.
    sts: Vec<StsCredentials>,
    /// The web identity token STS accepts now (the projected ServiceAccount token).
    web_token: String,
    /// Lifetime of STS credentials.
    sts_lifetime: Duration,
    /// STS requests refused, and why.
    sts_refused: Vec<&'static str>,
    /// ECR API requests signed with STS credentials that had expired.
    expired_signatures: usize,
    /// The access key id that signed each accepted GetAuthorizationToken.
    signed_by: Vec<String>,
}

/// Credentials STS answered.
#[derive(Clone)]
struct StsCredentials {
    key_id: String,
    secret: String,
    session_token: String,
    expires: SystemTime,
    /// The web identity token they were obtained with.
    web_token: String,
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
        let signer = signing_key_id(req).unwrap_or_default();
        let ok = if s.sts.is_empty() {
            signature_ok(req, KEY_ID, SECRET_KEY, None)
        } else {
            match s.sts.iter().find(|c| c.key_id == signer).cloned() {
                Some(c) if SystemTime::now() >= c.expires => {
                    s.expired_signatures += 1;
                    return ResponseTemplate::new(400)
                        .insert_header("content-type", "application/x-amz-json-1.1")
                        .set_body_json(json!({"__type": "ExpiredTokenException",
                            "message": "The security token included in the request is expired"}));
                }
                Some(c) => signature_ok(req, &c.key_id, &c.secret, Some(&c.session_token)),
                None => false,
            }
        };
        if !ok {
            s.bad_signatures += 1;
            return ResponseTemplate::new(403)
                .insert_header("content-type", "application/x-amz-json-1.1")
                .set_body_json(json!({"__type": "InvalidSignatureException",
                    "message": "The request signature we calculated does not match the signature you provided."}));
        }
        s.signed_by.push(signer);
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
        if ok && s.unpublished {
            ResponseTemplate::new(404).set_body_json(
                json!({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}),
            )
        } else if ok {
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
/// credentials and the ECR endpoint `api` in the environment, at `FERRY_LOG=trace`.
fn auth(api: &str, registry: &MockServer, secret_key: &str, extra: &[&str]) -> Output {
    let empty = tempfile::tempdir().unwrap();
    Command::new(bin("ferry-registry"))
        .args(["--mirror", &format!("{HOST}={}", registry.uri())])
        .args(extra)
        .args(["auth", "--json", &format!("{HOST}/acme/app:1")])
        .env("DOCKER_CONFIG", empty.path())
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", secret_key)
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ENDPOINT_URL_ECR", api)
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
    let o = auth(&api.uri(), &registry, SECRET_KEY, &[]);
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
    let o = auth(&api.uri(), &registry, SECRET_KEY, &["--cloud-auth", "none"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["anonymous"], true, "{v}");
    assert_eq!(state.lock().unwrap().issued.len(), 1, "no token asked for");
}

#[tokio::test]
async fn a_badly_signed_token_request_is_refused_and_the_error_names_aws() {
    let (api, registry, state) = fakes(Duration::from_secs(3600)).await;
    let o = auth(&api.uri(), &registry, "not-the-secret", &[]);
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

/// Behind a TLS-intercepting proxy or with a private CA, `--ca-file` is what vouches for the
/// ECR API (the AWS SDK's own HTTPS client): with it the signed GetAuthorizationToken goes
/// through over HTTPS; without it the certificate is refused and the error names aws.
#[tokio::test]
async fn the_ecr_api_over_https_is_trusted_through_the_ca_file_only() {
    let (api, registry, state) = fakes(Duration::from_secs(3600)).await;
    let front = TlsFront::start(*api.address());
    let ca = front.ca_file();
    let with_ca = ["--ca-file", ca.to_str().unwrap()];
    let o = auth(&front.uri(), &registry, SECRET_KEY, &with_ca);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["source"]["provider"], "aws", "{v}");
    assert_eq!(
        (&v["scheme"], &v["accepted"]),
        (&json!("basic"), &json!(true)),
        "{v}"
    );
    {
        let s = state.lock().unwrap();
        assert_eq!((s.issued.len(), s.bad_signatures), (1, 0));
    }

    let o = auth(&front.uri(), &registry, SECRET_KEY, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(err.contains("aws cloud credentials"), "{err}");
    assert!(err.contains("UnknownIssuer"), "{err}");
    assert_eq!(
        state.lock().unwrap().issued.len(),
        1,
        "no token without the CA"
    );
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

// ---- IRSA: web identity → a fake STS → short-lived credentials that sign the ECR login ----

const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/ferry-reader";
const SESSION: &str = "ferry-deploy";

/// STS's `AssumeRoleWithWebIdentity` (Query API, form-encoded, answered in XML).
struct Sts(Arc<Mutex<Ecr>>);

impl Respond for Sts {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(&req.body)
                .into_owned()
                .collect();
        let f = |k: &str| form.get(k).map(String::as_str);
        let wrong = [
            ("Action", Some("AssumeRoleWithWebIdentity")),
            ("Version", Some("2011-06-15")),
            ("RoleArn", Some(ROLE_ARN)),
            ("RoleSessionName", Some(SESSION)),
            ("WebIdentityToken", Some(s.web_token.as_str())),
        ]
        .into_iter()
        .find(|(k, want)| f(k) != *want)
        .map(|(k, _)| k);
        if let Some(field) = wrong {
            s.sts_refused.push(field);
            let code = if field == "WebIdentityToken" {
                "InvalidIdentityToken"
            } else {
                "ValidationError"
            };
            return ResponseTemplate::new(400)
                .insert_header("content-type", "text/xml")
                .set_body_string(format!(
                    "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>fake STS refused {field}</Message></Error><RequestId>4b6c1a4e-0000-4000-8000-000000000000</RequestId></ErrorResponse>"
                ));
        }
        let n = s.sts.len() + 1;
        let c = StsCredentials {
            key_id: format!("ASIAFERRYSTS{n:08}"),
            secret: format!("sts-secret-{n}-wJalrXUtnFEMI/K7MDENG"),
            session_token: format!("sts-session-{n}-IQoJb3JpZ2luX2VjEJr//////////wEaCXVz"),
            expires: SystemTime::now() + s.sts_lifetime,
            web_token: s.web_token.clone(),
        };
        s.sts.push(c.clone());
        let expiration = humantime::format_rfc3339_seconds(c.expires);
        ResponseTemplate::new(200)
            .insert_header("content-type", "text/xml")
            .set_body_string(format!(
                r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:ferry:ferry-deploy</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/ferry-reader/{SESSION}</Arn>
      <AssumedRoleId>AROAFERRYTESTROLE0001:{SESSION}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>{}</SessionToken>
      <SecretAccessKey>{}</SecretAccessKey>
      <Expiration>{expiration}</Expiration>
      <AccessKeyId>{}</AccessKeyId>
    </Credentials>
    <Provider>arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>7c4f1e2a-0000-4000-8000-{n:012}</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#,
                c.session_token, c.secret, c.key_id
            ))
    }
}

/// The ECR fakes plus an STS answering credentials that live `sts_lifetime`, accepting
/// `web_token`.
async fn irsa_fakes(
    ecr_lifetime: Duration,
    sts_lifetime: Duration,
    web_token: &str,
) -> (MockServer, MockServer, MockServer, Arc<Mutex<Ecr>>) {
    let (api, registry, state) = fakes(ecr_lifetime).await;
    {
        let mut s = state.lock().unwrap();
        s.sts_lifetime = sts_lifetime;
        s.web_token = web_token.to_string();
    }
    let sts = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/"))
        .respond_with(Sts(state.clone()))
        .mount(&sts)
        .await;
    (api, sts, registry, state)
}

/// `ferry-registry ARGS` for the ECR host with IRSA's environment (as the EKS webhook sets
/// it) and nothing else AWS: no keys, no profile files, no instance metadata.
fn irsa_cmd(
    api: &MockServer,
    sts: &MockServer,
    registry: &MockServer,
    home: &std::path::Path,
    token_file: &std::path::Path,
    args: &[&str],
) -> Command {
    let mut cmd = Command::new(bin("ferry-registry"));
    cmd.args(["--mirror", &format!("{HOST}={}", registry.uri())])
        .args(args)
        .env("DOCKER_CONFIG", home)
        .env("AWS_ROLE_ARN", ROLE_ARN)
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", token_file)
        .env("AWS_ROLE_SESSION_NAME", SESSION)
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ENDPOINT_URL_ECR", api.uri())
        .env("AWS_ENDPOINT_URL_STS", sts.uri())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", home.join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("none"))
        .env("FERRY_LOG", "trace")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("GITHUB_ACTIONS");
    cmd
}

/// Every secret the fakes handed out or accepted, to look for in output.
fn secrets(s: &Ecr) -> Vec<String> {
    let mut out: Vec<String> = s.issued.iter().map(|(pw, _)| pw.clone()).collect();
    for c in &s.sts {
        out.extend([
            c.secret.clone(),
            c.session_token.clone(),
            c.web_token.clone(),
        ]);
    }
    out
}

const WEB_TOKEN_1: &str = "eyJhbGciOiJSUzI1NiJ9.ferry-sa-token-one.c2lnbmF0dXJl";
const WEB_TOKEN_2: &str = "eyJhbGciOiJSUzI1NiJ9.ferry-sa-token-two.c2lnbmF0dXJl";

#[tokio::test]
async fn irsa_credentials_from_sts_sign_the_ecr_login() {
    let (api, sts, registry, state) = irsa_fakes(
        Duration::from_secs(3600),
        Duration::from_secs(3600),
        WEB_TOKEN_1,
    )
    .await;
    let home = tempfile::tempdir().unwrap();
    let token_file = home.path().join("token");
    std::fs::write(&token_file, WEB_TOKEN_1).unwrap();
    let o = irsa_cmd(
        &api,
        &sts,
        &registry,
        home.path(),
        &token_file,
        &["auth", "--json", &format!("{HOST}/acme/app:1")],
    )
    .output()
    .unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["source"]["provider"], "aws", "{v}");
    let s = state.lock().unwrap();
    assert_eq!(s.sts_refused, Vec::<&str>::new());
    assert_eq!(
        s.sts.len(),
        1,
        "one AssumeRoleWithWebIdentity per ECR login"
    );
    assert_eq!(s.signed_by, vec![s.sts[0].key_id.clone()]);
    assert_eq!((s.bad_signatures, s.expired_signatures), (0, 0));
    for secret in secrets(&s) {
        assert!(!all.contains(&secret), "secret {secret} printed:\n{all}");
    }
    assert!(o.stderr.len() > 200, "trace logging was not on");
}

#[tokio::test]
async fn a_refused_web_identity_token_is_an_error_naming_aws() {
    let (api, sts, registry, state) = irsa_fakes(
        Duration::from_secs(3600),
        Duration::from_secs(3600),
        WEB_TOKEN_2,
    )
    .await;
    let home = tempfile::tempdir().unwrap();
    let token_file = home.path().join("token");
    std::fs::write(&token_file, WEB_TOKEN_1).unwrap();
    let o = irsa_cmd(
        &api,
        &sts,
        &registry,
        home.path(),
        &token_file,
        &["auth", "--json", &format!("{HOST}/acme/app:1")],
    )
    .output()
    .unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(3), "{all}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("aws cloud credentials") && err.contains("InvalidIdentityToken"),
        "{all}"
    );
    let s = state.lock().unwrap();
    assert!(
        !s.sts_refused.is_empty() && s.sts_refused.iter().all(|f| *f == "WebIdentityToken"),
        "{:?}",
        s.sts_refused
    );
    assert!(s.issued.is_empty() && s.signed_by.is_empty());
    assert!(
        !all.contains(WEB_TOKEN_1),
        "web identity token printed:\n{all}"
    );
}

#[tokio::test]
async fn one_process_keeps_logging_in_across_sts_expiry_and_a_rotated_token_file() {
    // STS credentials live 2 s, ECR tokens 4 s (renewed after 3 s): every renewal needs new
    // STS credentials, and signing with the old ones would be refused as expired.
    let (api, sts, registry, state) =
        irsa_fakes(Duration::from_secs(4), Duration::from_secs(2), WEB_TOKEN_1).await;
    let home = tempfile::tempdir().unwrap();
    let token_file = home.path().join("token");
    std::fs::write(&token_file, WEB_TOKEN_1).unwrap();
    let wait = irsa_cmd(
        &api,
        &sts,
        &registry,
        home.path(),
        &token_file,
        &WAIT_ARGS
            .map(|a| a.replace("{HOST}", HOST))
            .each_ref()
            .map(String::as_str),
    );
    let o = wait_across_rotation(&state, wait, &token_file, WEB_TOKEN_2);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    let s = state.lock().unwrap();
    assert_eq!((s.bad_signatures, s.expired_signatures), (0, 0), "{all}");
    assert_eq!(s.sts_refused, Vec::<&str>::new());
    // Each ECR login was signed by the credentials of its own STS call, in order.
    let sts_keys: Vec<String> = s.sts.iter().map(|c| c.key_id.clone()).collect();
    assert_eq!(s.signed_by, sts_keys, "{all}");
    assert!(s.signed_by.len() >= 4);
    let last = s.sts.last().unwrap();
    assert_eq!(
        last.web_token, WEB_TOKEN_2,
        "the rotated token file was read again"
    );
    assert_eq!(s.sts[0].web_token, WEB_TOKEN_1);
    for secret in secrets(&s) {
        assert!(!all.contains(&secret), "secret {secret} printed:\n{all}");
    }
}

/// `ferry-registry wait` for the unpublished tag, renewing its logins every 3 s.
const WAIT_ARGS: [&str; 6] = [
    "--timeout",
    "120s",
    "wait",
    "{HOST}/acme/app:1",
    "--interval",
    "500ms",
];

/// Run `wait` (a `ferry-registry wait` for the unpublished tag): let it log in to ECR twice,
/// rotate the token file to `new_token` (the only one the fake accepts from then on), let it
/// log in twice more, publish the tag, and return its output.
fn wait_across_rotation(
    state: &Arc<Mutex<Ecr>>,
    mut wait: Command,
    token_file: &std::path::Path,
    new_token: &str,
) -> Output {
    state.lock().unwrap().unpublished = true;
    let child = wait
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let logins = || state.lock().unwrap().issued.len();
    let poll = |what: &str, done: &dyn Fn() -> bool| {
        for _ in 0..600 {
            if done() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}");
    };
    poll("a renewed ECR login", &|| logins() >= 2);
    // The kubelet rotates the projected token; the fake now accepts only the new one.
    let before_rotation = logins();
    std::fs::write(token_file, new_token).unwrap();
    state.lock().unwrap().web_token = new_token.to_string();
    poll("two ECR logins after the rotation", &|| {
        logins() >= before_rotation + 2
    });
    state.lock().unwrap().unpublished = false;
    child.wait_with_output().unwrap()
}

// ---- EKS Pod Identity: the agent's container-credentials endpoint on a loopback address ----

/// The Pod Identity agent: GET with the token file's content as `Authorization`, answering
/// short-lived credentials as JSON.
struct PodIdentityAgent(Arc<Mutex<Ecr>>);

impl Respond for PodIdentityAgent {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let sent = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if req.method.as_str() != "GET" || sent != Some(s.web_token.as_str()) {
            s.sts_refused.push("Authorization");
            return ResponseTemplate::new(401).set_body_json(
                json!({"Code": "InvalidToken", "Message": "fake Pod Identity agent refused the token"}),
            );
        }
        let n = s.sts.len() + 1;
        let c = StsCredentials {
            key_id: format!("ASIAFERRYPOD{n:08}"),
            secret: format!("pod-secret-{n}-wJalrXUtnFEMI/K7MDENG"),
            session_token: format!("pod-session-{n}-IQoJb3JpZ2luX2VjEJr//////////wEa"),
            expires: SystemTime::now() + s.sts_lifetime,
            web_token: s.web_token.clone(),
        };
        s.sts.push(c.clone());
        ResponseTemplate::new(200).set_body_json(json!({
            "AccessKeyId": c.key_id,
            "SecretAccessKey": c.secret,
            "Token": c.session_token,
            "AccountId": "123456789012",
            "Expiration": humantime::format_rfc3339_seconds(c.expires).to_string(),
        }))
    }
}

#[tokio::test]
async fn eks_pod_identity_credentials_sign_the_ecr_login_and_are_renewed() {
    let (api, registry, state) = fakes(Duration::from_secs(4)).await;
    {
        let mut s = state.lock().unwrap();
        s.sts_lifetime = Duration::from_secs(2);
        s.web_token = WEB_TOKEN_1.to_string();
    }
    let agent = MockServer::start().await;
    Mock::given(wiremock::matchers::path("/v1/credentials"))
        .respond_with(PodIdentityAgent(state.clone()))
        .mount(&agent)
        .await;
    let home = tempfile::tempdir().unwrap();
    let token_file = home.path().join("eks-pod-identity-token");
    std::fs::write(&token_file, WEB_TOKEN_1).unwrap();
    let mut wait = Command::new(bin("ferry-registry"));
    wait.args(["--mirror", &format!("{HOST}={}", registry.uri())])
        .args(WAIT_ARGS.map(|a| a.replace("{HOST}", HOST)))
        .env("DOCKER_CONFIG", home.path())
        .env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("{}/v1/credentials", agent.uri()),
        )
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token_file)
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ENDPOINT_URL_ECR", api.uri())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", home.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.path().join("none"))
        .env("FERRY_LOG", "trace")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ROLE_ARN")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("GITHUB_ACTIONS");
    let o = wait_across_rotation(&state, wait, &token_file, WEB_TOKEN_2);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    let s = state.lock().unwrap();
    assert_eq!((s.bad_signatures, s.expired_signatures), (0, 0), "{all}");
    assert_eq!(s.sts_refused, Vec::<&str>::new());
    let issued: Vec<String> = s.sts.iter().map(|c| c.key_id.clone()).collect();
    assert_eq!(s.signed_by, issued, "{all}");
    assert!(s.signed_by.len() >= 4);
    assert_eq!(s.sts.last().unwrap().web_token, WEB_TOKEN_2);
    for secret in secrets(&s) {
        assert!(!all.contains(&secret), "secret {secret} printed:\n{all}");
    }
}
