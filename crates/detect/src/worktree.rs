//! A work tree on disk as a [`FileSource`]: what `ferry-bump` edits.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::images::{FileSource, is_dockerfile_name};

/// The files of a directory tree (`.git` directories skipped), for image discovery and edits.
#[derive(Debug, Clone)]
pub struct WorkTree {
    root: PathBuf,
    dockerfiles: Vec<String>,
}

impl WorkTree {
    /// Scan `root` for Dockerfiles. In a git work tree, directories git ignores (`target/`,
    /// `node_modules/`…) are skipped, as ferry-detect would never see them either.
    pub fn scan(root: &Path) -> Result<Self> {
        let git = git2::Repository::open(root)
            .ok()
            .filter(|r| r.workdir().is_some());
        let mut dockerfiles = Vec::new();
        let mut todo = vec![PathBuf::new()];
        while let Some(rel) = todo.pop() {
            let dir = root.join(&rel);
            let entries = std::fs::read_dir(&dir).map_err(|e| io_err(&dir, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| io_err(&dir, e))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                let ty = entry.file_type().map_err(|e| io_err(&entry.path(), e))?;
                let child = rel.join(name);
                if ty.is_dir() {
                    let ignored = git
                        .as_ref()
                        .is_some_and(|g| g.is_path_ignored(&child).unwrap_or(false));
                    if name != ".git" && !ignored {
                        todo.push(child);
                    }
                } else if ty.is_file() && is_dockerfile_name(name) {
                    dockerfiles.push(child.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        dockerfiles.sort();
        Ok(WorkTree {
            root: root.to_path_buf(),
            dockerfiles,
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Replace the file at `path` atomically: a temporary file beside it, then a rename (the
    /// file's permissions are kept). Either the old or the new content is there, never half.
    pub fn write_atomic(&self, path: &str, content: &[u8]) -> Result<()> {
        let target = self.root.join(path);
        let dir = target.parent().unwrap_or(&self.root);
        let tmp = dir.join(format!(
            ".{}.ferry-{}",
            target
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("file"),
            std::process::id()
        ));
        let perms = std::fs::metadata(&target).map(|m| m.permissions()).ok();
        std::fs::write(&tmp, content).map_err(|e| io_err(&tmp, e))?;
        if let Some(p) = perms {
            let _ = std::fs::set_permissions(&tmp, p);
        }
        std::fs::rename(&tmp, &target).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io_err(&target, e)
        })
    }
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

impl FileSource for WorkTree {
    fn dockerfiles(&self) -> Result<Vec<String>> {
        Ok(self.dockerfiles.clone())
    }

    fn exists(&self, path: &str) -> bool {
        self.root.join(path).is_file()
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let p = self.root.join(path);
        match std::fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&p, e)),
        }
    }
}
