//! `--github-app-id`, `--github-app-key-file`, `--github-app-installation-id`: where they show
//! in help, and the usage errors (exit 2) that name the missing or conflicting flag. The token
//! exchange itself is tested against a fake of GitHub in crates/deploy/src/forge/token_tests.rs.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use ferry_tests::bin;

/// `ferry-deploy --git-write-back <args> plan` against a kubeconfig nobody answers.
fn deploy(dir: &std::path::Path, args: &[&str]) -> Output {
    let kc = dir.join("kubeconfig");
    std::fs::write(&kc, "apiVersion: v1\nkind: Config\nclusters:\n- name: f\n  cluster:\n    server: http://127.0.0.1:1\ncontexts:\n- name: f\n  context:\n    cluster: f\n    user: f\ncurrent-context: f\nusers:\n- name: f\n  user: {}\n").unwrap();
    Command::new(bin("ferry-deploy"))
        .arg("--kubeconfig")
        .arg(&kc)
        .arg("--git-write-back")
        .args(args)
        .arg("plan")
        .env_remove("FERRY_GIT_TOKEN")
        .output()
        .unwrap()
}

#[test]
fn github_app_flags_are_in_the_git_write_back_group() {
    let o = Command::new(bin("ferry-deploy"))
        .args(["plan", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    let git = help
        .find("Git write-back:")
        .expect("a Git write-back group");
    let next = help[git..]
        .find("Controller:")
        .map_or(help.len(), |i| git + i);
    for flag in [
        "--github-app-id <ID>",
        "--github-app-key-file <FILE>",
        "--github-app-installation-id <ID>",
    ] {
        let at = help
            .find(flag)
            .unwrap_or_else(|| panic!("{flag} not in\n{help}"));
        assert!(
            at > git && at < next,
            "{flag} outside Git write-back:\n{help}"
        );
    }
}

#[test]
fn github_app_flags_come_in_pairs_and_exclude_the_token_file() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("app.pem");
    std::fs::write(
        &key,
        "-----BEGIN EC PRIVATE KEY-----\nc2VjcmV0\n-----END EC PRIVATE KEY-----\n",
    )
    .unwrap();
    let token = tmp.path().join("token");
    std::fs::write(&token, "t").unwrap();
    let (key, token) = (key.to_str().unwrap(), token.to_str().unwrap());
    let empty = tmp.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let empty = empty.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &["--github-app-id", "42"],
            "--github-app-id needs --github-app-key-file",
        ),
        (
            &["--github-app-key-file", key],
            "--github-app-key-file needs --github-app-id",
        ),
        (
            &["--github-app-installation-id", "7"],
            "--github-app-installation-id needs --github-app-id and --github-app-key-file",
        ),
        (
            &[
                "--github-app-id",
                "42",
                "--github-app-key-file",
                key,
                "--git-token-file",
                token,
            ],
            "--git-token-file and --github-app-id are two ways to the same token",
        ),
        (
            &["--github-app-id", "42", "--github-app-key-file", key],
            "GitHub App: not a PEM RSA private key",
        ),
        // An empty token file (the git-write-back component always passes one) is no conflict.
        (
            &[
                "--github-app-id",
                "42",
                "--github-app-key-file",
                key,
                "--git-token-file",
                empty,
            ],
            "GitHub App: not a PEM RSA private key",
        ),
    ];
    for (args, want) in cases {
        let o = deploy(tmp.path(), args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("c2VjcmV0"), "the key leaked: {err}");
    }
}
