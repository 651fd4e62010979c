//! Tag strategies (`ferry_deploy::tags`) on tags listed by a real registry on 127.0.0.1: commit
//! tags ranked by the images' created times read within an inspection budget over several
//! passes, build numbers crossing digit counts, dates, ignored tags, and a policy that matches
//! nothing.
// Test code: a failed unwrap is a failed test; tests may read the environment.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::collections::BTreeMap;

use ferry_deploy::tags::{self, InspectRequest, NoCandidate, TagStrategy};
use ferry_registry::TagsOptions;
use ferry_tests::{Flavor, Registry, plain_client, push_image_created};

const TAGS: &[(&str, &str)] = &[
    ("main-aaaaaaa", "2026-11-01T10:00:00Z"),
    ("main-bbbbbbb", "2026-11-20T10:00:00Z"),
    ("main-ccccccc", "2026-11-10T10:00:00.123456789Z"),
    ("main-ddddddd-rc", "2026-11-28T10:00:00Z"),
    ("pr-7", "2026-11-29T10:00:00Z"),
    ("build-9", "2026-01-01T00:00:00Z"),
    ("build-99", "2026-01-01T00:00:00Z"),
    ("build-100", "2026-01-01T00:00:00Z"),
    ("build-101-rc", "2026-01-01T00:00:00Z"),
    ("2025-12-31", "2026-01-01T00:00:00Z"),
    ("2026-02-01", "2026-01-01T00:00:00Z"),
    ("2026-11-29", "2026-01-01T00:00:00Z"),
];

fn strategy(v: &str) -> TagStrategy {
    TagStrategy::parse(v).unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_strategy_chooses_from_a_real_tag_list() {
    let registry = Registry::start();
    let client = plain_client(&registry.addr);
    let repo = registry.reference("acme/app");
    for (tag, created) in TAGS {
        let r = repo.with_tag(tag).unwrap();
        push_image_created(
            &client,
            &r,
            &["linux/amd64"],
            Flavor::Oci,
            true,
            false,
            tag,
            created,
        )
        .await;
    }
    let listed = client
        .tags(&repo, &TagsOptions { page_size: Some(5) })
        .await
        .unwrap();
    assert_eq!(listed.len(), TAGS.len(), "{listed:?}");
    let ignore = tags::parse_ignore(Some("-rc$")).unwrap();

    // numerical: build-100 beats build-99 (digit counts), the ignored -rc is never chosen.
    let numerical = strategy(r"numerical:^build-(\d+)")
        .choose("build-99", &listed, ignore.as_ref(), |_| None)
        .unwrap();
    assert_eq!(numerical.tag, "build-100");

    // alphabetical: the latest date.
    let alphabetical = strategy(r"alphabetical:^\d{4}-\d\d-\d\d$")
        .choose("2026-02-01", &listed, ignore.as_ref(), |_| None)
        .unwrap();
    assert_eq!(alphabetical.tag, "2026-11-29");

    // No match: skipped with the reason.
    let none = strategy(r"numerical:^release-(\d+)$").choose("release-1", &listed, None, |_| None);
    assert_eq!(
        none.unwrap_err().to_string(),
        r"no tag matches numerical:^release-(\d+)$"
    );

    // newest-build: created times read at most 2 per pass, never twice, current first.
    let newest = strategy("newest-build:^main-");
    let mut cache: BTreeMap<String, u64> = BTreeMap::new();
    let mut reads = Vec::new();
    let mut outcomes = Vec::new();
    for _pass in 0..3 {
        let request = [InspectRequest {
            strategy: &newest,
            ignore: ignore.as_ref(),
            current: "main-aaaaaaa",
        }];
        let wanted: Vec<String> = tags::to_inspect(&request, &listed, |t| cache.contains_key(t), 2)
            .into_iter()
            .map(str::to_string)
            .collect();
        assert!(wanted.len() <= 2, "{wanted:?}");
        for t in &wanted {
            let created = client
                .created(&repo.with_tag(t).unwrap())
                .await
                .unwrap()
                .unwrap();
            assert!(cache.insert(t.clone(), created).is_none(), "{t} read twice");
        }
        reads.push(wanted);
        outcomes.push(
            newest.choose("main-aaaaaaa", &listed, ignore.as_ref(), |t| {
                cache.get(t).copied()
            }),
        );
    }
    assert_eq!(reads[0][0], "main-aaaaaaa", "the current tag is read first");
    assert_eq!(
        reads.concat().len(),
        3,
        "three candidates in all (the -rc and pr-7 are never read)"
    );
    assert!(
        reads[2].is_empty(),
        "nothing left to read in the third pass"
    );
    // After the first pass one candidate is still unread: the choice says so (a caller may wait).
    let first = outcomes[0].as_ref().unwrap();
    assert_eq!((first.tag.as_str(), first.uninspected), ("main-ccccccc", 1));
    let last = outcomes.last().unwrap().as_ref().unwrap();
    assert_eq!(last.tag, "main-bbbbbbb");
    assert_eq!(last.uninspected, 0);
    // From the newest, the same listing offers nothing: never a downgrade.
    let e = newest
        .choose("main-bbbbbbb", &listed, ignore.as_ref(), |t| {
            cache.get(t).copied()
        })
        .unwrap_err();
    assert!(matches!(e, NoCandidate::UpToDate { .. }), "{e}");
}
