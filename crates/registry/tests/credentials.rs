//! One client, several credentials: `Client::with_credentials` handles against one fake
//! registry whose token server hands each credential its own token.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use ferry_core::Digest;
use ferry_registry::{Credential, StaticCredentials};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod support;
use support::*;

fn basic(user: &str, pass: &str) -> String {
    let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {enc}")
}

fn store(server: &MockServer, user: &str, pass: &str) -> Arc<StaticCredentials> {
    let mut m = HashMap::new();
    m.insert(
        host(server),
        Credential::Basic {
            username: user.into(),
            password: pass.into(),
        },
    );
    Arc::new(StaticCredentials(m))
}

/// The digest the fake registry answers to a request carrying `token`.
fn digest_for(token: &str) -> Digest {
    Digest::sha256_of(token.as_bytes())
}

/// A registry that answers each token with its own digest (so a test sees which token a
/// request carried) and one token server that gives namespace A's secret `tok-a`, B's `tok-b`
/// and anonymous callers `tok-anon`: A's and B's exactly once, anonymous `anon_tokens` times. One
/// challenge in all.
async fn registry_with_three_identities(anon_tokens: u64) -> MockServer {
    let server = MockServer::start().await;
    let realm = format!("{}/token", server.uri());
    for tok in ["tok-a", "tok-b", "tok-anon"] {
        Mock::given(method("HEAD"))
            .and(path("/v2/team/app/manifests/1"))
            .and(header("authorization", format!("Bearer {tok}").as_str()))
            .respond_with(ResponseTemplate::new(200).insert_header(
                "docker-content-digest",
                digest_for(tok).to_string().as_str(),
            ))
            .mount(&server)
            .await;
    }
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "www-authenticate",
            format!(r#"Bearer realm="{realm}",service="fake""#).as_str(),
        ))
        .expect(1)
        .with_priority(10)
        .mount(&server)
        .await;
    for (user, pass, tok) in [("a", "secret-a", "tok-a"), ("b", "secret-b", "tok-b")] {
        Mock::given(method("GET"))
            .and(path("/token"))
            .and(header("authorization", basic(user, pass).as_str()))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_string(format!(r#"{{"token":"{tok}","expires_in":300}}"#)),
            )
            .expect(1)
            .with_priority(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(r#"{"token":"tok-anon","expires_in":300}"#),
        )
        .expect(anon_tokens)
        .with_priority(10)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn each_credential_gets_and_uses_its_own_token_and_anonymous_reuses_neither() {
    let server = registry_with_three_identities(1).await;
    let client = client_for(&server);
    let r = reference(&server, "team/app:1");
    let (store_a, store_b) = (
        store(&server, "a", "secret-a"),
        store(&server, "b", "secret-b"),
    );
    let a = client.with_credentials(store_a.clone());
    let b = client.with_credentials(store_b.clone());
    assert_eq!(a.resolve(&r).await.unwrap().digest, digest_for("tok-a"));
    assert_eq!(b.resolve(&r).await.unwrap().digest, digest_for("tok-b"));
    assert_eq!(
        client.resolve(&r).await.unwrap().digest,
        digest_for("tok-anon")
    );
    // Many more calls, in parallel, from the same handles and from fresh handles made the way a
    // controller makes them on its next pass: no new challenge, no new token (the mocks'
    // expectations are checked when the server drops).
    let next_pass_a = client.with_credentials(store(&server, "a", "secret-a"));
    let calls = (0..10).flat_map(|_| {
        [
            (&a, "tok-a"),
            (&next_pass_a, "tok-a"),
            (&b, "tok-b"),
            (&client, "tok-anon"),
        ]
    });
    let results = futures::future::join_all(calls.map(|(c, tok)| {
        let r = r.clone();
        async move { (c.resolve(&r).await.unwrap().digest, digest_for(tok)) }
    }))
    .await;
    for (got, want) in results {
        assert_eq!(got, want);
    }
    let dbg = format!("{a:?} {b:?} {next_pass_a:?}");
    assert!(
        !dbg.contains("secret-a") && !dbg.contains("secret-b") && !dbg.contains("tok-a"),
        "{dbg}"
    );
}

#[tokio::test]
async fn a_handle_without_credentials_for_a_registry_falls_back_to_the_clients_own() {
    let server = registry_with_three_identities(0).await;
    // The client itself holds A's secret; a handle whose store knows only another registry
    // presents A's credential here, and so shares A's token.
    let client = client_with(&server, |c| {
        c.credentials = store(&server, "a", "secret-a");
    });
    let mut elsewhere = HashMap::new();
    elsewhere.insert(
        "other.example".to_string(),
        Credential::Basic {
            username: "x".into(),
            password: "y".into(),
        },
    );
    let h = client.with_credentials(Arc::new(StaticCredentials(elsewhere)));
    let r = reference(&server, "team/app:1");
    assert_eq!(
        client.resolve(&r).await.unwrap().digest,
        digest_for("tok-a")
    );
    assert_eq!(h.resolve(&r).await.unwrap().digest, digest_for("tok-a"));
    // B's handle layered on top wins over the client's own credential.
    let b = h.with_credentials(store(&server, "b", "secret-b"));
    assert_eq!(b.resolve(&r).await.unwrap().digest, digest_for("tok-b"));
}
