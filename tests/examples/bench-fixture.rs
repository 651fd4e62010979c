//! Fill a plain-HTTP registry for the benchmarks: `bench-fixture ADDR REPOS TAGS` pushes one
//! multi-arch image per repository (`bench/r0` … ) and tags it TAGS times (`t0` …), then prints
//! every `ADDR/bench/rN:tM` reference, one per line. A SALT (`bench-fixture ADDR REPOS TAGS
//! SALT`) makes the images differ from an earlier run's: new digests under the same tags.
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
    if !(4..=5).contains(&args.len()) {
        eprintln!("usage: bench-fixture REGISTRY_ADDR REPOS TAGS [SALT]");
        std::process::exit(2);
    }
    let addr = &args[1];
    let repos: usize = args[2].parse().expect("REPOS is a number");
    let tags: usize = args[3].parse().expect("TAGS is a number");
    let salt = args.get(4).map_or("", String::as_str);
    let client = plain_client(addr);
    for r in 0..repos {
        let first = ferry_core::Reference::parse(&format!("{addr}/bench/r{r}:t0")).unwrap();
        push_image(
            &client,
            &first,
            &["linux/amd64", "linux/arm64"],
            Flavor::Oci,
            false,
            false,
            &format!("r{r}{salt}"),
        )
        .await;
        let index = client.manifest(&first).await.unwrap();
        println!("{first}");
        for t in 1..tags {
            let tagged = first.with_tag(&format!("t{t}")).unwrap();
            client
                .put_manifest(&tagged, &index.media_type, index.body.clone())
                .await
                .unwrap();
            println!("{tagged}");
        }
    }
}
