//! The status page in a real headless browser (Debian's `chromium`): served over HTTP on
//! loopback, loaded, its DOM checked for the workload rows and for escaping; a screenshot at a
//! phone's width. With `FERRY_UPDATE_SCREENSHOT=1` the screenshot is also written to
//! `docs/status-page.png`; `FERRY_CHROMIUM` names another Chromium binary than `chromium`.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::path::{Path, PathBuf};

use std::time::{Duration, SystemTime};

use ferry_deploy::notify::{Event, Notification};
use ferry_deploy::status::{
    ContainerStatus, History, LastDecision, Status, WorkloadStatus, render_html, render_json,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use ferry_tests::chromium;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

const NOW: u64 = 1_764_417_600;
const HOSTILE: &str = "<b id=\"injected\">bold</b>";

fn container(name: &str, policy: &str, image: &str) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        policy: policy.into(),
        image: image.into(),
        ..Default::default()
    }
}

fn decision(action: &str, reason: &str, target: Option<&str>) -> Option<LastDecision> {
    Some(LastDecision {
        action: action.into(),
        reason: reason.into(),
        target: target.map(str::to_string),
    })
}

fn sample() -> Status {
    let mut s = Status::new(at(NOW));
    s.last_pass = Some(at(NOW - 42));
    let mut web = container(
        "app",
        "semver:^2",
        "ghcr.io/acme/web:2.3.1@sha256:1f6ddc1b2547",
    );
    web.last_decision = decision(
        "skip",
        "soaking: 2.4.0 was first seen 3h ago, needs 1d",
        Some("ghcr.io/acme/web:2.4.0@sha256:9a1e8cbb2b4a"),
    );
    web.soak_remaining_seconds = Some(21 * 3600);
    let mut proxy = container("envoy", "digest", "envoyproxy/envoy:v1.31-latest");
    proxy.last_decision = decision("none", "up to date", None);
    let mut api = container(
        "api",
        "digest",
        "registry.acme.dev/team/api:main@sha256:3b8f0c0e4a6d",
    );
    api.last_decision = decision(
        "skip",
        "awaiting approval: kubectl annotate deployment/api -n payments ferry.dev/approved=sha256:8e6a4c2f0d9b",
        Some("registry.acme.dev/team/api:main@sha256:8e6a4c2f0d9b"),
    );
    api.awaiting_approval = Some("sha256:8e6a4c2f0d9b".into());
    let mut worker = container(
        "worker",
        "digest",
        "registry.acme.dev/team/worker:main@sha256:c2b1a0f9e8d7",
    );
    worker.last_decision = decision(
        "update",
        "digest of :main changed",
        Some("registry.acme.dev/team/worker:main@sha256:77aa"),
    );
    worker.quarantined = vec!["sha256:dead00beef11".into()];
    s.workloads = vec![
        WorkloadStatus {
            namespace: "shop".into(),
            kind: "Deployment".into(),
            name: "web".into(),
            containers: vec![web, proxy],
            credentials: vec![],
        },
        WorkloadStatus {
            namespace: "payments".into(),
            kind: "Deployment".into(),
            name: "api".into(),
            containers: vec![api],
            credentials: vec![],
        },
        WorkloadStatus {
            namespace: "batch".into(),
            kind: "StatefulSet".into(),
            name: "worker".into(),
            containers: vec![worker],
            credentials: vec![],
        },
    ];
    let mut history = History::default();
    for (i, (event, reason)) in [
        (Event::Update, "digest of :main changed"),
        (Event::Rollback, "rollout not available after 10m"),
        (Event::Quarantine, "sha256:dead00beef11 failed its rollout"),
    ]
    .into_iter()
    .enumerate()
    {
        history.push(Notification {
            event,
            namespace: "batch".into(),
            kind: "StatefulSet".into(),
            name: "worker".into(),
            container: "worker".into(),
            from: "registry.acme.dev/team/worker:main@sha256:c2b1a0f9e8d7".into(),
            to: "registry.acme.dev/team/worker:main@sha256:dead00beef11".into(),
            reason: reason.into(),
            time: at(NOW - 3600 + 60 * i as u64),
        });
    }
    s.recent = history.newest_first();
    s
}

/// Serve `/` and `/status.json` for `status` on loopback; returns the base URL.
async fn serve(status: Status) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let (html, json) = (render_html(&status), render_json(&status));
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]);
                let path = req.split_whitespace().nth(1).unwrap_or("/");
                let (code, ctype, body) = match path {
                    "/" => ("200 OK", "text/html; charset=utf-8", html),
                    "/status.json" => ("200 OK", "application/json", json),
                    _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
                };
                let resp = format!(
                    "HTTP/1.1 {code}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(resp.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    base
}

fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_renders_in_headless_chromium() {
    // The page checked in the DOM carries a hostile value; the screenshot shows the plain one.
    let mut hostile = sample();
    hostile.workloads[2].containers[0].last_decision = decision("update", HOSTILE, None);
    let base = serve(hostile).await;
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().to_path_buf();
    let url = format!("{base}/");
    let dom = {
        let (p, u) = (profile.clone(), url.clone());
        tokio::task::spawn_blocking(move || chromium(&p, &["--dump-dom".into()], &u))
            .await
            .unwrap()
    };
    for expected in [
        "data-workload=\"shop/Deployment/web\"",
        "data-workload=\"payments/Deployment/api\"",
        "data-workload=\"batch/StatefulSet/worker\"",
        "data-container=\"app\"",
        "data-container=\"envoy\"",
        "ghcr.io/acme/web:2.3.1@sha256:1f6ddc1b2547",
        "<dt>soak left</dt><dd>21h</dd>",
        "awaiting <code>sha256:8e6a4c2f0d9b</code>",
        "rollout not available after 10m",
        "3 workloads, 4 containers · 1 awaiting approval · 1 soaking · 1 quarantined digests",
    ] {
        assert!(
            dom.contains(expected),
            "{expected:?} not in the DOM:\n{dom}"
        );
    }
    // The browser parsed the hostile reason as text: no element was injected.
    assert!(!dom.contains("<b id=\"injected\">"), "{dom}");
    assert!(
        dom.contains("&lt;b id=\"injected\"&gt;bold&lt;/b&gt;"),
        "{dom}"
    );

    let url = format!("{}/", serve(sample()).await);
    let shot = profile.join("status-page.png");
    let args = [
        format!("--screenshot={}", shot.display()),
        "--window-size=430,1400".to_string(),
    ];
    tokio::task::spawn_blocking(move || chromium(&profile, &args, &url))
        .await
        .unwrap();
    let png = std::fs::read(&shot).expect("chromium wrote no screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 10_000,
        "suspiciously small screenshot: {} bytes",
        png.len()
    );
    if std::env::var_os("FERRY_UPDATE_SCREENSHOT").is_some() {
        std::fs::write(docs_dir().join("status-page.png"), &png).unwrap();
    }
}

#[tokio::test]
async fn status_json_is_served_with_the_same_data() {
    let base = serve(sample()).await;
    let text = reqwest::get(format!("{base}/status.json"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["workloads"].as_array().unwrap().len(), 3);
    assert_eq!(
        v["workloads"][1]["containers"][0]["awaiting_approval"],
        "sha256:8e6a4c2f0d9b"
    );
    assert_eq!(v["last_pass"], "2025-11-29T11:59:18Z");
    assert_eq!(v["recent"][0]["event"], "quarantine");
}
