//! Reverts: recognising one made in git (a quarantine), and pushing ferry's own after a failed rollout.

use super::*;

/// Whether `digest` was written by ferry on `target.branch` and later changed back by someone
/// (a revert): then it is quarantined. Looks at the last 200 commits. Returns the commit that
/// took it out and its author.
pub fn reverted(repo: &Repository, tip: Oid, digest: &str) -> Option<(String, String)> {
    let mut walk = repo.revwalk().ok()?;
    walk.push(tip).ok()?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL).ok()?;
    let tip_tree = repo.find_commit(tip).ok()?.tree().ok()?;
    if tree_mentions(repo, &tip_tree, digest) {
        return None;
    }
    let mut newer_without: Option<(String, String)> = None;
    for id in walk.take(200).flatten() {
        let c = repo.find_commit(id).ok()?;
        let tree = c.tree().ok()?;
        let has = tree_mentions(repo, &tree, digest);
        if has {
            if c.message().unwrap_or("").contains(COMMIT_MARKER) {
                return newer_without;
            }
            return None;
        }
        newer_without = Some((id.to_string(), c.author().name().unwrap_or("?").to_string()));
    }
    None
}

/// Push a revert of ferry's own `commit` on `target.branch` (a new commit on the current tip,
/// never a force-push), because the rollout it caused failed. Re-applied on the new tip when the
/// branch moved during the push. Fails when the files changed since and the revert does not
/// apply cleanly.
pub fn revert(
    config: &WriteBackConfig,
    target: &GitTarget,
    commit: &str,
    reason: &str,
    fence: &Fence,
) -> Result<String, GitError> {
    let target = &resolve_branch(config, target)?;
    let err = |problem| git_error(target, problem);
    let bad = Oid::from_str(commit).map_err(|source| {
        err(GitProblem::BadCommitId {
            commit: commit.to_string(),
            source,
        })
    })?;
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=config.max_attempts.max(1) {
        let (repo, tip) = fetch(config, target)?;
        let id = revert_commit(config, &repo, tip, bad, reason)
            .map_err(|e| err(GitProblem::Unrevertable(e)))?;
        fence.check()?;
        match push(config, &repo, target, id) {
            Ok(()) => return Ok(id.to_string()),
            Err(rejection) => {
                let (_, new_tip) = fetch(config, target)?;
                if new_tip == tip {
                    return Err(err(GitProblem::RevertPushRejected(rejection)));
                }
                tracing::info!(repo = %target.repo, attempt, "branch moved during the revert push; re-applying");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    Err(err(GitProblem::KeptMoving {
        attempts: config.max_attempts,
        reverting: true,
    }))
}

/// A commit on `tip` undoing `bad`, or why it cannot be made.
fn revert_commit(
    config: &WriteBackConfig,
    repo: &Repository,
    tip: Oid,
    bad: Oid,
    reason: &str,
) -> Result<Oid, Unrevertable> {
    let m = Unrevertable::Git;
    let bad_commit = repo
        .find_commit(bad)
        .map_err(|source| Unrevertable::NotFound {
            commit: bad,
            source,
        })?;
    let tip_commit = repo.find_commit(tip).map_err(m)?;
    let mut index = repo
        .revert_commit(&bad_commit, &tip_commit, 0, None)
        .map_err(m)?;
    if index.has_conflicts() {
        return Err(Unrevertable::Conflict { commit: bad });
    }
    let tree = repo
        .find_tree(index.write_tree_to(repo).map_err(m)?)
        .map_err(m)?;
    let sig = Signature::now(&config.author_name, &config.author_email).map_err(m)?;
    let subject = bad_commit
        .summary()
        .ok()
        .flatten()
        .unwrap_or("ferry commit");
    let message = format!(
        "Revert \"{subject}\"\n\nThis reverts commit {bad}.\n{reason}\n\n{COMMIT_MARKER}\n"
    );
    repo.commit(None, &sig, &sig, &message, &tree, &[&tip_commit])
        .map_err(m)
}

pub(super) fn tree_mentions(repo: &Repository, tree: &Tree<'_>, needle: &str) -> bool {
    let mut found = false;
    let _ = tree.walk(git2::TreeWalkMode::PreOrder, |_, entry| {
        if found {
            return git2::TreeWalkResult::Abort;
        }
        if entry.kind() == Some(git2::ObjectType::Blob)
            && let Ok(name) = entry.name()
            && (name.ends_with(".yaml") || name.ends_with(".yml"))
            && let Ok(b) = repo.find_blob(entry.id())
            && b.content()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
        {
            found = true;
            return git2::TreeWalkResult::Abort;
        }
        git2::TreeWalkResult::Ok
    });
    found
}
