//! Every tag policy through `ferry-deploy plan --json` (and the controller's own `plan`) against
//! a real registry on 127.0.0.1 and a fake Kubernetes API (wiremock): commit tags ranked by
//! created times (config `created`, or the `org.opencontainers.image.created` annotation),
//! build numbers crossing digit counts, dates, ignored tags, no match, bad regexes; created
//! times read once per digest across passes, within `--max-inspect`.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::{deployment, fake_api, fake_api_with, kubeconfig, plan_json, run};
use ferry_deploy::cluster::Namespaces;
use ferry_deploy::controller::{self, Context, TagTimes};
use ferry_deploy::policy::Action;
use ferry_registry::Client;
use ferry_tests::{Flavor, Registry, plain_client, push_image_created};
use serde_json::{Value, json};
use wiremock::Mock;
use wiremock::ResponseTemplate;
use wiremock::matchers::{method, path};

const TAGS: &[(&str, &str)] = &[
    ("main-aaaaaaa", "2026-11-01T10:00:00Z"),
    ("main-bbbbbbb", "2026-11-20T10:00:00Z"),
    ("main-ccccccc", "2026-11-10T10:00:00.123456789Z"),
    ("main-ddddddd-rc", "2026-11-28T10:00:00Z"),
    ("pr-7", "2026-11-29T10:00:00Z"),
    ("build-9", "2026-01-01T00:00:00Z"),
    ("build-99", "2026-01-01T00:00:00Z"),
    ("build-100", "2026-01-01T00:00:00Z"),
    ("build-101-rc", "2026-01-01T00:00:00Z"),
    ("2025-12-31", "2026-01-01T00:00:00Z"),
    ("2026-02-01", "2026-01-01T00:00:00Z"),
    ("2026-11-29", "2026-01-01T00:00:00Z"),
    ("1.2.0", "2026-01-01T00:00:00Z"),
    ("1.3.0", "2026-01-01T00:00:00Z"),
    ("1.4.0-bad", "2026-01-01T00:00:00Z"),
];

/// Push every tag of [`TAGS`] (single-platform images, config `created` as listed); returns
/// tag → digest.
async fn push_tags(c: &Client, reg: &Registry) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (tag, created) in TAGS {
        let r = reg.reference(&format!("acme/app:{tag}"));
        let p = push_image_created(
            c,
            &r,
            &["linux/amd64"],
            Flavor::Oci,
            true,
            false,
            tag,
            created,
        )
        .await;
        out.push((tag.to_string(), p.digest.to_string()));
    }
    out
}

/// Re-push the manifest of `from` under `to` with an `org.opencontainers.image.created`
/// annotation (which wins over the config's `created`); returns the new digest.
async fn push_annotated(c: &Client, reg: &Registry, from: &str, to: &str, created: &str) -> String {
    let m = c
        .manifest(&reg.reference(&format!("acme/app:{from}")))
        .await
        .unwrap();
    let mut body: Value = serde_json::from_slice(&m.body).unwrap();
    body["annotations"] = json!({"org.opencontainers.image.created": created});
    let body = Bytes::from(serde_json::to_vec(&body).unwrap());
    c.put_manifest(
        &reg.reference(&format!("acme/app:{to}")),
        "application/vnd.oci.image.manifest.v1+json",
        body,
    )
    .await
    .unwrap()
    .to_string()
}

fn row<'v>(v: &'v Value, name: &str) -> &'v Value {
    v.as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no row for {name}: {v}"))
}

#[tokio::test]
async fn each_policy_through_plan_against_a_real_registry() {
    let reg = Registry::start();
    let c = plain_client(&reg.addr);
    let digests = push_tags(&c, &reg).await;
    let digest = |t: &str| digests.iter().find(|(x, _)| x == t).unwrap().1.clone();
    // An image whose config says 2026-01-01 but whose manifest annotation says it is newest
    // of all main- tags.
    let annotated =
        push_annotated(&c, &reg, "build-9", "main-eeeeeee", "2026-11-25T00:00:00Z").await;
    let img = |t: &str| format!("{}@{}", reg.reference(&format!("acme/app:{t}")), digest(t));
    let ignore_rc = "ferry.dev/tag-ignore";
    let deployments = vec![
        deployment(
            "newest",
            json!({"ferry.dev/policy": "newest-build:^main-", ignore_rc: "-rc$"}),
            &img("main-aaaaaaa"),
        ),
        deployment(
            "newest-top",
            json!({"ferry.dev/policy": "newest-build:^main-[0-9a-f]{7}$"}),
            &format!("{}@{annotated}", reg.reference("acme/app:main-eeeeeee")),
        ),
        deployment(
            "builds",
            json!({"ferry.dev/policy": r"numerical:^build-(\d+)", ignore_rc: "-rc$"}),
            &img("build-99"),
        ),
        deployment(
            "dates",
            json!({"ferry.dev/policy": r"alphabetical:^\d{4}-\d\d-\d\d$"}),
            &img("2025-12-31"),
        ),
        deployment(
            "semver",
            json!({"ferry.dev/policy": "semver:^1", ignore_rc: r"^1\.3"}),
            &img("1.2.0"),
        ),
        deployment(
            "nothing",
            json!({"ferry.dev/policy": r"numerical:^release-(\d+)$"}),
            &img("build-9"),
        ),
        deployment(
            "bad",
            json!({"ferry.dev/policy": r"numerical:^build-\d+$"}),
            &img("build-9"),
        ),
        deployment(
            "bad-ignore",
            json!({"ferry.dev/policy": "semver:^1", ignore_rc: "(unclosed"}),
            &img("1.2.0"),
        ),
    ];
    let api = fake_api(deployments).await;
    for name in ["newest", "builds", "dates"] {
        Mock::given(method("PATCH"))
            .and(path(format!(
                "/apis/apps/v1/namespaces/iot/deployments/{name}"
            )))
            .respond_with(ResponseTemplate::new(200).set_body_json(deployment(
                name,
                json!({}),
                "x",
            )))
            .expect(1)
            .mount(&api)
            .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&api, dir.path());
    let v = plan_json(&kc, &reg.addr);
    let target = |t: &str, d: &str| format!("{}@{d}", reg.reference(&format!("acme/app:{t}")));

    // newest-build: main-eeeeeee's annotation (11-25) beats main-bbbbbbb's config (11-20);
    // the -rc (11-28) is ignored, pr-7 does not match.
    let r = row(&v, "newest");
    assert_eq!(r["action"], "update", "{r}");
    assert_eq!(r["target"], target("main-eeeeeee", &annotated));
    assert_eq!(r["reason"], "newer tag main-eeeeeee (newest-build)");
    // Running the newest already: nothing (never a downgrade to older commits).
    let r = row(&v, "newest-top");
    assert_eq!(r["action"], "none", "{r}");
    // numerical: 100 > 99 across digit counts; build-101-rc ignored.
    let r = row(&v, "builds");
    assert_eq!(r["action"], "update", "{r}");
    assert_eq!(r["target"], target("build-100", &digest("build-100")));
    // alphabetical: the latest date.
    let r = row(&v, "dates");
    assert_eq!(r["target"], target("2026-11-29", &digest("2026-11-29")));
    assert_eq!(r["action"], "update", "{r}");
    // semver with tag-ignore: 1.3.0 ignored, 1.2.0 is the best left.
    let r = row(&v, "semver");
    assert_eq!(r["action"], "none", "{r}");
    // No tag matches: a skip saying so.
    let r = row(&v, "nothing");
    assert_eq!(r["action"], "skip");
    assert_eq!(r["reason"], r"no tag matches numerical:^release-(\d+)$");
    // Bad regexes: one skip row naming the annotation.
    let r = row(&v, "bad");
    assert_eq!(r["action"], "skip");
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("ferry.dev/policy: ") && reason.contains("exactly one capture group"),
        "{reason}"
    );
    let r = row(&v, "bad-ignore");
    assert_eq!(r["action"], "skip");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("ferry.dev/tag-ignore"),
        "{r}"
    );

    // once: exactly the three updates are patched, each with its new image.
    let o = run(&kc, &reg.addr, &["once"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let reqs = api.received_requests().await.unwrap();
    let patches: Vec<(String, String)> = reqs
        .iter()
        .filter(|r| r.method.as_str() == "PATCH")
        .map(|r| {
            (
                r.url.path().rsplit('/').next().unwrap().to_string(),
                String::from_utf8_lossy(&r.body).to_string(),
            )
        })
        .collect();
    assert_eq!(patches.len(), 3, "{patches:?}");
    for (name, image) in [
        ("newest", target("main-eeeeeee", &annotated)),
        ("builds", target("build-100", &digest("build-100"))),
        ("dates", target("2026-11-29", &digest("2026-11-29"))),
    ] {
        let body = &patches.iter().find(|(n, _)| n == name).unwrap().1;
        assert!(body.contains(&image), "{name}: {body}");
    }
    // The bad regexes became Events naming the annotation.
    let events: Vec<String> = reqs
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| String::from_utf8_lossy(&r.body).to_string())
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e.contains("\"bad\"") && e.contains("exactly one capture group")),
        "{events:?}"
    );
}

fn context(client: kube::Client, registry: Client, max_inspect: usize) -> Context {
    Context {
        client,
        registry,
        namespaces: Namespaces::All,
        registry_concurrency: 2,
        rate_gate: Default::default(),
        gitops: None,
        argocd_namespace: "argocd".into(),
        events: Default::default(),
        tag_times: TagTimes::new(max_inspect),
        signatures: Default::default(),
        provenance: Default::default(),
    }
}

#[tokio::test]
async fn created_times_are_read_once_per_digest_within_the_budget() {
    let reg = Registry::start();
    let c = plain_client(&reg.addr);
    let digests = push_tags(&c, &reg).await;
    let cur = &digests.iter().find(|(t, _)| t == "main-aaaaaaa").unwrap().1;
    let image = format!("{}@{cur}", reg.reference("acme/app:main-aaaaaaa"));
    let api = fake_api(vec![deployment(
        "newest",
        json!({"ferry.dev/policy": "newest-build:^main-", "ferry.dev/tag-ignore": "-rc$"}),
        &image,
    )])
    .await;
    let client = kube::Client::try_from(kube::Config::new(api.uri().parse().unwrap())).unwrap();
    let ctx = context(client, c.clone(), 2);
    let tag_of = |p: &controller::Plan| {
        let d = &p.decisions[0];
        (
            d.action,
            d.target.as_ref().and_then(|t| t.tag().map(str::to_string)),
        )
    };
    // Pass 1: the current tag and one candidate (newest-looking first: main-ccccccc) within a
    // budget of 2; main-bbbbbbb is still unread, so ferry moves to the best it knows.
    let p1 = controller::plan(&ctx).await.unwrap();
    assert_eq!(
        tag_of(&p1),
        (Action::Update, Some("main-ccccccc".into())),
        "{:?}",
        p1.decisions[0].reason
    );
    // Pass 2: only main-bbbbbbb is new; it is the newest.
    let p2 = controller::plan(&ctx).await.unwrap();
    assert_eq!(tag_of(&p2), (Action::Update, Some("main-bbbbbbb".into())));
    // Pass 3: nothing new to read: one tag list, one resolve of the target, no created reads.
    let p3 = controller::plan(&ctx).await.unwrap();
    assert_eq!(tag_of(&p3), (Action::Update, Some("main-bbbbbbb".into())));
    assert!(
        p3.registry_requests < p2.registry_requests,
        "{} < {}",
        p3.registry_requests,
        p2.registry_requests
    );
    assert!(
        p2.registry_requests < p1.registry_requests,
        "{} < {}",
        p2.registry_requests,
        p1.registry_requests
    );
    // Counted: pass 1 = 1 tag list + 2 × (HEAD + created) + 1 inspection of the target;
    // pass 2 = 1 list + 1 × (HEAD + created) + 1 inspection; pass 3 = 1 list + the target's
    // HEAD + 1 inspection, no created time read again.
    assert_eq!(
        [
            p1.registry_requests,
            p2.registry_requests,
            p3.registry_requests
        ],
        [6, 4, 3]
    );
}

/// Every request the registry answered after the first `skip`, as `METHOD URI`.
fn answered_since(reg: &Registry, skip: usize) -> Vec<String> {
    reg.answered().split_off(skip)
}

#[tokio::test]
async fn a_never_read_tag_costs_one_get_by_tag_and_its_platform_reads_no_head() {
    let reg = Registry::start();
    let c = plain_client(&reg.addr);
    // Three two-platform images; b-1 is the newest build.
    let mut digests = Vec::new();
    for (tag, created) in [
        ("b-0", "2026-11-01T10:00:00Z"),
        ("b-1", "2026-11-03T10:00:00Z"),
        ("b-2", "2026-11-02T10:00:00Z"),
    ] {
        let r = reg.reference(&format!("acme/builds:{tag}"));
        let p = push_image_created(
            &c,
            &r,
            &["linux/amd64", "linux/arm64"],
            Flavor::Oci,
            false,
            false,
            tag,
            created,
        )
        .await;
        digests.push(p.digest.to_string());
    }
    let image = format!("{}@{}", reg.reference("acme/builds:b-0"), digests[0]);
    let api = fake_api_with(
        vec![deployment(
            "builds",
            json!({"ferry.dev/policy": "newest-build:^b-"}),
            &image,
        )],
        vec![],
        &["amd64", "arm64"],
    )
    .await;
    let client = kube::Client::try_from(kube::Config::new(api.uri().parse().unwrap())).unwrap();
    let ctx = context(client, c.clone(), 200);
    let before = reg.answered().len();
    let p1 = controller::plan(&ctx).await.unwrap();
    assert_eq!(
        p1.decisions[0].target.as_ref().and_then(|t| t.tag()),
        Some("b-1")
    );
    let sent = answered_since(&reg, before);
    let by_tag = |t: &str| -> Vec<&String> {
        sent.iter()
            .filter(|r| r.ends_with(&format!("/manifests/{t}")))
            .collect()
    };
    for t in ["b-0", "b-1", "b-2"] {
        assert_eq!(
            by_tag(t),
            [&format!("GET /v2/acme/builds/manifests/{t}")],
            "{sent:#?}"
        );
    }
    // Counted: 1 tag list + 3 × (the index by tag + 2 platform manifests + 2 configs) + the
    // target's index by digest (its platform check), and no HEAD (it was 3 more before).
    assert_eq!(sent.len(), 1 + 3 * 5 + 1, "{sent:#?}");
    assert_eq!(
        sent.last().unwrap(),
        &format!("GET /v2/acme/builds/manifests/{}", digests[1]),
        "{sent:#?}"
    );
    assert!(sent.iter().all(|r| r.starts_with("GET ")), "{sent:#?}");
    // A second pass reads no created time again: the tag list and the target only.
    let before = reg.answered().len();
    controller::plan(&ctx).await.unwrap();
    let again = answered_since(&reg, before);
    assert!(again.iter().all(|r| !r.contains("/blobs/")), "{again:#?}");
}
