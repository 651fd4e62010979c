//! Built-in cloud logins on a real control plane (`scripts/testenv.sh`, issue 21): `run`
//! replicas whose ECR, GCP metadata-server, GCP key-file and ACR credentials expire while they
//! run, against fakes of the token services, with the real registry behind `--mirror`
//! accepting only the newest token.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod real;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ferry_tests::{Registry, RegistryOptions, free_port};
use real::credentials::{deployment, push_as, run_replica, status};
use real::{Cluster, wait_until};
use serde_json::Value;

/// A cloud token service's state: the registry accepts `USER:<prefix>-gen-N` for the current
/// generation N only (an older token has expired there).
struct Tokens {
    prefix: &'static str,
    generation: u32,
    /// Generations of the tokens handed out, in order.
    issued: Vec<u32>,
    lifetime_secs: u64,
}

impl Tokens {
    fn new(prefix: &'static str) -> Arc<std::sync::Mutex<Tokens>> {
        Arc::new(std::sync::Mutex::new(Tokens {
            prefix,
            generation: 1,
            issued: Vec::new(),
            lifetime_secs: 4,
        }))
    }

    fn issue(&mut self) -> String {
        self.issued.push(self.generation);
        self.password(self.generation)
    }

    fn password(&self, generation: u32) -> String {
        format!("{}-gen-{generation}", self.prefix)
    }
}

/// A `run` replica updates a workload whose image lives on the cloud registry `host` (its
/// `--mirror` the real registry, Basic auth `user` + the newest token); the token service
/// rotates after its tokens' lifetime and the replica must get a new token and update again.
fn cloud_run_survives_token_rotation(
    case: &str,
    host: &str,
    user: &str,
    tokens: &Arc<std::sync::Mutex<Tokens>>,
    env: &[(&str, String)],
) {
    let cluster = Cluster::connect();
    let tmp = tempfile::tempdir().unwrap();
    let kc = cluster.ferry_kubeconfig(tmp.path());
    let first = tokens.lock().unwrap().password(1);
    let mut reg = Registry::start_with(RegistryOptions {
        basic_auth: Some((user.into(), first.clone())),
        ..Default::default()
    });
    let old = push_as(&reg, user, &first, "relay", "latest", "old");
    let ns = cluster.namespace(case);
    let pinned = format!("{host}/relay:latest@{}", old.digest);
    cluster.apply(&deployment(&ns, "relay", &pinned, "default"));
    let mirror = format!("{host}=http://{}", reg.addr);
    let (_replica, metrics) = run_replica(&kc, &reg.addr, &ns, case, &["--mirror", &mirror], env);
    let image = || cluster.template_image(&ns, "deployment", "relay", "app");
    let new = push_as(&reg, user, &first, "relay", "latest", "new");
    let target = format!("{host}/relay:latest@{}", new.digest);
    wait_until("the first update", Duration::from_secs(60), || {
        image() == target
    });
    assert!(!tokens.lock().unwrap().issued.is_empty());

    // Past the first token's lifetime the service hands out generation 2, and the registry
    // takes only that.
    let lifetime = tokens.lock().unwrap().lifetime_secs;
    std::thread::sleep(Duration::from_secs(lifetime + 1));
    let second = {
        let mut t = tokens.lock().unwrap();
        t.generation = 2;
        t.password(2)
    };
    reg.restart_with_basic_auth(user, &second);
    let newer = push_as(&reg, user, &second, "relay", "latest", "newer");
    let target = format!("{host}/relay:latest@{}", newer.digest);
    wait_until(
        "an update after the token rotated, same process",
        Duration::from_secs(60),
        || image() == target,
    );
    let issued = tokens.lock().unwrap().issued.clone();
    assert!(
        issued.contains(&2),
        "the token service was not asked again: {issued:?}"
    );
    let status = status(&metrics);
    let source = status["workloads"][0]["credentials"][0]["source"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(source.contains("cloud credentials"), "{status}");
    assert!(!status.to_string().contains(&second), "token in the status");
}

/// wiremock servers live on their own threads; this runtime only starts them.
fn start_mock(rt: &tokio::runtime::Runtime) -> wiremock::MockServer {
    rt.block_on(wiremock::MockServer::start())
}

/// ECR's API: GetAuthorizationToken signed (SigV4, re-verified) with the test's keys.
struct EcrApi(Arc<std::sync::Mutex<Tokens>>);

const AWS_KEY_ID: &str = "AKIDFERRYREALTEST";
const AWS_SECRET: &str = "ferry-real-test-secret-access-key";

impl wiremock::Respond for EcrApi {
    fn respond(&self, req: &wiremock::Request) -> wiremock::ResponseTemplate {
        use base64::Engine as _;
        let target = req
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok());
        if target != Some("AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken")
            || !ferry_tests::cloud::signature_ok(req, AWS_KEY_ID, AWS_SECRET, None)
        {
            return wiremock::ResponseTemplate::new(403).set_body_json(serde_json::json!({
                "__type": "InvalidSignatureException", "message": "signature mismatch"}));
        }
        let mut t = self.0.lock().unwrap();
        let password = t.issue();
        let expires = std::time::SystemTime::now() + Duration::from_secs(t.lifetime_secs);
        let at = expires
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let token = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}"));
        wiremock::ResponseTemplate::new(200)
            .insert_header("content-type", "application/x-amz-json-1.1")
            .set_body_json(serde_json::json!({"authorizationData": [{
                "authorizationToken": token, "expiresAt": at}]}))
    }
}

#[test]
fn a_run_replica_renews_ecr_tokens_without_a_restart() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tokens = Tokens::new("ecr-token");
    let api = start_mock(&rt);
    rt.block_on(
        wiremock::Mock::given(wiremock::matchers::method("POST"))
            .respond_with(EcrApi(tokens.clone()))
            .mount(&api),
    );
    let home = tempfile::tempdir().unwrap();
    cloud_run_survives_token_rotation(
        "ecr",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        "AWS",
        &tokens,
        &[
            ("AWS_ACCESS_KEY_ID", AWS_KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY", AWS_SECRET.into()),
            ("AWS_REGION", "eu-west-1".into()),
            ("AWS_ENDPOINT_URL_ECR", api.uri()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            (
                "AWS_CONFIG_FILE",
                home.path().join("none").display().to_string(),
            ),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                home.path().join("none").display().to_string(),
            ),
        ],
    );
}

/// The GKE metadata server (insists on `Metadata-Flavor: Google`).
struct Metadata(Arc<std::sync::Mutex<Tokens>>);

impl wiremock::Respond for Metadata {
    fn respond(&self, req: &wiremock::Request) -> wiremock::ResponseTemplate {
        let flavour = req
            .headers
            .get("metadata-flavor")
            .and_then(|v| v.to_str().ok());
        if flavour != Some("Google") {
            return wiremock::ResponseTemplate::new(403)
                .set_body_string("Missing Metadata-Flavor:Google header.");
        }
        let mut t = self.0.lock().unwrap();
        let token = t.issue();
        wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": token, "expires_in": t.lifetime_secs, "token_type": "Bearer"}))
    }
}

#[test]
fn a_run_replica_renews_gcp_metadata_tokens_without_a_restart() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tokens = Tokens::new("ya29.metadata");
    let metadata = start_mock(&rt);
    rt.block_on(
        wiremock::Mock::given(wiremock::matchers::path(
            "/computeMetadata/v1/instance/service-accounts/default/token",
        ))
        .respond_with(Metadata(tokens.clone()))
        .mount(&metadata),
    );
    let gcloud = tempfile::tempdir().unwrap();
    cloud_run_survives_token_rotation(
        "gcp-metadata",
        "europe-west1-docker.pkg.dev",
        "oauth2accesstoken",
        &tokens,
        &[
            ("GCE_METADATA_HOST", metadata.address().to_string()),
            ("CLOUDSDK_CONFIG", gcloud.path().display().to_string()),
        ],
    );
}

/// Google's token endpoint: a service-account JWT assertion verified with the key's public key.
struct GoogleToken(
    Arc<std::sync::Mutex<Tokens>>,
    Vec<(String, Vec<u8>)>,
    String,
);

impl wiremock::Respond for GoogleToken {
    fn respond(&self, req: &wiremock::Request) -> wiremock::ResponseTemplate {
        let form: HashMap<String, String> = url::form_urlencoded::parse(&req.body)
            .into_owned()
            .collect();
        let grant_ok =
            form.get("grant_type").map(String::as_str) == Some(ferry_tests::cloud::JWT_BEARER);
        let checked = ferry_tests::cloud::check_assertion(
            &self.1,
            &self.2,
            form.get("assertion")
                .map(String::as_str)
                .unwrap_or_default(),
        );
        if !grant_ok || checked.is_err() {
            return wiremock::ResponseTemplate::new(400).set_body_json(serde_json::json!({
                "error": "invalid_grant", "error_description": format!("{checked:?}")}));
        }
        let mut t = self.0.lock().unwrap();
        let token = t.issue();
        wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": token, "expires_in": t.lifetime_secs, "token_type": "Bearer"}))
    }
}

#[test]
fn a_run_replica_renews_gcp_key_file_tokens_without_a_restart() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tokens = Tokens::new("ya29.keyfile");
    let key = ferry_tests::cloud::new_key("real-k1");
    let oauth = start_mock(&rt);
    let token_uri = format!("{}/token", oauth.uri());
    rt.block_on(
        wiremock::Mock::given(wiremock::matchers::path("/token"))
            .respond_with(GoogleToken(
                tokens.clone(),
                vec![(key.id.clone(), key.public.clone())],
                token_uri.clone(),
            ))
            .mount(&oauth),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key.json");
    ferry_tests::cloud::write_key_file(&file, &key, &token_uri);
    // No metadata server: the key file must be what answers.
    let nowhere = format!("127.0.0.1:{}", free_port());
    cloud_run_survives_token_rotation(
        "gcp-key",
        "europe-west1-docker.pkg.dev",
        "oauth2accesstoken",
        &tokens,
        &[
            ("GOOGLE_APPLICATION_CREDENTIALS", file.display().to_string()),
            ("GCE_METADATA_HOST", nowhere),
        ],
    );
}

// ---- ACR: Entra ID, /oauth2/exchange and the token server in front of the real registry ----

const ACR_HOST: &str = "acme.azurecr.io";
const TENANT: &str = "11111111-2222-3333-4444-555555555555";
const CLIENT: &str = "66666666-7777-8888-9999-000000000000";

/// The fake ACR's chain: each Entra token gives one refresh token, each refresh token access
/// tokens; only the newest of each is accepted (older ones have expired).
#[derive(Default)]
struct Acr {
    /// The federated token Entra accepts (the token file's content).
    assertion: String,
    entra: Vec<String>,
    refresh: Vec<String>,
    access: Vec<String>,
    /// Requests whose form was not what the services document.
    bad_forms: Vec<String>,
}

type Reply = ferry_deploy::server::Reply;

fn form_reply(status: u16, body: Value) -> Reply {
    ferry_deploy::server::reply(
        http::StatusCode::from_u16(status).unwrap(),
        "application/json",
        body.to_string(),
    )
}

impl Acr {
    /// Check `form` against `want`, recording the first mismatch.
    fn form_ok(&mut self, form: &HashMap<String, String>, want: &[(&str, &str)]) -> bool {
        let bad = want
            .iter()
            .find(|(k, v)| form.get(*k).map(String::as_str) != Some(*v));
        if let Some((k, _)) = bad {
            self.bad_forms.push(format!("{k}={:?}", form.get(*k)));
        }
        bad.is_none()
    }

    /// Entra ID's token endpoint, ACR's exchange and token server; `None` for other paths.
    fn token_service(&mut self, path: &str, form: &HashMap<String, String>) -> Option<Reply> {
        let newest = |v: &Vec<String>| v.last().cloned().unwrap_or_default();
        let (want, issued, prefix, field) = match path {
            p if p == format!("/{TENANT}/oauth2/v2.0/token") => (
                vec![
                    ("grant_type", "client_credentials".to_string()),
                    ("client_id", CLIENT.to_string()),
                    (
                        "scope",
                        "https://containerregistry.azure.net/.default".to_string(),
                    ),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string(),
                    ),
                    ("client_assertion", self.assertion.clone()),
                ],
                0,
                "entra",
                "access_token",
            ),
            "/oauth2/exchange" => (
                vec![
                    ("grant_type", "access_token".to_string()),
                    ("service", ACR_HOST.to_string()),
                    ("tenant", TENANT.to_string()),
                    ("access_token", newest(&self.entra)),
                ],
                1,
                "acr-refresh",
                "refresh_token",
            ),
            "/oauth2/token" => (
                vec![
                    ("grant_type", "refresh_token".to_string()),
                    ("service", ACR_HOST.to_string()),
                    ("scope", "repository:relay:pull".to_string()),
                    ("refresh_token", newest(&self.refresh)),
                ],
                2,
                "acr-access",
                "access_token",
            ),
            _ => return None,
        };
        let want: Vec<(&str, &str)> = want.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if !self.form_ok(form, &want) {
            return Some(form_reply(
                401,
                serde_json::json!({"error": "invalid_grant"}),
            ));
        }
        let list = [&mut self.entra, &mut self.refresh, &mut self.access];
        let list = list.into_iter().nth(issued).unwrap();
        let token = format!("{prefix}-{}", list.len() + 1);
        list.push(token.clone());
        Some(form_reply(
            200,
            serde_json::json!({field: token, "expires_in": 4, "token_type": "Bearer"}),
        ))
    }
}

/// Serve the fake ACR on `listener`: token services, then `/v2/` forwarded to the real registry
/// `upstream` for requests bearing the newest access token, a Bearer challenge otherwise.
async fn serve_acr(
    listener: tokio::net::TcpListener,
    upstream: String,
    acr: Arc<std::sync::Mutex<Acr>>,
) {
    let me = format!("http://{}", listener.local_addr().unwrap());
    // Loopback only, whatever proxy the environment names.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let limits = ferry_deploy::server::Limits {
        max_connections: 64,
        header_timeout: Duration::from_secs(10),
    };
    let handler = move |req: http::Request<hyper::body::Incoming>| {
        let (acr, http, upstream, me) = (acr.clone(), http.clone(), upstream.clone(), me.clone());
        async move {
            use http_body_util::BodyExt as _;
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let path = parts.uri.path().to_string();
            let form: HashMap<String, String> =
                url::form_urlencoded::parse(&body).into_owned().collect();
            if let Some(reply) = acr.lock().unwrap().token_service(&path, &form) {
                return reply;
            }
            let sent = parts
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok());
            let newest = acr.lock().unwrap().access.last().cloned();
            if newest.is_none_or(|a| sent != Some(format!("Bearer {a}").as_str())) {
                let mut r = form_reply(
                    401,
                    serde_json::json!({"errors": [{"code": "UNAUTHORIZED"}]}),
                );
                let challenge = format!(
                    r#"Bearer realm="{me}/oauth2/token",service="{ACR_HOST}",scope="repository:relay:pull""#
                );
                r.headers_mut()
                    .insert("www-authenticate", challenge.parse().unwrap());
                return r;
            }
            let uri = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let mut forward = http.request(parts.method.clone(), format!("http://{upstream}{uri}"));
            for (k, v) in &parts.headers {
                if k != "host" && k != "authorization" {
                    forward = forward.header(k, v);
                }
            }
            let answer = forward.body(body).send().await.unwrap();
            let mut reply = http::Response::builder().status(answer.status());
            for (k, v) in answer.headers() {
                if k != "transfer-encoding" && k != "connection" {
                    reply = reply.header(k, v);
                }
            }
            let bytes = answer.bytes().await.unwrap();
            reply.body(http_body_util::Full::new(bytes)).unwrap()
        }
    };
    ferry_deploy::server::serve(
        "fake-acr",
        listener,
        limits,
        std::future::pending(),
        handler,
    )
    .await;
}

#[test]
fn a_run_replica_keeps_pulling_from_acr_across_token_expiry_and_a_rotated_federated_token() {
    let cluster = Cluster::connect();
    let tmp = tempfile::tempdir().unwrap();
    let kc = cluster.ferry_kubeconfig(tmp.path());
    // The real registry is open; only the fake ACR in front of it (the --mirror) lets ferry in.
    let reg = Registry::start();
    let old = real::push(&reg, "relay", "latest", "old");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let acr = Arc::new(std::sync::Mutex::new(Acr {
        assertion: "federated-jwt-1".into(),
        ..Default::default()
    }));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let front = listener.local_addr().unwrap().to_string();
    rt.spawn(serve_acr(listener, reg.addr.clone(), acr.clone()));
    let token_file = tmp.path().join("azure-identity-token");
    std::fs::write(&token_file, "federated-jwt-1").unwrap();

    let ns = cluster.namespace("acr");
    let pinned = format!("{ACR_HOST}/relay:latest@{}", old.digest);
    cluster.apply(&deployment(&ns, "relay", &pinned, "default"));
    let mirror = format!("{ACR_HOST}=http://{front}");
    let (_replica, metrics) = run_replica(
        &kc,
        &front,
        &ns,
        "acr",
        &["--mirror", &mirror],
        &[
            (
                "AZURE_FEDERATED_TOKEN_FILE",
                token_file.display().to_string(),
            ),
            ("AZURE_CLIENT_ID", CLIENT.into()),
            ("AZURE_TENANT_ID", TENANT.into()),
            ("AZURE_AUTHORITY_HOST", format!("http://{front}")),
        ],
    );
    let image = || cluster.template_image(&ns, "deployment", "relay", "app");
    let new = real::push(&reg, "relay", "latest", "new");
    let target = format!("{ACR_HOST}/relay:latest@{}", new.digest);
    wait_until("the first update", Duration::from_secs(60), || {
        image() == target
    });
    // Past the Entra token's 4 s the kubelet rotates the federated token; Entra now takes
    // only the new one, and only the newest chain of tokens gets through.
    std::thread::sleep(Duration::from_secs(5));
    std::fs::write(&token_file, "federated-jwt-2").unwrap();
    let entra_before = {
        let mut a = acr.lock().unwrap();
        a.assertion = "federated-jwt-2".into();
        a.entra.len()
    };
    // Renewed before expiry, by the replica itself, with the rotated file's token.
    wait_until(
        "an Entra login with the rotated federated token",
        Duration::from_secs(60),
        || acr.lock().unwrap().entra.len() > entra_before,
    );
    let newer = real::push(&reg, "relay", "latest", "newer");
    let target = format!("{ACR_HOST}/relay:latest@{}", newer.digest);
    wait_until(
        "an update after the rotation, same process",
        Duration::from_secs(60),
        || image() == target,
    );
    let a = acr.lock().unwrap();
    assert!(a.bad_forms.is_empty(), "{:?}", a.bad_forms);
    let status = status(&metrics);
    let source = status["workloads"][0]["credentials"][0]["source"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(source.contains("azure cloud credentials"), "{status}");
    for secret in a.refresh.iter().chain(&a.access) {
        assert!(!status.to_string().contains(secret.as_str()));
    }
}
