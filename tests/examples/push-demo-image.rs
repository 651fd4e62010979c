//! Push a small multi-arch image (linux/amd64 + linux/arm64, with buildx-style attestations) to
//! a plain-HTTP registry: `push-demo-image 127.0.0.1:PORT acme/etl:1.0`. Used by scripts/demo.sh
//! and the benchmark script; the content is synthetic (no Docker engine needed).
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
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: push-demo-image REGISTRY_ADDR REPO:TAG [REPO:TAG...]");
        std::process::exit(2);
    }
    let client = plain_client(&args[1]);
    for name in &args[2..] {
        let r = ferry_core::Reference::parse(&format!("{}/{name}", args[1])).unwrap_or_else(|e| {
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
            name,
        )
        .await;
        println!("{} {r}", pushed.digest);
    }
}
