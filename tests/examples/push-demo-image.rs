//! Push a small multi-arch image (linux/amd64 + linux/arm64, with buildx-style attestations) to
//! a plain-HTTP registry: `push-demo-image [--salt SALT] 127.0.0.1:PORT acme/etl:1.0`. Prints
//! `DIGEST REFERENCE` per image. Used by scripts/demo.sh and the benchmark scripts; the content
//! is synthetic (no Docker engine needed) and depends only on the name and SALT, so pushing
//! the same name with a new SALT makes a new digest.
// A test tool run by benchmarks and the demo: it prints, exits and unwraps like a binary.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::exit,
    clippy::disallowed_methods
)]

use ferry_tests::{Flavor, plain_client, push_image};

#[tokio::main]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut salt = String::new();
    if args.first().map(String::as_str) == Some("--salt") && args.len() > 1 {
        salt = args[1].clone();
        args.drain(..2);
    }
    if args.len() < 2 {
        eprintln!("usage: push-demo-image [--salt SALT] REGISTRY_ADDR REPO:TAG [REPO:TAG...]");
        std::process::exit(2);
    }
    let client = plain_client(&args[0]);
    for name in &args[1..] {
        let r = ferry_core::Reference::parse(&format!("{}/{name}", args[0])).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2)
        });
        let pushed = push_image(
            &client,
            &r,
            &["linux/amd64", "linux/arm64"],
            Flavor::Oci,
            false,
            true,
            &format!("{name}{salt}"),
        )
        .await;
        println!("{} {r}", pushed.digest);
    }
}
