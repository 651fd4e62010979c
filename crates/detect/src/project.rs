//! A repository at one commit: its images, their parsed Dockerfiles and ignore rules, and the
//! graph of in-repo base images.

use std::collections::{BTreeMap, BTreeSet};

use git2::Oid;

use crate::dockerfile::{Base, ContextRead, Dockerfile, Problem};
use crate::error::{ConfigProblem, Error, Result};
use crate::git::Repo;
use crate::ignore::IgnoreRules;
use crate::images::CONFIG_FILE;
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
    /// Context reads of the reachable stages.
    pub reads: Vec<ContextRead>,
    /// `ONBUILD COPY/ADD` triggers of the in-repo bases its reachable stages are built `FROM`:
    /// they read this image's context (added by [`Project`]).
    pub inherited: Vec<InheritedRead>,
    /// Images the reachable stages use (FROM, `--from`), canonical where they parse.
    pub bases: Vec<String>,
    /// The image's `extra_inputs` from `ferry.toml` (repository-relative patterns), compiled.
    pub extra: IgnoreRules,
}

/// An `ONBUILD` trigger of an in-repo base image that reads the context of an image built on it.
#[derive(Debug, Clone)]
pub struct InheritedRead {
    /// The in-repo base image.
    pub image: String,
    /// Its Dockerfile (repository-relative), where the trigger is written.
    pub dockerfile: String,
    /// The trigger.
    pub read: ContextRead,
}

impl ImageModel {
    /// Parse the image's Dockerfile and ignore file in a snapshot.
    pub fn load(snap: &Snapshot<'_>, image: &Image) -> Result<Self> {
        let bytes = snap
            .read(&image.dockerfile)?
            .ok_or_else(|| Error::Dockerfile {
                file: image.dockerfile.clone(),
                line: 1,
                problem: Problem::Missing,
            })?;
        let text = String::from_utf8(bytes).map_err(|e| Error::Dockerfile {
            file: image.dockerfile.clone(),
            line: 1,
            problem: Problem::NotUtf8 {
                valid_up_to: e.utf8_error().valid_up_to(),
            },
        })?;
        let dockerfile =
            Dockerfile::parse(&text, &image.build_args).map_err(|e| Error::Dockerfile {
                file: image.dockerfile.clone(),
                line: e.line,
                problem: e.problem,
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
            .map_err(|problem| Error::Dockerfile {
                file: image.dockerfile.clone(),
                line: 1,
                problem,
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
        let extra = IgnoreRules::from_patterns(&image.extra_inputs).map_err(|e| Error::Config {
            file: CONFIG_FILE.into(),
            problem: ConfigProblem::ExtraInputs {
                image: image.name.clone(),
                error: e,
            },
        })?;
        Ok(ImageModel {
            dockerfile,
            ignore,
            ignore_file,
            target,
            reachable,
            reads,
            inherited: Vec::new(),
            bases,
            extra,
        })
    }

    /// Whether `path` (context-relative) is sent to the builder and read by a reachable stage
    /// (its own or an in-repo base's `ONBUILD`).
    pub fn is_input(&self, path: &str) -> bool {
        self.context_verdict(path)
            .counts(crate::decide::ContextMode::Precise)
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
    /// Why it was left out (`message` in JSON).
    #[serde(rename = "message")]
    pub problem: LeftOut,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.problem)
    }
}

/// Why a file found by its name was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeftOut {
    /// It does not parse as a Dockerfile.
    NotADockerfile(Problem),
}

impl std::fmt::Display for LeftOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeftOut::NotADockerfile(p) => write!(f, "not a Dockerfile, left out: {p}"),
        }
    }
}

impl serde::Serialize for LeftOut {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
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
    /// (image, in-repo base) → the line of the image's Dockerfile that first names the base.
    dep_lines: BTreeMap<(String, String), usize>,
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
        let graph = dependencies(&snap, &images, &models, &by_repo);
        inherit_onbuild(&snap, &images, &mut models, &by_repo);
        Ok(Project {
            repo,
            commit,
            images,
            models,
            deps: graph.deps,
            dep_lines: graph.lines,
            tags: graph.tags,
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
                known: self.images.iter().map(|i| i.name.clone()).collect(),
            })
    }

    /// An image's model (every image has one; an unknown name is [`Error::UnknownImage`]).
    pub fn model(&self, name: &str) -> Result<&ImageModel> {
        self.models.get(name).ok_or_else(|| Error::UnknownImage {
            name: name.to_string(),
            known: self.images.iter().map(|i| i.name.clone()).collect(),
        })
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

    /// The line of `name`'s Dockerfile that first names its in-repo base `dep` (a `FROM`,
    /// `COPY --from` or `RUN --mount=…,from=` of a reachable stage).
    pub fn dependency_line(&self, name: &str, dep: &str) -> Option<usize> {
        self.dep_lines
            .get(&(name.to_string(), dep.to_string()))
            .copied()
    }

    /// The content of a file at this project's commit, `None` when there is no such file.
    pub fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>> {
        self.repo.read_file(&self.repo.tree(self.commit)?, path)
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
            .filter(|f| m.is_input(f))
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

/// The graph of in-repo base images.
struct Dependencies {
    /// Image → the in-repo images it builds on, sorted.
    deps: BTreeMap<String, Vec<String>>,
    /// (image, base) → the first line naming the base.
    lines: BTreeMap<(String, String), usize>,
    /// Base → the tags images built on it use.
    tags: BTreeMap<String, Vec<String>>,
}

/// Which in-repo images each image builds on: every image reference of a reachable stage whose
/// repository is an image's `repository`, and the tags those references use.
fn dependencies(
    snap: &Snapshot<'_>,
    images: &[Image],
    models: &Models,
    by_repo: &BTreeMap<String, String>,
) -> Dependencies {
    let mut deps = BTreeMap::new();
    let mut lines = BTreeMap::new();
    let mut tags: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for img in images {
        let m = &models[&img.name];
        let mut d: Vec<String> = Vec::new();
        for site in m.dockerfile.image_sites(&m.reachable) {
            let Some(r) = snap.reference(&site.expanded) else {
                continue;
            };
            let Some(base) = by_repo.get(&r.name()).filter(|n| **n != img.name) else {
                continue;
            };
            d.push(base.clone());
            lines
                .entry((img.name.clone(), base.clone()))
                .or_insert(site.line);
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
    Dependencies { deps, lines, tags }
}

/// ONBUILD triggers of an in-repo base read the context of the images built `FROM` it.
fn inherit_onbuild(
    snap: &Snapshot<'_>,
    images: &[Image],
    models: &mut Models,
    by_repo: &BTreeMap<String, String>,
) {
    let mut extra: BTreeMap<String, Vec<InheritedRead>> = BTreeMap::new();
    for img in images {
        let m = &models[&img.name];
        for &si in &m.reachable {
            let Base::Image(b) = &m.dockerfile.stages[si].base else {
                continue;
            };
            let Some(parent) = snap.reference(b).and_then(|r| by_repo.get(&r.name())) else {
                continue;
            };
            let (Some(pm), Some(pi)) = (
                models.get(parent),
                images.iter().find(|i| &i.name == parent),
            ) else {
                continue;
            };
            extra
                .entry(img.name.clone())
                .or_default()
                .extend(pm.onbuild_reads().iter().map(|read| InheritedRead {
                    image: parent.clone(),
                    dockerfile: pi.dockerfile.clone(),
                    read: read.clone(),
                }));
        }
    }
    for (name, reads) in extra {
        if let Some(m) = models.get_mut(&name) {
            m.inherited.extend(reads);
        }
    }
}

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
                problem,
            }) if !found.configured.contains(&img.name) => {
                tracing::debug!(%file, line, %problem, "not a Dockerfile: left out");
                warnings.push(Warning {
                    file,
                    line,
                    problem: LeftOut::NotADockerfile(problem),
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
