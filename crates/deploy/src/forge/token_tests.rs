//! GitHub App tokens against a fake of GitHub's API that checks the app JWT with the public key.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::*;
use crate::forge::{ForgeSettings, Http};

/// A fresh 2048-bit key made at test time: (PKCS#8 PEM, PKCS#1 PEM, public key DER).
fn test_key() -> (String, String, Vec<u8>) {
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).unwrap();
    let pkcs8 = pkcs8.as_ref().to_vec();
    // PKCS#8 wraps the PKCS#1 key in an OCTET STRING after a fixed 26-byte prefix
    // (SEQUENCE, version 0, the rsaEncryption AlgorithmIdentifier, OCTET STRING header).
    assert_eq!(
        &pkcs8[7..22],
        &[
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05,
            0x00
        ]
    );
    let pkcs1 = pkcs8[26..].to_vec();
    let pem = |label: &str, der: &[u8]| {
        let b64 = STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    };
    let public = key.public_key().as_ref().to_vec();
    (
        pem("PRIVATE KEY", &pkcs8),
        pem("RSA PRIVATE KEY", &pkcs1),
        public,
    )
}

/// Why the fake GitHub refuses a JWT.
#[derive(Debug, PartialEq)]
enum JwtRejected {
    /// Not `header.claims.signature`, or a part is not base64url JSON.
    Malformed,
    /// `alg` is not RS256.
    Alg(Value),
    /// The signature does not verify with the app's public key.
    Signature,
    /// `iss` is not the app id.
    Iss(Value),
    /// `iat`/`exp` outside GitHub's window around now.
    Window { iat: u64, exp: u64, now: u64 },
}

impl std::fmt::Display for JwtRejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtRejected::Malformed => f.write_str("malformed JWT"),
            JwtRejected::Alg(a) => write!(f, "alg {a}"),
            JwtRejected::Signature => f.write_str("bad signature"),
            JwtRejected::Iss(i) => write!(f, "iss {i}"),
            JwtRejected::Window { iat, exp, now } => write!(f, "iat {iat} exp {exp} now {now}"),
        }
    }
}

/// Check a JWT as GitHub does: RS256, signed by `public`, `iss`, `iat`/`exp` around now.
fn check_jwt(jwt: &str, public: &[u8], app_id: u64) -> Result<(), JwtRejected> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, s] = parts[..] else {
        return Err(JwtRejected::Malformed);
    };
    let dec = |p: &str| {
        URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|_| JwtRejected::Malformed)
    };
    let json = |b: Vec<u8>| serde_json::from_slice::<Value>(&b).map_err(|_| JwtRejected::Malformed);
    let header = json(dec(h)?)?;
    let claims = json(dec(c)?)?;
    if header["alg"] != "RS256" {
        return Err(JwtRejected::Alg(header["alg"].clone()));
    }
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public)
        .verify(format!("{h}.{c}").as_bytes(), &dec(s)?)
        .map_err(|_| JwtRejected::Signature)?;
    let now = ferry_core::duration::unix_now();
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap_or(0),
        claims["exp"].as_u64().unwrap_or(0),
    );
    let iss = app_id.to_string();
    if claims["iss"].as_str() != Some(iss.as_str()) {
        return Err(JwtRejected::Iss(claims["iss"].clone()));
    }
    if iat > now || iat + 120 < now || exp <= now || exp > now + 600 {
        return Err(JwtRejected::Window { iat, exp, now });
    }
    Ok(())
}

/// GitHub's token endpoint: checks the JWT, hands out `ghs_1`, `ghs_2`, … expiring in `ttl` s.
struct Exchange {
    public: Vec<u8>,
    ttl: u64,
    count: Arc<AtomicU64>,
}

impl Respond for Exchange {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let jwt = auth.and_then(|a| a.strip_prefix("Bearer ")).unwrap_or("");
        if let Err(why) = check_jwt(jwt, &self.public, 42) {
            return ResponseTemplate::new(401).set_body_json(json!({ "message": why.to_string() }));
        }
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        let at = std::time::UNIX_EPOCH
            + Duration::from_secs(ferry_core::duration::unix_now() + self.ttl);
        ResponseTemplate::new(201).set_body_json(json!({
            "token": format!("ghs_{n}"),
            "expires_at": humantime::format_rfc3339_seconds(at).to_string(),
        }))
    }
}

/// A fake GitHub for app 42, installation 7 of `o/r`; returns the exchange counter.
async fn fake_github(server: &MockServer, public: &[u8], ttl: u64) -> Arc<AtomicU64> {
    let count = Arc::new(AtomicU64::new(0));
    Mock::given(method("GET"))
        .and(path("/repos/o/r/installation"))
        .and(header("x-github-api-version", "2022-11-28"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": 7 })))
        .expect(1)
        .mount(server)
        .await;
    let exchange = Exchange {
        public: public.to_vec(),
        ttl,
        count: count.clone(),
    };
    Mock::given(method("POST"))
        .and(path("/app/installations/7/access_tokens"))
        .and(header("accept", "application/vnd.github+json"))
        .respond_with(exchange)
        .mount(server)
        .await;
    count
}

fn app(server: &MockServer, key_pem: &str, installation: Option<u64>) -> GitHubApp {
    GitHubApp::new(GitHubAppSettings {
        app_id: 42,
        key_pem: key_pem.into(),
        installation,
        api_url: Url::parse(&server.uri()).unwrap(),
        timeout: Duration::from_secs(5),
        refresh_before: Duration::from_secs(300),
    })
    .unwrap()
}

#[test]
fn app_jwt_is_rs256_with_iss_and_a_valid_window_for_both_key_formats() {
    let (pkcs8, pkcs1, public) = test_key();
    for pem in [&pkcs8, &pkcs1] {
        let key = parse_key(pem).unwrap();
        let jwt = app_jwt(&key, 42, ferry_core::duration::unix_now()).unwrap();
        check_jwt(&jwt, &public, 42).unwrap();
        assert!(
            matches!(check_jwt(&jwt, &public, 43), Err(JwtRejected::Iss(_))),
            "iss is checked"
        );
    }
    let other = test_key().2;
    let jwt = app_jwt(
        &parse_key(&pkcs8).unwrap(),
        42,
        ferry_core::duration::unix_now(),
    )
    .unwrap();
    assert_eq!(check_jwt(&jwt, &other, 42), Err(JwtRejected::Signature));
    let old = app_jwt(&parse_key(&pkcs8).unwrap(), 42, 1_000_000).unwrap();
    assert!(matches!(
        check_jwt(&old, &public, 42),
        Err(JwtRejected::Window { .. })
    ));
}

#[test]
fn a_key_that_is_not_pem_rsa_is_refused_without_echoing_it() {
    let e = parse_key("-----BEGIN EC PRIVATE KEY-----\nc2VjcmV0\n-----END EC PRIVATE KEY-----")
        .unwrap_err();
    assert!(matches!(e, Error::GitHubApp { .. }));
    assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
    let e =
        parse_key("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----").unwrap_err();
    assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
}

#[test]
fn app_settings_and_app_debug_hide_the_key() {
    let (pkcs8, _, _) = test_key();
    let s = GitHubAppSettings {
        app_id: 42,
        key_pem: pkcs8.clone(),
        installation: None,
        api_url: Url::parse("https://api.github.com").unwrap(),
        timeout: Duration::from_secs(5),
        refresh_before: Duration::from_secs(300),
    };
    let body = pkcs8.lines().nth(1).unwrap();
    assert!(!format!("{s:?}").contains(body));
    let app = GitHubApp::new(s).unwrap();
    assert!(format!("{app:?}").contains("<redacted>"));
}

#[tokio::test]
async fn installation_is_looked_up_once_and_the_token_cached_until_near_expiry() {
    let (pkcs8, _, public) = test_key();
    let server = MockServer::start().await;
    let count = fake_github(&server, &public, 3600).await;
    let app = app(&server, &pkcs8, None);
    let a = app.token(Some("o/r")).await.unwrap();
    let b = app.token(Some("o/r")).await.unwrap();
    assert_eq!((a.as_deref(), b.as_deref()), (Some("ghs_1"), Some("ghs_1")));
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(app.exchanges(), 1);
}

#[tokio::test]
async fn a_token_within_five_minutes_of_expiry_is_renewed() {
    let (pkcs8, _, public) = test_key();
    let server = MockServer::start().await;
    let count = fake_github(&server, &public, 60).await;
    let app = app(&server, &pkcs8, None);
    assert_eq!(
        app.token(Some("o/r")).await.unwrap().as_deref(),
        Some("ghs_1")
    );
    assert_eq!(
        app.token(Some("o/r")).await.unwrap().as_deref(),
        Some("ghs_2")
    );
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_expired_token_is_renewed_for_the_next_operation() {
    let (pkcs8, _, public) = test_key();
    let server = MockServer::start().await;
    let count = fake_github(&server, &public, 1).await;
    let app = GitHubApp {
        refresh_before: Duration::ZERO,
        ..app(&server, &pkcs8, None)
    };
    assert_eq!(
        app.token(Some("o/r")).await.unwrap().as_deref(),
        Some("ghs_1")
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        app.token(Some("o/r")).await.unwrap().as_deref(),
        Some("ghs_2")
    );
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_jwt_signed_with_another_key_gets_githubs_401() {
    let (_, _, public) = test_key();
    let (other, _, _) = test_key();
    let server = MockServer::start().await;
    let count = fake_github(&server, &public, 3600).await;
    let app = app(&server, &other, Some(7));
    let e = app.token(Some("o/r")).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Forge {
                status: Some(401),
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 0);
    server.reset().await;
}

/// The forge API answers 401 to `ghs_1` and 200 to `ghs_2`.
async fn pulls_refusing_the_first_token(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/repos/o/r/pulls"))
        .and(header("authorization", "Bearer ghs_1"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({ "message": "Bad credentials" })),
        )
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/pulls"))
        .and(header("authorization", "Bearer ghs_2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(server)
        .await;
}

fn http_with(server: &MockServer, app: Arc<GitHubApp>) -> Http {
    let settings = ForgeSettings {
        api_url: Some(Url::parse(&server.uri()).unwrap()),
        github_tokens: Some(app),
        ..Default::default()
    };
    Http::new(Forge::GitHub, Url::parse(&server.uri()).unwrap(), &settings).unwrap()
}

#[tokio::test]
async fn a_401_on_the_forge_api_gets_a_new_installation_token_once() {
    let (pkcs8, _, public) = test_key();
    let server = MockServer::start().await;
    let count = fake_github(&server, &public, 3600).await;
    pulls_refusing_the_first_token(&server).await;
    let app = Arc::new(app(&server, &pkcs8, None));
    let http = http_with(&server, app.clone());
    let url = http.url("repos/o/r/pulls", &[]);
    let got = http.ok(Method::GET, url, None).await.unwrap();
    assert_eq!(got, json!([]));
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_second_401_is_the_answer_not_a_loop() {
    let (pkcs8, _, public) = test_key();
    let server = MockServer::start().await;
    let count = fake_github(&server, &public, 3600).await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/pulls"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({ "message": "Bad credentials" })),
        )
        .expect(2)
        .mount(&server)
        .await;
    let http = http_with(&server, Arc::new(app(&server, &pkcs8, None)));
    let url = http.url("repos/o/r/pulls", &[]);
    let e = http.ok(Method::GET, url, None).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Forge {
                status: Some(401),
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_fixed_token_is_never_renewed() {
    let f = Fixed(Some("t".into()));
    assert_eq!(f.token(None).await.unwrap().as_deref(), Some("t"));
    assert!(!f.refused("t"));
    assert!(!format!("{f:?}").contains("\"t\""));
}

/// Basic credentials of a git https request, decoded (`user:password`).
fn basic(req: &Request) -> Option<String> {
    let v = req.headers.get("authorization")?.to_str().ok()?;
    let b = STANDARD.decode(v.strip_prefix("Basic ")?).ok()?;
    String::from_utf8(b).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_git_connection_sends_a_current_installation_token_as_password() {
    let (pkcs8, _, public) = test_key();
    let server = MockServer::start().await;
    // Tokens within the renewal margin: every connection gets a new one.
    let count = fake_github(&server, &public, 60).await;
    // The git host: the smart-HTTP discovery asks for Basic credentials until it gets some.
    Mock::given(method("GET"))
        .and(path("/o/r.git/info/refs"))
        .and(wiremock::matchers::header_exists("authorization"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/o/r.git/info/refs"))
        .respond_with(
            ResponseTemplate::new(401).insert_header("www-authenticate", "Basic realm=\"git\""),
        )
        .mount(&server)
        .await;
    let auth = crate::gitops::GitAuth {
        user: Some("x-access-token".into()),
        tokens: Some(Arc::new(app(&server, &pkcs8, None))),
        ..Default::default()
    };
    let url = format!("{}/o/r.git", server.uri());
    tokio::task::spawn_blocking(move || {
        for _ in 0..2 {
            let mut remote = git2::Remote::create_detached(url.as_str()).unwrap();
            let cb = crate::gitops::callbacks(&auth);
            // The fake host has no repository: the connection fails after the credentials.
            assert!(
                remote
                    .connect_auth(git2::Direction::Push, Some(cb), None)
                    .is_err()
            );
        }
    })
    .await
    .unwrap();
    let sent: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/o/r.git/info/refs")
        .filter_map(basic)
        .collect();
    assert_eq!(sent, ["x-access-token:ghs_1", "x-access-token:ghs_2"]);
    assert_eq!(count.load(Ordering::SeqCst), 2);
}
