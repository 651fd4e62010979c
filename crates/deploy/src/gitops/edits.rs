//! Where a change lands: a kustomization's `images:` entry, else the workload's own manifest.

use super::*;

/// Compute the edited files for `changes` on `tree`: kustomize when the path holds a
/// `kustomization.yaml`/`.yml`, else the manifest that defines each workload.
pub fn plan_edits(
    repo: &Repository,
    tree: &Tree<'_>,
    target: &GitTarget,
    changes: &[ImageChange],
) -> (BTreeMap<String, String>, Vec<Unplaced>) {
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
    problems: &mut Vec<Unplaced>,
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
    problems: &'a mut Vec<Unplaced>,
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
            let Some(r) = c.new_image.parsed() else {
                self.problems.push(Unplaced::NotAReference {
                    workload: c.workload.clone(),
                    image: c.new_image.clone(),
                });
                continue;
            };
            // kustomize matches `name` against the image as written in the manifests.
            let written = c.old_image.spelled_name();
            let digest = r.digest().map(ToString::to_string);
            if let Err(e) =
                yamledit::set_kustomize_image(&mut text, &written, r.tag(), digest.as_deref())
            {
                self.problems.push(Unplaced::Edit {
                    at: k.to_string(),
                    error: std::sync::Arc::new(e),
                });
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
                self.problems.push(Unplaced::NoManifest {
                    workload: c.workload.clone(),
                    kind: c.kind.clone(),
                    name: c.name.clone(),
                    under: under.to_string(),
                });
            }
        }
    }

    /// Whether `f` defines the workload of `c` (edited, already right, or refused with a
    /// problem).
    fn place(&mut self, f: &str, c: &ImageChange) -> bool {
        let mut text = self.text(f);
        match yamledit::set_container_image(
            &mut text,
            &c.kind,
            &c.name,
            &c.container,
            c.new_image.as_str(),
        ) {
            Ok(Some(true)) => {
                self.files.insert(f.to_string(), text);
                true
            }
            Ok(Some(false)) => true,
            Ok(None) => false,
            Err(e) => {
                self.problems.push(Unplaced::Edit {
                    at: f.to_string(),
                    error: std::sync::Arc::new(e),
                });
                true
            }
        }
    }
}
