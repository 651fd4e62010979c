//! `ferry-detect` tells where it looked and how to fix it: outside a repository it names the
//! absolute directory and `--repo DIR`; `-v` shows debug logs, `-vv` trace, `FERRY_LOG` wins.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::path::Path;
use std::process::{Command, Output};

use ferry_tests::{GitRepo, bin};

fn detect(dir: &Path, args: &[&str], ferry_log: Option<&str>) -> Output {
    let mut c = Command::new(bin("ferry-detect"));
    c.current_dir(dir)
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("JENKINS_URL")
        .env_remove("FERRY_LOG");
    if let Some(filter) = ferry_log {
        c.env("FERRY_LOG", filter);
    }
    c.output().unwrap()
}

#[test]
fn outside_a_repository_the_message_names_the_absolute_directory_and_repo() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("not-a-repo");
    std::fs::create_dir(&sub).unwrap();
    let absolute = std::fs::canonicalize(&sub).unwrap();
    let want = format!(
        "ferry-detect: no git repository at {} or any parent directory: use --repo DIR\n",
        absolute.display()
    );
    // From inside (the default `--repo .`) and named relatively from its parent.
    for (cwd, args) in [
        (&sub, vec!["changed"]),
        (
            &dir.path().to_path_buf(),
            vec!["--repo", "not-a-repo", "changed"],
        ),
        (&sub, vec!["graph"]),
    ] {
        let o = detect(cwd, &args, None);
        assert_eq!(o.status.code(), Some(3), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&o.stderr), want, "{args:?}");
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn dash_v_shows_debug_logs_dash_vv_trace_and_ferry_log_wins() {
    let r = GitRepo::new();
    r.write("app/Dockerfile", "FROM alpine:3.20\n");
    r.commit("first");
    let debug = "DEBUG opened the repository";
    let trace = "TRACE revision resolved rev=\"HEAD\"";
    let stderr = |args: &[&str], ferry_log: Option<&str>| {
        let o = detect(r.path(), args, ferry_log);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stderr).unwrap()
    };
    let quiet = stderr(&["changed"], None);
    assert!(
        !quiet.contains("DEBUG") && !quiet.contains("TRACE"),
        "{quiet}"
    );
    for v in ["-v", "--verbose"] {
        let e = stderr(&[v, "changed"], None);
        assert!(e.contains(debug) && !e.contains("TRACE"), "{v}: {e}");
    }
    // After the subcommand too (a global flag), and counted.
    let e = stderr(&["changed", "-vv"], None);
    assert!(e.contains(debug) && e.contains(trace), "{e}");
    let e = stderr(&["-vv", "changed"], Some("warn"));
    assert!(
        !e.contains("DEBUG") && !e.contains("TRACE"),
        "FERRY_LOG=warn: {e}"
    );
    let e = stderr(&["changed"], Some("debug"));
    assert!(
        e.contains(debug) && !e.contains("TRACE"),
        "FERRY_LOG=debug: {e}"
    );
}
