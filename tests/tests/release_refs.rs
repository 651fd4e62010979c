//! Every ferry release URL, container image reference and GitHub Action reference in the
//! repository comes from one place: `repository` and `version` in Cargo.toml's
//! `[workspace.package]` (derived by `scripts/release-refs.sh`, which the release workflow uses).
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Command;

use regex_lite::Regex;

/// The names a release publishes.
#[derive(Debug, PartialEq, Eq)]
struct Refs {
    repository: String,
    version: String,
    image: String,
    action: String,
    url_template: String,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The derivation, written independently of the script so the two check each other.
fn refs_from(cargo_toml: &str) -> Refs {
    let doc: toml::Table = cargo_toml.parse().expect("Cargo.toml parses");
    let package = &doc["workspace"]["package"];
    let repository = package["repository"]
        .as_str()
        .expect("repository")
        .to_string();
    let version = package["version"].as_str().expect("version").to_string();
    let slug = repository
        .strip_prefix("https://github.com/")
        .expect("the repository is a https://github.com/OWNER/NAME URL")
        .trim_end_matches('/')
        .to_string();
    Refs {
        image: format!("ghcr.io/{}", slug.to_lowercase()),
        url_template: format!(
            "{repository}/releases/download/v{{version}}/ferry-{{version}}-{{target}}.tar.gz"
        ),
        action: slug,
        repository,
        version,
    }
}

fn refs() -> Refs {
    refs_from(&std::fs::read_to_string(workspace().join("Cargo.toml")).unwrap())
}

/// Everything wrong with `text` (the file `name`), one line per finding.
fn disagreements(refs: &Refs, name: &str, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let version = regex_lite::escape(&refs.version);
    // host[:port]/path/ferry[:tag], not followed by more path (…/ferry/releases is a URL).
    let image = Regex::new(
        r"([a-z0-9-]+(?:\.[a-z0-9-]+)+(?::[0-9]+)?/(?:[a-z0-9._-]+/)*ferry)(?::([A-Za-z0-9_][A-Za-z0-9_.-]*))?(?:[^A-Za-z0-9/_.-]|$)",
    )
    .unwrap();
    let repository_path = refs.repository.trim_start_matches("https://");
    for c in image.captures_iter(text) {
        let name_part = &c[1];
        let tag = c.get(2).map(|t| t.as_str());
        if name_part.starts_with("github.com/") {
            if name_part != repository_path {
                found.push(format!(
                    "{name}: repository {name_part} is not {repository_path}"
                ));
            }
            continue;
        }
        if name_part != refs.image {
            found.push(format!("{name}: image {name_part} is not {}", refs.image));
        }
        if let Some(tag) = tag
            && ![refs.version.as_str(), "latest", "dev"].contains(&tag)
        {
            found.push(format!(
                "{name}: image tag {tag} is none of {}, latest, dev",
                refs.version
            ));
        }
    }
    let url = Regex::new(r#"https?://[^\s"'<>)]*/releases/[^\s"'<>)]*"#).unwrap();
    let good_url = Regex::new(&format!(
        r"^{}/releases/download/v(?:{version}|\{{version\}})/ferry-(?:{version}|\{{version\}})-(?:x86_64-linux|aarch64-linux|\{{target\}})\.tar\.gz$",
        regex_lite::escape(&refs.repository)
    ))
    .unwrap();
    let release_page = Regex::new(&format!(
        r"^{}/releases(?:/tag/v{version})?/?$",
        regex_lite::escape(&refs.repository)
    ))
    .unwrap();
    for m in url.find_iter(text) {
        let u = m.as_str().trim_end_matches(['`', '.', ',', ';', ':']);
        if u.contains("ferry") && !good_url.is_match(u) && !release_page.is_match(u) {
            found.push(format!(
                "{name}: release URL {u} does not follow {}",
                refs.url_template
            ));
        }
    }
    let tarball =
        Regex::new(r"ferry-([0-9][A-Za-z0-9.+-]*?)-(?:x86_64|aarch64)-linux\.tar\.gz").unwrap();
    for c in tarball.captures_iter(text) {
        if c[1] != refs.version {
            found.push(format!(
                "{name}: tarball {} is not of version {}",
                &c[0], refs.version
            ));
        }
    }
    let action = Regex::new(r"uses:\s*([A-Za-z0-9_.-]+/ferry)@([^\s]+)").unwrap();
    for c in action.captures_iter(text) {
        if c[1] != refs.action || c[2] != format!("v{}", refs.version) {
            found.push(format!(
                "{name}: uses: {}@{} is not {}@v{}",
                &c[1], &c[2], refs.action, refs.version
            ));
        }
    }
    found
}

/// Tracked and new (not ignored) files of the repository.
fn repository_files() -> Vec<PathBuf> {
    let out = Command::new("git")
        .arg("-C")
        .arg(workspace())
        .args([
            "ls-files",
            "--cached",
            "--others",
            "--exclude-standard",
            "-z",
        ])
        .output()
        .expect("git");
    assert!(out.status.success(), "git ls-files failed");
    out.stdout
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
        .collect()
}

#[test]
fn the_release_refs_script_derives_the_same_names() {
    let out = Command::new("bash")
        .arg(workspace().join("scripts/release-refs.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} missing in {text}"))
            .to_string()
    };
    let from_script = Refs {
        repository: get("REPOSITORY"),
        version: get("VERSION"),
        image: get("IMAGE"),
        action: get("ACTION"),
        url_template: get("RELEASE_URL_TEMPLATE"),
    };
    assert_eq!(from_script, refs());
}

#[test]
fn every_release_url_image_and_action_reference_agrees_with_cargo_toml() {
    let refs = refs();
    let root = workspace();
    // This file's own examples, and the installer test's fake release (a made-up version in a
    // temp dir on purpose) are not references to a release.
    let skip = [
        Path::new("tests/tests/release_refs.rs"),
        Path::new("tests/tests/ci_integrations.rs"),
    ];
    let mut problems = Vec::new();
    let mut checked = 0;
    for path in repository_files() {
        if skip.contains(&path.as_path()) || path.starts_with("target") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root.join(&path)) else {
            continue; // binary, or deleted in the work tree
        };
        problems.extend(disagreements(&refs, &path.display().to_string(), &text));
        checked += 1;
    }
    assert!(checked > 50, "only {checked} files read");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The places that must name the release at all, do.
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let kustomization = read("deploy/base/kustomization.yaml");
    assert!(kustomization.contains(&format!("newName: {}", refs.image)));
    assert!(kustomization.contains(&format!("newTag: \"{}\"", refs.version)));
    assert!(read("action.yml").contains(&refs.url_template));
    assert!(read("ferry.toml").contains(&format!("repository = \"{}\"", refs.image)));
}

#[test]
fn the_check_finds_wrong_hosts_paths_tags_and_actions() {
    let refs = refs_from(
        "[workspace.package]\nversion = \"1.2.3\"\nrepository = \"https://github.com/Acme/ferry\"\n",
    );
    assert_eq!(refs.image, "ghcr.io/acme/ferry");
    let good = "image: ghcr.io/acme/ferry:1.2.3\nFROM ghcr.io/acme/ferry:latest\n\
        curl https://github.com/Acme/ferry/releases/download/v1.2.3/ferry-1.2.3-aarch64-linux.tar.gz\n\
        default: https://github.com/Acme/ferry/releases/download/v{version}/ferry-{version}-{target}.tar.gz\n\
        uses: Acme/ferry@v1.2.3\nhttps://github.com/Acme/ferry/releases/tag/v1.2.3.\nghcr.io/acme/sensor:1.0 ghcr.io/acme/ferry-bot:9\n";
    assert_eq!(disagreements(&refs, "good", good), Vec::<String>::new());
    for bad in [
        "image: ghcr.io/other/ferry:1.2.3",
        "image: \"ghcr.io/acme/ferry:1.2.2\"",
        "newName: quay.io/acme/ferry",
        "curl -o f https://example.invalid/ferry/releases/v1.2.3/ferry-x86_64-linux.tar.gz",
        "https://github.com/Acme/ferry/releases/download/v1.2.2/ferry-1.2.3-x86_64-linux.tar.gz",
        "sha256-amd64: <sha256 of ferry-1.2.2-x86_64-linux.tar.gz>",
        "uses: acme/ferry@v1.2.3",
        "uses: Acme/ferry@main",
        "see https://github.com/someone/ferry",
        "the page https://github.com/Acme/ferry/releases/tag/v1.2.2",
    ] {
        assert_eq!(disagreements(&refs, "bad", bad).len(), 1, "{bad}");
    }
}
