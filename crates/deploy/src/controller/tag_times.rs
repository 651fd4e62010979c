//! `newest-build` created times: read only for tags not seen before (a cache keyed by digest
//! that lives across passes), at most `max_inspect` per repository per pass
//! ([`tags::to_inspect`]), the current tags first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ferry_core::{Digest, Reference};
use futures::StreamExt;

use super::RateGate;
use super::gather::observe_failure;
use crate::cluster::Workload;
use crate::policy::{Answers, Policy, TagFacts, WorkloadPolicy};
use crate::tags::{self, InspectRequest};

/// Created times of tag images, shared by every pass of a controller (clones share the cache).
#[derive(Debug, Clone)]
pub struct TagTimes {
    /// Created times read per repository per pass at most (`--max-inspect`).
    pub max_inspect: usize,
    cache: Arc<Mutex<Cache>>,
}

#[derive(Debug, Default)]
struct Cache {
    /// Digest → its image's created time (`None`: the image records none).
    created: HashMap<Digest, Option<u64>>,
    /// `name:tag` → the digest it pointed at when read.
    seen: HashMap<Reference, Digest>,
}

impl Default for TagTimes {
    fn default() -> Self {
        TagTimes::new(tags::DEFAULT_MAX_INSPECT)
    }
}

impl TagTimes {
    /// An empty cache reading at most `max_inspect` created times per repository per pass.
    pub fn new(max_inspect: usize) -> Self {
        TagTimes {
            max_inspect,
            cache: Arc::default(),
        }
    }

    /// The cached created time of `name:tag`: `Some(None)` when the tag was read and its image
    /// records none, `None` when it was never read.
    fn known(&self, tag: &Reference) -> Option<Option<u64>> {
        let c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let d = c.seen.get(tag)?;
        c.created.get(d).copied()
    }

    fn by_digest(&self, d: &Digest) -> Option<Option<u64>> {
        let c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        c.created.get(d).copied()
    }

    fn remember(&self, tag: Reference, d: Digest, t: Option<u64>) {
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        c.created.insert(d.clone(), t);
        c.seen.insert(tag, d);
    }
}

/// The `newest-build` uses of `repo` by `workloads` (strategy, ignore, current tag).
fn requests<'a>(
    workloads: &'a [(&Workload, &WorkloadPolicy)],
    repo: &Reference,
) -> Vec<InspectRequest<'a>> {
    let mut out = Vec::new();
    for (w, p) in workloads {
        let Policy::Tags(strategy) = &p.policy else {
            continue;
        };
        for c in w
            .view
            .containers
            .iter()
            .filter(|c| p.managed.contains(&c.name))
        {
            let Some(r) = c.image.parsed() else {
                continue;
            };
            if r.same_repository(repo) && strategy.needs_created() {
                out.push(InspectRequest {
                    strategy,
                    ignore: p.tag_ignore.as_ref(),
                    current: r.tag().unwrap_or_default(),
                });
            }
        }
    }
    out
}

/// Read the created times `repo`'s `newest-build` workloads need into `answers` (cached ones
/// first, without a request; then at most `max_inspect` new ones). Returns the requests sent.
pub(super) async fn read(
    registry: &ferry_registry::Client,
    rate_gate: &RateGate,
    times: &TagTimes,
    concurrency: usize,
    workloads: &[(&Workload, &WorkloadPolicy)],
    repo: &Reference,
    answers: &mut Answers,
) -> usize {
    answers.tag_times_read.insert(repo.clone());
    let Some(Ok(listed)) = answers.tags.get(repo).cloned() else {
        return 0;
    };
    let key = |t: &str| repo.with_tag(t).ok();
    for t in &listed {
        if let Some(k) = key(t)
            && let Some(Some(at)) = times.known(&k)
        {
            answers.tag_created.insert(k, at);
        }
    }
    let reqs = requests(workloads, repo);
    let known = |t: &str| key(t).is_none_or(|k| times.known(&k).is_some());
    let wanted: Vec<Reference> = tags::to_inspect(&reqs, &listed, known, times.max_inspect)
        .into_iter()
        .filter_map(key)
        .collect();
    let replies: Vec<(Reference, Option<TagFacts>, Option<u64>, usize)> = futures::stream::iter(
        wanted
            .into_iter()
            .map(|k| read_one(registry, rate_gate, times, k)),
    )
    .buffer_unordered(concurrency.max(1))
    .collect()
    .await;
    let mut sent = 0;
    for (k, facts, at, n) in replies {
        sent += n;
        if let Some(f) = facts {
            answers.resolved.entry(k.clone()).or_insert(Ok(f));
        }
        if let Some(at) = at {
            answers.tag_created.insert(k, at);
        }
    }
    sent
}

/// Read one tag's created time: one GET of its manifest by tag (its digest is the hash of the
/// body), then, unless that digest was read before, the rest of [`ferry_registry::Client::created`]
/// (platform manifests and configs) without fetching the manifest again. A HEAD first would
/// cost one more request for every tag never read, and tags are listed here because they are
/// new. Returns (tag, facts, created time, requests sent).
async fn read_one(
    registry: &ferry_registry::Client,
    rate_gate: &RateGate,
    times: &TagTimes,
    tag: Reference,
) -> (Reference, Option<TagFacts>, Option<u64>, usize) {
    if let Err(why) = rate_gate.check(tag.registry()) {
        tracing::warn!(image = %tag, error = %why, "cannot read created time");
        return (tag, None, None, 0);
    }
    let top = match registry.manifest(&tag).await {
        Ok(top) => top,
        Err(e) => {
            observe_failure(rate_gate, tag.registry(), &e);
            tracing::warn!(image = %tag, error = %e, "cannot read tag for its created time");
            return (tag, None, None, 1);
        }
    };
    rate_gate.observe(tag.registry(), top.rate_limit.as_ref());
    let facts = TagFacts {
        digest: top.digest.clone(),
        platforms: None,
    };
    // Calls, as the pass counts them (the platform manifests and configs are one).
    let mut n = 1;
    let at = match times.by_digest(&facts.digest) {
        Some(at) => at,
        None => match registry.created_from(&tag, top).await {
            Ok(at) => {
                n += 1;
                at
            }
            Err(e) => {
                // Not cached: a failure is read again next pass.
                tracing::warn!(image = %tag, digest = %facts.digest, error = %e,
                    "cannot read created time");
                return (tag, Some(facts), None, 2);
            }
        },
    };
    times.remember(tag.clone(), facts.digest.clone(), at);
    (tag, Some(facts), at, n)
}
