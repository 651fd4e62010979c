use super::*;
use crate::notify::Event;
use proptest::prelude::*;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn entry(i: u64, event: Event) -> Notification {
    Notification {
        event,
        namespace: "shop".into(),
        kind: "Deployment".into(),
        name: format!("w{i}"),
        container: "app".into(),
        from: "r/a:v1".into(),
        to: "r/a:v2".into(),
        reason: format!("entry {i}"),
        time: at(1_764_417_600 + i),
    }
}

fn sample() -> Status {
    let mut s = Status::new(at(1_764_417_900));
    s.last_pass = Some(at(1_764_417_720));
    s.workloads.push(WorkloadStatus {
        namespace: "shop".into(),
        kind: "Deployment".into(),
        name: "web".into(),
        containers: vec![
            ContainerStatus {
                name: "app".into(),
                policy: "semver:^1.2".into(),
                image: "ghcr.io/o/web:1.2.0@sha256:aaaa".into(),
                last_decision: Some(LastDecision {
                    action: "skip".into(),
                    reason: "soaking: 1.3.0 is 2h old, needs 1d".into(),
                    target: Some("ghcr.io/o/web:1.3.0@sha256:bbbb".into()),
                }),
                soak_remaining_seconds: Some(22 * 3600),
                awaiting_approval: None,
                quarantined: vec!["sha256:dead".into(), "sha256:beef".into()],
            },
            ContainerStatus {
                name: "sidecar".into(),
                policy: "digest".into(),
                image: "ghcr.io/o/proxy:stable".into(),
                last_decision: None,
                awaiting_approval: Some("sha256:cafe".into()),
                ..Default::default()
            },
        ],
        credentials: vec![RegistryCredential {
            registry: "ghcr.io".into(),
            source: "secret shop/regcred (imagePullSecrets of ServiceAccount shop/web)".into(),
        }],
    });
    let mut h = History::default();
    h.push(entry(1, Event::Update));
    h.push(entry(2, Event::Rollback));
    s.recent = h.newest_first();
    s
}

#[test]
fn html_is_a_self_contained_phone_friendly_page() {
    let html = render_html(&sample());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        html.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
    );
    for forbidden in [
        "<script", "src=", "<link", "http://", "https://", "@import", "url(",
    ] {
        assert!(
            !html.contains(forbidden),
            "external asset or script: {forbidden}"
        );
    }
    assert!(html.ends_with("</html>\n"));
}

#[test]
fn html_shows_every_field() {
    let html = render_html(&sample());
    for expected in [
        "data-workload=\"shop/Deployment/web\"",
        "data-container=\"app\"",
        "data-container=\"sidecar\"",
        "semver:^1.2",
        "ghcr.io/o/web:1.2.0@sha256:aaaa",
        "<span class=\"tag skip\">skip</span> soaking: 1.3.0 is 2h old, needs 1d",
        "ghcr.io/o/web:1.3.0@sha256:bbbb",
        "<dt>soak left</dt><dd>22h</dd>",
        "awaiting <code>sha256:cafe</code>",
        "<code>sha256:dead</code><br><code>sha256:beef</code>",
        "not decided yet",
        "last pass <time datetime=\"2025-11-29T12:02:00Z\">2025-11-29T12:02:00Z</time> (3m ago)",
        "1 workloads, 2 containers · 1 awaiting approval · 1 soaking · 2 quarantined digests",
    ] {
        assert!(html.contains(expected), "missing {expected:?} in\n{html}");
    }
    let rollback = html.find("entry 2").unwrap();
    let update = html.find("entry 1").unwrap();
    assert!(rollback < update, "newest first");
    assert!(
        html.contains("<span class=\"tag rollback\">rollback</span> shop/Deployment/w2 <b>app</b>")
    );
}

#[test]
fn html_and_json_show_the_credential_source_per_registry() {
    let s = sample();
    let html = render_html(&s);
    assert!(
        html.contains("credentials for <code>ghcr.io</code></dt><dd>secret shop/regcred (imagePullSecrets of ServiceAccount shop/web)"),
        "{html}"
    );
    let json: serde_json::Value = serde_json::from_str(&render_json(&s)).unwrap();
    assert_eq!(
        json["workloads"][0]["credentials"][0]["registry"],
        "ghcr.io"
    );
    assert!(
        json["workloads"][0]["credentials"][0]["source"]
            .as_str()
            .unwrap()
            .contains("ServiceAccount shop/web")
    );
}

#[test]
fn html_without_workloads_or_passes_says_so() {
    let html = render_html(&Status::new(at(0)));
    assert!(html.contains("no pass yet"));
    assert!(html.contains("No workload has opted in"));
    assert!(html.contains("None yet."));
}

#[test]
fn every_value_is_escaped() {
    let evil = "<script>alert(\"x\")</script>&'";
    let mut s = sample();
    let c = &mut s.workloads[0].containers[0];
    c.name = evil.into();
    c.policy = evil.into();
    c.image = evil.into();
    c.quarantined = vec![evil.into()];
    c.awaiting_approval = Some(evil.into());
    c.last_decision = Some(LastDecision {
        action: evil.into(),
        reason: evil.into(),
        target: Some(evil.into()),
    });
    s.workloads[0].name = evil.into();
    s.recent[0].reason = evil.into();
    s.recent[0].from = evil.into();
    let html = render_html(&s);
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("alert(\"x\")"));
    let escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;";
    // name (twice), workload id (twice), policy, image, action (twice), reason, target,
    // approval, quarantine, recent reason and from.
    assert_eq!(html.matches(escaped).count(), 14, "{html}");
}

#[test]
fn history_keeps_the_newest_entries() {
    let mut h = History::new(3);
    assert!(h.is_empty());
    for i in 0..5 {
        h.push(entry(i, Event::Update));
    }
    assert_eq!(h.len(), 3);
    let names: Vec<String> = h.newest_first().into_iter().map(|n| n.name).collect();
    assert_eq!(names, ["w4", "w3", "w2"]);
    assert_eq!(History::default().capacity, RECENT_LIMIT);
    assert_eq!(History::new(0).capacity, 1);
}

#[test]
fn json_has_the_documented_shape() {
    let v: serde_json::Value = serde_json::from_str(&render_json(&sample())).unwrap();
    assert_eq!(v["generated"], "2025-11-29T12:05:00Z");
    assert_eq!(v["last_pass"], "2025-11-29T12:02:00Z");
    let c = &v["workloads"][0]["containers"][0];
    assert_eq!(c["policy"], "semver:^1.2");
    assert_eq!(c["last_decision"]["action"], "skip");
    assert_eq!(c["soak_remaining_seconds"], 22 * 3600);
    assert_eq!(c["quarantined"][1], "sha256:beef");
    assert_eq!(
        v["workloads"][0]["containers"][1]["awaiting_approval"],
        "sha256:cafe"
    );
    assert_eq!(v["recent"][0]["event"], "rollback");
    assert_eq!(v["recent"][0]["time"], "2025-11-29T12:00:02Z");
    let empty: serde_json::Value = serde_json::from_str(&render_json(&Status::new(at(0)))).unwrap();
    assert!(empty["last_pass"].is_null());
}

#[test]
fn ago_reads_naturally() {
    assert_eq!(ago(at(100), at(100)), "just now");
    assert_eq!(ago(at(100), at(160)), "1m ago");
    assert_eq!(ago(at(100), at(100 + 2 * 86_400 + 3600)), "2d 1h ago");
    assert_eq!(ago(at(200), at(100)), "in 1m");
}

proptest! {
    #[test]
    fn escaped_text_contains_no_markup_characters(s in "\\PC*") {
        let e = escape_html(&s);
        prop_assert!(!e.contains(['<', '>', '"', '\'']));
        // Every '&' starts one of the five entities.
        for (i, _) in e.match_indices('&') {
            let rest = &e[i..];
            prop_assert!(["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].iter().any(|x| rest.starts_with(x)));
        }
        let back = e.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&");
        prop_assert_eq!(back, s);
    }
}

#[test]
fn open_requests_are_listed_and_keep_their_link_while_they_wait() {
    let board = Board::default();
    let request = |url: Option<&str>| OpenRequest {
        workload: "shop/Deployment/web".into(),
        forge: "github".into(),
        branch: "ferry/shop-web".into(),
        url: url.map(String::from),
    };
    let mut s = Status::new(at(1));
    s.pull_requests
        .push(request(Some("https://github.example/o/r/pull/7")));
    board.publish(s, None);
    // The next pass only knows the update waits on the branch: the link is kept.
    let mut s = Status::new(at(2));
    s.pull_requests.push(request(None));
    board.publish(s, None);
    let now = board.snapshot(at(3));
    assert_eq!(
        now.pull_requests,
        [request(Some("https://github.example/o/r/pull/7"))]
    );
    let html = render_html(&now);
    assert!(html.contains("<h2>Open pull requests</h2>"), "{html}");
    assert!(
        html.contains("<a href=\"https://github.example/o/r/pull/7\">"),
        "{html}"
    );
    assert!(render_json(&now).contains("\"branch\": \"ferry/shop-web\""));
    // Merged or closed: the next full pass no longer lists it.
    board.publish(Status::new(at(4)), None);
    let html = render_html(&board.snapshot(at(5)));
    assert!(!html.contains("Open pull requests"), "{html}");
}
