//! The commits between two source revisions (what an image update changes), for a request body.

use super::*;

/// One commit: short id and title.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommitLine {
    /// Abbreviated id (12 hex digits).
    pub id: String,
    /// The subject line.
    pub title: String,
}

/// The commits reachable from `to` and not from `from` on the source repository's default
/// branch, newest first: at most `cap`, and how many more there are. Errors name the
/// repository and the revision that is missing.
pub fn commits_between(
    config: &WriteBackConfig,
    url: &str,
    from: &str,
    to: &str,
    cap: usize,
) -> Result<(Vec<CommitLine>, usize), GitError> {
    let head = GitTarget {
        repo: url.to_string(),
        branch: "HEAD".into(),
        path: String::new(),
    };
    let t = resolve_branch(config, &head)?;
    let (repo, _) = fetch(config, &t)?;
    let err = |problem| git_error(&t, problem);
    let git = |e| err(GitProblem::Git(e));
    let commit = |rev: &str| {
        repo.revparse_single(rev)
            .and_then(|o| o.peel_to_commit())
            .map(|c| c.id())
            .map_err(|_| {
                err(GitProblem::NotOnBranch {
                    revision: rev.to_string(),
                    branch: t.branch.clone(),
                })
            })
    };
    let (from, to) = (commit(from)?, commit(to)?);
    let mut walk = repo.revwalk().map_err(git)?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)
        .and_then(|()| walk.push(to))
        .and_then(|()| walk.hide(from))
        .map_err(git)?;
    let mut lines = Vec::new();
    let mut more = 0;
    for id in walk {
        let id = id.map_err(git)?;
        if lines.len() == cap {
            more += 1;
            continue;
        }
        let c = repo.find_commit(id).map_err(git)?;
        lines.push(CommitLine {
            id: ferry_core::short_hash(&id.to_string()).to_string(),
            title: c.summary().ok().flatten().unwrap_or("").to_string(),
        });
    }
    Ok((lines, more))
}
