//! `ferry-detect changed --base published` against a real registry (CNCF distribution on
//! 127.0.0.1) holding images whose source revision is in the index annotation, only in the
//! image config label, missing, or unknown to the repository — and tags never pushed.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::process::{Command, Output};

use bytes::Bytes;
use ferry_core::{Digest, Reference};
use ferry_registry::Client;
use ferry_tests::{GitRepo, Registry, bin, plain_client};
use serde_json::{Value, json};

const KEY: &str = "org.opencontainers.image.revision";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Where the revision is recorded.
#[derive(Clone, Copy)]
enum Rev<'a> {
    IndexAnnotation(&'a str),
    ManifestAnnotation(&'a str),
    ConfigLabel(&'a str),
    None,
}

/// Push a two-platform image (plus a buildx-style attestation) as an OCI index, with the
/// revision where `rev` says; a single manifest when `single`.
async fn push(client: &Client, reference: &Reference, rev: Rev<'_>, single: bool) {
    let mut descriptors = Vec::new();
    for (os, arch) in [("linux", "amd64"), ("linux", "arm64")] {
        let layer = Bytes::from(format!("layer {reference} {arch}"));
        let layer_d = client.push_blob(reference, layer.clone()).await.unwrap();
        let mut cfg = json!({"architecture": arch, "os": os, "config": {"Labels": {"x": "y"}},
            "rootfs": {"type": "layers", "diff_ids": [layer_d.to_string()]}});
        if let Rev::ConfigLabel(r) = rev {
            cfg["config"]["Labels"][KEY] = json!(r);
        }
        let cfg = Bytes::from(serde_json::to_vec(&cfg).unwrap());
        let cfg_d = client.push_blob(reference, cfg.clone()).await.unwrap();
        let mut manifest = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_d.to_string(), "size": cfg.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_d.to_string(), "size": layer.len()}],
        });
        if let Rev::ManifestAnnotation(r) = rev {
            manifest["annotations"] = json!({ KEY: r });
        }
        let body = Bytes::from(serde_json::to_vec(&manifest).unwrap());
        if single {
            client
                .put_manifest(reference, OCI_MANIFEST, body)
                .await
                .unwrap();
            return;
        }
        let d = Digest::sha256_of(&body);
        let by_digest = Reference::parse(&format!("{}@{d}", reference.name())).unwrap();
        client
            .put_manifest(&by_digest, OCI_MANIFEST, body.clone())
            .await
            .unwrap();
        if descriptors.is_empty() {
            // buildx puts attestations after the platforms; put one first to make sure it is
            // never taken for a platform.
            let att = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_d.to_string(), "size": cfg.len()},
                "layers": []});
            let att_body = Bytes::from(serde_json::to_vec(&att).unwrap());
            let ad = Digest::sha256_of(&att_body);
            client
                .put_manifest(
                    &Reference::parse(&format!("{}@{ad}", reference.name())).unwrap(),
                    OCI_MANIFEST,
                    att_body.clone(),
                )
                .await
                .unwrap();
            descriptors.push(json!({"mediaType": OCI_MANIFEST, "digest": ad.to_string(), "size": att_body.len(),
                "platform": {"architecture": "unknown", "os": "unknown"},
                "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": d.to_string()}}));
        }
        descriptors.push(
            json!({"mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": body.len(),
            "platform": {"architecture": arch, "os": os}}),
        );
    }
    let mut index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors});
    if let Rev::IndexAnnotation(r) = rev {
        index["annotations"] = json!({ KEY: r });
    }
    let body = Bytes::from(serde_json::to_vec(&index).unwrap());
    client
        .put_manifest(reference, OCI_INDEX, body)
        .await
        .unwrap();
}

fn detect(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(bin("ferry-detect"))
        .arg("--repo")
        .arg(dir)
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_EVENT_PATH")
        .env_remove("JENKINS_URL")
        .env("DOCKER_CONFIG", dir.join("no-docker-config"))
        .output()
        .unwrap()
}

fn image<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
}

fn reasons(v: &Value, name: &str) -> Vec<String> {
    image(v, name)
        .map(|i| {
            i["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_image_is_compared_with_its_published_revision() {
    let registry = Registry::start();
    let addr = registry.addr.clone();
    let client = plain_client(&addr);
    let r = GitRepo::new();
    let mut toml = String::new();
    for n in [
        "ann",
        "label",
        "single",
        "same",
        "nolabel",
        "unknown",
        "unpublished",
        "child",
    ] {
        r.write(
            &format!("{n}/Dockerfile"),
            "FROM alpine:3.20\nCOPY app.txt /app.txt\n",
        );
        r.write(&format!("{n}/app.txt"), "v1\n");
        toml.push_str(&format!(
            "[images.{n:?}]\nrepository = \"{addr}/acme/{n}\"\n"
        ));
    }
    // `child` builds on `ann`: it rebuilds when `ann` does.
    r.write(
        "child/Dockerfile",
        &format!("FROM {addr}/acme/ann:1\nCOPY app.txt /app.txt\n"),
    );
    r.write("norepo/Dockerfile", "FROM alpine:3.20\n");
    r.write("ferry.toml", &toml);
    let c1 = r.commit("v1");
    for n in ["ann", "label", "single"] {
        r.write(&format!("{n}/app.txt"), "v2\n");
    }
    r.write("README.md", "unrelated\n");
    let c2 = r.commit("v2");

    let at = |n: &str| Reference::parse(&format!("{addr}/acme/{n}:latest")).unwrap();
    push(&client, &at("ann"), Rev::IndexAnnotation(&c1), false).await;
    push(&client, &at("label"), Rev::ConfigLabel(&c1), false).await;
    push(&client, &at("single"), Rev::ConfigLabel(&c1[..12]), true).await;
    push(&client, &at("same"), Rev::ManifestAnnotation(&c1), false).await;
    push(&client, &at("nolabel"), Rev::None, false).await;
    let unknown = "0123456789abcdef0123456789abcdef01234567";
    push(
        &client,
        &at("unknown"),
        Rev::IndexAnnotation(unknown),
        false,
    )
    .await;
    push(&client, &at("child"), Rev::IndexAnnotation(&c2), false).await;

    let o = detect(
        r.path(),
        &[
            "changed",
            "--json",
            "--base",
            "published",
            "--plain-http",
            &addr,
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["base"], "published");
    assert_eq!(v["head"], c2.as_str());
    assert_eq!(v["rebuild_all"], false);
    assert_eq!(reasons(&v, "ann"), ["input modified: ann/app.txt"]);
    assert_eq!(reasons(&v, "label"), ["input modified: label/app.txt"]);
    assert_eq!(reasons(&v, "single"), ["input modified: single/app.txt"]);
    assert_eq!(image(&v, "ann").unwrap()["base"], c1.as_str());
    assert_eq!(
        image(&v, "single").unwrap()["base"],
        c1.as_str(),
        "an abbreviated revision resolves to the full commit"
    );
    assert!(
        image(&v, "same").is_none(),
        "unchanged since its published revision: {v}"
    );
    assert_eq!(reasons(&v, "nolabel"), ["no revision label"]);
    assert_eq!(image(&v, "nolabel").unwrap()["base"], Value::Null);
    assert_eq!(
        reasons(&v, "unknown"),
        [format!("published revision {unknown} not found")]
    );
    assert_eq!(reasons(&v, "unpublished"), ["not published"]);
    assert_eq!(reasons(&v, "norepo"), ["no repository to compare with"]);
    assert_eq!(
        reasons(&v, "child"),
        [format!("base image rebuilds: ann ({addr}/acme/ann)")]
    );
    assert_eq!(image(&v, "child").unwrap()["base"], c2.as_str());
    assert_eq!(image(&v, "ann").unwrap()["tags"], json!(["1"]));
    assert_eq!(v["waves"].as_array().unwrap().len(), 2);

    // Under Jenkins the head is GIT_COMMIT: at c1 nothing read by `ann` changed since c1.
    let o = Command::new(bin("ferry-detect"))
        .arg("--repo")
        .arg(r.path())
        .args([
            "changed",
            "--json",
            "--base",
            "published",
            "--plain-http",
            &addr,
        ])
        .env_remove("GITHUB_ACTIONS")
        .env("JENKINS_URL", "http://jenkins.example/")
        .env("GIT_COMMIT", &c1)
        .env("DOCKER_CONFIG", r.path().join("no-docker-config"))
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["head"], c1.as_str());
    assert!(image(&v, "ann").is_none(), "{v}");
    assert_eq!(reasons(&v, "nolabel"), ["no revision label"]);

    // Another tag: the one published from head makes `ann` current.
    let stable = Reference::parse(&format!("{addr}/acme/ann:stable")).unwrap();
    push(&client, &stable, Rev::IndexAnnotation(&c2), false).await;
    let o = detect(
        r.path(),
        &[
            "changed",
            "--json",
            "--base",
            "published",
            "--published-tag",
            "stable",
            "--plain-http",
            &addr,
        ],
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(image(&v, "ann").is_none(), "{v}");
    assert_eq!(reasons(&v, "label"), ["not published"]);

    // A registry that is not there: each image says so and rebuilds; exit 0 with warnings.
    drop(registry);
    let o = detect(
        r.path(),
        &[
            "changed",
            "--json",
            "--base",
            "published",
            "--plain-http",
            &addr,
            "--timeout",
            "2s",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        reasons(&v, "ann")[0].starts_with("registry query failed: "),
        "{v}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("warning: ann: registry query failed"));
}
