//! What verification costs in registry requests, against a real registry (CNCF distribution,
//! no Referrers API) with images signed by cosign: a signed new digest costs exactly its
//! signature lookups, manifests and payloads on the first pass — the Referrers API probe only
//! for the first digest on the registry — and nothing on a later pass of the same controller
//! (the valid verdict is kept). Counted by `plan`'s `registry_requests`,
//! which the difference between a plan without and with a signature policy isolates.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use ferry_core::Reference;
use ferry_deploy::cluster::Namespaces;
use ferry_deploy::controller::{self, Context, RateGate, Signatures};
use ferry_deploy::policy::Action;
use ferry_registry::signature::PublicKey;
use ferry_tests::signing::{Mode, key_pair, sign};
use ferry_tests::{Flavor, Registry, plain_client, push_image};
use serde_json::json;

/// A controller context for the fake API at `api` and the registry at `addr`.
fn context(api: &str, addr: &str, signatures: Signatures) -> Context {
    let config = kube::Config::new(api.parse().unwrap());
    Context {
        client: kube::Client::try_from(config).unwrap(),
        registry: plain_client(addr),
        namespaces: Namespaces::All,
        registry_concurrency: 4,
        rate_gate: RateGate::new(None),
        gitops: None,
        argocd_namespace: "argocd".into(),
        events: Default::default(),
        tag_times: Default::default(),
        signatures,
        provenance: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_new_digest_costs_its_lookups_once_and_nothing_on_the_next_pass() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = key_pair(dir.path(), "team");
    let c = plain_client(&reg.addr);
    let mut deployments = Vec::new();
    let mut later = Vec::new();
    for mode in [Mode::LegacyTag, Mode::Bundle] {
        let repo: Reference = format!("{}/acme/{mode:?}", reg.addr)
            .to_lowercase()
            .parse()
            .unwrap();
        let tag = repo.with_tag("v1").unwrap();
        let (c, t) = (c.clone(), tag.clone());
        let push = move |salt: String| {
            let (c, tag) = (c.clone(), t.clone());
            async move { push_image(&c, &tag, &["linux/amd64"], Flavor::Oci, true, false, &salt).await }
        };
        let old = push(format!("{mode:?}-old")).await;
        let image = format!("{tag}@{}", old.digest);
        let name = format!("{mode:?}").to_lowercase();
        deployments.push(common::deployment(
            &name,
            json!({"ferry.dev/policy": "digest"}),
            &image,
        ));
        later.push((mode, repo, push));
    }
    // The .sig-tag image gets a signed new digest now; the bundle image only after the first
    // pass, so each pass verifies exactly one new digest.
    let mut later = later.into_iter();
    let (mode, repo, push) = later.next().unwrap();
    let new = push(format!("{mode:?}-new")).await;
    let at = |repo: &Reference, d: &ferry_core::Digest| format!("{}@{d}", repo.name());
    sign(dir.path(), &key, &at(&repo, &new.digest), mode);

    let api = common::fake_api(deployments).await;
    let pem = std::fs::read_to_string(&public).unwrap();
    let keys = vec![PublicKey::from_pem("team.pub", &pem).unwrap()];
    let plain = context(&api.uri(), &reg.addr, Signatures::default());
    let verifying = context(
        &api.uri(),
        &reg.addr,
        Signatures::new([("team".to_string(), keys.into())], Some("team".into())),
    );
    let cost = |unverified: &controller::Plan, verified: &controller::Plan, updates: usize| {
        let moved = verified
            .decisions
            .iter()
            .filter(|d| d.action == Action::Update)
            .count();
        assert_eq!(moved, updates, "{:?}", verified.decisions);
        verified.registry_requests - unverified.registry_requests
    };

    // First digest on a registry without the Referrers API: its 404, the referrers tag (404
    // for the tag format), cosign's .sig tag, its payload blob.
    let unverified = controller::plan(&plain).await.unwrap();
    let first = controller::plan(&verifying).await.unwrap();
    assert_eq!(cost(&unverified, &first, 1), 2 + 1 + 1);

    // A later new digest: the client remembers the registry has no Referrers API, so one round
    // (the referrers tag, found, and the .sig tag, 404) then the bundle's manifest and blob.
    let (mode, repo, push) = later.next().unwrap();
    let new = push(format!("{mode:?}-new")).await;
    sign(dir.path(), &key, &at(&repo, &new.digest), mode);
    let unverified = controller::plan(&plain).await.unwrap();
    let second = controller::plan(&verifying).await.unwrap();
    assert_eq!(
        cost(&unverified, &second, 2),
        1 + 1 + 1 + 1,
        "the .sig-signed digest is known valid: only the bundle's lookups count"
    );

    let third = controller::plan(&verifying).await.unwrap();
    assert_eq!(
        cost(&unverified, &third, 2),
        0,
        "a digest found validly signed is not verified again"
    );
}
