//! Git write-back against a real `git daemon` on 127.0.0.1: kustomize and manifest edits that
//! keep formatting, one commit per pass, no commit when nothing changes, a branch that moves
//! during the push (a server-side hook), reverts recognised, fixed revisions refused.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use ferry_deploy::gitops::{self, GitTarget, ImageChange, WriteBackConfig};
use ferry_tests::{GitDaemon, GitRepo, git_in};

const OLD: &str = "ghcr.io/acme/sensor:1.0@sha256:1111111111111111111111111111111111111111111111111111111111111111";
const NEW: &str = "ghcr.io/acme/sensor:1.1@sha256:2222222222222222222222222222222222222222222222222222222222222222";

const KUSTOMIZATION: &str = "# sensors in the iot namespace\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deployment.yaml   # the app\nimages:\n  - name: ghcr.io/acme/sensor\n    newTag: \"1.0\"\n    digest: sha256:1111111111111111111111111111111111111111111111111111111111111111\n  - name: redis # untouched\n    newTag: '7'\n";

const MANIFESTS: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: other\n---\n# other app\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: other\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: \"ghcr.io/acme/sensor:1.0@sha256:1111111111111111111111111111111111111111111111111111111111111111\"   # pinned\n        - name: proxy\n          image: envoy:1\n";

fn setup() -> (GitDaemon, String, GitRepo) {
    let daemon = GitDaemon::start();
    let url = daemon.create("config.git");
    let r = GitRepo::new();
    r.write("apps/sensor/kustomization.yaml", KUSTOMIZATION);
    r.write(
        "apps/sensor/deployment.yaml",
        "kind: Deployment\nmetadata:\n  name: sensor\n",
    );
    r.write("apps/other/all.yaml", MANIFESTS);
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

fn change(kind: &str, name: &str, container: &str) -> ImageChange {
    ImageChange {
        workload: format!("iot/{kind}/{name}"),
        kind: kind.into(),
        name: name.into(),
        container: container.into(),
        old_image: OLD.into(),
        new_image: NEW.into(),
        path: None,
    }
}

fn remote_file(url: &str, file: &str) -> String {
    let d = tempfile::tempdir().unwrap();
    git_in(d.path(), &["clone", "-q", url, "c"]);
    std::fs::read_to_string(d.path().join("c").join(file)).unwrap()
}

#[test]
fn kustomize_images_entry_is_updated_once_and_only_once() {
    let (_daemon, url, _r) = setup();
    let cache = tempfile::tempdir().unwrap();
    let target = GitTarget {
        repo: url.clone(),
        branch: "main".into(),
        path: "apps/sensor".into(),
    };
    let wb = gitops::write_back(
        &config(cache.path()),
        &target,
        &[change("Deployment", "sensor", "app")],
    )
    .unwrap();
    assert!(wb.commit.is_some(), "{wb:?}");
    assert_eq!(wb.files, ["apps/sensor/kustomization.yaml"]);
    assert_eq!(
        remote_file(&url, "apps/sensor/kustomization.yaml"),
        KUSTOMIZATION
            .replace("newTag: \"1.0\"", "newTag: \"1.1\"")
            .replace(
                "digest: sha256:1111111111111111111111111111111111111111111111111111111111111111",
                // Plain stays plain: YAML 1.1 and 1.2 read `sha256:…` as a string.
                "digest: sha256:2222222222222222222222222222222222222222222222222222222222222222"
            )
    );
    let d = tempfile::tempdir().unwrap();
    git_in(d.path(), &["clone", "-q", &url, "c"]);
    let log = git_in(
        &d.path().join("c"),
        &["log", "-1", "--format=%an <%ae>%n%B"],
    );
    assert!(
        log.starts_with("ferry-bot <ferry@example.invalid>\nferry: update 1 image(s)\n"),
        "{log}"
    );
    assert!(
        log.contains(&format!("- iot/Deployment/sensor app: {OLD} → {NEW}")),
        "{log}"
    );
    assert!(log.contains(gitops::COMMIT_MARKER));
    // A second pass changes nothing and commits nothing.
    let again = gitops::write_back(
        &config(cache.path()),
        &target,
        &[change("Deployment", "sensor", "app")],
    )
    .unwrap();
    assert_eq!(again.commit, None);
}

#[test]
fn manifests_are_edited_where_the_workload_is_defined() {
    let (_daemon, url, _r) = setup();
    let cache = tempfile::tempdir().unwrap();
    let target = GitTarget {
        repo: url.clone(),
        branch: "main".into(),
        path: "apps/other".into(),
    };
    let wb = gitops::write_back(
        &config(cache.path()),
        &target,
        &[change("Deployment", "other", "app")],
    )
    .unwrap();
    assert_eq!(wb.files, ["apps/other/all.yaml"]);
    assert_eq!(
        remote_file(&url, "apps/other/all.yaml"),
        MANIFESTS.replace(OLD, NEW)
    );
    let missing = gitops::write_back(
        &config(cache.path()),
        &target,
        &[change("StatefulSet", "nope", "app")],
    )
    .unwrap();
    assert_eq!(missing.commit, None);
    assert!(
        missing.problems[0]
            .to_string()
            .contains("no manifest for StatefulSet nope"),
        "{missing:?}"
    );
}

#[test]
fn a_branch_that_moves_during_the_push_gets_both_commits_without_force() {
    let (daemon, url, _r) = setup();
    // The server moves main once (a human commit) and rejects the push that raced it.
    let hook = daemon.root.path().join("config.git/hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\ncat >/dev/null\nif [ ! -f moved-once ]; then\n  touch moved-once\n  # Leave the push quarantine so that this commit and the ref update are real.\n  unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES\n  tip=$(git rev-parse refs/heads/main)\n  blob=$(echo human | git hash-object -w --stdin)\n  tree=$( (git ls-tree \"$tip\"; printf '100644 blob %s\\tHUMAN.txt\\n' \"$blob\") | git mktree)\n  c=$(GIT_AUTHOR_NAME=human GIT_AUTHOR_EMAIL=h@x GIT_COMMITTER_NAME=human GIT_COMMITTER_EMAIL=h@x git commit-tree \"$tree\" -p \"$tip\" -m 'human change')\n  git update-ref refs/heads/main \"$c\" \"$tip\"\n  echo 'branch moved' >&2\n  exit 1\nfi\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let target = GitTarget {
        repo: url.clone(),
        branch: "main".into(),
        path: "apps/sensor".into(),
    };
    let wb = gitops::write_back(
        &config(cache.path()),
        &target,
        &[change("Deployment", "sensor", "app")],
    )
    .unwrap();
    assert_eq!(wb.attempts, 2, "{wb:?}");
    let d = tempfile::tempdir().unwrap();
    git_in(d.path(), &["clone", "-q", &url, "c"]);
    let c = d.path().join("c");
    let log = git_in(&c, &["log", "--format=%an %s"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines[0], "ferry-bot ferry: update 1 image(s)");
    assert_eq!(
        lines[1], "human human change",
        "the human commit is kept under ferry's"
    );
    assert!(c.join("HUMAN.txt").exists());
    assert_eq!(git_in(&c, &["rev-parse", "HEAD"]), wb.commit.unwrap());
}

#[test]
fn a_human_revert_quarantines_the_digest() {
    let (_daemon, url, r) = setup();
    let cache = tempfile::tempdir().unwrap();
    let target = GitTarget {
        repo: url.clone(),
        branch: "main".into(),
        path: "apps/sensor".into(),
    };
    gitops::write_back(
        &config(cache.path()),
        &target,
        &[change("Deployment", "sensor", "app")],
    )
    .unwrap();
    let new_digest = NEW.rsplit_once('@').unwrap().1;
    let (repo, tip) = gitops::fetch(&config(cache.path()), &target).unwrap();
    assert_eq!(
        gitops::reverted(&repo, tip, new_digest),
        None,
        "still in place"
    );
    r.git(&["pull", "-q", "--no-rebase", &url, "main"]);
    r.git(&["revert", "--no-edit", "HEAD"]);
    r.git(&["push", "-q", &url, "main"]);
    let (repo, tip) = gitops::fetch(&config(cache.path()), &target).unwrap();
    let (_, author) = gitops::reverted(&repo, tip, new_digest).expect("revert recognised");
    assert_eq!(author, "ferry test");
    assert_eq!(gitops::reverted(&repo, tip, "sha256:never-written"), None);
    let bad = GitTarget {
        branch: "no-such-branch".into(),
        ..target
    };
    let Err(e) = gitops::fetch(&config(cache.path()), &bad) else {
        panic!("fetched a missing branch")
    };
    assert!(e.to_string().contains("does not exist"), "{e}");
}

#[test]
fn head_means_the_default_branch_of_the_remote() {
    let (_daemon, url, _r) = setup();
    let cache = tempfile::tempdir().unwrap();
    let target = GitTarget {
        repo: url.clone(),
        branch: "HEAD".into(),
        path: "apps/other/all.yaml".into(),
    };
    let resolved = gitops::resolve_branch(&config(cache.path()), &target).unwrap();
    assert_eq!(resolved.branch, "main");
    let wb = gitops::write_back(
        &config(cache.path()),
        &target,
        &[change("Deployment", "other", "proxy")],
    )
    .unwrap();
    assert!(wb.commit.is_some());
    // `image: envoy:1` was plain, and stays plain.
    assert!(remote_file(&url, "apps/other/all.yaml").contains(&format!("image: {NEW}\n")));
}

#[test]
fn two_applications_in_one_repository_get_one_commit() {
    let (_daemon, url, _r) = setup();
    let cache = tempfile::tempdir().unwrap();
    let target = GitTarget {
        repo: url.clone(),
        branch: "main".into(),
        path: String::new(),
    };
    let changes = [
        ImageChange {
            path: Some("apps/sensor".into()),
            ..change("Deployment", "sensor", "app")
        },
        ImageChange {
            path: Some("apps/other".into()),
            ..change("Deployment", "other", "app")
        },
    ];
    let wb = gitops::write_back(&config(cache.path()), &target, &changes).unwrap();
    assert_eq!(
        wb.files,
        ["apps/other/all.yaml", "apps/sensor/kustomization.yaml"]
    );
    let d = tempfile::tempdir().unwrap();
    git_in(d.path(), &["clone", "-q", &url, "c"]);
    let c = d.path().join("c");
    assert_eq!(
        git_in(&c, &["rev-list", "--count", "HEAD"]),
        "2",
        "initial + one ferry commit"
    );
    assert_eq!(
        git_in(&c, &["show", "--name-only", "--format=", "HEAD"]),
        "apps/other/all.yaml\napps/sensor/kustomization.yaml"
    );
}
