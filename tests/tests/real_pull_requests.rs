//! `--git-pull-request github|gitlab` end to end: `ferry-deploy once` as its ServiceAccount on
//! the real control plane (`scripts/testenv.sh`), a real registry, the configuration repository
//! on a real `git daemon`, and a local stateful fake of GitHub's pulls API or GitLab's merge
//! requests API reached through `--git-api-url`. The fakes follow the documented requests and
//! answers: the token header (`Authorization: Bearer` / `PRIVATE-TOKEN`), branch and state
//! filters, pages with `Link: <…>; rel="next"`, 422 (GitHub) or 409 (GitLab) for a second open
//! request from a branch, edits and closing (`PATCH state=closed` / `PUT state_event=close`), and
//! a spent rate limit (GitHub 403 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset`, GitLab
//! 429 with `Retry-After`).
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod real;

use std::sync::{Arc, Mutex};

use ferry_tests::{GitDaemon, GitRepo, Registry, git_in};
use real::{Cluster, ferry, identity, push, show};
use serde_json::{Value, json};
use wiremock::matchers::path_regex;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// One request of the fake.
#[derive(Debug, Clone)]
struct Pr {
    number: u64,
    head: String,
    base: String,
    title: String,
    body: String,
    /// `open` or `closed` (merged or not).
    state: &'static str,
    merged: bool,
}

#[derive(Default)]
struct Forge {
    prs: Vec<Pr>,
    /// Answer the next call with a spent rate limit.
    limit_next: bool,
    /// Calls answered, as `METHOD path?query`.
    calls: Vec<String>,
    /// The server's address, for `Link` and web URLs.
    base: String,
}

/// Which API the fake speaks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Api {
    /// `/repos/o/r/pulls`: `number`, `html_url`, `state` open/closed + `merged_at`, `head.ref`,
    /// `body`; `head=o:branch`; 422 for a second open request; `PATCH` edits and closes.
    GitHub,
    /// `/projects/o%2Fr/merge_requests`: `iid`, `web_url`, `state` opened/closed/merged,
    /// `source_branch`, `description`; `source_branch=`; 409 for a second open request; `PUT`
    /// edits, `state_event: close` closes.
    GitLab,
}

/// A stateful fake of GitHub's pulls or GitLab's merge requests API. Pages hold two requests
/// (both APIs let a server return fewer than `per_page`), so listings span pages.
#[derive(Clone)]
struct FakeForge {
    api: Api,
    state: Arc<Mutex<Forge>>,
}

impl FakeForge {
    fn new(api: Api) -> Self {
        FakeForge {
            api,
            state: Arc::default(),
        }
    }

    fn prefix(&self) -> &'static str {
        match self.api {
            Api::GitHub => "/repos/o/r/pulls",
            Api::GitLab => "/projects/o%2Fr/merge_requests",
        }
    }

    /// The web page of request `n`.
    fn web(&self, base: &str, n: u64) -> String {
        match self.api {
            Api::GitHub => format!("{base}/o/r/pull/{n}"),
            Api::GitLab => format!("{base}/o/r/-/merge_requests/{n}"),
        }
    }

    fn json(&self, pr: &Pr, base: &str) -> Value {
        match self.api {
            Api::GitHub => json!({
                "number": pr.number, "html_url": self.web(base, pr.number), "state": pr.state,
                "merged_at": if pr.merged { json!("2026-12-05T12:00:00Z") } else { Value::Null },
                "title": pr.title, "body": pr.body,
                "head": {"ref": pr.head, "label": format!("o:{}", pr.head)}, "base": {"ref": pr.base},
            }),
            Api::GitLab => json!({
                "iid": pr.number, "web_url": self.web(base, pr.number),
                "state": match (pr.state, pr.merged) { ("open", _) => "opened", (_, true) => "merged", _ => "closed" },
                "title": pr.title, "description": pr.body,
                "source_branch": pr.head, "target_branch": pr.base,
            }),
        }
    }

    /// Whether `pr` matches the listing's state and branch filters.
    fn matches(&self, pr: &Pr, q: &std::collections::HashMap<String, String>) -> bool {
        let (state, branch) = match self.api {
            Api::GitHub => (
                q.get("state").map_or("open", String::as_str),
                q.get("head")
                    .map(|h| h.strip_prefix("o:").unwrap_or("?").to_string()),
            ),
            Api::GitLab => (
                match q.get("state").map(String::as_str) {
                    Some("opened") => "open",
                    Some("closed") if pr.merged => "none",
                    Some("merged") if pr.merged => "closed",
                    Some("merged") => "none",
                    Some(other) => other,
                    None => "all",
                },
                q.get("source_branch").cloned(),
            ),
        };
        (state == "all" || pr.state == state) && branch.is_none_or(|b| b == pr.head)
    }

    fn list(&self, req: &Request, f: &Forge) -> ResponseTemplate {
        let q: std::collections::HashMap<String, String> =
            req.url.query_pairs().into_owned().collect();
        let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let all: Vec<&Pr> = f.prs.iter().rev().filter(|p| self.matches(p, &q)).collect();
        let items: Vec<Value> = all
            .iter()
            .skip((page - 1) * 2)
            .take(2)
            .map(|p| self.json(p, &f.base))
            .collect();
        let mut t = ResponseTemplate::new(200).set_body_json(items);
        if all.len() > page * 2 {
            let mut next = req.url.clone();
            let kept: Vec<(String, String)> = q.into_iter().filter(|(k, _)| k != "page").collect();
            next.query_pairs_mut()
                .clear()
                .extend_pairs(kept)
                .append_pair("page", &(page + 1).to_string());
            // The request's own origin lacks the port: point at the server's address.
            let next = format!(
                "{}{}?{}",
                f.base,
                next.path(),
                next.query().unwrap_or_default()
            );
            t = t.insert_header("link", format!("<{next}>; rel=\"next\"").as_str());
        }
        t
    }

    fn create(&self, req: &Request, f: &mut Forge) -> ResponseTemplate {
        let b: Value = serde_json::from_slice(&req.body).unwrap();
        let (head, base, text) = match self.api {
            Api::GitHub => (&b["head"], &b["base"], &b["body"]),
            Api::GitLab => (&b["source_branch"], &b["target_branch"], &b["description"]),
        };
        let head = head.as_str().unwrap().to_string();
        if let Some(open) = f.prs.iter().find(|p| p.head == head && p.state == "open") {
            return match self.api {
                Api::GitHub => ResponseTemplate::new(422).set_body_json(json!({
                    "message": "Validation Failed",
                    "errors": [{"resource": "PullRequest", "code": "custom",
                                "message": format!("A pull request already exists for o:{head}.")}],
                })),
                Api::GitLab => ResponseTemplate::new(409).set_body_json(json!({
                    "message": [format!("Another open merge request already exists for this source branch: !{}", open.number)],
                })),
            };
        }
        let pr = Pr {
            number: f.prs.len() as u64 + 1,
            head,
            base: base.as_str().unwrap().to_string(),
            title: b["title"].as_str().unwrap().to_string(),
            body: text.as_str().unwrap().to_string(),
            state: "open",
            merged: false,
        };
        f.prs.push(pr.clone());
        ResponseTemplate::new(201).set_body_json(self.json(&pr, &f.base))
    }

    fn edit(&self, req: &Request, f: &mut Forge, number: u64) -> ResponseTemplate {
        let b: Value = serde_json::from_slice(&req.body).unwrap();
        let Some(pr) = f.prs.iter_mut().find(|p| p.number == number) else {
            return ResponseTemplate::new(404).set_body_json(json!({"message": "404 Not found"}));
        };
        let text = match self.api {
            Api::GitHub => &b["body"],
            Api::GitLab => &b["description"],
        };
        if let Some(t) = b["title"].as_str() {
            pr.title = t.to_string();
        }
        if let Some(t) = text.as_str() {
            pr.body = t.to_string();
        }
        if b["state"] == "closed" || b["state_event"] == "close" {
            pr.state = "closed";
        }
        let pr = pr.clone();
        ResponseTemplate::new(200).set_body_json(self.json(&pr, &f.base))
    }

    fn prs(&self) -> Vec<Pr> {
        self.state.lock().unwrap().prs.clone()
    }

    /// A request opened by a person (no ferry block in its body).
    fn someone_opens(&self, head: &str) {
        let mut f = self.state.lock().unwrap();
        let number = f.prs.len() as u64 + 1;
        f.prs.push(Pr {
            number,
            head: head.into(),
            base: "main".into(),
            title: "a person's change".into(),
            body: "please review".into(),
            state: "open",
            merged: false,
        });
    }

    fn set(&self, number: u64, state: &'static str, merged: bool) {
        let mut f = self.state.lock().unwrap();
        let pr = f.prs.iter_mut().find(|p| p.number == number).unwrap();
        pr.state = state;
        pr.merged = merged;
    }

    fn authorized(&self, req: &Request) -> bool {
        let h = |k: &str| req.headers.get(k).and_then(|v| v.to_str().ok());
        match self.api {
            Api::GitHub => h("authorization") == Some("Bearer s3cret-t0ken"),
            Api::GitLab => h("private-token") == Some("s3cret-t0ken"),
        }
    }

    /// A spent rate limit: GitHub's primary limit, GitLab's 429.
    fn limited(&self) -> ResponseTemplate {
        let reset = (ferry_core::duration::unix_now() + 1).to_string();
        match self.api {
            Api::GitHub => ResponseTemplate::new(403)
                .insert_header("x-ratelimit-limit", "5000")
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.as_str())
                .set_body_json(json!({"message": "API rate limit exceeded"})),
            Api::GitLab => ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .insert_header("ratelimit-remaining", "0")
                .insert_header("ratelimit-reset", reset.as_str())
                .set_body_json(json!({"message": "Retry later"})),
        }
    }
}

impl Respond for FakeForge {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut f = self.state.lock().unwrap();
        let query = req.url.query().map(|q| format!("?{q}")).unwrap_or_default();
        f.calls
            .push(format!("{} {}{query}", req.method, req.url.path()));
        if !self.authorized(req) {
            return ResponseTemplate::new(401)
                .set_body_json(json!({"message": "401 Unauthorized"}));
        }
        if std::mem::take(&mut f.limit_next) {
            return self.limited();
        }
        let number = req
            .url
            .path()
            .strip_prefix(self.prefix())
            .and_then(|n| n.strip_prefix('/'))
            .and_then(|n| n.parse().ok());
        match (req.method.as_str(), number, self.api) {
            ("GET", None, _) => self.list(req, &f),
            ("POST", None, _) => self.create(req, &mut f),
            ("PATCH", Some(n), Api::GitHub) | ("PUT", Some(n), Api::GitLab) => {
                self.edit(req, &mut f, n)
            }
            _ => ResponseTemplate::new(404).set_body_json(json!({"message": "404 Not found"})),
        }
    }
}

fn deployment(ns: &str, image: &str, repo: &str, src: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: {ns}\n  annotations:\n    ferry.dev/policy: semver:^1\n    ferry.dev/git-repo: {repo}\n    ferry.dev/git-path: apps\n    ferry.dev/source-repo: {src}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: app\n        image: {image}\n"
    )
}

/// Push `web:tag` and re-push its index with `org.opencontainers.image.revision: rev` (as
/// docker/metadata-action writes it); the new index digest.
fn push_rev(reg: &Registry, tag: &str, salt: &str, rev: &str) -> ferry_core::Digest {
    push(reg, "web", tag, salt);
    let client = ferry_tests::plain_client(&reg.addr);
    let r = reg.reference(&format!("web:{tag}"));
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let m = client.manifest(&r).await.unwrap();
        let mut index: Value = serde_json::from_slice(&m.body).unwrap();
        index["annotations"] = json!({"org.opencontainers.image.revision": rev});
        let body = serde_json::to_vec(&index).unwrap();
        client
            .put_manifest(&r, &m.media_type, body.into())
            .await
            .unwrap()
    })
}

/// The remote branch's file after a fresh clone, and its log (`%H %s`).
fn remote(url: &str, branch: &str) -> (String, Vec<String>) {
    let d = tempfile::tempdir().unwrap();
    git_in(d.path(), &["clone", "-q", "-b", branch, url, "c"]);
    let c = d.path().join("c");
    let file = std::fs::read_to_string(c.join("apps/web.yaml")).unwrap();
    let log = git_in(&c, &["log", "--format=%H %s"]);
    (file, log.lines().map(String::from).collect())
}

#[test]
fn github_pull_requests_are_opened_updated_superseded_and_a_closed_one_quarantines_its_digest() {
    scenario(Api::GitHub);
}

#[test]
fn gitlab_merge_requests_are_opened_updated_superseded_and_a_closed_one_quarantines_its_digest() {
    scenario(Api::GitLab);
}

/// The whole flow against the fake of `api`.
fn scenario(api: Api) {
    let cluster = Cluster::connect();
    let tmp = tempfile::tempdir().unwrap();
    let kc = cluster.ferry_kubeconfig(tmp.path());
    let reg = Registry::start();
    let ns = cluster.namespace("pr");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = FakeForge::new(api);
    let forge = match api {
        Api::GitHub => "github",
        Api::GitLab => "gitlab",
    };
    let server = rt.block_on(async {
        let s = MockServer::start().await;
        Mock::given(path_regex(match api {
            Api::GitHub => "^/repos/o/r/pulls",
            Api::GitLab => "^/projects/o%2Fr/merge_requests",
        }))
        .respond_with(fake.clone())
        .mount(&s)
        .await;
        Mock::given(path_regex("^/notify$"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&s)
            .await;
        s
    });
    fake.state.lock().unwrap().base = server.uri();
    let daemon = GitDaemon::start();
    let url = daemon.create("o/r.git");
    // The application's source: four commits; each image records the one it was built from.
    let src_url = daemon.create("o/src.git");
    let src = GitRepo::new();
    let mut revs = Vec::new();
    for i in 1..=4 {
        src.write("main.go", &format!("package main // {i}\n"));
        src.commit(&format!("feature {i}"));
        revs.push(src.git(&["rev-parse", "HEAD"]).trim().to_string());
    }
    src.git(&["push", "-q", &src_url, "main"]);
    let short = |r: &str| r[..12].to_string();
    let one = push_rev(&reg, "1.0.0", "one", &revs[0]);
    let old = format!("{}/web:1.0.0@{}", reg.addr, one);
    let config = GitRepo::new();
    config.write("apps/web.yaml", &deployment(&ns, &old, &url, &src_url));
    config.commit("initial");
    config.git(&["push", "-q", &url, "main"]);
    cluster.apply(&deployment(&ns, &old, &url, &src_url));
    let token = tmp.path().join("token");
    std::fs::write(&token, "s3cret-t0ken\n").unwrap();
    let cache = tmp.path().join("git-cache");
    let pass = |extra: &[&str]| -> Value {
        let mut args = vec![
            "-n",
            &ns,
            "--json",
            "--git-write-back",
            "--git-cache",
            cache.to_str().unwrap(),
            "--git-token-file",
            token.to_str().unwrap(),
            "--git-pull-request",
            forge,
            "--git-api-url",
        ];
        let api = server.uri();
        args.push(&api);
        args.extend_from_slice(extra);
        args.push("once");
        let o = ferry(&kc, &reg.addr, &identity("pr"), &args);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let branch = format!("ferry/{ns}-web");

    // 1. A newer tag: a commit on the request's branch and a request carrying the evidence.
    let two = push_rev(&reg, "1.1.0", "two", &revs[2]);
    fake.state.lock().unwrap().limit_next = true;
    let notify = format!("{}/notify", server.uri());
    let out = pass(&["--notify", &notify]);
    let prs = fake.prs();
    assert_eq!(prs.len(), 1, "{out}");
    let pr = &prs[0];
    assert_eq!(
        (pr.head.as_str(), pr.base.as_str()),
        (branch.as_str(), "main")
    );
    assert_eq!(
        pr.title,
        format!("ferry: {ns}/Deployment/web app: 1.0.0 → 1.1.0")
    );
    for needle in [
        format!("| old | `{old}` | `1.0.0` | `{one}` |"),
        format!("`1.1.0` | `{two}` |"),
        "- platforms present: linux/amd64, linux/arm64".to_string(),
        // The commits 1.1.0 brings over the running 1.0.0, newest first.
        format!(
            "- commits in {src_url} ({}..{}): 2\n  - `{}` feature 3\n  - `{}` feature 2\n",
            short(&revs[0]),
            short(&revs[2]),
            short(&revs[2]),
            short(&revs[1])
        ),
    ] {
        assert!(pr.body.contains(&needle), "{needle} not in\n{}", pr.body);
    }
    let notes = &out["applied"]["pull_requests"];
    assert_eq!(notes[0]["action"], "opened", "{out}");
    assert_eq!(notes[0]["forge"], forge, "{out}");
    // The notification links the request.
    let sent = rt.block_on(server.received_requests()).unwrap();
    let note: Value = sent
        .iter()
        .find(|r| r.url.path() == "/notify")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .expect("a notification");
    assert_eq!(note["event"], "update", "{note}");
    let linked = format!("pull request opened: {}", fake.web(&server.uri(), 1));
    assert!(
        note["reason"].as_str().unwrap().ends_with(&linked),
        "{note}"
    );
    let (file, log) = remote(&url, &branch);
    assert!(file.contains(&two.to_string()), "{file}");
    let first_commit = log[0].split(' ').next().unwrap().to_string();
    let (main_file, _) = remote(&url, "main");
    assert!(main_file.contains(&old), "main is untouched until merged");

    // 2. A newer image: one more commit on the same branch (never a force-push), the same
    //    request updated.
    let three = push_rev(&reg, "1.2.0", "three", &revs[3]);
    let out = pass(&[]);
    assert_eq!(
        out["applied"]["pull_requests"][0]["action"], "updated",
        "{out}"
    );
    let prs = fake.prs();
    assert_eq!(prs.len(), 1);
    assert!(
        prs[0].body.contains(&three.to_string()) && prs[0].body.contains("feature 4"),
        "{}",
        prs[0].body
    );
    assert!(prs[0].title.ends_with("1.0.0 → 1.2.0"), "{}", prs[0].title);
    let (file, log) = remote(&url, &branch);
    assert!(file.contains(&three.to_string()), "{file}");
    assert!(
        log.iter().any(|l| l.starts_with(&first_commit)),
        "the first commit is still on the branch: {log:?}"
    );

    // 3. A request from another branch supersedes it: ferry closes its own older one (found on
    //    the third page, behind people's newer requests, which it leaves alone).
    for who in ["alice/a", "bob/b", "carol/c"] {
        fake.someone_opens(who);
    }
    let out = pass(&["--git-pull-request-branch", "review/{name}"]);
    let prs = fake.prs();
    assert_eq!(prs.len(), 5, "{out}");
    let states: Vec<&str> = prs.iter().map(|p| p.state).collect();
    assert_eq!(
        states,
        ["closed", "open", "open", "open", "open"],
        "{prs:?}"
    );
    assert_eq!(prs[4].head, "review/web");
    let actions: Vec<&str> = out["applied"]["pull_requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["opened", "closed"], "{out}");

    // 4. A person closes it without merging: its digest is quarantined for the workload; no
    //    commit, no request.
    fake.set(5, "closed", false);
    let (_, before) = remote(&url, "review/web");
    let out = pass(&["--git-pull-request-branch", "review/{name}"]);
    let d = &out["decisions"][0];
    assert_eq!(d["action"], "skip", "{out}");
    let reason = d["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("{three} is quarantined"))
            && reason.contains(&fake.web(&server.uri(), 5)),
        "{reason}"
    );
    assert_eq!(fake.prs().len(), 5);
    assert_eq!(remote(&url, "review/web").1, before);

    // 5. Merged: the next pass sees the commit in the Application's branch and moves nothing.
    git_in(config.path(), &["pull", "-q", &url, &branch]);
    config.git(&["push", "-q", &url, "main"]);
    fake.set(1, "closed", true);
    let out = pass(&[]);
    let d = &out["decisions"][0];
    assert_eq!(d["action"], "none", "{out}");
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .contains("already written in git"),
        "{d}"
    );
    let calls = fake.state.lock().unwrap().calls.clone();
    let by_branch = match api {
        Api::GitHub => "head=o%3Aferry",
        Api::GitLab => "source_branch=ferry",
    };
    assert!(calls.iter().any(|c| c.contains(by_branch)), "{calls:?}");
    assert!(
        calls.iter().any(|c| c.contains("page=3")),
        "no third page: {calls:?}"
    );
}

#[test]
fn bad_pull_request_settings_are_usage_errors_naming_the_value() {
    let cluster = Cluster::connect();
    let tmp = tempfile::tempdir().unwrap();
    let kc = cluster.ferry_kubeconfig(tmp.path());
    let id = identity("pr-usage");
    let o = ferry(
        &kc,
        "127.0.0.1:1",
        &id,
        &[
            "--git-write-back",
            "--git-pull-request-branch",
            "ferry/{tag}",
            "plan",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "--git-pull-request-branch: branch template \"ferry/{tag}\": unknown placeholder {tag}"
        ),
        "{err}"
    );
    let o = ferry(
        &kc,
        "127.0.0.1:1",
        &id,
        &["--git-pull-request", "github", "plan"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--git-pull-request needs --git-write-back"),
        "{}",
        show(&o)
    );
    let o = ferry(
        &kc,
        "127.0.0.1:1",
        &id,
        &["--git-write-back", "--git-api-url", "not a url", "plan"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--git-api-url \"not a url\""),
        "{}",
        show(&o)
    );
}
