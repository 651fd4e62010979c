//! `ferry-registry auth REF` (issue 21): which credential a registry gets, from where, whether it
//! is accepted and when it expires — against a real registry with htpasswd and a wiremock token
//! server, and a GCP key-file login against the real registry; never a secret in any output,
//! even at `FERRY_LOG=trace`.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use ferry_tests::{Registry, RegistryOptions, bin};
use serde_json::Value;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// `ferry-registry --plain-http HOST --docker-config DIR auth --json REF` at `FERRY_LOG=trace`.
fn auth(host: &str, docker_config: &Path, reference: &str, path_env: Option<&Path>) -> Output {
    let mut cmd = Command::new(bin("ferry-registry"));
    cmd.args(["--plain-http", host, "--docker-config"])
        .arg(docker_config)
        .args(["auth", "--json", reference])
        .env("FERRY_LOG", "trace")
        .env_remove("GITHUB_ACTIONS");
    if let Some(p) = path_env {
        let old = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{old}", p.display()));
    }
    cmd.output().unwrap()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr (last 3000 bytes):\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
            .chars()
            .rev()
            .take(3000)
            .collect::<String>()
            .chars()
            .rev()
            .collect::<String>()
    )
}

/// No secret in stdout or stderr, in clear or base64 (`user:pass` as a basic header carries it).
fn assert_no_secret(o: &Output, secrets: &[&str]) {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for s in secrets {
        let b64 = base64::engine::general_purpose::STANDARD.encode(s);
        assert!(!all.contains(s), "secret {s:?} printed:\n{}", show(o));
        assert!(
            !all.contains(&b64),
            "secret {s:?} printed in base64:\n{}",
            show(o)
        );
    }
    assert!(
        o.stderr.len() > 200,
        "trace logging was not on:\n{}",
        show(o)
    );
}

fn config_dir(json: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("config.json"), json).unwrap();
    d
}

#[test]
fn a_config_file_credential_is_named_accepted_or_refused_and_never_printed() {
    let reg = Registry::start_with(RegistryOptions {
        basic_auth: Some(("ferry".into(), "s3cret-pw".into())),
        ..Default::default()
    });
    let reference = format!("{}/private/app:1", reg.addr);
    let good = config_dir(&format!(
        r#"{{"auths":{{"{}":{{"username":"ferry","password":"s3cret-pw"}}}}}}"#,
        reg.addr
    ));
    let o = auth(&reg.addr, good.path(), &reference, None);
    // The tag does not exist: the registry still answered past authentication.
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["accepted"], true, "{v}");
    assert_eq!(v["anonymous"], false);
    assert_eq!(v["scheme"], "basic");
    assert_eq!(v["source"]["kind"], "config-file");
    assert_eq!(v["source"]["key"], reg.addr.as_str());
    assert!(
        v["source"]["origin"]
            .as_str()
            .unwrap()
            .ends_with("config.json")
    );
    assert_eq!(v["token_obtained"], false);
    assert_no_secret(&o, &["s3cret-pw", "ferry:s3cret-pw"]);

    let bad = config_dir(&format!(
        r#"{{"auths":{{"{}":{{"username":"ferry","password":"wr0ng-pw"}}}}}}"#,
        reg.addr
    ));
    let o = auth(&reg.addr, bad.path(), &reference, None);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["accepted"], false, "{v}");
    let refusal = v["refusal"].as_str().unwrap();
    assert!(refusal.contains("config.json"), "{refusal}");
    assert_no_secret(&o, &["wr0ng-pw", "ferry:wr0ng-pw"]);

    // Nothing configured: anonymous, refused, and the answer says where ferry looked.
    let none = tempfile::tempdir().unwrap();
    let o = auth(&reg.addr, none.path(), &reference, None);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["anonymous"], true, "{v}");
    assert!(v["source"].is_null());
    assert!(
        v["refusal"]
            .as_str()
            .unwrap()
            .contains("no credentials were sent"),
        "{v}"
    );
}

#[test]
fn an_open_registry_allows_anonymous_reads() {
    let reg = Registry::start();
    let none = tempfile::tempdir().unwrap();
    let o = auth(&reg.addr, none.path(), &format!("{}/a/b:1", reg.addr), None);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["accepted"].clone(), v["scheme"].clone()),
        (true.into(), "anonymous".into())
    );
    assert_eq!(v["anonymous"], true);
}

#[tokio::test]
async fn a_helper_credential_gets_a_bearer_token_whose_expiry_is_reported() {
    let server = MockServer::start().await;
    let host = server.address().to_string();
    let realm = format!("{}/token", server.uri());
    let basic = base64::engine::general_purpose::STANDARD.encode("robot:helper-pw");
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(header("authorization", format!("Basic {basic}").as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"token": "tok-from-server", "expires_in": 300})),
        )
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .and(path("/v2/acme/app/manifests/1"))
        .and(header("authorization", "Bearer tok-from-server"))
        .respond_with(ResponseTemplate::new(200).insert_header(
            "docker-content-digest",
            "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ))
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .and(path("/v2/acme/app/manifests/1"))
        .respond_with(
            ResponseTemplate::new(401).insert_header(
                "www-authenticate",
                format!(
                    r#"Bearer realm="{realm}",service="fake",scope="repository:acme/app:pull""#
                )
                .as_str(),
            ),
        )
        .mount(&server)
        .await;
    let helpers = tempfile::tempdir().unwrap();
    let helper = helpers.path().join("docker-credential-fake");
    std::fs::write(
        &helper,
        "#!/bin/sh\ncat >/dev/null\necho '{\"Username\":\"robot\",\"Secret\":\"helper-pw\"}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = config_dir(&format!(r#"{{"credHelpers":{{"{host}":"fake"}}}}"#));
    bin("ferry-registry"); // built before the clock starts
    let before = std::time::SystemTime::now();
    let o = auth(
        &host,
        cfg.path(),
        &format!("{host}/acme/app:1"),
        Some(helpers.path()),
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["scheme"], "bearer", "{v}");
    assert_eq!(v["source"]["kind"], "helper");
    assert_eq!(v["source"]["name"], "fake");
    assert_eq!(v["token_obtained"], true);
    let expires = humantime::parse_rfc3339(v["token_expires_at"].as_str().unwrap()).unwrap();
    let left = expires.duration_since(before).unwrap().as_secs();
    assert!((290..=302).contains(&left), "token expires in {left}s");
    assert_no_secret(&o, &["helper-pw", "robot:helper-pw", "tok-from-server"]);
}

#[test]
fn an_unreachable_registry_is_an_operational_error() {
    let none = tempfile::tempdir().unwrap();
    let port = ferry_tests::free_port();
    let host = format!("127.0.0.1:{port}");
    let o = auth(&host, none.path(), &format!("{host}/a/b:1"), None);
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
}

#[tokio::test]
async fn a_gcp_key_file_login_is_named_and_neither_key_token_nor_assertion_is_printed() {
    use ferry_tests::cloud::{check_assertion, new_key, write_key_file};
    const HOST: &str = "europe-west1-docker.pkg.dev";
    const TOKEN: &str = "ya29.c.registry-auth-key-file-token";
    // The real registry takes Basic oauth2accesstoken:<access token>, as Artifact Registry does.
    let reg = Registry::start_with(RegistryOptions {
        basic_auth: Some(("oauth2accesstoken".into(), TOKEN.into())),
        ..Default::default()
    });
    let key = new_key("auth-k1");
    let oauth = MockServer::start().await;
    let token_uri = format!("{}/token", oauth.uri());
    let assertions = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (keys, aud, seen) = (
        vec![(key.id.clone(), key.public.clone())],
        token_uri.clone(),
        assertions.clone(),
    );
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(move |req: &wiremock::Request| {
            let form: std::collections::HashMap<String, String> =
                url::form_urlencoded::parse(&req.body)
                    .into_owned()
                    .collect();
            let jwt = form.get("assertion").cloned().unwrap_or_default();
            seen.lock().unwrap().push(jwt.clone());
            match check_assertion(&keys, &aud, &jwt) {
                Ok(()) => ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"access_token": TOKEN, "expires_in": 3599})),
                Err(why) => ResponseTemplate::new(400).set_body_string(format!("{why:?}")),
            }
        })
        .mount(&oauth)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sa.json");
    write_key_file(&file, &key, &token_uri);
    let o = Command::new(bin("ferry-registry"))
        .args(["--mirror", &format!("{HOST}=http://{}", reg.addr)])
        .args(["auth", "--json", &format!("{HOST}/acme/app:1")])
        .env("DOCKER_CONFIG", dir.path())
        .env("GOOGLE_APPLICATION_CREDENTIALS", &file)
        .env("FERRY_LOG", "trace")
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["accepted"], true, "{v}");
    assert_eq!(v["source"]["provider"], "gcp");
    assert!(
        v["source"]["how"]
            .as_str()
            .unwrap()
            .contains(file.to_str().unwrap())
    );
    let sent = assertions.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let piece = &key.pem[100..160];
    let mut secrets = vec![
        TOKEN,
        "oauth2accesstoken:ya29.c.registry-auth-key-file-token",
        piece,
    ];
    secrets.push(sent[0].as_str());
    assert_no_secret(&o, &secrets);
}
