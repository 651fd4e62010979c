//! A repository tree at one commit, with the files ferry reads indexed by one walk.

use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, HashMap};

use ferry_core::Reference;
use git2::{Oid, Tree};

use crate::error::Result;
use crate::git::Repo;
use crate::ignore::{IgnoreRules, PatternError};
use crate::images::{FileSource, is_dockerfile_name};

/// Whether ferry indexes a file of this name: Dockerfiles and ignore files.
fn indexed(name: &str) -> bool {
    is_dockerfile_name(name) || name.ends_with(".dockerignore")
}

/// One commit's tree plus an index of every Dockerfile and ignore file in it (path → blob id),
/// built by a single walk so that a thousand images do not cost a thousand path lookups. The
/// walk reads every tree of the commit, so it happens only when something needs it (the list of
/// Dockerfiles): until then each file is looked up by its path, which reads only the trees on
/// that path — a base revision whose few changed images are read file by file never walks.
pub struct Snapshot<'r> {
    repo: &'r Repo,
    tree: Tree<'r>,
    files: OnceCell<BTreeMap<String, Oid>>,
    // Monorepos repeat base references and ignore files: parse each distinct one once.
    references: RefCell<HashMap<String, Option<Reference>>>,
    ignores: RefCell<HashMap<Oid, Result<IgnoreRules, PatternError>>>,
}

impl std::fmt::Debug for Snapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("tree", &self.tree.id())
            .field("indexed", &self.files.get().map(BTreeMap::len))
            .finish()
    }
}

impl FileSource for Snapshot<'_> {
    fn dockerfiles(&self) -> Result<Vec<String>> {
        Ok(self
            .index()?
            .keys()
            .filter(|p| is_dockerfile_name(p.rsplit('/').next().unwrap_or(p)))
            .cloned()
            .collect())
    }

    fn exists(&self, path: &str) -> bool {
        self.files.get().is_some_and(|f| f.contains_key(path))
            || self.repo.entry_id(&self.tree, path).is_some()
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        Snapshot::read(self, path)
    }
}

impl<'r> Snapshot<'r> {
    /// The tree of `commit`, indexed when first needed.
    pub fn new(repo: &'r Repo, commit: Oid) -> Result<Self> {
        Ok(Snapshot {
            repo,
            tree: repo.tree(commit)?,
            files: OnceCell::new(),
            references: RefCell::default(),
            ignores: RefCell::default(),
        })
    }

    /// The index of every Dockerfile and ignore file (one walk of the whole tree, the first
    /// time).
    fn index(&self) -> Result<&BTreeMap<String, Oid>> {
        if let Some(f) = self.files.get() {
            return Ok(f);
        }
        let files = self.repo.find_files(&self.tree, &indexed)?;
        Ok(self.files.get_or_init(|| files.into_iter().collect()))
    }

    /// The blob id of the Dockerfile or ignore file at `path` (`indexed` names only), from the
    /// index when it was built, else by the path.
    fn indexed_blob(&self, path: &str) -> Option<Oid> {
        match self.files.get() {
            Some(f) => f.get(path).copied(),
            None if indexed(path.rsplit('/').next().unwrap_or(path)) => {
                self.repo.blob_id(&self.tree, path)
            }
            None => None,
        }
    }

    /// The repository.
    pub fn repo(&self) -> &'r Repo {
        self.repo
    }

    /// The root tree.
    pub fn tree(&self) -> &Tree<'r> {
        &self.tree
    }

    /// The content of the file at `path`, or `None`.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        if indexed(path.rsplit('/').next().unwrap_or(path)) {
            return match self.indexed_blob(path) {
                Some(id) => self.repo.read_blob(id).map(Some),
                None => Ok(None),
            };
        }
        self.repo.read_file(&self.tree, path)
    }

    /// `text` parsed as an image reference (memoized), `None` when it is not one.
    pub fn reference(&self, text: &str) -> Option<Reference> {
        if let Some(r) = self.references.borrow().get(text) {
            return r.clone();
        }
        let r = Reference::parse(text).ok();
        self.references
            .borrow_mut()
            .insert(text.to_string(), r.clone());
        r
    }

    /// The ignore rules in the file at `path` (memoized by content), `Ok(None)` when there
    /// is no such file.
    pub fn ignore_rules(&self, path: &str) -> Result<Option<Result<IgnoreRules, PatternError>>> {
        let Some(id) = self.indexed_blob(path) else {
            return Ok(None);
        };
        if let Some(r) = self.ignores.borrow().get(&id) {
            return Ok(Some(r.clone()));
        }
        let bytes = self.repo.read_blob(id)?;
        let rules = IgnoreRules::parse(&String::from_utf8_lossy(&bytes));
        self.ignores.borrow_mut().insert(id, rules.clone());
        Ok(Some(rules))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository with one commit of `files`; returns it with the commit.
    fn repo_with(files: &[(&str, &str)]) -> (tempfile::TempDir, Repo, Oid) {
        let dir = tempfile::tempdir().unwrap();
        let r = git2::Repository::init(dir.path()).unwrap();
        let files: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect();
        let tree = ferry_core::git::tree_with_files(&r, None, &files).unwrap();
        let tree = r.find_tree(tree).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        let commit = r
            .commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
            .unwrap();
        let repo = Repo::open(dir.path()).unwrap();
        (dir, repo, commit)
    }

    #[test]
    fn reads_by_path_before_the_walk_agree_with_reads_from_the_index() {
        let (_dir, repo, commit) = repo_with(&[
            ("svc/a/Dockerfile", "FROM scratch\n"),
            ("svc/a/.dockerignore", "*.md\n!README.md\n"),
            ("svc/a/Dockerfile.dockerignore", "tmp\n"),
            ("svc/a/src/main.py", "print(1)\n"),
            (
                "svc/b/Dockerfile.dockerignore/x",
                "a directory named like an ignore file\n",
            ),
            ("Containerfile", "FROM scratch\n"),
        ]);
        let paths = [
            "svc/a/Dockerfile",
            "svc/a/.dockerignore",
            "svc/a/Dockerfile.dockerignore",
            "svc/a/src/main.py",
            "svc/a/src",
            "svc/b/Dockerfile.dockerignore",
            "svc/b/Dockerfile",
            "svc/c/.dockerignore",
            "Containerfile",
            "nothing",
        ];
        let ask = |s: &Snapshot<'_>| -> Vec<_> {
            paths
                .iter()
                .map(|p| {
                    let rules = s.ignore_rules(p).unwrap().map(|r| r.is_ok());
                    (s.read(p).unwrap(), s.exists(p), rules)
                })
                .collect()
        };
        let by_path = Snapshot::new(&repo, commit).unwrap();
        let before = ask(&by_path);
        assert!(by_path.files.get().is_none(), "read without walking");
        let indexed = Snapshot::new(&repo, commit).unwrap();
        assert_eq!(
            indexed.dockerfiles().unwrap(),
            ["Containerfile", "svc/a/Dockerfile"]
        );
        assert!(indexed.files.get().is_some());
        assert_eq!(ask(&indexed), before);
        assert_eq!(before[0].0.as_deref(), Some(&b"FROM scratch\n"[..]));
        assert_eq!(before[5], (None, true, None), "a directory is no file");
    }
}
