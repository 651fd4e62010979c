//! `cluster::list_all` pages through a list as client-go's pager does (`limit` + `continue`) and,
//! when a continue token has expired (410 Gone — a real API server only does that after etcd
//! compacted the snapshot, minutes later, so it is scripted here), lists again in one request.
//! The paging itself runs against the real API server in `tests/tests/real_cluster.rs`.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ferry_deploy::cluster::{LIST_PAGE, list_all};
use http::{Request, Response, StatusCode};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::client::Body;
use serde_json::{Value, json};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn page(names: &[&str], next: &str) -> Value {
    let items: Vec<Value> = names
        .iter()
        .map(|n| json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": n, "namespace": "iot"}}))
        .collect();
    json!({"apiVersion": "apps/v1", "kind": "DeploymentList",
           "metadata": {"resourceVersion": "9", "continue": next}, "items": items})
}

/// Answer the next request with `status` and `body`; its query string.
async fn answer(handle: &mut Handle, status: StatusCode, body: Value) -> String {
    let (req, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(req.uri().path(), "/apis/apps/v1/namespaces/iot/deployments");
    let query = req.uri().query().unwrap_or_default().to_string();
    send.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap(),
    );
    query
}

fn names(list: &[Deployment]) -> Vec<String> {
    list.iter()
        .map(|d| d.metadata.name.clone().unwrap())
        .collect()
}

#[tokio::test]
async fn pages_are_followed_until_the_continue_token_is_empty() {
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let api: Api<Deployment> = Api::namespaced(kube::Client::new(svc, "iot"), "iot");
    let list = tokio::spawn(async move { list_all(&api).await });
    let q1 = answer(&mut handle, StatusCode::OK, page(&["a", "b"], "tok-1")).await;
    let q2 = answer(&mut handle, StatusCode::OK, page(&["c"], "tok-2")).await;
    let q3 = answer(&mut handle, StatusCode::OK, page(&["d"], "")).await;
    assert_eq!(names(&list.await.unwrap().unwrap()), ["a", "b", "c", "d"]);
    let limit = format!("limit={LIST_PAGE}");
    assert!(q1.contains(&limit) && !q1.contains("continue"), "{q1}");
    assert!(q2.contains(&limit) && q2.contains("continue=tok-1"), "{q2}");
    assert!(q3.contains("continue=tok-2"), "{q3}");
}

#[tokio::test]
async fn an_expired_continue_token_restarts_as_one_full_list() {
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let api: Api<Deployment> = Api::namespaced(kube::Client::new(svc, "iot"), "iot");
    let list = tokio::spawn(async move { list_all(&api).await });
    answer(&mut handle, StatusCode::OK, page(&["a"], "tok-1")).await;
    let gone = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                      "message": "The provided continue parameter is too old", "reason": "Expired", "code": 410});
    answer(&mut handle, StatusCode::GONE, gone).await;
    let full = answer(&mut handle, StatusCode::OK, page(&["a", "b", "c"], "")).await;
    assert!(
        !full.contains("limit") && !full.contains("continue"),
        "{full}"
    );
    // The first page is not kept twice: the answer is the full list alone.
    assert_eq!(names(&list.await.unwrap().unwrap()), ["a", "b", "c"]);
}

#[tokio::test]
async fn other_errors_are_returned() {
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let api: Api<Deployment> = Api::namespaced(kube::Client::new(svc, "iot"), "iot");
    let list = tokio::spawn(async move { list_all(&api).await });
    let forbidden = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "message": "deployments.apps is forbidden", "reason": "Forbidden", "code": 403});
    answer(&mut handle, StatusCode::FORBIDDEN, forbidden).await;
    let err = list.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("forbidden"), "{err}");
}
