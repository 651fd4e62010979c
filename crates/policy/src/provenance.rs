//! The provenance gate: `ferry.dev/require-revision-on: BRANCH` with `ferry.dev/source-repo: URL`
//! moves a container only to an image whose recorded source revision
//! (`org.opencontainers.image.revision`, annotation else label) is a commit reachable from
//! BRANCH of URL. The image's own `org.opencontainers.image.source` is never consulted: whoever
//! built the image chose it. The shell reads revisions and asks git; the decision is here.
//! A rollback to a digest the container ran before is not held.

use std::collections::HashMap;

use ferry_core::Reference;

use crate::decide::{Candidate, Ctx, Flow, needs, skip};
use crate::{ContainerView, Failure, LookupError, Query, Reason};

/// What the provenance gate asks the shell.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProvenanceQuery {
    /// Read the source revision this `name@digest` records.
    Revision(Reference),
    /// Is `revision` a commit reachable from `branch` of the repository `repo`?
    OnBranch {
        /// Clone URL (`ferry.dev/source-repo`).
        repo: String,
        /// Branch (`ferry.dev/require-revision-on`).
        branch: String,
        /// The image's revision.
        revision: String,
    },
}

/// The shell's answers to [`ProvenanceQuery`]s.
#[derive(Debug, Clone, Default)]
pub struct ProvenanceAnswers {
    /// `name@digest` → its revision (`None`: it records none).
    pub revisions: HashMap<Reference, Result<Option<String>, LookupError>>,
    /// (repo, branch, revision) → whether the revision is reachable from the branch.
    pub on_branch: HashMap<(String, String, String), Result<bool, LookupError>>,
}

/// `ferry.dev/require-revision-on` and `ferry.dev/source-repo`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The branch a revision must be on.
    pub branch: String,
    /// The repository to look in (none: the gate holds every update and says so).
    pub repo: Option<String>,
}

impl Ctx<'_> {
    /// The gate for moving container `c` to the candidate, after the signature gate.
    pub(crate) fn provenance(&self, c: &ContainerView, cand: &Candidate<'_>) -> Flow<()> {
        let Some(p) = &self.p.provenance else {
            return Ok(());
        };
        if self.p.ran_before(&c.name, &cand.digest) {
            return Ok(());
        }
        let Some(repo) = &p.repo else {
            return Err(skip(Reason::NoSourceRepo(p.branch.clone())));
        };
        let answers = &self.answers.provenance;
        let revision = match answers.revisions.get(&cand.by_digest) {
            Some(Ok(Some(r))) => r,
            Some(Ok(None)) => return Err(skip(Reason::NoRevision(cand.digest.clone()))),
            Some(Err(e)) => {
                return Err(skip(Reason::ProvenanceLookup(Failure::from_arc(e.clone()))));
            }
            None => {
                let q = ProvenanceQuery::Revision(cand.by_digest.clone());
                return Err(needs(Query::Provenance(q), Reason::ProvenanceNotChecked));
            }
        };
        let key = (repo.clone(), p.branch.clone(), revision.clone());
        match answers.on_branch.get(&key) {
            Some(Ok(true)) => Ok(()),
            Some(Ok(false)) => Err(skip(Reason::NotOnBranch {
                revision: revision.clone(),
                branch: p.branch.clone(),
                repo: repo.clone(),
            })),
            Some(Err(e)) => Err(skip(Reason::ProvenanceLookup(Failure::from_arc(e.clone())))),
            None => {
                let (repo, branch, revision) = key;
                let q = ProvenanceQuery::OnBranch {
                    repo,
                    branch,
                    revision,
                };
                Err(needs(Query::Provenance(q), Reason::ProvenanceNotChecked))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{answers, digest, plats, workload};
    use crate::{
        Action, Gate, POLICY, REQUIRE_REVISION_ON, SOURCE_REPO, WorkloadPolicy, decide_with,
        queries,
    };

    const REPO: &str = "https://git.example.invalid/acme/sensor.git";

    /// Decide with the revision answer and, when given, the on-branch answer.
    fn decide_one(
        annotations: &[(&str, &str)],
        revision: Option<Option<&str>>,
        on_branch: Option<bool>,
    ) -> (crate::Decision, Vec<Query>) {
        let (old, new) = (digest("old"), digest("new"));
        let w = workload(
            annotations,
            &[("app", &format!("acme/sensor:latest@{old}"), false)],
        );
        let mut a = answers(
            "docker.io/acme/sensor:latest",
            &new,
            Some("linux/amd64,linux/arm64"),
        );
        let by = Reference::parse(&format!("docker.io/acme/sensor@{new}")).unwrap();
        if let Some(r) = revision {
            a.provenance.revisions.insert(by, Ok(r.map(str::to_string)));
            if let (Some(rev), Some(ok)) = (r, on_branch) {
                let key = (REPO.to_string(), "main".to_string(), rev.to_string());
                a.provenance.on_branch.insert(key, Ok(ok));
            }
        }
        let gate = Gate::new(1, &[]);
        let p = WorkloadPolicy::parse(&w).unwrap();
        let q = queries(&w, &p, &a, &plats(), &gate);
        (decide_with(&w, &p, &a, &plats(), &gate).remove(0), q)
    }

    const ANN: [(&str, &str); 3] = [
        (POLICY, "digest"),
        (REQUIRE_REVISION_ON, "main"),
        (SOURCE_REPO, REPO),
    ];

    #[test]
    fn the_revision_is_read_then_checked_on_the_branch_then_the_update_moves() {
        let (d, q) = decide_one(&ANN, None, None);
        assert_eq!(d.action, Action::Skip);
        assert!(
            matches!(
                q.as_slice(),
                [Query::Provenance(ProvenanceQuery::Revision(_))]
            ),
            "{q:?}"
        );
        let (d, q) = decide_one(&ANN, Some(Some("abc123")), None);
        assert_eq!(d.action, Action::Skip);
        let want = ProvenanceQuery::OnBranch {
            repo: REPO.into(),
            branch: "main".into(),
            revision: "abc123".into(),
        };
        assert_eq!(q, vec![Query::Provenance(want)]);
        let (d, q) = decide_one(&ANN, Some(Some("abc123")), Some(true));
        assert_eq!(d.action, Action::Update, "{}", d.reason);
        assert!(q.is_empty());
    }

    #[test]
    fn another_branch_no_revision_or_no_source_repo_is_a_skip_with_the_reason() {
        let (d, _) = decide_one(&ANN, Some(Some("abc123")), Some(false));
        assert_eq!(d.action, Action::Skip);
        let text = d.reason.to_string();
        assert!(
            text.contains("abc123") && text.contains("main") && text.contains(REPO),
            "{text}"
        );
        let (d, _) = decide_one(&ANN, Some(None), None);
        assert_eq!(d.action, Action::Skip);
        assert!(
            d.reason.to_string().contains("records no source revision"),
            "{}",
            d.reason
        );
        let (d, q) = decide_one(&ANN[..2], None, None);
        assert_eq!(d.action, Action::Skip);
        assert!(d.reason.to_string().contains(SOURCE_REPO), "{}", d.reason);
        assert!(q.is_empty());
    }
}
