//! The commit list of a pull request body: the commits between two source revisions, read from
//! a real `git daemon` on 127.0.0.1 (newest first, capped, a missing revision named).
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use ferry_deploy::gitops::{self, WriteBackConfig};
use ferry_tests::{GitDaemon, GitRepo};

#[test]
fn commits_between_two_revisions_are_listed_newest_first_and_capped() {
    let daemon = GitDaemon::start();
    let url = daemon.create("src.git");
    let r = GitRepo::new();
    let mut ids = Vec::new();
    for i in 1..=5 {
        r.write("main.go", &format!("package main // {i}\n"));
        r.commit(&format!("change {i}"));
        ids.push(r.git(&["rev-parse", "HEAD"]).trim().to_string());
    }
    r.git(&["push", "-q", &url, "main"]);
    let cache = tempfile::tempdir().unwrap();
    let config = WriteBackConfig {
        cache_dir: cache.path().into(),
        ..Default::default()
    };
    let (lines, more) = gitops::commits_between(&config, &url, &ids[0], &ids[4], 3).unwrap();
    let titles: Vec<&str> = lines.iter().map(|l| l.title.as_str()).collect();
    assert_eq!(titles, ["change 5", "change 4", "change 3"]);
    assert_eq!(
        more, 1,
        "change 2 is counted, change 1 is the running revision"
    );
    assert!(ids[4].starts_with(&lines[0].id), "{:?}", lines[0]);
    let (all, more) = gitops::commits_between(&config, &url, &ids[3], &ids[4], 30).unwrap();
    assert_eq!((all.len(), more), (1, 0));
    let unknown = "0123456789abcdef0123456789abcdef01234567";
    let e = gitops::commits_between(&config, &url, unknown, &ids[4], 3).unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("revision {unknown} is not on main")),
        "{e}"
    );
}
