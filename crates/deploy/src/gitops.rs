//! Git write-back: change the manifests in git (kustomize `images:` or the workload's container
//! `image:`), commit once per repository per pass, push without ever forcing, and when the push
//! is rejected because the branch moved, fetch, re-apply the edit on the new tip and push again.
//! Everything here is blocking (libgit2); async callers use `spawn_blocking`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use git2::{Cred, FetchOptions, Oid, PushOptions, RemoteCallbacks, Repository, Signature, Tree};

use crate::lease::Fence;
use crate::yamledit;

/// Where a workload's manifests live.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct GitTarget {
    /// Clone URL.
    pub repo: String,
    /// Branch to commit to.
    pub branch: String,
    /// Directory or file inside the repository (no leading `/`; `""` or `.` for the root).
    pub path: String,
}

/// Credentials for git remotes. `Debug` never prints secrets.
#[derive(Clone, Default)]
pub struct GitAuth {
    /// User name for token authentication over http(s) (default `x-access-token`).
    pub user: Option<String>,
    /// Token (password) for http(s).
    pub token: Option<String>,
    /// Private key file for ssh.
    pub ssh_key: Option<PathBuf>,
}

impl std::fmt::Debug for GitAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitAuth")
            .field("user", &self.user)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("ssh_key", &self.ssh_key)
            .finish()
    }
}

/// How ferry writes to git.
#[derive(Debug, Clone)]
pub struct WriteBackConfig {
    /// Local clone cache (one bare repository per remote URL).
    pub cache_dir: PathBuf,
    /// Credentials.
    pub auth: GitAuth,
    /// Commit author name.
    pub author_name: String,
    /// Commit author e-mail.
    pub author_email: String,
    /// Subject line of commits (`{count}` is replaced by the number of changes).
    pub subject: String,
    /// Push attempts before giving up (each after a fetch and re-apply).
    pub max_attempts: u32,
}

impl Default for WriteBackConfig {
    fn default() -> Self {
        WriteBackConfig {
            cache_dir: std::env::temp_dir().join("ferry-git-cache"),
            auth: GitAuth::default(),
            author_name: "ferry".into(),
            author_email: "ferry@localhost".into(),
            subject: "ferry: update {count} image(s)".into(),
            max_attempts: 5,
        }
    }
}

/// One image change to write.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageChange {
    /// `namespace/Kind/name`.
    pub workload: String,
    /// Workload kind (`Deployment`…).
    pub kind: String,
    /// Workload name.
    pub name: String,
    /// Container name.
    pub container: String,
    /// The image as written now.
    pub old_image: String,
    /// The new image (`repository:tag@digest`).
    pub new_image: String,
    /// Directory or file of this workload's manifests, when it differs from the target's
    /// (several Applications in one repository: still one commit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// What a write-back did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WriteBack {
    /// The commit pushed (`None` when nothing changed).
    pub commit: Option<String>,
    /// Files changed.
    pub files: Vec<String>,
    /// Push attempts made.
    pub attempts: u32,
    /// Changes that could not be placed (workload not found under the path, unsupported YAML).
    pub problems: Vec<String>,
}

/// A failed write-back.
#[derive(Debug, thiserror::Error)]
#[error("git write-back to {repo} ({branch}): {message}")]
pub struct GitError {
    /// Remote URL.
    pub repo: String,
    /// Branch.
    pub branch: String,
    /// What went wrong.
    pub message: String,
}

/// Marker line in ferry's commit messages (used to recognise its commits).
pub const COMMIT_MARKER: &str = "Written-by: ferry-deploy";

fn cache_path(config: &WriteBackConfig, url: &str) -> PathBuf {
    let safe: String = url
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    config.cache_dir.join(format!("{safe}.git"))
}

fn callbacks(auth: &GitAuth) -> RemoteCallbacks<'_> {
    let mut cb = RemoteCallbacks::new();
    let mut tried = 0;
    cb.credentials(move |_url, user_from_url, allowed| {
        tried += 1;
        if tried > 3 {
            return Err(git2::Error::from_str("credentials were rejected"));
        }
        if allowed.contains(git2::CredentialType::SSH_KEY)
            && let Some(key) = &auth.ssh_key
        {
            return Cred::ssh_key(user_from_url.unwrap_or("git"), None, key, None);
        }
        if allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT)
            && let Some(token) = &auth.token
        {
            return Cred::userpass_plaintext(
                auth.user.as_deref().unwrap_or("x-access-token"),
                token,
            );
        }
        Err(git2::Error::from_str(
            "the remote asks for credentials and none are configured",
        ))
    });
    cb
}

/// `target` with `HEAD` (or an empty revision, Argo CD's default) replaced by the remote's
/// default branch.
pub fn resolve_branch(config: &WriteBackConfig, target: &GitTarget) -> Result<GitTarget, GitError> {
    if !(target.branch.is_empty() || target.branch == "HEAD") {
        return Ok(target.clone());
    }
    let err = |message: String| GitError {
        repo: target.repo.clone(),
        branch: target.branch.clone(),
        message,
    };
    let mut remote = git2::Remote::create_detached(target.repo.as_str())
        .map_err(|e| err(e.message().to_string()))?;
    let conn = remote
        .connect_auth(git2::Direction::Fetch, Some(callbacks(&config.auth)), None)
        .map_err(|e| err(format!("cannot reach the remote: {}", e.message())))?;
    let head = conn.default_branch().map_err(|e| {
        err(format!(
            "the remote names no default branch: {}",
            e.message()
        ))
    })?;
    let name = head
        .as_str()
        .unwrap_or("")
        .trim_start_matches("refs/heads/")
        .to_string();
    if name.is_empty() {
        return Err(err("the remote names no default branch".into()));
    }
    Ok(GitTarget {
        branch: name,
        ..target.clone()
    })
}

/// The cached bare clone of `target.repo`, fetched: returns it and the branch tip.
pub fn fetch(config: &WriteBackConfig, target: &GitTarget) -> Result<(Repository, Oid), GitError> {
    let err = |message: String| GitError {
        repo: target.repo.clone(),
        branch: target.branch.clone(),
        message,
    };
    if looks_like_commit(&target.branch) || target.branch.starts_with("refs/tags/") {
        return Err(err(format!(
            "targetRevision {:?} is a fixed commit or tag; ferry only writes to branches",
            target.branch
        )));
    }
    let dir = cache_path(config, &target.repo);
    let repo = match Repository::open_bare(&dir) {
        Ok(r) => r,
        Err(_) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
            let r = Repository::init_bare(&dir).map_err(|e| err(e.message().to_string()))?;
            r.remote("origin", &target.repo)
                .map_err(|e| err(e.message().to_string()))?;
            r
        }
    };
    {
        let mut remote = repo
            .find_remote("origin")
            .map_err(|e| err(e.message().to_string()))?;
        if remote.url().ok() != Some(target.repo.as_str()) {
            repo.remote_set_url("origin", &target.repo)
                .map_err(|e| err(e.message().to_string()))?;
            remote = repo
                .find_remote("origin")
                .map_err(|e| err(e.message().to_string()))?;
        }
        let mut fo = FetchOptions::new();
        fo.remote_callbacks(callbacks(&config.auth));
        let spec = format!("+refs/heads/{0}:refs/remotes/origin/{0}", target.branch);
        remote
            .fetch(&[spec.as_str()], Some(&mut fo), None)
            .map_err(|e| err(format!("fetch failed: {}", e.message())))?;
    }
    let tip = repo
        .refname_to_id(&format!("refs/remotes/origin/{}", target.branch))
        .map_err(|_| {
            err(format!(
                "branch {:?} does not exist in the repository (ferry only writes to branches)",
                target.branch
            ))
        })?;
    Ok((repo, tip))
}

fn looks_like_commit(rev: &str) -> bool {
    rev.len() >= 7 && rev.len() <= 64 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

fn read(repo: &Repository, tree: &Tree<'_>, path: &str) -> Option<String> {
    let e = tree.get_path(Path::new(path)).ok()?;
    let blob = repo.find_blob(e.id()).ok()?;
    String::from_utf8(blob.content().to_vec()).ok()
}

fn norm(path: &str) -> String {
    path.trim_matches('/')
        .trim_start_matches("./")
        .trim_end_matches('/')
        .replace("//", "/")
        .trim_start_matches('.')
        .trim_start_matches('/')
        .to_string()
}

/// Compute the edited files for `changes` on `tree`: kustomize when the path holds a
/// `kustomization.yaml`/`.yml`, else the manifest that defines each workload.
pub fn plan_edits(
    repo: &Repository,
    tree: &Tree<'_>,
    target: &GitTarget,
    changes: &[ImageChange],
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut files = BTreeMap::new();
    let mut problems = Vec::new();
    let mut groups: BTreeMap<String, Vec<ImageChange>> = BTreeMap::new();
    for c in changes {
        groups
            .entry(c.path.clone().unwrap_or_else(|| target.path.clone()))
            .or_default()
            .push(c.clone());
    }
    for (path, group) in groups {
        let t = GitTarget {
            path,
            ..target.clone()
        };
        plan_edits_into(repo, tree, &t, &group, &mut files, &mut problems);
    }
    (files, problems)
}

/// [`plan_edits`] for one path, on top of the edits already in `files`: its kustomization's
/// `images:` when it has one, else the workloads' own manifests.
fn plan_edits_into(
    repo: &Repository,
    tree: &Tree<'_>,
    target: &GitTarget,
    changes: &[ImageChange],
    files: &mut BTreeMap<String, String>,
    problems: &mut Vec<String>,
) {
    let path = norm(&target.path);
    let edits = Edits {
        repo,
        tree,
        files,
        problems,
    };
    let kustomization = ["kustomization.yaml", "kustomization.yml"]
        .into_iter()
        .map(|name| join(&path, name))
        .find(|p| read(repo, tree, p).is_some());
    match kustomization {
        Some(k) => edits.kustomization(&k, changes),
        None => {
            let candidates = manifest_files(repo, tree, &path);
            edits.manifests(&candidates, changes, &target.path);
        }
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The YAML files a path names: the file itself, or every `*.yaml`/`*.yml` under the directory.
fn manifest_files(repo: &Repository, tree: &Tree<'_>, path: &str) -> Vec<String> {
    if let Ok(e) = tree.get_path(Path::new(path))
        && e.kind() == Some(git2::ObjectType::Blob)
    {
        return vec![path.to_string()];
    }
    let sub = if path.is_empty() {
        Some(tree.clone())
    } else {
        tree.get_path(Path::new(path))
            .ok()
            .and_then(|e| repo.find_tree(e.id()).ok())
    };
    let mut v = Vec::new();
    if let Some(t) = sub {
        let _ = t.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if let Ok(name) = entry.name()
                && entry.kind() == Some(git2::ObjectType::Blob)
                && (name.ends_with(".yaml") || name.ends_with(".yml"))
            {
                v.push(join(path, &format!("{dir}{name}")));
            }
            git2::TreeWalkResult::Ok
        });
    }
    v.sort();
    v
}

/// Edits being planned on one tree: the files changed so far and the problems met.
struct Edits<'a, 'r> {
    repo: &'a Repository,
    tree: &'a Tree<'r>,
    files: &'a mut BTreeMap<String, String>,
    problems: &'a mut Vec<String>,
}

impl Edits<'_, '_> {
    /// A file as edited so far, else as on the tree.
    fn text(&self, path: &str) -> String {
        self.files
            .get(path)
            .cloned()
            .or_else(|| read(self.repo, self.tree, path))
            .unwrap_or_default()
    }

    /// Set each change's `images:` entry in the kustomization `k`.
    fn kustomization(self, k: &str, changes: &[ImageChange]) {
        let mut text = self.text(k);
        let before = text.clone();
        for c in changes {
            let Ok(r) = ferry_core::Reference::parse(&c.new_image) else {
                let why = format!("{}: {} is not a reference", c.workload, c.new_image);
                self.problems.push(why);
                continue;
            };
            // kustomize matches `name` against the image as written in the manifests.
            let written = ferry_core::Reference::parse(&c.old_image)
                .map(|o| spelled_name(&c.old_image, &o))
                .unwrap_or_default();
            let digest = r.digest().map(ToString::to_string);
            if let Err(e) =
                yamledit::set_kustomize_image(&mut text, &written, r.tag(), digest.as_deref())
            {
                self.problems.push(format!("{k}: {e}"));
            }
        }
        if text != before {
            self.files.insert(k.to_string(), text);
        }
    }

    /// Set each change's container image in the first of `candidates` that defines its workload.
    fn manifests(mut self, candidates: &[String], changes: &[ImageChange], under: &str) {
        for c in changes {
            let placed = candidates.iter().any(|f| self.place(f, c));
            if !placed {
                self.problems.push(format!(
                    "{}: no manifest for {} {} under {under:?}",
                    c.workload, c.kind, c.name
                ));
            }
        }
    }

    /// Whether `f` defines the workload of `c` (edited, already right, or refused with a
    /// problem).
    fn place(&mut self, f: &str, c: &ImageChange) -> bool {
        let mut text = self.text(f);
        match yamledit::set_container_image(&mut text, &c.kind, &c.name, &c.container, &c.new_image)
        {
            Ok(Some(true)) => {
                self.files.insert(f.to_string(), text);
                true
            }
            Ok(Some(false)) => true,
            Ok(None) => false,
            Err(e) => {
                self.problems.push(format!("{f}: {e}"));
                true
            }
        }
    }
}

/// The repository part of an image as written (`ghcr.io/acme/sensor` of `ghcr.io/acme/sensor:1@…`).
fn spelled_name(written: &str, r: &ferry_core::Reference) -> String {
    let no_digest = written.split('@').next().unwrap_or(written);
    match r.tag() {
        Some(t) => no_digest
            .strip_suffix(&format!(":{t}"))
            .unwrap_or(no_digest)
            .to_string(),
        None => no_digest.to_string(),
    }
}

/// A tree equal to `base` with `files` (path → content) replaced or added.
fn write_tree(
    repo: &Repository,
    base: Option<&Tree<'_>>,
    files: &BTreeMap<Vec<String>, Oid>,
) -> Result<Oid, git2::Error> {
    let mut builder = repo.treebuilder(base)?;
    let mut dirs: BTreeMap<String, BTreeMap<Vec<String>, Oid>> = BTreeMap::new();
    for (path, blob) in files {
        if path.len() == 1 {
            let mode = base
                .and_then(|t| t.get_name(&path[0]))
                .map_or(0o100644, |e| e.filemode());
            builder.insert(&path[0], *blob, mode)?;
        } else {
            dirs.entry(path[0].clone())
                .or_default()
                .insert(path[1..].to_vec(), *blob);
        }
    }
    for (dir, sub) in dirs {
        let existing = base
            .and_then(|t| t.get_name(&dir))
            .and_then(|e| repo.find_tree(e.id()).ok());
        let id = write_tree(repo, existing.as_ref(), &sub)?;
        builder.insert(&dir, id, 0o040000)?;
    }
    builder.write()
}

/// Edit, commit (one commit for all `changes`) and push to `target.branch`; on a rejected
/// push fetch, re-apply on the new tip and try again (never forcing).
pub fn write_back(
    config: &WriteBackConfig,
    target: &GitTarget,
    changes: &[ImageChange],
) -> Result<WriteBack, GitError> {
    write_back_fenced(config, target, changes, &Fence::unfenced())
}

/// [`write_back`], pushing only while `fence` allows writes (checked before every push).
pub fn write_back_fenced(
    config: &WriteBackConfig,
    target: &GitTarget,
    changes: &[ImageChange],
    fence: &Fence,
) -> Result<WriteBack, GitError> {
    let lines: Vec<String> = changes
        .iter()
        .map(|c| {
            format!(
                "- {} {}: {} → {}",
                c.workload, c.container, c.old_image, c.new_image
            )
        })
        .collect();
    let message = commit_message(config, &lines);
    commit_and_push(config, target, &message, fence, |repo, tree| {
        plan_edits(repo, tree, target, changes)
    })
}

fn push(
    config: &WriteBackConfig,
    repo: &Repository,
    target: &GitTarget,
    commit: Oid,
) -> Result<(), String> {
    let mut remote = repo
        .find_remote("origin")
        .map_err(|e| e.message().to_string())?;
    let rejected = std::cell::RefCell::new(None::<String>);
    {
        let mut cb = callbacks(&config.auth);
        cb.push_update_reference(|_refname, status| {
            if let Some(s) = status {
                *rejected.borrow_mut() = Some(s.to_string());
            }
            Ok(())
        });
        let mut po = PushOptions::new();
        po.remote_callbacks(cb);
        // No leading '+': never a force-push.
        let spec = format!("{commit}:refs/heads/{}", target.branch);
        remote
            .push(&[spec.as_str()], Some(&mut po))
            .map_err(|e| e.message().to_string())?;
    }
    match rejected.into_inner() {
        Some(r) => Err(r),
        None => Ok(()),
    }
}

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
    let err = |message: String| GitError {
        repo: target.repo.clone(),
        branch: target.branch.clone(),
        message,
    };
    let bad = Oid::from_str(commit).map_err(|e| err(format!("{commit}: {}", e.message())))?;
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=config.max_attempts.max(1) {
        let (repo, tip) = fetch(config, target)?;
        let id = revert_commit(config, &repo, tip, bad, reason).map_err(err)?;
        fence.check().map_err(|e| err(e.to_string()))?;
        match push(config, &repo, target, id) {
            Ok(()) => return Ok(id.to_string()),
            Err(rejection) => {
                let (_, new_tip) = fetch(config, target)?;
                if new_tip == tip {
                    return Err(err(format!("push of the revert rejected: {rejection}")));
                }
                tracing::info!(repo = %target.repo, attempt, "branch moved during the revert push; re-applying");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    Err(err(format!(
        "the branch kept moving; gave up reverting after {} attempts",
        config.max_attempts
    )))
}

/// A commit on `tip` undoing `bad`, or why it cannot be made.
fn revert_commit(
    config: &WriteBackConfig,
    repo: &Repository,
    tip: Oid,
    bad: Oid,
    reason: &str,
) -> Result<Oid, String> {
    let m = |e: git2::Error| e.message().to_string();
    let bad_commit = repo
        .find_commit(bad)
        .map_err(|e| format!("commit {bad} not found on the branch: {}", e.message()))?;
    let tip_commit = repo.find_commit(tip).map_err(m)?;
    let mut index = repo
        .revert_commit(&bad_commit, &tip_commit, 0, None)
        .map_err(m)?;
    if index.has_conflicts() {
        return Err(format!(
            "cannot revert {}: the files it changed were changed since",
            ferry_core::short_hash(&bad.to_string())
        ));
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

fn tree_mentions(repo: &Repository, tree: &Tree<'_>, needle: &str) -> bool {
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
    let err = |message: String| GitError {
        repo: base.repo.clone(),
        branch: write_branch.to_string(),
        message,
    };
    if !git2::Branch::name_is_valid(write_branch).unwrap_or(false) {
        return Err(err(format!("{write_branch:?} is not a valid branch name")));
    }
    let target = GitTarget {
        branch: write_branch.to_string(),
        ..base.clone()
    };
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
                return Err(err(format!("push rejected: {rejection}")));
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
    Err(err(format!(
        "the branch kept moving; gave up after {} attempts",
        config.max_attempts
    )))
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
            return Err(GitError {
                repo: target.repo.clone(),
                branch: target.branch.clone(),
                message: format!(
                    "it has diverged from {0} (commits on both sides) and cannot be fast-forwarded; ferry never force-pushes: merge {0} into it or delete it",
                    base.branch
                ),
            });
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
    let err = |message: String| GitError {
        repo: target.repo.clone(),
        branch: target.branch.clone(),
        message,
    };
    let mut remote = git2::Remote::create_detached(target.repo.as_str())
        .map_err(|e| err(e.message().to_string()))?;
    let conn = remote
        .connect_auth(git2::Direction::Fetch, Some(callbacks(&config.auth)), None)
        .map_err(|e| err(format!("cannot reach the remote: {}", e.message())))?;
    let wanted = format!("refs/heads/{}", target.branch);
    let heads = conn.list().map_err(|e| {
        err(format!(
            "cannot list the remote's branches: {}",
            e.message()
        ))
    })?;
    Ok(heads.iter().find(|h| h.name() == wanted).map(|h| h.oid()))
}

/// One image change written to a Helm values file (see [`crate::helm::values_file`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HelmChange {
    /// `namespace/Kind/name`.
    pub workload: String,
    /// Container name.
    pub container: String,
    /// The values file's path in the repository ([`crate::helm::ValuesFile`]'s `target.path`).
    pub file: String,
    /// Dotted key of the image mapping (`image`, `sensor.image`).
    pub key: String,
    /// The image as running now.
    pub old_image: String,
    /// The new image (`repository:tag@digest`).
    pub new_image: String,
}

/// The edited values files for `changes` on `tree` (path → new text), and the changes that could
/// not be placed (file missing, key missing, layout ferry does not edit, image without tag or
/// digest), each naming the file and the key.
pub fn plan_helm_edits(
    repo: &Repository,
    tree: &Tree<'_>,
    changes: &[HelmChange],
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let mut problems = Vec::new();
    for c in changes {
        let file = norm(&c.file);
        let Some(text) = files
            .get(&file)
            .cloned()
            .or_else(|| read(repo, tree, &file))
        else {
            problems.push(format!(
                "{}: values file {file} is not in the repository",
                c.workload
            ));
            continue;
        };
        let parsed = ferry_core::Reference::parse(&c.new_image).ok();
        let Some((r, tag, digest)) = parsed
            .as_ref()
            .and_then(|r| Some((r, r.tag()?.to_string(), r.digest()?.to_string())))
        else {
            problems.push(format!(
                "{}: {} is not a reference with a tag and a digest",
                c.workload, c.new_image
            ));
            continue;
        };
        match yamledit::set_helm_image(&file, &text, &c.key, &r.name(), &tag, &digest) {
            Ok(new) if new != text => {
                files.insert(file, new);
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("{}: {e}", c.workload)),
        }
    }
    (files, problems)
}

/// [`write_back`] for Helm values files: edit, commit once for all `changes`, push to
/// `target.branch` without forcing, and on a rejected push fetch, re-apply on the new tip and
/// try again. `target.path` is not used (each change names its file).
///
/// ```no_run
/// use ferry_deploy::{gitops, helm};
///
/// # fn f(spec: &serde_json::Value) -> Result<(), Box<dyn std::error::Error>> {
/// let values = helm::values_file(spec, Some("sensor.image"))?.expect("a Helm application");
/// let change = gitops::HelmChange {
///     workload: "iot/Deployment/sensor".into(),
///     container: "app".into(),
///     file: values.target.path.clone(),
///     key: values.key.clone(),
///     old_image: "ghcr.io/acme/sensor:1.0@sha256:…".into(),
///     new_image: "ghcr.io/acme/sensor:1.1@sha256:…".into(),
/// };
/// let done = gitops::write_back_helm(&Default::default(), &values.target, &[change])?;
/// # Ok(()) }
/// ```
pub fn write_back_helm(
    config: &WriteBackConfig,
    target: &GitTarget,
    changes: &[HelmChange],
) -> Result<WriteBack, GitError> {
    write_back_helm_fenced(config, target, changes, &Fence::unfenced())
}

/// [`write_back_helm`], pushing only while `fence` allows writes (checked before every push).
pub fn write_back_helm_fenced(
    config: &WriteBackConfig,
    target: &GitTarget,
    changes: &[HelmChange],
    fence: &Fence,
) -> Result<WriteBack, GitError> {
    let lines: Vec<String> = changes
        .iter()
        .map(|c| {
            format!(
                "- {} {}: {} → {} ({} {})",
                c.workload, c.container, c.old_image, c.new_image, c.file, c.key
            )
        })
        .collect();
    let message = commit_message(config, &lines);
    commit_and_push(config, target, &message, fence, |repo, tree| {
        plan_helm_edits(repo, tree, changes)
    })
}

/// ferry's commit message: the subject (`{count}` replaced), one line per change, the marker.
fn commit_message(config: &WriteBackConfig, lines: &[String]) -> String {
    let mut message = config.subject.replace("{count}", &lines.len().to_string());
    message.push_str("\n\n");
    for l in lines {
        message.push_str(l);
        message.push('\n');
    }
    message.push('\n');
    message.push_str(COMMIT_MARKER);
    message.push('\n');
    message
}

/// The one commit-and-push loop: fetch the branch, let `plan` compute the edited files on its
/// tip, commit them with `message`, push without forcing; when the push is rejected because the
/// branch moved, start again on the new tip (with backoff), at most `config.max_attempts` times.
fn commit_and_push(
    config: &WriteBackConfig,
    target: &GitTarget,
    message: &str,
    fence: &Fence,
    plan: impl Fn(&Repository, &Tree<'_>) -> (BTreeMap<String, String>, Vec<String>),
) -> Result<WriteBack, GitError> {
    let target = &resolve_branch(config, target)?;
    let err = |message: String| GitError {
        repo: target.repo.clone(),
        branch: target.branch.clone(),
        message,
    };
    let git = |e: git2::Error| err(e.message().to_string());
    let mut result = WriteBack::default();
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=config.max_attempts.max(1) {
        result.attempts = attempt;
        let (repo, tip) = fetch(config, target)?;
        let tip_commit = repo.find_commit(tip).map_err(git)?;
        let tree = tip_commit.tree().map_err(git)?;
        let (files, problems) = plan(&repo, &tree);
        result.problems = problems;
        if files.is_empty() {
            result.commit = None;
            result.files.clear();
            return Ok(result);
        }
        let mut blobs = BTreeMap::new();
        for (path, text) in &files {
            let id = repo.blob(text.as_bytes()).map_err(git)?;
            blobs.insert(path.split('/').map(str::to_string).collect::<Vec<_>>(), id);
        }
        let new_tree = write_tree(&repo, Some(&tree), &blobs).map_err(git)?;
        let new_tree = repo.find_tree(new_tree).map_err(git)?;
        let sig = Signature::now(&config.author_name, &config.author_email).map_err(git)?;
        let commit = repo
            .commit(None, &sig, &sig, message, &new_tree, &[&tip_commit])
            .map_err(git)?;
        fence.check().map_err(|e| err(e.to_string()))?;
        match push(config, &repo, target, commit) {
            Ok(()) => {
                result.commit = Some(commit.to_string());
                result.files = files.keys().cloned().collect();
                return Ok(result);
            }
            Err(rejection) => {
                let (_, new_tip) = fetch(config, target)?;
                if new_tip == tip {
                    return Err(err(format!("push rejected: {rejection}")));
                }
                tracing::info!(repo = %target.repo, branch = %target.branch, attempt, "branch moved during the push; re-applying on the new tip");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    Err(err(format!(
        "the branch kept moving; gave up after {} attempts",
        config.max_attempts
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_debug_is_redacted() {
        let a = GitAuth {
            user: Some("bot".into()),
            token: Some("ghp_secret".into()),
            ssh_key: None,
        };
        let d = format!("{a:?}");
        assert!(!d.contains("ghp_secret") && d.contains("<redacted>"), "{d}");
    }

    #[test]
    fn fixed_revisions_are_refused() {
        let cfg = WriteBackConfig {
            cache_dir: std::env::temp_dir().join("ferry-test-never"),
            ..Default::default()
        };
        for rev in ["0123abcd", "refs/tags/v1"] {
            let t = GitTarget {
                repo: "git://127.0.0.1:1/x.git".into(),
                branch: rev.into(),
                path: ".".into(),
            };
            let Err(e) = fetch(&cfg, &t) else {
                panic!("{rev} accepted")
            };
            assert!(e.to_string().contains("only writes to branches"), "{e}");
        }
    }

    #[test]
    fn spelled_names() {
        let f = |s: &str| spelled_name(s, &ferry_core::Reference::parse(s).unwrap());
        assert_eq!(
            f(
                "ghcr.io/acme/sensor:1@sha256:1111111111111111111111111111111111111111111111111111111111111111"
            ),
            "ghcr.io/acme/sensor"
        );
        assert_eq!(f("redis"), "redis");
        assert_eq!(f("localhost:5000/a:b"), "localhost:5000/a");
    }
}
