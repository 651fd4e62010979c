//! The Dockerfile model ferry needs: stages, their bases, what they read from the build context,
//! and every image reference with its source span (for in-place rewrites).
//!
//! Syntax comes from the `parse-dockerfile` crate (BuildKit's grammar: parser directives and
//! `escape`, continuations, comments inside continuations, heredocs, JSON forms, flags), with
//! byte spans. On top of it this module applies BuildKit's semantics: global vs stage `ARG`
//! scope, `ENV`, variable expansion, stage names and indexes, `COPY/ADD --from`,
//! `RUN --mount` (bind, cache, `from=`, `source=`), `ONBUILD`, and reachability from the target.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use parse_dockerfile::{Flag, Instruction, Source};

use crate::expand::{Lookup, expand_word, split_words};
use crate::ignore::clean_path;

/// A problem in a Dockerfile, with the 1-based line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerfileError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for DockerfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
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
    /// `COPY`, `ADD`, `RUN --mount` or `ONBUILD COPY`…
    pub instruction: &'static str,
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

struct Scope<'a> {
    vars: BTreeMap<String, String>,
    parent: Option<&'a BTreeMap<String, String>>,
}

impl Lookup for Scope<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .or_else(|| self.parent.and_then(|p| p.get(name).map(String::as_str)))
    }
}

/// `text` with `CMD []`/`ENTRYPOINT []` lines rewritten as `CMD ""` (same length), or `None`
/// when there are none.
fn empty_exec_forms(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let t = body.trim_start();
        let word_end = t.find(|c: char| c.is_whitespace()).unwrap_or(t.len());
        let (word, rest) = t.split_at(word_end);
        if (word.eq_ignore_ascii_case("CMD") || word.eq_ignore_ascii_case("ENTRYPOINT"))
            && rest.trim().replace(' ', "") == "[]"
            && let Some(pos) = line.rfind(']')
        {
            let open = line[..pos].rfind('[').unwrap_or(pos);
            let mut l = line.to_string();
            l.replace_range(open..=open, "\"");
            l.replace_range(pos..=pos, "\"");
            out.push_str(&l);
            changed = true;
            continue;
        }
        out.push_str(line);
    }
    changed.then_some(out)
}

/// `span` when the source text there is exactly `value` (no continuation or escape inside).
fn span_in(text: &str, value: &str, span: &Range<usize>) -> Option<Range<usize>> {
    (text.get(span.clone()) == Some(value)).then(|| span.clone())
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

impl Dockerfile {
    /// Parse `text` with the given `--build-arg` values.
    pub fn parse(
        text: &str,
        build_args: &BTreeMap<String, String>,
    ) -> Result<Self, DockerfileError> {
        // BuildKit accepts `CMD []` / `ENTRYPOINT []` (reset to nothing); parse-dockerfile wants an
        // argument. Neither instruction matters to ferry, so the `[]` is swapped for `""` of the
        // same length: every byte span of the file stays valid.
        let patched = empty_exec_forms(text);
        let parsed = parse_dockerfile::parse(patched.as_deref().unwrap_or(text)).map_err(|e| {
            DockerfileError {
                line: e.line().max(1),
                message: e.to_string(),
            }
        })?;
        let escape = parsed
            .parser_directives
            .escape
            .as_ref()
            .map_or('\\', |d| d.value.value);
        let err = |offset: usize, message: String| DockerfileError {
            line: line_of(text, offset),
            message,
        };

        let mut global: BTreeMap<String, String> = BTreeMap::new();
        let mut global_args = Vec::new();
        let mut global_arg_sites: BTreeMap<String, RefSite> = BTreeMap::new();
        let mut stages: Vec<Stage> = Vec::new();
        let mut refs: Vec<RefSite> = Vec::new();
        let mut scope: Option<Scope<'_>> = None;
        // The global map is frozen when the first FROM is seen; keep a copy for stage scopes.
        let mut frozen_global: Option<BTreeMap<String, String>> = None;

        for ins in &parsed.instructions {
            match ins {
                Instruction::Arg(a) => {
                    let words = split_words(&a.arguments.value, escape)
                        .map_err(|m| err(a.arguments.span.start, m))?;
                    for w in words {
                        let (name, default_raw) = match w.split_once('=') {
                            Some((n, v)) => (n.to_string(), Some(v.to_string())),
                            None => (w.clone(), None),
                        };
                        if name.is_empty() {
                            return Err(err(
                                a.arguments.span.start,
                                format!("ARG {w:?} has no name"),
                            ));
                        }
                        match scope.as_mut() {
                            None => {
                                let default = match &default_raw {
                                    Some(raw) => Some(
                                        expand_word(raw, escape, &global)
                                            .map_err(|m| err(a.arguments.span.start, m))?,
                                    ),
                                    None => None,
                                };
                                let value = build_args.get(&name).cloned().or(default.clone());
                                if let Some(v) = &value {
                                    global.insert(name.clone(), v.clone());
                                } else {
                                    global.remove(&name);
                                }
                                global_args.push((name.clone(), default.clone()));
                                if let Some(raw) = default_raw {
                                    let start_in_args =
                                        a.arguments.value.find(&format!("{name}={raw}"));
                                    let span = match (&a.arguments.value, start_in_args) {
                                        (std::borrow::Cow::Borrowed(_), Some(off)) => {
                                            let s = a.arguments.span.start + off + name.len() + 1;
                                            span_in(text, &raw, &(s..s + raw.len()))
                                        }
                                        _ => None,
                                    };
                                    global_arg_sites.insert(
                                        name.clone(),
                                        RefSite {
                                            kind: RefKind::ArgDefault,
                                            stage: None,
                                            line: line_of(text, a.arguments.span.start),
                                            raw,
                                            span,
                                            expanded: default.unwrap_or_default(),
                                            arg: Some(name),
                                        },
                                    );
                                }
                            }
                            Some(sc) => {
                                let inherited =
                                    frozen_global.as_ref().and_then(|g| g.get(&name).cloned());
                                let default = match &default_raw {
                                    Some(raw) => Some(
                                        expand_word(raw, escape, &*sc)
                                            .map_err(|m| err(a.arguments.span.start, m))?,
                                    ),
                                    None => None,
                                };
                                let value =
                                    build_args.get(&name).cloned().or(inherited).or(default);
                                match value {
                                    Some(v) => {
                                        sc.vars.insert(name, v);
                                    }
                                    None => {
                                        sc.vars.remove(&name);
                                    }
                                }
                            }
                        }
                    }
                }
                Instruction::From(f) => {
                    let g = frozen_global.get_or_insert_with(|| global.clone()).clone();
                    let line = line_of(text, f.from.span.start);
                    let image_raw = f.image.value.to_string();
                    let expanded = expand_word(&image_raw, escape, &g)
                        .map_err(|m| err(f.image.span.start, m))?;
                    if expanded.is_empty() {
                        return Err(err(
                            f.image.span.start,
                            format!("FROM {image_raw:?} expands to an empty name"),
                        ));
                    }
                    let platform = flag(&f.options, "platform").map(|v| v.value.to_string());
                    let name = f.as_.as_ref().map(|(_, n)| n.value.to_lowercase());
                    let lower = expanded.to_lowercase();
                    let base = if lower == "scratch" {
                        Base::Scratch
                    } else if let Some(i) = stages
                        .iter()
                        .position(|s| s.name.as_deref() == Some(lower.as_str()))
                    {
                        Base::Stage(i)
                    } else {
                        Base::Image(expanded.clone())
                    };
                    if matches!(base, Base::Image(_)) {
                        // A FROM that takes its image from global ARGs: record those ARG defaults.
                        for var in vars_in(&image_raw) {
                            if let Some(site) = global_arg_sites.get(&var)
                                && !refs.iter().any(|r| {
                                    r.kind == RefKind::ArgDefault
                                        && r.arg.as_deref() == Some(var.as_str())
                                })
                            {
                                refs.push(site.clone());
                            }
                        }
                        refs.push(RefSite {
                            kind: RefKind::From,
                            stage: Some(stages.len()),
                            line,
                            raw: image_raw.clone(),
                            span: span_in(text, &image_raw, &f.image.span),
                            expanded: expanded.clone(),
                            arg: None,
                        });
                    }
                    stages.push(Stage {
                        index: stages.len(),
                        name,
                        line,
                        base,
                        platform,
                        reads: Vec::new(),
                        stage_deps: Vec::new(),
                        image_deps: Vec::new(),
                        onbuild_reads: Vec::new(),
                    });
                    scope = Some(Scope {
                        vars: BTreeMap::new(),
                        parent: None,
                    });
                }
                Instruction::Env(e) => {
                    let Some(sc) = scope.as_mut() else {
                        return Err(err(e.env.span.start, "ENV before the first FROM".into()));
                    };
                    let words = split_words(&e.arguments.value, escape)
                        .map_err(|m| err(e.arguments.span.start, m))?;
                    if words.first().is_some_and(|w| !w.contains('=')) {
                        // Legacy `ENV KEY value with spaces`.
                        let key = words[0].clone();
                        let rest = e.arguments.value
                            [e.arguments.value.find(&key).unwrap_or(0) + key.len()..]
                            .trim();
                        let v = expand_word(rest, escape, &*sc)
                            .map_err(|m| err(e.arguments.span.start, m))?;
                        sc.vars.insert(key, v);
                    } else {
                        for w in words {
                            let Some((k, v)) = w.split_once('=') else {
                                return Err(err(
                                    e.arguments.span.start,
                                    format!("ENV {w:?} is not KEY=VALUE"),
                                ));
                            };
                            let v = expand_word(v, escape, &*sc)
                                .map_err(|m| err(e.arguments.span.start, m))?;
                            sc.vars.insert(k.to_string(), v);
                        }
                    }
                }
                other => {
                    let Some(sc) = scope.as_ref() else {
                        let off = instruction_start(other);
                        return Err(err(off, "only ARG may come before the first FROM".into()));
                    };
                    let idx = stages.len() - 1;
                    let mut acc = StageAcc::default();
                    collect(
                        other, text, escape, sc, &stages, idx, false, &mut acc, &mut refs,
                    )?;
                    let st = &mut stages[idx];
                    st.reads.extend(acc.reads);
                    st.stage_deps.extend(acc.stage_deps);
                    st.image_deps.extend(acc.image_deps);
                    st.onbuild_reads.extend(acc.onbuild_reads);
                }
            }
        }
        if stages.is_empty() {
            return Err(DockerfileError {
                line: line_of(text, text.len()),
                message: "no FROM instruction".into(),
            });
        }
        refs.sort_by_key(|r| (r.line, r.span.as_ref().map_or(0, |s| s.start)));
        Ok(Dockerfile {
            escape,
            global_args,
            stages,
            refs,
        })
    }

    /// The stage `target` names (by name or index), or the last stage.
    pub fn target_stage(&self, target: Option<&str>) -> Result<usize, String> {
        match target {
            None => Ok(self.stages.len() - 1),
            Some(t) => {
                let lower = t.to_lowercase();
                self.stages
                    .iter()
                    .position(|s| s.name.as_deref() == Some(lower.as_str()))
                    .or_else(|| t.parse::<usize>().ok().filter(|i| *i < self.stages.len()))
                    .ok_or_else(|| format!("target stage {t:?} does not exist"))
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

#[derive(Default)]
struct StageAcc {
    reads: Vec<ContextRead>,
    stage_deps: Vec<usize>,
    image_deps: Vec<String>,
    onbuild_reads: Vec<ContextRead>,
}

fn instruction_start(i: &Instruction<'_>) -> usize {
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

fn is_remote_source(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l.starts_with("http://")
        || l.starts_with("https://")
        || l.starts_with("git@")
        || l.starts_with("git://")
        || l.starts_with("ssh://")
}

/// Resolve a `--from` value: a stage (by name or index) or an image.
fn resolve_from(value: &str, stages: &[Stage], current: usize) -> Result<Base, String> {
    let lower = value.to_lowercase();
    if let Some(i) = stages[..current]
        .iter()
        .position(|s| s.name.as_deref() == Some(lower.as_str()))
    {
        return Ok(Base::Stage(i));
    }
    if let Ok(i) = value.parse::<usize>() {
        if i >= current {
            return Err(format!(
                "--from={value} refers to stage {i}, which is not an earlier stage"
            ));
        }
        return Ok(Base::Stage(i));
    }
    if stages[current].name.as_deref() == Some(lower.as_str()) {
        return Err(format!("--from={value} refers to the stage it is in"));
    }
    if lower == "scratch" {
        return Ok(Base::Scratch);
    }
    Ok(Base::Image(value.to_string()))
}

#[allow(clippy::too_many_arguments)]
fn collect(
    ins: &Instruction<'_>,
    text: &str,
    escape: char,
    sc: &Scope<'_>,
    stages: &[Stage],
    idx: usize,
    onbuild: bool,
    acc: &mut StageAcc,
    refs: &mut Vec<RefSite>,
) -> Result<(), DockerfileError> {
    let err = |offset: usize, message: String| DockerfileError {
        line: line_of(text, offset),
        message,
    };
    match ins {
        Instruction::Copy(_) | Instruction::Add(_) => {
            let (options, src, kw, name) = match ins {
                Instruction::Copy(c) => (&c.options[..], &c.src[..], c.copy.span.start, "COPY"),
                Instruction::Add(a) => (&a.options[..], &a.src[..], a.add.span.start, "ADD"),
                _ => unreachable!("matched above"),
            };
            let line = line_of(text, kw);
            if let Some(from) = flag(options, "from") {
                if onbuild {
                    return Ok(());
                }
                let raw = from.value.to_string();
                let expanded =
                    expand_word(&raw, escape, sc).map_err(|m| err(from.span.start, m))?;
                match resolve_from(&expanded, stages, idx).map_err(|m| err(from.span.start, m))? {
                    Base::Stage(i) => acc.stage_deps.push(i),
                    Base::Scratch => {}
                    Base::Image(img) => {
                        refs.push(RefSite {
                            kind: RefKind::CopyFrom,
                            stage: Some(idx),
                            line,
                            raw: raw.clone(),
                            span: span_in(text, &raw, &from.span),
                            expanded: img.clone(),
                            arg: None,
                        });
                        acc.image_deps.push(img);
                    }
                }
                return Ok(());
            }
            for s in src {
                let Source::Path(p) = s else { continue };
                let word = if onbuild {
                    // ONBUILD sources are expanded in the child build; use them as written.
                    p.value.to_string()
                } else {
                    expand_word(&p.value, escape, sc).map_err(|m| err(p.span.start, m))?
                };
                if name == "ADD" && is_remote_source(&word) {
                    continue;
                }
                let cleaned = clean_path(&format!("/{word}"));
                let source = cleaned.trim_start_matches('/').to_string();
                let read = ContextRead {
                    source,
                    line,
                    instruction: if onbuild {
                        if name == "COPY" {
                            "ONBUILD COPY"
                        } else {
                            "ONBUILD ADD"
                        }
                    } else {
                        name
                    },
                };
                if onbuild {
                    acc.onbuild_reads.push(read);
                } else {
                    acc.reads.push(read);
                }
            }
        }
        Instruction::Run(r) => {
            if onbuild {
                return Ok(());
            }
            let line = line_of(text, r.run.span.start);
            for f in r
                .options
                .iter()
                .filter(|f| f.name.value.eq_ignore_ascii_case("mount"))
            {
                let Some(v) = &f.value else { continue };
                let expanded =
                    expand_word(&v.value, escape, sc).map_err(|m| err(v.span.start, m))?;
                let mut kind = "bind".to_string();
                let mut from: Option<(String, usize)> = None;
                let mut source: Option<String> = None;
                let mut offset = 0usize;
                for field in expanded.split(',') {
                    let (k, val) = field.split_once('=').unwrap_or((field, ""));
                    let key = k.trim().to_ascii_lowercase();
                    match key.as_str() {
                        "type" => kind = val.to_ascii_lowercase(),
                        "from" => from = Some((val.to_string(), offset + k.len() + 1)),
                        "source" | "src" => source = Some(val.to_string()),
                        _ => {}
                    }
                    offset += field.len() + 1;
                }
                if !matches!(kind.as_str(), "bind" | "cache") {
                    continue;
                }
                match from {
                    Some((fv, off)) => {
                        match resolve_from(&fv, stages, idx).map_err(|m| err(v.span.start, m))? {
                            Base::Stage(i) => acc.stage_deps.push(i),
                            Base::Scratch => {}
                            Base::Image(img) => {
                                let span = if *v.value == *expanded {
                                    let s = v.span.start + off;
                                    span_in(text, &fv, &(s..s + fv.len()))
                                } else {
                                    None
                                };
                                refs.push(RefSite {
                                    kind: RefKind::MountFrom,
                                    stage: Some(idx),
                                    line,
                                    raw: fv.clone(),
                                    span,
                                    expanded: img.clone(),
                                    arg: None,
                                });
                                acc.image_deps.push(img);
                            }
                        }
                    }
                    None if kind == "bind" => {
                        let src = source.unwrap_or_default();
                        let cleaned = clean_path(&format!("/{src}"));
                        acc.reads.push(ContextRead {
                            source: cleaned.trim_start_matches('/').to_string(),
                            line,
                            instruction: "RUN --mount",
                        });
                    }
                    None => {}
                }
            }
        }
        Instruction::Onbuild(o) => {
            collect(
                &o.instruction,
                text,
                escape,
                sc,
                stages,
                idx,
                true,
                acc,
                refs,
            )?;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(t: &str) -> Dockerfile {
        Dockerfile::parse(t, &BTreeMap::new()).unwrap()
    }

    #[test]
    fn stages_bases_and_reads() {
        let d = parse(
            "# syntax=docker/dockerfile:1\nARG PY=3.12 BASE=\"python\"\nFROM --platform=$BUILDPLATFORM ${BASE}:${PY}-slim AS Builder\nWORKDIR /app\nCOPY requirements.txt ./\nCOPY --chmod=755 a*.py \\\n   b.py /x/\nRUN --mount=type=bind,source=req.txt,target=/r \\\n    --mount=type=cache,target=/root/.cache pip install -r /r\nRUN <<EOF bash\nFROM not-an-instruction\nCOPY nope /x\nEOF\nONBUILD COPY onb/ /onb\nADD https://example.com/x.tar.gz /x\nCOPY <<EOF /etc/conf\nhello\nEOF\nFROM scratch\nCOPY --from=builder /app /app\n",
        );
        assert_eq!(d.stages.len(), 2);
        assert_eq!(d.stages[0].name.as_deref(), Some("builder"));
        assert_eq!(d.stages[0].base, Base::Image("python:3.12-slim".into()));
        assert_eq!(d.stages[0].platform.as_deref(), Some("$BUILDPLATFORM"));
        let reads: Vec<&str> = d.stages[0]
            .reads
            .iter()
            .map(|r| r.source.as_str())
            .collect();
        assert_eq!(reads, ["requirements.txt", "a*.py", "b.py", "req.txt"]);
        assert_eq!(d.stages[0].onbuild_reads[0].source, "onb");
        assert_eq!(d.stages[1].base, Base::Scratch);
        assert_eq!(d.stages[1].stage_deps, [0]);
        assert_eq!(d.reachable(1), BTreeSet::from([0, 1]));
        let kinds: Vec<(RefKind, &str)> = d
            .refs
            .iter()
            .map(|r| (r.kind, r.expanded.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                (RefKind::ArgDefault, "3.12"),
                (RefKind::ArgDefault, "python"),
                (RefKind::From, "python:3.12-slim")
            ]
        );
    }

    #[test]
    fn copy_from_stage_index_makes_the_stage_depend() {
        let d = parse(
            "FROM alpine AS a\nFROM alpine AS b\nCOPY --from=0 /x /x\nFROM busybox\nCOPY --from=b /y /y\n",
        );
        assert_eq!(d.stages[1].stage_deps, [0]);
        assert_eq!(d.reachable(2), BTreeSet::from([0, 1, 2]));
        assert_eq!(d.reachable(0), BTreeSet::from([0]));
    }

    #[test]
    fn global_and_stage_arg_scope() {
        let d = parse(
            "ARG V=1\nFROM alpine:$V\nCOPY $V.txt /\nARG V\nCOPY $V.txt /\nARG W=w$V\nCOPY $W /\n",
        );
        let reads: Vec<&str> = d.stages[0]
            .reads
            .iter()
            .map(|r| r.source.as_str())
            .collect();
        assert_eq!(
            reads,
            [".txt", "1.txt", "w1"],
            "global ARGs are visible in a stage only once re-declared"
        );
        assert_eq!(d.stages[0].base, Base::Image("alpine:1".into()));
        let mut args = BTreeMap::new();
        args.insert("V".to_string(), "9".to_string());
        let d = Dockerfile::parse("ARG V=1\nFROM alpine:$V\n", &args).unwrap();
        assert_eq!(d.stages[0].base, Base::Image("alpine:9".into()));
    }

    #[test]
    fn env_and_paths_are_cleaned_inside_the_context() {
        let d = parse(
            "FROM alpine\nENV SRC=app DIR=\"conf d\"\nENV LEGACY some value\nCOPY $SRC/../$SRC/./main.py /\nCOPY /abs/x ../../escape /\nCOPY . /all\n",
        );
        let reads: Vec<&str> = d.stages[0]
            .reads
            .iter()
            .map(|r| r.source.as_str())
            .collect();
        assert_eq!(reads, ["app/main.py", "abs/x", "escape", ""]);
    }

    #[test]
    fn mounts_from_images_and_stages_and_escape_directive() {
        let d = parse(
            "# escape=`\nFROM golang:1.22 AS build\nRUN --mount=type=bind,from=ghcr.io/acme/tools:1,source=/bin,target=/t `\n    --mount=type=bind,target=/src `\n    go build\nFROM build\nRUN --mount=type=cache,from=build,target=/c true\nCOPY --from=docker.io/library/busybox:1 /bin/sh /sh\n",
        );
        assert_eq!(d.escape, '`');
        assert_eq!(d.stages[0].image_deps, ["ghcr.io/acme/tools:1"]);
        assert_eq!(
            d.stages[0].reads[0].source, "",
            "a bind mount without source mounts the whole context"
        );
        assert_eq!(d.stages[1].base, Base::Stage(0));
        assert_eq!(d.stages[1].stage_deps, [0]);
        let mount = d
            .refs
            .iter()
            .find(|r| r.kind == RefKind::MountFrom)
            .unwrap();
        assert_eq!(mount.raw, "ghcr.io/acme/tools:1");
        let text = "# escape=`\nFROM golang:1.22 AS build\nRUN --mount=type=bind,from=ghcr.io/acme/tools:1,source=/bin,target=/t `\n    --mount=type=bind,target=/src `\n    go build\nFROM build\nRUN --mount=type=cache,from=build,target=/c true\nCOPY --from=docker.io/library/busybox:1 /bin/sh /sh\n";
        assert_eq!(&text[mount.span.clone().unwrap()], "ghcr.io/acme/tools:1");
        let cf = d.refs.iter().find(|r| r.kind == RefKind::CopyFrom).unwrap();
        assert_eq!(
            &text[cf.span.clone().unwrap()],
            "docker.io/library/busybox:1"
        );
    }

    #[test]
    fn errors_name_the_line() {
        for (t, line) in [
            ("FROM alpine\nCOPY \"open /x\n", 2),
            ("FROM alpine\nFROBNICATE x\n", 2),
            ("RUN echo\n", 1),
            ("ARG X\n", 1),
            ("FROM ${NOPE:?must be set}\n", 1),
            ("FROM alpine AS a\nCOPY --from=a /x /x\n", 2),
            ("FROM alpine\nCOPY --from=3 /x /x\n", 2),
        ] {
            let e = Dockerfile::parse(t, &BTreeMap::new()).unwrap_err();
            assert_eq!(e.line, line, "{t:?}: {e}");
        }
    }

    #[test]
    fn empty_exec_forms_are_accepted_and_spans_stay_exact() {
        let text = "FROM python:3.11 AS base\nENTRYPOINT []\ncmd [ ]\nFROM base\nCOPY --from=busybox:1 /a /b\n";
        let d = parse(text);
        assert_eq!(d.stages.len(), 2);
        let r = d.refs.iter().find(|r| r.kind == RefKind::CopyFrom).unwrap();
        assert_eq!(&text[r.span.clone().unwrap()], "busybox:1");
    }

    #[test]
    fn context_read_matching() {
        let r = |s: &str| ContextRead {
            source: s.into(),
            line: 1,
            instruction: "COPY",
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

    proptest! {
        #[test]
        fn parse_never_panics(t in "(FROM|ARG|COPY|RUN|ENV|ONBUILD|ADD|from| |\\$|\\{|\\}|=|-|--from=|--mount=|type=bind,|source=|a|b|0|\\\\|\\n|\"|'|<<EOF|EOF|\\*|/|\\.){0,40}") {
            let _ = Dockerfile::parse(&t, &BTreeMap::new());
        }

        #[test]
        fn arbitrary_text_never_panics(t in "\\PC{0,200}") {
            let _ = Dockerfile::parse(&t, &BTreeMap::new());
        }
    }
}
