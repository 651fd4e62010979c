//! Azure Container Registry built in (issue 21): a fake Entra ID (reached through
//! `AZURE_AUTHORITY_HOST`) that checks the client-credentials form with the federated token
//! as JWT assertion, and a fake ACR (`--mirror` for its host) that checks `/oauth2/exchange`
//! and the refresh-token grant of its token server.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_core::Reference;
use ferry_registry::azure::{Azure, WorkloadIdentity};
use ferry_registry::{Client, ClientConfig, CloudCredentials};
use ferry_tests::bin;
use ferry_tests::tls::TlsFront;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const HOST: &str = "acme.azurecr.io";
const TENANT: &str = "11111111-2222-3333-4444-555555555555";
const CLIENT: &str = "66666666-7777-8888-9999-000000000000";
const DIGEST: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

#[derive(Default)]
struct State {
    /// The federated token the Entra fake expects (the file's content).
    assertion: String,
    entra_tokens: Vec<String>,
    refresh_tokens: Vec<String>,
    access_tokens: Vec<String>,
    /// Requests whose form was not what the services document.
    bad_forms: Vec<String>,
    lifetime_secs: u64,
    /// The tag is not pushed yet: 404 MANIFEST_UNKNOWN to an authorized request.
    unpublished: bool,
}

fn form(req: &Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect()
}

fn check(s: &mut State, f: &HashMap<String, String>, want: &[(&str, &str)]) -> bool {
    for (k, v) in want {
        if f.get(*k).map(String::as_str) != Some(*v) {
            s.bad_forms.push(format!("{k}={:?}", f.get(*k)));
            return false;
        }
    }
    true
}

struct Entra(Arc<Mutex<State>>);

impl Respond for Entra {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let f = form(req);
        let assertion = s.assertion.clone();
        let ok = check(
            &mut s,
            &f,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT),
                ("scope", "https://containerregistry.azure.net/.default"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion),
            ],
        );
        if !ok {
            return ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_client",
                "error_description": "AADSTS700211: No matching federated identity record found"}));
        }
        let token = format!("entra-{}", s.entra_tokens.len() + 1);
        s.entra_tokens.push(token.clone());
        ResponseTemplate::new(200).set_body_json(json!({"token_type": "Bearer",
            "expires_in": s.lifetime_secs, "access_token": token}))
    }
}

struct Exchange(Arc<Mutex<State>>);

impl Respond for Exchange {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let newest = s.entra_tokens.last().cloned().unwrap_or_default();
        let f = form(req);
        let ok = check(
            &mut s,
            &f,
            &[
                ("grant_type", "access_token"),
                ("service", HOST),
                ("tenant", TENANT),
                ("access_token", &newest),
            ],
        );
        if !ok {
            return ResponseTemplate::new(401);
        }
        let refresh = format!("acr-refresh-{}", s.refresh_tokens.len() + 1);
        s.refresh_tokens.push(refresh.clone());
        ResponseTemplate::new(200).set_body_json(json!({"refresh_token": refresh}))
    }
}

struct TokenServer(Arc<Mutex<State>>);

impl Respond for TokenServer {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let newest = s.refresh_tokens.last().cloned().unwrap_or_default();
        let f = form(req);
        let ok = check(
            &mut s,
            &f,
            &[
                ("grant_type", "refresh_token"),
                ("service", HOST),
                ("scope", "repository:acme/app:pull"),
                ("refresh_token", &newest),
            ],
        );
        if !ok {
            return ResponseTemplate::new(401);
        }
        let access = format!("acr-access-{}", s.access_tokens.len() + 1);
        s.access_tokens.push(access.clone());
        ResponseTemplate::new(200).set_body_json(json!({"access_token": access}))
    }
}

struct Manifests(Arc<Mutex<State>>, String);

impl Respond for Manifests {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let s = self.0.lock().unwrap();
        let sent = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let ok = s
            .access_tokens
            .last()
            .is_some_and(|a| sent == Some(format!("Bearer {a}").as_str()));
        if ok && s.unpublished {
            ResponseTemplate::new(404).set_body_json(
                json!({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}),
            )
        } else if ok {
            ResponseTemplate::new(200).insert_header("docker-content-digest", DIGEST)
        } else {
            ResponseTemplate::new(401).insert_header(
                "www-authenticate",
                format!(r#"Bearer realm="{}/oauth2/token",service="{HOST}""#, self.1).as_str(),
            )
        }
    }
}

async fn fakes(assertion: &str, lifetime_secs: u64) -> (MockServer, MockServer, Arc<Mutex<State>>) {
    let state = Arc::new(Mutex::new(State {
        assertion: assertion.into(),
        lifetime_secs,
        ..Default::default()
    }));
    let entra = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path(format!(
            "/{TENANT}/oauth2/v2.0/token"
        )))
        .respond_with(Entra(state.clone()))
        .mount(&entra)
        .await;
    let acr = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/oauth2/exchange"))
        .respond_with(Exchange(state.clone()))
        .mount(&acr)
        .await;
    Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/oauth2/token"))
        .respond_with(TokenServer(state.clone()))
        .mount(&acr)
        .await;
    Mock::given(wiremock::matchers::path("/v2/acme/app/manifests/1"))
        .respond_with(Manifests(state.clone(), acr.uri()))
        .mount(&acr)
        .await;
    (entra, acr, state)
}

fn auth(entra: &MockServer, acr: &MockServer, token_file: &Path) -> Output {
    let empty = tempfile::tempdir().unwrap();
    let auth = ["auth", "--json", &format!("{HOST}/acme/app:1")];
    command(&entra.uri(), &acr.uri(), token_file, empty.path(), &auth)
        .output()
        .unwrap()
}

/// `ferry-registry ARGS` with Azure Workload Identity's environment (Entra at `entra`, the
/// registry at `acr`), at `FERRY_LOG=trace`.
fn command(entra: &str, acr: &str, token_file: &Path, home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin("ferry-registry"));
    cmd.args(["--mirror", &format!("{HOST}={acr}")])
        .args(args)
        .env("DOCKER_CONFIG", home)
        .env("AZURE_FEDERATED_TOKEN_FILE", token_file)
        .env("AZURE_CLIENT_ID", CLIENT)
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_AUTHORITY_HOST", entra)
        .env("FERRY_LOG", "trace")
        .env_remove("GITHUB_ACTIONS");
    cmd
}

#[tokio::test]
async fn ferry_registry_auth_logs_in_to_acr_with_workload_identity() {
    let (entra, acr, state) = fakes("federated.jwt.one", 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("azure-identity-token");
    std::fs::write(&file, "federated.jwt.one\n").unwrap();
    let o = auth(&entra, &acr, &file);
    let all = format!(
        "exit {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0), "{all}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["source"]["kind"], "cloud", "{v}");
    assert_eq!(v["source"]["provider"], "azure");
    assert!(v["source"]["how"].as_str().unwrap().contains(CLIENT));
    assert_eq!(v["token_obtained"], true);
    assert!(state.lock().unwrap().bad_forms.is_empty());
    for secret in [
        "federated.jwt.one",
        "entra-1",
        "acr-refresh-1",
        "acr-access-1",
    ] {
        assert!(!all.contains(secret), "secret {secret} printed:\n{all}");
    }
    assert!(o.stderr.len() > 200, "trace logging was not on");

    // A federated token Entra does not know: refused, exit 3, the error names azure.
    std::fs::write(&file, "someone.elses.jwt").unwrap();
    let o = auth(&entra, &acr, &file);
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("azure cloud credentials") && err.contains("AADSTS700211"),
        "{err}"
    );
}

#[tokio::test]
async fn acr_logins_are_renewed_with_the_rotated_federated_token() {
    let (entra, acr, state) = fakes("jwt-1", 4).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "jwt-1").unwrap();
    let azure = Azure::new(
        WorkloadIdentity {
            token_file: file.clone(),
            client_id: CLIENT.into(),
            tenant_id: TENANT.into(),
            authority_host: entra.uri(),
        },
        vec![(HOST.into(), acr.uri())],
        &Default::default(),
    )
    .unwrap();
    let client = Client::new(ClientConfig {
        mirrors: vec![(HOST.into(), acr.uri())],
        cloud: Some(Arc::new(CloudCredentials::new(vec![Arc::new(azure)]))),
        ..Default::default()
    })
    .unwrap();
    let r: Reference = format!("{HOST}/acme/app:1").parse().unwrap();
    let counts = || {
        let s = state.lock().unwrap();
        (
            s.entra_tokens.len(),
            s.refresh_tokens.len(),
            s.access_tokens.len(),
        )
    };
    for _ in 0..3 {
        assert_eq!(client.resolve(&r).await.unwrap().digest.to_string(), DIGEST);
    }
    assert_eq!(counts(), (1, 1, 1));
    // The kubelet rotates the projected token; Entra now accepts only the new one.
    std::fs::write(&file, "jwt-2").unwrap();
    state.lock().unwrap().assertion = "jwt-2".into();
    tokio::time::sleep(Duration::from_millis(3200)).await;
    client.resolve(&r).await.unwrap();
    assert_eq!(counts(), (2, 2, 2), "{:?}", state.lock().unwrap().bad_forms);
}

#[tokio::test]
async fn one_process_keeps_logging_in_to_acr_across_expiry_and_a_rotated_token_file() {
    // Entra tokens live 4 s (renewed after 3 s); the kubelet rotates the federated token once.
    let (entra, acr, state) = fakes("jwt-1", 4).await;
    state.lock().unwrap().unpublished = true;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "jwt-1").unwrap();
    let wait = [
        "--timeout",
        "120s",
        "wait",
        &format!("{HOST}/acme/app:1"),
        "--interval",
        "500ms",
    ];
    let child = command(&entra.uri(), &acr.uri(), &file, dir.path(), &wait)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let logins = || state.lock().unwrap().entra_tokens.len();
    let poll = |what: &str, done: &dyn Fn() -> bool| {
        for _ in 0..600 {
            if done() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}");
    };
    poll("a renewed login", &|| logins() >= 2);
    let before = logins();
    std::fs::write(&file, "jwt-2").unwrap();
    state.lock().unwrap().assertion = "jwt-2".into();
    poll("two logins after the rotation", &|| logins() >= before + 2);
    state.lock().unwrap().unpublished = false;
    let o = child.wait_with_output().unwrap();
    let all = format!(
        "exit {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0), "{all}");
    let s = state.lock().unwrap();
    assert!(s.bad_forms.is_empty(), "{:?}", s.bad_forms);
    // One exchange per Entra token, and registry access tokens from the newest refresh tokens.
    assert_eq!(s.refresh_tokens.len(), s.entra_tokens.len());
    assert!(s.access_tokens.len() >= s.refresh_tokens.len(), "{all}");
    for secret in s
        .entra_tokens
        .iter()
        .chain(&s.refresh_tokens)
        .chain(&s.access_tokens)
        .map(String::as_str)
        .chain(["jwt-1", "jwt-2"])
    {
        assert!(!all.contains(secret), "secret {secret} printed:\n{all}");
    }
}

/// Behind a TLS-intercepting proxy or with a private CA, `--ca-file` is what vouches for Entra
/// and for the registry's `/oauth2/exchange`, as for the registry's own requests: with it (one
/// bundle holding both CAs) the login goes through over HTTPS; without it Entra's certificate
/// is refused with an error naming the token URL and the unknown issuer.
#[tokio::test]
async fn entra_and_the_acr_exchange_over_https_are_trusted_through_the_ca_file_only() {
    let (entra, acr, state) = fakes("federated.jwt.one", 3600).await;
    let entra_tls = TlsFront::start(*entra.address());
    let acr_tls = TlsFront::start(*acr.address());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("azure-identity-token");
    std::fs::write(&file, "federated.jwt.one\n").unwrap();
    let bundle = dir.path().join("cas.pem");
    let pem = |f: &TlsFront| std::fs::read_to_string(f.ca_file()).unwrap();
    std::fs::write(&bundle, pem(&entra_tls) + &pem(&acr_tls)).unwrap();
    let reference = format!("{HOST}/acme/app:1");

    let with_ca = [
        "--ca-file",
        bundle.to_str().unwrap(),
        "auth",
        "--json",
        &reference,
    ];
    let o = command(
        &entra_tls.uri(),
        &acr_tls.uri(),
        &file,
        dir.path(),
        &with_ca,
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["source"]["provider"], "azure", "{v}");
    assert_eq!(v["token_obtained"], true, "{v}");
    {
        let s = state.lock().unwrap();
        assert!(s.bad_forms.is_empty(), "{:?}", s.bad_forms);
        assert_eq!(s.entra_tokens.len(), 1);
        assert_eq!(s.refresh_tokens.len(), 1, "exchanged over HTTPS");
    }

    // The registry in plain HTTP, so that only Entra's certificate is in question.
    let without = ["auth", "--json", &reference];
    let o = command(&entra_tls.uri(), &acr.uri(), &file, dir.path(), &without)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    let entra_url = format!("{}/{TENANT}/oauth2/v2.0/token", entra_tls.uri());
    assert!(
        err.contains("azure cloud credentials") && err.contains(&entra_url),
        "{err}"
    );
    assert!(
        err.contains("UnknownIssuer") && err.contains("--ca-file"),
        "{err}"
    );
    assert_eq!(
        state.lock().unwrap().entra_tokens.len(),
        1,
        "no second login"
    );
}
