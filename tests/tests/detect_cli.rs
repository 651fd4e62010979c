//! `ferry-detect` on real git repositories made by the tests (checkouts, bare, shallow and
//! blobless clones from a real `git daemon` on 127.0.0.1), through the binary's contract.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::process::{Command, Output};

use ferry_tests::{GitDaemon, GitRepo, bin, git_in};
use serde_json::Value;

fn run_in(dir: &std::path::Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin("ferry-detect"));
    c.arg("--repo")
        .arg(dir)
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_EVENT_PATH");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn changed_json(dir: &std::path::Path, args: &[&str]) -> Value {
    let mut a = vec!["changed", "--json"];
    a.extend_from_slice(args);
    let o = run_in(dir, &a, &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

fn reasons(v: &Value, name: &str) -> Vec<String> {
    v["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .map(|i| {
            i["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// base/python (in-repo base), etl/weather (FROM it through an ARG default, COPY src/),
/// etl/prices (FROM it, COPY . with a .dockerignore), services/api (multi-stage, an unreachable
/// debug stage), tools/cli (a Containerfile without a repository).
fn monorepo() -> GitRepo {
    let r = GitRepo::new();
    r.write("ferry.toml", "[images.\"base/python\"]\nrepository = \"docker.io/acme/python-base\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n[images.\"services/api\"]\ndockerfile = \"services/api/api.Dockerfile\"\nrepository = \"ghcr.io/acme/api\"\ntarget = \"runtime\"\n");
    r.write(
        "base/python/Dockerfile",
        "FROM python:3.12-slim\nCOPY requirements.txt /req.txt\nRUN pip install -r /req.txt\n",
    );
    r.write("base/python/requirements.txt", "flask\n");
    r.write("base/python/NOTES.md", "notes\n");
    r.write(
        "etl/weather/Dockerfile",
        "ARG BASE=docker.io/acme/python-base:3\nFROM $BASE\nCOPY src/ /app/\n",
    );
    r.write("etl/weather/src/main.py", "print('weather')\n");
    r.write("etl/weather/README.md", "weather\n");
    r.write(
        "etl/prices/Dockerfile",
        "FROM acme/python-base:3\nCOPY . /app\n",
    );
    r.write("etl/prices/.dockerignore", "*.md\n!KEEP.md\n");
    r.write("etl/prices/main.py", "print('prices')\n");
    r.write("etl/prices/README.md", "prices\n");
    r.write("etl/prices/KEEP.md", "keep\n");
    r.write("services/api/api.Dockerfile", "FROM golang:1.22 AS build\nCOPY go.mod main.go /src/\nRUN go build\nFROM build AS debug\nCOPY debug/ /debug/\nFROM scratch AS runtime\nCOPY --from=build /src/app /app\n");
    r.write("services/api/main.go", "package main\n");
    r.write("services/api/go.mod", "module api\n");
    r.write("services/api/debug/tool.sh", "echo\n");
    r.write(
        "tools/cli/Containerfile",
        "FROM alpine:3.20\nCOPY --chmod=755 run.sh /run.sh\n",
    );
    r.write("tools/cli/run.sh", "#!/bin/sh\n");
    r.write("docs/index.md", "docs\n");
    r.commit("initial");
    r
}

#[test]
fn precise_mode_rebuilds_only_what_reads_the_changed_file() {
    let r = monorepo();
    r.write("etl/weather/README.md", "changed\n");
    r.write("docs/index.md", "changed\n");
    r.commit("docs only");
    let v = changed_json(r.path(), &[]);
    assert_eq!(v["images"].as_array().unwrap().len(), 0);
    assert_eq!(v["rebuild_all"], false);
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("2 path(s) changed") && reason.contains("none is an input"),
        "{reason}"
    );
    assert_eq!(v["waves"], serde_json::json!([]));

    r.write("etl/weather/src/main.py", "print('v2')\n");
    r.commit("code");
    let v = changed_json(r.path(), &[]);
    assert_eq!(names(&v), ["etl/weather"]);
    assert_eq!(
        reasons(&v, "etl/weather"),
        ["input modified: etl/weather/src/main.py"]
    );
    let img = &v["images"][0];
    assert_eq!(img["dockerfile"], "etl/weather/Dockerfile");
    assert_eq!(img["context"], "etl/weather");
    assert_eq!(img["repository"], Value::Null);
    let o = run_in(r.path(), &["changed"], &[]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("etl/weather") && text.contains("input modified"),
        "{text}"
    );
}

#[test]
fn full_mode_counts_every_file_the_context_sends() {
    let r = monorepo();
    r.write("etl/weather/README.md", "changed\n");
    r.commit("readme");
    assert_eq!(
        names(&changed_json(r.path(), &["--context-mode", "full"])),
        ["etl/weather"]
    );
    assert!(names(&changed_json(r.path(), &[])).is_empty());
}

#[test]
fn dockerignore_exclusions_and_exceptions() {
    let r = monorepo();
    r.write("etl/prices/README.md", "x\n");
    r.commit("ignored");
    assert!(names(&changed_json(r.path(), &["--context-mode", "full"])).is_empty());
    r.write("etl/prices/KEEP.md", "x\n");
    r.commit("re-included");
    let v = changed_json(r.path(), &[]);
    assert_eq!(names(&v), ["etl/prices"]);
    assert_eq!(
        reasons(&v, "etl/prices"),
        ["input modified: etl/prices/KEEP.md"]
    );
    // A Dockerfile-specific ignore file wins over the context's and counts as a change.
    r.write("etl/prices/Dockerfile.dockerignore", "*\n");
    r.commit("specific ignore");
    let v = changed_json(r.path(), &[]);
    assert_eq!(
        reasons(&v, "etl/prices"),
        ["ignore file changed: etl/prices/Dockerfile.dockerignore"]
    );
    let o = run_in(r.path(), &["context", "etl/prices"], &[]);
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "",
        "everything ignored"
    );
}

#[test]
fn base_image_changes_reach_every_image_built_on_it_in_waves() {
    let r = monorepo();
    r.write("base/python/NOTES.md", "not copied\n");
    r.commit("notes");
    assert!(names(&changed_json(r.path(), &[])).is_empty());
    r.write("base/python/requirements.txt", "flask\nrequests\n");
    r.commit("deps");
    let v = changed_json(r.path(), &[]);
    assert_eq!(names(&v), ["base/python", "etl/prices", "etl/weather"]);
    assert_eq!(
        v["waves"],
        serde_json::json!([["base/python"], ["etl/prices", "etl/weather"]])
    );
    assert_eq!(
        reasons(&v, "etl/weather"),
        ["base image rebuilds: base/python (docker.io/acme/python-base)"]
    );
    assert_eq!(
        v["images"][0]["name"], "base/python",
        "images come in build order"
    );
    let v = changed_json(r.path(), &["--max-parallel", "1"]);
    assert_eq!(
        v["waves"],
        serde_json::json!([["base/python"], ["etl/prices"], ["etl/weather"]])
    );
}

#[test]
fn unreachable_stages_and_dockerfile_edits() {
    let r = monorepo();
    r.write("services/api/debug/tool.sh", "echo changed\n");
    r.commit("debug stage only");
    assert!(
        names(&changed_json(r.path(), &[])).is_empty(),
        "the debug stage is not built for target runtime"
    );
    r.write("services/api/main.go", "package main // v2\n");
    r.commit("code");
    assert_eq!(names(&changed_json(r.path(), &[])), ["services/api"]);
    r.write(
        "tools/cli/Containerfile",
        "FROM alpine:3.21\nCOPY --chmod=755 run.sh /run.sh\n",
    );
    r.commit("bump alpine");
    let v = changed_json(r.path(), &[]);
    assert_eq!(
        reasons(&v, "tools/cli"),
        ["Dockerfile changed: tools/cli/Containerfile"]
    );
}

#[test]
fn deletions_renames_modes_and_submodule_pointers_count() {
    let r = monorepo();
    r.git(&["mv", "etl/weather/src/main.py", "etl/weather/src/app.py"]);
    r.commit("rename");
    let v = changed_json(r.path(), &[]);
    assert_eq!(
        reasons(&v, "etl/weather"),
        [
            "input added: etl/weather/src/app.py",
            "input deleted: etl/weather/src/main.py"
        ]
    );
    r.git(&["update-index", "--chmod=+x", "etl/weather/src/app.py"]);
    r.git(&["commit", "-q", "-m", "chmod"]);
    assert_eq!(
        reasons(&changed_json(r.path(), &[]), "etl/weather"),
        ["input mode changed: etl/weather/src/app.py"]
    );
    let head = r.git(&["rev-parse", "HEAD"]);
    r.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{head},etl/weather/src/vendored"),
    ]);
    r.git(&["commit", "-q", "-m", "submodule"]);
    assert_eq!(
        reasons(&changed_json(r.path(), &[]), "etl/weather"),
        ["input added: etl/weather/src/vendored"]
    );
    r.git(&["rm", "-q", "-f", "etl/weather/src/app.py"]);
    r.git(&["commit", "-q", "-m", "delete"]);
    assert_eq!(
        reasons(&changed_json(r.path(), &[]), "etl/weather"),
        ["input deleted: etl/weather/src/app.py"]
    );
}

#[test]
fn a_missing_base_rebuilds_everything_and_says_why() {
    let r = monorepo();
    let v = changed_json(
        r.path(),
        &["--base", "0123456789abcdef0123456789abcdef01234567"],
    );
    assert_eq!(v["rebuild_all"], true);
    assert_eq!(v["base"], Value::Null);
    assert!(
        v["reason"].as_str().unwrap().contains("not in this clone"),
        "{}",
        v["reason"]
    );
    assert_eq!(names(&v).len(), 5);
    assert!(reasons(&v, "tools/cli")[0].starts_with("rebuild all: "));
    // The very first commit has no parent.
    let v = changed_json(r.path(), &[]);
    assert_eq!(v["rebuild_all"], true);
    assert!(v["reason"].as_str().unwrap().contains("no parent"));
}

fn fixture(name: &str, vars: &[(&str, &str)]) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/github")
        .join(name);
    let mut text = std::fs::read_to_string(path).unwrap();
    for (k, v) in vars {
        text = text.replace(&format!("{{{{{k}}}}}"), v);
    }
    assert!(!text.contains("{{"), "unfilled placeholder in {name}");
    text
}

fn event(r: &GitRepo, json: &str) -> Value {
    let f = r.path().join("event.json");
    std::fs::write(&f, json).unwrap();
    let o = run_in(
        r.path(),
        &["changed", "--json", "--github-event", f.to_str().unwrap()],
        &[],
    );
    std::fs::remove_file(&f).unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn push(before: &str, after: &str, created: bool, forced: bool, default_branch: &str) -> String {
    fixture(
        "push.json",
        &[
            ("BRANCH", "feature"),
            ("BEFORE", before),
            ("AFTER", after),
            ("CREATED", if created { "true" } else { "false" }),
            ("FORCED", if forced { "true" } else { "false" }),
            ("DEFAULT_BRANCH", default_branch),
        ],
    )
}

#[test]
fn github_push_new_branch_forced_and_pull_request_events() {
    let r = monorepo();
    let c1 = r.git(&["rev-parse", "HEAD"]);
    r.write("etl/weather/src/main.py", "v2\n");
    let c2 = r.commit("weather");
    let v = event(&r, &push(&c1, &c2, false, false, "main"));
    assert_eq!(names(&v), ["etl/weather"]);
    assert_eq!(v["base"], c1.as_str());

    // New branch: compare with the merge-base of the default branch.
    r.git(&["checkout", "-q", "-b", "feature"]);
    r.write("tools/cli/run.sh", "#!/bin/sh\necho 2\n");
    let c3 = r.commit("cli");
    let zeros = "0000000000000000000000000000000000000000";
    let v = event(&r, &push(zeros, &c3, true, false, "main"));
    assert_eq!(v["rebuild_all"], false, "{}", v["reason"]);
    assert_eq!(names(&v), ["tools/cli"]);
    assert_eq!(v["base"], c2.as_str());
    let v = event(&r, &push(zeros, &c3, true, false, "trunk"));
    assert_eq!(v["rebuild_all"], true);
    assert!(v["reason"].as_str().unwrap().contains("trunk"));

    // Force-push, and a before that is not in the clone.
    let v = event(&r, &push(&c1, &c3, false, true, "main"));
    assert_eq!(v["rebuild_all"], true);
    assert!(v["reason"].as_str().unwrap().contains("force-push"));
    let v = event(
        &r,
        &push(
            "1111111111111111111111111111111111111111",
            &c3,
            false,
            false,
            "main",
        ),
    );
    assert_eq!(v["rebuild_all"], true);
    assert!(v["reason"].as_str().unwrap().contains("not in this clone"));

    // Pull request: merge-base of base and head, even when main moved on.
    r.git(&["checkout", "-q", "main"]);
    r.write("base/python/requirements.txt", "changed on main\n");
    let main_tip = r.commit("main moves");
    let v = event(
        &r,
        &fixture(
            "pull_request.json",
            &[("BEFORE", &c2), ("HEAD", &c3), ("BASE", &main_tip)],
        ),
    );
    assert_eq!(
        names(&v),
        ["tools/cli"],
        "changes on main since the fork do not count"
    );
    assert_eq!(v["head"], c3.as_str());
    assert_eq!(v["base"], c2.as_str());
    let v = event(
        &r,
        &fixture(
            "pull_request.json",
            &[
                ("BEFORE", &c2),
                ("HEAD", &c3),
                ("BASE", "2222222222222222222222222222222222222222"),
            ],
        ),
    );
    assert_eq!(v["rebuild_all"], true);

    let v = event(&r, &fixture("workflow_dispatch.json", &[]));
    assert_eq!(v["rebuild_all"], true);
    assert_eq!(names(&v).len(), 5);

    // Under GitHub Actions the payload comes from $GITHUB_EVENT_PATH.
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), fixture("workflow_dispatch.json", &[])).unwrap();
    let o = run_in(
        r.path(),
        &["changed", "--json"],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_PATH", f.path().to_str().unwrap()),
        ],
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rebuild_all"], true);
    let o = run_in(
        r.path(),
        &["changed", "--json", "--github-event", "/nonexistent.json"],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn shallow_and_blobless_clones_from_a_git_daemon() {
    let r = monorepo();
    r.write(
        "etl/weather/Dockerfile",
        "ARG BASE=docker.io/acme/python-base:3\nFROM $BASE\nCOPY old/ /app/\n",
    );
    r.write("etl/weather/old/x.py", "x\n");
    r.commit("weather copies old/");
    r.write(
        "etl/weather/Dockerfile",
        "ARG BASE=docker.io/acme/python-base:3\nFROM $BASE\nCOPY new/ /app/\n",
    );
    r.git(&["rm", "-q", "etl/weather/old/x.py"]);
    r.write("etl/weather/new/y.py", "y\n");
    r.commit("weather copies new/");
    let daemon = GitDaemon::start();
    let url = daemon.create("mono.git");
    r.git(&["push", "-q", &url, "main"]);
    let expected = [
        "Dockerfile changed: etl/weather/Dockerfile",
        "input added: etl/weather/new/y.py",
        // Only the base revision's Dockerfile reads old/: its blob must be fetched lazily.
        "input deleted: etl/weather/old/x.py",
    ];
    assert_eq!(
        reasons(&changed_json(r.path(), &[]), "etl/weather"),
        expected
    );

    let shallow = tempfile::tempdir().unwrap();
    git_in(shallow.path(), &["clone", "-q", "--depth", "1", &url, "c"]);
    let v = changed_json(&shallow.path().join("c"), &[]);
    assert_eq!(v["rebuild_all"], true);
    assert!(
        v["reason"].as_str().unwrap().contains("shallow"),
        "{}",
        v["reason"]
    );
    assert_eq!(names(&v).len(), 5, "never a silent nothing-changed");

    let blobless = tempfile::tempdir().unwrap();
    git_in(
        blobless.path(),
        &[
            "clone",
            "-q",
            "--no-checkout",
            "--filter=blob:none",
            &url,
            "c",
        ],
    );
    let dir = blobless.path().join("c");
    assert_eq!(git_in(&dir, &["config", "remote.origin.promisor"]), "true");
    let base_df = git_in(&dir, &["rev-parse", "HEAD~1:etl/weather/Dockerfile"]);
    let missing = git_in(
        &dir,
        &[
            "rev-list",
            "--objects",
            "--missing=print",
            "HEAD~1",
            "--",
            "etl/weather/Dockerfile",
        ],
    );
    assert!(
        missing.contains(&format!("?{base_df}")),
        "the base Dockerfile is not in the clone yet: {missing}"
    );
    let v = changed_json(&dir, &[]);
    assert_eq!(v["rebuild_all"], false, "{}", v["reason"]);
    assert_eq!(reasons(&v, "etl/weather"), expected);
    // Older git marks partial clones with extensions.partialclone, which libgit2 must be told about.
    git_in(&dir, &["config", "extensions.partialclone", "origin"]);
    assert_eq!(reasons(&changed_json(&dir, &[]), "etl/weather"), expected);
}

#[test]
fn bare_repositories_work() {
    let r = monorepo();
    r.write("tools/cli/run.sh", "changed\n");
    r.commit("cli");
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("m.git");
    git_in(
        dir.path(),
        &[
            "clone",
            "-q",
            "--bare",
            r.path().to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    assert_eq!(names(&changed_json(&bare, &[])), ["tools/cli"]);
}

#[test]
fn graph_context_and_inputs() {
    let r = monorepo();
    let o = run_in(r.path(), &["graph"], &[]);
    let g: Value = serde_json::from_slice(&o.stdout).unwrap();
    let weather = g["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "etl/weather")
        .unwrap();
    assert_eq!(
        weather["bases"],
        serde_json::json!(["docker.io/acme/python-base:3"])
    );
    assert_eq!(weather["depends_on"], serde_json::json!(["base/python"]));
    let api = g["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "services/api")
        .unwrap();
    assert_eq!(api["dockerfile"], "services/api/api.Dockerfile");
    assert_eq!(
        api["bases"],
        serde_json::json!(["docker.io/library/golang:1.22"]),
        "stage names and scratch are not images"
    );
    assert_eq!(
        g["waves"][0],
        serde_json::json!(["base/python", "services/api", "tools/cli"])
    );
    let o = run_in(r.path(), &["graph", "--format", "dot"], &[]);
    assert!(
        String::from_utf8(o.stdout)
            .unwrap()
            .contains("\"base/python\" -> \"etl/weather\";")
    );
    let o = run_in(r.path(), &["graph", "--format", "mermaid"], &[]);
    assert!(
        String::from_utf8(o.stdout)
            .unwrap()
            .starts_with("graph LR\n")
    );

    let o = run_in(r.path(), &["context", "etl/prices"], &[]);
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        ".dockerignore\nDockerfile\nKEEP.md\nmain.py\n"
    );
    let o = run_in(r.path(), &["inputs", "services/api"], &[]);
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "api.Dockerfile\ngo.mod\nmain.go\n"
    );
    let o = run_in(r.path(), &["inputs", "nope"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no image named"));
}

#[test]
fn bad_input_exits_1_naming_file_and_line() {
    // base/python is named in ferry.toml: its Dockerfile must parse.
    let r = monorepo();
    r.write(
        "base/python/Dockerfile",
        "FROM python:3\nCOPY src/ /app/\nCOPY \"unterminated /x\n",
    );
    r.commit("broken");
    let o = run_in(r.path(), &["changed"], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("base/python/Dockerfile:3:"), "{err}");
    let o = run_in(r.path(), &["changed"], &[("GITHUB_ACTIONS", "true")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("::error file=base/python/Dockerfile,line=3,"),
        "{err}"
    );

    let r = monorepo();
    r.write("etl/prices/.dockerignore", "[oops\n");
    r.commit("bad ignore");
    let o = run_in(r.path(), &["changed"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("etl/prices/.dockerignore:1"));

    let r = monorepo();
    r.write("ferry.toml", "[images.x]\nrepositori = \"typo\"\n");
    r.commit("bad config");
    let o = run_in(r.path(), &["graph"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("ferry.toml"));

    assert_eq!(
        run_in(r.path(), &["changed", "--context-mode", "sloppy"], &[])
            .status
            .code(),
        Some(2)
    );
    let nowhere = tempfile::tempdir().unwrap();
    assert_eq!(
        run_in(nowhere.path(), &["changed"], &[]).status.code(),
        Some(3)
    );
}

#[test]
fn dependency_cycles_are_errors_naming_the_cycle() {
    let r = GitRepo::new();
    r.write(
        "ferry.toml",
        "[images.a]\nrepository = \"acme/a\"\n[images.b]\nrepository = \"acme/b\"\n",
    );
    r.write("a/Dockerfile", "FROM acme/b\n");
    r.write("b/Dockerfile", "FROM acme/a:1\n");
    r.write(
        "ferry.toml",
        "[images.\"a\"]\nrepository = \"acme/a\"\n[images.\"b\"]\nrepository = \"acme/b\"\n",
    );
    r.commit("cycle");
    let o = run_in(r.path(), &["graph"], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("a -> b -> a") || err.contains("b -> a -> b"),
        "{err}"
    );
}

#[test]
fn github_output_and_gitlab_pipeline() {
    let r = monorepo();
    r.write("base/python/requirements.txt", "x\n");
    r.commit("base");
    let out = tempfile::NamedTempFile::new().unwrap();
    let o = run_in(
        r.path(),
        &["changed", "--github-output"],
        &[("GITHUB_OUTPUT", out.path().to_str().unwrap())],
    );
    assert_eq!(o.status.code(), Some(0));
    let text = std::fs::read_to_string(out.path()).unwrap();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} missing in {text}"))
            .to_string()
    };
    assert_eq!(get("any"), "true");
    let matrix: Value = serde_json::from_str(&get("matrix")).unwrap();
    assert_eq!(matrix["include"].as_array().unwrap().len(), 3);
    assert_eq!(matrix["include"][0]["name"], "base/python");
    assert_eq!(
        matrix["include"][0]["repository"],
        "docker.io/acme/python-base"
    );
    assert_eq!(matrix["include"][0]["platforms"], "linux/amd64,linux/arm64");
    let waves: Value = serde_json::from_str(&get("waves")).unwrap();
    assert_eq!(waves.as_array().unwrap().len(), 2);
    assert_eq!(waves[1]["include"].as_array().unwrap().len(), 2);

    let o = run_in(r.path(), &["changed", "--format", "gitlab"], &[]);
    let p: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(p["stages"], serde_json::json!(["wave-1", "wave-2"]));
    assert_eq!(p["build etl/weather"]["stage"], "wave-2");
    assert_eq!(
        p["build etl/weather"]["needs"],
        serde_json::json!(["build base/python"])
    );
    assert_eq!(p["build base/python"]["needs"], serde_json::json!([]));
    assert!(p[".ferry-build"]["script"].is_array());
}

#[test]
fn extra_inputs_build_args_and_copy_from_in_repo_images() {
    let r = monorepo();
    r.write(
        "ferry.toml",
        "[images.\"base/python\"]\nrepository = \"docker.io/acme/python-base\"\n\n[images.\"services/api\"]\ndockerfile = \"services/api/api.Dockerfile\"\nrepository = \"ghcr.io/acme/api\"\ntarget = \"runtime\"\nextra_inputs = [\"proto/**/*.proto\"]\n\n[images.\"tools/cli\"]\nbuild_args = { BASE = \"ghcr.io/acme/api:1\" }\n",
    );
    r.write("proto/v1/api.proto", "syntax = 3;\n");
    r.write("tools/cli/Containerfile", "ARG BASE=alpine:3.20\nFROM $BASE\nCOPY --from=docker.io/acme/python-base:3 /usr/local/bin/python /py\nCOPY --chmod=755 run.sh /run.sh\n");
    r.commit("config");
    let o = run_in(r.path(), &["graph"], &[]);
    let g: Value = serde_json::from_slice(&o.stdout).unwrap();
    let cli = g["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "tools/cli")
        .unwrap();
    assert_eq!(
        cli["bases"],
        serde_json::json!(["ghcr.io/acme/api:1", "docker.io/acme/python-base:3"]),
        "build_args override the ARG default"
    );
    assert_eq!(
        cli["depends_on"],
        serde_json::json!(["base/python", "services/api"]),
        "COPY --from an in-repo image is a dependency"
    );

    r.write("proto/v1/api.proto", "syntax = 3; // v2\n");
    r.write("proto/README.md", "not an input\n");
    r.commit("proto");
    let v = changed_json(r.path(), &[]);
    assert_eq!(names(&v), ["services/api", "tools/cli"]);
    assert_eq!(
        reasons(&v, "services/api"),
        ["extra input changed: proto/v1/api.proto"]
    );
    assert_eq!(
        reasons(&v, "tools/cli"),
        ["base image rebuilds: services/api (ghcr.io/acme/api)"]
    );
    assert_eq!(
        v["waves"],
        serde_json::json!([["services/api"], ["tools/cli"]])
    );

    // A changed ferry.toml entry rebuilds that image only.
    let toml = std::fs::read_to_string(r.path().join("ferry.toml")).unwrap();
    r.write(
        "ferry.toml",
        &toml.replace("ghcr.io/acme/api:1", "ghcr.io/acme/api:2"),
    );
    r.commit("config change");
    let v = changed_json(r.path(), &[]);
    assert_eq!(names(&v), ["tools/cli"]);
    assert_eq!(
        reasons(&v, "tools/cli"),
        ["configuration changed in ferry.toml"]
    );
}

/// `graph --json` of the monorepo, compared with tests/fixtures/detect/graph.json
/// (FERRY_BLESS=1 rewrites the file).
#[test]
fn graph_json_matches_the_golden_file() {
    let r = monorepo();
    let o = run_in(r.path(), &["graph", "--json"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let golden =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/detect/graph.json");
    let got = String::from_utf8(o.stdout).unwrap();
    if std::env::var_os("FERRY_BLESS").is_some() {
        std::fs::write(&golden, &got).unwrap();
    }
    assert_eq!(got, std::fs::read_to_string(&golden).unwrap());
}

/// `changed --json` after a base-image change, commit ids replaced, against
/// tests/fixtures/detect/changed.json.
#[test]
fn changed_json_matches_the_golden_file() {
    let r = monorepo();
    let base = r.git(&["rev-parse", "HEAD"]);
    r.write("base/python/requirements.txt", "flask\nrequests\n");
    r.write("etl/weather/src/extra.py", "x\n");
    let head = r.commit("deps");
    let o = run_in(r.path(), &["changed", "--json"], &[]);
    let got = String::from_utf8(o.stdout)
        .unwrap()
        .replace(&base, "BASE")
        .replace(&head, "HEAD")
        .replace(&base[..12], "BASE12")
        .replace(&head[..12], "HEAD12");
    let golden =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/detect/changed.json");
    if std::env::var_os("FERRY_BLESS").is_some() {
        std::fs::write(&golden, &got).unwrap();
    }
    assert_eq!(got, std::fs::read_to_string(&golden).unwrap());
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn files_named_like_dockerfiles_that_do_not_parse_are_warnings_not_failures() {
    let r = monorepo();
    r.write(
        "deploy/templates/Dockerfile.j2",
        "{% if python %}\nFROM {{ base }}\n{% endif %}\nCOPY \"unterminated /x\n",
    );
    r.write(
        "vendor/lib/testdata/Dockerfile.bad",
        "FROM alpine\nRUN [\"a\"\nCOPY \"x\n",
    );
    r.commit("odd files");
    let o = run_in(r.path(), &["changed", "--json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    // Every real image still answers, the odd files are not images.
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("any of the 5 image(s)"),
        "{v}"
    );
    let warnings = v["warnings"].as_array().unwrap();
    let files: Vec<&str> = warnings
        .iter()
        .map(|w| w["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            "deploy/templates/Dockerfile.j2",
            "vendor/lib/testdata/Dockerfile.bad"
        ]
    );
    assert!(
        warnings[0]["message"]
            .as_str()
            .unwrap()
            .contains("not a Dockerfile")
    );
    let err = stderr(&o);
    assert!(
        err.contains("ferry-detect: warning: deploy/templates/Dockerfile.j2:"),
        "{err}"
    );
    // Under GitHub Actions: an annotation on the file and line.
    let o = run_in(
        r.path(),
        &["graph", "--json"],
        &[("GITHUB_ACTIONS", "true")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("::warning file=vendor/lib/testdata/Dockerfile.bad,line="),
        "{err}"
    );
    let g: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(g["warnings"].as_array().unwrap().len(), 2);

    // `exclude` removes them from discovery: no warning at all.
    let toml = std::fs::read_to_string(r.path().join("ferry.toml")).unwrap();
    r.write(
        "ferry.toml",
        &format!("exclude = [\"deploy/templates/**\", \"**/testdata/**\"]\n{toml}"),
    );
    r.commit("exclude");
    let o = run_in(r.path(), &["changed", "--json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["warnings"], serde_json::json!([]));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    // A real image excluded from discovery disappears; one whose Dockerfile ferry.toml names
    // stays.
    r.write(
        "ferry.toml",
        &format!("exclude = [\"tools/**\", \"services/**\"]\n{toml}"),
    );
    r.commit("exclude more");
    let g: Value =
        serde_json::from_slice(&run_in(r.path(), &["graph", "--json"], &[]).stdout).unwrap();
    let graph_names: Vec<&str> = g["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        graph_names,
        ["base/python", "etl/prices", "etl/weather", "services/api"]
    );
}

#[test]
fn a_dockerfile_named_in_ferry_toml_must_parse() {
    let r = monorepo();
    r.write(
        "services/api/api.Dockerfile",
        "FROM golang:1.22 AS build\nCOPY \"unterminated /x\n",
    );
    r.commit("broken configured Dockerfile");
    let o = run_in(r.path(), &["changed", "--json"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("services/api/api.Dockerfile:2:"),
        "{}",
        stderr(&o)
    );
    let r = monorepo();
    r.write("ferry.toml", "exclude = [\"[oops\"]\n");
    r.commit("bad exclude");
    let o = run_in(r.path(), &["graph"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("ferry.toml: exclude"), "{}", stderr(&o));
}

fn jenkins(r: &GitRepo, vars: &[(&str, &str)]) -> Value {
    let mut envs = vec![("JENKINS_URL", "http://jenkins.example/")];
    envs.extend_from_slice(vars);
    let mut c = Command::new(bin("ferry-detect"));
    c.arg("--repo")
        .arg(r.path())
        .args(["changed", "--json"])
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_EVENT_PATH")
        .env_remove("GIT_COMMIT")
        .env_remove("GIT_PREVIOUS_COMMIT")
        .env_remove("GIT_PREVIOUS_SUCCESSFUL_COMMIT");
    for (k, v) in &envs {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn jenkins_compares_with_the_last_successful_build() {
    let r = monorepo();
    let c1 = r.git(&["rev-parse", "HEAD"]);
    r.write("etl/weather/src/main.py", "v2\n");
    let c2 = r.commit("weather");
    r.write("tools/cli/run.sh", "#!/bin/sh\necho 2\n");
    let c3 = r.commit("cli");
    r.write("docs/index.md", "later\n");
    r.commit("not built by this job yet");

    // Build of c3 after the last successful build of c1 (c2's build failed): both rebuild.
    let v = jenkins(
        &r,
        &[
            ("GIT_COMMIT", &c3),
            ("GIT_PREVIOUS_SUCCESSFUL_COMMIT", &c1),
            ("GIT_PREVIOUS_COMMIT", &c2),
        ],
    );
    assert_eq!(names(&v), ["etl/weather", "tools/cli"]);
    assert_eq!(v["head"], c3.as_str());
    assert_eq!(v["base"], c1.as_str());
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("GIT_PREVIOUS_SUCCESSFUL_COMMIT"),
        "{}",
        v["reason"]
    );
    // Only GIT_PREVIOUS_COMMIT known.
    let v = jenkins(&r, &[("GIT_COMMIT", &c3), ("GIT_PREVIOUS_COMMIT", &c2)]);
    assert_eq!(names(&v), ["tools/cli"]);
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("GIT_PREVIOUS_COMMIT")
    );
    assert_eq!(v["base"], c2.as_str());
    // A first build: neither variable.
    let v = jenkins(&r, &[("GIT_COMMIT", &c3)]);
    assert_eq!(v["rebuild_all"], true);
    assert_eq!(v["reason"], "first build: no previous successful commit");
    assert_eq!(names(&v).len(), 5);
    // Without GIT_COMMIT the head is HEAD; an empty variable counts as unset.
    let v = jenkins(
        &r,
        &[("GIT_PREVIOUS_SUCCESSFUL_COMMIT", &c3), ("GIT_COMMIT", "")],
    );
    assert_eq!(v["head"], r.git(&["rev-parse", "HEAD"]).as_str());
    assert_eq!(names(&v), Vec::<String>::new());
    // A previous commit that history no longer holds: everything, naming the variable.
    let v = jenkins(&r, &[("GIT_PREVIOUS_SUCCESSFUL_COMMIT", &"3".repeat(40))]);
    assert_eq!(v["rebuild_all"], true);
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("GIT_PREVIOUS_SUCCESSFUL_COMMIT 333333333333"),
        "{}",
        v["reason"]
    );
    // --base wins over Jenkins' variables.
    let o = run_in(
        r.path(),
        &["changed", "--json", "--base", &c2, "--head", &c3],
        &[
            ("JENKINS_URL", "http://j/"),
            ("GIT_PREVIOUS_SUCCESSFUL_COMMIT", &c1),
        ],
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(names(&v), ["tools/cli"]);
}

#[test]
fn merge_group_events_compare_base_sha_with_head_sha() {
    let r = monorepo();
    let c1 = r.git(&["rev-parse", "HEAD"]);
    r.write("etl/prices/main.py", "v2\n");
    let c2 = r.commit("prices");
    let payload = serde_json::json!({
        "action": "checks_requested",
        "merge_group": {"head_sha": c2, "head_ref": "refs/heads/gh-readonly-queue/main/pr-1", "base_sha": c1, "base_ref": "refs/heads/main"},
    })
    .to_string();
    let v = event(&r, &payload);
    assert_eq!(v["rebuild_all"], false, "{}", v["reason"]);
    assert_eq!(names(&v), ["etl/prices"]);
    assert_eq!(v["base"], c1.as_str());
    assert!(v["reason"].as_str().unwrap().contains("merge group"));
    let payload = serde_json::json!({"merge_group": {"head_sha": c2, "base_sha": "4".repeat(40)}})
        .to_string();
    let v = event(&r, &payload);
    assert_eq!(v["rebuild_all"], true);
    assert!(v["reason"].as_str().unwrap().contains("merge group base"));
}

#[test]
fn tags_and_build_args_travel_with_each_image() {
    let r = monorepo();
    // etl/weather uses python-base:3 through an ARG, prices :3 too; add children on :1, :2
    // and no tag, and one pinned by digest (not a tag to push).
    r.write("jobs/a/Dockerfile", "FROM acme/python-base:1\n");
    r.write(
        "jobs/b/Dockerfile",
        "FROM docker.io/acme/python-base:2 AS x\nFROM x\n",
    );
    r.write("jobs/c/Dockerfile", "FROM acme/python-base\n");
    r.write(
        "jobs/d/Dockerfile",
        &format!("FROM acme/python-base@sha256:{}\n", "a".repeat(64)),
    );
    let toml = std::fs::read_to_string(r.path().join("ferry.toml")).unwrap();
    r.write(
        "ferry.toml",
        &format!(
            "{toml}\n[images.\"jobs/a\"]\nbuild_args = {{ PY = \"3.12\", EXTRA = \"a b\" }}\n"
        ),
    );
    r.commit("children");
    r.write("base/python/requirements.txt", "flask\nrequests\n");
    r.commit("base changes");
    let v = changed_json(r.path(), &[]);
    let img = |n: &str| {
        v["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == n)
            .unwrap_or_else(|| panic!("{n} in {v}"))
            .clone()
    };
    assert_eq!(
        img("base/python")["tags"],
        serde_json::json!(["1", "2", "3", "latest"])
    );
    assert_eq!(img("base/python")["build_args"], serde_json::json!({}));
    assert_eq!(img("jobs/a")["tags"], serde_json::json!([]));
    assert_eq!(
        img("jobs/a")["build_args"],
        serde_json::json!({"EXTRA": "a b", "PY": "3.12"})
    );
    assert_eq!(
        img("jobs/a")["base"],
        v["base"],
        "each image names the commit it was compared from"
    );

    let g: Value =
        serde_json::from_slice(&run_in(r.path(), &["graph", "--json"], &[]).stdout).unwrap();
    let base = g["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "base/python")
        .unwrap();
    assert_eq!(base["tags"], serde_json::json!(["1", "2", "3", "latest"]));

    let out = tempfile::NamedTempFile::new().unwrap();
    let o = run_in(
        r.path(),
        &["changed", "--github-output"],
        &[("GITHUB_OUTPUT", out.path().to_str().unwrap())],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(out.path()).unwrap();
    let waves: Value =
        serde_json::from_str(text.lines().find_map(|l| l.strip_prefix("waves=")).unwrap()).unwrap();
    assert_eq!(waves[0]["include"][0]["name"], "base/python");
    assert_eq!(
        waves[0]["include"][0]["tags"],
        serde_json::json!(["1", "2", "3", "latest"])
    );
    let a = waves[1]["include"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "jobs/a")
        .unwrap();
    assert_eq!(a["build_args"]["PY"], "3.12");

    let o = run_in(r.path(), &["changed", "--format", "gitlab"], &[]);
    let p: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        p["build base/python"]["variables"]["FERRY_TAGS"],
        "1 2 3 latest"
    );
    assert_eq!(
        p["build jobs/a"]["variables"]["FERRY_BUILD_ARGS"],
        "EXTRA=a b\nPY=3.12"
    );
    let template = p[".ferry-build"].to_string();
    assert!(
        template.contains("binfmt") && template.contains("docker login"),
        "{template}"
    );
}

#[test]
fn a_revision_that_names_nothing_is_exit_1_and_a_missing_one_rebuilds_everything() {
    let r = monorepo();
    r.write("etl/weather/src/main.py", "v2\n");
    r.commit("weather");
    for (flag, rev) in [
        ("--base", "mian"),
        ("--head", "mian"),
        ("--base", "v9.9.9"),
        ("--base", "HEAD~7"),
    ] {
        let o = run_in(r.path(), &["changed", "--json", flag, rev], &[]);
        assert_eq!(o.status.code(), Some(1), "{flag} {rev}: {}", stderr(&o));
        assert!(stderr(&o).contains(&format!("{rev:?}")), "{}", stderr(&o));
    }
    // A full commit id this clone does not hold names a commit: rebuild everything.
    let v = changed_json(r.path(), &["--base", &"5".repeat(40)]);
    assert_eq!(v["rebuild_all"], true);
    // A head whose objects are missing cannot be analysed: exit 1, saying so.
    let o = run_in(r.path(), &["changed", "--head", &"5".repeat(40)], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not in this clone"), "{}", stderr(&o));

    // A shallow clone: the base names the parent commit (recorded in the head commit) whose
    // objects were not fetched.
    let daemon = GitDaemon::start();
    let url = daemon.create("mono.git");
    r.git(&["push", "-q", &url, "main"]);
    let parent = r.git(&["rev-parse", "HEAD~1"]);
    let shallow = tempfile::tempdir().unwrap();
    git_in(shallow.path(), &["clone", "-q", "--depth", "1", &url, "c"]);
    let dir = shallow.path().join("c");
    for base in [parent.as_str(), "HEAD~1", "origin/main~1"] {
        let o = run_in(&dir, &["changed", "--json", "--base", base], &[]);
        assert_eq!(o.status.code(), Some(0), "{base}: {}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["rebuild_all"], true, "{base}");
        assert!(
            v["reason"].as_str().unwrap().contains("not in this clone"),
            "{base}: {}",
            v["reason"]
        );
        assert_eq!(names(&v).len(), 5);
    }
    let o = run_in(&dir, &["changed", "--base", "origin/mian"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}
