//! `ferry-detect why IMAGE PATH` on a real git repository made by the test: every `kind` of
//! the contract (JSON and text: `FILE:LINE: text`), both context modes, `--rev`, the exit codes,
//! and, for every image and every file of the repository, the same answer as `changed` and
//! `inputs`.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::process::{Command, Output};

use ferry_tests::{GitRepo, bin};
use serde_json::{Value, json};

fn run(r: &GitRepo, args: &[&str]) -> Output {
    Command::new(bin("ferry-detect"))
        .arg("--repo")
        .arg(r.path())
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_EVENT_PATH")
        .env_remove("JENKINS_URL")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `why --json …`, which must exit 0.
fn why_json(r: &GitRepo, args: &[&str]) -> Value {
    let mut a = vec!["--json", "why"];
    a.extend_from_slice(args);
    let o = run(r, &a);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `why …` as text, which must exit 0.
fn why_text(r: &GitRepo, args: &[&str]) -> String {
    let mut a = vec!["why"];
    a.extend_from_slice(args);
    let o = run(r, &a);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// An in-repo base (base/python, with an ONBUILD trigger), two images built on it (one
/// through an ARG default, one copying its whole context past a .dockerignore with an
/// exception), and services/api: a `runtime` target that copies `--from` a build stage, an
/// unreachable debug stage, ADD, a bind mount and `extra_inputs` in ferry.toml.
fn repo() -> GitRepo {
    let r = GitRepo::new();
    r.write(
        "ferry.toml",
        "[images.\"base/python\"]\nrepository = \"docker.io/acme/python-base\"\n\n[images.\"services/api\"]\ndockerfile = \"services/api/api.Dockerfile\"\nrepository = \"ghcr.io/acme/api\"\ntarget = \"runtime\"\nextra_inputs = [\"proto/**/*.proto\"]\n",
    );
    r.write(
        "base/python/Dockerfile",
        "FROM python:3.12-slim\nCOPY requirements.txt /req.txt\nRUN pip install -r /req.txt\nONBUILD COPY app.py /app.py\n",
    );
    r.write("base/python/requirements.txt", "flask\n");
    r.write("base/python/NOTES.md", "notes\n");
    r.write(
        "etl/weather/Dockerfile",
        "ARG BASE=docker.io/acme/python-base:3\nFROM $BASE\nCOPY src/ /app/\n",
    );
    r.write("etl/weather/src/main.py", "print('weather')\n");
    r.write("etl/weather/app.py", "app\n");
    r.write("etl/weather/README.md", "weather\n");
    r.write(
        "etl/prices/Dockerfile",
        "FROM acme/python-base:3\nCOPY . /app\n",
    );
    r.write("etl/prices/.dockerignore", "*.md\n!KEEP.md\n");
    r.write("etl/prices/main.py", "print('prices')\n");
    r.write("etl/prices/README.md", "prices\n");
    r.write("etl/prices/KEEP.md", "keep\n");
    r.write(
        "services/api/api.Dockerfile",
        "FROM golang:1.22 AS build\nCOPY go.mod main.go /src/\nRUN --mount=type=bind,source=vendor,target=/src/vendor go build\nFROM build AS debug\nCOPY debug/ /debug/\nFROM scratch AS runtime\nADD config.yaml /etc/api.yaml\nCOPY --from=build /src/app /app\n",
    );
    r.write("services/api/main.go", "package main\n");
    r.write("services/api/go.mod", "module api\n");
    r.write("services/api/vendor/lib.go", "package lib\n");
    r.write("services/api/debug/tool.sh", "echo\n");
    r.write("services/api/config.yaml", "port: 80\n");
    r.write("proto/v1/api.proto", "syntax = 3;\n");
    r.write("docs/index.md", "docs\n");
    r.commit("initial");
    r
}

/// The JSON answer, and the text: its first line says input or not, its second is the
/// deciding place (`FILE:LINE: text`, `FILE`, or absent).
fn ask(r: &GitRepo, args: &[&str]) -> (Value, Vec<String>) {
    let text = why_text(r, args);
    (
        why_json(r, args),
        text.lines().map(str::to_string).collect(),
    )
}

fn because(kind: &str, file: Option<&str>, line: Option<u64>, text: Option<&str>) -> Value {
    json!({"kind": kind, "file": file, "line": line, "text": text})
}

/// A question and its expected answer: image, path, input, kind, file, line, text.
struct Case(
    &'static str,
    &'static str,
    bool,
    &'static str,
    Option<&'static str>,
    Option<u64>,
    Option<&'static str>,
);

#[test]
fn each_kind_names_the_deciding_line_in_json_and_text() {
    let r = repo();
    let api = "services/api/api.Dockerfile";
    let cases = [
        Case(
            "services/api",
            api,
            true,
            "dockerfile",
            Some(api),
            None,
            None,
        ),
        Case(
            "etl/prices",
            "etl/prices/.dockerignore",
            true,
            "ignore_file",
            Some("etl/prices/.dockerignore"),
            None,
            None,
        ),
        // Read by the build stage, which the runtime target reaches through COPY --from.
        Case(
            "services/api",
            "services/api/main.go",
            true,
            "copy",
            Some(api),
            Some(2),
            Some("COPY go.mod main.go /src/"),
        ),
        Case(
            "services/api",
            "services/api/config.yaml",
            true,
            "add",
            Some(api),
            Some(7),
            Some("ADD config.yaml /etc/api.yaml"),
        ),
        Case(
            "services/api",
            "services/api/vendor/lib.go",
            true,
            "mount",
            Some(api),
            Some(3),
            Some("RUN --mount=type=bind,source=vendor,target=/src/vendor go build"),
        ),
        Case(
            "services/api",
            "proto/v1/api.proto",
            true,
            "config",
            Some("ferry.toml"),
            Some(8),
            Some("extra_inputs = [\"proto/**/*.proto\"]"),
        ),
        Case(
            "etl/weather",
            "base/python/requirements.txt",
            true,
            "base_image",
            Some("etl/weather/Dockerfile"),
            Some(2),
            Some("FROM $BASE"),
        ),
        Case(
            "etl/prices",
            "etl/prices/README.md",
            false,
            "ignored",
            Some("etl/prices/.dockerignore"),
            Some(1),
            Some("*.md"),
        ),
        // Re-included by the exception: COPY . reads it.
        Case(
            "etl/prices",
            "etl/prices/KEEP.md",
            true,
            "copy",
            Some("etl/prices/Dockerfile"),
            Some(2),
            Some("COPY . /app"),
        ),
        Case(
            "services/api",
            "services/api/debug/tool.sh",
            false,
            "unreachable_stage",
            Some(api),
            Some(5),
            Some("COPY debug/ /debug/"),
        ),
        Case(
            "etl/weather",
            "etl/weather/README.md",
            false,
            "not_copied",
            None,
            None,
            None,
        ),
        Case(
            "etl/weather",
            "docs/index.md",
            false,
            "outside_context",
            None,
            None,
            None,
        ),
    ];
    for Case(image, path, input, kind, file, line, text) in cases {
        let (v, lines) = ask(&r, &[image, path]);
        assert_eq!(v["image"], image);
        assert_eq!(v["path"], path);
        assert_eq!(v["input"], input, "{image} {path}: {v}");
        assert_eq!(
            v["because"],
            because(kind, file, line, text),
            "{image} {path}"
        );
        let verdict = if input {
            format!("{path} is an input of {image}: ")
        } else {
            format!("{path} is not an input of {image}: ")
        };
        assert!(lines[0].starts_with(&verdict), "{lines:?}");
        match (file, line, text) {
            (Some(f), Some(l), Some(t)) => assert_eq!(lines[1], format!("{f}:{l}: {t}")),
            (Some(f), None, None) => assert_eq!(lines[1], f),
            _ => assert_eq!(lines.len(), 1, "{lines:?}"),
        }
    }
}

#[test]
fn a_base_image_answer_carries_the_bases_own_and_onbuild_reads_the_childs_context() {
    let r = repo();
    let (v, lines) = ask(&r, &["etl/weather", "base/python/requirements.txt"]);
    assert_eq!(v["via"]["image"], "base/python");
    assert_eq!(v["via"]["input"], true);
    assert_eq!(
        v["via"]["because"],
        because(
            "copy",
            Some("base/python/Dockerfile"),
            Some(2),
            Some("COPY requirements.txt /req.txt")
        )
    );
    assert_eq!(
        lines[1..],
        [
            "etl/weather/Dockerfile:2: FROM $BASE",
            "  base/python/requirements.txt is an input of base/python: COPY in a stage the target reaches reads it",
            "  base/python/Dockerfile:2: COPY requirements.txt /req.txt",
        ]
    );
    // Not read by the base: not an input of the images built on it either.
    let v = why_json(&r, &["etl/prices", "base/python/NOTES.md"]);
    assert_eq!(v["input"], false);
    assert_eq!(v["because"]["kind"], "outside_context");
    // The base's ONBUILD COPY reads the child's context: the line is in the base's Dockerfile.
    let (v, lines) = ask(&r, &["etl/weather", "etl/weather/app.py"]);
    assert_eq!(v["input"], true);
    assert_eq!(
        v["because"],
        because(
            "copy",
            Some("base/python/Dockerfile"),
            Some(4),
            Some("ONBUILD COPY app.py /app.py")
        )
    );
    assert!(lines[0].contains("ONBUILD COPY"), "{lines:?}");
}

#[test]
fn full_context_mode_counts_what_the_context_sends() {
    let r = repo();
    for (image, path, kind) in [
        ("etl/weather", "etl/weather/README.md", "not_copied"),
        (
            "services/api",
            "services/api/debug/tool.sh",
            "unreachable_stage",
        ),
    ] {
        let v = why_json(&r, &["--context-mode", "full", image, path]);
        assert_eq!(v["input"], true, "{v}");
        assert_eq!(v["because"]["kind"], kind);
        let text = why_text(&r, &["--context-mode", "full", image, path]);
        assert!(
            text.starts_with(&format!("{path} is an input of {image}: full context mode")),
            "{text}"
        );
    }
    let v = why_json(
        &r,
        &[
            "--context-mode",
            "full",
            "etl/prices",
            "etl/prices/README.md",
        ],
    );
    assert_eq!(v["input"], false, "ignored in every mode");
    assert_eq!(v["because"]["kind"], "ignored");
}

#[test]
fn rev_paths_and_exit_codes() {
    let r = repo();
    let first = r.git(&["rev-parse", "HEAD"]);
    r.write(
        "etl/weather/Dockerfile",
        "ARG BASE=docker.io/acme/python-base:3\nFROM $BASE\nCOPY src/ /app/\nCOPY README.md /\n",
    );
    r.commit("copy the readme");
    assert_eq!(
        why_json(&r, &["etl/weather", "etl/weather/README.md"])["because"]["line"],
        4
    );
    let old = why_json(
        &r,
        &["--rev", &first, "etl/weather", "etl/weather/README.md"],
    );
    assert_eq!(old["input"], false);
    assert_eq!(old["because"]["kind"], "not_copied");
    // Paths are cleaned; an absolute path inside the work tree is made relative.
    let v = why_json(&r, &["etl/weather", "./etl//weather/src/../README.md"]);
    assert_eq!(v["path"], "etl/weather/README.md");
    let abs = r.path().join("etl/weather/README.md");
    let v = why_json(&r, &["etl/weather", abs.to_str().unwrap()]);
    assert_eq!(v["path"], "etl/weather/README.md");

    let o = run(&r, &["why", "nope", "docs/index.md"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no image named \"nope\""),
        "{}",
        stderr(&o)
    );
    let o = run(
        &r,
        &[
            "why",
            "--rev",
            "no-such-rev",
            "etl/weather",
            "docs/index.md",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("\"no-such-rev\""), "{}", stderr(&o));
    for (args, named) in [
        (vec!["why", "etl/weather"], "PATH"),
        (
            vec!["why", "--context-mode", "sloppy", "etl/weather", "x"],
            "sloppy",
        ),
        (vec!["why", "etl/weather", "../outside"], "\"../outside\""),
        (vec!["why", "etl/weather", "/etc/passwd"], "\"/etc/passwd\""),
        (vec!["why", "etl/weather", "."], "\".\""),
    ] {
        let o = run(&r, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(named), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
}

/// Every file of the repository.
fn files(r: &GitRepo) -> Vec<String> {
    r.git(&["ls-files"]).lines().map(str::to_string).collect()
}

fn rebuilt(r: &GitRepo, mode: &str) -> BTreeSet<String> {
    let o = run(r, &["--json", "changed", "--context-mode", mode]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect()
}

/// For every file and image, in both modes: `why` says input exactly when a commit changing
/// that file alone makes `changed` rebuild the image; `inputs` lists a context file exactly
/// when `why` says a reachable instruction reads it (or it is the Dockerfile or ignore file).
#[test]
fn why_agrees_with_changed_and_inputs_for_every_file_and_image() {
    let r = repo();
    let images = ["base/python", "etl/prices", "etl/weather", "services/api"];
    let base = r.git(&["rev-parse", "HEAD"]);
    for file in files(&r) {
        let old = std::fs::read_to_string(r.path().join(&file)).unwrap();
        r.write(&file, &format!("{old}# changed\n"));
        r.commit(&format!("change {file}"));
        for mode in ["precise", "full"] {
            let rebuilt = rebuilt(&r, mode);
            for image in images {
                let v = why_json(&r, &["--rev", &base, "--context-mode", mode, image, &file]);
                assert_eq!(
                    v["input"],
                    rebuilt.contains(image),
                    "{mode} {image} {file}: {v} / changed rebuilt {rebuilt:?}"
                );
            }
        }
        r.git(&["reset", "-q", "--hard", &base]);
    }
    for image in images {
        let o = run(&r, &["--json", "inputs", image]);
        let listed: Vec<String> = serde_json::from_slice(&o.stdout).unwrap();
        let context = format!("{image}/");
        for file in files(&r) {
            let Some(rel) = file.strip_prefix(&context) else {
                continue;
            };
            let v = why_json(&r, &[image, &file]);
            let read = matches!(
                v["because"]["kind"].as_str(),
                Some("copy" | "add" | "mount")
            );
            let own = matches!(
                v["because"]["kind"].as_str(),
                Some("dockerfile" | "ignore_file")
            );
            assert_eq!(
                listed.iter().any(|l| l == rel),
                read || own,
                "{image} {file}: {v}, inputs {listed:?}"
            );
        }
    }
}
