//! The `ferry-registry` binary's contract: subcommands, flags anywhere, JSON fields, exit codes,
//! XCom and GitHub outputs — against a real registry on 127.0.0.1.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use ferry_tests::{Flavor, Registry, RegistryOptions, bin, plain_client, push_image};
use serde_json::Value;

fn run(args: &[&str]) -> Output {
    Command::new(bin("ferry-registry"))
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .env("DOCKER_CONFIG", "/nonexistent-ferry-test")
        .output()
        .unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[test]
fn parse_prints_canonical_forms_and_json() {
    let o = run(&[
        "parse",
        "ubuntu",
        "localhost:5000/a/b:1",
        &format!("foo/bar:t@{D}"),
    ]);
    assert_eq!(code(&o), 0);
    assert_eq!(
        stdout(&o),
        format!("docker.io/library/ubuntu:latest\nlocalhost:5000/a/b:1\ndocker.io/foo/bar:t@{D}\n")
    );
    let o = run(&["parse", "--json", "python:3.12", "Bad:Ref"]);
    assert_eq!(code(&o), 1, "an invalid reference is a negative answer");
    let v = json(&o);
    assert_eq!(v[0]["input"], "python:3.12");
    assert_eq!(v[0]["canonical"], "docker.io/library/python:3.12");
    assert_eq!(v[0]["registry"], "docker.io");
    assert_eq!(v[0]["repository"], "library/python");
    assert_eq!(v[0]["tag"], "3.12");
    assert_eq!(v[0]["digest"], Value::Null);
    assert_eq!(v[0]["error"], Value::Null);
    assert_eq!(v[1]["canonical"], Value::Null);
    assert!(v[1]["error"].as_str().unwrap().contains("Bad:Ref"));
}

#[test]
fn parse_reads_files_and_stdin_and_usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("refs.txt");
    std::fs::write(&f, "# a comment\nalpine\n\nbusybox:1\n").unwrap();
    let o = run(&["parse", "-f", f.to_str().unwrap()]);
    assert_eq!(
        stdout(&o),
        "docker.io/library/alpine:latest\ndocker.io/library/busybox:1\n"
    );
    let mut child = Command::new(bin("ferry-registry"))
        .args(["parse", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"redis:7\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "docker.io/library/redis:7\n");
    assert_eq!(code(&run(&["parse"])), 2);
    assert_eq!(code(&run(&["frobnicate"])), 2);
    assert_eq!(code(&run(&["digest", "x", "--timeout", "soon"])), 2);
    assert_eq!(code(&run(&["verify", "x"])), 2, "--platforms is required");
    assert_eq!(code(&run(&["--help"])), 0);
}

#[tokio::test]
async fn digest_inspect_verify_tags_with_options_anywhere() {
    let reg = Registry::start();
    let c = plain_client(&reg.addr);
    let r = reg.reference("acme/etl:1.0");
    let pushed = push_image(
        &c,
        &r,
        &["linux/amd64", "linux/arm64/v8"],
        Flavor::Oci,
        false,
        true,
        "cli",
    )
    .await;
    let name = r.to_string();
    let missing = reg.reference("acme/etl:nope").to_string();

    // Options before the subcommand, after it, and after its arguments.
    let o = run(&["--plain-http", &reg.addr, "digest", &name]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout(&o), format!("{}\n", pushed.digest));
    let o = run(&[
        "digest",
        &name,
        "--platform",
        "linux/arm64",
        "--plain-http",
        &reg.addr,
    ]);
    assert_eq!(stdout(&o), format!("{}\n", pushed.children[1].1));

    let o = run(&[
        "digest",
        "--plain-http",
        &reg.addr,
        "--json",
        &name,
        &missing,
    ]);
    assert_eq!(code(&o), 1);
    let v = json(&o);
    assert_eq!(v[0]["reference"], name.as_str());
    assert_eq!(v[0]["canonical"], name.as_str());
    assert_eq!(v[0]["digest"], pushed.digest.to_string());
    assert_eq!(
        v[0]["media_type"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(v[0]["platform"], Value::Null);
    assert_eq!(v[0]["rate_limit"], Value::Null);
    assert_eq!(v[0]["error"], Value::Null);
    assert_eq!(v[1]["digest"], Value::Null);
    assert!(v[1]["error"].as_str().unwrap().contains("not found"));

    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("refs");
    std::fs::write(&list, format!("{name}\n{name}\n")).unwrap();
    let o = run(&[
        "digest",
        "-f",
        list.to_str().unwrap(),
        "--plain-http",
        &reg.addr,
    ]);
    assert_eq!(
        stdout(&o),
        format!("{0} {name}\n{0} {name}\n", pushed.digest)
    );

    let o = run(&["inspect", &name, "--json", "--plain-http", &reg.addr]);
    assert_eq!(code(&o), 0);
    let v = json(&o);
    assert_eq!(v["canonical"], name.as_str());
    assert_eq!(v["digest"], pushed.digest.to_string());
    assert!(v["size"].as_u64().unwrap() > 0);
    let plats: Vec<&str> = v["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["platform"].as_str().unwrap())
        .collect();
    assert_eq!(plats, ["linux/amd64", "linux/arm64/v8"]);
    assert_eq!(
        v["platforms"][0]["digest"],
        pushed.children[0].1.to_string()
    );
    assert_eq!(v["attestations"].as_array().unwrap().len(), 2);
    assert_eq!(
        v["attestations"][0]["refers_to"],
        pushed.children[0].1.to_string()
    );
    let o = run(&["inspect", &name, "--plain-http", &reg.addr]);
    assert!(stdout(&o).contains("linux/arm64/v8"), "{}", stdout(&o));

    let o = run(&[
        "verify",
        &name,
        "--platforms",
        "linux/amd64,linux/arm64",
        "--plain-http",
        &reg.addr,
    ]);
    assert_eq!(code(&o), 0);
    let o = run(&[
        "verify",
        &name,
        "--platforms",
        "linux/amd64,linux/arm/v7",
        "--plain-http",
        &reg.addr,
        "--json",
    ]);
    assert_eq!(code(&o), 1);
    assert_eq!(json(&o)["missing"], serde_json::json!(["linux/arm/v7"]));

    let o = run(&[
        "tags",
        &reg.reference("acme/etl").to_string(),
        "--json",
        "--plain-http",
        &reg.addr,
    ]);
    assert_eq!(json(&o), serde_json::json!(["1.0"]));
    let o = run(&[
        "tags",
        &reg.reference("acme/none").to_string(),
        "--plain-http",
        &reg.addr,
    ]);
    assert_eq!(code(&o), 1);
}

#[tokio::test]
async fn mirror_xcom_and_github_output() {
    let reg = Registry::start();
    let c = plain_client(&reg.addr);
    let pushed = push_image(
        &c,
        &reg.reference("library/etl:latest"),
        &["linux/amd64", "linux/arm64"],
        Flavor::Docker,
        false,
        false,
        "m",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let xcom = dir.path().join("xcom/return.json");
    let gh = dir.path().join("gh_output");
    std::fs::write(&gh, "earlier=1\n").unwrap();
    let mirror = format!("docker.io=http://{}", reg.addr);
    let o = Command::new(bin("ferry-registry"))
        .args([
            "digest",
            "etl",
            "--mirror",
            &mirror,
            "--xcom",
            "--xcom-path",
            xcom.to_str().unwrap(),
            "--github-output",
        ])
        .env("GITHUB_OUTPUT", &gh)
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout(&o), format!("{}\n", pushed.digest));
    let x: Value = serde_json::from_str(&std::fs::read_to_string(&xcom).unwrap()).unwrap();
    assert_eq!(x[0]["digest"], pushed.digest.to_string());
    assert_eq!(x[0]["canonical"], "docker.io/library/etl:latest");
    let g = std::fs::read_to_string(&gh).unwrap();
    assert!(g.starts_with("earlier=1\n"));
    assert!(g.contains(&format!("\ndigest={}\n", pushed.digest)), "{g}");
}

#[tokio::test]
async fn wait_times_out_with_exit_1_and_finds_existing_images() {
    let reg = Registry::start();
    let c = plain_client(&reg.addr);
    let r = reg.reference("acme/w:sha-1");
    let pushed = push_image(
        &c,
        &r,
        &["linux/amd64", "linux/arm64"],
        Flavor::Oci,
        false,
        false,
        "w",
    )
    .await;
    let o = run(&[
        "wait",
        &r.to_string(),
        "--platforms",
        "linux/amd64,linux/arm64",
        "--timeout",
        "5s",
        "--interval",
        "100ms",
        "--plain-http",
        &reg.addr,
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout(&o), format!("{}\n", pushed.digest));
    let o = run(&[
        "wait",
        &r.to_string(),
        "--platforms",
        "linux/s390x",
        "--timeout",
        "600ms",
        "--interval",
        "100ms",
        "--plain-http",
        &reg.addr,
        "--json",
    ]);
    assert_eq!(code(&o), 1);
    let v = json(&o);
    assert_eq!(v["ready"], false);
    assert!(v["reason"].as_str().unwrap().contains("linux/s390x"), "{v}");
}

#[tokio::test]
async fn credentials_from_docker_config_and_operational_errors_exit_3() {
    let reg = Registry::start_with(RegistryOptions {
        basic_auth: Some(("ci".into(), "pw".into())),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    // base64("ci:pw")
    std::fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"Y2k6cHc="}}}}}}"#, reg.addr),
    )
    .unwrap();
    let cfg = ferry_registry::DockerConfig::load_dir(dir.path()).unwrap();
    let c = ferry_registry::Client::new(ferry_registry::ClientConfig {
        plain_http: vec![reg.addr.clone()],
        credentials: std::sync::Arc::new(cfg),
        ..Default::default()
    })
    .unwrap();
    let r = reg.reference("private/x:1");
    let pushed = push_image(&c, &r, &["linux/amd64"], Flavor::Oci, false, false, "p").await;
    let o = run(&[
        "digest",
        &r.to_string(),
        "--plain-http",
        &reg.addr,
        "--docker-config",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout(&o), format!("{}\n", pushed.digest));
    let o = run(&["digest", &r.to_string(), "--plain-http", &reg.addr]);
    assert_eq!(code(&o), 3, "no credentials → authentication failure");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("authentication"), "{stderr}");

    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = l.local_addr().unwrap().to_string();
    drop(l);
    let o = run(&[
        "digest",
        &format!("{dead}/a/b"),
        "--plain-http",
        &dead,
        "--timeout",
        "2s",
    ]);
    assert_eq!(code(&o), 3);
}

#[test]
fn broken_pipe_on_stdout_is_success() {
    let refs: Vec<String> = (0..20000).map(|i| format!("img{i}")).collect();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("many");
    std::fs::write(&f, refs.join("\n")).unwrap();
    let mut child = Command::new(bin("ferry-registry"))
        .args(["parse", "-f", f.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[tokio::test]
async fn tls_registry_needs_the_ca_file() {
    let reg = Registry::start_with(RegistryOptions {
        tls: true,
        ..Default::default()
    });
    let ca = reg.ca_file();
    let c = ferry_registry::Client::new(ferry_registry::ClientConfig {
        ca_file: Some(ca.clone()),
        ..Default::default()
    })
    .unwrap();
    let r = reg.reference("secure/x:1");
    let pushed = push_image(&c, &r, &["linux/amd64"], Flavor::Oci, false, false, "tls").await;
    let o = run(&["digest", &r.to_string(), "--ca-file", ca.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout(&o), format!("{}\n", pushed.digest));
    let o = run(&["digest", &r.to_string(), "--timeout", "5s"]);
    assert_eq!(code(&o), 3, "an unknown CA is an operational error");
    let o = run(&["digest", &r.to_string(), "--ca-file", "/nonexistent/ca.pem"]);
    assert_eq!(code(&o), 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/ca.pem"));
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The cause chain is printed once: the URL appears once, no link repeats the one before.
fn assert_said_once(err: &str, url: &str) {
    assert_eq!(err.matches(url).count(), 1, "the URL once: {err}");
    assert!(
        !err.contains("error sending request"),
        "no wrapper text: {err}"
    );
    assert_eq!(err.lines().count(), 1, "one line without -v: {err}");
}

#[test]
fn a_dns_failure_names_the_lookup_and_its_cause() {
    let o = run(&["digest", "ferry-test.invalid/x:1", "--timeout", "5s"]);
    assert_eq!(code(&o), 3);
    let err = stderr(&o);
    let url = "https://ferry-test.invalid/v2/x/manifests/1";
    assert!(
        err.contains(&format!("request to {url} failed: dns error: ")),
        "{err}"
    );
    assert_said_once(&err, url);
    // -v adds every link of the chain on its own line.
    let o = run(&["-v", "digest", "ferry-test.invalid/x:1", "--timeout", "5s"]);
    assert_eq!(code(&o), 3);
    let verbose = stderr(&o);
    assert!(verbose.contains("\n  caused by: "), "{verbose}");
    assert!(verbose.contains("innermost cause (debug): "), "{verbose}");
}

#[test]
fn a_refused_connection_says_connection_refused() {
    // A port that was free a moment ago: nothing listens there.
    let port = ferry_tests::free_port();
    let host = format!("127.0.0.1:{port}");
    let o = run(&["digest", &format!("{host}/x:1"), "--plain-http", &host]);
    assert_eq!(code(&o), 3);
    let err = stderr(&o);
    let url = format!("http://{host}/v2/x/manifests/1");
    assert!(
        err.contains(&format!(
            "request to {url} failed: tcp connect error: Connection refused"
        )),
        "{err}"
    );
    assert_said_once(&err, &url);
}

#[test]
fn an_untrusted_certificate_says_so() {
    let reg = Registry::start_with(RegistryOptions {
        tls: true,
        ..Default::default()
    });
    let r = reg.reference("secure/x:1");
    let o = run(&["digest", &r.to_string(), "--timeout", "5s"]);
    assert_eq!(code(&o), 3);
    let err = stderr(&o);
    let url = format!("https://{}/v2/secure/x/manifests/1", reg.addr);
    assert!(err.contains(&format!("request to {url} failed: ")), "{err}");
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer"),
        "the TLS cause is named: {err}"
    );
    assert_said_once(&err, &url);
}

#[test]
fn logs_have_no_colour_codes_when_stderr_is_not_a_terminal() {
    let o = run(&["-v", "digest", "ferry-test.invalid/x:1", "--timeout", "5s"]);
    assert!(stderr(&o).contains("DEBUG"), "{}", stderr(&o));
    assert!(!stderr(&o).contains('\u{1b}'), "{:?}", stderr(&o));
}
