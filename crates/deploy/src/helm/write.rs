//! Writing a Helm values file: edit the image mapping in place, commit and push (the same
//! commit-and-push loop as manifests, [`crate::gitops`]).

use std::collections::BTreeMap;

use git2::{Repository, Tree};

use crate::gitops::{
    GitError, GitTarget, Unplaced, WriteBack, WriteBackConfig, commit_and_push, commit_message,
    norm, read,
};
use crate::lease::Fence;
use crate::policy::Image;

/// One image change written to a Helm values file (see [`crate::helm::values_file`]; the edit is planned by [`plan_helm_edits`]).
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
    /// The image as running now (parsed when the workload was read).
    pub old_image: Image,
    /// The new image (`repository:tag@digest`), the decision's target.
    pub new_image: Image,
}

/// The edited values files for `changes` on `tree` (path → new text), and the changes that could
/// not be placed (file missing, key missing, layout ferry does not edit, image without tag or
/// digest), each naming the file and the key.
pub fn plan_helm_edits(
    repo: &Repository,
    tree: &Tree<'_>,
    changes: &[HelmChange],
) -> (BTreeMap<String, String>, Vec<Unplaced>) {
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let mut problems = Vec::new();
    for c in changes {
        let file = norm(&c.file);
        let Some(text) = files
            .get(&file)
            .cloned()
            .or_else(|| read(repo, tree, &file))
        else {
            problems.push(Unplaced::NoValuesFile {
                workload: c.workload.clone(),
                file,
            });
            continue;
        };
        let edited = c
            .new_image
            .parsed()
            .and_then(|r| super::set_helm_target(&file, &text, &c.key, r));
        let Some(edited) = edited else {
            problems.push(Unplaced::NotPinned {
                workload: c.workload.clone(),
                image: c.new_image.clone(),
            });
            continue;
        };
        match edited {
            Ok(new) if new != text => {
                files.insert(file, new);
            }
            Ok(_) => {}
            Err(e) => problems.push(Unplaced::Edit {
                at: c.workload.clone(),
                error: std::sync::Arc::new(e),
            }),
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
/// let values = helm::values_file(spec, Some("sensor.image"))
///     .map_err(|refusal| refusal.to_string())?
///     .expect("a Helm application");
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
