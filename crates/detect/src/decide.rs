//! What decides whether a path is an input of an image: the one computation behind
//! [`changed`](crate::changed), `inputs` ([`Project::input_files`](crate::project::Project))
//! and [`why`](crate::why). Pure: it reads the parsed models, never the repository.
//!
//! For one image a repository path is, in this order: its Dockerfile, one of its two ignore
//! files, a context path that counts ([`ContextVerdict::counts`]), a match of its
//! `extra_inputs`, a context path that does not count, or outside its context. In-repo base
//! images are asked by the caller ([`changed`](crate::changed) propagates rebuilds through
//! [`Project::depends_on`](crate::project::Project::depends_on), [`why`](crate::why) asks
//! each base the same question).

use crate::dockerfile::ContextRead;
use crate::ignore::Pattern;
use crate::images::Image;
use crate::project::{ImageModel, InheritedRead};

/// How a context file counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContextMode {
    /// Only files a COPY/ADD/bind mount of a reachable stage reads (and not ignored).
    #[default]
    Precise,
    /// Any file of the context that is not ignored.
    Full,
}

/// The instruction that reads a context path into the build.
#[derive(Debug, Clone, Copy)]
pub enum Reader<'m> {
    /// An instruction of a reachable stage of the image's own Dockerfile.
    Own(&'m ContextRead),
    /// An `ONBUILD` trigger of an in-repo base the image is built `FROM`.
    Inherited(&'m InheritedRead),
}

impl Reader<'_> {
    /// The instruction.
    pub fn read(&self) -> &ContextRead {
        match self {
            Reader::Own(r) => r,
            Reader::Inherited(i) => &i.read,
        }
    }
}

/// Where a context path (relative to the context root) stands in an image's build.
#[derive(Debug, Clone, Copy)]
pub enum ContextVerdict<'m> {
    /// The ignore rules exclude it: this pattern (the last one that matched) decides.
    Ignored(&'m Pattern),
    /// Sent to the builder and read by this instruction.
    Read(Reader<'m>),
    /// Sent, but only stages the target never reaches read it (this instruction, the first).
    UnreachableStage(&'m ContextRead),
    /// Sent, read by nothing.
    NotRead,
}

impl ContextVerdict<'_> {
    /// Whether a change to the path rebuilds the image in `mode`: precise counts what a
    /// reachable stage reads, full counts everything the context sends.
    pub fn counts(&self, mode: ContextMode) -> bool {
        match mode {
            ContextMode::Precise => matches!(self, ContextVerdict::Read(_)),
            ContextMode::Full => !matches!(self, ContextVerdict::Ignored(_)),
        }
    }
}

impl ImageModel {
    /// Where `path` (context-relative) stands: ignored, read by a reachable stage (own first,
    /// then inherited `ONBUILD` triggers), read only by unreachable stages, or read by nothing.
    pub fn context_verdict(&self, path: &str) -> ContextVerdict<'_> {
        if let Some((_, p)) = self.ignore.deciding(path)
            && !p.is_exception()
        {
            return ContextVerdict::Ignored(p);
        }
        if let Some(r) = self.reads.iter().find(|r| r.reads(path)) {
            return ContextVerdict::Read(Reader::Own(r));
        }
        if let Some(i) = self.inherited.iter().find(|i| i.read.reads(path)) {
            return ContextVerdict::Read(Reader::Inherited(i));
        }
        let unreachable = self
            .dockerfile
            .stages
            .iter()
            .filter(|s| !self.reachable.contains(&s.index))
            .flat_map(|s| s.reads.iter())
            .find(|r| r.reads(path));
        match unreachable {
            Some(r) => ContextVerdict::UnreachableStage(r),
            None => ContextVerdict::NotRead,
        }
    }
}

/// Where a repository path stands for one image, its in-repo bases not asked.
#[derive(Debug, Clone, Copy)]
pub enum Verdict<'m> {
    /// It is the image's Dockerfile.
    Dockerfile,
    /// It is one of the image's two ignore files (`<Dockerfile>.dockerignore`,
    /// `<context>/.dockerignore`): whichever exists, adding or removing one changes the rules.
    IgnoreFile,
    /// In the context: how.
    Context(ContextVerdict<'m>),
    /// The `extra_inputs` pattern at this index (of [`Image::extra_inputs`]) matches it.
    ExtraInput(usize),
    /// Outside the context, and nothing else names it.
    OutsideContext,
}

impl Verdict<'_> {
    /// Whether a change to the path alone rebuilds the image (bases aside) in `mode`.
    pub fn counts(&self, mode: ContextMode) -> bool {
        match self {
            Verdict::Dockerfile | Verdict::IgnoreFile | Verdict::ExtraInput(_) => true,
            Verdict::Context(v) => v.counts(mode),
            Verdict::OutsideContext => false,
        }
    }
}

/// One image's files and rules, prepared once to judge many paths.
#[derive(Debug)]
pub struct ImageInputs<'m> {
    /// The image.
    pub image: &'m Image,
    /// Its model.
    pub model: &'m ImageModel,
    prefix: String,
    candidates: [String; 2],
}

impl<'m> ImageInputs<'m> {
    /// Prepare `image` with its `model`.
    pub fn new(image: &'m Image, model: &'m ImageModel) -> Self {
        ImageInputs {
            image,
            model,
            prefix: image.context_prefix(),
            candidates: image.ignore_candidates(),
        }
    }

    /// The two ignore file paths, the one that wins first.
    pub fn ignore_candidates(&self) -> &[String; 2] {
        &self.candidates
    }

    /// `path` relative to the context root, when it is inside the context.
    pub fn context_relative<'p>(&self, path: &'p str) -> Option<&'p str> {
        path.strip_prefix(self.prefix.as_str())
    }

    /// Where repository-relative `path` stands for this image in `mode`.
    pub fn verdict(&self, path: &str, mode: ContextMode) -> Verdict<'m> {
        if path == self.image.dockerfile {
            return Verdict::Dockerfile;
        }
        if self.candidates.iter().any(|c| c == path) {
            return Verdict::IgnoreFile;
        }
        let context = self
            .context_relative(path)
            .map(|rel| self.model.context_verdict(rel));
        if let Some(v) = context
            && v.counts(mode)
        {
            return Verdict::Context(v);
        }
        if let Some((i, p)) = self.model.extra.deciding(path)
            && !p.is_exception()
        {
            return Verdict::ExtraInput(i);
        }
        match context {
            Some(v) => Verdict::Context(v),
            None => Verdict::OutsideContext,
        }
    }
}
