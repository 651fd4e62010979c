//! A real CNCF distribution registry notifies ferry's webhook receiver: a pushed tag arrives as
//! a hint; the pull and blob events it also sends are acknowledged (2xx) and ignored.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::time::Duration;

use ferry_deploy::webhook::{
    Debouncer, ImageHint, Outcome, Receiver, Secret, Source, WebhookConfig, WebhookCounters,
};
use ferry_tests::{Flavor, Registry, RegistryOptions, plain_client, push_image};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const SECRET: &str = "registry-to-ferry";

/// Wait (bounded, so a broken setup fails instead of hanging) until `cond` holds.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..300 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn start_receiver() -> (String, WebhookCounters, mpsc::Receiver<ImageHint>) {
    let (tx, rx) = mpsc::channel(64);
    let receiver = Receiver::new(WebhookConfig::new(Secret::new(SECRET).unwrap()), tx);
    let counters = receiver.counters();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/webhooks/distribution",
        listener.local_addr().unwrap()
    );
    tokio::spawn(receiver.serve(listener, std::future::pending()));
    (url, counters, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_to_a_real_registry_arrives_as_a_hint_and_pulls_are_acknowledged() {
    let (url, counters, rx) = start_receiver().await;
    let reg = Registry::start_with(RegistryOptions {
        notify: Some((url, Some(format!("Bearer {SECRET}")))),
        ..Default::default()
    });
    let client = plain_client(&reg.addr);
    let reference = reg.reference("team/app:v1");
    push_image(
        &client,
        &reference,
        &["linux/amd64"],
        Flavor::Docker,
        true,
        false,
        "w1",
    )
    .await;

    let mut debouncer = Debouncer::new(rx, Duration::from_millis(500));
    let batch = tokio::time::timeout(Duration::from_secs(30), debouncer.next_batch())
        .await
        .expect("no hint from the registry within 30 s")
        .expect("channel open");
    assert_eq!(
        batch,
        vec![ImageHint {
            registry: reg.addr.clone(),
            repository: "team/app".into(),
            tag: Some("v1".into()),
            source: Source::Distribution,
        }]
    );
    assert!(batch[0].matches(&reference));
    // The blob pushes before the manifest were delivered too, and acknowledged.
    eventually("blob push events acknowledged", || {
        counters.get(Source::Distribution, Outcome::Ignored) > 0
    })
    .await;

    let before = counters.get(Source::Distribution, Outcome::Ignored);
    client.manifest(&reference).await.unwrap();
    eventually("the pull event acknowledged", || {
        counters.get(Source::Distribution, Outcome::Ignored) > before
    })
    .await;
    assert_eq!(counters.get(Source::Distribution, Outcome::Accepted), 1);
    for refused in [Outcome::Unauthorized, Outcome::Malformed, Outcome::TooLarge] {
        assert_eq!(
            counters.get(Source::Distribution, refused),
            0,
            "{refused:?}"
        );
    }
    let more = tokio::time::timeout(Duration::from_millis(700), debouncer.next_batch()).await;
    assert!(more.is_err(), "a pull is no push: {more:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_with_the_wrong_secret_is_refused() {
    let (url, counters, mut rx) = start_receiver().await;
    let reg = Registry::start_with(RegistryOptions {
        notify: Some((url, Some("Bearer not-the-secret".into()))),
        ..Default::default()
    });
    let client = plain_client(&reg.addr);
    let reference = reg.reference("team/app:v1");
    push_image(
        &client,
        &reference,
        &["linux/amd64"],
        Flavor::Docker,
        true,
        false,
        "w2",
    )
    .await;
    eventually("a refused delivery", || {
        counters.get(Source::Distribution, Outcome::Unauthorized) > 0
    })
    .await;
    assert!(
        rx.try_recv().is_err(),
        "nothing accepted with a wrong secret"
    );
    assert_eq!(counters.get(Source::Distribution, Outcome::Accepted), 0);
}

/// The snippet of docs/webhooks.md: with blobs and pulls ignored by the registry, only the
/// tagged pushes are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_ignore_rules_leave_only_pushes() {
    let (url, counters, mut rx) = start_receiver().await;
    let reg = Registry::start_with(RegistryOptions {
        notify: Some((url, Some(format!("Bearer {SECRET}")))),
        notify_extra: "      ignoredmediatypes: [\"application/octet-stream\"]\n      ignore:\n        actions: [\"pull\"]\n".into(),
        ..Default::default()
    });
    let client = plain_client(&reg.addr);
    let v1 = reg.reference("team/app:v1");
    push_image(
        &client,
        &v1,
        &["linux/amd64"],
        Flavor::Docker,
        true,
        false,
        "i1",
    )
    .await;
    let first = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.tag.as_deref(), Some("v1"));
    client.manifest(&v1).await.unwrap();
    let v2 = reg.reference("team/app:v2");
    push_image(
        &client,
        &v2,
        &["linux/amd64"],
        Flavor::Docker,
        true,
        false,
        "i2",
    )
    .await;
    let second = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.tag.as_deref(), Some("v2"));
    assert_eq!(counters.get(Source::Distribution, Outcome::Accepted), 2);
    assert_eq!(
        counters.get(Source::Distribution, Outcome::Ignored),
        0,
        "blob and pull events were filtered by the registry"
    );
}
