//! Which images must be rebuilt between two commits, and why.

use std::collections::{BTreeMap, BTreeSet};

use git2::Oid;

use crate::error::Result;
use crate::git::{Change, Repo};
use crate::ignore::IgnoreRules;
use crate::images::{self, CONFIG_FILE, Image};
use crate::project::{ImageModel, Project};
use crate::revision::Selection;
use crate::snapshot::Snapshot;

/// How a changed context file counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContextMode {
    /// Only files a COPY/ADD/bind mount of a reachable stage reads (and not ignored).
    #[default]
    Precise,
    /// Any file of the context that is not ignored.
    Full,
}

/// Options of [`changed`].
#[derive(Debug, Clone)]
pub struct ChangedOptions {
    /// Precise or full context mode.
    pub mode: ContextMode,
    /// Largest wave (GitHub's matrix limit is 256).
    pub max_parallel: usize,
    /// At most this many changed-path reasons per image (the rest is counted).
    pub max_reasons: usize,
}

impl Default for ChangedOptions {
    fn default() -> Self {
        ChangedOptions {
            mode: ContextMode::Precise,
            max_parallel: 256,
            max_reasons: 20,
        }
    }
}

/// One image to rebuild.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChangedImage {
    /// Image name.
    pub name: String,
    /// Repository-relative Dockerfile.
    pub dockerfile: String,
    /// Repository-relative context.
    pub context: String,
    /// Registry repository, if configured.
    pub repository: Option<String>,
    /// Target stage, if configured.
    pub target: Option<String>,
    /// Platforms, if configured.
    pub platforms: Vec<String>,
    /// Why it is rebuilt.
    pub reasons: Vec<String>,
    /// In-repo images it builds on that are rebuilt too (what CI must wait for).
    #[serde(skip)]
    pub rebuilt_bases: Vec<String>,
}

/// The answer of [`changed`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChangedReport {
    /// Base commit (null when unknown).
    pub base: Option<String>,
    /// Head commit.
    pub head: String,
    /// Whether everything is rebuilt.
    pub rebuild_all: bool,
    /// Why everything is rebuilt, or a summary of what the comparison found.
    pub reason: String,
    /// Images to rebuild, in wave order.
    pub images: Vec<ChangedImage>,
    /// Names in build order.
    pub waves: Vec<Vec<String>>,
    /// Paths that changed between base and head.
    #[serde(skip)]
    pub changed_paths: usize,
}

/// Decide what to rebuild for `selection`.
pub fn changed(
    repo: &Repo,
    selection: &Selection,
    options: &ChangedOptions,
) -> Result<ChangedReport> {
    let head = Project::load(repo, selection.head)?;
    let mut own: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut changed_paths = 0;
    let (rebuild_all, reason_all) = match (&selection.rebuild_all, selection.base) {
        (Some(why), _) => (true, why.clone()),
        (None, None) => (true, "no base revision: rebuilding everything".to_string()),
        (None, Some(_)) => (false, String::new()),
    };
    if rebuild_all {
        for img in &head.images {
            own.insert(img.name.clone(), vec![format!("rebuild all: {reason_all}")]);
        }
    } else if let Some(base) = selection.base {
        let base_snap = Snapshot::new(repo, base)?;
        let head_tree = repo.tree(selection.head)?;
        let changes = repo.diff(base_snap.tree(), &head_tree)?;
        changed_paths = changes.len();
        let base_images: Option<BTreeMap<String, Image>> =
            if changes.iter().any(|c| c.path == CONFIG_FILE) {
                Some(
                    images::discover(&base_snap)
                        .map(|v| v.into_iter().map(|i| (i.name.clone(), i)).collect())
                        .unwrap_or_default(),
                )
            } else {
                None
            };
        for img in &head.images {
            let model = head.model(&img.name).expect("model for every image");
            let reasons = own_reasons(
                &base_snap,
                img,
                model,
                &changes,
                base_images.as_ref(),
                options,
            )?;
            if !reasons.is_empty() {
                own.insert(img.name.clone(), reasons);
            }
        }
    }
    // Everything built on a rebuilt in-repo image rebuilds too.
    let all: BTreeSet<String> = head.images.iter().map(|i| i.name.clone()).collect();
    let order: Vec<String> = head
        .waves(&all, usize::MAX)?
        .into_iter()
        .flatten()
        .collect();
    let mut reasons: BTreeMap<String, Vec<String>> = own;
    for name in &order {
        for dep in head.depends_on(name) {
            if reasons.contains_key(dep) {
                let repo_name = head.image(dep)?.repository.clone().unwrap_or_default();
                reasons
                    .entry(name.clone())
                    .or_default()
                    .push(format!("base image rebuilds: {dep} ({repo_name})"));
            }
        }
    }
    let selected: BTreeSet<String> = reasons.keys().cloned().collect();
    let waves = head.waves(&selected, options.max_parallel)?;
    let images: Vec<ChangedImage> = waves
        .iter()
        .flatten()
        .map(|n| {
            let i = head.image(n).expect("selected images exist");
            ChangedImage {
                name: i.name.clone(),
                dockerfile: i.dockerfile.clone(),
                context: i.context.clone(),
                repository: i.repository.clone(),
                target: i.target.clone(),
                platforms: i.platforms.clone(),
                reasons: reasons.remove(n).unwrap_or_default(),
                rebuilt_bases: head
                    .depends_on(n)
                    .iter()
                    .filter(|d| selected.contains(*d))
                    .cloned()
                    .collect(),
            }
        })
        .collect();
    let short = |o: Oid| o.to_string()[..12].to_string();
    let reason = if rebuild_all {
        reason_all
    } else {
        let b = selection.base.map(short).unwrap_or_default();
        let h = short(selection.head);
        if images.is_empty() {
            format!(
                "{changed_paths} path(s) changed between {b} and {h} ({}); none is an input of any of the {} image(s)",
                selection.how,
                head.images.len()
            )
        } else {
            format!(
                "{} of {} image(s) to rebuild: {changed_paths} path(s) changed between {b} and {h} ({})",
                images.len(),
                head.images.len(),
                selection.how
            )
        }
    };
    Ok(ChangedReport {
        base: selection.base.map(|b| b.to_string()),
        head: selection.head.to_string(),
        rebuild_all,
        reason,
        images,
        waves,
        changed_paths,
    })
}

fn own_reasons(
    base: &Snapshot<'_>,
    img: &Image,
    head_model: &ImageModel,
    changes: &[Change],
    base_images: Option<&BTreeMap<String, Image>>,
    options: &ChangedOptions,
) -> Result<Vec<String>> {
    let mut reasons = Vec::new();
    // `changes` is sorted by path and a path appears once.
    let is_changed = |p: &str| changes.binary_search_by(|c| c.path.as_str().cmp(p)).is_ok();
    if is_changed(&img.dockerfile) {
        reasons.push(format!("Dockerfile changed: {}", img.dockerfile));
    }
    for cand in img.ignore_candidates() {
        if is_changed(&cand) {
            reasons.push(format!("ignore file changed: {cand}"));
        }
    }
    if let Some(base_images) = base_images {
        match base_images.get(&img.name) {
            Some(old) if old == img => {}
            Some(_) => reasons.push(format!("configuration changed in {CONFIG_FILE}")),
            None => reasons.push("new image (not at the base revision)".to_string()),
        }
    }
    if !img.extra_inputs.is_empty() {
        let rules = IgnoreRules::from_patterns(&img.extra_inputs).map_err(|e| {
            crate::error::Error::Config {
                file: CONFIG_FILE.into(),
                message: format!("[images.{:?}] extra_inputs: {e}", img.name),
            }
        })?;
        for c in changes.iter().filter(|c| rules.is_excluded(&c.path)) {
            reasons.push(format!("extra input changed: {}", c.path));
        }
    }
    let prefix = img.context_prefix();
    let candidates = img.ignore_candidates();
    let own_files: BTreeSet<&str> = std::iter::once(img.dockerfile.as_str())
        .chain(candidates.iter().map(String::as_str))
        .collect();
    let in_context: Vec<&Change> = changes
        .iter()
        .filter(|c| c.path.starts_with(&prefix) && !own_files.contains(c.path.as_str()))
        .collect();
    if !in_context.is_empty() {
        // Evaluate rules and sources at head and at base: a file newly ignored, or read only by
        // the old Dockerfile, changed what the old build saw.
        // Unchanged Dockerfile and ignore files give the same model at base as at head.
        let rules_changed = !reasons.is_empty();
        let base_model = if rules_changed {
            match ImageModel::load(base, img) {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::warn!(image = %img.name, error = %e, "cannot read the image's Dockerfile or ignore file at the base revision; judging inputs by the head revision only");
                    None
                }
            }
        } else {
            None
        };
        let mut hits = 0usize;
        for c in in_context {
            let rel = &c.path[prefix.len()..];
            let counts = |m: &ImageModel| match options.mode {
                ContextMode::Precise => m.is_input(rel),
                ContextMode::Full => !m.ignore.is_excluded(rel),
            };
            if counts(head_model) || base_model.as_ref().is_some_and(counts) {
                hits += 1;
                if hits <= options.max_reasons {
                    let kind = match c.kind {
                        crate::git::ChangeKind::Added => "added",
                        crate::git::ChangeKind::Deleted => "deleted",
                        crate::git::ChangeKind::Modified => "modified",
                        crate::git::ChangeKind::ModeChanged => "mode changed",
                    };
                    reasons.push(format!("input {kind}: {}", c.path));
                }
            }
        }
        if hits > options.max_reasons {
            reasons.push(format!(
                "… and {} more changed input(s)",
                hits - options.max_reasons
            ));
        }
    }
    Ok(reasons)
}
