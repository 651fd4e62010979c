//! The workflows and CI examples, run by the CI tools themselves:
//! - `actionlint` (with shellcheck for `run:` scripts) over every workflow under
//!   `.github/workflows/` and every GitHub example under `docs/examples/github/`: any finding
//!   fails, deprecated action runtimes included;
//! - `gitlab-ci-local` running the GitLab example's `detect` job for real (ferry-detect from this
//!   build) and then the child pipeline it generated, in the shell executor, with a stand-in
//!   `docker` that records its arguments: platforms, tags, build args and revision are checked.
//!
//! The tools are installed by `scripts/ci-tools.sh` into a cache outside the clone (the package
//! registries are reached the first time only); nothing here talks to the network.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ferry_tests::{GitRepo, bin};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The directory holding `actionlint` and `gitlab-ci-local` (installed by scripts/ci-tools.sh).
fn ci_tools() -> PathBuf {
    let o = Command::new("bash")
        .arg(root().join("scripts/ci-tools.sh"))
        .output()
        .expect("cannot run bash scripts/ci-tools.sh");
    assert!(
        o.status.success(),
        "scripts/ci-tools.sh could not install actionlint / gitlab-ci-local (they need PyPI and \
         npm the first time, and Debian's shellcheck and rsync):\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let dir = PathBuf::from(String::from_utf8(o.stdout).unwrap().trim());
    for tool in ["actionlint", "gitlab-ci-local"] {
        assert!(
            dir.join(tool).exists(),
            "{tool} is not in {}",
            dir.display()
        );
    }
    dir
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn actionlint(tools: &Path, dir: &Path, files: &[PathBuf]) -> Output {
    let shellcheck = Command::new("sh")
        .args(["-c", "command -v shellcheck"])
        .output()
        .unwrap();
    assert!(shellcheck.status.success(), "shellcheck is not on PATH");
    let shellcheck = String::from_utf8(shellcheck.stdout).unwrap();
    Command::new(tools.join("actionlint"))
        .current_dir(dir)
        .arg("-oneline")
        .arg(format!("-shellcheck={}", shellcheck.trim()))
        .args(files)
        .output()
        .unwrap()
}

/// Every `*.yml`/`*.yaml` directly in `dir`, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn actionlint_finds_nothing_in_the_workflows_and_the_github_examples() {
    let tools = ci_tools();
    let root = root();
    let mut files = yaml_files(&root.join(".github/workflows"));
    files.extend(yaml_files(&root.join("docs/examples/github")));
    let names: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    for must in [
        ".github/workflows/ci.yml",
        ".github/workflows/release.yml",
        "docs/examples/github/build.yml",
    ] {
        assert!(
            names.iter().any(|n| n == must),
            "{must} not linted: {names:?}"
        );
    }
    let o = actionlint(&tools, &root, &files);
    assert!(o.status.success(), "actionlint on {names:?}:\n{}", text(&o));

    // The same actionlint, shellcheck and rules do flag what they must: an action on node20 and
    // an unquoted variable in a `run:` script (so a clean result above means something).
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: echo $HOME\n",
    )
    .unwrap();
    let o = actionlint(&tools, dir.path(), &[bad]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains(r#"runtime "node20" is deprecated"#), "{out}");
    assert!(out.contains("SC2086"), "shellcheck did not run: {out}");
}

/// A stand-in `docker`: each call writes its arguments, one per line, to a new file in
/// `$DOCKER_LOG_DIR` (jobs run in parallel).
fn fake_docker(dir: &Path) -> PathBuf {
    let bin_dir = dir.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let docker = bin_dir.join("docker");
    std::fs::write(
        &docker,
        "#!/bin/sh\nf=$(mktemp \"$DOCKER_LOG_DIR/call.XXXXXX\")\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > \"$f\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin_dir
}

/// Every recorded docker call.
fn docker_calls(log_dir: &Path) -> Vec<Vec<String>> {
    std::fs::read_dir(log_dir)
        .unwrap()
        .map(|e| {
            let t = std::fs::read_to_string(e.unwrap().path()).unwrap();
            t.lines().map(str::to_string).collect()
        })
        .collect()
}

/// A GitLab project: `base` (wave 1) changes in the last commit; `app` (build args, one
/// platform) and `other` (no repository in ferry.toml) build on it; `lone` does not change.
fn project() -> (GitRepo, String) {
    let r = GitRepo::new();
    r.git(&[
        "remote",
        "add",
        "origin",
        "git@gitlab.example.com:acme/shop.git",
    ]);
    r.write(
        "ferry.toml",
        "[images.base]\nrepository = \"registry.example.com/acme/base\"\n\n\
         [images.app]\nrepository = \"registry.example.com/acme/app\"\nplatforms = [\"linux/arm64\"]\n\
         build_args = { GREETING = \"it's me\", PY = \"3.12\" }\n\n\
         [images.lone]\nrepository = \"registry.example.com/acme/lone\"\n",
    );
    r.write("base/Dockerfile", "FROM alpine:3.20\nCOPY x /x\n");
    r.write("base/x", "1\n");
    r.write(
        "app/Dockerfile",
        "ARG PY\nFROM registry.example.com/acme/base:1\nCOPY y /y\n",
    );
    r.write("app/y", "1\n");
    r.write("other/Dockerfile", "FROM registry.example.com/acme/base\n");
    r.write("lone/Dockerfile", "FROM alpine:3.20\n");
    let before = r.commit("first");
    r.write("base/x", "2\n");
    r.commit("base changes");
    (r, before)
}

/// The example's pipeline for a shell executor: its one `image:` line (the detect job's ferry
/// image) left out, everything else as the example has it.
fn example_for_the_shell() -> String {
    let example =
        std::fs::read_to_string(root().join("docs/examples/gitlab/.gitlab-ci.yml")).unwrap();
    let images = example
        .lines()
        .filter(|l| l.starts_with("  image: "))
        .count();
    assert_eq!(images, 1, "the example's detect job runs in one image");
    let lines: Vec<&str> = example
        .lines()
        .filter(|l| !l.starts_with("  image: "))
        .collect();
    lines.join("\n") + "\n"
}

/// `gitlab-ci-local` in `dir` with the stand-in docker and this build's ferry-detect first on
/// PATH; its own container calls go to `true` (the shell executor needs none).
fn gitlab_ci_local(tools: &Path, dir: &Path, fake: &Path, log: &Path, args: &[&str]) -> Output {
    let ferry = bin("ferry-detect").parent().unwrap().to_path_buf();
    let path = std::env::join_paths(
        [fake.to_path_buf(), ferry, tools.to_path_buf()]
            .into_iter()
            .chain(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            )),
    )
    .unwrap();
    Command::new(tools.join("gitlab-ci-local"))
        .current_dir(dir)
        .args(["--container-executable", "true"])
        .args(args)
        .env("PATH", path)
        .env("DOCKER_LOG_DIR", log)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("JENKINS_URL")
        .env_remove("FERRY_LOG")
        .output()
        .unwrap()
}

#[test]
fn the_gitlab_example_and_its_child_pipeline_run_in_gitlab_ci_local() {
    let tools = ci_tools();
    let (r, before) = project();
    let head = r.git(&["rev-parse", "HEAD"]);
    std::fs::write(r.path().join(".gitlab-ci.yml"), example_for_the_shell()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let fake = fake_docker(work.path());
    let log = work.path().join("docker-calls");
    std::fs::create_dir(&log).unwrap();
    let gcl = |args: &[&str]| gitlab_ci_local(&tools, r.path(), &fake, &log, args);

    // GitLab's schema accepts the example (gitlab-ci-local validates every file it reads).
    let o = gcl(&["--list"]);
    assert!(o.status.success(), "{}", text(&o));
    let listed = text(&o);
    assert!(
        listed.contains("detect") && listed.contains("build"),
        "{listed}"
    );

    // The detect job, as the example has it: the previous pipeline's commit is the base.
    let o = gcl(&[
        "detect",
        "--variable",
        &format!("CI_COMMIT_BEFORE_SHA={before}"),
    ]);
    let out = text(&o);
    assert!(o.status.success() && out.contains("PASS  detect"), "{out}");
    assert!(out.contains("3 of 4 image(s) to rebuild"), "{out}");
    let artifact = r
        .path()
        .join(".gitlab-ci-local/artifacts/detect/child-pipeline.yml");
    let mut child: Value =
        serde_json::from_str(&std::fs::read_to_string(artifact).unwrap()).unwrap();
    assert_eq!(
        child["build app"]["needs"],
        serde_json::json!(["build base"])
    );
    assert_eq!(
        child["build other"]["needs"],
        serde_json::json!(["build base"])
    );
    assert!(child.get("build lone").is_none(), "{child}");
    // The shell executor: the template's docker image and dind service left out, nothing else.
    let template = child[".ferry-build"].as_object_mut().unwrap();
    assert!(template.remove("image").is_some() && template.remove("services").is_some());
    let child_file = r.path().join("child-shell.yml");
    std::fs::write(&child_file, serde_json::to_string_pretty(&child).unwrap()).unwrap();
    assert!(docker_calls(&log).is_empty(), "detect ran docker");

    let o = gcl(&[
        "--file",
        "child-shell.yml",
        "--variable",
        "CI_REGISTRY=registry.gitlab.example",
        "--variable",
        "CI_REGISTRY_IMAGE=registry.gitlab.example/acme/shop",
        "--variable",
        "CI_REGISTRY_USER=ci",
        "--variable",
        "CI_REGISTRY_PASSWORD=secret",
    ]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    for job in ["build base", "build app", "build other"] {
        assert!(out.contains(&format!("PASS  {job}")), "{job}: {out}");
    }
    check_docker_calls(&docker_calls(&log), &head);
}

fn values<'a>(call: &'a [String], flag: &str) -> Vec<&'a str> {
    call.windows(2)
        .filter(|w| w[0] == flag)
        .map(|w| w[1].as_str())
        .collect()
}

/// What the three build jobs asked docker: QEMU and a login each, then one build per image
/// with its platforms, tags, build args and the revision as label and annotation.
fn check_docker_calls(calls: &[Vec<String>], head: &str) {
    let count = |first: &str| calls.iter().filter(|c| c[0] == first).count();
    assert_eq!(count("run"), 3, "{calls:?}");
    assert_eq!(count("login"), 3, "{calls:?}");
    assert!(calls.iter().filter(|c| c[0] == "login").all(|c| c
        == &[
            "login",
            "--username",
            "ci",
            "--password-stdin",
            "registry.gitlab.example"
        ]));
    let builds: BTreeMap<&str, &Vec<String>> = calls
        .iter()
        .filter(|c| c[..2] == ["buildx", "build"])
        .map(|c| (c.last().unwrap().as_str(), c))
        .collect();
    assert_eq!(
        builds.keys().copied().collect::<Vec<_>>(),
        ["app", "base", "other"]
    );
    let revision = format!("org.opencontainers.image.revision={head}");
    for (context, build) in &builds {
        assert_eq!(values(build, "--file"), [format!("{context}/Dockerfile")]);
        assert_eq!(values(build, "--label"), [revision.as_str()], "{build:?}");
        let annotation = format!("index,manifest:{revision}");
        assert_eq!(values(build, "--annotation"), [annotation.as_str()]);
        assert!(build.contains(&"--push".to_string()), "{build:?}");
    }
    let both = ["linux/amd64,linux/arm64"];
    assert_eq!(values(builds["base"], "--platform"), both);
    assert_eq!(values(builds["other"], "--platform"), both);
    assert_eq!(values(builds["app"], "--platform"), ["linux/arm64"]);
    let tags = |context: &str, repository: &str, extra: &[&str]| {
        let mut want = vec![format!("{repository}:{head}")];
        want.extend(extra.iter().map(|t| format!("{repository}:{t}")));
        assert_eq!(values(builds[context], "--tag"), want, "{context}");
    };
    tags("base", "registry.example.com/acme/base", &["1", "latest"]);
    tags("app", "registry.example.com/acme/app", &["latest"]);
    // No repository in ferry.toml: the project's own registry.
    tags(
        "other",
        "registry.gitlab.example/acme/shop/other",
        &["latest"],
    );
    let args = values(builds["app"], "--build-arg");
    assert_eq!(args, ["GREETING=it's me", "PY=3.12"]);
    assert!(values(builds["base"], "--build-arg").is_empty());
}
