//! A separate write branch (`ferry.dev/git-write-branch`) against a real `git daemon` on
//! 127.0.0.1: created from the base branch when missing, fast-forwarded when behind, left alone
//! when ahead, refused when diverged (and never force-pushed), and ferry's commit lands on it
//! while the base branch stays as it was.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use ferry_deploy::gitops::{self, GitTarget, ImageChange, WriteBackConfig, WriteBranchAction};
use ferry_tests::{GitDaemon, GitRepo, git_in};

const OLD: &str = "ghcr.io/acme/sensor:1.0@sha256:1111111111111111111111111111111111111111111111111111111111111111";
const NEW: &str = "ghcr.io/acme/sensor:1.1@sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn setup() -> (GitDaemon, String, GitRepo) {
    let daemon = GitDaemon::start();
    let url = daemon.create("config.git");
    let r = GitRepo::new();
    r.write(
        "apps/sensor/deployment.yaml",
        &format!("kind: Deployment\nmetadata:\n  name: sensor\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: {OLD}\n"),
    );
    r.commit("initial");
    r.git(&["push", "-q", &url, "main"]);
    (daemon, url, r)
}

fn config(dir: &std::path::Path) -> WriteBackConfig {
    WriteBackConfig {
        cache_dir: dir.to_path_buf(),
        ..Default::default()
    }
}

fn base(url: &str, branch: &str) -> GitTarget {
    GitTarget {
        repo: url.to_string(),
        branch: branch.into(),
        path: "apps/sensor".into(),
    }
}

/// The remote's tip of `branch`, or `None`.
fn remote_tip(url: &str, branch: &str) -> Option<String> {
    let d = tempfile::tempdir().unwrap();
    let out = git_in(
        d.path(),
        &["ls-remote", url, &format!("refs/heads/{branch}")],
    );
    out.split_whitespace().next().map(str::to_string)
}

/// A commit on `branch` (created from the local `main` when new) pushed to the remote.
fn commit_on(r: &GitRepo, url: &str, branch: &str, file: &str) {
    r.git(&["checkout", "-q", "-B", branch]);
    r.write(file, file);
    r.commit(file);
    r.git(&["push", "-q", url, &format!("{branch}:{branch}")]);
    r.git(&["checkout", "-q", "main"]);
}

#[test]
fn a_missing_write_branch_is_created_from_the_base_and_gets_the_commit() {
    let (_daemon, url, _r) = setup();
    let cache = tempfile::tempdir().unwrap();
    let main_tip = remote_tip(&url, "main").unwrap();
    assert_eq!(remote_tip(&url, "ferry/updates"), None);
    // `HEAD` (Argo CD's default) resolves to the remote's default branch.
    let wb =
        gitops::prepare_write_branch(&config(cache.path()), &base(&url, "HEAD"), "ferry/updates")
            .unwrap();
    assert_eq!(wb.action, WriteBranchAction::Created);
    assert_eq!(wb.base, "main");
    assert_eq!(wb.tip, main_tip);
    assert_eq!(
        wb.target,
        GitTarget {
            branch: "ferry/updates".into(),
            ..base(&url, "main")
        }
    );
    assert_eq!(
        remote_tip(&url, "ferry/updates").as_deref(),
        Some(main_tip.as_str())
    );
    let change = ImageChange {
        workload: "iot/Deployment/sensor".into(),
        kind: "Deployment".into(),
        name: "sensor".into(),
        container: "app".into(),
        old_image: OLD.into(),
        new_image: NEW.into(),
        path: None,
    };
    let done = gitops::write_back(&config(cache.path()), &wb.target, &[change]).unwrap();
    let commit = done.commit.expect("a commit on the write branch");
    assert_eq!(remote_tip(&url, "ferry/updates"), Some(commit));
    assert_eq!(
        remote_tip(&url, "main"),
        Some(main_tip),
        "the base branch is untouched"
    );
    // With ferry's commit on it, the write branch is ahead of main: left alone.
    let again =
        gitops::prepare_write_branch(&config(cache.path()), &base(&url, "main"), "ferry/updates")
            .unwrap();
    assert_eq!(again.action, WriteBranchAction::Ahead);
}

#[test]
fn a_write_branch_behind_the_base_is_fast_forwarded() {
    let (_daemon, url, r) = setup();
    let cache = tempfile::tempdir().unwrap();
    r.git(&["push", "-q", &url, "main:ferry"]);
    commit_on(&r, &url, "main", "docs/new.md");
    let main_tip = remote_tip(&url, "main").unwrap();
    assert_ne!(
        remote_tip(&url, "ferry").as_deref(),
        Some(main_tip.as_str())
    );
    let wb =
        gitops::prepare_write_branch(&config(cache.path()), &base(&url, "main"), "ferry").unwrap();
    assert_eq!(wb.action, WriteBranchAction::FastForwarded);
    assert_eq!(remote_tip(&url, "ferry"), Some(main_tip.clone()));
    assert_eq!(wb.tip, main_tip);
    let again =
        gitops::prepare_write_branch(&config(cache.path()), &base(&url, "main"), "ferry").unwrap();
    assert_eq!(again.action, WriteBranchAction::UpToDate);
}

#[test]
fn a_diverged_write_branch_is_refused_and_never_forced() {
    let (_daemon, url, r) = setup();
    let cache = tempfile::tempdir().unwrap();
    commit_on(&r, &url, "ferry", "pending.md");
    commit_on(&r, &url, "main", "moved-on.md");
    let before = remote_tip(&url, "ferry");
    let e = gitops::prepare_write_branch(&config(cache.path()), &base(&url, "main"), "ferry")
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("diverged from main") && text.contains("never force-pushes"),
        "{text}"
    );
    assert!(
        matches!(&e, ferry_deploy::Error::Git { branch, .. } if branch == "ferry"),
        "{e:?}"
    );
    assert_eq!(
        remote_tip(&url, "ferry"),
        before,
        "the write branch is unchanged"
    );
}

#[test]
fn the_base_itself_and_bad_names() {
    let (_daemon, url, _r) = setup();
    let cache = tempfile::tempdir().unwrap();
    let same =
        gitops::prepare_write_branch(&config(cache.path()), &base(&url, "main"), "main").unwrap();
    assert_eq!(same.action, WriteBranchAction::UpToDate);
    for bad in ["", "a..b", "x y", "-x", "ends/"] {
        let e = gitops::prepare_write_branch(&config(cache.path()), &base(&url, "main"), bad)
            .unwrap_err();
        assert!(
            e.to_string().contains("is not a valid branch name"),
            "{bad:?}: {e}"
        );
    }
    assert_eq!(remote_tip(&url, "x y"), None);
}
