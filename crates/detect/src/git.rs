//! Reading git objects with libgit2: revisions, trees, blobs, and a tree diff that only descends
//! where subtree ids differ (libgit2's own tree-to-tree diff walks every file).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use git2::{ObjectType, Oid, Repository, Tree};

use crate::error::{Error, GitProblem, Result};

/// What happened to a path between two trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// New at head.
    Added,
    /// Gone at head.
    Deleted,
    /// Content (or submodule commit) changed.
    Modified,
    /// Only the file mode changed (e.g. made executable).
    ModeChanged,
}

/// One changed path (files, symlinks and submodule pointers; never directories).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    /// Path relative to the repository root, `/`-separated.
    pub path: String,
    /// What happened.
    pub kind: ChangeKind,
}

/// What a revision names in this repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A commit whose object is here.
    Present(Oid),
    /// The revision names a commit (a full commit id, or a reference / ancestry that resolves)
    /// whose objects are not here: a shallow clone, pruned or rewritten history.
    Missing,
    /// Nothing by that name: a typo, an unknown branch or tag, an abbreviation matching nothing.
    Unknown,
}

/// Whether `rev` is a complete object id (SHA-1 or SHA-256 hex).
fn is_full_id(rev: &str) -> bool {
    (rev.len() == 40 || rev.len() == 64) && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A git repository (bare or with a work tree, partial clones included).
pub struct Repo {
    repo: Repository,
    path: PathBuf,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo").field("path", &self.path).finish()
    }
}

static EXTENSIONS: Once = Once::new();

fn allow_partial_clones() {
    EXTENSIONS.call_once(|| {
        // SAFETY: libgit2 requires that its global options are not changed while other threads
        // use libgit2. This runs exactly once, guarded by `Once`, before ferry opens any
        // repository; ferry does not call libgit2 before `Repo::open`.
        #[allow(unsafe_code)]
        let r = unsafe { git2::opts::set_extensions(&["partialclone"]) };
        if let Err(e) = r {
            tracing::warn!("cannot enable libgit2's partialclone extension: {e}");
        }
        // libgit2 re-hashes every object it reads (SHA-1 with collision detection): most of the
        // time of a large-tree read. git itself does not do that on reads (only `fsck` does).
        git2::opts::strict_hash_verification(false);
        // Each tree is read about once (one walk, then a diff of the changed subtrees): the
        // object cache would only cost allocations.
        git2::opts::enable_caching(false);
    });
}

impl Repo {
    /// Open the repository at `path` or one of its parents (bare repositories too).
    pub fn open(path: &Path) -> Result<Self> {
        allow_partial_clones();
        let repo = Repository::discover(path).map_err(|e| match e.code() {
            // Said with the absolute path: `.` does not tell where the search started.
            git2::ErrorCode::NotFound if path.is_dir() => Error::NotARepository {
                path: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
            },
            _ => Error::Git {
                path: path.to_path_buf(),
                problem: GitProblem::Libgit2(e),
            },
        })?;
        let root = repo.workdir().unwrap_or_else(|| repo.path()).to_path_buf();
        tracing::debug!(repository = %root.display(), "opened the repository");
        Ok(Repo { repo, path: root })
    }

    /// The repository's directory (work tree, or the git dir when bare).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying libgit2 repository.
    pub fn raw(&self) -> &Repository {
        &self.repo
    }

    fn git_err(&self, e: git2::Error) -> Error {
        Error::Git {
            path: self.path.clone(),
            problem: GitProblem::Libgit2(e),
        }
    }

    /// Resolve a revision to a commit id; `Ok(None)` when it does not exist here (a shallow or
    /// partial clone, or a rewritten history).
    pub fn commit_id(&self, rev: &str) -> Result<Option<Oid>> {
        let obj = match self.repo.revparse_single(rev) {
            Ok(o) => o,
            Err(e)
                if matches!(
                    e.code(),
                    git2::ErrorCode::NotFound | git2::ErrorCode::Ambiguous
                ) || e.class() == git2::ErrorClass::Odb
                    || e.class() == git2::ErrorClass::Reference =>
            {
                return Ok(None);
            }
            Err(e) => return Err(self.git_err(e)),
        };
        match obj.peel_to_commit() {
            Ok(c) => Ok(Some(c.id())),
            Err(e)
                if e.code() == git2::ErrorCode::NotFound || e.class() == git2::ErrorClass::Odb =>
            {
                Ok(None)
            }
            Err(e) => Err(self.git_err(e)),
        }
    }

    /// Tell a revision whose commit is here, one that names a commit whose objects are missing,
    /// and one that names nothing at all.
    pub fn lookup(&self, rev: &str) -> Result<Lookup> {
        match self.repo.revparse_single(rev) {
            Ok(obj) => match obj.peel_to_commit() {
                Ok(c) if self.has_commit(c.id()) => {
                    tracing::trace!(rev, commit = %c.id(), "revision resolved");
                    Ok(Lookup::Present(c.id()))
                }
                Ok(_) => Ok(Lookup::Missing),
                Err(e) if e.class() == git2::ErrorClass::Odb => Ok(Lookup::Missing),
                Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(Lookup::Missing),
                Err(e) => Err(self.git_err(e)),
            },
            // A full commit id names a commit whether or not its object is here.
            Err(_) if is_full_id(rev) => Ok(Lookup::Missing),
            // The name resolved (a reference, an ancestry walk) to an object that is not here.
            Err(e) if e.class() == git2::ErrorClass::Odb => Ok(Lookup::Missing),
            // `HEAD~3` walking past the boundary of a shallow clone.
            Err(_) if self.walks_past_shallow_boundary(rev) => Ok(Lookup::Missing),
            // Reading the repository failed: an operational error, not a verdict on the name.
            Err(e)
                if matches!(
                    e.class(),
                    git2::ErrorClass::Os | git2::ErrorClass::Filesystem | git2::ErrorClass::Zlib
                ) =>
            {
                Err(self.git_err(e))
            }
            // Anything else is about the name itself (not found, ambiguous, malformed,
            // unsupported syntax).
            Err(e) => {
                tracing::debug!(rev, error = %e.message(), "revision names nothing");
                Ok(Lookup::Unknown)
            }
        }
    }

    /// Whether `rev` is `NAME` followed by `~N` / `^N` steps that reach a commit at the boundary
    /// of a shallow clone (its parents were not fetched) before the walk ends.
    fn walks_past_shallow_boundary(&self, rev: &str) -> bool {
        let shallow: Vec<Oid> = std::fs::read_to_string(self.repo.path().join("shallow"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| Oid::from_str(l.trim()).ok())
            .collect();
        if shallow.is_empty() {
            return false;
        }
        let Some(start) = rev.find(['~', '^']) else {
            return false;
        };
        let Ok(Some(mut at)) = self.commit_id(&rev[..start]) else {
            return false;
        };
        let mut rest = &rev[start..];
        while let Some(op) = rest.chars().next() {
            let digits = rest[1..].bytes().take_while(u8::is_ascii_digit).count();
            let n: usize = if digits == 0 {
                1
            } else {
                match rest[1..=digits].parse() {
                    Ok(n) => n,
                    Err(_) => return false,
                }
            };
            rest = &rest[1 + digits..];
            // `~N`: N first parents; `^N`: the N-th parent.
            let (steps, index) = if op == '~' {
                (n, 0)
            } else {
                (1, n.saturating_sub(1))
            };
            if op != '~' && op != '^' || (op == '^' && n == 0) {
                return false;
            }
            for _ in 0..steps {
                if shallow.contains(&at) {
                    return true;
                }
                match self
                    .repo
                    .find_commit(at)
                    .ok()
                    .and_then(|c| c.parent_id(index).ok())
                {
                    Some(p) => at = p,
                    None => return false,
                }
            }
        }
        false
    }

    /// Whether the commit object is present (not just named).
    pub fn has_commit(&self, id: Oid) -> bool {
        self.repo.find_commit(id).is_ok()
    }

    /// First parent of a commit, if present locally.
    pub fn parent(&self, id: Oid) -> Option<Oid> {
        let c = self.repo.find_commit(id).ok()?;
        let p = c.parent_id(0).ok()?;
        self.has_commit(p).then_some(p)
    }

    /// The merge base of two commits, if history allows.
    pub fn merge_base(&self, a: Oid, b: Oid) -> Option<Oid> {
        self.repo.merge_base(a, b).ok()
    }

    /// The root tree of a commit.
    pub fn tree(&self, commit: Oid) -> Result<Tree<'_>> {
        self.repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(|e| self.git_err(e))
    }

    /// Whether this is a shallow clone.
    pub fn is_shallow(&self) -> bool {
        self.repo.is_shallow()
    }

    /// The object id of `path` in `tree` (blob, tree or commit), if it exists.
    pub fn entry_id(&self, tree: &Tree<'_>, path: &str) -> Option<Oid> {
        if path.is_empty() {
            return Some(tree.id());
        }
        tree.get_path(Path::new(path)).ok().map(|e| e.id())
    }

    /// The blob id of the file at `path` in `tree` (what [`Repo::find_files`] lists), if it
    /// exists.
    pub fn blob_id(&self, tree: &Tree<'_>, path: &str) -> Option<Oid> {
        let entry = tree.get_path(Path::new(path)).ok()?;
        (entry.kind() == Some(ObjectType::Blob)).then(|| entry.id())
    }

    /// The content of the file at `path` in `tree`; `Ok(None)` when there is no such file.
    /// Blobs missing from a partial clone are fetched through the `git` command, which knows
    /// how to ask the promisor remote.
    pub fn read_file(&self, tree: &Tree<'_>, path: &str) -> Result<Option<Vec<u8>>> {
        let Ok(entry) = tree.get_path(Path::new(path)) else {
            return Ok(None);
        };
        if entry.kind() != Some(ObjectType::Blob) {
            return Ok(None);
        }
        self.read_blob(entry.id()).map(Some)
    }

    /// Read a blob by id (lazily fetching it in a partial clone).
    pub fn read_blob(&self, id: Oid) -> Result<Vec<u8>> {
        match self.repo.find_blob(id) {
            Ok(b) => Ok(b.content().to_vec()),
            Err(e)
                if e.code() == git2::ErrorCode::NotFound || e.class() == git2::ErrorClass::Odb =>
            {
                let git_dir = self.repo.path();
                let out = Command::new("git")
                    .arg("--git-dir")
                    .arg(git_dir)
                    .args(["cat-file", "blob", &id.to_string()])
                    .output()
                    .map_err(|error| Error::Git {
                        path: self.path.clone(),
                        problem: GitProblem::CannotRunGit { blob: id, error },
                    })?;
                if !out.status.success() {
                    return Err(Error::Git {
                        path: self.path.clone(),
                        problem: GitProblem::BlobNotFetched {
                            blob: id,
                            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                        },
                    });
                }
                Ok(out.stdout)
            }
            Err(e) => Err(self.git_err(e)),
        }
    }

    /// Every file under `prefix` (`""` = everything) in `tree`, as paths relative to `prefix`,
    /// sorted. Submodules are listed as entries; directories are not.
    pub fn list_files(&self, tree: &Tree<'_>, prefix: &str) -> Result<Vec<String>> {
        let sub;
        let t = if prefix.is_empty() {
            tree
        } else {
            match tree.get_path(Path::new(prefix)) {
                Ok(e) if e.kind() == Some(ObjectType::Tree) => {
                    sub = self.repo.find_tree(e.id()).map_err(|e| self.git_err(e))?;
                    &sub
                }
                _ => return Ok(Vec::new()),
            }
        };
        let mut out = Vec::new();
        t.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() != Some(ObjectType::Tree)
                && let Ok(name) = entry.name()
            {
                out.push(format!("{dir}{name}"));
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(|e| self.git_err(e))?;
        out.sort();
        Ok(out)
    }

    /// Files (path and blob id) whose name satisfies `keep`, anywhere in `tree`, in one pass
    /// over all entries; sorted by path.
    pub fn find_files(
        &self,
        tree: &Tree<'_>,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<(String, Oid)>> {
        let mut out = Vec::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() == Some(ObjectType::Blob)
                && let Ok(name) = entry.name()
                && keep(name)
            {
                out.push((format!("{dir}{name}"), entry.id()));
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(|e| self.git_err(e))?;
        out.sort();
        Ok(out)
    }

    /// Paths that differ from HEAD in the index or the work tree, untracked files included.
    pub fn dirty_paths(&self) -> Result<std::collections::BTreeSet<String>> {
        let mut opts = git2::StatusOptions::new();
        opts.include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(false);
        let statuses = self
            .repo
            .statuses(Some(&mut opts))
            .map_err(|e| self.git_err(e))?;
        Ok(statuses
            .iter()
            .filter(|s| s.status() != git2::Status::CURRENT)
            .filter_map(|s| s.path().ok().map(str::to_string))
            .collect())
    }

    /// Commit `files` (repository-relative path and new content) on top of HEAD, leaving every
    /// other path as HEAD has it (other staged changes are not swept into the commit), and
    /// update the index for those paths. `author` is `(name, email)`; default: git config.
    pub fn commit_files(
        &self,
        files: &[(String, Vec<u8>)],
        message: &str,
        author: Option<(&str, &str)>,
    ) -> Result<Oid> {
        let head = self
            .repo
            .head()
            .and_then(|h| h.peel_to_commit())
            .map_err(|e| self.git_err(e))?;
        let head_tree = head.tree().map_err(|e| self.git_err(e))?;
        let tree_id = ferry_core::git::tree_with_files(&self.repo, Some(&head_tree), files)
            .map_err(|e| self.git_err(e))?;
        let tree = self.repo.find_tree(tree_id).map_err(|e| self.git_err(e))?;
        let sig = match author {
            Some((name, email)) => git2::Signature::now(name, email),
            None => self.repo.signature(),
        }
        .map_err(|e| Error::Git {
            path: self.path.clone(),
            problem: GitProblem::NoAuthor(e),
        })?;
        let id = self
            .repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &[&head])
            .map_err(|e| self.git_err(e))?;
        // Keep the real index in step for the committed paths.
        let mut real = self.repo.index().map_err(|e| self.git_err(e))?;
        for (path, content) in files {
            let entry = tree
                .get_path(Path::new(path))
                .map_err(|e| self.git_err(e))?;
            real.add(&index_entry(
                path,
                content.len(),
                entry.id(),
                entry.filemode(),
            ))
            .map_err(|e| self.git_err(e))?;
        }
        real.write().map_err(|e| self.git_err(e))?;
        Ok(id)
    }

    /// Every changed path between two trees. Identical subtrees (same id) are skipped without
    /// being read, so the cost follows the size of the change, not of the repository.
    /// Renames are a deletion plus an addition; mode changes and submodule pointer moves count.
    pub fn diff(&self, base: &Tree<'_>, head: &Tree<'_>) -> Result<Vec<Change>> {
        let mut out = Vec::new();
        self.diff_rec(Some(base), Some(head), "", &mut out)?;
        out.sort();
        Ok(out)
    }

    fn diff_rec(
        &self,
        a: Option<&Tree<'_>>,
        b: Option<&Tree<'_>>,
        prefix: &str,
        out: &mut Vec<Change>,
    ) -> Result<()> {
        if let (Some(a), Some(b)) = (a, b)
            && a.id() == b.id()
        {
            return Ok(());
        }
        for name in entry_names(a, b) {
            let path = format!("{prefix}{}", String::from_utf8_lossy(&name));
            let ea = a.and_then(|t| t.get_name_bytes(&name));
            let eb = b.and_then(|t| t.get_name_bytes(&name));
            match (ea, eb) {
                (Some(x), Some(y)) => self.diff_both(path, &x, &y, out)?,
                (Some(x), None) if is_tree(&x) => {
                    self.diff_rec(Some(&self.subtree(&x)?), None, &format!("{path}/"), out)?;
                }
                (Some(_), None) => out.push(Change {
                    path,
                    kind: ChangeKind::Deleted,
                }),
                (None, Some(y)) if is_tree(&y) => {
                    self.diff_rec(None, Some(&self.subtree(&y)?), &format!("{path}/"), out)?;
                }
                (None, Some(_)) => out.push(Change {
                    path,
                    kind: ChangeKind::Added,
                }),
                (None, None) => {}
            }
        }
        Ok(())
    }

    /// `path` is in both trees: `x` at base, `y` at head.
    fn diff_both(
        &self,
        path: String,
        x: &git2::TreeEntry<'_>,
        y: &git2::TreeEntry<'_>,
        out: &mut Vec<Change>,
    ) -> Result<()> {
        if x.id() == y.id() && x.filemode() == y.filemode() {
            return Ok(());
        }
        match (is_tree(x), is_tree(y)) {
            (true, true) => {
                let (tx, ty) = (self.subtree(x)?, self.subtree(y)?);
                self.diff_rec(Some(&tx), Some(&ty), &format!("{path}/"), out)?;
            }
            (true, false) => {
                self.diff_rec(Some(&self.subtree(x)?), None, &format!("{path}/"), out)?;
                out.push(Change {
                    path,
                    kind: ChangeKind::Added,
                });
            }
            (false, true) => {
                out.push(Change {
                    path: path.clone(),
                    kind: ChangeKind::Deleted,
                });
                self.diff_rec(None, Some(&self.subtree(y)?), &format!("{path}/"), out)?;
            }
            (false, false) => {
                let kind = if x.id() == y.id() {
                    ChangeKind::ModeChanged
                } else {
                    ChangeKind::Modified
                };
                out.push(Change { path, kind });
            }
        }
        Ok(())
    }

    fn subtree(&self, e: &git2::TreeEntry<'_>) -> Result<Tree<'_>> {
        self.repo.find_tree(e.id()).map_err(|err| self.git_err(err))
    }
}

fn is_tree(e: &git2::TreeEntry<'_>) -> bool {
    e.kind() == Some(ObjectType::Tree)
}

/// The entry names of both trees, sorted, each once.
fn entry_names(a: Option<&Tree<'_>>, b: Option<&Tree<'_>>) -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = [a, b]
        .into_iter()
        .flatten()
        .flat_map(|t| t.iter().map(|e| e.name_bytes().to_vec()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The index entry of a committed file (times zero: git refreshes them on the next status).
fn index_entry(path: &str, size: usize, id: git2::Oid, mode: i32) -> git2::IndexEntry {
    git2::IndexEntry {
        ctime: git2::IndexTime::new(0, 0),
        mtime: git2::IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode: u32::try_from(mode).unwrap_or(0o100644),
        uid: 0,
        gid: 0,
        file_size: u32::try_from(size).unwrap_or(u32::MAX),
        id,
        flags: u16::try_from(path.len().min(0xfff)).unwrap_or(0xfff),
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    }
}
