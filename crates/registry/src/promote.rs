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
    /// Why (serialized as its text).
    pub reason: PromotionReason,
    /// Age of the source in seconds (from `since`, else its newest `created`), when known.
    pub age_seconds: Option<u64>,
    /// What the copy did, when there was one.
    pub copy: Option<CopyOutcome>,
    /// The signatures and attestations carried to the destination repository.
    pub signatures: Option<SignaturesCopied>,
}

/// Why a promotion did what it did ([`Promotion::reason`]). Serialized as its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromotionReason {
    /// The destination already points at this digest (unchanged).
    AlreadyThere(Digest),
    /// The source lacks platforms the destination has now (refused).
    LostPlatforms(Vec<Platform>),
    /// A minimum age is asked for and the source's age is unknown (refused).
    AgeUnknown,
    /// The source is younger than the minimum age (refused).
    TooYoung {
        /// Its age in seconds.
        age: u64,
        /// The minimum age in seconds.
        min_age: u64,
    },
    /// Promoted; the source's age in seconds, when known.
    Soaked(Option<u64>),
    /// A signature is required and the source digest carries none (refused).
    Unsigned(Digest),
    /// A signature is required and none of the source digest's candidates is valid (refused).
    NoValidSignature {
        /// The source digest.
        digest: Digest,
        /// Each candidate's manifest and why it was rejected.
        rejections: crate::signature::Rejections,
    },
}

impl std::fmt::Display for PromotionReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use ferry_core::duration::human;
        match self {
            PromotionReason::AlreadyThere(d) => {
                write!(f, "the destination already points at {d}")
            }
            PromotionReason::LostPlatforms(lost) => {
                let lost: Vec<String> = lost.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "the source lacks platform(s) {} that the destination has now",
                    lost.join(", ")
                )
            }
            PromotionReason::AgeUnknown => {
                f.write_str("the source's age is unknown (no created time; pass a first-seen time)")
            }
            PromotionReason::TooYoung { age, min_age } => write!(
                f,
                "the source is {} old; it must soak {} more (min-age {})",
                human(*age),
                human(min_age.saturating_sub(*age)),
                human(*min_age)
            ),
            PromotionReason::Soaked(Some(a)) => write!(f, "soaked {}", human(*a)),
            PromotionReason::Soaked(None) => f.write_str("promoted"),
            PromotionReason::Unsigned(d) => write!(f, "{d} carries no signature"),
            PromotionReason::NoValidSignature { digest, rejections } => {
                write!(f, "{digest} has no valid signature ({rejections})")
            }
        }
    }
}

impl serde::Serialize for PromotionReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
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
) -> (PromotionAction, PromotionReason) {
    if dst == Some(src) {
        return (
            PromotionAction::Unchanged,
            PromotionReason::AlreadyThere(src.clone()),
        );
    }
    let lost: Vec<Platform> = dst_platforms
        .iter()
        .filter(|d| !src_platforms.iter().any(|s| s.matches(d)))
        .cloned()
        .collect();
    if !lost.is_empty() {
        return (
            PromotionAction::Refused,
            PromotionReason::LostPlatforms(lost),
        );
    }
    if !min_age.is_zero() {
        match age {
            None => {
                return (PromotionAction::Refused, PromotionReason::AgeUnknown);
            }
            Some(a) if a < min_age.as_secs() => {
                return (
                    PromotionAction::Refused,
                    PromotionReason::TooYoung {
                        age: a,
                        min_age: min_age.as_secs(),
                    },
                );
            }
            Some(_) => {}
        }
    }
    (PromotionAction::Promoted, PromotionReason::Soaked(age))
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
fn unsigned_reason(report: &crate::signature::SignatureReport) -> PromotionReason {
    if report.candidates.is_empty() {
        return PromotionReason::Unsigned(report.digest.clone());
    }
    PromotionReason::NoValidSignature {
        digest: report.digest.clone(),
        rejections: report.rejected(),
    }
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
        assert!(why.to_string().contains("linux/arm64"), "{why}");
        let (act, why) = decide(&a, Some(&b), &both, &both, Some(3 * 86_400), week);
        assert_eq!(act, PromotionAction::Refused);
        assert!(why.to_string().contains("4d more"), "{why}");
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

    #[test]
    fn reason_texts() {
        use crate::signature::Rejection;
        let a = Digest::sha256_of(b"a");
        let m = Digest::sha256_of(b"m");
        let n = Digest::sha256_of(b"n");
        let cases = [
            (
                PromotionReason::AlreadyThere(a.clone()),
                format!("the destination already points at {a}"),
            ),
            (
                PromotionReason::LostPlatforms(p("linux/arm64,linux/s390x")),
                "the source lacks platform(s) linux/arm64, linux/s390x that the destination has now"
                    .into(),
            ),
            (
                PromotionReason::AgeUnknown,
                "the source's age is unknown (no created time; pass a first-seen time)".into(),
            ),
            (
                PromotionReason::TooYoung {
                    age: 3 * 86_400,
                    min_age: 7 * 86_400,
                },
                "the source is 3d old; it must soak 4d more (min-age 7d)".into(),
            ),
            (PromotionReason::Soaked(Some(86_400)), "soaked 1d".into()),
            (PromotionReason::Soaked(None), "promoted".into()),
            (
                PromotionReason::Unsigned(a.clone()),
                format!("{a} carries no signature"),
            ),
            (
                PromotionReason::NoValidSignature {
                    digest: a.clone(),
                    rejections: crate::signature::Rejections(vec![
                        (m.clone(), Rejection::BadSignature),
                        (n.clone(), Rejection::NoKeys),
                    ]),
                },
                format!(
                    "{a} has no valid signature ({m}: the signature does not verify with any given key; {n}: signed with a key, and this check lists no public keys)"
                ),
            ),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text, "{reason:?}");
            assert_eq!(
                serde_json::to_string(&reason).unwrap(),
                serde_json::to_string(&text).unwrap()
            );
        }
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
