//! `ferry.dev/promote-from`: what the beta workload offers, from the pass's workloads.

use ferry_core::{Digest, Reference};

use crate::decide::Gate;
use crate::{QUARANTINED, ROLLED_AT, parse_pairs, parse_stamps};

/// Why a `promote-from` beta workload offers nothing to promote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BetaProblem {
    /// No workload of the pass has that id.
    NotFound {
        /// `ferry.dev/promote-from` as written.
        from: String,
    },
    /// The beta workload runs no image of the repository.
    NoImage {
        /// The beta workload.
        from: String,
        /// The repository looked for.
        repository: String,
    },
    /// The beta workload's image has no digest ferry knows.
    NoDigest {
        /// The beta workload.
        from: String,
        /// Its image as written.
        image: String,
    },
    /// The beta workload's rollout is not complete and available.
    NotHealthy {
        /// The beta workload.
        from: String,
    },
    /// The digest was rolled back in the beta workload.
    RolledBack {
        /// The beta workload.
        from: String,
        /// The digest.
        digest: Digest,
    },
}

impl std::fmt::Display for BetaProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BetaProblem::NotFound { from } => write!(f, "promote-from workload {from} not found"),
            BetaProblem::NoImage { from, repository } => {
                write!(f, "{from} runs no {repository} image")
            }
            BetaProblem::NoDigest { from, image } => {
                write!(f, "{from} runs {image} without a known digest")
            }
            BetaProblem::NotHealthy { from } => {
                write!(
                    f,
                    "{from} is not healthy (rollout not complete and available)"
                )
            }
            BetaProblem::RolledBack { from, digest } => {
                write!(f, "{digest} was rolled back in {from}: not soaked")
            }
        }
    }
}

/// What a `promote-from` beta workload offers for a repository: its digest and since when it
/// has run it (`None`: ferry did not roll it; the caller's first-seen record counts).
pub(crate) fn beta_offer(
    gate: &Gate<'_>,
    from: &str,
    repo: &Reference,
) -> Result<(Digest, Option<u64>), BetaProblem> {
    let from_owned = || from.to_string();
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
        .ok_or_else(|| BetaProblem::NotFound { from: from_owned() })?;
    let c = beta
        .containers
        .iter()
        .find(|c| c.image.parsed().is_some_and(|r| r.same_repository(repo)))
        .ok_or_else(|| BetaProblem::NoImage {
            from: from_owned(),
            repository: repo.name(),
        })?;
    let digest = c
        .image
        .parsed()
        .and_then(|r| r.digest().cloned())
        .or_else(|| beta.running.get(&c.name).cloned())
        .ok_or_else(|| BetaProblem::NoDigest {
            from: from_owned(),
            image: c.image.to_string(),
        })?;
    if beta.healthy != Some(true) {
        return Err(BetaProblem::NotHealthy { from: from_owned() });
    }
    let d = digest.to_string();
    let quarantined = parse_pairs(beta.annotation(QUARANTINED));
    if quarantined.get(&c.name).is_some_and(|q| q.contains(&d)) {
        return Err(BetaProblem::RolledBack {
            from: from_owned(),
            digest,
        });
    }
    let since = parse_stamps(beta.annotation(ROLLED_AT))
        .get(&c.name)
        .filter(|(x, _)| *x == d)
        .map(|(_, t)| *t);
    Ok((digest, since))
}
