//! The CI integrations that run as shell: the release installer behind action.yml (checksum
//! verified, PATH extended, a wrong checksum refused).

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
