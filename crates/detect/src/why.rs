//! `why`: whether one file is an input of one image, and the one place that decides it.
//!
//! The judgement is [`decide`](crate::decide)'s, the one [`changed`](crate::changed) makes for
//! every changed path; this module only asks it about one path and turns the verdict into a
//! place in a file (`FILE:LINE` and the line's text). A path is an input of an image exactly
//! when a change to that path alone makes [`changed`](crate::changed::changed) rebuild the
//! image: its own verdict counts, or it is an input of an in-repo base image the image builds
//! on (transitively).
//!
//! ```no_run
//! # fn demo() -> ferry_detect::Result<()> {
//! use ferry_detect::{decide::ContextMode, git::Repo, project::Project, why};
//! let repo = Repo::open(std::path::Path::new("."))?;
//! let head = repo.commit_id("HEAD")?.expect("a commit");
//! let project = Project::load(&repo, head)?;
//! let answer = why::why(&project, "services/api", "services/api/main.go", ContextMode::Precise)?;
//! assert_eq!(answer.because.kind == why::Kind::Copy, answer.input);
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet};

use crate::decide::{ContextMode, ContextVerdict, ImageInputs, Reader, Verdict};
use crate::dockerfile::ReadKind;
use crate::error::{Error, PathProblem, Result};
use crate::ignore::clean_path;
use crate::images::{CONFIG_FILE, extra_input_lines};
use crate::project::Project;

/// What decides (the JSON `because.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The path is the image's Dockerfile.
    Dockerfile,
    /// The path is one of the image's ignore files.
    IgnoreFile,
    /// A `COPY` (or an in-repo base's `ONBUILD COPY`) of a reachable stage reads it.
    Copy,
    /// An `ADD` (or an in-repo base's `ONBUILD ADD`) of a reachable stage reads it.
    Add,
    /// A `RUN --mount=type=bind` of a reachable stage mounts it.
    Mount,
    /// A `ferry.toml` `extra_inputs` pattern names it.
    Config,
    /// It is an input of an in-repo base image this image builds on.
    BaseImage,
    /// An ignore pattern drops it from the context.
    Ignored,
    /// Only a stage the target never reaches reads it.
    UnreachableStage,
    /// In the context, read by nothing.
    NotCopied,
    /// Outside the image's build context.
    OutsideContext,
}

impl Kind {
    /// The JSON spelling: `dockerfile`, `ignore_file`, `copy`, … `outside_context`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Dockerfile => "dockerfile",
            Kind::IgnoreFile => "ignore_file",
            Kind::Copy => "copy",
            Kind::Add => "add",
            Kind::Mount => "mount",
            Kind::Config => "config",
            Kind::BaseImage => "base_image",
            Kind::Ignored => "ignored",
            Kind::UnreachableStage => "unreachable_stage",
            Kind::NotCopied => "not_copied",
            Kind::OutsideContext => "outside_context",
        }
    }
}

/// The deciding place: a kind and, when there is one, a file, a line of it and its text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Because {
    /// What decides.
    pub kind: Kind,
    /// Repository-relative file (the Dockerfile, the ignore file, `ferry.toml`), if any.
    pub file: Option<String>,
    /// 1-based line of `file`, if one decides.
    pub line: Option<usize>,
    /// That line's text, if there is a line.
    pub text: Option<String>,
}

/// The answer of [`why`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Answer {
    /// The image asked about.
    pub image: String,
    /// The path asked about, repository-relative and cleaned.
    pub path: String,
    /// Whether a change to the path alone rebuilds the image.
    pub input: bool,
    /// What decides.
    pub because: Because,
    /// With kind `base_image`: the in-repo base image's own answer (which decides for it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<Box<Answer>>,
}

/// A path as given on a command line, made repository-relative the way `changed` prints paths
/// (`./a//b` → `a/b`); [`Error::Path`] when it leaves the repository or names its root.
pub fn repo_path(path: &str) -> Result<String> {
    let bad = |problem: PathProblem| Error::Path {
        path: path.to_string(),
        problem,
    };
    if path.starts_with('/') {
        return Err(bad(PathProblem::OutsideRepository));
    }
    let cleaned = clean_path(path);
    if cleaned == ".." || cleaned.starts_with("../") {
        return Err(bad(PathProblem::OutsideRepository));
    }
    if cleaned == "." {
        return Err(bad(PathProblem::RepositoryRoot));
    }
    Ok(cleaned)
}

/// Whether `path` ([`repo_path`]) is an input of `image` in `project` in `mode`, and what
/// decides it. An unknown image is [`Error::UnknownImage`]; a dependency cycle between in-repo
/// images is [`Error::Cycle`], as for [`changed`](crate::changed::changed).
pub fn why(project: &Project<'_>, image: &str, path: &str, mode: ContextMode) -> Result<Answer> {
    project.image(image)?;
    let path = repo_path(path)?;
    let all: BTreeSet<String> = project.images.iter().map(|i| i.name.clone()).collect();
    project.waves(&all, usize::MAX)?;
    let mut asker = Asker {
        project,
        path,
        mode,
        answers: BTreeMap::new(),
        files: BTreeMap::new(),
    };
    asker.answer(image)
}

/// Asks the images of a project about one path, each at most once.
struct Asker<'p, 'r> {
    project: &'p Project<'r>,
    path: String,
    mode: ContextMode,
    answers: BTreeMap<String, Answer>,
    /// Files read for line texts (`None`: not in the commit).
    files: BTreeMap<String, Option<String>>,
}

impl Asker<'_, '_> {
    /// The image's own verdict when it counts, else the first in-repo base (in name order)
    /// for which the path is an input, else the own verdict that does not count.
    fn answer(&mut self, name: &str) -> Result<Answer> {
        if let Some(a) = self.answers.get(name) {
            return Ok(a.clone());
        }
        let project = self.project;
        let img = project.image(name)?;
        let model = project.model(name)?;
        let verdict = ImageInputs::new(img, model).verdict(&self.path, self.mode);
        let answer = if verdict.counts(self.mode) {
            self.own(name, verdict, true)?
        } else {
            match self.via_base(name)? {
                Some(a) => a,
                None => self.own(name, verdict, false)?,
            }
        };
        self.answers.insert(name.to_string(), answer.clone());
        Ok(answer)
    }

    /// The answer through the first in-repo base the path is an input of.
    fn via_base(&mut self, name: &str) -> Result<Option<Answer>> {
        for dep in self.project.depends_on(name) {
            let base = self.answer(dep)?;
            if !base.input {
                continue;
            }
            let file = self.project.image(name)?.dockerfile.clone();
            let line = self.project.dependency_line(name, dep);
            let because = self.place(Kind::BaseImage, file, line)?;
            return Ok(Some(Answer {
                image: name.to_string(),
                path: self.path.clone(),
                input: true,
                because,
                via: Some(Box::new(base)),
            }));
        }
        Ok(None)
    }

    /// The answer the image's own verdict gives.
    fn own(&mut self, name: &str, verdict: Verdict<'_>, input: bool) -> Result<Answer> {
        let project = self.project;
        let img = project.image(name)?;
        let model = project.model(name)?;
        let dockerfile = img.dockerfile.clone();
        let because = match verdict {
            Verdict::Dockerfile => place(Kind::Dockerfile, Some(dockerfile), None, None),
            Verdict::IgnoreFile => place(Kind::IgnoreFile, Some(self.path.clone()), None, None),
            Verdict::ExtraInput(i) => {
                let toml = self.text_of(CONFIG_FILE)?.unwrap_or_default();
                let line = extra_input_lines(&toml, name).get(i).copied();
                self.place(Kind::Config, CONFIG_FILE.to_string(), line)?
            }
            Verdict::OutsideContext => place(Kind::OutsideContext, None, None, None),
            Verdict::Context(ContextVerdict::NotRead) => place(Kind::NotCopied, None, None, None),
            Verdict::Context(ContextVerdict::Ignored(p)) => {
                let file = model.ignore_file.clone().unwrap_or_default();
                self.place(Kind::Ignored, file, Some(p.line()))?
            }
            Verdict::Context(ContextVerdict::UnreachableStage(r)) => {
                self.place(Kind::UnreachableStage, dockerfile, Some(r.line))?
            }
            Verdict::Context(ContextVerdict::Read(reader)) => {
                let kind = match reader.read().kind {
                    ReadKind::Copy => Kind::Copy,
                    ReadKind::Add => Kind::Add,
                    ReadKind::Mount => Kind::Mount,
                };
                let file = match reader {
                    Reader::Own(_) => dockerfile,
                    Reader::Inherited(i) => i.dockerfile.clone(),
                };
                self.place(kind, file, Some(reader.read().line))?
            }
        };
        Ok(Answer {
            image: name.to_string(),
            path: self.path.clone(),
            input,
            because,
            via: None,
        })
    }

    /// `file:line` with the line's text.
    fn place(&mut self, kind: Kind, file: String, line: Option<usize>) -> Result<Because> {
        let text = match line {
            Some(n) => self
                .text_of(&file)?
                .and_then(|t| t.split('\n').nth(n - 1).map(str::to_string))
                .map(|l| l.strip_suffix('\r').map(str::to_string).unwrap_or(l)),
            None => None,
        };
        Ok(place(kind, Some(file), line, text))
    }

    /// A file of the commit as text (lossy), read once.
    fn text_of(&mut self, file: &str) -> Result<Option<String>> {
        if let Some(t) = self.files.get(file) {
            return Ok(t.clone());
        }
        let text = self
            .project
            .read_file(file)?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        self.files.insert(file.to_string(), text.clone());
        Ok(text)
    }
}

fn place(kind: Kind, file: Option<String>, line: Option<usize>, text: Option<String>) -> Because {
    Because {
        kind,
        file,
        line,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_and_must_stay_inside_the_repository() {
        assert_eq!(repo_path("./a//b/../c").unwrap(), "a/c");
        for bad in ["../x", "a/../../x", "/etc/passwd", ".", "./", "a/.."] {
            let e = repo_path(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn kinds_spell_as_the_json_contract_says() {
        for k in [
            Kind::Dockerfile,
            Kind::IgnoreFile,
            Kind::Copy,
            Kind::Add,
            Kind::Mount,
            Kind::Config,
            Kind::BaseImage,
            Kind::Ignored,
            Kind::UnreachableStage,
            Kind::NotCopied,
            Kind::OutsideContext,
        ] {
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::Value::String(k.as_str().into())
            );
        }
    }
}
