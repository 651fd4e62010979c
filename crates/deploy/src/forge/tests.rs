//! Forge clients against wiremock fakes of the GitHub and GitLab REST APIs (their documented
//! requests and answers: `Link` pages, 422/409 for an existing request, rate-limit headers).

use std::time::{Duration, Instant};

use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

fn settings(server: &MockServer, max_wait: Duration) -> ForgeSettings {
    ForgeSettings {
        api_url: Some(Url::parse(&server.uri()).unwrap()),
        token: Some("t0ken".into()),
        github_tokens: None,
        timeout: Duration::from_secs(5),
        max_wait,
    }
}

fn github(server: &MockServer) -> github::GitHub {
    let s = settings(server, Duration::from_secs(5));
    github::GitHub::new(Http::new(Forge::GitHub, s.api_url.clone().unwrap(), &s).unwrap())
}

fn gitlab(server: &MockServer) -> gitlab::GitLab {
    let s = settings(server, Duration::from_secs(5));
    gitlab::GitLab::new(Http::new(Forge::GitLab, s.api_url.clone().unwrap(), &s).unwrap())
}

fn new_request() -> NewRequest {
    NewRequest {
        head: "ferry/shop-web".into(),
        base: "main".into(),
        title: "ferry: shop/Deployment/web app: 1.0.0 → 1.1.0".into(),
        body: "evidence\n<!-- ferry-deploy\nworkload=shop/Deployment/web container=app digest=sha256:bb\n-->".into(),
    }
}

fn pr(number: u64, head: &str, state: &str, body: &str) -> serde_json::Value {
    json!({"number": number, "html_url": format!("https://github.example/o/r/pull/{number}"),
           "state": state, "merged_at": null, "head": {"ref": head}, "base": {"ref": "main"},
           "title": "t", "body": body})
}

#[tokio::test]
async fn github_opens_a_pull_request_with_the_documented_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/pulls"))
        .and(query_param("head", "o:ferry/shop-web"))
        .and(query_param("state", "open"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/o/r/pulls"))
        .and(header("authorization", "Bearer t0ken"))
        .and(header("x-github-api-version", "2022-11-28"))
        .and(body_partial_json(
            json!({"head": "ferry/shop-web", "base": "main"}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(pr(
            7,
            "ferry/shop-web",
            "open",
            "x",
        )))
        .expect(1)
        .mount(&server)
        .await;
    let (r, done) = ensure(&github(&server), "o/r", &new_request())
        .await
        .unwrap();
    assert_eq!(done, Ensured::Opened);
    assert_eq!((r.number, r.state), (7, State::Open));
    assert_eq!(r.url, "https://github.example/o/r/pull/7");
}

#[tokio::test]
async fn github_422_for_an_existing_request_finds_and_updates_it() {
    let server = MockServer::start().await;
    // The first listing misses it (opened meanwhile); the POST says it exists.
    Mock::given(method("GET"))
        .and(path("/repos/o/r/pulls"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/o/r/pulls"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "message": "Validation Failed",
            "errors": [{"resource": "PullRequest", "code": "custom",
                        "message": "A pull request already exists for o:ferry/shop-web."}],
            "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/pulls"))
        .and(query_param("head", "o:ferry/shop-web"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([pr(
            9,
            "ferry/shop-web",
            "open",
            "old"
        )])))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/o/r/pulls/9"))
        .and(body_partial_json(json!({"title": new_request().title})))
        .respond_with(ResponseTemplate::new(200).set_body_json(pr(
            9,
            "ferry/shop-web",
            "open",
            "new",
        )))
        .expect(1)
        .mount(&server)
        .await;
    let (r, done) = ensure(&github(&server), "o/r", &new_request())
        .await
        .unwrap();
    assert_eq!((r.number, done), (9, Ensured::Updated));
}

#[tokio::test]
async fn github_listing_follows_link_pages_and_supersede_closes_only_ferrys_other_requests() {
    let server = MockServer::start().await;
    let mine =
        "<!-- ferry-deploy\nworkload=shop/Deployment/web container=app digest=sha256:aa\n-->";
    let next = format!(
        "<{}/repos/o/r/pulls?state=open&per_page=100&page=2>; rel=\"next\", <{}/repos/o/r/pulls?page=2>; rel=\"last\"",
        server.uri(),
        server.uri()
    );
    Mock::given(method("GET"))
        .and(path("/repos/o/r/pulls"))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            pr(3, "ferry/old-branch", "open", mine),
            pr(4, "someone/else", "open", "not ferry's"),
        ])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/pulls"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("link", next.as_str())
                .set_body_json(json!([pr(5, "ferry/shop-web", "open", mine)])),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/o/r/pulls/3"))
        .and(body_partial_json(json!({"state": "closed"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(pr(
            3,
            "ferry/old-branch",
            "closed",
            mine,
        )))
        .expect(1)
        .mount(&server)
        .await;
    let workloads = ["shop/Deployment/web".to_string()];
    let closed = supersede(&github(&server), "o/r", "ferry/shop-web", &workloads)
        .await
        .unwrap();
    assert_eq!(closed.iter().map(|r| r.number).collect::<Vec<_>>(), [3]);
}

#[tokio::test]
async fn github_rate_limits_are_waited_out_within_the_bound_and_reported_beyond_it() {
    let server = MockServer::start().await;
    // Secondary limit: 403 with Retry-After; then the answer.
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"message": "You have exceeded a secondary rate limit."})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    let start = Instant::now();
    let found = github(&server)
        .list("o/r", None, Filter::Open)
        .await
        .unwrap();
    assert!(found.is_empty());
    assert!(start.elapsed() >= Duration::from_secs(1), "did not wait");

    // Primary limit spent for an hour: beyond the bound, an error naming the headers.
    let server = MockServer::start().await;
    let reset = (ferry_core::duration::unix_now() + 3600).to_string();
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-limit", "5000")
                .insert_header("x-ratelimit-reset", reset.as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    let e = github(&server)
        .list("o/r", None, Filter::Open)
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("x-ratelimit-remaining: 0"), "{text}");
    assert!(text.contains("beyond the 5s ferry waits"), "{text}");
}

#[tokio::test]
async fn gitlab_409_finds_and_updates_the_merge_request_and_closes_with_state_event() {
    let server = MockServer::start().await;
    let mr = |iid: u64, state: &str, body: &str| {
        json!({"iid": iid, "web_url": format!("https://gitlab.example/g/r/-/merge_requests/{iid}"),
               "state": state, "source_branch": "ferry/shop-web", "target_branch": "main",
               "description": body, "title": "t"})
    };
    Mock::given(method("GET"))
        .and(path("/projects/g%2Fr/merge_requests"))
        .and(query_param("state", "opened"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/projects/g%2Fr/merge_requests"))
        .and(header("private-token", "t0ken"))
        .and(body_partial_json(
            json!({"source_branch": "ferry/shop-web", "target_branch": "main"}),
        ))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({
            "message": ["Another open merge request already exists for this source branch: !4"]
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/projects/g%2Fr/merge_requests"))
        .and(query_param("source_branch", "ferry/shop-web"))
        .and(query_param("state", "opened"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([mr(4, "opened", "old")])))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/projects/g%2Fr/merge_requests/4"))
        .and(body_partial_json(
            json!({"description": new_request().body}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(mr(4, "opened", "new")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/projects/g%2Fr/merge_requests/4"))
        .and(body_partial_json(json!({"state_event": "close"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(mr(4, "closed", "new")))
        .expect(1)
        .mount(&server)
        .await;
    let api = gitlab(&server);
    let (r, done) = ensure(&api, "g/r", &new_request()).await.unwrap();
    assert_eq!((r.number, done), (4, Ensured::Updated));
    api.close("g/r", 4).await.unwrap();
}

#[tokio::test]
async fn rejected_reads_the_digests_of_ferrys_requests_closed_without_merging() {
    let server = MockServer::start().await;
    let body =
        "x\n<!-- ferry-deploy\nworkload=shop/Deployment/web container=app digest=sha256:bb\n-->";
    let mut merged = pr(2, "ferry/shop-web", "closed", body);
    merged["merged_at"] = json!("2026-12-01T10:00:00Z");
    Mock::given(method("GET"))
        .and(path("/repos/o/r/pulls"))
        .and(query_param("state", "closed"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            pr(1, "ferry/shop-web", "closed", body),
            merged,
            pr(3, "ferry/shop-web", "closed", "a person's request"),
        ])))
        .mount(&server)
        .await;
    let r = rejected(&github(&server), "o/r", "ferry/shop-web")
        .await
        .unwrap();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].0.number, 1);
    assert_eq!(r[0].1.entries[0].digest, "sha256:bb");
}

#[test]
fn repo_paths_from_clone_urls() {
    assert_eq!(
        repo_path("https://github.com/o/r.git").as_deref(),
        Some("o/r")
    );
    assert_eq!(
        repo_path("http://127.0.0.1:9/g/sub/r").as_deref(),
        Some("g/sub/r")
    );
    assert_eq!(repo_path("git@gitlab.com:g/r.git").as_deref(), Some("g/r"));
    assert_eq!(repo_path("https://host/r.git"), None);
}

#[test]
fn forge_settings_debug_redacts_the_token() {
    let s = ForgeSettings {
        token: Some("s3cret".into()),
        ..Default::default()
    };
    assert!(!format!("{s:?}").contains("s3cret"));
}
