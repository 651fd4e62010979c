//! What a real registry will not do on demand: missing and lying digest headers, 429 with
//! Retry-After, 5xx, oversized and slow bodies, invalid JSON, the bearer-token dance, paginated
//! tags with nulls, credential helpers. Each served by a wiremock fake on 127.0.0.1.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_core::{Digest, Reference};
use ferry_registry::{
    Client, ClientConfig, Credential, DockerConfig, Error, RetryPolicy, StaticCredentials,
    TagsOptions,
};
use wiremock::matchers::{body_string_contains, header, headers, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod support;
use support::*;

#[tokio::test]
async fn head_without_digest_header_falls_back_to_get_and_hashes() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .and(path("/v2/acme/etl/manifests/latest"))
        .respond_with(ResponseTemplate::new(200).insert_header("content-type", INDEX_TYPE))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/acme/etl/manifests/latest"))
        .and(headers("accept", all_manifest_types()))
        .respond_with(ResponseTemplate::new(200).set_body_raw(INDEX, INDEX_TYPE))
        .expect(1)
        .mount(&server)
        .await;
    let r = client_for(&server)
        .resolve(&reference(&server, "acme/etl"))
        .await
        .unwrap();
    assert_eq!(r.digest, index_digest());
    assert_eq!(r.media_type, INDEX_TYPE);
}

#[tokio::test]
async fn head_sends_all_four_manifest_types_and_reads_rate_limits() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .and(path("/v2/library/python/manifests/3.12"))
        .and(headers("accept", all_manifest_types()))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("docker-content-digest", index_digest().to_string().as_str())
                .insert_header("content-type", INDEX_TYPE)
                .insert_header("ratelimit-limit", "100;w=21600")
                .insert_header("ratelimit-remaining", "42;w=21600"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = client_with(&server, |c| {
        c.mirrors = vec![("docker.io".into(), server.uri())]
    });
    let r = c
        .resolve(&Reference::parse("python:3.12").unwrap())
        .await
        .unwrap();
    assert_eq!(r.digest, index_digest());
    let rl = r.rate_limit.unwrap();
    assert_eq!((rl.limit, rl.remaining), (Some(100), Some(42)));
}

#[tokio::test]
async fn lying_digest_header_is_an_error_never_a_digest() {
    let server = MockServer::start().await;
    let other = Digest::sha256_of(b"something else");
    Mock::given(method("GET"))
        .and(path("/v2/acme/etl/manifests/latest"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(INDEX, INDEX_TYPE)
                .insert_header("docker-content-digest", other.to_string().as_str()),
        )
        .mount(&server)
        .await;
    let e = client_for(&server)
        .inspect(&reference(&server, "acme/etl"))
        .await
        .unwrap_err();
    match e {
        Error::DigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, other);
            assert_eq!(actual, index_digest());
        }
        e => panic!("{e:?}"),
    }
}

#[tokio::test]
async fn body_not_matching_the_requested_digest_is_an_error() {
    let server = MockServer::start().await;
    let wanted = Digest::sha256_of(b"the real one");
    Mock::given(method("GET"))
        .and(path(format!("/v2/acme/etl/manifests/{wanted}")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(INDEX, INDEX_TYPE))
        .mount(&server)
        .await;
    let r = reference(&server, &format!("acme/etl@{wanted}"));
    let e = client_for(&server).manifest(&r).await.unwrap_err();
    assert!(
        matches!(e, Error::DigestMismatch { ref expected, .. } if *expected == wanted),
        "{e:?}"
    );
    // A HEAD that announces another digest than the one asked for is refused too.
    Mock::given(method("HEAD"))
        .and(path(format!("/v2/acme/etl/manifests/{wanted}")))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("docker-content-digest", index_digest().to_string().as_str()),
        )
        .mount(&server)
        .await;
    let e = client_for(&server).resolve(&r).await.unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e:?}");
}

#[tokio::test]
async fn too_many_requests_honours_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("docker-content-digest", index_digest().to_string().as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    let start = Instant::now();
    let r = client_for(&server)
        .resolve(&reference(&server, "a/b"))
        .await
        .unwrap();
    assert_eq!(r.digest, index_digest());
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn retry_after_beyond_the_budget_fails_at_once_reporting_the_headers() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "3600")
                .insert_header("ratelimit-limit", "100;w=21600")
                .insert_header("ratelimit-remaining", "0;w=21600"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let e = client_for(&server)
        .resolve(&reference(&server, "a/b"))
        .await
        .unwrap_err();
    match &e {
        Error::RateLimited {
            retry_after,
            rate_limit,
            ..
        } => {
            assert_eq!(*retry_after, Some(Duration::from_secs(3600)));
            assert_eq!(rate_limit.as_ref().unwrap().remaining, Some(0));
        }
        e => panic!("{e:?}"),
    }
    assert!(e.to_string().contains("remaining 0 of 100"), "{e}");
}

#[tokio::test]
async fn service_unavailable_is_retried_then_reported() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .and(path("/v2/flaky/x/manifests/latest"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .and(path("/v2/flaky/x/manifests/latest"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("docker-content-digest", index_digest().to_string().as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .and(path("/v2/down/x/manifests/latest"))
        .respond_with(ResponseTemplate::new(503))
        .expect(4)
        .mount(&server)
        .await;
    let c = client_for(&server);
    assert_eq!(
        c.resolve(&reference(&server, "flaky/x"))
            .await
            .unwrap()
            .digest,
        index_digest()
    );
    let e = c.resolve(&reference(&server, "down/x")).await.unwrap_err();
    assert!(matches!(e, Error::Status { status: 503, .. }), "{e:?}");
    assert!(e.is_transient() && !e.is_negative());
}

#[tokio::test]
async fn oversized_manifest_is_refused() {
    let server = MockServer::start().await;
    let big = format!(
        "{{\"schemaVersion\":2,\"manifests\":[],\"pad\":\"{}\"}}",
        "x".repeat(5 * 1024 * 1024)
    );
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(big, INDEX_TYPE))
        .mount(&server)
        .await;
    let e = client_for(&server)
        .manifest(&reference(&server, "a/b"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::TooLarge { limit: 4194304, .. }), "{e:?}");
}

#[tokio::test]
async fn slow_answers_hit_the_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(INDEX, INDEX_TYPE)
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let c = client_with(&server, |c| {
        c.timeout = Duration::from_millis(300);
        c.retry.max_attempts = 2;
    });
    let e = c.manifest(&reference(&server, "a/b")).await.unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        2,
        "timeouts are retried"
    );
}

#[tokio::test]
async fn invalid_json_and_unknown_media_types_are_errors() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/bad/json/manifests/latest"))
        .respond_with(ResponseTemplate::new(200).set_body_raw("{not json", INDEX_TYPE))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/bad/type/manifests/latest"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"schemaVersion":2,"mediaType":"application/x-weird"}"#,
            "application/x-weird",
        ))
        .mount(&server)
        .await;
    let c = client_for(&server);
    let e = c
        .manifest(&reference(&server, "bad/json"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Invalid {
                what: "manifest",
                ..
            }
        ),
        "{e:?}"
    );
    let e = c
        .manifest(&reference(&server, "bad/type"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("application/x-weird"), "{e}");
}

async fn mount_bearer_registry(server: &MockServer, token_expect: u64, challenge_expect: u64) {
    let realm = format!("{}/token", server.uri());
    Mock::given(method("HEAD"))
        .and(path("/v2/acme/etl/manifests/latest"))
        .and(header("authorization", "Bearer tok-1"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("docker-content-digest", index_digest().to_string().as_str()),
        )
        .mount(server)
        .await;
    Mock::given(method("HEAD"))
        .and(path("/v2/acme/etl/manifests/latest"))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "www-authenticate",
            format!(r#"Bearer realm="{realm}",service="fake-registry",scope="repository:acme/etl:pull""#).as_str(),
        ))
        .expect(challenge_expect)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(query_param("service", "fake-registry"))
        .and(query_param("scope", "repository:acme/etl:pull"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(r#"{"token":"tok-1","expires_in":1}"#),
        )
        .expect(token_expect)
        .mount(server)
        .await;
}

#[tokio::test]
async fn one_challenge_and_one_token_serve_many_parallel_queries() {
    let server = MockServer::start().await;
    mount_bearer_registry(&server, 1, 1).await;
    let c = client_for(&server);
    let r = reference(&server, "acme/etl");
    let all = futures::future::join_all((0..25).map(|_| c.resolve(&r))).await;
    for res in all {
        assert_eq!(res.unwrap().digest, index_digest());
    }
    // expires_in below 60 counts as 60: still cached a moment later.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    c.resolve(&r).await.unwrap();
}

#[tokio::test]
async fn token_server_gets_basic_credentials_and_secrets_stay_out_of_debug() {
    let server = MockServer::start().await;
    let realm = format!("{}/token", server.uri());
    Mock::given(method("GET"))
        .and(path("/v2/p/q/tags/list"))
        .and(header("authorization", "Bearer private-token"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"name":"p/q","tags":["a"]}"#))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/p/q/tags/list"))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "www-authenticate",
            format!(r#"Bearer realm="{realm}",service="svc""#).as_str(),
        ))
        .mount(&server)
        .await;
    // base64("me:hunter2")
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(header("authorization", "Basic bWU6aHVudGVyMg=="))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"access_token":"private-token","expires_in":300}"#),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut m = HashMap::new();
    m.insert(
        host(&server),
        Credential::Basic {
            username: "me".into(),
            password: "hunter2".into(),
        },
    );
    let c = client_with(&server, |c| c.credentials = Arc::new(StaticCredentials(m)));
    let tags = c
        .tags(&reference(&server, "p/q"), &TagsOptions::default())
        .await
        .unwrap();
    assert_eq!(tags, vec!["a"]);
    let dbg = format!("{c:?}");
    assert!(
        !dbg.contains("hunter2") && !dbg.contains("private-token"),
        "{dbg}"
    );
}

#[tokio::test]
async fn refused_credentials_and_missing_credentials_are_clear_errors() {
    let server = MockServer::start().await;
    let realm = format!("{}/token", server.uri());
    Mock::given(method("HEAD"))
        .and(path("/v2/bearer/x/manifests/latest"))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "www-authenticate",
            format!(r#"Bearer realm="{realm}""#).as_str(),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_string(r#"{"details":"incorrect username or password"}"#),
        )
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .and(path("/v2/basic/x/manifests/latest"))
        .respond_with(
            ResponseTemplate::new(401).insert_header("www-authenticate", r#"Basic realm="r""#),
        )
        .mount(&server)
        .await;
    let c = client_for(&server);
    let e = c
        .resolve(&reference(&server, "bearer/x"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    assert!(
        e.to_string().contains("incorrect username or password"),
        "{e}"
    );
    let c = client_for(&server);
    let e = c.resolve(&reference(&server, "basic/x")).await.unwrap_err();
    assert!(
        e.to_string().contains("no user/password is configured"),
        "{e}"
    );
}

#[tokio::test]
async fn identity_tokens_use_the_oauth2_refresh_grant() {
    let server = MockServer::start().await;
    mount_bearer_registry(&server, 0, 1).await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=my-refresh"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"access_token":"tok-1","expires_in":300}"#),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut m = HashMap::new();
    m.insert(
        host(&server),
        Credential::IdentityToken("my-refresh".into()),
    );
    let c = client_with(&server, |c| c.credentials = Arc::new(StaticCredentials(m)));
    assert_eq!(
        c.resolve(&reference(&server, "acme/etl"))
            .await
            .unwrap()
            .digest,
        index_digest()
    );
}

#[cfg(unix)]
#[tokio::test]
async fn credential_helper_answer_reaches_the_token_server() {
    use std::os::unix::fs::PermissionsExt;
    let server = MockServer::start().await;
    let realm = format!("{}/token", server.uri());
    Mock::given(method("HEAD"))
        .and(header("authorization", "Bearer helper-token"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("docker-content-digest", index_digest().to_string().as_str()),
        )
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "www-authenticate",
            format!(r#"Bearer realm="{realm}",service="s""#).as_str(),
        ))
        .mount(&server)
        .await;
    // base64("helper-user:helper-secret")
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(header(
            "authorization",
            "Basic aGVscGVyLXVzZXI6aGVscGVyLXNlY3JldA==",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"token":"helper-token"}"#))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let helper = dir.path().join("docker-credential-fake");
    std::fs::write(
        &helper,
        "#!/bin/sh\nread s\necho '{\"ServerURL\":\"'$s'\",\"Username\":\"helper-user\",\"Secret\":\"helper-secret\"}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = DockerConfig::from_json(
        format!(r#"{{"credHelpers":{{"{}":"fake"}}}}"#, host(&server)).as_bytes(),
    )
    .unwrap()
    .with_helper_dir(dir.path());
    let c = client_with(&server, |c| c.credentials = Arc::new(cfg));
    assert_eq!(
        c.resolve(&reference(&server, "any/repo"))
            .await
            .unwrap()
            .digest,
        index_digest()
    );
}

#[tokio::test]
async fn tag_pages_are_followed_and_nulls_skipped() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/r/tags/list"))
        .and(query_param("last", "b"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"name":"r","tags":["c",null,"sha256-abc"]}"#),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/r/tags/list"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"name":"r","tags":["a","b"]}"#)
                .insert_header("link", r#"</v2/r/tags/list?last=b&n=2>; rel="next""#),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/loop/tags/list"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"name":"loop","tags":null}"#)
                .insert_header("link", r#"</v2/loop/tags/list>; rel="next""#),
        )
        .mount(&server)
        .await;
    let c = client_for(&server);
    let tags = c
        .tags(&reference(&server, "r"), &TagsOptions::default())
        .await
        .unwrap();
    assert_eq!(tags, vec!["a", "b", "c", "sha256-abc"]);
    let e = c
        .tags(&reference(&server, "loop"), &TagsOptions::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("loops"), "{e}");
}

#[tokio::test]
async fn connection_refused_is_an_operational_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let c = Client::new(ClientConfig {
        plain_http: vec![addr.clone()],
        retry: RetryPolicy {
            max_attempts: 2,
            ..fast_retry()
        },
        ..Default::default()
    })
    .unwrap();
    let e = c
        .resolve(&Reference::parse(&format!("{addr}/a/b")).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    assert!(!e.is_negative());
}

#[tokio::test]
async fn token_requests_go_through_the_one_retry_loop_and_report_their_own_method() {
    let server = MockServer::start().await;
    mount_bearer_registry(&server, 0, 1).await;
    // The refresh grant is a POST: a failing token server is retried like any request, and the
    // final error names POST (the old loop said GET).
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(503).set_body_string("token server down"))
        .expect(4)
        .mount(&server)
        .await;
    let mut m = HashMap::new();
    m.insert(
        host(&server),
        Credential::IdentityToken("my-refresh".into()),
    );
    let c = client_with(&server, |c| c.credentials = Arc::new(StaticCredentials(m)));
    let e = c
        .resolve(&reference(&server, "acme/etl"))
        .await
        .unwrap_err();
    match &e {
        Error::Status {
            method,
            status,
            url,
            ..
        } => {
            assert_eq!((method.as_str(), *status), ("POST", 503));
            assert!(url.ends_with("/token"), "{url}");
        }
        e => panic!("{e:?}"),
    }
    assert!(e.is_transient());
}

#[tokio::test]
async fn token_server_rate_limits_are_retried_like_any_request() {
    let server = MockServer::start().await;
    mount_bearer_registry(&server, 1, 1).await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let r = client_for(&server)
        .resolve(&reference(&server, "acme/etl"))
        .await
        .unwrap();
    assert_eq!(r.digest, index_digest());
}
