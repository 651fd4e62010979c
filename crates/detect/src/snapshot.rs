//! A repository tree at one commit, with the files ferry reads indexed by one walk.

use std::cell::RefCell;
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
/// built by a single walk so that a thousand images do not cost a thousand path lookups.
pub struct Snapshot<'r> {
    repo: &'r Repo,
    tree: Tree<'r>,
    files: BTreeMap<String, Oid>,
    // Monorepos repeat base references and ignore files: parse each distinct one once.
    references: RefCell<HashMap<String, Option<Reference>>>,
    ignores: RefCell<HashMap<Oid, Result<IgnoreRules, PatternError>>>,
}

impl std::fmt::Debug for Snapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("tree", &self.tree.id())
            .field("indexed", &self.files.len())
            .finish()
    }
}

impl FileSource for Snapshot<'_> {
    fn dockerfiles(&self) -> Vec<String> {
        self.files
            .keys()
            .filter(|p| is_dockerfile_name(p.rsplit('/').next().unwrap_or(p)))
            .cloned()
            .collect()
    }

    fn exists(&self, path: &str) -> bool {
        self.files.contains_key(path) || self.repo.entry_id(&self.tree, path).is_some()
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        Snapshot::read(self, path)
    }
}

impl<'r> Snapshot<'r> {
    /// Index the tree of `commit`.
    pub fn new(repo: &'r Repo, commit: Oid) -> Result<Self> {
        let tree = repo.tree(commit)?;
        let files = repo.find_files(&tree, &indexed)?.into_iter().collect();
        Ok(Snapshot {
            repo,
            tree,
            files,
            references: RefCell::default(),
            ignores: RefCell::default(),
        })
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
        if let Some(id) = self.files.get(path) {
            return self.repo.read_blob(*id).map(Some);
        }
        if indexed(path.rsplit('/').next().unwrap_or(path)) {
            // Every file of this kind is in the index: it does not exist.
            return Ok(None);
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
        let id = match self.files.get(path) {
            Some(id) => *id,
            None => return Ok(None),
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
