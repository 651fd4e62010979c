//! Fill a plain-HTTP registry for `benches/peers.sh`: `peers-fixture ADDR SEMVER_TAGS BUILDS`.
//! - `peers/semver`: one two-platform OCI index under SEMVER_TAGS tags `1.A.B` (B < 50), so the
//!   highest version is neither the first nor the last tag in the registry's (lexical) listing;
//! - `peers/builds`: BUILDS distinct two-platform images tagged `b-NNNN`, whose images were
//!   created in an order unrelated to their names (`b-0000` the oldest);
//! - `peers/src:v1`: a two-platform OCI index with buildx-style attestations, to copy.
//!
//! Prints `key=value` lines: the references and the tag each policy must pick.
// A test tool run by benchmarks: it prints, exits and unwraps like a binary.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::exit,
    clippy::disallowed_methods
)]

use ferry_core::Reference;
use ferry_tests::{Flavor, plain_client, push_image, push_image_created};

const PLATFORMS: &[&str] = &["linux/amd64", "linux/arm64"];

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: peers-fixture REGISTRY_ADDR SEMVER_TAGS BUILDS");
        std::process::exit(2);
    }
    let addr = &args[1];
    let semver_tags: usize = args[2].parse().expect("SEMVER_TAGS is a number");
    let builds: usize = args[3].parse().expect("BUILDS is a number");
    let client = plain_client(addr);
    let at = |s: &str| Reference::parse(&format!("{addr}/{s}")).unwrap();

    let first = at("peers/semver:1.0.0");
    push_image(
        &client,
        &first,
        PLATFORMS,
        Flavor::Oci,
        false,
        false,
        "semver",
    )
    .await;
    let index = client.manifest(&first).await.unwrap();
    let version = |i: usize| format!("1.{}.{}", i / 50, i % 50);
    for i in 1..semver_tags {
        let tagged = first.with_tag(&version(i)).unwrap();
        client
            .put_manifest(&tagged, &index.media_type, index.body.clone())
            .await
            .unwrap();
    }
    println!("semver_repo={}", first.name());
    println!("semver_current=1.0.0");
    println!("semver_expect={}", version(semver_tags - 1));

    // Build i was created `rank(i)` minutes after midnight: a permutation with rank(0) = 0.
    let rank = |i: usize| (i * 7919) % builds;
    let tag = |i: usize| format!("b-{i:04}");
    for i in 0..builds {
        let created = format!("2026-01-01T{:02}:{:02}:00Z", rank(i) / 60, rank(i) % 60);
        let r = at(&format!("peers/builds:{}", tag(i)));
        let salt = format!("build {i}");
        push_image_created(
            &client,
            &r,
            PLATFORMS,
            Flavor::Oci,
            false,
            false,
            &salt,
            &created,
        )
        .await;
    }
    let newest = (0..builds).max_by_key(|&i| rank(i)).unwrap();
    println!("builds_repo={}", at("peers/builds:x").name());
    println!("builds_current={}", tag(0));
    println!("builds_expect={}", tag(newest));

    let src = at("peers/src:v1");
    push_image(&client, &src, PLATFORMS, Flavor::Oci, false, true, "copy").await;
    println!("copy_src={src}");
}
