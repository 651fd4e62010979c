//! Rewriting image references in Dockerfiles in place: the library side of `ferry-bump`.
//!
//! A [`Plan`] is a list of byte-range edits per file, computed from the reference sites that
//! [`Dockerfile`](crate::dockerfile::Dockerfile) records with their spans. Only the reference
//! tokens change; everything else — keyword case, whitespace, comments, continuations with either
//! escape character, CRLF line endings, heredoc bodies — stays byte for byte. Nothing here talks
//! to a registry: callers pass the digests they resolved.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use ferry_core::{Digest, Reference};

use crate::dockerfile::{Dockerfile, Problem, RefKind, RefSite};
use crate::error::Result;
use crate::git::Repo;
use crate::images::{FileSource, Image};
use crate::project::Project;
use crate::worktree::WorkTree;

/// One image reference found in a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RefUse {
    /// Repository-relative Dockerfile path.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// Stage index (`None` for a global ARG default).
    pub stage: Option<usize>,
    /// Stage name, if the stage has one.
    pub stage_name: Option<String>,
    /// Where it appears.
    pub kind: RefKind,
    /// The reference as written (variables and quotes included).
    pub spelling: String,
    /// The canonical reference after ARG expansion, when it is one.
    pub canonical: Option<String>,
    /// The pinned digest, when the reference has one.
    pub digest: Option<String>,
    /// The global ARG it is the default of.
    pub arg: Option<String>,
    #[serde(skip)]
    span: Option<Range<usize>>,
}

/// A Dockerfile that could not be read or parsed: reported, left untouched.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// Repository-relative path.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// What is wrong (`message` in JSON).
    #[serde(rename = "message")]
    pub problem: SkipProblem,
}

/// Why a Dockerfile was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipProblem {
    /// The file is not there.
    NotFound,
    /// The file is not UTF-8.
    NotUtf8,
    /// The file does not parse.
    Dockerfile(Problem),
}

impl std::fmt::Display for SkipProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipProblem::NotFound => f.write_str("file not found"),
            SkipProblem::NotUtf8 => f.write_str("not UTF-8"),
            SkipProblem::Dockerfile(p) => p.fmt(f),
        }
    }
}

impl serde::Serialize for SkipProblem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A reference that matches but cannot be rewritten in place (for example, its tag comes from
/// a variable); reported so nobody believes it was updated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Note {
    /// Repository-relative path.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The reference as written.
    pub spelling: String,
    /// Why it was left alone.
    pub reason: NoteReason,
}

/// Why a matching reference was left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteReason {
    /// Its text comes from variables that are not one plain, rewritable `ARG`.
    BuiltFromVariables,
    /// A line continuation or escape splits it, so it has no span to rewrite.
    Split,
}

impl std::fmt::Display for NoteReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NoteReason::BuiltFromVariables => {
                "the reference is built from variables; edit the ARG it uses"
            }
            NoteReason::Split => "the reference is split by a line continuation or escape",
        })
    }
}

impl serde::Serialize for NoteReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One replaced token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Edit {
    /// 1-based line.
    pub line: usize,
    /// Byte range in the old file.
    #[serde(skip)]
    pub range: Range<usize>,
    /// The old token.
    pub old: String,
    /// The new token.
    pub new: String,
}

/// All edits of one file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileChange {
    /// Repository-relative path.
    pub file: String,
    /// The edits, in file order.
    pub edits: Vec<Edit>,
    /// The file before.
    #[serde(skip)]
    pub before: Vec<u8>,
    /// The file after.
    #[serde(skip)]
    pub after: Vec<u8>,
}

/// What a bump would change.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Plan {
    /// Files that change.
    pub changes: Vec<FileChange>,
    /// Files that could not be parsed (left untouched).
    pub skipped: Vec<Skipped>,
    /// Matching references left alone, with the reason.
    pub notes: Vec<Note>,
}

impl Plan {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// A unified diff of every change (`a/FILE` → `b/FILE`).
    pub fn unified_diff(&self) -> String {
        let mut out = String::new();
        for c in &self.changes {
            let before = String::from_utf8_lossy(&c.before);
            let after = String::from_utf8_lossy(&c.after);
            let diff = similar::TextDiff::from_lines(before.as_ref(), after.as_ref());
            out.push_str(
                &diff
                    .unified_diff()
                    .context_radius(3)
                    .header(&format!("a/{}", c.file), &format!("b/{}", c.file))
                    .to_string(),
            );
        }
        out
    }

    /// Write every changed file atomically.
    pub fn apply(&self, tree: &WorkTree) -> Result<()> {
        for c in &self.changes {
            tree.write_atomic(&c.file, &c.after)?;
        }
        Ok(())
    }
}

/// A parsed Dockerfile of the work tree.
struct Parsed {
    file: String,
    text: String,
    refs: Vec<RefSite>,
    stage_names: Vec<Option<String>>,
}

/// Parse every distinct Dockerfile of `images`; unparseable ones go to `skipped`.
fn parse_all(
    source: &dyn FileSource,
    images: &[Image],
    skipped: &mut Vec<Skipped>,
) -> Result<Vec<Parsed>> {
    let files: BTreeSet<&str> = images.iter().map(|i| i.dockerfile.as_str()).collect();
    let mut out = Vec::new();
    for file in files {
        let Some(bytes) = source.read(file)? else {
            skipped.push(Skipped {
                file: file.into(),
                line: 1,
                problem: SkipProblem::NotFound,
            });
            continue;
        };
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => {
                skipped.push(Skipped {
                    file: file.into(),
                    line: 1,
                    problem: SkipProblem::NotUtf8,
                });
                continue;
            }
        };
        match Dockerfile::parse(&text, &BTreeMap::new()) {
            Ok(d) => out.push(Parsed {
                file: file.to_string(),
                stage_names: d.stages.iter().map(|s| s.name.clone()).collect(),
                refs: d.refs,
                text,
            }),
            Err(e) => skipped.push(Skipped {
                file: file.into(),
                line: e.line,
                problem: SkipProblem::Dockerfile(e.problem),
            }),
        }
    }
    Ok(out)
}

/// Every image reference in every Dockerfile, plus the files that could not be parsed.
pub fn list(source: &dyn FileSource, images: &[Image]) -> Result<(Vec<RefUse>, Vec<Skipped>)> {
    let mut skipped = Vec::new();
    let parsed = parse_all(source, images, &mut skipped)?;
    let mut uses = Vec::new();
    for p in &parsed {
        for r in &p.refs {
            let (spelling, span) = unquote(&r.raw, r.span.clone());
            let canonical = Reference::parse(&r.expanded).ok();
            uses.push(RefUse {
                file: p.file.clone(),
                line: r.line,
                stage: r.stage,
                stage_name: r
                    .stage
                    .and_then(|s| p.stage_names.get(s).cloned().flatten()),
                kind: r.kind,
                spelling,
                digest: canonical
                    .as_ref()
                    .and_then(|c| c.digest().map(ToString::to_string)),
                canonical: canonical.map(|c| c.to_string()),
                arg: r.arg.clone(),
                span,
            });
        }
    }
    Ok((uses, skipped))
}

/// `"x"` or `'x'` → `x` with the span narrowed to match.
fn unquote(raw: &str, span: Option<Range<usize>>) -> (String, Option<Range<usize>>) {
    let b = raw.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        let inner = raw[1..raw.len() - 1].to_string();
        let span = span.map(|s| s.start + 1..s.end - 1);
        return (inner, span);
    }
    (raw.to_string(), span)
}

/// `name[:tag][@digest]` as written → (name, tag, digest).
fn split_spelling(s: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (s, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[last_slash..].rfind(':') {
        Some(i) => (
            &rest[..last_slash + i],
            Some(&rest[last_slash + i + 1..]),
            digest,
        ),
        None => (rest, None, digest),
    }
}

fn respell(spelling: &str, tag: Option<&str>, digest: Option<&Digest>) -> String {
    let (name, old_tag, _) = split_spelling(spelling);
    let mut s = name.to_string();
    if let Some(t) = tag.or(old_tag) {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = digest {
        s.push('@');
        s.push_str(&d.to_string());
    }
    s
}

/// Whether a site's spelling is a whole variable (`$BASE`, `${BASE}`) whose global ARG
/// default is itself a rewritable site.
fn is_plain_variable(spelling: &str) -> Option<&str> {
    let v = spelling.strip_prefix('$')?;
    let v = v
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(v);
    v.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        .then_some(v)
}

fn build_plan(
    source: &dyn FileSource,
    images: &[Image],
    decide: &dyn Fn(&Reference, &str) -> Option<String>,
    matches: &dyn Fn(&Reference) -> bool,
) -> Result<Plan> {
    let mut plan = Plan::default();
    let parsed = parse_all(source, images, &mut plan.skipped)?;
    for p in parsed {
        let rewritable_args: BTreeSet<&str> = p
            .refs
            .iter()
            .filter(|r| r.kind == RefKind::ArgDefault)
            .filter_map(|r| r.arg.as_deref())
            .collect();
        let mut edits = Vec::new();
        for r in &p.refs {
            let Ok(expanded) = Reference::parse(&r.expanded) else {
                continue;
            };
            if !matches(&expanded) {
                continue;
            }
            let (spelling, span) = unquote(&r.raw, r.span.clone());
            if spelling.contains('$') {
                let covered =
                    is_plain_variable(&spelling).is_some_and(|v| rewritable_args.contains(v));
                if !covered {
                    plan.notes.push(Note {
                        file: p.file.clone(),
                        line: r.line,
                        spelling: spelling.clone(),
                        reason: NoteReason::BuiltFromVariables,
                    });
                }
                continue;
            }
            let Some(span) = span else {
                plan.notes.push(Note {
                    file: p.file.clone(),
                    line: r.line,
                    spelling,
                    reason: NoteReason::Split,
                });
                continue;
            };
            let Ok(written) = Reference::parse(&spelling) else {
                continue;
            };
            if let Some(new) = decide(&written, &spelling)
                && new != spelling
            {
                edits.push(Edit {
                    line: r.line,
                    range: span,
                    old: spelling,
                    new,
                });
            }
        }
        if edits.is_empty() {
            continue;
        }
        edits.sort_by_key(|e| e.range.start);
        edits.dedup_by_key(|e| e.range.start);
        let mut after = p.text.clone();
        for e in edits.iter().rev() {
            after.replace_range(e.range.clone(), &e.new);
        }
        plan.changes.push(FileChange {
            file: p.file,
            edits,
            before: p.text.into_bytes(),
            after: after.into_bytes(),
        });
    }
    Ok(plan)
}

/// `ferry-bump set`: every reference to `target`'s repository gets `target`'s tag (kept when
/// `target` has none) and `digest` (an old digest is dropped when `digest` is `None`).
pub fn plan_set(
    source: &dyn FileSource,
    images: &[Image],
    target: &Reference,
    digest: Option<&Digest>,
) -> Result<Plan> {
    build_plan(
        source,
        images,
        &|_, spelling| Some(respell(spelling, target.tag(), digest)),
        &|r| r.same_repository(target),
    )
}

/// `ferry-bump refresh`: every pinned reference whose `name:tag` is in `current` with another
/// digest is re-pinned to it.
pub fn plan_refresh(
    source: &dyn FileSource,
    images: &[Image],
    current: &BTreeMap<String, Digest>,
) -> Result<Plan> {
    build_plan(
        source,
        images,
        &|written, spelling| {
            let key = tag_key(written)?;
            let fresh = current.get(&key)?;
            (written.digest() != Some(fresh)).then(|| respell(spelling, None, Some(fresh)))
        },
        &|r| r.digest().is_some() && r.tag().is_some(),
    )
}

/// The `name:tag` a pin is checked against (`None` without a tag or digest).
pub fn tag_key(r: &Reference) -> Option<String> {
    r.digest()?;
    r.tag().map(|t| format!("{}:{t}", r.name()))
}

/// Every pinned `name:tag` of `uses` (the keys [`resolve_pins`] asks for), sorted, once each.
pub fn pinned_tags(uses: &[RefUse]) -> BTreeSet<String> {
    pinned(uses).into_keys().collect()
}

/// [`pinned_tags`] with the reference each key asks for (the tag without the pinned digest).
fn pinned(uses: &[RefUse]) -> BTreeMap<String, Reference> {
    uses.iter()
        .filter_map(|u| Reference::parse(u.canonical.as_deref()?).ok())
        .filter_map(|r| Some((tag_key(&r)?, r.without_digest())))
        .collect()
}

/// What the pinned tags point to now, as far as they could be resolved; `E` is the error of the
/// lookup the caller passed to [`resolve_pins`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current<E> {
    /// `name:tag` → the digest the tag has now.
    pub digests: BTreeMap<String, Digest>,
    /// `(name:tag, why)` for every tag that could not be resolved, sorted by tag.
    pub errors: Vec<(String, E)>,
}

/// Resolve every pinned tag of `uses` once, at most `concurrency` at a time, with `resolve`
/// (a registry lookup of the tag's current digest; its error is kept as it is, so the caller
/// decides how to report it). One failing tag does not stop the others.
pub async fn resolve_pins<F, Fut, E>(uses: &[RefUse], concurrency: usize, resolve: F) -> Current<E>
where
    F: Fn(Reference) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<Digest, E>>,
{
    use futures::StreamExt;
    let answers: Vec<(String, std::result::Result<Digest, E>)> =
        futures::stream::iter(pinned(uses))
            .map(|(key, r)| {
                let pending = resolve(r);
                async move { (key, pending.await) }
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    let mut current = Current {
        digests: BTreeMap::new(),
        errors: Vec::new(),
    };
    for (key, answer) in answers {
        match answer {
            Ok(d) => {
                current.digests.insert(key, d);
            }
            Err(e) => current.errors.push((key, e)),
        }
    }
    current.errors.sort_by(|a, b| a.0.cmp(&b.0));
    current
}

/// A pinned reference whose tag now points to another digest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StalePin {
    /// Repository-relative Dockerfile path.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The reference as written.
    pub spelling: String,
    /// The digest pinned in the file.
    pub pinned: Option<String>,
    /// The digest the tag has now.
    pub current: Digest,
}

/// The pins of `uses` whose tag resolved to another digest than the one written.
pub fn stale_pins(uses: &[RefUse], current: &BTreeMap<String, Digest>) -> Vec<StalePin> {
    uses.iter()
        .filter_map(|u| {
            let r = Reference::parse(u.canonical.as_deref()?).ok()?;
            let fresh = current.get(&tag_key(&r)?)?;
            (r.digest() != Some(fresh)).then(|| StalePin {
                file: u.file.clone(),
                line: u.line,
                spelling: u.spelling.clone(),
                pinned: u.digest.clone(),
                current: fresh.clone(),
            })
        })
        .collect()
}

/// Why `--commit` refuses before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The work tree is not in a git repository.
    NotARepository(std::path::PathBuf),
    /// Files the plan changes already have uncommitted changes.
    Dirty(Vec<String>),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotARepository(p) => {
                write!(f, "--commit: {} is not a git repository", p.display())
            }
            Refusal::Dirty(files) => write!(
                f,
                "refusing to commit: {} ha{} uncommitted changes (commit or stash them first); nothing was changed",
                files.join(", "),
                if files.len() == 1 { "s" } else { "ve" }
            ),
        }
    }
}

/// How [`write`] writes a plan.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Print-only: write nothing.
    pub dry_run: bool,
    /// Commit the changed files (refused when one of them has uncommitted changes).
    pub commit: bool,
    /// The commit subject (the list of edits always follows in the body).
    pub subject: String,
    /// The commit author; git's configured identity when `None`.
    pub author: Option<ferry_core::Identity>,
}

/// What [`write`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Nothing was written (a dry run, or an empty plan).
    Nothing,
    /// The files were written (no commit asked for).
    Files,
    /// The files were written and committed: the new commit.
    Committed(git2::Oid),
    /// `--commit` was refused; nothing was written.
    Refused(Refusal),
}

/// The commit message of a plan: `subject`, a blank line, one `- FILE:LINE: old → new` per edit.
pub fn commit_message(subject: &str, plan: &Plan) -> String {
    let mut message = format!("{subject}\n\n");
    for c in &plan.changes {
        for e in &c.edits {
            message.push_str(&format!("- {}:{}: {} → {}\n", c.file, e.line, e.old, e.new));
        }
    }
    message
}

/// Write `plan` into `tree` (atomically per file) and commit it when asked. The refusals are
/// checked before anything is written, so a refused commit leaves the work tree as it was.
pub fn write(
    tree: &WorkTree,
    repo: Option<&Repo>,
    plan: &Plan,
    how: &WriteOptions,
) -> Result<Written> {
    let commit = how.commit && !plan.is_empty();
    let repo = match (commit, repo) {
        (false, _) => None,
        (true, None) => {
            return Ok(Written::Refused(Refusal::NotARepository(
                tree.root().to_path_buf(),
            )));
        }
        (true, Some(repo)) => {
            let dirty = repo.dirty_paths()?;
            let conflicts: Vec<String> = plan
                .changes
                .iter()
                .filter(|c| dirty.contains(&c.file))
                .map(|c| c.file.clone())
                .collect();
            if !conflicts.is_empty() {
                return Ok(Written::Refused(Refusal::Dirty(conflicts)));
            }
            Some(repo)
        }
    };
    if how.dry_run || plan.is_empty() {
        return Ok(Written::Nothing);
    }
    plan.apply(tree)?;
    let Some(repo) = repo else {
        return Ok(Written::Files);
    };
    let files: Vec<(String, Vec<u8>)> = plan
        .changes
        .iter()
        .map(|c| (c.file.clone(), c.after.clone()))
        .collect();
    let author = how
        .author
        .as_ref()
        .map(|a| (a.name.as_str(), a.email.as_str()));
    let id = repo.commit_files(&files, &commit_message(&how.subject, plan), author)?;
    Ok(Written::Committed(id))
}

/// In-repo images whose Dockerfile `plan` changes, and everything built on them (HEAD's image
/// graph); empty outside a repository or when HEAD's project cannot be loaded (then nothing
/// is promised, rather than a guess).
pub fn rebuilds(repo: Option<&Repo>, plan: &Plan) -> Vec<String> {
    let Some(repo) = repo else { return Vec::new() };
    let Ok(Some(head)) = repo.commit_id("HEAD") else {
        return Vec::new();
    };
    let Ok(project) = Project::load(repo, head) else {
        return Vec::new();
    };
    let files: BTreeSet<&str> = plan.changes.iter().map(|c| c.file.as_str()).collect();
    project.rebuilt_with(&files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    struct Mem(BTreeMap<String, String>);

    impl FileSource for Mem {
        fn dockerfiles(&self) -> Result<Vec<String>> {
            Ok(self.0.keys().cloned().collect())
        }
        fn exists(&self, path: &str) -> bool {
            self.0.contains_key(path)
        }
        fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
            Ok(self.0.get(path).map(|s| s.as_bytes().to_vec()))
        }
    }

    fn image(file: &str) -> Image {
        Image {
            name: file.into(),
            dockerfile: file.into(),
            context: ".".into(),
            repository: None,
            target: None,
            platforms: vec![],
            build_args: BTreeMap::new(),
            extra_inputs: vec![],
        }
    }

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn set(text: &str, target: &str, digest: Option<&str>) -> (String, Plan) {
        let src = Mem(BTreeMap::from([(
            "Dockerfile".to_string(),
            text.to_string(),
        )]));
        let t = Reference::parse(target).unwrap();
        let d = digest.map(|d| Digest::parse(d).unwrap());
        let plan = plan_set(&src, &[image("Dockerfile")], &t, d.as_ref()).unwrap();
        let after = plan.changes.first().map_or(text.to_string(), |c| {
            String::from_utf8(c.after.clone()).unwrap()
        });
        (after, plan)
    }

    #[test]
    fn spelling_is_kept_and_only_tokens_change() {
        let (a, _) = set(
            "from  --platform=$BUILDPLATFORM\tpython:3.11-slim  As  build\r\nCOPY --from=index.docker.io/library/python:3.11 /x /y\r\n",
            "python:3.12-slim",
            None,
        );
        assert_eq!(
            a,
            "from  --platform=$BUILDPLATFORM\tpython:3.12-slim  As  build\r\nCOPY --from=index.docker.io/library/python:3.12-slim /x /y\r\n"
        );
    }

    #[test]
    fn pins_and_drops_digests() {
        let (a, _) = set(&format!("FROM python:3.11@{D}\n"), "python:3.12", None);
        assert_eq!(a, "FROM python:3.12\n");
        let (a, _) = set("FROM python:3.11\n", "python:3.12", Some(D));
        assert_eq!(a, format!("FROM python:3.12@{D}\n"));
    }

    #[test]
    fn arg_defaults_heredocs_lookalikes_and_stages() {
        let text = "ARG BASE=\"python:3.11\" OTHER=pythonista:1\nFROM $BASE AS python\nRUN <<EOF\nFROM python:3.11\nEOF\nFROM python AS final\nFROM ghcr.io/acme/python:3.11\nFROM scratch\nRUN --mount=type=bind,from=python:3.11,source=/a,target=/b true\nFROM python:${PY:-3.11}\n";
        let (a, plan) = set(text, "python:3.12", None);
        assert_eq!(
            a,
            "ARG BASE=\"python:3.12\" OTHER=pythonista:1\nFROM $BASE AS python\nRUN <<EOF\nFROM python:3.11\nEOF\nFROM python AS final\nFROM ghcr.io/acme/python:3.11\nFROM scratch\nRUN --mount=type=bind,from=python:3.12,source=/a,target=/b true\nFROM python:${PY:-3.11}\n"
        );
        assert_eq!(plan.notes.len(), 1, "{:?}", plan.notes);
        assert!(plan.notes[0].spelling.contains("${PY"));
    }

    #[test]
    fn refresh_repins_stale_digests_only() {
        let src = Mem(BTreeMap::from([(
            "Dockerfile".to_string(),
            format!("FROM python:3.12@{D}\nFROM alpine:3@{D}\nFROM busybox\n"),
        )]));
        let fresh = Digest::sha256_of(b"new");
        let current = BTreeMap::from([
            ("docker.io/library/python:3.12".to_string(), fresh.clone()),
            (
                "docker.io/library/alpine:3".to_string(),
                Digest::parse(D).unwrap(),
            ),
        ]);
        let plan = plan_refresh(&src, &[image("Dockerfile")], &current).unwrap();
        assert_eq!(
            String::from_utf8(plan.changes[0].after.clone()).unwrap(),
            format!("FROM python:3.12@{fresh}\nFROM alpine:3@{D}\nFROM busybox\n")
        );
    }

    #[test]
    fn unparseable_files_are_skipped_with_their_line() {
        let src = Mem(BTreeMap::from([
            (
                "a/Dockerfile".to_string(),
                "FROM python:3.11\nCOPY \"x /y\n".to_string(),
            ),
            ("b/Dockerfile".to_string(), "FROM python:3.11\n".to_string()),
        ]));
        let plan = plan_set(
            &src,
            &[image("a/Dockerfile"), image("b/Dockerfile")],
            &Reference::parse("python:3.12").unwrap(),
            None,
        )
        .unwrap();
        assert_eq!(plan.skipped.len(), 1);
        assert_eq!(plan.skipped[0].file, "a/Dockerfile");
        assert_eq!(plan.skipped[0].line, 2);
        assert_eq!(plan.changes.len(), 1);
        assert_eq!(plan.changes[0].file, "b/Dockerfile");
    }

    fn uses_of(text: &str) -> Vec<RefUse> {
        let src = Mem(BTreeMap::from([(
            "Dockerfile".to_string(),
            text.to_string(),
        )]));
        list(&src, &[image("Dockerfile")]).unwrap().0
    }

    #[test]
    fn pins_resolve_once_each_and_one_failure_stays_with_its_tag() {
        let uses = uses_of(&format!(
            "FROM python:3.12@{D}\nFROM python:3.12@{D} AS again\nFROM alpine:3@{D}\nFROM busybox:1\n"
        ));
        assert_eq!(
            pinned_tags(&uses).into_iter().collect::<Vec<_>>(),
            [
                "docker.io/library/alpine:3",
                "docker.io/library/python:3.12"
            ]
        );
        let asked = std::sync::Mutex::new(Vec::new());
        let fresh = Digest::sha256_of(b"new");
        let current = futures::executor::block_on(resolve_pins(&uses, 4, |r| {
            asked.lock().unwrap().push(r.to_string());
            let answer = if r.name().ends_with("alpine") {
                Err("registry down".to_string())
            } else {
                Ok(fresh.clone())
            };
            async move { answer }
        }));
        assert_eq!(asked.lock().unwrap().len(), 2, "each tag once");
        assert_eq!(
            current.errors,
            [(
                "docker.io/library/alpine:3".to_string(),
                "registry down".to_string()
            )]
        );
        let stale = stale_pins(&uses, &current.digests);
        assert_eq!(stale.len(), 2, "both python pins moved: {stale:?}");
        assert_eq!((stale[0].line, stale[1].line), (1, 2));
        assert_eq!(stale[0].pinned.as_deref(), Some(D));
        assert_eq!(stale[0].current, fresh);
        let same = BTreeMap::from([(
            "docker.io/library/python:3.12".to_string(),
            Digest::parse(D).unwrap(),
        )]);
        assert!(
            stale_pins(&uses, &same).is_empty(),
            "a fresh pin is not stale"
        );
    }

    #[test]
    fn the_commit_message_lists_every_edit_and_refusals_name_the_files() {
        let (_, plan) = set(
            "FROM python:3.11\nFROM python:3.10 AS b\n",
            "python:3.12",
            None,
        );
        assert_eq!(
            commit_message("ferry-bump: python:3.12", &plan),
            "ferry-bump: python:3.12\n\n- Dockerfile:1: python:3.11 → python:3.12\n- Dockerfile:2: python:3.10 → python:3.12\n"
        );
        assert_eq!(
            Refusal::Dirty(vec!["a/Dockerfile".into()]).to_string(),
            "refusing to commit: a/Dockerfile has uncommitted changes (commit or stash them first); nothing was changed"
        );
        assert!(
            Refusal::Dirty(vec!["a".into(), "b".into()])
                .to_string()
                .starts_with("refusing to commit: a, b have ")
        );
    }

    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("FROM python:3.11-slim AS build\n".to_string()),
            Just("from\tpython:3.11\r\n".to_string()),
            Just("FROM --platform=linux/arm64 docker.io/library/python:3.10 as x\n".to_string()),
            Just("# FROM python:3.11 in a comment\n".to_string()),
            Just("RUN echo python:3.11 \\\n  && true\n".to_string()),
            Just("RUN <<EOF\nFROM python:3.9\nEOF\n".to_string()),
            Just("COPY --from=python:3.8 /a /b\n".to_string()),
            Just("FROM pythonista:1\n".to_string()),
            Just("FROM ghcr.io/acme/python:2\n".to_string()),
            Just("  \n".to_string()),
            Just("ENV A=python:3.11\n".to_string()),
        ]
    }

    proptest! {
        #[test]
        fn a_rewrite_changes_nothing_but_the_reference_tokens(pieces in proptest::collection::vec(piece(), 1..12)) {
            let text = format!("FROM alpine\n{}", pieces.concat());
            let (after, plan) = set(&text, "python:3.12-slim", None);
            // Rebuild the new text from the old one and the edits: nothing else may differ.
            let mut rebuilt = String::new();
            let mut pos = 0;
            if let Some(c) = plan.changes.first() {
                for e in &c.edits {
                    rebuilt.push_str(&text[pos..e.range.start]);
                    prop_assert_eq!(&text[e.range.clone()], e.old.as_str());
                    let new = Reference::parse(&e.new).unwrap();
                    prop_assert_eq!(new.name(), "docker.io/library/python");
                    prop_assert_eq!(new.tag(), Some("3.12-slim"));
                    rebuilt.push_str(&e.new);
                    pos = e.range.end;
                }
            }
            rebuilt.push_str(&text[pos..]);
            prop_assert_eq!(&rebuilt, &after);
            // Comments, RUN text, ENV values and heredoc bodies are never touched.
            prop_assert_eq!(after.matches("# FROM python:3.11").count(), text.matches("# FROM python:3.11").count());
            prop_assert_eq!(after.matches("FROM python:3.9\n").count(), text.matches("FROM python:3.9\n").count());
            prop_assert_eq!(after.matches("ENV A=python:3.11").count(), text.matches("ENV A=python:3.11").count());
            // Rewriting again with the same target changes nothing.
            let (again, _) = set(&after, "python:3.12-slim", None);
            prop_assert_eq!(again, after);
        }
    }
}
