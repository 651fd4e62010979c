//! A repository at one commit: its images, their parsed Dockerfiles and ignore rules, and the
//! graph of in-repo base images.

use std::collections::{BTreeMap, BTreeSet};

use git2::Oid;

use crate::dockerfile::{Base, ContextRead, Dockerfile};
use crate::error::{Error, Result};
use crate::git::Repo;
use crate::ignore::IgnoreRules;
use crate::images::{self, Image};
use crate::snapshot::Snapshot;

/// An image's Dockerfile and ignore rules at one commit, evaluated for its target.
#[derive(Debug, Clone)]
pub struct ImageModel {
    /// The parsed Dockerfile.
    pub dockerfile: Dockerfile,
    /// The ignore rules in force.
    pub ignore: IgnoreRules,
    /// Which ignore file they come from (repository-relative), if any.
    pub ignore_file: Option<String>,
    /// The target stage.
    pub target: usize,
    /// Stages built for the target.
    pub reachable: BTreeSet<usize>,
    /// Context reads of the reachable stages (ONBUILD triggers of in-repo bases added by
    /// [`Project`]).
    pub reads: Vec<ContextRead>,
    /// Images the reachable stages use (FROM, `--from`), canonical where they parse.
    pub bases: Vec<String>,
}

impl ImageModel {
    /// Parse the image's Dockerfile and ignore file in a snapshot.
    pub fn load(snap: &Snapshot<'_>, image: &Image) -> Result<Self> {
        let bytes = snap
            .read(&image.dockerfile)?
            .ok_or_else(|| Error::Dockerfile {
                file: image.dockerfile.clone(),
                line: 1,
                message: "the Dockerfile does not exist at this revision".into(),
            })?;
        let text = String::from_utf8(bytes).map_err(|e| Error::Dockerfile {
            file: image.dockerfile.clone(),
            line: 1,
            message: format!("not UTF-8: {e}"),
        })?;
        let dockerfile =
            Dockerfile::parse(&text, &image.build_args).map_err(|e| Error::Dockerfile {
                file: image.dockerfile.clone(),
                line: e.line,
                message: e.message,
            })?;
        let mut ignore = IgnoreRules::empty();
        let mut ignore_file = None;
        for cand in image.ignore_candidates() {
            if let Some(rules) = snap.ignore_rules(&cand)? {
                ignore = rules.map_err(|e| Error::Ignore {
                    file: cand.clone(),
                    line: e.line,
                    pattern: e.pattern,
                    reason: e.reason,
                })?;
                ignore_file = Some(cand);
                break;
            }
        }
        let target = dockerfile
            .target_stage(image.target.as_deref())
            .map_err(|m| Error::Dockerfile {
                file: image.dockerfile.clone(),
                line: 1,
                message: m,
            })?;
        let reachable = dockerfile.reachable(target);
        let reads = reachable
            .iter()
            .flat_map(|i| dockerfile.stages[*i].reads.iter().cloned())
            .collect();
        let bases = dockerfile
            .images_used(&reachable)
            .into_iter()
            .map(|b| snap.reference(&b).map_or(b, |r| r.to_string()))
            .collect();
        Ok(ImageModel {
            dockerfile,
            ignore,
            ignore_file,
            target,
            reachable,
            reads,
            bases,
        })
    }

    /// Whether `path` (context-relative) is sent to the builder and read by a reachable stage.
    pub fn is_input(&self, path: &str) -> bool {
        !self.ignore.is_excluded(path) && self.reads.iter().any(|r| r.reads(path))
    }

    /// The ONBUILD reads of the target stage (what images built on this one read).
    pub fn onbuild_reads(&self) -> &[ContextRead] {
        &self.dockerfile.stages[self.target].onbuild_reads
    }
}

/// A file that looked like a Dockerfile by its name but is not one: it was left out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// Repository-relative path.
    pub file: String,
    /// 1-based line the problem is on.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// One image in the graph.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GraphNode {
    /// Image name.
    pub name: String,
    /// Repository-relative Dockerfile.
    pub dockerfile: String,
    /// Repository-relative context.
    pub context: String,
    /// Registry repository, if configured.
    pub repository: Option<String>,
    /// Canonical references of every image the reachable stages use.
    pub bases: Vec<String>,
    /// In-repo images it builds on.
    pub depends_on: Vec<String>,
    /// Tags of its repository that in-repo images use ([`Project::tags`]).
    pub tags: Vec<String>,
}

/// The image graph of a project.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Graph {
    /// Every image.
    pub images: Vec<GraphNode>,
    /// Build order: each wave only depends on earlier waves.
    pub waves: Vec<Vec<String>>,
    /// Files found by their name that are not Dockerfiles (left out).
    pub warnings: Vec<Warning>,
}

/// A repository at one commit.
pub struct Project<'r> {
    repo: &'r Repo,
    commit: Oid,
    /// The images, sorted by name.
    pub images: Vec<Image>,
    models: BTreeMap<String, ImageModel>,
    deps: BTreeMap<String, Vec<String>>,
    tags: BTreeMap<String, Vec<String>>,
    /// Files found by their name that do not parse as Dockerfiles: not images.
    pub warnings: Vec<Warning>,
}

impl std::fmt::Debug for Project<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Project")
            .field("commit", &self.commit)
            .field("images", &self.images.len())
            .finish()
    }
}

impl<'r> Project<'r> {
    /// Discover and parse every image at `commit`. A file found only by its name that does not
    /// parse as a Dockerfile is left out with a [`Warning`]; one `ferry.toml` names must parse.
    pub fn load(repo: &'r Repo, commit: Oid) -> Result<Self> {
        let snap = Snapshot::new(repo, commit)?;
        let (images, mut models, warnings) = parse_models(&snap, images::discover_all(&snap)?)?;
        // In-repo bases: any used image whose repository equals an image's `repository`.
        let by_repo: BTreeMap<String, String> = images
            .iter()
            .filter_map(|i| i.repository_name().map(|r| (r, i.name.clone())))
            .collect();
        let mut deps = BTreeMap::new();
        let mut tags: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for img in &images {
            let m = &models[&img.name];
            let mut d: Vec<String> = Vec::new();
            for r in m.bases.iter().filter_map(|b| snap.reference(b)) {
                let Some(base) = by_repo.get(&r.name()).filter(|n| **n != img.name) else {
                    continue;
                };
                d.push(base.clone());
                // A digest pins the bytes: the tag beside it does not choose what is used.
                if r.digest().is_none()
                    && let Some(t) = r.tag_or_default()
                {
                    tags.entry(base.clone()).or_default().insert(t.to_string());
                }
            }
            d.sort();
            d.dedup();
            deps.insert(img.name.clone(), d);
        }
        let tags = tags
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect();
        // ONBUILD triggers of an in-repo base read the child's context.
        let mut extra: BTreeMap<String, Vec<ContextRead>> = BTreeMap::new();
        for img in &images {
            let m = &models[&img.name];
            for &si in &m.reachable {
                if let Base::Image(b) = &m.dockerfile.stages[si].base {
                    let Some(parent) = snap.reference(b).and_then(|r| by_repo.get(&r.name()))
                    else {
                        continue;
                    };
                    if let Some(pm) = models.get(parent) {
                        extra
                            .entry(img.name.clone())
                            .or_default()
                            .extend(pm.onbuild_reads().iter().cloned());
                    }
                }
            }
        }
        for (name, reads) in extra {
            if let Some(m) = models.get_mut(&name) {
                m.reads.extend(reads);
            }
        }
        Ok(Project {
            repo,
            commit,
            images,
            models,
            deps,
            tags,
            warnings,
        })
    }

    /// The commit this project was read at.
    pub fn commit(&self) -> Oid {
        self.commit
    }

    /// An image by name.
    pub fn image(&self, name: &str) -> Result<&Image> {
        self.images
            .iter()
            .find(|i| i.name == name)
            .ok_or_else(|| Error::UnknownImage {
                name: name.to_string(),
                known: self
                    .images
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// An image's model.
    pub fn model(&self, name: &str) -> Option<&ImageModel> {
        self.models.get(name)
    }

    /// The tags in-repo images use of `name`'s repository (`FROM acme/base:1` → `1`, no tag →
    /// `latest`; references pinned by digest are left out), sorted: what a build of `name` must
    /// push so that the images built on it in a later wave use the new build.
    pub fn tags(&self, name: &str) -> &[String] {
        self.tags.get(name).map_or(&[], Vec::as_slice)
    }

    /// In-repo images `name` builds on.
    pub fn depends_on(&self, name: &str) -> &[String] {
        self.deps.get(name).map_or(&[], Vec::as_slice)
    }

    /// The images built from any of `dockerfiles` (repository-relative) and every image built
    /// on them, transitively: what rebuilds when those Dockerfiles change. Sorted.
    pub fn rebuilt_with(&self, dockerfiles: &BTreeSet<&str>) -> Vec<String> {
        let mut set: BTreeSet<String> = self
            .images
            .iter()
            .filter(|i| dockerfiles.contains(i.dockerfile.as_str()))
            .map(|i| i.name.clone())
            .collect();
        loop {
            let more: Vec<String> = self
                .images
                .iter()
                .filter(|i| {
                    !set.contains(&i.name)
                        && self.depends_on(&i.name).iter().any(|d| set.contains(d))
                })
                .map(|i| i.name.clone())
                .collect();
            if more.is_empty() {
                break;
            }
            set.extend(more);
        }
        set.into_iter().collect()
    }

    /// The image graph with waves (`max_parallel` splits large waves).
    pub fn graph(&self, max_parallel: usize) -> Result<Graph> {
        let all: BTreeSet<String> = self.images.iter().map(|i| i.name.clone()).collect();
        let waves = self.waves(&all, max_parallel)?;
        let images = self
            .images
            .iter()
            .map(|i| GraphNode {
                name: i.name.clone(),
                dockerfile: i.dockerfile.clone(),
                context: i.context.clone(),
                repository: i.repository.clone(),
                bases: self.models[&i.name].bases.clone(),
                depends_on: self.depends_on(&i.name).to_vec(),
                tags: self.tags(&i.name).to_vec(),
            })
            .collect();
        Ok(Graph {
            images,
            waves,
            warnings: self.warnings.clone(),
        })
    }

    /// Topological waves over `subset` (dependencies outside it are ignored).
    pub fn waves(
        &self,
        subset: &BTreeSet<String>,
        max_parallel: usize,
    ) -> Result<Vec<Vec<String>>> {
        let max_parallel = max_parallel.max(1);
        let mut remaining: BTreeMap<&str, BTreeSet<&str>> = subset
            .iter()
            .map(|n| {
                let d = self
                    .depends_on(n)
                    .iter()
                    .map(String::as_str)
                    .filter(|d| subset.contains(*d))
                    .collect();
                (n.as_str(), d)
            })
            .collect();
        let mut waves = Vec::new();
        while !remaining.is_empty() {
            let ready: Vec<&str> = remaining
                .iter()
                .filter(|(_, d)| d.is_empty())
                .map(|(n, _)| *n)
                .collect();
            if ready.is_empty() {
                return Err(Error::Cycle {
                    cycle: find_cycle(&remaining),
                });
            }
            for n in &ready {
                remaining.remove(n);
            }
            for d in remaining.values_mut() {
                for n in &ready {
                    d.remove(n);
                }
            }
            for chunk in ready.chunks(max_parallel) {
                waves.push(chunk.iter().map(|s| s.to_string()).collect());
            }
        }
        Ok(waves)
    }

    /// Files of an image's build context after the ignore rules (context-relative, sorted):
    /// what `docker build` would send.
    pub fn context_files(&self, name: &str) -> Result<Vec<String>> {
        let img = self.image(name)?;
        let m = &self.models[name];
        let tree = self.repo.tree(self.commit)?;
        let prefix = img.context_prefix();
        let files = self.repo.list_files(&tree, prefix.trim_end_matches('/'))?;
        Ok(files
            .into_iter()
            .filter(|f| !m.ignore.is_excluded(f))
            .collect())
    }

    /// Files precise mode treats as inputs: context files read by a reachable stage, plus the
    /// Dockerfile and ignore file when they lie inside the context (context-relative, sorted).
    pub fn input_files(&self, name: &str) -> Result<Vec<String>> {
        let img = self.image(name)?;
        let m = &self.models[name];
        let prefix = img.context_prefix();
        let mut out: BTreeSet<String> = self
            .context_files(name)?
            .into_iter()
            .filter(|f| m.reads.iter().any(|r| r.reads(f)))
            .collect();
        for own in std::iter::once(&img.dockerfile).chain(m.ignore_file.as_ref()) {
            if let Some(rel) = own.strip_prefix(&prefix) {
                out.insert(rel.to_string());
            }
        }
        Ok(out.into_iter().collect())
    }
}

type Models = BTreeMap<String, ImageModel>;

/// Parse every discovered image; a file found only by its name that is not a Dockerfile becomes
/// a warning instead of an image.
fn parse_models(
    snap: &Snapshot<'_>,
    found: images::Discovery,
) -> Result<(Vec<Image>, Models, Vec<Warning>)> {
    let mut models = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut images = Vec::with_capacity(found.images.len());
    for img in found.images {
        match ImageModel::load(snap, &img) {
            Ok(m) => {
                models.insert(img.name.clone(), m);
                images.push(img);
            }
            Err(Error::Dockerfile {
                file,
                line,
                message,
            }) if !found.configured.contains(&img.name) => {
                tracing::debug!(%file, line, %message, "not a Dockerfile: left out");
                warnings.push(Warning {
                    file,
                    line,
                    message: format!("not a Dockerfile, left out: {message}"),
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok((images, models, warnings))
}

fn find_cycle(remaining: &BTreeMap<&str, BTreeSet<&str>>) -> Vec<String> {
    let Some(start) = remaining.keys().next() else {
        return Vec::new();
    };
    let mut path: Vec<&str> = vec![start];
    let mut cur = *start;
    loop {
        let Some(next) = remaining.get(cur).and_then(|d| d.iter().next()) else {
            return path.iter().map(|s| s.to_string()).collect();
        };
        if let Some(pos) = path.iter().position(|p| p == next) {
            let mut cycle: Vec<String> = path[pos..].iter().map(|s| s.to_string()).collect();
            cycle.push(next.to_string());
            return cycle;
        }
        path.push(next);
        cur = next;
    }
}
