use super::*;
use http_body_util::Full;
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "s3cret-value";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/webhooks/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn hint(source: Source, registry: &str, repository: &str, tag: Option<&str>) -> ImageHint {
    ImageHint {
        registry: registry.into(),
        repository: repository.into(),
        tag: tag.map(str::to_string),
        source,
    }
}

fn receiver(capacity: usize) -> (Receiver, mpsc::Receiver<ImageHint>) {
    let (tx, rx) = mpsc::channel(capacity);
    let mut config = WebhookConfig::new(Secret::new(SECRET).unwrap());
    config.header_timeout = Duration::from_millis(300);
    config.body_timeout = Duration::from_millis(300);
    (Receiver::new(config, tx), rx)
}

fn request(path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Request<Full<Bytes>> {
    let mut b = Request::builder().method("POST").uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::from(body))).unwrap()
}

const BEARER: (&str, &str) = ("authorization", "Bearer s3cret-value");

// ---- payloads ----

#[test]
fn distribution_push_gives_only_the_tagged_manifest() {
    let hints = parse_payload(
        Source::Distribution,
        &fixture("distribution-push.json"),
        None,
    );
    assert_eq!(
        hints.unwrap(),
        vec![hint(
            Source::Distribution,
            "registry.example.com",
            "team/api",
            Some("v1.4.0")
        )]
    );
}

#[test]
fn distribution_pull_is_ignored() {
    let hints = parse_payload(
        Source::Distribution,
        &fixture("distribution-pull.json"),
        None,
    );
    assert_eq!(hints.unwrap(), vec![]);
}

#[test]
fn distribution_push_without_host_is_malformed() {
    let body =
        br#"{"events":[{"action":"push","target":{"repository":"a/b","tag":"v1"},"request":{}}]}"#;
    let err = parse_payload(Source::Distribution, body, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("request.host"), "{err}");
    assert!(parse_payload(Source::Distribution, br#"{"event":[]}"#, None).is_err());
}

#[test]
fn dockerhub_push() {
    let hints = parse_payload(Source::DockerHub, &fixture("dockerhub-push.json"), None);
    assert_eq!(
        hints.unwrap(),
        vec![hint(
            Source::DockerHub,
            "docker.io",
            "example/webapp",
            Some("2.7.1")
        )]
    );
    // An official image's repo_name gets library/ like `docker pull nginx` does.
    let body = br#"{"push_data":{"tag":"1.27"},"repository":{"repo_name":"nginx"}}"#;
    assert_eq!(
        parse_payload(Source::DockerHub, body, None).unwrap()[0].repository,
        "library/nginx"
    );
}

#[test]
fn github_registry_package_uses_package_url() {
    let hints = parse_payload(
        Source::GitHub,
        &fixture("github-registry-package-published.json"),
        Some("registry_package"),
    );
    assert_eq!(
        hints.unwrap(),
        vec![hint(
            Source::GitHub,
            "ghcr.io",
            "octo-org/api",
            Some("v2.0.1")
        )]
    );
}

#[test]
fn github_package_without_url_falls_back_to_owner_and_name() {
    let hints = parse_payload(
        Source::GitHub,
        &fixture("github-package-published.json"),
        Some("package"),
    );
    assert_eq!(
        hints.unwrap(),
        vec![hint(
            Source::GitHub,
            "ghcr.io",
            "octo-org/worker",
            Some("main")
        )]
    );
}

#[test]
fn github_ping_untagged_and_non_container_are_ignored() {
    let ping = parse_payload(Source::GitHub, &fixture("github-ping.json"), Some("ping"));
    assert_eq!(ping.unwrap(), vec![]);
    let untagged = br#"{"action":"published","package":{"name":"x","package_type":"container","owner":{"login":"o"},"package_version":{"container_metadata":{"tag":{"name":""}}}}}"#;
    assert_eq!(
        parse_payload(Source::GitHub, untagged, Some("package")).unwrap(),
        vec![]
    );
    let npm = br#"{"action":"published","package":{"name":"x","package_type":"npm","owner":{"login":"o"},"package_version":{"container_metadata":{"tag":{"name":"v1"}}}}}"#;
    assert_eq!(
        parse_payload(Source::GitHub, npm, Some("package")).unwrap(),
        vec![]
    );
    assert!(parse_payload(Source::GitHub, b"not json", Some("ping")).is_err());
}

#[test]
fn harbor_push_gives_one_hint_per_tag_and_pull_is_ignored() {
    let hints = parse_payload(Source::Harbor, &fixture("harbor-push-artifact.json"), None);
    assert_eq!(
        hints.unwrap(),
        vec![
            hint(
                Source::Harbor,
                "harbor.example.com",
                "library/nginx",
                Some("1.25.3")
            ),
            hint(
                Source::Harbor,
                "harbor.example.com",
                "library/nginx",
                Some("stable")
            ),
        ]
    );
    let pull = parse_payload(Source::Harbor, &fixture("harbor-pull-artifact.json"), None);
    assert_eq!(pull.unwrap(), vec![]);
    assert!(parse_payload(Source::Harbor, br#"{"type":"PUSH_ARTIFACT"}"#, None).is_err());
}

#[test]
fn generic_image_with_and_without_tag() {
    let hints = parse_payload(Source::Generic, &fixture("generic.json"), None);
    assert_eq!(
        hints.unwrap(),
        vec![hint(
            Source::Generic,
            "registry.example.com:5000",
            "team/batch",
            Some("nightly")
        )]
    );
    let no_tag = parse_payload(Source::Generic, br#"{"image":"ghcr.io/o/r"}"#, None).unwrap();
    assert_eq!(no_tag, vec![hint(Source::Generic, "ghcr.io", "o/r", None)]);
    let err = parse_payload(Source::Generic, br#"{"image":"Bad/Name:x"}"#, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("lowercase"), "{err}");
    assert!(parse_payload(Source::Generic, br#"{"img":"a"}"#, None).is_err());
}

#[test]
fn hints_normalize_like_references() {
    let h = ImageHint::new(Source::Generic, "index.docker.io", "nginx", Some("1")).unwrap();
    assert_eq!(
        (h.registry.as_str(), h.repository.as_str()),
        ("docker.io", "library/nginx")
    );
    let h = ImageHint::new(Source::Generic, "Registry-1.Docker.io", "a/b", None).unwrap();
    assert_eq!(h.registry, "docker.io");
    let h = ImageHint::new(Source::Generic, "https://ghcr.io/octo-org", "o/r", None).unwrap();
    assert_eq!(h.registry, "ghcr.io");
    // A host that is no domain by distribution's rules is kept; it can match no workload.
    let h = ImageHint::new(Source::Distribution, "registry", "a/b", Some("v1")).unwrap();
    assert_eq!(
        (h.registry.as_str(), h.repository.as_str()),
        ("registry", "a/b")
    );
    assert!(!h.matches(&Reference::parse("registry/a/b:v1").unwrap()));
    assert!(ImageHint::new(Source::Generic, "", "a", None).is_err());
    assert!(ImageHint::new(Source::Generic, "ghcr.io", "UPPER", None).is_err());
    assert!(ImageHint::new(Source::Generic, "ghcr.io", "a", Some("bad tag")).is_err());
}

#[test]
fn matches_compares_registry_and_repository_not_tag() {
    let h = hint(
        Source::Harbor,
        "harbor.example.com",
        "library/nginx",
        Some("1.25.3"),
    );
    assert!(h.matches(&Reference::parse("harbor.example.com/library/nginx:1.24").unwrap()));
    assert!(!h.matches(&Reference::parse("nginx:1.25.3").unwrap()));
    assert!(!h.matches(&Reference::parse("harbor.example.com/library/nginx2").unwrap()));
    assert_eq!(
        h.to_string(),
        "harbor.example.com/library/nginx:1.25.3 (from harbor)"
    );
}

proptest! {
    #[test]
    fn parse_payload_never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        for s in Source::ALL {
            let _ = parse_payload(s, &body, None);
            let _ = parse_payload(s, &body, Some("package"));
        }
    }

    #[test]
    fn parse_payload_never_panics_on_arbitrary_field_values(
        repo in "\\PC{0,40}", tag in "\\PC{0,20}", host in "\\PC{0,30}", action in "(push|pull|delete|\\PC{0,6})"
    ) {
        let dist = serde_json::json!({"events":[{"action":action,"target":{"repository":repo,"tag":tag},"request":{"host":host}}]});
        let _ = parse_payload(Source::Distribution, dist.to_string().as_bytes(), None);
        let hub = serde_json::json!({"push_data":{"tag":tag},"repository":{"repo_name":repo}});
        let _ = parse_payload(Source::DockerHub, hub.to_string().as_bytes(), None);
        let harbor = serde_json::json!({"type":"PUSH_ARTIFACT","event_data":{"resources":[{"tag":tag,"resource_url":host}],"repository":{"repo_full_name":repo}}});
        let _ = parse_payload(Source::Harbor, harbor.to_string().as_bytes(), None);
        let generic = serde_json::json!({"image": format!("{host}/{repo}:{tag}")});
        let _ = parse_payload(Source::Generic, generic.to_string().as_bytes(), None);
    }

    #[test]
    fn a_hint_from_a_valid_reference_matches_that_reference(
        host in "(ghcr\\.io|localhost:5000|r\\.example\\.com|docker\\.io)",
        repo in "[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}",
        tag in "[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}",
    ) {
        let r = Reference::parse(&format!("{host}/{repo}:{tag}")).unwrap();
        let h = ImageHint::new(Source::Generic, &host, &repo, Some(&tag)).unwrap();
        prop_assert!(h.matches(&r));
        prop_assert_eq!(h.tag.as_deref(), Some(tag.as_str()));
    }
}

// ---- secrets ----

#[test]
fn secret_debug_is_redacted_and_empty_is_refused() {
    let s = Secret::new("  hunter2\n").unwrap();
    assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
    assert!(!format!("{:?}", WebhookConfig::new(s.clone())).contains("hunter2"));
    assert!(
        s.matches(b"hunter2"),
        "trailing newline of the file is trimmed"
    );
    let err = Secret::new(" \n").unwrap_err().to_string();
    assert!(err.contains("webhook secret is empty"), "{err}");
}

#[test]
fn secret_compare_is_exact_for_prefixes_lengths_and_case() {
    let s = Secret::new(SECRET).unwrap();
    assert!(s.matches(SECRET.as_bytes()));
    for wrong in [
        "",
        "s3cret",
        "s3cret-valuE",
        "s3cret-value ",
        "s3cret-value-and-more",
        "x",
    ] {
        assert!(!s.matches(wrong.as_bytes()), "{wrong:?}");
    }
}

#[test]
fn github_signature_valid_and_invalid() {
    let s = Secret::new("It's a Secret to Everybody").unwrap();
    let body = b"Hello, World!";
    // GitHub's documented test vector for X-Hub-Signature-256.
    let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(s.github_signature(body), expected);
    assert!(s.verify_github_signature(body, expected));
    assert!(!s.verify_github_signature(b"Hello, World?", expected));
    assert!(!s.verify_github_signature(body, &expected.replace("sha256=", "sha1=")));
    assert!(!s.verify_github_signature(body, "sha256=zz"));
    assert!(!s.verify_github_signature(body, "sha256=757107"));
    assert!(!s.verify_github_signature(body, ""));
    assert!(!s.verify_github_signature(body, "sha256=é"));
    let other = Secret::new("another secret").unwrap();
    assert!(!other.verify_github_signature(body, expected));
}

// ---- status codes through handle() ----

async fn status_of(r: &Receiver, req: Request<Full<Bytes>>) -> StatusCode {
    r.handle(req).await.status()
}

#[tokio::test]
async fn bearer_endpoints_answer_401_202_200_400() {
    let (r, mut rx) = receiver(16);
    for (path, push, ignored) in [
        (
            "/webhooks/distribution",
            "distribution-push.json",
            Some("distribution-pull.json"),
        ),
        (
            "/webhooks/harbor",
            "harbor-push-artifact.json",
            Some("harbor-pull-artifact.json"),
        ),
        ("/webhooks/generic", "generic.json", None),
    ] {
        let body = fixture(push);
        assert_eq!(
            status_of(&r, request(path, &[], body.clone())).await,
            401,
            "{path}"
        );
        let wrong = ("authorization", "Bearer nope");
        assert_eq!(
            status_of(&r, request(path, &[wrong], body.clone())).await,
            401
        );
        let basic = ("authorization", "Basic czNjcmV0LXZhbHVl");
        assert_eq!(
            status_of(&r, request(path, &[basic], body.clone())).await,
            401
        );
        let lower = ("authorization", "bearer s3cret-value");
        assert_eq!(
            status_of(&r, request(path, &[lower], body.clone())).await,
            202
        );
        assert!(rx.try_recv().is_ok());
        while rx.try_recv().is_ok() {}
        assert_eq!(
            status_of(&r, request(path, &[BEARER], b"{".to_vec())).await,
            400
        );
        if let Some(ignored) = ignored {
            let s = status_of(&r, request(path, &[BEARER], fixture(ignored))).await;
            assert_eq!(s, 200, "{path}");
            assert!(rx.try_recv().is_err(), "an ignored event sends no hint");
        }
    }
    let c = r.counters();
    assert_eq!(c.get(Source::Distribution, Outcome::Unauthorized), 3);
    assert_eq!(c.get(Source::Harbor, Outcome::Accepted), 1);
    assert_eq!(c.get(Source::Harbor, Outcome::Ignored), 1);
    assert_eq!(c.get(Source::Generic, Outcome::Malformed), 1);
}

#[tokio::test]
async fn dockerhub_token_in_query() {
    let (r, mut rx) = receiver(4);
    let body = fixture("dockerhub-push.json");
    let s = status_of(&r, request("/webhooks/dockerhub", &[], body.clone())).await;
    assert_eq!(s, 401);
    let s = status_of(
        &r,
        request("/webhooks/dockerhub?token=wrong", &[], body.clone()),
    )
    .await;
    assert_eq!(s, 401);
    // The bearer header is not how Docker Hub authenticates.
    let s = status_of(&r, request("/webhooks/dockerhub", &[BEARER], body.clone())).await;
    assert_eq!(s, 401);
    let s = status_of(
        &r,
        request("/webhooks/dockerhub?x=1&token=s3cret%2Dvalue", &[], body),
    )
    .await;
    assert_eq!(s, 202);
    assert_eq!(rx.try_recv().unwrap().repository, "example/webapp");
    let s = status_of(
        &r,
        request(
            "/webhooks/dockerhub?token=s3cret-value",
            &[],
            b"[]".to_vec(),
        ),
    )
    .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn github_signature_decides() {
    let (r, mut rx) = receiver(4);
    let body = fixture("github-registry-package-published.json");
    let secret = Secret::new(SECRET).unwrap();
    let sig = secret.github_signature(&body);
    let event = ("x-github-event", "registry_package");
    let s = status_of(&r, request("/webhooks/github", &[event], body.clone())).await;
    assert_eq!(s, 401, "no signature");
    let bad = Secret::new("other").unwrap().github_signature(&body);
    let s = status_of(
        &r,
        request(
            "/webhooks/github",
            &[event, ("x-hub-signature-256", &bad)],
            body.clone(),
        ),
    )
    .await;
    assert_eq!(s, 401, "signature with another secret");
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    let s = status_of(
        &r,
        request(
            "/webhooks/github",
            &[event, ("x-hub-signature-256", &sig)],
            tampered,
        ),
    )
    .await;
    assert_eq!(s, 401, "body changed after signing");
    let s = status_of(
        &r,
        request(
            "/webhooks/github",
            &[event, ("x-hub-signature-256", &sig)],
            body,
        ),
    )
    .await;
    assert_eq!(s, 202);
    assert_eq!(rx.try_recv().unwrap().repository, "octo-org/api");
    let ping = fixture("github-ping.json");
    let ping_sig = secret.github_signature(&ping);
    let s = status_of(
        &r,
        request(
            "/webhooks/github",
            &[
                ("x-github-event", "ping"),
                ("x-hub-signature-256", &ping_sig),
            ],
            ping,
        ),
    )
    .await;
    assert_eq!(s, 200);
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let (r, rx) = receiver(4);
    let big = vec![b' '; MAX_BODY_BYTES + 1];
    // Declared length over the limit.
    let len = big.len().to_string();
    let s = status_of(
        &r,
        request(
            "/webhooks/generic",
            &[BEARER, ("content-length", &len)],
            big.clone(),
        ),
    )
    .await;
    assert_eq!(s, 413);
    // No declared length: counted while reading.
    let s = status_of(&r, request("/webhooks/generic", &[BEARER], big.clone())).await;
    assert_eq!(s, 413);
    // Exactly the limit is fine (and then malformed: spaces are no JSON object).
    let s = status_of(
        &r,
        request("/webhooks/generic", &[BEARER], big[1..].to_vec()),
    )
    .await;
    assert_eq!(s, 400);
    // An unauthenticated oversized body is refused for the secret first.
    let s = status_of(&r, request("/webhooks/generic", &[], big.clone())).await;
    assert_eq!(s, 401);
    // GitHub needs the body to check the signature: 413 before that.
    let sig = Secret::new(SECRET).unwrap().github_signature(&big);
    let s = status_of(
        &r,
        request("/webhooks/github", &[("x-hub-signature-256", &sig)], big),
    )
    .await;
    assert_eq!(s, 413);
    assert_eq!(r.counters().get(Source::Generic, Outcome::TooLarge), 2);
    assert_eq!(r.counters().get(Source::GitHub, Outcome::TooLarge), 1);
    drop(rx);
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let (r, _rx) = receiver(4);
    let s = status_of(&r, request("/webhooks/quay", &[BEARER], b"{}".to_vec())).await;
    assert_eq!(s, 404);
    let s = status_of(
        &r,
        request("/webhooks/generic/x", &[BEARER], b"{}".to_vec()),
    )
    .await;
    assert_eq!(s, 404);
    let get = Request::builder()
        .method("GET")
        .uri("/webhooks/generic")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = r.handle(get).await;
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()[header::ALLOW], "POST");
}

#[tokio::test]
async fn full_or_closed_channel_answers_503() {
    let (r, rx) = receiver(1);
    let body = fixture("generic.json");
    assert_eq!(
        status_of(&r, request("/webhooks/generic", &[BEARER], body.clone())).await,
        202
    );
    let resp = r
        .handle(request("/webhooks/generic", &[BEARER], body.clone()))
        .await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
    drop(rx);
    assert_eq!(
        status_of(&r, request("/webhooks/generic", &[BEARER], body)).await,
        503
    );
    assert_eq!(r.counters().get(Source::Generic, Outcome::Busy), 2);
}

#[test]
fn counters_render_every_label_pair() {
    let c = WebhookCounters::default();
    c.record(Source::GitHub, Outcome::Accepted);
    c.record(Source::GitHub, Outcome::Accepted);
    c.record(Source::DockerHub, Outcome::Unauthorized);
    let mut out = String::from("# existing\n");
    c.render_prometheus(&mut out);
    assert!(out.starts_with("# existing\n# HELP ferry_webhooks_total "));
    assert!(out.contains("# TYPE ferry_webhooks_total counter\n"));
    assert!(out.contains("ferry_webhooks_total{source=\"github\",result=\"accepted\"} 2\n"));
    assert!(out.contains("ferry_webhooks_total{source=\"dockerhub\",result=\"unauthorized\"} 1\n"));
    assert!(out.contains("ferry_webhooks_total{source=\"harbor\",result=\"too_large\"} 0\n"));
    let samples = out
        .lines()
        .filter(|l| l.starts_with("ferry_webhooks_total{"))
        .count();
    assert_eq!(samples, Source::ALL.len() * Outcome::ALL.len());
}

// ---- debouncer (paused time) ----

#[tokio::test(start_paused = true)]
async fn debouncer_batches_within_the_window() {
    let (tx, rx) = mpsc::channel(16);
    let mut d = Debouncer::new(rx, Duration::from_secs(1));
    let a = hint(Source::Generic, "ghcr.io", "o/a", Some("v1"));
    let b = hint(Source::Generic, "ghcr.io", "o/b", Some("v1"));
    let c = hint(Source::Generic, "ghcr.io", "o/c", None);
    let start = tokio::time::Instant::now();
    let keep_open = tx.clone();
    let sender = {
        let (a, b, c) = (a.clone(), b.clone(), c.clone());
        tokio::spawn(async move {
            tx.send(b.clone()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(400)).await;
            tx.send(a.clone()).await.unwrap();
            tx.send(b).await.unwrap();
            tokio::time::sleep(Duration::from_millis(1100)).await;
            tx.send(c).await.unwrap();
        })
    };
    let first = d.next_batch().await.unwrap();
    assert_eq!(first, vec![a, b], "sorted, duplicates merged");
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "closed one window after the first hint"
    );
    let second = d.next_batch().await.unwrap();
    assert_eq!(second, vec![c]);
    assert_eq!(start.elapsed(), Duration::from_millis(2500));
    sender.await.unwrap();
    drop(keep_open);
    assert_eq!(d.next_batch().await, None, "senders gone, nothing pending");
}

#[tokio::test(start_paused = true)]
async fn debouncer_keeps_hints_when_a_call_is_cancelled() {
    let (tx, rx) = mpsc::channel(16);
    let mut d = Debouncer::new(rx, Duration::from_secs(2));
    let a = hint(Source::Generic, "ghcr.io", "o/a", Some("v1"));
    tx.send(a.clone()).await.unwrap();
    let cancelled = tokio::time::timeout(Duration::from_millis(500), d.next_batch()).await;
    assert!(cancelled.is_err(), "still inside the window");
    let start = tokio::time::Instant::now();
    assert_eq!(d.next_batch().await.unwrap(), vec![a]);
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(1500),
        "the window was not restarted"
    );
    drop(tx);
    assert_eq!(d.next_batch().await, None);
}

#[tokio::test(start_paused = true)]
async fn debouncer_flushes_pending_hints_when_senders_go() {
    let (tx, rx) = mpsc::channel(16);
    let mut d = Debouncer::new(rx, Duration::from_secs(60));
    let a = hint(Source::Generic, "ghcr.io", "o/a", None);
    tx.send(a.clone()).await.unwrap();
    drop(tx);
    assert_eq!(d.next_batch().await.unwrap(), vec![a]);
    assert_eq!(d.next_batch().await, None);
}

// ---- over real sockets ----

async fn start_server(r: Receiver) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(r.serve(listener, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

async fn read_all(stream: &mut tokio::net::TcpStream) -> String {
    let mut out = Vec::new();
    // The generous outer bound only keeps a broken server from hanging the test.
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn serves_http_with_keep_alive() {
    let (r, mut rx) = receiver(8);
    let (addr, _stop) = start_server(r).await;
    let client = reqwest::Client::new();
    for _ in 0..2 {
        let resp = client
            .post(format!("http://{addr}/webhooks/generic"))
            .bearer_auth(SECRET)
            .body(fixture("generic.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
    }
    assert_eq!(rx.recv().await.unwrap().repository, "team/batch");
    let resp = client
        .post(format!("http://{addr}/webhooks/generic"))
        .body(fixture("generic.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer realm=\"ferry\"");
}

#[tokio::test]
async fn oversized_body_over_a_socket_gets_a_readable_413() {
    let (r, _rx) = receiver(8);
    let (addr, _stop) = start_server(r).await;
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/webhooks/distribution"))
        .bearer_auth(SECRET)
        .body(vec![b'x'; 2 * MAX_BODY_BYTES])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
}

#[tokio::test]
async fn a_client_that_never_sends_headers_is_disconnected() {
    let (r, _rx) = receiver(8);
    let (addr, _stop) = start_server(r).await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /webhooks/generic HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // header_timeout (300 ms) cuts the connection: read_to_end reaches EOF.
    let got = read_all(&mut s).await;
    assert!(!got.contains("202"), "{got}");
    let mut buf = [0u8; 1];
    assert_eq!(s.read(&mut buf).await.unwrap(), 0, "closed by the server");
}

#[tokio::test]
async fn a_body_that_never_completes_gets_408() {
    let (r, _rx) = receiver(8);
    let (addr, _stop) = start_server(r).await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"POST /webhooks/generic HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret-value\r\nContent-Length: 100\r\n\r\n{\"image\":",
    )
    .await
    .unwrap();
    let got = read_all(&mut s).await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
}

#[tokio::test]
async fn shutdown_stops_accepting() {
    let (r, _rx) = receiver(8);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(r.serve(listener, async move {
        let _ = stopped.await;
    }));
    stop.send(()).unwrap();
    server.await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let (r, mut rx) = receiver(8);
    let (addr, _stop) = start_server(r).await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = fixture("generic.json");
    let head = format!(
        "POST /webhooks/generic HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SECRET}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body).await.unwrap();
    // The answer arrives, then the connection stays idle until header_timeout closes it.
    let got = read_all(&mut s).await;
    assert!(got.starts_with("HTTP/1.1 202"), "{got}");
    assert!(
        !got.contains("connection: close"),
        "kept alive first: {got}"
    );
    assert_eq!(rx.recv().await.unwrap().tag.as_deref(), Some("nightly"));
}

#[tokio::test]
async fn an_inactive_receiver_answers_pushes_503_and_still_acknowledges_the_rest() {
    let (r, mut rx) = receiver(4);
    let clone = r.clone();
    clone.set_active(false);
    let push = request(
        "/webhooks/distribution",
        &[BEARER],
        fixture("distribution-push.json"),
    );
    let resp = r.handle(push).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
    assert!(rx.try_recv().is_err());
    let pull = request(
        "/webhooks/distribution",
        &[BEARER],
        fixture("distribution-pull.json"),
    );
    assert_eq!(status_of(&r, pull).await, 200);
    let wrong = request(
        "/webhooks/distribution",
        &[],
        fixture("distribution-push.json"),
    );
    assert_eq!(status_of(&r, wrong).await, 401);
    r.set_active(true);
    let push = request(
        "/webhooks/distribution",
        &[BEARER],
        fixture("distribution-push.json"),
    );
    assert_eq!(status_of(&r, push).await, 202);
    assert!(rx.try_recv().is_ok());
}
