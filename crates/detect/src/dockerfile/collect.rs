//! What one instruction of a stage takes into the build: context reads (`COPY`, `ADD`,
//! `RUN --mount=type=bind`), earlier stages and images (`--from`), and `ONBUILD` reads.

use parse_dockerfile::{Flag, Instruction, RunInstruction, Source, UnescapedString};

use super::parse::Scope;
use super::{
    Base, ContextRead, DockerfileError, Problem, ReadKind, RefKind, RefSite, Stage, error_at, flag,
    line_of, span_in,
};
use crate::expand::expand_word;
use crate::ignore::clean_path;

/// What the instructions of a stage add to it.
#[derive(Default)]
pub(super) struct StageAcc {
    pub(super) reads: Vec<ContextRead>,
    pub(super) stage_deps: Vec<usize>,
    pub(super) image_deps: Vec<String>,
    pub(super) onbuild_reads: Vec<ContextRead>,
    /// Image reference sites, in the order found.
    pub(super) refs: Vec<RefSite>,
}

/// The stage an instruction belongs to, and what it can see.
pub(super) struct StageCx<'a> {
    pub(super) text: &'a str,
    pub(super) escape: char,
    pub(super) sc: &'a Scope<'a>,
    /// The stages so far; the current one is last.
    pub(super) stages: &'a [Stage],
    /// The current stage.
    pub(super) idx: usize,
}

impl StageCx<'_> {
    fn err(&self, offset: usize, problem: impl Into<Problem>) -> DockerfileError {
        error_at(self.text, offset, problem)
    }

    fn expand(&self, word: &str, offset: usize) -> Result<String, DockerfileError> {
        expand_word(word, self.escape, self.sc).map_err(|m| self.err(offset, m))
    }

    fn resolve_from(&self, value: &str, offset: usize) -> Result<Base, DockerfileError> {
        resolve_from(value, self.stages, self.idx).map_err(|m| self.err(offset, m))
    }
}

/// Where an instruction starts (for errors about instructions before the first FROM).
pub(super) fn instruction_start(i: &Instruction<'_>) -> usize {
    match i {
        Instruction::Add(x) => x.add.span.start,
        Instruction::Copy(x) => x.copy.span.start,
        Instruction::Run(x) => x.run.span.start,
        Instruction::Onbuild(x) => x.onbuild.span.start,
        Instruction::Cmd(x) => x.cmd.span.start,
        Instruction::Entrypoint(x) => x.entrypoint.span.start,
        Instruction::Workdir(x) => x.workdir.span.start,
        Instruction::User(x) => x.user.span.start,
        Instruction::Label(x) => x.label.span.start,
        Instruction::Expose(x) => x.expose.span.start,
        Instruction::Volume(x) => x.volume.span.start,
        Instruction::Shell(x) => x.shell.span.start,
        Instruction::Healthcheck(x) => x.healthcheck.span.start,
        Instruction::Stopsignal(x) => x.stopsignal.span.start,
        Instruction::Maintainer(x) => x.maintainer.span.start,
        _ => 0,
    }
}

fn is_remote_source(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l.starts_with("http://")
        || l.starts_with("https://")
        || l.starts_with("git@")
        || l.starts_with("git://")
        || l.starts_with("ssh://")
}

/// Resolve a `--from` value: a stage (by name or index) or an image.
fn resolve_from(value: &str, stages: &[Stage], current: usize) -> Result<Base, Problem> {
    let lower = value.to_lowercase();
    if let Some(i) = stages[..current]
        .iter()
        .position(|s| s.name.as_deref() == Some(lower.as_str()))
    {
        return Ok(Base::Stage(i));
    }
    if let Ok(i) = value.parse::<usize>() {
        if i >= current {
            return Err(Problem::FromLaterStage {
                value: value.to_string(),
                index: i,
            });
        }
        return Ok(Base::Stage(i));
    }
    if stages[current].name.as_deref() == Some(lower.as_str()) {
        return Err(Problem::FromOwnStage {
            value: value.to_string(),
        });
    }
    if lower == "scratch" {
        return Ok(Base::Scratch);
    }
    Ok(Base::Image(value.to_string()))
}

/// `/`-rooted, cleaned and made relative to the context root again.
fn context_path(word: &str) -> String {
    let cleaned = clean_path(&format!("/{word}"));
    cleaned.trim_start_matches('/').to_string()
}

/// Add what `ins` takes into the build to `acc`. `onbuild`: `ins` is the trigger of an
/// `ONBUILD` (its reads belong to images built on this one; `--from` and mounts are ignored).
pub(super) fn collect(
    ins: &Instruction<'_>,
    cx: &StageCx<'_>,
    onbuild: bool,
    acc: &mut StageAcc,
) -> Result<(), DockerfileError> {
    match ins {
        Instruction::Copy(c) => {
            let op = CopyOp {
                options: &c.options,
                src: &c.src,
                keyword_start: c.copy.span.start,
                kind: ReadKind::Copy,
            };
            copy_or_add(cx, &op, onbuild, acc)
        }
        Instruction::Add(a) => {
            let op = CopyOp {
                options: &a.options,
                src: &a.src,
                keyword_start: a.add.span.start,
                kind: ReadKind::Add,
            };
            copy_or_add(cx, &op, onbuild, acc)
        }
        Instruction::Run(r) if !onbuild => run_mounts(cx, r, acc),
        Instruction::Onbuild(o) => collect(&o.instruction, cx, true, acc),
        _ => Ok(()),
    }
}

/// The parts of a `COPY` or `ADD` that matter here.
struct CopyOp<'i, 'a> {
    options: &'i [Flag<'a>],
    src: &'i [Source<'a>],
    keyword_start: usize,
    /// `Copy` or `Add`.
    kind: ReadKind,
}

fn copy_or_add(
    cx: &StageCx<'_>,
    op: &CopyOp<'_, '_>,
    onbuild: bool,
    acc: &mut StageAcc,
) -> Result<(), DockerfileError> {
    let line = line_of(cx.text, op.keyword_start);
    if let Some(from) = flag(op.options, "from") {
        if onbuild {
            return Ok(());
        }
        return copy_from(cx, from, line, acc);
    }
    for s in op.src {
        let Source::Path(p) = s else { continue };
        let word = if onbuild {
            // ONBUILD sources are expanded in the child build; use them as written.
            p.value.to_string()
        } else {
            cx.expand(&p.value, p.span.start)?
        };
        if op.kind == ReadKind::Add && is_remote_source(&word) {
            continue;
        }
        let read = ContextRead {
            source: context_path(&word),
            line,
            kind: op.kind,
            onbuild,
        };
        if onbuild {
            acc.onbuild_reads.push(read);
        } else {
            acc.reads.push(read);
        }
    }
    Ok(())
}

/// `COPY/ADD --from=<stage or image>`.
fn copy_from(
    cx: &StageCx<'_>,
    from: &UnescapedString<'_>,
    line: usize,
    acc: &mut StageAcc,
) -> Result<(), DockerfileError> {
    let raw = from.value.to_string();
    let expanded = cx.expand(&raw, from.span.start)?;
    match cx.resolve_from(&expanded, from.span.start)? {
        Base::Stage(i) => acc.stage_deps.push(i),
        Base::Scratch => {}
        Base::Image(img) => {
            let span = span_in(cx.text, &raw, &from.span);
            push_image(cx, acc, RefKind::CopyFrom, line, raw, span, img);
        }
    }
    Ok(())
}

/// Record an image a stage takes files from, and where it is written.
fn push_image(
    cx: &StageCx<'_>,
    acc: &mut StageAcc,
    kind: RefKind,
    line: usize,
    raw: String,
    span: Option<std::ops::Range<usize>>,
    img: String,
) {
    acc.refs.push(RefSite {
        kind,
        stage: Some(cx.idx),
        line,
        raw,
        span,
        expanded: img.clone(),
        arg: None,
    });
    acc.image_deps.push(img);
}

/// The fields of a `--mount=` value that matter here.
struct MountSpec {
    /// `type=` lowercased; `bind` when absent.
    kind: String,
    /// `from=` and the byte offset of its value in the mount value.
    from: Option<(String, usize)>,
    /// `source=`/`src=`.
    source: Option<String>,
}

impl MountSpec {
    fn parse(value: &str) -> Self {
        let mut spec = MountSpec {
            kind: "bind".to_string(),
            from: None,
            source: None,
        };
        let mut offset = 0usize;
        for field in value.split(',') {
            let (k, val) = field.split_once('=').unwrap_or((field, ""));
            match k.trim().to_ascii_lowercase().as_str() {
                "type" => spec.kind = val.to_ascii_lowercase(),
                "from" => spec.from = Some((val.to_string(), offset + k.len() + 1)),
                "source" | "src" => spec.source = Some(val.to_string()),
                _ => {}
            }
            offset += field.len() + 1;
        }
        spec
    }
}

fn run_mounts(
    cx: &StageCx<'_>,
    r: &RunInstruction<'_>,
    acc: &mut StageAcc,
) -> Result<(), DockerfileError> {
    let line = line_of(cx.text, r.run.span.start);
    let mounts = r
        .options
        .iter()
        .filter(|f| f.name.value.eq_ignore_ascii_case("mount"));
    for v in mounts.filter_map(|f| f.value.as_ref()) {
        let expanded = cx.expand(&v.value, v.span.start)?;
        let spec = MountSpec::parse(&expanded);
        if !matches!(spec.kind.as_str(), "bind" | "cache") {
            continue;
        }
        match spec.from {
            Some((fv, off)) => mount_from(cx, v, &expanded, fv, off, line, acc)?,
            None if spec.kind == "bind" => acc.reads.push(ContextRead {
                source: context_path(&spec.source.unwrap_or_default()),
                line,
                kind: ReadKind::Mount,
                onbuild: false,
            }),
            None => {}
        }
    }
    Ok(())
}

/// `RUN --mount=…,from=<stage or image>`; `off` is where `fv` starts in `expanded`.
fn mount_from(
    cx: &StageCx<'_>,
    v: &UnescapedString<'_>,
    expanded: &str,
    fv: String,
    off: usize,
    line: usize,
    acc: &mut StageAcc,
) -> Result<(), DockerfileError> {
    match cx.resolve_from(&fv, v.span.start)? {
        Base::Stage(i) => acc.stage_deps.push(i),
        Base::Scratch => {}
        Base::Image(img) => {
            // The span is exact only when the mount value had nothing to expand.
            let span = if *v.value == *expanded {
                let s = v.span.start + off;
                span_in(cx.text, &fv, &(s..s + fv.len()))
            } else {
                None
            };
            push_image(cx, acc, RefKind::MountFrom, line, fv, span, img);
        }
    }
    Ok(())
}
