//! The Dockerfile model ferry needs: stages, their bases, what they read from the build context,
//! and every image reference with its source span (for in-place rewrites).
//!
//! Syntax comes from the `parse-dockerfile` crate (BuildKit's grammar: parser directives and
//! `escape`, continuations, comments inside continuations, heredocs, JSON forms, flags), with
//! byte spans. On top of it this module applies BuildKit's semantics: global vs stage `ARG`
//! scope, `ENV`, variable expansion, stage names and indexes, `COPY/ADD --from`,
//! `RUN --mount` (bind, cache, `from=`, `source=`), `ONBUILD`, and reachability from the target.

use std::collections::BTreeSet;
use std::ops::Range;

use parse_dockerfile::Flag;

/// A problem in a Dockerfile, with the 1-based line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerfileError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub problem: Problem,
}

impl std::fmt::Display for DockerfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

/// What is wrong with a Dockerfile (or with reading it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The file is not at the revision read.
    Missing,
    /// The file is not UTF-8.
    NotUtf8 {
        /// How many bytes from the start are valid UTF-8.
        valid_up_to: usize,
    },
    /// BuildKit's grammar refuses it (the `parse-dockerfile` crate's error).
    Syntax(SyntaxError),
    /// A word that cannot be expanded.
    Expand(crate::expand::ExpandError),
    /// `ARG =x`.
    ArgWithoutName {
        /// The word.
        word: String,
    },
    /// `FROM $UNSET`.
    EmptyFrom {
        /// The image as written.
        image: String,
    },
    /// `ENV` before any `FROM`.
    EnvBeforeFrom,
    /// `ENV a b=c`: a word that is not `KEY=VALUE`.
    EnvNotKeyValue {
        /// The word.
        word: String,
    },
    /// An instruction other than `ARG` before the first `FROM`.
    OnlyArgBeforeFrom,
    /// No `FROM` at all.
    NoFrom,
    /// `--from=N` where stage N is not an earlier stage.
    FromLaterStage {
        /// The value as written.
        value: String,
        /// The stage index it names.
        index: usize,
    },
    /// `--from=` naming the stage it is in.
    FromOwnStage {
        /// The value as written.
        value: String,
    },
    /// The configured `target` names no stage.
    UnknownTarget {
        /// The target as configured.
        target: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Missing => f.write_str("the Dockerfile does not exist at this revision"),
            Problem::NotUtf8 { valid_up_to } => {
                write!(f, "not UTF-8 (invalid byte at offset {valid_up_to})")
            }
            Problem::Syntax(e) => e.fmt(f),
            Problem::Expand(e) => e.fmt(f),
            Problem::ArgWithoutName { word } => write!(f, "ARG {word:?} has no name"),
            Problem::EmptyFrom { image } => write!(f, "FROM {image:?} expands to an empty name"),
            Problem::EnvBeforeFrom => f.write_str("ENV before the first FROM"),
            Problem::EnvNotKeyValue { word } => write!(f, "ENV {word:?} is not KEY=VALUE"),
            Problem::OnlyArgBeforeFrom => f.write_str("only ARG may come before the first FROM"),
            Problem::NoFrom => f.write_str("no FROM instruction"),
            Problem::FromLaterStage { value, index } => write!(
                f,
                "--from={value} refers to stage {index}, which is not an earlier stage"
            ),
            Problem::FromOwnStage { value } => {
                write!(f, "--from={value} refers to the stage it is in")
            }
            Problem::UnknownTarget { target } => {
                write!(f, "target stage {target:?} does not exist")
            }
        }
    }
}

/// The `parse-dockerfile` crate's error: shared, since it cannot be cloned, and compared by its
/// text, since it cannot be compared (`SyntaxError::new(e)`, `.get()`).
pub type SyntaxError = ferry_core::Shared<parse_dockerfile::Error>;

impl From<crate::expand::ExpandError> for Problem {
    fn from(e: crate::expand::ExpandError) -> Self {
        Problem::Expand(e)
    }
}

/// What a stage is built on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// `FROM scratch`.
    Scratch,
    /// An earlier stage of the same Dockerfile.
    Stage(usize),
    /// An image reference (after ARG expansion).
    Image(String),
}

/// Where an image reference appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefKind {
    /// `FROM <ref>`.
    From,
    /// `COPY --from=<ref>` or `ADD --from=<ref>`.
    CopyFrom,
    /// `RUN --mount=…,from=<ref>`.
    MountFrom,
    /// The default value of a global `ARG` that a `FROM` uses.
    ArgDefault,
}

impl RefKind {
    /// `from`, `copy_from`, `mount_from`, `arg_default`.
    pub fn as_str(self) -> &'static str {
        match self {
            RefKind::From => "from",
            RefKind::CopyFrom => "copy_from",
            RefKind::MountFrom => "mount_from",
            RefKind::ArgDefault => "arg_default",
        }
    }
}

/// One place in the file that names an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefSite {
    /// Where it appears.
    pub kind: RefKind,
    /// The stage it belongs to (`None` for global ARG defaults).
    pub stage: Option<usize>,
    /// 1-based line.
    pub line: usize,
    /// The text as written (may contain `$VARS`).
    pub raw: String,
    /// Byte range of `raw` in the file, when the text maps 1:1 to the source (no continuation
    /// or escape inside it).
    pub span: Option<Range<usize>>,
    /// After ARG expansion.
    pub expanded: String,
    /// For `ArgDefault`: the ARG's name.
    pub arg: Option<String>,
}

/// A read from the build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextRead {
    /// Source path relative to the context root, cleaned; `""` is the whole context. May hold
    /// `filepath.Match` wildcards.
    pub source: String,
    /// 1-based line of the instruction.
    pub line: usize,
    /// The instruction that reads.
    pub kind: ReadKind,
    /// Whether it is the trigger of an `ONBUILD` (it reads the context of images built on
    /// this one).
    pub onbuild: bool,
}

/// The instruction of a [`ContextRead`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadKind {
    /// `COPY`.
    Copy,
    /// `ADD`.
    Add,
    /// `RUN --mount=type=bind`.
    Mount,
}

impl ReadKind {
    /// `COPY`, `ADD` or `RUN --mount`, as written in a Dockerfile.
    pub fn instruction(self) -> &'static str {
        match self {
            ReadKind::Copy => "COPY",
            ReadKind::Add => "ADD",
            ReadKind::Mount => "RUN --mount",
        }
    }
}

impl ContextRead {
    /// Whether this read takes `path` (relative to the context root) into the build.
    pub fn reads(&self, path: &str) -> bool {
        if self.source.is_empty() {
            return true;
        }
        if !has_wildcards(&self.source) {
            return path == self.source
                || (path.len() > self.source.len()
                    && path.starts_with(&self.source)
                    && path.as_bytes()[self.source.len()] == b'/');
        }
        // A wildcard may match the path or one of its parent directories (then all of it is copied).
        let mut candidate = path;
        loop {
            if crate::ignore::glob_match(&self.source, candidate).unwrap_or(false) {
                return true;
            }
            match candidate.rfind('/') {
                Some(i) => candidate = &candidate[..i],
                None => return false,
            }
        }
    }
}

fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '[', '\\'])
}

/// One stage.
#[derive(Debug, Clone)]
pub struct Stage {
    /// 0-based index.
    pub index: usize,
    /// `AS name`, lowercased.
    pub name: Option<String>,
    /// 1-based line of its FROM.
    pub line: usize,
    /// What it is built on.
    pub base: Base,
    /// `--platform` as written.
    pub platform: Option<String>,
    /// Context reads of its own instructions.
    pub reads: Vec<ContextRead>,
    /// Earlier stages it copies or mounts from (not counting its base).
    pub stage_deps: Vec<usize>,
    /// Images it copies or mounts from (expanded references).
    pub image_deps: Vec<String>,
    /// `ONBUILD COPY/ADD` sources: they read the context of images built on this one.
    pub onbuild_reads: Vec<ContextRead>,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    /// The escape character (`\` or `` ` ``).
    pub escape: char,
    /// Global ARGs: name and default (after expansion), in order.
    pub global_args: Vec<(String, Option<String>)>,
    /// The stages.
    pub stages: Vec<Stage>,
    /// Every image reference site, in file order (stage names and `scratch` excluded).
    pub refs: Vec<RefSite>,
}

mod collect;
mod parse;

/// `span` when the source text there is exactly `value` (no continuation or escape inside).
fn span_in(text: &str, value: &str, span: &Range<usize>) -> Option<Range<usize>> {
    (text.get(span.clone()) == Some(value)).then(|| span.clone())
}

/// A [`DockerfileError`] on the line of byte `offset`.
fn error_at(text: &str, offset: usize, problem: impl Into<Problem>) -> DockerfileError {
    DockerfileError {
        line: line_of(text, offset),
        problem: problem.into(),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

impl Dockerfile {
    /// The stage `target` names (by name or index), or the last stage.
    pub fn target_stage(&self, target: Option<&str>) -> Result<usize, Problem> {
        match target {
            None => Ok(self.stages.len() - 1),
            Some(t) => {
                let lower = t.to_lowercase();
                self.stages
                    .iter()
                    .position(|s| s.name.as_deref() == Some(lower.as_str()))
                    .or_else(|| t.parse::<usize>().ok().filter(|i| *i < self.stages.len()))
                    .ok_or_else(|| Problem::UnknownTarget {
                        target: t.to_string(),
                    })
            }
        }
    }

    /// Stages reachable from `target` (the ones BuildKit builds), ascending.
    pub fn reachable(&self, target: usize) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if !seen.insert(i) {
                continue;
            }
            let s = &self.stages[i];
            if let Base::Stage(b) = s.base {
                todo.push(b);
            }
            todo.extend(s.stage_deps.iter().copied());
        }
        seen
    }

    /// The image reference sites of the reachable stages (FROM bases, `--from` images), in
    /// file order: [`Dockerfile::images_used`] with the line each is written on.
    pub fn image_sites<'d>(
        &'d self,
        reachable: &'d BTreeSet<usize>,
    ) -> impl Iterator<Item = &'d RefSite> + 'd {
        self.refs
            .iter()
            .filter(|r| r.stage.is_some_and(|s| reachable.contains(&s)))
    }

    /// Image references of the reachable stages: FROM bases and `--from` images.
    pub fn images_used(&self, reachable: &BTreeSet<usize>) -> Vec<String> {
        let mut out = Vec::new();
        for &i in reachable {
            let s = &self.stages[i];
            if let Base::Image(img) = &s.base {
                out.push(img.clone());
            }
            out.extend(s.image_deps.iter().cloned());
        }
        out
    }
}

fn flag<'b, 'a>(
    flags: &'b [Flag<'a>],
    name: &str,
) -> Option<&'b parse_dockerfile::UnescapedString<'a>> {
    flags
        .iter()
        .rev()
        .find(|f| f.name.value.eq_ignore_ascii_case(name))
        .and_then(|f| f.value.as_ref())
}

/// Names of variables used in a word (`$A`, `${B:-x}` → A, B).
fn vars_in(word: &str) -> Vec<String> {
    let b = word.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let mut j = i + 1;
            if j < b.len() && b[j] == b'{' {
                j += 1;
            }
            let start = j;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            if j > start {
                out.push(word[start..j].to_string());
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_read_matching() {
        let r = |s: &str| ContextRead {
            source: s.into(),
            line: 1,
            kind: ReadKind::Copy,
            onbuild: false,
        };
        assert!(r("").reads("any/thing"));
        assert!(r("src").reads("src/a.py"));
        assert!(r("src").reads("src"));
        assert!(!r("src").reads("srcx/a.py"));
        assert!(r("*.py").reads("main.py"));
        assert!(!r("*.py").reads("pkg/main.py"));
        assert!(
            r("pk?").reads("pkg/main.py"),
            "a wildcard matching a directory copies all of it"
        );
        assert!(r("a/*/c").reads("a/b/c/d"));
    }
}
