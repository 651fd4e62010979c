//! The rate-limit floor across passes: once a registry reports fewer remaining requests than
//! the floor, the next pass does not ask it at all and says why. Kubernetes and the registry are
//! wiremock fakes on 127.0.0.1.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use ferry_deploy::cluster::Namespaces;
use ferry_deploy::controller::{self, Context, RateGate};
use ferry_deploy::policy::Action;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {"resourceVersion": "1"}, "items": items})
}

#[tokio::test]
async fn a_registry_below_the_floor_is_not_polled_again() {
    let registry = MockServer::start().await;
    let host = registry.address().to_string();
    let digest = ferry_core::Digest::sha256_of(b"index");
    Mock::given(method("HEAD"))
        .and(path("/v2/acme/sensor/manifests/latest"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("docker-content-digest", digest.to_string().as_str())
                .insert_header("ratelimit-limit", "100;w=21600")
                .insert_header("ratelimit-remaining", "3;w=21600"),
        )
        .expect(1)
        .mount(&registry)
        .await;
    let api = MockServer::start().await;
    let image = format!("{host}/acme/sensor:latest@{digest}");
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "sensor", "namespace": "iot", "annotations": {"ferry.dev/policy": "digest"}},
        "spec": {"selector": {"matchLabels": {"app": "sensor"}}, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}}});
    for (p, body) in [
        (
            "/apis/apps/v1/deployments",
            list("Deployment", vec![deployment]),
        ),
        ("/apis/apps/v1/statefulsets", list("StatefulSet", vec![])),
        ("/apis/apps/v1/daemonsets", list("DaemonSet", vec![])),
        ("/apis/batch/v1/cronjobs", list("CronJob", vec![])),
        ("/api/v1/nodes", list("Node", vec![])),
    ] {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&api)
            .await;
    }
    let config = kube::Config::new(api.uri().parse().unwrap());
    let ctx = Context {
        client: kube::Client::try_from(config).unwrap(),
        registry: ferry_registry::Client::new(ferry_registry::ClientConfig {
            plain_http: vec![host.clone()],
            ..Default::default()
        })
        .unwrap(),
        namespaces: Namespaces::All,
        registry_concurrency: 4,
        rate_gate: RateGate::new(Some(10)),
        gitops: None,
        argocd_namespace: "argocd".into(),
        events: Default::default(),
        tag_times: Default::default(),
        signatures: Default::default(),
        provenance: Default::default(),
    };
    let first = controller::plan(&ctx).await.unwrap();
    assert_eq!(first.registry_requests, 1);
    assert_eq!(
        first.decisions[0].action,
        Action::None,
        "{:?}",
        first.decisions[0]
    );
    let second = controller::plan(&ctx).await.unwrap();
    assert_eq!(
        second.registry_requests, 0,
        "the registry is not asked again"
    );
    assert_eq!(second.decisions[0].action, Action::Skip);
    assert!(
        second.decisions[0]
            .reason
            .to_string()
            .contains("below the floor of 10"),
        "{}",
        second.decisions[0].reason
    );
}
