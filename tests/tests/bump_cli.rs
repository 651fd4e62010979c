//! `ferry-bump` end to end: golden before/after Dockerfiles, pins against a real registry on
//! 127.0.0.1 (through `--mirror docker.io=…`), check/refresh, commits on real repositories.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::path::Path;
use std::process::{Command, Output};

use ferry_tests::{Flavor, GitRepo, Registry, bin, plain_client, push_image};
use serde_json::Value;

fn bump(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin("ferry-bump"))
        .arg("--repo")
        .arg(dir)
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .env("DOCKER_CONFIG", "/nonexistent-ferry-test")
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bump")
}

/// Every `tests/fixtures/bump/<case>/before` becomes `after` with `set python:3.12-slim`;
/// a second run changes nothing.
#[test]
fn golden_before_after_files() {
    let mut cases = 0;
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let dir = entry.unwrap().path();
        let before = std::fs::read(dir.join("before")).unwrap();
        let after = std::fs::read(dir.join("after")).unwrap();
        let r = GitRepo::new();
        std::fs::write(r.path().join("Dockerfile"), &before).unwrap();
        r.commit("before");
        let out = ok(&bump(r.path(), &["set", "python:3.12-slim"]));
        let got = std::fs::read(r.path().join("Dockerfile")).unwrap();
        assert!(
            got == after,
            "case {}:\n--- got ---\n{}\n--- want ---\n{}\n--- output ---\n{out}",
            dir.display(),
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&after)
        );
        let again = ok(&bump(r.path(), &["set", "python:3.12-slim"]));
        assert_eq!(again, "nothing to change\n", "case {}", dir.display());
        cases += 1;
    }
    assert!(cases >= 7, "fixtures found: {cases}");
}

#[test]
fn directories_git_ignores_are_not_scanned() {
    let r = GitRepo::new();
    r.write(".gitignore", "target/\n");
    r.write("app/Dockerfile", "FROM python:3.11\n");
    r.write("target/vendored/Dockerfile", "FROM python:3.11\n");
    r.commit("init");
    ok(&bump(r.path(), &["set", "python:3.12"]));
    assert_eq!(
        std::fs::read_to_string(r.path().join("app/Dockerfile")).unwrap(),
        "FROM python:3.12\n"
    );
    assert_eq!(
        std::fs::read_to_string(r.path().join("target/vendored/Dockerfile")).unwrap(),
        "FROM python:3.11\n"
    );
}

#[test]
fn dry_run_prints_a_diff_and_changes_nothing() {
    let r = GitRepo::new();
    r.write("app/Dockerfile", "FROM python:3.11-slim\nRUN true\n");
    r.commit("init");
    let out = ok(&bump(r.path(), &["set", "python:3.12-slim", "--dry-run"]));
    assert!(
        out.contains("--- a/app/Dockerfile\n+++ b/app/Dockerfile\n"),
        "{out}"
    );
    assert!(
        out.contains("-FROM python:3.11-slim\n+FROM python:3.12-slim\n"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(r.path().join("app/Dockerfile")).unwrap(),
        "FROM python:3.11-slim\nRUN true\n"
    );
}

#[test]
fn unparseable_dockerfiles_are_reported_left_alone_and_the_rest_updated() {
    let r = GitRepo::new();
    r.write("a/Dockerfile", "FROM python:3.11\nCOPY \"broken /x\n");
    r.write("b/Dockerfile", "FROM python:3.11\n");
    r.commit("init");
    let o = bump(r.path(), &["set", "python:3.12"]);
    assert_eq!(o.status.code(), Some(1), "something was skipped");
    assert!(String::from_utf8_lossy(&o.stderr).contains("a/Dockerfile:2:"));
    assert_eq!(
        std::fs::read_to_string(r.path().join("a/Dockerfile")).unwrap(),
        "FROM python:3.11\nCOPY \"broken /x\n"
    );
    assert_eq!(
        std::fs::read_to_string(r.path().join("b/Dockerfile")).unwrap(),
        "FROM python:3.12\n"
    );
}

#[test]
fn list_shows_every_reference() {
    let r = GitRepo::new();
    r.write("Dockerfile", "ARG BASE=python:3.11\nFROM $BASE AS build\nCOPY --from=busybox:1 /bin/sh /sh\nFROM scratch\nCOPY --from=build /a /a\n");
    r.commit("init");
    let v: Value = serde_json::from_str(&ok(&bump(r.path(), &["list", "--json"]))).unwrap();
    let rows: Vec<(String, String, Option<String>)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["kind"].as_str().unwrap().to_string(),
                u["spelling"].as_str().unwrap().to_string(),
                u["canonical"].as_str().map(str::to_string),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "arg_default".into(),
                "python:3.11".into(),
                Some("docker.io/library/python:3.11".into())
            ),
            (
                "from".into(),
                "$BASE".into(),
                Some("docker.io/library/python:3.11".into())
            ),
            (
                "copy_from".into(),
                "busybox:1".into(),
                Some("docker.io/library/busybox:1".into())
            ),
        ]
    );
    assert_eq!(v[1]["stage_name"], "build");
    assert_eq!(v[1]["line"], 2);
    let text = ok(&bump(r.path(), &["list"]));
    assert!(
        text.contains("Dockerfile:3\tbuild\tcopy_from\tbusybox:1\tdocker.io/library/busybox:1"),
        "{text}"
    );
}

#[tokio::test]
async fn pin_check_and_refresh_against_a_real_registry() {
    let reg = Registry::start();
    let c = plain_client(&reg.addr);
    let first = push_image(
        &c,
        &reg.reference("library/python:3.12-slim"),
        &["linux/amd64", "linux/arm64"],
        Flavor::Oci,
        false,
        false,
        "v1",
    )
    .await;
    let mirror = format!("docker.io=http://{}", reg.addr);
    let r = GitRepo::new();
    r.write(
        "ferry.toml",
        "[images.\"base\"]\nrepository = \"docker.io/acme/base\"\n",
    );
    r.write("base/Dockerfile", "FROM python:3.11-slim\n");
    r.write(
        "app/Dockerfile",
        "FROM docker.io/acme/base:1\nCOPY --from=index.docker.io/library/python:3.11-slim /x /y\n",
    );
    r.commit("init");

    let out = ok(&bump(
        r.path(),
        &[
            "set",
            "python:3.12-slim",
            "--pin",
            "--mirror",
            &mirror,
            "--json",
        ],
    ));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["digest"], first.digest.to_string(), "the index digest");
    assert_eq!(
        v["rebuilds"],
        serde_json::json!(["app", "base"]),
        "base changes and app builds on it"
    );
    assert_eq!(
        std::fs::read_to_string(r.path().join("base/Dockerfile")).unwrap(),
        format!("FROM python:3.12-slim@{}\n", first.digest)
    );
    assert!(
        std::fs::read_to_string(r.path().join("app/Dockerfile"))
            .unwrap()
            .contains(&format!(
                "index.docker.io/library/python:3.12-slim@{}",
                first.digest
            ))
    );

    let out = ok(&bump(r.path(), &["check", "--mirror", &mirror]));
    assert!(out.contains("fresh"), "{out}");

    // A security rebuild moves the tag.
    let second = push_image(
        &c,
        &reg.reference("library/python:3.12-slim"),
        &["linux/amd64", "linux/arm64"],
        Flavor::Oci,
        false,
        false,
        "v2",
    )
    .await;
    let o = bump(r.path(), &["check", "--mirror", &mirror, "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["stale"].as_array().unwrap().len(), 2);
    assert_eq!(v["stale"][0]["current"], second.digest.to_string());

    ok(&bump(r.path(), &["refresh", "--mirror", &mirror]));
    assert_eq!(
        std::fs::read_to_string(r.path().join("base/Dockerfile")).unwrap(),
        format!("FROM python:3.12-slim@{}\n", second.digest)
    );
    ok(&bump(r.path(), &["check", "--mirror", &mirror]));

    // A tag the registry does not have: --pin fails before anything is written.
    let before = std::fs::read_to_string(r.path().join("base/Dockerfile")).unwrap();
    let o = bump(
        r.path(),
        &["set", "python:9.99", "--pin", "--mirror", &mirror],
    );
    assert_eq!(o.status.code(), Some(1), "not found");
    assert_eq!(
        std::fs::read_to_string(r.path().join("base/Dockerfile")).unwrap(),
        before
    );
    // An unreachable registry: operational error, nothing written, check exits 3.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("docker.io=http://{}", l.local_addr().unwrap());
    drop(l);
    let o = bump(
        r.path(),
        &[
            "set",
            "python:3.13",
            "--pin",
            "--mirror",
            &dead,
            "--timeout",
            "2s",
        ],
    );
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(
        std::fs::read_to_string(r.path().join("base/Dockerfile")).unwrap(),
        before
    );
    assert_eq!(
        bump(r.path(), &["check", "--mirror", &dead, "--timeout", "2s"])
            .status
            .code(),
        Some(3)
    );
}

#[test]
fn commit_lists_every_edit_and_respects_dirty_trees() {
    let r = GitRepo::new();
    r.write("a/Dockerfile", "FROM python:3.11\n");
    r.write("b/Dockerfile", "FROM python:3.11 AS b\n");
    r.write("notes.txt", "x\n");
    r.commit("init");
    // A dirty file the change does not touch: allowed, and not swept into the commit.
    r.write("notes.txt", "dirty\n");
    r.git(&["add", "notes.txt"]);
    let out = ok(&bump(
        r.path(),
        &[
            "set",
            "python:3.12",
            "--commit",
            "--author",
            "Ferry Bot <bot@example.invalid>",
            "--message",
            "Security update",
        ],
    ));
    assert!(out.contains("committed "), "{out}");
    let log = r.git(&["log", "-1", "--format=%an <%ae>%n%B"]);
    assert!(
        log.starts_with("Ferry Bot <bot@example.invalid>\nSecurity update\n"),
        "{log}"
    );
    assert!(
        log.contains("- a/Dockerfile:1: python:3.11 → python:3.12"),
        "{log}"
    );
    assert!(
        log.contains("- b/Dockerfile:1: python:3.11 → python:3.12"),
        "{log}"
    );
    let files = r.git(&["show", "--name-only", "--format=", "HEAD"]);
    assert_eq!(files, "a/Dockerfile\nb/Dockerfile");
    assert_eq!(
        r.git(&["status", "--porcelain"]),
        "M  notes.txt",
        "the staged change is still staged, nothing else"
    );
    // A dirty file the change would touch: refused, nothing written.
    r.write("a/Dockerfile", "FROM python:3.12\nRUN local edit\n");
    let o = bump(r.path(), &["set", "python:3.13", "--commit"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("refusing to commit: a/Dockerfile"));
    assert_eq!(
        std::fs::read_to_string(r.path().join("b/Dockerfile")).unwrap(),
        "FROM python:3.12 AS b\n"
    );
    assert_eq!(
        bump(r.path(), &["set", "python"]).status.code(),
        Some(2),
        "a tag is required"
    );
    assert_eq!(bump(r.path(), &["set", "Bad:Ref"]).status.code(), Some(1));
}

/// A tag that cannot be resolved is reported with its cause once; `-v` adds every cause.
#[test]
fn check_names_the_cause_of_an_unresolvable_tag_and_v_shows_the_chain() {
    let r = GitRepo::new();
    let digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    r.write(
        "Dockerfile",
        &format!("FROM ferry-test.invalid/base:1@{digest}\n"),
    );
    r.commit("pinned");
    let o = bump(r.path(), &["check", "--timeout", "5s"]);
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("ferry-test.invalid/base:1: request to https://ferry-test.invalid/v2/base/manifests/1 failed: dns error: "),
        "{err}"
    );
    assert_eq!(err.matches("dns error").count(), 1, "{err}");
    let o = bump(r.path(), &["check", "-v", "--timeout", "5s"]);
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("\n  caused by: dns error"), "{err}");
}
