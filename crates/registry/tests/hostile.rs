//! Hostile numbers from servers: token lifetimes, `Retry-After` values and counts that would
//! overflow a clock or an addition. The client must neither panic nor wait past its budget.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::time::{Duration, SystemTime};

use ferry_registry::{Error, RetryPolicy};
use proptest::prelude::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod support;
use support::*;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

async fn requests_to(server: &MockServer, p: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == p)
        .count()
}

/// A registry answering HEADs with the index digest once a bearer token is sent, whose token
/// server hands out `tok` with the given raw JSON `expires_in`.
async fn bearer_registry(expires_in: &str) -> MockServer {
    let server = MockServer::start().await;
    let realm = format!("{}/token", server.uri());
    Mock::given(method("HEAD"))
        .and(wiremock::matchers::header("authorization", "Bearer tok"))
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
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(format!(r#"{{"token":"tok","expires_in":{expires_in}}}"#)),
        )
        .mount(&server)
        .await;
    server
}

fn hostile_expires_in() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        Just(u64::MAX.to_string()),
        Just("18446744073709551616".to_string()),
        Just("1e300".to_string()),
        Just("-1".to_string()),
        Just(i64::MIN.to_string()),
        Just("0.5".to_string()),
        Just(r#""forever""#.to_string()),
        Just("null".to_string()),
        "[1-9][0-9]{20,200}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_token_lifetime_gives_a_usable_cached_token_without_panicking(expires_in in hostile_expires_in()) {
        block_on(async {
            let server = bearer_registry(&expires_in).await;
            let c = client_for(&server);
            let r = reference(&server, "a/b");
            for _ in 0..3 {
                assert_eq!(c.resolve(&r).await.unwrap().digest, index_digest());
            }
            // Every lifetime counts as at least a minute: one token serves all three queries.
            assert_eq!(requests_to(&server, "/token").await, 1, "expires_in {expires_in}");
        });
    }

    #[test]
    fn a_huge_retry_after_after_an_earlier_retry_fails_at_once_reporting_it(
        seconds in prop_oneof!["[1-9][0-9]{2,18}", "[1-9][0-9]{19,60}"],
    ) {
        block_on(async {
            let server = MockServer::start().await;
            // A first transient failure, so the client has already waited when the 429 comes.
            Mock::given(method("HEAD"))
                .respond_with(ResponseTemplate::new(503))
                .up_to_n_times(1)
                .mount(&server)
                .await;
            Mock::given(method("HEAD"))
                .respond_with(ResponseTemplate::new(429).insert_header("retry-after", seconds.as_str()))
                .mount(&server)
                .await;
            let e = client_for(&server).resolve(&reference(&server, "a/b")).await.unwrap_err();
            let want = seconds.parse::<u64>().unwrap_or(u64::MAX);
            match &e {
                Error::RateLimited { retry_after, .. } => {
                    assert_eq!(*retry_after, Some(Duration::from_secs(want)));
                }
                e => panic!("{e:?}"),
            }
            // More than the 10 s budget: no sleep, no third request.
            assert_eq!(server.received_requests().await.unwrap().len(), 2);
        });
    }
}

#[tokio::test]
async fn a_retry_after_date_far_in_the_future_fails_at_once() {
    let server = MockServer::start().await;
    let far =
        httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_799));
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", far.as_str()))
        .mount(&server)
        .await;
    let e = client_for(&server)
        .resolve(&reference(&server, "a/b"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::RateLimited { retry_after: Some(d), .. } if d > Duration::from_secs(86_400 * 365)),
        "{e:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_total_wait_budget_bounds_the_number_of_retries() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    // Each backoff is 20..=40 ms; a 100 ms budget fits between 2 and 5 of them, whatever the
    // jitter: 3..=6 requests, never the 50 attempts allowed.
    let c = client_with(&server, |c| {
        c.retry = RetryPolicy {
            max_attempts: 50,
            base_delay: Duration::from_millis(40),
            max_delay: Duration::from_millis(40),
            max_total_wait: Duration::from_millis(100),
        }
    });
    let e = c.resolve(&reference(&server, "a/b")).await.unwrap_err();
    assert!(matches!(e, Error::Status { status: 503, .. }), "{e:?}");
    let n = server.received_requests().await.unwrap().len();
    assert!((3..=6).contains(&n), "{n} requests");
}

#[tokio::test]
async fn retry_after_waits_count_against_the_budget() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .mount(&server)
        .await;
    // One 1 s wait fits in 1.5 s; a second would not: two requests, then the 429 is reported.
    let c = client_with(&server, |c| {
        c.retry.max_attempts = 10;
        c.retry.max_total_wait = Duration::from_millis(1500);
    });
    let e = c.resolve(&reference(&server, "a/b")).await.unwrap_err();
    assert!(matches!(e, Error::RateLimited { .. }), "{e:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn an_index_with_too_many_children_is_refused_before_fetching_them() {
    let server = MockServer::start().await;
    let entry = r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":10,"platform":{"architecture":"amd64","os":"linux"}}"#;
    let entries = vec![entry; 1001].join(",");
    let index =
        format!(r#"{{"schemaVersion":2,"mediaType":"{INDEX_TYPE}","manifests":[{entries}]}}"#);
    Mock::given(method("GET"))
        .and(path("/v2/a/b/manifests/latest"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(index, INDEX_TYPE))
        .mount(&server)
        .await;
    let c = client_for(&server);
    let r = reference(&server, "a/b");
    let e = c.created(&r).await.unwrap_err();
    assert!(e.to_string().contains("at most 1000"), "{e}");
    let dst = reference(&server, "a/c:copy");
    let e = c.copy(&r, &dst).await.unwrap_err();
    assert!(e.to_string().contains("at most 1000"), "{e}");
    // Two top-level GETs, no child fetched.
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}
