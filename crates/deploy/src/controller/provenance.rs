//! The provenance gate's git question: is a revision a commit reachable from a branch of the
//! source repository? A read-only fetch of the branch into the controller's clone cache (with
//! its git credentials), in a blocking task; the policy core decides what the answer means.
//! Answers are kept across passes in a [`ProvenanceCache`]: a revision found on the branch
//! stays on it; a refusal stands while the branch tip is the one it was judged against (one
//! listing of the remote's refs, no fetch), and is judged again once the branch moved.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use git2::Oid;

use super::Context;
use crate::gitops::{self, GitProblem, GitTarget, WriteBackConfig};
use crate::policy::LookupError;

/// Answers kept at most (the oldest go first).
const CAPACITY: usize = 4096;

/// (source repository, branch, revision).
type Key = (String, String, String);

/// Provenance answers across passes: (source repository, branch, revision) → whether the
/// revision is on the branch, and the branch tip that answer was judged against. Bounded
/// ([`CAPACITY`] answers); clones share it.
#[derive(Clone, Debug, Default)]
pub struct ProvenanceCache {
    inner: Arc<Mutex<Known>>,
}

#[derive(Debug, Default)]
struct Known {
    answers: HashMap<Key, (bool, Oid)>,
    order: VecDeque<Key>,
    fetches: usize,
}

impl ProvenanceCache {
    /// Branch fetches made so far (answers that needed one).
    pub fn fetches(&self) -> usize {
        self.lock().fetches
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, key: &Key) -> Option<(bool, Oid)> {
        self.lock().answers.get(key).copied()
    }

    fn put(&self, key: Key, answer: (bool, Oid)) {
        let mut k = self.lock();
        k.fetches += 1;
        if k.answers.insert(key.clone(), answer).is_none() {
            k.order.push_back(key);
        }
        while k.order.len() > CAPACITY {
            if let Some(old) = k.order.pop_front() {
                k.answers.remove(&old);
            }
        }
    }
}

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
    let cache = ctx.provenance.clone();
    tokio::task::spawn_blocking(move || answer(&config, &target, &revision, &cache))
        .await
        .map_err(|e| Arc::new(crate::Error::Join(e)) as LookupError)?
        .map_err(|e| Arc::new(e) as LookupError)
}

/// The cached answer when it still holds, else a fetch and a fresh one (then cached).
fn answer(
    config: &WriteBackConfig,
    target: &GitTarget,
    revision: &str,
    cache: &ProvenanceCache,
) -> Result<bool, crate::Error> {
    let key = (
        target.repo.clone(),
        target.branch.clone(),
        revision.to_string(),
    );
    match cache.get(&key) {
        // A commit on a branch stays on it (short of a force-push, which ferry does not guard).
        Some((true, _)) => return Ok(true),
        Some((false, tip)) if remote_tip(config, target)? == Some(tip) => return Ok(false),
        _ => {}
    }
    let (reachable, tip) = reachable(config, target, revision)?;
    cache.put(key, (reachable, tip));
    Ok(reachable)
}

/// The provenance gate's own error for a failed git step.
fn fetch_error(target: &GitTarget, problem: GitProblem) -> crate::Error {
    crate::Error::ProvenanceFetch {
        repo: target.repo.clone(),
        branch: target.branch.clone(),
        problem,
    }
}

/// The branch's tip on the remote, from a listing of its refs (no fetch).
fn remote_tip(config: &WriteBackConfig, target: &GitTarget) -> Result<Option<Oid>, crate::Error> {
    let err = |e| fetch_error(target, GitProblem::ListRefs(e));
    let mut remote = git2::Remote::create_detached(target.repo.as_str()).map_err(err)?;
    let callbacks = gitops::callbacks(&config.auth);
    let conn = remote
        .connect_auth(git2::Direction::Fetch, Some(callbacks), None)
        .map_err(err)?;
    let name = format!("refs/heads/{}", target.branch);
    let tip = conn
        .list()
        .map_err(err)?
        .iter()
        .find(|h| h.name() == name)
        .map(|h| h.oid());
    Ok(tip)
}

/// One fetch into the clone cache at a time: two queries on one repository would otherwise both
/// create its cached clone (libgit2: "remote 'origin' already exists").
static FETCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Fetch the branch; (whether `revision` is on it, the tip fetched).
fn reachable(
    config: &WriteBackConfig,
    target: &GitTarget,
    revision: &str,
) -> Result<(bool, Oid), crate::Error> {
    let (repo, tip) = {
        let _one = FETCH.lock().unwrap_or_else(|p| p.into_inner());
        gitops::fetch(config, target).map_err(|e| match e {
            crate::Error::Git { problem, .. } => fetch_error(target, problem),
            other => other,
        })?
    };
    let Ok(object) = repo.revparse_single(revision) else {
        return Ok((false, tip));
    };
    let Ok(commit) = object.peel_to_commit() else {
        return Ok((false, tip));
    };
    let id = commit.id();
    let on = id == tip || repo.graph_descendant_of(tip, id).unwrap_or(false);
    Ok((on, tip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let o = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// A source repository with `main` and an unmerged `feature`: (dir, main's commit,
    /// feature's commit).
    fn source() -> (tempfile::TempDir, String, String) {
        let d = tempfile::tempdir().unwrap();
        git(d.path(), &["init", "-q", "-b", "main"]);
        git(
            d.path(),
            &["commit", "-q", "--allow-empty", "-m", "on main"],
        );
        let merged = git(d.path(), &["rev-parse", "HEAD"]);
        git(d.path(), &["checkout", "-q", "-b", "feature"]);
        git(
            d.path(),
            &["commit", "-q", "--allow-empty", "-m", "unmerged"],
        );
        let unmerged = git(d.path(), &["rev-parse", "HEAD"]);
        git(d.path(), &["checkout", "-q", "main"]);
        (d, merged, unmerged)
    }

    fn setup(repo: &Path, branch: &str) -> (tempfile::TempDir, WriteBackConfig, GitTarget) {
        let cache = tempfile::tempdir().unwrap();
        let config = WriteBackConfig {
            cache_dir: cache.path().into(),
            ..Default::default()
        };
        let target = GitTarget {
            repo: repo.display().to_string(),
            branch: branch.into(),
            path: String::new(),
        };
        (cache, config, target)
    }

    #[test]
    fn answers_are_kept_across_passes_and_a_refusal_is_judged_again_once_the_branch_moves() {
        let (src, merged, unmerged) = source();
        let (_c, config, target) = setup(src.path(), "main");
        let cache = ProvenanceCache::default();
        // First pass: one fetch per revision.
        assert!(answer(&config, &target, &merged, &cache).unwrap());
        assert!(!answer(&config, &target, &unmerged, &cache).unwrap());
        assert_eq!(cache.fetches(), 2);
        // Second pass, nothing moved: no fetch.
        assert!(answer(&config, &target, &merged, &cache).unwrap());
        assert!(!answer(&config, &target, &unmerged, &cache).unwrap());
        assert_eq!(cache.fetches(), 2, "nothing moved: nothing fetched");
        // The feature is merged: main moved, the refusal is judged again.
        git(src.path(), &["merge", "-q", "--ff-only", "feature"]);
        assert!(answer(&config, &target, &unmerged, &cache).unwrap());
        assert!(answer(&config, &target, &merged, &cache).unwrap());
        assert_eq!(cache.fetches(), 3, "one fetch, for the refusal only");
    }

    #[test]
    fn the_cache_keeps_at_most_its_capacity_dropping_the_oldest() {
        let cache = ProvenanceCache::default();
        let key = |i: usize| ("r".to_string(), "main".to_string(), i.to_string());
        for i in 0..CAPACITY + 10 {
            cache.put(key(i), (true, Oid::ZERO_SHA1));
        }
        assert_eq!(cache.lock().answers.len(), CAPACITY);
        assert!(cache.get(&key(9)).is_none());
        assert!(cache.get(&key(10)).is_some());
    }

    #[test]
    fn a_failed_fetch_says_it_is_the_provenance_check_not_a_write_back() {
        let (src, merged, _) = source();
        let (_c, config, target) = setup(src.path(), "release");
        let e = answer(&config, &target, &merged, &ProvenanceCache::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "fetching branch release of {}: branch \"release\" does not exist in the repository",
                src.path().display()
            )
        );
        let reason = crate::policy::Reason::ProvenanceLookup(crate::policy::Failure::from(e));
        assert_eq!(
            reason.to_string(),
            format!(
                "cannot check the provenance: fetching branch release of {}: branch \"release\" does not exist in the repository",
                src.path().display()
            )
        );
    }
}
