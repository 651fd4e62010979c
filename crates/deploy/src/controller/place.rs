//! Placing git updates (planning; writes nothing): the policy core decided each update's route
//! (repository, branch, write branch, manifests or Helm values file and key); here the shell
//! looks at the branch tip and finds the file each change edits — or learns that git holds the
//! target already, or why it cannot be written — and records that on the decision
//! ([`Decision::place`]). No annotation is read and no Application fetched here.

use std::collections::BTreeMap;

use ferry_core::Digest;

use super::{GitOps, review};
use crate::gitops::{self, GitTarget, HelmChange, ImageChange, WriteBackConfig};
use crate::policy::{Action, Decision, Failure, GitEdit, Image, Placement, Refusal};

/// Decisions that land in the same place: the route's repository, base branch and path, its
/// write branch, and what is edited.
type Spot = (GitTarget, Option<String>, GitEdit);

/// One change to place, with the digest it moves to (a revert in git quarantines it).
pub(super) struct Planned {
    change: ImageChange,
    digest: Option<Digest>,
}

/// The change a decision carries, rendered for the file edit (the edge).
pub(super) fn change_of(d: &Decision) -> ImageChange {
    ImageChange {
        workload: d.workload_id(),
        kind: d.kind.to_string(),
        name: d.name.clone(),
        container: d.container.clone(),
        old_image: d.image.clone(),
        new_image: d.target.clone().map(Image::from).unwrap_or_default(),
        path: None,
    }
}

/// A change written to a Helm values file `file` at `key`.
pub(super) fn helm_change(c: &ImageChange, file: &str, key: &str) -> HelmChange {
    HelmChange {
        workload: c.workload.clone(),
        container: c.container.clone(),
        file: file.to_string(),
        key: key.to_string(),
        old_image: c.old_image.clone(),
        new_image: c.new_image.clone(),
    }
}

/// Place every git update of `decisions` (one look at each branch tip per spot).
pub(super) async fn place(g: &GitOps, decisions: &mut [Decision]) {
    let mut spots: BTreeMap<Spot, Vec<usize>> = BTreeMap::new();
    for (i, d) in decisions.iter().enumerate() {
        let Some(r) = d.git().filter(|_| d.action == Action::Update) else {
            continue;
        };
        let base = GitTarget {
            repo: r.repo.clone(),
            branch: r.base.clone().unwrap_or(r.branch.clone()),
            path: r.path.clone(),
        };
        let write_branch = r.base.as_ref().map(|_| r.branch.clone());
        spots
            .entry((base, write_branch, r.edit.clone()))
            .or_default()
            .push(i);
    }
    for (spot, idx) in spots {
        let planned = idx
            .iter()
            .map(|i| Planned {
                change: change_of(&decisions[*i]),
                digest: decisions[*i].target_digest().cloned(),
            })
            .collect();
        let refused = refused(g, &spot, &idx, decisions).await;
        let placed = look(g.config.clone(), spot, planned)
            .await
            .map_err(Failure::from);
        for (n, i) in idx.iter().enumerate() {
            let p = match (&placed, &refused[n]) {
                (_, Some(why)) => Placement::Refused(why.clone()),
                (Ok(p), None) => p[n].clone(),
                (Err(e), None) => Placement::Refused(Refusal::Git(e.clone())),
            };
            decisions[*i].place(p);
        }
    }
}

/// For a request's branch: the updates its closed, unmerged requests refuse (see
/// [`review::refusals`]); `None` each for any other branch.
async fn refused(
    g: &GitOps,
    spot: &Spot,
    idx: &[usize],
    decisions: &[Decision],
) -> Vec<Option<Refusal>> {
    let ds: Vec<&Decision> = idx.iter().map(|i| &decisions[*i]).collect();
    let forge = ds.iter().find_map(|d| d.git()?.review);
    match (forge, &spot.1) {
        (Some(f), Some(branch)) => {
            let target = GitTarget {
                branch: branch.clone(),
                ..spot.0.clone()
            };
            review::refusals(&g.forges, (&target, f), &ds).await
        }
        _ => vec![None; ds.len()],
    }
}

/// Find the file each change edits on the branch tip (blocking git work off the runtime): the
/// write branch when it exists (it may hold ferry's unmerged commits), else the base branch.
async fn look(
    config: WriteBackConfig,
    (target, write_branch, edit): Spot,
    planned: Vec<Planned>,
) -> crate::Result<Vec<Placement>> {
    let work = move || -> crate::Result<Vec<Placement>> {
        let t = gitops::resolve_branch(&config, &target)?;
        // A revert on the base branch quarantines too (the write branch may lag behind it).
        let (base_repo, base_tip) = gitops::fetch(&config, &t)?;
        let on_write_branch = write_branch.as_ref().and_then(|b| {
            let wt = GitTarget {
                branch: b.clone(),
                ..t.clone()
            };
            gitops::fetch(&config, &wt).ok()
        });
        let (repo, tip) = on_write_branch.unwrap_or((base_repo, base_tip));
        let tree = repo
            .find_commit(tip)
            .and_then(|c| c.tree())
            .map_err(|e| gitops::git_error(&t, gitops::GitProblem::Git(e)))?;
        let at = Tip {
            repo: &repo,
            tree: &tree,
            tip,
            base_tip,
            target: &t,
        };
        Ok(planned.iter().map(|p| at.placement(p, &edit)).collect())
    };
    tokio::task::spawn_blocking(work)
        .await
        .map_err(crate::Error::Join)?
}

/// A branch tip to place changes on.
struct Tip<'r> {
    repo: &'r git2::Repository,
    tree: &'r git2::Tree<'r>,
    tip: git2::Oid,
    base_tip: git2::Oid,
    target: &'r GitTarget,
}

impl Tip<'_> {
    fn placement(&self, p: &Planned, edit: &GitEdit) -> Placement {
        if let Some(digest) = &p.digest {
            let d = digest.to_string();
            if let Some((commit, author)) = gitops::reverted(self.repo, self.tip, &d)
                .or_else(|| gitops::reverted(self.repo, self.base_tip, &d))
            {
                return Placement::Refused(Refusal::Reverted {
                    digest: digest.clone(),
                    commit,
                    author,
                });
            }
        }
        let c = std::slice::from_ref(&p.change);
        let (files, problems) = match edit {
            GitEdit::Manifests => gitops::plan_edits(self.repo, self.tree, self.target, c),
            GitEdit::HelmValues { key, overrides } => {
                let file = &self.target.path;
                if let Some(why) = self.overridden(file, overrides, key) {
                    return Placement::Refused(why);
                }
                let h = helm_change(&p.change, file, key);
                gitops::plan_helm_edits(self.repo, self.tree, std::slice::from_ref(&h))
            }
        };
        match (files.keys().next(), problems.first()) {
            (Some(f), _) => Placement::File(f.clone()),
            (None, Some(p)) => {
                let unplaced = crate::Error::Unplaced(Box::new(p.clone()));
                Placement::Refused(Refusal::Edit(Failure::from(unplaced)))
            }
            (None, None) => Placement::AlreadyWritten,
        }
    }

    /// Why an edit of the values file `file` at `key` would change nothing: a values file Helm
    /// applies after it sets the same image.
    fn overridden(&self, file: &str, later: &[String], key: &str) -> Option<Refusal> {
        later.iter().find_map(|path| {
            let entry = self.tree.get_path(std::path::Path::new(path)).ok()?;
            let blob = self.repo.find_blob(entry.id()).ok()?;
            let text = std::str::from_utf8(blob.content()).ok()?;
            crate::helm::helm_sets_image(text, key).then(|| Refusal::Overridden {
                later: path.clone(),
                file: file.to_string(),
                key: key.to_string(),
            })
        })
    }
}
