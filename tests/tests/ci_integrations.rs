//! The CI integrations that run as shell: the release installer behind action.yml (checksum
//! verified, PATH extended, a wrong checksum refused).
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::process::Command;

use ferry_tests::bin;

#[test]
fn the_action_installer_verifies_the_checksum_and_extends_the_path() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    // A release tarball made from the built binaries.
    let stage = dir.path().join("stage");
    std::fs::create_dir(&stage).unwrap();
    std::fs::copy(bin("ferry-registry"), stage.join("ferry-registry")).unwrap();
    let tarball = dir.path().join("ferry-0.0.1-x86_64-linux.tar.gz");
    assert!(
        Command::new("tar")
            .arg("-czf")
            .arg(&tarball)
            .arg("-C")
            .arg(&stage)
            .arg("ferry-registry")
            .status()
            .unwrap()
            .success()
    );
    let sum = String::from_utf8(
        Command::new("sha256sum")
            .arg(&tarball)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let sha = sum.split_whitespace().next().unwrap().to_string();
    let template = format!(
        "file://{}/ferry-{{version}}-{{target}}.tar.gz",
        dir.path().display()
    );
    let gh_path = dir.path().join("github_path");
    let run = |sha: &str, dest: &str| {
        Command::new("bash")
            .arg(root.join("scripts/install-ferry.sh"))
            .env("VERSION", "0.0.1")
            .env("SHA_AMD64", sha)
            .env("SHA_ARM64", sha)
            .env("URL_TEMPLATE", &template)
            .env("DEST", dir.path().join(dest))
            .env("GITHUB_PATH", &gh_path)
            .output()
            .unwrap()
    };
    if std::env::consts::ARCH != "x86_64" {
        return; // the fixture tarball is named for x86_64 only
    }
    let o = run(&sha, "good");
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let installed = dir.path().join("good/ferry-registry");
    let v = Command::new(&installed).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).contains("ferry-registry"));
    assert_eq!(
        std::fs::read_to_string(&gh_path).unwrap().trim(),
        dir.path().join("good").to_str().unwrap()
    );
    let o = run(&"0".repeat(64), "bad");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("::error title=ferry::checksum mismatch"));
    assert!(
        !dir.path().join("bad/ferry-registry").exists(),
        "nothing unverified is unpacked"
    );
}

/// A repository whose base image is used by children as `:1` and untagged, and whose child has
/// build args with a space and a quote.
fn waves_repo() -> ferry_tests::GitRepo {
    let r = ferry_tests::GitRepo::new();
    r.write(
        "ferry.toml",
        "[images.base]\nrepository = \"registry.example.com/acme/base\"\n\n[images.app]\nrepository = \"registry.example.com/acme/app\"\nbuild_args = { GREETING = \"it's me\", PY = \"3.12\" }\n",
    );
    r.write("base/Dockerfile", "FROM alpine:3.20\nCOPY x /x\n");
    r.write("base/x", "1\n");
    r.write(
        "app/Dockerfile",
        "ARG PY\nFROM registry.example.com/acme/base:1\nCOPY y /y\n",
    );
    r.write("app/y", "1\n");
    r.write("other/Dockerfile", "FROM registry.example.com/acme/base\n");
    r.commit("first");
    r.write("base/x", "2\n");
    r.commit("base changes");
    r
}

/// A stand-in `docker` that records its arguments one per line.
fn fake_docker(dir: &std::path::Path) -> std::path::PathBuf {
    let bin_dir = dir.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let docker = bin_dir.join("docker");
    std::fs::write(
        &docker,
        "#!/bin/sh\n{ echo CALL; for a in \"$@\"; do printf '%s\\n' \"$a\"; done; } >> \"$DOCKER_LOG\"\ncat >/dev/null 2>&1 <&0 &\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin_dir
}

#[test]
fn the_generated_gitlab_build_pushes_the_tags_children_use_with_the_build_args() {
    let r = waves_repo();
    let o = Command::new(bin("ferry-detect"))
        .arg("--repo")
        .arg(r.path())
        .args(["changed", "--format", "gitlab"])
        .env_remove("GITHUB_ACTIONS")
        .env_remove("JENKINS_URL")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let template = &p[".ferry-build"];
    let script: Vec<&str> = template["before_script"]
        .as_array()
        .unwrap()
        .iter()
        .chain(template["script"].as_array().unwrap())
        .map(|l| l.as_str().unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = format!(
        "{}:{}",
        fake_docker(dir.path()).display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |job: &str| -> Vec<Vec<String>> {
        let log = dir.path().join(format!("{}.log", job.replace(' ', "_")));
        let mut c = Command::new("sh");
        c.arg("-ec").arg(script.join("\n"));
        for (k, v) in p[job]["variables"].as_object().unwrap() {
            c.env(k, v.as_str().unwrap());
        }
        let o = c
            .env("PATH", &path)
            .env("DOCKER_LOG", &log)
            .env("CI_COMMIT_SHA", "c0ffee")
            .env("CI_PROJECT_DIR", dir.path())
            .env("CI_REGISTRY", "registry.example.com")
            .env("CI_REGISTRY_USER", "ci")
            .env("CI_REGISTRY_PASSWORD", "secret")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{job}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::fs::read_to_string(&log)
            .unwrap()
            .split("CALL\n")
            .filter(|c| !c.is_empty())
            .map(|c| c.lines().map(str::to_string).collect())
            .collect()
    };
    let calls = run("build base");
    assert!(
        calls[0].contains(&"tonistiigi/binfmt".to_string()),
        "{calls:?}"
    );
    assert_eq!(calls[1][..2], ["login", "--username"]);
    assert!(calls[1].contains(&"registry.example.com".to_string()));
    let build = calls.last().unwrap();
    let tags: Vec<&str> = build
        .windows(2)
        .filter(|w| w[0] == "--tag")
        .map(|w| w[1].as_str())
        .collect();
    assert_eq!(
        tags,
        [
            "registry.example.com/acme/base:c0ffee",
            "registry.example.com/acme/base:1",
            "registry.example.com/acme/base:latest"
        ]
    );
    assert!(build.contains(&"org.opencontainers.image.revision=c0ffee".to_string()));
    assert_eq!(build.last().unwrap(), "base");
    assert!(!build.contains(&"--build-arg".to_string()));

    let build = run("build app").pop().unwrap();
    let args: Vec<&str> = build
        .windows(2)
        .filter(|w| w[0] == "--build-arg")
        .map(|w| w[1].as_str())
        .collect();
    assert_eq!(args, ["GREETING=it's me", "PY=3.12"]);
    assert_eq!(p["build app"]["needs"], serde_json::json!(["build base"]));
}

#[test]
fn the_github_example_turns_a_matrix_entry_into_tags_and_build_args() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let workflow = std::fs::read_to_string(root.join("docs/examples/github/build.yml")).unwrap();
    // The `run: |` block of the step with `id: image`.
    let after = &workflow[workflow.find("id: image").expect("step id: image")..];
    let block = &after[after.find("run: |").unwrap() + "run: |".len()..];
    let script: Vec<&str> = block
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("          ") || l.trim().is_empty())
        .map(|l| l.trim_start())
        .collect();
    assert!(script.len() > 3, "{script:?}");

    let r = waves_repo();
    let out = tempfile::NamedTempFile::new().unwrap();
    let o = Command::new(bin("ferry-detect"))
        .arg("--repo")
        .arg(r.path())
        .args(["changed", "--github-output"])
        .env_remove("GITHUB_ACTIONS")
        .env_remove("JENKINS_URL")
        .env("GITHUB_OUTPUT", out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(out.path()).unwrap();
    let waves: serde_json::Value =
        serde_json::from_str(text.lines().find_map(|l| l.strip_prefix("waves=")).unwrap()).unwrap();
    let step = |entry: &serde_json::Value| -> String {
        let gh_out = tempfile::NamedTempFile::new().unwrap();
        let o = Command::new("bash")
            .arg("-ec")
            .arg(script.join("\n"))
            .env("IMAGE", entry.to_string())
            .env("GITHUB_SHA", "c0ffee")
            .env("GITHUB_REPOSITORY", "Acme/Shop")
            .env("GITHUB_OUTPUT", gh_out.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(gh_out.path()).unwrap()
    };
    let base = step(&waves[0]["include"][0]);
    assert_eq!(
        base,
        "tags<<FERRY_EOF\nregistry.example.com/acme/base:1\nregistry.example.com/acme/base:c0ffee\nregistry.example.com/acme/base:latest\nFERRY_EOF\nbuild_args<<FERRY_EOF\nFERRY_EOF\nrepository=registry.example.com/acme/base\n"
    );
    let app = waves[1]["include"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "app")
        .unwrap();
    let app = step(app);
    assert!(
        app.contains("build_args<<FERRY_EOF\nGREETING=it's me\nPY=3.12\nFERRY_EOF\n"),
        "{app}"
    );
    // No repository in ferry.toml: GitHub's own registry, ghcr.io/OWNER/REPO/NAME in lower case.
    let other = waves[1]["include"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "other")
        .unwrap();
    assert_eq!(other["repository"], "");
    let other = step(other);
    assert!(
        other.starts_with("tags<<FERRY_EOF\nghcr.io/acme/shop/other:c0ffee\nghcr.io/acme/shop/other:latest\nFERRY_EOF\n"),
        "{other}"
    );
    assert!(
        other.ends_with("repository=ghcr.io/acme/shop/other\n"),
        "{other}"
    );
}
