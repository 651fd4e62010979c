//! `ferry.dev/promote-from`: what the beta workload offers, from the pass's workloads.

use ferry_core::{Digest, Reference};

use crate::decide::Gate;
use crate::{QUARANTINED, ROLLED_AT, parse_pairs, parse_stamps};

/// What a `promote-from` beta workload offers for a repository: its digest and since when it
/// has run it (`None`: ferry did not roll it; the caller's first-seen record counts).
pub(crate) fn beta_offer(
    gate: &Gate<'_>,
    from: &str,
    repo: &Reference,
) -> Result<(Digest, Option<u64>), String> {
    let lower = from.to_lowercase();
    let beta = gate
        .workloads
        .iter()
        .find(|b| {
            b.id() == from
                || format!(
                    "{}/{}/{}",
                    b.namespace,
                    b.kind.as_str().to_lowercase(),
                    b.name
                ) == lower
        })
        .ok_or_else(|| format!("promote-from workload {from} not found"))?;
    let c = beta
        .containers
        .iter()
        .find(|c| Reference::parse(&c.image).is_ok_and(|r| r.same_repository(repo)))
        .ok_or_else(|| format!("{from} runs no {} image", repo.name()))?;
    let digest = Reference::parse(&c.image)
        .ok()
        .and_then(|r| r.digest().cloned())
        .or_else(|| beta.running.get(&c.name).cloned())
        .ok_or_else(|| format!("{from} runs {} without a known digest", c.image))?;
    if beta.healthy != Some(true) {
        return Err(format!(
            "{from} is not healthy (rollout not complete and available)"
        ));
    }
    let d = digest.to_string();
    let quarantined = parse_pairs(beta.annotation(QUARANTINED));
    if quarantined.get(&c.name).is_some_and(|q| q.contains(&d)) {
        return Err(format!("{digest} was rolled back in {from}: not soaked"));
    }
    let since = parse_stamps(beta.annotation(ROLLED_AT))
        .get(&c.name)
        .filter(|(x, _)| *x == d)
        .map(|(_, t)| *t);
    Ok((digest, since))
}
