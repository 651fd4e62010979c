//! Promotion: copy an image to another tag or repository only when it has soaked long enough.

use std::time::Duration;

use ferry_core::{Digest, Platform, Reference};

use crate::client::{Client, CopyOutcome};
use crate::error::Result;
use crate::signature::{SignaturesCopied, Trust};

/// What a promotion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromotionAction {
    /// The destination now points at the source's digest.
    Promoted,
    /// It already did: nothing was done.
    Unchanged,
    /// Refused (too young, or a platform would be lost).
    Refused,
}

/// The outcome of [`promote`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct Promotion {
    /// Promoted, unchanged or refused.
    pub action: PromotionAction,
    /// The source digest.
    pub digest: Digest,
    /// The destination's digest before.
    pub previous: Option<Digest>,
    /// Why.
    pub reason: String,
    /// Age of the source in seconds (from `since`, else its newest `created`), when known.
    pub age_seconds: Option<u64>,
    /// What the copy did, when there was one.
    pub copy: Option<CopyOutcome>,
    /// The signatures and attestations carried to the destination repository.
    pub signatures: Option<SignaturesCopied>,
}

/// The gates of [`promote_with`] besides the clock.
#[derive(Debug, Clone, Default)]
pub struct PromoteOptions {
    /// How old the source must be.
    pub min_age: Duration,
    /// When the source was first seen (Unix seconds), instead of its images' created times.
    pub since: Option<u64>,
    /// Refuse unless the source digest carries a valid signature under this trust (keys or
    /// keyless identities).
    pub require_signature: Option<Trust>,
}

/// The pure decision: promote, leave, or refuse.
pub fn decide(
    src: &Digest,
    dst: Option<&Digest>,
    src_platforms: &[Platform],
    dst_platforms: &[Platform],
    age: Option<u64>,
    min_age: Duration,
) -> (PromotionAction, String) {
    if dst == Some(src) {
        return (
            PromotionAction::Unchanged,
            format!("the destination already points at {src}"),
        );
    }
    let lost: Vec<String> = dst_platforms
        .iter()
        .filter(|d| !src_platforms.iter().any(|s| s.matches(d)))
        .map(ToString::to_string)
        .collect();
    if !lost.is_empty() {
        return (
            PromotionAction::Refused,
            format!(
                "the source lacks platform(s) {} that the destination has now",
                lost.join(", ")
            ),
        );
    }
    if !min_age.is_zero() {
        match age {
            None => {
                return (
                    PromotionAction::Refused,
                    "the source's age is unknown (no created time; pass a first-seen time)".into(),
                );
            }
            Some(a) if a < min_age.as_secs() => {
                let left = min_age.as_secs() - a;
                return (
                    PromotionAction::Refused,
                    format!(
                        "the source is {} old; it must soak {} more (min-age {})",
                        ferry_core::duration::human(a),
                        ferry_core::duration::human(left),
                        ferry_core::duration::human(min_age.as_secs())
                    ),
                );
            }
            Some(_) => {}
        }
    }
    (
        PromotionAction::Promoted,
        match age {
            Some(a) => format!("soaked {}", ferry_core::duration::human(a)),
            None => "promoted".into(),
        },
    )
}

/// Promote `src` to `dst` when it is at least `min_age` old. `since` is a first-seen time (Unix
/// seconds) the caller recorded; without it the age comes from the images' `created` times.
/// `now` is the current Unix time (injected, so callers and tests control the clock).
pub async fn promote(
    client: &Client,
    src: &Reference,
    dst: &Reference,
    min_age: Duration,
    since: Option<u64>,
    now: u64,
) -> Result<Promotion> {
    let opts = PromoteOptions {
        min_age,
        since,
        require_signature: None,
    };
    promote_with(client, src, dst, &opts, now).await
}

/// [`promote`] with every gate: also refused when `opts.require_signature` is set and no
/// signature of the source digest verifies with its keys. A promoted (or already present)
/// digest's cosign signatures and attestations are carried to another repository.
pub async fn promote_with(
    client: &Client,
    src: &Reference,
    dst: &Reference,
    opts: &PromoteOptions,
    now: u64,
) -> Result<Promotion> {
    let (min_age, since) = (opts.min_age, opts.since);
    let src_i = client.inspect(src).await?;
    let previous = match client.resolve(dst).await {
        Ok(r) => Some(r.digest),
        Err(e) if e.is_negative() => None,
        Err(e) => return Err(e),
    };
    let dst_platforms: Vec<Platform> = match &previous {
        Some(_) if previous.as_ref() != Some(&src_i.digest) => client
            .inspect(dst)
            .await?
            .platforms
            .into_iter()
            .map(|p| p.platform)
            .collect(),
        _ => Vec::new(),
    };
    let src_platforms: Vec<Platform> = src_i.platforms.iter().map(|p| p.platform.clone()).collect();
    let born = match since {
        Some(s) => Some(s),
        None if min_age.is_zero() => None,
        None => client.created(src).await?,
    };
    let age = born.map(|b| now.saturating_sub(b));
    let (mut action, mut reason) = decide(
        &src_i.digest,
        previous.as_ref(),
        &src_platforms,
        &dst_platforms,
        age,
        min_age,
    );
    if let (Some(trust), PromotionAction::Promoted) = (&opts.require_signature, action) {
        let pinned = src.with_digest(src_i.digest.clone());
        let report = client.verify_signatures(&pinned, trust).await?;
        if !report.valid() {
            action = PromotionAction::Refused;
            reason = unsigned_reason(&report);
        }
    }
    let copy = if action == PromotionAction::Promoted {
        Some(client.copy(src, dst).await?)
    } else {
        None
    };
    let signatures = match action {
        PromotionAction::Refused => None,
        _ => Some(client.copy_signatures(src, dst, &src_i.digest).await?),
    };
    Ok(Promotion {
        action,
        digest: src_i.digest,
        previous,
        reason,
        age_seconds: age,
        copy,
        signatures,
    })
}

/// Why an unsigned source is refused: each candidate and why it failed.
fn unsigned_reason(report: &crate::signature::SignatureReport) -> String {
    if report.candidates.is_empty() {
        return format!("{} carries no signature", report.digest);
    }
    format!(
        "{} has no valid signature ({})",
        report.digest,
        report.rejections()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Vec<Platform> {
        Platform::parse_list(s).unwrap()
    }

    #[test]
    fn decisions() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let week = Duration::from_secs(7 * 86_400);
        let both = p("linux/amd64,linux/arm64");
        assert_eq!(
            decide(&a, Some(&a), &both, &both, Some(0), week).0,
            PromotionAction::Unchanged
        );
        let (act, why) = decide(
            &a,
            Some(&b),
            &p("linux/amd64"),
            &both,
            Some(10 * 86_400),
            week,
        );
        assert_eq!(act, PromotionAction::Refused);
        assert!(why.contains("linux/arm64"), "{why}");
        let (act, why) = decide(&a, Some(&b), &both, &both, Some(3 * 86_400), week);
        assert_eq!(act, PromotionAction::Refused);
        assert!(why.contains("4d more"), "{why}");
        assert_eq!(
            decide(&a, None, &both, &[], Some(8 * 86_400), week).0,
            PromotionAction::Promoted
        );
        assert_eq!(
            decide(&a, None, &both, &[], None, week).0,
            PromotionAction::Refused
        );
        assert_eq!(
            decide(&a, None, &both, &[], None, Duration::ZERO).0,
            PromotionAction::Promoted
        );
    }

    proptest! {
        #[test]
        fn never_promotes_before_min_age(age in 0u64..1_000_000, min in 1u64..1_000_000) {
            let a = Digest::sha256_of(b"a");
            let (act, _) = decide(&a, None, &p("linux/amd64"), &[], Some(age), Duration::from_secs(min));
            prop_assert_eq!(act == PromotionAction::Promoted, age >= min);
        }
    }
}
