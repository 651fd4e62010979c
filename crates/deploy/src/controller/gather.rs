//! Asking the registry what the workloads need: tag lists, one HEAD per unique `name:tag`, then
//! the platforms (and, for soak gates, the created time) of each update candidate. Every error
//! becomes an answer ("registry: …") on the workloads it concerns; none aborts the pass.

use std::collections::BTreeSet;
use std::future::Future;

use ferry_core::{Platform, Reference};
use futures::StreamExt;

use super::RateGate;
use crate::cluster::Workload;
use crate::policy::{self, Answers, Gate, TagFacts};

/// What one gathering asked and learned.
pub(super) struct Gathered {
    /// The answers.
    pub answers: Answers,
    /// Registry requests actually sent.
    pub requests: usize,
}

/// Ask `registry` everything `workloads` need. `gate` decides (with partial answers) which
/// candidates need an inspection or a created time.
pub(super) async fn gather(
    registry: &ferry_registry::Client,
    rate_gate: &RateGate,
    concurrency: usize,
    workloads: &[Workload],
    platforms: &[Platform],
    gate: &Gate<'_>,
) -> Gathered {
    let conc = concurrency.max(1);
    let mut out = Gathered {
        answers: Answers::default(),
        requests: 0,
    };
    let mut resolve: BTreeSet<String> = BTreeSet::new();
    let mut tags: BTreeSet<String> = BTreeSet::new();
    for w in workloads {
        let n = policy::needs(&w.view);
        resolve.extend(n.resolve);
        tags.extend(n.tags);
    }
    let listed = concurrently(tags, conc, |name| list_tags(registry, name)).await;
    out.requests += listed.len();
    out.answers.tags.extend(listed);
    for w in workloads {
        resolve.extend(policy::semver_candidates(&w.view, &out.answers));
    }
    let resolved = concurrently(resolve, conc, |key| resolve_tag(registry, rate_gate, key)).await;
    out.requests += resolved.iter().filter(|(_, (_, asked))| *asked).count();
    out.answers
        .resolved
        .extend(resolved.into_iter().map(|(k, (r, _))| (k, r)));
    // A created time can only be asked for once the platforms passed: at most two rounds.
    for _ in 0..2 {
        if !candidates(registry, conc, workloads, platforms, gate, &mut out).await {
            break;
        }
    }
    out
}

/// Run `f` over `keys` with at most `conc` at a time; (key, answer) pairs.
async fn concurrently<T, F, Fut>(keys: BTreeSet<String>, conc: usize, f: F) -> Vec<(String, T)>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = T>,
{
    futures::stream::iter(keys.into_iter().map(|k| {
        let fut = f(k.clone());
        async move { (k, fut.await) }
    }))
    .buffer_unordered(conc)
    .collect()
    .await
}

async fn list_tags(registry: &ferry_registry::Client, name: String) -> Result<Vec<String>, String> {
    let r = Reference::parse(&name).map_err(|e| e.to_string())?;
    registry
        .tags(&r, &ferry_registry::TagsOptions::default())
        .await
        .map_err(|e| e.to_string())
}

/// One HEAD, unless the rate gate holds the registry back; (answer, whether it was asked).
async fn resolve_tag(
    registry: &ferry_registry::Client,
    gate: &RateGate,
    key: String,
) -> (Result<TagFacts, String>, bool) {
    let r = match Reference::parse(&key) {
        Ok(r) => r,
        Err(e) => return (Err(e.to_string()), false),
    };
    if let Err(why) = gate.check(r.registry()) {
        return (Err(why), false);
    }
    match registry.resolve(&r).await {
        Ok(x) => {
            gate.observe(r.registry(), x.rate_limit.as_ref());
            let facts = TagFacts {
                digest: x.digest,
                platforms: None,
            };
            (Ok(facts), true)
        }
        Err(e) => {
            if let ferry_registry::Error::RateLimited { rate_limit, .. } = &e {
                // A 429 means nothing is left, whatever the headers said.
                let spent = ferry_registry::RateLimit {
                    remaining: Some(0),
                    ..rate_limit.clone().unwrap_or(ferry_registry::RateLimit {
                        limit: None,
                        remaining: None,
                        window_seconds: None,
                        source: None,
                    })
                };
                gate.observe(r.registry(), Some(&spent));
            }
            (Err(e.to_string()), true)
        }
    }
}

/// One round over the update candidates: inspect new digests' platforms, read created times
/// where a soak counts from them. `false` when nothing was missing.
async fn candidates(
    registry: &ferry_registry::Client,
    conc: usize,
    workloads: &[Workload],
    platforms: &[Platform],
    gate: &Gate<'_>,
    out: &mut Gathered,
) -> bool {
    let mut inspect: BTreeSet<String> = BTreeSet::new();
    let mut created: BTreeSet<String> = BTreeSet::new();
    let answers = &out.answers;
    for w in workloads {
        for d in policy::decide_gated(&w.view, answers, platforms, gate) {
            if let Some(k) = d.inspect.filter(|k| !answers.platforms.contains_key(k)) {
                inspect.insert(k);
            }
            if let Some(k) = d
                .created_needed
                .filter(|k| !answers.created.contains_key(k))
            {
                created.insert(k);
            }
        }
    }
    if inspect.is_empty() && created.is_empty() {
        return false;
    }
    let inspected = concurrently(inspect, conc, |t| inspect_platforms(registry, t)).await;
    out.requests += inspected.len();
    for (target, res) in inspected {
        record_inspection(&mut out.answers, target, res);
    }
    let times = concurrently(created, conc, |k| created_time(registry, k)).await;
    out.requests += times.len();
    out.answers.created.extend(times);
    true
}

async fn inspect_platforms(
    registry: &ferry_registry::Client,
    target: String,
) -> Result<Vec<Platform>, String> {
    let r = Reference::parse(&target).map_err(|e| e.to_string())?;
    let i = registry.inspect(&r).await.map_err(|e| e.to_string())?;
    Ok(i.platforms.into_iter().map(|p| p.platform).collect())
}

/// A failed inspection makes every candidate on that digest a skip with the reason.
fn record_inspection(answers: &mut Answers, target: String, res: Result<Vec<Platform>, String>) {
    match res {
        Ok(p) => {
            answers.platforms.insert(target, p);
        }
        Err(e) => {
            let digest = target
                .rsplit_once('@')
                .map(|(_, d)| d.to_string())
                .unwrap_or_default();
            for slot in answers.resolved.values_mut() {
                if slot.as_ref().is_ok_and(|f| f.digest.to_string() == digest) {
                    *slot = Err(format!("inspecting the new image: {e}"));
                }
            }
            answers.platforms.insert(target, Vec::new());
        }
    }
}

async fn created_time(registry: &ferry_registry::Client, key: String) -> Option<u64> {
    let r = Reference::parse(&key).ok()?;
    registry.created(&r).await.unwrap_or_else(|e| {
        tracing::warn!(image = %key, error = %e, "cannot read created time");
        None
    })
}
