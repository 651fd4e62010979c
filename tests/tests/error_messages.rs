//! Errors that point at the fix: a configuration problem exits 3 and names the path once; an
//! invalid reference is printed once and says which part breaks the grammar and what is valid.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::process::{Command, Output};

use ferry_tests::bin;

fn run(tool: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin(tool));
    c.args(args)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("FERRY_LOG")
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn said(o: &Output) -> (Option<i32>, String, String) {
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_missing_kubeconfig_is_a_configuration_problem_named_once() {
    let o = run(
        "ferry-deploy",
        &["--kubeconfig", "/nonexistent", "plan"],
        &[],
    );
    assert_eq!(
        said(&o),
        (
            Some(3),
            String::new(),
            "ferry-deploy: cannot read kubeconfig /nonexistent (from --kubeconfig): No such file or directory (os error 2)\n".into()
        )
    );
    let o = run(
        "ferry-deploy",
        &["plan"],
        &[("KUBECONFIG", "/nonexistent/config")],
    );
    assert_eq!(
        said(&o).2,
        "ferry-deploy: cannot read kubeconfig /nonexistent/config (from $KUBECONFIG): No such file or directory (os error 2)\n"
    );
    assert_eq!(o.status.code(), Some(3));
}

#[test]
fn an_unusable_kubeconfig_names_the_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, "apiVersion: v1\nkind: Config\nclusters: [\n").unwrap();
    let kc = kc.to_str().unwrap();
    let o = run("ferry-deploy", &["--kubeconfig", kc, "once"], &[]);
    let (code, _, err) = said(&o);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.starts_with(&format!(
            "ferry-deploy: kubeconfig {kc} (from --kubeconfig): "
        )),
        "{err}"
    );
    assert_eq!(err.matches(kc).count(), 1, "{err}");
}

#[test]
fn an_invalid_tag_is_named_with_a_valid_reference() {
    let o = run("ferry-registry", &["digest", "acme/app::1"], &[]);
    assert_eq!(
        said(&o),
        (
            Some(1),
            String::new(),
            "ferry-registry: invalid reference \"acme/app::1\": the tag \":1\" after ':' is not valid: a tag starts with a letter, digit or '_' and has at most 128 letters, digits, '_', '.' or '-' (for example acme/app:1)\n".into()
        )
    );
}

#[test]
fn an_uppercase_repository_is_named_once() {
    let o = run("ferry-registry", &["digest", "Acme/App::1"], &[]);
    assert_eq!(
        said(&o),
        (
            Some(1),
            String::new(),
            "ferry-registry: invalid reference \"Acme/App::1\": repository name (App) must be lowercase\n".into()
        )
    );
}

#[test]
fn a_missing_docker_config_or_ca_file_is_a_configuration_problem() {
    let o = run(
        "ferry-registry",
        &["digest", "nginx", "--docker-config", "/nonexistent"],
        &[],
    );
    assert_eq!(
        said(&o),
        (
            Some(3),
            String::new(),
            "ferry-registry: --docker-config /nonexistent: no such directory (name the directory that holds config.json)\n".into()
        )
    );
    let o = run(
        "ferry-registry",
        &["digest", "nginx", "--ca-file", "/nonexistent/ca.pem"],
        &[],
    );
    assert_eq!(
        said(&o),
        (
            Some(3),
            String::new(),
            "ferry-registry: invalid registry configuration: cannot read CA file /nonexistent/ca.pem: No such file or directory (os error 2)\n".into()
        )
    );
}
