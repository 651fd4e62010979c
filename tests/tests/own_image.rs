//! ferry's own image, checked with ferry's own tools (no Docker engine runs here): the
//! Dockerfile parses, its build context holds what the build copies and nothing it should not
//! (target/, .git, docs), and ferry-detect knows which changes rebuild it.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::process::Command;

use ferry_tests::bin;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn detect(args: &[&str]) -> String {
    let o = Command::new(bin("ferry-detect"))
        .arg("--repo")
        .arg(root())
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn the_image_graph_names_ferry_and_its_two_bases() {
    let g: serde_json::Value = serde_json::from_str(&detect(&["graph"])).unwrap();
    let ferry = g["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "ferry")
        .expect("ferry image");
    assert_eq!(ferry["dockerfile"], "Dockerfile");
    assert_eq!(ferry["context"], ".");
    assert_eq!(ferry["repository"], "ghcr.io/acme/ferry");
    assert_eq!(
        ferry["bases"],
        serde_json::json!([
            "docker.io/library/rust:1.95-bookworm",
            "docker.io/library/debian:bookworm-slim"
        ])
    );
}

#[test]
fn the_build_context_holds_what_the_build_copies_and_nothing_else() {
    let context = detect(&["context", "ferry"]);
    let files: Vec<&str> = context.lines().collect();
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "crates/core/src/lib.rs",
        "bins/ferry-deploy/src/main.rs",
        "tests/Cargo.toml",
    ] {
        assert!(files.contains(&needed), "{needed} missing from the context");
    }
    for f in &files {
        for banned in [
            "target/",
            ".git/",
            "docs/",
            "benches/",
            "tests/fixtures/",
            "deploy/",
        ] {
            assert!(!f.starts_with(banned), "{f} is sent to the builder");
        }
        assert!(!f.ends_with(".md"), "{f} is sent to the builder");
    }
    // Every workspace member the build needs is in the context.
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    for member in manifest.lines().filter_map(|l| {
        l.trim()
            .strip_prefix('"')
            .and_then(|l| l.strip_suffix("\","))
    }) {
        assert!(
            files.iter().any(|f| f.starts_with(&format!("{member}/"))),
            "workspace member {member} not in the context"
        );
    }
    let inputs = detect(&["inputs", "ferry"]);
    assert!(inputs.lines().all(|f| !f.starts_with("docs/")));
    assert!(inputs.lines().any(|f| f == "crates/registry/src/client.rs"));
}
