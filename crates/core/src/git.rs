//! Git helpers shared by the crates that write commits (`ferry-detect`'s bump, `ferry-deploy`'s
//! write-back); behind the `git` feature so the crates that never touch git do not link libgit2.

use std::collections::BTreeMap;

use git2::{Oid, Repository, Tree};

/// A tree equal to `base` with `files` (repository-relative `a/b/c` path → content) replaced or
/// added; every other path and every file mode stay as in `base`. Returns the new tree's id.
pub fn tree_with_files(
    repo: &Repository,
    base: Option<&Tree<'_>>,
    files: &[(String, Vec<u8>)],
) -> Result<Oid, git2::Error> {
    let mut blobs = BTreeMap::new();
    for (path, content) in files {
        let id = repo.blob(content)?;
        blobs.insert(path.split('/').map(str::to_string).collect::<Vec<_>>(), id);
    }
    write_tree(repo, base, &blobs)
}

fn write_tree(
    repo: &Repository,
    base: Option<&Tree<'_>>,
    files: &BTreeMap<Vec<String>, Oid>,
) -> Result<Oid, git2::Error> {
    let mut builder = repo.treebuilder(base)?;
    let mut dirs: BTreeMap<String, BTreeMap<Vec<String>, Oid>> = BTreeMap::new();
    for (path, blob) in files {
        match path.as_slice() {
            [name] => {
                let mode = base
                    .and_then(|t| t.get_name(name))
                    .map_or(0o100644, |e| e.filemode());
                builder.insert(name, *blob, mode)?;
            }
            [dir, rest @ ..] => {
                dirs.entry(dir.clone())
                    .or_default()
                    .insert(rest.to_vec(), *blob);
            }
            [] => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_given_files_change_and_modes_stay() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let start = [
            ("a.txt".to_string(), b"a".to_vec()),
            ("d/e/f.txt".to_string(), b"f".to_vec()),
            ("d/keep.txt".to_string(), b"k".to_vec()),
        ];
        let base_id = tree_with_files(&repo, None, &start).unwrap();
        let base = repo.find_tree(base_id).unwrap();
        let changed = [("d/e/f.txt".to_string(), b"F".to_vec())];
        let id = tree_with_files(&repo, Some(&base), &changed).unwrap();
        let tree = repo.find_tree(id).unwrap();
        let read = |p: &str| {
            let e = tree.get_path(std::path::Path::new(p)).unwrap();
            repo.find_blob(e.id()).unwrap().content().to_vec()
        };
        assert_eq!(read("d/e/f.txt"), b"F");
        assert_eq!(read("d/keep.txt"), b"k");
        assert_eq!(read("a.txt"), b"a");
        let same = tree_with_files(&repo, Some(&base), &[]).unwrap();
        assert_eq!(same, base_id, "no files, same tree");
    }
}
