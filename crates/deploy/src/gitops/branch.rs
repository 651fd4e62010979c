//! A write branch of the user's choice, created or fast-forwarded from the base, never forced.

use super::*;

/// What [`prepare_write_branch`] did to the write branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteBranchAction {
    /// It did not exist: created at the base branch's tip.
    Created,
    /// It was behind the base branch: fast-forwarded to the base's tip.
    FastForwarded,
    /// It already pointed at the base's tip.
    UpToDate,
    /// It contains the base's tip and commits of its own (not merged yet): left as it is.
    Ahead,
}

/// A write branch ready for [`write_back`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WriteBranch {
    /// The target to write to: the base target with `branch` set to the write branch.
    pub target: GitTarget,
    /// The base branch it follows (`HEAD` resolved to the remote's default branch).
    pub base: String,
    /// What was done.
    pub action: WriteBranchAction,
    /// The write branch's tip now.
    pub tip: String,
}

/// Prepare the branch `write_branch` so ferry's commits go there instead of `base.branch`
/// (workload annotation `ferry.dev/git-write-branch`, Flux's `push.branch`): created from the
/// base branch when missing on the remote, fast-forwarded to it when behind, left alone when it
/// already contains it. A write branch that has diverged from the base (commits on both sides,
/// e.g. a squash-merge) is an error: ferry never force-pushes, so a person merges or deletes
/// it. Then call [`write_back`] with [`WriteBranch::target`]. A push that loses a race is
/// retried on the new state, up to `config.max_attempts` times.
///
/// ```no_run
/// use ferry_deploy::gitops::{self, GitTarget, WriteBackConfig};
///
/// let config = WriteBackConfig::default();
/// let app = GitTarget {
///     repo: "https://git.example.com/ops/config.git".into(),
///     branch: "main".into(),
///     path: "apps/sensor".into(),
/// };
/// let branch = gitops::prepare_write_branch(&config, &app, "ferry/updates")?;
/// let done = gitops::write_back(&config, &branch.target, &[/* ImageChange … */])?;
/// # Ok::<(), gitops::GitError>(())
/// ```
pub fn prepare_write_branch(
    config: &WriteBackConfig,
    base: &GitTarget,
    write_branch: &str,
) -> Result<WriteBranch, GitError> {
    let base = resolve_branch(config, base)?;
    let target = GitTarget {
        branch: write_branch.to_string(),
        ..base.clone()
    };
    let err = |problem| git_error(&target, problem);
    if !git2::Branch::name_is_valid(write_branch).unwrap_or(false) {
        return Err(err(GitProblem::BadBranchName {
            name: write_branch.to_string(),
        }));
    }
    for _ in 0..config.max_attempts.max(1) {
        let (repo, base_tip) = fetch(config, &base)?;
        let (action, tip, seen) = if write_branch == base.branch {
            (WriteBranchAction::UpToDate, base_tip, Some(base_tip))
        } else {
            write_branch_step(config, &repo, &base, &target, base_tip)?
        };
        let moves = matches!(
            action,
            WriteBranchAction::Created | WriteBranchAction::FastForwarded
        );
        if moves && let Err(rejection) = push(config, &repo, &target, tip) {
            // Lost a race (the branch moved: look again) or a real refusal (it did not: stop).
            if remote_branch_tip(config, &target)? == seen {
                return Err(err(GitProblem::PushRejected(rejection)));
            }
            tracing::info!(repo = %base.repo, branch = write_branch, %rejection, "write branch moved during the push; looking again");
            continue;
        }
        return Ok(WriteBranch {
            target,
            base: base.branch.clone(),
            action,
            tip: tip.to_string(),
        });
    }
    Err(err(GitProblem::KeptMoving {
        attempts: config.max_attempts,
        reverting: false,
    }))
}

/// What to do with the write branch given the base's tip: the action, the tip it should have,
/// and the remote tip seen (`None`: missing).
fn write_branch_step(
    config: &WriteBackConfig,
    repo: &Repository,
    base: &GitTarget,
    target: &GitTarget,
    base_tip: Oid,
) -> Result<(WriteBranchAction, Oid, Option<Oid>), GitError> {
    let Some(seen) = remote_branch_tip(config, target)? else {
        return Ok((WriteBranchAction::Created, base_tip, None));
    };
    let (_, tip) = fetch(config, target)?;
    let action = match relation(repo, tip, base_tip) {
        Relation::Same => WriteBranchAction::UpToDate,
        Relation::Ahead => WriteBranchAction::Ahead,
        Relation::Behind => return Ok((WriteBranchAction::FastForwarded, base_tip, Some(seen))),
        Relation::Diverged => {
            return Err(git_error(
                target,
                GitProblem::Diverged {
                    base: base.branch.clone(),
                },
            ));
        }
    };
    Ok((action, tip, Some(seen)))
}

enum Relation {
    Same,
    Ahead,
    Behind,
    Diverged,
}

/// How the write branch tip `w` relates to the base tip `b`.
fn relation(repo: &Repository, w: Oid, b: Oid) -> Relation {
    if w == b {
        return Relation::Same;
    }
    match repo.merge_base(w, b) {
        Ok(m) if m == b => Relation::Ahead,
        Ok(m) if m == w => Relation::Behind,
        // No common ancestor at all: unrelated histories are diverged too.
        _ => Relation::Diverged,
    }
}

/// The tip of `target.branch` on the remote, `None` when the branch does not exist there (asked
/// of the remote, so a branch deleted after a merge is seen as missing).
fn remote_branch_tip(
    config: &WriteBackConfig,
    target: &GitTarget,
) -> Result<Option<Oid>, GitError> {
    let err = |problem| git_error(target, problem);
    let mut remote =
        git2::Remote::create_detached(target.repo.as_str()).map_err(|e| err(GitProblem::Git(e)))?;
    let conn = remote
        .connect_auth(git2::Direction::Fetch, Some(callbacks(&config.auth)), None)
        .map_err(|e| err(GitProblem::Unreachable(e)))?;
    let wanted = format!("refs/heads/{}", target.branch);
    let heads = conn.list().map_err(|e| err(GitProblem::ListBranches(e)))?;
    Ok(heads.iter().find(|h| h.name() == wanted).map(|h| h.oid()))
}
