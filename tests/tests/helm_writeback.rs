//! Helm values write-back against a real `git daemon` on 127.0.0.1: the Application says where
//! the values file is (`helm::values_file`), `gitops::write_back_helm` edits only the image
//! scalars and pushes one commit; a second pass commits nothing; a missing key is a problem that
//! names the file and the key; multi-source `$values` files live in the ref repository; a
//! branch that moves during the push gets both commits; a separate write branch gets the commit
//! while the Application's branch stays.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use ferry_deploy::gitops::{self, GitTarget, HelmChange, WriteBackConfig, WriteBranchAction};
use ferry_deploy::helm;
use ferry_tests::{GitDaemon, GitRepo, git_in};
use serde_json::json;

const OLD: &str = "ghcr.io/acme/sensor:1.0.0@sha256:1111111111111111111111111111111111111111111111111111111111111111";
const NEW: &str = "ghcr.io/acme/sensor:1.1.0@sha256:2222222222222222222222222222222222222222222222222222222222222222";
const NEW_DIGEST: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

const VALUES: &str = "# sensor chart defaults for prod\nreplicaCount: 2\n\nsensor:\n  image:\n    repository: ghcr.io/acme/sensor   # built by CI\n    tag: \"1.0.0\"\n    digest: ''\n    pullPolicy: IfNotPresent\n\nproxy:\n  image:\n    repository: envoyproxy/envoy\n    tag: v1.30.0 # not ours\n";

fn setup(name: &str, file: &str, text: &str) -> (GitDaemon, String, GitRepo) {
    let daemon = GitDaemon::start();
    let url = daemon.create(name);
    let r = GitRepo::new();
    r.write(file, text);
    r.write(
        "charts/sensor/Chart.yaml",
        "apiVersion: v2\nname: sensor\nversion: 0.1.0\n",
    );
    r.commit("initial");
    r.git(&["push", "-q", &url, "main"]);
    (daemon, url, r)
}

fn config(dir: &std::path::Path) -> WriteBackConfig {
    WriteBackConfig {
        cache_dir: dir.to_path_buf(),
        author_name: "ferry-bot".into(),
        author_email: "ferry@example.invalid".into(),
        ..Default::default()
    }
}

fn remote_file(url: &str, branch: &str, file: &str) -> String {
    let d = tempfile::tempdir().unwrap();
    git_in(d.path(), &["clone", "-q", "-b", branch, url, "c"]);
    std::fs::read_to_string(d.path().join("c").join(file)).unwrap()
}

fn change(v: &helm::ValuesFile) -> HelmChange {
    HelmChange {
        workload: "iot/Deployment/sensor".into(),
        container: "app".into(),
        file: v.target.path.clone(),
        key: v.key.clone(),
        old_image: OLD.into(),
        new_image: NEW.into(),
    }
}

fn expected() -> String {
    VALUES
        .replace("tag: \"1.0.0\"", "tag: \"1.1.0\"")
        .replace("digest: ''", &format!("digest: '{NEW_DIGEST}'"))
}

#[test]
fn a_chart_in_git_gets_its_values_file_edited_once() {
    let (_daemon, url, _r) = setup("apps.git", "charts/sensor/values-prod.yaml", VALUES);
    let app = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "sensor", "namespace": "argocd"},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": url, "targetRevision": "main", "path": "charts/sensor",
                "helm": {"releaseName": "sensor", "valueFiles": ["values-prod.yaml"]}
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "iot"}
        }
    });
    let v = helm::values_file(&app["spec"], Some("sensor.image"))
        .unwrap()
        .unwrap();
    assert_eq!(v.target.path, "charts/sensor/values-prod.yaml");
    let cache = tempfile::tempdir().unwrap();
    let wb = gitops::write_back_helm(&config(cache.path()), &v.target, &[change(&v)]).unwrap();
    assert!(wb.commit.is_some() && wb.problems.is_empty(), "{wb:?}");
    assert_eq!(wb.files, ["charts/sensor/values-prod.yaml"]);
    assert_eq!(
        remote_file(&url, "main", "charts/sensor/values-prod.yaml"),
        expected()
    );
    let d = tempfile::tempdir().unwrap();
    git_in(d.path(), &["clone", "-q", &url, "c"]);
    let log = git_in(&d.path().join("c"), &["log", "-1", "--format=%an%n%B"]);
    assert!(
        log.starts_with("ferry-bot\nferry: update 1 image(s)\n"),
        "{log}"
    );
    assert!(log.contains(&format!("- iot/Deployment/sensor app: {OLD} → {NEW} (charts/sensor/values-prod.yaml sensor.image)")), "{log}");
    assert!(log.contains(gitops::COMMIT_MARKER), "{log}");
    let again = gitops::write_back_helm(&config(cache.path()), &v.target, &[change(&v)]).unwrap();
    assert_eq!(again.commit, None, "nothing left to change");
    // A key the file does not have: no commit, and the problem names the file and the key.
    let missing = HelmChange {
        key: "worker.image".into(),
        ..change(&v)
    };
    let wb = gitops::write_back_helm(&config(cache.path()), &v.target, &[missing]).unwrap();
    assert_eq!(wb.commit, None);
    let problems: Vec<String> = wb.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        ["iot/Deployment/sensor: charts/sensor/values-prod.yaml: key worker: missing"]
    );
    // The JSON keeps `problems` a list of strings.
    assert_eq!(
        serde_json::to_value(&wb).unwrap()["problems"],
        serde_json::json!(problems)
    );
}

#[test]
fn multi_source_values_are_written_to_the_ref_repository() {
    let (_daemon, url, _r) = setup("values.git", "envs/prod/sensor.yaml", VALUES);
    let app = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "sensor", "namespace": "argocd"},
        "spec": {
            "project": "default",
            "sources": [
                {"repoURL": "https://charts.example.com/acme", "chart": "sensor", "targetRevision": "0.1.0",
                 "helm": {"valueFiles": ["$values/envs/prod/sensor.yaml"]}},
                {"repoURL": url, "targetRevision": "HEAD", "ref": "values"}
            ],
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "iot"}
        }
    });
    let v = helm::values_file(&app["spec"], Some("sensor.image"))
        .unwrap()
        .unwrap();
    assert_eq!(v.target.branch, "HEAD");
    let cache = tempfile::tempdir().unwrap();
    let wb = gitops::write_back_helm(&config(cache.path()), &v.target, &[change(&v)]).unwrap();
    assert_eq!(wb.files, ["envs/prod/sensor.yaml"]);
    assert_eq!(
        remote_file(&url, "main", "envs/prod/sensor.yaml"),
        expected()
    );
}

#[test]
fn a_branch_that_moves_during_the_push_gets_both_commits() {
    let (daemon, url, _r) = setup("apps.git", "charts/sensor/values.yaml", VALUES);
    // The server moves main once (a human commit) and rejects the push that raced it.
    let hook = daemon.root.path().join("apps.git/hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\ncat >/dev/null\nif [ ! -f moved-once ]; then\n  touch moved-once\n  unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES\n  tip=$(git rev-parse refs/heads/main)\n  blob=$(echo human | git hash-object -w --stdin)\n  tree=$( (git ls-tree \"$tip\"; printf '100644 blob %s\\tHUMAN.txt\\n' \"$blob\") | git mktree)\n  c=$(GIT_AUTHOR_NAME=human GIT_AUTHOR_EMAIL=h@x GIT_COMMITTER_NAME=human GIT_COMMITTER_EMAIL=h@x git commit-tree \"$tree\" -p \"$tip\" -m 'human change')\n  git update-ref refs/heads/main \"$c\" \"$tip\"\n  exit 1\nfi\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let spec = json!({"source": {"repoURL": url, "targetRevision": "main", "path": "charts/sensor", "helm": {}}});
    let v = helm::values_file(&spec, Some("sensor.image"))
        .unwrap()
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let wb = gitops::write_back_helm(&config(cache.path()), &v.target, &[change(&v)]).unwrap();
    assert_eq!(wb.attempts, 2, "{wb:?}");
    let d = tempfile::tempdir().unwrap();
    git_in(d.path(), &["clone", "-q", &url, "c"]);
    let c = d.path().join("c");
    let log = git_in(&c, &["log", "--format=%an %s"]);
    assert_eq!(
        log.lines().take(2).collect::<Vec<_>>(),
        ["ferry-bot ferry: update 1 image(s)", "human human change"]
    );
    assert!(c.join("HUMAN.txt").exists());
    assert_eq!(
        std::fs::read_to_string(c.join("charts/sensor/values.yaml")).unwrap(),
        expected()
    );
}

#[test]
fn a_separate_write_branch_gets_the_helm_commit() {
    let (_daemon, url, _r) = setup("apps.git", "charts/sensor/values.yaml", VALUES);
    let spec = json!({"source": {"repoURL": url, "targetRevision": "main", "path": "charts/sensor", "helm": {}}});
    let v = helm::values_file(&spec, Some("sensor.image"))
        .unwrap()
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let branch =
        gitops::prepare_write_branch(&config(cache.path()), &v.target, "ferry/sensor").unwrap();
    assert_eq!(branch.action, WriteBranchAction::Created);
    assert_eq!(
        branch.target,
        GitTarget {
            branch: "ferry/sensor".into(),
            ..v.target.clone()
        }
    );
    let wb = gitops::write_back_helm(&config(cache.path()), &branch.target, &[change(&v)]).unwrap();
    assert!(wb.commit.is_some());
    assert_eq!(
        remote_file(&url, "ferry/sensor", "charts/sensor/values.yaml"),
        expected()
    );
    assert_eq!(
        remote_file(&url, "main", "charts/sensor/values.yaml"),
        VALUES,
        "main is untouched"
    );
}
