//! The provenance gate's git question: is a revision a commit reachable from a branch of the
//! source repository? A read-only fetch of the branch into the controller's clone cache (with
//! its git credentials), in a blocking task; the policy core decides what the answer means.

use std::sync::Arc;

use super::Context;
use crate::gitops::{self, GitTarget, WriteBackConfig};
use crate::policy::LookupError;

/// Whether `revision` (a full or abbreviated commit id) is `branch`'s tip or an ancestor of it
/// in `repo`. A revision the fetched branch does not contain is not on it.
pub(super) async fn on_branch(
    ctx: &Context,
    repo: &str,
    branch: &str,
    revision: &str,
) -> Result<bool, LookupError> {
    let config = ctx
        .gitops
        .as_ref()
        .map(|g| g.config.clone())
        .unwrap_or_default();
    let target = GitTarget {
        repo: repo.to_string(),
        branch: branch.to_string(),
        path: String::new(),
    };
    let revision = revision.to_string();
    tokio::task::spawn_blocking(move || reachable(&config, &target, &revision))
        .await
        .map_err(|e| Arc::new(crate::Error::Join(e)) as LookupError)?
        .map_err(|e| Arc::new(e) as LookupError)
}

/// One fetch into the clone cache at a time: two queries on one repository would otherwise both
/// create its cached clone (libgit2: "remote 'origin' already exists").
static FETCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn reachable(
    config: &WriteBackConfig,
    target: &GitTarget,
    revision: &str,
) -> Result<bool, crate::Error> {
    let (repo, tip) = {
        let _one = FETCH.lock().unwrap_or_else(|p| p.into_inner());
        gitops::fetch(config, target)?
    };
    let Ok(object) = repo.revparse_single(revision) else {
        return Ok(false);
    };
    let Ok(commit) = object.peel_to_commit() else {
        return Ok(false);
    };
    let id = commit.id();
    Ok(id == tip || repo.graph_descendant_of(tip, id).unwrap_or(false))
}
