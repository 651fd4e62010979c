//! The signature gate: a workload that asks for a signature (`ferry.dev/signed-by: NAME`, or
//! every workload under `--require-signed-by NAME`) moves only to a digest the named policy's
//! keys signed. The shell verifies (the core has no crypto or registry): it answers
//! [`crate::Query::Signature`] with a plain [`SignatureVerdict`]; the decision is made here.
//! Rollbacks are never blocked: a digest the container ran before (its previous image, a
//! recorded baseline or rollout) moves without a signature check.

use ferry_core::Reference;

use crate::decide::{Candidate, Ctx, Flow, needs, skip};
use crate::{ContainerView, Failure, LookupError, Query, Reason};

/// What the shell found out about one digest under one signature policy.
#[derive(Debug, Clone)]
pub enum SignatureVerdict {
    /// A signature by one of the policy's keys names exactly this digest.
    Valid,
    /// No valid signature: what was found and why each failed (one line per candidate, or
    /// "no signature found").
    Invalid {
        /// What the shell found: its own value (each candidate and why it failed), shared.
        why: Failure,
    },
    /// The signatures could not be looked up (registry error): skipped, asked again next pass.
    Failed(LookupError),
}

/// "Verify the signatures of `image` (`name@digest`) under signature policy `policy`."
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SignatureQuery {
    /// `name@digest`.
    pub image: Reference,
    /// The policy name.
    pub policy: String,
}

/// The controller's signature settings for a pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignedGate<'a> {
    /// The names of the configured policies (`--signature-policy NAME=FILE`).
    pub policies: &'a [String],
    /// `--require-signed-by NAME`: the policy every workload is held to (its own
    /// `ferry.dev/signed-by` wins).
    pub required: Option<&'a str>,
}

impl Ctx<'_> {
    /// The gate for moving container `c` to the candidate, after its platforms passed and
    /// before a soak starts. Passed: the policy whose keys verified the digest (`None`: no
    /// policy applies, or a rollback to a digest it ran before).
    pub(crate) fn signed(&self, c: &ContainerView, cand: &Candidate<'_>) -> Flow<Option<String>> {
        let Some(policy) = self.p.signed_by.as_deref().or(self.gate.signed.required) else {
            return Ok(None);
        };
        if self.p.ran_before(&c.name, &cand.digest) {
            return Ok(None);
        }
        if !self.gate.signed.policies.iter().any(|p| p == policy) {
            return Err(skip(Reason::UnknownSignaturePolicy(policy.to_string())));
        }
        let key = (cand.by_digest.clone(), policy.to_string());
        match self.answers.signatures.get(&key) {
            Some(SignatureVerdict::Valid) => Ok(Some(policy.to_string())),
            Some(SignatureVerdict::Invalid { why }) => Err(skip(Reason::NotSigned {
                digest: cand.digest.clone(),
                policy: policy.to_string(),
                why: why.clone(),
            })),
            Some(SignatureVerdict::Failed(e)) => {
                Err(skip(Reason::SignatureLookup(Failure::from_arc(e.clone()))))
            }
            None => Err(needs(
                Query::Signature(SignatureQuery {
                    image: cand.by_digest.clone(),
                    policy: policy.to_string(),
                }),
                Reason::SignatureNotChecked(policy.to_string()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a shell found, as the core carries it.
    fn found(text: &str) -> Failure {
        Failure::from(std::io::Error::other(text.to_string()))
    }
    use crate::tests::{answers, digest, plats, workload};
    use crate::{
        Action, GIT_REPO, Gate, POLICY, PREVIOUS_IMAGE, SIGNED_BY, WorkloadPolicy, decide_with,
        queries,
    };

    const TAG: &str = "docker.io/acme/sensor:latest";

    fn names() -> Vec<String> {
        vec!["release".to_string()]
    }

    /// Decide the one container with `verdict` as the answer for the new digest (none: not
    /// asked yet), under `required` for every workload.
    fn decide_one(
        annotations: &[(&str, &str)],
        verdict: Option<SignatureVerdict>,
        required: Option<&str>,
        write_back: bool,
    ) -> (crate::Decision, Vec<Query>) {
        let (old, new) = (digest("old"), digest("new"));
        let w = workload(
            annotations,
            &[("app", &format!("acme/sensor:latest@{old}"), false)],
        );
        let mut a = answers(TAG, &new, Some("linux/amd64,linux/arm64"));
        let by_digest = Reference::parse(&format!("docker.io/acme/sensor@{new}")).unwrap();
        if let Some(v) = verdict {
            a.signatures.insert((by_digest, "release".into()), v);
        }
        let names = names();
        let gate = Gate {
            git_write_back: write_back,
            signed: SignedGate {
                policies: &names,
                required,
            },
            ..Gate::new(1, &[])
        };
        let p = WorkloadPolicy::parse(&w).unwrap();
        let q = queries(&w, &p, &a, &plats(), &gate);
        (decide_with(&w, &p, &a, &plats(), &gate).remove(0), q)
    }

    #[test]
    fn a_verified_signature_is_part_of_the_evidence() {
        let ann = [(POLICY, "digest"), (SIGNED_BY, "release")];
        let (d, _) = decide_one(&ann, Some(SignatureVerdict::Valid), None, false);
        assert_eq!(d.action, Action::Update, "{}", d.reason);
        assert_eq!(d.evidence.signed_by.as_deref(), Some("release"));
        let (d, _) = decide_one(&[(POLICY, "digest")], None, None, false);
        assert_eq!(d.action, Action::Update, "{}", d.reason);
        assert_eq!(d.evidence.signed_by, None, "no policy applies: no verdict");
    }

    #[test]
    fn an_unchecked_digest_asks_for_its_signature_once_and_waits() {
        let (d, q) = decide_one(
            &[(POLICY, "digest"), (SIGNED_BY, "release")],
            None,
            None,
            false,
        );
        assert_eq!(d.action, Action::Skip);
        let want = Query::Signature(SignatureQuery {
            image: Reference::parse(&format!("docker.io/acme/sensor@{}", digest("new"))).unwrap(),
            policy: "release".into(),
        });
        assert_eq!(q, vec![want]);
    }

    #[test]
    fn a_signed_update_moves_and_an_unsigned_one_is_skipped_with_the_reason() {
        let ann = [(POLICY, "digest"), (SIGNED_BY, "release")];
        let (d, q) = decide_one(&ann, Some(SignatureVerdict::Valid), None, false);
        assert_eq!(d.action, Action::Update, "{}", d.reason);
        assert!(q.is_empty());
        let invalid = SignatureVerdict::Invalid {
            why: found("no signature found"),
        };
        let (d, _) = decide_one(&ann, Some(invalid), None, false);
        assert_eq!(d.action, Action::Skip);
        let text = d.reason.to_string();
        assert!(
            text.contains("release") && text.contains("no signature found"),
            "{text}"
        );
    }

    #[test]
    fn the_gate_holds_git_write_back_too_and_require_signed_by_applies_without_the_annotation() {
        let ann = [
            (POLICY, "digest"),
            (GIT_REPO, "https://git.example.invalid/cfg.git"),
        ];
        let invalid = || SignatureVerdict::Invalid {
            why: found("x: the signature does not verify with any given key"),
        };
        let (d, _) = decide_one(&ann, Some(invalid()), Some("release"), true);
        assert_eq!(d.action, Action::Skip, "{}", d.reason);
        let (d, _) = decide_one(&ann, Some(SignatureVerdict::Valid), Some("release"), true);
        assert_eq!(d.action, Action::Update, "{}", d.reason);
        assert!(d.git().is_some(), "routed to git");
        let (d, _) = decide_one(&ann, Some(invalid()), None, true);
        assert_eq!(d.action, Action::Update, "no policy asked for: no gate");
    }

    #[test]
    fn a_rollback_to_a_digest_that_ran_before_is_not_held_and_an_unknown_policy_is() {
        let prev = format!("app=acme/sensor:latest@{}", digest("new"));
        let ann = [
            (POLICY, "digest"),
            (SIGNED_BY, "release"),
            (PREVIOUS_IMAGE, prev.as_str()),
        ];
        let invalid = SignatureVerdict::Invalid {
            why: found("no signature found"),
        };
        let (d, q) = decide_one(&ann, Some(invalid), None, false);
        assert_eq!(d.action, Action::Update, "{}", d.reason);
        assert!(q.is_empty());
        let (d, q) = decide_one(
            &[(POLICY, "digest"), (SIGNED_BY, "nightly")],
            None,
            None,
            false,
        );
        assert_eq!(d.action, Action::Skip);
        assert!(
            d.reason
                .to_string()
                .contains("--signature-policy nightly=FILE"),
            "{}",
            d.reason
        );
        assert!(q.is_empty(), "nothing to ask for an unknown policy");
    }
}
