//! Golden tests for Helm values write-back (`helm::set_helm_image`): each
//! `fixtures/helm/NAME.in.yaml` edited at a key gives exactly `NAME….out.yaml`, a second edit
//! changes nothing, and the layouts ferry refuses (`fixtures/helm/errors/`) give an error naming
//! the file and the key.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::path::PathBuf;

use ferry_deploy::helm::set_helm_image;

fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/helm")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn digest() -> String {
    format!("sha256:{}", "b".repeat(64))
}

/// (input, key path, repository, tag, expected output)
const CASES: &[(&str, &str, &str, &str, &str)] = &[
    // No `digest` key: tag becomes TAG@DIGEST, plain stays plain, comments stay.
    (
        "basic.in.yaml",
        "image",
        "ghcr.io/acme/app",
        "1.1.0",
        "basic.out.yaml",
    ),
    // `digest` key: tag keeps the bare tag; double and single quotes kept; `registry` +
    // `repository` left alone because together they name the same repository; 4-space indent.
    (
        "digest.in.yaml",
        "image",
        "ghcr.io/acme/app",
        "1.1.0",
        "digest.out.yaml",
    ),
    // Nested keys; the other `image:` mappings (top level, proxy, inside a block scalar) untouched.
    (
        "nested.in.yaml",
        "sensor.image",
        "ghcr.io/acme/sensor",
        "2026-11-29",
        "nested.sensor.out.yaml",
    ),
    (
        "nested.in.yaml",
        "sensor.sidecar.image",
        "ghcr.io/acme/sidecar",
        "1.0.1",
        "nested.sidecar.out.yaml",
    ),
    // `tag:` without a value gets one after its colon (comment kept); `nginx` keeps its
    // spelling for docker.io/library/nginx; an empty quoted digest is filled in its quotes.
    (
        "nulltag.in.yaml",
        "image",
        "docker.io/library/nginx",
        "1.27.3",
        "nulltag.out.yaml",
    ),
    // A plain value that YAML reads as a number gets quotes (`7.4` would render as a float).
    (
        "float.in.yaml",
        "image",
        "docker.io/library/redis",
        "7.4",
        "float.out.yaml",
    ),
];

#[test]
fn values_files_are_edited_exactly_like_the_golden_files() {
    for (input, key, repo, tag, output) in CASES {
        let text = fixture(input);
        let got = set_helm_image(input, &text, key, repo, tag, &digest())
            .unwrap_or_else(|e| panic!("{input} at {key}: {e}"));
        assert_eq!(got, fixture(output), "{input} at {key}");
        let again = set_helm_image(input, &got, key, repo, tag, &digest()).unwrap();
        assert_eq!(
            again, got,
            "{input} at {key}: a second edit changes nothing"
        );
    }
}

#[test]
fn crlf_line_endings_are_kept() {
    for (input, key, repo, tag, output) in CASES {
        let text = fixture(input).replace('\n', "\r\n");
        let got = set_helm_image(input, &text, key, repo, tag, &digest()).unwrap();
        assert_eq!(
            got,
            fixture(output).replace('\n', "\r\n"),
            "{input} at {key}"
        );
    }
}

#[test]
fn refused_layouts_name_the_file_and_the_key() {
    let cases = [
        (
            "flow.yaml",
            "image",
            "key image: `image: {repository: ghcr.io/acme/app, tag: \"1.0\"}` uses flow style",
        ),
        (
            "scalar.yaml",
            "image",
            "key image: is the scalar \"ghcr.io/acme/app:1.0\", not a mapping",
        ),
        ("missing-tag.yaml", "image", "key image.tag: missing"),
        ("list.yaml", "image", "key image: is a list, not a mapping"),
        (
            "block-scalar.yaml",
            "image",
            "key image.tag: `tag: |` uses flow style, an anchor, an alias, a tag or a block scalar",
        ),
        (
            "duplicate.yaml",
            "image",
            "key image.tag: `tag` appears twice",
        ),
        ("alias.yaml", "image", "key image.tag: `tag: *version`"),
        ("flow.yaml", "sensor.image", "key sensor: missing"),
        (
            "missing-tag.yaml",
            "image.",
            "key image.: empty key segment",
        ),
    ];
    for (file, key, want) in cases {
        let name = format!("charts/app/{file}");
        let text = fixture(&format!("errors/{file}"));
        let e = set_helm_image(&name, &text, key, "ghcr.io/acme/app", "1.1", &digest())
            .expect_err(file)
            .to_string();
        assert!(e.starts_with(&format!("{name}: ")), "{file}: {e}");
        assert!(e.contains(want), "{file}: {e}\nwanted: {want}");
    }
}

#[test]
fn new_values_that_are_no_image_parts_are_refused() {
    let text = fixture("basic.in.yaml");
    for (repo, tag, digest) in [
        ("ghcr.io/acme/app", "1.1\"\n", "sha256:1"),
        ("ghcr.io/acme app", "1.1", "sha256:1"),
        ("ghcr.io/acme/app", "1.1", ""),
    ] {
        let e = set_helm_image("values.yaml", &text, "image", repo, tag, digest).unwrap_err();
        assert!(e.to_string().contains("is not an image"), "{e}");
    }
}

#[test]
fn a_changed_repository_is_written_and_a_registry_must_agree() {
    let text = fixture("basic.in.yaml");
    let got = set_helm_image(
        "v.yaml",
        &text,
        "image",
        "ghcr.io/other/app",
        "1.1.0",
        &digest(),
    )
    .unwrap();
    assert!(
        got.contains("  repository: ghcr.io/other/app   # keep this comment\n"),
        "{got}"
    );
    let text = fixture("digest.in.yaml");
    let got = set_helm_image(
        "v.yaml",
        &text,
        "image",
        "ghcr.io/acme/other",
        "1.1.0",
        &digest(),
    )
    .unwrap();
    assert!(got.contains("    repository: 'acme/other'\n"), "{got}");
    let e = set_helm_image(
        "v.yaml",
        &text,
        "image",
        "quay.io/acme/app",
        "1.1.0",
        &digest(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("not on the registry ghcr.io"), "{e}");
}
