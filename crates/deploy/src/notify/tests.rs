use super::*;
use std::collections::BTreeSet;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn sample(event: Event) -> Notification {
    Notification {
        event,
        namespace: "shop".into(),
        kind: "Deployment".into(),
        name: "web".into(),
        container: "app".into(),
        from: "ghcr.io/o/web:v1@sha256:aaaa".into(),
        to: "ghcr.io/o/web:v2@sha256:bbbb".into(),
        reason: "semver <2: v2 > v1 & newest".into(),
        time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_417_600),
    }
}

fn config(urls: Vec<Url>, format: Format) -> NotifierConfig {
    NotifierConfig {
        timeout: Duration::from_millis(300),
        backoff: Duration::from_millis(10),
        ..NotifierConfig::new(urls, format)
    }
}

fn url(server: &MockServer, p: &str) -> Url {
    format!("{}{p}", server.uri()).parse().unwrap()
}

#[test]
fn json_body_has_exactly_the_nine_fields() {
    let body: serde_json::Value =
        serde_json::from_str(&sample(Event::Rollback).body(Format::Json)).unwrap();
    let keys: BTreeSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = [
        "event",
        "namespace",
        "kind",
        "name",
        "container",
        "from",
        "to",
        "reason",
        "time",
    ]
    .into();
    assert_eq!(keys, expected);
    assert_eq!(body["event"], "rollback");
    assert_eq!(body["time"], "2025-11-29T12:00:00Z");
    assert_eq!(body["from"], "ghcr.io/o/web:v1@sha256:aaaa");
    assert_eq!(body["reason"], "semver <2: v2 > v1 & newest");
}

#[test]
fn slack_body_is_escaped_text() {
    let body: serde_json::Value =
        serde_json::from_str(&sample(Event::Update).body(Format::Slack)).unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1);
    assert_eq!(
        body["text"],
        "ferry updated deployment/web in shop, container app: ghcr.io/o/web:v1@sha256:aaaa → \
         ghcr.io/o/web:v2@sha256:bbbb (semver &lt;2: v2 &gt; v1 &amp; newest)"
    );
    let mut failure = sample(Event::Failure);
    failure.from.clear();
    failure.container.clear();
    assert_eq!(
        failure.text(),
        "ferry failed to update deployment/web in shop: ghcr.io/o/web:v2@sha256:bbbb (semver <2: v2 > v1 & newest)"
    );
}

#[test]
fn format_parses_exactly() {
    assert_eq!("slack".parse::<Format>().unwrap(), Format::Slack);
    assert_eq!("json".parse::<Format>().unwrap(), Format::Json);
    assert_eq!(Format::default(), Format::Json);
    let err = "Slack".parse::<Format>().unwrap_err().to_string();
    assert!(
        err.contains("\"Slack\"") && err.contains("slack or json"),
        "{err}"
    );
    assert_eq!(Format::Slack.to_string(), "slack");
}

#[tokio::test]
async fn delivers_json_and_slack_shapes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    for (format, p) in [(Format::Json, "/json"), (Format::Slack, "/slack")] {
        let n = Notifier::new(config(vec![url(&server, p)], format)).unwrap();
        n.send(sample(Event::Quarantine));
        let counters = n.counters();
        n.close().await;
        assert_eq!(counters.sent(), 1);
    }
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    let json: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(requests[0].url.path(), "/json");
    assert_eq!(json["event"], "quarantine");
    assert_eq!(json["name"], "web");
    assert_eq!(requests[0].headers["content-type"], "application/json");
    let slack: serde_json::Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!(requests[1].url.path(), "/slack");
    assert!(
        slack["text"]
            .as_str()
            .unwrap()
            .starts_with("ferry quarantined an image of deployment/web")
    );
}

#[tokio::test]
async fn retries_on_500_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(path("/hook"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .with_priority(2)
        .mount(&server)
        .await;
    let n = Notifier::new(config(vec![url(&server, "/hook")], Format::Json)).unwrap();
    n.send(sample(Event::Update));
    let counters = n.counters();
    n.close().await;
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    assert_eq!((counters.sent(), counters.failed()), (1, 0));
}

#[tokio::test]
async fn gives_up_after_the_last_try_and_does_not_retry_a_4xx() {
    let server = MockServer::start().await;
    Mock::given(path("/down"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    Mock::given(path("/gone"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let n = Notifier::new(config(
        vec![url(&server, "/down"), url(&server, "/gone")],
        Format::Json,
    ))
    .unwrap();
    n.send(sample(Event::Failure));
    let counters = n.counters();
    n.close().await;
    let requests = server.received_requests().await.unwrap();
    let count = |p: &str| requests.iter().filter(|r| r.url.path() == p).count();
    assert_eq!(count("/down"), 3, "three tries");
    assert_eq!(count("/gone"), 1, "a 404 is final");
    assert_eq!((counters.sent(), counters.failed()), (0, 2));
}

#[tokio::test]
async fn a_hanging_receiver_delays_neither_the_caller_nor_other_receivers() {
    let server = MockServer::start().await;
    Mock::given(path("/hang"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3600)))
        .mount(&server)
        .await;
    Mock::given(path("/ok"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let mut cfg = config(
        vec![url(&server, "/hang"), url(&server, "/ok")],
        Format::Json,
    );
    cfg.attempts = 2;
    let n = Notifier::new(cfg).unwrap();
    // `send` is synchronous and only queues: it cannot wait for a receiver.
    n.send(sample(Event::Update));
    n.send(sample(Event::Rollback));
    let counters = n.counters();
    // Each request to /hang is cut by the 300 ms timeout; close() therefore returns.
    n.close().await;
    assert_eq!(counters.sent(), 2, "both reached /ok");
    assert_eq!(counters.failed(), 2, "both timed out at /hang");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        requests.iter().filter(|r| r.url.path() == "/hang").count(),
        4
    );
}

#[tokio::test]
async fn a_full_queue_drops_and_counts() {
    let server = MockServer::start().await;
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let mut cfg = config(vec![url(&server, "/slow")], Format::Json);
    cfg.queue = 1;
    let n = Notifier::new(cfg).unwrap();
    // On this single-threaded test runtime the worker cannot run between these calls, so the
    // queue of one holds the first message and the other four are dropped.
    for _ in 0..5 {
        n.send(sample(Event::Update));
    }
    let counters = n.counters();
    assert_eq!(counters.dropped(), 4);
    n.close().await;
    assert_eq!(counters.sent(), 1);
    let mut out = String::new();
    counters.render_prometheus(&mut out);
    assert!(
        out.contains("ferry_notifications_total{result=\"dropped\"} 4\n"),
        "{out}"
    );
    assert!(
        out.contains("ferry_notifications_total{result=\"sent\"} 1\n"),
        "{out}"
    );
}

#[tokio::test]
async fn without_urls_everything_is_discarded() {
    let n = Notifier::new(NotifierConfig::new(vec![], Format::Json)).unwrap();
    n.send(sample(Event::Update));
    let c = n.counters();
    n.close().await;
    assert_eq!((c.sent(), c.failed(), c.dropped()), (0, 0, 0));
}

#[test]
fn urls_are_logged_without_their_token() {
    let u: Url = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
        .parse()
        .unwrap();
    assert_eq!(redacted(&u), "https://hooks.slack.com");
}
