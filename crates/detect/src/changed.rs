//! Which images must be rebuilt between two commits, and why.

use std::collections::{BTreeMap, BTreeSet};

use git2::Oid;

use crate::decide::{ImageInputs, Verdict};
use crate::error::Result;
use crate::git::{Change, Repo};
use crate::images::{self, CONFIG_FILE, Image};
use crate::project::{ImageModel, Project, Warning};
use crate::revision::{RebuildAll, Selection};
use crate::snapshot::Snapshot;

pub use crate::decide::ContextMode;
pub use reason::{RebuildReason, Summary};

mod reason;

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
    /// Why it is rebuilt (each serialized as its text).
    pub reasons: Vec<RebuildReason>,
    /// `--build-arg` values from `ferry.toml` (`{}` when none).
    pub build_args: BTreeMap<String, String>,
    /// Tags of its repository that in-repo images use ([`Project::tags`]): push them too.
    pub tags: Vec<String>,
    /// The commit this image was compared from (with `--base published`: its published
    /// revision); null when there is none.
    pub base: Option<String>,
    /// In-repo images it builds on that are rebuilt too (what CI must wait for).
    #[serde(skip)]
    pub rebuilt_bases: Vec<String>,
}

/// The answer of [`changed`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChangedReport {
    /// Base commit (null when unknown; `published` when each image has its own).
    pub base: Option<String>,
    /// Head commit.
    pub head: String,
    /// Whether everything is rebuilt.
    pub rebuild_all: bool,
    /// Why everything is rebuilt, or a summary of what the comparison found (serialized as
    /// its text).
    pub reason: Summary,
    /// Images to rebuild, in wave order.
    pub images: Vec<ChangedImage>,
    /// Names in build order.
    pub waves: Vec<Vec<String>>,
    /// Paths that changed between base and head.
    #[serde(skip)]
    pub changed_paths: usize,
    /// Files found by their name that are not Dockerfiles (left out).
    pub warnings: Vec<Warning>,
}

/// The top-level `base` of a report made by [`changed_published`].
pub const PUBLISHED: &str = "published";

/// What the registry says about an image's published tag (`--base published`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// The tag is not in the registry.
    NotPublished,
    /// The tag exists but carries no `org.opencontainers.image.revision`.
    NoRevision,
    /// The revision the tag was built from.
    Revision(String),
    /// The registry could not be asked: the registry client's error.
    Failed(QueryFailure),
}

/// Why the registry could not be asked about a tag: the registry client's error (this crate
/// does not know the client), shared so that [`Published`] stays `Clone`, compared by its text
/// (`QueryFailure::from(e)`, `.get()`).
pub type QueryFailure = ferry_core::Shared<dyn std::error::Error + Send + Sync>;

/// Decide what to rebuild for `selection`.
pub fn changed(
    repo: &Repo,
    selection: &Selection,
    options: &ChangedOptions,
) -> Result<ChangedReport> {
    let head = Project::load(repo, selection.head)?;
    let mut own: BTreeMap<String, Vec<RebuildReason>> = BTreeMap::new();
    let mut changed_paths = 0;
    let compared = match (&selection.rebuild_all, selection.base) {
        (Some(why), _) => Err(why.clone()),
        (None, None) => Err(RebuildAll::NoBase),
        (None, Some(base)) => Ok(base),
    };
    match &compared {
        Err(why) => {
            for img in &head.images {
                let reason = RebuildReason::RebuildAll(why.clone());
                own.insert(img.name.clone(), vec![reason]);
            }
        }
        Ok(base) => {
            let all: Vec<&Image> = head.images.iter().collect();
            let cmp = compare(repo, &head, *base, &all, options)?;
            changed_paths = cmp.changed_paths;
            own = cmp.reasons;
        }
    }
    let base_of: BTreeMap<String, Option<Oid>> = head
        .images
        .iter()
        .map(|i| (i.name.clone(), selection.base))
        .collect();
    let (images, waves) = assemble(&head, own, &base_of, options)?;
    let (rebuild_all, reason) = match compared {
        Err(why) => (true, Summary::RebuildAll(why)),
        Ok(base) => (
            false,
            Summary::Compared {
                rebuilt: images.len(),
                images: head.images.len(),
                changed_paths,
                base,
                head: selection.head,
                how: selection.how.clone(),
            },
        ),
    };
    Ok(ChangedReport {
        base: selection.base.map(|b| b.to_string()),
        head: selection.head.to_string(),
        rebuild_all,
        reason,
        images,
        waves,
        changed_paths,
        warnings: head.warnings.clone(),
    })
}

/// `--base published`: each image compared from the revision its published tag was built from
/// (`published`, keyed by image name, as the registry answered). An image rebuilds when it has
/// no repository (`no repository to compare with`), its tag is not in the registry (`not
/// published`), carries no revision (`no revision label`), names a revision this repository does
/// not hold (`published revision <sha> not found`), or something it reads changed since.
/// Images sharing a published revision share one diff.
pub fn changed_published(
    repo: &Repo,
    head: &Project<'_>,
    published: &BTreeMap<String, Published>,
    options: &ChangedOptions,
) -> Result<ChangedReport> {
    let mut own: BTreeMap<String, Vec<RebuildReason>> = BTreeMap::new();
    let mut base_of: BTreeMap<String, Option<Oid>> = BTreeMap::new();
    let mut groups: BTreeMap<Oid, Vec<&Image>> = BTreeMap::new();
    for img in &head.images {
        let why = match (&img.repository, published.get(&img.name)) {
            (None, _) => RebuildReason::NoRepository,
            (Some(_), None) => RebuildReason::RegistryNotAsked,
            (Some(_), Some(Published::NotPublished)) => RebuildReason::NotPublished,
            (Some(_), Some(Published::NoRevision)) => RebuildReason::NoRevisionLabel,
            (Some(_), Some(Published::Failed(e))) => RebuildReason::QueryFailed(e.clone()),
            (Some(_), Some(Published::Revision(rev))) => match published_commit(repo, rev)? {
                Some(oid) => {
                    base_of.insert(img.name.clone(), Some(oid));
                    groups.entry(oid).or_default().push(img);
                    continue;
                }
                None => RebuildReason::PublishedRevisionNotFound {
                    revision: rev.clone(),
                },
            },
        };
        base_of.insert(img.name.clone(), None);
        own.insert(img.name.clone(), vec![why]);
    }
    for (oid, imgs) in &groups {
        own.extend(compare(repo, head, *oid, imgs, options)?.reasons);
    }
    let (images, waves) = assemble(head, own, &base_of, options)?;
    Ok(ChangedReport {
        base: Some(PUBLISHED.to_string()),
        head: head.commit().to_string(),
        rebuild_all: false,
        reason: Summary::Published {
            rebuilt: images.len(),
            images: head.images.len(),
            revisions: groups.len(),
            without_revision: base_of.values().filter(|b| b.is_none()).count(),
        },
        images,
        waves,
        changed_paths: 0,
        warnings: head.warnings.clone(),
    })
}

/// A published revision as a commit of this repository: only a commit id (full or abbreviated
/// hex) whose commit object is present counts — never a branch name a label happens to hold.
fn published_commit(repo: &Repo, rev: &str) -> Result<Option<Oid>> {
    let hex = rev.len() >= 7 && rev.len() <= 64 && rev.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex {
        return Ok(None);
    }
    Ok(repo.commit_id(rev)?.filter(|id| repo.has_commit(*id)))
}

/// Own reasons of `images` between `base` and the head project, and how many paths changed.
struct Comparison {
    changed_paths: usize,
    reasons: BTreeMap<String, Vec<RebuildReason>>,
}

fn compare(
    repo: &Repo,
    head: &Project<'_>,
    base: Oid,
    images: &[&Image],
    options: &ChangedOptions,
) -> Result<Comparison> {
    let base_snap = Snapshot::new(repo, base)?;
    let head_tree = repo.tree(head.commit())?;
    let changes = repo.diff(base_snap.tree(), &head_tree)?;
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
    let mut reasons = BTreeMap::new();
    for img in images {
        let model = head.model(&img.name)?;
        let r = own_reasons(
            &base_snap,
            img,
            model,
            &changes,
            base_images.as_ref(),
            options,
        )?;
        if !r.is_empty() {
            reasons.insert(img.name.clone(), r);
        }
    }
    Ok(Comparison {
        changed_paths: changes.len(),
        reasons,
    })
}

/// Add the images built on rebuilt in-repo images, order everything in waves and describe
/// each image to rebuild.
fn assemble(
    head: &Project<'_>,
    own: BTreeMap<String, Vec<RebuildReason>>,
    base_of: &BTreeMap<String, Option<Oid>>,
    options: &ChangedOptions,
) -> Result<(Vec<ChangedImage>, Vec<Vec<String>>)> {
    // Everything built on a rebuilt in-repo image rebuilds too.
    let all: BTreeSet<String> = head.images.iter().map(|i| i.name.clone()).collect();
    let order: Vec<String> = head
        .waves(&all, usize::MAX)?
        .into_iter()
        .flatten()
        .collect();
    let mut reasons: BTreeMap<String, Vec<RebuildReason>> = own;
    for name in &order {
        for dep in head.depends_on(name) {
            if reasons.contains_key(dep) {
                let repository = head.image(dep)?.repository.clone();
                reasons
                    .entry(name.clone())
                    .or_default()
                    .push(RebuildReason::BaseRebuilds {
                        image: dep.clone(),
                        repository,
                    });
            }
        }
    }
    let selected: BTreeSet<String> = reasons.keys().cloned().collect();
    let waves = head.waves(&selected, options.max_parallel)?;
    let mut images = Vec::with_capacity(selected.len());
    for n in waves.iter().flatten() {
        let i = head.image(n)?;
        images.push(ChangedImage {
            name: i.name.clone(),
            dockerfile: i.dockerfile.clone(),
            context: i.context.clone(),
            repository: i.repository.clone(),
            target: i.target.clone(),
            platforms: i.platforms.clone(),
            reasons: reasons.remove(n).unwrap_or_default(),
            build_args: i.build_args.clone(),
            tags: head.tags(n).to_vec(),
            base: base_of.get(n).copied().flatten().map(|o| o.to_string()),
            rebuilt_bases: head
                .depends_on(n)
                .iter()
                .filter(|d| selected.contains(*d))
                .cloned()
                .collect(),
        });
    }
    Ok((images, waves))
}

/// Why `img` itself (its in-repo bases aside) rebuilds for `changes`: each changed path is
/// judged by [`ImageInputs::verdict`], the computation `why` explains.
fn own_reasons(
    base: &Snapshot<'_>,
    img: &Image,
    head_model: &ImageModel,
    changes: &[Change],
    base_images: Option<&BTreeMap<String, Image>>,
    options: &ChangedOptions,
) -> Result<Vec<RebuildReason>> {
    let inputs = ImageInputs::new(img, head_model);
    let mut dockerfile = Vec::new();
    let mut ignore_files = BTreeSet::new();
    let mut extra = Vec::new();
    // Context changes, and whether they count at head.
    let mut context: Vec<(&Change, bool)> = Vec::new();
    for c in changes {
        match inputs.verdict(&c.path, options.mode) {
            Verdict::Dockerfile => dockerfile.push(RebuildReason::Dockerfile {
                path: c.path.clone(),
            }),
            Verdict::IgnoreFile => {
                ignore_files.insert(c.path.as_str());
            }
            Verdict::ExtraInput(_) => extra.push(RebuildReason::ExtraInput {
                path: c.path.clone(),
            }),
            Verdict::Context(v) => context.push((c, v.counts(options.mode))),
            Verdict::OutsideContext => {}
        }
    }
    let mut reasons = dockerfile;
    for cand in inputs.ignore_candidates() {
        if ignore_files.contains(cand.as_str()) {
            reasons.push(RebuildReason::IgnoreFile { path: cand.clone() });
        }
    }
    if let Some(base_images) = base_images {
        match base_images.get(&img.name) {
            Some(old) if old == img => {}
            Some(_) => reasons.push(RebuildReason::Configuration),
            None => reasons.push(RebuildReason::NewImage),
        }
    }
    reasons.extend(extra);
    if !context.is_empty() {
        // A definition that changed may have read other files at base: a file newly ignored, or
        // read only by the old Dockerfile, changed what the old build saw. Unchanged Dockerfile
        // and ignore files give the same model at base as at head.
        let base_model = if reasons.is_empty() {
            None
        } else {
            base_model(base, img)
        };
        reasons.extend(input_reasons(
            &inputs,
            base_model.as_ref(),
            &context,
            options,
        ));
    }
    Ok(reasons)
}

/// The image's model at the base revision, or `None` (with a warning) when it cannot be read.
fn base_model(base: &Snapshot<'_>, img: &Image) -> Option<ImageModel> {
    match ImageModel::load(base, img) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!(image = %img.name, error = %e, "cannot read the image's Dockerfile or ignore file at the base revision; judging inputs by the head revision only");
            None
        }
    }
}

/// One reason per changed build input (at most `options.max_reasons`, then a count): a context
/// change counts when it counts at head, or in the base model.
fn input_reasons(
    inputs: &ImageInputs<'_>,
    base_model: Option<&ImageModel>,
    context: &[(&Change, bool)],
    options: &ChangedOptions,
) -> Vec<RebuildReason> {
    let mut reasons = Vec::new();
    let mut hits = 0usize;
    for (c, at_head) in context {
        let counts = *at_head
            || base_model.is_some_and(|m| {
                inputs
                    .context_relative(&c.path)
                    .is_some_and(|rel| m.context_verdict(rel).counts(options.mode))
            });
        if counts {
            hits += 1;
            if hits <= options.max_reasons {
                reasons.push(RebuildReason::Input {
                    kind: c.kind,
                    path: c.path.clone(),
                });
            }
        }
    }
    if hits > options.max_reasons {
        reasons.push(RebuildReason::MoreInputs {
            count: hits - options.max_reasons,
        });
    }
    reasons
}
