//! The README's install path, from a clean clone: `scripts/install.sh` installs the four
//! binaries (`cargo install --locked --path bins/<tool>`) and each answers `--version`.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Command;

const TOOLS: [&str; 4] = [
    "ferry-registry",
    "ferry-detect",
    "ferry-bump",
    "ferry-deploy",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

#[test]
fn the_readme_quick_start_shows_the_install_script() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let quick = &readme[readme.find("## Quick start").expect("a quick start")..];
    let first_block = quick.split("```").nth(1).expect("a code block");
    let commands: Vec<&str> = first_block
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .filter(|word| !word.starts_with('#'))
        .collect();
    assert_eq!(
        commands[..3],
        ["scripts/demo.sh", "scripts/test.sh", "scripts/install.sh"],
        "{first_block}"
    );
    let ci = std::fs::read_to_string(workspace().join(".ci/run")).unwrap();
    assert!(
        ci.contains("scripts/test.sh"),
        "CI runs the README's test command"
    );
}

#[test]
fn a_clean_clone_installs_every_binary_with_the_install_script() {
    let root = workspace();
    let tmp = tempfile::tempdir().unwrap();
    let clone = tmp.path().join("ferry");
    let out = Command::new("git")
        .args(["clone", "-q", "--no-hardlinks"])
        .arg(&root)
        .arg(&clone)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Intermediate artifacts (compiled dependencies) are shared with the suite's own build
    // (cargo's build-dir), so only the clone's own crates compile; the installed binaries are
    // produced in a target directory of their own, so the clone's sources never overwrite the
    // binaries the other tests run.
    let exe = std::env::current_exe().unwrap();
    let target_root = exe
        .ancestors()
        .nth(3)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf();
    let build_dir = std::env::var_os("CARGO_BUILD_BUILD_DIR")
        .map_or_else(|| target_root.clone(), PathBuf::from);
    let install_root = tmp.path().join("root");
    // --debug keeps the suite within its time budget; the README's command builds --release.
    let out = Command::new("bash")
        .arg(clone.join("scripts/install.sh"))
        .arg("--root")
        .arg(&install_root)
        .arg("--debug")
        .env("CARGO_BUILD_BUILD_DIR", &build_dir)
        .env("CARGO_TARGET_DIR", target_root.join("install-check"))
        .env_remove("CARGO_INSTALL_ROOT")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = install_root.join("bin");
    assert!(
        stdout.contains(&format!("installed into {}:", bin.display())),
        "{stdout}"
    );
    let version = {
        let doc: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();
        doc["workspace"]["package"]["version"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for tool in TOOLS {
        let path = bin.join(tool);
        assert!(stdout.contains(&path.display().to_string()), "{stdout}");
        let out = Command::new(&path).arg("--version").output().unwrap();
        assert!(out.status.success(), "{tool} --version");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("{tool} {version}")
        );
    }
}
