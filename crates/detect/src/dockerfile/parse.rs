//! `Dockerfile::parse`: walks the instructions once, keeping BuildKit's variable scopes (global
//! `ARG`s, then one scope per stage) and handing every other instruction to `collect`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use parse_dockerfile::{
    ArgInstruction, EnvInstruction, FromInstruction, Instruction, UnescapedString,
};

use super::collect::{StageAcc, StageCx, collect, instruction_start};
use super::{
    Base, Dockerfile, DockerfileError, Problem, RefKind, RefSite, Stage, SyntaxError, error_at,
    flag, line_of, span_in, vars_in,
};
use crate::expand::{Lookup, expand_word, split_words};

/// The variables of one stage: its `ARG`s and `ENV`s.
pub(super) struct Scope<'a> {
    pub(super) vars: BTreeMap<String, String>,
    pub(super) parent: Option<&'a BTreeMap<String, String>>,
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
                problem: Problem::Syntax(SyntaxError::new(e)),
            }
        })?;
        let escape = parsed
            .parser_directives
            .escape
            .as_ref()
            .map_or('\\', |d| d.value.value);
        let mut walk = Walk::new(text, escape, build_args);
        for ins in &parsed.instructions {
            walk.instruction(ins)?;
        }
        walk.finish()
    }
}

/// The state of one pass over the instructions.
struct Walk<'t> {
    text: &'t str,
    escape: char,
    build_args: &'t BTreeMap<String, String>,
    /// Global ARG values (build args win over defaults).
    global: BTreeMap<String, String>,
    global_args: Vec<(String, Option<String>)>,
    /// Where each global ARG's default is written, recorded once a FROM uses it.
    global_arg_sites: BTreeMap<String, RefSite>,
    stages: Vec<Stage>,
    refs: Vec<RefSite>,
    /// The current stage's variables; `None` before the first FROM.
    scope: Option<Scope<'static>>,
    /// The global map is frozen when the first FROM is seen; kept for stage `ARG`s.
    frozen_global: Option<BTreeMap<String, String>>,
}

/// `name[=default]` of an `ARG` word.
fn arg_word(w: &str) -> (String, Option<String>) {
    match w.split_once('=') {
        Some((n, v)) => (n.to_string(), Some(v.to_string())),
        None => (w.to_string(), None),
    }
}

impl<'t> Walk<'t> {
    fn new(text: &'t str, escape: char, build_args: &'t BTreeMap<String, String>) -> Self {
        Walk {
            text,
            escape,
            build_args,
            global: BTreeMap::new(),
            global_args: Vec::new(),
            global_arg_sites: BTreeMap::new(),
            stages: Vec::new(),
            refs: Vec::new(),
            scope: None,
            frozen_global: None,
        }
    }

    fn err(&self, offset: usize, problem: impl Into<Problem>) -> DockerfileError {
        error_at(self.text, offset, problem)
    }

    /// Expand `word` with `vars`, an error pointing at `offset` if it cannot be.
    fn expand(
        &self,
        word: &str,
        vars: &dyn Lookup,
        offset: usize,
    ) -> Result<String, DockerfileError> {
        expand_word(word, self.escape, vars).map_err(|m| self.err(offset, m))
    }

    fn instruction(&mut self, ins: &Instruction<'_>) -> Result<(), DockerfileError> {
        match ins {
            Instruction::Arg(a) => self.arg(a),
            Instruction::From(f) => self.from(f),
            Instruction::Env(e) => self.env(e),
            other => self.stage_instruction(other),
        }
    }

    fn arg(&mut self, a: &ArgInstruction<'_>) -> Result<(), DockerfileError> {
        let at = a.arguments.span.start;
        let words = split_words(&a.arguments.value, self.escape).map_err(|m| self.err(at, m))?;
        for w in words {
            let (name, default_raw) = arg_word(&w);
            if name.is_empty() {
                return Err(self.err(at, Problem::ArgWithoutName { word: w }));
            }
            if self.scope.is_none() {
                self.global_arg(a, name, default_raw)?;
            } else {
                self.stage_arg(at, name, default_raw)?;
            }
        }
        Ok(())
    }

    /// An `ARG` before the first FROM: sets a global and remembers where its default is written.
    fn global_arg(
        &mut self,
        a: &ArgInstruction<'_>,
        name: String,
        default_raw: Option<String>,
    ) -> Result<(), DockerfileError> {
        let default = match &default_raw {
            Some(raw) => Some(self.expand(raw, &self.global, a.arguments.span.start)?),
            None => None,
        };
        match self.build_args.get(&name).or(default.as_ref()) {
            Some(v) => self.global.insert(name.clone(), v.clone()),
            None => self.global.remove(&name),
        };
        self.global_args.push((name.clone(), default.clone()));
        if let Some(raw) = default_raw {
            let site = self.arg_default_site(&a.arguments, name.clone(), raw, default);
            self.global_arg_sites.insert(name, site);
        }
        Ok(())
    }

    /// The `ArgDefault` reference site of `ARG name=raw`.
    fn arg_default_site(
        &self,
        arguments: &UnescapedString<'_>,
        name: String,
        raw: String,
        default: Option<String>,
    ) -> RefSite {
        let start_in_args = arguments.value.find(&format!("{name}={raw}"));
        let span = match (&arguments.value, start_in_args) {
            (Cow::Borrowed(_), Some(off)) => {
                let s = arguments.span.start + off + name.len() + 1;
                span_in(self.text, &raw, &(s..s + raw.len()))
            }
            _ => None,
        };
        RefSite {
            kind: RefKind::ArgDefault,
            stage: None,
            line: line_of(self.text, arguments.span.start),
            raw,
            span,
            expanded: default.unwrap_or_default(),
            arg: Some(name),
        }
    }

    /// An `ARG` inside a stage: build arg, else the global value, else its own default.
    fn stage_arg(
        &mut self,
        at: usize,
        name: String,
        default_raw: Option<String>,
    ) -> Result<(), DockerfileError> {
        let (text, escape) = (self.text, self.escape);
        let Some(sc) = self.scope.as_mut() else {
            return Ok(());
        };
        let inherited = self
            .frozen_global
            .as_ref()
            .and_then(|g| g.get(&name).cloned());
        let default = match &default_raw {
            Some(raw) => Some(expand_word(raw, escape, &*sc).map_err(|m| error_at(text, at, m))?),
            None => None,
        };
        match self
            .build_args
            .get(&name)
            .cloned()
            .or(inherited)
            .or(default)
        {
            Some(v) => sc.vars.insert(name, v),
            None => sc.vars.remove(&name),
        };
        Ok(())
    }

    fn from(&mut self, f: &FromInstruction<'_>) -> Result<(), DockerfileError> {
        let g = self
            .frozen_global
            .get_or_insert_with(|| self.global.clone())
            .clone();
        let line = line_of(self.text, f.from.span.start);
        let image_raw = f.image.value.to_string();
        let expanded = self.expand(&image_raw, &g, f.image.span.start)?;
        if expanded.is_empty() {
            return Err(self.err(
                f.image.span.start,
                Problem::EmptyFrom {
                    image: image_raw.to_string(),
                },
            ));
        }
        let base = self.base_of(&expanded);
        if matches!(base, Base::Image(_)) {
            self.record_from_refs(&f.image, line, expanded);
        }
        self.stages.push(Stage {
            index: self.stages.len(),
            name: f.as_.as_ref().map(|(_, n)| n.value.to_lowercase()),
            line,
            base,
            platform: flag(&f.options, "platform").map(|v| v.value.to_string()),
            reads: Vec::new(),
            stage_deps: Vec::new(),
            image_deps: Vec::new(),
            onbuild_reads: Vec::new(),
        });
        self.scope = Some(Scope {
            vars: BTreeMap::new(),
            parent: None,
        });
        Ok(())
    }

    /// What a FROM naming `expanded` is built on.
    fn base_of(&self, expanded: &str) -> Base {
        let lower = expanded.to_lowercase();
        if lower == "scratch" {
            Base::Scratch
        } else if let Some(i) = self
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            Base::Stage(i)
        } else {
            Base::Image(expanded.to_string())
        }
    }

    /// Record a FROM image reference, preceded by the global ARG defaults it takes its image from.
    fn record_from_refs(&mut self, image: &UnescapedString<'_>, line: usize, expanded: String) {
        let image_raw = image.value.to_string();
        for var in vars_in(&image_raw) {
            if let Some(site) = self.global_arg_sites.get(&var)
                && !self.refs.iter().any(|r| {
                    r.kind == RefKind::ArgDefault && r.arg.as_deref() == Some(var.as_str())
                })
            {
                self.refs.push(site.clone());
            }
        }
        self.refs.push(RefSite {
            kind: RefKind::From,
            stage: Some(self.stages.len()),
            line,
            span: span_in(self.text, &image_raw, &image.span),
            raw: image_raw,
            expanded,
            arg: None,
        });
    }

    fn env(&mut self, e: &EnvInstruction<'_>) -> Result<(), DockerfileError> {
        let (text, escape) = (self.text, self.escape);
        let Some(sc) = self.scope.as_mut() else {
            return Err(error_at(text, e.env.span.start, Problem::EnvBeforeFrom));
        };
        let at = e.arguments.span.start;
        let err = |m: crate::expand::ExpandError| error_at(text, at, m);
        let words = split_words(&e.arguments.value, escape).map_err(err)?;
        if words.first().is_some_and(|w| !w.contains('=')) {
            // Legacy `ENV KEY value with spaces`.
            let key = words[0].clone();
            let rest =
                e.arguments.value[e.arguments.value.find(&key).unwrap_or(0) + key.len()..].trim();
            let v = expand_word(rest, escape, &*sc).map_err(err)?;
            sc.vars.insert(key, v);
            return Ok(());
        }
        for w in words {
            let Some((k, v)) = w.split_once('=') else {
                return Err(error_at(
                    text,
                    at,
                    Problem::EnvNotKeyValue { word: w.clone() },
                ));
            };
            let v = expand_word(v, escape, &*sc).map_err(err)?;
            sc.vars.insert(k.to_string(), v);
        }
        Ok(())
    }

    /// Any other instruction: what it reads and which stages and images it takes files from.
    fn stage_instruction(&mut self, ins: &Instruction<'_>) -> Result<(), DockerfileError> {
        let Some(sc) = self.scope.as_ref() else {
            let off = instruction_start(ins);
            return Err(self.err(off, Problem::OnlyArgBeforeFrom));
        };
        let idx = self.stages.len() - 1;
        let cx = StageCx {
            text: self.text,
            escape: self.escape,
            sc,
            stages: &self.stages,
            idx,
        };
        let mut acc = StageAcc::default();
        collect(ins, &cx, false, &mut acc)?;
        let st = &mut self.stages[idx];
        st.reads.extend(acc.reads);
        st.stage_deps.extend(acc.stage_deps);
        st.image_deps.extend(acc.image_deps);
        st.onbuild_reads.extend(acc.onbuild_reads);
        self.refs.extend(acc.refs);
        Ok(())
    }

    fn finish(mut self) -> Result<Dockerfile, DockerfileError> {
        if self.stages.is_empty() {
            return Err(self.err(self.text.len(), Problem::NoFrom));
        }
        self.refs
            .sort_by_key(|r| (r.line, r.span.as_ref().map_or(0, |s| s.start)));
        Ok(Dockerfile {
            escape: self.escape,
            global_args: self.global_args,
            stages: self.stages,
            refs: self.refs,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::super::{Base, Dockerfile, RefKind};

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
